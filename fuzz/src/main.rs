//! `pannc-fuzz`: a small coverage-guided mutational fuzzer that runs on stable Rust.
//!
//! ```text
//! pannc-fuzz fuzz <target> [--secs N] [--seeds DIR]... [--timeout S]
//! pannc-fuzz replay <target> FILE...
//! pannc-fuzz minimize <target> --out DIR IN_DIR...
//! ```
//! Targets: `onnx`, `npy` (src/targets.rs). See README.md.

mod cov;
mod proto;
mod targets;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeSet, HashSet};
use std::io::{Seek, SeekFrom, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A single allocation above this is a finding ("bad input gives an error, never a huge
/// allocation").
const ALLOC_LIMIT: usize = 1 << 30;
/// Above this the child aborts instead of going on.
const ALLOC_ABORT: usize = 8 << 30;

struct Guard;
static ARMED: AtomicBool = AtomicBool::new(false);
static FINDINGS_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

unsafe impl GlobalAlloc for Guard {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if l.size() > ALLOC_LIMIT && ARMED.load(Ordering::Relaxed) {
            huge_alloc(l.size());
        }
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if l.size() > ALLOC_LIMIT && ARMED.load(Ordering::Relaxed) {
            huge_alloc(l.size());
        }
        System.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if n > ALLOC_LIMIT && ARMED.load(Ordering::Relaxed) {
            huge_alloc(n);
        }
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Guard = Guard;

/// A huge allocation: saved as a finding once per allocation site (the first frame outside
/// std and this file); the allocation then proceeds unless it is over `ALLOC_ABORT`, where
/// the child dies and the supervisor saves the input.
fn huge_alloc(size: usize) {
    ARMED.store(false, Ordering::Relaxed);
    let bt = std::backtrace::Backtrace::force_capture().to_string();
    let site = bt
        .lines()
        .filter(|l| l.trim_start().starts_with("at "))
        .find(|l| !l.contains("/rustc/") && !l.contains("src/main.rs"))
        .unwrap_or("?")
        .trim()
        .to_string();
    let why = format!(
        "allocation of {size} bytes (limit {ALLOC_LIMIT}) {site}\n{}",
        top(&bt, 40)
    );
    if size > ALLOC_ABORT {
        write_why(&why);
        eprintln!("pannc-fuzz: {why}");
        std::process::abort();
    }
    let first = SEEN_PANIC_SITES
        .lock()
        .map(|mut s| s.insert(format!("alloc {site}")))
        .unwrap_or(false);
    if first {
        if let Ok(d) = FINDINGS_DIR.lock() {
            if let Some(d) = d.as_ref() {
                if let Ok(cur) = std::fs::read(d.join(".current")) {
                    let name = format!("alloc-{:016x}", fnv(site.as_bytes()));
                    let _ = std::fs::write(d.join(format!("{name}.bin")), cur);
                    let _ = std::fs::write(d.join(format!("{name}.txt")), &why);
                }
            }
        }
        eprintln!("pannc-fuzz: new huge-allocation site {site} ({size} bytes)");
    }
    ARMED.store(true, Ordering::Relaxed);
}

fn write_why(why: &str) {
    if let Ok(d) = FINDINGS_DIR.lock() {
        if let Some(d) = d.as_ref() {
            let _ = std::fs::write(d.join(".current.why"), why);
        }
    }
}

fn top(bt: &str, lines: usize) -> String {
    bt.lines().take(lines).collect::<Vec<_>>().join("\n")
}

fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8], max_len: usize) {
    let n = 1 + rng.below(6);
    for _ in 0..n {
        let len = data.len();
        match rng.below(12) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next() as u8;
            }
            2 if len > 0 => {
                let i = rng.below(len);
                data[i] = data[i].wrapping_add((rng.below(35) as u8).wrapping_sub(17));
            }
            3 if len > 0 => {
                // interesting value, random width and endianness
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let w = [1usize, 2, 4, 8][rng.below(4)];
                let i = rng.below(len);
                let bytes = if rng.below(2) == 0 {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                let n = w.min(len - i);
                data[i..i + n].copy_from_slice(&bytes[..n]);
            }
            4 if len > 0 => {
                // protobuf varint: overwrite with a random-length varint
                let i = rng.below(len);
                let mut v = INTERESTING[rng.below(INTERESTING.len())] ^ (rng.below(4) as u64);
                let mut k = i;
                loop {
                    if k >= data.len() {
                        break;
                    }
                    let b = (v & 0x7f) as u8;
                    v >>= 7;
                    data[k] = if v == 0 { b } else { b | 0x80 };
                    k += 1;
                    if v == 0 {
                        break;
                    }
                }
            }
            5 if len > 1 => {
                // delete a chunk
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                data.drain(i..i + n);
            }
            6 if len < max_len => {
                // insert random bytes
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(i..i, bytes);
            }
            7 if len > 0 && len < max_len => {
                // duplicate a chunk
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(256));
                let chunk = data[i..i + n].to_vec();
                let j = rng.below(len + 1);
                data.splice(j..j, chunk);
            }
            8 if !other.is_empty() => {
                // splice: our head + their tail
                let i = rng.below(data.len() + 1);
                let j = rng.below(other.len());
                data.truncate(i);
                data.extend_from_slice(&other[j..]);
            }
            9 if !other.is_empty() && len > 0 => {
                // copy a chunk of another input over ours
                let j = rng.below(other.len());
                let n = 1 + rng.below((other.len() - j).min(64));
                let i = rng.below(len);
                let n = n.min(len - i);
                data[i..i + n].copy_from_slice(&other[j..j + n]);
            }
            10 if len > 0 => {
                // ASCII digits (npy headers are text)
                let i = rng.below(len);
                data[i] = b"0123456789-,() "[rng.below(15)];
            }
            11 if len > 0 => {
                let i = rng.below(len);
                data.truncate(i);
            }
            _ => {}
        }
    }
    data.truncate(max_len);
}

/// Panic information captured by the hook: (location, message, backtrace top).
static LAST_PANIC: Mutex<Option<(String, String, String)>> = Mutex::new(None);
static SEEN_PANIC_SITES: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn install_hook() {
    panic::set_hook(Box::new(|info| {
        let loc = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
            s.to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            String::from("<non-string panic>")
        };
        let new = SEEN_PANIC_SITES
            .lock()
            .map(|s| !s.contains(&loc))
            .unwrap_or(true);
        let bt = if new {
            top(&std::backtrace::Backtrace::force_capture().to_string(), 60)
        } else {
            String::new()
        };
        if let Ok(mut p) = LAST_PANIC.lock() {
            *p = Some((loc, msg, bt));
        }
    }));
}

struct Runner {
    f: fn(&[u8]),
    cov: cov::Counters,
    virgin: Vec<u8>,
    findings: PathBuf,
    current: Option<std::fs::File>,
    exec_start_ms: &'static AtomicU64,
    panics: u64,
}

enum Outcome {
    Ok { new_cov: bool },
    Panic,
}

impl Runner {
    fn run(&mut self, data: &[u8]) -> Outcome {
        if let Some(f) = self.current.as_mut() {
            let _ = f.seek(SeekFrom::Start(0));
            let _ = f.write_all(data);
            let _ = f.set_len(data.len() as u64);
        }
        self.cov.reset();
        self.exec_start_ms.store(now_ms(), Ordering::Relaxed);
        ARMED.store(true, Ordering::Relaxed);
        let r = panic::catch_unwind(AssertUnwindSafe(|| (self.f)(data)));
        ARMED.store(false, Ordering::Relaxed);
        self.exec_start_ms.store(0, Ordering::Relaxed);
        if r.is_err() {
            self.panics += 1;
            self.save_panic(data);
            return Outcome::Panic;
        }
        let mut new_cov = false;
        let virgin = &mut self.virgin;
        self.cov.for_each_hit(|i, b| {
            if virgin[i] & b == 0 {
                virgin[i] |= b;
                new_cov = true;
            }
        });
        Outcome::Ok { new_cov }
    }

    fn features(&self, data: &[u8]) -> Vec<(usize, u8)> {
        self.cov.reset();
        let _ = panic::catch_unwind(AssertUnwindSafe(|| (self.f)(data)));
        let mut v = Vec::new();
        self.cov.for_each_hit(|i, b| v.push((i, b)));
        v
    }

    fn save_panic(&mut self, data: &[u8]) {
        let Some((loc, msg, bt)) = LAST_PANIC.lock().ok().and_then(|mut p| p.take()) else {
            return;
        };
        let first = SEEN_PANIC_SITES
            .lock()
            .map(|mut s| s.insert(loc.clone()))
            .unwrap_or(false);
        if !first {
            return;
        }
        let name = format!("panic-{:016x}", fnv(data));
        let _ = std::fs::write(self.findings.join(format!("{name}.bin")), data);
        let _ = std::fs::write(
            self.findings.join(format!("{name}.txt")),
            format!("panicked at {loc}: {msg}\n\n{bt}\n"),
        );
        eprintln!("pannc-fuzz: new panic site {loc}: {msg} -> {name}.bin");
    }

    /// Sites already saved in findings/ (from earlier runs) are not saved again.
    fn load_seen_sites(&self) {
        let Ok(rd) = std::fs::read_dir(&self.findings) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "txt") {
                if let Ok(s) = std::fs::read_to_string(&p) {
                    let first = s.lines().next().unwrap_or("");
                    if first.starts_with("allocation of ") {
                        if let Some(i) = first.find(") ") {
                            if let Ok(mut seen) = SEEN_PANIC_SITES.lock() {
                                seen.insert(format!("alloc {}", &first[i + 2..]));
                            }
                        }
                    }
                    if let Some(rest) = first.strip_prefix("panicked at ") {
                        if let Some((loc, _)) = rest.split_once(": ") {
                            if let Ok(mut seen) = SEEN_PANIC_SITES.lock() {
                                seen.insert(loc.to_string());
                            }
                        }
                    }
                }
            }
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
}

fn read_dir_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if dir.is_file() {
        if let Ok(b) = std::fs::read(dir) {
            out.push((dir.to_path_buf(), b));
        }
        return out;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    for p in paths {
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

struct Args {
    secs: u64,
    seeds: Vec<PathBuf>,
    timeout: u64,
    out: Option<PathBuf>,
    rest: Vec<String>,
    seed: u64,
}

fn parse_args(a: &[String]) -> Args {
    let mut r = Args {
        secs: 60,
        seeds: Vec::new(),
        timeout: 10,
        out: None,
        rest: Vec::new(),
        seed: 0x9e3779b97f4a7c15,
    };
    let mut i = 0;
    while i < a.len() {
        match a[i].as_str() {
            "--secs" => {
                r.secs = a[i + 1].parse().expect("--secs N");
                i += 1;
            }
            "--seeds" => {
                r.seeds.push(PathBuf::from(&a[i + 1]));
                i += 1;
            }
            "--timeout" => {
                r.timeout = a[i + 1].parse().expect("--timeout S");
                i += 1;
            }
            "--out" => {
                r.out = Some(PathBuf::from(&a[i + 1]));
                i += 1;
            }
            "--rng-seed" => {
                r.seed = a[i + 1].parse().expect("--rng-seed N");
                i += 1;
            }
            s => r.rest.push(s.to_string()),
        }
        i += 1;
    }
    r
}

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.len() < 3 {
        eprintln!("usage: pannc-fuzz (fuzz|replay|minimize) <onnx|npy> [options]");
        return ExitCode::from(2);
    }
    let (cmd, target) = (argv[1].as_str(), argv[2].as_str());
    let Some((f, max_len)) = targets::by_name(target) else {
        eprintln!("unknown target {target} (onnx, npy)");
        return ExitCode::from(2);
    };
    let args = parse_args(&argv[3..]);
    let findings = fuzz_dir().join("findings").join(target);
    let work = fuzz_dir().join("work").join(target);
    let _ = std::fs::create_dir_all(&findings);
    let _ = std::fs::create_dir_all(work.join("queue"));
    if let Ok(mut d) = FINDINGS_DIR.lock() {
        *d = Some(findings.clone());
    }
    match cmd {
        "fuzz" => supervise(&argv, &args, &findings, &work),
        "child" => child(f, max_len, target == "onnx", &args, &findings, &work),
        "replay" => {
            install_hook();
            let mut bad = 0;
            for p in &args.rest {
                let data = std::fs::read(p).expect("read input");
                let t = Instant::now();
                ARMED.store(true, Ordering::Relaxed);
                let r = panic::catch_unwind(AssertUnwindSafe(|| f(&data)));
                ARMED.store(false, Ordering::Relaxed);
                let status = if r.is_ok() { "ok" } else { "PANIC" };
                if let Some((loc, msg, _)) = LAST_PANIC.lock().ok().and_then(|mut x| x.take()) {
                    println!("{p}: {status} at {loc}: {msg}");
                    bad += 1;
                } else {
                    println!("{p}: {status} ({:.3} s)", t.elapsed().as_secs_f64());
                }
            }
            ExitCode::from(if bad > 0 { 1 } else { 0 })
        }
        "minimize" => {
            install_hook();
            let out = args.out.clone().expect("--out DIR");
            let mut inputs = Vec::new();
            for d in &args.rest {
                inputs.extend(read_dir_files(Path::new(d)));
            }
            inputs.sort_by_key(|(_, b)| b.len());
            let r = Runner {
                f,
                cov: cov::Counters::new(),
                virgin: Vec::new(),
                findings: findings.clone(),
                current: None,
                exec_start_ms: Box::leak(Box::new(AtomicU64::new(0))),
                panics: 0,
            };
            let mut covered: HashSet<(usize, u8)> = HashSet::new();
            let mut kept: Vec<Vec<u8>> = Vec::new();
            for (_, data) in &inputs {
                // edges only (hit counts ignored): a smaller corpus to commit
                let mut feats = r.features(data);
                feats.iter_mut().for_each(|f| f.1 = 0);
                feats.dedup();
                if feats.iter().any(|x| !covered.contains(x)) {
                    covered.extend(feats);
                    kept.push(data.clone());
                }
            }
            let _ = std::fs::remove_dir_all(&out);
            std::fs::create_dir_all(&out).expect("create --out");
            let mut bytes = 0;
            for d in &kept {
                bytes += d.len();
                std::fs::write(out.join(format!("{:016x}", fnv(d))), d).expect("write");
            }
            println!(
                "minimize {target}: {} inputs -> {} kept ({} bytes), {} features",
                inputs.len(),
                kept.len(),
                bytes,
                covered.len()
            );
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("unknown command {cmd}");
            ExitCode::from(2)
        }
    }
}

/// Runs the fuzzing child until the time is up, restarting it after a crash, a timeout or a
/// huge allocation (saving the input that caused it).
fn supervise(argv: &[String], args: &Args, findings: &Path, work: &Path) -> ExitCode {
    let deadline = Instant::now() + Duration::from_secs(args.secs);
    let exe = std::env::current_exe().expect("current exe");
    let _ = std::fs::remove_file(work.join("execs"));
    let mut restarts = 0;
    let mut rng_seed = args.seed;
    loop {
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        if left == 0 {
            break;
        }
        let mut cmd = Command::new(&exe);
        cmd.arg("child").arg(&argv[2]);
        cmd.args(&argv[3..]);
        cmd.args([
            "--secs",
            &left.to_string(),
            "--rng-seed",
            &rng_seed.to_string(),
        ]);
        let st = cmd.status().expect("spawn child");
        if st.success() {
            break;
        }
        restarts += 1;
        rng_seed = rng_seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let cur = findings.join(".current");
        let why_p = findings.join(".current.why");
        let why = std::fs::read_to_string(&why_p).unwrap_or_else(|_| format!("child died: {st}"));
        if let Ok(data) = std::fs::read(&cur) {
            let kind = if why.starts_with("timeout") {
                "timeout"
            } else if why.starts_with("allocation") {
                "alloc"
            } else {
                "crash"
            };
            let name = format!("{kind}-{:016x}", fnv(&data));
            let _ = std::fs::write(findings.join(format!("{name}.bin")), &data);
            let _ = std::fs::write(findings.join(format!("{name}.txt")), &why);
            eprintln!("pannc-fuzz: child ended ({st}); saved {name}");
        }
        let _ = std::fs::remove_file(&why_p);
        if restarts > 50 {
            eprintln!("pannc-fuzz: too many restarts, stopping");
            break;
        }
    }
    let _ = std::fs::remove_file(findings.join(".current"));
    let execs: u64 = std::fs::read_to_string(work.join("execs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .sum();
    println!(
        "pannc-fuzz {}: total executions {execs}, child restarts {restarts}",
        argv[2]
    );
    ExitCode::SUCCESS
}

/// `structured`: half of the mutations are protobuf-aware (`proto::mutate`), for the `onnx`
/// target.
fn child(
    f: fn(&[u8]),
    max_len: usize,
    structured: bool,
    args: &Args,
    findings: &Path,
    work: &Path,
) -> ExitCode {
    install_hook();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.secs);
    let exec_start: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let execs: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let execs_path = work.join("execs");
    // Watchdog: one execution running longer than --timeout is a finding.
    {
        let timeout_ms = args.timeout * 1000;
        let execs_path = execs_path.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(200));
            let s = exec_start.load(Ordering::Relaxed);
            if s != 0 && now_ms().saturating_sub(s) > timeout_ms {
                write_why(&format!("timeout: one execution ran over {timeout_ms} ms"));
                append_execs(&execs_path, execs.load(Ordering::Relaxed));
                std::process::exit(70);
            }
        });
    }
    let cov = cov::Counters::new();
    let n = cov.len();
    let mut r = Runner {
        f,
        virgin: vec![0; n],
        cov,
        findings: findings.to_path_buf(),
        current: std::fs::File::create(findings.join(".current")).ok(),
        exec_start_ms: exec_start,
        panics: 0,
    };
    r.load_seen_sites();
    let mut rng = Rng(args.seed | 1);
    // Initial corpus: the work queue, then seeds.
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    let mut initial = read_dir_files(&work.join("queue"));
    for d in &args.seeds {
        initial.extend(read_dir_files(d));
    }
    let mut seen: HashSet<u64> = HashSet::new();
    for (_, mut data) in initial {
        data.truncate(max_len);
        if !seen.insert(fnv(&data)) {
            continue;
        }
        execs.fetch_add(1, Ordering::Relaxed);
        if let Outcome::Ok { new_cov: true } = r.run(&data) {
            let _ = std::fs::write(
                work.join("queue").join(format!("{:016x}", fnv(&data))),
                &data,
            );
            corpus.push(data);
        }
    }
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    eprintln!(
        "pannc-fuzz child: {} counters, {} initial corpus entries",
        n,
        corpus.len()
    );
    let mut last_report = Instant::now();
    let mut last_execs = 0;
    while Instant::now() < deadline {
        for _ in 0..64 {
            let i = rng.below(corpus.len());
            let j = rng.below(corpus.len());
            let mut data = corpus[i].clone();
            let other = if i != j { corpus[j].as_slice() } else { &[] };
            if !(structured && rng.below(2) == 0 && proto::mutate(&mut rng, &mut data, max_len)) {
                mutate(&mut rng, &mut data, other, max_len);
            }
            execs.fetch_add(1, Ordering::Relaxed);
            if let Outcome::Ok { new_cov: true } = r.run(&data) {
                let _ = std::fs::write(
                    work.join("queue").join(format!("{:016x}", fnv(&data))),
                    &data,
                );
                corpus.push(data);
            }
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            let e = execs.load(Ordering::Relaxed);
            let edges = r.virgin.iter().filter(|&&v| v != 0).count();
            eprintln!(
                "[{:>6.0}s] execs {e} ({:.0}/s) corpus {} edges {edges} panics {}",
                start.elapsed().as_secs_f64(),
                (e - last_execs) as f64 / last_report.elapsed().as_secs_f64(),
                corpus.len(),
                r.panics
            );
            last_execs = e;
            last_report = Instant::now();
        }
    }
    let e = execs.load(Ordering::Relaxed);
    append_execs(&execs_path, e);
    let edges = r.virgin.iter().filter(|&&v| v != 0).count();
    eprintln!(
        "pannc-fuzz child done: execs {e} corpus {} edges {edges} panics {}",
        corpus.len(),
        r.panics
    );
    ExitCode::SUCCESS
}

fn append_execs(p: &Path, n: u64) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
    {
        let _ = writeln!(f, "{n}");
    }
}
