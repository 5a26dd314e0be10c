//! Fuzz-ish robustness: thousands of deterministic random mutations of real serialized models
//! must import (and, when they import, export) without panicking.

use pannc_ir::{AutoPad, DType, Dim, Graph, Op, PadMode, Tensor, TensorType, Window};

/// xorshift64*: small, deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A small CNN using most supported ops.
fn model_graph(opset: i64) -> Graph {
    let mut g = Graph::new("fuzz", opset);
    let ty = TensorType::new(
        DType::F32,
        vec![
            Dim::Sym("N".into()),
            Dim::Known(2),
            Dim::Known(6),
            Dim::Known(6),
        ],
    );
    let x = g.add_input("x", Some(ty)).unwrap();
    let w = g
        .add_constant(
            "w",
            Tensor::from_f32(&[4, 2, 3, 3], (0..72).map(|i| i as f32 * 0.01).collect()).unwrap(),
        )
        .unwrap();
    let b = g
        .add_constant(
            "b",
            Tensor::from_f32(&[4], vec![0.1, -0.1, 0.2, 0.0]).unwrap(),
        )
        .unwrap();
    let win = Window {
        pads: vec![1, 1, 1, 1],
        ..Default::default()
    };
    let c = g
        .add_simple(
            "conv",
            Op::Conv {
                window: win,
                group: 1,
            },
            &[x, w, b],
        )
        .unwrap();
    let bn: Vec<_> = ["s", "o", "m", "v"]
        .iter()
        .map(|n| {
            g.add_constant(
                *n,
                Tensor::from_f32(&[4], vec![1.0, 0.5, 0.25, 2.0]).unwrap(),
            )
            .unwrap()
        })
        .collect();
    let y = g
        .add_simple(
            "bn",
            Op::BatchNormalization { epsilon: 1e-5 },
            &[c, bn[0], bn[1], bn[2], bn[3]],
        )
        .unwrap();
    let lo = g.add_constant("lo", Tensor::scalar_f32(0.0)).unwrap();
    let hi = g.add_constant("hi", Tensor::scalar_f32(6.0)).unwrap();
    let y = g
        .add_simple(
            "clip",
            Op::Clip {
                has_min: true,
                has_max: true,
            },
            &[y, lo, hi],
        )
        .unwrap();
    let pads = g
        .add_constant(
            "pads",
            Tensor::from_i64(&[8], vec![0, 0, 1, 1, 0, 0, 1, 1]).unwrap(),
        )
        .unwrap();
    let y = g
        .add_simple(
            "pad",
            Op::Pad {
                mode: PadMode::Reflect,
            },
            &[y, pads],
        )
        .unwrap();
    let pw = Window {
        kernel_shape: vec![2, 2],
        strides: vec![2, 2],
        auto_pad: AutoPad::Valid,
        ..Default::default()
    };
    let y = g
        .add_simple("pool", Op::MaxPool { window: pw }, &[y])
        .unwrap();
    let aw = Window {
        kernel_shape: vec![2, 2],
        ..Default::default()
    };
    let y = g
        .add_simple(
            "avg",
            Op::AveragePool {
                window: aw,
                count_include_pad: false,
            },
            &[y],
        )
        .unwrap();
    let axes = g
        .add_constant("axes", Tensor::from_i64(&[1], vec![1]).unwrap())
        .unwrap();
    let m = g
        .add_simple(
            "mean",
            Op::ReduceMean {
                keepdims: true,
                noop_with_empty_axes: false,
            },
            &[y, axes],
        )
        .unwrap();
    let y = g.add_simple("sub", Op::Sub, &[y, m]).unwrap();
    let y = g.add_simple("flat", Op::Flatten { axis: 1 }, &[y]).unwrap();
    let fw = g
        .add_constant(
            "fw",
            Tensor::from_f32(&[16, 3], (0..48).map(|i| (i % 7) as f32).collect()).unwrap(),
        )
        .unwrap();
    let fb = g
        .add_constant("fb", Tensor::from_f32(&[3], vec![0.5, 0.0, -0.5]).unwrap())
        .unwrap();
    let y = g
        .add_simple(
            "fc",
            Op::Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: false,
                trans_b: false,
            },
            &[y, fw, fb],
        )
        .unwrap();
    let ax0 = g
        .add_constant("ax0", Tensor::from_i64(&[1], vec![0]).unwrap())
        .unwrap();
    let u = g.add_simple("unsq", Op::Unsqueeze, &[y, ax0]).unwrap();
    let u = g.add_simple("sq", Op::Squeeze, &[u, ax0]).unwrap();
    let t = g
        .add_simple("tr", Op::Transpose { perm: vec![1, 0] }, &[u])
        .unwrap();
    let t = g
        .add_simple("tr2", Op::Transpose { perm: vec![1, 0] }, &[t])
        .unwrap();
    let cat = g
        .add_simple("cat", Op::Concat { axis: 1 }, &[y, t])
        .unwrap();
    let shape = g
        .add_simple(
            "shape",
            Op::Shape {
                start: 0,
                end: None,
            },
            &[cat],
        )
        .unwrap();
    let y = g
        .add_simple("reshape", Op::Reshape { allowzero: false }, &[cat, shape])
        .unwrap();
    let y = g
        .add_simple("leaky", Op::LeakyRelu { alpha: 0.1 }, &[y])
        .unwrap();
    let y = g.add_simple("sig", Op::Sigmoid, &[y]).unwrap();
    let y = g.add_simple("sm", Op::Softmax { axis: 1 }, &[y]).unwrap();
    g.value_mut(y).ty = Some(TensorType::new(
        DType::F32,
        vec![Dim::Sym("N".into()), Dim::Known(6)],
    ));
    g.set_outputs(vec![y]);
    assert!(pannc_ir::verify(&g).is_empty());
    g
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        if v.is_empty() {
            break;
        }
        let i = rng.below(v.len());
        match rng.below(7) {
            0 => v[i] ^= 1 << rng.below(8),
            1 => v[i] = rng.next() as u8,
            2 => v[i] = [0x00, 0x01, 0x7f, 0x80, 0xff][rng.below(5)],
            3 => v.truncate(i),
            4 => {
                let n = rng.below(16).min(v.len() - i);
                v.drain(i..i + n);
            }
            5 => {
                let n = rng.below(8);
                for _ in 0..n {
                    v.insert(i, rng.next() as u8);
                }
            }
            _ => {
                let n = rng.below(32).min(v.len() - i);
                let chunk: Vec<u8> = v[i..i + n].to_vec();
                let j = rng.below(v.len());
                v.splice(j..j, chunk);
            }
        }
    }
    v
}

#[test]
fn random_mutations_never_panic() {
    let mut bases = Vec::new();
    for opset in [9, 13, 17] {
        let g = model_graph(13);
        let mut m = pannc_onnx::Model::from_graph(g);
        m.graph.opset = 13;
        let bytes = pannc_onnx::export_with_opset(&m, opset).unwrap();
        let back = pannc_onnx::import(&bytes).unwrap();
        assert_eq!(back.graph.opset, opset);
        bases.push(bytes);
    }
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (mut ok, mut errs) = (
        0usize,
        std::collections::BTreeMap::<&'static str, usize>::new(),
    );
    for iter in 0..6000 {
        let base = &bases[iter % bases.len()];
        let bytes = mutate(&mut rng, base);
        match pannc_onnx::import(&bytes) {
            Ok(m) => {
                ok += 1;
                let _ = pannc_onnx::export(&m);
                let _ = pannc_onnx::op_histogram(&bytes);
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                *errs.entry(e.kind()).or_default() += 1;
            }
        }
        let _ = pannc_onnx::read_tensor(&bytes);
    }
    eprintln!("6000 mutations: {ok} imported, errors by kind {errs:?}");
    assert!(
        errs.len() >= 3,
        "mutations should reach several error kinds: {errs:?}"
    );
}
