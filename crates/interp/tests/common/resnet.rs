//! A synthetic ResNet-style CNN for 28×28×1 inputs, built with the IR API: a 3×3 stem and
//! 7 residual blocks of two conv3×3+BN(+ReLU) (channels 16/32/64 at 28/14/7 pixels, 1×1
//! stride-2 projections where the shape changes), global average pooling, a PyTorch-style
//! `x.view(x.size(0), -1)` (Shape→Gather→Unsqueeze→Concat→Reshape) and a Gemm to 10 logits.
//! 15 3×3 convolutions plus 2 projections.

#![allow(dead_code)]

use pannc_ir::{Dim, Graph, Op, Tensor, TensorType, ValueId, Window};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f64 / (1u64 << 24) as f64 * 2.0 - 1.0) as f32
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

struct B<'a> {
    g: &'a mut Graph,
    r: Rng,
    n: usize,
}

impl B<'_> {
    fn name(&mut self, p: &str) -> String {
        self.n += 1;
        format!("{p}{}", self.n)
    }
    fn constant(&mut self, p: &str, shape: &[usize], data: Vec<f32>) -> ValueId {
        let n = self.name(p);
        self.g
            .add_constant(n, Tensor::from_f32(shape, data).unwrap())
            .unwrap()
    }
    fn conv(&mut self, x: ValueId, cin: usize, cout: usize, k: usize, stride: usize) -> ValueId {
        let fan = (cin * k * k) as f32;
        let w = self.r.vec(cout * cin * k * k, (6.0 / fan).sqrt());
        let w = self.constant("w", &[cout, cin, k, k], w);
        let b = self.r.vec(cout, 0.1);
        let b = self.constant("b", &[cout], b);
        let p = k / 2;
        let op = Op::Conv {
            window: Window {
                strides: vec![stride, stride],
                pads: vec![p, p, p, p],
                ..Default::default()
            },
            group: 1,
        };
        let n = self.name("conv");
        self.g.add_simple(n, op, &[x, w, b]).unwrap()
    }
    fn bn(&mut self, x: ValueId, c: usize) -> ValueId {
        let s: Vec<f32> = (0..c).map(|_| 1.0 + 0.2 * self.r.next()).collect();
        let bias = self.r.vec(c, 0.1);
        let mean = self.r.vec(c, 0.1);
        let var: Vec<f32> = (0..c).map(|_| 1.0 + 0.5 * self.r.next()).collect();
        let ids = [
            self.constant("s", &[c], s),
            self.constant("bb", &[c], bias),
            self.constant("m", &[c], mean),
            self.constant("v", &[c], var),
        ];
        let n = self.name("bn");
        self.g
            .add_simple(
                n,
                Op::BatchNormalization { epsilon: 1e-5 },
                &[x, ids[0], ids[1], ids[2], ids[3]],
            )
            .unwrap()
    }
    fn simple(&mut self, p: &str, op: Op, ins: &[ValueId]) -> ValueId {
        let n = self.name(p);
        self.g.add_simple(n, op, ins).unwrap()
    }
}

pub fn resnet() -> Graph {
    let mut g = Graph::new("resnet_synth", 17);
    let x = g
        .add_input(
            "x",
            Some(TensorType::new(
                pannc_ir::DType::F32,
                vec![
                    Dim::Sym("N".into()),
                    Dim::Known(1),
                    Dim::Known(28),
                    Dim::Known(28),
                ],
            )),
        )
        .unwrap();
    let mut b = B {
        g: &mut g,
        r: Rng(42),
        n: 0,
    };
    let mut h = b.conv(x, 1, 16, 3, 1);
    h = b.bn(h, 16);
    h = b.simple("relu", Op::Relu, &[h]);
    let mut c = 16;
    for (stage, blocks) in [(16usize, 3usize), (32, 2), (64, 2)] {
        for i in 0..blocks {
            let stride = if i == 0 && stage != c { 2 } else { 1 };
            let mut y = b.conv(h, c, stage, 3, stride);
            y = b.bn(y, stage);
            y = b.simple("relu", Op::Relu, &[y]);
            y = b.conv(y, stage, stage, 3, 1);
            y = b.bn(y, stage);
            let short = if stride != 1 {
                b.conv(h, c, stage, 1, 2)
            } else {
                h
            };
            let s = b.simple("add", Op::Add, &[y, short]);
            h = b.simple("relu", Op::Relu, &[s]);
            c = stage;
        }
    }
    let p = b.simple("gap", Op::GlobalAveragePool, &[h]);
    // x.view(x.size(0), -1)
    let shape = b.simple(
        "shape",
        Op::Shape {
            start: 0,
            end: None,
        },
        &[p],
    );
    let zero = b.g.add_constant("idx0", Tensor::scalar_i64(0)).unwrap();
    let n0 = b.simple("gather", Op::Gather { axis: 0 }, &[shape, zero]);
    let ax =
        b.g.add_constant("ax0", Tensor::from_i64(&[1], vec![0]).unwrap())
            .unwrap();
    let n1 = b.simple("unsq", Op::Unsqueeze, &[n0, ax]);
    let m1 =
        b.g.add_constant("minus1", Tensor::from_i64(&[1], vec![-1]).unwrap())
            .unwrap();
    let spec = b.simple("cat", Op::Concat { axis: 0 }, &[n1, m1]);
    let flat = b.simple("view", Op::Reshape { allowzero: false }, &[p, spec]);
    let w = b.r.vec(10 * 64, 0.3);
    let w = b.constant("fcw", &[10, 64], w);
    let bias = b.r.vec(10, 0.1);
    let bias = b.constant("fcb", &[10], bias);
    let logits = b.simple(
        "fc",
        Op::Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: true,
        },
        &[flat, w, bias],
    );
    g.set_outputs(vec![logits]);
    g
}

/// `n` deterministic pseudo-random 28×28 images in [0, 1).
pub fn images(n: usize, seed: u64) -> Tensor {
    let mut r = Rng(seed);
    Tensor::from_f32(
        &[n, 1, 28, 28],
        (0..n * 784).map(|_| 0.5 + 0.5 * r.next()).collect(),
    )
    .unwrap()
}
