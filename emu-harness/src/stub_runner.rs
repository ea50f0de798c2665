//! Backend stubs and thunks against the compiled fixtures, with the helpers mocked over a
//! mock Lua stack.
//!
//! *Stub* (call direction): a generated `lua_CFunction` is called with a mock `lua_State`
//! whose Lua arguments are the catalogue's values; its helper calls stop at hook addresses
//! and are answered in Rust; `luaffi_func_addr` hands it the compiled callee, which records
//! what it received; the value the stub pushes (or writes into the result cdata) must be the
//! callee's return value. *Thunk* (callback direction): a compiled caller calls a generated
//! thunk; the values the thunk pushes must be the caller's arguments, and what the caller
//! receives must be what the mock Lua function returned.
//!
//! *Inline stubs* ([`LuaStack::Memory`]) read their arguments from, and push their result
//! onto, a mock Lua stack in emulated memory laid out as a [`LuaVm`] says; a value pushed
//! there counts as pushed, as one pushed by a helper does.
//!
//! Every helper call is checked for stack alignment at its entry, and every call of the
//! target for the alignment its plan asks (the stub is handed [`TARGET_GATE`] as the target's
//! address; arriving there is checked, then the run goes on at the compiled callee); every run
//! for the stack pointer, the callee-saved registers and the x87 stack afterwards.

use crate::engine::{Cpu, Gpr, Mode, Perms, StopSet};
use crate::plan_runner::{self, compare, engine, layout, mismatch, Case, Mismatch, RecordBuffer};
use crate::unwind_check::UnwindProbe;
use abi_model::callback::CallbackFrame;
use abi_model::lua::curated::listing_inline;
use abi_model::lua::helpers::Helper;
use abi_model::lua::steps::{stub_program, stub_program_inline, thunk_program, thunk_program_inline, Inline};
use abi_model::lua::vm::{ArgsBase, LuaVm};
use abi_model::lua::{lua_cfunction_plan, Backend, CodeEnv};
use abi_model::{ArgPass, CallPlan, Loc, Target, ValueKind, Xmm};

/// The address a stub is given as its target's: a stop (nothing is mapped there) at which
/// the runner checks the stack pointer's alignment against the plan, then goes on at the
/// compiled callee.
pub const TARGET_GATE: u64 = 0x5000_0080;
/// Where generated code is written.
pub const CODE_BASE: u64 = 0x5800_0000;
/// Bytes mapped for generated code.
pub const CODE_SIZE: u64 = 0x1_0000;
/// The mock `lua_State *`: only passed to helpers, except by stubs with inline steps, which
/// read and write the mock Lua stack laid out around it ([`LuaStack::Memory`]).
pub const FAKE_L: u64 = 0x4C00_0010;
/// The region of the mock Lua stack's memory: `lua_State`, `CallInfo`, closure and slots.
const LUA_REGION: u64 = 0x4C00_0000;
const LUA_REGION_SIZE: u64 = 0x10000;
/// The part of it rewritten (zeroed) before each run: everything but the mock userdata.
const LUA_FIXED_SIZE: u64 = 0x2000;
/// Where mock userdata (cdata of record arguments) are made, `LUA_UDATA_EACH` bytes apart.
const LUA_UDATA: u64 = LUA_REGION + 0x4000;
const LUA_UDATA_EACH: u64 = 0x400;
const LUA_CI: u64 = LUA_REGION + 0x200;
const LUA_CLOSURE: u64 = LUA_REGION + 0x400;
const LUA_STACK: u64 = LUA_REGION + 0x1000;
/// The embedding's per-state fields inline errno handling updates ([`abi_model::lua::CallSlots`]),
/// and the mock thread's `errno` (what `luaffi_errno_location` answers).
const SAVED_ERRNO: u64 = LUA_REGION + 0x100;
const CALLING_L: u64 = LUA_REGION + 0x108;
const PENDING_ERROR: u64 = LUA_REGION + 0x110;
const THREAD_ERRNO: u64 = LUA_REGION + 0x118;
/// The state's main thread ([`abi_model::lua::CallSlots::main_l`]).
const MAIN_L: u64 = LUA_REGION + 0x120;
/// The calling thread before a stub's call (another `lua_State *`), which it must put back.
const PREV_L: u64 = 0x4C00_0F10;
const NO_PENDING: i32 = -2;
/// The mock Lua function a thunk calls: its value and tag, as the callback record holds them
/// and the function's stack slot must.
const FUNC_VALUE: u64 = 0x4F00_F00D;
const FUNC_TAG: u32 = 0x66;
/// What `ffi.errno()` holds before an inline stub runs, and the junk in the thread's errno.
const ERRNO_BEFORE: u32 = 0x5EED_0042;
const ERRNO_JUNK: u32 = 0xBAD0_BAD0;
/// The tag of a Lua value no inline step takes: `false` (1 in every version; a value with
/// no object behind it, so nothing reads through it).
const OTHER_TAG: u32 = 1;
/// Ctype constant of argument `i`: `CTYPE_ARGS + 16 * i`.
pub const CTYPE_ARGS: u64 = 0x4D00_0000;
/// Bytes mapped at [`CTYPE_ARGS`] (zeroed, but where a bare record's ctype holds its values'
/// metatable address).
const CTYPE_REGION_SIZE: u64 = 0x10000;
/// Made-up metatable addresses of mock bare record cdata, `0x40` apart per argument (never
/// read: stubs compare them).
const MOCK_METATABLES: u64 = 0x4E00_0000;
/// Ctype constant of the return type.
pub const CTYPE_RET: u64 = 0x4DFF_0000;
/// The callback data constant of thunks: the mock callback record, holding the function's
/// value as [`abi_model::lua::curated::LISTING_CALLBACK`] says.
pub const CALLBACK_DATA: u64 = LUA_REGION + 0x180;
/// Where `luaffi_new_result` allocates result cdata storage (inside the scratch region).
const RESULT_AT: u64 = layout::SCRATCH + 0x8000;

/// The hook address of a helper.
pub fn hook_of(h: Helper) -> u64 {
    layout::HOOKS + 16 * h.id() as u64
}

/// Maps the page generated code is written to, and the mock Lua stack's memory.
pub fn map_code_region(cpu: &mut dyn Cpu) -> Result<(), crate::EngineError> {
    cpu.map(CODE_BASE, CODE_SIZE, Perms::RX)?;
    cpu.map(LUA_REGION, LUA_REGION_SIZE, Perms::RW)?;
    // The argument ctypes: a stub reads a bare record's metatable address from its ctype.
    cpu.map(CTYPE_ARGS, CTYPE_REGION_SIZE, Perms::RW)
}

/// How a stub run presents the Lua side to the stub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LuaStack {
    /// Through helpers only: the stub of [`stub_program`].
    Helpers,
    /// The stub of [`stub_program_inline`] with `abi_model::lua::curated::listing_inline(vm)`, run
    /// as a closure whose upvalue (3) holds the callee's address, over a mock Lua stack laid out as `vm` says
    /// (one of [`LuaVm::all_for`] the target: its pointers and slots as wide as there). With
    /// `inline_values`, each argument the layout can hold as a Lua value an inline step
    /// takes is one: numbers (odd-numbered integer arguments as floats where exact, to take
    /// both paths), and for pointers nil (NULL) or a string whose bytes are at the pointer
    /// (every pointer argument is taken to accept strings; short and long strings
    /// alternate), and for records and complex numbers a value cdata of exactly the
    /// argument's type (with the listings' cdata header); otherwise, and for every other argument, the slot
    /// holds a value no inline step takes, so the helpers answer.
    Memory {
        /// The layout.
        vm: LuaVm,
        /// Whether arguments are Lua values inline steps take.
        inline_values: bool,
    },
}

fn put_slot(cpu: &mut dyn Cpu, vm: LuaVm, at: u64, tag: u32, value: u64) -> Result<(), Mismatch> {
    write_value(cpu, at, value)?;
    cpu.write(at + u64::from(vm.tag_at), &tag.to_le_bytes()[..vm.tag_size as usize]).map_err(engine)
}

/// The value word and tag of the slot at `at` (what [`put_slot`] wrote).
fn get_slot(cpu: &dyn Cpu, vm: LuaVm, at: u64) -> Result<(u64, u32), Mismatch> {
    let mut t = [0u8; 4];
    cpu.read(at + u64::from(vm.tag_at), &mut t[..vm.tag_size as usize]).map_err(engine)?;
    Ok((read_value(cpu, at)?, u32::from_le_bytes(t)))
}

/// Writes the 8 bytes of a Lua value (`Value` is 8 bytes on every layout: a `double`, or a
/// pointer zero-extended).
fn write_value(cpu: &mut dyn Cpu, at: u64, value: u64) -> Result<(), Mismatch> {
    cpu.write(at, &value.to_le_bytes()).map_err(engine)
}

fn read_value(cpu: &dyn Cpu, at: u64) -> Result<u64, Mismatch> {
    let mut b = [0u8; 8];
    cpu.read(at, &mut b).map_err(engine)?;
    Ok(u64::from_le_bytes(b))
}

/// Writes a pointer (or `size_t`) of the layout's width.
fn write_ptr(cpu: &mut dyn Cpu, vm: LuaVm, at: u64, value: u64) -> Result<(), Mismatch> {
    cpu.write(at, &value.to_le_bytes()[..vm.ptr_size as usize]).map_err(engine)
}

fn read_ptr(cpu: &dyn Cpu, vm: LuaVm, at: u64) -> Result<u64, Mismatch> {
    let mut b = [0u8; 8];
    cpu.read(at, &mut b[..vm.ptr_size as usize]).map_err(engine)?;
    Ok(u64::from_le_bytes(b))
}

/// Where mock `TString`s of Lua 5.5's long strings (a pointer to the bytes) are made.
const LUA_STRINGS: u64 = LUA_REGION + 0x600;

/// The Lua value argument `i` of kind `kind` (C bytes `bytes`) gets on the mock stack, after
/// writing any object it needs.
fn lua_value_of(
    cpu: &mut dyn Cpu,
    inline: &Inline,
    inline_values: bool,
    i: usize,
    kind: ValueKind,
    bytes: &[u8],
) -> Result<(u32, u64), Mismatch> {
    let vm = inline.vm;
    use abi_model::lua::vm::StrBytes;
    if kind == ValueKind::Pointer && inline_values {
        let p = word_of(bytes);
        if p == 0 {
            return Ok((vm.nil_tag, 0));
        }
        let s = vm.strings;
        let (tag, at) = if i.is_multiple_of(2) { (s.short_tag, s.short_bytes) } else { (s.long_tag, s.long_bytes) };
        return Ok(match at {
            StrBytes::At(o) => (tag, p.wrapping_sub(u64::from(o))),
            StrBytes::Via(o) => {
                let ts = LUA_STRINGS + 0x40 * i as u64;
                if ts + 0x40 > LUA_STACK {
                    return Err(mismatch("mock Lua strings", "room", format!("{i} arguments")));
                }
                write_ptr(cpu, vm, ts + u64::from(o), p)?;
                (tag, ts)
            }
        });
    }
    if let (true, true, Some(header)) = (is_aggregate(kind), inline_values, inline.cdata) {
        return mock_cdata(cpu, vm, header, i, bytes).map(|u| (vm.userdata.tag, u));
    }
    Ok(number_value_of(vm, inline_values, i, kind, bytes))
}

/// Makes a mock userdata holding a value cdata of argument `i`'s type (its ctype constant)
/// with `bytes`, laid out as `vm` and `cdata` say; returns the `Udata` address.
fn mock_cdata(
    cpu: &mut dyn Cpu,
    vm: LuaVm,
    cdata: abi_model::lua::steps::CdataLayout,
    i: usize,
    bytes: &[u8],
) -> Result<u64, Mismatch> {
    let ud = LUA_UDATA + LUA_UDATA_EACH * i as u64;
    let block = ud + u64::from(vm.userdata.block_at);
    let h = match cdata {
        abi_model::lua::steps::CdataLayout::Header(h) => h,
        abi_model::lua::steps::CdataLayout::Bare { desc_metatable_at } => {
            return mock_bare_cdata(cpu, vm, desc_metatable_at, i, bytes);
        }
    };
    let obj = block + u64::from(h.bytes_at);
    if obj + bytes.len() as u64 > ud + LUA_UDATA_EACH || ud + LUA_UDATA_EACH > LUA_REGION + LUA_REGION_SIZE {
        return Err(mismatch("mock cdata", "room", format!("argument {i} of {} bytes", bytes.len())));
    }
    let w = |cpu: &mut dyn Cpu, at: u64, v: &[u8]| cpu.write(at, v).map_err(engine);
    if let Some(nuv) = vm.userdata.no_user_values_at {
        w(cpu, ud + u64::from(nuv), &0u16.to_le_bytes())?;
    }
    write_ptr(cpu, vm, ud + u64::from(vm.userdata.len_at), u64::from(h.bytes_at) + bytes.len() as u64)?;
    write_ptr(cpu, vm, block + u64::from(h.desc_at), CTYPE_ARGS + 16 * i as u64)?;
    // The tag word is pointer-sized: rotated and keyed in 32 bits on a 32-bit layout.
    let tag = match vm.ptr_size {
        4 => u64::from((block as u32).rotate_left(h.tag_rotate) ^ h.tag_key as u32),
        _ => block.rotate_left(h.tag_rotate) ^ h.tag_key,
    };
    write_ptr(cpu, vm, block + u64::from(h.tag_at), tag)?;
    w(cpu, obj, bytes)?;
    Ok(ud)
}

/// [`mock_cdata`] for a bare value: `bytes` are the whole block, and the userdata's metatable
/// is the one argument `i`'s ctype names at `desc_metatable_at`.
fn mock_bare_cdata(
    cpu: &mut dyn Cpu,
    vm: LuaVm,
    desc_metatable_at: u32,
    i: usize,
    bytes: &[u8],
) -> Result<u64, Mismatch> {
    let ud = LUA_UDATA + LUA_UDATA_EACH * i as u64;
    let block = ud + u64::from(vm.userdata.block_at);
    let ctype_word = CTYPE_ARGS + 16 * i as u64 + u64::from(desc_metatable_at);
    if block + bytes.len() as u64 > ud + LUA_UDATA_EACH
        || ud + LUA_UDATA_EACH > LUA_REGION + LUA_REGION_SIZE
        || ctype_word + u64::from(vm.ptr_size) > CTYPE_ARGS + CTYPE_REGION_SIZE
    {
        return Err(mismatch("mock bare cdata", "room", format!("argument {i} of {} bytes", bytes.len())));
    }
    if let Some(nuv) = vm.userdata.no_user_values_at {
        cpu.write(ud + u64::from(nuv), &0u16.to_le_bytes()).map_err(engine)?;
    }
    let metatable = MOCK_METATABLES + 0x40 * i as u64;
    write_ptr(cpu, vm, ud + u64::from(vm.userdata.len_at), bytes.len() as u64)?;
    write_ptr(cpu, vm, ud + u64::from(vm.userdata.metatable_at), metatable)?;
    write_ptr(cpu, vm, ctype_word, metatable)?;
    cpu.write(block, bytes).map_err(engine)?;
    Ok(ud)
}

/// [`lua_value_of`] for everything but pointers and records: numbers, or the other-value tag.
fn number_value_of(vm: LuaVm, inline_values: bool, i: usize, kind: ValueKind, bytes: &[u8]) -> (u32, u64) {
    const EXACT: u64 = 1 << 53;
    if !inline_values {
        return (OTHER_TAG, 0);
    }
    match kind {
        // A 16-byte integer is no Lua number (it is a cdata, `is_aggregate`).
        ValueKind::Int { size: 1 | 2 | 4 | 8, signed } => {
            let v = word_of(&widen(bytes, signed, 8)) as i64;
            let as_float = vm.int_tag.is_none() || i % 2 == 1;
            match vm.int_tag {
                Some(t) if !as_float || v.unsigned_abs() > EXACT => (t, v as u64),
                _ if v.unsigned_abs() <= EXACT => (vm.float_tag, (v as f64).to_bits()),
                _ => (OTHER_TAG, 0),
            }
        }
        ValueKind::F64 => (vm.float_tag, word_of(bytes)),
        ValueKind::F32 => {
            let f = f32::from_bits(word_of(bytes) as u32);
            if f.is_nan() {
                (OTHER_TAG, 0)
            } else {
                (vm.float_tag, f64::from(f).to_bits())
            }
        }
        _ => (OTHER_TAG, 0),
    }
}

/// Lays out the mock Lua stack for a stub built with `inline`: `L->top`, the arguments'
/// base, the called closure with the callee's address in its upvalue, the arguments; returns
/// the initial `L->top`.
fn lay_out_lua_stack(
    cpu: &mut dyn Cpu,
    inline: &Inline,
    inline_values: bool,
    case: &Case,
    callee: u64,
) -> Result<u64, Mismatch> {
    let vm = inline.vm;
    let func_upvalue =
        inline.func_upvalue.ok_or_else(|| mismatch("inline stub", "the function address in an upvalue", "none"))?;
    cpu.write(LUA_REGION, &vec![0; LUA_FIXED_SIZE as usize]).map_err(engine)?;
    let slot = u64::from(vm.slot);
    let top = LUA_STACK + slot * (case.args.len() as u64 + 1);
    set_lua_top(cpu, vm, top)?;
    match vm.args {
        ArgsBase::Base { at } => write_ptr(cpu, vm, FAKE_L + u64::from(at), LUA_STACK + slot)?,
        ArgsBase::CallInfo { ci, func } => {
            write_ptr(cpu, vm, FAKE_L + u64::from(ci), LUA_CI)?;
            write_ptr(cpu, vm, LUA_CI + u64::from(func), LUA_STACK)?;
        }
    }
    put_slot(cpu, vm, LUA_STACK, 0x66, LUA_CLOSURE)?;
    let upvalue = LUA_CLOSURE + u64::from(vm.cclosure_upvalues + (func_upvalue - 1) * vm.slot);
    put_slot(cpu, vm, upvalue, vm.light_userdata_tag, callee)?;
    for (i, (a, bytes)) in case.plan.args.iter().zip(case.args).enumerate() {
        let (tag, value) = lua_value_of(cpu, inline, inline_values, i, a.value, bytes)?;
        put_slot(cpu, vm, LUA_STACK + slot * (i as u64 + 1), tag, value)?;
    }
    // With inline values no callback error is pending; with other values one is, so the
    // helper that raises it must be called.
    cpu.write(SAVED_ERRNO, &ERRNO_BEFORE.to_le_bytes()).map_err(engine)?;
    cpu.write(THREAD_ERRNO, &ERRNO_JUNK.to_le_bytes()).map_err(engine)?;
    write_ptr(cpu, vm, CALLING_L, PREV_L)?;
    let pending = if inline_values { NO_PENDING } else { 7 };
    cpu.write(PENDING_ERROR, &pending.to_le_bytes()).map_err(engine)?;
    if top + 2 * slot > LUA_REGION + LUA_FIXED_SIZE {
        return Err(mismatch("mock Lua stack", "room for the arguments", format!("{} arguments", case.args.len())));
    }
    Ok(top)
}

/// The values an inline stub pushed on the mock stack since `top0`, as C bytes of `kind`.
fn pushed_on_lua_stack(cpu: &dyn Cpu, vm: LuaVm, top0: u64, kind: ValueKind) -> Result<Vec<Vec<u8>>, Mismatch> {
    let top = lua_top(cpu, vm)?;
    let slot = u64::from(vm.slot);
    if top < top0 || !(top - top0).is_multiple_of(slot) {
        return Err(mismatch("L->top after the stub", format!("{top0:#x} plus whole slots"), format!("{top:#x}")));
    }
    (top0..top).step_by(slot as usize).map(|at| decode_slot(cpu, vm, at, kind, &[])).collect()
}

/// `L->top` of the mock Lua stack.
fn lua_top(cpu: &dyn Cpu, vm: LuaVm) -> Result<u64, Mismatch> {
    read_ptr(cpu, vm, FAKE_L + u64::from(vm.top))
}

fn set_lua_top(cpu: &mut dyn Cpu, vm: LuaVm, top: u64) -> Result<(), Mismatch> {
    write_ptr(cpu, vm, FAKE_L + u64::from(vm.top), top)
}

/// Writes a slot at the mock stack's `L->top` and moves `top` up one slot.
fn push_lua_slot(cpu: &mut dyn Cpu, vm: LuaVm, tag: u32, value: u64) -> Result<(), Mismatch> {
    let top = lua_top(cpu, vm)?;
    put_slot(cpu, vm, top, tag, value)?;
    set_lua_top(cpu, vm, top + u64::from(vm.slot))
}

/// The tag of a slot a mock push helper wrote (its value: the index of the bytes it was given).
const HELPER_TAG: u32 = 0x7E;

/// The slot at `at` as C bytes of `kind`: a number pushed inline, or (for [`HELPER_TAG`]) what
/// a push helper was given, from `by_helpers`.
fn decode_slot(
    cpu: &dyn Cpu,
    vm: LuaVm,
    at: u64,
    kind: ValueKind,
    by_helpers: &[Vec<u8>],
) -> Result<Vec<u8>, Mismatch> {
    let (value, tag) = get_slot(cpu, vm, at)?;
    Ok(if Some(tag) == vm.int_tag {
        value.to_le_bytes().to_vec()
    } else if tag == vm.float_tag {
        let d = f64::from_bits(value);
        match kind {
            ValueKind::F32 => (d as f32).to_bits().to_le_bytes().to_vec(),
            ValueKind::Int { .. } => (d as i64).to_le_bytes().to_vec(),
            _ => value.to_le_bytes().to_vec(),
        }
    } else if tag == HELPER_TAG && (value as usize) < by_helpers.len() {
        by_helpers[value as usize].clone()
    } else {
        return Err(mismatch(
            "tag of the value pushed inline",
            format!("{:?} or {:#x}", vm.int_tag, vm.float_tag),
            format!("{tag:#x}"),
        ));
    })
}

/// Every stop a stub or thunk run uses: the harness's return address and every helper hook.
pub fn stub_stops() -> StopSet {
    StopSet::new([layout::MAGIC_RET, TARGET_GATE].into_iter().chain(Helper::ALL.iter().map(|h| hook_of(*h))))
}

/// The environment a generated stub or thunk is built with in the emulator.
pub fn code_env(nargs: usize) -> CodeEnv {
    CodeEnv {
        helpers: Helper::ALL.iter().map(|h| hook_of(*h)).collect(),
        arg_ctypes: (0..nargs as u64).map(|i| CTYPE_ARGS + 16 * i).collect(),
        ret_ctype: CTYPE_RET,
        callback_data: CALLBACK_DATA,
        call_slots: Some(abi_model::lua::CallSlots {
            saved_errno: SAVED_ERRNO,
            calling_l: CALLING_L,
            pending_error: PENDING_ERROR,
            no_pending: NO_PENDING,
            main_l: MAIN_L,
        }),
    }
}

fn sentinel(r: Gpr, mode: Mode) -> u64 {
    mode.truncate(0x5A5A_0000_0000_5A00 | (r as u64) << 4)
}

/// The mock Lua side of one run.
struct Mock<'a> {
    w: usize,
    /// Kinds of the C arguments (ctype `Arg(i)`), and of the return value.
    arg_kinds: Vec<ValueKind>,
    ret_kind: ValueKind,
    /// Stubs: the Lua arguments as C values, by Lua index 1..n.
    lua_args: &'a [Vec<u8>],
    /// What the mock Lua function returns (thunks), and `ToX(L, -1)` reads.
    lua_result: &'a [u8],
    /// What `luaffi_func_addr` answers.
    func_addr: u64,
    /// Values pushed by `luaffi_push_*`, with the kind the helper pushed.
    pushed: Vec<Vec<u8>>,
    /// The storage `luaffi_new_result` handed out.
    result_buf: Option<u64>,
    /// Number of arguments `luaffi_callback_call` was given.
    called_with: Option<i64>,
    /// Calls of `luaffi_after_call`.
    after_calls: u32,
    /// Thunks over a mock Lua stack: its layout, and whether the callback's result is a Lua
    /// value inline conversion takes.
    thunk_stack: Option<(LuaVm, bool)>,
    /// Calls of `luaffi_callback_enter`, `luaffi_callback_call` and `luaffi_callback_result`.
    enter_calls: u32,
    call_calls: u32,
    result_calls: u32,
}

fn le(v: u64, n: usize) -> Vec<u8> {
    v.to_le_bytes()[..n].to_vec()
}

fn word_of(b: &[u8]) -> u64 {
    let mut v = [0u8; 8];
    v[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
    u64::from_le_bytes(v)
}

fn widen(bytes: &[u8], signed: bool, to: usize) -> Vec<u8> {
    let negative = signed && bytes.last().is_some_and(|b| b & 0x80 != 0);
    let mut v = bytes.to_vec();
    v.resize(to.max(bytes.len()), if negative { 0xFF } else { 0 });
    v.truncate(to);
    v
}

fn is_push(h: Helper) -> bool {
    matches!(
        h,
        Helper::PushI32
            | Helper::PushU32
            | Helper::PushI64
            | Helper::PushU64
            | Helper::PushF32
            | Helper::PushF64
            | Helper::PushPtr
            | Helper::PushBool
            | Helper::PushRecord
    )
}

impl Mock<'_> {
    /// The Lua call of a thunk over the mock stack: the arguments pushed (inline or by
    /// helpers) become the pushed values in order; the function and arguments are replaced by
    /// the result, a Lua number when `inline_result` and the result kind has one, else a
    /// value only the conversion helpers take (they read `lua_result`).
    fn call_on_lua_stack(
        &mut self,
        cpu: &mut dyn Cpu,
        vm: LuaVm,
        nargs: i64,
        inline_result: bool,
    ) -> Result<(), Mismatch> {
        let slot = u64::from(vm.slot);
        let top = lua_top(cpu, vm)?;
        let func = top.wrapping_sub(slot * (nargs as u64 + 1));
        if nargs < 0 || func < LUA_STACK {
            return Err(mismatch(
                "the Lua stack at the callback's call",
                format!("the function and {nargs} arguments"),
                format!("L->top {top:#x}"),
            ));
        }
        let (value, tag) = get_slot(cpu, vm, func)?;
        if (value, tag) != (FUNC_VALUE, FUNC_TAG) {
            return Err(mismatch(
                "the function slot at the callback's call",
                format!("{FUNC_VALUE:#x} tagged {FUNC_TAG:#x}"),
                format!("{value:#x} tagged {tag:#x}"),
            ));
        }
        let mut args = Vec::new();
        for (i, kind) in self.arg_kinds.clone().into_iter().enumerate().take(nargs as usize) {
            args.push(decode_slot(cpu, vm, func + slot * (i as u64 + 1), kind, &self.pushed)?);
        }
        self.pushed = args;
        let (tag, value) = number_value_of(vm, inline_result, nargs as usize, self.ret_kind, self.lua_result);
        put_slot(cpu, vm, func, tag, value)?;
        set_lua_top(cpu, vm, func + slot)
    }

    fn kind_of_ctype(&self, ctype: u64) -> Option<ValueKind> {
        if ctype == CTYPE_RET {
            return Some(self.ret_kind);
        }
        let i = ctype.checked_sub(CTYPE_ARGS)? / 16;
        self.arg_kinds.get(i as usize).copied()
    }

    /// The C value a `To*` helper converts: Lua index `idx` (or -1, the callback's result).
    fn source(&self, idx: i64) -> Result<&[u8], Mismatch> {
        if idx == -1 {
            return Ok(self.lua_result);
        }
        usize::try_from(idx - 1).ok().and_then(|i| self.lua_args.get(i)).map(Vec::as_slice).ok_or_else(|| {
            mismatch("Lua index passed to a conversion helper", format!("1..={}", self.lua_args.len()), idx.to_string())
        })
    }

    /// Answers one helper call: reads its arguments, acts, writes its result.
    fn answer(&mut self, cpu: &mut dyn Cpu, h: Helper, target: Target) -> Result<(), Mismatch> {
        let plan = h.plan(target);
        let (_, params) = h.kinds();
        let w = self.w;
        let (args, _) =
            plan_runner::read_incoming(cpu, &plan, params.iter().map(|k| k.size(w as u32) as usize)).map_err(engine)?;
        let arg = |i: usize| word_of(&args[i]);
        let int_arg = |i: usize| i64::from(word_of(&args[i]) as u32 as i32);
        if params.first() == Some(&ValueKind::Pointer) && !matches!(h, Helper::CallbackEnter) && arg(0) != FAKE_L {
            return Err(mismatch(
                format!("L passed to {}", h.name()),
                format!("{FAKE_L:#x}"),
                format!("{:#x}", arg(0)),
            ));
        }
        let ret: Vec<u8> = match h {
            Helper::ArgCount => le(self.lua_args.len() as u64, 4),
            Helper::ArgCountError => {
                return Err(mismatch(
                    "argument count check",
                    "no error",
                    format!("luaffi_argcount_error(expected {}, got {})", int_arg(1), int_arg(2)),
                ));
            }
            Helper::ToI32 | Helper::ToI8 | Helper::ToI16 => widen(self.source(int_arg(1))?, true, 4),
            Helper::ToU32 | Helper::ToU8 | Helper::ToU16 => widen(self.source(int_arg(1))?, false, 4),
            Helper::ToI64 | Helper::ToU64 => widen(self.source(int_arg(1))?, false, 8),
            Helper::ToBool => le(u64::from(self.source(int_arg(1))?.iter().any(|b| *b != 0)), 4),
            Helper::ToF32 | Helper::ToF64 | Helper::ToPtr => self.source(int_arg(1))?.to_vec(),
            Helper::ToRecord => {
                let src = self.source(int_arg(1))?.to_vec();
                let want = self.kind_of_ctype(arg(2)).map(|k| k.size(w as u32) as usize);
                if want != Some(src.len()) {
                    return Err(mismatch(
                        "ctype passed to luaffi_to_record",
                        format!("a type of {} bytes", src.len()),
                        format!("{:#x}", arg(2)),
                    ));
                }
                cpu.write(arg(3), &src).map_err(engine)?;
                vec![]
            }
            Helper::FuncAddr => le(self.func_addr, w),
            Helper::NewResult => {
                let size = self.kind_of_ctype(arg(1)).map(|k| k.size(w as u32)).unwrap_or(0) as usize;
                cpu.write(RESULT_AT, &vec![plan_runner::JUNK; size]).map_err(engine)?;
                self.result_buf = Some(RESULT_AT);
                le(RESULT_AT, w)
            }
            Helper::PushI32
            | Helper::PushU32
            | Helper::PushI64
            | Helper::PushU64
            | Helper::PushF32
            | Helper::PushF64
            | Helper::PushPtr => {
                self.pushed.push(args[1].clone());
                vec![]
            }
            Helper::PushBool => {
                self.pushed.push(vec![u8::from(args[1].iter().any(|b| *b != 0))]);
                vec![]
            }
            Helper::PushRecord => {
                let size = self.kind_of_ctype(arg(1)).map(|k| k.size(w as u32)).unwrap_or(0) as usize;
                let mut v = vec![0; size];
                cpu.read(arg(2), &mut v).map_err(engine)?;
                self.pushed.push(v);
                vec![]
            }
            Helper::CallbackEnter => {
                if arg(0) != CALLBACK_DATA {
                    return Err(mismatch(
                        "callback data passed to luaffi_callback_enter",
                        format!("{CALLBACK_DATA:#x}"),
                        format!("{:#x}", arg(0)),
                    ));
                }
                self.enter_calls += 1;
                if let Some((vm, _)) = self.thunk_stack {
                    // The Lua function.
                    push_lua_slot(cpu, vm, FUNC_TAG, FUNC_VALUE)?;
                }
                le(FAKE_L, w)
            }
            Helper::CallbackCall | Helper::CallbackPcall => {
                if h == Helper::CallbackCall && arg(2) != CALLBACK_DATA {
                    return Err(mismatch(
                        "callback data passed to luaffi_callback_call",
                        format!("{CALLBACK_DATA:#x}"),
                        format!("{:#x}", arg(2)),
                    ));
                }
                if h == Helper::CallbackPcall && (int_arg(2), int_arg(3), arg(4), arg(5)) != (1, 0, 0, 0) {
                    let got = format!("{}, {}, {:#x}, {:#x}", int_arg(2), int_arg(3), arg(4), arg(5));
                    return Err(mismatch("nresults, errfunc, ctx, k passed to lua_pcallk", "1, 0, 0x0, 0x0", got));
                }
                self.call_calls += u32::from(h == Helper::CallbackCall);
                self.called_with = Some(int_arg(1));
                if let Some((vm, inline_result)) = self.thunk_stack {
                    self.call_on_lua_stack(cpu, vm, int_arg(1), inline_result)?;
                }
                // CallbackPcall: the status of a call that did not fail.
                le(0, 4)
            }
            Helper::CallbackResult => {
                if arg(2) != CALLBACK_DATA || int_arg(1) != 0 {
                    return Err(mismatch(
                        "luaffi_callback_result's status and callback data",
                        format!("0, {CALLBACK_DATA:#x}"),
                        format!("{}, {:#x}", int_arg(1), arg(2)),
                    ));
                }
                self.result_calls += 1;
                vec![]
            }
            Helper::ErrnoRestore | Helper::AfterCall => {
                // The state is found through the return type's descriptor.
                if arg(1) != CTYPE_RET {
                    return Err(mismatch(
                        format!("ctype passed to {}", h.name()),
                        format!("{CTYPE_RET:#x} (the return type's)"),
                        format!("{:#x}", arg(1)),
                    ));
                }
                // The thread ErrnoRestore replaced goes back to AfterCall.
                if h == Helper::AfterCall && arg(2) != PREV_L {
                    return Err(mismatch(
                        "the calling thread passed back to luaffi_after_call",
                        format!("{PREV_L:#x}"),
                        format!("{:#x}", arg(2)),
                    ));
                }
                le(PREV_L, w)
            }
            Helper::CallbackLeave => {
                if let Some((vm, _)) = self.thunk_stack {
                    let top = lua_top(cpu, vm)?;
                    set_lua_top(cpu, vm, top - u64::from(vm.slot))?;
                }
                vec![]
            }
            Helper::ErrnoLocation => le(THREAD_ERRNO, w),
        };
        if h == Helper::AfterCall {
            self.after_calls += 1;
        }
        if let (Some((vm, _)), true) = (self.thunk_stack, is_push(h)) {
            // On the mock stack the helper's value is a slot naming what it was given.
            push_lua_slot(cpu, vm, HELPER_TAG, self.pushed.len() as u64 - 1)?;
        }
        // Clobber everything a real helper may clobber, then return its result: code that
        // keeps a value in a volatile register across a helper call fails here.
        plan_runner::clobber_scratch(cpu, target);
        let (rk, _) = h.kinds();
        if rk != ValueKind::Void {
            plan_runner::write_return(cpu, &plan, &ret, None).map_err(engine)?;
        }
        cpu.emulate_ret(u64::from(plan.callee_pops)).map_err(engine)?;
        Ok(())
    }
}

/// A stub's call of its target: the compiled callee [`TARGET_GATE`] stands for, and the
/// alignment the stack pointer must have at the call.
#[derive(Clone, Copy)]
struct TargetCall<'a> {
    callee: u64,
    align: u32,
    /// Where each by-reference argument's pointer is, and the alignment its copy must have
    /// (its type's: the callee may rely on it, as on any object of the type).
    indirect: &'a [(Loc, u32)],
}

/// The pointer locations of `plan`'s by-reference record arguments, with their alignment.
fn indirect_copies(plan: &CallPlan) -> Vec<(Loc, u32)> {
    plan.args
        .iter()
        .filter_map(|a| match (&a.pass, a.value) {
            (ArgPass::Indirect { ptr, .. }, ValueKind::Record { align, .. }) => Some((*ptr, align)),
            (ArgPass::Indirect { ptr, .. }, ValueKind::Int { size: 16, .. }) => Some((*ptr, 16)),
            _ => None,
        })
        .collect()
}

/// Runs from `start` until the harness's return address, answering helper calls; checks the
/// stack alignment at each helper's entry and at the target's.
fn drive(
    cpu: &mut dyn Cpu,
    mock: &mut Mock,
    target: Target,
    start: u64,
    stops: &StopSet,
    target_call: Option<TargetCall<'_>>,
    probe: &mut UnwindProbe,
) -> Result<(), Mismatch> {
    let mut pc = start;
    for _ in 0..10_000 {
        let crate::Stop::Reached(at) = cpu.run(pc, stops, layout::BUDGET).map_err(engine)?;
        if at == layout::MAGIC_RET {
            return Ok(());
        }
        if probe.is_stop(at) {
            probe.check_stop(cpu, at)?;
            pc = at;
            continue;
        }
        // A helper or the target, called from the code: the caller frame as it sees it.
        probe.check_callee_view(cpu)?;
        if let (TARGET_GATE, Some(call)) = (at, target_call) {
            let call_sp = cpu.gpr(Gpr::Rsp) + cpu.mode().word_size();
            if !call_sp.is_multiple_of(u64::from(call.align)) {
                return Err(mismatch(
                    "stack alignment at the call of the target",
                    format!("{} bytes", call.align),
                    format!("sp = {call_sp:#x}"),
                ));
            }
            for &(loc, align) in call.indirect {
                let copy = match loc {
                    Loc::Gpr(g) => cpu.gpr(plan_runner::gpr_of(g.0)),
                    Loc::Stack { offset } => cpu.read_u64(call_sp + u64::from(offset)).map_err(engine)?,
                    Loc::Xmm(_) => continue,
                };
                if !copy.is_multiple_of(u64::from(align)) {
                    return Err(mismatch(
                        "alignment of a by-reference argument's copy",
                        format!("{align} bytes"),
                        format!("copy at {copy:#x}"),
                    ));
                }
            }
            pc = call.callee;
            continue;
        }
        let h = Helper::ALL
            .iter()
            .copied()
            .find(|h| hook_of(*h) == at)
            .ok_or_else(|| mismatch("stop address", "a helper hook", format!("{at:#x}")))?;
        let call_sp = cpu.gpr(Gpr::Rsp) + cpu.mode().word_size();
        let align = u64::from(h.plan(target).stack_align);
        if !call_sp.is_multiple_of(align) {
            return Err(mismatch(
                format!("stack alignment at the call of {}", h.name()),
                format!("{align} bytes"),
                format!("sp = {call_sp:#x}"),
            ));
        }
        mock.answer(cpu, h, target)?;
        pc = cpu.gpr(Gpr::Rip);
    }
    Err(mismatch("helper calls", "a return", "more than 10000 helper calls"))
}

/// The value a callee-saved SSE register holds across a run.
fn xmm_sentinel(x: Xmm) -> u128 {
    0x5B5B_0000_0000_5B5B_5B5B_0000_0000_5B00 | u128::from(x.0) << 4
}

/// Fills the model's callee-saved registers of `target` with sentinels.
fn set_sentinels(cpu: &mut dyn Cpu, target: Target) {
    let mode = cpu.mode();
    for r in target.callee_saved_gprs().iter().map(|r| plan_runner::gpr_of(r.0)) {
        cpu.set_gpr(r, sentinel(r, mode));
    }
    for x in target.callee_saved_xmms() {
        cpu.set_xmm(usize::from(x.0), xmm_sentinel(*x));
    }
}

/// Whether every callee-saved register of `target` still holds its sentinel.
fn check_sentinels(cpu: &dyn Cpu, target: Target) -> Result<(), Mismatch> {
    for r in target.callee_saved_gprs().iter().map(|r| plan_runner::gpr_of(r.0)) {
        let want = sentinel(r, cpu.mode());
        let got = cpu.gpr(r);
        if got != want {
            return Err(mismatch(
                format!("callee-saved {} after the call", r.name(cpu.mode())),
                format!("{want:#x}"),
                format!("{got:#x}"),
            ));
        }
    }
    for x in target.callee_saved_xmms() {
        let (want, got) = (xmm_sentinel(*x), cpu.xmm(usize::from(x.0)));
        if got != want {
            return Err(mismatch(
                format!("callee-saved xmm{} after the call", x.0),
                format!("{want:#x}"),
                format!("{got:#x}"),
            ));
        }
    }
    Ok(())
}

fn is_aggregate(k: ValueKind) -> bool {
    matches!(
        k,
        ValueKind::Record { .. } | ValueKind::ComplexF32 | ValueKind::ComplexF64 | ValueKind::Int { size: 16, .. }
    )
}

/// After an inline stub: the thread's errno got `ffi.errno()`'s value before the call and it
/// was saved back after, the calling thread is put back, and the raising helper ran exactly when a
/// callback error was pending.
fn check_call_slots(cpu: &dyn Cpu, vm: LuaVm, mock: &Mock, inline_values: bool) -> Result<(), Mismatch> {
    let word = |at: u64| {
        let mut b = [0u8; 4];
        cpu.read(at, &mut b).map(|_| u32::from_le_bytes(b)).map_err(engine)
    };
    if word(THREAD_ERRNO)? != ERRNO_BEFORE {
        return Err(mismatch(
            "errno during the call",
            format!("{ERRNO_BEFORE:#x} (restored)"),
            format!("{:#x}", word(THREAD_ERRNO)?),
        ));
    }
    if word(SAVED_ERRNO)? != ERRNO_BEFORE {
        return Err(mismatch(
            "ffi.errno() after the call",
            format!("{ERRNO_BEFORE:#x} (saved)"),
            format!("{:#x}", word(SAVED_ERRNO)?),
        ));
    }
    let want = u32::from(!inline_values);
    if mock.after_calls != want {
        return Err(mismatch(
            "calls of luaffi_after_call (a callback error pending: raise it)",
            want.to_string(),
            mock.after_calls.to_string(),
        ));
    }
    if read_ptr(cpu, vm, CALLING_L)? != PREV_L {
        return Err(mismatch(
            "the calling thread after the call",
            format!("{PREV_L:#x} (put back)"),
            format!("{:#x}", read_ptr(cpu, vm, CALLING_L)?),
        ));
    }
    Ok(())
}

/// Call direction: the backend's stub for `case.plan`, calling the compiled `callee`, with
/// the Lua side presented as `lua` says.
///
/// The target's call must find the stack aligned as the plan says (at least the target's
/// own alignment). A plan asking more than the stub's entry alignment is run once from each
/// entry stack pointer that alignment can't tell apart (`align / target.stack_align()` runs,
/// the entry sp lowered by one step of the target's alignment each), so a stub that merely
/// keeps its entry alignment fails on at least one of them.
pub fn check_stub(
    cpu: &mut dyn Cpu,
    backend: &dyn Backend,
    case: &Case,
    callee: u64,
    rec: RecordBuffer,
    stops: &StopSet,
    lua: LuaStack,
) -> Result<(), Mismatch> {
    let step = backend.target().stack_align();
    let align = case.plan.stack_align.max(step);
    // A by-reference copy may ask more than sp at the call (Win64 `aligned(32)` records):
    // every entry sp the frame's alignment can't tell apart is tried.
    let frame_align = case.plan.frame_align().max(align);
    let indirect = indirect_copies(case.plan);
    (0..frame_align / step).try_for_each(|k| {
        let call = TargetCall { callee, align, indirect: &indirect };
        check_stub_from(cpu, backend, case, call, rec, stops, lua, u64::from(k * step)).map_err(|m| {
            if k == 0 {
                m
            } else {
                Mismatch { what: format!("entry sp lowered by {}: {}", k * step, m.what), ..m }
            }
        })
    })
}

/// [`check_stub`] with the entry stack pointer `skew` bytes below where it starts.
#[allow(clippy::too_many_arguments)] // check_stub's, the target's call and the skew
fn check_stub_from(
    cpu: &mut dyn Cpu,
    backend: &dyn Backend,
    case: &Case,
    call: TargetCall,
    rec: RecordBuffer,
    stops: &StopSet,
    lua: LuaStack,
    skew: u64,
) -> Result<(), Mismatch> {
    let target = backend.target();
    let plan = case.plan;
    let w = plan.ptr_size as usize;
    let (program, top0) = match lua {
        LuaStack::Helpers => (stub_program(plan, 1), None),
        LuaStack::Memory { vm, inline_values } => {
            let inline = listing_inline(vm);
            (
                stub_program_inline(plan, 1, Some(&inline)),
                Some((vm, lay_out_lua_stack(cpu, &inline, inline_values, case, TARGET_GATE)?)),
            )
        }
    };
    let code = backend
        .stub_code(&program, CODE_BASE, &code_env(plan.args.len()))
        .map_err(|e| mismatch("stub generation", "code", e.to_string()))?;
    cpu.write_code(CODE_BASE, &code.bytes).map_err(engine)?;
    let mut probe = UnwindProbe::new(target, &code.bytes, CODE_BASE, code.unwind)?;
    let stops = &probe.stop_set(stops);
    cpu.reset_registers();
    cpu.write_u32(rec.len, 0).map_err(engine)?;
    set_sentinels(cpu, target);
    let entry = lua_cfunction_plan(target);
    let sp0 = layout::STACK_TOP - u64::from(entry.frame_bytes()).div_ceil(16) * 16 - skew;
    plan_runner::place_args(cpu, &entry, &[le(FAKE_L, w)], sp0, None).map_err(engine)?;
    cpu.set_gpr(Gpr::Rsp, sp0);
    cpu.push(layout::MAGIC_RET).map_err(engine)?;
    let mut mock = Mock {
        w,
        arg_kinds: plan.args.iter().map(|a| a.value).collect(),
        ret_kind: plan.ret.value,
        lua_args: case.args,
        lua_result: &[],
        // An inline stub reads the address from the closure instead.
        func_addr: if top0.is_some() { 0 } else { TARGET_GATE },
        pushed: Vec::new(),
        result_buf: None,
        called_with: None,
        after_calls: 0,
        thunk_stack: None,
        enter_calls: 0,
        call_calls: 0,
        result_calls: 0,
    };
    // The run starts at the stub's first byte, so that stop is checked here.
    probe.check_stop(cpu, CODE_BASE)?;
    drive(cpu, &mut mock, target, CODE_BASE, stops, Some(call), &mut probe)?;
    let results = cpu.gpr(Gpr::Rax) as u32;
    let want_results = u32::from(plan.ret.value != ValueKind::Void);
    if results != want_results {
        return Err(mismatch("the stub's result count (eax)", want_results.to_string(), results.to_string()));
    }
    if cpu.gpr(Gpr::Rsp) != sp0 {
        return Err(mismatch(
            "stack pointer after the stub returned",
            format!("{sp0:#x}"),
            format!("{:#x}", cpu.gpr(Gpr::Rsp)),
        ));
    }
    check_sentinels(cpu, target)?;
    if cpu.x87_depth() != 0 {
        return Err(mismatch("x87 stack after the stub", "empty", format!("{} values", cpu.x87_depth())));
    }
    let recorded = plan_runner::take_record(cpu, rec)?;
    let mut at = 0;
    for (i, (bytes, mask)) in case.args.iter().zip(case.arg_masks).enumerate() {
        let got = recorded.get(at..at + bytes.len()).unwrap_or(&[]);
        compare(&format!("arg {i} ({}) as the callee received it", plan.args[i].value), bytes, got, mask)?;
        at += bytes.len();
    }
    if let LuaStack::Memory { vm, inline_values } = lua {
        check_call_slots(cpu, vm, &mock, inline_values)?;
    }
    let kind = plan.ret.value;
    let pushed_inline = match top0 {
        Some((vm, top0)) => pushed_on_lua_stack(cpu, vm, top0, kind)?,
        None => Vec::new(),
    };
    if (kind == ValueKind::Void || is_aggregate(kind)) && !pushed_inline.is_empty() {
        return Err(mismatch("numbers pushed inline", "none", pushed_inline.len().to_string()));
    }
    if kind == ValueKind::Void {
        return Ok(());
    }
    let got = if is_aggregate(kind) {
        let buf = mock.result_buf.ok_or_else(|| mismatch("result cdata", "luaffi_new_result called", "not called"))?;
        let mut v = vec![0; case.ret.len()];
        cpu.read(buf, &mut v).map_err(engine)?;
        v
    } else {
        let mut pushed = mock.pushed.clone();
        pushed.extend(pushed_inline);
        if pushed.len() != 1 {
            return Err(mismatch("values the stub pushed", "1", pushed.len().to_string()));
        }
        let mut v = pushed.swap_remove(0);
        v.truncate(case.ret.len());
        v
    };
    compare("the value the stub returned to Lua", case.ret, &got, case.ret_mask)
}

/// Calls of the helpers an inline thunk's entry, Lua call and result check may make.
#[derive(Debug, PartialEq, Eq)]
struct ThunkHelperCalls {
    enter: u32,
    call: u32,
    result: u32,
}

/// The paths a mock state for an inline thunk leads to.
#[derive(Clone, Copy, Debug)]
struct ThunkPaths {
    /// The entry goes to `luaffi_callback_enter`.
    slow_entry: bool,
    /// A callback error is pending: the call goes to `luaffi_callback_call`.
    pending: bool,
}

/// Lays out the mock state an inline thunk of `nargs` arguments runs on: a number of its own
/// below the thunk's part of the stack (a read of the wrong slot takes the inline path with
/// the wrong value), `L->top`, `L->ci->top`, `stack_last`, the threads and the callback
/// record. With `inline_values` every inline path is open (the thread from `main_l` for an
/// even count, from `calling_l` for an odd one); otherwise, by `nargs % 4`, one thing
/// closes the inline entry (0: `ci->top` below the room, 1: `stack_last` exactly the room
/// above `top`, 2: no function value in the record) or a callback error is pending (3).
fn lay_out_thunk_lua_stack(
    cpu: &mut dyn Cpu,
    vm: LuaVm,
    inline_values: bool,
    nargs: usize,
) -> Result<ThunkPaths, Mismatch> {
    let slot = u64::from(vm.slot);
    cpu.write(LUA_REGION, &vec![0; LUA_FIXED_SIZE as usize]).map_err(engine)?;
    put_slot(cpu, vm, LUA_STACK, vm.float_tag, 12345.0f64.to_bits())?;
    let top = LUA_STACK + slot;
    set_lua_top(cpu, vm, top)?;
    let room = slot * (nargs as u64 + 1 + u64::from(abi_model::lua::steps::CALLBACK_EXTRA_SLOTS));
    let case = if inline_values { None } else { Some(nargs % 4) };
    let stack_last = if case == Some(1) { top + room } else { LUA_REGION + LUA_FIXED_SIZE - 4 * slot };
    let ci_top = if case == Some(0) { top + room - slot } else { stack_last };
    if top + room >= LUA_REGION + LUA_FIXED_SIZE - 4 * slot {
        return Err(mismatch("mock Lua stack", "room for the callback", format!("{nargs} arguments")));
    }
    write_ptr(cpu, vm, FAKE_L + u64::from(vm.room.stack_last), stack_last)?;
    write_ptr(cpu, vm, FAKE_L + u64::from(vm.room.ci), LUA_CI)?;
    write_ptr(cpu, vm, LUA_CI + u64::from(vm.room.ci_top), ci_top)?;
    let from_main = inline_values && nargs.is_multiple_of(2);
    write_ptr(cpu, vm, CALLING_L, if from_main { 0 } else { FAKE_L })?;
    write_ptr(cpu, vm, MAIN_L, if from_main { FAKE_L } else { 0xDEAD_0000 })?;
    let f = abi_model::lua::curated::LISTING_CALLBACK;
    write_value(cpu, CALLBACK_DATA + u64::from(f.value_at), FUNC_VALUE)?;
    let tag = if case == Some(2) { abi_model::lua::steps::CallbackFunc::NONE } else { FUNC_TAG };
    cpu.write(CALLBACK_DATA + u64::from(f.tag_at), &tag.to_le_bytes()).map_err(engine)?;
    let pending = case == Some(3);
    cpu.write(PENDING_ERROR, &(if pending { 7 } else { NO_PENDING }).to_le_bytes()).map_err(engine)?;
    Ok(ThunkPaths { slow_entry: matches!(case, Some(0..=2)), pending })
}

/// Callback direction: the compiled `caller` calls the backend's thunk for `case.plan`.
///
/// With [`LuaStack::Memory`], the thunk of [`thunk_program_inline`] pushes its number
/// arguments onto a mock Lua stack (the push helpers write a slot there too, so the order is
/// kept) and converts a number result from it; `inline_values` decides whether the Lua
/// function's result is a number the inline conversion takes or a value only the helper does.
#[allow(clippy::too_many_arguments)] // check_stub's parts plus the caller's entry plan
pub fn check_thunk(
    cpu: &mut dyn Cpu,
    backend: &dyn Backend,
    case: &Case,
    caller: u64,
    entry_plan: &CallPlan,
    rec: RecordBuffer,
    stops: &StopSet,
    lua: LuaStack,
) -> Result<(), Mismatch> {
    let target = backend.target();
    let plan = case.plan;
    let w = plan.ptr_size as usize;
    let frame = CallbackFrame::from_plan(plan);
    let (program, thunk_stack, expect) = match lua {
        LuaStack::Helpers => (thunk_program(&frame), None, None),
        LuaStack::Memory { vm, inline_values } => {
            let inline = listing_inline(vm);
            let expect = lay_out_thunk_lua_stack(cpu, vm, inline_values, plan.args.len())?;
            (thunk_program_inline(&frame, Some(&inline)), Some((vm, inline_values)), Some(expect))
        }
    };
    let code = backend
        .thunk_code(&program, CODE_BASE, &code_env(plan.args.len()))
        .map_err(|e| mismatch("thunk generation", "code", e.to_string()))?;
    cpu.write_code(CODE_BASE, &code.bytes).map_err(engine)?;
    let mut probe = UnwindProbe::new(target, &code.bytes, CODE_BASE, code.unwind)?;
    let stops = &probe.stop_set(stops);
    cpu.reset_registers();
    cpu.write_u32(rec.len, 0).map_err(engine)?;
    let sp0 = layout::STACK_TOP - u64::from(entry_plan.frame_bytes()).div_ceil(16) * 16;
    plan_runner::place_args(cpu, entry_plan, &[le(CODE_BASE, w)], sp0, None).map_err(engine)?;
    cpu.set_gpr(Gpr::Rsp, sp0);
    cpu.push(layout::MAGIC_RET).map_err(engine)?;
    set_sentinels(cpu, target);
    let mut mock = Mock {
        w,
        arg_kinds: plan.args.iter().map(|a| a.value).collect(),
        ret_kind: plan.ret.value,
        lua_args: &[],
        lua_result: case.ret,
        func_addr: 0,
        pushed: Vec::new(),
        result_buf: None,
        called_with: None,
        after_calls: 0,
        thunk_stack,
        enter_calls: 0,
        call_calls: 0,
        result_calls: 0,
    };
    drive(cpu, &mut mock, target, caller, stops, None, &mut probe)?;
    if let Some((vm, inline_values)) = thunk_stack {
        let (want, top) = (LUA_STACK + u64::from(vm.slot), lua_top(cpu, vm)?);
        if top != want {
            return Err(mismatch("L->top after the callback", format!("{want:#x} (as before)"), format!("{top:#x}")));
        }
        if let Some(expect) = expect {
            // The helpers of the paths the mock state leads to, and no others.
            let kind = plan.ret.value;
            // What the mock Lua function returned: a number the thunk takes without the check?
            let (tag, _) = number_value_of(vm, inline_values, plan.args.len(), kind, case.ret);
            let number_result = vm.converts_inline(kind) && (Some(tag) == vm.int_tag || tag == vm.float_tag);
            let want = ThunkHelperCalls {
                enter: expect.slow_entry.into(),
                call: expect.pending.into(),
                result: u32::from(!expect.pending && kind != ValueKind::Void && !number_result),
            };
            let got = ThunkHelperCalls { enter: mock.enter_calls, call: mock.call_calls, result: mock.result_calls };
            if got != want {
                return Err(mismatch(
                    "helper calls of the thunk's entry, Lua call and result check",
                    format!("{want:?}"),
                    format!("{got:?}"),
                ));
            }
        }
    }
    if cpu.gpr(Gpr::Rsp) != sp0 + u64::from(entry_plan.callee_pops) {
        return Err(mismatch(
            "the caller's stack pointer after it returned",
            format!("{sp0:#x}"),
            format!("{:#x}", cpu.gpr(Gpr::Rsp)),
        ));
    }
    check_sentinels(cpu, target)?;
    if cpu.x87_depth() != 0 {
        return Err(mismatch("x87 stack after the caller returned", "empty", format!("{} values", cpu.x87_depth())));
    }
    if mock.called_with != Some(plan.args.len() as i64) {
        return Err(mismatch(
            "arguments given to the Lua function",
            plan.args.len().to_string(),
            format!("{:?}", mock.called_with),
        ));
    }
    if mock.pushed.len() != case.args.len() {
        return Err(mismatch("values the thunk pushed", case.args.len().to_string(), mock.pushed.len().to_string()));
    }
    for (i, ((bytes, mask), got)) in case.args.iter().zip(case.arg_masks).zip(&mock.pushed).enumerate() {
        let mut got = got.clone();
        got.truncate(bytes.len());
        compare(&format!("arg {i} ({}) as the thunk pushed it", plan.args[i].value), bytes, &got, mask)?;
    }
    let recorded = plan_runner::take_record(cpu, rec)?;
    compare("return value as the caller received it", case.ret, &recorded, case.ret_mask)
}
