//! Unit tests: every step lowers, unsupported input is an error, the frame is where the
//! module doc draws it.

use super::*;
use abi_model::lua::steps::CtypeRef;
use abi_model::{Gpr, Xmm};

fn env() -> CodeEnv {
    CodeEnv {
        helpers: Helper::ALL.iter().map(|h| 0x7f00_0000_1000 + 0x10 * h.id() as u64).collect(),
        arg_ctypes: vec![0x5500_0000_0100, 0x5500_0000_0110],
        ret_ctype: 0x5500_0000_0000,
        callback_data: 0x5600_0000_0000,
        call_slots: None,
    }
}

const I32: ValueKind = ValueKind::Int { size: 4, signed: true };
const REC24: ValueKind = ValueKind::Record { size: 24, align: 8 };

fn stub_of(steps: Vec<Step>) -> Program {
    Program::new(steps, 32, 32, 0, None)
}

fn thunk_of(steps: Vec<Step>) -> Program {
    Program::new(steps, 0, 16, 48, None)
}

/// The disassembly without addresses, so expectations don't shift with code size.
fn listing(bytes: &[u8], env: &CodeEnv) -> String {
    emu_harness::listing::disasm64(bytes, 0, env)
        .lines()
        .map(|l| l.split_once(": ").map_or(l, |(_, insn)| insn))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn stub_text(steps: Vec<Step>) -> Result<String, BackendError> {
    let env = env();
    X64SysvBackend.stub(&stub_of(steps), 0, &env).map(|b| listing(&b, &env))
}

fn thunk_text(steps: Vec<Step>) -> Result<String, BackendError> {
    let env = env();
    X64SysvBackend.thunk(&thunk_of(steps), 0, &env).map(|b| listing(&b, &env))
}

/// Every stub-side step, including those only the x86 and Win64 planners produce
/// (StoreAddr, CopyPtr, LoadAddr, a callee that pops, a memory return saved elsewhere).
#[test]
fn every_stub_step_lowers() {
    let text = stub_text(vec![
        Step::CheckArgCount { expected: 2 },
        Step::CallHelper {
            helper: Helper::FuncAddr,
            args: abi_model::operands![Operand::L],
            ret_to: Some(Slot::Stage(0)),
        },
        Step::CallHelper {
            helper: Helper::ToRecord,
            args: abi_model::operands![
                Operand::L,
                Operand::Imm(1),
                Operand::Ctype(CtypeRef::Arg(0)),
                Operand::Addr(Slot::Out(16))
            ],
            ret_to: None,
        },
        Step::StoreAddr { of: Slot::Out(16), to: Slot::Out(0) },
        Step::CopyPtr { from: Slot::Stage(0), to: Slot::Out(8) },
        Step::LoadArg { to: Loc::Gpr(Gpr::SI), from: Slot::Stage(8), size: 1, ext: Ext::Sign },
        Step::LoadArg { to: Loc::Xmm(Xmm(2)), from: Slot::Stage(16), size: 4, ext: Ext::None },
        Step::LoadPtr { to: Loc::Gpr(Gpr::DX), from: Slot::Stage(8) },
        Step::LoadAddr { to: Loc::Gpr(Gpr::CX), of: Slot::Out(16) },
        Step::SetAl(3),
        Step::CallTarget { via: Slot::Stage(0), callee_pops: 8 },
        Step::SaveReturn {
            ret: RetPlan::new(REC24, RetLoc::Sret { ptr: Loc::Gpr(Gpr::DI) }),
            to: Dest::Through(Slot::Stage(8)),
        },
        Step::ReturnToLua { results: 1 },
    ])
    .unwrap();
    for expected in [
        "cmp eax, 2",
        "ud2",
        "lea rcx, [rbp-0x40]",
        "lea r11, [rbp-0x40]\nmov qword ptr [rbp-0x50], r11",
        "mov r11, qword ptr [rbp-0x30]\nmov qword ptr [rbp-0x48], r11",
        "movsx esi, byte ptr [rbp-0x28]",
        "movss xmm2, dword ptr [rbp-0x20]",
        "mov rdx, qword ptr [rbp-0x28]",
        "mov al, 3",
        "call qword ptr [rbp-0x30]",
        "sub rsp, 8",
        "rep movsb",
        "mov eax, 1",
        "leave",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in\n{text}");
    }
}

#[test]
fn every_thunk_step_lowers() {
    let text = thunk_text(vec![
        Step::Spill { from: Loc::Gpr(Gpr::DI), size: 8, to: Slot::Entry(-40) },
        Step::Spill { from: Loc::Xmm(Xmm(0)), size: 8, to: Slot::Entry(-48) },
        Step::CallHelper {
            helper: Helper::CallbackEnter,
            args: abi_model::operands![Operand::CallbackData],
            ret_to: Some(Slot::Stage(0)),
        },
        Step::CallHelper {
            helper: Helper::PushF64,
            args: abi_model::operands![
                Operand::PtrAt(Slot::Stage(0)),
                Operand::Value { at: Slot::Entry(-48), kind: ValueKind::F64 }
            ],
            ret_to: None,
        },
        Step::CallHelper {
            helper: Helper::ToI32,
            args: abi_model::operands![Operand::PtrAt(Slot::Stage(0)), Operand::Imm(-1)],
            ret_to: Some(Slot::Stage(8)),
        },
        Step::LoadReturn {
            ret: RetPlan::new(ValueKind::Int { size: 2, signed: true }, RetLoc::Gpr),
            from: Dest::At(Slot::Stage(8)),
        },
        Step::ReturnToC { pops: 8, ret_ptr: Some(Slot::Entry(-40)) },
    ])
    .unwrap();
    for expected in [
        "mov qword ptr [rbp-0x20], rdi",
        "movsd qword ptr [rbp-0x28], xmm0",
        "mov rdi, cbdata",
        "movsd xmm0, qword ptr [rbp-0x28]",
        "mov esi, 0xffffffff",
        "movsx eax, word ptr [rbp-0x38]",
        "mov rax, qword ptr [rbp-0x20]",
        "ret 8",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in\n{text}");
    }
}

#[test]
fn stub_outgoing_area_is_at_rsp_and_16_aligned() {
    let f = Frame::stub(&stub_of(vec![])).unwrap();
    // rbp is 16-aligned after `push rbp`; the stub reserves saved rbx + padding + stage + out.
    let rsp_from_rbp = -(8 + f.reserve());
    assert_eq!(rsp_from_rbp % 16, 0);
    assert_eq!(f.disp(Slot::Out(0)).unwrap(), rsp_from_rbp);
    assert_eq!(f.disp(Slot::Stage(24)).unwrap(), -16 - 32 + 24);
}

#[test]
fn thunk_entry_slots_are_relative_to_the_return_address() {
    let f = Frame::thunk(&thunk_of(vec![])).unwrap();
    // rbp = entry sp - 8.
    assert_eq!(f.disp(Slot::Entry(8)).unwrap(), 16);
    assert_eq!(f.disp(Slot::Entry(-48)).unwrap(), -40);
    assert_eq!(f.reserve() % 16, 0, "rsp stays 16-aligned below the 16-aligned rbp");
    assert!(f.disp(Slot::Stage(0)).unwrap() <= -48 + 8 - 8, "staging is below the save area");
}

/// Issue 14 §2.10: a frame larger than a page is reserved a page at a time, each page
/// touched as rsp reaches it, so that a guard page below a thread's stack stops the stub
/// (one `sub rsp, 1 MiB` jumped over it and the stores landed below).
#[test]
fn frames_larger_than_a_page_are_probed_page_by_page() {
    let env = env();
    let big = Program::new(vec![], 1 << 20, 32, 0, None);
    let text = listing(&X64SysvBackend.stub(&big, 0, &env).unwrap(), &env);
    let subs: Vec<&str> = text.lines().filter(|l| l.starts_with("sub rsp, ")).collect();
    assert_eq!(subs, ["sub rsp, 0x1000", "sub rsp, 0x28"], "{text}");
    let probe = text.find("sub rsp, 0x1000\nor qword ptr [rsp], 0\ndec r11d\njne ").expect("the probe loop");
    assert!(text[..probe].contains("mov r11d, 0x100"), "256 pages: {text}");
    let small = listing(&X64SysvBackend.stub(&stub_of(vec![]), 0, &env).unwrap(), &env);
    assert!(!small.contains("r11") && small.contains("sub rsp, 0x48"), "{small}");
}

fn is_invalid<T: std::fmt::Debug>(r: Result<T, BackendError>) -> bool {
    matches!(r, Err(BackendError::Invalid { .. }))
}

#[test]
fn invalid_programs_are_errors_not_panics() {
    let st0 = RetPlan::new(ValueKind::F64, RetLoc::St0);
    assert!(is_invalid(stub_text(vec![Step::SaveReturn { ret: st0, to: Dest::At(Slot::Stage(0)) }])));
    let edx_eax = RetPlan::new(ValueKind::Int { size: 8, signed: true }, RetLoc::EdxEax);
    assert!(is_invalid(thunk_text(vec![Step::LoadReturn { ret: edx_eax, from: Dest::At(Slot::Stage(0)) }])));
    let sret = RetPlan::new(REC24, RetLoc::Sret { ptr: Loc::Gpr(Gpr::DI) });
    assert!(is_invalid(thunk_text(vec![Step::LoadReturn { ret: sret, from: Dest::At(Slot::Stage(0)) }])));
    // Slots outside the frame.
    assert!(is_invalid(stub_text(vec![Step::LoadPtr { to: Loc::Gpr(Gpr::DI), from: Slot::Entry(8) }])));
    assert!(is_invalid(stub_text(vec![Step::LoadPtr { to: Loc::Gpr(Gpr::DI), from: Slot::Stage(32) }])));
    assert!(is_invalid(thunk_text(vec![Step::LoadPtr { to: Loc::Gpr(Gpr::DI), from: Slot::Out(0) }])));
    assert!(is_invalid(thunk_text(vec![Step::Spill { from: Loc::Gpr(Gpr::DI), size: 8, to: Slot::Entry(-8) }])));
    // Registers that are not registers, and values in the wrong register file.
    assert!(is_invalid(stub_text(vec![Step::LoadArg {
        to: Loc::Stack { offset: 0 },
        from: Slot::Stage(0),
        size: 4,
        ext: Ext::None
    }])));
    assert!(is_invalid(stub_text(vec![Step::LoadAddr { to: Loc::Xmm(Xmm(0)), of: Slot::Stage(0) }])));
    let f64_into_gpr = Operand::Value { at: Slot::Stage(0), kind: ValueKind::F64 };
    assert!(is_invalid(stub_text(vec![Step::CallHelper {
        helper: Helper::PushI32,
        args: abi_model::operands![Operand::L, f64_into_gpr],
        ret_to: None
    }])));
    // Wrong arity, a void result stored, L inside a thunk, steps on the wrong side.
    assert!(is_invalid(stub_text(vec![Step::CallHelper {
        helper: Helper::ToI32,
        args: abi_model::operands![Operand::L],
        ret_to: None
    }])));
    assert!(is_invalid(stub_text(vec![Step::CallHelper {
        helper: Helper::PushI32,
        args: abi_model::operands![Operand::L, Operand::Imm(1)],
        ret_to: Some(Slot::Stage(0))
    }])));
    assert!(is_invalid(thunk_text(vec![Step::CallHelper {
        helper: Helper::AfterCall,
        args: abi_model::operands![Operand::L, Operand::Ctype(CtypeRef::Ret)],
        ret_to: None
    }])));
    assert!(is_invalid(thunk_text(vec![Step::ReturnToLua { results: 0 }])));
    assert!(is_invalid(stub_text(vec![Step::ReturnToC { pops: 0, ret_ptr: None }])));
    assert!(is_invalid(thunk_text(vec![Step::CallTarget { via: Slot::Stage(0), callee_pops: 0 }])));
    // A two-register return of a value that fits one register.
    let bad_pair = RetPlan::new(I32, RetLoc::RaxRdx);
    assert!(is_invalid(stub_text(vec![Step::SaveReturn { ret: bad_pair, to: Dest::At(Slot::Stage(0)) }])));
    // Frames that break the 16-byte rule, and a helper with no address.
    let odd = Program::new(vec![], 8, 16, 0, None);
    assert!(is_invalid(X64SysvBackend.stub(&odd, 0, &env())));
    let no_helpers = CodeEnv { helpers: vec![], ..env() };
    let prog = stub_of(vec![Step::CheckArgCount { expected: 0 }]);
    assert!(is_invalid(X64SysvBackend.stub(&prog, 0, &no_helpers)));
}

#[test]
fn odd_sized_values_are_moved_without_touching_neighbouring_bytes() {
    // A 7-byte GPR return stored through a pointer: 4 + 2 + 1 bytes.
    let s7 = RetPlan::new(ValueKind::Record { size: 7, align: 1 }, RetLoc::Gpr);
    let text = stub_text(vec![Step::SaveReturn { ret: s7, to: Dest::Through(Slot::Stage(0)) }]).unwrap();
    assert!(text.contains("mov dword ptr [r10], r11d"), "{text}");
    assert!(text.contains("mov word ptr [r10+4], r11w"), "{text}");
    assert!(text.contains("mov byte ptr [r10+6], r11b"), "{text}");
    assert!(!text.contains("mov qword ptr [r10], r11\n"), "{text}");
    // A 12-byte SSE pair: xmm1 carries 4 bytes.
    let fff = RetPlan::new(ValueKind::Record { size: 12, align: 4 }, RetLoc::Xmm0Xmm1);
    let text = thunk_text(vec![Step::LoadReturn { ret: fff, from: Dest::At(Slot::Stage(0)) }]).unwrap();
    assert!(text.contains("movsd xmm0, qword ptr [rbp-0x40]"), "{text}");
    assert!(text.contains("movss xmm1, dword ptr [rbp-0x38]"), "{text}");
}

/// SysV psABI 3.2.3: a 16-byte record whose second eightbyte is all padding (NO_CLASS, e.g.
/// `struct { float f __attribute__((aligned(16))); }`) comes back in one register, its first
/// eightbyte only. The emulator matrix found stubs refusing these returns.
#[test]
fn sysv_record_with_a_no_class_second_eightbyte_returns_in_one_register() {
    let padded = RetPlan::new(ValueKind::Record { size: 16, align: 16 }, RetLoc::Xmm0);
    let text = stub_text(vec![Step::SaveReturn { ret: padded, to: Dest::Through(Slot::Stage(0)) }]).unwrap();
    assert!(text.contains("movsd qword ptr [r10], xmm0"), "{text}");
    assert!(!text.contains("xmm1"), "{text}");
    let padded = RetPlan::new(ValueKind::Record { size: 16, align: 16 }, RetLoc::Gpr);
    let text = thunk_text(vec![Step::LoadReturn { ret: padded, from: Dest::At(Slot::Stage(0)) }]).unwrap();
    assert!(text.contains("mov rax, qword ptr [rbp-0x40]"), "{text}");
    assert!(!text.contains("rdx"), "{text}");
}

#[test]
fn a_helper_call_loads_the_helper_and_its_ctype_constant() {
    let text = stub_text(vec![Step::CallHelper {
        helper: Helper::NewResult,
        args: abi_model::operands![Operand::L, Operand::Ctype(CtypeRef::Ret)],
        ret_to: Some(Slot::Stage(8)),
    }])
    .unwrap();
    assert!(text.contains("mov rsi, ctype(ret)"), "{text}");
    assert!(text.contains("mov rax, luaffi_new_result"), "{text}");
}

#[test]
fn the_registers_the_code_keeps_live_have_the_roles_the_model_gives_them() {
    // `asm!`'s aliases: L (rbx) and the frame (rbp) must survive helper calls, so they are
    // callee-saved (the prologue saves them); r10 and r11 carry no argument and need no
    // restoring: scratch, and not argument registers.
    let t = Target::X64_SYSV;
    assert!([Gpr::BX, Gpr::BP].iter().all(|r| t.callee_saved_gprs().contains(r)));
    for r in [Gpr::R10, Gpr::R11] {
        assert!(t.scratch_gprs().contains(&r) && !abi_model::x64_sysv::SYSV_INT_ARGS.contains(&r), "{r:?}");
    }
}

#[test]
fn a_fault_in_an_inline_steps_slow_path_names_the_inline_step_and_its_position() {
    use abi_model::lua::curated::{curated_plans, listing_env, listing_inline};
    use abi_model::lua::steps::{stub_program_inline, StepKind};
    use abi_model::lua::vm::LuaVm;
    let add = curated_plans(Target::X64_SYSV).into_iter().next().expect("the first curated signature");
    let mut p = stub_program_inline(&add.plan, 1, Some(&listing_inline(LuaVm::LUA54)));
    let at = p.steps.iter().position(|s| s.kind() == StepKind::ToCInline).expect("an inline conversion");
    let Step::ToCInline { slow, .. } = &mut p.steps[at] else { unreachable!() };
    let Step::CallHelper { helper, args, .. } = slow.as_mut() else { panic!("a helper call: {slow}") };
    let helper = *helper;
    args.pop();
    let given = args.len();
    let e = X64SysvBackend.stub(&p, 0, &listing_env(Target::X64_SYSV, add.plan.args.len())).unwrap_err();
    assert_eq!(
        e,
        BackendError::Invalid {
            step: Some((at, StepKind::ToCInline)),
            why: Invalid::HelperArity { helper, params: given + 1, given }
        }
    );
}

#[test]
fn a_stub_asking_more_than_16_realigns_and_addresses_its_outgoing_area_from_rsp() {
    let env = env();
    let steps = vec![
        Step::StoreAddr { of: Slot::Stage(0), to: Slot::Out(8) },
        Step::StoreAddr { of: Slot::Stage(0), to: Slot::Stage(8) },
        Step::CallTarget { via: Slot::Stage(0), callee_pops: 0 },
        Step::ReturnToLua { results: 0 },
    ];
    let text = |out_align: u32| {
        let p = Program { out_align, ..stub_of(steps.clone()) };
        X64SysvBackend.stub(&p, 0, &env).map(|b| listing(&b, &env))
    };
    // 16, what every stub is entered with: no realignment, every slot from rbp.
    let plain = text(16).unwrap();
    assert!(!plain.contains("and rsp") && !plain.contains("[rsp"), "{plain}");
    for (align, mask) in [(32, "0xffffffffffffffe0"), (64, "0xffffffffffffffc0")] {
        let t = text(align).unwrap();
        assert!(t.contains(&format!("and rsp, {mask}")), "{t}");
        // Out(8) from rsp after the realignment, Stage(8) from rbp as before.
        assert!(t.contains("mov qword ptr [rsp+8], r11"), "{t}");
        assert!(t.contains("mov qword ptr [rbp-0x28], r11"), "{t}");
    }
    assert_eq!(text(48).unwrap_err(), Invalid::CallAlignment { align: 48 }.into(), "not a power of two");
    assert!(text(4096).is_ok());
    assert_eq!(
        text(8192).unwrap_err(),
        Invalid::CallAlignment { align: 8192 }.into(),
        "an `and` that could skip more than a guard page"
    );
}
