//! Loading models and arrays from disk: the CLI's only file I/O besides writing outputs.

use anyhow::{anyhow, bail, Context, Result};
use pannc_ir::{DType, Graph, Tensor};
use pannc_onnx::{human_bytes, Limits, OnnxError};
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

/// The environment variable read when `--max-memory` is not given.
pub const MAX_MEMORY_ENV: &str = "PANNC_MAX_MEMORY";

/// `--max-memory`, shared by the commands that load models.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MemoryArgs {
    /// Limit on a model's constant data (weights, constants), checked before anything is
    /// allocated: the total, and each single tensor (at most 2GiB). Units B, KiB/MiB/GiB/TiB
    /// (also K/M/G/T) or KB/MB/GB/TB (powers of 10), e.g. 512MiB, 4GiB. Default: 4GiB, or the
    /// PANNC_MAX_MEMORY environment variable.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,
}

static LIMITS: OnceLock<Limits> = OnceLock::new();

impl MemoryArgs {
    /// Sets the process's import limits from the flag, else from `PANNC_MAX_MEMORY`, else the
    /// defaults. Call once, before loading a model.
    pub fn apply(&self) -> Result<()> {
        let l = match self.max_memory {
            Some(bytes) => Limits::with_max_memory(bytes),
            None => limits_from_env()?,
        };
        let _ = LIMITS.set(l);
        Ok(())
    }
}

fn limits_from_env() -> Result<Limits> {
    match std::env::var(MAX_MEMORY_ENV) {
        Ok(v) if !v.trim().is_empty() => {
            let bytes = parse_size(&v).map_err(|e| anyhow!("{MAX_MEMORY_ENV}={v}: {e}"))?;
            Ok(Limits::with_max_memory(bytes))
        }
        _ => Ok(Limits::default()),
    }
}

/// The import limits in force: those set by [`MemoryArgs::apply`], else from
/// `PANNC_MAX_MEMORY`, else the defaults.
pub fn limits() -> Result<Limits> {
    match LIMITS.get() {
        Some(l) => Ok(*l),
        None => limits_from_env(),
    }
}

/// Parses a byte size: a number (decimals allowed) with an optional unit `B`, `K`/`KiB`,
/// `M`/`MiB`, `G`/`GiB`, `T`/`TiB` (powers of 1024) or `KB`, `MB`, `GB`, `TB` (powers of
/// 1000), case-insensitive, space allowed before the unit. Zero is refused.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        u => {
            return Err(format!(
                "unknown unit '{u}' in '{t}' (use e.g. 512MiB, 4GiB, 1.5GB, 1000000)"
            ))
        }
    };
    let x: f64 = num
        .parse()
        .map_err(|_| format!("'{t}' is not a size (use e.g. 512MiB, 4GiB, 1000000)"))?;
    let bytes = (x * mult as f64).round();
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("'{t}' is not a usable size (1 B to 16 EiB)"));
    }
    Ok(bytes as u64)
}

/// The largest model file read under `limits`: twice the constant-data limit plus 16 MiB for
/// the graph (typed integer data may take more bytes on disk than in memory), and never over
/// 2 GiB, protobuf's limit on a message (larger ONNX models must use external data).
pub fn max_model_file_bytes(limits: &Limits) -> u64 {
    limits.max_model_file_bytes()
}

/// Protobuf's limit on the size of a message: 2 GiB.
const PROTOBUF_MAX: u64 = 2 << 30;

/// Reads a model file, refusing (before reading it all) one larger than
/// [`max_model_file_bytes`]. Reads through a bound, so special files (`/dev/zero`, pipes)
/// cannot make it allocate without limit.
pub fn read_model_file(path: &Path) -> Result<Vec<u8>> {
    let max = max_model_file_bytes(&limits()?);
    let too_big = |size: Option<u64>| {
        let why = if max == PROTOBUF_MAX {
            "protobuf's limit on a message (larger ONNX models keep their weights in external data files)".to_string()
        } else {
            format!("what a model within the memory limit may have; raise it with --max-memory or {MAX_MEMORY_ENV}")
        };
        let size = match size {
            Some(n) => format!("has {n} bytes, more than"),
            None => "is larger than".into(),
        };
        anyhow!(
            "{}: the file {size} {max} bytes ({}), {why}",
            path.display(),
            human_bytes(max as u128)
        )
    };
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Ok(m) = f.metadata() {
        if m.len() > max {
            return Err(too_big(Some(m.len())));
        }
    }
    let mut bytes = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(too_big(None));
    }
    Ok(bytes)
}

/// An import error as one line, with a hint on how to raise the limit when one was hit.
pub fn describe(e: &OnnxError) -> String {
    match e.kind() {
        "too-large" | "total-too-large" | "value-too-large" => {
            format!("{e} (raise the limit with --max-memory or {MAX_MEMORY_ENV})")
        }
        _ => e.to_string(),
    }
}

/// Imports the bytes of the model file `path` under the limits in force; external tensor data
/// is read from files in the model's directory (and only there).
pub fn import(path: &Path, bytes: &[u8]) -> Result<pannc_onnx::Model> {
    let dir = path.parent().unwrap_or(Path::new("."));
    pannc_onnx::import_with_dir(bytes, dir, &limits()?)
        .map_err(|e| anyhow!("{}: {}", path.display(), describe(&e)))
}

/// Reads an ONNX file, imports it and runs the clean-up pipeline (constant folding of shape
/// chains, Identity/Dropout removal, dead-code elimination, type inference). The limits of
/// [`limits`] apply.
pub fn load_model(path: &Path) -> Result<pannc_onnx::Model> {
    let bytes = read_model_file(path)?;
    let mut model = import(path, &bytes)?;
    canonicalize(&mut model.graph).with_context(|| format!("{}", path.display()))?;
    Ok(model)
}

/// Type inference, the clean-up pipeline, type inference again, then [`check_value_sizes`]
/// under the limits in force.
pub fn canonicalize(g: &mut Graph) -> Result<()> {
    pannc_interp::infer_types(g)?;
    pannc_passes::Pipeline::cleanup().run(g)?;
    pannc_interp::infer_types(g)?;
    check_value_sizes(g, &limits()?)
}

/// Refuses a graph in which some node's output has an inferred shape whose known dimensions
/// alone (per sample when the batch is symbolic) need more than the per-tensor limit: running
/// it would allocate that much (a 173-byte model whose Conv pads a 4×4 input by 32000 asks
/// for 4 GiB). Values whose size depends on data are left to the interpreter's own bound.
pub fn check_value_sizes(g: &Graph, limits: &Limits) -> Result<()> {
    for id in g.node_ids() {
        let node = g.node(id);
        for &v in node.outputs() {
            let val = g.value(v);
            let Some(ty) = &val.ty else { continue };
            let mut symbolic = false;
            let bytes = ty
                .shape
                .iter()
                .try_fold(ty.dtype.size() as u128, |acc, d| match d {
                    pannc_ir::Dim::Known(n) => acc.checked_mul(*n as u128),
                    pannc_ir::Dim::Sym(_) => {
                        symbolic = true;
                        Some(acc)
                    }
                });
            if bytes.is_some_and(|b| b <= limits.max_tensor_bytes as u128) {
                continue;
            }
            let shape: Vec<String> = ty.shape.iter().map(|d| d.to_string()).collect();
            let need = match bytes {
                Some(b) => format!(
                    "needs {b} bytes ({}){}",
                    human_bytes(b),
                    if symbolic { " per sample" } else { "" }
                ),
                None => "has more elements than 64 bits can count".into(),
            };
            bail!(
                "value '{}' (output of node '{}', {}): shape [{}] of {} {need}, more than the per-tensor limit of {} bytes ({}) (raise the limit with --max-memory or {MAX_MEMORY_ENV})",
                val.name,
                node.name,
                node.op.name(),
                shape.join(", "),
                ty.dtype,
                limits.max_tensor_bytes,
                human_bytes(limits.max_tensor_bytes as u128)
            );
        }
    }
    Ok(())
}

/// Reads a .npy file of f32, f64 or i64.
pub fn read_npy(path: &Path) -> Result<Tensor> {
    Ok(pannc::npy::read(path)?)
}

/// Writes a tensor as .npy.
pub fn write_npy(path: &Path, t: &Tensor) -> Result<()> {
    Ok(pannc::npy::write(path, t)?)
}

/// Converts an input array to the dtype a graph input declares; floats convert between
/// widths (with a note), anything else is an error.
pub fn conform_dtype(name: &str, t: Tensor, want: DType) -> Result<Tensor> {
    let have = t.dtype();
    if have == want {
        return Ok(t);
    }
    if have.is_float() && want.is_float() {
        eprintln!("note: input '{name}': converting {have} data to {want}");
        return Ok(t.cast(want));
    }
    bail!("input '{name}' expects {want} data, got {have}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("4 gib"), Ok(4 << 30));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert_eq!(parse_size("0.5KiB"), Ok(512));
        for bad in [
            "",
            "GiB",
            "-1GiB",
            "4 parsecs",
            "0",
            "1e3",
            "0.1B",
            "99999999999TiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn file_cap() {
        let l = Limits::with_max_memory(1 << 20);
        assert_eq!(max_model_file_bytes(&l), (2 << 20) + (16 << 20));
        assert_eq!(max_model_file_bytes(&Limits::default()), 2 << 30);
    }
}
