//! Sparse linear maps over tensor elements and the affine *forms* the packed lowering carries
//! through linear nodes: `Σ_src M_src·src + b`, one sparse matrix per packed source value.

/// Rows of a sparse matrix (`rows × cols`), CSR. Entries of a row may come in any order but
/// each column appears at most once per row after [`Csr::compose`] or [`Csr::add`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Csr {
    pub cols: usize,
    pub ptr: Vec<usize>,
    pub idx: Vec<u32>,
    pub val: Vec<f64>,
}

impl Csr {
    pub fn rows(&self) -> usize {
        self.ptr.len().saturating_sub(1)
    }

    pub fn nnz(&self) -> usize {
        self.idx.len()
    }

    /// Row `r` as `(column, value)` pairs.
    pub fn row(&self, r: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let (a, b) = (self.ptr[r], self.ptr[r + 1]);
        self.idx[a..b]
            .iter()
            .zip(&self.val[a..b])
            .map(|(&i, &v)| (i as usize, v))
    }

    /// Builds from a row generator; `emit(r, push)` pushes row `r`'s entries.
    pub fn build(
        rows: usize,
        cols: usize,
        mut emit: impl FnMut(usize, &mut dyn FnMut(usize, f64)),
    ) -> Csr {
        let mut m = Csr {
            cols,
            ptr: Vec::with_capacity(rows + 1),
            idx: Vec::new(),
            val: Vec::new(),
        };
        m.ptr.push(0);
        for r in 0..rows {
            emit(r, &mut |c, v| {
                if v != 0.0 {
                    m.idx.push(c as u32);
                    m.val.push(v);
                }
            });
            m.ptr.push(m.idx.len());
        }
        m
    }

    /// `self · other` (self: rows × k, other: k × cols). Each entry sums its products in
    /// increasing order of k (deterministic).
    pub fn compose(&self, other: &Csr) -> Csr {
        let mut acc = vec![0.0f64; other.cols];
        let mut seen = vec![false; other.cols];
        let mut touched: Vec<usize> = Vec::new();
        let mut out = Csr {
            cols: other.cols,
            ptr: vec![0],
            idx: Vec::new(),
            val: Vec::new(),
        };
        for r in 0..self.rows() {
            let mut terms: Vec<(usize, f64)> = self.row(r).collect();
            terms.sort_by_key(|t| t.0);
            for (k, w) in terms {
                for (c, v) in other.row(k) {
                    if !seen[c] {
                        seen[c] = true;
                        touched.push(c);
                    }
                    acc[c] += w * v;
                }
            }
            touched.sort_unstable();
            for &c in &touched {
                if acc[c] != 0.0 {
                    out.idx.push(c as u32);
                    out.val.push(acc[c]);
                }
                acc[c] = 0.0;
                seen[c] = false;
            }
            touched.clear();
            out.ptr.push(out.idx.len());
        }
        out
    }

    /// `a·self + b·other` (same shape).
    pub fn add(&self, a: f64, other: &Csr, b: f64) -> Csr {
        let mut out = Csr {
            cols: self.cols,
            ptr: vec![0],
            idx: Vec::new(),
            val: Vec::new(),
        };
        for r in 0..self.rows() {
            let mut e: Vec<(usize, f64)> = self
                .row(r)
                .map(|(c, v)| (c, a * v))
                .chain(other.row(r).map(|(c, v)| (c, b * v)))
                .collect();
            e.sort_by_key(|t| t.0); // stable: self's entry first
            let mut i = 0;
            while i < e.len() {
                let (c, mut v) = e[i];
                i += 1;
                while i < e.len() && e[i].0 == c {
                    v += e[i].1;
                    i += 1;
                }
                if v != 0.0 {
                    out.idx.push(c as u32);
                    out.val.push(v);
                }
            }
            out.ptr.push(out.idx.len());
        }
        out
    }

    /// Rows scaled by `f[r]`.
    pub fn scale_rows(&self, f: &[f64]) -> Csr {
        let mut out = self.clone();
        for (r, fr) in f.iter().enumerate().take(self.rows()) {
            for v in &mut out.val[self.ptr[r]..self.ptr[r + 1]] {
                *v *= fr;
            }
        }
        out
    }

    /// `self · x` for a dense vector.
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        (0..self.rows())
            .map(|r| self.row(r).map(|(c, v)| v * x[c]).sum())
            .collect()
    }
}

/// How one term of a form reads its source.
#[derive(Clone, Debug, PartialEq)]
pub enum Map {
    /// `scale · src` element by element (the form has the source's number of elements).
    Identity {
        n: usize,
        scale: f64,
    },
    Sparse(Csr),
}

impl Map {
    pub fn rows(&self) -> usize {
        match self {
            Map::Identity { n, .. } => *n,
            Map::Sparse(m) => m.rows(),
        }
    }

    pub fn to_csr(&self) -> Csr {
        match self {
            Map::Identity { n, scale } => Csr::build(*n, *n, |r, push| push(r, *scale)),
            Map::Sparse(m) => m.clone(),
        }
    }

    pub fn nnz(&self) -> usize {
        match self {
            Map::Identity { n, scale } => {
                if *scale == 0.0 {
                    0
                } else {
                    *n
                }
            }
            Map::Sparse(m) => m.nnz(),
        }
    }

    /// `l ∘ self`.
    pub fn after(&self, l: &Csr) -> Map {
        match self {
            Map::Identity { scale, .. } => Map::Sparse(if *scale == 1.0 {
                l.clone()
            } else {
                l.scale_rows(&vec![*scale; l.rows()])
            }),
            Map::Sparse(m) => Map::Sparse(l.compose(m)),
        }
    }

    /// Rows scaled by `f` (one factor per element).
    pub fn scale_rows(&self, f: &[f64]) -> Map {
        match self {
            Map::Identity { n, scale } if f.iter().all(|&x| x == f[0]) && !f.is_empty() => {
                Map::Identity {
                    n: *n,
                    scale: scale * f[0],
                }
            }
            _ => Map::Sparse(self.to_csr().scale_rows(f)),
        }
    }

    /// `a·self + b·other`.
    pub fn add(&self, a: f64, other: &Map, b: f64) -> Map {
        match (self, other) {
            (Map::Identity { n, scale: s }, Map::Identity { scale: t, .. }) => Map::Identity {
                n: *n,
                scale: a * s + b * t,
            },
            _ => Map::Sparse(self.to_csr().add(a, &other.to_csr(), b)),
        }
    }

    /// `a·self`.
    pub fn scaled(&self, a: f64) -> Map {
        match self {
            Map::Identity { n, scale } => Map::Identity {
                n: *n,
                scale: a * scale,
            },
            Map::Sparse(m) => {
                let mut m = m.clone();
                m.val.iter_mut().for_each(|v| *v *= a);
                Map::Sparse(m)
            }
        }
    }

    /// True for the identity (`scale` exactly 1).
    pub fn is_identity(&self) -> bool {
        matches!(self, Map::Identity { scale, .. } if *scale == 1.0)
    }
}

/// `Σ_terms map·src + bias` over the elements (row-major) of a tensor of shape `shape`.
#[derive(Clone, Debug, PartialEq)]
pub struct Form {
    pub shape: Vec<usize>,
    /// `(packed source value, map)`, sources distinct, in first-use order.
    pub terms: Vec<(u32, Map)>,
    pub bias: Vec<f64>,
    /// Per source: the IR nodes whose maps were composed into its term (for reports).
    pub via: std::collections::BTreeMap<u32, Vec<String>>,
}

impl Form {
    pub fn numel(&self) -> usize {
        self.bias.len()
    }

    /// The identity on a packed value of `n` elements.
    pub fn source(src: u32, shape: Vec<usize>) -> Form {
        let n = shape.iter().product();
        Form {
            shape,
            terms: vec![(src, Map::Identity { n, scale: 1.0 })],
            bias: vec![0.0; n],
            via: Default::default(),
        }
    }

    /// `l·self + b0` with `l` a sparse matrix over this form's elements.
    pub fn apply(&self, l: &Csr, b0: &[f64], shape: Vec<usize>) -> Form {
        let mut bias = l.apply(&self.bias);
        for (x, y) in bias.iter_mut().zip(b0) {
            *x += y;
        }
        Form {
            shape,
            terms: self.terms.iter().map(|(s, m)| (*s, m.after(l))).collect(),
            bias,
            via: self.via.clone(),
        }
    }

    /// Element-wise `f·self + g`.
    pub fn scale_shift(&self, f: &[f64], g: &[f64]) -> Form {
        Form {
            shape: self.shape.clone(),
            terms: self
                .terms
                .iter()
                .map(|(s, m)| (*s, m.scale_rows(f)))
                .collect(),
            bias: self
                .bias
                .iter()
                .zip(f)
                .zip(g)
                .map(|((b, f), g)| b * f + g)
                .collect(),
            via: self.via.clone(),
        }
    }

    /// `a·self + b·other` (same shape); terms on the same source are merged.
    pub fn add(&self, a: f64, other: &Form, b: f64) -> Form {
        let mut terms: Vec<(u32, Map)> =
            self.terms.iter().map(|(s, m)| (*s, m.scaled(a))).collect();
        for (s, m) in &other.terms {
            match terms.iter_mut().find(|t| t.0 == *s) {
                Some(t) => t.1 = t.1.add(1.0, m, b),
                None => terms.push((*s, m.scaled(b))),
            }
        }
        let mut via = self.via.clone();
        for (src, names) in &other.via {
            let v = via.entry(*src).or_default();
            for n in names {
                if !v.contains(n) {
                    v.push(n.clone());
                }
            }
        }
        Form {
            shape: self.shape.clone(),
            terms,
            via,
            bias: self
                .bias
                .iter()
                .zip(&other.bias)
                .map(|(x, y)| a * x + b * y)
                .collect(),
        }
    }

    /// Records that `node`'s map was composed into every term.
    pub fn note(&mut self, node: &str) {
        for (src, _) in &self.terms {
            let v = self.via.entry(*src).or_default();
            if v.last().map(String::as_str) != Some(node) {
                v.push(node.to_string());
            }
        }
    }

    /// Total stored coefficients (memory guard).
    pub fn nnz(&self) -> usize {
        self.terms.iter().map(|(_, m)| m.nnz()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(m: &Csr) -> Vec<Vec<f64>> {
        (0..m.rows())
            .map(|r| {
                let mut row = vec![0.0; m.cols];
                for (c, v) in m.row(r) {
                    row[c] += v;
                }
                row
            })
            .collect()
    }

    #[test]
    fn compose_and_add_match_dense_algebra() {
        let a = Csr::build(3, 4, |r, push| {
            push((r + 1) % 4, 1.5);
            push(r, -2.0);
        });
        let b = Csr::build(4, 5, |r, push| {
            push(r, 0.5);
            push(4, r as f64);
        });
        let ab = dense(&a.compose(&b));
        let (da, db) = (dense(&a), dense(&b));
        for i in 0..3 {
            for j in 0..5 {
                let want: f64 = (0..4).map(|k| da[i][k] * db[k][j]).sum();
                assert!((ab[i][j] - want).abs() < 1e-15);
            }
        }
        let s = dense(&a.add(2.0, &a, -1.0));
        assert_eq!(s, da);
        let x = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(
            a.apply(&x),
            vec![1.5 * 2.0 - 2.0, 1.5 * 3.0 - 4.0, 1.5 * 4.0 - 6.0]
        );
    }
}
