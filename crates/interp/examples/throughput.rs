//! Pushes N synthetic 28×28 images through the synthetic ResNet (tests/common/resnet.rs)
//! and prints images/s.  `cargo run --release -p pannc-interp --example throughput -- 10000 2`
//! (images, threads, optional batch_chunk, optional "f64").

#[path = "../tests/common/resnet.rs"]
mod resnet;
use pannc_interp::{run, Precision, RunOptions};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (n, threads, chunk) = (arg(1, 10_000), arg(2, 2), arg(3, 32));
    let precision = if args.iter().any(|a| a == "f64") {
        Precision::F64
    } else {
        Precision::F32
    };
    let g = resnet::resnet();
    let x = resnet::images(n, 1);
    let opts = RunOptions {
        precision,
        batch_chunk: chunk,
        threads,
    };
    let t = Instant::now();
    let y = run(&g, &[x], &opts).expect("run");
    let dt = t.elapsed().as_secs_f64();
    println!(
        "{n} images ({precision:?}, {threads} threads, chunk {chunk}) in {dt:.2} s: {:.0} images/s; output {:?}",
        n as f64 / dt,
        y[0].shape()
    );
}
