//! Independent depth checker.
//!
//! This module deliberately shares no code with [`crate::circuit`]: it reads a
//! circuit document as untyped JSON (`serde_json::Value`) and recomputes every
//! value's level from the op list with its own implementation of the cost
//! model in `docs/circuit-format.md` (versions 1 and 2: bootstrap points reset
//! the listed values to level 0; the depth is the max level over the outputs
//! and over values at the moment they are bootstrapped). It also recomputes
//! the level of each `layers` record. It is the thing tests trust when they
//! claim "this circuit has depth D".

use serde_json::Value;

/// What the checker found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// Max recomputed level over the outputs.
    pub depth: u32,
    /// The document's `depth` field.
    pub declared_depth: u32,
    /// Number of `mul` (ct×ct) ops.
    pub ct_ct_mults: u32,
    /// Number of `mul_const` ops (each costs a level).
    pub ct_const_mults: u32,
    /// Number of values (inputs + ops).
    pub values: usize,
    /// `ckks.multiplicative_depth` as declared.
    pub declared_ckks_depth: u32,
    /// Ciphertexts refreshed by bootstrap points (version 2).
    pub bootstrapped: u32,
    /// Per layer record: its name and the recomputed max level of its outputs.
    pub layers: Vec<(String, u32)>,
    /// Every discrepancy between declared and recomputed facts. Empty = consistent.
    pub mismatches: Vec<String>,
}

impl CheckReport {
    /// True when no declared level, depth or parameter disagrees with the recomputation.
    pub fn is_consistent(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Error for documents the checker cannot even read.
#[derive(Debug, thiserror::Error)]
#[error("depth checker: {0}")]
pub struct CheckError(pub String);

fn field<'a>(v: &'a Value, key: &str, ctx: &str) -> Result<&'a Value, CheckError> {
    v.get(key)
        .ok_or_else(|| CheckError(format!("{ctx}: missing field \"{key}\"")))
}

fn uint(v: &Value, key: &str, ctx: &str) -> Result<u64, CheckError> {
    field(v, key, ctx)?.as_u64().ok_or_else(|| {
        CheckError(format!(
            "{ctx}: field \"{key}\" is not a non-negative integer"
        ))
    })
}

/// Check a circuit document given as text.
pub fn check_json(text: &str) -> Result<CheckReport, CheckError> {
    let v: Value = serde_json::from_str(text).map_err(|e| CheckError(format!("not JSON: {e}")))?;
    check_value(&v)
}

/// Check a parsed circuit document.
pub fn check_value(doc: &Value) -> Result<CheckReport, CheckError> {
    if doc.get("format").and_then(Value::as_str) != Some("pannc-circuit") {
        return Err(CheckError("\"format\" is not \"pannc-circuit\"".into()));
    }
    let version = doc.get("version").and_then(Value::as_u64);
    if !matches!(version, Some(1) | Some(2)) {
        return Err(CheckError("only versions 1 and 2 are understood".into()));
    }
    // Bootstrap points: before op k, the listed values drop to level 0.
    let mut refresh: Vec<(u64, Vec<u64>)> = Vec::new();
    if let Some(bs) = doc.get("bootstraps") {
        if version != Some(2) {
            return Err(CheckError("\"bootstraps\" needs version 2".into()));
        }
        let bs = bs
            .as_array()
            .ok_or_else(|| CheckError("\"bootstraps\" is not an array".into()))?;
        for (i, b) in bs.iter().enumerate() {
            let ctx = format!("bootstrap point #{i}");
            let at = uint(b, "before_op", &ctx)?;
            if refresh.last().is_some_and(|(p, _)| *p >= at) {
                return Err(CheckError(format!(
                    "{ctx}: before_op {at} is not after the previous point"
                )));
            }
            let vals = field(b, "values", &ctx)?
                .as_array()
                .ok_or_else(|| CheckError(format!("{ctx}: \"values\" is not an array")))?;
            if vals.is_empty() {
                return Err(CheckError(format!("{ctx}: no values")));
            }
            let mut ids = Vec::with_capacity(vals.len());
            for v in vals {
                let id = v
                    .as_u64()
                    .ok_or_else(|| CheckError(format!("{ctx}: value id is not an integer")))?;
                if ids.contains(&id) {
                    return Err(CheckError(format!("{ctx}: value {id} listed twice")));
                }
                ids.push(id);
            }
            refresh.push((at, ids));
        }
    }
    let mut bootstrapped = 0u32;
    let mut refreshed_max = 0u32;
    let n_consts = field(doc, "constants", "document")?
        .as_array()
        .ok_or_else(|| CheckError("\"constants\" is not an array".into()))?
        .len();
    let mut level: Vec<u32> = Vec::new();
    let mut mismatches = Vec::new();
    let inputs = field(doc, "inputs", "document")?
        .as_array()
        .ok_or_else(|| CheckError("\"inputs\" is not an array".into()))?;
    for (i, inp) in inputs.iter().enumerate() {
        let ctx = format!("input #{i}");
        if uint(inp, "value", &ctx)? != i as u64 {
            return Err(CheckError(format!("{ctx}: value id must be {i}")));
        }
        let l = inp.get("level").and_then(Value::as_u64).unwrap_or(0);
        level.push(l as u32);
    }
    let mut now = level.clone();
    let mut next_refresh = 0usize;
    let mut do_refresh = |k: u64, now: &mut Vec<u32>| -> Result<(), CheckError> {
        while let Some((at, ids)) = refresh.get(next_refresh) {
            if *at != k {
                break;
            }
            for &id in ids {
                let l = now.get(id as usize).ok_or_else(|| {
                    CheckError(format!(
                        "bootstrap before op #{k}: value {id} is not defined yet"
                    ))
                })?;
                refreshed_max = refreshed_max.max(*l);
                now[id as usize] = 0;
                bootstrapped += 1;
            }
            next_refresh += 1;
        }
        Ok(())
    };
    let ops = field(doc, "ops", "document")?
        .as_array()
        .ok_or_else(|| CheckError("\"ops\" is not an array".into()))?;
    let (mut ct_ct, mut ct_const) = (0u32, 0u32);
    for (i, op) in ops.iter().enumerate() {
        do_refresh(i as u64, &mut now)?;
        let kind = field(op, "op", &format!("op #{i}"))?
            .as_str()
            .ok_or_else(|| CheckError(format!("op #{i}: \"op\" is not a string")))?;
        let ctx = format!("op #{i} ({kind})");
        let id = level.len() as u64;
        if uint(op, "out", &ctx)? != id {
            return Err(CheckError(format!("{ctx}: must define value {id}")));
        }
        let operand = |key: &str| -> Result<u32, CheckError> {
            let a = uint(op, key, &ctx)?;
            if a >= id {
                return Err(CheckError(format!(
                    "{ctx}: operand {key}={a} is not defined earlier"
                )));
            }
            Ok(now[a as usize])
        };
        let constant = |key: &str| -> Result<(), CheckError> {
            let c = uint(op, key, &ctx)?;
            if c as usize >= n_consts {
                return Err(CheckError(format!("{ctx}: constant {c} out of range")));
            }
            Ok(())
        };
        let l = match kind {
            "add" | "sub" => operand("a")?.max(operand("b")?),
            "mul" => {
                ct_ct += 1;
                operand("a")?.max(operand("b")?) + 1
            }
            "mul_const" => {
                constant("c")?;
                ct_const += 1;
                operand("a")? + 1
            }
            "add_const" => {
                constant("c")?;
                operand("a")?
            }
            "mul_int" => {
                if field(op, "k", &ctx)?.as_i64().is_none() {
                    return Err(CheckError(format!("{ctx}: \"k\" is not an integer")));
                }
                operand("a")?
            }
            "neg" => operand("a")?,
            other => return Err(CheckError(format!("op #{i}: unknown op \"{other}\""))),
        };
        let declared = uint(op, "level", &ctx)?;
        if declared != l as u64 {
            mismatches.push(format!("{ctx}: declared level {declared}, recomputed {l}"));
        }
        level.push(l);
        now.push(l);
    }
    do_refresh(ops.len() as u64, &mut now)?;
    if next_refresh < refresh.len() {
        return Err(CheckError(format!(
            "bootstrap point #{next_refresh} is past the last op"
        )));
    }
    let outputs = field(doc, "outputs", "document")?
        .as_array()
        .ok_or_else(|| CheckError("\"outputs\" is not an array".into()))?;
    if outputs.is_empty() {
        return Err(CheckError("no outputs".into()));
    }
    let mut depth = refreshed_max;
    for (i, o) in outputs.iter().enumerate() {
        let v = uint(o, "value", &format!("output #{i}"))?;
        let l = *now
            .get(v as usize)
            .ok_or_else(|| CheckError(format!("output #{i}: value {v} undefined")))?;
        depth = depth.max(l);
    }
    let mut layers = Vec::new();
    if let Some(ls) = doc.get("layers") {
        let ls = ls
            .as_array()
            .ok_or_else(|| CheckError("\"layers\" is not an array".into()))?;
        for (i, l) in ls.iter().enumerate() {
            let name = l
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            let ctx = format!("layer #{i} ('{name}')");
            let outs = field(l, "outputs", &ctx)?
                .as_array()
                .ok_or_else(|| CheckError(format!("{ctx}: \"outputs\" is not an array")))?;
            let mut lvl = 0;
            for v in outs {
                let v = v
                    .as_u64()
                    .ok_or_else(|| CheckError(format!("{ctx}: output id is not an integer")))?;
                lvl = lvl.max(
                    *level
                        .get(v as usize)
                        .ok_or_else(|| CheckError(format!("{ctx}: output value {v} undefined")))?,
                );
            }
            let declared = uint(l, "level", &ctx)?;
            if declared != lvl as u64 {
                mismatches.push(format!(
                    "{ctx}: declared level {declared}, recomputed {lvl}"
                ));
            }
            layers.push((name, lvl));
        }
    }
    let declared_depth = uint(doc, "depth", "document")? as u32;
    if declared_depth != depth {
        mismatches.push(format!(
            "declared depth {declared_depth}, recomputed {depth}"
        ));
    }
    let declared_ckks_depth = uint(
        field(doc, "ckks", "document")?,
        "multiplicative_depth",
        "ckks",
    )? as u32;
    if declared_ckks_depth < depth {
        mismatches.push(format!(
            "ckks.multiplicative_depth {declared_ckks_depth} < recomputed depth {depth}"
        ));
    }
    Ok(CheckReport {
        depth,
        declared_depth,
        ct_ct_mults: ct_ct,
        ct_const_mults: ct_const,
        values: level.len(),
        declared_ckks_depth,
        bootstrapped,
        layers,
        mismatches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"format":"pannc-circuit","version":1,"name":"t",
      "inputs":[{"name":"x","value":0}],"constants":[0.5],
      "ops":[{"out":1,"op":"mul","a":0,"b":0,"level":1},
             {"out":2,"op":"mul_const","a":1,"c":0,"level":2},
             {"out":3,"op":"mul_int","a":2,"k":3,"level":2},
             {"out":4,"op":"add","a":3,"b":0,"level":2}],
      "outputs":[{"name":"y","value":4}],"depth":2,
      "stats":{},"ckks":{"multiplicative_depth":2}}"#;

    #[test]
    fn recomputes_levels() {
        let r = check_json(DOC).unwrap();
        assert_eq!(r.depth, 2);
        assert_eq!(r.ct_ct_mults, 1);
        assert_eq!(r.ct_const_mults, 1);
        assert!(r.is_consistent(), "{:?}", r.mismatches);
    }

    #[test]
    fn flags_lies() {
        let lie = DOC.replace(
            r#""level":2},
             {"out":3"#,
            r#""level":1},
             {"out":3"#,
        );
        let r = check_json(&lie).unwrap();
        assert!(!r.is_consistent());
        assert!(
            r.mismatches[0].contains("op #1 (mul_const)"),
            "{:?}",
            r.mismatches
        );
        let lie = DOC.replace(r#""depth":2"#, r#""depth":1"#);
        assert!(!check_json(&lie).unwrap().is_consistent());
    }

    #[test]
    fn rejects_garbage() {
        assert!(check_json("[]").is_err());
        assert!(check_json(&DOC.replace("\"mul_int\"", "\"rotate\"")).is_err());
        assert!(check_json(&DOC.replace("\"a\":1,\"c\":0", "\"a\":7,\"c\":0")).is_err());
        assert!(check_json(&DOC.replace("\"c\":0", "\"c\":4")).is_err());
    }
}
