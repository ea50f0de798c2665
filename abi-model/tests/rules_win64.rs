//! x86-64 Windows rules (Microsoft Learn: "x64 calling convention", sections "Parameter
//! passing", "Varargs", "Return values"; mingw-w64 gcc `function_arg_ms_64`).

#[path = "rules_support.rs"]
mod support;

use abi_model::{ArgPass, CallConv, Gpr, IntKind, Loc, RecordAttrs, RecordKind, RetLoc, Target, ValueKind};
use support::{gpr, loc, locs, stack, xmm, Env};

fn env() -> Env {
    Env::new(Target::X64_WIN)
}

/// The pointer location and copy offset of a by-reference argument.
fn indirect(plan: &abi_model::CallPlan, i: usize) -> (Loc, u32) {
    match &plan.args[i].pass {
        ArgPass::Indirect { ptr, copy_at } => (*ptr, *copy_at),
        other => panic!("argument {i} is not by reference: {other:?}"),
    }
}

#[test]
fn win64_arguments_are_positional_a_double_after_an_int_takes_xmm1() {
    // "Parameter passing": the first four arguments are assigned by position; a floating
    // argument in position 2 goes in XMM1 and RCX's neighbour RDX stays unused.
    let e = env();
    let plan = e.plan(e.void(), &[e.i32(), e.f64(), e.i32(), e.f32()]);
    assert_eq!(loc(&plan, 0), gpr(Gpr::CX));
    assert_eq!(loc(&plan, 1), xmm(1));
    assert_eq!(loc(&plan, 2), gpr(Gpr::R8));
    assert_eq!(loc(&plan, 3), xmm(3));
}

#[test]
fn win64_fifth_argument_goes_to_the_stack_above_the_shadow_space() {
    // "Parameter passing": arguments after the fourth go on the stack, right after the 32
    // bytes of shadow (home) space the caller always allocates, 8 bytes each.
    let e = env();
    let plan = e.plan(e.void(), &[e.i32(), e.i32(), e.i32(), e.i32(), e.f64(), e.i32()]);
    assert_eq!(loc(&plan, 4), stack(32));
    assert_eq!(loc(&plan, 5), stack(40));
    assert_eq!(plan.stack_bytes, 48);
    assert_eq!(plan.shadow, 32);
}

#[test]
fn win64_shadow_space_is_reserved_even_without_arguments() {
    // "x64 calling convention": "the caller must always allocate sufficient space to store
    // four register parameters, even if the callee doesn't take that many parameters".
    let e = env();
    let plan = e.plan(e.void(), &[]);
    assert_eq!(plan.stack_bytes, 32);
    assert_eq!(plan.stack_align, 16);
}

#[test]
fn win64_12_byte_struct_goes_by_reference_to_a_16_aligned_copy() {
    // "Parameter passing": structs other than 1, 2, 4 or 8 bytes are passed as a pointer to
    // memory allocated by the caller, which must be 16-byte aligned.
    let mut e = env();
    let s = e.strukt(&[e.i32(), e.i32(), e.i32()]);
    let plan = e.plan(e.void(), &[e.i32(), s, s]);
    let (p1, at1) = indirect(&plan, 1);
    let (p2, at2) = indirect(&plan, 2);
    assert_eq!(p1, gpr(Gpr::DX));
    assert_eq!(p2, gpr(Gpr::R8));
    assert_eq!(at1 % 16, 0);
    assert_eq!(at2 % 16, 0);
    assert!(at1 >= plan.stack_bytes, "copies sit above the argument area");
    assert_eq!(at2 - at1, 16);
    assert_eq!(plan.copy_area, (at1, 32));
}

#[test]
fn win64_3_byte_struct_goes_by_reference() {
    // "Parameter passing": only sizes 1, 2, 4 and 8 pass by value; 3 is not one of them.
    let mut e = env();
    let s = e.strukt(&[e.u8(), e.u8(), e.u8()]);
    let plan = e.plan(e.void(), &[s]);
    assert_eq!(indirect(&plan, 0).0, gpr(Gpr::CX));
}

#[test]
fn win64_8_byte_struct_of_a_double_goes_in_an_integer_register() {
    // "Parameter passing": a struct of 8 bytes is passed "as if it were an integer of the
    // same size", even when its member is a double (gcc: aggregates never take XMM).
    let mut e = env();
    let s = e.strukt(&[e.f64()]);
    let plan = e.plan(s, &[e.f64(), s]);
    assert_eq!(loc(&plan, 1), gpr(Gpr::DX));
    assert_eq!(plan.ret.loc, RetLoc::Gpr, "and returns in RAX");
}

#[test]
fn win64_by_reference_argument_in_the_fifth_slot_passes_its_pointer_on_the_stack() {
    // "Parameter passing": the pointer takes the argument's position, here the first stack
    // slot after the shadow space.
    let mut e = env();
    let s = e.strukt(&[e.f64(), e.f64()]);
    let plan = e.plan(e.void(), &[e.i32(), e.i32(), e.i32(), e.i32(), s]);
    let (ptr, at) = indirect(&plan, 4);
    assert_eq!(ptr, stack(32));
    assert_eq!(at, 48, "the copy starts at the first 16-byte boundary above the 40-byte argument area");
}

#[test]
fn win64_variadic_double_is_mirrored_into_the_integer_register() {
    // "Varargs": "for floating-point values only, both the integer register and the
    // floating-point register must contain the value, in case the callee expects the value
    // in the integer registers."
    let mut e = env();
    let fmt = e.void_ptr();
    let plan = e.plan_variadic(e.i32(), &[fmt], &[e.f64(), e.i32()], CallConv::Cdecl);
    assert_eq!(locs(&plan, 1), vec![xmm(1), gpr(Gpr::DX)]);
    assert_eq!(loc(&plan, 2), gpr(Gpr::R8));
    assert_eq!(plan.al, None, "Windows has no al convention");
}

#[test]
fn win64_variadic_float_is_promoted_and_mirrored() {
    // C default argument promotions (float -> double) then "Varargs" duplication.
    let mut e = env();
    let fmt = e.void_ptr();
    let plan = e.plan_variadic(e.void(), &[fmt], &[e.f32()], CallConv::Cdecl);
    assert_eq!(plan.args[1].value, ValueKind::F64);
    assert_eq!(locs(&plan, 1), vec![xmm(1), gpr(Gpr::DX)]);
}

#[test]
fn win64_fixed_double_of_a_variadic_function_is_only_in_xmm() {
    // gcc `function_arg_ms_64`: only unnamed floating arguments are duplicated; a named one
    // of a variadic function goes to its XMM register alone.
    let e = env();
    let plan = e.plan_variadic(e.void(), &[e.f64()], &[e.f64()], CallConv::Cdecl);
    assert_eq!(locs(&plan, 0), vec![xmm(0)]);
    assert_eq!(locs(&plan, 1), vec![xmm(1), gpr(Gpr::DX)]);
}

#[test]
fn win64_variadic_double_past_the_fourth_slot_is_only_on_the_stack() {
    // "Varargs": the duplication concerns the register slots; later values are on the stack.
    let mut e = env();
    let fmt = e.void_ptr();
    let plan = e.plan_variadic(e.void(), &[fmt], &[e.i32(), e.i32(), e.i32(), e.f64()], CallConv::Cdecl);
    assert_eq!(locs(&plan, 4), vec![stack(32)]);
}

#[test]
fn win64_struct_return_over_8_bytes_takes_rcx_and_shifts_arguments() {
    // "Return values": other user-defined types are returned through a caller-allocated
    // buffer whose pointer is passed as the first argument (RCX); the remaining arguments
    // shift one position to the right, and RAX returns the pointer.
    let mut e = env();
    let s = e.strukt(&[e.i32(), e.i32(), e.i32()]);
    let plan = e.plan(s, &[e.i32(), e.f64(), e.i32(), e.i32()]);
    assert_eq!(plan.ret.loc, RetLoc::Sret { ptr: gpr(Gpr::CX) });
    assert_eq!(loc(&plan, 0), gpr(Gpr::DX));
    assert_eq!(loc(&plan, 1), xmm(2));
    assert_eq!(loc(&plan, 2), gpr(Gpr::R9));
    assert_eq!(loc(&plan, 3), stack(32));
}

#[test]
fn win64_float_complex_returns_in_rax() {
    // `float _Complex` is 8 bytes and not a float or double: gcc `function_value_ms_64`
    // returns it in RAX, and `ix86_pass_by_reference` passes it by value in an integer
    // register.
    let e = env();
    let plan = e.plan(e.cf32(), &[e.cf32()]);
    assert_eq!(plan.ret.loc, RetLoc::Gpr);
    assert_eq!(loc(&plan, 0), gpr(Gpr::CX));
}

#[test]
fn win64_double_complex_goes_by_reference_and_returns_through_memory() {
    // 16 bytes is not 1, 2, 4 or 8 ("Parameter passing", "Return values").
    let e = env();
    let plan = e.plan(e.cf64(), &[e.cf64()]);
    assert_eq!(plan.ret.loc, RetLoc::Sret { ptr: gpr(Gpr::CX) });
    assert_eq!(indirect(&plan, 0).0, gpr(Gpr::DX));
}

#[test]
fn win64_float_and_double_return_in_xmm0_integers_in_rax() {
    // "Return values": scalar float/double in XMM0, integers and pointers in RAX.
    let mut e = env();
    assert_eq!(e.plan(e.f32(), &[]).ret.loc, RetLoc::Xmm0);
    assert_eq!(e.plan(e.f64(), &[]).ret.loc, RetLoc::Xmm0);
    assert_eq!(e.plan(e.i64(), &[]).ret.loc, RetLoc::Gpr);
    let p = e.void_ptr();
    assert_eq!(e.plan(p, &[]).ret.loc, RetLoc::Gpr);
}

#[test]
fn win64_struct_of_one_float_returns_in_rax() {
    // "Return values": user-defined types of 1, 2, 4 or 8 bytes return in RAX, whatever
    // their members (gcc `function_value_ms_64`: aggregates never use XMM0).
    let mut e = env();
    let s = e.strukt(&[e.f32()]);
    assert_eq!(e.plan(s, &[]).ret.loc, RetLoc::Gpr);
}

#[test]
fn win64_long_is_32_bits_llp64() {
    // Microsoft "Data type ranges": `long` is 4 bytes on 64-bit Windows.
    let e = env();
    let plan = e.plan(e.int(IntKind::Long), &[e.int(IntKind::Long)]);
    assert_eq!(plan.args[0].value, ValueKind::Int { size: 4, signed: true });
    assert_eq!(plan.to_string().lines().next(), Some("  arg0: i32 ecx"));
}

#[test]
fn win64_over_aligned_8_byte_struct_is_16_bytes_and_goes_by_reference() {
    // aligned(16) pads an 8-byte struct to 16, so it is no longer 1, 2, 4 or 8 bytes.
    let mut e = env();
    let aligned = RecordAttrs { aligned: Some(16), ..RecordAttrs::default() };
    let s = e.record(RecordKind::Struct, &[e.i64()], aligned);
    let plan = e.plan(e.void(), &[s]);
    assert_eq!(indirect(&plan, 0).0, gpr(Gpr::CX));
}

#[test]
fn win64_copy_of_an_aligned_32_record_is_32_aligned_and_the_call_stack_too() {
    // A by-reference copy is an object of its type: the callee may rely on its alignment as on
    // any other (calltest's ct_al32_arg checks it; mingw's caller aligns the temporary). So
    // the copy sits at a multiple of 32 from sp, in a caller frame aligned to 32; sp at the
    // call itself stays 16-aligned (the compiled callers leave it so).
    let mut e = env();
    let a32 = RecordAttrs { aligned: Some(32), ..RecordAttrs::default() };
    let a64 = RecordAttrs { aligned: Some(64), ..RecordAttrs::default() };
    let s12 = e.record(RecordKind::Struct, &[e.i32(), e.i32(), e.i32()], RecordAttrs::default());
    let s32 = e.record(RecordKind::Struct, &[e.i32()], a32);
    let s64 = e.record(RecordKind::Struct, &[e.f64()], a64);
    let plan = e.plan(e.void(), &[s12, s32, e.i32(), e.i32(), s64]);
    assert_eq!(plan.stack_align, 16);
    assert_eq!(plan.frame_align(), 64);
    let (_, first) = indirect(&plan, 0);
    let (_, at32) = indirect(&plan, 1);
    let (_, at64) = indirect(&plan, 4);
    assert_eq!(first % 16, 0);
    assert_eq!(at32 % 32, 0, "{plan}");
    assert_eq!(at64 % 64, 0, "{plan}");
    assert!(at32 >= first + 16 && at64 >= at32 + 32, "copies overlap: {plan}");
    assert_eq!(plan.frame_bytes() % 64, 0);
    // Without an over-aligned record, the stack keeps the ABI's 16.
    let plain = e.plan(e.void(), &[s12]);
    assert_eq!(plain.frame_align(), 16);
}

#[test]
fn win64_callee_never_pops() {
    // "x64 calling convention": one convention, the caller cleans up; the x86 keywords are
    // accepted and ignored.
    let e = env();
    let params = [e.i32(), e.i32(), e.i32(), e.i32(), e.i32()];
    let cdecl = e.plan(e.void(), &params);
    assert_eq!(cdecl.callee_pops, 0);
    for conv in [CallConv::Stdcall, CallConv::Fastcall, CallConv::Thiscall] {
        assert_eq!(e.plan_conv(e.void(), &params, conv), cdecl, "{conv:?}");
    }
}

#[test]
fn win64_nested_packed_record_goes_by_its_size_alone() {
    // Microsoft x64 "Parameter passing": only the size (1, 2, 4 or 8) decides, never where
    // a nested member sits. struct { char c; P { char d; short s; } p; } (4 bytes, `s` at
    // odd offset 1 of P) and P struct { int i; struct aligned(8) { float f; } b; }
    // (12 bytes): ecx and by reference. mingw 12 compiles both so (emulator catalogue, issue
    // 14 §1 nested records).
    let mut e = env();
    let packed = RecordAttrs { packed: true, ..RecordAttrs::default() };
    let p = e.record(RecordKind::Struct, &[e.i8(), e.i16()], packed);
    let s = e.strukt(&[e.i8(), p]);
    assert_eq!(e.t.size_of(s).unwrap(), 4);
    let plan = e.plan(s, &[s]);
    assert_eq!(loc(&plan, 0), gpr(Gpr::CX));
    assert_eq!(plan.ret.loc, RetLoc::Gpr);
    let b = e.record(RecordKind::Struct, &[e.f32()], RecordAttrs { aligned: Some(8), ..RecordAttrs::default() });
    let s12 = e.record(RecordKind::Struct, &[e.i32(), b], packed);
    assert_eq!(e.t.size_of(s12).unwrap(), 12);
    assert!(matches!(e.plan(e.void(), &[s12]).args[0].pass, ArgPass::Indirect { .. }));
}

#[test]
fn win64_small_integer_results_are_widened_by_the_callee_and_not_relied_on_by_the_caller() {
    // "Return values": "The state of unused bits in the value returned in RAX or XMM0 is
    // undefined", so callers re-extend; a callee widening by type is still correct.
    assert_eq!(support::return_exts(&env()), support::SMALL_RESULTS_WIDENED_BY_TYPE);
}

#[test]
fn win64_int128_goes_by_reference_and_comes_back_in_xmm0() {
    // mingw-w64 gcc (the fixture's compiler; checked with `x86_64-w64-mingw32-gcc -S`): an
    // `__int128` argument is a 16-byte value, so passed as a pointer to a caller-made copy
    // (16-aligned), and the result comes back whole in xmm0 (`function_value_ms_64`), where a
    // 16-byte struct comes back through a hidden pointer.
    let mut e = env();
    let i128 = e.t.try_wide_int(16, true).unwrap();
    let plan = e.plan(i128, &[e.i32(), i128]);
    assert_eq!(plan.ret.loc, RetLoc::Xmm0Full, "all 16 bytes of xmm0");
    assert_eq!(loc(&plan, 0), gpr(Gpr::CX), "no hidden pointer takes rcx");
    let (ptr, copy_at) = indirect(&plan, 1);
    assert_eq!(ptr, gpr(Gpr::DX));
    assert_eq!(copy_at % 16, 0);
    let l = e.int(IntKind::LongLong);
    let s16 = e.strukt(&[l, l]);
    assert!(matches!(e.plan(s16, &[]).ret.loc, RetLoc::Sret { .. }), "a 16-byte struct is not returned so");
}

#[test]
fn win64_struct_holding_int128_goes_by_its_size_not_as_the_integer() {
    // A record holding `__int128` is a 16-byte record to mingw: by reference, returned
    // through a hidden pointer; the integer alone comes back in xmm0.
    let mut e = env();
    let i128 = e.t.try_wide_int(16, true).unwrap();
    let s = e.strukt(&[i128]);
    let plan = e.plan(s, &[s]);
    assert!(matches!(plan.ret.loc, RetLoc::Sret { .. }), "a 16-byte struct result: hidden pointer");
    assert!(matches!(plan.args[0].pass, ArgPass::Indirect { .. }), "passed by reference");
    assert_eq!(e.plan(i128, &[]).ret.loc, RetLoc::Xmm0Full, "unlike the integer itself");
}
