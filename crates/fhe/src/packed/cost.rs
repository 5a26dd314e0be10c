//! Baby-step giant-step plans of linear ops, and the time estimate of a program.
//!
//! # Rotations of a linear op
//!
//! With `n1` baby steps a diagonal `(o, i, k)` is evaluated as `k = g·n1 + j`: the baby
//! rotation `rot_j(x_i)` (j ≥ 1) is needed once per (input ciphertext, j) and the giant
//! rotation `rot_{g·n1}` once per (output ciphertext, g ≥ 1). [`choose_n1`] tries every `n1`
//! in `1..=S` (O(D) each with stamp arrays) and keeps the fewest rotations executed, then the
//! fewest distinct rotation amounts (keys), then the smallest `n1`.
//!
//! # Time model ([`CostModel`])
//!
//! Single-thread seconds = rotations·t_rot + plaintext products·t_pt + ct×ct·t_mul +
//! refreshed ciphertexts·t_boot. The constants are the measurements of the design notes (§7:
//! OpenFHE 1.x wheel, one thread, FLEXIBLEAUTO, depth 30, 59-bit scale) at ring dimension
//! 2^14: a packed 3×3 conv with 135 diagonals, 17 baby + 37 giant rotations took 7.7 s, which
//! with a key switch ≈ 0.10 s leaves ≈ 0.017 s per plaintext product; a degree-31 Chebyshev
//! series (≈ 13 ct×ct) took 3.1 s, ≈ 0.2 s per ct×ct with relinearisation; one bootstrap took
//! 17–20 s (18.5). Other ring dimensions scale every op linearly in N, except bootstraps at
//! 2^12 (3.75 s) and 2^13 (6.5 s), which were measured. Everything at 2^15 and above is an
//! extrapolation, and the model ignores that ops at high levels get cheaper.

use std::collections::BTreeSet;

use super::Stats;

/// The rotations a linear op with baby-step count `n1` executes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bsgs {
    pub n1: usize,
    /// `(input ciphertext, j)` with `j ≥ 1`.
    pub baby: BTreeSet<(usize, usize)>,
    /// `(output ciphertext, g)` with `g ≥ 1` (rotation by `g·n1`).
    pub giant: BTreeSet<(usize, usize)>,
}

impl Bsgs {
    pub fn new(index: &[[usize; 3]], n1: usize, _slots: usize) -> Bsgs {
        let n1 = n1.max(1);
        let mut baby = BTreeSet::new();
        let mut giant = BTreeSet::new();
        for &[o, i, k] in index {
            let (g, j) = (k / n1, k % n1);
            if j != 0 {
                baby.insert((i, j));
            }
            if g != 0 {
                giant.insert((o, g));
            }
        }
        Bsgs { n1, baby, giant }
    }

    /// Rotations executed per sample.
    pub fn rotations(&self) -> usize {
        self.baby.len() + self.giant.len()
    }

    /// Distinct rotation amounts (keys) needed.
    pub fn amounts(&self) -> BTreeSet<usize> {
        self.baby
            .iter()
            .map(|&(_, j)| j)
            .chain(self.giant.iter().map(|&(_, g)| g * self.n1))
            .collect()
    }
}

/// The `n1` with the fewest rotations (ties: fewest keys, then smallest `n1`).
pub fn choose_n1(index: &[[usize; 3]], slots: usize) -> Bsgs {
    let s = slots.max(1);
    let mut ik: Vec<(usize, usize)> = index.iter().map(|r| (r[1], r[2])).collect();
    let mut ok: Vec<(usize, usize)> = index.iter().map(|r| (r[0], r[2])).collect();
    ik.sort_unstable();
    ik.dedup();
    ok.sort_unstable();
    ok.dedup();
    let m_in = ik.iter().map(|x| x.0 + 1).max().unwrap_or(1);
    let m_out = ok.iter().map(|x| x.0 + 1).max().unwrap_or(1);
    let max_k = index.iter().map(|r| r[2]).max().unwrap_or(0);
    // Stamp arrays: an entry equal to the current n1 has been counted for it.
    let mut baby_seen = vec![0usize; m_in * s];
    let mut giant_seen = vec![0usize; m_out * (s + 1)];
    let mut amount_seen = vec![0usize; s + 1];
    let mut best: Option<(usize, usize, usize)> = None; // (rotations, keys, n1)
    'n1: for n1 in 1..=s.min(max_k + 1).max(1) {
        let (mut rot, mut keys) = (0usize, 0usize);
        let bound = best.map_or(usize::MAX, |b| b.0);
        for &(i, k) in &ik {
            let j = k % n1;
            if j != 0 {
                let e = &mut baby_seen[i * s + j];
                if *e != n1 {
                    *e = n1;
                    rot += 1;
                    if rot > bound {
                        continue 'n1;
                    }
                }
                if amount_seen[j] != n1 {
                    amount_seen[j] = n1;
                    keys += 1;
                }
            }
        }
        for &(o, k) in &ok {
            let g = k / n1;
            if g != 0 {
                let e = &mut giant_seen[o * (s + 1) + g];
                if *e != n1 {
                    *e = n1;
                    rot += 1;
                    if rot > bound {
                        continue 'n1;
                    }
                }
                let a = (g * n1) % (s + 1);
                if amount_seen[a] != n1 {
                    amount_seen[a] = n1;
                    keys += 1;
                }
            }
        }
        let cand = (rot, keys, n1);
        if best.is_none_or(|b| cand < b) {
            best = Some(cand);
        }
    }
    let n1 = best.map_or(1, |b| b.2);
    Bsgs::new(index, n1, s)
}

/// Per-op time constants at one ring dimension (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub struct CostModel {
    pub ring_dim: u64,
    pub rotation: f64,
    pub pt_mult: f64,
    pub ct_ct_mult: f64,
    pub bootstrap: f64,
}

impl CostModel {
    /// The constants at ring dimension `n` (power of two).
    pub fn at(n: u64) -> CostModel {
        let f = n as f64 / 16384.0;
        let bootstrap = match n {
            0..=4096 => 3.75,
            8192 => 6.5,
            _ => 18.5 * f,
        };
        CostModel {
            ring_dim: n,
            rotation: 0.10 * f,
            pt_mult: 0.017 * f,
            ct_ct_mult: 0.2 * f,
            bootstrap,
        }
    }

    /// Predicted seconds for the counts of a program (or of one op).
    pub fn seconds(&self, s: &Stats) -> f64 {
        s.rotations as f64 * self.rotation
            + s.pt_mults as f64 * self.pt_mult
            + s.ct_ct_mults as f64 * self.ct_ct_mult
            + s.bootstraps as f64 * self.bootstrap
    }

    /// One line saying how [`CostModel::seconds`] computes.
    pub fn describe(&self) -> String {
        format!(
            "single thread, ring dimension {}: {:.3} s/rotation, {:.4} s/plaintext product, {:.3} s/ct×ct, {:.2} s/bootstrap (OpenFHE measurements of design notes §7 at 2^12–2^14, linear in N above)",
            self.ring_dim, self.rotation, self.pt_mult, self.ct_ct_mult, self.bootstrap
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n1_minimises_rotations() {
        // Offsets 0..16 on one ciphertext: n1 = 4 gives 3 baby + 3 giant = 6 (n1 = 5 also
        // gives 4 + 3 = 7).
        let index: Vec<[usize; 3]> = (0..16).map(|k| [0, 0, k]).collect();
        let b = choose_n1(&index, 64);
        assert_eq!(b.rotations(), 6);
        assert_eq!(b.n1, 4);
        // A single offset: no baby step, one giant step, or one baby step: 1 rotation.
        let b = choose_n1(&[[0, 0, 37]], 64);
        assert_eq!(b.rotations(), 1);
        // Brute force agrees on a scattered set with two input and output ciphertexts.
        let index: Vec<[usize; 3]> = (0..40)
            .map(|t| [t % 2, (t / 2) % 2, (t * 37 + t * t) % 128])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let b = choose_n1(&index, 128);
        let brute = (1..=128)
            .map(|n| Bsgs::new(&index, n, 128).rotations())
            .min()
            .unwrap();
        assert_eq!(b.rotations(), brute);
    }
}
