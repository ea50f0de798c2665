//! Native proof on an x86-64 System V host: generated stubs and thunks run for real against
//! Rust `extern "C"` functions (which rustc compiles to the SysV convention), with the helpers
//! implemented here over a mock Lua stack.
//!
//! What is checked, per signature: every argument arrives with its exact value (the targets
//! record what they received), every result comes back exactly, errno_restore/after_call
//! run once each around the call, every helper and target call finds rsp 16-aligned (each is
//! reached through an alignment probe), and — for the signatures called through
//! `call_checked` — rbx, rbp and r12-r15 hold after the call what they held before.
#![cfg(all(target_arch = "x86_64", unix))]
#![deny(unsafe_op_in_unsafe_fn)]

mod common;

use abi_model::lua::helpers::Helper;
use abi_model::lua::steps::{stub_program, thunk_program};
use abi_model::lua::{Backend, CodeEnv};
use abi_model::{CallPlan, CallbackFrame};
use backend_x64_sysv::X64SysvBackend;
use dynasmrt::x64::X64Relocation;
use dynasmrt::{dynasm, DynasmApi, DynasmLabelApi, VecAssembler};
use std::cell::RefCell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

// ---- executable memory -----------------------------------------------------------------

/// Code mapped read+execute (written while read+write, never both writable and executable).
struct ExecCode {
    ptr: *mut c_void,
    len: usize,
}

impl ExecCode {
    /// Maps a page range at some address, then assembles `make(base)` there.
    fn new(len_hint: usize, make: impl FnOnce(u64) -> Vec<u8>) -> ExecCode {
        let len = len_hint.div_ceil(4096).max(1) * 4096;
        // SAFETY: anonymous private mapping, checked for failure.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap");
        let bytes = make(ptr as u64);
        assert!(bytes.len() <= len, "code larger than its mapping");
        // SAFETY: the mapping is `len` writable bytes; then it becomes read+execute only.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.cast::<u8>(), bytes.len());
            assert_eq!(libc::mprotect(ptr, len, libc::PROT_READ | libc::PROT_EXEC), 0, "mprotect");
        }
        ExecCode { ptr, len }
    }

    fn addr(&self) -> usize {
        self.ptr as usize
    }
}

impl Drop for ExecCode {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

// ---- alignment probes ------------------------------------------------------------------

/// Calls that found rsp misaligned (psABI §3.2.2: rsp + 8 is a multiple of 16 on entry).
static MISALIGNED: AtomicU32 = AtomicU32::new(0);

/// A trampoline that counts a misaligned entry, then jumps on to `real` with every argument
/// register (and al) untouched: it uses only r11 and the flags.
fn probe(real: usize) -> ExecCode {
    let counter = &MISALIGNED as *const AtomicU32 as i64;
    ExecCode::new(64, |base| {
        let mut ops = VecAssembler::<X64Relocation>::new(base as usize);
        dynasm!(ops
            ; .arch x64
            ; mov r11, rsp
            ; and r11d, 15
            ; cmp r11d, 8
            ; je >aligned
            ; mov r11, QWORD counter
            ; lock inc DWORD [r11]
            ; aligned:
            ; mov r11, QWORD real as i64
            ; jmp r11
        );
        ops.finalize().expect("probe assembles")
    })
}

// ---- callee-saved registers ------------------------------------------------------------

std::arch::global_asm!(
    ".globl luaffi_sysv_test_call_checked",
    "luaffi_sysv_test_call_checked:",
    // rdi = code, rsi/rdx = its first two arguments, rcx = out: [u64; 6].
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "push rcx",
    "mov rax, rdi",
    "mov rdi, rsi",
    "mov rsi, rdx",
    "mov rbx, 0x1111111111111111",
    "mov rbp, 0x2222222222222222",
    "mov r12, 0x3333333333333333",
    "mov r13, 0x4444444444444444",
    "mov r14, 0x5555555555555555",
    "mov r15, 0x6666666666666666",
    "call rax",
    "mov rcx, [rsp]",
    "mov [rcx], rbx",
    "mov [rcx + 8], rbp",
    "mov [rcx + 16], r12",
    "mov [rcx + 24], r13",
    "mov [rcx + 32], r14",
    "mov [rcx + 40], r15",
    "pop rcx",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
);

extern "C" {
    /// Calls `code(a0, a1)` with known values in rbx, rbp, r12-r15 and writes what those
    /// registers hold after the call to `out`; returns rax.
    fn luaffi_sysv_test_call_checked(code: usize, a0: usize, a1: usize, out: *mut [u64; 6]) -> u64;
}

const CANARIES: [u64; 6] = [
    0x1111111111111111,
    0x2222222222222222,
    0x3333333333333333,
    0x4444444444444444,
    0x5555555555555555,
    0x6666666666666666,
];

/// Calls `code(a0, a1)` and asserts the callee-saved registers survived; returns eax.
fn call_checked(code: usize, a0: usize, a1: usize) -> u32 {
    let mut out = [0u64; 6];
    // SAFETY: `code` is a generated stub/thunk taking at most two integer arguments.
    let rax = unsafe { luaffi_sysv_test_call_checked(code, a0, a1, &mut out) };
    assert_eq!(out, CANARIES, "rbx, rbp, r12-r15 after the call");
    rax as u32
}

// ---- register-recording and garbage-returning targets ------------------------------------

/// What `record_regs` saw: rdi, rsi, rdx, rcx, r8, r9, rax (al), xmm0..xmm7 low qwords.
#[repr(C)]
struct Regs([u64; 15]);
static mut RECORDED: Regs = Regs([0; 15]);
/// Serializes the tests that use `record_regs` (one global buffer).
static RECORD_LOCK: Mutex<()> = Mutex::new(());

std::arch::global_asm!(
    ".globl luaffi_sysv_test_record_regs",
    "luaffi_sysv_test_record_regs:",
    "lea r11, [rip + {rec}]",
    "mov [r11], rdi",
    "mov [r11 + 8], rsi",
    "mov [r11 + 16], rdx",
    "mov [r11 + 24], rcx",
    "mov [r11 + 32], r8",
    "mov [r11 + 40], r9",
    "mov [r11 + 48], rax",
    "movq [r11 + 56], xmm0",
    "movq [r11 + 64], xmm1",
    "movq [r11 + 72], xmm2",
    "movq [r11 + 80], xmm3",
    "movq [r11 + 88], xmm4",
    "movq [r11 + 96], xmm5",
    "movq [r11 + 104], xmm6",
    "movq [r11 + 112], xmm7",
    "mov eax, 0x5a",
    "ret",
    ".globl luaffi_sysv_test_ret_char",
    "luaffi_sysv_test_ret_char:",
    // al = 0x80 (-128); the rest of eax is garbage the caller must ignore.
    "mov eax, 0x12345680",
    "ret",
    ".globl luaffi_sysv_test_ret_ushort",
    "luaffi_sysv_test_ret_ushort:",
    "mov eax, 0xABCDFFFE",
    "ret",
    ".globl luaffi_sysv_test_ret_bool",
    "luaffi_sysv_test_ret_bool:",
    "mov eax, 0xFFFFFF01",
    "ret",
    rec = sym RECORDED,
);

extern "C" {
    fn luaffi_sysv_test_record_regs();
    fn luaffi_sysv_test_ret_char();
    fn luaffi_sysv_test_ret_ushort();
    fn luaffi_sysv_test_ret_bool();
}

fn recorded() -> [u64; 15] {
    // SAFETY: read under RECORD_LOCK after the recording call returned.
    unsafe { (*std::ptr::addr_of!(RECORDED)).0 }
}

// ---- the mock Lua state ------------------------------------------------------------------

/// A Lua value as the mock stack holds it.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Int(i64),
    Num(f64),
    Bool(bool),
    Ptr(usize),
    /// A struct/union/complex cdata: its bytes (boxed, so pointers into it stay valid).
    Bytes(Box<[u8]>),
    /// The Lua function a callback calls.
    Func,
}

/// The Rust closure standing in for the callback's Lua function.
type LuaFunction = Box<dyn FnMut(&[Value]) -> Value>;

#[derive(Default)]
struct Mock {
    stack: Vec<Value>,
    /// The `lua_State *` every helper must receive.
    l: usize,
    target: usize,
    callback_data: usize,
    callback: Option<LuaFunction>,
    /// What the Lua function of the last callback received.
    callback_args: Vec<Value>,
    /// Helper and target calls in order (names).
    events: Vec<String>,
    /// What the last Rust target received, as text.
    target_args: String,
    errors: Vec<String>,
}

thread_local! {
    static MOCK: RefCell<Mock> = RefCell::new(Mock::default());
}

fn with<R>(f: impl FnOnce(&mut Mock) -> R) -> R {
    MOCK.with(|m| f(&mut m.borrow_mut()))
}

/// Records an event and checks the `lua_State *` the helper got.
fn enter(name: &str, l: *mut c_void) {
    with(|m| {
        m.events.push(name.to_string());
        if l as usize != m.l {
            m.errors.push(format!("{name}: L = {l:p}, expected {:#x}", m.l));
        }
    });
}

fn value_at(m: &Mock, idx: i32) -> Option<Value> {
    let i = if idx > 0 { idx as usize - 1 } else { m.stack.len().checked_sub(idx.unsigned_abs() as usize)? };
    m.stack.get(i).cloned()
}

fn arg(name: &str, l: *mut c_void, idx: i32) -> Value {
    enter(name, l);
    with(|m| {
        value_at(m, idx).unwrap_or_else(|| {
            m.errors.push(format!("{name}: no value at {idx}"));
            Value::Int(0)
        })
    })
}

fn as_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Num(n) => *n as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Ptr(p) => *p as i64,
        other => panic!("not a number: {other:?}"),
    }
}

fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Num(n) => *n,
        Value::Int(i) => *i as f64,
        other => panic!("not a number: {other:?}"),
    }
}

fn push(v: Value) {
    with(|m| m.stack.push(v));
}

extern "C" fn h_gettop(l: *mut c_void) -> i32 {
    enter("gettop", l);
    with(|m| m.stack.len() as i32)
}
extern "C" fn h_argcount_error(l: *mut c_void, expected: i32, got: i32) {
    enter("argcount_error", l);
    // Must never return; a test never gets here with the counts right.
    eprintln!("argcount error: expected {expected}, got {got}");
    std::process::abort();
}
extern "C" fn h_to_i32(l: *mut c_void, idx: i32) -> i32 {
    as_i64(&arg("to_i32", l, idx)) as i32
}
extern "C" fn h_to_u32(l: *mut c_void, idx: i32) -> u32 {
    as_i64(&arg("to_u32", l, idx)) as u32
}
// Narrow conversions return the value already widened back to 32 bits, as the helper table
// says, so a stub stores a properly extended slot.
extern "C" fn h_to_i8(l: *mut c_void, idx: i32) -> i32 {
    i32::from(as_i64(&arg("to_i8", l, idx)) as i8)
}
extern "C" fn h_to_u8(l: *mut c_void, idx: i32) -> u32 {
    u32::from(as_i64(&arg("to_u8", l, idx)) as u8)
}
extern "C" fn h_to_i16(l: *mut c_void, idx: i32) -> i32 {
    i32::from(as_i64(&arg("to_i16", l, idx)) as i16)
}
extern "C" fn h_to_u16(l: *mut c_void, idx: i32) -> u32 {
    u32::from(as_i64(&arg("to_u16", l, idx)) as u16)
}
extern "C" fn h_to_i64(l: *mut c_void, idx: i32) -> i64 {
    as_i64(&arg("to_i64", l, idx))
}
extern "C" fn h_to_u64(l: *mut c_void, idx: i32) -> u64 {
    as_i64(&arg("to_u64", l, idx)) as u64
}
extern "C" fn h_to_f32(l: *mut c_void, idx: i32) -> f32 {
    as_f64(&arg("to_f32", l, idx)) as f32
}
extern "C" fn h_to_f64(l: *mut c_void, idx: i32) -> f64 {
    as_f64(&arg("to_f64", l, idx))
}
extern "C" fn h_to_bool(l: *mut c_void, idx: i32) -> i32 {
    match arg("to_bool", l, idx) {
        Value::Bool(b) => i32::from(b),
        other => i32::from(as_i64(&other) != 0),
    }
}
extern "C" fn h_to_ptr(l: *mut c_void, idx: i32, _ctype: *const c_void) -> *mut c_void {
    match arg("to_ptr", l, idx) {
        Value::Ptr(p) => p as *mut c_void,
        other => panic!("not a pointer: {other:?}"),
    }
}
/// The mock's ctype constants are the type's size.
extern "C" fn h_to_record(l: *mut c_void, idx: i32, ctype: *const c_void, dst: *mut c_void) {
    let v = arg("to_record", l, idx);
    let size = ctype as usize;
    match v {
        // SAFETY: dst is a buffer of the type's size, as the program promises.
        Value::Bytes(b) if b.len() == size => unsafe {
            std::ptr::copy_nonoverlapping(b.as_ptr(), dst.cast::<u8>(), size)
        },
        other => with(|m| m.errors.push(format!("to_record: {other:?} is not {size} bytes"))),
    }
}
extern "C" fn h_push_i32(l: *mut c_void, v: i32) {
    enter("push_i32", l);
    push(Value::Int(v.into()));
}
extern "C" fn h_push_u32(l: *mut c_void, v: u32) {
    enter("push_u32", l);
    push(Value::Int(v.into()));
}
extern "C" fn h_push_i64(l: *mut c_void, v: i64) {
    enter("push_i64", l);
    push(Value::Int(v));
}
extern "C" fn h_push_u64(l: *mut c_void, v: u64) {
    enter("push_u64", l);
    push(Value::Int(v as i64));
}
extern "C" fn h_push_f32(l: *mut c_void, v: f32) {
    enter("push_f32", l);
    push(Value::Num(v.into()));
}
extern "C" fn h_push_f64(l: *mut c_void, v: f64) {
    enter("push_f64", l);
    push(Value::Num(v));
}
extern "C" fn h_push_bool(l: *mut c_void, v: i32) {
    enter("push_bool", l);
    push(Value::Bool(v != 0));
}
extern "C" fn h_push_ptr(l: *mut c_void, p: *mut c_void, _ctype: *const c_void) {
    enter("push_ptr", l);
    push(Value::Ptr(p as usize));
}
extern "C" fn h_push_record(l: *mut c_void, ctype: *const c_void, src: *const c_void) {
    enter("push_record", l);
    // SAFETY: src points at a value of the type's size.
    let bytes = unsafe { std::slice::from_raw_parts(src.cast::<u8>(), ctype as usize) };
    push(Value::Bytes(bytes.into()));
}
extern "C" fn h_new_result(l: *mut c_void, ctype: *const c_void) -> *mut c_void {
    enter("new_result", l);
    let mut b: Box<[u8]> = vec![0xCC; ctype as usize].into();
    let p = b.as_mut_ptr().cast::<c_void>();
    push(Value::Bytes(b));
    p
}
extern "C" fn h_func_addr(l: *mut c_void) -> *mut c_void {
    enter("func_addr", l);
    with(|m| m.target as *mut c_void)
}
/// The calling thread `h_errno_restore` says it replaced, which must come back to `h_after_call`.
const PREV_L: usize = 0x7EAD_0001;
extern "C" fn h_errno_restore(l: *mut c_void, _ret_ctype: *const c_void) -> *mut c_void {
    enter("errno_restore", l);
    PREV_L as *mut c_void
}
extern "C" fn h_after_call(l: *mut c_void, _ret_ctype: *const c_void, prev: *mut c_void) {
    enter("after_call", l);
    if prev as usize != PREV_L {
        with(|m| m.errors.push(format!("after_call: calling thread {prev:p} put back, not {PREV_L:#x}")));
    }
}
extern "C" fn h_callback_enter(cb: *mut c_void) -> *mut c_void {
    with(|m| {
        m.events.push("callback_enter".into());
        if cb as usize != m.callback_data {
            m.errors.push(format!("callback_enter: data {cb:p}"));
        }
        m.stack.push(Value::Func);
        m.l as *mut c_void
    })
}
extern "C" fn h_callback_call(l: *mut c_void, nargs: i32, cb: *mut c_void) {
    enter("callback_call", l);
    with(|m| {
        if cb as usize != m.callback_data {
            m.errors.push(format!("callback_call: data {cb:p}"));
        }
    });
    let (args, mut f) = with(|m| {
        let args = m.stack.split_off(m.stack.len() - nargs as usize);
        assert_eq!(m.stack.pop(), Some(Value::Func), "the function sits below its arguments");
        (args, m.callback.take().expect("a callback is set"))
    });
    let result = f(&args);
    with(|m| {
        m.callback_args = args;
        m.callback = Some(f);
        m.stack.push(result);
    });
}
extern "C" fn h_callback_leave(l: *mut c_void) {
    enter("callback_leave", l);
    with(|m| m.stack.clear());
}

/// Only inline thunks (built with a Lua stack layout, which these tests don't use) call these.
extern "C" fn h_callback_pcall(
    l: *mut c_void,
    _nargs: i32,
    _nresults: i32,
    _errfunc: i32,
    _ctx: isize,
    _k: *mut c_void,
) -> i32 {
    enter("callback_pcall", l);
    with(|m| m.errors.push("callback_pcall: called by a thunk without inline steps".into()));
    0
}
extern "C" fn h_callback_result(l: *mut c_void, _status: i32, _cb: *mut c_void) {
    enter("callback_result", l);
    with(|m| m.errors.push("callback_result: called by a thunk without inline steps".into()));
}

fn helper_fn(h: Helper) -> usize {
    match h {
        Helper::ArgCount => h_gettop as *const () as usize,
        Helper::ArgCountError => h_argcount_error as *const () as usize,
        Helper::ToI32 => h_to_i32 as *const () as usize,
        Helper::ToU32 => h_to_u32 as *const () as usize,
        Helper::ToI8 => h_to_i8 as *const () as usize,
        Helper::ToU8 => h_to_u8 as *const () as usize,
        Helper::ToI16 => h_to_i16 as *const () as usize,
        Helper::ToU16 => h_to_u16 as *const () as usize,
        Helper::ToI64 => h_to_i64 as *const () as usize,
        Helper::ToU64 => h_to_u64 as *const () as usize,
        Helper::ToF32 => h_to_f32 as *const () as usize,
        Helper::ToF64 => h_to_f64 as *const () as usize,
        Helper::ToBool => h_to_bool as *const () as usize,
        Helper::ToPtr => h_to_ptr as *const () as usize,
        Helper::ToRecord => h_to_record as *const () as usize,
        Helper::PushI32 => h_push_i32 as *const () as usize,
        Helper::PushU32 => h_push_u32 as *const () as usize,
        Helper::PushI64 => h_push_i64 as *const () as usize,
        Helper::PushU64 => h_push_u64 as *const () as usize,
        Helper::PushF32 => h_push_f32 as *const () as usize,
        Helper::PushF64 => h_push_f64 as *const () as usize,
        Helper::PushBool => h_push_bool as *const () as usize,
        Helper::PushPtr => h_push_ptr as *const () as usize,
        Helper::PushRecord => h_push_record as *const () as usize,
        Helper::NewResult => h_new_result as *const () as usize,
        Helper::FuncAddr => h_func_addr as *const () as usize,
        Helper::ErrnoRestore => h_errno_restore as *const () as usize,
        Helper::AfterCall => h_after_call as *const () as usize,
        Helper::CallbackEnter => h_callback_enter as *const () as usize,
        Helper::CallbackCall => h_callback_call as *const () as usize,
        Helper::CallbackLeave => h_callback_leave as *const () as usize,
        Helper::ErrnoLocation => h_errno_location as *const () as usize,
        Helper::CallbackPcall => h_callback_pcall as *const () as usize,
        Helper::CallbackResult => h_callback_result as *const () as usize,
    }
}

extern "C" fn h_errno_location() -> *mut i32 {
    with(|m| m.events.push("errno_location".into()));
    // SAFETY: the calling thread's errno.
    unsafe { libc::__errno_location() }
}

/// Every helper reached through its own alignment probe, and the code environment naming them.
struct Env {
    _probes: Vec<ExecCode>,
    env: CodeEnv,
}

const CALLBACK_DATA: usize = 0xCB_DA7A;

fn env_for(plan: &CallPlan) -> Env {
    let probes: Vec<ExecCode> = Helper::ALL.iter().map(|h| probe(helper_fn(*h))).collect();
    let env = CodeEnv {
        helpers: probes.iter().map(|p| p.addr() as u64).collect(),
        arg_ctypes: plan.args.iter().map(|a| u64::from(a.value.size(8))).collect(),
        ret_ctype: u64::from(plan.ret.value.size(8)),
        callback_data: CALLBACK_DATA as u64,
        call_slots: None,
    };
    Env { _probes: probes, env }
}

fn assert_clean() {
    let errors = with(|m| std::mem::take(&mut m.errors));
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(MISALIGNED.load(Ordering::SeqCst), 0, "a call found rsp misaligned");
}

// ---- running stubs and thunks ------------------------------------------------------------

/// A fake `lua_State *`: any pointer will do, the helpers only compare it.
const FAKE_L: usize = 0x1234_5678_9abc;

/// Runs the stub for `case` against `target` with the Lua arguments `args`; returns the
/// values the stub returned to Lua. With `checked`, also checks the callee-saved registers.
fn run_stub(case: &str, target: usize, args: Vec<Value>, checked: bool) -> Vec<Value> {
    let case = common::case(case);
    let env = env_for(&case.plan);
    let program = stub_program(&case.plan, 1);
    let code = ExecCode::new(8192, |base| X64SysvBackend.stub(&program, base, &env.env).expect("stub lowers"));
    let target_probe = probe(target);
    let nargs = args.len();
    with(|m| {
        *m = Mock { stack: args, l: FAKE_L, target: target_probe.addr(), ..Mock::default() };
    });
    let results = if checked {
        call_checked(code.addr(), FAKE_L, 0) as i32
    } else {
        // SAFETY: the stub is a lua_CFunction; the mock helpers accept any L.
        let stub: extern "C" fn(usize) -> i32 = unsafe { std::mem::transmute(code.addr()) };
        stub(FAKE_L)
    };
    let (stack, events) = with(|m| (std::mem::take(&mut m.stack), std::mem::take(&mut m.events)));
    assert_clean();
    // errno is restored right before the call and saved right after it, once each.
    let errno_at = events.iter().position(|e| e == "errno_restore").expect("errno_restore ran");
    let after_at = events.iter().position(|e| e == "after_call").expect("after_call ran");
    assert_eq!(events.iter().filter(|e| *e == "errno_restore" || *e == "after_call").count(), 2, "{events:?}");
    // Nothing but the target (Rust targets log themselves) runs between the two.
    assert!(events[errno_at + 1..after_at].iter().all(|e| e == "target"), "{events:?}");
    assert!(after_at <= errno_at + 2, "{events:?}");
    assert_eq!(events[0], "gettop");
    assert_eq!(results as usize, stack.len() - nargs, "results returned = values pushed");
    stack[nargs..].to_vec()
}

/// A thunk for `case` whose Lua function is `f`. Keep the returned guard alive while calling.
struct Thunk {
    code: ExecCode,
    _env: Env,
}

fn make_thunk(case: &str, f: impl FnMut(&[Value]) -> Value + 'static) -> Thunk {
    let case = common::case(case);
    let env = env_for(&case.plan);
    let program = thunk_program(&CallbackFrame::from_plan(&case.plan));
    let code = ExecCode::new(8192, |base| X64SysvBackend.thunk(&program, base, &env.env).expect("thunk lowers"));
    with(|m| {
        *m = Mock { l: FAKE_L, callback_data: CALLBACK_DATA, callback: Some(Box::new(f)), ..Mock::default() };
    });
    Thunk { code, _env: env }
}

impl Thunk {
    /// The thunk as a function pointer of type `F`.
    ///
    /// # Safety
    /// `F` must be the `extern "C"` function type of the thunk's signature.
    unsafe fn as_fn<F: Copy>(&self) -> F {
        assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>());
        let addr = self.code.addr();
        // SAFETY: the caller promises F is a function pointer type of the right signature.
        unsafe { std::mem::transmute_copy(&addr) }
    }

    /// What the Lua function received; checks the helpers saw no error and the stack is empty.
    fn finish(&self) -> Vec<Value> {
        let (args, stack, events) = with(|m| {
            (std::mem::take(&mut m.callback_args), std::mem::take(&mut m.stack), std::mem::take(&mut m.events))
        });
        assert_clean();
        assert!(stack.is_empty(), "callback_leave popped everything: {stack:?}");
        assert_eq!(events.first().map(String::as_str), Some("callback_enter"));
        assert_eq!(events.last().map(String::as_str), Some("callback_leave"));
        args
    }
}

// ---- C-compatible types and targets ---------------------------------------------------------

fn record(s: String) {
    with(|m| {
        m.events.push("target".into());
        m.target_args = s;
    });
}

fn target_args() -> String {
    with(|m| std::mem::take(&mut m.target_args))
}

fn bytes_of<T: Copy>(v: &T) -> Box<[u8]> {
    // SAFETY: only used with padding-free repr(C) types.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }.into()
}

fn from_bytes<T: Copy>(v: &Value) -> T {
    match v {
        Value::Bytes(b) => {
            assert_eq!(b.len(), std::mem::size_of::<T>());
            // SAFETY: the sizes match and T is plain data.
            unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<T>()) }
        }
        other => panic!("not a record: {other:?}"),
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct Fi {
    f: f32,
    i: i32,
}
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct Big24 {
    a: i64,
    b: f64,
    c: i64,
}
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct Ld {
    l: i64,
    d: f64,
}
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct Dl {
    d: f64,
    l: i64,
}
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct Ll {
    a: i64,
    b: i64,
}
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct Fff {
    x: f32,
    y: f32,
    z: f32,
}
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct Rgb {
    r: u8,
    g: u8,
    b: u8,
}
/// `struct s7 { int a; short b; char c; }`: 7 bytes of data, 1 of padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct S7 {
    a: i32,
    b: i16,
    c: i8,
}
fn s7_bytes(v: S7) -> Box<[u8]> {
    let mut b = vec![0u8; 8];
    b[0..4].copy_from_slice(&v.a.to_le_bytes());
    b[4..6].copy_from_slice(&v.b.to_le_bytes());
    b[6] = v.c as u8;
    b.into()
}
/// `float complex`: classified exactly as this struct (one SSE eightbyte).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cf32 {
    re: f32,
    im: f32,
}
/// `double complex`: classified exactly as this struct (two SSE eightbytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cf64 {
    re: f64,
    im: f64,
}

extern "C" fn t_add(a: i32, b: i32) -> i32 {
    record(format!("{a} {b}"));
    a.wrapping_add(b)
}
extern "C" fn t_mix(a: f64, b: i32, c: f64, d: i64) -> f64 {
    record(format!("{a} {b} {c} {d}"));
    a * 2.0 + f64::from(b) + c / 4.0 + d as f64
}
extern "C" fn t_nothing() {
    record("nothing".into());
}
extern "C" fn t_half(x: f32) -> f32 {
    record(format!("{x}"));
    x / 2.0
}
extern "C" fn t_next(p: *mut u8, n: usize) -> *mut u8 {
    record(format!("{p:p} {n}"));
    p.wrapping_add(n)
}
extern "C" fn t_rot(x: u64, n: u8) -> u64 {
    record(format!("{x:#x} {n}"));
    x.rotate_left(u32::from(n))
}
extern "C" fn t_swap_fi(v: Fi) -> Fi {
    record(format!("{v:?}"));
    Fi { f: v.i as f32, i: v.f as i32 }
}
extern "C" fn t_twice(v: Big24, k: i32) -> Big24 {
    record(format!("{v:?} {k}"));
    Big24 { a: v.a * i64::from(k), b: v.b * f64::from(k), c: v.c * i64::from(k) }
}
extern "C" fn t_make_big(a: i64) -> Big24 {
    record(format!("{a}"));
    Big24 { a, b: a as f64 / 8.0, c: !a }
}
extern "C" fn t_make_ld(l: i64, d: f64) -> Ld {
    record(format!("{l} {d}"));
    Ld { l, d }
}
extern "C" fn t_flip_dl(v: Ld) -> Dl {
    record(format!("{v:?}"));
    Dl { d: v.d, l: v.l }
}
extern "C" fn t_add_ll(a: Ll, b: Ll) -> Ll {
    record(format!("{a:?} {b:?}"));
    Ll { a: a.a + b.a, b: a.b - b.b }
}
extern "C" fn t_scale(v: Fff, k: f32) -> Fff {
    record(format!("{v:?} {k}"));
    Fff { x: v.x * k, y: v.y * k, z: v.z * k }
}
extern "C" fn t_gray(c: Rgb) -> Rgb {
    record(format!("{c:?}"));
    let g = ((u16::from(c.r) + u16::from(c.g) + u16::from(c.b)) / 3) as u8;
    Rgb { r: g, g: g.wrapping_add(1), b: g.wrapping_add(2) }
}
extern "C" fn t_bump(v: S7) -> S7 {
    record(format!("{v:?}"));
    S7 { a: v.a + 1, b: v.b + 2, c: v.c.wrapping_add(3) }
}
extern "C" fn t_cmul(a: Cf32, b: Cf32) -> Cf32 {
    record(format!("{a:?} {b:?}"));
    Cf32 { re: a.re * b.re - a.im * b.im, im: a.re * b.im + a.im * b.re }
}
extern "C" fn t_conj(a: Cf64) -> Cf64 {
    record(format!("{a:?}"));
    Cf64 { re: a.re, im: -a.im }
}
#[allow(clippy::too_many_arguments)]
extern "C" fn t_mixed10(a: i32, b: f64, c: i64, d: f32, e: i8, f: f64, g: u16, h: i32, p: *const u8, j: i32) -> f64 {
    record(format!("{a} {b} {c} {d} {e} {f} {g} {h} {p:p} {j}"));
    f64::from(a)
        + b * 2.0
        + c as f64 * 3.0
        + f64::from(d) * 4.0
        + f64::from(e) * 5.0
        + f * 6.0
        + f64::from(g) * 7.0
        + f64::from(h) * 8.0
        + f64::from(j) * 10.0
}
#[allow(clippy::too_many_arguments)]
extern "C" fn t_many16(
    d0: f64,
    d1: f64,
    d2: f64,
    d3: f64,
    d4: f64,
    d5: f64,
    d6: f64,
    d7: f64,
    d8: f64,
    i0: i32,
    i1: i32,
    i2: i32,
    i3: i32,
    i4: i32,
    i5: i32,
    i6: i32,
) -> f64 {
    record(format!("{d0} {d1} {d2} {d3} {d4} {d5} {d6} {d7} {d8} {i0} {i1} {i2} {i3} {i4} {i5} {i6}"));
    d0 + d8 * 3.0 + f64::from(i6) * 5.0 - f64::from(i0)
}
extern "C" fn t_late(a: i64, b: i64, c: i64, d: i64, e: i64, s: Fi, t: Fi) -> i64 {
    record(format!("{a} {b} {c} {d} {e} {s:?} {t:?}"));
    a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * i64::from(s.i) + 7 * (s.f as i64) + 8 * i64::from(t.i) + 9 * (t.f as i64)
}

// ---- stubs --------------------------------------------------------------------------------

#[test]
fn stub_add_round_trips_and_keeps_callee_saved_registers() {
    let out = run_stub("add", t_add as *const () as usize, vec![Value::Int(40), Value::Int(2)], true);
    assert_eq!(target_args(), "40 2");
    assert_eq!(out, vec![Value::Int(42)]);
    let out = run_stub("add", t_add as *const () as usize, vec![Value::Int(-7), Value::Num(3.0)], false);
    assert_eq!(target_args(), "-7 3");
    assert_eq!(out, vec![Value::Int(-4)]);
}

#[test]
fn stub_mix_passes_doubles_and_int64() {
    let out = run_stub(
        "mix",
        t_mix as *const () as usize,
        vec![Value::Num(1.5), Value::Int(7), Value::Num(-2.25), Value::Int(1 << 40)],
        true,
    );
    assert_eq!(target_args(), format!("1.5 7 -2.25 {}", 1i64 << 40));
    assert_eq!(out, vec![Value::Num(t_mix(1.5, 7, -2.25, 1 << 40))]);
}

#[test]
fn stub_void_returns_nothing() {
    let out = run_stub("void_void", t_nothing as *const () as usize, vec![], true);
    assert_eq!(target_args(), "nothing");
    assert!(out.is_empty());
}

#[test]
fn stub_float_pointer_and_u64_scalars() {
    let out = run_stub("float_float", t_half as *const () as usize, vec![Value::Num(5.5)], false);
    assert_eq!(target_args(), "5.5");
    assert_eq!(out, vec![Value::Num(2.75)]);
    let buf = [0u8; 64];
    let p = buf.as_ptr() as usize;
    let out = run_stub("ptr_ptr", t_next as *const () as usize, vec![Value::Ptr(p), Value::Int(24)], false);
    assert_eq!(target_args(), format!("{:p} 24", p as *const u8));
    assert_eq!(out, vec![Value::Ptr(p + 24)]);
    let x = 0x8000_0000_0000_0001u64;
    let out = run_stub("u64_u64", t_rot as *const () as usize, vec![Value::Int(x as i64), Value::Int(260)], false);
    // 260 converted to unsigned char is 4.
    assert_eq!(target_args(), format!("{x:#x} 4"));
    assert_eq!(out, vec![Value::Int(x.rotate_left(4) as i64)]);
}

#[test]
fn stub_widens_bool_char_and_unsigned_short_arguments_to_32_bits() {
    let _lock = RECORD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // 0x1FF is (char)-1; 0x1FFFE is (unsigned short)65534: truncated, then widened.
    let out = run_stub(
        "widen",
        luaffi_sysv_test_record_regs as *const () as usize,
        vec![Value::Bool(true), Value::Int(0x1FF), Value::Int(0x1FFFE)],
        false,
    );
    let regs = recorded();
    assert_eq!(regs[0] as u32, 1, "bool zero-extended in edi");
    assert_eq!(regs[1] as u32, 0xFFFF_FFFF, "char sign-extended in esi");
    assert_eq!(regs[2] as u32, 0xFFFE, "unsigned short zero-extended in edx");
    // The target returned eax = 0x5a: char 'Z'.
    assert_eq!(out, vec![Value::Int(0x5a)]);
}

#[test]
fn stub_narrows_small_integer_returns_whatever_the_upper_bits_hold() {
    let out = run_stub(
        "widen",
        luaffi_sysv_test_ret_char as *const () as usize,
        vec![Value::Bool(false), Value::Int(0), Value::Int(0)],
        false,
    );
    assert_eq!(out, vec![Value::Int(-128)]);
    let out = run_stub("ret_bool", luaffi_sysv_test_ret_bool as *const () as usize, vec![Value::Int(3)], false);
    assert_eq!(out, vec![Value::Bool(true)]);
    let out = run_stub("ret_ushort", luaffi_sysv_test_ret_ushort as *const () as usize, vec![Value::Int(0)], false);
    assert_eq!(out, vec![Value::Int(0xFFFE)]);
}

#[test]
fn stub_struct_of_float_and_int_in_one_gpr() {
    let v = Fi { f: 2.5, i: -9 };
    let out = run_stub("struct_fi", t_swap_fi as *const () as usize, vec![Value::Bytes(bytes_of(&v))], true);
    assert_eq!(target_args(), format!("{v:?}"));
    assert_eq!(from_bytes::<Fi>(&out[0]), t_swap_fi(v));
}

#[test]
fn stub_24_byte_struct_goes_through_memory_both_ways() {
    let v = Big24 { a: 3, b: -1.5, c: 1 << 50 };
    let out =
        run_stub("struct_big24", t_twice as *const () as usize, vec![Value::Bytes(bytes_of(&v)), Value::Int(5)], false);
    assert_eq!(target_args(), format!("{v:?} 5"));
    assert_eq!(from_bytes::<Big24>(&out[0]), t_twice(v, 5));
    let out = run_stub("sret_only", t_make_big as *const () as usize, vec![Value::Int(-77)], true);
    assert_eq!(from_bytes::<Big24>(&out[0]), t_make_big(-77));
}

#[test]
fn stub_two_eightbyte_structs_in_every_register_pairing() {
    let out = run_stub("struct_ld", t_make_ld as *const () as usize, vec![Value::Int(-5), Value::Num(0.125)], false);
    assert_eq!(from_bytes::<Ld>(&out[0]), Ld { l: -5, d: 0.125 });
    let v = Ld { l: 1 << 60, d: -3.75 };
    let out = run_stub("struct_dl", t_flip_dl as *const () as usize, vec![Value::Bytes(bytes_of(&v))], false);
    assert_eq!(target_args(), format!("{v:?}"));
    assert_eq!(from_bytes::<Dl>(&out[0]), Dl { d: -3.75, l: 1 << 60 });
    let (a, b) = (Ll { a: 10, b: 20 }, Ll { a: 1, b: 2 });
    let out = run_stub(
        "struct_ll",
        t_add_ll as *const () as usize,
        vec![Value::Bytes(bytes_of(&a)), Value::Bytes(bytes_of(&b))],
        false,
    );
    assert_eq!(target_args(), format!("{a:?} {b:?}"));
    assert_eq!(from_bytes::<Ll>(&out[0]), t_add_ll(a, b));
    let v = Fff { x: 1.0, y: -2.0, z: 0.5 };
    let out =
        run_stub("struct_fff", t_scale as *const () as usize, vec![Value::Bytes(bytes_of(&v)), Value::Num(4.0)], false);
    assert_eq!(target_args(), format!("{v:?} 4"));
    assert_eq!(from_bytes::<Fff>(&out[0]), t_scale(v, 4.0));
}

#[test]
fn stub_odd_sized_structs_are_read_and_written_exactly() {
    let c = Rgb { r: 30, g: 60, b: 90 };
    let out = run_stub("struct_rgb", t_gray as *const () as usize, vec![Value::Bytes(bytes_of(&c))], false);
    assert_eq!(target_args(), format!("{c:?}"));
    // The result cdata is exactly 3 bytes: a wider store would have failed the size check
    // only in a sanitizer, so compare its value.
    assert_eq!(from_bytes::<Rgb>(&out[0]), t_gray(c));
    let v = S7 { a: 100_000, b: -300, c: 120 };
    let out = run_stub("struct_s7", t_bump as *const () as usize, vec![Value::Bytes(s7_bytes(v))], false);
    assert_eq!(target_args(), format!("{v:?}"));
    assert_eq!(from_bytes::<S7>(&out[0]), t_bump(v));
}

#[test]
fn stub_complex_returns() {
    let (a, b) = (Cf32 { re: 1.5, im: -2.0 }, Cf32 { re: 0.5, im: 4.0 });
    let out = run_stub(
        "complex_f32",
        t_cmul as *const () as usize,
        vec![Value::Bytes(bytes_of(&a)), Value::Bytes(bytes_of(&b))],
        false,
    );
    assert_eq!(target_args(), format!("{a:?} {b:?}"));
    assert_eq!(from_bytes::<Cf32>(&out[0]), t_cmul(a, b));
    let z = Cf64 { re: 3.25, im: 7.5 };
    let out = run_stub("complex_f64", t_conj as *const () as usize, vec![Value::Bytes(bytes_of(&z))], true);
    assert_eq!(target_args(), format!("{z:?}"));
    assert_eq!(from_bytes::<Cf64>(&out[0]), Cf64 { re: 3.25, im: -7.5 });
}

#[test]
fn stub_ten_mixed_arguments_spill_to_the_stack() {
    let s = b"x\0";
    let p = s.as_ptr() as usize;
    let args = vec![
        Value::Int(1),
        Value::Num(2.5),
        Value::Int(-3_000_000_000),
        Value::Num(4.25),
        Value::Int(-5),
        Value::Num(6.125),
        Value::Int(65535),
        Value::Int(-8),
        Value::Ptr(p),
        Value::Int(10),
    ];
    let out = run_stub("mixed10", t_mixed10 as *const () as usize, args, false);
    assert_eq!(target_args(), format!("1 2.5 -3000000000 4.25 -5 6.125 65535 -8 {:p} 10", p as *const u8));
    assert_eq!(out, vec![Value::Num(t_mixed10(1, 2.5, -3_000_000_000, 4.25, -5, 6.125, 65535, -8, s.as_ptr(), 10))]);
}

#[test]
fn stub_sixteen_arguments_exhaust_both_register_files() {
    let mut args: Vec<Value> = (0..9).map(|k| Value::Num(f64::from(k) + 0.5)).collect();
    args.extend((0..7).map(|k| Value::Int(100 + k)));
    let out = run_stub("many16", t_many16 as *const () as usize, args, false);
    assert_eq!(target_args(), "0.5 1.5 2.5 3.5 4.5 5.5 6.5 7.5 8.5 100 101 102 103 104 105 106");
    assert_eq!(
        out,
        vec![Value::Num(t_many16(0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 100, 101, 102, 103, 104, 105, 106))]
    );
}

#[test]
fn stub_struct_that_no_longer_fits_in_registers_goes_on_the_stack() {
    let (s, t) = (Fi { f: 3.0, i: 4 }, Fi { f: -1.0, i: 9 });
    let args = vec![
        Value::Int(1),
        Value::Int(2),
        Value::Int(3),
        Value::Int(4),
        Value::Int(5),
        Value::Bytes(bytes_of(&s)),
        Value::Bytes(bytes_of(&t)),
    ];
    let out = run_stub("stack_struct", t_late as *const () as usize, args, false);
    assert_eq!(target_args(), format!("1 2 3 4 5 {s:?} {t:?}"));
    assert_eq!(out, vec![Value::Int(t_late(1, 2, 3, 4, 5, s, t))]);
}

#[test]
fn stub_variadic_call_sets_al_and_real_snprintf_reads_the_doubles() {
    let mut buf = [0u8; 64];
    let fmt = b"%g %d %g\0";
    let args = |buf: &mut [u8; 64]| {
        vec![
            Value::Ptr(buf.as_mut_ptr() as usize),
            Value::Int(64),
            Value::Ptr(fmt.as_ptr() as usize),
            Value::Num(1.5),
            Value::Int(7),
            Value::Num(-2.25),
        ]
    };
    let out = run_stub("snprintf", libc::snprintf as *const () as usize, args(&mut buf), true);
    let text = std::ffi::CStr::from_bytes_until_nul(&buf).unwrap().to_str().unwrap().to_string();
    assert_eq!(text, "1.5 7 -2.25");
    assert_eq!(out, vec![Value::Int(text.len() as i64)]);

    let _lock = RECORD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    run_stub("snprintf", luaffi_sysv_test_record_regs as *const () as usize, args(&mut buf), false);
    let regs = recorded();
    let plan = common::case("snprintf").plan;
    assert_eq!(Some(regs[6] as u8), plan.al, "al");
    assert_eq!(f64::from_bits(regs[7]), 1.5, "xmm0");
    assert_eq!(f64::from_bits(regs[8]), -2.25, "xmm1");
    assert_eq!(regs[3] as u32, 7, "ecx");
}

// ---- thunks -------------------------------------------------------------------------------

#[test]
fn thunk_add_round_trips_and_keeps_callee_saved_registers() {
    let thunk = make_thunk("add", |args| Value::Int(as_i64(&args[0]) * 10 + as_i64(&args[1])));
    assert_eq!(call_checked(thunk.code.addr(), 4, (-2i32) as u32 as usize) as i32, 38);
    assert_eq!(thunk.finish(), vec![Value::Int(4), Value::Int(-2)]);
    // SAFETY: the thunk's signature is int(int, int).
    let f: extern "C" fn(i32, i32) -> i32 = unsafe { thunk.as_fn() };
    assert_eq!(f(7, 5), 75);
    assert_eq!(thunk.finish(), vec![Value::Int(7), Value::Int(5)]);
}

#[test]
fn thunk_mix_doubles_and_int64() {
    let thunk = make_thunk("mix", |args| Value::Num(as_f64(&args[0]) + as_f64(&args[2]) * 100.0));
    // SAFETY: the thunk was made for `double(double, int, double, int64_t)`, `f`'s type in Rust.
    let f: extern "C" fn(f64, i32, f64, i64) -> f64 = unsafe { thunk.as_fn() };
    assert_eq!(f(0.5, -3, 2.25, i64::MIN), 225.5);
    assert_eq!(thunk.finish(), vec![Value::Num(0.5), Value::Int(-3), Value::Num(2.25), Value::Int(i64::MIN)]);
}

#[test]
fn thunk_void_float_pointer_u64() {
    let thunk = make_thunk("void_void", |_| Value::Int(0));
    // SAFETY: the thunk was made for `void(void)`, `f`'s type in Rust.
    let f: extern "C" fn() = unsafe { thunk.as_fn() };
    f();
    assert!(thunk.finish().is_empty());

    let thunk = make_thunk("float_float", |args| Value::Num(as_f64(&args[0]) * 3.0));
    // SAFETY: the thunk was made for `float(float)`, `f`'s type in Rust.
    let f: extern "C" fn(f32) -> f32 = unsafe { thunk.as_fn() };
    assert_eq!(f(1.25), 3.75);
    assert_eq!(thunk.finish(), vec![Value::Num(1.25)]);

    let thunk = make_thunk("ptr_ptr", |args| Value::Ptr(as_i64(&args[0]) as usize + as_i64(&args[1]) as usize));
    // SAFETY: the thunk was made for `void *(void *, size_t)`, `f`'s type in Rust.
    let f: extern "C" fn(usize, usize) -> usize = unsafe { thunk.as_fn() };
    assert_eq!(f(0x1000, 0x234), 0x1234);
    assert_eq!(thunk.finish(), vec![Value::Ptr(0x1000), Value::Int(0x234)]);

    let thunk = make_thunk("u64_u64", |args| Value::Int(as_i64(&args[0]) ^ as_i64(&args[1])));
    // SAFETY: the thunk was made for `uint64_t(uint64_t, unsigned char)`, `f`'s type in Rust.
    let f: extern "C" fn(u64, u8) -> u64 = unsafe { thunk.as_fn() };
    assert_eq!(f(u64::MAX, 0xF0), u64::MAX ^ 0xF0);
    assert_eq!(thunk.finish(), vec![Value::Int(-1), Value::Int(0xF0)]);
}

#[test]
fn thunk_small_integers_arrive_and_return_by_their_type() {
    // The Lua function returns 0x1FF: as char that is -1.
    let thunk = make_thunk("widen", |_| Value::Int(0x1FF));
    // SAFETY: the thunk was made for `char(bool, char, unsigned short)`, `f`'s type in Rust.
    let f: extern "C" fn(bool, i8, u16) -> i8 = unsafe { thunk.as_fn() };
    assert_eq!(f(true, -100, 65000), -1);
    assert_eq!(thunk.finish(), vec![Value::Bool(true), Value::Int(-100), Value::Int(65000)]);

    let thunk = make_thunk("ret_bool", |args| Value::Bool(as_i64(&args[0]) % 2 != 0));
    // SAFETY: the thunk was made for `bool(short)`, `f`'s type in Rust.
    let f: extern "C" fn(i16) -> bool = unsafe { thunk.as_fn() };
    assert!(f(-31_001));
    assert_eq!(thunk.finish(), vec![Value::Int(-31_001)]);
    assert!(!f(2));
    thunk.finish();

    let thunk = make_thunk("ret_ushort", |args| Value::Int(as_i64(&args[0])));
    // SAFETY: the thunk was made for `unsigned short(unsigned int)`, `f`'s type in Rust.
    let f: extern "C" fn(u32) -> u16 = unsafe { thunk.as_fn() };
    assert_eq!(f(0x1234_ABCD), 0xABCD);
    assert_eq!(thunk.finish(), vec![Value::Int(0x1234_ABCD)]);
}

#[test]
fn thunk_struct_of_float_and_int() {
    let thunk = make_thunk("struct_fi", |args| {
        let v: Fi = from_bytes(&args[0]);
        Value::Bytes(bytes_of(&Fi { f: v.f * 2.0, i: v.i - 1 }))
    });
    // SAFETY: the thunk was made for `struct fi(struct fi)`, `f`'s type in Rust.
    let f: extern "C" fn(Fi) -> Fi = unsafe { thunk.as_fn() };
    assert_eq!(f(Fi { f: 1.25, i: 10 }), Fi { f: 2.5, i: 9 });
    assert_eq!(thunk.finish(), vec![Value::Bytes(bytes_of(&Fi { f: 1.25, i: 10 }))]);
}

#[test]
fn thunk_24_byte_struct_through_memory_returns_the_hidden_pointer() {
    let thunk = make_thunk("struct_big24", |args| {
        let v: Big24 = from_bytes(&args[0]);
        let k = as_i64(&args[1]);
        Value::Bytes(bytes_of(&Big24 { a: v.a + k, b: v.b * 2.0, c: v.c - k }))
    });
    // SAFETY: the thunk was made for `struct big24(struct big24, int)`, `f`'s type in Rust.
    let f: extern "C" fn(Big24, i32) -> Big24 = unsafe { thunk.as_fn() };
    let v = Big24 { a: 1, b: 2.5, c: 1 << 40 };
    assert_eq!(f(v, 3), Big24 { a: 4, b: 5.0, c: (1 << 40) - 3 });
    assert_eq!(thunk.finish(), vec![Value::Bytes(bytes_of(&v)), Value::Int(3)]);

    // With the hidden pointer in rdi and the int64 in rsi, rax must come back as rdi.
    let thunk = make_thunk("sret_only", |args| Value::Bytes(bytes_of(&Big24 { a: as_i64(&args[0]), b: 0.25, c: -1 })));
    let mut buf = Big24 { a: 0, b: 0.0, c: 0 };
    let rax_low = call_checked(thunk.code.addr(), &mut buf as *mut Big24 as usize, 99);
    assert_eq!(rax_low, (&buf as *const Big24 as usize) as u32, "rax = the hidden pointer");
    assert_eq!(buf, Big24 { a: 99, b: 0.25, c: -1 });
    assert_eq!(thunk.finish(), vec![Value::Int(99)]);
}

#[test]
fn thunk_two_eightbyte_structs_in_every_register_pairing() {
    let thunk = make_thunk("struct_ld", |args| {
        Value::Bytes(bytes_of(&Ld { l: as_i64(&args[0]) * 2, d: as_f64(&args[1]) / 2.0 }))
    });
    // SAFETY: the thunk was made for `struct ld(int64_t, double)`, `f`'s type in Rust.
    let f: extern "C" fn(i64, f64) -> Ld = unsafe { thunk.as_fn() };
    assert_eq!(f(21, 3.0), Ld { l: 42, d: 1.5 });
    assert_eq!(thunk.finish(), vec![Value::Int(21), Value::Num(3.0)]);

    let thunk = make_thunk("struct_dl", |args| {
        let v: Ld = from_bytes(&args[0]);
        Value::Bytes(bytes_of(&Dl { d: v.d + 1.0, l: v.l + 1 }))
    });
    // SAFETY: the thunk was made for `struct dl(struct ld)`, `f`'s type in Rust.
    let f: extern "C" fn(Ld) -> Dl = unsafe { thunk.as_fn() };
    assert_eq!(f(Ld { l: -9, d: 0.5 }), Dl { d: 1.5, l: -8 });
    assert_eq!(thunk.finish(), vec![Value::Bytes(bytes_of(&Ld { l: -9, d: 0.5 }))]);

    let thunk = make_thunk("struct_ll", |args| {
        let (a, b): (Ll, Ll) = (from_bytes(&args[0]), from_bytes(&args[1]));
        Value::Bytes(bytes_of(&Ll { a: a.a * b.a, b: a.b * b.b }))
    });
    // SAFETY: the thunk was made for `struct ll(struct ll, struct ll)`, `f`'s type in Rust.
    let f: extern "C" fn(Ll, Ll) -> Ll = unsafe { thunk.as_fn() };
    assert_eq!(f(Ll { a: 3, b: 4 }, Ll { a: 5, b: -6 }), Ll { a: 15, b: -24 });
    thunk.finish();

    let thunk = make_thunk("struct_fff", |args| {
        let v: Fff = from_bytes(&args[0]);
        let k = as_f64(&args[1]) as f32;
        Value::Bytes(bytes_of(&Fff { x: v.x + k, y: v.y + k, z: v.z + k }))
    });
    // SAFETY: the thunk was made for `struct fff(struct fff, float)`, `f`'s type in Rust.
    let f: extern "C" fn(Fff, f32) -> Fff = unsafe { thunk.as_fn() };
    assert_eq!(f(Fff { x: 1.0, y: 2.0, z: 3.0 }, 0.5), Fff { x: 1.5, y: 2.5, z: 3.5 });
    assert_eq!(thunk.finish(), vec![Value::Bytes(bytes_of(&Fff { x: 1.0, y: 2.0, z: 3.0 })), Value::Num(0.5)]);
}

#[test]
fn thunk_odd_sized_structs() {
    let thunk = make_thunk("struct_rgb", |args| {
        let c: Rgb = from_bytes(&args[0]);
        Value::Bytes(bytes_of(&Rgb { r: c.b, g: c.r, b: c.g }))
    });
    // SAFETY: the thunk was made for `struct rgb(struct rgb)`, `f`'s type in Rust.
    let f: extern "C" fn(Rgb) -> Rgb = unsafe { thunk.as_fn() };
    assert_eq!(f(Rgb { r: 1, g: 2, b: 3 }), Rgb { r: 3, g: 1, b: 2 });
    assert_eq!(thunk.finish(), vec![Value::Bytes(bytes_of(&Rgb { r: 1, g: 2, b: 3 }))]);

    let thunk = make_thunk("struct_s7", |args| {
        let v: S7 = from_bytes(&args[0]);
        Value::Bytes(s7_bytes(S7 { a: v.a * 2, b: v.b * 2, c: v.c.wrapping_mul(2) }))
    });
    // SAFETY: the thunk was made for `struct s7(struct s7)`, `f`'s type in Rust.
    let f: extern "C" fn(S7) -> S7 = unsafe { thunk.as_fn() };
    assert_eq!(f(S7 { a: -70_000, b: 1000, c: -60 }), S7 { a: -140_000, b: 2000, c: -120 });
    let got: S7 = from_bytes(&thunk.finish()[0]);
    assert_eq!(got, S7 { a: -70_000, b: 1000, c: -60 });
}

#[test]
fn thunk_complex_returns() {
    let thunk = make_thunk("complex_f32", |args| {
        let (a, b): (Cf32, Cf32) = (from_bytes(&args[0]), from_bytes(&args[1]));
        Value::Bytes(bytes_of(&Cf32 { re: a.re + b.re, im: a.im + b.im }))
    });
    // SAFETY: the thunk was made for `float complex(float complex, float complex)`, `f`'s type in
    // Rust; `Cf32` is classified the same.
    let f: extern "C" fn(Cf32, Cf32) -> Cf32 = unsafe { thunk.as_fn() };
    assert_eq!(f(Cf32 { re: 1.0, im: 2.0 }, Cf32 { re: 0.25, im: -4.0 }), Cf32 { re: 1.25, im: -2.0 });
    thunk.finish();

    let thunk = make_thunk("complex_f64", |args| {
        let a: Cf64 = from_bytes(&args[0]);
        Value::Bytes(bytes_of(&Cf64 { re: a.im, im: a.re }))
    });
    // SAFETY: the thunk was made for `double complex(double complex)`, `f`'s type in Rust.
    let f: extern "C" fn(Cf64) -> Cf64 = unsafe { thunk.as_fn() };
    assert_eq!(f(Cf64 { re: 1.5, im: -8.0 }), Cf64 { re: -8.0, im: 1.5 });
    assert_eq!(thunk.finish(), vec![Value::Bytes(bytes_of(&Cf64 { re: 1.5, im: -8.0 }))]);
}

#[test]
fn thunk_ten_mixed_and_sixteen_arguments_read_the_callers_stack() {
    let thunk = make_thunk("mixed10", |args| {
        Value::Num(args.iter().map(|v| if let Value::Ptr(_) = v { 0.0 } else { as_f64(v) }).sum())
    });
    type Mixed10 = extern "C" fn(i32, f64, i64, f32, i8, f64, u16, i32, *const u8, i32) -> f64;
    // SAFETY: the thunk was made for the mixed10 signature, `f`'s type in Rust.
    let f: Mixed10 = unsafe { thunk.as_fn() };
    let p = 0xdead_beef_usize as *const u8;
    assert_eq!(
        f(1, 2.5, -3, 4.25, -5, 6.125, 65535, -8, p, 10),
        1.0 + 2.5 - 3.0 + 4.25 - 5.0 + 6.125 + 65535.0 - 8.0 + 10.0
    );
    assert_eq!(
        thunk.finish(),
        vec![
            Value::Int(1),
            Value::Num(2.5),
            Value::Int(-3),
            Value::Num(4.25),
            Value::Int(-5),
            Value::Num(6.125),
            Value::Int(65535),
            Value::Int(-8),
            Value::Ptr(0xdead_beef),
            Value::Int(10),
        ]
    );

    let thunk = make_thunk("many16", |args| Value::Num(as_f64(&args[8]) * 1000.0 + as_f64(&args[15])));
    type Many16 = extern "C" fn(f64, f64, f64, f64, f64, f64, f64, f64, f64, i32, i32, i32, i32, i32, i32, i32) -> f64;
    // SAFETY: the thunk was made for the many16 signature, `f`'s type in Rust.
    let f: Many16 = unsafe { thunk.as_fn() };
    assert_eq!(f(0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 100, 101, 102, 103, 104, 105, 106), 8606.0);
    let mut expected: Vec<Value> = (0..9).map(|k| Value::Num(f64::from(k) + 0.5)).collect();
    expected.extend((0..7).map(|k| Value::Int(100 + k)));
    assert_eq!(thunk.finish(), expected);

    let thunk = make_thunk("stack_struct", |args| {
        let t: Fi = from_bytes(&args[6]);
        Value::Int(as_i64(&args[0]) + i64::from(t.i))
    });
    type Late = extern "C" fn(i64, i64, i64, i64, i64, Fi, Fi) -> i64;
    // SAFETY: the thunk was made for the stack_struct signature, `f`'s type in Rust.
    let f: Late = unsafe { thunk.as_fn() };
    let (s, t) = (Fi { f: 3.0, i: 4 }, Fi { f: -1.0, i: 9 });
    assert_eq!(f(1, 2, 3, 4, 5, s, t), 10);
    let got = thunk.finish();
    assert_eq!(got[5], Value::Bytes(bytes_of(&s)));
    assert_eq!(got[6], Value::Bytes(bytes_of(&t)));
}

// ---- inline errno -----------------------------------------------------------------------------

/// What `ffi.errno()` reports and the embedding's per-call fields (`CallSlots`).
#[repr(C)]
struct Slots {
    saved_errno: i32,
    pending_error: i32,
    calling_l: usize,
}

static ERRNO_SEEN: AtomicU32 = AtomicU32::new(0);
/// The address of the calling-thread slot, and the thread `t_errno_add` found there.
static CALLING_L_SLOT: AtomicUsize = AtomicUsize::new(0);
static CALLING_L_SEEN: AtomicUsize = AtomicUsize::new(0);

/// `int add(int, int)` that reports the errno and the calling thread it finds and sets errno
/// to the sum, as a C function failing with an error code would.
extern "C" fn t_errno_add(a: i32, b: i32) -> i32 {
    record(format!("{a} {b}"));
    let slot = CALLING_L_SLOT.load(Ordering::SeqCst);
    if slot != 0 {
        // SAFETY: the test's calling-thread slot, alive during the call.
        CALLING_L_SEEN.store(unsafe { *(slot as *const usize) }, Ordering::SeqCst);
    }
    // SAFETY: the calling thread's errno.
    unsafe {
        ERRNO_SEEN.store(*libc::__errno_location() as u32, Ordering::SeqCst);
        *libc::__errno_location() = a + b;
    }
    a + b
}

#[test]
fn inline_errno_is_restored_before_the_call_and_saved_right_after_it() {
    use abi_model::lua::steps::{Slot, Step};
    let case = common::case("add");
    let mut slots = Box::new(Slots { saved_errno: 1234, pending_error: -2, calling_l: 0 });
    let env = env_for(&case.plan);
    let call_slots = abi_model::lua::CallSlots {
        saved_errno: &slots.saved_errno as *const i32 as u64,
        calling_l: &slots.calling_l as *const usize as u64,
        pending_error: &slots.pending_error as *const i32 as u64,
        no_pending: -2,
        main_l: &slots.calling_l as *const usize as u64,
    };
    let code_env = CodeEnv { call_slots: Some(call_slots), ..env.env.clone() };
    CALLING_L_SLOT.store(&slots.calling_l as *const usize as usize, Ordering::SeqCst);
    // The helper stub with its two errno helper calls replaced by the inline steps.
    let mut program = stub_program(&case.plan, 1);
    let errno_at = Slot::Stage(program.stage_bytes);
    program.stage_bytes += 16;
    for st in &mut program.steps {
        match st {
            Step::CallHelper { helper: Helper::ErrnoRestore, ret_to: Some(prev_l_at), .. } => {
                *st = Step::ErrnoRestoreInline { errno_at, prev_l_at: *prev_l_at }
            }
            Step::CallHelper { helper: Helper::AfterCall, args, .. } => {
                let abi_model::lua::steps::Operand::PtrAt(prev_l_at) = args[2] else {
                    panic!("AfterCall's third argument is the kept thread")
                };
                *st = Step::AfterCallInline { errno_at, prev_l_at, slow: Box::new(st.clone()) };
            }
            _ => {}
        }
    }
    let code = ExecCode::new(8192, |base| X64SysvBackend.stub(&program, base, &code_env).expect("stub lowers"));
    let target = probe(t_errno_add as *const () as usize);
    for pending in [-2, 7] {
        slots.pending_error = pending;
        // The thread before the call (here the value the mock AfterCall expects back).
        slots.calling_l = PREV_L;
        with(|m| {
            *m =
                Mock { stack: vec![Value::Int(40), Value::Int(2)], l: FAKE_L, target: target.addr(), ..Mock::default() }
        });
        // SAFETY: the thread's errno; junk that the stub must replace by the saved value.
        unsafe { *libc::__errno_location() = 99 };
        let results = call_checked(code.addr(), FAKE_L, 0) as i32;
        let (stack, events) = with(|m| (std::mem::take(&mut m.stack), std::mem::take(&mut m.events)));
        assert_clean();
        assert_eq!(results, 1);
        assert!(matches!(stack.last(), Some(Value::Int(42))), "{stack:?}");
        assert_eq!(ERRNO_SEEN.load(Ordering::SeqCst), 1234, "the C function saw ffi.errno()'s value");
        assert_eq!(slots.saved_errno, 42, "the C function's errno was saved for ffi.errno()");
        slots.saved_errno = 1234;
        assert_eq!(CALLING_L_SEEN.load(Ordering::SeqCst), FAKE_L, "callbacks run on L during the call");
        assert_eq!(slots.calling_l, PREV_L, "the calling thread before the call is put back");
        assert!(!events.iter().any(|e| e == "errno_restore"), "{events:?}");
        // The raising helper runs only for a pending callback error.
        assert_eq!(events.iter().any(|e| e == "after_call"), pending != -2, "{events:?}");
        let loc = events.iter().position(|e| e == "errno_location").expect("errno located");
        assert_eq!(events.get(loc + 1).map(String::as_str), Some("target"), "{events:?}");
    }
    CALLING_L_SLOT.store(0, Ordering::SeqCst);
    drop(env);
}
