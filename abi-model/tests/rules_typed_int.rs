//! Values the ABI passes as an unsigned integer but which are read and written by their own
//! C type ([`ValueKind::TypedInt`]): a bool of more than one byte (`_Bool int`, LuaJIT
//! `ctype_isinteger_or_bool`) and a 4-byte pointer on x86-64 (`__ptr32`, which LuaJIT passes
//! as a 4-byte integer). No compiler has these types, so the oracle is the compiled fixture
//! of the same signature with the unsigned integer of the same size in their place: each
//! rule here is that the two plans are the same but for the value kinds, on every target and
//! convention; the fixtures prove the integer plans against gcc and mingw.

#[path = "rules_support.rs"]
mod support;

use abi_model::{CallConv, CallPlan, IntKind, RetPlan, Target, TypeId, ValueKind};
use support::Env;

/// The plan with every [`ValueKind::TypedInt`] replaced by the unsigned integer of its size.
fn as_integers(plan: &CallPlan) -> CallPlan {
    let int = |k: ValueKind| match k {
        ValueKind::TypedInt { size } => ValueKind::Int { size, signed: false },
        other => other,
    };
    let mut p = plan.clone();
    for a in &mut p.args {
        a.value = int(a.value);
    }
    p.ret = RetPlan { value: int(p.ret.value), ..p.ret };
    p
}

/// Signatures mixing `typed` with other arguments, to move it through registers and stack
/// slots: `typed f(typed)`, `typed f(int, typed, double, typed)`, six `long long`s then `typed`
/// (past the SysV registers), and `typed f(typed, typed, typed, typed, typed)` (past Win64's).
fn shapes(e: &Env, typed: TypeId) -> Vec<(TypeId, Vec<TypeId>)> {
    let (i, d, ll) = (e.i32(), e.f64(), e.i64());
    vec![
        (typed, vec![typed]),
        (e.void(), vec![i, typed, d, typed]),
        (typed, vec![ll, ll, ll, ll, ll, ll, typed, i]),
        (typed, vec![typed; 5]),
    ]
}

/// Checks that every shape of `typed` plans as the same shape of `int` but for the value
/// kinds, which are `TypedInt { size }` for `typed`; the first difference otherwise.
fn plans_as(e: &Env, typed: TypeId, int: TypeId, size: u8, conv: CallConv) -> Result<(), String> {
    let target = e.t.target();
    for ((ret, params), (int_ret, int_params)) in shapes(e, typed).into_iter().zip(shapes(e, int)) {
        let p = e.plan_conv(ret, &params, conv);
        let q = e.plan_conv(int_ret, &int_params, conv);
        let typed_kind = ValueKind::TypedInt { size };
        let kinds_ok = params.iter().zip(&p.args).all(|(t, a)| (*t == typed) == (a.value == typed_kind))
            && (ret == typed) == (p.ret.value == typed_kind);
        if !kinds_ok {
            return Err(format!("{target} {conv:?}: value kinds {:?} -> {:?}", p.args, p.ret));
        }
        if as_integers(&p) != q {
            return Err(format!("{target} {conv:?}: {:#?}\n!=\n{q:#?}", as_integers(&p)));
        }
    }
    Ok(())
}

#[test]
fn every_target_passes_and_returns_a_wide_bool_as_the_unsigned_integer_of_its_size() {
    // LuaJIT `ccall_set_args` treats `ctype_isinteger_or_bool` alike: a `_Bool __int16`,
    // `_Bool int` or `_Bool __int64` goes where `uint16_t`, `uint32_t`, `uint64_t` go
    // (i386: `_Bool __int64` takes two stack words and comes back in edx:eax; fastcall gives
    // it no register but uses two up, as gcc does for a 64-bit integer).
    for target in Target::ALL {
        let mut e = Env::new(target);
        for (size, int) in [(2u8, IntKind::UShort), (4, IntKind::UInt), (8, IntKind::ULongLong)] {
            let wb = e.t.try_wide_bool(u32::from(size)).unwrap();
            let int = e.int(int);
            for conv in target.conventions() {
                plans_as(&e, wb, int, size, *conv).unwrap();
            }
        }
    }
}

#[test]
fn x86_64_passes_and_returns_a_ptr32_as_a_4_byte_unsigned_integer() {
    // LuaJIT (LJ_64) passes `T *__ptr32` as a 4-byte integer; the callee zero-extends it.
    for target in [Target::X64_SYSV, Target::X64_WIN] {
        let mut e = Env::new(target);
        let i = e.i32();
        let p32 = e.t.try_ptr32_to(i).unwrap();
        let u32 = e.int(IntKind::UInt);
        plans_as(&e, p32, u32, 4, CallConv::Cdecl).unwrap();
    }
}

#[test]
fn the_same_integer_check_catches_a_wrong_integer() {
    // The check must be able to fail: a 2-byte bool is not a signed short (the writer's
    // widening differs), an 8-byte bool on i386 is not a 4-byte integer (stack words,
    // edx:eax), a __ptr32 is not an 8-byte pointer, nor a wide bool another one's size.
    let mut e = Env::new(Target::X86_LINUX);
    let wb2 = e.t.try_wide_bool(2).unwrap();
    let wb8 = e.t.try_wide_bool(8).unwrap();
    let (short, uint) = (e.i16(), e.int(IntKind::UInt));
    assert!(plans_as(&e, wb2, short, 2, CallConv::Cdecl).is_err());
    assert!(plans_as(&e, wb8, uint, 8, CallConv::Cdecl).is_err());
    assert!(plans_as(&e, wb8, e.int(IntKind::ULongLong), 4, CallConv::Cdecl).is_err(), "the kind's size");
    let mut e = Env::new(Target::X64_SYSV);
    let i = e.i32();
    let p32 = e.t.try_ptr32_to(i).unwrap();
    let ptr = e.ptr(i);
    assert!(plans_as(&e, p32, ptr, 4, CallConv::Cdecl).is_err());
    let u64 = e.int(IntKind::ULongLong);
    assert!(plans_as(&e, p32, u64, 4, CallConv::Cdecl).is_err());
}

#[test]
fn a_variadic_two_byte_bool_is_promoted_to_int() {
    // C's default argument promotions: a bool or an integer narrower than int becomes an
    // int; a 4- or 8-byte bool stays the integer of its size.
    for target in Target::ALL {
        let mut e = Env::new(target);
        let wb2 = e.t.try_wide_bool(2).unwrap();
        let wb4 = e.t.try_wide_bool(4).unwrap();
        let i = e.i32();
        let p = e.plan_variadic(e.void(), &[i], &[wb2, wb4], CallConv::Cdecl);
        assert_eq!(p.args[1].value, ValueKind::Int { size: 4, signed: true }, "{target}");
        assert_eq!(p.args[2].value, ValueKind::TypedInt { size: 4 }, "{target}");
    }
}
