use pannc_approx::*;
fn main() {
    let mut v = vec![];
    for d in (3..=63).step_by(2) { v.push((d, bsgs_plan(d, SeriesParity::Odd).ct_mults, poly_depth(d))); }
    println!("{:?}", v);
}
