//! The circuit document format: round trip, rejection of bad documents, and the
//! example in docs/circuit-format.md staying true.

use pannc_fhe::{check_json, plan_chebyshev, Circuit, FheError, Interval, PlanOptions};

fn doc_example() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/circuit-format.md");
    let md = std::fs::read_to_string(path).unwrap();
    let start = md.find("```json\n").expect("json block") + "```json\n".len();
    let end = start + md[start..].find("```").unwrap();
    md[start..end].to_string()
}

#[test]
fn documented_example_is_what_the_planner_emits() {
    let doc = Circuit::from_json(&doc_example()).unwrap();
    let r = check_json(&doc_example()).unwrap();
    assert!(r.is_consistent(), "{:?}", r.mismatches);
    assert_eq!(r.depth, 2);
    let planned = plan_chebyshev(
        &[0.5, 0.75, 0.5, 0.3],
        Interval::new(-3.0, 5.0).unwrap(),
        &PlanOptions::default(),
    )
    .unwrap();
    assert_eq!(doc, planned);
}

fn sample() -> String {
    let c = plan_chebyshev(
        &[0.1, -0.4, 0.3, 0.2, -0.6],
        Interval::UNIT,
        &PlanOptions::default(),
    )
    .unwrap();
    c.to_json().unwrap()
}

#[test]
fn rejects_wrong_format_version_and_lies() {
    let good = sample();
    assert!(Circuit::from_json(&good).is_ok());
    let bad_format = good.replace("\"pannc-circuit\"", "\"other\"");
    assert!(matches!(
        Circuit::from_json(&bad_format),
        Err(FheError::Format(_))
    ));
    assert!(check_json(&bad_format).is_err());
    // Planner circuits have no bootstraps: they are version 1 documents.
    assert!(good.contains("\"version\": 1"));
    let bad_version = good.replace("\"version\": 1", "\"version\": 3");
    assert!(matches!(
        Circuit::from_json(&bad_version),
        Err(FheError::Format(_))
    ));
    assert!(check_json(&bad_version).is_err());
    // Lower the declared depth: both readers notice.
    let v: serde_json::Value = serde_json::from_str(&good).unwrap();
    let depth = v["depth"].as_u64().unwrap();
    let mut lie = v.clone();
    lie["depth"] = serde_json::json!(depth - 1);
    let lie = lie.to_string();
    assert!(Circuit::from_json(&lie).is_err());
    assert!(!check_json(&lie).unwrap().is_consistent());
    // Declare a mul at a lower level than its operands give.
    let mut lie = v.clone();
    let ops = lie["ops"].as_array_mut().unwrap();
    let m = ops.iter_mut().rev().find(|o| o["op"] == "mul").unwrap();
    let l = m["level"].as_u64().unwrap();
    m["level"] = serde_json::json!(l - 1);
    let lie = lie.to_string();
    let err = Circuit::from_json(&lie).unwrap_err().to_string();
    assert!(err.contains("(mul)"), "{err}");
    assert!(!check_json(&lie).unwrap().is_consistent());
    // Use-before-definition and undefined constants are errors, not panics.
    let mut bad = v.clone();
    bad["ops"][0]["a"] = serde_json::json!(1000);
    assert!(Circuit::from_json(&bad.to_string()).is_err());
    assert!(check_json(&bad.to_string()).is_err());
    let mut bad = v;
    let ops = bad["ops"].as_array_mut().unwrap();
    let k = ops.iter_mut().find(|o| o.get("c").is_some()).unwrap();
    k["c"] = serde_json::json!(999);
    assert!(Circuit::from_json(&bad.to_string()).is_err());
    assert!(check_json(&bad.to_string()).is_err());
    assert!(Circuit::from_json("not json").is_err());
}

#[test]
fn eval_checks_arity() {
    let c = Circuit::from_json(&sample()).unwrap();
    assert!(c.eval(&[]).is_err());
    assert!(c.eval(&[0.1, 0.2]).is_err());
    assert_eq!(c.eval(&[0.25]).unwrap().len(), 1);
}

#[test]
fn builder_misuse_is_an_error_not_a_panic() {
    use pannc_fhe::{CircuitBuilder, Output, ValueId};
    let mut b = CircuitBuilder::new("bad");
    let x = b.input("x").unwrap();
    let y = b.mul(x, ValueId(42));
    assert!(b.input("late").is_err());
    let r = b.finish(
        vec![Output {
            name: "y".into(),
            value: y,
        }],
        None,
    );
    assert!(r.unwrap_err().to_string().contains("before its definition"));
}
