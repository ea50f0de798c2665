//! `luaffi-bench`: per-call cost of calls through generated stubs against hand-written
//! `lua_CFunction` bindings doing the same work on the same embedded Lua (the physical
//! limit), callback cost against a hand-written C loop calling `lua_call` (and, to show
//! what the protection costs, one calling `lua_pcall`: a callback runs its function
//! protected, so that an error does not unwind through C frames), and the time and code
//! size of one stub. Run by `cargo xtask bench` (release build); prints a table.
//!
//! Every measurement is a Lua loop timed with `os.clock`, the best of [`ROUNDS`] interleaved
//! rounds; the bare loop (no call) is subtracted from both sides, so a figure is the cost of
//! one call as a Lua program sees it. Beside it, the cost of calling an empty Lua function
//! (Lua's own call machinery, which both sides pay) and the ratio without it.
//!
//! The C functions are exported by this binary (linked with `-rdynamic`, see build.rs) and
//! called as `ffi.C.bench_add` etc., the path a program calling a library takes. One more
//! row calls `add` through a function pointer cdata (`ffi.cast`), the `__call` path.

use std::os::raw::{c_char, c_int, c_void};
use std::time::Instant;

use abi_model::{CallConv, FuncType, IntKind, Param, QualType};
use lua_adapter::native::call::{build_stub, stub_program_for};
use lua_adapter::native::state::{CallMode, State};
use lua_adapter::surface::host::HostState;
use mlua::ffi;

/// The C functions both sides call, exported for `ffi.C`.
#[inline(never)]
#[no_mangle]
pub extern "C" fn bench_add(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}

#[inline(never)]
#[no_mangle]
pub extern "C" fn bench_mix(a: f64, b: i32, c: f64, d: i64) -> f64 {
    a + b as f64 * c - d as f64
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Vec2 {
    pub x: f64,
    pub y: f64,
}

#[inline(never)]
#[no_mangle]
pub extern "C" fn bench_dot(a: Vec2, b: Vec2) -> f64 {
    a.x * b.x + a.y * b.y
}

/// `int loop(int (*f)(int), int n)`: C calling a function pointer n times.
#[inline(never)]
#[no_mangle]
pub extern "C" fn bench_loop(f: extern "C" fn(c_int) -> c_int, n: c_int) -> c_int {
    let mut s: c_int = 0;
    for i in 0..n {
        s = s.wrapping_add(f(i));
    }
    s
}

unsafe extern "C-unwind" fn hand_add(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: registered with `create_c_function`, called by Lua with two integer
    // arguments, checked with luaL_checkinteger.
    unsafe {
        let a = ffi::luaL_checkinteger(l, 1) as i32;
        let b = ffi::luaL_checkinteger(l, 2) as i32;
        ffi::lua_pushinteger(l, bench_add(a, b) as ffi::lua_Integer);
        1
    }
}

unsafe extern "C-unwind" fn hand_mix(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: registered with `create_c_function`, called by Lua with its arguments
    // checked with luaL_check*.
    unsafe {
        let a = ffi::luaL_checknumber(l, 1);
        let b = ffi::luaL_checkinteger(l, 2) as i32;
        let c = ffi::luaL_checknumber(l, 3);
        let d = ffi::luaL_checkinteger(l, 4);
        ffi::lua_pushnumber(l, bench_mix(a, b, c, d));
        1
    }
}

unsafe extern "C-unwind" fn hand_strlen(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: registered with `create_c_function`, called by Lua with a string argument,
    // checked with luaL_checklstring.
    unsafe {
        let s = ffi::luaL_checklstring(l, 1, std::ptr::null_mut());
        ffi::lua_pushinteger(l, libc::strlen(s as *const c_char) as ffi::lua_Integer);
        1
    }
}

/// The registry reference of [`hand_strlen_exact`]'s metatable (made by its first result).
#[cfg(any(feature = "lua51", feature = "lua52"))]
static U64_META: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// [`hand_strlen`] as a binding whose `size_t` result stays exact on every Lua, as the
/// module's does: on Lua 5.1 and 5.2, whose numbers are doubles (exact to 2^53 only), a
/// userdata holding the `u64` with a metatable of its own, what the module's boxed `uint64_t`
/// cdata is; on 5.3+ an integer, as [`hand_strlen`].
unsafe extern "C-unwind" fn hand_strlen_exact(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: registered with `create_c_function`, called by Lua with a string
    // argument, checked with luaL_checklstring; the new userdata has room for a u64, and a C
    // function starts with room for the 3 values pushed at most.
    unsafe {
        let s = ffi::luaL_checklstring(l, 1, std::ptr::null_mut());
        let n = libc::strlen(s as *const c_char) as u64;
        #[cfg(any(feature = "lua51", feature = "lua52"))]
        {
            let p = ffi::lua_newuserdata(l, 8) as *mut u64;
            p.write(n);
            set_kept_metatable(l, &U64_META, |l| {
                ffi::lua_createtable(l, 0, 1);
                ffi::lua_pushstring(l, c"uint64_t".as_ptr());
                ffi::lua_setfield(l, -2, c"__name".as_ptr());
            });
        }
        #[cfg(not(any(feature = "lua51", feature = "lua52")))]
        ffi::lua_pushinteger(l, n as ffi::lua_Integer);
        1
    }
}

/// The hand-written struct binding reads two 16-byte userdata (what a binding would
/// take for a struct).
unsafe extern "C-unwind" fn hand_dot(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a lua_CFunction; both arguments are full userdata of 16 bytes.
    unsafe {
        let a = ffi::lua_touserdata(l, 1) as *const Vec2;
        let b = ffi::lua_touserdata(l, 2) as *const Vec2;
        if a.is_null() || b.is_null() {
            ffi::luaL_argerror(l, 1, c"vec2 expected".as_ptr());
        }
        ffi::lua_pushnumber(l, bench_dot(*a, *b));
        1
    }
}

/// [`hand_dot`] as a binding that must not read past a wrong userdata writes it: each argument
/// checked to be a vec2, by its metatable (the registry's, compared by identity: cheaper than
/// `luaL_checkudata`'s lookup by name), as the module checks a record argument's type.
unsafe extern "C-unwind" fn hand_dot_checked(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a lua_CFunction with 3 free stack slots; an argument is read as a Vec2 only once
    // its metatable is the vec2 one, which only `hand_new_vec2`'s 16-byte userdata have.
    unsafe {
        let meta = VEC2_META.load(std::sync::atomic::Ordering::Relaxed);
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, meta as ffi::lua_Integer);
        for i in 1..=2 {
            if ffi::lua_getmetatable(l, i) == 0 || ffi::lua_rawequal(l, -1, -2) == 0 {
                ffi::luaL_argerror(l, i, c"vec2 expected".as_ptr());
            }
            ffi::lua_settop(l, -2);
        }
        ffi::lua_settop(l, -2);
        let a = ffi::lua_touserdata(l, 1) as *const Vec2;
        let b = ffi::lua_touserdata(l, 2) as *const Vec2;
        ffi::lua_pushnumber(l, bench_dot(*a, *b));
        1
    }
}

/// The hand-written binding of a function pointer, as a binding without an FFI would make
/// one: a userdata holding the pointer, called through its metatable's `__call` (so it pays
/// Lua's `__call` dispatch, as a function-pointer cdata does).
unsafe extern "C-unwind" fn hand_fnptr_call(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: the `__call` of the userdata `hand_new_fnptr` makes, which holds an `int (*)(int,
    // int)`; Lua passes that userdata at index 1 and the arguments after it.
    unsafe {
        let p = ffi::lua_touserdata(l, 1) as *const extern "C" fn(i32, i32) -> i32;
        if p.is_null() {
            ffi::luaL_argerror(l, 1, c"function pointer expected".as_ptr());
        }
        let a = ffi::luaL_checkinteger(l, 2) as i32;
        let b = ffi::luaL_checkinteger(l, 3) as i32;
        ffi::lua_pushinteger(l, (*p)(a, b) as ffi::lua_Integer);
        1
    }
}

unsafe extern "C-unwind" fn hand_new_fnptr(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: registered with `create_c_function`; the new userdata has room for a
    // function pointer.
    unsafe {
        let p = ffi::lua_newuserdata(l, std::mem::size_of::<usize>()) as *mut extern "C" fn(i32, i32) -> i32;
        p.write(bench_add);
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushcfunction(l, hand_fnptr_call);
        ffi::lua_setfield(l, -2, c"__call".as_ptr());
        ffi::lua_setmetatable(l, -2);
        1
    }
}

/// Sets on the userdata at the top the metatable kept in the registry under the reference in
/// `slot`, which `make` (pushing one new table, with 2 free slots) makes the first time.
///
/// # Safety
/// `l` valid with 3 free slots and a userdata at the top; `make` follows that contract.
unsafe fn set_kept_metatable(
    l: *mut ffi::lua_State,
    slot: &std::sync::atomic::AtomicI32,
    make: unsafe fn(*mut ffi::lua_State),
) {
    // SAFETY: valid-L (the caller's contract): `make` pushes one table, which luaL_ref pops; the
    // metatable pushed from the registry is popped by lua_setmetatable.
    unsafe {
        let mut meta = slot.load(std::sync::atomic::Ordering::Relaxed);
        if meta == 0 {
            make(l);
            meta = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
            slot.store(meta, std::sync::atomic::Ordering::Relaxed);
        }
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, meta as ffi::lua_Integer);
        ffi::lua_setmetatable(l, -2);
    }
}

/// The registry reference of the hand-written vec2's metatable (made by the first vec2).
static VEC2_META: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

unsafe extern "C-unwind" fn hand_new_vec2(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: registered with `create_c_function`, called by Lua with two number
    // arguments; the new userdata has room for a Vec2.
    unsafe {
        let v = Vec2 { x: ffi::luaL_checknumber(l, 1), y: ffi::luaL_checknumber(l, 2) };
        let p = ffi::lua_newuserdata(l, 16) as *mut Vec2;
        p.write(v);
        set_kept_metatable(l, &VEC2_META, |l| {
            ffi::lua_createtable(l, 0, 2);
            ffi::lua_pushcfunction(l, hand_vec2_index);
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            ffi::lua_pushcfunction(l, hand_vec2_newindex);
            ffi::lua_setfield(l, -2, c"__newindex".as_ptr());
        });
        1
    }
}

/// The field of the hand-written vec2 named by the string at index 2.
unsafe fn hand_vec2_field(l: *mut ffi::lua_State) -> *mut f64 {
    // SAFETY: a metamethod of the hand-written vec2: index 1 is its 16-byte userdata.
    unsafe {
        let p = ffi::lua_touserdata(l, 1) as *mut Vec2;
        let mut len = 0;
        let k = ffi::luaL_checklstring(l, 2, &mut len) as *const u8;
        match std::slice::from_raw_parts(k, len) {
            b"x" => &raw mut (*p).x,
            b"y" => &raw mut (*p).y,
            _ => ffi::luaL_argerror(l, 2, c"no such field".as_ptr()) as usize as *mut f64,
        }
    }
}

unsafe extern "C-unwind" fn hand_vec2_index(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: `__index` of the hand-written vec2.
    unsafe {
        ffi::lua_pushnumber(l, *hand_vec2_field(l));
        1
    }
}

unsafe extern "C-unwind" fn hand_vec2_newindex(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: `__newindex` of the hand-written vec2.
    unsafe {
        *hand_vec2_field(l) = ffi::luaL_checknumber(l, 3);
        0
    }
}

/// The registry reference of the metatable of [`hand_qsort_double`]'s pointer boxes (made by
/// the first box).
static DPTR_META: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
/// The state of the running [`hand_qsort_double`]: qsort's comparator has no context argument.
static QSORT_STATE: std::sync::atomic::AtomicPtr<ffi::lua_State> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());
/// Whether the Lua comparator of the running [`hand_qsort_double`] raised an error (left at the
/// top of its stack); the comparisons after it return 0 without calling it.
static QSORT_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" {
    /// The C library's qsort, the one `ffi.C.qsort` calls.
    fn qsort(
        base: *mut c_void,
        n: usize,
        size: usize,
        cmp: unsafe extern "C" fn(*const c_void, *const c_void) -> c_int,
    );
}

/// `__index` of a hand-written `const double *` box: `p[k]` for an integer `k`.
unsafe extern "C-unwind" fn hand_dptr_index(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: `__index` of the boxes `hand_compare` makes: index 1 holds a pointer into the
    // array being sorted. Like a hand binding, it trusts `k` (the comparator reads [0]).
    unsafe {
        let p = *(ffi::lua_touserdata(l, 1) as *const *const f64);
        let k = ffi::luaL_checkinteger(l, 2);
        ffi::lua_pushnumber(l, *p.offset(k as isize));
        1
    }
}

/// Pushes a new full userdata holding `p`, with the `const double *` box metatable.
///
/// # Safety
/// `l` valid with 4 free slots.
unsafe fn push_dptr(l: *mut ffi::lua_State, p: *const c_void) {
    // SAFETY: valid-L (the caller's contract); the new userdata has room for a pointer.
    unsafe {
        (ffi::lua_newuserdata(l, std::mem::size_of::<usize>()) as *mut *const c_void).write(p);
        set_kept_metatable(l, &DPTR_META, |l| {
            ffi::lua_createtable(l, 0, 1);
            ffi::lua_pushcfunction(l, hand_dptr_index);
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
        });
    }
}

/// The comparator [`hand_qsort_double`] gives qsort: the Lua function (stack index 3) called
/// with the two elements boxed as `const double *` userdata, under `lua_pcall` as a callback is.
/// It boxes outside the protection, as a hand binding would (an out-of-memory error there
/// would unwind through qsort): the baseline is the cheapest plausible binding, not a safe one.
unsafe extern "C" fn hand_compare(a: *const c_void, b: *const c_void) -> c_int {
    use std::sync::atomic::Ordering::Relaxed;
    if QSORT_FAILED.load(Relaxed) {
        return 0;
    }
    let l = QSORT_STATE.load(Relaxed);
    // SAFETY: `l` is the state of the running `hand_qsort_double`, whose stack holds the
    // function at index 3 and nothing above it between comparisons.
    unsafe {
        ffi::luaL_checkstack(l, 5, std::ptr::null());
        ffi::lua_pushvalue(l, 3);
        push_dptr(l, a);
        push_dptr(l, b);
        if ffi::lua_pcall(l, 2, 1, 0) != ffi::LUA_OK {
            QSORT_FAILED.store(true, Relaxed);
            return 0;
        }
        let r = ffi::lua_tointegerx(l, -1, std::ptr::null_mut()) as c_int;
        ffi::lua_settop(l, 3);
        r
    }
}

/// `qsort_double(address, n, f)`: the C library's qsort over the `n` doubles at `address` (a
/// number), comparing with the Lua function `f(a, b)` that gets each element as a
/// `const double *` box indexable with `[0]`: what `ffi.C.qsort` with a
/// `int (*)(const double *, const double *)` callback does, written by hand.
unsafe extern "C-unwind" fn hand_qsort_double(l: *mut ffi::lua_State) -> c_int {
    use std::sync::atomic::Ordering::Relaxed;
    // SAFETY: cfunction: registered with `create_c_function`, called by Lua with the address of
    // `n` doubles the caller owns; the comparator runs on this state while qsort runs.
    unsafe {
        let base = ffi::luaL_checknumber(l, 1) as usize as *mut c_void;
        let n = ffi::luaL_checkinteger(l, 2) as usize;
        ffi::luaL_checktype(l, 3, ffi::LUA_TFUNCTION);
        ffi::lua_settop(l, 3);
        QSORT_STATE.store(l, Relaxed);
        QSORT_FAILED.store(false, Relaxed);
        qsort(base, n, std::mem::size_of::<f64>(), hand_compare);
        if QSORT_FAILED.load(Relaxed) {
            ffi::lua_error(l);
        }
        0
    }
}

/// The hand-written callback path: C loops calling a Lua function `(f, n)`, with `lua_call`,
/// or with `lua_pcall` when `protected` (the protection callbacks have: an error in the Lua
/// function must not unwind through C frames; what a callback pays beyond this is the FFI's).
unsafe fn c_loop(l: *mut ffi::lua_State, protected: bool) -> c_int {
    // SAFETY: inside a lua_CFunction called with (f, n).
    unsafe {
        let n = ffi::luaL_checkinteger(l, 2);
        let mut s: i64 = 0;
        for i in 0..n {
            ffi::lua_pushvalue(l, 1);
            ffi::lua_pushinteger(l, i);
            if !protected {
                ffi::lua_call(l, 1, 1);
            } else if ffi::lua_pcall(l, 1, 1, 0) != ffi::LUA_OK {
                ffi::lua_error(l);
            }
            s += ffi::lua_tointegerx(l, -1, std::ptr::null_mut()) as i32 as i64;
            ffi::lua_settop(l, 2);
        }
        ffi::lua_pushinteger(l, s);
        1
    }
}

unsafe extern "C-unwind" fn hand_loop(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: registered with `create_c_function`, called by Lua with c_loop calls the
    // function at index 1 with a valid-L.
    unsafe { c_loop(l, false) }
}

unsafe extern "C-unwind" fn hand_loop_pcall(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: registered with `create_c_function`, called by Lua with c_loop calls the
    // function at index 1 with a valid-L.
    unsafe { c_loop(l, true) }
}

const SCRIPT: &str = r#"
local ffi = require "ffi"
ffi.cdef [[
size_t strlen(const char *); typedef struct { double x, y; } vec2;
int bench_add(int, int); double bench_mix(double, int, double, int64_t);
double bench_dot(vec2, vec2); int bench_loop(int (*)(int), int);
]]
local add, mix, dot, loop = ffi.C.bench_add, ffi.C.bench_mix, ffi.C.bench_dot, ffi.C.bench_loop
local add_ptr = ffi.cast("int (*)(int, int)", ADDR.add)
local strlen = ffi.C.strlen
-- Both sides are locals (a global would cost the hand-written side a table lookup per call).
local hand_add, hand_mix, hand_strlen, hand_dot, hand_new_vec2, hand_loop, hand_loop_pcall = hand_add, hand_mix, hand_strlen, hand_dot, hand_new_vec2, hand_loop, hand_loop_pcall
local hand_dot_checked, hand_strlen_exact = hand_dot_checked, hand_strlen_exact
local hand_new_fnptr = hand_new_fnptr
local N = N
local ROUNDS = ROUNDS
local function once(f)
  local t = os.clock(); f(); return os.clock() - t
end
local empty = function() end
local bare_loop = function() for i = 1, N do end end
local empty_loop = function() for i = 1, N do empty(i, 2) end end
local r = {}
-- The loops take turns in every round, so a slow stretch of this shared machine hits all of
-- them alike; the best round of each counts. A call's cost is its loop minus the bare loop;
-- the cost of calling an empty Lua function (Lua's own call machinery, which both sides pay)
-- is measured alike and reported beside.
local function pair(name, ours, hand)
  local bo, bh, bb, be = math.huge, math.huge, math.huge, math.huge
  for _ = 1, ROUNDS do
    bo = math.min(bo, once(ours))
    bh = math.min(bh, once(hand))
    bb = math.min(bb, once(bare_loop))
    be = math.min(be, once(empty_loop))
  end
  r[#r + 1] = { name, (bo - bb) / N * 1e9, (bh - bb) / N * 1e9, (be - bb) / N * 1e9 }
end
pair("int add(int, int)", function() for i = 1, N do add(i, 2) end end,
                          function() for i = 1, N do hand_add(i, 2) end end)
pair("add through a function pointer cdata", function() for i = 1, N do add_ptr(i, 2) end end,
                          function() for i = 1, N do hand_add(i, 2) end end)
local hand_add_ptr = hand_new_fnptr()
pair("  the same against a hand-written __call", function() for i = 1, N do add_ptr(i, 2) end end,
                          function() for i = 1, N do hand_add_ptr(i, 2) end end)
pair("double mix(double, int, double, int64_t)", function() for i = 1, N do mix(1.5, i, 2.5, 7) end end,
                          function() for i = 1, N do hand_mix(1.5, i, 2.5, 7) end end)
local s = "hello, benchmark"
pair("strlen(lua string)", function() for i = 1, N do strlen(s) end end,
                          function() for i = 1, N do hand_strlen(s) end end)
pair("  the same against a hand binding with an exact result", function() for i = 1, N do strlen(s) end end,
                          function() for i = 1, N do hand_strlen_exact(s) end end)
local va, vb = ffi.new("vec2", 1, 2), ffi.new("vec2", 3, 4)
local ha, hb = hand_new_vec2(1, 2), hand_new_vec2(3, 4)
pair("double dot(vec2, vec2) by value", function() for i = 1, N do dot(va, vb) end end,
                          function() for i = 1, N do hand_dot(ha, hb) end end)
pair("  the same against a hand binding checking types", function() for i = 1, N do dot(va, vb) end end,
                          function() for i = 1, N do hand_dot_checked(ha, hb) end end)
local cb = ffi.cast("int (*)(int)", function(i) return i end)
local lf = function(i) return i end
local tl, th, tp = math.huge, math.huge, math.huge
for _ = 1, ROUNDS do
  tl = math.min(tl, once(function() loop(cb, N) end))
  th = math.min(th, once(function() hand_loop(lf, N) end))
  tp = math.min(tp, once(function() hand_loop_pcall(lf, N) end))
end
r[#r + 1] = { "callback int (*)(int), C loop", tl / N * 1e9, th / N * 1e9, 0 }
r[#r + 1] = { "  the same against lua_pcall in the loop", tl / N * 1e9, tp / N * 1e9, 0 }
return r
"#;

/// The workloads run here and under LuaJIT (see the script's head).
const WORKLOADS: &str = include_str!("bench-workloads.lua");

/// Rounds per measurement; the best counts.
const ROUNDS: u32 = 15;

/// The options `cargo xtask bench` passes: `[calls per loop] [--quick] [--reference FILE]`.
struct Options {
    /// Calls per timed loop in the call table.
    calls: i64,
    /// Workloads at a tenth of their size, fewer rounds.
    quick: bool,
    /// Where the LuaJIT `-joff` reference rows are kept between the runs of one bench (one
    /// per Lua version): read when the file exists, else measured and written.
    reference: Option<std::path::PathBuf>,
}

fn options() -> Options {
    let mut o = Options { calls: 2_000_000, quick: false, reference: None };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--reference" => o.reference = args.next().map(Into::into),
            n => o.calls = n.parse().unwrap_or_else(|_| panic!("luaffi-bench: unknown argument {n}")),
        }
    }
    if o.quick && o.calls == 2_000_000 {
        o.calls = 300_000;
    }
    o
}

fn main() {
    let opts = options();
    let n = opts.calls;
    // As the `luaffi` command makes its state (Lua's own allocator, not mlua's counting one).
    let lua = HostState::new().expect("a Lua state");
    lua.load_std_libs(mlua::StdLib::ALL_SAFE).expect("standard libraries");
    let ffi_mod = lua_adapter::surface::module::open(&lua).expect("ffi");
    lua.load("package.loaded.ffi = ...").call::<()>(ffi_mod).expect("preload");
    let g = lua.globals();
    let addr = lua.create_table().unwrap();
    addr.set("add", mlua::LightUserData(bench_add as *const () as *mut c_void)).unwrap();
    g.set("ADDR", addr).unwrap();
    g.set("N", n).unwrap();
    g.set("ROUNDS", ROUNDS).unwrap();
    let hand = lua.create_table().unwrap();
    for (name, f) in [
        ("hand_add", hand_add as unsafe extern "C-unwind" fn(*mut ffi::lua_State) -> c_int),
        ("hand_mix", hand_mix),
        ("hand_strlen", hand_strlen),
        ("hand_strlen_exact", hand_strlen_exact),
        ("hand_dot", hand_dot),
        ("hand_dot_checked", hand_dot_checked),
        ("hand_new_vec2", hand_new_vec2),
        ("hand_new_fnptr", hand_new_fnptr),
        ("hand_loop", hand_loop),
        ("hand_loop_pcall", hand_loop_pcall),
        ("hand_qsort_double", hand_qsort_double),
    ] {
        // SAFETY: each follows the lua_CFunction protocol.
        let f = unsafe { lua.create_c_function(f) }.unwrap();
        hand.set(name.trim_start_matches("hand_"), &f).unwrap();
        g.set(name, f).unwrap();
    }
    let rows: Vec<(String, f64, f64, f64)> = lua
        .load(SCRIPT)
        .eval::<Vec<mlua::Table>>()
        .expect("bench script")
        .into_iter()
        .map(|t| (t.get(1).unwrap(), t.get(2).unwrap(), t.get(3).unwrap(), t.get(4).unwrap()))
        .collect();
    let version: String = g.get("_VERSION").unwrap();
    println!("luaffi-rs call overhead, {version} (embedded), {n} calls per loop, best of {ROUNDS} interleaved rounds, bare loop subtracted");
    println!("ratio: stub / hand-written per call; beyond Lua: the same after taking away what calling an empty Lua function costs");
    println!("{:<44} {:>8} {:>9} {:>8} {:>8} {:>11}", "call", "stub ns", "hand ns", "ratio", "Lua ns", "beyond Lua");
    for (name, ours, hand, lua_call) in &rows {
        let beyond = if *lua_call > 0.0 {
            format!("{:>10.2}x", (ours - lua_call) / (hand - lua_call))
        } else {
            format!("{:>11}", "-")
        };
        println!("{name:<44} {ours:>8.1} {hand:>9.1} {:>7.2}x {lua_call:>8.1} {beyond}", ours / hand);
    }
    let ratio = |name: &str| rows.iter().find(|r| r.0 == name).map(|r| r.1 / r.2);

    // The workloads, here and under `luajit -joff`.
    let header = preprocessed_header();
    let (scale, rounds) = if opts.quick { (0.1, 2) } else { (1.0, 3) };
    g.set("SCALE", scale).unwrap();
    g.set("ROUNDS", rounds).unwrap();
    g.set("HEADER", header.as_deref()).unwrap();
    g.set("HAND", hand).unwrap();
    let ours: Vec<(String, f64)> = lua
        .load(WORKLOADS)
        .set_name("@bench-workloads.lua")
        .eval::<Vec<mlua::Table>>()
        .expect("workloads")
        .into_iter()
        .map(|t| (t.get(1).unwrap(), t.get(2).unwrap()))
        .collect();
    let luajit = luajit_reference(opts.reference.as_deref(), scale, rounds, header.as_deref());
    let get = |rows: &[(String, f64)], k: &str| rows.iter().find(|r| r.0 == k).map(|r| r.1);
    let mine = |k: &str| get(&ours, k);
    let theirs = |k: &str| luajit.as_deref().and_then(|r| get(r, k));
    println!();
    println!(
        "beyond the per-call path, {version}: luaffi-rs against its baseline measured in this run \
         (LuaJIT 2.1 -joff: the same Lua script, workloads at scale {scale}, best of {rounds})"
    );
    println!("{:<52} {:>12} {:>12} {:>9} {:>8}  {:<18} met", "what", "luaffi-rs", "baseline", "of", "ratio", "goal");
    let table = Table;
    let us = |v: Option<f64>| v.map(|v| v / 1e3);
    table.row(
        "first call of a new function (per signature), us",
        us(mine("first_call")),
        us(theirs("first_call")),
        "LuaJIT",
        Goal::AtMost(2.0),
    );
    table.row(
        "ffi.cdef of one function declaration, us",
        us(mine("cdef")),
        us(theirs("cdef")),
        "LuaJIT",
        Goal::AtMost(2.0),
    );
    table.row(
        "ffi.cast to a new function-pointer type, us",
        us(mine("cast_new_fnptr")),
        us(theirs("cast_new_fnptr")),
        "LuaJIT",
        Goal::AtMost(4.0),
    );
    table.row(
        "  the same and its first call, us",
        us(mine("cast_new_fnptr_call")),
        us(theirs("cast_new_fnptr_call")),
        "LuaJIT",
        Goal::None,
    );
    table.row(
        "qsort, const void * comparator casting, us/cmp",
        us(mine("qsort_void")),
        us(theirs("qsort_void")),
        "LuaJIT",
        Goal::AtMost(0.6),
    );
    table.row(
        "qsort, const double * comparator, us/cmp",
        us(mine("qsort_double")),
        us(theirs("qsort_double")),
        "LuaJIT",
        Goal::AtMost(0.2),
    );
    table.row(
        "  the same against a hand-written qsort binding",
        us(mine("qsort_double")),
        us(mine("qsort_double_hand")),
        "hand",
        Goal::None,
    );
    table.row(
        "memory: struct { double x, y; } in a table, B/obj",
        mine("memory"),
        mine("memory_hand"),
        "hand",
        Goal::AtMostBaseline,
    );
    table.row("  the same, LuaJIT", mine("memory"), theirs("memory"), "LuaJIT", Goal::None);
    table.row(
        "struct field read through __index, ns",
        mine("field_read"),
        mine("field_read_hand"),
        "hand",
        Goal::AtMost(25.0),
    );
    table.row("  the same, LuaJIT", mine("field_read"), theirs("field_read"), "LuaJIT", Goal::None);
    table.row(
        "struct field write through __newindex, ns",
        mine("field_write"),
        mine("field_write_hand"),
        "hand",
        Goal::AtMost(25.0),
    );
    table.row("  the same, LuaJIT", mine("field_write"), theirs("field_write"), "LuaJIT", Goal::None);
    table.row(
        "particle loop (array of structs), ns/particle",
        mine("particles"),
        theirs("particles"),
        "LuaJIT",
        Goal::None,
    );
    table.row("zlib round trip of a 4 KB chunk, us", us(mine("zlib")), us(theirs("zlib")), "LuaJIT", Goal::None);
    table.row(
        "ffi.cdef of stdio.h + stdlib.h (cpp), ms",
        mine("header").map(|v| v / 1e6),
        theirs("header").map(|v| v / 1e6),
        "LuaJIT",
        Goal::None,
    );
    table.ratio("strlen (size_t result), ratio", ratio("strlen(lua string)"), "hand", Goal::AtMost(2.0));
    table.info(
        "  the same against a hand binding with an exact result",
        ratio("  the same against a hand binding with an exact result"),
        "hand u64",
    );
    table.ratio(
        "callback from a C loop, ratio",
        ratio("  the same against lua_pcall in the loop"),
        "hand pcall",
        Goal::AtMost(1.0),
    );
    table.ratio("struct by value, ratio", ratio("double dot(vec2, vec2) by value"), "hand", Goal::AtMost(1.0));
    table.info(
        "  the same against a hand binding checking types",
        ratio("  the same against a hand binding checking types"),
        "hand checked",
    );
    table.ratio(
        "call through a function-pointer cdata, ratio",
        ratio("add through a function pointer cdata"),
        "hand",
        Goal::AtMost(1.2),
    );
    table.info(
        "  the same against a hand-written __call, ratio",
        ratio("  the same against a hand-written __call"),
        "hand call",
    );
    if luajit.is_none() {
        println!("(no LuaJIT reference: `luajit` was not found or failed)");
    }

    // Stub build time and size: int add(int, int), built and dropped many times.
    // With the inline steps a module state uses (its layout is verified when the module opens).
    let mut st = lua_adapter::native::new_state();
    st.set_inline_vm(lua_adapter::stack::vm_check::compiled_layout());
    let int = QualType::plain(st.types.int(IntKind::Int));
    let f = st.types.function(FuncType {
        ret: int,
        params: vec![Param { name: None, ty: int }; 2],
        variadic: false,
        conv: CallConv::Cdecl,
    });
    let rounds = 20_000;
    let mut bytes = 0;
    let us = us_per_round(rounds, || bytes = build_stub(&mut st, f, &[], CallMode::Closure).expect("stub").len());
    println!("stub for int add(int, int): {us:.2} us to build, {bytes} bytes of code");
    let split = stub_build_split(&mut st, f, rounds);
    println!(
        "  split per stub: plan + program {:.2} us, code generation {:.2} us, arena reserve + commit {:.2} us (sum {:.2} us)",
        split[0],
        split[1],
        split[2],
        split.iter().sum::<f64>()
    );
}

/// The three phases of `build_stub` for the closure-mode stub of `fn_ty`, each timed alone
/// over `rounds` runs, in us per stub: plan + program, code generation, arena reserve + commit
/// (the two `mprotect`s included): `build_stub`'s own phases (`stub_program_for`, the
/// backend, the arena), the stub they make checked to be byte for byte `build_stub`'s.
fn stub_build_split(st: &mut State, fn_ty: abi_model::TypeId, rounds: u32) -> [f64; 3] {
    let mode = CallMode::Closure;
    let backend = lua_adapter::native::call::backend().expect("a native backend");
    let plan_us = us_per_round(rounds, || {
        std::hint::black_box(stub_program_for(st, fn_ty, &[], mode).expect("program"));
    });

    let (program, env) = stub_program_for(st, fn_ty, &[], mode).expect("program");
    let codegen_us = us_per_round(rounds, || {
        std::hint::black_box(backend.stub(&program, 0, &env).expect("code"));
    });

    let code = backend.stub(&program, 0, &env).expect("code");
    let reference = build_stub(st, fn_ty, &[], mode).expect("stub");
    assert_eq!(code, reference.code(), "the split builds the stub build_stub builds");
    drop(reference);
    let arena = &st.calls.arena;
    let arena_us = us_per_round(rounds, || {
        let place = arena.reserve(code.len()).expect("reserve");
        drop(arena.commit(place, &code).expect("commit"));
    });
    [plan_us, codegen_us, arena_us]
}

/// Microseconds per run of `f`, run `rounds` times.
fn us_per_round(rounds: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..rounds {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
}

/// What a row of the workload table must reach.
#[derive(Clone, Copy)]
enum Goal {
    /// No goal: printed for information.
    None,
    /// At most this many of the row's unit.
    AtMost(f64),
    /// At most the baseline.
    AtMostBaseline,
}

/// The workload table, printed a row at a time.
struct Table;

impl Table {
    fn row(&self, what: &str, ours: Option<f64>, base: Option<f64>, of: &str, goal: Goal) {
        let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        let ratio = match (ours, base) {
            (Some(o), Some(b)) if b > 0.0 => format!("{:.2}x", o / b),
            _ => "-".into(),
        };
        let (goal_text, met) = match (goal, ours) {
            (Goal::None, _) => (String::new(), ""),
            (Goal::AtMost(g), Some(o)) => (format!("<= {g}"), if o <= g { "yes" } else { "NO" }),
            (Goal::AtMostBaseline, Some(o)) => {
                ("<= baseline".into(), if base.is_some_and(|b| o <= b) { "yes" } else { "NO" })
            }
            (g, None) => (if matches!(g, Goal::AtMostBaseline) { "<= baseline".into() } else { String::new() }, "-"),
        };
        println!("{what:<52} {:>12} {:>12} {of:>9} {ratio:>8}  {goal_text:<18} {met}", fmt(ours), fmt(base));
    }

    /// A ratio from the call table printed for information (no goal).
    fn info(&self, what: &str, ratio: Option<f64>, of: &str) {
        let r = ratio.map_or("-".to_string(), |r| format!("{r:.2}x"));
        println!("{what:<52} {:>12} {:>12} {of:>9} {r:>8}", "", "");
    }

    /// A row whose figure is a ratio from the call table.
    fn ratio(&self, what: &str, ratio: Option<f64>, of: &str, goal: Goal) {
        let Goal::AtMost(g) = goal else { unreachable!("ratio rows have a bound") };
        let r = ratio.map_or("-".to_string(), |r| format!("{r:.2}x"));
        let met = ratio.map_or("-", |r| if r <= g { "yes" } else { "NO" });
        println!("{what:<52} {:>12} {:>12} {of:>9} {r:>8}  {:<18} {met}", "", "", format!("<= {g}x"));
    }
}

/// `stdio.h` and `stdlib.h` through the system's `cpp -P`, or `None` without one.
fn preprocessed_header() -> Option<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("cpp")
        .args(["-P", "-x", "c", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(b"#include <stdio.h>\n#include <stdlib.h>\n").ok()?;
    let out = child.wait_with_output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The workload rows under `luajit -joff`: read from `keep` when it exists (an earlier run of
/// this bench measured them), else measured and written there. `None` without LuaJIT.
fn luajit_reference(
    keep: Option<&std::path::Path>,
    scale: f64,
    rounds: u32,
    header: Option<&str>,
) -> Option<Vec<(String, f64)>> {
    let parse = |text: &str| -> Vec<(String, f64)> {
        text.lines()
            .filter_map(|l| l.split_once('\t'))
            .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
            .collect()
    };
    if let Some(text) = keep.and_then(|k| std::fs::read_to_string(k).ok()) {
        return Some(parse(&text));
    }
    let dir = std::env::temp_dir().join(format!("luaffi-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let script = dir.join("bench-workloads.lua");
    std::fs::write(&script, WORKLOADS).ok()?;
    let header_file = dir.join("header.h");
    let header_expr = match header {
        Some(h) => {
            std::fs::write(&header_file, h).ok()?;
            format!("io.open({:?}):read('*a')", header_file.display().to_string())
        }
        None => "nil".into(),
    };
    let prelude = format!(
        "SCALE = {scale} ROUNDS = {rounds} HEADER = {header_expr} \
         for _, r in ipairs(dofile({:?})) do print(r[1] .. '\\t' .. string.format('%.17g', r[2])) end",
        script.display().to_string()
    );
    let out = std::process::Command::new("luajit").args(["-joff", "-e", &prelude]).output();
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.ok().filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if let Some(k) = keep {
        let _ = std::fs::write(k, &text);
    }
    Some(parse(&text))
}
