//! The activation functions pannc approximates, with the structure the fitting code exploits.

use crate::ApproxError;
use serde::Serialize;

/// A scalar function to approximate. `Max` is `max(a, b)`, approximated through its difference
/// `d = a − b` (`max(a, b) = b + ReLU(d)`): its domain is the range of `a − b` and [`Function::eval`]
/// returns `max(d, 0)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Function {
    Relu,
    LeakyRelu {
        slope: f64,
    },
    /// `min(max(x, lo), hi)`; `relu6` is `Clip { lo: 0, hi: 6 }`.
    Clip {
        lo: f64,
        hi: f64,
    },
    Abs,
    Sign,
    Max,
    /// Exact GELU `x Φ(x)` (erf form).
    Gelu,
    /// `x σ(x)`.
    Silu,
    Sigmoid,
    Tanh,
    Exp,
    /// `x^p` on a positive domain (`p = -1`: `reciprocal`, `p = -1/2`: `invsqrt`, `p = 1/2`:
    /// `sqrt`, `p = -2`: `inv_square`). Fitted with relative-error weight `1/|f|` by minimax,
    /// as are `Exp`: what matters downstream (a normalisation, a Newton step) is the relative
    /// error.
    Power {
        p: f64,
    },
}

/// How a function splits on a symmetric domain: `f(x) = c0 + c1·x + g(x)` with `g` of the given
/// parity (`g = f − c0 − c1 x`). Minimax on a symmetric interval then fits only `g` (half the
/// unknowns, exactly the same optimum because `c0 + c1 x` is representable).
pub(crate) struct Structure {
    pub c0: f64,
    pub c1: f64,
    pub parity: crate::Parity,
}

impl Function {
    /// Parses a CLI name: relu, leaky_relu, relu6, clip, abs, sign, max, gelu, silu, sigmoid,
    /// tanh, exp, reciprocal, invsqrt (also rsqrt), sqrt, inv_square.
    pub fn parse(name: &str) -> Result<Function, ApproxError> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "relu" => Function::Relu,
            "leaky_relu" | "leakyrelu" => Function::LeakyRelu { slope: 0.01 },
            "relu6" => Function::Clip { lo: 0.0, hi: 6.0 },
            "clip" => Function::Clip { lo: -1.0, hi: 1.0 },
            "abs" => Function::Abs,
            "sign" => Function::Sign,
            "max" => Function::Max,
            "gelu" => Function::Gelu,
            "silu" | "swish" => Function::Silu,
            "sigmoid" => Function::Sigmoid,
            "tanh" => Function::Tanh,
            "exp" => Function::Exp,
            "reciprocal" | "inv" => Function::Power { p: -1.0 },
            "invsqrt" | "rsqrt" | "inv_sqrt" => Function::Power { p: -0.5 },
            "sqrt" => Function::Power { p: 0.5 },
            "inv_square" => Function::Power { p: -2.0 },
            _ => return Err(ApproxError::UnknownFunction(name.to_string())),
        })
    }

    /// Short name (the CLI's spelling).
    pub fn name(&self) -> &'static str {
        match self {
            Function::Relu => "relu",
            Function::LeakyRelu { .. } => "leaky_relu",
            Function::Clip { lo, hi } if *lo == 0.0 && *hi == 6.0 => "relu6",
            Function::Clip { .. } => "clip",
            Function::Abs => "abs",
            Function::Sign => "sign",
            Function::Max => "max",
            Function::Gelu => "gelu",
            Function::Silu => "silu",
            Function::Sigmoid => "sigmoid",
            Function::Tanh => "tanh",
            Function::Exp => "exp",
            Function::Power { p } if *p == -1.0 => "reciprocal",
            Function::Power { p } if *p == -0.5 => "invsqrt",
            Function::Power { p } if *p == 0.5 => "sqrt",
            Function::Power { p } if *p == -2.0 => "inv_square",
            Function::Power { .. } => "power",
        }
    }

    /// `f(x)` (for `Max`, `max(x, 0)`; `sign(0) = 0`).
    pub fn eval(&self, x: f64) -> f64 {
        match *self {
            Function::Relu | Function::Max => x.max(0.0),
            Function::LeakyRelu { slope } => {
                if x >= 0.0 {
                    x
                } else {
                    slope * x
                }
            }
            Function::Clip { lo, hi } => x.clamp(lo, hi),
            Function::Abs => x.abs(),
            Function::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            Function::Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
            Function::Silu => x / (1.0 + (-x).exp()),
            Function::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Function::Tanh => x.tanh(),
            Function::Exp => x.exp(),
            Function::Power { p } => x.powf(p),
        }
    }

    /// Points where `f` is not smooth.
    pub fn breakpoints(&self) -> Vec<f64> {
        match *self {
            Function::Relu
            | Function::Max
            | Function::LeakyRelu { .. }
            | Function::Abs
            | Function::Sign => {
                vec![0.0]
            }
            Function::Clip { lo, hi } => vec![lo, hi],
            _ => vec![],
        }
    }

    /// Whether the function is built from a sign (and so has a composite form).
    pub fn is_sign_based(&self) -> bool {
        matches!(
            self,
            Function::Relu
                | Function::LeakyRelu { .. }
                | Function::Clip { .. }
                | Function::Abs
                | Function::Sign
                | Function::Max
        )
    }

    /// Whether minimax fits minimise the relative error `|p − f|/|f|` (functions whose values
    /// span orders of magnitude on their domain and feed a normalisation: `exp`, powers).
    pub fn relative_error(&self) -> bool {
        matches!(self, Function::Exp | Function::Power { .. })
    }

    /// Whether the function is only defined (finite and real) on positive inputs.
    pub fn needs_positive_domain(&self) -> bool {
        matches!(self, Function::Power { p } if p.fract() != 0.0 || *p < 0.0)
    }

    pub(crate) fn structure(&self) -> Option<Structure> {
        use crate::Parity::{Even, Odd};
        Some(match *self {
            // ReLU = x/2 + |x|/2; leaky = (1+a)x/2 + (1−a)|x|/2; GELU/SiLU = x/2 + even.
            Function::Relu | Function::Max | Function::Gelu | Function::Silu => Structure {
                c0: 0.0,
                c1: 0.5,
                parity: Even,
            },
            Function::LeakyRelu { slope } => Structure {
                c0: 0.0,
                c1: (1.0 + slope) / 2.0,
                parity: Even,
            },
            Function::Abs => Structure {
                c0: 0.0,
                c1: 0.0,
                parity: Even,
            },
            Function::Sign | Function::Tanh => Structure {
                c0: 0.0,
                c1: 0.0,
                parity: Odd,
            },
            Function::Sigmoid => Structure {
                c0: 0.5,
                c1: 0.0,
                parity: Odd,
            },
            Function::Clip { lo, hi } if lo == -hi => Structure {
                c0: 0.0,
                c1: 0.0,
                parity: Odd,
            },
            Function::Clip { .. } | Function::Exp | Function::Power { .. } => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_eval() {
        assert_eq!(Function::parse("relu6").unwrap().eval(7.0), 6.0);
        assert_eq!(Function::parse("relu6").unwrap().name(), "relu6");
        assert!(Function::parse("softplus").is_err());
        assert!((Function::Gelu.eval(1.0) - 0.841_344_746_068_542_9).abs() < 1e-15);
        assert!((Function::Silu.eval(2.0) - 2.0 / (1.0 + (-2f64).exp())).abs() < 1e-15);
        assert_eq!(Function::LeakyRelu { slope: 0.1 }.eval(-2.0), -0.2);
        // The structure decomposition is exact: g = f − c0 − c1 x has the stated parity.
        for f in [
            Function::Relu,
            Function::Gelu,
            Function::Silu,
            Function::Sigmoid,
            Function::Tanh,
        ] {
            let s = f.structure().unwrap();
            for x in [0.3, 1.7, 4.0] {
                let g = |x: f64| f.eval(x) - s.c0 - s.c1 * x;
                let sign = if s.parity == crate::Parity::Odd {
                    -1.0
                } else {
                    1.0
                };
                assert!((g(-x) - sign * g(x)).abs() < 1e-14, "{f:?} at {x}");
            }
        }
    }
}
