//! The per-host stage of `cargo xtask test-all-abis` (issue 16): the `luaffi` command and the
//! suite's C library (`lua-adapter/tests/c/calltest.c`) built for each host target, then every
//! Lua suite script and every `examples/*.lua` run on that host: natively for x86-64 and i686
//! Linux (a 64-bit Linux kernel runs i386 binaries), under Wine for x86-64 and 32-bit Windows.
//! Each host ends in one summary line; every script or example that fails, and a host that
//! cannot be built or run (with the reason), counts as a failure of the run.
//!
//! Also here: what a bare machine needs for them (Debian packages, the i386 architecture, the
//! rustup targets), and the prepared run directory `cargo xtask bench --host` uses too.

use crate::{module, sys};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The operating system of a host, as `ffi.os` names it; Windows hosts run under Wine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Os {
    Linux,
    Windows,
}

/// One host the module runs on.
#[derive(Debug)]
pub struct Host {
    /// The name in summary lines and in `cargo xtask bench --host <name>`.
    pub name: &'static str,
    /// The rustup target `luaffi` is built for.
    pub triple: &'static str,
    pub os: Os,
    /// `std::env::consts::ARCH` of a program built for it.
    std_arch: &'static str,
    /// The C compiler and its flags for the suite's C library.
    cc: &'static [&'static str],
    /// The mingw-w64 triple whose sysroot holds `zlib1.dll` (Windows hosts).
    mingw: Option<&'static str>,
    /// The Debian packages the host needs on this x86-64 Linux machine beyond the build's own.
    debs: &'static [&'static str],
}

/// Every host, the build machine's first.
pub const HOSTS: &[Host] = &[
    Host {
        name: "x86_64-linux",
        triple: "x86_64-unknown-linux-gnu",
        os: Os::Linux,
        std_arch: "x86_64",
        cc: &["cc"],
        mingw: None,
        // cc and libz.so come with the build's own packages (test_all::BUILD_DEBS).
        debs: &[],
    },
    Host {
        name: "i686-linux",
        triple: "i686-unknown-linux-gnu",
        os: Os::Linux,
        std_arch: "x86",
        cc: &["cc", "-m32"],
        mingw: None,
        // `cc -m32` and Rust's i686 linking; libz.so for examples/zlib.lua (`ffi.load "z"`
        // opens `libz.so`, which only the -dev package provides).
        debs: &["gcc-multilib", "zlib1g-dev:i386"],
    },
    Host {
        name: "x86_64-windows",
        triple: "x86_64-pc-windows-gnu",
        os: Os::Windows,
        std_arch: "x86_64",
        // libgcc linked in: a DLL mingw builds otherwise needs libgcc_s_seh-1.dll beside it.
        cc: &["x86_64-w64-mingw32-gcc", "-static-libgcc"],
        mingw: Some("x86_64-w64-mingw32"),
        // libz-mingw-w64: zlib1.dll for examples/zlib.lua.
        debs: &["gcc-mingw-w64-x86-64", "wine", "wine64", "libz-mingw-w64"],
    },
    Host {
        name: "i686-windows",
        triple: "i686-pc-windows-gnu",
        os: Os::Windows,
        std_arch: "x86",
        // (libgcc_s_dw2-1.dll on 32-bit Windows).
        cc: &["i686-w64-mingw32-gcc", "-static-libgcc"],
        mingw: Some("i686-w64-mingw32"),
        debs: &["gcc-mingw-w64-i686", "wine", "wine32:i386", "libz-mingw-w64"],
    },
];

/// The variable that makes `luaffi` refuse to open unless its stubs' inline fast paths are
/// in use (`lua_adapter::surface::clib::REQUIRE_INLINE`; xtask doesn't link lua-adapter, a
/// test checks the two names agree).
pub const REQUIRE_INLINE: &str = "LUAFFI_REQUIRE_INLINE";

/// The longest one script or example may run before it counts as hung (a crashed Windows
/// program can wait for a debugger under Wine).
const RUN_LIMIT: Duration = Duration::from_secs(600);

impl Host {
    /// `x86_64-windows (wine)`: the name and how it runs.
    pub fn label(&self) -> String {
        match self.os {
            Os::Linux => self.name.to_string(),
            Os::Windows => format!("{} (wine)", self.name),
        }
    }

    /// True for the machine xtask runs on: its programs build without `--target`.
    pub fn is_build_machine(&self) -> bool {
        self.std_arch == std::env::consts::ARCH && std::env::consts::OS == self.std_os()
    }

    fn std_os(&self) -> &'static str {
        match self.os {
            Os::Linux => "linux",
            Os::Windows => "windows",
        }
    }

    /// What `ffi.os` and `ffi.arch` must say on this host (LuaJIT's names).
    fn ffi_os_arch(&self) -> (&'static str, &'static str) {
        let os = match self.os {
            Os::Linux => "Linux",
            Os::Windows => "Windows",
        };
        (os, if self.std_arch == "x86_64" { "x64" } else { "x86" })
    }

    /// `bin` as cargo names the executable for this target.
    fn exe_name(&self, bin: &str) -> String {
        match self.os {
            Os::Linux => bin.to_string(),
            Os::Windows => format!("{bin}.exe"),
        }
    }

    /// Where the host's programs and libraries are gathered and run from:
    /// `target/hosts/<name>/`.
    pub fn run_dir(&self) -> PathBuf {
        module::target_dir().join("hosts").join(self.name)
    }

    /// A command running `exe` on this host: itself, or under Wine with the run's prefix.
    pub fn command(&self, exe: &Path) -> Command {
        match self.os {
            Os::Linux => Command::new(exe),
            Os::Windows => {
                let mut cmd = Command::new("wine");
                cmd.arg(exe);
                wine_env(&mut cmd);
                cmd
            }
        }
    }

    /// `path` as a program on this host spells it (Wine maps the Unix root to drive Z:).
    pub fn host_path(&self, path: &Path) -> String {
        match self.os {
            Os::Linux => path.display().to_string(),
            Os::Windows => format!("Z:{}", path.display()).replace('/', "\\"),
        }
    }

    /// Builds `bin` of lua-adapter for this host (`--release` when asked) and copies it into
    /// [`Host::run_dir`], beside what it needs to run there (see [`Host::prepare_run_dir`]);
    /// returns the copy. A failed build returns cargo's error lines.
    pub fn build(&self, bin: &str, release: bool) -> Result<PathBuf, String> {
        let mut cmd = sys::cargo();
        cmd.args(["build", "-p", "lua-adapter", "--bin", bin]);
        if release {
            cmd.arg("--release");
        }
        let mut built = module::target_dir();
        if !self.is_build_machine() {
            cmd.args(["--target", self.triple]);
            built.push(self.triple);
        }
        built.push(if release { "release" } else { "debug" });
        built.push(self.exe_name(bin));
        let what = format!("cargo build -p lua-adapter --bin {bin} --target {}", self.triple);
        let out = cmd.stderr(Stdio::piped()).output().map_err(|e| format!("cannot run cargo: {e}"))?;
        if !out.status.success() {
            return Err(format!("`{what}` failed:\n{}", cargo_errors(&String::from_utf8_lossy(&out.stderr))));
        }
        let dir = self.prepare_run_dir()?;
        let copy = dir.join(self.exe_name(bin));
        copy_file(&built, &copy)?;
        Ok(copy)
    }

    /// Makes [`Host::run_dir`] and puts in it what programs need beside them on Windows:
    /// zlib1.dll (examples/zlib.lua) and the bcryptprimitives.dll shim (see [`PRNG_SHIM`]).
    fn prepare_run_dir(&self) -> Result<PathBuf, String> {
        let dir = self.run_dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if let Some(mingw) = self.mingw {
            let zlib = Path::new("/usr").join(mingw).join("lib").join("zlib1.dll");
            copy_file(&zlib, &dir.join("zlib1.dll"))
                .map_err(|e| format!("{e} (Debian's libz-mingw-w64 provides it)"))?;
            self.write_prng_shim(&dir)?;
        }
        Ok(dir)
    }

    /// Builds lua-adapter's unit tests (`cargo test --lib --no-run`) for this host and copies
    /// the test program into [`Host::run_dir`] as `lua-adapter-unit[.exe]`, beside the DLLs
    /// Windows programs need there, which [`Host::build`] put there first; returns the copy.
    /// Only for hosts other than the build machine, whose unit tests the workspace stage runs.
    pub fn build_unit_tests(&self) -> Result<PathBuf, String> {
        let mut cmd = sys::cargo();
        cmd.args(["test", "-p", "lua-adapter", "--lib", "--no-run", "--message-format=json", "--target", self.triple]);
        let what = format!("cargo test -p lua-adapter --lib --no-run --target {}", self.triple);
        let out = cmd.stderr(Stdio::piped()).output().map_err(|e| format!("cannot run cargo: {e}"))?;
        if !out.status.success() {
            return Err(format!("`{what}` failed:\n{}", cargo_errors(&String::from_utf8_lossy(&out.stderr))));
        }
        let built = test_executable(&String::from_utf8_lossy(&out.stdout))
            .ok_or_else(|| format!("`{what}` named no test executable of lua-adapter's lib"))?;
        let copy = self.run_dir().join(self.exe_name("lua-adapter-unit"));
        copy_file(Path::new(&built), &copy)?;
        Ok(copy)
    }

    /// Runs the unit tests built by [`Host::build_unit_tests`] on this host. Rust's backtrace
    /// printing is off: under Wine, a 32-bit program's backtrace crashes inside Wine's
    /// dbghelp.dll, which would hide a failing test's message.
    fn run_unit_tests(&self, exe: &Path) -> Outcome {
        let mut cmd = self.command(exe);
        cmd.current_dir(self.run_dir()).env("RUST_BACKTRACE", "0");
        let run = run_logged(cmd, "--test-threads=2", &self.run_dir().join("logs").join("lua-adapter-unit"));
        judge_unit_tests(run)
    }

    /// Compiles the `bcryptprimitives.dll` shim ([`PRNG_SHIM`]) for this Windows host into
    /// `dir`, where Wine finds it beside the programs that `dir` holds; returns its path.
    pub fn write_prng_shim(&self, dir: &Path) -> Result<PathBuf, String> {
        let src = dir.join("bcryptprimitives.c");
        std::fs::write(&src, PRNG_SHIM).map_err(|e| format!("{}: {e}", src.display()))?;
        let mut cc = self.c_compiler();
        // Win32: export `ProcessPrng`, not the stdcall-decorated `ProcessPrng@8`.
        if self.std_arch == "x86" {
            cc.arg("-Wl,--kill-at");
        }
        let dll = dir.join("bcryptprimitives.dll");
        compile(cc.args(["-O2", "-shared", "-o"]).arg(&dll).arg(&src).arg("-ladvapi32"), &dll)?;
        Ok(dll)
    }

    /// The mingw-w64 triple of a Windows host (its compilers and binutils are
    /// `<triple>-gcc`, `<triple>-strip`, ...).
    pub fn mingw(&self) -> Option<&'static str> {
        self.mingw
    }

    /// The host's C compiler with its flags (mingw-w64's gcc for Windows, libgcc linked in).
    pub fn c_compiler(&self) -> Command {
        let mut cmd = Command::new(self.cc[0]);
        cmd.args(&self.cc[1..]);
        cmd
    }

    /// Compiles the suite's C library for this host into `dir`; returns its path.
    pub fn build_calltest(&self, dir: &Path, extra_flags: &[&str]) -> Result<PathBuf, String> {
        let src = sys::workspace_root().join("lua-adapter").join("tests").join("c").join("calltest.c");
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let lib = dir.join(match self.os {
            Os::Linux => "libcalltest.so",
            Os::Windows => "calltest.dll",
        });
        let mut cc = self.c_compiler();
        if self.os == Os::Linux {
            cc.arg("-fPIC");
        }
        compile(cc.args(["-shared", "-O1"]).args(extra_flags).arg("-o").arg(&lib).arg(&src), &lib)?;
        Ok(lib)
    }

    /// A command running `luaffi` (at `exe`) on this host in `dir`, with the environment the
    /// Lua suite runs with (lua-adapter/tests/lua_suite.rs): `require` finding the suite's
    /// Lua files only, the calltest library, the inline paths required, no `LUA_INIT`.
    fn lua_command(&self, exe: &Path, dir: &Path, calltest: &Path) -> Command {
        let mut cmd = self.command(exe);
        cmd.current_dir(dir);
        for name in ["LUA_INIT", "LUA_PATH", "LUA_CPATH"] {
            cmd.env_remove(name);
            for v in ["5_1", "5_2", "5_3", "5_4", "5_5"] {
                cmd.env_remove(format!("{name}_{v}"));
            }
        }
        cmd.env("LUA_PATH", "./?.lua").env("LUAFFI_CALLTEST", self.host_path(calltest)).env(REQUIRE_INLINE, "1");
        cmd
    }

    /// Runs every suite script and every example with the built `luaffi`.
    fn run_built(&self, exe: &Path, calltest: &Path, report: &mut HostReport) {
        let started = Instant::now();
        let scripts = match module::suite_scripts() {
            Ok(s) => s,
            Err(e) => return report.setup_error = Some(e),
        };
        let suite_dir = sys::workspace_root().join("lua-adapter").join("tests").join("lua");
        let logs = self.run_dir().join("logs");
        for script in &scripts {
            let cmd = self.lua_command(exe, &suite_dir, calltest);
            let run = run_logged(cmd, script, &logs.join(script));
            report.scripts.push(judge_script(script, run));
        }
        // x86-64 runs a namespace function's first calls on tier 0 (lua-adapter's
        // native::closure), so the default run takes most one-off calls there: the suite runs
        // again with every stub built at first call.
        if self.std_arch == "x86_64" {
            for script in &scripts {
                let mut cmd = self.lua_command(exe, &suite_dir, calltest);
                cmd.env(TIER_UP, "0");
                let run = run_logged(cmd, script, &logs.join(format!("eager-{script}")));
                let mut outcome = judge_script(script, run);
                outcome.name = format!("{script} ({TIER_UP}=0)");
                report.scripts.push(outcome);
            }
        }
        let examples_dir = sys::workspace_root().join("examples");
        let examples = match lua_files(&examples_dir) {
            Ok(e) => e,
            Err(e) => return report.setup_error = Some(e),
        };
        for example in &examples {
            let cmd = self.lua_command(exe, &examples_dir, calltest);
            let run = run_logged(cmd, example, &logs.join(example));
            report.examples.push(judge_example(self, example, run));
        }
        report.run_seconds = started.elapsed().as_secs_f64();
    }
}

/// The environment variable setting lua-adapter's tier-0 threshold (`native::closure`).
const TIER_UP: &str = "LUAFFI_TIER_UP";

/// Wine quiet, with the run's own prefix, and no prompts to install Mono or Gecko.
fn wine_env(cmd: &mut Command) {
    cmd.env("WINEPREFIX", wine_prefix()).env("WINEDEBUG", "-all").env("WINEDLLOVERRIDES", "mscoree,mshtml=");
}

/// The Wine prefix of the Windows hosts: `target/wine`, shared by both (a 64-bit prefix runs
/// 32-bit programs too).
fn wine_prefix() -> PathBuf {
    module::target_dir().join("wine")
}

/// Creates the Wine prefix if it doesn't exist yet (about 40 s), before hosts use it at once.
pub fn ensure_wine_prefix() -> Result<(), String> {
    let prefix = wine_prefix();
    if prefix.join("system.reg").is_file() {
        return Ok(());
    }
    eprintln!("xtask: creating the Wine prefix {}", prefix.display());
    let mut boot = Command::new("wine");
    boot.args(["wineboot", "--init"]);
    wine_env(&mut boot);
    let status = boot.status().map_err(|e| format!("cannot run wine: {e} (Debian's wine, wine64, wine32:i386)"))?;
    // `wineboot` returns before the prefix is written out; the server's exit means it is.
    let mut wait = Command::new("wineserver");
    wait.arg("-w");
    wine_env(&mut wait);
    let waited = wait.status();
    if !status.success() || !matches!(waited, Ok(s) if s.success()) || !prefix.join("system.reg").is_file() {
        return Err(format!("`wine wineboot --init` could not create the Wine prefix {}", prefix.display()));
    }
    Ok(())
}

/// A Wine server kept running for the whole of a hosts run, stopped when dropped.
///
/// Debian's `wineserver` wrapper passes `-p0`: the server exits as soon as its last client
/// does. Both Windows hosts start a `wine` process per script, in two threads, so one often
/// starts while the server is exiting and fails at once with "wine client error:0: recvmsg:
/// Connection reset by peer" (seen once in about four fresh-clone CI runs). A server that
/// persists removes the race; its own timeout ends it if xtask dies before the drop.
struct WineServer;

impl WineServer {
    /// Starts the persistent server (`wineserver -p60` daemonizes and returns at once). If it
    /// cannot start, the hosts run as before, with the wrapper's own servers.
    fn start() -> WineServer {
        let mut server = Command::new("wineserver");
        server.arg("-p60");
        wine_env(&mut server);
        if let Err(e) = server.status() {
            eprintln!("xtask: could not start a persistent wineserver ({e}); running without one");
        }
        WineServer
    }
}

impl Drop for WineServer {
    fn drop(&mut self) {
        let mut kill = Command::new("wineserver");
        kill.arg("-k");
        wine_env(&mut kill);
        let _ = kill.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// The source of `bcryptprimitives.dll` for Wine before 9.0 (Debian 12 ships 8.0), which has
/// none: Rust's standard library (1.78 and later) imports `ProcessPrng` from it for its
/// random seeds, so without it no Rust program starts there. `ProcessPrng` fills the buffer
/// from advapi32's `RtlGenRandom` (`SystemFunction036`), as Windows 7's Rust did.
const PRNG_SHIM: &str = r#"/* Written by cargo xtask (xtask/src/hosts.rs): ProcessPrng for Wine < 9. */
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
"#;

/// Runs a compiler command that writes `output`; the error says which.
pub fn compile(cmd: &mut Command, output: &Path) -> Result<(), String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{program} failed to build {}:\n{}", output.display(), String::from_utf8_lossy(&out.stderr)))
    }
}

/// Copies through a temporary name, so that a program still running the old file keeps it.
fn copy_file(from: &Path, to: &Path) -> Result<(), String> {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).map_err(|e| format!("copying {}: {e}", from.display()))?;
    std::fs::rename(&tmp, to).map_err(|e| format!("{}: {e}", to.display()))
}

/// The `*.lua` files of `dir`, sorted.
fn lua_files(dir: &Path) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".lua"))
        .collect();
    names.sort();
    Ok(names)
}

/// The part of cargo's stderr that says what failed: each `error` line and what follows it
/// up to the next blank line, at most 60 lines in all.
fn cargo_errors(stderr: &str) -> String {
    let mut out = Vec::new();
    let mut in_error = false;
    for line in stderr.lines() {
        if line.starts_with("error") {
            in_error = true;
        } else if line.trim().is_empty() {
            in_error = false;
        }
        if in_error {
            out.push(line);
        }
    }
    if out.is_empty() {
        out = stderr.lines().rev().take(20).collect();
        out.reverse();
    }
    out.truncate(60);
    out.join("\n")
}

/// What one run of a program gave.
#[derive(Debug)]
pub struct Run {
    /// Exited with status 0.
    pub success: bool,
    /// How it ended, for messages: `exit 1`, `signal 11`, `killed after 600 s`.
    pub status: String,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
}

/// Runs `cmd` with `arg` (a file name relative to its directory), its output in
/// `<log>.out`/`<log>.err`, killed after [`RUN_LIMIT`].
pub fn run_logged(mut cmd: Command, arg: &str, log: &Path) -> Run {
    let failed =
        |status: String| Run { success: false, status, stdout: String::new(), stderr: String::new(), seconds: 0.0 };
    let (out_path, err_path) = (log.with_extension("out"), log.with_extension("err"));
    if let Some(dir) = log.parent() {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return failed(format!("cannot create {}: {e}", dir.display()));
        }
    }
    let files = std::fs::File::create(&out_path).and_then(|o| Ok((o, std::fs::File::create(&err_path)?)));
    let (out_file, err_file) = match files {
        Ok(f) => f,
        Err(e) => return failed(format!("cannot create {}: {e}", out_path.display())),
    };
    let started = Instant::now();
    let mut child = match cmd.arg(arg).stdin(Stdio::null()).stdout(out_file).stderr(err_file).spawn() {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot run {}: {e}", cmd.get_program().to_string_lossy())),
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break exit_text(status),
            Ok(None) if started.elapsed() > RUN_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                break format!("killed after {} s", RUN_LIMIT.as_secs());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break format!("cannot wait for it: {e}"),
        }
    };
    let read =
        |p: &Path| std::fs::read(p).map(|b| String::from_utf8_lossy(&b).replace("\r\n", "\n")).unwrap_or_default();
    Run {
        success: status == "exit 0",
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn exit_text(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        (None, None) => status.to_string(),
    }
}

/// How one script or example went.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    /// `None` when it passed; otherwise why not.
    pub failure: Option<String>,
    /// Assertions passed and skipped (suite scripts).
    pub passed: u64,
    pub skipped: u64,
    pub run: Run,
}

/// The counts a script's `T.done` printed: `<script>: N passed, N failed, N skipped`.
fn script_counts(script: &str, stdout: &str) -> Option<(u64, u64, u64)> {
    let line = stdout.lines().rev().find_map(|l| l.trim_end().strip_prefix(&format!("{script}: ")))?;
    let mut nums = line.split(", ").map(|part| part.split(' ').next()?.parse::<u64>().ok());
    Some((nums.next()??, nums.next()??, nums.next()??))
}

/// A suite script passed when it exited with 0 and its summary counts no failure.
pub fn judge_script(script: &str, run: Run) -> Outcome {
    let counts = script_counts(script, &run.stdout);
    let failure = match counts {
        Some((_, 0, _)) if run.success => None,
        Some((_, failed, _)) if failed > 0 => Some(format!("{failed} assertion(s) failed ({})", run.status)),
        Some(_) => Some(format!("{} after its summary", run.status)),
        None => Some(format!("no `{script}: N passed, ...` summary ({})", run.status)),
    };
    let (passed, _, skipped) = counts.unwrap_or_default();
    Outcome { name: script.to_string(), failure, passed, skipped, run }
}

/// The `executable` of lua-adapter's lib test in `cargo test --lib --no-run
/// --message-format=json` output (one JSON object a line; dependencies' artifacts have
/// `"executable":null`).
fn test_executable(json_lines: &str) -> Option<String> {
    const KEY: &str = "\"executable\":\"";
    json_lines
        .lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\"") && l.contains("\"name\":\"lua_adapter\""))
        .find_map(|l| {
            let start = l.find(KEY)? + KEY.len();
            let len = l[start..].find('"')?;
            Some(l[start..start + len].replace("\\\\", "\\"))
        })
}

/// The counts of a test harness's `test result: ok. 56 passed; 0 failed; 2 ignored; ...`
/// line: (passed, failed, ignored).
fn unit_test_counts(stdout: &str) -> Option<(u64, u64, u64)> {
    let line = stdout.lines().rev().find_map(|l| l.trim_end().strip_prefix("test result: "))?;
    let counts = line.strip_prefix("ok. ").or_else(|| line.strip_prefix("FAILED. "))?;
    let count =
        |word: &str| counts.split("; ").find_map(|part| part.strip_suffix(word)?.trim_end().parse::<u64>().ok());
    Some((count("passed")?, count("failed")?, count("ignored")?))
}

/// The unit tests passed when the harness exited with 0 and its `test result:` line counts
/// some tests and no failure; the outcome's `passed` is the tests passed, `skipped` the
/// ignored ones.
pub fn judge_unit_tests(run: Run) -> Outcome {
    let counts = unit_test_counts(&run.stdout);
    let failure = match counts {
        Some((0, 0, _)) => Some("no unit test ran".to_string()),
        Some((_, 0, _)) if run.success => None,
        Some((_, failed, _)) if failed > 0 => Some(format!("{failed} unit test(s) failed ({})", run.status)),
        Some(_) => Some(format!("{} after its summary", run.status)),
        None => Some(format!("no `test result:` line ({})", run.status)),
    };
    let (passed, _, skipped) = counts.unwrap_or_default();
    Outcome { name: "lua-adapter unit tests".to_string(), failure, passed, skipped, run }
}

/// Lines each example must print on `host` (beside exiting with 0); `None` for an example
/// this table doesn't know, which fails until it is added.
fn example_expects(host: &Host, example: &str) -> Option<Vec<String>> {
    let (os, arch) = host.ffi_os_arch();
    let lines: Vec<String> = match example {
        "hello.lua" => vec![format!("ffi.os   = {os}"), format!("ffi.arch = {arch}")],
        "libc.lua" => vec![
            "printf: luaffi has 6 letters and pi is about 3.1416".into(),
            "strlen(\"Hello, C!\") = 9".into(),
            "getenv(\"LUAFFI_SURELY_UNSET\") is NULL: true".into(),
        ],
        "qsort.lua" => vec!["sorted 100000 numbers with ".into()],
        "zlib.lua" => vec!["4700 bytes compressed to ".into(), "uncompressed back to 4700: ok".into()],
        _ => return None,
    };
    Some(lines)
}

/// An example passed when it exited with 0 and printed what [`example_expects`] lists.
fn judge_example(host: &Host, example: &str, run: Run) -> Outcome {
    let failure = match example_expects(host, example) {
        None => Some(format!("xtask/src/hosts.rs knows no expected output of examples/{example}: add it")),
        Some(_) if !run.success => Some(run.status.clone()),
        Some(expects) => {
            let missing: Vec<String> = expects.into_iter().filter(|e| !run.stdout.contains(e.as_str())).collect();
            (!missing.is_empty()).then(|| format!("did not print {missing:?}"))
        }
    };
    Outcome { name: example.to_string(), failure, passed: 0, skipped: 0, run }
}

/// One host's results.
#[derive(Debug)]
pub struct HostReport {
    pub label: String,
    /// Why the host could not run at all (a failed build, a missing compiler).
    pub setup_error: Option<String>,
    pub scripts: Vec<Outcome>,
    pub examples: Vec<Outcome>,
    /// lua-adapter's unit tests built for the host and run there (hosts other than the build
    /// machine; the workspace stage runs the build machine's).
    pub unit: Option<Outcome>,
    pub build_seconds: f64,
    pub run_seconds: f64,
}

impl HostReport {
    pub fn new(label: String) -> Self {
        HostReport {
            label,
            setup_error: None,
            scripts: Vec::new(),
            examples: Vec::new(),
            unit: None,
            build_seconds: 0.0,
            run_seconds: 0.0,
        }
    }

    /// Scripts and examples that passed.
    pub fn passed(&self) -> u64 {
        self.outcomes().filter(|o| o.failure.is_none()).count() as u64
    }

    /// Scripts, examples and the unit tests, in that order.
    fn outcomes(&self) -> impl Iterator<Item = &Outcome> {
        self.scripts.iter().chain(&self.examples).chain(&self.unit)
    }

    /// Scripts and examples that failed, and 1 for a host that could not run.
    pub fn failed(&self) -> u64 {
        let failed = self.outcomes().filter(|o| o.failure.is_some()).count() as u64;
        failed + u64::from(self.setup_error.is_some())
    }

    /// `x86_64-windows (wine): 14 scripts, 1012 assertions passed, 3 skipped; 4 examples`,
    /// or what failed.
    pub fn line(&self) -> String {
        if let Some(e) = &self.setup_error {
            // The command that failed and its first error line.
            let reason: Vec<&str> = e.lines().take(2).map(str::trim).collect();
            return format!("{}: FAILED, did not run: {}", self.label, reason.join(" "));
        }
        let (bad_scripts, bad_examples) = (failed_names(&self.scripts), failed_names(&self.examples));
        let scripts = if bad_scripts.is_empty() {
            let passed: u64 = self.scripts.iter().map(|o| o.passed).sum();
            let skipped: u64 = self.scripts.iter().map(|o| o.skipped).sum();
            format!("{} scripts, {passed} assertions passed, {skipped} skipped", self.scripts.len())
        } else {
            format!("{} scripts, {} FAILED ({})", self.scripts.len(), bad_scripts.len(), bad_scripts.join(", "))
        };
        let examples = if bad_examples.is_empty() {
            format!("{} examples", self.examples.len())
        } else {
            format!("{} examples, {} FAILED ({})", self.examples.len(), bad_examples.len(), bad_examples.join(", "))
        };
        let unit = match &self.unit {
            None => String::new(),
            Some(o) if o.failure.is_none() => format!("; {} unit tests", o.passed),
            Some(o) => format!("; unit tests FAILED ({})", o.failure.as_deref().unwrap_or_default()),
        };
        format!(
            "{}: {scripts}; {examples}{unit} (build {:.0} s, run {:.0} s)",
            self.label, self.build_seconds, self.run_seconds
        )
    }

    /// What each failure printed, for the log above the summary.
    pub fn failure_texts(&self) -> Vec<String> {
        let mut out: Vec<String> = self.setup_error.iter().map(|e| format!("--- {}: {e}", self.label)).collect();
        for o in self.outcomes() {
            if let Some(why) = &o.failure {
                let (label, name, seconds) = (&self.label, &o.name, o.run.seconds);
                out.push(format!("--- {label} {name}: {why} ({seconds:.1} s)\n{}{}", o.run.stdout, o.run.stderr));
            }
        }
        out
    }
}

/// The names of the outcomes that failed.
fn failed_names(outcomes: &[Outcome]) -> Vec<&str> {
    outcomes.iter().filter(|o| o.failure.is_some()).map(|o| o.name.as_str()).collect()
}

/// Runs every host's suite: the builds one after another (each cargo already uses every
/// core, and they share the target directory's lock), each host's scripts in its own thread
/// as soon as its build is done. Returns the reports in [`HOSTS`] order.
pub fn run_all(hosts: &[&'static Host]) -> Vec<HostReport> {
    let wine_error = hosts.iter().any(|h| h.os == Os::Windows).then(ensure_wine_prefix).and_then(Result::err);
    let _server = (hosts.iter().any(|h| h.os == Os::Windows) && wine_error.is_none()).then(WineServer::start);
    std::thread::scope(|scope| {
        let mut running = Vec::new();
        for host in hosts {
            let mut report = HostReport::new(host.label());
            let started = Instant::now();
            let built = match &wine_error {
                Some(e) if host.os == Os::Windows => Err(e.clone()),
                _ => host.build("luaffi", false).and_then(|exe| Ok((exe, host.build_calltest(&host.run_dir(), &[])?))),
            };
            let unit = match (&built, host.is_build_machine()) {
                (Ok(_), false) => Some(host.build_unit_tests()),
                _ => None,
            };
            report.build_seconds = started.elapsed().as_secs_f64();
            running.push(scope.spawn(move || {
                match built {
                    Ok((exe, calltest)) => host.run_built(&exe, &calltest, &mut report),
                    Err(e) => report.setup_error = Some(e),
                }
                report.unit = unit.map(|built| match built {
                    Ok(exe) => {
                        let outcome = host.run_unit_tests(&exe);
                        report.run_seconds += outcome.run.seconds;
                        outcome
                    }
                    Err(e) => Outcome {
                        name: "lua-adapter unit tests".to_string(),
                        failure: Some(format!("did not build: {e}")),
                        passed: 0,
                        skipped: 0,
                        run: Run {
                            success: false,
                            status: e,
                            stdout: String::new(),
                            stderr: String::new(),
                            seconds: 0.0,
                        },
                    },
                });
                report
            }));
        }
        running.into_iter().map(|t| t.join().expect("a host's run panicked")).collect()
    })
}

/// `cargo xtask hosts [NAME]...`: the per-host stage of the test command alone, for the
/// hosts named (default: all), after installing what they need.
pub fn run(args: &[String]) -> Result<(), String> {
    let chosen: Vec<&'static Host> = if args.is_empty() {
        HOSTS.iter().collect()
    } else {
        args.iter().map(|a| by_name(a)).collect::<Result<_, _>>()?
    };
    ensure_installed(&chosen, &[])?;
    let reports = run_all(&chosen);
    for text in reports.iter().flat_map(HostReport::failure_texts) {
        println!("{text}");
    }
    for r in &reports {
        println!("{}", r.line());
    }
    let (passed, failed) = reports.iter().fold((0, 0), |(p, f), r| (p + r.passed(), f + r.failed()));
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        Err(format!("{failed} failure(s)"))
    } else {
        Ok(())
    }
}

/// The host xtask runs on, or an error naming what it is.
pub fn build_machine() -> Result<&'static Host, String> {
    HOSTS.iter().find(|h| h.is_build_machine()).ok_or_else(|| {
        format!("no host is {}-{}: xtask runs on x86-64 Linux", std::env::consts::ARCH, std::env::consts::OS)
    })
}

/// The host named `name`, or an error listing the names.
pub fn by_name(name: &str) -> Result<&'static Host, String> {
    HOSTS.iter().find(|h| h.name == name).ok_or_else(|| {
        let names: Vec<&str> = HOSTS.iter().map(|h| h.name).collect();
        format!("unknown host `{name}` (hosts: {})", names.join(", "))
    })
}

/// Installs what `hosts` need on a bare Debian x86-64 machine, with the build's own `debs`:
/// foreign dpkg architectures (`i386`, for the `:i386` packages), the Debian packages (one
/// `apt-get` run), the rustup targets. Fast when everything is there.
pub fn ensure_installed(hosts: &[&Host], debs: &[&str]) -> Result<(), String> {
    let mut all: Vec<&str> = debs.to_vec();
    for deb in hosts.iter().flat_map(|h| h.debs.iter()) {
        if !all.contains(deb) {
            all.push(deb);
        }
    }
    let mut archs: Vec<&str> = all.iter().filter_map(|d| d.split_once(':')).map(|(_, arch)| arch).collect();
    archs.dedup();
    for arch in archs {
        sys::ensure_dpkg_arch(arch)?;
    }
    sys::ensure_debs(&all)?;
    let targets: Vec<&str> = hosts.iter().filter(|h| !h.is_build_machine()).map(|h| h.triple).collect();
    sys::ensure_rust_targets(&targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stdout: &str, success: bool) -> Run {
        let status = if success { "exit 0" } else { "exit 1" }.to_string();
        Run { success, status, stdout: stdout.into(), stderr: String::new(), seconds: 0.1 }
    }

    #[test]
    fn a_passing_script_counts_its_assertions() {
        let o = judge_script("calls.lua", run("ok 1\ncalls.lua: 120 passed, 0 failed, 2 skipped\r\n", true));
        assert!(o.failure.is_none(), "{o:?}");
        assert_eq!((o.passed, o.skipped), (120, 2));
    }

    #[test]
    fn a_failing_script_is_reported_failed() {
        let out = "FAIL int64 add\ncalls.lua: 119 passed, 1 failed, 0 skipped\nlua: calls.lua:300: 1 failed";
        let o = judge_script("calls.lua", run(out, false));
        assert_eq!(o.failure.as_deref(), Some("1 assertion(s) failed (exit 1)"));
        // A crash before the summary, and a summary with failures but exit 0, fail too.
        assert!(judge_script("calls.lua", run("ok 1\n", false)).failure.is_some());
        assert!(judge_script("calls.lua", run("calls.lua: 1 passed, 2 failed, 0 skipped", true)).failure.is_some());
        assert!(judge_script("calls.lua", run("calls.lua: 1 passed, 0 failed, 0 skipped", false)).failure.is_some());
        // Another script's summary is not this one's.
        assert!(judge_script("calls.lua", run("cdata.lua: 1 passed, 0 failed, 0 skipped", true)).failure.is_some());
    }

    #[test]
    fn the_host_line_names_what_failed_and_counts_it() {
        let mut r = HostReport::new("i686-windows (wine)".into());
        r.scripts.push(judge_script("a.lua", run("a.lua: 10 passed, 0 failed, 1 skipped", true)));
        r.scripts.push(judge_script("b.lua", run("b.lua: 3 passed, 1 failed, 0 skipped", false)));
        r.examples.push(judge_example(&HOSTS[3], "zlib.lua", run("4700 bytes compressed to 98\n", true)));
        assert_eq!((r.passed(), r.failed()), (1, 2));
        let line = r.line();
        assert!(
            line.starts_with("i686-windows (wine): 2 scripts, 1 FAILED (b.lua); 1 examples, 1 FAILED (zlib.lua)"),
            "{line}"
        );
        assert_eq!(r.failure_texts().len(), 2);
        r.setup_error = Some("`cargo build` failed:\nerror: x".into());
        assert_eq!(r.failed(), 3);
        assert_eq!(r.line(), "i686-windows (wine): FAILED, did not run: `cargo build` failed: error: x");
    }

    #[test]
    fn unit_tests_pass_only_with_a_clean_summary_and_exit() {
        let ok = "running 56 tests\ntest result: ok. 56 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.76s\n";
        let o = judge_unit_tests(run(ok, true));
        assert_eq!((o.failure, o.passed, o.skipped), (None, 56, 2));
        let failed =
            "test result: FAILED. 55 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1s\n";
        assert_eq!(judge_unit_tests(run(failed, false)).failure.as_deref(), Some("1 unit test(s) failed (exit 1)"));
        // A crash before the summary (e.g. a page fault under Wine) has no counts.
        assert!(judge_unit_tests(run("test a::b ... ", false)).failure.unwrap().starts_with("no `test result:` line"));
        // A clean summary with a bad exit, and a run of no tests, fail too.
        assert!(judge_unit_tests(run(ok, false)).failure.is_some());
        let none = "test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 56 filtered out; finished in 0s\n";
        assert_eq!(judge_unit_tests(run(none, true)).failure.as_deref(), Some("no unit test ran"));
    }

    #[test]
    fn the_test_executable_is_the_lib_test_artifact() {
        let lines = [
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"mlua","test":true},"executable":null}"#,
            r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"luaffi"},"executable":"/t/deps/luaffi-1.exe"}"#,
            r#"{"reason":"compiler-artifact","target":{"kind":["cdylib","rlib"],"name":"lua_adapter"},"executable":"/t/deps/lua_adapter-2.exe"}"#,
        ];
        assert_eq!(test_executable(&lines.join("\n")).as_deref(), Some("/t/deps/lua_adapter-2.exe"));
        assert_eq!(test_executable(&lines[..2].join("\n")), None);
    }

    #[test]
    fn a_passing_host_line_sums_the_assertions() {
        let mut r = HostReport::new("x86_64-linux".into());
        r.scripts.push(judge_script("a.lua", run("a.lua: 10 passed, 0 failed, 1 skipped", true)));
        r.scripts.push(judge_script("b.lua", run("b.lua: 5 passed, 0 failed, 0 skipped", true)));
        r.examples.push(judge_example(&HOSTS[0], "hello.lua", run("ffi.os   = Linux\nffi.arch = x64\n", true)));
        assert_eq!((r.passed(), r.failed()), (3, 0));
        assert!(
            r.line().starts_with("x86_64-linux: 2 scripts, 15 assertions passed, 1 skipped; 1 examples (build"),
            "{}",
            r.line()
        );
    }

    #[test]
    fn hello_must_tell_the_hosts_os_and_arch() {
        let win32 = by_name("i686-windows").unwrap();
        let told = "ffi.os   = Windows\nffi.arch = x86\n";
        assert!(judge_example(win32, "hello.lua", run(told, true)).failure.is_none());
        let wrong = judge_example(win32, "hello.lua", run("ffi.os   = Windows\nffi.arch = x64\n", true));
        assert_eq!(wrong.failure.as_deref(), Some("did not print [\"ffi.arch = x86\"]"));
        assert!(judge_example(win32, "new.lua", run("", true)).failure.is_some());
    }

    #[test]
    fn every_example_has_expected_output() {
        let examples = lua_files(&sys::workspace_root().join("examples")).unwrap();
        assert!(examples.len() >= 4, "{examples:?}");
        for e in &examples {
            assert!(example_expects(&HOSTS[0], e).is_some(), "examples/{e} has no expected output in hosts.rs");
        }
    }

    #[test]
    fn require_inline_is_lua_adapters_name() {
        let src = sys::workspace_root().join("lua-adapter").join("src").join("surface").join("clib.rs");
        let text = std::fs::read_to_string(&src).unwrap();
        assert!(text.contains(&format!("pub const REQUIRE_INLINE: &str = \"{REQUIRE_INLINE}\";")), "{}", src.display());
    }

    #[test]
    fn only_the_build_machine_builds_without_target() {
        let natives: Vec<&str> = HOSTS.iter().filter(|h| h.is_build_machine()).map(|h| h.name).collect();
        assert_eq!(natives, ["x86_64-linux"]);
    }

    #[test]
    fn wine_sees_unix_paths_on_drive_z() {
        let win64 = by_name("x86_64-windows").unwrap();
        assert_eq!(win64.host_path(Path::new("/work/t/calltest.dll")), "Z:\\work\\t\\calltest.dll");
        assert_eq!(HOSTS[1].host_path(Path::new("/work/t/libcalltest.so")), "/work/t/libcalltest.so");
        assert!(by_name("sparc-solaris").unwrap_err().contains("i686-windows"));
    }

    #[test]
    fn cargo_errors_keeps_the_error_blocks() {
        let stderr = "   Compiling a\nwarning: unused\n\nerror: literal out of range\n  --> x.rs:1\n\nerror: could not compile\n";
        assert_eq!(cargo_errors(stderr), "error: literal out of range\n  --> x.rs:1\nerror: could not compile");
    }
}
