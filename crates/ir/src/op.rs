//! The operation set. Each variant carries its attributes already parsed and validated;
//! inputs that ONNX allows to be tensors (shapes, axes, pads, clip bounds) stay inputs, in
//! the form of the newest opset, so that every opset imports to the same IR.

use crate::poly::Poly;
use crate::tensor::{DType, Tensor};
use std::fmt;

/// How a convolution or pooling window pads its input.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum AutoPad {
    /// Use the explicit `pads`.
    #[default]
    NotSet,
    SameUpper,
    SameLower,
    Valid,
}

/// Window geometry shared by Conv, MaxPool and AveragePool. Empty vectors mean "default"
/// (ones for strides/dilations, zeros for pads, kernel taken from the weight for Conv).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Window {
    pub kernel_shape: Vec<usize>,
    pub strides: Vec<usize>,
    /// `[x1_begin, x2_begin, ..., x1_end, x2_end, ...]`, as in ONNX.
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
    pub auto_pad: AutoPad,
    pub ceil_mode: bool,
}

/// A node pannc keeps without interpreting it: an operator outside the ONNX default domain
/// (in practice scikit-learn's `ai.onnx.ml` tail after the logits: `ZipMap`,
/// `ArrayFeatureExtractor`, `Normalizer`, `LabelEncoder`), preserved so that the part of the
/// graph it belongs to can be split off the PANN and written back as it was.
///
/// The interpreter refuses it (naming the node); shape inference takes its outputs' types as
/// declared in the model and leaves the rest, and whatever depends on them, untyped.
#[derive(Clone, Debug, PartialEq)]
pub struct Opaque {
    /// Operator domain, e.g. `ai.onnx.ml`.
    pub domain: String,
    /// Operator type within the domain, e.g. `ZipMap`.
    pub op_type: String,
    /// The node as the source format encoded it (ONNX: a serialized `NodeProto`), written back
    /// verbatim except for its name, inputs and outputs, which follow the graph.
    pub encoded: Vec<u8>,
    /// Per output, its declared type when it is not a dense tensor the IR can express (ONNX: a
    /// serialized `TypeProto`, e.g. a sequence of maps), written back verbatim. `None` for
    /// tensor outputs (typed as IR values when declared) and undeclared ones.
    pub foreign_types: Vec<Option<Vec<u8>>>,
}

impl Opaque {
    /// `domain.op_type`, or `op_type` in the default domain.
    pub fn qualified_name(&self) -> String {
        if self.domain.is_empty() {
            self.op_type.clone()
        } else {
            format!("{}.{}", self.domain, self.op_type)
        }
    }
}

/// Padding mode of `Pad`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum PadMode {
    Constant,
    Reflect,
    Edge,
    Wrap,
}

/// One operation. Inputs are listed per variant as `(name, ...)`; optional trailing inputs
/// may be absent.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A constant tensor (ONNX initializers and `Constant` nodes). No inputs.
    Constant(Tensor),
    /// `(X, W, B?)`.
    Conv {
        window: Window,
        group: usize,
    },
    /// `(A, B, C?)`: `alpha * A' * B' + beta * C`.
    Gemm {
        alpha: f32,
        beta: f32,
        trans_a: bool,
        trans_b: bool,
    },
    /// `(A, B)`, numpy semantics.
    MatMul,
    /// Broadcasting binary arithmetic `(A, B)`.
    Add,
    Sub,
    Mul,
    Div,
    /// Inference-mode batch normalization `(X, scale, B, mean, var)`.
    BatchNormalization {
        epsilon: f32,
    },
    Relu,
    LeakyRelu {
        alpha: f32,
    },
    /// `(X, min?, max?)`; `has_min`/`has_max` say which bounds are present among the inputs.
    Clip {
        has_min: bool,
        has_max: bool,
    },
    Sigmoid,
    Tanh,
    Erf,
    /// `approximate` is `"none"` (erf form) or `"tanh"`.
    Gelu {
        tanh: bool,
    },
    /// Opset-13 semantics: along one axis.
    Softmax {
        axis: i64,
    },
    /// `log(Softmax(x))` along one axis (opset-13 semantics).
    LogSoftmax {
        axis: i64,
    },
    MaxPool {
        window: Window,
    },
    AveragePool {
        window: Window,
        count_include_pad: bool,
    },
    GlobalAveragePool,
    /// Local response normalization across channels (axis 1) of an `(N, C, ...)` input:
    /// `y = x / (bias + alpha/size · Σ x²)^beta`, the sum over the `size` channels centred on
    /// each one (`⌊(size−1)/2⌋` before, `⌈(size−1)/2⌉` after, clipped to `[0, C)`).
    Lrn {
        alpha: f32,
        beta: f32,
        bias: f32,
        size: usize,
    },
    /// `(data, axes?)`.
    ReduceMean {
        keepdims: bool,
        noop_with_empty_axes: bool,
    },
    Flatten {
        axis: i64,
    },
    /// `(data, shape)`.
    Reshape {
        allowzero: bool,
    },
    /// Empty `perm` reverses the axes.
    Transpose {
        perm: Vec<usize>,
    },
    Concat {
        axis: i64,
    },
    /// `(data, pads, constant_value?, axes?)`.
    Pad {
        mode: PadMode,
    },
    /// `(data, axes?)`.
    Squeeze,
    /// `(data, axes)`.
    Unsqueeze,
    Identity,
    /// Inference mode: identity on its first input. Only output 0 is supported.
    Dropout,
    /// `(data)` → i64 shape slice `[start, end)`.
    Shape {
        start: i64,
        end: Option<i64>,
    },
    /// `(data, indices)`.
    Gather {
        axis: i64,
    },
    Cast {
        to: DType,
    },
    /// `(shape)`; `value` is a one-element tensor giving dtype and fill value.
    ConstantOfShape {
        value: Tensor,
    },
    /// `x·Sigmoid(x)` (not an ONNX op: recognised from its exported form, written back as it).
    Silu,
    /// `max(0, min(1, alpha·x + beta))`.
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x · max(0, min(1, x/6 + 1/2))`.
    HardSwish,
    /// Elementwise math on floats (`Neg` and `Abs` also on i64).
    Neg,
    Abs,
    Sqrt,
    Reciprocal,
    Exp,
    Log,
    Floor,
    Ceil,
    /// `(X, Y)`: `X^Y`, broadcasting; the result has X's dtype.
    Pow,
    /// Elementwise maximum / minimum of one or more inputs, broadcasting.
    Max,
    Min,
    /// `(data)` → the number of elements, an i64 scalar.
    Size,
    /// `(A, B)`: remainder with broadcasting; with `fmod` the sign of the dividend (C `fmod`),
    /// otherwise of the divisor (integers only, as in ONNX).
    Mod {
        fmod: bool,
    },
    /// Comparisons `(A, B)` with broadcasting; the result is bool.
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    /// Logic on bool tensors: `(A, B)` with broadcasting, and `Not(X)`.
    And,
    Or,
    Xor,
    Not,
    /// `(condition, X, Y)`: X where the bool condition holds, else Y, all three broadcast.
    Where,
    /// `(input, shape)`: broadcast the input to `shape` (numpy rules, both ways).
    Expand,
    /// `(input, repeats)`: repeat along each axis.
    Tile,
    /// `(data, starts, ends, axes?, steps?)`, ONNX opset-13 semantics (bounds clamped,
    /// negative steps walk backwards).
    Slice,
    /// `(input, split?)`: cuts `input` along `axis` into `num_outputs` parts, of the sizes
    /// given by `split`, else equal (the last one smaller when the size does not divide, as in
    /// opset 18).
    Split {
        axis: i64,
        num_outputs: usize,
    },
    /// `(data, indices)`: gathers slices addressed by the last axis of `indices`.
    GatherND {
        batch_dims: usize,
    },
    /// `(start, limit, delta)` scalars → the 1-D sequence `start, start+delta, …` below `limit`.
    Range,
    /// Index of the largest (`ArgMax`) or smallest element along `axis`, as i64.
    ArgMax {
        axis: i64,
        keepdims: bool,
        select_last_index: bool,
    },
    ArgMin {
        axis: i64,
        keepdims: bool,
        select_last_index: bool,
    },
    /// `(data, axes?)`, like `ReduceMean`.
    ReduceSum {
        keepdims: bool,
        noop_with_empty_axes: bool,
    },
    ReduceMax {
        keepdims: bool,
        noop_with_empty_axes: bool,
    },
    ReduceMin {
        keepdims: bool,
        noop_with_empty_axes: bool,
    },
    /// `(X, scale, B?)`: normalises over the axes `axis..rank` to zero mean and unit variance
    /// (`epsilon` added to the variance), then `· scale + B`. Only the first ONNX output.
    LayerNormalization {
        axis: i64,
        epsilon: f32,
    },
    /// A node preserved without interpretation; see [`Opaque`].
    Opaque(Box<Opaque>),
    /// A polynomial activation (what a PANN puts in place of a nonlinearity); see [`Poly`].
    Poly(Box<Poly>),
}

impl Op {
    /// The ONNX operator name of this op.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Constant(_) => "Constant",
            Op::Conv { .. } => "Conv",
            Op::Gemm { .. } => "Gemm",
            Op::MatMul => "MatMul",
            Op::Add => "Add",
            Op::Sub => "Sub",
            Op::Mul => "Mul",
            Op::Div => "Div",
            Op::BatchNormalization { .. } => "BatchNormalization",
            Op::Relu => "Relu",
            Op::LeakyRelu { .. } => "LeakyRelu",
            Op::Clip { .. } => "Clip",
            Op::Sigmoid => "Sigmoid",
            Op::Tanh => "Tanh",
            Op::Erf => "Erf",
            Op::Gelu { .. } => "Gelu",
            Op::Softmax { .. } => "Softmax",
            Op::LogSoftmax { .. } => "LogSoftmax",
            Op::Max => "Max",
            Op::Min => "Min",
            Op::Size => "Size",
            Op::MaxPool { .. } => "MaxPool",
            Op::AveragePool { .. } => "AveragePool",
            Op::GlobalAveragePool => "GlobalAveragePool",
            Op::Lrn { .. } => "LRN",
            Op::ReduceMean { .. } => "ReduceMean",
            Op::Flatten { .. } => "Flatten",
            Op::Reshape { .. } => "Reshape",
            Op::Transpose { .. } => "Transpose",
            Op::Concat { .. } => "Concat",
            Op::Pad { .. } => "Pad",
            Op::Squeeze => "Squeeze",
            Op::Unsqueeze => "Unsqueeze",
            Op::Identity => "Identity",
            Op::Dropout => "Dropout",
            Op::Shape { .. } => "Shape",
            Op::Gather { .. } => "Gather",
            Op::Cast { .. } => "Cast",
            Op::ConstantOfShape { .. } => "ConstantOfShape",
            Op::Silu => "Silu",
            Op::Poly(_) => "Poly",
            Op::HardSigmoid { .. } => "HardSigmoid",
            Op::HardSwish => "HardSwish",
            Op::Neg => "Neg",
            Op::Abs => "Abs",
            Op::Sqrt => "Sqrt",
            Op::Reciprocal => "Reciprocal",
            Op::Exp => "Exp",
            Op::Log => "Log",
            Op::Floor => "Floor",
            Op::Ceil => "Ceil",
            Op::Pow => "Pow",
            Op::Mod { .. } => "Mod",
            Op::Equal => "Equal",
            Op::Less => "Less",
            Op::LessOrEqual => "LessOrEqual",
            Op::Greater => "Greater",
            Op::GreaterOrEqual => "GreaterOrEqual",
            Op::And => "And",
            Op::Or => "Or",
            Op::Xor => "Xor",
            Op::Not => "Not",
            Op::Where => "Where",
            Op::Expand => "Expand",
            Op::Tile => "Tile",
            Op::Slice => "Slice",
            Op::Split { .. } => "Split",
            Op::GatherND { .. } => "GatherND",
            Op::Range => "Range",
            Op::ArgMax { .. } => "ArgMax",
            Op::ArgMin { .. } => "ArgMin",
            Op::ReduceSum { .. } => "ReduceSum",
            Op::ReduceMax { .. } => "ReduceMax",
            Op::ReduceMin { .. } => "ReduceMin",
            Op::LayerNormalization { .. } => "LayerNormalization",
            Op::Opaque(_) => "Opaque",
        }
    }

    /// Allowed number of inputs, `(min, max)`.
    pub fn input_arity(&self) -> (usize, usize) {
        match self {
            Op::Constant(_) => (0, 0),
            Op::Conv { .. } | Op::Gemm { .. } => (2, 3),
            Op::MatMul
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Gather { .. }
            | Op::Pow
            | Op::Mod { .. }
            | Op::Equal
            | Op::Less
            | Op::LessOrEqual
            | Op::Greater
            | Op::GreaterOrEqual
            | Op::And
            | Op::Or
            | Op::Xor
            | Op::Expand
            | Op::Tile
            | Op::GatherND { .. } => (2, 2),
            Op::Where | Op::Range => (3, 3),
            Op::Slice => (3, 5),
            Op::Split { .. } => (1, 2),
            Op::ReduceSum { .. } | Op::ReduceMax { .. } | Op::ReduceMin { .. } => (1, 2),
            Op::LayerNormalization { .. } => (2, 3),
            Op::Opaque(_) => (0, usize::MAX),
            Op::BatchNormalization { .. } => (5, 5),
            Op::Clip { has_min, has_max } => {
                let n = 1 + *has_min as usize + *has_max as usize;
                (n, n)
            }
            Op::ReduceMean { .. } | Op::Squeeze => (1, 2),
            Op::Reshape { .. } | Op::Unsqueeze => (2, 2),
            Op::Pad { .. } => (2, 4),
            Op::Concat { .. } | Op::Max | Op::Min => (1, usize::MAX),
            Op::Dropout => (1, 3),
            Op::ConstantOfShape { .. } => (1, 1),
            Op::Relu
            | Op::LeakyRelu { .. }
            | Op::Sigmoid
            | Op::Tanh
            | Op::Erf
            | Op::Gelu { .. }
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::Size
            | Op::MaxPool { .. }
            | Op::AveragePool { .. }
            | Op::GlobalAveragePool
            | Op::Lrn { .. }
            | Op::Flatten { .. }
            | Op::Transpose { .. }
            | Op::Identity
            | Op::Shape { .. }
            | Op::Cast { .. }
            | Op::Silu
            | Op::Poly(_)
            | Op::HardSigmoid { .. }
            | Op::HardSwish
            | Op::Neg
            | Op::Abs
            | Op::Sqrt
            | Op::Reciprocal
            | Op::Exp
            | Op::Log
            | Op::Floor
            | Op::Ceil
            | Op::Not
            | Op::ArgMax { .. }
            | Op::ArgMin { .. } => (1, 1),
        }
    }

    /// Elementwise ops whose output has the input's shape and dtype.
    pub fn is_unary_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Relu
                | Op::LeakyRelu { .. }
                | Op::Clip { .. }
                | Op::Sigmoid
                | Op::Tanh
                | Op::Erf
                | Op::Gelu { .. }
                | Op::Silu
                | Op::Poly(_)
                | Op::Identity
                | Op::Dropout
                | Op::HardSigmoid { .. }
                | Op::HardSwish
                | Op::Neg
                | Op::Abs
                | Op::Sqrt
                | Op::Reciprocal
                | Op::Exp
                | Op::Log
                | Op::Floor
                | Op::Ceil
        )
    }

    /// Nonlinear activations that a PANN must replace with polynomials.
    pub fn is_nonlinear(&self) -> bool {
        matches!(
            self,
            Op::Relu
                | Op::LeakyRelu { .. }
                | Op::Clip { .. }
                | Op::Sigmoid
                | Op::Tanh
                | Op::Erf
                | Op::Gelu { .. }
                | Op::Silu
                | Op::Softmax { .. }
                | Op::LogSoftmax { .. }
                | Op::Max
                | Op::Min
                | Op::MaxPool { .. }
                | Op::Lrn { .. }
                | Op::HardSigmoid { .. }
                | Op::HardSwish
                | Op::Abs
                | Op::Sqrt
                | Op::Reciprocal
                | Op::Exp
                | Op::Log
                | Op::Floor
                | Op::Ceil
                | Op::Pow
                | Op::Mod { .. }
                | Op::ReduceMax { .. }
                | Op::ReduceMin { .. }
                | Op::ArgMax { .. }
                | Op::ArgMin { .. }
                | Op::LayerNormalization { .. }
        )
    }

    /// Attributes as `key=value` pairs in a fixed order, for the printer.
    pub fn attrs(&self) -> Vec<(&'static str, String)> {
        fn list<T: fmt::Display>(v: &[T]) -> String {
            let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
            format!("[{}]", items.join(","))
        }
        fn window(w: &Window, out: &mut Vec<(&'static str, String)>) {
            if !w.kernel_shape.is_empty() {
                out.push(("kernel", list(&w.kernel_shape)));
            }
            if !w.strides.is_empty() {
                out.push(("strides", list(&w.strides)));
            }
            if !w.pads.is_empty() {
                out.push(("pads", list(&w.pads)));
            }
            if !w.dilations.is_empty() {
                out.push(("dilations", list(&w.dilations)));
            }
            if w.auto_pad != AutoPad::NotSet {
                out.push(("auto_pad", format!("{:?}", w.auto_pad)));
            }
            if w.ceil_mode {
                out.push(("ceil_mode", "1".into()));
            }
        }
        let f = |x: f32| crate::tensor::fmt_num(x as f64);
        let mut out = Vec::new();
        match self {
            Op::Constant(_) => {}
            Op::Conv { window: w, group } => {
                window(w, &mut out);
                if *group != 1 {
                    out.push(("group", group.to_string()));
                }
            }
            Op::Gemm {
                alpha,
                beta,
                trans_a,
                trans_b,
            } => {
                out.push(("alpha", f(*alpha)));
                out.push(("beta", f(*beta)));
                out.push(("trans_a", (*trans_a as u8).to_string()));
                out.push(("trans_b", (*trans_b as u8).to_string()));
            }
            Op::BatchNormalization { epsilon } => out.push(("epsilon", f(*epsilon))),
            Op::LeakyRelu { alpha } => out.push(("alpha", f(*alpha))),
            Op::Clip { has_min, has_max } => {
                out.push(("min", (*has_min as u8).to_string()));
                out.push(("max", (*has_max as u8).to_string()));
            }
            Op::Gelu { tanh } => {
                out.push(("approximate", if *tanh { "tanh" } else { "none" }.into()))
            }
            Op::Softmax { axis } | Op::LogSoftmax { axis } => out.push(("axis", axis.to_string())),
            Op::MaxPool { window: w } => window(w, &mut out),
            Op::AveragePool {
                window: w,
                count_include_pad,
            } => {
                window(w, &mut out);
                out.push(("count_include_pad", (*count_include_pad as u8).to_string()));
            }
            Op::Lrn {
                alpha,
                beta,
                bias,
                size,
            } => {
                out.push(("alpha", f(*alpha)));
                out.push(("beta", f(*beta)));
                out.push(("bias", f(*bias)));
                out.push(("size", size.to_string()));
            }
            Op::ReduceMean {
                keepdims,
                noop_with_empty_axes,
            } => {
                out.push(("keepdims", (*keepdims as u8).to_string()));
                if *noop_with_empty_axes {
                    out.push(("noop_with_empty_axes", "1".into()));
                }
            }
            Op::Flatten { axis } => out.push(("axis", axis.to_string())),
            Op::Reshape { allowzero } => {
                if *allowzero {
                    out.push(("allowzero", "1".into()));
                }
            }
            Op::Transpose { perm } => {
                if !perm.is_empty() {
                    out.push(("perm", list(perm)));
                }
            }
            Op::Concat { axis } => out.push(("axis", axis.to_string())),
            Op::Pad { mode } => out.push(("mode", format!("{:?}", mode).to_lowercase())),
            Op::Shape { start, end } => {
                if *start != 0 {
                    out.push(("start", start.to_string()));
                }
                if let Some(e) = end {
                    out.push(("end", e.to_string()));
                }
            }
            Op::Gather { axis } => out.push(("axis", axis.to_string())),
            Op::Cast { to } => out.push(("to", to.to_string())),
            Op::ConstantOfShape { value } => out.push(("value", value.summary())),
            Op::Poly(p) => out.push(("poly", p.to_string())),
            Op::HardSigmoid { alpha, beta } => {
                out.push(("alpha", f(*alpha)));
                out.push(("beta", f(*beta)));
            }
            Op::Mod { fmod } => out.push(("fmod", (*fmod as u8).to_string())),
            Op::Split { axis, num_outputs } => {
                out.push(("axis", axis.to_string()));
                out.push(("num_outputs", num_outputs.to_string()));
            }
            Op::GatherND { batch_dims } => {
                if *batch_dims != 0 {
                    out.push(("batch_dims", batch_dims.to_string()));
                }
            }
            Op::ArgMax {
                axis,
                keepdims,
                select_last_index,
            }
            | Op::ArgMin {
                axis,
                keepdims,
                select_last_index,
            } => {
                out.push(("axis", axis.to_string()));
                out.push(("keepdims", (*keepdims as u8).to_string()));
                if *select_last_index {
                    out.push(("select_last_index", "1".into()));
                }
            }
            Op::ReduceSum {
                keepdims,
                noop_with_empty_axes,
            }
            | Op::ReduceMax {
                keepdims,
                noop_with_empty_axes,
            }
            | Op::ReduceMin {
                keepdims,
                noop_with_empty_axes,
            } => {
                out.push(("keepdims", (*keepdims as u8).to_string()));
                if *noop_with_empty_axes {
                    out.push(("noop_with_empty_axes", "1".into()));
                }
            }
            Op::LayerNormalization { axis, epsilon } => {
                out.push(("axis", axis.to_string()));
                out.push(("epsilon", f(*epsilon)));
            }
            Op::Opaque(o) => {
                out.push(("domain", o.domain.clone()));
                out.push(("op_type", o.op_type.clone()));
            }
            Op::HardSwish
            | Op::Neg
            | Op::Abs
            | Op::Sqrt
            | Op::Reciprocal
            | Op::Exp
            | Op::Log
            | Op::Floor
            | Op::Ceil
            | Op::Pow
            | Op::Max
            | Op::Min
            | Op::Size
            | Op::Equal
            | Op::Less
            | Op::LessOrEqual
            | Op::Greater
            | Op::GreaterOrEqual
            | Op::And
            | Op::Or
            | Op::Xor
            | Op::Not
            | Op::Where
            | Op::Expand
            | Op::Tile
            | Op::Slice
            | Op::Range => {}
            Op::MatMul
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Relu
            | Op::Sigmoid
            | Op::Tanh
            | Op::Erf
            | Op::GlobalAveragePool
            | Op::Squeeze
            | Op::Unsqueeze
            | Op::Identity
            | Op::Dropout
            | Op::Silu => {}
        }
        out
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        let attrs = self.attrs();
        if !attrs.is_empty() {
            let parts: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            write!(f, " {{{}}}", parts.join(", "))?;
        }
        Ok(())
    }
}
