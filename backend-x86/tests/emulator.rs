//! Stubs and thunks run under the emulator (emu-harness, unicorn): stubs call the functions
//! gcc -m32 and mingw compiled into emu-harness's own test fixture (`add3`, stdcall `sub2`,
//! fastcall `fsub2`, `scale` returning double, `halve` returning float); thunks are called
//! as a C caller would call them. Helpers are stop addresses served by a mock Lua stack that
//! also checks each helper call's stack alignment and arguments, and clobbers the registers
//! a C helper may clobber.

mod common;

use abi_model::helpers::Helper;
use abi_model::steps::{stub_program, thunk_program};
use abi_model::{plan_call, Backend, CallConv, CallPlan, CallbackFrame, CodeEnv, FloatKind, IntKind, Os, Signature, Target, TypeId, TypeTable};
use backend_x86::X86Backend;
use emu_harness::{Cpu, Gpr, Image, Perms, Stop, StopSet, UnicornCpu};

const CODE: u64 = 0x0060_0000;
const STACK: u64 = 0x0030_0000;
const STACK_SIZE: u64 = 0x1_0000;
/// Where the stub or thunk returns to: a stop with no memory behind it.
const RETURN_STOP: u64 = 0x7f00_0000;
const L: u32 = 0x4c4c_4c4c;
const CALLBACK_DATA: u32 = 0x5000_0000;
/// Values the callee-saved registers hold before the call and must hold after it.
const SAVED: [(Gpr, u64); 4] = [(Gpr::Rbx, 0xb0b0_b0b0), (Gpr::Rsi, 0x5151_5151), (Gpr::Rdi, 0xd1d1_d1d1), (Gpr::Rbp, 0xbbbb_0000)];

/// A Lua value as the mock stack holds it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Value {
    Int(i64),
    Num(f64),
}

impl Value {
    fn int(self) -> i64 {
        match self {
            Value::Int(i) => i,
            Value::Num(n) => n as i64,
        }
    }
    fn num(self) -> f64 {
        match self {
            Value::Int(i) => i as f64,
            Value::Num(n) => n,
        }
    }
}

struct Machine {
    cpu: UnicornCpu,
    image: Image,
    target: Target,
    env: CodeEnv,
    /// Code pages used so far: each stub or thunk gets a fresh one, because
    /// `UnicornCpu::write` does not drop code unicorn already translated at that address.
    code_pages: u64,
}

fn fixture(target: Target) -> Machine {
    let file = if target.os == Os::Linux { "fixture.elf32" } else { "fixture.pe32.exe" };
    let path = format!("{}/../emu-harness/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let image = Image::parse(&std::fs::read(&path).expect("committed fixture")).expect("parses");
    let mut cpu = UnicornCpu::new(image.mode).expect("unicorn");
    image.load_into(&mut cpu).expect("loads");
    cpu.map(STACK, STACK_SIZE, Perms::RW).unwrap();
    cpu.map(CODE, 0x1_0000, Perms::RX).unwrap();
    let env = CodeEnv {
        helpers: Helper::ALL.iter().map(|h| 0x7000_0000 + 16 * h.id() as u64).collect(),
        arg_ctypes: vec![],
        ret_ctype: 0x6000_0ff0,
        callback_data: u64::from(CALLBACK_DATA),
    };
    Machine { cpu, image, target, env, code_pages: 0 }
}

/// What the mock Lua side saw and answers.
#[derive(Default)]
struct Lua {
    /// The stub's Lua arguments.
    args: Vec<Value>,
    /// The C function `luaffi_func_addr` hands out.
    func: u64,
    /// Values pushed by the push helpers.
    pushed: Vec<Value>,
    /// What the Lua callback returns, as a function of the pushed arguments.
    callback: Option<fn(&[Value]) -> Value>,
    /// The callback's result, once called.
    result: Option<Value>,
    helpers_called: Vec<Helper>,
}

impl Machine {
    /// Writes `code` to a fresh page and returns its address.
    fn load_code(&mut self, code: impl FnOnce(u64) -> Vec<u8>) -> u64 {
        let at = CODE + 0x1000 * self.code_pages;
        self.code_pages += 1;
        assert!(self.code_pages <= 16, "the code area holds 16 pages");
        let bytes = code(at);
        self.cpu.write(at, &bytes).unwrap();
        at
    }

    fn arg(&self, i: u64) -> u64 {
        let sp = self.cpu.gpr(Gpr::Rsp);
        u64::from(self.cpu.read_u32(sp + 4 + 4 * i).unwrap())
    }

    /// Serves one helper call at its stop, as the helper's C code would, then returns from it.
    fn serve(&mut self, h: Helper, lua: &mut Lua) {
        let sp = self.cpu.gpr(Gpr::Rsp);
        // At the helper's first instruction the return address is on the stack: the call
        // happened with esp = sp + 4.
        let align = if self.target.os == Os::Linux { 16 } else { 4 };
        assert_eq!((sp + 4) % align, 0, "{h:?} called with esp {:#x}", sp + 4);
        let takes_l = !matches!(h, Helper::CallbackEnter);
        if takes_l {
            assert_eq!(self.arg(0), u64::from(L), "{h:?}: L");
        }
        let lua_index = |m: &Machine, lua: &Lua| -> Value {
            match m.arg(1) as u32 as i32 {
                -1 => lua.result.expect("the callback ran"),
                i => lua.args[(i - 1) as usize],
            }
        };
        lua.helpers_called.push(h);
        let mut eax = 0x0bad_0bad;
        match h {
            Helper::ArgCount => eax = lua.args.len() as u64,
            Helper::ArgCountError => panic!("argument count error: expected {}, got {}", self.arg(1), self.arg(2)),
            Helper::FuncAddr => eax = lua.func,
            Helper::ToI32 | Helper::ToU32 | Helper::ToBool => eax = lua_index(self, lua).int() as u32 as u64,
            Helper::ToF64 => self.cpu.x87_push(lua_index(self, lua).num()).unwrap(),
            Helper::ToF32 => self.cpu.x87_push(lua_index(self, lua).num() as f32 as f64).unwrap(),
            Helper::ToRecord => {
                // The mock "struct" result: three ints counting up from the Lua number.
                let (v, dst) = (lua_index(self, lua).int() as u32, self.arg(3));
                for k in 0..3 {
                    self.cpu.write_u32(dst + 4 * k, v + k as u32).unwrap();
                }
            }
            Helper::PushI32 => lua.pushed.push(Value::Int(i64::from(self.arg(1) as u32 as i32))),
            Helper::PushF64 => {
                let bits = self.cpu.read_u64(sp + 8).unwrap();
                lua.pushed.push(Value::Num(f64::from_bits(bits)));
            }
            Helper::PushF32 => lua.pushed.push(Value::Num(f64::from(f32::from_bits(self.arg(1) as u32)))),
            Helper::ErrnoRestore | Helper::AfterCall | Helper::CallbackLeave => {}
            Helper::CallbackEnter => {
                assert_eq!(self.arg(0), u64::from(CALLBACK_DATA));
                eax = u64::from(L);
            }
            Helper::CallbackCall => {
                assert_eq!(self.arg(1) as usize, lua.pushed.len(), "nargs");
                lua.result = Some((lua.callback.expect("a callback"))(&lua.pushed));
            }
            other => panic!("the mock does not serve {other:?}"),
        }
        // A C helper may clobber eax, ecx and edx.
        self.cpu.set_gpr(Gpr::Rax, eax);
        self.cpu.set_gpr(Gpr::Rcx, 0xc1c1_c1c1);
        self.cpu.set_gpr(Gpr::Rdx, 0xd2d2_d2d2);
        self.cpu.emulate_ret(0).unwrap();
    }

    /// Runs from `start` (the caller has pushed the return address) to `RETURN_STOP`, serving
    /// helpers; then checks the callee-saved registers and that esp is `expect_sp`.
    fn run(&mut self, start: u64, lua: &mut Lua, expect_sp: u64) {
        for (r, v) in SAVED {
            self.cpu.set_gpr(r, v);
        }
        let stops = StopSet::new(Helper::ALL.iter().map(|h| self.env.helper(*h)).chain([RETURN_STOP]));
        let mut at = start;
        loop {
            match self.cpu.run(at, &stops, 10_000) {
                Ok(Stop::Reached(RETURN_STOP)) => break,
                Ok(Stop::Reached(addr)) => {
                    let h = Helper::ALL.into_iter().find(|h| self.env.helper(*h) == addr).unwrap();
                    self.serve(h, lua);
                    at = self.cpu.gpr(Gpr::Rip);
                }
                Err(e) => panic!("{e} at {:#x}", self.cpu.gpr(Gpr::Rip)),
            }
        }
        for (r, v) in SAVED {
            assert_eq!(self.cpu.gpr(r), v, "{r:?} not preserved");
        }
        assert_eq!(self.cpu.gpr(Gpr::Rsp), expect_sp, "esp after return");
    }

    /// Calls `func` through a stub for `plan` with these Lua arguments; returns what was pushed.
    fn call_stub(&mut self, plan: &CallPlan, func: &str, args: &[Value]) -> Vec<Value> {
        let (target, env) = (self.target, self.env.clone());
        let start = self.load_code(|at| X86Backend::new(target).unwrap().stub(&stub_program(plan, 1), at, &env).unwrap());
        self.cpu.reset_registers();
        // As a gcc-built Lua calls a lua_CFunction: esp 16-aligned at the call, L on top.
        let sp = STACK + STACK_SIZE - 0x100;
        self.cpu.set_gpr(Gpr::Rsp, sp);
        self.cpu.write_u32(sp, L).unwrap();
        self.cpu.push(RETURN_STOP).unwrap();
        let mut lua = Lua { args: args.to_vec(), func: self.image.symbol(func).unwrap(), ..Lua::default() };
        self.run(start, &mut lua, sp);
        assert_eq!(self.cpu.gpr(Gpr::Rax), 1, "results");
        assert_eq!(self.cpu.x87_depth(), 0, "x87 stack left empty");
        assert_eq!(lua.helpers_called.first(), Some(&Helper::ArgCount));
        lua.pushed
    }
}

struct Sigs {
    t: TypeTable,
    int: TypeId,
    f32_: TypeId,
    f64_: TypeId,
}

fn sigs(target: Target) -> Sigs {
    let t = TypeTable::new(target);
    Sigs { int: t.int(IntKind::Int), f32_: t.float(FloatKind::Float), f64_: t.float(FloatKind::Double), t }
}

impl Sigs {
    fn plan(&self, conv: CallConv, ret: TypeId, params: &[TypeId]) -> CallPlan {
        let params = params.iter().map(|p| (*p).into()).collect();
        plan_call(&self.t, &Signature::new(ret, params, false, conv), &[]).unwrap()
    }
}

#[test]
fn stubs_call_gcc_and_mingw_compiled_functions_in_every_convention() {
    for target in [Target::X86_LINUX, Target::X86_WIN] {
        let mut m = fixture(target);
        let s = sigs(target);
        let (int, f32_, f64_) = (s.int, s.f32_, s.f64_);
        let add3 = s.plan(CallConv::Cdecl, int, &[int, int, int]);
        assert_eq!(m.call_stub(&add3, "add3", &[Value::Int(40), Value::Int(-3), Value::Int(5)]), [Value::Int(42)], "{target:?} add3");
        let sub2 = s.plan(CallConv::Stdcall, int, &[int, int]);
        assert_eq!(m.call_stub(&sub2, "sub2", &[Value::Int(10), Value::Int(3)]), [Value::Int(7)], "{target:?} stdcall sub2");
        let fsub2 = s.plan(CallConv::Fastcall, int, &[int, int]);
        assert_eq!(m.call_stub(&fsub2, "fsub2", &[Value::Int(10), Value::Int(3)]), [Value::Int(7)], "{target:?} fastcall fsub2");
        let scale = s.plan(CallConv::Cdecl, f64_, &[f64_, int]);
        assert_eq!(m.call_stub(&scale, "scale", &[Value::Num(1.25), Value::Int(6)]), [Value::Num(7.5)], "{target:?} scale");
        let halve = s.plan(CallConv::Cdecl, f32_, &[f32_]);
        assert_eq!(m.call_stub(&halve, "halve", &[Value::Num(5.0)]), [Value::Num(2.5)], "{target:?} halve");
    }
}

/// Calls a thunk for `plan` as a C caller would: `regs` in ecx/edx, `stack` words pushed right
/// to left, entry esp misaligned by `skew` bytes from 16. Returns eax and the mock's record.
fn call_thunk(m: &mut Machine, plan: &CallPlan, regs: &[u32], stack: &[u32], skew: u64, callback: fn(&[Value]) -> Value) -> (u32, Lua) {
    let frame = CallbackFrame::from_plan(plan);
    let (target, env) = (m.target, m.env.clone());
    let start = m.load_code(|at| X86Backend::new(target).unwrap().thunk(&thunk_program(&frame), at, &env).unwrap());
    m.cpu.reset_registers();
    let sp = STACK + STACK_SIZE - 0x100 - skew - 4 * stack.len() as u64;
    m.cpu.set_gpr(Gpr::Rsp, sp);
    for (i, w) in stack.iter().enumerate() {
        m.cpu.write_u32(sp + 4 * i as u64, *w).unwrap();
    }
    for (r, v) in [Gpr::Rcx, Gpr::Rdx].iter().zip(regs) {
        m.cpu.set_gpr(*r, u64::from(*v));
    }
    m.cpu.push(RETURN_STOP).unwrap();
    let mut lua = Lua { callback: Some(callback), ..Lua::default() };
    // The callee pops what the plan says; the caller's stack arguments stay otherwise.
    m.run(start, &mut lua, sp + u64::from(frame.pops));
    (m.cpu.gpr(Gpr::Rax) as u32, lua)
}

fn difference(args: &[Value]) -> Value {
    Value::Int(args[0].int() - args[1].int())
}

#[test]
fn thunks_return_what_the_lua_callback_returns_in_every_convention() {
    for target in [Target::X86_LINUX, Target::X86_WIN] {
        let mut m = fixture(target);
        let s = sigs(target);
        let int = s.int;
        // Entered with esp 4 off 16-alignment: the thunk realigns before its helper calls.
        for skew in [0, 4] {
            let stdcall = s.plan(CallConv::Stdcall, int, &[int, int]);
            let (eax, lua) = call_thunk(&mut m, &stdcall, &[], &[50, 8], skew, difference);
            assert_eq!((eax, lua.pushed.as_slice()), (42, &[Value::Int(50), Value::Int(8)][..]), "{target:?} stdcall");
            let fastcall = s.plan(CallConv::Fastcall, int, &[int, int, int]);
            let (eax, lua) = call_thunk(&mut m, &fastcall, &[7, 9], &[100], skew, |a| Value::Int(a[0].int() * a[1].int() + a[2].int()));
            assert_eq!((eax, lua.pushed.len()), (163, 3), "{target:?} fastcall");
        }
    }
}

#[test]
fn thunks_return_doubles_in_st0_and_structs_through_the_hidden_pointer() {
    for target in [Target::X86_LINUX, Target::X86_WIN] {
        let mut m = fixture(target);
        let s = sigs(target);
        let scale = s.plan(CallConv::Cdecl, s.f64_, &[s.f64_, s.int]);
        let half = 1.25f64.to_bits();
        let (_, lua) = call_thunk(&mut m, &scale, &[], &[half as u32, (half >> 32) as u32, 6], 4, |a| Value::Num(a[0].num() * a[1].num()));
        assert_eq!(lua.pushed, [Value::Num(1.25), Value::Int(6)]);
        assert_eq!(m.cpu.x87_depth(), 1, "{target:?}: st0 holds the result");
        assert_eq!(m.cpu.x87_pop(), Ok(7.5));

        // struct s12 make12(int): through a hidden pointer on the stack on both flavours; i386
        // Linux callees pop it (`ret 4`), Win32 ones don't.
        let mut t = s.t;
        let s12 = t.new_record(abi_model::RecordKind::Struct, Some("s12"));
        let fields = (0..3).map(|i| abi_model::Field::named(&format!("f{i}"), s.int)).collect();
        t.define_record(s12, fields, abi_model::RecordAttrs::default()).unwrap();
        let make12 = plan_call(&t, &Signature::new(s12, vec![s.int.into()], false, CallConv::Cdecl), &[]).unwrap();
        let buffer = (STACK + 0x100) as u32;
        let (eax, _) = call_thunk(&mut m, &make12, &[], &[buffer, 20], 0, |a| Value::Int(a[0].int() + 1));
        assert_eq!(eax, buffer, "{target:?}: eax = the hidden pointer");
        let got: Vec<u32> = (0..3).map(|k| m.cpu.read_u32(u64::from(buffer) + 4 * k).unwrap()).collect();
        assert_eq!(got, [21, 22, 23]);
    }
}
