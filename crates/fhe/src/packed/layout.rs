//! Where each element of a tensor value sits in the slots (`docs/packed-format.md`, "Slots and
//! layouts"): compact row-major, or the multiplexed layout of a `[C, H, W]` value.

use serde::{Deserialize, Serialize};

/// The multiplexed layout of a `[C, H, W]` value: element `(c, h, w)` at position
/// `⌊c/g²⌋·Hg·Wg + (g·h + ⌊(c mod g²)/g⌋)·Wg + g·w + (c mod g)`. `None` (no `layout` field) is
/// compact row-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Layout {
    pub gap: usize,
    pub grid: [usize; 2],
}

impl Layout {
    /// Checks the layout against a shape; a one-line reason when it does not fit.
    pub fn check(&self, shape: &[usize]) -> Result<(), String> {
        let [_, h, w] = shape else {
            return Err(format!(
                "a layout needs a [C, H, W] shape, the value has shape {shape:?}"
            ));
        };
        let g = self.gap;
        if g == 0 {
            return Err("layout gap must be ≥ 1".into());
        }
        let fits = |n: usize, grid: usize| n.checked_mul(g).is_some_and(|x| x <= grid);
        if !fits(*h, self.grid[0]) || !fits(*w, self.grid[1]) {
            return Err(format!(
                "layout gap {g} with grid {:?} does not hold {h}×{w} (needs gap·H ≤ Hg, gap·W ≤ Wg)",
                self.grid
            ));
        }
        if extent_of(shape, Some(self)).is_none() {
            return Err("layout extent overflows".into());
        }
        Ok(())
    }

    /// True when this layout places every element where the compact layout does.
    pub fn is_compact_for(&self, shape: &[usize]) -> bool {
        matches!(shape, [_, h, w] if self.gap == 1 && self.grid == [*h, *w])
    }
}

/// Number of positions a value spans (its last used position + 1, rounded to whole channel
/// blocks for multiplexed layouts); `None` on overflow.
pub fn extent_of(shape: &[usize], layout: Option<&Layout>) -> Option<usize> {
    match layout {
        None => shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)),
        Some(l) => {
            let c = *shape.first()?;
            let g2 = l.gap.checked_mul(l.gap)?;
            c.div_ceil(g2)
                .checked_mul(l.grid[0])?
                .checked_mul(l.grid[1])
        }
    }
}

/// Positions of every element (row-major element order) under a layout. The caller has
/// checked the layout ([`Layout::check`]).
pub fn positions(shape: &[usize], layout: Option<&Layout>) -> Vec<usize> {
    let n: usize = shape.iter().product();
    match layout {
        None => (0..n).collect(),
        Some(l) => {
            let (c_n, h_n, w_n) = (shape[0], shape[1], shape[2]);
            let g = l.gap;
            let (hg, wg) = (l.grid[0], l.grid[1]);
            let mut out = Vec::with_capacity(n);
            for c in 0..c_n {
                let block = (c / (g * g)) * hg * wg;
                let (rh, rw) = ((c % (g * g)) / g, c % g);
                for h in 0..h_n {
                    let row = block + (g * h + rh) * wg;
                    for w in 0..w_n {
                        out.push(row + g * w + rw);
                    }
                }
            }
            out
        }
    }
}

/// Number of ciphertexts of a value with `slots` slots per ciphertext.
pub fn ciphertexts(shape: &[usize], layout: Option<&Layout>, slots: usize) -> Option<usize> {
    Some(extent_of(shape, layout)?.div_ceil(slots.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplexed_positions_are_injective_and_match_the_formula() {
        let shape = [6, 3, 2];
        let l = Layout {
            gap: 2,
            grid: [7, 5],
        };
        l.check(&shape).unwrap();
        let p = positions(&shape, Some(&l));
        let mut s = p.clone();
        s.sort();
        s.dedup();
        assert_eq!(s.len(), p.len());
        // (c=5, h=2, w=1): block 1, rh = 0, rw = 1 → 35 + (4+0)·5 + 2 + 1
        assert_eq!(p[5 * 6 + 2 * 2 + 1], 35 + 20 + 3);
        assert_eq!(extent_of(&shape, Some(&l)), Some(70));
        assert!(p.iter().all(|&x| x < 70));
        let compact = Layout {
            gap: 1,
            grid: [3, 2],
        };
        assert!(compact.is_compact_for(&shape));
        assert_eq!(positions(&shape, Some(&compact)), positions(&shape, None));
        assert!(Layout {
            gap: 3,
            grid: [7, 5]
        }
        .check(&shape)
        .is_err());
        assert!(l.check(&[6, 3]).is_err());
    }
}
