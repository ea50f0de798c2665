//! x86-64 System V rules (psABI 1.0, §3.2.3 "Parameter Passing"), one test per rule.

#[path = "rules_support.rs"]
mod support;

use abi_model::{ArgPass, CallConv, Ext, Field, Gpr, PlanError, RecordAttrs, RecordKind, RetLoc, Target, ValueKind};
use support::{gpr, loc, locs, parts, stack, xmm, Env};

fn env() -> Env {
    Env::new(Target::X64_SYSV)
}

#[test]
fn sysv_integer_arguments_take_rdi_rsi_rdx_rcx_r8_r9_then_the_stack() {
    // psABI §3.2.3 "Passing", rule 2: INTEGER class takes the next of %rdi, %rsi, %rdx,
    // %rcx, %r8, %r9; once they are used up, arguments go on the stack in eightbyte slots.
    let e = env();
    let l = e.int(abi_model::IntKind::Long);
    let plan = e.plan(e.void(), &[l; 8]);
    let regs = [Gpr::DI, Gpr::SI, Gpr::DX, Gpr::CX, Gpr::R8, Gpr::R9];
    for (i, g) in regs.iter().enumerate() {
        assert_eq!(loc(&plan, i), gpr(*g), "argument {i}");
    }
    assert_eq!(loc(&plan, 6), stack(0));
    assert_eq!(loc(&plan, 7), stack(8));
    assert_eq!(plan.stack_bytes, 16);
    assert_eq!(plan.stack_align, 16);
}

#[test]
fn sysv_ninth_double_goes_to_the_stack() {
    // psABI §3.2.3: SSE class uses %xmm0..%xmm7; the ninth double has none left.
    let e = env();
    let d = e.f64();
    let plan = e.plan(e.void(), &[d; 9]);
    for i in 0..8 {
        assert_eq!(loc(&plan, i), xmm(i as u8));
    }
    assert_eq!(loc(&plan, 8), stack(0));
}

#[test]
fn sysv_integer_and_sse_registers_are_counted_separately() {
    // psABI §3.2.3: each class takes the next register of its own sequence, so an int
    // after a double still takes %rdi.
    let e = env();
    let plan = e.plan(e.void(), &[e.f64(), e.i32(), e.f32(), e.i32()]);
    assert_eq!(loc(&plan, 0), xmm(0));
    assert_eq!(loc(&plan, 1), gpr(Gpr::DI));
    assert_eq!(loc(&plan, 2), xmm(1));
    assert_eq!(loc(&plan, 3), gpr(Gpr::SI));
}

#[test]
fn sysv_struct_of_two_floats_uses_one_xmm() {
    // psABI §3.2.3 classification: both floats fall in eightbyte 0, class SSE.
    let mut e = env();
    let s = e.strukt(&[e.f32(), e.f32()]);
    let plan = e.plan(s, &[s]);
    assert_eq!(locs(&plan, 0), vec![xmm(0)]);
    assert_eq!(plan.ret.loc, RetLoc::Xmm0);
}

#[test]
fn sysv_struct_of_float_and_int_is_one_sse_and_one_integer_eightbyte() {
    // psABI §3.2.3: {float, float, int}: eightbyte 0 holds only floats (SSE), eightbyte 1
    // the int (INTEGER), so the parts go to %xmm0 and %rdi.
    let mut e = env();
    let s = e.strukt(&[e.f32(), e.f32(), e.i32()]);
    let plan = e.plan(e.void(), &[s]);
    let p = parts(&plan, 0);
    assert_eq!((p[0].loc, p[0].offset, p[0].size), (xmm(0), 0, 8));
    assert_eq!((p[1].loc, p[1].offset, p[1].size), (gpr(Gpr::DI), 8, 4));
}

#[test]
fn sysv_float_and_int_in_one_eightbyte_merge_to_integer() {
    // psABI §3.2.3 merge rule (d): INTEGER wins over SSE within one eightbyte.
    let mut e = env();
    let s = e.strukt(&[e.f32(), e.i32()]);
    let plan = e.plan(s, &[s]);
    assert_eq!(locs(&plan, 0), vec![gpr(Gpr::DI)]);
    assert_eq!(plan.ret.loc, RetLoc::Gpr);
}

#[test]
fn sysv_struct_of_int_and_double_returns_in_rax_and_xmm0() {
    // psABI §3.2.3 "Returning": INTEGER eightbyte in %rax, next SSE eightbyte in %xmm0;
    // SSE first and INTEGER second gives %xmm0 then %rax.
    let mut e = env();
    let l = e.int(abi_model::IntKind::Long);
    let int_double = e.strukt(&[l, e.f64()]);
    let double_int = e.strukt(&[e.f64(), l]);
    assert_eq!(e.plan(int_double, &[]).ret.loc, RetLoc::RaxXmm0);
    assert_eq!(e.plan(double_int, &[]).ret.loc, RetLoc::Xmm0Rax);
    let two_longs = e.strukt(&[l, l]);
    assert_eq!(e.plan(two_longs, &[]).ret.loc, RetLoc::RaxRdx);
    let two_doubles = e.strukt(&[e.f64(), e.f64()]);
    assert_eq!(e.plan(two_doubles, &[]).ret.loc, RetLoc::Xmm0Xmm1);
}

#[test]
fn sysv_struct_over_16_bytes_goes_to_memory() {
    // psABI §3.2.3 classification rule 1: an aggregate larger than two eightbytes (and not
    // an SSE vector) is MEMORY: passed as a copy on the stack, returned through a hidden
    // pointer.
    let mut e = env();
    let s = e.strukt(&[e.f64(), e.f64(), e.f64()]);
    let plan = e.plan(s, &[s, e.f64()]);
    assert_eq!(loc(&plan, 0), stack(0));
    assert_eq!(parts(&plan, 0)[0].size, 24);
    assert_eq!(loc(&plan, 1), xmm(0), "the double after it still takes xmm0");
    assert_eq!(plan.stack_bytes, 24);
}

#[test]
fn sysv_memory_return_takes_rdi() {
    // psABI §3.2.3 "Returning" MEMORY: the caller passes the buffer's address in %rdi as if
    // it were the first argument; the callee returns it in %rax. Arguments shift along.
    let mut e = env();
    let l = e.int(abi_model::IntKind::Long);
    let s = e.strukt(&[l, l, l]);
    let plan = e.plan(s, &[l; 6]);
    assert_eq!(plan.ret.loc, RetLoc::Sret { ptr: gpr(Gpr::DI) });
    assert_eq!(loc(&plan, 0), gpr(Gpr::SI));
    assert_eq!(loc(&plan, 4), gpr(Gpr::R9));
    assert_eq!(loc(&plan, 5), stack(0), "only five integer registers are left");
}

#[test]
fn sysv_argument_that_does_not_fit_the_remaining_registers_goes_whole_to_the_stack_and_later_ones_still_use_registers()
{
    // psABI §3.2.3 "Passing": "If there are no registers available for any eightbyte of an
    // argument, the whole argument is passed on the stack"; later arguments still take the
    // registers that are left (gcc does the same).
    let mut e = env();
    let l = e.int(abi_model::IntKind::Long);
    let pair = e.strukt(&[l, l]);
    let plan = e.plan(e.void(), &[l, l, l, l, l, pair, l]);
    assert_eq!(loc(&plan, 4), gpr(Gpr::R8));
    assert_eq!(loc(&plan, 5), stack(0), "two eightbytes, one register left");
    assert_eq!(loc(&plan, 6), gpr(Gpr::R9), "the next long still takes r9");
}

#[test]
fn sysv_packed_struct_with_misaligned_member_is_memory() {
    // psABI §3.2.3 classification rule 1: an object with unaligned fields has class MEMORY,
    // even when it is small.
    let mut e = env();
    let packed = RecordAttrs { packed: true, ..RecordAttrs::default() };
    let s = e.record(RecordKind::Struct, &[e.u8(), e.i32()], packed);
    assert_eq!(e.t.size_of(s).unwrap(), 5);
    let plan = e.plan(s, &[s]);
    assert_eq!(loc(&plan, 0), stack(0));
    assert!(matches!(plan.ret.loc, RetLoc::Sret { .. }));
}

#[test]
fn sysv_packed_struct_whose_members_stay_aligned_is_still_classified() {
    // psABI §3.2.3: only *unaligned* fields force MEMORY; packing that moves nothing keeps
    // the struct in registers (gcc checks each field's bit position).
    let mut e = env();
    let packed = RecordAttrs { packed: true, ..RecordAttrs::default() };
    let s = e.record(RecordKind::Struct, &[e.i32(), e.i32()], packed);
    let plan = e.plan(e.void(), &[s]);
    assert_eq!(locs(&plan, 0), vec![gpr(Gpr::DI)]);
}

#[test]
fn sysv_16_byte_aligned_struct_on_stack_is_16_aligned() {
    // psABI §3.2.3 "Passing": stack arguments are eightbyte aligned, except types with
    // 16-byte alignment, which get a 16-byte-aligned slot.
    let mut e = env();
    let l = e.int(abi_model::IntKind::Long);
    let aligned = RecordAttrs { aligned: Some(16), ..RecordAttrs::default() };
    let s = e.record(RecordKind::Struct, &[l, l, l], aligned);
    assert_eq!(e.t.size_of(s).unwrap(), 32);
    let mut params = vec![l; 7];
    params.push(s);
    let plan = e.plan(e.void(), &params);
    assert_eq!(loc(&plan, 6), stack(0));
    assert_eq!(loc(&plan, 7), stack(16), "skips 8 bytes to reach a 16-byte boundary");
    assert_eq!(plan.stack_bytes, 48);
}

#[test]
fn sysv_variadic_al_counts_vector_registers() {
    // psABI §3.5.7 (and §3.2.3 figure 3.4): for a call of a variadic function %al holds an
    // upper bound on the number of vector registers used; gcc passes the exact count.
    let mut e = env();
    let fmt = e.void_ptr();
    let plan = e.plan_variadic(e.i32(), &[fmt], &[e.f64(), e.i32(), e.f64()], CallConv::Cdecl);
    assert_eq!(plan.al, Some(2));
    let none = e.plan_variadic(e.i32(), &[fmt], &[e.i32()], CallConv::Cdecl);
    assert_eq!(none.al, Some(0), "al is set, to 0, even when no vector register is used");
    let fixed = e.plan(e.i32(), &[fmt]);
    assert_eq!(fixed.al, None, "non-variadic calls leave al alone");
}

#[test]
fn sysv_complex_float_is_one_sse_eightbyte() {
    // psABI §3.2.3: `_Complex float` is one SSE eightbyte (both parts in %xmm0's low 8 bytes).
    let e = env();
    let plan = e.plan(e.cf32(), &[e.cf32()]);
    assert_eq!(locs(&plan, 0), vec![xmm(0)]);
    assert_eq!(plan.ret.loc, RetLoc::Xmm0);
}

#[test]
fn sysv_complex_double_takes_two_xmm_registers() {
    // psABI §3.2.3: `_Complex double` is two SSE eightbytes: real part in one register,
    // imaginary part in the next; returned in %xmm0 and %xmm1.
    let e = env();
    let plan = e.plan(e.cf64(), &[e.cf64()]);
    assert_eq!(locs(&plan, 0), vec![xmm(0), xmm(1)]);
    assert_eq!(plan.ret.loc, RetLoc::Xmm0Xmm1);
}

#[test]
fn sysv_union_of_float_and_int_is_integer() {
    // psABI §3.2.3 merge rule (d): the union's one eightbyte is INTEGER (int) merged with
    // SSE (float).
    let mut e = env();
    let u = e.union(&[e.f32(), e.i32()]);
    let plan = e.plan(u, &[u]);
    assert_eq!(locs(&plan, 0), vec![gpr(Gpr::DI)]);
    assert_eq!(plan.ret.loc, RetLoc::Gpr);
}

#[test]
fn sysv_array_member_of_three_floats_fills_two_sse_eightbytes() {
    // psABI §3.2.3: floats 0-1 in eightbyte 0, float 2 in eightbyte 1, both SSE (gcc
    // classifies the first element and repeats its class over the array's eightbytes).
    let mut e = env();
    let arr = e.array(e.f32(), 3);
    let s = e.strukt(&[arr]);
    let plan = e.plan(e.void(), &[s]);
    let p = parts(&plan, 0);
    assert_eq!((p[0].loc, p[0].size), (xmm(0), 8));
    assert_eq!((p[1].loc, p[1].offset, p[1].size), (xmm(1), 8, 4));
}

#[test]
fn sysv_bit_fields_are_integer_class() {
    // psABI §3.2.3: bit-fields are classified INTEGER (gcc classify_argument handles them
    // before the member type).
    let mut e = env();
    let fields = vec![Field::bits(Some("a"), e.i32(), 3), Field::named("f", e.f32())];
    let s = e.record_of(RecordKind::Struct, fields, RecordAttrs::default());
    let plan = e.plan(e.void(), &[s]);
    assert_eq!(locs(&plan, 0), vec![gpr(Gpr::DI)]);
}

#[test]
fn sysv_trailing_padding_eightbyte_takes_no_register() {
    // psABI §3.2.3: an eightbyte holding only padding is NO_CLASS; gcc
    // `construct_container` gives it no register. {double} aligned to 16 is 16 bytes.
    let mut e = env();
    let aligned = RecordAttrs { aligned: Some(16), ..RecordAttrs::default() };
    let s = e.record(RecordKind::Struct, &[e.f64()], aligned);
    let plan = e.plan(s, &[s, e.f64()]);
    assert_eq!(locs(&plan, 0), vec![xmm(0)]);
    assert_eq!(loc(&plan, 1), xmm(1));
    assert_eq!(plan.ret.loc, RetLoc::Xmm0);
}

#[test]
fn sysv_small_integers_are_extended_by_the_caller() {
    // The psABI leaves the upper bits of bool/char/short arguments unspecified; gcc and
    // clang callers extend them to 32 bits (sign for signed, zero for unsigned and bool),
    // so the plan does too (callees must not rely on it).
    let e = env();
    let plan = e.plan(e.void(), &[e.i8(), e.u16(), e.bool(), e.i32()]);
    let ext: Vec<Ext> = (0..4).map(|i| parts(&plan, i)[0].ext).collect();
    assert_eq!(ext, vec![Ext::Sign, Ext::Zero, Ext::Zero, Ext::None]);
}

#[test]
fn sysv_long_is_64_bits_lp64() {
    // psABI §3.1.2 Figure 3.1: LP64, `long` and pointers are eight bytes.
    let mut e = env();
    let p = e.void_ptr();
    let plan = e.plan(e.int(abi_model::IntKind::Long), &[e.int(abi_model::IntKind::Long), p]);
    assert_eq!(plan.args[0].value, ValueKind::Int { size: 8, signed: true });
    assert_eq!(plan.args[1].value, ValueKind::Pointer);
    assert_eq!(plan.to_string().lines().next(), Some("  arg0: i64 rdi"));
}

#[test]
fn sysv_struct_with_long_double_member_is_unsupported_not_guessed() {
    // A long double member is class X87, which the model does not plan: it must refuse.
    let mut e = env();
    let s = e.t.new_record(RecordKind::Struct, Some("ld"));
    let err = e.t.define_record(s, vec![Field::named("x", e.long_double())], RecordAttrs::default());
    match err {
        Err(abi_model::TypeError::Unsupported { .. }) => {}
        Ok(()) => {
            let r = e.try_plan(e.void(), &[s], CallConv::Cdecl);
            assert!(matches!(r, Err(PlanError::Unsupported { .. })), "{r:?}");
        }
        Err(other) => panic!("expected unsupported, got {other:?}"),
    }
}

#[test]
fn sysv_stdcall_keyword_means_the_one_x86_64_convention() {
    // On x86-64 the x86 convention keywords are accepted and ignored (gcc warns and uses the
    // target's convention): the plan is the cdecl plan.
    let e = env();
    let params = [e.i32(), e.f64(), e.i32()];
    let cdecl = e.plan(e.i32(), &params);
    for conv in [CallConv::Stdcall, CallConv::Fastcall, CallConv::Thiscall] {
        assert_eq!(e.plan_conv(e.i32(), &params, conv), cdecl, "{conv:?}");
    }
    assert_eq!(cdecl.callee_pops, 0);
    assert!(matches!(cdecl.args[0].pass, ArgPass::Direct(_)));
}

// --- Nested packed/aligned records: gcc `classify_argument` judges every scalar member at
// its ABSOLUTE offset from the start of the outermost argument (for an array member, only the
// first element), never a nested record's own alignment. In the names below, "P" is
// `struct __attribute__((packed))`; each case was found by a differential test against gcc
// (issue 14 §1) and is compiled into the emulator fixtures.

fn packed() -> RecordAttrs {
    RecordAttrs { packed: true, ..RecordAttrs::default() }
}

fn is_sret(plan: &abi_model::CallPlan) -> bool {
    matches!(plan.ret.loc, RetLoc::Sret { .. })
}

#[test]
fn sysv_rule_scalar_at_a_misaligned_absolute_offset_inside_a_nested_packed_record_is_memory() {
    // gcc classify_argument: a scalar whose absolute bit offset is not a multiple of its mode
    // size sends the whole argument to memory. struct { char c; P { short s; } p; }: `s` sits
    // at absolute offset 1 (P alone is fine; its own alignment 1 is met).
    let mut e = env();
    let p = e.record(RecordKind::Struct, &[e.i16()], packed());
    let s = e.strukt(&[e.i8(), p]);
    assert_eq!(e.t.size_of(s).unwrap(), 3);
    let plan = e.plan(e.void(), &[s, e.i32()]);
    assert_eq!(loc(&plan, 0), stack(0));
    assert_eq!(loc(&plan, 1), gpr(Gpr::DI), "the int still takes the first register");
}

#[test]
fn sysv_rule_long_at_absolute_offset_4_inside_a_nested_packed_record_is_memory_both_ways() {
    // struct { int a; P { long x; } p; } is 12 bytes; `x` at absolute offset 4 is
    // misaligned for its 8-byte mode: memory as an argument and as a return (hidden pointer
    // in rdi, the int moves to rsi).
    let mut e = env();
    let l = e.int(abi_model::IntKind::Long);
    let p = e.record(RecordKind::Struct, &[l], packed());
    let s = e.strukt(&[e.i32(), p]);
    assert_eq!(e.t.size_of(s).unwrap(), 12);
    let arg = e.plan(e.void(), &[s, e.i32()]);
    assert_eq!(loc(&arg, 0), stack(0));
    assert_eq!(loc(&arg, 1), gpr(Gpr::DI));
    let ret = e.plan(s, &[e.i32()]);
    assert!(is_sret(&ret), "{:?}", ret.ret.loc);
    assert_eq!(loc(&ret, 0), gpr(Gpr::SI));
}

#[test]
fn sysv_rule_float_array_at_a_misaligned_absolute_offset_is_memory() {
    // struct { char c; P { float v[3]; } p; } (13 bytes): the array's first element sits at
    // absolute offset 1, so the argument is memory (no 5-byte piece ever goes to an xmm).
    let mut e = env();
    let arr = e.array(e.f32(), 3);
    let p = e.record(RecordKind::Struct, &[arr], packed());
    let s = e.strukt(&[e.i8(), p]);
    assert_eq!(e.t.size_of(s).unwrap(), 13);
    let plan = e.plan(s, &[s]);
    assert_eq!(loc(&plan, 0), stack(0));
    assert!(is_sret(&plan));
}

#[test]
fn sysv_rule_float_at_absolute_offset_1_returns_in_memory() {
    // struct { char c; P { float f; } p; } returned: the float at absolute offset 1 makes it
    // MEMORY, so the caller passes a hidden pointer in rdi and the callee writes through it.
    let mut e = env();
    let p = e.record(RecordKind::Struct, &[e.f32()], packed());
    let s = e.strukt(&[e.i8(), p]);
    let plan = e.plan(s, &[e.i32()]);
    assert_eq!(plan.ret.loc, RetLoc::Sret { ptr: gpr(Gpr::DI) });
    assert_eq!(loc(&plan, 0), gpr(Gpr::SI));
}

#[test]
fn sysv_rule_nested_packed_record_whose_members_are_aligned_in_the_outer_one_uses_registers() {
    // struct { float f; P { uint32_t a; uint64_t b; } p; } (16 bytes): inside P alone `b` is
    // at offset 4, but P sits at offset 4, so `a` is at 4 and `b` at 8: both aligned. Eightbyte
    // 0 is float+int = INTEGER, eightbyte 1 INTEGER: rdi and rsi, returned in rax:rdx.
    let mut e = env();
    let p = e.record(
        RecordKind::Struct,
        &[e.int(abi_model::IntKind::UInt), e.int(abi_model::IntKind::ULongLong)],
        packed(),
    );
    let s = e.strukt(&[e.f32(), p]);
    assert_eq!(e.t.size_of(s).unwrap(), 16);
    let plan = e.plan(s, &[s]);
    assert_eq!(locs(&plan, 0), vec![gpr(Gpr::DI), gpr(Gpr::SI)]);
    assert_eq!(plan.ret.loc, RetLoc::RaxRdx);
}

#[test]
fn sysv_rule_over_aligned_record_at_a_packed_offset_is_judged_by_its_members() {
    // P struct { int i; struct __attribute__((aligned(8))) { float f; } b; } (12 bytes): `b`
    // sits at offset 4 below its own alignment 8, but gcc never checks a record's alignment,
    // only its scalars': `f` at absolute offset 4 is aligned. Eightbyte 0 is INTEGER; eightbyte
    // 1 is only `b`'s padding (NO_CLASS, no register).
    let mut e = env();
    let aligned8 = RecordAttrs { aligned: Some(8), ..RecordAttrs::default() };
    let b = e.record(RecordKind::Struct, &[e.f32()], aligned8);
    let s = e.record(RecordKind::Struct, &[e.i32(), b], packed());
    assert_eq!(e.t.size_of(s).unwrap(), 12);
    let plan = e.plan(s, &[s]);
    assert_eq!(locs(&plan, 0), vec![gpr(Gpr::DI)]);
    assert_eq!(plan.ret.loc, RetLoc::Gpr);
}

#[test]
fn sysv_rule_only_the_first_element_of_an_array_member_is_checked_for_alignment() {
    // gcc classifies an array by its first element (placed at the array's offset) and repeats
    // its classes. struct { char pad[3]; P { char c; float f; } a[2]; } (13 bytes): a[0].f is
    // at absolute offset 4 (aligned), a[1].f at 9 (not): gcc still passes it in rdi and rsi.
    let mut e = env();
    let pad = e.array(e.i8(), 3);
    let el = e.record(RecordKind::Struct, &[e.i8(), e.f32()], packed());
    let arr = e.array(el, 2);
    let s = e.strukt(&[pad, arr]);
    assert_eq!(e.t.size_of(s).unwrap(), 13);
    let plan = e.plan(e.void(), &[s]);
    assert_eq!(locs(&plan, 0), vec![gpr(Gpr::DI), gpr(Gpr::SI)]);
}

#[test]
fn sysv_rule_zero_length_array_at_a_misaligned_offset_is_memory() {
    // gcc classifies a zero-length array `int z[0]` by its element when it does not start an
    // eightbyte: P struct { char c; int z[0]; } (1 byte) goes to memory because `z` would put
    // an int at offset 1 (gcc 12 pushes it on the stack).
    let mut e = env();
    let z = e.array(e.i32(), 0);
    let s = e.record(RecordKind::Struct, &[e.i8(), z], packed());
    assert_eq!(e.t.size_of(s).unwrap(), 1);
    let plan = e.plan(e.void(), &[s]);
    assert_eq!(loc(&plan, 0), stack(0));
}

#[test]
fn sysv_rule_callback_frame_of_a_nested_packed_record_follows_the_same_classification() {
    // The callback side shares the plan: a thunk for `void f(S, int)` with
    // S = struct { int a; P { long x; } p; } finds S on the stack above the return address
    // and the int in rdi; for S = struct { float f; P { uint32_t a; uint64_t b; } p; } it
    // reassembles S from rdi and rsi.
    let mut e = env();
    let l = e.int(abi_model::IntKind::Long);
    let p = e.record(RecordKind::Struct, &[l], packed());
    let mem = e.strukt(&[e.i32(), p]);
    let f = abi_model::CallbackFrame::from_plan(&e.plan(mem, &[mem, e.i32()]));
    assert_eq!(f.args[0], abi_model::FrameArg::Value { at: 8 });
    assert!(f.sret_ptr.is_some(), "the return comes back through a hidden pointer");
    assert_eq!(f.spills.iter().map(|s| s.from).collect::<Vec<_>>(), vec![gpr(Gpr::DI), gpr(Gpr::SI)]);

    let p2 = e.record(
        RecordKind::Struct,
        &[e.int(abi_model::IntKind::UInt), e.int(abi_model::IntKind::ULongLong)],
        packed(),
    );
    let regs = e.strukt(&[e.f32(), p2]);
    let f = abi_model::CallbackFrame::from_plan(&e.plan(regs, &[regs]));
    assert_eq!(f.sret_ptr, None);
    let abi_model::FrameArg::Value { at } = f.args[0] else { panic!("a value") };
    let spilled: Vec<_> = f.spills.iter().map(|s| (s.from, s.to - at)).collect();
    assert_eq!(spilled, vec![(gpr(Gpr::DI), 0), (gpr(Gpr::SI), 8)]);
}

#[test]
fn sysv_rule_a_union_bit_field_is_checked_like_an_integer_of_its_width() {
    // gcc's union walk has no bit-field case: `int x:9` is the C front end's 9-bit integer
    // (a 2-byte mode) and must sit at an even absolute offset. P struct { char c; P union {
    // int x:9; } u; } (3 bytes) goes to memory; with `int x:3` (a 1-byte mode) the same shape
    // (5 bytes, the union unpacked) stays in rdi. gcc 12 compiles both so.
    let mut e = env();
    let nine = e.record_of(RecordKind::Union, vec![Field::bits(Some("x"), e.i32(), 9)], packed());
    let s = e.record(RecordKind::Struct, &[e.i8(), nine], packed());
    assert_eq!(e.t.size_of(s).unwrap(), 3);
    assert_eq!(loc(&e.plan(e.void(), &[s]), 0), stack(0));
    let three = e.record_of(RecordKind::Union, vec![Field::bits(Some("x"), e.i32(), 3)], RecordAttrs::default());
    let s = e.record(RecordKind::Struct, &[e.i8(), three], packed());
    assert_eq!(e.t.size_of(s).unwrap(), 5);
    assert_eq!(locs(&e.plan(e.void(), &[s]), 0), vec![gpr(Gpr::DI)]);
}

// --- Zero-width bit-fields in unions. gcc 12's C front end gives a `T : 0` member the
// integer type of 0 bits, whose mode is QImode (the smallest integer mode); classify_argument's
// union walk has no bit-field case, so the member is classified as a 1-byte INTEGER at the
// union's offset, whatever `T` was. Its record walk skips zero-width bit-fields instead
// (the "ABI ... changed in GCC 12.1" note). Checked with gcc 12.2 -O2 -S.

#[test]
fn sysv_rule_zero_width_bit_field_in_a_union_is_a_one_byte_integer() {
    // union { float f; int : 0; }: rdi, returned in rax (not xmm0).
    let mut e = env();
    let fields = vec![Field::named("f", e.f32()), Field::bits(None, e.i32(), 0)];
    let u = e.record_of(RecordKind::Union, fields, RecordAttrs::default());
    assert_eq!(e.t.size_of(u).unwrap(), 4);
    let plan = e.plan(u, &[u]);
    assert_eq!(locs(&plan, 0), vec![gpr(Gpr::DI)]);
    assert_eq!(plan.ret.loc, RetLoc::Gpr);
}

#[test]
fn sysv_rule_zero_width_bit_field_in_a_union_makes_only_the_first_eightbyte_integer() {
    // union { double d[2]; long : 0; }: eightbyte 0 INTEGER (rdi), eightbyte 1 stays SSE
    // (xmm0), whatever the `: 0` member's declared type (`char : 0` likewise).
    for ty in [abi_model::IntKind::Long, abi_model::IntKind::Char] {
        let mut e = env();
        let arr = e.array(e.f64(), 2);
        let fields = vec![Field::named("d", arr), Field::bits(None, e.int(ty), 0)];
        let u = e.record_of(RecordKind::Union, fields, RecordAttrs::default());
        let plan = e.plan(u, &[u]);
        assert_eq!(locs(&plan, 0), vec![gpr(Gpr::DI), xmm(0)], "{ty:?}");
    }
}

#[test]
fn sysv_rule_zero_width_bit_field_in_a_nested_union_counts_at_the_union_offset_never_misaligned() {
    // struct { float a; union { float f[3]; long : 0; } u; } (16 bytes): the union sits at
    // offset 4, in eightbyte 0, which becomes INTEGER; the `long : 0` is one byte, so it is
    // neither misaligned (no MEMORY) nor reaching eightbyte 1 (SSE): rdi, xmm0.
    let mut e = env();
    let arr = e.array(e.f32(), 3);
    let l = e.int(abi_model::IntKind::Long);
    let u =
        e.record_of(RecordKind::Union, vec![Field::named("f", arr), Field::bits(None, l, 0)], RecordAttrs::default());
    let s = e.strukt(&[e.f32(), u]);
    assert_eq!(e.t.size_of(s).unwrap(), 16);
    let plan = e.plan(s, &[s]);
    assert_eq!(locs(&plan, 0), vec![gpr(Gpr::DI), xmm(0)]);
}

#[test]
fn sysv_rule_zero_width_bit_field_in_a_struct_is_ignored() {
    // struct { float a; int : 0; float b; } and a union holding struct { int : 0; }: the
    // record walk skips zero-width bit-fields (gcc 12), so both stay SSE.
    let mut e = env();
    let fields = vec![Field::named("a", e.f32()), Field::bits(None, e.i32(), 0), Field::named("b", e.f32())];
    let s = e.record_of(RecordKind::Struct, fields, RecordAttrs::default());
    let plan = e.plan(s, &[s]);
    assert_eq!(locs(&plan, 0), vec![xmm(0)]);
    let inner = e.record_of(RecordKind::Struct, vec![Field::bits(None, e.i32(), 0)], RecordAttrs::default());
    let u = e.record_of(
        RecordKind::Union,
        vec![Field::named("f", e.f32()), Field::named("e", inner)],
        RecordAttrs::default(),
    );
    let plan = e.plan(u, &[u]);
    assert_eq!(locs(&plan, 0), vec![xmm(0)]);
}

#[test]
fn sysv_small_integer_results_are_widened_by_the_callee_and_not_relied_on_by_the_caller() {
    // psABI §3.2.3 ("Returning of Values") places an INTEGER result in %rax and says nothing
    // of the bits above a char or short (a `_Bool` has bits 1-7 zero, Figure 3.1). gcc's
    // fixture caller_10 stores only `al` after the call; a thunk widens anyway, for free.
    assert_eq!(support::return_exts(&env()), support::SMALL_RESULTS_WIDENED_BY_TYPE);
}

#[test]
fn sysv_int128_is_two_integer_eightbytes_never_split_and_16_aligned_on_the_stack() {
    // psABI §3.2.3: "__int128 ... is treated as if it were implemented as
    // `typedef struct { long low, high; } __int128;` with the exception that arguments of
    // type __int128 that are stored in memory must be aligned on a 16-byte boundary"; and an
    // argument whose eightbytes do not all find registers goes whole to memory.
    let mut e = env();
    let i128 = e.t.try_wide_int(16, true).unwrap();
    let l = e.int(abi_model::IntKind::Long);
    let plan = e.plan(i128, &[i128, i128]);
    assert_eq!(plan.args[0].value, ValueKind::Int { size: 16, signed: true });
    assert_eq!(locs(&plan, 0), vec![gpr(Gpr::DI), gpr(Gpr::SI)]);
    assert_eq!(parts(&plan, 0).iter().map(|p| (p.offset, p.size)).collect::<Vec<_>>(), vec![(0, 8), (8, 8)]);
    assert_eq!(locs(&plan, 1), vec![gpr(Gpr::DX), gpr(Gpr::CX)]);
    assert_eq!(plan.ret.loc, RetLoc::RaxRdx, "returned in rax:rdx");
    // One register left: not split; the long after it still takes r9.
    let plan = e.plan(e.void(), &[l, l, l, l, l, i128, l]);
    assert_eq!(loc(&plan, 5), stack(0));
    assert_eq!(loc(&plan, 6), gpr(Gpr::R9));
    // On the stack after one eightbyte: the next 16-byte boundary. A struct of two longs,
    // which is 8-aligned, takes the next eightbyte: the rule is the integer's own.
    let mut params = vec![l; 7];
    params.push(i128);
    let plan = e.plan(e.void(), &params);
    assert_eq!(loc(&plan, 7), stack(16), "skips 8 bytes to reach a 16-byte boundary");
    assert_eq!(plan.stack_bytes, 32);
    let two_longs = e.strukt(&[l, l]);
    params[7] = two_longs;
    assert_eq!(loc(&e.plan(e.void(), &params), 7), stack(8), "a struct of two longs is not 16-aligned");
    let u128 = e.t.try_wide_int(16, false).unwrap();
    assert_eq!(e.plan(u128, &[]).ret.loc, RetLoc::RaxRdx);
}

#[test]
fn sysv_struct_holding_int128_is_two_integer_eightbytes_and_16_aligned_on_the_stack() {
    // gcc classifies a TImode member as INTEGER in both its eightbytes, checked at its own
    // 16-byte alignment (emu-harness catalogue: the records holding `__int128`).
    let mut e = env();
    let i128 = e.t.try_wide_int(16, true).unwrap();
    let (l, d) = (e.int(abi_model::IntKind::Long), e.f64());
    let s = e.strukt(&[i128]);
    let plan = e.plan(s, &[s]);
    assert_eq!(locs(&plan, 0), vec![gpr(Gpr::DI), gpr(Gpr::SI)]);
    assert_eq!(plan.ret.loc, RetLoc::RaxRdx);
    // INTEGER wins over the doubles' SSE in a union.
    let two = e.array(d, 2);
    let u = e.union(&[i128, two]);
    assert_eq!(locs(&e.plan(e.void(), &[u]), 0), vec![gpr(Gpr::DI), gpr(Gpr::SI)]);
    // No room for both eightbytes: the struct goes whole to the stack, 16-aligned.
    let plan = e.plan(e.void(), &[l, l, l, l, l, l, l, s]);
    assert_eq!(loc(&plan, 6), stack(0));
    assert_eq!(loc(&plan, 7), stack(16), "the struct's own 16-byte alignment");
    // Misaligned in a packed struct, or 32 bytes: MEMORY (a struct of two longs is not).
    let packed = RecordAttrs { packed: true, ..RecordAttrs::default() };
    let p = e.record(RecordKind::Struct, &[e.u8(), i128], packed);
    assert_eq!(loc(&e.plan(e.void(), &[p]), 0), stack(0));
    let big = e.strukt(&[l, i128]);
    assert!(matches!(e.plan(big, &[]).ret.loc, RetLoc::Sret { .. }));
}
