//! # pannc IR
//!
//! A network is a [`Graph`]: a dataflow DAG of typed operations ([`Op`]) over tensors.
//! This module doc is the IR's specification.
//!
//! ## Entities
//! - A **node** ([`NodeId`]) is one operation with an ordered list of input values and one or
//!   more output values. Constants (ONNX initializers and `Constant` nodes) are nodes with
//!   no inputs.
//! - A **value** ([`ValueId`]) is an SSA tensor: defined once, either as a graph input or as
//!   output `port` of one node, with a unique name and an optional static [`TensorType`].
//! - Shapes are static except for named symbolic dimensions ([`Dim::Sym`]), in practice the
//!   batch dimension `N`. Element types ([`DType`]) are f32, f64, i64 and bool (masks and
//!   comparison results; `Where` consumes them).
//! - An **opaque node** ([`Op::Opaque`], [`Opaque`]) is an operator pannc keeps without
//!   understanding it: scikit-learn's `ai.onnx.ml` post-processing after the logits
//!   (`ZipMap`, `ArrayFeatureExtractor`, ...), every node computed from it (the `Reshape`/`Cast`
//!   of the label) and the constants only they read when pannc cannot hold them (int32 or
//!   string labels; those are opaque nodes without inputs, op type `Constant`). Together they
//!   form the client-side tail. An opaque node holds the node as the source encoded it plus the
//!   encoded types of outputs the IR cannot express (a sequence of maps), so that a pass can cut
//!   the tail off the network and the exporter can write it back verbatim as a graph of its
//!   own. Its outputs carry their declared tensor types when the model declares them; anything
//!   computed from an opaque value whose type is unknown stays untyped. The interpreter refuses
//!   a graph with opaque nodes, naming one; constant folding leaves them alone.
//!
//! ## Invariants (checked by [`verify`])
//! 1. The graph is acyclic.
//! 2. Every input a node reads exists; every output names that node as its producer.
//! 3. Each op has an input count within [`Op::input_arity`].
//! 4. Value names are unique.
//! 5. Attribute-like tensors that ONNX passes as inputs (reshape shapes, axes, pads, clip
//!    bounds) are inputs here too, in the newest opset's form; attributes are parsed and
//!    validated into the [`Op`] variant at import.
//! 6. A `Split` node has exactly `num_outputs` outputs (the only op whose output count is an
//!    attribute; opaque nodes have what they had in the source).
//!
//! ## Forms (checked by [`verify_form`])
//! A graph passes through named forms, each a promise to the next stage:
//! - **imported**: the invariants above, nothing more (any supported op);
//! - **PANN**: every op on a value computed from the inputs is CKKS-evaluable — Add/Sub/Mul,
//!   MatMul/Gemm/Conv, linear pools and reductions, [`Poly`], data movement with plaintext
//!   indices, shapes and conditions, `Div` by a plaintext divisor, `Pow` by a constant
//!   non-negative integer (see [`verify_form`]); no nonlinearity and no
//!   opaque node is left; simulation and the
//!   CKKS backends take this form;
//! - **lowered**: a PANN with its polynomials written as Mul/Add (no `Poly`), for ONNX runtimes.
//!
//! The compile driver (`pannc-driver`) checks the form at each boundary.
//!
//! ## Boundaries
//! This crate does no I/O and knows nothing of protobuf; petgraph is an implementation
//! detail and appears in no public signature.

pub mod graph;
pub mod op;
pub mod poly;
pub mod print;
pub mod tensor;
pub mod verify;

pub use graph::{Dim, Graph, GraphError, Node, NodeId, Producer, TensorType, Value, ValueId};
pub use op::{AutoPad, Op, Opaque, PadMode, Window};
pub use poly::{Poly, PolyCombine, PolyStage};
pub use print::print;
pub use tensor::{DType, Tensor};
pub use verify::{computed_values, verify, verify_form, Form, VerifyError};

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> (Graph, ValueId, ValueId) {
        let mut g = Graph::new("t", 17);
        let x = g
            .add_input(
                "x",
                Some(TensorType::new(
                    DType::F32,
                    vec![Dim::Sym("N".into()), Dim::Known(4)],
                )),
            )
            .unwrap();
        let w = g
            .add_constant("w", Tensor::from_f32(&[4, 2], vec![1.0; 8]).unwrap())
            .unwrap();
        let y = g.add_simple("mm", Op::MatMul, &[x, w]).unwrap();
        let z = g.add_simple("relu", Op::Relu, &[y]).unwrap();
        g.set_outputs(vec![z]);
        (g, y, z)
    }

    #[test]
    fn build_print_verify() {
        let (g, _, _) = small();
        assert!(verify(&g).is_empty());
        let text = print(&g);
        assert_eq!(
            text,
            "graph \"t\" opset=17\n  in %0: f32[N,4]  # x\n  %1 = Constant f32[4,2] [1, 1, 1, 1, 1, 1, 1, 1]  # w\n  %2 = MatMul(%0, %1) : ?  # mm\n  %3 = Relu(%2) : ?  # relu\n  out %3\n"
        );
    }

    #[test]
    fn rewire_and_remove() {
        let (mut g, y, z) = small();
        let relu = g.producer(z).unwrap();
        assert!(!g.remove_node(relu), "output still used");
        g.replace_all_uses(z, y).unwrap();
        assert!(g.remove_node(relu));
        assert!(verify(&g).is_empty());
        assert_eq!(g.outputs(), &[y]);
        assert!(print(&g).contains("out %2"));
    }

    #[test]
    fn cycle_is_reported() {
        let (mut g, y, z) = small();
        let mm = g.producer(y).unwrap();
        g.set_input(mm, 0, z).unwrap();
        let errs = verify(&g);
        assert!(errs.iter().any(|e| e.message.contains("cycle")), "{errs:?}");
    }

    #[test]
    fn arity_is_checked() {
        let mut g = Graph::new("t", 17);
        let x = g.add_input("x", None).unwrap();
        let y = g.add_simple("bad", Op::Add, &[x]).unwrap();
        g.set_outputs(vec![y]);
        let errs = verify(&g);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().contains("Add takes 2 inputs, has 1"));
    }

    #[test]
    fn forms_name_what_they_forbid() {
        let (g, _, _) = small();
        assert!(verify_form(&g, Form::Imported).is_empty());
        let errs = verify_form(&g, Form::Pann);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].node, "relu");
        assert!(errs[0]
            .message
            .contains("Relu of a computed value is not allowed in PANN form"));
    }

    #[test]
    fn split_output_count_is_checked_and_bools_cast() {
        let mut g = Graph::new("t", 18);
        let x = g.add_input("x", None).unwrap();
        let op = Op::Split {
            axis: 0,
            num_outputs: 3,
        };
        let (_, outs) = g
            .add_node("split", op, &[x], &["a".into(), "b".into()])
            .unwrap();
        g.set_outputs(outs);
        let errs = verify(&g);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].to_string().contains("num_outputs=3 but 2 outputs"));
        let t = Tensor::from_f32(&[3], vec![0.0, -2.5, f32::NAN]).unwrap();
        let b = t.cast(DType::Bool);
        assert_eq!(b.dtype(), DType::Bool);
        assert_eq!(b.to_i64_vec(), [0, 1, 1], "x != 0, NaN is true");
        assert_eq!(b.cast(DType::F64).to_f64_vec(), [0.0, 1.0, 1.0]);
        assert_eq!(Tensor::scalar_of(DType::Bool, 2.0).summary(), "bool[] [1]");
    }

    #[test]
    fn duplicate_names_rejected() {
        let mut g = Graph::new("t", 17);
        g.add_input("x", None).unwrap();
        assert_eq!(
            g.add_input("x", None),
            Err(GraphError::DuplicateName("x".into()))
        );
    }
}
