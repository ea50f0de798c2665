//! Stubs and thunks run under the emulator (emu-harness, unicorn) with mock helpers behind
//! stop addresses, and a mock target checked against the Microsoft x64 rules at its entry.
//!
//! Every mock, at its entry, checks `rsp ≡ 8 (mod 16)` and then behaves like a hostile but
//! legal callee: it fills its 32-byte home space with 0xCC and overwrites every volatile
//! register it does not return in. The caller's callee-saved registers hold sentinels that
//! must survive.

mod common;

use abi_model::callback::CallbackFrame;
use abi_model::helpers::Helper;
use abi_model::steps::{stub_program, thunk_program};
use abi_model::{plan_call, CallConv, Field, FloatKind, IntKind, QualType, RecordAttrs, RecordKind, Signature, Target, TypeTable};
use backend_x64_win::{lower_stub, lower_thunk};
use common::{env, helper_at, BASE, CB_DATA, HELPERS};
use emu_harness::{Cpu, Gpr, Mode, Perms, Stop, StopSet, UnicornCpu, PAGE_SIZE};

const TARGET: u64 = 0x3000_0000;
const EXIT: u64 = 0x3000_0100;
const STACK: u64 = 0x100_0000;
const STACK_SIZE: u64 = 0x1_0000;
const HEAP: u64 = 0x200_0000;
const L: u64 = 0x1111_2222;
const CALLEE_SAVED: [Gpr; 8] = [Gpr::Rbx, Gpr::Rbp, Gpr::Rsi, Gpr::Rdi, Gpr::R12, Gpr::R13, Gpr::R14, Gpr::R15];
const VOLATILE: [Gpr; 7] = [Gpr::Rcx, Gpr::Rdx, Gpr::R8, Gpr::R9, Gpr::R10, Gpr::R11, Gpr::Rax];

/// A Lua value on the mock stack.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    Num(f64),
    Bytes(Vec<u8>),
}

/// What a mocked call of the target does: given the CPU at its entry, sets the result.
type Target64 = dyn FnMut(&mut UnicornCpu);

struct World {
    cpu: UnicornCpu,
    /// The Lua arguments (stubs) or the pushed callback arguments (thunks).
    lua: Vec<Val>,
    pushed: Vec<Val>,
    heap_next: u64,
    calls: Vec<Helper>,
}

impl World {
    fn new(code: &[u8]) -> World {
        let mut cpu = UnicornCpu::new(Mode::X86_64).unwrap();
        cpu.map(BASE, PAGE_SIZE, Perms::RX).unwrap();
        cpu.write(BASE, code).unwrap();
        cpu.map(STACK, STACK_SIZE, Perms::RW).unwrap();
        cpu.map(HEAP, PAGE_SIZE, Perms::RW).unwrap();
        // Entry: rsp ≡ 8 (mod 16), the return address at [rsp], the caller's home space above.
        let entry_sp = STACK + STACK_SIZE - 0x100 - 8;
        cpu.write_u64(entry_sp, EXIT).unwrap();
        cpu.set_gpr(Gpr::Rsp, entry_sp);
        for (i, r) in CALLEE_SAVED.iter().enumerate() {
            cpu.set_gpr(*r, 0x5a5a_0000 + i as u64);
        }
        World { cpu, lua: vec![], pushed: vec![], heap_next: HEAP, calls: vec![] }
    }

    fn alloc(&mut self, bytes: u64) -> u64 {
        let at = self.heap_next;
        self.heap_next += bytes.div_ceil(16) * 16;
        at
    }

    /// Checks the callee's entry state, then clobbers what a callee may clobber (except the
    /// argument registers, which the mock reads first: `clobber` runs after the mock).
    fn check_entry(&self, who: &str) {
        let rsp = self.cpu.gpr(Gpr::Rsp);
        assert_eq!(rsp % 16, 8, "{who}: rsp misaligned at entry");
    }

    fn clobber(&mut self, keep_rax: bool) {
        let rsp = self.cpu.gpr(Gpr::Rsp);
        self.cpu.write(rsp + 8, &[0xCC; 32]).unwrap();
        for r in VOLATILE {
            if !(keep_rax && r == Gpr::Rax) {
                self.cpu.set_gpr(r, 0xdead_beef_dead_beef);
            }
        }
        for x in 1..6 {
            self.cpu.set_xmm(x, 0xdead_beef_u128 * 0x1_0000_0001);
        }
    }

    fn ret(&mut self) -> u64 {
        let rsp = self.cpu.gpr(Gpr::Rsp);
        let to = self.cpu.read_u64(rsp).unwrap();
        self.cpu.set_gpr(Gpr::Rsp, rsp + 8);
        to
    }

    fn arg(&self, i: usize) -> u64 {
        self.cpu.gpr([Gpr::Rcx, Gpr::Rdx, Gpr::R8, Gpr::R9][i])
    }

    fn lua_at(&self, idx: i32) -> Val {
        let i = if idx < 0 { self.pushed.len() as i32 + idx } else { idx - 1 };
        let stack = if idx < 0 { &self.pushed } else { &self.lua };
        stack[i as usize].clone()
    }

    fn num(&self, idx: u64) -> f64 {
        match self.lua_at(idx as u32 as i32) {
            Val::Num(n) => n,
            other => panic!("number expected at {idx}, got {other:?}"),
        }
    }

    /// The mock of one helper: reads its arguments, acts on the mock Lua state, returns.
    fn helper(&mut self, h: Helper, target_fn: u64, lua_result: &mut dyn FnMut(&[Val]) -> Val) {
        self.check_entry(h.name());
        self.calls.push(h);
        let mut ret_xmm = None;
        let mut ret_rax = None;
        if !matches!(h, Helper::CallbackEnter) {
            assert_eq!(self.arg(0), L, "{}: L in rcx", h.name());
        }
        match h {
            Helper::ArgCount => ret_rax = Some(self.lua.len() as u64),
            Helper::ArgCountError => panic!("argcount error: expected {}, got {}", self.arg(1), self.arg(2)),
            Helper::FuncAddr => ret_rax = Some(target_fn),
            Helper::ErrnoRestore | Helper::AfterCall | Helper::CallbackLeave => {}
            Helper::ToI32 | Helper::ToU32 | Helper::ToBool => ret_rax = Some(self.num(self.arg(1)) as i64 as u32 as u64),
            Helper::ToI64 | Helper::ToU64 => ret_rax = Some(self.num(self.arg(1)) as i64 as u64),
            Helper::ToF64 => ret_xmm = Some(u128::from(self.num(self.arg(1)).to_bits())),
            Helper::ToF32 => ret_xmm = Some(u128::from((self.num(self.arg(1)) as f32).to_bits())),
            Helper::ToRecord => {
                let Val::Bytes(b) = self.lua_at(self.arg(1) as u32 as i32) else { panic!("record expected") };
                self.cpu.write(self.arg(3), &b).unwrap();
            }
            Helper::NewResult => ret_rax = Some(self.alloc(64)),
            Helper::PushI32 => self.pushed.push(Val::Num(f64::from(self.arg(1) as u32 as i32))),
            Helper::PushI64 => self.pushed.push(Val::Num(self.arg(1) as i64 as f64)),
            Helper::PushF64 => self.pushed.push(Val::Num(f64::from_bits(self.cpu.xmm(1) as u64))),
            Helper::PushF32 => self.pushed.push(Val::Num(f64::from(f32::from_bits(self.cpu.xmm(1) as u32)))),
            Helper::CallbackEnter => {
                assert_eq!(self.arg(0), CB_DATA, "callback data in rcx");
                ret_rax = Some(L);
            }
            Helper::CallbackCall => {
                let n = self.arg(1) as usize;
                let args = self.pushed.split_off(self.pushed.len() - n);
                let r = lua_result(&args);
                self.lua.extend(args);
                self.pushed.push(r);
            }
            other => panic!("mock for {} not written", other.name()),
        }
        self.clobber(ret_rax.is_some());
        if let Some(v) = ret_rax {
            self.cpu.set_gpr(Gpr::Rax, v);
        }
        if let Some(v) = ret_xmm {
            self.cpu.set_xmm(0, v);
        }
    }

    /// Runs from `start` until the code returns to [`EXIT`], serving every helper and the
    /// target along the way.
    fn run(&mut self, start: u64, target: &mut Target64, lua_result: &mut dyn FnMut(&[Val]) -> Val) {
        let stops = StopSet::new(common_stops());
        let mut pc = start;
        loop {
            match self.cpu.run(pc, &stops, 10_000).unwrap() {
                Stop::Reached(EXIT) => break,
                Stop::Reached(TARGET) => {
                    self.check_entry("target");
                    target(&mut self.cpu);
                    self.clobber(true);
                }
                Stop::Reached(addr) => {
                    let h = helper_at(addr).unwrap_or_else(|| panic!("stopped at {addr:#x}"));
                    self.helper(h, TARGET, lua_result);
                }
            }
            pc = self.ret();
        }
        for (i, r) in CALLEE_SAVED.iter().enumerate() {
            assert_eq!(self.cpu.gpr(*r), 0x5a5a_0000 + i as u64, "{r:?} preserved");
        }
        assert_eq!(self.cpu.gpr(Gpr::Rsp), STACK + STACK_SIZE - 0x100, "rsp back above the return address");
    }
}

fn common_stops() -> Vec<u64> {
    let mut v: Vec<u64> = Helper::ALL.iter().map(|h| HELPERS + 0x10 * h.id() as u64).collect();
    v.extend([TARGET, EXIT]);
    v
}

fn no_callback(_: &[Val]) -> Val {
    unreachable!("stubs call no Lua function")
}

fn win_table() -> TypeTable {
    TypeTable::new(Target::X64_WIN)
}

#[test]
fn stub_int_add_calls_the_target_with_ecx_edx_and_pushes_the_sum() {
    let t = win_table();
    let int = t.int(IntKind::Int);
    let plan = plan_call(&t, &Signature::new(int, vec![int.into(), int.into()], false, CallConv::Cdecl), &[]).unwrap();
    let mut w = World::new(&lower_stub(&stub_program(&plan, 1), BASE, &env()).unwrap());
    w.lua = vec![Val::Num(40.0), Val::Num(2.0)];
    w.cpu.set_gpr(Gpr::Rcx, L);
    let mut add = |cpu: &mut UnicornCpu| {
        let sum = (cpu.gpr(Gpr::Rcx) as u32).wrapping_add(cpu.gpr(Gpr::Rdx) as u32);
        cpu.set_gpr(Gpr::Rax, 0xffff_ffff_0000_0000 | u64::from(sum)); // upper half is garbage
    };
    w.run(BASE, &mut add, &mut no_callback);
    assert_eq!(w.cpu.gpr(Gpr::Rax) as u32, 1, "one result");
    assert_eq!(w.pushed, vec![Val::Num(42.0)]);
    assert_eq!(w.calls.first(), Some(&Helper::ArgCount));
}

#[test]
fn stub_with_stack_arguments_and_a_char_places_them_after_the_home_space() {
    let t = win_table();
    let (int, chr, ll) = (t.int(IntKind::Int), t.int(IntKind::Char), t.int(IntKind::LongLong));
    let params: Vec<QualType> = vec![int.into(), int.into(), int.into(), int.into(), ll.into(), chr.into()];
    let plan = plan_call(&t, &Signature::new(ll, params, false, CallConv::Cdecl), &[]).unwrap();
    let mut w = World::new(&lower_stub(&stub_program(&plan, 1), BASE, &env()).unwrap());
    w.lua = [1.0, 2.0, 3.0, 4.0, -5e12, -3.0].into_iter().map(Val::Num).collect();
    w.cpu.set_gpr(Gpr::Rcx, L);
    let mut six = |cpu: &mut UnicornCpu| {
        let rsp = cpu.gpr(Gpr::Rsp);
        // Positional: the fifth and sixth arguments at [rsp+8+32] and [rsp+8+40].
        let fifth = cpu.read_u64(rsp + 40).unwrap() as i64;
        let mut sixth = [0u8];
        cpu.read(rsp + 48, &mut sixth).unwrap();
        let regs: i64 = [Gpr::Rcx, Gpr::Rdx, Gpr::R8, Gpr::R9].iter().map(|r| i64::from(cpu.gpr(*r) as u32 as i32)).sum();
        cpu.set_gpr(Gpr::Rax, (regs + fifth + i64::from(sixth[0] as i8)) as u64);
    };
    w.run(BASE, &mut six, &mut no_callback);
    assert_eq!(w.pushed, vec![Val::Num(10.0 - 5e12 - 3.0)]);
}

#[test]
fn stub_with_sret_and_a_by_reference_struct_passes_the_buffer_in_rcx_and_the_copy_in_rdx() {
    let mut t = win_table();
    let int = t.int(IntKind::Int);
    let s12 = t.new_record(RecordKind::Struct, Some("s12"));
    t.define_record(s12, ["a", "b", "c"].iter().map(|n| Field::named(n, int)).collect(), RecordAttrs::default()).unwrap();
    let plan = plan_call(&t, &Signature::new(s12, vec![s12.into(), int.into()], false, CallConv::Cdecl), &[]).unwrap();
    let mut w = World::new(&lower_stub(&stub_program(&plan, 1), BASE, &env()).unwrap());
    let input: Vec<u8> = [7i32, 8, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
    w.lua = vec![Val::Bytes(input), Val::Num(100.0)];
    w.cpu.set_gpr(Gpr::Rcx, L);
    let mut big = |cpu: &mut UnicornCpu| {
        let (out, copy, k) = (cpu.gpr(Gpr::Rcx), cpu.gpr(Gpr::Rdx), cpu.gpr(Gpr::R8) as u32 as i32);
        let rsp = cpu.gpr(Gpr::Rsp);
        assert!(copy >= rsp + 8 + 32, "the copy lies above the target's home space");
        let mut b = [0u8; 12];
        cpu.read(copy, &mut b).unwrap();
        let vals: Vec<u8> = b.chunks(4).flat_map(|c| (i32::from_le_bytes(c.try_into().unwrap()) + k).to_le_bytes()).collect();
        cpu.write(out, &vals).unwrap();
        cpu.set_gpr(Gpr::Rax, out);
    };
    w.run(BASE, &mut big, &mut no_callback);
    assert_eq!(w.cpu.gpr(Gpr::Rax) as u32, 1);
    let mut result = [0u8; 12];
    w.cpu.read(HEAP, &mut result).unwrap();
    let vals: Vec<i32> = result.chunks(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(vals, vec![107, 108, 109]);
}

#[test]
fn stub_variadic_double_is_mirrored_into_its_integer_register() {
    let t = win_table();
    let (int, dbl) = (t.int(IntKind::Int), t.float(FloatKind::Double));
    let plan = plan_call(&t, &Signature::new(int, vec![int.into()], true, CallConv::Cdecl), &[dbl.into()]).unwrap();
    let mut w = World::new(&lower_stub(&stub_program(&plan, 1), BASE, &env()).unwrap());
    w.lua = vec![Val::Num(1.0), Val::Num(2.5)];
    w.cpu.set_gpr(Gpr::Rcx, L);
    let mut va = |cpu: &mut UnicornCpu| {
        assert_eq!(cpu.xmm(1) as u64, cpu.gpr(Gpr::Rdx), "xmm1 and rdx carry the same double");
        cpu.set_gpr(Gpr::Rax, f64::from_bits(cpu.gpr(Gpr::Rdx)) as u64);
    };
    w.run(BASE, &mut va, &mut no_callback);
    assert_eq!(w.pushed, vec![Val::Num(2.0)]);
}

#[test]
fn thunk_double_scale_reads_xmm0_xmm1_and_returns_in_xmm0() {
    let t = win_table();
    let (dbl, flt) = (t.float(FloatKind::Double), t.float(FloatKind::Float));
    let plan = plan_call(&t, &Signature::new(dbl, vec![dbl.into(), flt.into()], false, CallConv::Cdecl), &[]).unwrap();
    let program = thunk_program(&CallbackFrame::from_plan(&plan));
    let mut w = World::new(&lower_thunk(&program, BASE, &env()).unwrap());
    // The C caller: xmm0 = 1.5, xmm1 = 4.0f, garbage above the float.
    w.cpu.set_xmm(0, u128::from(1.5f64.to_bits()));
    w.cpu.set_xmm(1, (0xabcd_u128 << 32) | u128::from(4.0f32.to_bits()));
    let mut mul = |args: &[Val]| match args {
        [Val::Num(a), Val::Num(b)] => Val::Num(a * b),
        other => panic!("{other:?}"),
    };
    w.run(BASE, &mut |_: &mut UnicornCpu| unreachable!(), &mut mul);
    assert_eq!(f64::from_bits(w.cpu.xmm(0) as u64), 6.0);
    assert_eq!(w.lua, vec![Val::Num(1.5), Val::Num(4.0)], "the Lua function saw both arguments");
}
