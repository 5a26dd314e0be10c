use pannc_approx::*;
use std::time::Instant;
fn main() {
    for target in [SignTarget::Relu, SignTarget::Sign] {
        for alpha in 4..=14 {
            let t = Instant::now();
            let c = composite_sign(alpha, target, &CompositeOptions::default()).unwrap();
            println!("{target:?} alpha {alpha}: {:?} depth {} mults {} eps 2^{:.2} errs {:?} {:?}", c.degrees, c.depth, c.ct_mults, c.eps.log2(), c.stage_errors.iter().map(|e| format!("{e:.2e}")).collect::<Vec<_>>(), t.elapsed());
        }
    }
}
