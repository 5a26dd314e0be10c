//! Polynomial activations: what a PANN puts where a nonlinearity was.
//!
//! A [`Poly`] is an elementwise function evaluated as
//! `out_scale · combine(x', q(x'))` with `x' = in_scale · x` and `q = p_k ∘ … ∘ p_1` the
//! composition of its Chebyshev [`PolyStage`]s (`stages[0]` first). Each stage is
//! `p(y) = Σ c_k T_k((2y − lo − hi)/(hi − lo))` on its own interval `[lo, hi]`. The combine rules
//! mirror `pannc-approx`'s (`relu`: `x'(1 + q)/2` where `q ≈ sign`, and so on), so a compiled
//! activation can be re-evaluated from the IR alone.

use std::fmt;

/// One Chebyshev stage on `[lo, hi]`.
#[derive(Clone, Debug, PartialEq)]
pub struct PolyStage {
    pub lo: f64,
    pub hi: f64,
    pub coeffs: Vec<f64>,
}

impl PolyStage {
    pub fn degree(&self) -> usize {
        self.coeffs.len().saturating_sub(1)
    }

    /// Clenshaw evaluation.
    pub fn eval(&self, y: f64) -> f64 {
        let t = (2.0 * y - self.lo - self.hi) / (self.hi - self.lo);
        let (mut b1, mut b2) = (0.0f64, 0.0f64);
        for &c in self.coeffs.iter().skip(1).rev() {
            let b0 = 2.0 * t * b1 - b2 + c;
            b2 = b1;
            b1 = b0;
        }
        t * b1 - b2 + self.coeffs.first().copied().unwrap_or(0.0)
    }

    /// [`PolyStage::eval`] on `LANES` values at once: the same operations in the same order
    /// for every lane (bitwise the same results), with the independent Clenshaw chains of
    /// the lanes interleaved instead of one latency-bound chain at a time.
    #[inline(always)]
    fn eval_lanes(&self, y: &mut [f64; LANES]) {
        let (lo, hi) = (self.lo, self.hi);
        let t = y.map(|y| (2.0 * y - lo - hi) / (hi - lo));
        let (mut b1, mut b2) = ([0.0f64; LANES], [0.0f64; LANES]);
        for &c in self.coeffs.iter().skip(1).rev() {
            for i in 0..LANES {
                let b0 = 2.0 * t[i] * b1[i] - b2[i] + c;
                b2[i] = b1[i];
                b1[i] = b0;
            }
        }
        let c0 = self.coeffs.first().copied().unwrap_or(0.0);
        for i in 0..LANES {
            y[i] = t[i] * b1[i] - b2[i] + c0;
        }
    }
}

/// Values per batch of [`Poly::eval_many`] (four AVX-512 vectors of f64).
const LANES: usize = 32;

/// How the composed stages `q` turn into the activation's value at `x'`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PolyCombine {
    /// `q(x')`.
    Identity,
    /// `x'·(1 + q(x'))/2`, `q ≈ sign`.
    Relu,
    /// `x'·((1 + slope) + (1 − slope)·q(x'))/2`, `q ≈ sign`.
    LeakyRelu { slope: f64 },
}

/// A polynomial activation (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub struct Poly {
    /// What it approximates (`relu`, `gelu`, ...), for reports.
    pub function: String,
    pub in_scale: f64,
    pub out_scale: f64,
    pub stages: Vec<PolyStage>,
    pub combine: PolyCombine,
}

impl Poly {
    /// `q(y)`: the stages composed.
    pub fn composed(&self, y: f64) -> f64 {
        self.stages.iter().fold(y, |v, s| s.eval(v))
    }

    /// The activation's value at `x`.
    pub fn eval(&self, x: f64) -> f64 {
        let x = self.in_scale * x;
        let y = match self.combine {
            PolyCombine::Identity => self.composed(x),
            PolyCombine::Relu => x * (1.0 + self.composed(x)) / 2.0,
            PolyCombine::LeakyRelu { slope } => {
                x * ((1.0 + slope) + (1.0 - slope) * self.composed(x)) / 2.0
            }
        };
        self.out_scale * y
    }

    /// [`Poly::eval`] of every value of `xs`, in place, bitwise equal to it, several times
    /// faster (see [`PolyStage`]'s lane evaluation).
    pub fn eval_many(&self, xs: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if avx512() {
            // SAFETY: the CPU has AVX-512F (checked above).
            unsafe { self.eval_many_avx512(xs) };
            return;
        }
        self.eval_many_lanes(xs)
    }

    /// [`Self::eval_many_lanes`] compiled for AVX-512 (8 f64 per instruction). Rust never
    /// contracts `a·b + c` into a fused multiply-add, so the results are bitwise the same.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn eval_many_avx512(&self, xs: &mut [f64]) {
        self.eval_many_lanes(xs)
    }

    #[inline(always)]
    fn eval_many_lanes(&self, xs: &mut [f64]) {
        let mut chunks = xs.chunks_exact_mut(LANES);
        for c in &mut chunks {
            let lanes: &mut [f64; LANES] = c.try_into().expect("chunks of LANES");
            self.eval_lanes(lanes);
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let mut lanes = [0.0f64; LANES];
            lanes[..rest.len()].copy_from_slice(rest);
            self.eval_lanes(&mut lanes);
            rest.copy_from_slice(&lanes[..rest.len()]);
        }
    }

    /// `q` at every lane, in place.
    #[inline(always)]
    fn composed_lanes(&self, y: &mut [f64; LANES]) {
        for s in &self.stages {
            s.eval_lanes(y);
        }
    }

    #[inline(always)]
    fn eval_lanes(&self, xs: &mut [f64; LANES]) {
        let x = xs.map(|x| self.in_scale * x);
        let y: [f64; LANES] = match self.combine {
            PolyCombine::Identity => {
                let mut q = x;
                self.composed_lanes(&mut q);
                q
            }
            PolyCombine::Relu => {
                let mut q = x;
                self.composed_lanes(&mut q);
                std::array::from_fn(|i| x[i] * (1.0 + q[i]) / 2.0)
            }
            PolyCombine::LeakyRelu { slope } => {
                let mut q = x;
                self.composed_lanes(&mut q);
                std::array::from_fn(|i| x[i] * ((1.0 + slope) + (1.0 - slope) * q[i]) / 2.0)
            }
        };
        for i in 0..LANES {
            xs[i] = self.out_scale * y[i];
        }
    }

    /// Where `x` falls in the interval the polynomial is accurate on, the first stage's
    /// `[lo, hi]` (after `in_scale`): `|t|` with `t = (2·in_scale·x − lo − hi)/(hi − lo)`, so
    /// `≤ 1` inside. For the symmetric `[-1, 1]` of sign-based and smooth activations this is
    /// `|in_scale·x|`; asymmetric intervals (`exp`, the powers on positive ranges) keep their
    /// offset in the stage.
    pub fn domain_position(&self, x: f64) -> f64 {
        let y = self.in_scale * x;
        match self.stages.first() {
            Some(s) if s.hi > s.lo => ((2.0 * y - s.lo - s.hi) / (s.hi - s.lo)).abs(),
            _ => y.abs(),
        }
    }

    /// The input interval the polynomial is accurate on, in raw input units.
    pub fn input_domain(&self) -> (f64, f64) {
        let (lo, hi) = self.stages.first().map_or((-1.0, 1.0), |s| (s.lo, s.hi));
        (lo / self.in_scale, hi / self.in_scale)
    }

    pub fn degrees(&self) -> Vec<usize> {
        self.stages.iter().map(|s| s.degree()).collect()
    }

    /// Multiplicative depth: `Σ ⌈log2(d_i + 1)⌉`, plus one for the final product with `x'` of
    /// sign-based combines. Scales are assumed folded or merged into products.
    pub fn depth(&self) -> usize {
        let stages: usize = self.stages.iter().map(|s| ceil_log2(s.degree() + 1)).sum();
        stages + usize::from(!matches!(self.combine, PolyCombine::Identity))
    }
}

#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| std::is_x86_feature_detected!("avx512f"))
}

fn ceil_log2(n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        (usize::BITS - (n - 1).leading_zeros()) as usize
    }
}

impl fmt::Display for Poly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let degs: Vec<String> = self.degrees().iter().map(|d| d.to_string()).collect();
        let combine = match self.combine {
            PolyCombine::Identity => "identity".to_string(),
            PolyCombine::Relu => "relu".to_string(),
            PolyCombine::LeakyRelu { slope } => {
                format!("leaky_relu({})", crate::tensor::fmt_num(slope))
            }
        };
        write!(
            f,
            "{} degrees=[{}] combine={} in_scale={} out_scale={} depth={}",
            self.function,
            degs.join(","),
            combine,
            crate::tensor::fmt_num(self.in_scale),
            crate::tensor::fmt_num(self.out_scale),
            self.depth()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batched evaluation is bitwise the scalar one, for every combine and any length.
    #[test]
    fn eval_many_equals_eval() {
        let stage = |lo: f64, hi: f64, k: usize| PolyStage {
            lo,
            hi,
            coeffs: (0..k).map(|i| ((i * 37 % 11) as f64 - 5.0) / 7.0).collect(),
        };
        for combine in [
            PolyCombine::Identity,
            PolyCombine::Relu,
            PolyCombine::LeakyRelu { slope: 0.1 },
        ] {
            let p = Poly {
                function: "f".into(),
                in_scale: 0.37,
                out_scale: 2.5,
                stages: vec![
                    stage(-1.0, 1.0, 8),
                    stage(-1.5, 1.2, 32),
                    stage(-2.0, 2.0, 1),
                ],
                combine,
            };
            for n in [0, 1, 7, 8, 9, 31, 32, 33, 100] {
                let xs: Vec<f64> = (0..n).map(|i| (i as f64 * 0.731).sin() * 3.0).collect();
                let mut got = xs.clone();
                p.eval_many(&mut got);
                let want: Vec<f64> = xs.iter().map(|&x| p.eval(x)).collect();
                assert_eq!(
                    got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{combine:?}, n = {n}"
                );
            }
        }
    }

    #[test]
    fn clenshaw_matches_cosine_form() {
        let s = PolyStage {
            lo: -2.0,
            hi: 3.0,
            coeffs: vec![0.3, -1.2, 0.7, 0.25, -0.1],
        };
        for i in 0..=50 {
            let y = -2.0 + 5.0 * i as f64 / 50.0;
            let t: f64 = ((2.0 * y - 1.0) / 5.0f64).clamp(-1.0, 1.0);
            let want: f64 = s
                .coeffs
                .iter()
                .enumerate()
                .map(|(k, c)| c * (k as f64 * t.acos()).cos())
                .sum();
            assert!((s.eval(y) - want).abs() < 1e-12, "{y}");
        }
    }

    #[test]
    fn relu_combine_with_exact_sign_is_relu() {
        // q(y) = y on [-1,1] stands in for sign at ±1.
        let p = Poly {
            function: "relu".into(),
            in_scale: 0.5,
            out_scale: 2.0,
            stages: vec![PolyStage {
                lo: -1.0,
                hi: 1.0,
                coeffs: vec![0.0, 1.0],
            }],
            combine: PolyCombine::Relu,
        };
        assert_eq!(p.eval(2.0), 2.0); // x' = 1, q = 1
        assert_eq!(p.eval(-2.0), 0.0); // x' = -1, q = -1
        assert_eq!(p.depth(), 2); // degree 1: one level, plus the product with x
    }
}
