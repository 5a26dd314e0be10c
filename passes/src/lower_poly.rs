//! Lowering of polynomial activations to plain arithmetic, for ONNX.
//!
//! Guarantees: every `Poly` node becomes Mul/Add/Sub nodes with constant operands that
//! compute the same function (Clenshaw's recurrence per Chebyshev stage, then the combine
//! rule and scales), so the graph runs in any ONNX runtime. No `Poly` remains.

use crate::util::unique_name;
use crate::{Context, Pass, PassError};
use pannc_ir::{DType, Graph, Op, Poly, PolyCombine, PolyStage, Tensor, ValueId};

pub struct LowerPoly;

impl Pass for LowerPoly {
    fn name(&self) -> &'static str {
        "lower-poly"
    }
    fn summary(&self) -> &'static str {
        "expand polynomial activations into Mul/Add/Sub (Clenshaw) for ONNX runtimes"
    }
    fn run(&self, g: &mut Graph, _cx: &mut Context) -> Result<bool, PassError> {
        let mut changed = false;
        for id in g.node_ids() {
            let Op::Poly(p) = &g.node(id).op else {
                continue;
            };
            let p = (**p).clone();
            let x = g.node(id).inputs()[0];
            let dtype = g
                .value(x)
                .ty
                .as_ref()
                .map(|t| t.dtype)
                .unwrap_or(DType::F32);
            let name = g.node(id).name.clone();
            let mut b = Builder {
                g,
                name,
                dtype,
                n: 0,
            };
            let y = b.poly(&p, x)?;
            let out = b.g.node(id).outputs()[0];
            crate::util::replace_keeping_name(b.g, out, y).map_err(|e| b.err(e))?;
            b.g.remove_node(id);
            changed = true;
        }
        Ok(changed)
    }
}

struct Builder<'a> {
    g: &'a mut Graph,
    name: String,
    dtype: DType,
    n: usize,
}

impl Builder<'_> {
    fn err(&self, e: impl ToString) -> PassError {
        PassError::Node {
            pass: "lower-poly",
            node: self.name.clone(),
            op: "Poly",
            message: e.to_string(),
        }
    }
    fn tag(&mut self, what: &str) -> String {
        self.n += 1;
        format!("{}.{what}{}", self.name, self.n)
    }
    fn konst(&mut self, v: f64) -> Result<ValueId, PassError> {
        let tag = self.tag("c");
        let name = unique_name(self.g, tag);
        let t = Tensor::from_f64(&[], vec![v])
            .expect("scalar")
            .cast(self.dtype);
        self.g.add_constant(name, t).map_err(|e| self.err(e))
    }
    fn bin(&mut self, op: Op, a: ValueId, b: ValueId) -> Result<ValueId, PassError> {
        let tag = self.tag(&op.name().to_lowercase());
        self.g.add_simple(tag, op, &[a, b]).map_err(|e| self.err(e))
    }
    fn mul_c(&mut self, a: ValueId, c: f64) -> Result<ValueId, PassError> {
        if c == 1.0 {
            return Ok(a);
        }
        let k = self.konst(c)?;
        self.bin(Op::Mul, a, k)
    }
    fn add_c(&mut self, a: ValueId, c: f64) -> Result<ValueId, PassError> {
        if c == 0.0 {
            return Ok(a);
        }
        let k = self.konst(c)?;
        self.bin(Op::Add, a, k)
    }

    /// `Σ c_k T_k(t)`, `t` the stage's normalised input, by Clenshaw:
    /// `b_k = 2t·b_{k+1} − b_{k+2} + c_k`, result `t·b_1 − b_2 + c_0`.
    fn stage(&mut self, s: &PolyStage, y: ValueId) -> Result<ValueId, PassError> {
        let scale = 2.0 / (s.hi - s.lo);
        let shift = -(s.hi + s.lo) / (s.hi - s.lo);
        let t = self.mul_c(y, scale)?;
        let t = self.add_c(t, shift)?;
        let d = s.degree();
        if d == 0 {
            let z = self.mul_c(t, 0.0)?;
            return self.add_c(z, s.coeffs[0]);
        }
        let two_t = self.mul_c(t, 2.0)?;
        // b_{d} = c_d (as a tensor: t·0 + c_d keeps the shape), b_{d+1} = 0
        let mut b1 = {
            let z = self.mul_c(t, 0.0)?;
            self.add_c(z, s.coeffs[d])?
        };
        let mut b2: Option<ValueId> = None;
        for k in (1..d).rev() {
            let m = self.bin(Op::Mul, two_t, b1)?;
            let m = match b2 {
                Some(b2) => self.bin(Op::Sub, m, b2)?,
                None => m,
            };
            let b0 = self.add_c(m, s.coeffs[k])?;
            b2 = Some(b1);
            b1 = b0;
        }
        let m = self.bin(Op::Mul, t, b1)?;
        let m = match b2 {
            Some(b2) => self.bin(Op::Sub, m, b2)?,
            None => m,
        };
        self.add_c(m, s.coeffs[0])
    }

    fn composed(&mut self, p: &Poly, x: ValueId) -> Result<ValueId, PassError> {
        let mut y = x;
        for s in &p.stages {
            y = self.stage(s, y)?;
        }
        Ok(y)
    }

    fn poly(&mut self, p: &Poly, x: ValueId) -> Result<ValueId, PassError> {
        let xs = self.mul_c(x, p.in_scale)?;
        let y = match p.combine {
            PolyCombine::Identity => self.composed(p, xs)?,
            PolyCombine::Relu => {
                let q = self.composed(p, xs)?;
                let q1 = self.add_c(q, 1.0)?;
                let m = self.bin(Op::Mul, xs, q1)?;
                self.mul_c(m, 0.5)?
            }
            PolyCombine::LeakyRelu { slope } => {
                let q = self.composed(p, xs)?;
                let a = self.mul_c(q, 1.0 - slope)?;
                let a = self.add_c(a, 1.0 + slope)?;
                let m = self.bin(Op::Mul, xs, a)?;
                self.mul_c(m, 0.5)?
            }
        };
        self.mul_c(y, p.out_scale)
    }
}
