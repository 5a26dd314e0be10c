//! The egg language of circuit ops, its scalar type, and the e-class analysis
//! (constant folding + minimum achievable level).

use std::fmt;
use std::str::FromStr;

use egg::{define_language, Analysis, DidMerge, EGraph, Id, Symbol};

/// An f64 constant usable as an egg leaf (total order by `f64::total_cmp`,
/// hashing by bit pattern, `-0.0` normalised to `0.0`).
#[derive(Clone, Copy, Debug)]
pub struct Scalar(f64);

impl Scalar {
    pub fn new(v: f64) -> Self {
        Scalar(if v == 0.0 { 0.0 } else { v })
    }
    pub fn get(self) -> f64 {
        self.0
    }
    /// `Some(k)` for exact, modest integers (these cost no level).
    pub fn as_int(self) -> Option<i64> {
        pannc_fhe::circuit::as_small_int(self.0)
    }
}

impl PartialEq for Scalar {
    fn eq(&self, o: &Self) -> bool {
        self.0.to_bits() == o.0.to_bits()
    }
}
impl Eq for Scalar {}
impl PartialOrd for Scalar {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scalar {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}
impl std::hash::Hash for Scalar {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.to_bits().hash(h)
    }
}
impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:?}` prints the shortest round-tripping form with a decimal point.
        write!(f, "{:?}", self.0)
    }
}
impl FromStr for Scalar {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let v: f64 = s.parse().map_err(|_| format!("not a number: {s}"))?;
        if !v.is_finite() {
            return Err(format!("non-finite constant {s}"));
        }
        // Require a digit so that identifiers such as `inf` stay symbols.
        if !s.chars().any(|c| c.is_ascii_digit()) {
            return Err(format!("not a number: {s}"));
        }
        Ok(Scalar::new(v))
    }
}

define_language! {
    /// Circuit ops. Whether `*` is ct×ct, ct×real or ct×integer is decided by
    /// the constant-ness of its operands (the analysis), not by the node.
    /// `cheb` (`(cheb k x)` = T_k(x)) and `pow` (`(pow x k)` = x^k) are
    /// equational glue for the Chebyshev and power-splitting rules; they are
    /// never extracted (infinite cost), so every extracted term is made of
    /// real circuit ops.
    pub enum Fhe {
        "+" = Add([Id; 2]),
        "-" = Sub([Id; 2]),
        "*" = Mul([Id; 2]),
        "neg" = Neg(Id),
        "cheb" = Cheb([Id; 2]),
        "pow" = Pow([Id; 2]),
        Num(Scalar),
        Var(Symbol),
    }
}

/// Per-e-class facts.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassData {
    /// The class's value if it is a known constant.
    pub constant: Option<Scalar>,
    /// Minimum level over the class's extractable e-nodes (`u32::MAX` if none yet).
    pub level: u32,
}

/// Level of a node given the facts of its children (the CKKS cost model).
/// `Cheb`/`Pow` are not executable: `u32::MAX`.
pub fn node_level(
    node: &Fhe,
    var_level: impl Fn(Symbol) -> u32,
    child: impl Fn(Id) -> ClassData,
) -> u32 {
    let sat1 = |l: u32| l.saturating_add(1);
    match node {
        Fhe::Num(_) => 0,
        Fhe::Var(s) => var_level(*s),
        Fhe::Add([a, b]) | Fhe::Sub([a, b]) => child(*a).level.max(child(*b).level),
        Fhe::Neg(a) => child(*a).level,
        Fhe::Mul([a, b]) => {
            let (da, db) = (child(*a), child(*b));
            match (da.constant, db.constant) {
                (Some(_), Some(_)) => 0,
                (Some(c), None) => scalar_level(c, db.level),
                (None, Some(c)) => scalar_level(c, da.level),
                (None, None) => sat1(da.level.max(db.level)),
            }
        }
        Fhe::Cheb(_) | Fhe::Pow(_) => u32::MAX,
    }
}

fn scalar_level(c: Scalar, l: u32) -> u32 {
    if c.as_int().is_some() {
        l
    } else {
        l.saturating_add(1)
    }
}

/// Constant folding + level analysis. `input_levels` gives each input's
/// starting level (default 0).
#[derive(Default)]
pub struct LevelAnalysis {
    pub input_levels: Vec<(Symbol, u32)>,
}

impl LevelAnalysis {
    pub(crate) fn var_level(&self, s: Symbol) -> u32 {
        self.input_levels
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, l)| *l)
            .unwrap_or(0)
    }
}

fn fold(node: &Fhe, c: impl Fn(Id) -> Option<f64>) -> Option<f64> {
    let v = match node {
        Fhe::Num(s) => s.get(),
        Fhe::Add([a, b]) => c(*a)? + c(*b)?,
        Fhe::Sub([a, b]) => c(*a)? - c(*b)?,
        Fhe::Mul([a, b]) => c(*a)? * c(*b)?,
        Fhe::Neg(a) => -c(*a)?,
        _ => return None,
    };
    v.is_finite().then_some(v)
}

impl Analysis<Fhe> for LevelAnalysis {
    type Data = ClassData;

    fn make(egraph: &mut EGraph<Fhe, Self>, enode: &Fhe) -> ClassData {
        let constant = fold(enode, |id| egraph[id].data.constant.map(Scalar::get)).map(Scalar::new);
        let level = if constant.is_some() {
            0
        } else {
            node_level(
                enode,
                |s| egraph.analysis.var_level(s),
                |id| egraph[id].data.clone(),
            )
        };
        ClassData { constant, level }
    }

    fn merge(&mut self, to: &mut ClassData, from: ClassData) -> DidMerge {
        let mut changed_to = false;
        let mut changed_from = false;
        if to.constant.is_none() && from.constant.is_some() {
            to.constant = from.constant;
            changed_to = true;
        } else if to.constant.is_some() && from.constant.is_none() {
            changed_from = true;
        }
        if from.level < to.level {
            to.level = from.level;
            changed_to = true;
        } else if to.level < from.level {
            changed_from = true;
        }
        DidMerge(changed_to, changed_from)
    }

    fn modify(egraph: &mut EGraph<Fhe, Self>, id: Id) {
        if let Some(c) = egraph[id].data.constant {
            let n = egraph.add(Fhe::Num(c));
            egraph.union(id, n);
        }
    }
}
