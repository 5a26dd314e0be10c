//! Reading and writing `.npy` arrays (f32, f64, i64, bool; C order, little-endian).

use pannc_ir::Tensor;
use std::path::Path;

/// What can go wrong reading or writing an array file.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a valid .npy file ({msg})")]
    Format { path: String, msg: String },
    #[error("{path}: unsupported dtype '{dtype}' (expected float32, float64, int64 or bool)")]
    DType { path: String, dtype: String },
    #[error("{path}: {msg}")]
    Shape { path: String, msg: String },
}

/// Reads a .npy file of f32, f64, i64 or bool (any shape, C order).
pub fn read(path: &Path) -> Result<Tensor, NpyError> {
    let p = || path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io { path: p(), source })?;
    parse(&bytes).map_err(|e| match e {
        NpyError::Format { msg, .. } => NpyError::Format { path: p(), msg },
        NpyError::DType { dtype, .. } => NpyError::DType { path: p(), dtype },
        NpyError::Shape { msg, .. } => NpyError::Shape { path: p(), msg },
        other => other,
    })
}

/// Parses the bytes of a .npy file (errors carry an empty path).
///
/// The header (a Python dict literal) is read by a strict parser of the three keys numpy
/// writes (`descr`, `fortran_order`, `shape`), in linear time: a general Python-literal parser
/// (npyz's) takes time exponential in the nesting of brackets, so a 100-byte header nested 10
/// deep would run for minutes (fuzz finding, `fuzz/findings/npy/timeout-*`). Every size is
/// checked against the file before anything is allocated.
pub fn parse(bytes: &[u8]) -> Result<Tensor, NpyError> {
    let fmt = |msg: String| NpyError::Format {
        path: String::new(),
        msg,
    };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(fmt("missing the \\x93NUMPY magic".into()));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(fmt(format!("unsupported format version {v}"))),
    };
    if header_len > bytes.len() - start {
        return Err(fmt(format!(
            "header claims {header_len} bytes, the file has {}",
            bytes.len() - start
        )));
    }
    let header = parse_header(&bytes[start..start + header_len]).map_err(fmt)?;
    if header.fortran_order {
        return Err(fmt(
            "Fortran-order arrays are not supported; save with np.ascontiguousarray".into(),
        ));
    }
    let shape = header.shape;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| fmt("shape overflows".into()))?;
    let size = match header.descr.as_str() {
        "<f4" => 4,
        "<f8" | "<i8" => 8,
        "|b1" => 1,
        _ => {
            return Err(NpyError::DType {
                path: String::new(),
                dtype: header.descr,
            })
        }
    };
    // Refuse before allocating: the data must be present in the file.
    let data = &bytes[start + header_len..];
    if count.checked_mul(size).is_none_or(|n| n > data.len()) {
        return Err(NpyError::Shape {
            path: String::new(),
            msg: format!("header promises {count} elements, the file is too short"),
        });
    }
    let data = &data[..count * size];
    let t = match header.descr.as_str() {
        "<f4" => Tensor::from_f32(&shape, le(data, f32::from_le_bytes)),
        "<f8" => Tensor::from_f64(&shape, le(data, f64::from_le_bytes)),
        "|b1" => Tensor::from_bool(&shape, data.iter().map(|&b| b != 0).collect()),
        _ => Tensor::from_i64(&shape, le(data, i64::from_le_bytes)),
    };
    t.ok_or_else(|| NpyError::Shape {
        path: String::new(),
        msg: format!("data does not fill shape {shape:?}"),
    })
}

/// Little-endian elements of `N` bytes.
fn le<T, const N: usize>(data: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            f(b)
        })
        .collect()
}

/// The parsed header dict.
#[derive(Debug, PartialEq)]
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// A cursor over the header text.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8, what: &str) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }
    fn unexpected(&self, what: &str) -> String {
        match self.peek() {
            Some(c) => format!(
                "header: expected {what} at byte {}, found {:?}",
                self.pos,
                char::from(c)
            ),
            None => format!("header: expected {what}, found its end"),
        }
    }
    /// A string literal in single or double quotes, without escapes.
    fn string(&mut self) -> Result<String, String> {
        self.ws();
        let q = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(self.unexpected("a quoted string")),
        };
        let begin = self.pos + 1;
        let len = self.s[begin..]
            .iter()
            .position(|&c| c == q || c == b'\\')
            .ok_or_else(|| "header: unterminated string".to_string())?;
        if self.s[begin + len] == b'\\' {
            return Err("header: escapes in strings are not supported".into());
        }
        self.pos = begin + len + 1;
        Ok(String::from_utf8_lossy(&self.s[begin..begin + len]).into_owned())
    }
    /// `True` or `False`.
    fn boolean(&mut self) -> Result<bool, String> {
        self.ws();
        for (word, v) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.s[self.pos..].starts_with(word) {
                self.pos += word.len();
                return Ok(v);
            }
        }
        Err(self.unexpected("True or False"))
    }
    /// A tuple of non-negative integers: `()`, `(3,)`, `(2, 3)`, `(2, 3,)`; Python 2's `3L`
    /// is accepted.
    fn shape(&mut self) -> Result<Vec<usize>, String> {
        self.expect(b'(', "'(' opening the shape")?;
        let mut dims = Vec::new();
        loop {
            if self.eat(b')') {
                return Ok(dims);
            }
            self.ws();
            let begin = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            if self.pos == begin {
                return Err(self.unexpected("a dimension (non-negative integer)"));
            }
            let digits = std::str::from_utf8(&self.s[begin..self.pos]).unwrap_or_default();
            let d: usize = digits
                .parse()
                .map_err(|_| format!("header: dimension {digits} is too large"))?;
            dims.push(d);
            if self.peek() == Some(b'L') {
                self.pos += 1;
            }
            if !self.eat(b',') {
                self.expect(b')', "',' or ')' in the shape")?;
                if dims.len() == 1 {
                    // `(3)` is the integer 3 in Python, not a tuple
                    return Err("header: the shape (n) must be written (n,)".into());
                }
                return Ok(dims);
            }
        }
    }
}

/// Parses the header dict `{'descr': ..., 'fortran_order': ..., 'shape': (...), }` (keys in
/// any order, each exactly once), followed only by padding whitespace.
fn parse_header(h: &[u8]) -> Result<Header, String> {
    let mut c = Cursor { s: h, pos: 0 };
    c.expect(b'{', "'{' opening the header dict")?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        if c.eat(b'}') {
            break;
        }
        let key = c.string()?;
        c.expect(b':', "':' after a key")?;
        let dup = match key.as_str() {
            "descr" => descr.replace(c.string()?).is_some(),
            "fortran_order" => fortran.replace(c.boolean()?).is_some(),
            "shape" => shape.replace(c.shape()?).is_some(),
            other => return Err(format!("header: unexpected key '{other}'")),
        };
        if dup {
            return Err(format!("header: key '{key}' appears twice"));
        }
        if !c.eat(b',') {
            c.expect(b'}', "',' or '}' in the header dict")?;
            break;
        }
    }
    c.ws();
    if c.pos != h.len() {
        return Err(c.unexpected("only padding after the header dict"));
    }
    let missing = |k: &str| format!("header: key '{k}' is missing");
    Ok(Header {
        descr: descr.ok_or_else(|| missing("descr"))?,
        fortran_order: fortran.ok_or_else(|| missing("fortran_order"))?,
        shape: shape.ok_or_else(|| missing("shape"))?,
    })
}

/// Writes a tensor as .npy (little-endian, C order).
pub fn write(path: &Path, t: &Tensor) -> Result<(), NpyError> {
    let io = |source: std::io::Error| NpyError::Io {
        path: path.display().to_string(),
        source,
    };
    let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
    let file = std::fs::File::create(path).map_err(io)?;
    let mut w = std::io::BufWriter::new(file);
    match t {
        Tensor::F32(a) => write_elems(&mut w, &shape, a.iter().copied()),
        Tensor::F64(a) => write_elems(&mut w, &shape, a.iter().copied()),
        Tensor::I64(a) => write_elems(&mut w, &shape, a.iter().copied()),
        Tensor::Bool(a) => write_elems(&mut w, &shape, a.iter().copied()),
    }
    .map_err(io)?;
    std::io::Write::flush(&mut w).map_err(io)
}

fn write_elems<T: npyz::AutoSerialize>(
    w: &mut impl std::io::Write,
    shape: &[u64],
    elems: impl Iterator<Item = T>,
) -> std::io::Result<()> {
    use npyz::WriterBuilder;
    npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(w)
        .begin_nd()?
        .extend(elems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend_from_slice(&(header.len() as u16).to_le_bytes());
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn headers_numpy_writes() {
        let h = |s: &str| parse_header(s.as_bytes());
        let want = |shape: Vec<usize>| Header {
            descr: "<f4".into(),
            fortran_order: false,
            shape,
        };
        assert_eq!(
            h("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }          \n"),
            Ok(want(vec![2, 3]))
        );
        assert_eq!(
            h("{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }"),
            Ok(want(vec![7]))
        );
        assert_eq!(
            h("{'descr': '<f4', 'fortran_order': False, 'shape': (), }"),
            Ok(want(vec![]))
        );
        // other key order, double quotes, no trailing comma, Python 2 longs
        assert_eq!(
            h(r#"{"shape": (2L, 3L), "fortran_order": False, "descr": "<f4"}"#),
            Ok(want(vec![2, 3]))
        );
        assert!(
            h("{'descr': '<f4', 'fortran_order': True, 'shape': (1,)}")
                .unwrap()
                .fortran_order
        );
    }

    #[test]
    fn bad_headers() {
        for bad in [
            "",
            "{",
            "{'descr': '<f4', 'fortran_order': False}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
            "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (3,)}",
            "{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (3,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} trailing",
            "{'descr': '<f\\4', 'fortran_order': False, 'shape': (3,)}",
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,)}",
        ] {
            assert!(parse_header(bad.as_bytes()).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn arrays() {
        let data: Vec<u8> = [1.5f32, -2.0, 3.25]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let t = parse(&npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
            &data,
        ))
        .unwrap();
        assert_eq!(t, Tensor::from_f32(&[3], vec![1.5, -2.0, 3.25]).unwrap());
        let t = parse(&npy(
            "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 1), }",
            &(-7i64).to_le_bytes(),
        ))
        .unwrap();
        assert_eq!(t, Tensor::from_i64(&[1, 1], vec![-7]).unwrap());
        let e = parse(&npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
            &data,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("too short"), "{e}");
        let e = parse(&npy(
            "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }",
            &data,
        ))
        .unwrap_err();
        assert!(
            matches!(e, NpyError::DType { ref dtype, .. } if dtype == "<f2"),
            "{e}"
        );
    }

    /// The fuzz finding: headers nested deep took time exponential in the depth with npyz's
    /// parser (depth 8: 13 s). Now any header is one linear pass.
    #[test]
    fn nested_headers_are_fast_errors() {
        let nested = "(7,{".repeat(1000);
        let h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {nested}, }}");
        let t = std::time::Instant::now();
        let e = parse(&npy(&h, &[])).unwrap_err();
        assert!(e.to_string().contains("header"), "{e}");
        assert!(t.elapsed().as_millis() < 500, "{:?}", t.elapsed());
    }

    /// Round trip through the writer (npyz) for every dtype.
    #[test]
    fn write_then_read() {
        let dir = std::env::temp_dir().join(format!("pannc-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for t in [
            Tensor::from_f32(&[2, 3], (0..6).map(|i| i as f32 / 3.0).collect()).unwrap(),
            Tensor::from_f64(&[4], vec![1e300, -0.0, f64::MIN_POSITIVE, 2.5]).unwrap(),
            Tensor::from_i64(&[], vec![i64::MIN]).unwrap(),
            Tensor::from_f32(&[0, 5], vec![]).unwrap(),
        ] {
            let p = dir.join("t.npy");
            write(&p, &t).unwrap();
            assert_eq!(read(&p).unwrap(), t);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
