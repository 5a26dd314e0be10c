//! `pannc run`: evaluate a model with the reference interpreter.

use crate::load;
use anyhow::{bail, Context, Result};
use pannc_interp::{Precision, RunOptions};
use pannc_ir::Tensor;
use std::path::PathBuf;

/// Run a model on .npy inputs with pannc's reference interpreter.
///
/// A model exported with a fixed batch size b (inputs declared [1,3,64,64], as PyTorch's
/// exporters write for a batch-1 example) accepts any multiple of b samples: it runs b at a
/// time and the outputs are concatenated. Nodes kept without interpretation (scikit-learn's
/// ai.onnx.ml tail) make the run fail, naming the node.
///
/// Example: pannc run fixtures/resnet_fmnist/model.onnx --input fixtures/resnet_fmnist/test_x.npy --output logits.npy
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The ONNX model to run.
    pub model: PathBuf,
    /// Input array: `X.npy` for the first graph input, or `NAME=X.npy` for a named input. Repeatable.
    #[arg(long = "input", short = 'i', required = true)]
    pub inputs: Vec<String>,
    /// Write outputs as .npy: `OUT.npy` for the first output, or `NAME=OUT.npy`. Repeatable.
    /// Without it, a summary of each output is printed.
    #[arg(long = "output", short = 'o')]
    pub outputs: Vec<String>,
    /// Compute in f64 (for error analysis); outputs are then f64.
    #[arg(long)]
    pub f64: bool,
    #[command(flatten)]
    pub mem: load::MemoryArgs,
}

pub fn run(args: &RunArgs) -> Result<()> {
    args.mem.apply()?;
    let model = load::load_model(&args.model)?;
    let g = &model.graph;
    let mut feeds: Vec<Option<Tensor>> = vec![None; g.inputs().len()];
    for (k, spec) in args.inputs.iter().enumerate() {
        let (slot, path) = match spec.split_once('=') {
            Some((name, path)) => {
                let slot = g
                    .inputs()
                    .iter()
                    .position(|&v| g.value(v).name == name)
                    .with_context(|| {
                        format!(
                            "the model has no input named '{name}' (inputs: {})",
                            input_names(g)
                        )
                    })?;
                (slot, path)
            }
            None if k < g.inputs().len() => (k, spec.as_str()),
            None => bail!("more --input arrays than model inputs ({})", input_names(g)),
        };
        let name = g.value(g.inputs()[slot]).name.clone();
        let t = load::read_npy(path.as_ref())?;
        let want = g
            .value(g.inputs()[slot])
            .ty
            .as_ref()
            .map(|t| t.dtype)
            .unwrap_or(t.dtype());
        feeds[slot] = Some(load::conform_dtype(&name, t, want)?);
    }
    let feeds: Vec<Tensor> = feeds
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            t.with_context(|| format!("no array given for input '{}'", g.value(g.inputs()[i]).name))
        })
        .collect::<Result<_>>()?;
    let opts = RunOptions {
        precision: if args.f64 {
            Precision::F64
        } else {
            Precision::F32
        },
        ..Default::default()
    };
    let outs = pannc_interp::run(g, &feeds, &opts)?;
    let names: Vec<String> = g
        .outputs()
        .iter()
        .map(|&v| g.value(v).name.clone())
        .collect();
    if args.outputs.is_empty() {
        for (name, t) in names.iter().zip(&outs) {
            println!("{name}: {}", t.summary());
        }
    }
    for (k, spec) in args.outputs.iter().enumerate() {
        let (slot, path) = match spec.split_once('=') {
            Some((name, path)) => (
                names
                    .iter()
                    .position(|n| n == name)
                    .with_context(|| format!("the model has no output named '{name}'"))?,
                path,
            ),
            None if k < names.len() => (k, spec.as_str()),
            None => bail!("more --output paths than model outputs"),
        };
        load::write_npy(path.as_ref(), &outs[slot])?;
    }
    Ok(())
}

fn input_names(g: &pannc_ir::Graph) -> String {
    g.inputs()
        .iter()
        .map(|&v| g.value(v).name.clone())
        .collect::<Vec<_>>()
        .join(", ")
}
