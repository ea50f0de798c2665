//! Shared by the integration tests: the curated signatures, a fake `CodeEnv`, and a symbolic
//! tracker of rsp over decoded straight-line code.
#![allow(dead_code)]

use abi_model::callback::CallbackFrame;
use abi_model::lua::helpers::Helper;
use abi_model::lua::steps::{stub_program, thunk_program, Program};
use abi_model::{
    plan_call, CallConv, CallPlan, Field, FloatKind, Gpr, IntKind, QualType, RecordAttrs, RecordKind, Signature,
    Target, TypeId, TypeTable, Xmm,
};
use iced_x86::{
    Code, Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess, OpKind,
    Register,
};
use std::collections::HashMap;

/// Where test code is assembled.
pub const BASE: u64 = 0x10000;

/// Helper `h` lives at `HELPERS + 0x10 * id`; ctype of argument i is `CTYPES + 0x100 * i`.
pub const HELPERS: u64 = 0x7ff0_0000_0000;
pub const CTYPES: u64 = 0x5500_0000_0000;
pub const RET_CTYPE: u64 = 0x55ff_0000_0000;
pub const CB_DATA: u64 = 0x4400_0000_0000;

pub fn env() -> abi_model::lua::CodeEnv {
    abi_model::lua::CodeEnv {
        helpers: Helper::ALL.iter().map(|h| HELPERS + 0x10 * h.id() as u64).collect(),
        arg_ctypes: (0..16).map(|i| CTYPES + 0x100 * i).collect(),
        ret_ctype: RET_CTYPE,
        callback_data: CB_DATA,
        call_slots: None,
    }
}

pub fn helper_at(addr: u64) -> Option<Helper> {
    Helper::ALL.into_iter().find(|h| HELPERS + 0x10 * h.id() as u64 == addr)
}

/// One curated case: a name, the plan, and the actual vararg types.
pub struct Case {
    pub name: &'static str,
    pub decl: &'static str,
    pub plan: CallPlan,
}

impl Case {
    pub fn stub_program(&self) -> Program {
        stub_program(&self.plan, 1)
    }
    /// Thunks exist for non-variadic signatures (a C caller calls a callback with a fixed
    /// prototype).
    pub fn thunk_program(&self) -> Option<Program> {
        (self.plan.fixed == self.plan.args.len()).then(|| thunk_program(&CallbackFrame::from_plan(&self.plan)))
    }
}

fn record(t: &mut TypeTable, tag: &str, fields: &[(&str, TypeId)]) -> TypeId {
    let s = t.new_record(RecordKind::Struct, Some(tag));
    t.define_record(s, fields.iter().map(|(n, ty)| Field::named(n, *ty)).collect(), RecordAttrs::default())
        .expect("valid record");
    s
}

fn q(ids: &[TypeId]) -> Vec<QualType> {
    ids.iter().map(|i| QualType::from(*i)).collect()
}

/// The curated signatures: every step kind and every Win64 return kind.
pub fn cases() -> Vec<Case> {
    let mut t = TypeTable::new(Target::X64_WIN);
    let void = t.void();
    let boolean = t.bool();
    let int = t.int(IntKind::Int);
    let uint = t.int(IntKind::UInt);
    let char_ = t.int(IntKind::Char);
    let schar = t.int(IntKind::SChar);
    let ushort = t.int(IntKind::UShort);
    let llong = t.int(IntKind::LongLong);
    let ullong = t.int(IntKind::ULongLong);
    let float = t.float(FloatKind::Float);
    let double = t.float(FloatKind::Double);
    let cfloat = t.complex(FloatKind::Float);
    let cdouble = t.complex(FloatKind::Double);
    let voidp = t.pointer_to(void);
    let charp = t.pointer_to(char_);
    let s8 = record(&mut t, "s8", &[("a", int), ("b", int)]);
    let s3 = record(&mut t, "s3", &[("a", char_), ("b", char_), ("c", char_)]);
    let s12 = record(&mut t, "s12", &[("a", int), ("b", int), ("c", int)]);
    let s2 = record(&mut t, "s2", &[("a", char_), ("b", char_)]);
    let plan = |ret: TypeId, params: &[TypeId], variadic: bool, varargs: &[TypeId]| {
        plan_call(&t, &Signature::new(ret, q(params), variadic, CallConv::Cdecl), &q(varargs)).expect("plannable")
    };
    vec![
        Case { name: "int_add_int_int", decl: "int add(int, int)", plan: plan(int, &[int, int], false, &[]) },
        Case { name: "void_nothing", decl: "void nothing(void)", plan: plan(void, &[], false, &[]) },
        Case {
            name: "double_scale_double_float",
            decl: "double scale(double, float)",
            plan: plan(double, &[double, float], false, &[]),
        },
        Case {
            name: "float_positional_mix",
            decl: "float mix(float, int, double, unsigned)",
            plan: plan(float, &[float, int, double, uint], false, &[]),
        },
        Case {
            name: "char_small_ints",
            decl: "char small(char, unsigned short, bool, signed char)",
            plan: plan(char_, &[char_, ushort, boolean, schar], false, &[]),
        },
        Case { name: "bool_pred_int", decl: "bool pred(int)", plan: plan(boolean, &[int], false, &[]) },
        Case {
            name: "llong_six_ints",
            decl: "long long six(int, int, int, int, int, char)",
            plan: plan(llong, &[int, int, int, int, int, char_], false, &[]),
        },
        Case {
            name: "ullong_stack_doubles",
            decl: "unsigned long long fp6(double, double, double, double, double, unsigned long long)",
            plan: plan(ullong, &[double, double, double, double, double, ullong], false, &[]),
        },
        Case {
            name: "ptr_pointers",
            decl: "void *ptrs(void *, const char *)",
            plan: plan(voidp, &[voidp, charp], false, &[]),
        },
        Case {
            name: "s8_by_value",
            decl: "struct s8 pass8(struct s8, struct s2)",
            plan: plan(s8, &[s8, s2], false, &[]),
        },
        Case {
            name: "s12_sret_and_by_reference",
            decl: "struct s12 big(struct s12, int)",
            plan: plan(s12, &[s12, int], false, &[]),
        },
        Case {
            name: "by_reference_on_stack",
            decl: "int deep(int, int, int, int, struct s3, struct s12)",
            plan: plan(int, &[int, int, int, int, s3, s12], false, &[]),
        },
        Case {
            name: "sret_shifts_args_to_stack",
            decl: "struct s12 shifted(double, int, int, float)",
            plan: plan(s12, &[double, int, int, float], false, &[]),
        },
        Case {
            name: "complex_float",
            decl: "float complex cf(float complex)",
            plan: plan(cfloat, &[cfloat], false, &[]),
        },
        Case {
            name: "complex_double",
            decl: "double complex cd(double complex, double)",
            plan: plan(cdouble, &[cdouble, double], false, &[]),
        },
        Case {
            name: "varargs_float_mirrored",
            decl: "int printf(const char *, ...) with (double, int, float, double)",
            plan: plan(int, &[charp], true, &[double, int, float, double]),
        },
        Case { name: "uint_void_ptr_arg", decl: "unsigned u(void *)", plan: plan(uint, &[voidp], false, &[]) },
    ]
}

/// A call found by the tracker.
#[derive(Clone, Debug)]
pub struct CallSite {
    pub ip: u64,
    /// rsp relative to the entry stack pointer E (negative: below).
    pub rsp: i64,
    /// The helper called through `rax`, or `None` for the target (`call [rsp+d]`).
    pub helper: Option<Helper>,
}

/// A memory write with a stack-relative address.
#[derive(Clone, Debug)]
pub struct StackWrite {
    pub ip: u64,
    /// Address relative to E.
    pub at: i64,
    pub size: u64,
    /// rsp at the time, relative to E.
    pub rsp: i64,
}

/// What the tracker learned, and every rule broken.
#[derive(Debug, Default)]
pub struct Trace {
    pub calls: Vec<CallSite>,
    pub writes: Vec<StackWrite>,
    /// Addresses (relative to E) read below rsp, in order: page probes.
    pub probes: Vec<i64>,
    /// rsp (relative to E) at the lowest point the prologue allocated.
    pub body: Option<i64>,
    /// `ret n` immediates seen.
    pub rets: Vec<u16>,
    pub errors: Vec<String>,
    pub instructions: usize,
}

#[derive(Clone, Debug, PartialEq)]
struct State {
    rsp: i64,
    rbp: Option<i64>,
    pushed: Vec<Register>,
    rax: Option<u64>,
}

/// Whether the model says a Win64 callee must preserve `r` (or the register it is part of).
fn is_nonvolatile(r: Register) -> bool {
    let full = r.full_register();
    let t = Target::X64_WIN;
    if full.is_gpr64() {
        return t.callee_saved_gprs().contains(&Gpr((full as u32 - Register::RAX as u32) as u8));
    }
    // The full registers of xmm0..xmm15 are zmm0..zmm15.
    full.is_zmm() && t.callee_saved_xmms().contains(&Xmm((full as u32 - Register::ZMM0 as u32) as u8))
}

fn writes(access: OpAccess) -> bool {
    matches!(access, OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite)
}

/// Walks the code once, in address order, tracking rsp symbolically (E = 0 at entry, where
/// `E ≡ 8 (mod 16)`), and checks the Microsoft x64 frame rules on every instruction.
/// Straight-line code plus forward conditional branches to code placed after a `ret`/`ud2`:
/// the state at a branch target is the state at the branch.
pub fn track(code: &[u8], base: u64) -> Trace {
    let mut trace = Trace::default();
    let mut decoder = Decoder::with_ip(64, code, base, DecoderOptions::NONE);
    let mut info = InstructionInfoFactory::new();
    let mut state = Some(State { rsp: 0, rbp: None, pushed: vec![], rax: None });
    let mut at_target: HashMap<u64, State> = HashMap::new();
    let mut ins = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut ins);
        trace.instructions += 1;
        let ip = ins.ip();
        if let Some(s) = at_target.remove(&ip) {
            if let Some(cur) = &state {
                if *cur != s {
                    trace.errors.push(format!("{ip:x}: two paths meet with different states {cur:?} / {s:?}"));
                }
            }
            state = Some(s);
        }
        let Some(st) = state.as_mut() else {
            trace.errors.push(format!("{ip:x}: unreachable instruction {ins}"));
            continue;
        };
        if ins.code() == Code::INVALID {
            trace.errors.push(format!("{ip:x}: undecodable bytes"));
            continue;
        }
        let i = info.info(&ins);
        let mnemonic = ins.mnemonic();
        // Callee-saved registers: written only once saved (push/pop themselves excluded).
        if !matches!(mnemonic, Mnemonic::Push | Mnemonic::Pop) {
            for r in i.used_registers() {
                let reg = r.register();
                if writes(r.access())
                    && reg.full_register() != Register::RSP
                    && is_nonvolatile(reg)
                    && !st.pushed.contains(&reg.full_register())
                {
                    trace.errors.push(format!("{ip:x}: {ins} writes callee-saved {reg:?} without saving it"));
                }
            }
        }
        // Stack memory: no write below rsp; record writes and reads below rsp (probes).
        if !matches!(mnemonic, Mnemonic::Push | Mnemonic::Pop | Mnemonic::Call | Mnemonic::Ret) {
            for m in i.used_memory() {
                let base_val = match m.base() {
                    Register::RSP => Some(st.rsp),
                    Register::RBP => st.rbp,
                    _ => None,
                };
                let Some(bv) = base_val else { continue };
                let at = bv + m.displacement() as i64;
                let size = m.memory_size().size() as u64;
                if writes(m.access()) {
                    if at < st.rsp {
                        trace.errors.push(format!("{ip:x}: {ins} writes below rsp"));
                    }
                    trace.writes.push(StackWrite { ip, at, size, rsp: st.rsp });
                } else if at < st.rsp {
                    trace.probes.push(at);
                }
            }
        }
        match (mnemonic, ins.op0_kind()) {
            (Mnemonic::Push, OpKind::Register) => {
                st.rsp -= 8;
                st.pushed.push(ins.op0_register());
            }
            (Mnemonic::Pop, OpKind::Register) => {
                let r = ins.op0_register();
                if st.pushed.pop() != Some(r) {
                    trace.errors.push(format!("{ip:x}: pop {r:?} does not match the last push"));
                }
                if st.rbp.is_some_and(|fp| fp > st.rsp) && r == Register::RBP {
                    trace.errors.push(format!("{ip:x}: rbp popped while the frame is still allocated"));
                }
                st.rsp += 8;
                if r == Register::RBP {
                    st.rbp = None;
                }
            }
            (Mnemonic::Sub | Mnemonic::Add, OpKind::Register) if ins.op0_register() == Register::RSP => {
                let n = ins.immediate(1) as i64;
                st.rsp += if mnemonic == Mnemonic::Sub { -n } else { n };
                if mnemonic == Mnemonic::Sub && trace.body.is_none() {
                    trace.body = Some(st.rsp);
                }
            }
            (Mnemonic::Mov, OpKind::Register)
                if ins.op0_register() == Register::RBP
                    && ins.op1_kind() == OpKind::Register
                    && ins.op1_register() == Register::RSP =>
            {
                st.rbp = Some(st.rsp);
            }
            (Mnemonic::Lea, OpKind::Register) if ins.op0_register() == Register::RSP => {
                match (ins.memory_base(), st.rbp) {
                    (Register::RBP, Some(fp)) => st.rsp = fp + ins.memory_displacement64() as i64,
                    _ => trace.errors.push(format!("{ip:x}: {ins}: rsp from an untracked base")),
                }
            }
            (Mnemonic::Mov, OpKind::Register)
                if ins.op0_register() == Register::RAX && ins.op1_kind() == OpKind::Immediate64 =>
            {
                st.rax = Some(ins.immediate64());
            }
            (Mnemonic::Call, _) => {
                // E ≡ 8 (mod 16), so rsp ≡ 0 (mod 16) means rsp - E ≡ 8.
                if (st.rsp - 8).rem_euclid(16) != 0 {
                    trace.errors.push(format!("{ip:x}: call with rsp misaligned (E{:+})", st.rsp));
                }
                let helper = match ins.op0_kind() {
                    OpKind::Register if ins.op0_register() == Register::RAX => match st.rax.and_then(helper_at) {
                        Some(h) => Some(h),
                        None => {
                            trace.errors.push(format!("{ip:x}: call rax with rax not a known helper"));
                            None
                        }
                    },
                    OpKind::Memory if ins.memory_base() == Register::RSP => None,
                    _ => {
                        trace.errors.push(format!("{ip:x}: unexpected call form {ins}"));
                        None
                    }
                };
                trace.calls.push(CallSite { ip, rsp: st.rsp, helper });
                // The callee may clobber every volatile register.
                st.rax = None;
            }
            (Mnemonic::Ret, _) => {
                if st.rsp != 0 {
                    trace.errors.push(format!("{ip:x}: ret with rsp at E{:+}", st.rsp));
                }
                if !st.pushed.is_empty() {
                    trace.errors.push(format!("{ip:x}: ret with {:?} still pushed", st.pushed));
                }
                trace.rets.push(if ins.op_count() == 1 { ins.immediate16() } else { 0 });
                state = None;
                continue;
            }
            (Mnemonic::Ud2, _) => {
                state = None;
                continue;
            }
            _ if ins.flow_control() == FlowControl::ConditionalBranch => {
                at_target.insert(ins.near_branch_target(), st.clone());
            }
            _ if matches!(ins.flow_control(), FlowControl::UnconditionalBranch | FlowControl::IndirectBranch) => {
                trace.errors.push(format!("{ip:x}: unexpected jump {ins}"));
            }
            _ => {
                for r in i.used_registers() {
                    if writes(r.access()) && r.register().full_register() == Register::RSP {
                        trace.errors.push(format!("{ip:x}: {ins} changes rsp in a way the tracker does not follow"));
                    }
                    if writes(r.access())
                        && r.register().full_register() == Register::RBP
                        && st.pushed.contains(&Register::RBP)
                    {
                        trace.errors.push(format!("{ip:x}: {ins} moves the frame pointer"));
                    }
                    if writes(r.access()) && r.register().full_register() == Register::RAX {
                        st.rax = None;
                    }
                }
            }
        }
    }
    if state.is_some() {
        trace.errors.push("code falls off its end".into());
    }
    if !at_target.is_empty() {
        trace.errors.push(format!("branches to addresses that start no instruction: {:x?}", at_target.keys()));
    }
    trace
}
