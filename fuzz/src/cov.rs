//! Edge-coverage feedback from LLVM SanitizerCoverage's inline 8-bit counters.
//!
//! Every crate is compiled with `-C passes=sancov-module` and
//! `-sanitizer-coverage-inline-8bit-counters` (see `.cargo/config.toml`): each edge increments a
//! byte in the `__sancov_cntrs` section, and module constructors hand us the section's bounds
//! through `__sanitizer_cov_8bit_counters_init`. No callback runs per edge, so nothing here can
//! recurse into itself.

use std::sync::Mutex;

static REGIONS: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// Called by the instrumented modules' constructors, before `main`.
///
/// # Safety
/// `start..stop` must be a live, writable counter region (LLVM guarantees it).
#[no_mangle]
pub unsafe extern "C" fn __sanitizer_cov_8bit_counters_init(start: *mut u8, stop: *mut u8) {
    let (s, e) = (start as usize, stop as usize);
    if s >= e {
        return;
    }
    if let Ok(mut r) = REGIONS.lock() {
        if !r.iter().any(|&(a, b)| a == s && b == e) {
            r.push((s, e));
        }
    }
}

/// The counters as one logical array.
pub struct Counters {
    regions: Vec<(usize, usize)>,
    total: usize,
}

impl Counters {
    pub fn new() -> Counters {
        let regions = REGIONS.lock().map(|r| r.clone()).unwrap_or_default();
        let total = regions.iter().map(|(a, b)| b - a).sum();
        Counters { regions, total }
    }

    pub fn len(&self) -> usize {
        self.total
    }

    pub fn reset(&self) {
        for &(a, b) in &self.regions {
            // SAFETY: LLVM-provided, writable counter region.
            unsafe { std::ptr::write_bytes(a as *mut u8, 0, b - a) };
        }
    }

    /// Calls `f(index, bucket_bit)` for every edge hit since the last reset, the hit count
    /// bucketed AFL-style (1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+).
    pub fn for_each_hit(&self, mut f: impl FnMut(usize, u8)) {
        let mut base = 0;
        for &(a, b) in &self.regions {
            // SAFETY: as above; read after the run, on the fuzzing thread.
            let s = unsafe { std::slice::from_raw_parts(a as *const u8, b - a) };
            for (chunk_i, chunk) in s.chunks(8).enumerate() {
                if chunk.iter().all(|&c| c == 0) {
                    continue;
                }
                for (j, &c) in chunk.iter().enumerate() {
                    if c != 0 {
                        f(base + chunk_i * 8 + j, bucket(c));
                    }
                }
            }
            base += b - a;
        }
    }
}

fn bucket(c: u8) -> u8 {
    match c {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 4,
        4..=7 => 8,
        8..=15 => 16,
        16..=31 => 32,
        32..=127 => 64,
        _ => 128,
    }
}
