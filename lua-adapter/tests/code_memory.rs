//! Generated code is shared and freed: one stub per signature; 100,000 stubs built and
//! dropped leave the code arena as it started, and 100,000 callbacks freed reuse their slots.

use abi_model::{CallConv, FuncType, IntKind, Param, QualType};
use lua_adapter::native::call::{arena_stats, build_stub, code_counts};
use lua_adapter::native::closure::set_tier_up;
use lua_adapter::native::state::CallMode;
use mlua::Lua;

fn lua_with_ffi() -> Lua {
    let lua = Lua::new();
    let ffi = lua_adapter::surface::module::open(&lua).unwrap();
    lua.globals().set("ffi", ffi).unwrap();
    lua
}

#[test]
fn functions_of_one_signature_share_one_stub() {
    let lua = lua_with_ffi();
    set_tier_up(&lua, 0);
    lua.load("ffi.cdef 'int abs(int); int toupper(int); int tolower(int); double sqrt(double);'").exec().unwrap();
    assert_eq!(code_counts(&lua), Some((0, 0)));
    let r: i64 = lua.load("return ffi.C.abs(-3) + ffi.C.toupper(97) + ffi.C.tolower(65)").eval().unwrap();
    assert_eq!(r, 3 + 65 + 97);
    assert_eq!(code_counts(&lua), Some((1, 0)), "abs, toupper and tolower share int (int)");
    let before = arena_stats(&lua).unwrap();
    let _: f64 = lua.load("for i = 1, 1000 do ffi.C.abs(-i) end return ffi.C.sqrt(4)").eval().unwrap();
    assert_eq!(code_counts(&lua), Some((2, 0)), "calls reuse the stub; a new signature adds one");
    assert!(arena_stats(&lua).unwrap().bytes_in_use > before.bytes_in_use);
}

/// Tier 0 (x86-64): a function's first calls build no stub; the call that reaches the
/// threshold builds the one its signature shares, and every closure of the signature moves
/// to it, made before the stub or after.
#[test]
#[cfg(target_arch = "x86_64")]
fn tier_0_builds_a_signatures_stub_at_the_threshold() {
    let lua = lua_with_ffi();
    set_tier_up(&lua, 4);
    lua.load("ffi.cdef 'int abs(int); int toupper(int); double sqrt(double);' abs = ffi.C.abs").exec().unwrap();
    let calls = |code: &str| lua.load(code).eval::<i64>().unwrap();
    assert_eq!(calls("return abs(-1) + abs(-2) + ffi.C.toupper(97)"), 3 + 65);
    assert_eq!(code_counts(&lua), Some((0, 0)), "3 calls of int (int): none built");
    assert_eq!(calls("return abs(-4)"), 4);
    assert_eq!(code_counts(&lua), Some((1, 0)), "the 4th call of the signature builds its stub");
    // toupper's closure was made before the stub: it moves over at its next call.
    let upper = "local s = 0 for i = 1, 100 do
                   local c = 97 + i % 26
                   s = s + ffi.C.toupper(c) - string.byte(string.char(c):upper())
                 end return s";
    assert_eq!(calls(upper), 0);
    assert_eq!(code_counts(&lua), Some((1, 0)));
    // Still namespace functions to the rest of the API.
    assert_eq!(calls("return ffi.cast('intptr_t', ffi.cast('void *', abs)) ~= 0 and 1 or 0"), 1);
    assert_eq!(lua.load("return ffi.C.sqrt(16)").eval::<f64>().unwrap(), 4.0);
    assert_eq!(code_counts(&lua), Some((1, 0)), "sqrt, called once, has no stub");
}

/// Tier 0 (x86-64) for function cdata: calls through `__call` build the type's stub at the
/// threshold too, and every call before it runs with the same results.
#[test]
#[cfg(target_arch = "x86_64")]
fn tier_0_builds_a_function_pointer_types_stub_at_the_threshold() {
    let lua = lua_with_ffi();
    set_tier_up(&lua, 3);
    lua.load(
        "ffi.cdef 'int abs(int); double fabs(double);'
         p = ffi.cast('int (*)(int)', ffi.cast('void *', ffi.C.abs))",
    )
    .exec()
    .unwrap();
    let stubs = || code_counts(&lua).unwrap().0;
    // ffi.C.abs itself has had no call: no stub.
    assert_eq!(lua.load("return p(-1) + p(-2)").eval::<i64>().unwrap(), 3);
    assert_eq!(stubs(), 0, "2 calls through the pointer: none built");
    assert_eq!(lua.load("return p(-3)").eval::<i64>().unwrap(), 3);
    assert_eq!(stubs(), 1, "the 3rd builds the metamethod stub of int (*)(int)");
    assert_eq!(lua.load("local s = 0 for i = 1, 50 do s = s + p(-i) end return s").eval::<i64>().unwrap(), 1275);
    assert_eq!(stubs(), 1);
    // Errors read the same on tier 0: argument numbers count from the C function's first.
    let e: String = lua
        .load("local q = ffi.cast('double (*)(double)', ffi.cast('void *', ffi.C.fabs)) return select(2, pcall(q, {}))")
        .eval()
        .unwrap();
    assert!(e.contains("bad argument #1"), "{e}");
    assert_eq!(stubs(), 1);
}

#[test]
fn variadic_calls_with_pointers_to_different_types_share_one_stub() {
    let lua = lua_with_ffi();
    lua.load(
        "ffi.cdef [[
           struct va_a { int x; }; struct va_b { double y; };
           int snprintf(char *buf, size_t n, const char *fmt, ...);
         ]]
         buf = ffi.new('char[32]')
         function f(...) ffi.C.snprintf(buf, 32, '%p', ...) return ffi.string(buf) end",
    )
    .exec()
    .unwrap();
    // Pointers to different types, arrays, a string cdata, a const pointer: one word each.
    let same: bool = lua
        .load(
            "local a, b = ffi.new('struct va_a'), ffi.new('struct va_b[2]')
             local s = ffi.cast('const char *', 'x')
             return f(ffi.cast('struct va_a *', a)) == f(a)
                and f(ffi.cast('const struct va_b *', b)) == f(b)
                and f(s) == f(ffi.cast('const void *', s))
                and f(ffi.cast('int *', a)) == f(ffi.cast('double *', a))",
        )
        .eval()
        .unwrap();
    assert!(same);
    assert_eq!(code_counts(&lua), Some((1, 0)), "every data pointer keys the same `(…, const void *)` stub");
    // What is not a plain data pointer keeps its own: a volatile one, a function pointer.
    let _: String = lua.load("return f(ffi.cast('volatile int *', buf))").eval().unwrap();
    assert_eq!(code_counts(&lua), Some((2, 0)));
    let _: String = lua.load("return f(ffi.cast('int (*)(int)', 0))").eval().unwrap();
    assert_eq!(code_counts(&lua), Some((3, 0)));
}

#[test]
fn a_hundred_thousand_callbacks_freed_or_collected_reuse_their_slots() {
    let lua = lua_with_ffi();
    let start = arena_stats(&lua).unwrap();
    // Freed explicitly, each right after use: one slot serves them all.
    let sum: i64 = lua
        .load(
            "local s = 0
             for i = 1, 50000 do
               local cb = ffi.cast('int (*)(int)', function(x) return x + i end)
               s = s + cb(1)
               cb:free()
             end
             return s",
        )
        .eval()
        .unwrap();
    assert_eq!(sum, (1..=50000).map(|i| i + 1).sum::<i64>());
    assert_eq!(code_counts(&lua).unwrap().1, 0);
    let explicit = arena_stats(&lua).unwrap();
    assert_eq!(explicit.live_chunks, start.live_chunks + 2, "the stub that called `cb(1)` and one thunk: {explicit:?}");
    // Tied to their cdata with ffi.gc and collected, 1,000 at a time: later rounds reuse the
    // slots the first one freed (a freed slot keeps its thunk, a trap, until reused).
    lua.load(
        "for round = 1, 50 do
           local keep = {}
           for i = 1, 1000 do
             keep[i] = ffi.gc(ffi.cast('double (*)(double)', function(x) return x * i end), function(c) c:free() end)
           end
           keep = nil
           collectgarbage() collectgarbage()
         end",
    )
    .exec()
    .unwrap();
    assert_eq!(code_counts(&lua).unwrap().1, 0, "every callback was freed");
    let end = arena_stats(&lua).unwrap();
    assert_eq!(end.live_chunks, explicit.live_chunks + 1000, "1,000 slots served 50,000 callbacks: {end:?}");
}

#[test]
fn a_hundred_thousand_stubs_built_and_dropped_leave_the_arena_as_it_was() {
    let mut st = lua_adapter::native::new_state();
    let start = st.calls.arena.stats();
    let int = QualType::plain(st.types.int(IntKind::Int));
    let dbl = QualType::plain(st.types.float(abi_model::FloatKind::Double));
    // 100 distinct signatures (parameter lists of ints and doubles), 1000 stubs each.
    let sigs: Vec<_> = (0..100u32)
        .map(|n| {
            let params =
                (0..(n % 10)).map(|i| Param { name: None, ty: if (n >> i) & 1 == 1 { dbl } else { int } }).collect();
            st.types.function(FuncType { ret: int, params, variadic: false, conv: CallConv::Cdecl })
        })
        .collect();
    let t = std::time::Instant::now();
    for round in 0..1000 {
        let stubs: Vec<_> = sigs.iter().map(|f| build_stub(&mut st, *f, &[], CallMode::Closure).unwrap()).collect();
        if round == 0 {
            assert_eq!(st.calls.arena.stats().live_chunks, 100);
        }
        drop(stubs);
    }
    eprintln!("100000 stubs built in {:?} ({:.2} us each)", t.elapsed(), t.elapsed().as_secs_f64() * 1e6 / 100000.0);
    let end = st.calls.arena.stats();
    assert_eq!(end.bytes_in_use, start.bytes_in_use);
    assert_eq!(end.live_chunks, start.live_chunks);
    assert!(end.pages_mapped - end.spare_pages == start.pages_mapped, "{start:?} -> {end:?}");
}
