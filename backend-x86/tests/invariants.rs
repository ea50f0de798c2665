//! Decodes every curated stub and thunk with iced-x86 and follows esp, ebp, the saved
//! registers and the x87 stack through the straight-line code (the one branch, the argument
//! count check, rejoins after its `ud2`), checking what the ABI requires:
//! - esp is aligned as the target requires at every call (16 on i386 Linux, 4 on Win32);
//! - every helper's argument area sits directly below one frame esp, the one the target is
//!   called with, so no helper call overwrites the target's outgoing area;
//! - pushes and pops balance, every callee-saved register written is saved first and
//!   restored from its own slot before `ret`, esp is back at the return address at `ret`;
//! - `ret n` pops what the plan says (0 for a stub, `CallbackFrame::pops` for a thunk);
//! - the x87 stack is empty at every call and at return, except st(0) of a float return.

mod common;

use abi_model::lua::helpers::Helper;
use abi_model::lua::steps::{stub_program, thunk_program};
use abi_model::lua::{Backend, CodeEnv};
use abi_model::{CallPlan, CallbackFrame, Gpr, RetLoc, Target};
use backend_x86::X86Backend;
use iced_x86::{Decoder, DecoderOptions, Mnemonic, OpKind, Register};
use std::collections::{HashMap, HashSet};

const BASE: u64 = 0x40_0000;

/// What esp (or ebp) is relative to: the entry stack pointer, or the 16-aligned address
/// `and esp, -16` produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Origin {
    Entry,
    Aligned,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Sp {
    origin: Origin,
    off: i64,
}

impl Sp {
    fn plus(self, n: i64) -> Sp {
        Sp { origin: self.origin, off: self.off + n }
    }
}

#[derive(Clone, Debug)]
struct State {
    esp: Sp,
    ebp: Option<Sp>,
    /// Stack slots holding a saved register.
    saved: HashMap<Sp, Register>,
    /// Callee-saved registers written and not yet restored.
    dirty: HashSet<Register>,
    x87: i32,
    /// The last `mov eax, imm32` (the helper about to be called).
    eax_imm: Option<u64>,
}

/// What the code under test is.
struct Expect<'a> {
    target: Target,
    env: &'a CodeEnv,
    /// Bytes the target call's callee pops (stubs), or `ret n` (thunks).
    target_pops: u32,
    ret_pops: u32,
    /// st(0) holds the value at `ret` (thunks returning float/double).
    returns_st0: bool,
    /// The target call pushes st(0) (stubs of float/double functions).
    target_returns_st0: bool,
}

/// Whether the model says a callee must preserve the 32-bit register `r` on `target`.
fn is_callee_saved(target: Target, r: Register) -> bool {
    r.is_gpr32() && target.callee_saved_gprs().contains(&Gpr((r as u32 - Register::EAX as u32) as u8))
}

/// The 32-bit register a narrower one is part of (callee-saved ones and esp; others as given).
fn full32(r: Register) -> Register {
    match r {
        Register::BL | Register::BH | Register::BX => Register::EBX,
        Register::SI => Register::ESI,
        Register::DI => Register::EDI,
        Register::BP => Register::EBP,
        Register::SP => Register::ESP,
        other => other,
    }
}

fn helper_at(env: &CodeEnv, addr: u64) -> Option<Helper> {
    Helper::ALL.into_iter().find(|h| env.helper(*h) == addr)
}

/// Follows the code and returns the number of calls checked, or what broke.
fn check(code: &[u8], x: &Expect) -> Result<usize, String> {
    let align = i64::from(x.target.stack_align());
    let mut st = State {
        esp: Sp { origin: Origin::Entry, off: 0 },
        ebp: None,
        saved: HashMap::new(),
        dirty: HashSet::new(),
        x87: 0,
        eax_imm: None,
    };
    let mut branch_states: HashMap<u64, State> = HashMap::new();
    let mut frame_esp: Option<Sp> = None;
    let mut after_ud2 = false;
    let mut calls = 0;
    let mut returned = false;
    let mut decoder = Decoder::with_ip(32, code, BASE, DecoderOptions::NONE);
    for ins in &mut decoder {
        let at = format!("{:#x} {:?}", ins.ip(), ins.mnemonic());
        if let Some(s) = branch_states.remove(&ins.ip()) {
            if !after_ud2 && (s.esp != st.esp || s.x87 != st.x87) {
                return Err(format!("{at}: the paths that join here disagree on esp or x87"));
            }
            st = s;
        } else if after_ud2 {
            return Err(format!("{at}: unreachable code after ud2"));
        }
        after_ud2 = false;
        if returned {
            return Err(format!("{at}: code after the final ret"));
        }
        let reg0 = if ins.op_count() > 0 && ins.op0_kind() == OpKind::Register {
            full32(ins.op0_register())
        } else {
            Register::None
        };
        match ins.mnemonic() {
            Mnemonic::Push => {
                st.esp = st.esp.plus(-4);
                st.saved.insert(st.esp, reg0);
            }
            Mnemonic::Pop => {
                if st.saved.get(&st.esp) != Some(&reg0) {
                    return Err(format!("{at}: pops {reg0:?} from a slot that holds {:?}", st.saved.get(&st.esp)));
                }
                st.saved.remove(&st.esp);
                st.dirty.remove(&reg0);
                if reg0 == Register::EBP {
                    st.ebp = None;
                }
                st.esp = st.esp.plus(4);
            }
            Mnemonic::Sub | Mnemonic::Add if reg0 == Register::ESP => {
                let n = i64::from(ins.immediate(1) as u32 as i32);
                st.esp = st.esp.plus(if ins.mnemonic() == Mnemonic::Sub { -n } else { n });
            }
            Mnemonic::And if reg0 == Register::ESP => {
                if ins.immediate(1) as u32 as i32 != -16 {
                    return Err(format!("{at}: realigns to {:#x}", ins.immediate(1)));
                }
                st.esp = Sp { origin: Origin::Aligned, off: 0 };
            }
            Mnemonic::Mov if reg0 == Register::EBP && ins.op1_register() == Register::ESP => st.ebp = Some(st.esp),
            Mnemonic::Mov if reg0 == Register::ESP && ins.op1_register() == Register::EBP => {
                st.esp = st.ebp.ok_or(format!("{at}: esp from an unset ebp"))?;
            }
            Mnemonic::Lea if reg0 == Register::ESP && ins.memory_base() == Register::EBP => {
                let ebp = st.ebp.ok_or(format!("{at}: esp from an unset ebp"))?;
                st.esp = ebp.plus(i64::from(ins.memory_displacement32() as i32));
            }
            Mnemonic::Mov if reg0 == Register::EAX && ins.op1_kind() == OpKind::Immediate32 => {
                st.eax_imm = Some(u64::from(ins.immediate32()))
            }
            Mnemonic::Je => {
                branch_states.insert(ins.near_branch_target(), st.clone());
            }
            Mnemonic::Ud2 => after_ud2 = true,
            Mnemonic::Fld => st.x87 += 1,
            Mnemonic::Fstp => {
                st.x87 -= 1;
                if st.x87 < 0 {
                    return Err(format!("{at}: pops an empty x87 stack"));
                }
            }
            Mnemonic::Call => {
                calls += 1;
                if st.esp.off % align != 0 || (align == 16 && st.esp.origin != Origin::Aligned) {
                    return Err(format!("{at}: esp {:?} is not {align}-aligned", st.esp));
                }
                if st.x87 != 0 {
                    return Err(format!("{at}: x87 stack not empty at a call"));
                }
                let (frame, pushes_st0, pops) = if ins.op0_kind() == OpKind::Memory {
                    // The target, through the staged pointer.
                    (st.esp, x.target_returns_st0, x.target_pops)
                } else {
                    let h = st
                        .eax_imm
                        .and_then(|a| helper_at(x.env, a))
                        .ok_or(format!("{at}: calls an unknown address"))?;
                    let plan = h.plan(x.target);
                    (st.esp.plus(i64::from(plan.frame_bytes())), plan.ret.loc == RetLoc::St0, plan.callee_pops)
                };
                match frame_esp {
                    None => frame_esp = Some(frame),
                    Some(f) if f != frame => {
                        return Err(format!("{at}: the call's area is not below the frame esp {f:?} ({frame:?})"))
                    }
                    Some(_) => {}
                }
                st.esp = st.esp.plus(i64::from(pops));
                if pushes_st0 {
                    st.x87 += 1;
                }
            }
            Mnemonic::Ret => {
                if st.esp != (Sp { origin: Origin::Entry, off: 0 }) {
                    return Err(format!("{at}: esp {:?} is not at the return address", st.esp));
                }
                let n = if ins.op_count() > 0 { u32::from(ins.immediate16()) } else { 0 };
                if n != x.ret_pops {
                    return Err(format!("{at}: ret {n}, the plan pops {}", x.ret_pops));
                }
                if !st.dirty.is_empty() {
                    return Err(format!("{at}: {:?} not restored", st.dirty));
                }
                if st.x87 != i32::from(x.returns_st0) {
                    return Err(format!("{at}: {} x87 registers in use at return", st.x87));
                }
                returned = true;
            }
            _ => {}
        }
        // Any other write of a callee-saved register or of esp.
        let tracked =
            matches!(ins.mnemonic(), Mnemonic::Push | Mnemonic::Pop | Mnemonic::Cmp | Mnemonic::Test | Mnemonic::Call);
        if !tracked && is_callee_saved(x.target, reg0) {
            let saved = st.saved.values().any(|r| *r == reg0);
            if !saved {
                return Err(format!("{at}: writes {reg0:?} without saving it"));
            }
            if reg0 != Register::EBP {
                st.dirty.insert(reg0);
            }
        }
        let esp_handled =
            matches!(ins.mnemonic(), Mnemonic::Sub | Mnemonic::Add | Mnemonic::And | Mnemonic::Mov | Mnemonic::Lea);
        if !tracked && reg0 == Register::ESP && !esp_handled {
            return Err(format!("{at}: writes esp in a way this check does not follow"));
        }
    }
    if !returned {
        return Err("no ret".into());
    }
    Ok(calls)
}

fn expect_stub<'a>(target: Target, env: &'a CodeEnv, plan: &CallPlan) -> Expect<'a> {
    Expect {
        target,
        env,
        target_pops: plan.callee_pops,
        ret_pops: 0,
        returns_st0: false,
        target_returns_st0: plan.ret.loc == RetLoc::St0,
    }
}

#[test]
fn every_curated_stub_and_thunk_keeps_the_abi_invariants() {
    let mut checked = 0;
    for case in common::catalogue() {
        let backend = X86Backend::new(case.target).unwrap();
        let env = common::fake_env(&case.plan);
        let stub = backend.stub(&stub_program(&case.plan, 1), BASE, &env).unwrap();
        let calls = check(&stub, &expect_stub(case.target, &env, &case.plan))
            .map_err(|e| format!("{} stub: {e}", case.name))
            .unwrap();
        assert!(calls >= 6, "{}: {calls} calls", case.name);

        let frame = CallbackFrame::from_plan(&case.plan);
        let thunk = backend.thunk(&thunk_program(&frame), BASE, &env).unwrap();
        let x = Expect {
            target: case.target,
            env: &env,
            target_pops: 0,
            ret_pops: frame.pops,
            returns_st0: frame.ret.loc == RetLoc::St0,
            target_returns_st0: false,
        };
        check(&thunk, &x).map_err(|e| format!("{} thunk: {e}", case.name)).unwrap();
        checked += 1;
    }
    assert!(checked >= 30);
}

// The checker itself must catch what it claims to: each of these breaks one invariant.

fn add_stub(target: Target) -> (Vec<u8>, CodeEnv, CallPlan) {
    let case = common::catalogue().into_iter().find(|c| c.target == target && c.name.ends_with("add_stdcall")).unwrap();
    let env = common::fake_env(&case.plan);
    let code = X86Backend::new(target).unwrap().stub(&stub_program(&case.plan, 1), BASE, &env).unwrap();
    (code, env, case.plan)
}

#[test]
fn checker_rejects_a_stub_whose_callee_pops_are_not_put_back() {
    // Win32: 4 bytes off still leaves esp 4-aligned, so only the frame check can see it.
    let (code, env, plan) = add_stub(Target::X86_WIN);
    let mut x = expect_stub(Target::X86_WIN, &env, &plan);
    x.target_pops += 4;
    assert!(check(&code, &x).unwrap_err().contains("not below the frame esp"));
}

#[test]
fn checker_rejects_a_wrong_ret_n() {
    let (code, env, plan) = add_stub(Target::X86_WIN);
    let mut x = expect_stub(Target::X86_WIN, &env, &plan);
    x.ret_pops = 8;
    assert!(check(&code, &x).unwrap_err().contains("ret 0"));
}

#[test]
fn checker_rejects_a_misaligned_call_and_an_unrestored_register() {
    let (mut code, env, plan) = add_stub(Target::X86_LINUX);
    // Drop the realignment (`and esp, -16` = 83 E4 F0) by turning it into 3 nops.
    let at = code.windows(3).position(|w| w == [0x83, 0xe4, 0xf0]).unwrap();
    code[at..at + 3].fill(0x90);
    assert!(check(&code, &expect_stub(Target::X86_LINUX, &env, &plan)).unwrap_err().contains("aligned"));

    let (mut code, env, plan) = add_stub(Target::X86_LINUX);
    // `pop ebx` (5B) becomes `pop eax` (58): ebx is never restored.
    let at = code.iter().rposition(|b| *b == 0x5b).unwrap();
    code[at] = 0x58;
    assert!(check(&code, &expect_stub(Target::X86_LINUX, &env, &plan)).is_err());
}
