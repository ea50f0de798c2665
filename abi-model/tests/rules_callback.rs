//! Callback frames: a thunk's view of the same plan a caller follows. Offsets are from the
//! thunk's entry stack pointer (the address of the return address).

#[path = "rules_support.rs"]
mod support;

use abi_model::{CallConv, CallPlan, CallbackFrame, FrameArg, Gpr, IntKind, Loc, Spill, Target, Xmm};
use support::Env;

fn frame(plan: &CallPlan) -> CallbackFrame {
    CallbackFrame::from_plan(plan)
}

fn value_at(f: &CallbackFrame, i: usize) -> i32 {
    match f.args[i] {
        FrameArg::Value { at } => at,
        other => panic!("argument {i} is not a value: {other:?}"),
    }
}

fn spill_of(f: &CallbackFrame, reg: Loc) -> Spill {
    *f.spills.iter().find(|s| s.from == reg).unwrap_or_else(|| panic!("{reg:?} is not spilled"))
}

#[test]
fn callback_stack_args_sit_above_the_return_address() {
    // On entry [esp] is the return address, so the first stack argument is at +4 on x86
    // (i386 psABI, "Function Calling Sequence") and at +8 on x86-64.
    let e = Env::new(Target::X86_LINUX);
    let f = frame(&e.plan(e.void(), &[e.i32(), e.f64(), e.i32()]));
    assert_eq!(value_at(&f, 0), 4);
    assert_eq!(value_at(&f, 1), 8);
    assert_eq!(value_at(&f, 2), 16);
    assert!(f.spills.is_empty());

    let s = Env::new(Target::X64_SYSV);
    let l = s.int(IntKind::Long);
    let f = frame(&s.plan(s.void(), &[l; 7]));
    assert_eq!(value_at(&f, 6), 8);
}

#[test]
fn callback_win64_fifth_argument_is_above_the_shadow_space() {
    // Microsoft "x64 calling convention": return address, then 32 bytes of home space, then
    // argument 5 at [rsp+40] on entry.
    let e = Env::new(Target::X64_WIN);
    let f = frame(&e.plan(e.void(), &[e.i32(); 5]));
    assert_eq!(value_at(&f, 4), 40);
}

#[test]
fn callback_frame_reassembles_split_sysv_struct_contiguously() {
    // psABI §3.2.3: {double, long} arrives as xmm0 (bytes 0..8) and rdi (bytes 8..16); the
    // thunk stores both into one slot so the struct is contiguous in memory.
    let mut e = Env::new(Target::X64_SYSV);
    let l = e.int(IntKind::Long);
    let s = e.strukt(&[e.f64(), l]);
    let f = frame(&e.plan(e.void(), &[s]));
    let at = value_at(&f, 0);
    assert_eq!(spill_of(&f, Loc::Xmm(Xmm(0))), Spill { from: Loc::Xmm(Xmm(0)), size: 8, to: at });
    assert_eq!(spill_of(&f, Loc::Gpr(Gpr::DI)), Spill { from: Loc::Gpr(Gpr::DI), size: 8, to: at + 8 });
    assert!(at + 16 <= -(f.header as i32), "the slot lies inside the save area");
}

#[test]
fn callback_i386_linux_sret_pointer_is_the_first_stack_slot_and_the_thunk_pops_it() {
    // i386 psABI "Return Values": the hidden pointer is the first stack word and the callee
    // returns with `ret $4`.
    let mut e = Env::new(Target::X86_LINUX);
    let s = e.strukt(&[e.i32(), e.i32(), e.i32()]);
    let f = frame(&e.plan(s, &[e.i32()]));
    assert_eq!(f.sret_ptr, Some(4));
    assert_eq!(value_at(&f, 0), 8);
    assert_eq!(f.pops, 4);
}

#[test]
fn callback_win32_cdecl_sret_thunk_pops_nothing() {
    // MSVC/mingw: the caller pops the hidden pointer of a cdecl function.
    let mut e = Env::new(Target::X86_WIN);
    let s = e.strukt(&[e.i32(), e.i32(), e.i32()]);
    let f = frame(&e.plan(s, &[e.i32()]));
    assert_eq!(f.sret_ptr, Some(4));
    assert_eq!(f.pops, 0);
}

#[test]
fn callback_sysv_sret_pointer_in_rdi_is_spilled() {
    // psABI §3.2.3 "Returning": the hidden pointer arrives in %rdi; the thunk keeps it to
    // fill the buffer and to return it in %rax.
    let mut e = Env::new(Target::X64_SYSV);
    let l = e.int(IntKind::Long);
    let s = e.strukt(&[l, l, l]);
    let f = frame(&e.plan(s, &[l]));
    let at = f.sret_ptr.expect("memory return");
    assert_eq!(spill_of(&f, Loc::Gpr(Gpr::DI)).to, at);
    assert_eq!(spill_of(&f, Loc::Gpr(Gpr::SI)).to, value_at(&f, 0), "the first argument came in rsi");
}

#[test]
fn callback_stdcall_pops_argument_bytes() {
    // Microsoft __stdcall: the callee (here the thunk) removes its arguments: `ret 12`.
    let e = Env::new(Target::X86_WIN);
    let f = frame(&e.plan_conv(e.void(), &[e.i32(), e.f64()], CallConv::Stdcall));
    assert_eq!(f.pops, 12);
}

#[test]
fn callback_fastcall_register_arguments_are_spilled_and_stack_ones_read_in_place() {
    // Microsoft __fastcall: ecx and edx carry the first two dwords; the thunk stores them,
    // the third argument stays at [esp+4]; the thunk pops 4.
    let e = Env::new(Target::X86_WIN);
    let f = frame(&e.plan_conv(e.void(), &[e.i32(), e.i32(), e.i32()], CallConv::Fastcall));
    assert_eq!(spill_of(&f, Loc::Gpr(Gpr::CX)).to, value_at(&f, 0));
    assert_eq!(spill_of(&f, Loc::Gpr(Gpr::DX)).to, value_at(&f, 1));
    assert_eq!(value_at(&f, 2), 4);
    assert_eq!(f.pops, 4);
}

#[test]
fn callback_win64_by_reference_argument_is_a_pointer_to_the_callers_copy() {
    // Microsoft "Parameter passing": a 12-byte struct arrives as a pointer in its slot's
    // register; the thunk saves the pointer, not the bytes.
    let mut e = Env::new(Target::X64_WIN);
    let s = e.strukt(&[e.i32(), e.i32(), e.i32()]);
    let f = frame(&e.plan(e.void(), &[e.i32(), s]));
    match f.args[1] {
        FrameArg::ByRef { ptr_at } => assert_eq!(spill_of(&f, Loc::Gpr(Gpr::DX)).to, ptr_at),
        other => panic!("expected by-reference, got {other:?}"),
    }
}

#[test]
fn callback_win64_variadic_double_is_spilled_once() {
    // Microsoft "Varargs": the value is in both xmm1 and rdx; the thunk stores one copy.
    let mut e = Env::new(Target::X64_WIN);
    let fmt = e.void_ptr();
    let f = frame(&e.plan_variadic(e.void(), &[fmt], &[e.f64()], CallConv::Cdecl));
    let at = value_at(&f, 1);
    let into_slot: Vec<&Spill> = f.spills.iter().filter(|s| s.to == at).collect();
    assert_eq!(into_slot.len(), 1);
}

#[test]
fn callback_save_area_is_16_aligned_and_spills_do_not_overlap() {
    // The thunk reserves `save_bytes` below its header; every spill must land inside it and
    // no two spills may write the same bytes.
    let mut plans = Vec::new();
    for target in Target::ALL {
        let mut e = Env::new(target);
        let mixed = e.strukt(&[e.f32(), e.f32(), e.i32()]);
        let big = e.strukt(&[e.f64(), e.f64(), e.f64()]);
        plans.push(e.plan(big, &[e.i32(), e.f64(), mixed, e.i8(), e.f32(), mixed, e.i64()]));
        plans.push(e.plan_conv(e.f64(), &[e.i32(), e.i32(), e.i32()], CallConv::Fastcall));
    }
    for plan in &plans {
        let f = frame(plan);
        assert_eq!(f.save_bytes % 16, 0);
        let low = -((f.header + f.save_bytes) as i32);
        let high = -(f.header as i32);
        let mut ranges: Vec<(i32, i32)> = f.spills.iter().map(|s| (s.to, s.to + s.size as i32)).collect();
        for (start, end) in &ranges {
            assert!(*start >= low && *end <= high, "spill {start}..{end} outside {low}..{high}\n{plan}");
        }
        ranges.sort();
        for w in ranges.windows(2) {
            assert!(w[0].1 <= w[1].0, "overlapping spills {:?}\n{plan}", w);
        }
    }
}
