//! Structural invariants of every curated stub and thunk, checked by decoding the bytes with
//! iced-x86 and tracking rsp symbolically (`common::track`): the Microsoft x64 rules that a
//! reviewer would otherwise check by eye in the snapshots.

mod common;

use abi_model::callback::CallbackFrame;
use abi_model::lua::helpers::Helper;
use abi_model::lua::steps::{stub_program, thunk_program};
use abi_model::lua::BackendError;
use abi_model::{plan_call, CallConv, Field, IntKind, RecordAttrs, RecordKind, Signature, Target, TypeTable};
use backend_x64_win::frame::{MAX_FRAME, PAGE};
use backend_x64_win::{lower_stub, lower_thunk};
use common::{cases, env, track, Trace, BASE};

fn stub_trace(case: &common::Case) -> Trace {
    let code = lower_stub(&case.stub_program(), BASE, &env()).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    track(&code, BASE)
}

fn thunk_trace(case: &common::Case) -> Option<Trace> {
    let program = case.thunk_program()?;
    let code = lower_thunk(&program, BASE, &env()).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    Some(track(&code, BASE))
}

/// rsp at the target call: the body stack pointer, where the outgoing area starts.
fn target_call_rsp(trace: &Trace) -> i64 {
    let targets: Vec<_> = trace.calls.iter().filter(|c| c.helper.is_none()).collect();
    assert_eq!(targets.len(), 1, "exactly one target call: {:?}", trace.calls);
    targets[0].rsp
}

#[test]
fn every_stub_and_thunk_keeps_the_frame_rules() {
    // Aligned calls, no write below rsp, callee-saved registers saved before use and
    // restored in order, ret with rsp back at entry.
    for case in cases() {
        let t = stub_trace(&case);
        assert!(t.errors.is_empty(), "stub {}: {:#?}", case.name, t.errors);
        if let Some(t) = thunk_trace(&case) {
            assert!(t.errors.is_empty(), "thunk {}: {:#?}", case.name, t.errors);
        }
    }
}

#[test]
fn each_helper_call_has_its_home_space_below_the_outgoing_area() {
    for case in cases() {
        let t = stub_trace(&case);
        let body = target_call_rsp(&t);
        assert_eq!(Some(body), t.body, "{}: the target is called at the body stack pointer", case.name);
        for call in t.calls.iter().filter(|c| c.helper.is_some()) {
            let home = i64::from(call.helper.unwrap().plan(Target::X64_WIN).frame_bytes());
            assert_eq!(home, 32);
            assert!(
                call.rsp + home <= body,
                "{}: helper call at {:x} has [rsp, rsp+{home}) overlapping the outgoing area",
                case.name,
                call.ip
            );
        }
    }
}

#[test]
fn stubs_never_write_the_targets_home_space() {
    // [body, body+32) belongs to the callee; the model puts nothing there, nor may we.
    for case in cases() {
        let t = stub_trace(&case);
        let body = target_call_rsp(&t);
        for w in &t.writes {
            let end = w.at + w.size as i64;
            assert!(
                end <= body || w.at >= body + 32,
                "{}: write at {:x} into the target's home space",
                case.name,
                w.ip
            );
        }
    }
}

#[test]
fn thunks_write_only_their_own_frame_and_pop_what_the_frame_says() {
    for case in cases() {
        let Some(t) = thunk_trace(&case) else { continue };
        for w in &t.writes {
            // Below the saved rbp at E-8: never the return address or the caller's frame.
            assert!(w.at + w.size as i64 <= -8, "{}: thunk write at {:x} reaches E{:+}", case.name, w.ip, w.at);
        }
        let frame = CallbackFrame::from_plan(&case.plan);
        assert_eq!(t.rets, vec![frame.pops as u16], "{}", case.name);
    }
}

#[test]
fn stubs_call_the_staged_target_and_return_through_one_ret() {
    for case in cases() {
        let t = stub_trace(&case);
        assert_eq!(t.rets, vec![0], "{}", case.name);
        let helpers: Vec<Helper> = t.calls.iter().filter_map(|c| c.helper).collect();
        assert_eq!(helpers.first(), Some(&Helper::ArgCount), "{}", case.name);
        assert_eq!(helpers.last(), Some(&Helper::ArgCountError), "{}: the failure path comes last", case.name);
    }
}

fn big_struct_plan(bytes: u32) -> abi_model::CallPlan {
    let mut t = TypeTable::new(Target::X64_WIN);
    let uchar = t.int(IntKind::UChar);
    let arr = t.array_of(uchar, abi_model::ArrayLen::Fixed(u64::from(bytes)));
    let s = t.new_record(RecordKind::Struct, Some("big"));
    t.define_record(s, vec![Field::named("bytes", arr)], RecordAttrs::default()).unwrap();
    let int = t.int(IntKind::Int);
    plan_call(&t, &Signature::new(int, vec![s.into(), s.into()], false, CallConv::Cdecl), &[]).unwrap()
}

#[test]
fn frames_of_a_page_or_more_are_probed_page_by_page_top_down() {
    // Two 5000-byte by-reference copies: an outgoing area of three pages.
    let program = stub_program(&big_struct_plan(5000), 1);
    assert!(program.out_bytes > 2 * PAGE);
    let code = lower_stub(&program, BASE, &env()).unwrap();
    let t = track(&code, BASE);
    assert!(t.errors.is_empty(), "{:#?}", t.errors);
    let body = t.body.unwrap();
    // Every probe is within one page of the lowest address touched so far, going down,
    // and the last reaches the bottom of the frame.
    let mut lowest = -16; // the two pushes touched [E-16, E)
    assert!(!t.probes.is_empty());
    for p in &t.probes {
        assert!(*p < lowest && lowest - p <= i64::from(PAGE), "probe at E{p:+} after E{lowest:+}");
        lowest = *p;
    }
    assert_eq!(lowest, body, "the last probe touches the frame's bottom");
}

#[test]
fn small_frames_are_not_probed() {
    for case in cases() {
        assert!(stub_trace(&case).probes.is_empty(), "{}", case.name);
    }
}

#[test]
fn a_frame_beyond_the_default_stack_is_an_error_not_code() {
    let program = stub_program(&big_struct_plan(MAX_FRAME), 1);
    match lower_stub(&program, BASE, &env()) {
        Err(BackendError::Unsupported(msg)) => assert!(msg.contains("exceeds"), "{msg}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn a_thunk_for_a_big_by_reference_struct_stays_small() {
    let frame = CallbackFrame::from_plan(&big_struct_plan(5000));
    let code = lower_thunk(&thunk_program(&frame), BASE, &env()).unwrap();
    let t = track(&code, BASE);
    assert!(t.errors.is_empty() && t.probes.is_empty(), "{t:#?}");
}

/// The tracker itself must catch each rule it checks; otherwise the tests above prove
/// nothing.
mod tracker_catches {
    use super::common::track;
    use dynasmrt::{dynasm, x64::X64Relocation, DynasmApi, VecAssembler};

    fn errors_of(build: impl FnOnce(&mut VecAssembler<X64Relocation>)) -> Vec<String> {
        let mut ops = VecAssembler::<X64Relocation>::new(0x1000);
        build(&mut ops);
        track(&ops.finalize().unwrap(), 0x1000).errors
    }

    #[test]
    fn a_misaligned_call() {
        let e = errors_of(
            |ops| dynasm!(ops ; .arch x64 ; push rbp ; push rbx ; sub rsp, 0x20 ; call QWORD [rsp + 8] ; add rsp, 0x20 ; pop rbx ; pop rbp ; ret),
        );
        assert!(e.iter().any(|e| e.contains("misaligned")), "{e:?}");
    }

    #[test]
    fn a_write_below_rsp() {
        let e =
            errors_of(|ops| dynasm!(ops ; .arch x64 ; sub rsp, 0x28 ; mov QWORD [rsp - 8], rax ; add rsp, 0x28 ; ret));
        assert!(e.iter().any(|e| e.contains("below rsp")), "{e:?}");
    }

    #[test]
    fn an_unsaved_callee_saved_register() {
        let e = errors_of(|ops| dynasm!(ops ; .arch x64 ; mov rsi, rcx ; movaps xmm7, xmm0 ; ret));
        assert_eq!(e.len(), 2, "{e:?}");
    }

    #[test]
    fn pops_out_of_order_and_an_unbalanced_ret() {
        let e = errors_of(|ops| dynasm!(ops ; .arch x64 ; push rbx ; push rsi ; pop rbx ; ret));
        assert!(e.iter().any(|e| e.contains("does not match")), "{e:?}");
        assert!(e.iter().any(|e| e.contains("ret with rsp")), "{e:?}");
    }

    #[test]
    fn a_call_through_an_unknown_register() {
        let e = errors_of(|ops| dynasm!(ops ; .arch x64 ; sub rsp, 0x28 ; call rax ; add rsp, 0x28 ; ret));
        assert!(e.iter().any(|e| e.contains("not a known helper")), "{e:?}");
    }
}

#[test]
fn the_registers_the_code_keeps_live_have_the_roles_the_model_gives_them() {
    // The emitter's aliases: L (rbx) and the frame pointer (rbp) survive helper calls, so
    // they are nonvolatile (the prologue saves them); r10 (through) and r11 (scratch) are
    // volatile and carry no argument.
    let t = abi_model::Target::X64_WIN;
    assert!([abi_model::Gpr::BX, abi_model::Gpr::BP].iter().all(|r| t.callee_saved_gprs().contains(r)));
    for r in [abi_model::Gpr(10), abi_model::Gpr(11)] {
        assert!(t.scratch_gprs().contains(&r) && !abi_model::x64_win::WIN64_INT_ARGS.contains(&r), "{r:?}");
    }
}
