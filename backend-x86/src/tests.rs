use crate::X86Backend;
use abi_model::lua::helpers::Helper;
use abi_model::lua::steps::{CtypeRef, Dest, Operand, Operands, Program, Slot, Step, StepKind};
use abi_model::lua::{Backend, BackendError, CodeEnv, Invalid, ProgramKind};
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
    Step::CallHelper { helper, args: Operands::new(&args), ret_to }
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
        Step::CheckArgCountInline { .. } => 14,
        Step::FuncAddrFromUpvalue { .. } => 15,
        Step::ToCInline { .. } => 16,
        Step::PushInline { .. } => 17,
        Step::ErrnoRestoreInline { .. } => 18,
        Step::AfterCallInline { .. } => 19,
        Step::PtrInline { .. } => 20,
        Step::RecordInline { .. } => 21,
        Step::CallbackEnterInline { .. } => 22,
        Step::CallbackCallInline { .. } => 23,
        Step::PopInline { .. } => 24,
    }
}

/// The inline stubs and thunks of every curated signature on every 32-bit layout of both
/// flavours lower, and between them use every inline step.
#[test]
fn every_inline_step_lowers_on_every_32_bit_layout() {
    use abi_model::lua::curated::{curated_plans, listing_env, listing_inline};
    use abi_model::lua::steps::{stub_program_inline, thunk_program_inline};
    use abi_model::lua::vm::LuaVm;
    use abi_model::CallbackFrame;
    let mut seen = std::collections::BTreeSet::new();
    for target in [Target::X86_LINUX, Target::X86_WIN] {
        let backend = X86Backend::new(target).unwrap();
        for vm in LuaVm::all_for(target) {
            let inline = listing_inline(*vm);
            for c in curated_plans(target) {
                let env = listing_env(target, c.plan.args.len());
                let stub = stub_program_inline(&c.plan, 1, Some(&inline));
                assert_eq!(stub.vm, Some(*vm), "{}: the layout is used", c.curated.name);
                backend.stub(&stub, BASE, &env).unwrap_or_else(|e| panic!("{} {}: {e}", c.curated.name, vm.name));
                seen.extend(stub.steps.iter().map(variant));
                if c.curated.varargs.is_empty() {
                    let thunk = thunk_program_inline(&CallbackFrame::from_plan(&c.plan), Some(&inline));
                    backend.thunk(&thunk, BASE, &env).unwrap_or_else(|e| panic!("{} {}: {e}", c.curated.name, vm.name));
                    seen.extend(thunk.steps.iter().map(variant));
                }
            }
        }
    }
    assert!((14..25).all(|v| seen.contains(&v)), "inline variants used: {seen:?}");
}

#[test]
fn an_inline_step_with_a_64_bit_layout_is_refused_naming_the_pointer_size() {
    let steps = vec![Step::CheckArgCountInline { expected: 1 }, Step::ReturnToLua { results: 0 }];
    let prog = Program::new(steps, 0, 16, 0, Some(abi_model::lua::vm::LuaVm::LUA54));
    let err = X86Backend::new(Target::X86_LINUX).unwrap().stub(&prog, BASE, &env()).unwrap_err();
    let why = abi_model::lua::Invalid::LuaLayout { what: "pointer bytes", value: 8 };
    let step = Some((0, abi_model::lua::steps::StepKind::CheckArgCountInline));
    assert_eq!(err, BackendError::Invalid { step, why }, "{err}");
}

fn stub_text(target: Target, p: &Program) -> String {
    let code = X86Backend::new(target).unwrap().stub(p, BASE, &env()).unwrap();
    emu_harness::listing::disasm32(&code, BASE, &env())
}

fn thunk_text(target: Target, p: &Program) -> String {
    let code = X86Backend::new(target).unwrap().thunk(p, BASE, &env()).unwrap();
    emu_harness::listing::disasm32(&code, BASE, &env())
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
            "movsx ecx, word ptr [esp+0x20]",
            "mov edx, dword ptr [esp+0x18]",
            "lea edx, [esp+4]",
            "call dword ptr [esp+0x10]",
            "mov ecx, dword ptr [esp+0x18]",
            "mov dword ptr [ecx], eax",
            "mov dword ptr [ecx+4], edx",
            "fstp qword ptr [esp+0x20], st",
            "mov dword ptr [esp+8], cbdata",
            "mov dword ptr [esp+4], ctype(ret)",
            "mov dword ptr [esp+8], ctype(arg0)",
        ] {
            assert!(s.contains(line), "{target:?} stub lacks `{line}`:\n{s}");
        }
        let t = thunk_text(target, &thunk);
        for line in [
            "mov dword ptr [ebp-0x14], ecx",
            "mov dword ptr [ebp-0x10], edx",
            "movsx eax, word ptr [ebp-0x14]",
            "fld st, dword ptr [esp+8]",
            "mov eax, dword ptr [ebp+8]",
            "ret 8",
        ] {
            assert!(t.contains(line), "{target:?} thunk lacks `{line}`:\n{t}");
        }
    }
    let mut with_al = every_stub_step();
    with_al.steps.insert(11, Step::SetAl(1));
    assert_eq!(
        X86Backend::LINUX.stub(&with_al, BASE, &env()),
        Err(BackendError::Invalid {
            step: Some((11, StepKind::SetAl)),
            why: Invalid::NotOnTarget("a vector register count in al")
        })
    );
}

#[test]
fn callee_popped_bytes_are_put_back_right_after_the_target_call() {
    let s = stub_text(Target::X86_WIN, &every_stub_step());
    let after_call = s.lines().skip_while(|l| !l.contains("call dword ptr")).nth(1).unwrap();
    assert!(after_call.ends_with("sub esp, 4"), "{s}");
}

#[test]
fn linux_stub_realigns_to_16_and_win32_stub_does_not() {
    // i386 Linux plans align calls to 16, Win32 plans to 4 (the model's `stack_align`).
    assert!(stub_text(Target::X86_LINUX, &every_stub_step()).contains("and esp, 0xfffffff0"));
    assert!(!stub_text(Target::X86_WIN, &every_stub_step()).contains("and esp"));
}

#[test]
fn thunks_realign_to_16_on_both_flavours() {
    for target in [Target::X86_LINUX, Target::X86_WIN] {
        assert!(thunk_text(target, &every_thunk_step()).contains("and esp, 0xfffffff0"), "{target:?}");
    }
}

#[test]
fn win32_frames_over_a_page_touch_every_page_on_the_way_down() {
    let mut p = every_stub_step();
    p.out_bytes = 8192;
    let probes = |t| stub_text(t, &p).matches("test dword ptr [esp], esp").count();
    assert_eq!(probes(Target::X86_WIN), 2);
    assert_eq!(probes(Target::X86_LINUX), 0);
}

fn stub_err(target: Target, p: &Program, env: &CodeEnv) -> Invalid {
    match X86Backend::new(target).unwrap().stub(p, BASE, env) {
        Err(BackendError::Invalid { why, .. }) => why,
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

fn thunk_err(p: &Program) -> Invalid {
    match X86Backend::WIN.thunk(p, BASE, &env()) {
        Err(BackendError::Invalid { why, .. }) => why,
        other => panic!("expected an Invalid error, got {other:?}"),
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
    assert_eq!(X86Backend::new(Target::X64_SYSV).err(), Some(Invalid::WrongTarget(Target::X64_SYSV).into()));
    let reg = |loc| Invalid::Location { loc, role: "an x86-32 argument register" };
    assert_eq!(
        stub_err(
            t,
            &stub_with(8, Step::LoadArg { to: Loc::Xmm(Xmm(0)), from: Slot::Stage(16), size: 4, ext: Ext::None }),
            &e
        ),
        reg(Loc::Xmm(Xmm(0)))
    );
    assert_eq!(
        stub_err(
            t,
            &stub_with(8, Step::LoadArg { to: Loc::Gpr(Gpr::AX), from: Slot::Stage(16), size: 4, ext: Ext::None }),
            &e
        ),
        reg(Loc::Gpr(Gpr::AX))
    );
    assert_eq!(
        stub_err(t, &stub_with(8, Step::LoadArg { to: ECX, from: Slot::Stage(16), size: 8, ext: Ext::None }), &e),
        Invalid::Width { bytes: 8, loc: ECX }
    );
    assert_eq!(
        stub_err(t, &stub_with(8, Step::LoadArg { to: ECX, from: Slot::Stage(30), size: 4, ext: Ext::None }), &e),
        Invalid::SlotOutsideFrame(Slot::Stage(30))
    );
    assert_eq!(
        stub_err(t, &stub_with(8, Step::LoadArg { to: ECX, from: Slot::Entry(4), size: 4, ext: Ext::None }), &e),
        Invalid::SlotOutsideFrame(Slot::Entry(4))
    );
    assert_eq!(
        stub_err(
            t,
            &stub_with(
                13,
                Step::SaveReturn { ret: RetPlan::new(ValueKind::F64, RetLoc::Xmm0), to: Dest::At(Slot::Stage(16)) }
            ),
            &e
        ),
        Invalid::ReturnLocation { loc: RetLoc::Xmm0, value: ValueKind::F64 }
    );
    let push_f64_of_int =
        call(Helper::PushF64, vec![Operand::L, Operand::Value { at: Slot::Stage(16), kind: I32 }], None);
    assert_eq!(
        stub_err(t, &stub_with(14, push_f64_of_int), &e),
        Invalid::Kind { kind: I32, role: "for a parameter of another class" }
    );
    assert!(matches!(
        stub_err(t, &stub_with(7, call(Helper::PushI32, vec![Operand::L, Operand::Imm(1)], Some(Slot::Stage(24)))), &e),
        Invalid::ReturnLocation { loc: RetLoc::Void, .. }
    ));
    assert_eq!(
        stub_err(t, &stub_with(7, call(Helper::ErrnoRestore, vec![], None)), &e),
        Invalid::HelperArity { helper: Helper::ErrnoRestore, params: 2, given: 0 }
    );
    assert_eq!(
        stub_err(t, &stub_with(16, Step::ReturnToC { pops: 0, ret_ptr: None }), &e),
        Invalid::WrongProgramKind(ProgramKind::Stub)
    );
    let mut no_return = every_stub_step();
    no_return.steps.pop();
    assert_eq!(stub_err(t, &no_return, &e), Invalid::NoFinalReturn);
    let mut ragged = every_stub_step();
    ragged.out_bytes = 12;
    assert_eq!(stub_err(t, &ragged, &e), Invalid::AreaMisaligned { what: "outgoing area", bytes: 12, align: 16 });
    // Addresses the code cannot hold.
    assert!(matches!(
        stub_err(t, &every_stub_step(), &CodeEnv { helpers: vec![], ..env() }),
        Invalid::NoHelperAddress(_)
    ));
    assert!(matches!(
        stub_err(t, &every_stub_step(), &CodeEnv { callback_data: 1 << 32, ..env() }),
        Invalid::AddressTooWide { value: 0x1_0000_0000, .. }
    ));
    assert!(X86Backend::WIN.stub(&every_stub_step(), 1 << 32, &e).is_err());

    let thunk_with = |i: usize, step: Step| {
        let mut p = every_thunk_step();
        p.steps[i] = step;
        p
    };
    let in_thunk = Invalid::WrongProgramKind(ProgramKind::Thunk);
    assert_eq!(
        thunk_err(&thunk_with(2, call(Helper::CallbackEnter, vec![Operand::L], Some(Slot::Stage(0))))),
        in_thunk
    );
    assert_eq!(
        thunk_err(&thunk_with(0, Step::Spill { from: Loc::Xmm(Xmm(0)), size: 4, to: Slot::Entry(-24) })),
        reg(Loc::Xmm(Xmm(0)))
    );
    // The saved ebp is not a slot.
    assert_eq!(
        thunk_err(&thunk_with(0, Step::Spill { from: ECX, size: 4, to: Slot::Entry(-4) })),
        Invalid::SlotOutsideFrame(Slot::Entry(-4))
    );
    assert_eq!(
        thunk_err(&thunk_with(6, Step::ReturnToC { pops: 70_000, ret_ptr: None })),
        Invalid::OutOfRange { what: "bytes popped by ret imm16", value: 70_000 }
    );
    assert_eq!(thunk_err(&thunk_with(6, Step::ReturnToLua { results: 0 })), in_thunk);
    assert_eq!(thunk_err(&thunk_with(5, Step::CallTarget { via: Slot::Stage(0), callee_pops: 0 })), in_thunk);
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
