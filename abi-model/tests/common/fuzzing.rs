//! What the fuzz tests share: splitmix64 (Steele, Lea, Flood 2014), the small, seedable generator
//! of abi-model's cdef and layout fuzzers and lua-adapter's Lua fuzzer,
//! so that one printed seed replays one case exactly; their case loop; their summary line.

/// The generator's state.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// One of `items`, which must not be empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// True once in `n` times.
    #[allow(dead_code)]
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// An environment variable read as a number.
#[allow(dead_code)]
pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok())
}

/// Records a fuzz test's one-line result for the test command's summary
/// (`<target>/tmp/fuzz-summary/<name>.txt`, read by `cargo xtask test-all-abis`).
#[allow(dead_code)]
pub fn write_summary(tmpdir: &str, name: &str, line: &str) {
    let dir = std::path::Path::new(tmpdir).join("fuzz-summary");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join(format!("{name}.txt")), format!("{line}\n"));
    }
}

/// The loop of a fuzz test: `cases` cases (or until `seconds` have passed, when set) from
/// the master seed; stops after `max_failures`. Returns the number of cases run and the
/// failures.
#[allow(dead_code)]
pub fn run_cases(
    master: u64,
    cases: u64,
    seconds: Option<u64>,
    max_failures: usize,
    mut case: impl FnMut(u64) -> Result<(), String>,
) -> (u64, Vec<String>) {
    let deadline = seconds.map(|s| std::time::Instant::now() + std::time::Duration::from_secs(s));
    let cases = if deadline.is_some() { u64::MAX } else { cases };
    let mut seeds = Rng(master);
    let mut failures = Vec::new();
    let mut ran = 0;
    while ran < cases && deadline.is_none_or(|d| std::time::Instant::now() < d) {
        if let Err(e) = case(seeds.next()) {
            failures.push(e);
            if failures.len() >= max_failures {
                break;
            }
        }
        ran += 1;
    }
    (ran, failures)
}
