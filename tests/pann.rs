//! The PANN pipeline end to end on the trained fixtures: the emitted ONNX has no
//! nonlinearity left, passes the ONNX checker, runs in onnxruntime with pannc's own PANN
//! simulation's outputs, and keeps accuracy; errors name what cannot be compiled.

mod common;

use common::*;
use pannc_driver as pann;
use pannc_passes::Policy;
use std::path::Path;

const NONLINEAR: [&str; 9] = [
    "Relu",
    "LeakyRelu",
    "Clip",
    "MaxPool",
    "Sigmoid",
    "Tanh",
    "Erf",
    "Gelu",
    "Softmax",
];

fn compiled(name: &str, alpha: u32) -> (pannc_onnx::Model, pannc_ir::Graph, pannc_passes::Report) {
    let dir = fixture(name);
    let m = load(&dir.join("model.onnx"));
    let calib = pannc::npy::read(&dir.join("calib_x.npy")).unwrap();
    let mut g = m.graph.clone();
    let report = pann::compile(
        &mut g,
        vec![calib],
        Policy {
            alpha,
            ..Default::default()
        },
    )
    .unwrap();
    (m, g, report)
}

#[test]
fn emitted_onnx_runs_in_onnxruntime_like_the_simulation() {
    let Some(py) = python("emitted_onnx_runs_in_onnxruntime_like_the_simulation") else {
        return;
    };
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pann-emit");
    std::fs::create_dir_all(&tmp).unwrap();
    for name in FIXTURES {
        let (model, g, report) = compiled(name, 9);
        let lowered = pann::lowered(&g).unwrap();
        assert!(pannc_ir::verify(&lowered).is_empty());
        let mut m = model.clone();
        m.graph = lowered;
        let bytes = pannc_onnx::export(&m).unwrap();
        let path = tmp.join(format!("{name}.onnx"));
        std::fs::write(&path, &bytes).unwrap();
        // No nonlinearity survives (checked on the ONNX file itself).
        let hist = pannc_onnx::op_histogram(&bytes).unwrap();
        for (op, _) in &hist {
            assert!(
                !NONLINEAR.contains(&op.as_str()),
                "{name}: emitted ONNX still has {op}: {hist:?}"
            );
        }
        assert_eq!(ort(&py, &["check", path.to_str().unwrap()]).trim(), "ok");
        let x_path = fixture(name).join("test_x.npy");
        let got = &ort_outputs(&py, &path, &[&x_path], &format!("pann-{name}"))[0];
        let x = pannc::npy::read(&x_path).unwrap();
        let sim = pann::simulate(&g, &[x], 500).unwrap();
        // Outside its interval a polynomial is garbage (values in the thousands), where f32
        // rounding differences between two evaluators are amplified: compare the samples that
        // stayed in range, and require those to be nearly all.
        let n = got.shape()[0];
        let k = got.len() / n;
        let (a, b) = (got.to_f64_vec(), sim.outputs[0].to_f64_vec());
        let mut d: f64 = 0.0;
        for i in (0..n).filter(|&i| !sim.sample_outside[i]) {
            for j in i * k..(i + 1) * k {
                d = d.max((a[j] - b[j]).abs());
            }
        }
        let outside = sim.sample_outside.iter().filter(|&&o| o).count();
        eprintln!("{name}: max |onnxruntime − simulation| = {d:.2e} over {} samples ({outside} left an interval)", n - outside);
        assert!(
            d <= 1e-4,
            "{name}: onnxruntime on the emitted PANN differs from pannc's simulation by {d}"
        );
        assert!(
            outside * 100 <= n,
            "{name}: {outside} of {n} samples left an interval"
        );
        assert_eq!(sim.out_of_range.len(), report.activations.len());
    }
}

/// At α = 12 every fixture stays within 0.5 points of its backbone (on its test subset).
#[test]
fn alpha_12_keeps_accuracy_within_half_a_point() {
    for name in FIXTURES {
        let (m, g, _) = compiled(name, 12);
        let x = pannc::npy::read(&fixture(name).join("test_x.npy")).unwrap();
        let y = pannc::npy::read(&fixture(name).join("test_y.npy"))
            .unwrap()
            .to_i64_vec();
        let backbone = pann::simulate(&m.graph, std::slice::from_ref(&x), 500)
            .unwrap()
            .outputs;
        let p = pann::simulate(&g, &[x], 500).unwrap().outputs;
        let (b, a) = (pann::top1(&backbone[0], &y), pann::top1(&p[0], &y));
        eprintln!("{name}: backbone {b:.4}, PANN α=12 {a:.4}");
        assert!(
            b - a <= 0.005,
            "{name}: PANN at α=12 loses {:.2} points",
            100.0 * (b - a)
        );
    }
}

#[test]
fn range_control_costs_no_level_on_the_residual_fixture() {
    let (_, g, report) = compiled("resnet_fmnist", 9);
    assert_eq!(report.range_control_levels, 0);
    // Independently of the report: every polynomial reads its input unscaled.
    for id in g.node_ids() {
        if let pannc_ir::Op::Poly(p) = &g.node(id).op {
            assert_eq!(p.in_scale, 1.0, "{}", g.node(id).name);
        }
    }
    // And the report's depth is the composite ReLU's: sign depth + 1 = 9 at α = 9.
    assert!(
        report.activations.iter().all(|a| a.depth == 9),
        "{:?}",
        report
            .activations
            .iter()
            .map(|a| a.depth)
            .collect::<Vec<_>>()
    );
}

#[test]
fn unapproximable_ops_are_named() {
    let dir = root().join("fixtures/unapproximable");
    let calib = pannc::npy::read(&dir.join("calib_x.npy")).unwrap();
    let mut g = load(&dir.join("erf_mlp.onnx")).graph;
    let err = pann::compile(&mut g, vec![calib.clone()], Policy::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("lonely_erf") && err.contains("Erf"), "{err}");
    // A Softmax inside the network is decomposed (exp, normalised squarings, reciprocal),
    // leaving a graph in PANN form (checked by the driver).
    let mut g = load(&dir.join("softmax_mlp.onnx")).graph;
    let report = pann::compile(&mut g, vec![calib], Policy::default()).unwrap();
    assert!(report
        .activations
        .iter()
        .any(|a| a.node == "inner_softmax.reciprocal"));
    // An attention mask given at run time: refused in one line naming the softmax.
    let x = pannc::npy::read(&dir.join("masked_attention_calib.npy")).unwrap();
    let mask = pannc_ir::Tensor::from_f64(&[8, 4, 4], vec![0.0; 128]).unwrap();
    let mut g = load(&dir.join("masked_attention.onnx")).graph;
    let err = pann::compile(&mut g, vec![x, mask], Policy::default())
        .unwrap_err()
        .to_string();
    assert!(!err.contains('\n'), "{err}");
    assert!(
        err.contains("masked_softmax") && err.contains("Softmax") && err.contains("'mask'"),
        "{err}"
    );
}

/// Interval analysis is sound: with the declared input range covering the calibration data,
/// every calibrated activation range lies inside its interval bound.
#[test]
fn interval_bounds_contain_calibrated_ranges() {
    for name in FIXTURES {
        let dir = fixture(name);
        let mut g = load(&dir.join("model.onnx")).graph;
        let calib = pannc::npy::read(&dir.join("calib_x.npy")).unwrap();
        let v = calib.to_f64_vec();
        let range = (
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
        let policy = Policy {
            input_range: Some(range),
            ..Default::default()
        };
        let report = pann::compile(&mut g, vec![calib], policy).unwrap();
        for a in &report.activations {
            let (c, i) = (a.calibrated.unwrap(), a.interval.unwrap());
            assert!(
                i[0] <= c[0] && c[1] <= i[1],
                "{name}/{}: calibrated {c:?} outside interval {i:?}",
                a.node
            );
        }
    }
}

/// A small conv net with the activation `act` (given its input, returns its output).
fn conv_net(
    act: impl Fn(&mut pannc_ir::Graph, pannc_ir::ValueId) -> pannc_ir::ValueId,
) -> pannc_ir::Graph {
    use pannc_ir::{DType, Dim, Graph, Op, Tensor, TensorType, Window};
    let mut seed = 7u64;
    let mut rnd = |n: usize, scale: f32| -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
            })
            .collect()
    };
    let mut g = Graph::new("relu6_net", 17);
    let shape = vec![
        Dim::Sym("N".into()),
        Dim::Known(3),
        Dim::Known(6),
        Dim::Known(6),
    ];
    let x = g
        .add_input("x", Some(TensorType::new(DType::F32, shape)))
        .unwrap();
    let w1 = g
        .add_constant(
            "w1",
            Tensor::from_f32(&[4, 3, 3, 3], rnd(108, 1.5)).unwrap(),
        )
        .unwrap();
    let b1 = g
        .add_constant("b1", Tensor::from_f32(&[4], rnd(4, 2.0)).unwrap())
        .unwrap();
    let pad = Window {
        pads: vec![1, 1, 1, 1],
        ..Window::default()
    };
    let c1 = g
        .add_simple(
            "conv1",
            Op::Conv {
                window: pad,
                group: 1,
            },
            &[x, w1, b1],
        )
        .unwrap();
    let a = act(&mut g, c1);
    let w2 = g
        .add_constant("w2", Tensor::from_f32(&[2, 4, 1, 1], rnd(8, 1.0)).unwrap())
        .unwrap();
    let c2 = g
        .add_simple(
            "conv2",
            Op::Conv {
                window: Window::default(),
                group: 1,
            },
            &[a, w2],
        )
        .unwrap();
    let p = g.add_simple("gap", Op::GlobalAveragePool, &[c2]).unwrap();
    let y = g.add_simple("flat", Op::Flatten { axis: 1 }, &[p]).unwrap();
    g.set_outputs(vec![y]);
    pannc_interp::infer_types(&mut g).unwrap();
    g
}

/// ReLU6 (Clip 0..6) at α is two ReLU approximations side by side on one interval: the levels
/// of one ReLU at α, both scalings folded, and the simulation close to the backbone.
#[test]
fn relu6_costs_the_levels_of_one_relu() {
    use pannc_ir::{Op, Tensor};
    let relu = conv_net(|g, v| g.add_simple("act", Op::Relu, &[v]).unwrap());
    let relu6 = conv_net(|g, v| {
        let lo = g.add_constant("lo", Tensor::scalar_f32(0.0)).unwrap();
        let hi = g.add_constant("hi", Tensor::scalar_f32(6.0)).unwrap();
        let clip = Op::Clip {
            has_min: true,
            has_max: true,
        };
        g.add_simple("act", clip, &[v, lo, hi]).unwrap()
    });
    // Inputs whose activations cross both kinks (conv1 outputs reach beyond 6).
    let calib = uniform_images(64, 3, 6.0);
    for alpha in [7, 9] {
        let policy = Policy {
            alpha,
            ..Default::default()
        };
        let mut g_relu = relu.clone();
        let r = pann::compile(&mut g_relu, vec![calib.clone()], policy.clone()).unwrap();
        let mut g6 = relu6.clone();
        let r6 = pann::compile(&mut g6, vec![calib.clone()], policy).unwrap();
        let (a, a6) = (&r.activations[0], &r6.activations[0]);
        let cal = a6.calibrated.unwrap();
        assert!(
            cal[1] > 6.0 && cal[0] < 0.0,
            "data must cross both kinks: {cal:?}"
        );
        assert_eq!(a6.depth, a.depth, "α={alpha}: ReLU6 depth");
        assert_eq!(r6.levels, r.levels, "α={alpha}: network levels");
        assert_eq!(a6.polys.len(), 2);
        assert!(a6.scale_folded && r6.range_control_levels == 0, "{a6:?}");
        // Both polynomials are the ReLU composite at α.
        assert_eq!(a6.degrees, a.degrees);
        // The PANN follows the backbone: error within the measured activation error, times
        // the weight magnitudes of the tail (small here).
        let want = pann::simulate(&relu6, std::slice::from_ref(&calib), 64)
            .unwrap()
            .outputs;
        let got = pann::simulate(&g6, std::slice::from_ref(&calib), 64)
            .unwrap()
            .outputs;
        let dev = max_abs_deviation(&want[0], &got[0]);
        assert!(
            dev.is_finite() && dev < 4.0 * a6.max_error,
            "α={alpha}: deviation {dev} vs max error {}",
            a6.max_error
        );
        assert!(
            a6.max_error < 3.0 * a6.bound * 2f64.powi(-(alpha as i32)),
            "{a6:?}"
        );
    }
    // One-sided: min(x, 2) = x − ReLU(x − 2), one sign evaluation.
    let capped = conv_net(|g, v| {
        let hi = g.add_constant("hi", Tensor::scalar_f32(2.0)).unwrap();
        let clip = Op::Clip {
            has_min: false,
            has_max: true,
        };
        g.add_simple("act", clip, &[v, hi]).unwrap()
    });
    let mut g = capped.clone();
    let r = pann::compile(&mut g, vec![calib.clone()], Policy::default()).unwrap();
    let mut g_relu = relu.clone();
    let r_relu = pann::compile(&mut g_relu, vec![calib.clone()], Policy::default()).unwrap();
    assert_eq!(r.levels, r_relu.levels);
    assert_eq!(r.activations[0].polys.len(), 1);
    let want = pann::simulate(&capped, std::slice::from_ref(&calib), 64)
        .unwrap()
        .outputs;
    let got = pann::simulate(&g, std::slice::from_ref(&calib), 64)
        .unwrap()
        .outputs;
    let dev = want[0]
        .to_f64_vec()
        .iter()
        .zip(got[0].to_f64_vec())
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max);
    assert!(dev < 4.0 * r.activations[0].max_error, "capped: {dev}");
}

/// HardSigmoid is two ReLUs side by side and a scaling (the levels of one ReLU); HardSwish
/// multiplies that by its input (one level more). Both scalings fold; the PANN follows the
/// backbone within the measured activation error.
#[test]
fn hard_activations_cost_one_relu_plus_their_product() {
    use pannc_ir::Op;
    let relu = conv_net(|g, v| g.add_simple("act", Op::Relu, &[v]).unwrap());
    let calib = uniform_images(64, 5, 6.0);
    let mut g_relu = relu.clone();
    let r_relu = pann::compile(&mut g_relu, vec![calib.clone()], Policy::default()).unwrap();
    for (op, extra) in [
        (
            Op::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
            0,
        ),
        (Op::HardSwish, 1),
    ] {
        let name = op.name();
        let net = conv_net(|g, v| g.add_simple("act", op.clone(), &[v]).unwrap());
        let mut g = net.clone();
        let r = pann::compile(&mut g, vec![calib.clone()], Policy::default()).unwrap();
        let a = &r.activations[0];
        assert_eq!(a.polys.len(), 2, "{name}");
        assert_eq!(a.depth, r_relu.activations[0].depth + extra, "{name}");
        assert_eq!(r.levels, r_relu.levels + extra, "{name}: network levels");
        assert!(
            a.scale_folded && r.range_control_levels == 0,
            "{name}: {a:?}"
        );
        let want = pann::simulate(&net, std::slice::from_ref(&calib), 64)
            .unwrap()
            .outputs;
        let got = pann::simulate(&g, std::slice::from_ref(&calib), 64)
            .unwrap()
            .outputs;
        let dev = max_abs_deviation(&want[0], &got[0]);
        assert!(
            dev.is_finite() && dev < 4.0 * a.max_error,
            "{name}: deviation {dev} vs max error {}",
            a.max_error
        );
    }
}

/// Largest |a − b| over all elements (NaN if any element is not finite).
fn max_abs_deviation(a: &pannc_ir::Tensor, b: &pannc_ir::Tensor) -> f64 {
    a.to_f64_vec()
        .iter()
        .zip(b.to_f64_vec())
        .map(|(p, q)| {
            if (p - q).is_finite() {
                (p - q).abs()
            } else {
                f64::NAN
            }
        })
        .fold(0.0, |m, d| {
            if m.is_nan() || d.is_nan() {
                f64::NAN
            } else {
                m.max(d)
            }
        })
}

/// `n` 3×6×6 images of values uniform in [−a/2, a/2) from a fixed LCG seed.
fn uniform_images(n: usize, mut seed: u64, a: f32) -> pannc_ir::Tensor {
    let data: Vec<f32> = (0..n * 3 * 36)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * a
        })
        .collect();
    pannc_ir::Tensor::from_f32(&[n, 3, 6, 6], data).unwrap()
}
