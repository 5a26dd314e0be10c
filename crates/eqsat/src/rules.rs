//! Named rewrite rules.
//!
//! Every rule is an identity of real arithmetic (floating-point rounding of
//! folded constants aside), so extraction from any e-class yields a circuit
//! computing the same polynomial. Groups:
//!
//! - **arith**: commutativity, associativity, distributivity/factoring,
//!   subtraction/negation normal forms, units and zero.
//! - **scalar**: moving real constants through products and sums
//!   (absorption into the operand with level slack, hoisting out, merging two
//!   scalars into one folded constant). These are what lets a level-costing
//!   scalar be "merged into an adjacent multiply".
//! - **power**: `x·x = x^2`, `x^m·x = x^(m+1)`, `x^m·x^n = x^(m+n)` and the
//!   balanced split `x^n = x^⌈n/2⌉·x^⌊n/2⌋` (exponents capped at 64).
//! - **chebyshev**: (every input `x` is seeded as `T_1(x)`) recognising `T_k` (`2·T_m·T_n − T_{|m−n|} = T_{m+n}`,
//!   `2·T_m² − 1 = T_{2m}`), the product identity
//!   `T_m·T_n = ½(T_{m+n} + T_{|m−n|})`, and re-expansion of `T_k` with two
//!   different splits (indices capped at 1024).

use egg::{rewrite as rw, Applier, EGraph, Id, PatternAst, Rewrite, Subst, Symbol, Var};

use crate::lang::{Fhe, LevelAnalysis, Scalar};

type EG = EGraph<Fhe, LevelAnalysis>;
type Rw = Rewrite<Fhe, LevelAnalysis>;

const POW_CAP: i64 = 64;
const CHEB_CAP: i64 = 1024;

/// Which rule groups to use.
#[derive(Clone, Debug)]
pub struct RuleSet {
    pub arith: bool,
    pub scalar: bool,
    pub power: bool,
    pub chebyshev: bool,
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet {
            arith: true,
            scalar: true,
            power: true,
            chebyshev: true,
        }
    }
}

fn is_const(v: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v: Var = v.parse().expect("pattern variable");
    move |eg, _, s| eg[s[v]].data.constant.is_some()
}

fn not_const(v: &str) -> impl Fn(&mut EG, Id, &Subst) -> bool {
    let v: Var = v.parse().expect("pattern variable");
    move |eg, _, s| eg[s[v]].data.constant.is_none()
}

fn int_of(eg: &EG, id: Id) -> Option<i64> {
    eg[id].data.constant.and_then(Scalar::as_int)
}

/// An applier computed by a closure: returns the class to union with the match.
struct Dyn<F>(F);

impl<F> Applier<Fhe, LevelAnalysis> for Dyn<F>
where
    F: Fn(&mut EG, &Subst) -> Option<Id> + Send + Sync + 'static,
{
    fn apply_one(
        &self,
        egraph: &mut EG,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<Fhe>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        match (self.0)(egraph, subst) {
            Some(new) if egraph.union(eclass, new) => vec![eclass],
            _ => vec![],
        }
    }
}

fn num(eg: &mut EG, v: f64) -> Id {
    eg.add(Fhe::Num(Scalar::new(v)))
}

fn pow(eg: &mut EG, x: Id, k: i64) -> Id {
    if k == 1 {
        return x;
    }
    let k = num(eg, k as f64);
    eg.add(Fhe::Pow([x, k]))
}

pub(crate) fn cheb(eg: &mut EG, k: i64, x: Id) -> Id {
    match k {
        0 => num(eg, 1.0),
        1 => x,
        _ => {
            let k = num(eg, k as f64);
            eg.add(Fhe::Cheb([k, x]))
        }
    }
}

/// `T_k = 2·T_a·T_b − T_{a−b}` with `b = k − a`.
fn cheb_split(eg: &mut EG, k: i64, a: i64, x: Id) -> Id {
    let b = k - a;
    let ta = cheb(eg, a, x);
    let tb = cheb(eg, b, x);
    let p = eg.add(Fhe::Mul([ta, tb]));
    let two = num(eg, 2.0);
    let p2 = eg.add(Fhe::Mul([two, p]));
    let td = cheb(eg, a - b, x);
    eg.add(Fhe::Sub([p2, td]))
}

fn v(s: &str) -> Var {
    s.parse().expect("pattern variable")
}

/// The rules of the selected groups, each with a descriptive name.
pub fn rules(set: &RuleSet) -> Vec<Rw> {
    let mut r: Vec<Rw> = vec![];
    if set.arith {
        r.extend([
            rw!("add-comm"; "(+ ?a ?b)" => "(+ ?b ?a)"),
            rw!("mul-comm"; "(* ?a ?b)" => "(* ?b ?a)"),
            rw!("add-assoc-left"; "(+ ?a (+ ?b ?c))" => "(+ (+ ?a ?b) ?c)"),
            rw!("add-assoc-right"; "(+ (+ ?a ?b) ?c)" => "(+ ?a (+ ?b ?c))"),
            rw!("mul-assoc-left"; "(* ?a (* ?b ?c))" => "(* (* ?a ?b) ?c)"),
            rw!("mul-assoc-right"; "(* (* ?a ?b) ?c)" => "(* ?a (* ?b ?c))"),
            rw!("distribute"; "(* ?a (+ ?b ?c))" => "(+ (* ?a ?b) (* ?a ?c))"),
            rw!("factor"; "(+ (* ?a ?b) (* ?a ?c))" => "(* ?a (+ ?b ?c))"),
            rw!("sub-as-add-neg"; "(- ?a ?b)" => "(+ ?a (neg ?b))"),
            rw!("add-neg-as-sub"; "(+ ?a (neg ?b))" => "(- ?a ?b)"),
            rw!("neg-as-mul-minus-one"; "(neg ?a)" => "(* -1 ?a)"),
            rw!("mul-minus-one-as-neg"; "(* -1 ?a)" => "(neg ?a)"),
            rw!("add-zero"; "(+ ?a 0)" => "?a"),
            rw!("mul-one"; "(* ?a 1)" => "?a"),
            rw!("mul-zero"; "(* ?a 0)" => "0"),
        ]);
    }
    if set.scalar {
        r.extend([
            rw!("scalar-absorb"; "(* ?c (* ?a ?b))" => "(* (* ?c ?a) ?b)" if is_const("?c")),
            rw!("scalar-hoist"; "(* (* ?c ?a) ?b)" => "(* ?c (* ?a ?b))" if is_const("?c")),
            rw!("scalar-merge"; "(* ?c (* ?d ?a))" => "(* (* ?c ?d) ?a)" if is_const("?c") if is_const("?d")),
            rw!("scalar-distribute"; "(* ?c (+ ?a ?b))" => "(+ (* ?c ?a) (* ?c ?b))" if is_const("?c")),
            rw!("scalar-distribute-sub"; "(* ?c (- ?a ?b))" => "(- (* ?c ?a) (* ?c ?b))" if is_const("?c")),
            rw!("scalar-factor"; "(+ (* ?c ?a) (* ?c ?b))" => "(* ?c (+ ?a ?b))" if is_const("?c")),
            rw!("const-add-hoist"; "(+ (+ ?a ?c) ?b)" => "(+ (+ ?a ?b) ?c)" if is_const("?c")),
        ]);
    }
    if set.power {
        r.push(rw!("pow-intro"; "(* ?a ?a)" => "(pow ?a 2)" if not_const("?a")));
        r.push(rw!("pow-one"; "(pow ?a 1)" => "?a"));
        let (a, m, n) = (v("?a"), v("?m"), v("?n"));
        r.push(rw!("pow-grow"; "(* (pow ?a ?m) ?a)" => {
            Dyn(move |eg: &mut EG, s: &Subst| {
                let k = int_of(eg, s[m])? + 1;
                (k <= POW_CAP).then(|| pow(eg, s[a], k))
            })
        }));
        r.push(rw!("pow-join"; "(* (pow ?a ?m) (pow ?a ?n))" => {
            Dyn(move |eg: &mut EG, s: &Subst| {
                let k = int_of(eg, s[m])? + int_of(eg, s[n])?;
                (k <= POW_CAP).then(|| pow(eg, s[a], k))
            })
        }));
        r.push(rw!("pow-split-balanced"; "(pow ?a ?n)" => {
            Dyn(move |eg: &mut EG, s: &Subst| {
                let k = int_of(eg, s[n])?;
                if !(2..=POW_CAP).contains(&k) {
                    return None;
                }
                let hi = pow(eg, s[a], k - k / 2);
                let lo = pow(eg, s[a], k / 2);
                Some(eg.add(Fhe::Mul([hi, lo])))
            })
        }));
    }
    if set.chebyshev {
        let (x, k, mm, nn, d) = (v("?x"), v("?k"), v("?m"), v("?n"), v("?d"));
        r.push(rw!("cheb-one"; "(cheb 1 ?x)" => "?x"));
        r.push(rw!("cheb-zero"; "(cheb 0 ?x)" => "1"));
        r.push(
            rw!("cheb-recognise"; "(- (* 2 (* (cheb ?m ?x) (cheb ?n ?x))) (cheb ?d ?x))" => {
                Dyn(move |eg: &mut EG, s: &Subst| {
                    let (a, b, dd) = (int_of(eg, s[mm])?, int_of(eg, s[nn])?, int_of(eg, s[d])?);
                    (dd == (a - b).abs() && a + b <= CHEB_CAP).then(|| cheb(eg, a + b, s[x]))
                })
            }),
        );
        r.push(
            rw!("cheb-recognise-square"; "(+ (* 2 (* (cheb ?m ?x) (cheb ?m ?x))) -1)" => {
                Dyn(move |eg: &mut EG, s: &Subst| {
                    let a = int_of(eg, s[mm])?;
                    (2 * a <= CHEB_CAP).then(|| cheb(eg, 2 * a, s[x]))
                })
            }),
        );
        r.push(rw!("cheb-product"; "(* (cheb ?m ?x) (cheb ?n ?x))" => {
            Dyn(move |eg: &mut EG, s: &Subst| {
                let (a, b) = (int_of(eg, s[mm])?, int_of(eg, s[nn])?);
                if a + b > CHEB_CAP {
                    return None;
                }
                let hi = cheb(eg, a + b, s[x]);
                let lo = cheb(eg, (a - b).abs(), s[x]);
                let sum = eg.add(Fhe::Add([hi, lo]));
                let half = num(eg, 0.5);
                Some(eg.add(Fhe::Mul([half, sum])))
            })
        }));
        r.push(rw!("cheb-expand-pow2"; "(cheb ?k ?x)" => {
            Dyn(move |eg: &mut EG, s: &Subst| {
                let kk = int_of(eg, s[k])?;
                if !(2..=CHEB_CAP).contains(&kk) {
                    return None;
                }
                let a = 1i64 << (63 - (kk - 1).leading_zeros());
                Some(cheb_split(eg, kk, a, s[x]))
            })
        }));
        r.push(rw!("cheb-expand-half"; "(cheb ?k ?x)" => {
            Dyn(move |eg: &mut EG, s: &Subst| {
                let kk = int_of(eg, s[k])?;
                if !(2..=CHEB_CAP).contains(&kk) {
                    return None;
                }
                Some(cheb_split(eg, kk, kk - kk / 2, s[x]))
            })
        }));
    }
    r
}

/// Names of the rules of a set (for reports and docs).
pub fn rule_names(set: &RuleSet) -> Vec<String> {
    rules(set).iter().map(|r| r.name.to_string()).collect()
}
