//! Structure-aware mutation of protobuf bytes without a schema: the input is parsed as a tree
//! of wire-format fields (length-delimited fields that parse as messages become sub-trees),
//! one field somewhere in the tree is changed, and the tree is encoded again with correct
//! lengths. Byte-level mutations mostly break the encoding and end in the decoder; these keep
//! the model decodable and reach the importer's and the passes' checks.

use crate::Rng;

#[derive(Clone, Debug)]
enum Val {
    Varint(u64),
    I64([u8; 8]),
    I32([u8; 4]),
    /// Bytes, and their parse as a message when they are one.
    Len(Vec<u8>, Option<Vec<Field>>),
}

#[derive(Clone, Debug)]
struct Field {
    num: u64,
    val: Val,
}

const MAX_DEPTH: usize = 12;

fn varint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *data.get(*pos)?;
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn parse(data: &[u8], depth: usize) -> Option<Vec<Field>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let key = varint(data, &mut pos)?;
        let (num, wire) = (key >> 3, key & 7);
        if num == 0 {
            return None;
        }
        let val = match wire {
            0 => Val::Varint(varint(data, &mut pos)?),
            1 => {
                let b: [u8; 8] = data.get(pos..pos + 8)?.try_into().ok()?;
                pos += 8;
                Val::I64(b)
            }
            5 => {
                let b: [u8; 4] = data.get(pos..pos + 4)?.try_into().ok()?;
                pos += 4;
                Val::I32(b)
            }
            2 => {
                let n = usize::try_from(varint(data, &mut pos)?).ok()?;
                let end = pos.checked_add(n)?;
                let b = data.get(pos..end)?.to_vec();
                pos = end;
                let sub = if depth < MAX_DEPTH && !b.is_empty() {
                    parse(&b, depth + 1)
                } else {
                    None
                };
                Val::Len(b, sub)
            }
            _ => return None,
        };
        out.push(Field { num, val });
    }
    Some(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn encode(fields: &[Field], out: &mut Vec<u8>) {
    for f in fields {
        match &f.val {
            Val::Varint(v) => {
                put_varint(out, f.num << 3);
                put_varint(out, *v);
            }
            Val::I64(b) => {
                put_varint(out, (f.num << 3) | 1);
                out.extend_from_slice(b);
            }
            Val::I32(b) => {
                put_varint(out, (f.num << 3) | 5);
                out.extend_from_slice(b);
            }
            Val::Len(b, sub) => {
                put_varint(out, (f.num << 3) | 2);
                match sub {
                    Some(s) => {
                        let mut inner = Vec::new();
                        encode(s, &mut inner);
                        put_varint(out, inner.len() as u64);
                        out.extend_from_slice(&inner);
                    }
                    None => {
                        put_varint(out, b.len() as u64);
                        out.extend_from_slice(b);
                    }
                }
            }
        }
    }
}

/// Every message of the tree (the root and each parsed sub-message), by path of field indices.
fn messages(fields: &[Field], path: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    out.push(path.clone());
    for (i, f) in fields.iter().enumerate() {
        if let Val::Len(_, Some(sub)) = &f.val {
            path.push(i);
            messages(sub, path, out);
            path.pop();
        }
    }
}

fn message_at<'a>(root: &'a mut Vec<Field>, path: &[usize]) -> &'a mut Vec<Field> {
    let mut m = root;
    for &i in path {
        m = match &mut m[i].val {
            Val::Len(_, Some(sub)) => sub,
            _ => unreachable!("paths point at parsed messages"),
        };
    }
    m
}

/// Short strings of the tree (names, op types, attribute names), to reuse elsewhere: wiring a
/// node to an existing value, renaming an op to another op of the model.
fn strings(fields: &[Field], out: &mut Vec<Vec<u8>>) {
    for f in fields {
        if let Val::Len(b, sub) = &f.val {
            if b.len() <= 64 && !b.is_empty() && b.iter().all(|c| c.is_ascii_graphic()) {
                out.push(b.clone());
            }
            if let Some(s) = sub {
                strings(s, out);
            }
        }
    }
}

const OPS: &[&str] = &[
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Div",
    "Dropout",
    "Erf",
    "Flatten",
    "Gather",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "LRN",
    "LeakyRelu",
    "MatMul",
    "MaxPool",
    "Mul",
    "Pad",
    "ReduceMean",
    "Relu",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Softmax",
    "Squeeze",
    "Sub",
    "Sum",
    "Tanh",
    "Transpose",
    "Unsqueeze",
];

const VARINTS: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    16,
    255,
    1 << 15,
    1 << 20,
    1 << 31,
    1 << 32,
    1 << 40,
    1 << 62,
    i64::MAX as u64,
    u64::MAX,          // -1 as int64
    u64::MAX - 1,      // -2
    i64::MIN as u64,   // int64 min
    u64::MAX - 0xffff, // a large negative
];

const FLOATS: &[f32] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    1e-30,
    1e30,
    f32::MAX,
    f32::MIN_POSITIVE,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
];

/// One structured mutation of `data`; `false` when `data` does not parse as a protobuf message
/// (the caller then mutates bytes).
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, max_len: usize) -> bool {
    let Some(mut root) = parse(data, 0) else {
        return false;
    };
    let mut paths = Vec::new();
    messages(&root, &mut Vec::new(), &mut paths);
    let mut names = Vec::new();
    strings(&root, &mut names);
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        let path = paths[rng.below(paths.len())].clone();
        let msg = message_at(&mut root, &path);
        if msg.is_empty() {
            continue;
        }
        let i = rng.below(msg.len());
        match rng.below(10) {
            // change the value in place
            0..=4 => {
                let f = &mut msg[i];
                match &mut f.val {
                    Val::Varint(v) => {
                        *v = match rng.below(3) {
                            0 => VARINTS[rng.below(VARINTS.len())],
                            1 => v.wrapping_add(rng.below(5) as u64).wrapping_sub(2),
                            _ => rng.next() >> rng.below(64),
                        }
                    }
                    Val::I32(b) => *b = FLOATS[rng.below(FLOATS.len())].to_le_bytes(),
                    Val::I64(b) => *b = (FLOATS[rng.below(FLOATS.len())] as f64).to_le_bytes(),
                    Val::Len(b, sub) => {
                        *sub = None;
                        match rng.below(4) {
                            0 if !names.is_empty() => *b = names[rng.below(names.len())].clone(),
                            1 => *b = OPS[rng.below(OPS.len())].as_bytes().to_vec(),
                            2 => b.truncate(rng.below(b.len() + 1)),
                            _ => {
                                if !b.is_empty() {
                                    let k = rng.below(b.len());
                                    b[k] = rng.next() as u8;
                                }
                            }
                        }
                    }
                }
            }
            // delete the field
            5 | 6 => {
                msg.remove(i);
            }
            // duplicate it (repeated fields grow, singular ones are overridden)
            7 => {
                let f = msg[i].clone();
                let j = rng.below(msg.len() + 1);
                msg.insert(j, f);
            }
            // swap two fields
            8 => {
                let j = rng.below(msg.len());
                msg.swap(i, j);
            }
            // a new varint field with a small field number
            _ => {
                let num = 1 + rng.below(24) as u64;
                let v = VARINTS[rng.below(VARINTS.len())];
                msg.push(Field {
                    num,
                    val: Val::Varint(v),
                });
            }
        }
        // paths below a changed message may be stale: recompute
        paths.clear();
        messages(&root, &mut Vec::new(), &mut paths);
    }
    let mut out = Vec::with_capacity(data.len());
    encode(&root, &mut out);
    out.truncate(max_len);
    *data = out;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_is_exact_for_canonical_encodings() {
        // field 1 varint 150, field 2 message { field 1 string "ab" }, field 3 fixed32
        let data = [
            0x08, 0x96, 0x01, 0x12, 0x04, 0x0a, 0x02, b'a', b'b', 0x1d, 1, 2, 3, 4,
        ];
        let f = parse(&data, 0).unwrap();
        let mut out = Vec::new();
        encode(&f, &mut out);
        assert_eq!(out, data);
    }

    #[test]
    fn mutations_keep_the_encoding_valid() {
        let data = vec![
            0x08, 0x96, 0x01, 0x12, 0x04, 0x0a, 0x02, b'a', b'b', 0x1d, 1, 2, 3, 4,
        ];
        let mut rng = Rng(7);
        for _ in 0..1000 {
            let mut d = data.clone();
            assert!(mutate(&mut rng, &mut d, 1 << 20));
            assert!(parse(&d, 0).is_some(), "{d:?}");
        }
    }
}
