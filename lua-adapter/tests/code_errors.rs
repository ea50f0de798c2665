//! When the code of a stub or callback cannot be built, the Lua error says what failed (the OS
//! refusing executable memory, a backend bug), not that a value cannot be converted.

use abi_model::lua::steps::{Program, StepKind};
use abi_model::lua::{Backend, BackendError, Code, CodeEnv};
use abi_model::unwind::FrameUnwind;
use abi_model::{Arch, Target};
use lua_adapter::convert::CodeFailure;
use lua_adapter::native::call::{assemble, code_counts, refuse_code_memory, StubError};
use lua_adapter::native::closure::set_tier_up;
use lua_adapter::os::arena::{ArenaError, CodeArena};
use mlua::Lua;

fn lua_with_ffi() -> Lua {
    let lua = Lua::new();
    let ffi = lua_adapter::surface::module::open(&lua).unwrap();
    lua.globals().set("ffi", ffi).unwrap();
    lua
}

/// The error `code` raises (run protected), or "no error".
fn error_of(lua: &Lua, code: &str) -> String {
    let wrapped = format!("local ok, e = pcall(function() {code} end) return ok and 'no error' or tostring(e)");
    lua.load(&wrapped).eval().unwrap()
}

const ENOMEM: &str = "cannot allocate executable memory: mprotect: ENOMEM";

#[test]
fn a_call_whose_stub_gets_no_executable_memory_says_so() {
    let lua = lua_with_ffi();
    // Every stub built at first call (not after tier 0's first calls).
    set_tier_up(&lua, 0);
    lua.load("ffi.cdef 'int abs(int);'").exec().unwrap();
    assert!(refuse_code_memory(&lua, true));
    let e = error_of(&lua, "return ffi.C.abs(-3)");
    assert!(e.ends_with(&format!("cannot call this C function: {ENOMEM}")), "{e}");
    // Nothing was cached: once memory is given, the same call works.
    refuse_code_memory(&lua, false);
    assert_eq!(lua.load("return ffi.C.abs(-3)").eval::<i64>().unwrap(), 3);
}

#[test]
fn a_callback_whose_thunk_gets_no_executable_memory_says_so_not_cannot_convert() {
    let lua = lua_with_ffi();
    assert!(refuse_code_memory(&lua, true));
    let e = error_of(&lua, "return ffi.cast('int (*)(int)', function(x) return x end)");
    assert!(e.ends_with(&format!("cannot make a callback for 'int (*)(int)': {ENOMEM}")), "{e}");
    refuse_code_memory(&lua, false);
    let n: i64 = lua.load("return ffi.cast('int (*)(int)', function(x) return x + 1 end)(41)").eval().unwrap();
    assert_eq!(n, 42);
    // A signature that cannot be a callback keeps LuaJIT's conversion error (naming the
    // function pointer type with its parameters, which LuaJIT leaves out).
    let e = error_of(&lua, "return ffi.cast('int (*)(int, ...)', function(x) return x end)");
    assert!(e.ends_with("cannot convert 'function' to 'int (*)(int, ...)'"), "{e}");
}

#[test]
#[cfg(target_arch = "x86_64")]
fn a_function_whose_stub_gets_no_executable_memory_keeps_running_on_tier_0() {
    let lua = lua_with_ffi();
    set_tier_up(&lua, 3);
    lua.load("ffi.cdef 'int abs(int);'").exec().unwrap();
    assert!(refuse_code_memory(&lua, true));
    // The third call tries to build the stub and fails; every call still works.
    let sum: i64 = lua.load("local s = 0 for i = 1, 10 do s = s + ffi.C.abs(-i) end return s").eval().unwrap();
    assert_eq!(sum, 55);
    assert_eq!(code_counts(&lua), Some((0, 0)));
    refuse_code_memory(&lua, false);
    // It stays on tier 0: no stub is tried again.
    let sum: i64 = lua.load("local s = 0 for i = 1, 10 do s = s + ffi.C.abs(-i) end return s").eval().unwrap();
    assert_eq!(sum, 55);
    assert_eq!(code_counts(&lua), Some((0, 0)));
}

/// A backend that fails as `fail` says, assembling `len(base)` bytes otherwise.
struct StandIn {
    fail: Option<BackendError>,
    len: fn(u64) -> usize,
}

impl Backend for StandIn {
    fn target(&self) -> Target {
        Target::X64_SYSV
    }
    fn stub_code(&self, _: &Program, base: u64, _: &CodeEnv) -> Result<Code, BackendError> {
        let bytes = vec![0xC3; (self.len)(base)];
        self.fail.clone().map_or_else(|| Ok(Code { bytes, unwind: FrameUnwind::new(Arch::X86_64) }), Err)
    }
    fn thunk_code(&self, p: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
        self.stub_code(p, base, env)
    }
}

fn assemble_with(backend: &StandIn) -> Result<usize, StubError> {
    let program = Program::new(vec![], 0, 0, 0, None);
    let env = CodeEnv { helpers: vec![], arg_ctypes: vec![], ret_ctype: 0, callback_data: 0, call_slots: None };
    assemble(&CodeArena::new(), backend, |base| backend.stub_code(&program, base, &env)).map(|h| h.len())
}

#[test]
fn a_backend_that_cannot_lower_a_step_is_reported_as_a_bug_naming_the_step() {
    let not_lowered = BackendError::NotLowered { index: Some(2), step: StepKind::CallbackEnterInline };
    let e = assemble_with(&StandIn { fail: Some(not_lowered.clone()), len: |_| 1 }).unwrap_err();
    assert_eq!(e, StubError::Backend(not_lowered));
    assert_eq!(e.to_string(), "backend cannot lower step CallbackEnterInline (step 2) (bug)");
    let failure = e.code_failure().expect("not the signature's fault");
    assert_eq!(failure, CodeFailure::Backend(Some(StepKind::CallbackEnterInline)));
    assert_eq!(failure.to_string(), "backend cannot lower step CallbackEnterInline (bug)");
    // Code whose length depends on where it is assembled is refused, not committed.
    let e = assemble_with(&StandIn { fail: None, len: |base| if base == 0 { 1 } else { 2 } }).unwrap_err();
    assert_eq!(e, StubError::LengthDependsOnAddress { probe: 1, placed: 2 });
    assert_eq!(assemble_with(&StandIn { fail: None, len: |_| 3 }), Ok(3));
}

#[test]
fn os_errors_name_the_call_and_the_errno() {
    let e = StubError::Arena(ArenaError::Os { call: "mmap", errno: libc::EACCES });
    assert_eq!(e.to_string(), "cannot allocate executable memory: mmap: EACCES");
    // An errno without a name in the table keeps the OS's words.
    let odd = ArenaError::Os { call: "mprotect", errno: libc::E2BIG };
    assert_eq!(odd.to_string(), format!("mprotect: {}", std::io::Error::from_raw_os_error(libc::E2BIG)));
}
