use crate::{disasm_with, X86Backend};
use abi_model::lua::helpers::Helper;
use abi_model::lua::steps::{CtypeRef, Dest, Operand, Program, Slot, Step};
use abi_model::lua::{Backend, BackendError, CodeEnv};
use abi_model::{Ext, Gpr, Loc, RetLoc, RetPlan, Target, ValueKind, Xmm};

const BASE: u64 = 0x10_0000;
const I32: ValueKind = ValueKind::Int { size: 4, signed: true };
const I64: ValueKind = ValueKind::Int { size: 8, signed: true };
const ECX: Loc = Loc::Gpr(Gpr::CX);
const EDX: Loc = Loc::Gpr(Gpr::DX);

fn env() -> CodeEnv {
    CodeEnv {
        helpers: Helper::ALL.iter().map(|h| 0x7000_0000 + 16 * h.id() as u64).collect(),
        arg_ctypes: vec![0x6000_0000, 0x6000_0010],
        ret_ctype: 0x6000_0ff0,
        callback_data: 0x5000_0000,
        call_slots: None,
    }
}

fn call(helper: Helper, args: Vec<Operand>, ret_to: Option<Slot>) -> Step {
    Step::CallHelper { helper, args, ret_to }
}

/// A stub using every stub step, each operand kind and each stub return store.
fn every_stub_step() -> Program {
    let steps = vec![
        Step::CheckArgCount { expected: 2 },
        call(Helper::FuncAddr, vec![Operand::L], Some(Slot::Stage(0))),
        call(Helper::NewResult, vec![Operand::L, Operand::Ctype(CtypeRef::Ret)], Some(Slot::Stage(8))),
        call(
            Helper::ToRecord,
            vec![Operand::L, Operand::Imm(1), Operand::Ctype(CtypeRef::Arg(0)), Operand::Addr(Slot::Out(4))],
            None,
        ),
        Step::StoreAddr { of: Slot::Out(4), to: Slot::Out(0) },
        Step::CopyPtr { from: Slot::Stage(8), to: Slot::Out(12) },
        call(Helper::ToI32, vec![Operand::L, Operand::Imm(2)], Some(Slot::Stage(16))),
        call(Helper::ErrnoRestore, vec![Operand::L, Operand::Ctype(CtypeRef::Ret)], None),
        Step::LoadArg { to: ECX, from: Slot::Stage(16), size: 2, ext: Ext::Sign },
        Step::LoadPtr { to: EDX, from: Slot::Stage(8) },
        Step::LoadAddr { to: EDX, of: Slot::Out(4) },
        Step::CallTarget { via: Slot::Stage(0), callee_pops: 4 },
        Step::SaveReturn { ret: RetPlan::new(I64, RetLoc::EdxEax), to: Dest::Through(Slot::Stage(8)) },
        Step::SaveReturn { ret: RetPlan::new(ValueKind::F64, RetLoc::St0), to: Dest::At(Slot::Stage(16)) },
        call(Helper::PushI64, vec![Operand::L, Operand::Value { at: Slot::Stage(16), kind: I64 }], None),
        call(Helper::PushPtr, vec![Operand::L, Operand::PtrAt(Slot::Stage(8)), Operand::CallbackData], None),
        Step::ReturnToLua { results: 1 },
    ];
    Program::new(steps, 16, 32, 0, None)
}

/// A thunk using every thunk step.
fn every_thunk_step() -> Program {
    let steps = vec![
        Step::Spill { from: ECX, size: 4, to: Slot::Entry(-24) },
        Step::Spill { from: EDX, size: 4, to: Slot::Entry(-20) },
        call(Helper::CallbackEnter, vec![Operand::CallbackData], Some(Slot::Stage(0))),
        call(
            Helper::PushI32,
            vec![
                Operand::PtrAt(Slot::Stage(0)),
                Operand::Value { at: Slot::Entry(-24), kind: ValueKind::Int { size: 2, signed: true } },
            ],
            None,
        ),
        call(Helper::ToF32, vec![Operand::PtrAt(Slot::Stage(0)), Operand::Imm(-1)], Some(Slot::Stage(8))),
        Step::LoadReturn { ret: RetPlan::new(ValueKind::F32, RetLoc::St0), from: Dest::At(Slot::Stage(8)) },
        Step::ReturnToC { pops: 8, ret_ptr: Some(Slot::Entry(4)) },
    ];
    Program::new(steps, 0, 16, 32, None)
}

/// Which variant a step is; exhaustive, so a new `Step` fails to compile here until a test
/// program covers it.
fn variant(step: &Step) -> usize {
    match step {
        Step::CheckArgCount { .. } => 0,
        Step::CallHelper { .. } => 1,
        Step::StoreAddr { .. } => 2,
        Step::CopyPtr { .. } => 3,
        Step::LoadArg { .. } => 4,
        Step::LoadPtr { .. } => 5,
        Step::LoadAddr { .. } => 6,
        Step::SetAl(_) => 7,
        Step::CallTarget { .. } => 8,
        Step::SaveReturn { .. } => 9,
        Step::Spill { .. } => 10,
        Step::LoadReturn { .. } => 11,
        Step::ReturnToLua { .. } => 12,
        Step::ReturnToC { .. } => 13,
        // Lowered by the native x86-64 System V backend only; see the test below.
        Step::CheckArgCountInline { .. }
        | Step::FuncAddrFromUpvalue { .. }
        | Step::ToCInline { .. }
        | Step::PushInline { .. }
        | Step::ErrnoRestoreInline { .. }
        | Step::AfterCallInline { .. }
        | Step::PtrInline { .. }
        | Step::RecordInline { .. }
        | Step::CallbackEnterInline { .. }
        | Step::CallbackCallInline { .. }
        | Step::PopInline { .. } => 14,
    }
}

#[test]
fn inline_lua_stack_steps_are_refused_with_a_reason() {
    let steps = vec![Step::CheckArgCountInline { expected: 1 }, Step::ReturnToLua { results: 0 }];
    let prog = Program::new(steps, 0, 16, 0, Some(abi_model::lua::vm::LuaVm::LUA54));
    let err = X86Backend::new(Target::X86_LINUX).unwrap().stub(&prog, BASE, &env()).unwrap_err();
    assert!(err.to_string().contains("x86-64 System V backend only"), "{err}");
}

fn stub_text(target: Target, p: &Program) -> String {
    let code = X86Backend::new(target).unwrap().stub(p, BASE, &env()).unwrap();
    disasm_with(&code, BASE, &env())
}

fn thunk_text(target: Target, p: &Program) -> String {
    let code = X86Backend::new(target).unwrap().thunk(p, BASE, &env()).unwrap();
    disasm_with(&code, BASE, &env())
}

#[test]
fn every_step_variant_lowers_except_set_al_which_x86_has_no_use_for() {
    let (stub, thunk) = (every_stub_step(), every_thunk_step());
    let mut seen: Vec<usize> = stub.steps.iter().chain(&thunk.steps).map(variant).collect();
    seen.push(variant(&Step::SetAl(0)));
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, (0..14).collect::<Vec<_>>());
    for target in [Target::X86_LINUX, Target::X86_WIN] {
        let s = stub_text(target, &stub);
        for line in [
            "movsx   ecx,word ptr [esp+20h]",
            "mov     edx,[esp+18h]",
            "lea     edx,[esp+4]",
            "call    dword ptr [esp+10h]",
            "mov     ecx,[esp+18h]",
            "mov     [ecx],eax",
            "mov     [ecx+4],edx",
            "fstp    qword ptr [esp+20h],st",
            "mov     dword ptr [esp+8],cbdata",
            "mov     dword ptr [esp+4],ctype(ret)",
            "mov     dword ptr [esp+8],ctype(arg0)",
        ] {
            assert!(s.contains(line), "{target:?} stub lacks `{line}`:\n{s}");
        }
        let t = thunk_text(target, &thunk);
        for line in [
            "mov     [ebp-14h],ecx",
            "mov     [ebp-10h],edx",
            "movsx   eax,word ptr [ebp-14h]",
            "fld     st,dword ptr [esp+8]",
            "mov     eax,[ebp+8]",
            "ret     8",
        ] {
            assert!(t.contains(line), "{target:?} thunk lacks `{line}`:\n{t}");
        }
    }
    let mut with_al = every_stub_step();
    with_al.steps.insert(11, Step::SetAl(1));
    assert!(matches!(X86Backend::LINUX.stub(&with_al, BASE, &env()), Err(BackendError::Unsupported(_))));
}

#[test]
fn callee_popped_bytes_are_put_back_right_after_the_target_call() {
    let s = stub_text(Target::X86_WIN, &every_stub_step());
    let after_call = s.lines().skip_while(|l| !l.contains("call    dword ptr")).nth(1).unwrap();
    assert!(after_call.ends_with("sub     esp,4"), "{s}");
}

#[test]
fn linux_stub_realigns_to_16_and_win32_stub_does_not() {
    // i386 Linux plans align calls to 16, Win32 plans to 4 (the model's `stack_align`).
    assert!(stub_text(Target::X86_LINUX, &every_stub_step()).contains("and     esp,0FFFFFFF0h"));
    assert!(!stub_text(Target::X86_WIN, &every_stub_step()).contains("and     esp"));
}

#[test]
fn thunks_realign_to_16_on_both_flavours() {
    for target in [Target::X86_LINUX, Target::X86_WIN] {
        assert!(thunk_text(target, &every_thunk_step()).contains("and     esp,0FFFFFFF0h"), "{target:?}");
    }
}

#[test]
fn win32_frames_over_a_page_touch_every_page_on_the_way_down() {
    let mut p = every_stub_step();
    p.out_bytes = 8192;
    let probes = |t| stub_text(t, &p).matches("test    [esp],esp").count();
    assert_eq!(probes(Target::X86_WIN), 2);
    assert_eq!(probes(Target::X86_LINUX), 0);
}

fn stub_err(target: Target, p: &Program, env: &CodeEnv) -> String {
    match X86Backend::new(target).unwrap().stub(p, BASE, env) {
        Err(BackendError::Unsupported(s)) => s,
        other => panic!("expected an Unsupported error, got {other:?}"),
    }
}

fn thunk_err(p: &Program) -> String {
    match X86Backend::WIN.thunk(p, BASE, &env()) {
        Err(BackendError::Unsupported(s)) => s,
        other => panic!("expected an Unsupported error, got {other:?}"),
    }
}

/// The stub with its step `i` replaced.
fn stub_with(i: usize, step: Step) -> Program {
    let mut p = every_stub_step();
    p.steps[i] = step;
    p
}

#[test]
fn what_x86_cannot_encode_is_an_error_not_a_panic() {
    let t = Target::X86_LINUX;
    let e = env();
    assert!(X86Backend::new(Target::X64_SYSV).is_err());
    assert!(stub_err(
        t,
        &stub_with(8, Step::LoadArg { to: Loc::Xmm(Xmm(0)), from: Slot::Stage(16), size: 4, ext: Ext::None }),
        &e
    )
    .contains("xmm0"));
    assert!(stub_err(
        t,
        &stub_with(8, Step::LoadArg { to: Loc::Gpr(Gpr::AX), from: Slot::Stage(16), size: 4, ext: Ext::None }),
        &e
    )
    .contains("not an x86-32 argument register"));
    assert!(stub_err(t, &stub_with(8, Step::LoadArg { to: ECX, from: Slot::Stage(16), size: 8, ext: Ext::None }), &e)
        .contains("8 bytes"));
    assert!(stub_err(t, &stub_with(8, Step::LoadArg { to: ECX, from: Slot::Stage(30), size: 4, ext: Ext::None }), &e)
        .contains("outside"));
    assert!(stub_err(t, &stub_with(8, Step::LoadArg { to: ECX, from: Slot::Entry(4), size: 4, ext: Ext::None }), &e)
        .contains("outside"));
    assert!(stub_err(
        t,
        &stub_with(
            13,
            Step::SaveReturn { ret: RetPlan::new(ValueKind::F64, RetLoc::Xmm0), to: Dest::At(Slot::Stage(16)) }
        ),
        &e
    )
    .contains("Xmm0"));
    let push_f64_of_int =
        call(Helper::PushF64, vec![Operand::L, Operand::Value { at: Slot::Stage(16), kind: I32 }], None);
    assert!(stub_err(t, &stub_with(14, push_f64_of_int), &e).contains("a i32 value for a f64 parameter"));
    assert!(stub_err(
        t,
        &stub_with(7, call(Helper::PushI32, vec![Operand::L, Operand::Imm(1)], Some(Slot::Stage(24)))),
        &e
    )
    .contains("returns nothing"));
    assert!(stub_err(t, &stub_with(7, call(Helper::ErrnoRestore, vec![], None)), &e).contains("takes 2 arguments"));
    assert!(stub_err(t, &stub_with(16, Step::ReturnToC { pops: 0, ret_ptr: None }), &e).contains("returns to Lua"));
    let mut no_return = every_stub_step();
    no_return.steps.pop();
    assert!(stub_err(t, &no_return, &e).contains("must end"));
    let mut ragged = every_stub_step();
    ragged.out_bytes = 12;
    assert!(stub_err(t, &ragged, &e).contains("aligned"));
    // Addresses the code cannot hold.
    assert!(stub_err(t, &every_stub_step(), &CodeEnv { helpers: vec![], ..env() }).contains("no address"));
    assert!(
        stub_err(t, &every_stub_step(), &CodeEnv { callback_data: 1 << 32, ..env() }).contains("not a 32-bit address")
    );
    assert!(X86Backend::WIN.stub(&every_stub_step(), 1 << 32, &e).is_err());

    let thunk_with = |i: usize, step: Step| {
        let mut p = every_thunk_step();
        p.steps[i] = step;
        p
    };
    assert!(thunk_err(&thunk_with(2, call(Helper::CallbackEnter, vec![Operand::L], Some(Slot::Stage(0)))))
        .contains("no incoming lua_State"));
    assert!(thunk_err(&thunk_with(0, Step::Spill { from: Loc::Xmm(Xmm(0)), size: 4, to: Slot::Entry(-24) }))
        .contains("xmm0"));
    // The saved ebp is not a slot.
    assert!(thunk_err(&thunk_with(0, Step::Spill { from: ECX, size: 4, to: Slot::Entry(-4) })).contains("outside"));
    assert!(thunk_err(&thunk_with(6, Step::ReturnToC { pops: 70_000, ret_ptr: None })).contains("ret 70000"));
    assert!(thunk_err(&thunk_with(6, Step::ReturnToLua { results: 0 })).contains("returns to C"));
    assert!(
        thunk_err(&thunk_with(5, Step::CallTarget { via: Slot::Stage(0), callee_pops: 0 })).contains("calls no target")
    );
}

#[test]
fn the_registers_the_code_keeps_live_have_the_roles_the_model_gives_them() {
    // `asm!`'s aliases: L (ebx) and the frame (ebp) survive helper calls, so they are
    // callee-saved (the prologue saves them); eax (scratch) and ecx (through) need no
    // restoring.
    for t in [Target::X86_LINUX, Target::X86_WIN] {
        assert!([Gpr::BX, Gpr::BP].iter().all(|r| t.callee_saved_gprs().contains(r)), "{t}");
        assert!([Gpr::AX, Gpr::CX].iter().all(|r| t.scratch_gprs().contains(r)), "{t}");
    }
}
