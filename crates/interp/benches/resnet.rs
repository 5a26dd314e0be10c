//! Throughput of `run` on a synthetic ResNet-style CNN (15 conv3×3 + 2 projections, BN,
//! ReLU, residual adds; see tests/common/resnet.rs) with 28×28×1 inputs, batch 256.
//! Reports images/s through criterion's throughput.

#[path = "../tests/common/resnet.rs"]
mod resnet;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pannc_interp::{run, Precision, RunOptions};

fn bench(c: &mut Criterion) {
    let g = resnet::resnet();
    let n = 256;
    let x = resnet::images(n, 1);
    let mut grp = c.benchmark_group("resnet28");
    grp.sample_size(10);
    grp.throughput(Throughput::Elements(n as u64));
    for (name, precision, threads) in [
        ("f32_1thread", Precision::F32, 1),
        ("f32_2threads", Precision::F32, 2),
        ("f64_2threads", Precision::F64, 2),
    ] {
        let opts = RunOptions {
            precision,
            batch_chunk: 32,
            threads,
        };
        grp.bench_function(name, |b| {
            b.iter(|| run(&g, std::slice::from_ref(&x), &opts).unwrap())
        });
    }
    grp.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
