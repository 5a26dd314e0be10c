//! `weights.npz`: a zip archive of `.npy` arrays (numpy's `savez` format), written **stored**
//! (uncompressed) with fixed timestamps so that the same arrays always give the same bytes.
//! Only what packed programs need: little-endian `float64` and `int64` C-order arrays. The
//! reader accepts what this writer and numpy (`np.savez`, including its zip64 extra fields)
//! write without compression, and refuses anything else with a one-line reason.

use std::collections::BTreeMap;
use std::io::{self, Write};

/// Element data of an array.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyData {
    F64(Vec<f64>),
    I64(Vec<i64>),
}

/// A C-order array read from or written to a `.npy` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

/// A borrowed array to write.
#[derive(Clone, Copy, Debug)]
pub enum NpyRef<'a> {
    F64(&'a [usize], &'a [f64]),
    I64(&'a [usize], &'a [i64]),
}

impl NpyArray {
    pub fn dtype(&self) -> &'static str {
        match self.data {
            NpyData::F64(_) => "float64",
            NpyData::I64(_) => "int64",
        }
    }
    pub fn as_ref(&self) -> NpyRef<'_> {
        match &self.data {
            NpyData::F64(v) => NpyRef::F64(&self.shape, v),
            NpyData::I64(v) => NpyRef::I64(&self.shape, v),
        }
    }
}

impl NpyRef<'_> {
    fn shape(&self) -> &[usize] {
        match self {
            NpyRef::F64(s, _) | NpyRef::I64(s, _) => s,
        }
    }
    fn descr(&self) -> &'static str {
        match self {
            NpyRef::F64(..) => "<f8",
            NpyRef::I64(..) => "<i8",
        }
    }
    fn len(&self) -> usize {
        match self {
            NpyRef::F64(_, v) => v.len(),
            NpyRef::I64(_, v) => v.len(),
        }
    }
    /// Calls `f` with the little-endian bytes of the elements, in chunks.
    fn for_each_chunk(&self, mut f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        const CHUNK: usize = 8192;
        let mut buf = Vec::with_capacity(CHUNK * 8);
        match self {
            NpyRef::F64(_, v) => {
                for c in v.chunks(CHUNK) {
                    buf.clear();
                    c.iter()
                        .for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
                    f(&buf)?;
                }
            }
            NpyRef::I64(_, v) => {
                for c in v.chunks(CHUNK) {
                    buf.clear();
                    c.iter()
                        .for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
                    f(&buf)?;
                }
            }
        }
        Ok(())
    }
}

/// The `.npy` header (magic, version 1.0, dict padded to a multiple of 64 bytes).
fn npy_header(a: &NpyRef<'_>) -> Vec<u8> {
    let dims: Vec<String> = a.shape().iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        a.descr()
    );
    let total = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat(total.next_multiple_of(64) - total));
    dict.push('\n');
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h
}

/// CRC-32 tables for slicing by 8 (table 0 is the classic byte table).
fn crc_tables() -> Box<[[u32; 256]; 8]> {
    let mut t = Box::new([[0u32; 256]; 8]);
    for i in 0..256 {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        t[0][i] = c;
    }
    for i in 0..256 {
        for k in 1..8 {
            let p = t[k - 1][i];
            t[k][i] = (p >> 8) ^ t[0][(p & 0xFF) as usize];
        }
    }
    t
}

struct Crc {
    t: Box<[[u32; 256]; 8]>,
    v: u32,
}

impl Crc {
    fn new() -> Crc {
        Crc {
            t: crc_tables(),
            v: 0xFFFF_FFFF,
        }
    }
    fn update(&mut self, bytes: &[u8]) {
        let t = &self.t;
        let mut c = self.v;
        let mut chunks = bytes.chunks_exact(8);
        for b in &mut chunks {
            let lo = c ^ u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let hi = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            c = t[7][(lo & 0xFF) as usize]
                ^ t[6][((lo >> 8) & 0xFF) as usize]
                ^ t[5][((lo >> 16) & 0xFF) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][(hi & 0xFF) as usize]
                ^ t[2][((hi >> 8) & 0xFF) as usize]
                ^ t[1][((hi >> 16) & 0xFF) as usize]
                ^ t[0][(hi >> 24) as usize];
        }
        for &b in chunks.remainder() {
            c = t[0][((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
        }
        self.v = c;
    }
    fn finish(&self) -> u32 {
        self.v ^ 0xFFFF_FFFF
    }
}

/// CRC-32 (zip) of a byte string.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = Crc::new();
    c.update(bytes);
    c.finish()
}

const DOS_DATE: u16 = (1 << 5) | 1; // 1980-01-01
const LIMIT: u64 = 0xFFFF_FFFF;

/// Writes `entries` (name without `.npy`, array) as an uncompressed npz archive; returns the
/// number of bytes written. Archives over 4 GiB are refused.
pub fn write_npz<'a, W: Write>(
    w: &mut W,
    entries: impl IntoIterator<Item = (String, NpyRef<'a>)>,
) -> io::Result<u64> {
    let mut pos: u64 = 0;
    let mut central = Vec::new();
    let mut count: u64 = 0;
    let too_big = || io::Error::other("weights.npz would exceed 4 GiB (zip64 is not written)");
    for (name, a) in entries {
        let name = format!("{name}.npy");
        let header = npy_header(&a);
        let mut crc = Crc::new();
        crc.update(&header);
        a.for_each_chunk(|b| {
            crc.update(b);
            Ok(())
        })?;
        let size = header.len() as u64 + 8 * a.len() as u64;
        if size > LIMIT || pos > LIMIT {
            return Err(too_big());
        }
        let crc = crc.finish();
        let mut local = Vec::with_capacity(30 + name.len());
        local.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        local.extend_from_slice(&20u16.to_le_bytes()); // version needed
        local.extend_from_slice(&0u16.to_le_bytes()); // flags
        local.extend_from_slice(&0u16.to_le_bytes()); // stored
        local.extend_from_slice(&0u16.to_le_bytes()); // time
        local.extend_from_slice(&DOS_DATE.to_le_bytes());
        local.extend_from_slice(&crc.to_le_bytes());
        local.extend_from_slice(&(size as u32).to_le_bytes());
        local.extend_from_slice(&(size as u32).to_le_bytes());
        local.extend_from_slice(&(name.len() as u16).to_le_bytes());
        local.extend_from_slice(&0u16.to_le_bytes()); // extra
        local.extend_from_slice(name.as_bytes());
        w.write_all(&local)?;
        w.write_all(&header)?;
        a.for_each_chunk(|b| w.write_all(b))?;
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // made by
        central.extend_from_slice(&local[4..30]); // version needed .. extra len
        central.extend_from_slice(&0u16.to_le_bytes()); // comment
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&(0o100644u32 << 16).to_le_bytes()); // external: -rw-r--r--
        central.extend_from_slice(&(pos as u32).to_le_bytes());
        central.extend_from_slice(name.as_bytes());
        pos += local.len() as u64 + size;
        count += 1;
    }
    if count > 0xFFFF || pos > LIMIT {
        return Err(too_big());
    }
    w.write_all(&central)?;
    let mut end = Vec::with_capacity(22);
    end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    end.extend_from_slice(&[0, 0, 0, 0]);
    end.extend_from_slice(&(count as u16).to_le_bytes());
    end.extend_from_slice(&(count as u16).to_le_bytes());
    end.extend_from_slice(&(central.len() as u32).to_le_bytes());
    end.extend_from_slice(&(pos as u32).to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes());
    w.write_all(&end)?;
    Ok(pos + central.len() as u64 + 22)
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| "truncated zip structure".to_string())
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| "truncated zip structure".to_string())
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, String> {
    b.get(at..at + 8)
        .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
        .ok_or_else(|| "truncated zip structure".to_string())
}

/// Reads every `.npy` entry of an uncompressed npz archive, keyed by name without `.npy`.
pub fn read_npz(b: &[u8]) -> Result<BTreeMap<String, NpyArray>, String> {
    // End of central directory: the last signature within the final 64 KiB + 22 bytes.
    let lo = b.len().saturating_sub(22 + 0xFFFF);
    let eocd = (lo..b.len().saturating_sub(21))
        .rev()
        .find(|&i| b[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or("not a zip archive (no end of central directory)")?;
    let mut entries = u16_at(b, eocd + 10)? as u64;
    let mut cd = u32_at(b, eocd + 16)? as u64;
    if entries == 0xFFFF || cd == LIMIT {
        // zip64 end of central directory locator just before.
        let loc = eocd
            .checked_sub(20)
            .filter(|&l| u32_at(b, l).ok() == Some(0x0706_4b50))
            .ok_or("zip64 archive without a zip64 locator")?;
        let z = u64_at(b, loc + 8)? as usize;
        if u32_at(b, z)? != 0x0606_4b50 {
            return Err("bad zip64 end of central directory".into());
        }
        entries = u64_at(b, z + 32)?;
        cd = u64_at(b, z + 48)?;
    }
    let mut out = BTreeMap::new();
    let mut at = usize::try_from(cd).map_err(|_| "central directory offset overflows")?;
    for _ in 0..entries {
        if u32_at(b, at)? != 0x0201_4b50 {
            return Err("bad central directory entry".into());
        }
        let method = u16_at(b, at + 10)?;
        let mut csize = u32_at(b, at + 20)? as u64;
        let mut usize_ = u32_at(b, at + 24)? as u64;
        let nlen = u16_at(b, at + 28)? as usize;
        let xlen = u16_at(b, at + 30)? as usize;
        let clen = u16_at(b, at + 32)? as usize;
        let mut off = u32_at(b, at + 42)? as u64;
        let name = b
            .get(at + 46..at + 46 + nlen)
            .ok_or("truncated entry name")?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| "entry name is not UTF-8")?;
        // zip64 extra field: the fields that overflowed, in order.
        let extra = b
            .get(at + 46 + nlen..at + 46 + nlen + xlen)
            .ok_or("truncated extra field")?;
        let mut x = 0;
        while x + 4 <= extra.len() {
            let id = u16::from_le_bytes([extra[x], extra[x + 1]]);
            let len = u16::from_le_bytes([extra[x + 2], extra[x + 3]]) as usize;
            if id == 1 {
                let mut p = x + 4;
                for field in [&mut usize_, &mut csize, &mut off] {
                    if *field == LIMIT {
                        *field = u64_at(extra, p)?;
                        p += 8;
                    }
                }
            }
            x += 4 + len;
        }
        at += 46 + nlen + xlen + clen;
        if method != 0 {
            return Err(format!(
                "entry '{name}' is compressed (method {method}); only stored entries are read"
            ));
        }
        if csize != usize_ {
            return Err(format!("entry '{name}': stored sizes disagree"));
        }
        let off = usize::try_from(off).map_err(|_| "offset overflows")?;
        if u32_at(b, off)? != 0x0403_4b50 {
            return Err(format!("entry '{name}': bad local header"));
        }
        let start = off + 30 + u16_at(b, off + 26)? as usize + u16_at(b, off + 28)? as usize;
        let end = usize::try_from(csize)
            .ok()
            .and_then(|s| start.checked_add(s))
            .filter(|&e| e <= b.len())
            .ok_or_else(|| format!("entry '{name}' is truncated"))?;
        let Some(key) = name.strip_suffix(".npy") else {
            continue;
        };
        let arr = read_npy(&b[start..end]).map_err(|e| format!("array '{key}': {e}"))?;
        out.insert(key.to_string(), arr);
    }
    Ok(out)
}

/// Parses one `.npy` file (little-endian f8/i8, C order).
pub fn read_npy(b: &[u8]) -> Result<NpyArray, String> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err("not an .npy file".into());
    }
    let (hlen, hstart) = match b[6] {
        1 => (u16_at(b, 8)? as usize, 10),
        2 | 3 => (u32_at(b, 8)? as usize, 12),
        v => return Err(format!("unknown .npy version {v}")),
    };
    let header = b
        .get(hstart..hstart + hlen)
        .ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let value_of = |key: &str| -> Result<&str, String> {
        let k = format!("'{key}':");
        let i = header
            .find(&k)
            .ok_or_else(|| format!("header lacks '{key}'"))?;
        Ok(header[i + k.len()..].trim_start())
    };
    let descr = value_of("descr")?;
    let is_f64 = if descr.starts_with("'<f8'") {
        true
    } else if descr.starts_with("'<i8'") {
        false
    } else {
        return Err(format!(
            "dtype {} is not little-endian float64 or int64",
            descr.split(',').next().unwrap_or("?")
        ));
    };
    if !value_of("fortran_order")?.starts_with("False") {
        return Err("Fortran-order arrays are not read".into());
    }
    let shape_txt = value_of("shape")?;
    let close = shape_txt.find(')').ok_or("bad shape")?;
    let inner = shape_txt
        .get(1..close)
        .filter(|_| shape_txt.starts_with('('))
        .ok_or("bad shape")?;
    let shape: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad dimension '{s}'"))
        })
        .collect::<Result<_, _>>()?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("shape overflows")?;
    let data = &b[hstart + hlen..];
    if Some(data.len()) != n.checked_mul(8) {
        return Err(format!(
            "{} data bytes for shape {shape:?} ({n} elements of 8 bytes)",
            data.len()
        ));
    }
    let words = data.chunks_exact(8).map(|c| c.try_into().expect("8 bytes"));
    let data = if is_f64 {
        NpyData::F64(words.map(f64::from_le_bytes).collect())
    } else {
        NpyData::I64(words.map(i64::from_le_bytes).collect())
    };
    Ok(NpyArray { shape, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_a_known_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        // Slicing by 8 agrees with the bytewise loop on odd lengths and split updates.
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let bytewise = |d: &[u8]| {
            let t = crc_tables();
            let mut c = 0xFFFF_FFFFu32;
            for &b in d {
                c = t[0][((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
            }
            c ^ 0xFFFF_FFFF
        };
        for n in [0, 1, 7, 8, 9, 100, 1000] {
            assert_eq!(crc32(&data[..n]), bytewise(&data[..n]), "{n}");
        }
        let mut c = Crc::new();
        c.update(&data[..333]);
        c.update(&data[333..]);
        assert_eq!(c.finish(), bytewise(&data));
    }

    #[test]
    fn round_trip_and_header_alignment() {
        let a = NpyArray {
            shape: vec![2, 3],
            data: NpyData::F64(vec![1.5, -2.0, 0.0, 1e-300, f64::MAX, 3.25]),
        };
        let b = NpyArray {
            shape: vec![4],
            data: NpyData::I64(vec![0, -1, i64::MAX, 7]),
        };
        assert_eq!(npy_header(&a.as_ref()).len() % 64, 0);
        let mut buf = Vec::new();
        let n = write_npz(
            &mut buf,
            [
                ("a".to_string(), a.as_ref()),
                ("b_x".to_string(), b.as_ref()),
            ],
        )
        .unwrap();
        assert_eq!(n as usize, buf.len());
        let back = read_npz(&buf).unwrap();
        assert_eq!(back["a"], a);
        assert_eq!(back["b_x"], b);
        // Same arrays, same bytes.
        let mut again = Vec::new();
        write_npz(
            &mut again,
            [
                ("a".to_string(), a.as_ref()),
                ("b_x".to_string(), b.as_ref()),
            ],
        )
        .unwrap();
        assert_eq!(buf, again);
        // Corruption is an error, not a panic.
        for cut in [0, 10, buf.len() / 2, buf.len() - 5] {
            let _ = read_npz(&buf[..cut]);
        }
        assert!(read_npz(b"hello").is_err());
    }
}
