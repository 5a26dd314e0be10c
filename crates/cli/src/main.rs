//! `pannc`: the command line. The only crate that prints or touches files besides ONNX/npy loading helpers.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod cmd_approx;
mod cmd_compile;
mod cmd_eval;
mod cmd_inspect;
mod cmd_run;
mod cmd_sensitivity;
mod load;

/// pannc compiles trained neural networks (ONNX) into polynomial approximations (PANNs) for CKKS
/// homomorphic encryption.
#[derive(Parser, Debug)]
#[command(
    name = "pannc",
    version,
    about = "pannc compiles trained neural networks (ONNX) into polynomial approximations (PANNs) for CKKS homomorphic encryption",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

const AFTER_HELP: &str = "\
Examples:
  pannc inspect fixtures/resnet_fmnist/model.onnx
  pannc run fixtures/resnet_fmnist/model.onnx --input fixtures/resnet_fmnist/test_x.npy -o logits.npy
  pannc approx relu --alpha 9 --json

Exit codes:
  0  success
  1  the model, an array or a request cannot be handled (the one-line error says why)
  2  usage error (unknown flag, missing argument)";

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Approximate a function by a polynomial (or a composition) and report its cost and error.
    Approx(cmd_approx::ApproxArgs),
    /// Compile a trained network into a PANN (polynomial activations, folded ranges) and emit ONNX.
    Compile(Box<cmd_compile::CompileArgs>),
    /// Measure PANN accuracy across precisions and accuracy techniques (shape, bias, alloc).
    Eval(cmd_eval::EvalArgs),
    /// Inject the PANN's own error (or noise) on negative / positive activation inputs; damage with intervals.
    Sensitivity(cmd_sensitivity::SensitivityArgs),
    /// Show a model's inputs, outputs, ops, parameter count and any unsupported ops.
    Inspect(cmd_inspect::InspectArgs),
    /// Run a model on .npy inputs with pannc's reference interpreter.
    Run(cmd_run::RunArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.cmd {
        Cmd::Approx(a) => cmd_approx::run(a),
        Cmd::Compile(a) => cmd_compile::run(a),
        Cmd::Eval(a) => cmd_eval::run(a),
        Cmd::Inspect(a) => cmd_inspect::run(a),
        Cmd::Sensitivity(a) => cmd_sensitivity::run(a),
        Cmd::Run(a) => cmd_run::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
