//! x86-32 rules: cdecl, stdcall, fastcall, thiscall on i386 Linux (System V i386 psABI,
//! 2015 revision, as gcc implements it) and Win32 (Microsoft "Argument Passing and Naming
//! Conventions", as mingw gcc implements it), plus the target-independent front end
//! (promotions, adjustments, errors).

#[path = "rules_support.rs"]
mod support;

use abi_model::{CallConv, Ext, Gpr, IntKind, PlanError, RecordAttrs, RecordKind, RetLoc, Target, ValueKind};
use support::{gpr, loc, parts, stack, Env};

fn linux() -> Env {
    Env::new(Target::X86_LINUX)
}

fn win() -> Env {
    Env::new(Target::X86_WIN)
}

#[test]
fn cdecl_arguments_are_pushed_right_to_left_in_4_byte_slots() {
    // i386 psABI, "Function Calling Sequence" / Microsoft __cdecl: all arguments on the stack, the first at the
    // lowest address, each slot a multiple of 4 bytes; the caller pops.
    for e in [linux(), win()] {
        let plan = e.plan(e.void(), &[e.i8(), e.i32(), e.i16()]);
        assert_eq!(loc(&plan, 0), stack(0));
        assert_eq!(loc(&plan, 1), stack(4));
        assert_eq!(loc(&plan, 2), stack(8));
        assert_eq!(plan.stack_bytes, 12);
        assert_eq!(plan.callee_pops, 0);
    }
}

#[test]
fn x86_double_and_long_long_take_eight_bytes_at_4_byte_alignment() {
    // i386 psABI, "Parameter Passing": stack arguments are word (4-byte) aligned whatever
    // their type.
    for e in [linux(), win()] {
        let plan = e.plan(e.void(), &[e.i32(), e.f64(), e.i64(), e.i32()]);
        assert_eq!(loc(&plan, 1), stack(4));
        assert_eq!(loc(&plan, 2), stack(12));
        assert_eq!(loc(&plan, 3), stack(20));
    }
}

#[test]
fn x86_16_byte_aligned_struct_on_stack_is_only_4_aligned() {
    // gcc `ix86_function_arg_boundary`: on i386 only types containing SSE vectors get more
    // than 4-byte stack alignment; an aligned(16) struct of ints does not.
    let mut e = linux();
    let aligned = RecordAttrs { aligned: Some(16), ..RecordAttrs::default() };
    let s = e.record(RecordKind::Struct, &[e.i32()], aligned);
    let plan = e.plan(e.void(), &[e.i32(), s]);
    assert_eq!(loc(&plan, 1), stack(4));
    assert_eq!(plan.stack_bytes, 20);
}

#[test]
fn x86_struct_argument_is_copied_whole_to_the_stack_rounded_to_4_bytes() {
    // i386 psABI, "Parameter Passing": aggregates are passed by value in the argument area, padded to a
    // multiple of 4 bytes.
    let mut e = win();
    let s = e.strukt(&[e.u8(), e.u8(), e.u8()]);
    let plan = e.plan(e.void(), &[s, e.i32()]);
    assert_eq!(parts(&plan, 0)[0].size, 3);
    assert_eq!(loc(&plan, 1), stack(4));
}

#[test]
fn x86_float_and_double_return_in_st0() {
    // i386 psABI, "Return Values" / Microsoft "Return values": floating results in st(0).
    for e in [linux(), win()] {
        assert_eq!(e.plan(e.f32(), &[]).ret.loc, RetLoc::St0);
        assert_eq!(e.plan(e.f64(), &[]).ret.loc, RetLoc::St0);
    }
}

#[test]
fn x86_long_long_returns_in_edx_eax() {
    // i386 psABI, "Return Values": 64-bit integers come back in %edx:%eax.
    for e in [linux(), win()] {
        assert_eq!(e.plan(e.i64(), &[]).ret.loc, RetLoc::EdxEax);
        assert_eq!(e.plan(e.i16(), &[]).ret.loc, RetLoc::Gpr);
    }
}

#[test]
fn i386_complex_float_returns_in_edx_eax_and_complex_double_through_memory() {
    // gcc `ix86_return_in_memory` (i386): a non-aggregate of at most 12 bytes comes back in
    // registers, SCmode in %eax/%edx (`function_value_32`: not an x87 scalar mode); the
    // 16-byte complex double goes through memory.
    for e in [linux(), win()] {
        assert_eq!(e.plan(e.cf32(), &[]).ret.loc, RetLoc::EdxEax);
        assert!(matches!(e.plan(e.cf64(), &[]).ret.loc, RetLoc::Sret { ptr: abi_model::Loc::Stack { offset: 0 } }));
    }
}

#[test]
fn i386_linux_returns_every_struct_through_memory() {
    // i386 psABI, "Return Values", and gcc's default -fpcc-struct-return on Linux: structs and unions,
    // even of one byte, return through a hidden pointer.
    let mut e = linux();
    let one = e.strukt(&[e.u8()]);
    let eight = e.strukt(&[e.i32(), e.i32()]);
    assert_eq!(e.plan(one, &[]).ret.loc, RetLoc::Sret { ptr: stack(0) });
    assert_eq!(e.plan(eight, &[]).ret.loc, RetLoc::Sret { ptr: stack(0) });
}

#[test]
fn i386_linux_struct_return_callee_pops_hidden_pointer() {
    // i386 psABI, "Return Values" (the callee returns with `ret $4`): the callee of a struct-returning function
    // removes the hidden pointer from the stack; the caller pops the other arguments.
    let mut e = linux();
    let s = e.strukt(&[e.i32(), e.i32(), e.i32()]);
    let plan = e.plan(s, &[e.i32()]);
    assert_eq!(plan.ret.loc, RetLoc::Sret { ptr: stack(0) });
    assert_eq!(loc(&plan, 0), stack(4));
    assert_eq!(plan.callee_pops, 4);
}

#[test]
fn win32_cdecl_struct_return_caller_pops_hidden_pointer() {
    // MSVC (and mingw since gcc 4.6, `ix86_keep_aggregate_return_pointer` for the MS ABI):
    // the caller of a cdecl function removes the hidden pointer with the arguments.
    let mut e = win();
    let s = e.strukt(&[e.i32(), e.i32(), e.i32()]);
    let plan = e.plan(s, &[e.i32()]);
    assert_eq!(plan.ret.loc, RetLoc::Sret { ptr: stack(0) });
    assert_eq!(plan.callee_pops, 0);
}

#[test]
fn win32_eight_byte_struct_returns_in_edx_eax() {
    // Microsoft "Return values" (x86): structs of 8 bytes return in EDX:EAX; gcc mingw
    // `ix86_return_in_memory` with MS_AGGREGATE_RETURN keeps them in registers.
    let mut e = win();
    let s = e.strukt(&[e.i32(), e.i32()]);
    assert_eq!(e.plan(s, &[]).ret.loc, RetLoc::EdxEax);
}

#[test]
fn win32_one_two_and_four_byte_structs_return_in_eax() {
    // Microsoft "Return values" (x86): structs of 1, 2 or 4 bytes in EAX.
    let mut e = win();
    for members in [vec![e.u8()], vec![e.u8(), e.u8()], vec![e.i16(), e.i16()]] {
        let s = e.strukt(&members);
        assert_eq!(e.plan(s, &[]).ret.loc, RetLoc::Gpr);
    }
}

#[test]
fn win32_three_byte_struct_returns_through_memory() {
    // gcc: a 3-byte struct has BLKmode, and `ix86_return_in_memory` sends BLKmode values to
    // memory before the MS aggregate rule; MSVC and clang also only use registers for 1, 2,
    // 4 and 8 bytes.
    let mut e = win();
    let s = e.strukt(&[e.u8(), e.u8(), e.u8()]);
    assert_eq!(e.plan(s, &[]).ret.loc, RetLoc::Sret { ptr: stack(0) });
}

#[test]
fn stdcall_callee_pops_all_argument_bytes() {
    // Microsoft __stdcall: "the callee cleans the stack"; gcc `ix86_return_pops_args`.
    for e in [linux(), win()] {
        let plan = e.plan_conv(e.void(), &[e.i32(), e.f64(), e.i8()], CallConv::Stdcall);
        assert_eq!(plan.stack_bytes, 16);
        assert_eq!(plan.callee_pops, 16);
    }
}

#[test]
fn stdcall_struct_return_callee_pops_the_hidden_pointer_too() {
    // The hidden pointer is the first stack argument, so a stdcall callee pops it with the
    // others (gcc `ix86_return_pops_args` counts it in the argument size).
    let mut e = win();
    let s = e.strukt(&[e.i32(), e.i32(), e.i32()]);
    let plan = e.plan_conv(s, &[e.i32()], CallConv::Stdcall);
    assert_eq!(plan.ret.loc, RetLoc::Sret { ptr: stack(0) });
    assert_eq!(plan.callee_pops, 8);
}

#[test]
fn fastcall_first_two_dword_arguments_in_ecx_edx() {
    // Microsoft __fastcall: "The first two DWORD or smaller arguments that are found in the
    // argument list from left to right are passed in ECX and EDX registers; all other
    // arguments are passed on the stack"; the callee pops.
    for e in [linux(), win()] {
        let plan = e.plan_conv(e.void(), &[e.i8(), e.i32(), e.i32()], CallConv::Fastcall);
        assert_eq!(loc(&plan, 0), gpr(Gpr::CX));
        assert_eq!(parts(&plan, 0)[0].ext, Ext::Sign);
        assert_eq!(loc(&plan, 1), gpr(Gpr::DX));
        assert_eq!(loc(&plan, 2), stack(0));
        assert_eq!(plan.callee_pops, 4);
    }
}

#[test]
fn fastcall_double_goes_to_stack_without_consuming_a_register() {
    // gcc `function_arg_advance_32`: SFmode/DFmode arguments don't touch the integer
    // register count (no -msseregparm), so the ints after a double still get ECX and EDX.
    let e = win();
    let plan = e.plan_conv(e.void(), &[e.f64(), e.i32(), e.f32(), e.i32()], CallConv::Fastcall);
    assert_eq!(loc(&plan, 0), stack(0));
    assert_eq!(loc(&plan, 1), gpr(Gpr::CX));
    assert_eq!(loc(&plan, 2), stack(8));
    assert_eq!(loc(&plan, 3), gpr(Gpr::DX));
    assert_eq!(plan.callee_pops, 12);
}

#[test]
fn fastcall_long_long_goes_to_the_stack_and_uses_up_the_registers_like_gcc() {
    // gcc `function_arg_32`: "Fastcall allocates the first two DWORD (SImode) or smaller
    // arguments to ECX and EDX if it isn't an aggregate type", but `function_arg_advance_32`
    // still counts the DImode's two words, so the int after it goes to the stack. (MSVC
    // would put that int in ECX: the fixtures are gcc/mingw, see the README.)
    let e = linux();
    let plan = e.plan_conv(e.void(), &[e.i64(), e.i32()], CallConv::Fastcall);
    assert_eq!(loc(&plan, 0), stack(0));
    assert_eq!(loc(&plan, 1), stack(8));
    let after_one = e.plan_conv(e.void(), &[e.i32(), e.i64(), e.i32()], CallConv::Fastcall);
    assert_eq!(loc(&after_one, 0), gpr(Gpr::CX));
    assert_eq!(loc(&after_one, 1), stack(0));
    assert_eq!(loc(&after_one, 2), stack(8), "EDX was used up by the long long");
}

#[test]
fn fastcall_struct_argument_goes_to_the_stack_and_uses_up_a_register_per_dword_like_gcc() {
    // gcc `function_arg_32` keeps aggregates out of registers under fastcall;
    // `function_arg_advance_32` counts their words against ECX/EDX anyway.
    let mut e = win();
    let s = e.strukt(&[e.i16(), e.i16()]);
    let plan = e.plan_conv(e.void(), &[s, e.i32(), e.i32()], CallConv::Fastcall);
    assert_eq!(loc(&plan, 0), stack(0));
    assert_eq!(loc(&plan, 1), gpr(Gpr::DX));
    assert_eq!(loc(&plan, 2), stack(4));
}

#[test]
fn fastcall_struct_return_pointer_takes_ecx() {
    // gcc: the hidden pointer is the first argument, a pointer, so it takes ECX
    // (`x86_this_parameter`: fastcall with an aggregate return has `this` in EDX).
    let mut e = win();
    let s = e.strukt(&[e.i32(), e.i32(), e.i32()]);
    let plan = e.plan_conv(s, &[e.i32(), e.i32()], CallConv::Fastcall);
    assert_eq!(plan.ret.loc, RetLoc::Sret { ptr: gpr(Gpr::CX) });
    assert_eq!(loc(&plan, 0), gpr(Gpr::DX));
    assert_eq!(loc(&plan, 1), stack(0));
    assert_eq!(plan.callee_pops, 4);
}

#[test]
fn thiscall_this_in_ecx_and_the_rest_on_the_stack_callee_pops() {
    // Microsoft __thiscall: "the this pointer is passed in ECX", the other arguments are
    // pushed and the callee pops them; gcc: one register, as fastcall's first.
    for e in [linux(), win()] {
        let mut e = e;
        let this = e.void_ptr();
        let plan = e.plan_conv(e.i32(), &[this, e.i32(), e.i32()], CallConv::Thiscall);
        assert_eq!(loc(&plan, 0), gpr(Gpr::CX));
        assert_eq!(loc(&plan, 1), stack(0));
        assert_eq!(loc(&plan, 2), stack(4));
        assert_eq!(plan.callee_pops, 8);
    }
}

#[test]
fn thiscall_struct_return_pointer_takes_ecx_and_this_goes_to_the_stack_like_gcc() {
    // gcc `x86_this_parameter`: under thiscall with an aggregate return, `this` is at
    // 4(%esp): the hidden pointer, being the first argument, took ECX. MSVC's C++ methods
    // keep `this` in ECX and push the hidden pointer instead; the fixtures are gcc/mingw.
    let mut e = win();
    let s = e.strukt(&[e.i32(), e.i32(), e.i32()]);
    let this = e.void_ptr();
    let plan = e.plan_conv(s, &[this, e.i32()], CallConv::Thiscall);
    assert_eq!(plan.ret.loc, RetLoc::Sret { ptr: gpr(Gpr::CX) });
    assert_eq!(loc(&plan, 0), stack(0));
    assert_eq!(loc(&plan, 1), stack(4));
    assert_eq!(plan.callee_pops, 8);
}

#[test]
fn variadic_stdcall_is_cdecl() {
    // Microsoft __stdcall: "functions that use a variable number of arguments" are
    // __cdecl; gcc ignores stdcall/fastcall on variadic functions (`stdarg_p`).
    for conv in [CallConv::Stdcall, CallConv::Fastcall, CallConv::Thiscall] {
        let e = win();
        let plan = e.plan_variadic(e.void(), &[e.i32()], &[e.i32()], conv);
        assert_eq!(loc(&plan, 0), stack(0), "{conv:?}: no register arguments");
        assert_eq!(plan.callee_pops, 0, "{conv:?}: the caller pops");
    }
}

#[test]
fn i386_linux_stack_aligned_16_win32_4() {
    // i386 psABI 2015 revision, "The Stack Frame": %esp is 16-byte aligned at the call (gcc's default
    // -mpreferred-stack-boundary=4); Win32 only guarantees 4.
    let e = linux();
    assert_eq!(e.plan(e.void(), &[e.i32()]).stack_align, 16);
    let w = win();
    assert_eq!(w.plan(w.void(), &[w.i32()]).stack_align, 4);
}

#[test]
fn x86_64_bit_integers_of_the_data_model() {
    // ILP32: long is 4 bytes on both x86 targets, long long 8.
    for e in [linux(), win()] {
        let plan = e.plan(e.void(), &[e.int(IntKind::Long), e.int(IntKind::LongLong)]);
        assert_eq!(plan.args[0].value, ValueKind::Int { size: 4, signed: true });
        assert_eq!(plan.args[1].value, ValueKind::Int { size: 8, signed: true });
    }
}

// --- The front end every target shares (abi.rs) ---

fn every_target() -> Vec<Env> {
    Target::ALL.into_iter().map(Env::new).collect()
}

#[test]
fn vararg_float_promoted_to_double() {
    // C11 §6.5.2.2p6-7 default argument promotions: a float passed through `...` is a double.
    for mut e in every_target() {
        let fmt = e.void_ptr();
        let plan = e.plan_variadic(e.void(), &[fmt], &[e.f32()], CallConv::Cdecl);
        assert_eq!(plan.args[1].value, ValueKind::F64, "{}", e.t.target());
    }
}

#[test]
fn vararg_short_promoted_to_int() {
    // C11 §6.5.2.2p6 integer promotions: char, short and bool passed through `...` are int.
    for mut e in every_target() {
        let fmt = e.void_ptr();
        let plan = e.plan_variadic(e.void(), &[fmt], &[e.i16(), e.u8(), e.bool()], CallConv::Cdecl);
        for i in 1..4 {
            assert_eq!(plan.args[i].value, ValueKind::Int { size: 4, signed: true }, "{} arg {i}", e.t.target());
        }
    }
}

#[test]
fn fixed_float_parameter_is_not_promoted() {
    // A prototyped float parameter stays a float (promotions apply to `...` only).
    for e in every_target() {
        let plan = e.plan(e.void(), &[e.f32()]);
        assert_eq!(plan.args[0].value, ValueKind::F32);
    }
}

#[test]
fn long_double_is_unsupported_not_guessed() {
    // long double is 80-bit x87 in 12 or 16 bytes on the gcc targets and a double on
    // Windows: the model refuses it rather than guess.
    for e in every_target() {
        let as_param = e.try_plan(e.void(), &[e.long_double()], CallConv::Cdecl);
        assert!(matches!(as_param, Err(PlanError::Unsupported { .. })), "{}: {as_param:?}", e.t.target());
        let as_ret = e.try_plan(e.long_double(), &[], CallConv::Cdecl);
        assert!(matches!(as_ret, Err(PlanError::Unsupported { .. })), "{}: {as_ret:?}", e.t.target());
    }
}

#[test]
fn incomplete_struct_argument_is_an_error() {
    // A struct declared but never defined has no size: it cannot be passed or returned by
    // value (pointers to it are fine).
    for mut e in every_target() {
        let s = e.incomplete_struct();
        let r = e.try_plan(e.void(), &[s], CallConv::Cdecl);
        assert!(matches!(r, Err(PlanError::Invalid { .. })), "{}: {r:?}", e.t.target());
        let r = e.try_plan(s, &[], CallConv::Cdecl);
        assert!(matches!(r, Err(PlanError::Invalid { .. })), "{}: {r:?}", e.t.target());
        let p = e.ptr(s);
        assert!(e.try_plan(e.void(), &[p], CallConv::Cdecl).is_ok());
    }
}

#[test]
fn empty_struct_by_value_is_unsupported() {
    // gcc gives an empty struct size 0 and passes nothing; MSVC C gives it size 4 (C++ 1):
    // the model does not pick one.
    for mut e in every_target() {
        let s = e.strukt(&[]);
        let r = e.try_plan(e.void(), &[s], CallConv::Cdecl);
        assert!(matches!(r, Err(PlanError::Unsupported { .. })), "{}: {r:?}", e.t.target());
    }
}

#[test]
fn void_parameter_is_invalid_and_array_return_is_invalid() {
    // C11 §6.7.6.3: no parameter of type void (other than the lone `(void)`), and a function
    // cannot return an array.
    for mut e in every_target() {
        assert!(matches!(e.try_plan(e.void(), &[e.void()], CallConv::Cdecl), Err(PlanError::Invalid { .. })));
        let arr = e.array(e.i32(), 4);
        assert!(matches!(e.try_plan(arr, &[], CallConv::Cdecl), Err(PlanError::Invalid { .. })));
    }
}

#[test]
fn array_parameter_decays_to_a_pointer() {
    // C11 §6.7.6.3p7: a parameter of array type is adjusted to a pointer.
    for mut e in every_target() {
        let arr = e.array(e.f64(), 100);
        let plan = e.plan(e.void(), &[arr]);
        assert_eq!(plan.args[0].value, ValueKind::Pointer);
    }
}

#[test]
fn extra_arguments_to_a_function_that_is_not_variadic_are_an_error() {
    let e = linux();
    let sig = abi_model::Signature::new(e.void(), vec![e.i32().into()], false, CallConv::Cdecl);
    let r = abi_model::plan_call(&e.t, &sig, &[e.i32().into()]);
    assert!(matches!(r, Err(PlanError::Invalid { .. })), "{r:?}");
}

#[test]
fn win32_struct_holding_a_3_byte_packed_record_returns_in_memory() {
    // gcc `compute_record_mode`: a 3-byte record has no integer mode (BLK), so a record
    // holding one is BLK too and mingw returns it through memory even at 4 bytes:
    // struct { char c; P { char d; short s; } p; }. An array of two 1-byte packed records
    // is HImode, so struct { short s; P { char c; } p[2]; } comes back in eax. mingw 12
    // compiles both so (emulator catalogue, issue 14 §1 nested records).
    let mut e = win();
    let packed = RecordAttrs { packed: true, ..RecordAttrs::default() };
    let p = e.record(RecordKind::Struct, &[e.i8(), e.i16()], packed);
    let s = e.strukt(&[e.i8(), p]);
    assert_eq!(e.t.size_of(s).unwrap(), 4);
    assert_eq!(e.plan(s, &[]).ret.loc, RetLoc::Sret { ptr: stack(0) });
    let one = e.record(RecordKind::Struct, &[e.i8()], packed);
    let two = e.array(one, 2);
    let s = e.strukt(&[e.i16(), two]);
    assert_eq!(e.t.size_of(s).unwrap(), 4);
    assert_eq!(e.plan(s, &[]).ret.loc, RetLoc::Gpr);
}

#[test]
fn i386_small_integer_results_are_widened_by_the_callee_and_not_relied_on_by_the_caller() {
    // i386 psABI 2.2.3 ("Function Returning Scalars or No Value") says only that the value
    // is in %eax; a `_Bool` has bits 1-7 zero. gcc's fixture callers (x86-linux caller_10,
    // `signed char`) store only `al`, and MSVC's re-extend: the callee's widening is ours.
    for t in [Target::X86_LINUX, Target::X86_WIN] {
        assert_eq!(support::return_exts(&Env::new(t)), support::SMALL_RESULTS_WIDENED_BY_TYPE, "{t}");
    }
}
