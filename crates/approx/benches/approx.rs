//! Speed of the two headline computations (run time, nothing cached): the α = 12 composite
//! (degree-sequence search + stage fits) and a degree-119 minimax ReLU.

use criterion::{criterion_group, criterion_main, Criterion};
use pannc_approx::*;
use std::hint::black_box;

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("approx");
    g.sample_size(10);
    g.bench_function("composite_relu_alpha12_search_and_fit", |b| {
        b.iter(|| {
            composite_sign(
                black_box(12),
                SignTarget::Relu,
                &CompositeOptions::default(),
            )
            .unwrap()
        })
    });
    g.bench_function("composite_sign_alpha12_search_and_fit", |b| {
        b.iter(|| {
            composite_sign(
                black_box(12),
                SignTarget::Sign,
                &CompositeOptions::default(),
            )
            .unwrap()
        })
    });
    g.bench_function("minimax_relu_degree119", |b| {
        b.iter(|| {
            approximate(
                Function::Relu,
                Method::Minimax,
                Budget::Degree(black_box(119)),
                (-1.0, 1.0),
                Shaping::default(),
            )
            .unwrap()
        })
    });
    g.bench_function("remez_relu_degree119_no_parity", |b| {
        let opts = RemezOptions {
            breakpoints: vec![0.0],
            ..RemezOptions::default()
        };
        b.iter(|| {
            minimax_with(
                &|x: f64| x.max(0.0),
                &[(-1.0, 1.0)],
                black_box(119),
                Weight::Uniform,
                Parity::None,
                &opts,
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(approx_benches, benches);
criterion_main!(approx_benches);
