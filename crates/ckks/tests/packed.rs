//! The packed lowering (`pannc_ckks::lower::packed`, `emit_packed`): every linear op lowered
//! to generalised diagonals computes what the IR interpreter computes — random weights, odd
//! sizes, strides, padding, groups (depthwise too), dilation, auto_pad, tensors spanning
//! several ciphertexts, Gemm after GlobalAveragePool/Flatten, AveragePool, BatchNormalization,
//! composed chains, residual blocks with multiplexed layouts — unsupported ops are one-line
//! errors naming the node, and emission is deterministic.
//!
//! Each test checks the emitted program itself (its plaintext outputs on fresh random inputs
//! against `pannc_interp::run` in f64), independently of the checks `emit_packed` runs before
//! returning.

use pannc_ckks::fhe::packed::{self, eval::Evaluator, OpKind};
use pannc_ckks::lower::packed::{lower, PackedOptions};
use pannc_ckks::{emit_packed, PackedEmitOptions, PackedEmitted, Security};
use pannc_interp::{Precision, RunOptions};
use pannc_ir::{
    AutoPad, DType, Dim, Graph, Op, Poly, PolyCombine, PolyStage, Tensor, TensorType, ValueId,
    Window,
};

struct Rng(u64);
impl Rng {
    fn unif(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
    fn tensor(&mut self, shape: &[usize], scale: f64) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_f64(shape, (0..n).map(|_| scale * self.unif()).collect())
            .unwrap()
            .cast(DType::F32)
    }
}

/// A graph under construction with a batch-first input.
struct G {
    g: Graph,
    rng: Rng,
    k: usize,
}

impl G {
    fn new(input: &[usize], seed: u64) -> (G, ValueId) {
        let mut g = Graph::new("t", 17);
        let mut shape = vec![Dim::Sym("N".into())];
        shape.extend(input.iter().map(|&d| Dim::Known(d)));
        let x = g
            .add_input("x", Some(TensorType::new(DType::F32, shape)))
            .unwrap();
        (
            G {
                g,
                rng: Rng(seed),
                k: 0,
            },
            x,
        )
    }
    fn name(&mut self, p: &str) -> String {
        self.k += 1;
        format!("{p}{}", self.k)
    }
    fn constant(&mut self, shape: &[usize], scale: f64) -> ValueId {
        let t = self.rng.tensor(shape, scale);
        let n = self.name("c");
        self.g.add_constant(n, t).unwrap()
    }
    fn op(&mut self, op: Op, ins: &[ValueId]) -> ValueId {
        let n = self.name(op.name());
        self.g.add_simple(n, op, ins).unwrap()
    }
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        x: ValueId,
        cin: usize,
        cout: usize,
        k: [usize; 2],
        strides: &[usize],
        pads: &[usize],
        dil: &[usize],
        group: usize,
        bias: bool,
    ) -> ValueId {
        let w = self.constant(&[cout, cin / group, k[0], k[1]], 0.5);
        let mut ins = vec![x, w];
        if bias {
            ins.push(self.constant(&[cout], 0.3));
        }
        let window = Window {
            strides: strides.to_vec(),
            pads: pads.to_vec(),
            dilations: dil.to_vec(),
            ..Window::default()
        };
        self.op(Op::Conv { window, group }, &ins)
    }
    fn relu(&mut self, x: ValueId, out_scale: f64, slope: f64) -> ValueId {
        let coeffs = pannc_ckks::fhe::chebyshev_interpolant(|u| (3.0 * u).tanh(), 7);
        let p = Poly {
            function: "relu".into(),
            in_scale: 0.25,
            out_scale,
            stages: vec![PolyStage {
                lo: -1.0,
                hi: 1.0,
                coeffs,
            }],
            combine: if slope == 0.0 {
                PolyCombine::Relu
            } else {
                PolyCombine::LeakyRelu { slope }
            },
        };
        self.op(Op::Poly(Box::new(p)), &[x])
    }
    fn finish(mut self, outs: &[ValueId]) -> Graph {
        self.g.set_outputs(outs.to_vec());
        pannc_interp::infer_types(&mut self.g).unwrap();
        self.g
    }
}

fn calib(g: &Graph, n: usize, seed: u64) -> Vec<Tensor> {
    let mut rng = Rng(seed);
    g.inputs()
        .iter()
        .map(|&v| {
            let ty = g.value(v).ty.as_ref().unwrap();
            let mut shape = vec![n];
            for d in &ty.shape[1..] {
                shape.push(match d {
                    Dim::Known(k) => *k,
                    Dim::Sym(_) => 1,
                });
            }
            rng.tensor(&shape, 1.0)
        })
        .collect()
}

fn emit(g: &Graph, slots: Option<usize>, max_level: Option<u32>) -> PackedEmitted {
    let opts = PackedEmitOptions {
        lower: PackedOptions {
            slots,
            ..Default::default()
        },
        max_level,
        security: Security::Insecure,
        check_samples: 4,
        ..Default::default()
    };
    emit_packed(g, &calib(g, 4, 11), &opts).unwrap_or_else(|e| panic!("{e}"))
}

/// The program's plaintext outputs on fresh inputs against the f64 interpreter.
fn assert_matches_interpreter(g: &Graph, e: &PackedEmitted) {
    let xs = calib(g, 3, 99);
    let want = pannc_interp::run(
        g,
        &xs,
        &RunOptions {
            precision: Precision::F64,
            ..RunOptions::default()
        },
    )
    .unwrap();
    let ev = Evaluator::new(&e.program, &e.weights).unwrap();
    for k in 0..3 {
        let per: Vec<Vec<f64>> = xs
            .iter()
            .map(|t| {
                let v = t.to_f64_vec();
                let m = v.len() / 3;
                v[k * m..(k + 1) * m].to_vec()
            })
            .collect();
        let refs: Vec<&[f64]> = per.iter().map(|v| v.as_slice()).collect();
        let got = ev.outputs(&refs).unwrap();
        for (o, w) in got.iter().zip(&want) {
            let w = w.to_f64_vec();
            let m = w.len() / 3;
            let w = &w[k * m..(k + 1) * m];
            let scale = w.iter().fold(1e-3f64, |a, x| a.max(x.abs()));
            for (a, b) in o.iter().zip(w) {
                assert!((a - b).abs() <= 1e-9 * scale, "sample {k}: {a} vs {b}");
            }
        }
    }
    packed::validate(&e.program, &e.weights).unwrap();
}

fn linears(e: &PackedEmitted) -> Vec<usize> {
    e.program
        .ops
        .iter()
        .filter_map(|o| match o.kind {
            OpKind::Linear { diagonals, .. } => Some(diagonals),
            _ => None,
        })
        .collect()
}

#[test]
fn conv_odd_sizes_padding_bias_is_one_linear_op() {
    let (mut b, x) = G::new(&[3, 5, 7], 1);
    let y = b.conv(x, 3, 5, [3, 3], &[], &[1, 1, 1, 1], &[], 1, true);
    let g = b.finish(&[y]);
    let e = emit(&g, None, None);
    assert_eq!(linears(&e).len(), 1);
    assert_eq!(e.program.slots, 256); // 5·5·7 = 175
    assert_matches_interpreter(&g, &e);
}

#[test]
fn design_note_conv_has_135_diagonals() {
    // 3×3 conv 8→8 on 28×28, compact at S = 8192: offsets (ci−co)·784 + dh·28 + dw.
    let (mut b, x) = G::new(&[8, 28, 28], 2);
    let y = b.conv(x, 8, 8, [3, 3], &[], &[1, 1, 1, 1], &[], 1, false);
    let g = b.finish(&[y]);
    let e = emit(&g, None, None);
    assert_eq!(linears(&e), vec![135]);
    assert_matches_interpreter(&g, &e);
}

#[test]
fn strides_asymmetric_pads_dilation_groups_depthwise() {
    let (mut b, x) = G::new(&[4, 9, 7], 3);
    let a = b.conv(x, 4, 6, [3, 2], &[2, 1], &[0, 1, 1, 0], &[2, 1], 2, true);
    let d = b.conv(a, 6, 6, [3, 3], &[1, 2], &[1, 1, 1, 1], &[], 6, false); // depthwise
    let g = b.finish(&[d]);
    let e = emit(&g, None, None);
    assert_eq!(linears(&e).len(), 1, "two convs compose into one linear op");
    assert_matches_interpreter(&g, &e);
    // auto_pad SAME_UPPER / SAME_LOWER with stride 2.
    for ap in [AutoPad::SameUpper, AutoPad::SameLower] {
        let (mut b, x) = G::new(&[2, 6, 5], 4);
        let w = b.constant(&[3, 2, 2, 3], 0.5);
        let window = Window {
            strides: vec![2, 2],
            auto_pad: ap,
            ..Window::default()
        };
        let y = b.op(Op::Conv { window, group: 1 }, &[x, w]);
        let g = b.finish(&[y]);
        assert_matches_interpreter(&g, &emit(&g, None, None));
    }
}

#[test]
fn tensors_spanning_several_ciphertexts() {
    // 3×5×7 = 105 elements at S = 32: 4 ciphertexts in, 5×5×7 = 175 out: 6 ciphertexts.
    let (mut b, x) = G::new(&[3, 5, 7], 5);
    let a = b.conv(x, 3, 5, [3, 3], &[], &[1, 1, 1, 1], &[], 1, true);
    let r = b.relu(a, 2.0, 0.0);
    let c = b.conv(r, 5, 4, [3, 3], &[2, 2], &[1, 1, 1, 1], &[], 1, true);
    let r2 = b.relu(c, 1.5, 0.0);
    let gp = b.op(Op::GlobalAveragePool, &[r2]);
    let f = b.op(Op::Flatten { axis: 1 }, &[gp]);
    let w = b.constant(&[3, 4], 0.5);
    let bias = b.constant(&[3], 0.5);
    let y = b.op(
        Op::Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: true,
        },
        &[f, w, bias],
    );
    let g = b.finish(&[y]);
    let e = emit(&g, Some(32), None);
    let cts: Vec<usize> = e.program.values.iter().map(|v| v.ciphertexts).collect();
    assert_eq!(cts[0], 4);
    assert!(cts.contains(&6), "{cts:?}");
    assert_matches_interpreter(&g, &e);
    // With bootstraps under a small budget (multi-ciphertext values refreshed whole).
    let e = emit(&g, Some(32), Some(5));
    assert!(e.program.stats.bootstraps > 0);
    assert_matches_interpreter(&g, &e);
}

#[test]
fn gemm_after_global_average_pool_and_flatten_avgpool_and_batchnorm() {
    let (mut b, x) = G::new(&[3, 6, 6], 6);
    let a = b.conv(x, 3, 4, [3, 3], &[], &[1, 1, 1, 1], &[], 1, false);
    let (s, bb, m) = (
        b.constant(&[4], 0.5),
        b.constant(&[4], 0.5),
        b.constant(&[4], 0.5),
    );
    let v = {
        let t = Tensor::from_f64(&[4], vec![0.5, 1.0, 2.0, 0.25])
            .unwrap()
            .cast(DType::F32);
        b.g.add_constant("var", t).unwrap()
    };
    let bn = b.op(Op::BatchNormalization { epsilon: 1e-5 }, &[a, s, bb, m, v]);
    let r = b.relu(bn, 3.0, 0.0);
    let ap = b.op(
        Op::AveragePool {
            window: Window {
                kernel_shape: vec![3, 3],
                strides: vec![2, 2],
                pads: vec![1, 1, 1, 1],
                ceil_mode: true,
                ..Window::default()
            },
            count_include_pad: false,
        },
        &[r],
    );
    let r2 = b.relu(ap, 1.0, 0.0);
    let ap2 = b.op(
        Op::AveragePool {
            window: Window {
                kernel_shape: vec![2, 2],
                strides: vec![1, 1],
                pads: vec![0, 0, 1, 1],
                ..Window::default()
            },
            count_include_pad: true,
        },
        &[r2],
    );
    let r3 = b.relu(ap2, 1.0, 0.0);
    let gp = b.op(Op::GlobalAveragePool, &[r3]);
    let f = b.op(Op::Flatten { axis: 1 }, &[gp]);
    let w = b.constant(&[4, 5], 0.5);
    let y = b.op(Op::MatMul, &[f, w]);
    let c = b.constant(&[5], 0.2);
    let y = b.op(Op::Add, &[y, c]);
    let g = b.finish(&[y]);
    let e = emit(&g, None, None);
    // The pool of a one-ciphertext value is summed by rotations (no level).
    let rotates = e
        .program
        .ops
        .iter()
        .filter(|o| matches!(o.kind, OpKind::Rotate { .. }))
        .count();
    assert!(rotates > 0);
    assert_matches_interpreter(&g, &e);
}

#[test]
fn composed_chain_with_constants_costs_one_level() {
    let (mut b, x) = G::new(&[2, 5, 5], 7);
    let a = b.conv(x, 2, 3, [3, 3], &[], &[1, 1, 1, 1], &[], 1, true);
    let c = b.constant(&[3, 1, 1], 1.0);
    let a = b.op(Op::Mul, &[a, c]);
    let c2 = b.constant(&[1, 5], 1.0);
    let a = b.op(Op::Sub, &[a, c2]);
    let c3 = b.constant(&[], 1.0);
    let a = b.op(Op::Div, &[a, c3]);
    let a = b.conv(a, 3, 3, [1, 1], &[], &[], &[], 1, true);
    let perm = Op::Transpose {
        perm: vec![0, 1, 3, 2],
    };
    let t = b.op(perm, &[a]);
    let cat = b.op(Op::Concat { axis: 2 }, &[t, a]);
    let g = b.finish(&[cat]);
    let e = emit(&g, None, None);
    assert_eq!(e.program.depth, 1, "a chain of linear nodes is one level");
    assert_matches_interpreter(&g, &e);
}

/// A residual block: stride-2 conv, a 1×1 stride-2 shortcut, an identity skip, LeakyReLU:
/// multiplexed layouts are chosen and the branches meet in one layout.
#[test]
fn residual_blocks_use_multiplexed_layouts() {
    let (mut b, x) = G::new(&[1, 12, 12], 8);
    let s = b.conv(x, 1, 4, [3, 3], &[], &[1, 1, 1, 1], &[], 1, true);
    let s = b.relu(s, 2.0, 0.0);
    let a = b.conv(s, 4, 8, [3, 3], &[2, 2], &[1, 1, 1, 1], &[], 1, true);
    let a = b.relu(a, 1.5, 0.0);
    let a = b.conv(a, 8, 8, [3, 3], &[], &[1, 1, 1, 1], &[], 1, true);
    let sc = b.conv(s, 4, 8, [1, 1], &[2, 2], &[], &[], 1, true);
    let sum = b.op(Op::Add, &[a, sc]);
    let x2 = b.relu(sum, 3.0, 0.1);
    let c = b.conv(x2, 8, 8, [3, 3], &[], &[1, 1, 1, 1], &[], 1, true);
    let c = b.relu(c, 1.0, 0.0);
    let c = b.conv(c, 8, 8, [3, 3], &[], &[1, 1, 1, 1], &[], 1, true);
    let sum2 = b.op(Op::Add, &[c, x2]);
    let y = b.relu(sum2, 2.0, 0.0);
    let gp = b.op(Op::GlobalAveragePool, &[y]);
    let f = b.op(Op::Flatten { axis: 1 }, &[gp]);
    let w = b.constant(&[10, 8], 0.5);
    let out = b.op(
        Op::Gemm {
            alpha: 0.5,
            beta: 1.0,
            trans_a: false,
            trans_b: true,
        },
        &[f, w],
    );
    let g = b.finish(&[out]);
    let e = emit(&g, None, None);
    assert!(
        e.program.values.iter().any(|v| v.layout.is_some()),
        "a stride-2 conv keeps the pixel grid"
    );
    assert_matches_interpreter(&g, &e);
    // Under a level budget: bootstraps, still the same numbers.
    let e = emit(&g, None, Some(8));
    assert!(e.program.stats.bootstraps >= 1);
    assert!(e.placement.as_ref().unwrap().exact);
    assert_matches_interpreter(&g, &e);
}

#[test]
fn unsupported_ops_are_one_line_errors_naming_the_node() {
    let cases: Vec<(Op, &str)> = vec![
        (Op::Softmax { axis: 1 }, "compile the graph"),
        (
            Op::MaxPool {
                window: Window {
                    kernel_shape: vec![2, 2],
                    ..Window::default()
                },
            },
            "compile the graph",
        ),
        (Op::Cast { to: DType::F64 }, "supported:"),
    ];
    for (op, msg) in cases {
        let (mut b, x) = G::new(&[2, 4, 4], 9);
        let a = b.conv(x, 2, 2, [3, 3], &[], &[1, 1, 1, 1], &[], 1, false);
        let y = b.g.add_simple("the_node", op, &[a]).unwrap();
        let g = b.finish(&[y]);
        let err = lower(&g, &PackedOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("'the_node'") && err.contains(msg), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
    // Product of two activations.
    let (mut b, x) = G::new(&[2, 4, 4], 10);
    let y = b.g.add_simple("sq", Op::Mul, &[x, x]).unwrap();
    let g = b.finish(&[y]);
    let err = lower(&g, &PackedOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'sq'") && err.contains("two activations"),
        "{err}"
    );
}

#[test]
fn emission_is_deterministic() {
    let (mut b, x) = G::new(&[1, 8, 8], 12);
    let a = b.conv(x, 1, 4, [3, 3], &[2, 2], &[1, 1, 1, 1], &[], 1, true);
    let r = b.relu(a, 2.0, 0.0);
    let c = b.conv(r, 4, 4, [3, 3], &[], &[1, 1, 1, 1], &[], 1, true);
    let r2 = b.relu(c, 2.0, 0.0);
    let gp = b.op(Op::GlobalAveragePool, &[r2]);
    let g = b.finish(&[gp]);
    let e1 = emit(&g, None, Some(6));
    let e2 = emit(&g, None, Some(6));
    assert_eq!(e1.json, e2.json);
    let dir = std::env::temp_dir().join(format!("pannc_det_{}", std::process::id()));
    packed::write_dir(&dir.join("a"), &e1.program, &e1.weights).unwrap();
    packed::write_dir(&dir.join("b"), &e2.program, &e2.weights).unwrap();
    for f in ["program.json", "weights.npz"] {
        assert_eq!(
            std::fs::read(dir.join("a").join(f)).unwrap(),
            std::fs::read(dir.join("b").join(f)).unwrap(),
            "{f}"
        );
    }
    let (p, w) = packed::read_dir(&dir.join("a")).unwrap();
    assert_eq!((p, w), (e1.program.clone(), e1.weights.clone()));
    std::fs::remove_dir_all(&dir).ok();
}

/// The difference of two computed tensors (max-pool trees: `b + ReLU(a − b)`) costs no level:
/// the negated term is a `mul_const` by −1.
#[test]
fn difference_of_activations_is_a_free_integer_mul_const() {
    let (mut b, x) = G::new(&[2, 5, 5], 13);
    let a = b.conv(x, 2, 3, [3, 3], &[], &[1, 1, 1, 1], &[], 1, true);
    let r1 = b.relu(a, 2.0, 0.0);
    let c = b.conv(x, 2, 3, [1, 1], &[], &[], &[], 1, false);
    let r2 = b.relu(c, 3.0, 0.0);
    let d = b.op(Op::Sub, &[r1, r2]);
    let y = b.relu(d, 1.0, 0.0);
    let mut g = b.finish(&[y]);
    // Range control leaves in_scale = 1 (the interval's map is folded upstream).
    let id = g.producer(y).unwrap();
    if let Op::Poly(p) = g.op_mut(id) {
        p.in_scale = 1.0;
    }
    let e = emit(&g, None, None);
    let p = &e.program;
    assert!(p
        .ops
        .iter()
        .any(|o| matches!(o.kind, OpKind::MulConst { c, .. } if c == -1.0)));
    // linear 1 + ReLU (degree 7: 3 + 1) = 5 on both branches, joined at 5, ReLU again: 9.
    assert_eq!(p.depth, 9);
    assert_matches_interpreter(&g, &e);
}
