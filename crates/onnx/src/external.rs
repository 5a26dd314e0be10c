//! External tensor data: tensors whose bytes live in a file next to the model
//! (`data_location = EXTERNAL`, as PyTorch's default exporter writes `model.onnx.data`), read
//! safely, and written for models too large for one protobuf message.
//!
//! Reading refuses (naming the tensor) a location that is absolute, has a `..` component, or
//! resolves — through symbolic links — to anything but a regular file inside the model's
//! directory; a missing file; an offset or length that is not a decimal integer; a length that
//! disagrees with the tensor's shape and type; data past the end of the file. Sizes are
//! checked against the import limits before anything is allocated, and only the tensor's own
//! byte range is read (`seek` + bounded `read_exact`), so nothing outside the model's
//! directory is ever opened and error messages never quote file contents.

use crate::error::OnnxError;
use crate::pb;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

/// Where external data may be read from.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    /// The model came from bytes with no directory: external data is an error.
    None,
    /// The model's directory, canonicalized.
    Dir(PathBuf),
}

impl Source {
    /// The model's directory (canonicalized, so that symbolic links are resolved once).
    pub(crate) fn dir(dir: &Path) -> Result<Source, OnnxError> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let canon = dir.canonicalize().map_err(|e| OnnxError::Io {
            path: dir.display().to_string(),
            msg: format!("cannot resolve the model's directory: {e}"),
        })?;
        Ok(Source::Dir(canon))
    }
}

/// Whether a tensor keeps its data outside the model.
pub(crate) fn is_external(t: &pb::TensorProto) -> bool {
    t.data_location() == pb::tensor_proto::DataLocation::External || !t.external_data.is_empty()
}

/// The parsed `external_data` entries of a tensor.
struct Entry<'a> {
    location: &'a str,
    offset: u64,
    length: Option<u64>,
}

fn parse_entry<'a>(
    t: &'a pb::TensorProto,
    err: &impl Fn(String) -> OnnxError,
) -> Result<Entry<'a>, OnnxError> {
    let (mut location, mut offset, mut length) = (None, None, None);
    for kv in &t.external_data {
        let (k, v) = (kv.key(), kv.value());
        let slot = match k {
            "location" => &mut location,
            "offset" => &mut offset,
            "length" => &mut length,
            // `checksum` (a SHA-1 that onnx itself does not verify) and anything newer.
            _ => continue,
        };
        if slot.replace(v).is_some() {
            return Err(err(format!("has the key '{k}' twice")));
        }
    }
    let number = |key: &str, v: Option<&str>| -> Result<Option<u64>, OnnxError> {
        match v {
            None => Ok(None),
            Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
                .parse::<u64>()
                .map(Some)
                .map_err(|_| err(format!("{key} '{s}' does not fit in 64 bits"))),
            Some(s) => Err(err(format!(
                "{key} '{}' is not a non-negative decimal integer",
                s.escape_default()
            ))),
        }
    };
    let location = location.ok_or_else(|| err("has no 'location'".into()))?;
    Ok(Entry {
        location,
        offset: number("offset", offset)?.unwrap_or(0),
        length: number("length", length)?,
    })
}

/// Checks a location: relative, without `..`, root or drive components, not empty.
fn check_location(loc: &str, err: &impl Fn(String) -> OnnxError) -> Result<(), OnnxError> {
    let shown = loc.escape_default().to_string();
    if loc.is_empty() || loc.contains('\0') {
        return Err(err(format!("location '{shown}' is not a file name")));
    }
    let p = Path::new(loc);
    if p.is_absolute() || loc.starts_with('/') || loc.starts_with('\\') {
        return Err(err(format!(
            "location '{shown}' is an absolute path; external data must be in the model's directory"
        )));
    }
    for c in p.components() {
        match c {
            Component::ParentDir => {
                return Err(err(format!(
                    "location '{shown}' has a '..' component; external data must be in the model's directory"
                )))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(err(format!(
                    "location '{shown}' is an absolute path; external data must be in the model's directory"
                )))
            }
            Component::CurDir | Component::Normal(_) => {}
        }
    }
    Ok(())
}

/// Reads the `expected` bytes of tensor `name`'s external data from `src`. `expected` (the
/// tensor's size from its shape and type) has been checked against the limits by the caller.
pub(crate) fn read(
    src: &Source,
    t: &pb::TensorProto,
    name: &str,
    expected: usize,
) -> Result<Vec<u8>, OnnxError> {
    let err = |msg: String| OnnxError::External {
        tensor: name.to_string(),
        msg,
    };
    let e = parse_entry(t, &err)?;
    check_location(e.location, &err)?;
    let shown = e.location.escape_default().to_string();
    let dir = match src {
        Source::Dir(d) => d,
        Source::None => {
            return Err(err(format!(
                "its data is in the external file '{shown}', but the model was imported from bytes, with no directory to read it from (import the model from its path)"
            )))
        }
    };
    if let Some(len) = e.length {
        if len != expected as u64 {
            return Err(err(format!(
                "length {len} disagrees with its shape {:?} of {}, which needs {expected} bytes",
                t.dims,
                crate::tensor::dtype_name(t.data_type())
            )));
        }
    }
    let path = dir.join(e.location);
    let canon = match path.canonicalize() {
        Ok(c) => c,
        Err(io) if io.kind() == std::io::ErrorKind::NotFound => {
            return Err(err(format!(
                "location '{shown}' does not exist in the model's directory"
            )))
        }
        Err(io) => return Err(err(format!("location '{shown}' cannot be resolved: {io}"))),
    };
    if !canon.starts_with(dir) {
        return Err(err(format!(
            "location '{shown}' resolves (through a symbolic link) to a file outside the model's directory"
        )));
    }
    let meta = std::fs::metadata(&canon)
        .map_err(|io| err(format!("location '{shown}' cannot be read: {io}")))?;
    if !meta.is_file() {
        return Err(err(format!("location '{shown}' is not a regular file")));
    }
    let end = e.offset.checked_add(expected as u64);
    if end.is_none_or(|end| end > meta.len()) {
        return Err(err(format!(
            "offset {} + {expected} bytes runs past the end of '{shown}' ({} bytes)",
            e.offset,
            meta.len()
        )));
    }
    let mut f = std::fs::File::open(&canon)
        .map_err(|io| err(format!("location '{shown}' cannot be opened: {io}")))?;
    let mut buf = vec![0u8; expected];
    f.seek(SeekFrom::Start(e.offset))
        .and_then(|_| f.read_exact(&mut buf))
        .map_err(|io| {
            err(format!(
                "reading {expected} bytes at offset {} of '{shown}': {io}",
                e.offset
            ))
        })?;
    Ok(buf)
}

/// Offsets of tensors in a written data file are multiples of this (page alignment, so that
/// runtimes may map them).
const ALIGN: u64 = 4096;

/// Moves the data of every initializer of at least `min_bytes` bytes (and of `Constant` nodes
/// that large, which become initializers) of `m` into the file `data_path`, referenced by
/// its file name `location`. Returns the number of bytes written.
pub(crate) fn externalize(
    m: &mut pb::ModelProto,
    data_path: &Path,
    location: &str,
    min_bytes: usize,
) -> Result<u64, OnnxError> {
    let io = |e: std::io::Error| OnnxError::Io {
        path: data_path.display().to_string(),
        msg: e.to_string(),
    };
    let Some(g) = m.graph.as_mut() else {
        return Ok(0);
    };
    // Large Constant nodes become initializers, which runtimes read external data for.
    let mut kept = Vec::with_capacity(g.node.len());
    for n in std::mem::take(&mut g.node) {
        let big = n.op_type() == "Constant"
            && n.domain().is_empty()
            && n.output.len() == 1
            && n.attribute.len() == 1
            && n.attribute[0].name() == "value"
            && n.attribute[0]
                .t
                .as_ref()
                .is_some_and(|t| t.raw_data.as_ref().is_some_and(|r| r.len() >= min_bytes));
        if big {
            let mut t = n.attribute[0].t.clone().expect("checked");
            t.name = Some(n.output[0].clone());
            g.initializer.push(t);
        } else {
            kept.push(n);
        }
    }
    g.node = kept;
    let f = std::fs::File::create(data_path).map_err(io)?;
    let mut w = std::io::BufWriter::new(f);
    let mut pos: u64 = 0;
    for t in &mut g.initializer {
        let Some(raw) = t.raw_data.as_ref().filter(|r| r.len() >= min_bytes) else {
            continue;
        };
        let pad = pos.next_multiple_of(ALIGN) - pos;
        w.write_all(&vec![0u8; pad as usize]).map_err(io)?;
        pos += pad;
        w.write_all(raw).map_err(io)?;
        let len = raw.len() as u64;
        let kv = |k: &str, v: String| pb::StringStringEntryProto {
            key: Some(k.into()),
            value: Some(v),
        };
        t.external_data = vec![
            kv("location", location.to_string()),
            kv("offset", pos.to_string()),
            kv("length", len.to_string()),
        ];
        t.data_location = Some(pb::tensor_proto::DataLocation::External as i32);
        t.raw_data = None;
        pos += len;
    }
    w.flush().map_err(io)?;
    Ok(pos)
}
