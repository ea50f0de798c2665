//! The `luaffi` command behaves like Lua 5.4's `lua` for non-interactive use.
//!
//! The expectations are Lua 5.4's (the default embedded version); tests whose messages or
//! behaviour differ in other versions are ignored when the crate embeds another one
//! (`--no-default-features --features lua51,vendored`).
//!
//! Each test writes its scripts to its own directory under CARGO_TARGET_TMPDIR and runs the
//! built binary there, so messages name scripts by their relative path, as a user would see.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const EXE: &str = env!("CARGO_BIN_EXE_luaffi");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A fresh directory for one test's scripts.
fn workdir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn run_program(program: &str, dir: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("LUA_INIT")
        .env_remove("LUA_INIT_5_4")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    // A script may exit without reading stdin: ignore a broken pipe.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().expect("exited normally"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn luaffi(dir: &Path, args: &[&str]) -> Run {
    run_program(EXE, dir, args, "", &[])
}

#[test]
fn arg_table_has_the_script_at_zero_and_the_interpreter_below() {
    let dir = workdir("arg_table");
    write(&dir, "show.lua", "for i = -4, 3 do print(i, arg[i]) end\n");
    let run = luaffi(&dir, &["-e", "x = 1", "show.lua", "a", "b c"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let expected = format!("-4\tnil\n-3\t{EXE}\n-2\t-e\n-1\tx = 1\n0\tshow.lua\n1\ta\n2\tb c\n3\tnil\n");
    assert_eq!(run.stdout, expected);
}

#[test]
fn without_a_script_arg_zero_is_the_interpreter() {
    let dir = workdir("arg_no_script");
    let run = luaffi(&dir, &["-e", "print(arg[-1], arg[0], arg[1], arg[2], #arg)"]);
    assert_eq!(run.stdout, format!("nil\t{EXE}\t-e\tprint(arg[-1], arg[0], arg[1], arg[2], #arg)\t2\n"));
}

#[test]
fn script_arguments_are_its_varargs() {
    let dir = workdir("varargs");
    write(&dir, "va.lua", "print(select('#', ...), ...)\n");
    assert_eq!(luaffi(&dir, &["va.lua", "1", "", "three"]).stdout, "3\t1\t\tthree\n");
    assert_eq!(luaffi(&dir, &["va.lua"]).stdout, "0\n");
}

#[test]
fn the_script_sees_the_arg_table_as_it_is_when_the_script_starts() {
    let dir = workdir("arg_rewritten");
    write(&dir, "va.lua", "print(...)\n");
    let run = luaffi(&dir, &["-e", "arg = {'x', 'y'}", "va.lua", "ignored"]);
    assert_eq!(run.stdout, "x\ty\n");
    let run = luaffi(&dir, &["-e", "arg = 1", "va.lua"]);
    assert_eq!((run.code, run.stderr), (1, format!("{EXE}: 'arg' is not a table\n")));
}

#[test]
fn e_options_run_in_order_and_concatenated() {
    let dir = workdir("e_order");
    let run = luaffi(&dir, &["-e", "x = 20", "-ex = x * 2", "-e", "print(x + 2)"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "42\n"));
}

#[test]
fn l_option_requires_into_a_global() {
    let dir = workdir("l_option");
    write(&dir, "greet.lua", "return { hi = 'hello' }\n");
    let run = luaffi(&dir, &["-l", "greet", "-lg=greet", "-e", "print(greet.hi, g == greet)"]);
    assert_eq!(run.stdout, "hello\ttrue\n", "{}", run.stderr);
    let run = luaffi(&dir, &["-l", "ffi", "-e", "print(ffi.os ~= nil)"]);
    assert_eq!(run.stdout, "true\n");
}

#[test]
#[cfg_attr(not(feature = "lua54"), ignore = "Lua 5.4 messages and behaviour")]
fn exit_codes() {
    let dir = workdir("exit_codes");
    assert_eq!(luaffi(&dir, &["-e", "x = 1"]).code, 0);
    assert_eq!(luaffi(&dir, &["-e", "os.exit(3)"]).code, 3);
    assert_eq!(luaffi(&dir, &["-e", "os.exit(true)"]).code, 0);
    assert_eq!(luaffi(&dir, &["-e", "os.exit(false)"]).code, 1);
    assert_eq!(luaffi(&dir, &["-e", "os.exit(5, true)"]).code, 5);
    assert_eq!(luaffi(&dir, &["-e", "error('x')"]).code, 1);
    assert_eq!(luaffi(&dir, &["-e", "x ="]).code, 1);
}

#[test]
fn os_exit_flushes_output() {
    let dir = workdir("exit_flush");
    let run = luaffi(&dir, &["-e", "io.write('partial') print(' line') os.exit(0)"]);
    assert_eq!(run.stdout, "partial line\n");
}

#[test]
fn runtime_errors_are_reported_with_a_traceback() {
    let dir = workdir("error_format");
    write(&dir, "boom.lua", "local x = 1\n\nerror('boom')\n");
    let run = luaffi(&dir, &["boom.lua"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        format!(
            "{EXE}: boom.lua:3: boom\nstack traceback:\n\t[C]: in function 'error'\n\
             \tboom.lua:3: in main chunk\n\t[C]: in ?\n"
        )
    );
}

#[test]
fn tracebacks_name_the_functions_on_the_way() {
    let dir = workdir("error_deep");
    write(&dir, "deep.lua", "local function f()\n  local y = nil + 1\nend\nf()\n");
    let run = luaffi(&dir, &["deep.lua"]);
    assert_eq!(
        run.stderr,
        format!(
            "{EXE}: deep.lua:2: attempt to perform arithmetic on a nil value\n\
             stack traceback:\n\tdeep.lua:2: in local 'f'\n\tdeep.lua:4: in main chunk\n\t[C]: in ?\n"
        )
    );
}

#[test]
#[cfg_attr(not(feature = "lua54"), ignore = "Lua 5.4 messages and behaviour")]
fn non_string_error_objects() {
    let dir = workdir("error_objects");
    let run = luaffi(&dir, &["-e", "error({})"]);
    assert!(
        run.stderr.starts_with(&format!("{EXE}: (error object is a table value)\nstack traceback:\n")),
        "{}",
        run.stderr
    );
    let run = luaffi(&dir, &["-e", "error(setmetatable({}, {__tostring = function() return 'custom' end}))"]);
    assert_eq!(run.stderr, format!("{EXE}: custom\n"));
    let run = luaffi(&dir, &["-e", "error(42)"]);
    assert!(run.stderr.starts_with(&format!("{EXE}: 42\nstack traceback:\n")), "{}", run.stderr);
}

#[test]
#[cfg_attr(not(feature = "lua54"), ignore = "Lua 5.4 messages and behaviour")]
fn load_errors_have_no_traceback() {
    let dir = workdir("load_errors");
    write(&dir, "bad.lua", "x = = 1\n");
    let run = luaffi(&dir, &["bad.lua"]);
    assert_eq!((run.code, run.stderr), (1, format!("{EXE}: bad.lua:1: unexpected symbol near '='\n")));
    let run = luaffi(&dir, &["missing.lua"]);
    assert_eq!((run.code, run.stderr), (1, format!("{EXE}: cannot open missing.lua: No such file or directory\n")));
    let run = luaffi(&dir, &["-e", "x ="]);
    assert_eq!(run.stderr, format!("{EXE}: (command line):1: unexpected symbol near <eof>\n"));
}

#[test]
fn a_shebang_line_is_skipped() {
    let dir = workdir("shebang");
    write(&dir, "sb.lua", "#!/usr/bin/env luaffi\nprint('ran')\n");
    assert_eq!(luaffi(&dir, &["sb.lua"]).stdout, "ran\n");
}

#[test]
fn stdin_runs_when_there_is_no_script() {
    let dir = workdir("stdin");
    let run = run_program(EXE, &dir, &[], "print('from stdin', arg[0] ~= nil, ...)\n", &[]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "from stdin\ttrue\n"));
    let run = run_program(EXE, &dir, &["-", "a", "b"], "print(arg[0], ...)\n", &[]);
    assert_eq!(run.stdout, "-\ta\tb\n");
    let run = run_program(EXE, &dir, &[], "error('in stdin')\n", &[]);
    assert!(run.stderr.starts_with(&format!("{EXE}: stdin:1: in stdin\n")), "{}", run.stderr);
    // -e alone doesn't read stdin.
    let run = run_program(EXE, &dir, &["-e", "print(1)"], "print(2)\n", &[]);
    assert_eq!(run.stdout, "1\n");
}

#[test]
fn double_dash_ends_the_options() {
    let dir = workdir("double_dash");
    write(&dir, "-e", "print('a script named -e', ...)\n");
    let run = luaffi(&dir, &["--", "-e", "x"]);
    assert_eq!(run.stdout, "a script named -e\tx\n", "{}", run.stderr);
}

#[test]
fn require_ffi_returns_the_module() {
    let dir = workdir("require_ffi");
    write(
        &dir,
        "f.lua",
        "local ffi = require 'ffi'\n\
         print(ffi.os, ffi.arch, package.loaded.ffi == ffi, require('ffi') == ffi)\n\
         print(type(package.preload.ffi), ffi.abi('le'), ffi.abi('nonsense'))\n",
    );
    let run = luaffi(&dir, &["f.lua"]);
    let os = lua_adapter::surface::module::OS;
    let arch = lua_adapter::surface::module::ARCH;
    let le = cfg!(target_endian = "little");
    assert_eq!(run.stdout, format!("{os}\t{arch}\ttrue\ttrue\nfunction\t{le}\tfalse\n"), "{}", run.stderr);
    if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        assert!(run.stdout.starts_with("Linux\tx64\t"));
    }
}

#[test]
fn ffi_is_not_a_global_until_required() {
    let dir = workdir("ffi_not_global");
    assert_eq!(luaffi(&dir, &["-e", "print(ffi)"]).stdout, "nil\n");
}

#[test]
#[cfg_attr(not(feature = "lua54"), ignore = "Lua 5.4 messages and behaviour")]
fn version_option() {
    let dir = workdir("version");
    let run = run_program(EXE, &dir, &["-v"], "print('stdin must not run')\n", &[]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.starts_with("luaffi "), "{}", run.stdout);
    assert!(run.stdout.contains("Lua 5.4"), "{}", run.stdout);
    assert_eq!(run.stdout.lines().count(), 1);
    let run = luaffi(&dir, &["-v", "-e", "print('after')"]);
    assert!(run.stdout.ends_with("\nafter\n"), "{}", run.stdout);
}

#[test]
fn bad_options_print_the_usage() {
    let dir = workdir("bad_options");
    let run = luaffi(&dir, &["-x"]);
    assert_eq!(run.code, 1);
    assert!(run
        .stderr
        .starts_with(&format!("{EXE}: unrecognized option '-x'\nusage: {EXE} [options] [script [args]]\n")));
    let run = luaffi(&dir, &["-e"]);
    assert!(run.stderr.starts_with(&format!("{EXE}: '-e' needs argument\n")), "{}", run.stderr);
    let run = luaffi(&dir, &["-i"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no interactive mode"), "{}", run.stderr);
    let run = luaffi(&dir, &["--help"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("no REPL") && run.stdout.contains("-e stat"), "{}", run.stdout);
}

#[test]
#[cfg_attr(not(feature = "lua54"), ignore = "Lua 5.4 messages and behaviour")]
fn lua_init_runs_first_unless_e_is_given() {
    let dir = workdir("lua_init");
    write(&dir, "init.lua", "greeting = 'from file'\n");
    let run = run_program(EXE, &dir, &["-e", "print(greeting)"], "", &[("LUA_INIT", "greeting = 'hi'")]);
    assert_eq!(run.stdout, "hi\n");
    let env = [("LUA_INIT", "greeting = 'plain'"), ("LUA_INIT_5_4", "@init.lua")];
    let run = run_program(EXE, &dir, &["-e", "print(greeting)"], "", &env);
    assert_eq!(run.stdout, "from file\n");
    let run = run_program(EXE, &dir, &["-E", "-e", "print(greeting)"], "", &env);
    assert_eq!(run.stdout, "nil\n");
    let run = run_program(EXE, &dir, &["-e", "print(1)"], "", &[("LUA_INIT", "x =")]);
    assert_eq!((run.code, run.stderr), (1, format!("{EXE}: LUA_INIT:1: unexpected symbol near <eof>\n")));
}

#[test]
#[cfg_attr(not(feature = "lua54"), ignore = "Lua 5.4 messages and behaviour")]
fn warnings_are_off_until_w_or_at_on() {
    let dir = workdir("warnings");
    let code = "warn('a', 'b') warn('@off') warn('hidden') warn('@on') warn('c')";
    assert_eq!(luaffi(&dir, &["-W", "-e", code]).stderr, "Lua warning: ab\nLua warning: c\n");
    assert_eq!(luaffi(&dir, &["-e", "warn('x')"]).stderr, "");
}

/// The same command lines under the system's `lua5.4`, when there is one: stdout, exit code
/// and stderr (with the program name swapped) must match.
#[test]
#[cfg_attr(not(feature = "lua54"), ignore = "Lua 5.4 messages and behaviour")]
fn behaves_like_the_system_lua54() {
    let Some(lua) = ["lua5.4", "lua54"]
        .into_iter()
        .find(|p| Command::new(p).arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok())
    else {
        eprintln!("skipped: no lua5.4 on PATH to compare with");
        return;
    };
    let dir = workdir("like_lua54");
    write(&dir, "s.lua", "print(#arg, arg[0], ...)\nlocal t = {}\nt.x.y = 1\n");
    write(&dir, "m.lua", "return 'module m'\n");
    let cases: &[(&[&str], &str)] = &[
        (&["s.lua", "1", "2"], ""),
        (&["-e", "print(1)", "-lm", "-e", "print(m)"], ""),
        (&["-e", "print(select('#', ...), arg[0])"], ""),
        (&["-"], "print(arg[0], arg[-1] ~= nil)"),
        (&[], "print(...) return 1"),
        (&["--", "s.lua"], ""),
        (&["-e", "error('e')"], ""),
        (&["-e", "error()"], ""),
        (&["-e", "os.exit(9)"], ""),
        (&["-e", "local t = setmetatable({}, {__index = function(t, k) return k * 2 end}) print(t[21])"], ""),
        (&["-e", "print(pcall(error, 'x', 0))", "-e", "print(string.format('%5.2f', 1/3))"], ""),
        (&["nosuch.lua"], ""),
        (&["-y"], ""),
        (&["-l"], ""),
    ];
    for (args, stdin) in cases {
        let ours = run_program(EXE, &dir, args, stdin, &[]);
        let theirs = run_program(lua, &dir, args, stdin, &[]);
        let ours_out = ours.stdout.replace(EXE, "PROG");
        let theirs_out = theirs.stdout.replace(lua, "PROG");
        assert_eq!(ours_out, theirs_out, "stdout of {args:?}");
        assert_eq!(ours.code, theirs.code, "exit code of {args:?}");
        // The usage text lists our own options; compare its first line only.
        let first_lines = |s: &str, prog: &str| {
            let s = s.replace(prog, "PROG");
            if s.contains("usage:") {
                s.lines().next().unwrap_or("").to_string()
            } else {
                s
            }
        };
        assert_eq!(first_lines(&ours.stderr, EXE), first_lines(&theirs.stderr, lua), "stderr of {args:?}");
    }
}

#[test]
fn the_hello_example_runs() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello.lua");
    let dir = workdir("hello_example");
    let run = luaffi(&dir, &[example.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let os = lua_adapter::surface::module::OS;
    let arch = lua_adapter::surface::module::ARCH;
    assert!(
        run.stdout.starts_with(&format!("ffi.os   = {os}\nffi.arch = {arch}\nHello from luaffi-rs: Lua 5.")),
        "{}",
        run.stdout
    );
}
