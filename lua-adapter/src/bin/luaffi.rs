//! `luaffi`: the standard `lua` command with Lua embedded and `ffi` preloaded.
//!
//! `luaffi [options] [script [args]]` behaves like Lua 5.4's `lua` for non-interactive use:
//! the same options (`-e stat`, `-l mod`, `-l g=mod`, `-v`, `-E`, `-W`, `--`, `-`), the same
//! global `arg` table and `...`, `LUA_INIT`, error messages on stderr as `progname: message`
//! plus a stack traceback, exit status 1 on error, and `os.exit` as usual. `require "ffi"`
//! returns the ffi module (`package.preload.ffi`).
//!
//! Differences: there is no interactive mode. `-i` is refused; with no script, no `-e` and no
//! `-v`, stdin is run when it is not a terminal, and on a terminal the version and a usage line
//! are printed instead of starting a REPL. `--help` prints the usage (lua rejects it).
//!
//! Like lua.c, the driver runs chunks with `lua_pcall` and a C message handler, so that
//! messages and tracebacks are exactly Lua's; everything else goes through mlua.

use std::ffi::{CStr, CString, OsString};
use std::io::{IsTerminal, Write};
use std::os::raw::c_int;
use std::process::ExitCode;
use std::ptr;

use lua_adapter::surface::host::HostState;
use lua_adapter::surface::module;
use mlua::{ffi, Lua, MultiValue, StdLib, Value};

fn main() -> ExitCode {
    let argv: Vec<Vec<u8>> = std::env::args_os().map(os_bytes).collect();
    let progname = match argv.first() {
        Some(name) if !name.is_empty() => String::from_utf8_lossy(name).into_owned(),
        _ => "luaffi".to_string(),
    };
    let ok = match parse_args(&argv) {
        Ok(options) => run(&argv, &progname, &options),
        Err(ArgError::Help) => {
            print!("{}", usage(&progname));
            true
        }
        Err(ArgError::Bad(i)) => {
            let bad = String::from_utf8_lossy(&argv[i]);
            if matches!(argv[i].get(1), Some(b'e' | b'l')) {
                eprint!("{progname}: '{bad}' needs argument\n{}", usage(&progname));
            } else {
                eprint!("{progname}: unrecognized option '{bad}'\n{}", usage(&progname));
            }
            false
        }
        Err(ArgError::Interactive) => {
            eprint!("{progname}: there is no interactive mode (-i)\n{}", usage(&progname));
            false
        }
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(unix)]
fn os_bytes(s: OsString) -> Vec<u8> {
    use std::os::unix::ffi::OsStringExt;
    s.into_vec()
}

#[cfg(not(unix))]
fn os_bytes(s: OsString) -> Vec<u8> {
    s.to_string_lossy().into_owned().into_bytes()
}

fn usage(progname: &str) -> String {
    format!(
        "usage: {progname} [options] [script [args]]
Available options are:
  -e stat   execute string 'stat'
  -l mod    require library 'mod' into global 'mod'
  -l g=mod  require library 'mod' into global 'g'
  -v        show version information
  -E        ignore environment variables
  -W        turn warnings on
  --        stop handling options
  -         stop handling options and execute stdin
  --help    show this help
With no script (and no -e or -v) stdin is run if it is not a terminal.
There is no interactive mode: no -i, no REPL. The ffi module is preloaded: require \"ffi\".
"
    )
}

fn print_version(lua: &Lua) {
    let lua_version: String = lua.globals().get("_VERSION").unwrap_or_default();
    println!("luaffi {} ({lua_version} with a LuaJIT-compatible ffi module)", env!("CARGO_PKG_VERSION"));
}

/// What the command line asks for (lua.c's `collectargs`).
#[derive(Debug, Default)]
struct Options {
    /// Index in argv of the script (`-` is stdin unless it follows `--`).
    script: Option<usize>,
    /// `-v`
    version: bool,
    /// Some `-e` was given (then no script doesn't mean stdin).
    has_e: bool,
    /// `-E`: ignore LUA_INIT and LUA_PATH/LUA_CPATH.
    ignore_env: bool,
    /// argv[1..option_end] are options, run in order by `run_options`.
    option_end: usize,
}

#[derive(Debug)]
enum ArgError {
    /// The option at this argv index is unknown or lacks its argument.
    Bad(usize),
    Interactive,
    Help,
}

fn parse_args(argv: &[Vec<u8>]) -> Result<Options, ArgError> {
    let mut options = Options::default();
    let mut i = 1;
    while i < argv.len() {
        let arg = &argv[i];
        if arg.first() != Some(&b'-') {
            options.script = Some(i);
            break;
        }
        match (arg.get(1), arg.len()) {
            (None, _) => {
                options.script = Some(i); // "-": stdin
                break;
            }
            (Some(b'-'), 2) => {
                // "--": the next argument, if any, is the script even if it starts with '-'.
                options.script = (i + 1 < argv.len()).then_some(i + 1);
                break;
            }
            (Some(b'-'), _) if arg == b"--help" => return Err(ArgError::Help),
            (Some(b'E'), 2) => options.ignore_env = true,
            (Some(b'W'), 2) => {}
            (Some(b'v'), 2) => options.version = true,
            (Some(b'i'), _) => return Err(ArgError::Interactive),
            (Some(&c @ (b'e' | b'l')), len) => {
                options.has_e |= c == b'e';
                if len == 2 {
                    // The argument is the next word, which must not look like an option.
                    i += 1;
                    if argv.get(i).is_none_or(|next| next.first() == Some(&b'-')) {
                        return Err(ArgError::Bad(i - 1));
                    }
                }
            }
            _ => return Err(ArgError::Bad(i)),
        }
        i += 1;
    }
    options.option_end = options.script.unwrap_or(argv.len());
    Ok(options)
}

/// lua.c's `pmain`: returns false when something failed (and was reported).
fn run(argv: &[Vec<u8>], progname: &str, options: &Options) -> bool {
    let report = |msg: &[u8]| {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(progname.as_bytes());
        let _ = err.write_all(b": ");
        let _ = err.write_all(msg);
        let _ = err.write_all(b"\n");
        let _ = err.flush();
    };
    let lua = match new_state(argv, options) {
        Ok(lua) => lua,
        Err(e) => {
            report(e.as_bytes());
            return false;
        }
    };
    if options.version {
        print_version(&lua);
    }
    let outcome = (|| -> Result<(), Failure> {
        if !options.ignore_env {
            handle_lua_init(&lua)?;
        }
        run_options(&lua, argv, options.option_end)?;
        if let Some(script) = options.script {
            handle_script(&lua, argv, script)?;
        } else if !options.has_e && !options.version {
            if std::io::stdin().is_terminal() {
                print_version(&lua);
                println!(
                    "usage: {progname} [options] [script [args]] \
                     (no interactive mode; --help for more)"
                );
            } else {
                let chunk = load_file(&lua, None)?;
                docall(&lua, chunk, MultiValue::new())?;
            }
        }
        Ok(())
    })();
    match outcome {
        Ok(()) => true,
        Err(msg) => {
            report(&msg);
            false
        }
    }
}

/// A Lua state as lua.c makes it (`luaL_newstate`: Lua's own allocator): all standard
/// libraries (C modules and `debug` included: this is an interpreter, not a sandbox), `ffi`
/// preloaded, the `arg` table, Lua 5.4's warning function and generational GC.
fn new_state(argv: &[Vec<u8>], options: &Options) -> Result<HostState, String> {
    let lua = HostState::new().map_err(|e| e.to_string())?;
    new_state_libs(&lua, argv, options).map_err(|e| e.to_string())?;
    Ok(lua)
}

/// The libraries, `ffi` in `package.preload`, `arg`, the warning function and the collector's
/// mode of a new state.
fn new_state_libs(lua: &Lua, argv: &[Vec<u8>], options: &Options) -> mlua::Result<()> {
    if options.ignore_env {
        // Read by the package library when it opens: don't use LUA_PATH/LUA_CPATH.
        lua.set_named_registry_value("LUA_NOENV", true)?;
    }
    lua.load_std_libs(StdLib::ALL)?;
    let open_ffi = lua.create_function(|lua, _: MultiValue| module::open(lua))?;
    lua.preload_module("ffi", open_ffi)?;
    create_arg_table(lua, argv, options.script.unwrap_or(0))?;
    #[cfg(any(feature = "lua54", feature = "lua55"))]
    {
        install_warning_function(lua);
        // SAFETY: lua_gc only switches the collector's mode; 0 keeps the default parameters.
        // (mlua 0.12 doesn't export its GcMode type, hence the raw call.)
        unsafe {
            lua.exec_raw::<()>((), |state| {
                ffi::lua_gc(state, ffi::LUA_GCGEN, 0, 0);
            })?;
        }
    }
    Ok(())
}

/// `arg`: the script at index 0, the interpreter and options at negative indices, the
/// script's arguments at 1..n. Without a script, `argv[0]` is at index 0.
fn create_arg_table(lua: &Lua, argv: &[Vec<u8>], script: usize) -> mlua::Result<()> {
    let arg = lua.create_table_with_capacity(argv.len().saturating_sub(script + 1), script + 1)?;
    for (i, a) in argv.iter().enumerate() {
        arg.raw_set(i as i64 - script as i64, lua.create_string(a)?)?;
    }
    lua.globals().set("arg", arg)
}

/// Lua 5.4's standard warning function (lauxlib's warnfoff/warnfon/warnfcont): off until
/// `@on`, each warning on stderr as `Lua warning: ...`, pieces joined until the last one.
#[cfg(any(feature = "lua54", feature = "lua55"))]
fn install_warning_function(lua: &Lua) {
    use std::cell::Cell;

    #[derive(Clone, Copy, PartialEq)]
    enum Warn {
        Off,
        On,
        Continuing,
    }
    let state = Cell::new(Warn::Off);
    lua.set_warning_function(move |_, msg, to_continue| {
        if state.get() != Warn::Continuing && !to_continue {
            if let Some(control) = msg.strip_prefix('@') {
                match control {
                    "on" => state.set(Warn::On),
                    "off" => state.set(Warn::Off),
                    _ => {} // unknown control messages are ignored
                }
                return Ok(());
            }
        }
        let mut err = std::io::stderr().lock();
        match state.get() {
            Warn::Off => return Ok(()),
            Warn::On => {
                let _ = err.write_all(b"Lua warning: ");
            }
            Warn::Continuing => {}
        }
        let _ = err.write_all(msg.as_bytes());
        if to_continue {
            state.set(Warn::Continuing);
        } else {
            let _ = err.write_all(b"\n");
            state.set(Warn::On);
        }
        Ok(())
    });
}

/// The message to report when running something failed.
type Failure = Vec<u8>;

fn mlua_failure(e: mlua::Error) -> Failure {
    e.to_string().into_bytes()
}

/// `LUA_INIT_5_x`, else `LUA_INIT`: `@file` runs the file, anything else runs as code.
fn handle_lua_init(lua: &Lua) -> Result<(), Failure> {
    let versioned = if cfg!(feature = "lua55") {
        Some("LUA_INIT_5_5")
    } else if cfg!(feature = "lua54") {
        Some("LUA_INIT_5_4")
    } else if cfg!(feature = "lua53") {
        Some("LUA_INIT_5_3")
    } else if cfg!(feature = "lua52") {
        Some("LUA_INIT_5_2")
    } else {
        None
    };
    let found = versioned
        .into_iter()
        .chain(["LUA_INIT"])
        .find_map(|name| std::env::var_os(name).map(|value| (name, os_bytes(value))));
    let Some((name, init)) = found else {
        return Ok(());
    };
    let chunk = match init.strip_prefix(b"@") {
        Some(path) => load_file(lua, Some(&c_string(path)?))?,
        None => load_string(lua, &init, &c_string(format!("={name}").as_bytes())?)?,
    };
    docall(lua, chunk, MultiValue::new()).map(drop)
}

/// The `-e`, `-l` and `-W` options in argv[1..option_end], in order.
fn run_options(lua: &Lua, argv: &[Vec<u8>], option_end: usize) -> Result<(), Failure> {
    let mut i = 1;
    while i < option_end {
        let option = &argv[i];
        match option[1] {
            b'e' | b'l' => {
                let extra = if option.len() > 2 {
                    &option[2..]
                } else {
                    i += 1;
                    &argv[i][..]
                };
                if option[1] == b'e' {
                    let chunk = load_string(lua, extra, c"=(command line)")?;
                    docall(lua, chunk, MultiValue::new())?;
                } else {
                    require_library(lua, extra)?;
                }
            }
            #[cfg(any(feature = "lua54", feature = "lua55"))]
            b'W' => lua.warning("@on", false),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// `-l g=mod` runs `g = require "mod"`; `-l mod` runs `mod = require "mod"`, where a
/// version suffix after '-' is left out of the global's name (`-l lib-1.2` sets `lib`).
fn require_library(lua: &Lua, spec: &[u8]) -> Result<(), Failure> {
    let (global, modname) = match spec.iter().position(|&c| c == b'=') {
        Some(eq) => (&spec[..eq], &spec[eq + 1..]),
        None => {
            let end = spec.iter().position(|&c| c == b'-').unwrap_or(spec.len());
            (&spec[..end], spec)
        }
    };
    let require: Value = lua.globals().get("require").map_err(mlua_failure)?;
    let modname = lua.create_string(modname).map_err(mlua_failure)?;
    let mut results = docall(lua, require, MultiValue::from_iter([Value::String(modname)]))?;
    let module = results.pop_front().unwrap_or(Value::Nil);
    let global = lua.create_string(global).map_err(mlua_failure)?;
    lua.globals().set(global, module).map_err(mlua_failure)
}

/// Runs the script at `argv[script]` with `argv[script+1..]` — taken from the global `arg`, as
/// lua.c does — as its `...`.
fn handle_script(lua: &Lua, argv: &[Vec<u8>], script: usize) -> Result<(), Failure> {
    let name = &argv[script];
    let stdin = name == b"-" && argv[script - 1] != b"--";
    let chunk = if stdin { load_file(lua, None)? } else { load_file(lua, Some(&c_string(name)?))? };
    let Value::Table(arg) = lua.globals().get("arg").map_err(mlua_failure)? else {
        return Err(b"'arg' is not a table".to_vec());
    };
    let n = arg.len().map_err(mlua_failure)?;
    let args = (1..=n).map(|i| arg.get::<Value>(i)).collect::<mlua::Result<MultiValue>>();
    docall(lua, chunk, args.map_err(mlua_failure)?).map(drop)
}

fn c_string(bytes: &[u8]) -> Result<CString, Failure> {
    CString::new(bytes).map_err(|_| b"argument contains a zero byte".to_vec())
}

/// `luaL_loadfile`: a file, or stdin for `None` (chunk names `@path` and `=stdin`). Skips a
/// `#` first line, accepts precompiled chunks.
fn load_file(lua: &Lua, path: Option<&CStr>) -> Result<Value, Failure> {
    let path = path.map_or(ptr::null(), CStr::as_ptr);
    // SAFETY: the closure runs on the Lua stack mlua gives it, pushes the chunk or the error
    // message plus a status flag, and owns nothing if loading raises a memory error.
    let loaded = unsafe {
        lua.exec_raw::<(bool, Value)>((), |state| {
            let status = ffi::luaL_loadfile(state, path);
            ffi::lua_pushboolean(state, c_int::from(status == ffi::LUA_OK));
            ffi::lua_insert(state, -2);
        })
    };
    loaded_chunk(loaded)
}

/// `luaL_loadbuffer` of `code` under `chunkname` (`=(command line)`, `=LUA_INIT`).
fn load_string(lua: &Lua, code: &[u8], chunkname: &CStr) -> Result<Value, Failure> {
    // SAFETY: the closure runs on the Lua stack mlua gives it and owns nothing if loading raises a
    // memory error (as in `load_file`); `code` outlives the call and `chunkname` is NUL-terminated.
    let loaded = unsafe {
        lua.exec_raw::<(bool, Value)>((), |state| {
            let status = ffi::luaL_loadbuffer(state, code.as_ptr().cast(), code.len(), chunkname.as_ptr());
            ffi::lua_pushboolean(state, c_int::from(status == ffi::LUA_OK));
            ffi::lua_insert(state, -2);
        })
    };
    loaded_chunk(loaded)
}

fn loaded_chunk(loaded: mlua::Result<(bool, Value)>) -> Result<Value, Failure> {
    match loaded.map_err(mlua_failure)? {
        (true, chunk) => Ok(chunk),
        (false, message) => Err(message_bytes(&message)),
    }
}

/// lua.c's `docall`: calls `callee(args...)` under `msghandler`, so a failure comes back as
/// the message with Lua's stack traceback appended.
fn docall(lua: &Lua, callee: Value, args: MultiValue) -> Result<MultiValue, Failure> {
    // SAFETY: the closure sees [callee, args...] on its stack, leaves [ok, results...] or
    // [ok, message], and owns nothing that a longjmp could skip.
    let results = unsafe {
        lua.exec_raw::<MultiValue>((callee, args), |state| {
            let nargs = ffi::lua_gettop(state) - 1;
            ffi::lua_pushcfunction(state, msghandler);
            ffi::lua_insert(state, 1);
            let status = ffi::lua_pcall(state, nargs, ffi::LUA_MULTRET, 1);
            ffi::lua_remove(state, 1);
            ffi::lua_pushboolean(state, c_int::from(status == ffi::LUA_OK));
            ffi::lua_insert(state, 1);
        })
    };
    let mut results = results.map_err(mlua_failure)?;
    match results.pop_front() {
        Some(Value::Boolean(true)) => Ok(results),
        _ => Err(message_bytes(results.front().unwrap_or(&Value::Nil))),
    }
}

/// The text of an error object that `msghandler` didn't turn into a string.
fn message_bytes(message: &Value) -> Failure {
    match message {
        Value::String(s) => s.as_bytes().to_vec(),
        other => format!("(error object is a {} value)", other.type_name()).into_bytes(),
    }
}

/// lua.c's message handler: a string (or a number) gets a traceback; an object with a
/// `__tostring` that gives a string is reported as that string alone; anything else as
/// `(error object is a T value)` with a traceback.
///
/// # Safety
/// Called by `lua_pcall` as its message handler, with the error object at index 1. It may
/// raise a memory error, so it owns nothing.
unsafe extern "C-unwind" fn msghandler(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: every call below follows the C API's stack protocol on the handler's own
    // frame, which has LUA_MINSTACK free slots; the strings pushed stay on the stack while
    // their pointers are used.
    unsafe {
        let mut msg = ffi::lua_tostring(state, 1);
        if msg.is_null() {
            if ffi::luaL_callmeta(state, 1, c"__tostring".as_ptr()) != 0 && ffi::lua_type(state, -1) == ffi::LUA_TSTRING
            {
                return 1;
            }
            ffi::lua_pushstring(state, c"(error object is a ".as_ptr());
            ffi::lua_pushstring(state, ffi::luaL_typename(state, 1));
            ffi::lua_pushstring(state, c" value)".as_ptr());
            ffi::lua_concat(state, 3);
            msg = ffi::lua_tostring(state, -1);
        }
        // Level 1: start at the function that raised the error, not at this handler.
        ffi::luaL_traceback(state, state, msg, 1);
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn the_first_non_option_is_the_script() {
        let o = parse_args(&argv(&["luaffi", "-e", "x=1", "s.lua", "-e", "y"])).unwrap();
        assert_eq!((o.script, o.option_end, o.has_e), (Some(3), 3, true));
    }

    #[test]
    fn double_dash_makes_the_next_word_the_script() {
        let o = parse_args(&argv(&["luaffi", "--", "-x"])).unwrap();
        assert_eq!(o.script, Some(2));
        let o = parse_args(&argv(&["luaffi", "--"])).unwrap();
        assert_eq!(o.script, None);
    }

    #[test]
    fn a_lone_dash_is_the_script() {
        let o = parse_args(&argv(&["luaffi", "-v", "-", "a"])).unwrap();
        assert_eq!((o.script, o.version), (Some(2), true));
    }

    #[test]
    fn bad_options_name_their_index() {
        for (words, bad) in [
            (&["luaffi", "-x"][..], 1),
            (&["luaffi", "-e"], 1),
            (&["luaffi", "-v", "-l", "-e"], 2),
            (&["luaffi", "-vx"], 1),
            (&["luaffi", "---"], 1),
        ] {
            match parse_args(&argv(words)) {
                Err(ArgError::Bad(i)) => assert_eq!(i, bad, "{words:?}"),
                other => panic!("{words:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn concatenated_option_arguments() {
        let o = parse_args(&argv(&["luaffi", "-eprint(1)", "-lstring"])).unwrap();
        assert_eq!((o.script, o.option_end), (None, 3));
    }
}
