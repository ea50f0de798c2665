//! The stub and thunk checker must catch a wrong backend: each test wraps a real backend so
//! that it emits code for a subtly wrong program (one argument never loaded, one Lua value
//! never pushed, the wrong number of bytes popped, the return value never loaded) and
//! asserts the emulator run reports it, after checking the unwrapped backend passes. The
//! inline stubs (a Lua stack layout) get the same: the inline path must be the one numbers
//! take, and a wrong slot, a wrong layout's tags or a wrong pushed tag must be caught.

use abi_model::lua::helpers::Helper;
use abi_model::lua::steps::{CdataLayout, Program, Step};
use abi_model::lua::vm::LuaVm;
use abi_model::lua::{Backend, BackendError, Code, CodeEnv};
use abi_model::unwind::FrameOp;
use abi_model::{Arch, CallConv, CallPlan, Gpr, Target, ValueKind};
use emu_harness::catalogue::{catalogue, CatSignature, Catalogue};
use emu_harness::matrix::{backend_for, caller_entry_plan, load_image, plan_of, CaseValues};
use emu_harness::plan_runner::Mismatch;
use emu_harness::stub_runner::{self, check_stub, check_thunk, LuaStack};

/// A real backend whose programs are edited by `edit` before lowering.
struct Faulty {
    inner: Box<dyn Backend + Sync>,
    edit: fn(&mut Program),
}

impl Backend for Faulty {
    fn target(&self) -> Target {
        self.inner.target()
    }
    fn stub_code(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
        let mut p = program.clone();
        (self.edit)(&mut p);
        self.inner.stub_code(&p, base, env)
    }
    fn thunk_code(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
        let mut p = program.clone();
        (self.edit)(&mut p);
        self.inner.thunk_code(&p, base, env)
    }
}

/// Runs both directions of `s` through `backend`.
fn run(cat: &Catalogue, s: &CatSignature, backend: &dyn Backend) -> (Result<(), Mismatch>, Result<(), Mismatch>) {
    let (stub, thunk) = run_with(cat, s, backend, LuaStack::Helpers);
    (stub, thunk.expect("a thunk run"))
}

/// Runs the stub and (unless variadic) the thunk of `s` through `backend` with the Lua side
/// `lua`.
fn run_with(
    cat: &Catalogue,
    s: &CatSignature,
    backend: &dyn Backend,
    lua: LuaStack,
) -> (Result<(), Mismatch>, Option<Result<(), Mismatch>>) {
    let plan = plan_of(cat, s).expect("plan");
    let img = &cat.images[s.image];
    let mut loaded = load_image(cat.target, &img.stem, img.count).expect("fixture image loads");
    stub_runner::map_code_region(loaded.cpu.as_mut()).expect("code region");
    let values = CaseValues::of(s);
    let case = values.case(s, &plan);
    let stops = stub_runner::stub_stops();
    let stub = check_stub(loaded.cpu.as_mut(), backend, &case, loaded.callees[s.slot], loaded.rec, &stops, lua);
    let entry = caller_entry_plan(cat.target);
    let thunk = (!s.sig.variadic).then(|| {
        check_thunk(loaded.cpu.as_mut(), backend, &case, loaded.callers[s.slot], &entry, loaded.rec, &stops, lua)
    });
    (stub, thunk)
}

fn find(cat: &Catalogue, pred: impl Fn(&CatSignature, &CallPlan) -> bool) -> &CatSignature {
    cat.signatures
        .iter()
        .find(|s| !s.sig.variadic && plan_of(cat, s).is_ok_and(|p| pred(s, &p)))
        .expect("the catalogue has such a signature")
}

fn is_int(v: ValueKind) -> bool {
    matches!(v, ValueKind::Int { size: 4 | 8, .. })
}

/// Checks the real backend passes `s`, then that the faulty one fails in the given directions.
fn caught(
    target: Target,
    s: &CatSignature,
    cat: &Catalogue,
    edit: fn(&mut Program),
    stub_fails: bool,
    thunk_fails: bool,
) -> (Result<(), Mismatch>, Result<(), Mismatch>) {
    let real = backend_for(target);
    let (stub, thunk) = run(cat, s, real.as_ref());
    assert_eq!(stub, Ok(()), "{}", s.c_decl);
    assert_eq!(thunk, Ok(()), "{}", s.c_decl);
    let faulty = Faulty { inner: backend_for(target), edit };
    let (stub, thunk) = run(cat, s, &faulty);
    assert_eq!(stub.is_err(), stub_fails, "stub of {}: {stub:?}", s.c_decl);
    assert_eq!(thunk.is_err(), thunk_fails, "thunk of {}: {thunk:?}", s.c_decl);
    (stub, thunk)
}

#[test]
fn a_stub_that_never_loads_an_argument_register_is_caught() {
    for target in [Target::X64_SYSV, Target::X64_WIN] {
        let cat = catalogue(target);
        let s = find(&cat, |_, p| p.args.len() >= 2 && p.args.iter().all(|a| is_int(a.value)));
        let (stub, _) = caught(
            target,
            s,
            &cat,
            |p| {
                if let Some(i) = p.steps.iter().rposition(|st| matches!(st, Step::LoadArg { .. })) {
                    p.steps.remove(i);
                }
            },
            true,
            false,
        );
        let stub = stub.unwrap_err();
        assert!(stub.what.starts_with("arg "), "{target}: {stub}");
    }
}

#[test]
fn a_thunk_that_pushes_one_value_too_few_is_caught() {
    let cat = catalogue(Target::X86_LINUX);
    let s = find(&cat, |_, p| p.args.len() >= 2 && p.args.iter().all(|a| is_int(a.value)));
    let (_, thunk) = caught(
        Target::X86_LINUX,
        s,
        &cat,
        |p| {
            if let Some(i) = p.steps.iter().rposition(|st| {
                matches!(
                    st,
                    Step::CallHelper {
                        helper: Helper::PushI32 | Helper::PushU32 | Helper::PushI64 | Helper::PushU64,
                        ..
                    }
                )
            }) {
                p.steps.remove(i);
            }
        },
        true,
        true,
    );
    assert!(thunk.unwrap_err().what.contains("pushed"));
}

#[test]
fn a_stdcall_thunk_that_pops_the_wrong_bytes_is_caught() {
    let cat = catalogue(Target::X86_WIN);
    let s = find(&cat, |s, p| s.sig.conv == CallConv::Stdcall && p.callee_pops >= 8);
    let (_, thunk) = caught(
        Target::X86_WIN,
        s,
        &cat,
        |p| {
            for st in &mut p.steps {
                if let Step::ReturnToC { pops, .. } = st {
                    *pops -= 4;
                }
            }
        },
        false,
        true,
    );
    // The compiled caller restores its frame from the wrong place: it either returns with
    // the wrong stack pointer or runs off into unmapped memory.
    let thunk = thunk.unwrap_err();
    assert!(thunk.what.contains("stack pointer") || thunk.what.contains("execution"), "{thunk}");
}

#[test]
fn a_thunk_that_never_loads_its_return_value_is_caught() {
    let cat = catalogue(Target::X64_SYSV);
    let s = find(&cat, |_, p| p.ret.value == ValueKind::F64);
    let (_, thunk) =
        caught(Target::X64_SYSV, s, &cat, |p| p.steps.retain(|st| !matches!(st, Step::LoadReturn { .. })), false, true);
    assert!(thunk.unwrap_err().what.contains("return value"));
}

/// Makes every saved or loaded return value of a program 8 bytes wide.
fn returns_as_8_bytes(p: &mut Program) {
    for st in &mut p.steps {
        if let Step::SaveReturn { ret, .. } | Step::LoadReturn { ret, .. } = st {
            ret.value = ValueKind::Int { size: 8, signed: true };
        }
    }
}

#[test]
fn a_win64_int128_result_moved_as_8_bytes_of_xmm0_is_caught() {
    // mingw returns `__int128` whole in xmm0: a stub that stores, or a thunk that loads, only
    // its low 8 bytes must fail in both directions.
    let cat = catalogue(Target::X64_WIN);
    let s = find(&cat, |_, p| p.ret.value == ValueKind::Int { size: 16, signed: true });
    let (stub, thunk) = caught(Target::X64_WIN, s, &cat, returns_as_8_bytes, true, true);
    assert!(stub.is_err() && thunk.is_err());
}

#[test]
fn a_wide_bool_result_moved_with_too_few_bytes_is_caught() {
    // An 8-byte bool on i386 comes back in edx:eax, as a 64-bit integer: moving 4 bytes is
    // caught both ways (the other half is left junk by the harness).
    let cat = catalogue(Target::X86_LINUX);
    let s = find(&cat, |_, p| p.ret.value == ValueKind::TypedInt { size: 8 });
    let (stub, thunk) = caught(
        Target::X86_LINUX,
        s,
        &cat,
        |p| {
            for st in &mut p.steps {
                if let Step::SaveReturn { ret, .. } | Step::LoadReturn { ret, .. } = st {
                    ret.value = ValueKind::TypedInt { size: 4 };
                }
            }
        },
        true,
        true,
    );
    assert!(stub.is_err() && thunk.is_err());
}

// ---- inline stubs (a Lua stack layout) ----------------------------------------------------

const NUMBERS_54: LuaStack = LuaStack::Memory { vm: LuaVm::LUA54, inline_values: true };
const OTHERS_54: LuaStack = LuaStack::Memory { vm: LuaVm::LUA54, inline_values: false };

/// The inline stub of `s` on x64-sysv with its program edited by `edit`.
fn inline_run(cat: &Catalogue, s: &CatSignature, edit: fn(&mut Program), lua: LuaStack) -> Result<(), Mismatch> {
    inline_run_on(Target::X64_SYSV, cat, s, edit, lua)
}

/// The inline stub of `s` on `target` with its program edited by `edit`.
fn inline_run_on(
    target: Target,
    cat: &Catalogue,
    s: &CatSignature,
    edit: fn(&mut Program),
    lua: LuaStack,
) -> Result<(), Mismatch> {
    inline_runs_on(target, cat, s, edit, lua).0
}

/// The stub and (unless variadic) the thunk of `s` on `target` with the Lua side `lua`,
/// their programs edited by `edit`.
fn inline_runs_on(
    target: Target,
    cat: &Catalogue,
    s: &CatSignature,
    edit: fn(&mut Program),
    lua: LuaStack,
) -> (Result<(), Mismatch>, Option<Result<(), Mismatch>>) {
    run_with(cat, s, &Faulty { inner: backend_for(target), edit }, lua)
}

fn two_distinct_ints(cat: &Catalogue) -> &CatSignature {
    find(cat, |s, p| {
        let v = CaseValues::of(s);
        let c = v.case(s, p);
        p.args.len() == 2
            && p.args.iter().all(|a| a.value == ValueKind::Int { size: 4, signed: true })
            && c.args[0] != c.args[1]
    })
}

/// Makes every inline conversion's helper path read the next Lua argument instead.
fn break_slow_paths(p: &mut Program) {
    for st in &mut p.steps {
        if let Step::ToCInline { slow, .. } = st {
            if let Step::CallHelper { args, .. } = slow.as_mut() {
                if let Some(abi_model::lua::steps::Operand::Imm(i)) = args.get_mut(1) {
                    *i = if *i == 1 { 2 } else { 1 };
                }
            }
        }
    }
}

/// Makes every inline conversion read the other of two Lua arguments.
fn read_each_others_slots(p: &mut Program) {
    for st in &mut p.steps {
        if let Step::ToCInline { lua_index, .. } = st {
            *lua_index = 3 - *lua_index;
        }
    }
}

/// Replaces the inline errno restore with its `ErrnoLocation` call alone: errno is never set.
fn never_restore_errno(p: &mut Program) {
    for st in &mut p.steps {
        if let Step::ErrnoRestoreInline { errno_at, .. } = *st {
            *st = Step::CallHelper {
                helper: Helper::ErrnoLocation,
                args: abi_model::operands![],
                ret_to: Some(errno_at),
            };
        }
    }
}

/// Drops the step after the call that saves errno and raises a pending callback error.
fn never_raise_a_pending_error(p: &mut Program) {
    p.steps.retain(|st| !matches!(st, Step::AfterCallInline { .. }));
}

/// Reads a record cdata's bytes from the wrong offset in its block.
fn cdata_bytes_from_the_wrong_offset(p: &mut Program) {
    for st in &mut p.steps {
        if let Step::RecordInline { cdata: CdataLayout::Header(h), .. } = st {
            h.bytes_at += 8;
        }
    }
}

/// Looks for a bare record's metatable address in the wrong word of its ctype.
fn bare_metatable_from_the_wrong_word(p: &mut Program) {
    for st in &mut p.steps {
        if let Step::RecordInline { cdata: CdataLayout::Bare { desc_metatable_at }, .. } = st {
            *desc_metatable_at -= 8;
        }
    }
}

/// Makes every `ToRecord` call of a record argument read the other of two arguments.
fn swap_record_helpers(p: &mut Program) {
    for st in &mut p.steps {
        if let Step::RecordInline { slow, .. } = st {
            if let Step::CallHelper { args, .. } = slow.as_mut() {
                if let Some(abi_model::lua::steps::Operand::Imm(i)) = args.get_mut(1) {
                    *i = 3 - *i;
                }
            }
        }
    }
}

/// Drops the pop of a thunk's result.
fn never_pop_the_result(p: &mut Program) {
    p.steps.retain(|st| !matches!(st, Step::PopInline { .. }));
}

/// Pushes floats with a tag the Lua stack does not know.
fn unknown_float_tag(p: &mut Program) {
    p.vm = p.vm.map(|vm| LuaVm { float_tag: 0x23, ..vm });
}

#[test]
fn numbers_take_the_inline_path_and_other_values_the_helper_path() {
    let cat = catalogue(Target::X64_SYSV);
    let s = two_distinct_ints(&cat);
    assert_eq!(inline_run(&cat, s, |_| {}, NUMBERS_54), Ok(()), "{}", s.c_decl);
    assert_eq!(inline_run(&cat, s, |_| {}, OTHERS_54), Ok(()), "{}", s.c_decl);
    // With the helper path broken, numbers still pass (they never reach it) ...
    assert_eq!(inline_run(&cat, s, break_slow_paths, NUMBERS_54), Ok(()), "{}", s.c_decl);
    // ... and other values fail (they always do).
    let e = inline_run(&cat, s, break_slow_paths, OTHERS_54).unwrap_err();
    assert!(e.what.starts_with("arg "), "{e}");
}

#[test]
fn an_inline_conversion_reading_the_wrong_slot_is_caught() {
    let cat = catalogue(Target::X64_SYSV);
    let s = two_distinct_ints(&cat);
    let e = inline_run(&cat, s, read_each_others_slots, NUMBERS_54).unwrap_err();
    assert!(e.what.starts_with("arg "), "{e}");
}

#[test]
fn a_stub_built_for_lua_53_tags_on_a_lua_54_stack_is_caught() {
    // 5.3's integer tag is 5.4's float tag: a double would be read as an integer's bits.
    let cat = catalogue(Target::X64_SYSV);
    let s = find(&cat, |_, p| p.args.len() == 1 && p.args[0].value == ValueKind::F64);
    let e = inline_run(&cat, s, |p| p.vm = Some(LuaVm::LUA53), NUMBERS_54).unwrap_err();
    assert!(e.what.starts_with("arg 0"), "{e}");
}

#[test]
fn a_number_pushed_with_the_wrong_tag_is_caught() {
    let cat = catalogue(Target::X64_SYSV);
    let s = find(&cat, |_, p| p.ret.value == ValueKind::F64);
    let e = inline_run(&cat, s, unknown_float_tag, OTHERS_54).unwrap_err();
    assert!(e.what.contains("tag of the value pushed inline"), "{e}");
}

#[test]
fn an_inline_stub_that_never_restores_errno_or_never_raises_a_pending_error_is_caught() {
    let cat = catalogue(Target::X64_SYSV);
    let s = two_distinct_ints(&cat);
    // errno restored but never read back after the call: the pending callback error is lost.
    let e = inline_run(&cat, s, never_raise_a_pending_error, OTHERS_54).unwrap_err();
    assert!(e.what.contains("luaffi_after_call"), "{e}");
    // errno never restored: the C function would see whatever the thread's errno held.
    let e = inline_run(&cat, s, never_restore_errno, NUMBERS_54).unwrap_err();
    assert!(e.what.contains("errno during the call"), "{e}");
    // The calling thread left as L after the call instead of put back.
    let e = inline_run(
        &cat,
        s,
        |p| {
            for st in &mut p.steps {
                if let Step::AfterCallInline { errno_at, prev_l_at, .. } = st {
                    *prev_l_at = *errno_at;
                }
            }
        },
        NUMBERS_54,
    )
    .unwrap_err();
    assert!(e.what.contains("the calling thread after the call"), "{e}");
    // Through the helpers: AfterCall handed L instead of the thread ErrnoRestore replaced.
    let e = inline_run(
        &cat,
        s,
        |p| {
            for st in &mut p.steps {
                if let Step::CallHelper { helper: Helper::AfterCall, args, .. } = st {
                    args[2] = abi_model::lua::steps::Operand::L;
                }
            }
        },
        LuaStack::Helpers,
    )
    .unwrap_err();
    assert!(e.what.contains("the calling thread passed back"), "{e}");
}

#[test]
fn a_string_argument_read_at_the_wrong_offset_is_caught() {
    use abi_model::lua::vm::{LuaStrings, StrBytes};
    let cat = catalogue(Target::X64_SYSV);
    let s = find(&cat, |s, p| {
        let v = CaseValues::of(s);
        p.args.len() == 1 && p.args[0].value == ValueKind::Pointer && v.case(s, p).args[0].iter().any(|b| *b != 0)
    });
    assert_eq!(inline_run(&cat, s, |_| {}, NUMBERS_54), Ok(()), "{}", s.c_decl);
    let e = inline_run(
        &cat,
        s,
        |p| {
            p.vm = p.vm.map(|vm| LuaVm { strings: LuaStrings { short_bytes: StrBytes::At(16), ..vm.strings }, ..vm });
        },
        NUMBERS_54,
    )
    .unwrap_err();
    assert!(e.what.starts_with("arg 0"), "{e}");
}

#[test]
fn record_cdata_take_the_inline_copy_and_a_wrong_header_offset_is_caught() {
    let cat = catalogue(Target::X64_SYSV);
    let s = find(&cat, |_, p| {
        p.args.len() == 2 && p.args.iter().all(|a| matches!(a.value, ValueKind::Record { size: 8..=32, .. }))
    });
    // With every ToRecord call reading the other argument, cdata still arrive right: they
    // never reach the helper.
    assert_eq!(inline_run(&cat, s, swap_record_helpers, NUMBERS_54), Ok(()), "{}", s.c_decl);
    // Other values reach it, and the swap is caught (a wrong value or a wrong-sized ctype).
    assert!(inline_run(&cat, s, swap_record_helpers, OTHERS_54).is_err(), "the helper path is the broken one");
    // The bytes read from the wrong offset in the block.
    let e = inline_run(&cat, s, cdata_bytes_from_the_wrong_offset, NUMBERS_54).unwrap_err();
    assert!(e.what.starts_with("arg ") || e.what.contains("execution"), "{e}");
}

#[test]
fn bare_record_cdata_take_the_inline_copy_and_a_wrong_metatable_word_is_caught() {
    // Lua 5.1's layout: lua-adapter's values are bare there, told by their metatable.
    const NUMBERS_51: LuaStack = LuaStack::Memory { vm: LuaVm::LUA51, inline_values: true };
    let cat = catalogue(Target::X64_SYSV);
    let s = find(&cat, |_, p| {
        p.args.len() == 2 && p.args.iter().all(|a| matches!(a.value, ValueKind::Record { size: 8..=32, .. }))
    });
    assert_eq!(inline_run(&cat, s, swap_record_helpers, NUMBERS_51), Ok(()), "{}", s.c_decl);
    // A stub comparing the metatable with the wrong word of the ctype takes the helper, which
    // the swap breaks.
    fn wrong_word_and_swap(p: &mut Program) {
        bare_metatable_from_the_wrong_word(p);
        swap_record_helpers(p);
    }
    assert!(inline_run(&cat, s, wrong_word_and_swap, NUMBERS_51).is_err(), "the wrong word is caught");
}

/// The thunk of `s` on x64-sysv over a Lua 5.4 stack, its program edited by `edit`.
fn inline_thunk_run(
    cat: &Catalogue,
    s: &CatSignature,
    edit: fn(&mut Program),
    inline_values: bool,
) -> Result<(), Mismatch> {
    let lua = LuaStack::Memory { vm: LuaVm::LUA54, inline_values };
    inline_runs_on(Target::X64_SYSV, cat, s, edit, lua).1.expect("not variadic")
}

#[test]
fn an_inline_thunk_reading_the_wrong_result_slot_or_pushing_a_wrong_tag_is_caught() {
    let cat = catalogue(Target::X64_SYSV);
    let s = find(&cat, |s, p| {
        let v = CaseValues::of(s);
        let c = v.case(s, p);
        p.args.len() == 2
            && p.ret.value == (ValueKind::Int { size: 4, signed: true })
            && is_int(p.args[0].value)
            && c.args[0] != c.args[1]
    });
    assert_eq!(inline_thunk_run(&cat, s, |_| {}, true), Ok(()), "{}", s.c_decl);
    assert_eq!(inline_thunk_run(&cat, s, |_| {}, false), Ok(()), "{}", s.c_decl);
    // The result read one slot too low (the function's slot is below it: not a number).
    let e = inline_thunk_run(
        &cat,
        s,
        |p| {
            for st in &mut p.steps {
                if let Step::ToCInline { lua_index, .. } = st {
                    *lua_index = -2;
                }
            }
        },
        true,
    );
    assert!(e.is_err(), "{e:?}");
    // Arguments pushed with a tag the stack does not know.
    let e = inline_thunk_run(&cat, s, |p| p.vm = p.vm.map(|vm| LuaVm { int_tag: Some(0x23), ..vm }), true).unwrap_err();
    assert!(e.what.contains("tag of the value pushed inline"), "{e}");
}

#[test]
fn an_inline_thunk_that_leaves_its_result_or_a_stub_that_pushes_twice_is_caught() {
    let cat = catalogue(Target::X64_SYSV);
    let s = find(&cat, |_, p| {
        p.args.len() == 2
            && p.ret.value == (ValueKind::Int { size: 4, signed: true })
            && p.args.iter().all(|a| is_int(a.value))
    });
    // The result never popped: the Lua stack is one slot higher after the callback.
    let e = inline_thunk_run(&cat, s, never_pop_the_result, true).unwrap_err();
    assert!(e.what.contains("L->top after the callback"), "{e}");
    // The result pushed twice.
    let e = inline_run(
        &cat,
        s,
        |p| {
            if let Some(i) = p.steps.iter().position(|st| matches!(st, Step::PushInline { .. })) {
                let again = p.steps[i].clone();
                p.steps.insert(i, again);
            }
        },
        NUMBERS_54,
    )
    .unwrap_err();
    assert!(e.what.contains("values the stub pushed"), "{e}");
}

/// An x64-sysv signature of `n` arguments returning a 4- or 8-byte integer (what the mock
/// state does depends on the count only).
fn ints_to_int(cat: &Catalogue, n: usize) -> &CatSignature {
    find(cat, |_, p| p.args.len() == n && is_int(p.ret.value))
}

/// The inline thunk of an `n`-argument signature over a Lua 5.4 stack passes, and fails once
/// `edit`ed: the mismatch.
fn thunk_caught(cat: &Catalogue, n: usize, inline_values: bool, edit: fn(&mut Program)) -> Mismatch {
    let s = ints_to_int(cat, n);
    assert_eq!(inline_thunk_run(cat, s, |_| {}, inline_values), Ok(()), "{}", s.c_decl);
    inline_thunk_run(cat, s, edit, inline_values).unwrap_err()
}

/// The entry asks one stack slot less than the callback needs.
fn room_one_slot_short(p: &mut Program) {
    for st in &mut p.steps {
        if let Step::CallbackEnterInline { room, .. } = st {
            *room -= 1;
        }
    }
}

const HELPER_CALLS: &str = "helper calls of the thunk's entry, Lua call and result check";

#[test]
fn an_inline_thunk_entry_that_asks_too_little_room_or_pushes_the_wrong_function_is_caught() {
    let cat = catalogue(Target::X64_SYSV);
    // Four arguments: the mock's ci->top is one slot short of the room (the entry's helper
    // must run); five: stack_last exactly the room above top (not more: the helper must run).
    for n in [4, 5] {
        let e = thunk_caught(&cat, n, false, room_one_slot_short);
        assert!(e.what.contains(HELPER_CALLS), "{e}");
    }
    // The function's value read from the wrong place in the record.
    let e = thunk_caught(&cat, 5, true, |p| {
        for st in &mut p.steps {
            if let Step::CallbackEnterInline { func, .. } = st {
                func.value_at += 8;
            }
        }
    });
    assert!(e.what.contains("the function slot at the callback's call"), "{e}");
}

#[test]
fn an_inline_thunk_that_skips_the_result_check_or_ignores_a_pending_error_is_caught() {
    let cat = catalogue(Target::X64_SYSV);
    // Two arguments, other values: the result is not a number, so the check must run.
    let e = thunk_caught(&cat, 2, false, |p| {
        for st in &mut p.steps {
            if let Step::CallbackCallInline { result, .. } = st {
                *result = ValueKind::Void;
            }
        }
    });
    assert!(e.what.contains(HELPER_CALLS), "{e}");
    // Two arguments, inline values: lua_pcallk asked for two results, and the result check
    // handed a status lua_pcallk did not return.
    let e = thunk_caught(&cat, 2, true, |p| {
        for st in &mut p.steps {
            if let Step::CallbackCallInline { l, nargs, .. } = st {
                use abi_model::lua::steps::Operand::Imm;
                *st = Step::CallHelper {
                    helper: Helper::CallbackPcall,
                    args: abi_model::operands![*l, Imm(*nargs as i32), Imm(2), Imm(0), Imm(0), Imm(0)],
                    ret_to: None,
                };
            }
        }
    });
    assert!(e.what.contains("nresults, errfunc, ctx, k passed to lua_pcallk"), "{e}");
    let e = thunk_caught(&cat, 2, true, |p| {
        use abi_model::lua::steps::Operand::{CallbackData, Imm};
        // (The stub of the run has no Lua call to edit.)
        let Some(i) = p.steps.iter().position(|st| matches!(st, Step::CallbackCallInline { .. })) else { return };
        let Step::CallbackCallInline { l, nargs, .. } = p.steps[i] else { unreachable!() };
        p.steps[i] = Step::CallHelper {
            helper: Helper::CallbackPcall,
            args: abi_model::operands![l, Imm(nargs as i32), Imm(1), Imm(0), Imm(0), Imm(0)],
            ret_to: None,
        };
        p.steps.insert(
            i + 1,
            Step::CallHelper {
                helper: Helper::CallbackResult,
                args: abi_model::operands![l, Imm(2), CallbackData],
                ret_to: None,
            },
        );
    });
    assert!(e.what.contains("luaffi_callback_result's status"), "{e}");
    // Three: an error is pending, so the Lua function must not run (luaffi_callback_call).
    let e = thunk_caught(&cat, 3, false, |p| {
        for st in &mut p.steps {
            if let Step::CallbackCallInline { l, nargs, .. } = st {
                use abi_model::lua::steps::Operand::Imm;
                *st = Step::CallHelper {
                    helper: Helper::CallbackPcall,
                    args: abi_model::operands![*l, Imm(*nargs as i32), Imm(1), Imm(0), Imm(0), Imm(0)],
                    ret_to: None,
                };
            }
        }
    });
    assert!(e.what.contains(HELPER_CALLS), "{e}");
}

// ---- the inline steps of x64-win -----------------------------------------------------------

/// Lua 5.1: arguments found through `L->base`, numbers without integers.
const NUMBERS_51: LuaStack = LuaStack::Memory { vm: LuaVm::LUA51, inline_values: true };

#[test]
fn x64_win_inline_stubs_take_both_paths_and_a_wrong_slot_count_or_errno_is_caught() {
    let win = Target::X64_WIN;
    let cat = catalogue(win);
    let s = two_distinct_ints(&cat);
    for lua in [NUMBERS_54, OTHERS_54, NUMBERS_51] {
        assert_eq!(inline_run_on(win, &cat, s, |_| {}, lua), Ok(()), "{}: {lua:?}", s.c_decl);
    }
    // Numbers never reach the helpers, other values always do.
    assert_eq!(inline_run_on(win, &cat, s, break_slow_paths, NUMBERS_54), Ok(()), "{}", s.c_decl);
    let e = inline_run_on(win, &cat, s, break_slow_paths, OTHERS_54).unwrap_err();
    assert!(e.what.starts_with("arg "), "{e}");
    // The arguments read from each other's slots.
    for lua in [NUMBERS_54, NUMBERS_51] {
        let e = inline_run_on(win, &cat, s, read_each_others_slots, lua).unwrap_err();
        assert!(e.what.starts_with("arg "), "{lua:?}: {e}");
    }
    // A count check expecting one argument more: the failure path runs, and hands
    // luaffi_argcount_error the count it found on the stack (2).
    let e = inline_run_on(
        win,
        &cat,
        s,
        |p| {
            for st in &mut p.steps {
                if let Step::CheckArgCountInline { expected } = st {
                    *expected += 1;
                }
            }
        },
        NUMBERS_54,
    )
    .unwrap_err();
    assert!(e.actual.contains("expected 3, got 2"), "{e}");
    // errno never restored before the call.
    let e = inline_run_on(win, &cat, s, never_restore_errno, NUMBERS_54).unwrap_err();
    assert!(e.what.contains("errno during the call"), "{e}");
    // A pending callback error never raised after the call.
    let e = inline_run_on(win, &cat, s, never_raise_a_pending_error, OTHERS_54).unwrap_err();
    assert!(e.what.contains("luaffi_after_call"), "{e}");
}

#[test]
fn x64_win_inline_results_records_and_thunks_with_a_fault_are_caught() {
    let win = Target::X64_WIN;
    let cat = catalogue(win);
    // A double pushed with a tag the stack does not know.
    let s = find(&cat, |_, p| p.ret.value == ValueKind::F64);
    let e = inline_run_on(win, &cat, s, unknown_float_tag, OTHERS_54).unwrap_err();
    assert!(e.what.contains("tag of the value pushed inline"), "{e}");
    // A record cdata's bytes read from the wrong offset in its block.
    let s = find(&cat, |_, p| {
        p.args.len() == 2 && p.args.iter().all(|a| matches!(a.value, ValueKind::Record { size: 8..=32, .. }))
    });
    assert_eq!(inline_run_on(win, &cat, s, |_| {}, NUMBERS_54), Ok(()), "{}", s.c_decl);
    let e = inline_run_on(win, &cat, s, cdata_bytes_from_the_wrong_offset, NUMBERS_54).unwrap_err();
    assert!(e.what.starts_with("arg ") || e.what.contains("execution"), "{e}");
    // A thunk whose result is never popped, or whose entry asks one slot too few (four
    // arguments: the mock's ci->top is one slot short of the room, so the helper must run).
    let thunk = |n: usize, inline_values: bool, edit: fn(&mut Program)| {
        let s = find(&cat, |_, p| p.args.len() == n && is_int(p.ret.value));
        let lua = LuaStack::Memory { vm: LuaVm::LUA54, inline_values };
        assert_eq!(inline_runs_on(win, &cat, s, |_| {}, lua).1, Some(Ok(())), "{}", s.c_decl);
        inline_runs_on(win, &cat, s, edit, lua).1.expect("not variadic").unwrap_err()
    };
    let e = thunk(2, true, never_pop_the_result);
    assert!(e.what.contains("L->top after the callback"), "{e}");
    let e = thunk(4, false, room_one_slot_short);
    assert!(e.what.contains(HELPER_CALLS), "{e}");
}

// ---- inline stubs and thunks on x86-32 (i386 Linux and Win32 layouts) ---------------------

/// Each x86-32 target's catalogue with its layouts of Lua 5.1 (numbers are floats) and 5.4.
fn x86_layouts() -> Vec<(Catalogue, [LuaVm; 2])> {
    vec![
        (catalogue(Target::X86_LINUX), [LuaVm::LUA51_I386, LuaVm::LUA54_I386]),
        (catalogue(Target::X86_WIN), [LuaVm::LUA51_WIN32, LuaVm::LUA54_WIN32]),
    ]
}

#[test]
fn x86_numbers_take_the_inline_path_and_other_values_the_helper_path() {
    for (cat, vms) in x86_layouts() {
        let s = two_distinct_ints(&cat);
        for vm in vms {
            let (numbers, others) =
                (LuaStack::Memory { vm, inline_values: true }, LuaStack::Memory { vm, inline_values: false });
            let ok = |edit, lua| inline_runs_on(cat.target, &cat, s, edit, lua);
            assert_eq!(ok(|_| {}, numbers), (Ok(()), Some(Ok(()))), "{} {}", vm.name, s.c_decl);
            assert_eq!(ok(|_| {}, others), (Ok(()), Some(Ok(()))), "{} {}", vm.name, s.c_decl);
            // The helper path broken: numbers never reach it, other values always do.
            assert_eq!(ok(break_slow_paths, numbers).0, Ok(()), "{} {}", vm.name, s.c_decl);
            let e = ok(break_slow_paths, others).0.unwrap_err();
            assert!(e.what.starts_with("arg "), "{}: {e}", vm.name);
        }
    }
}

#[test]
fn an_x86_stub_reading_the_wrong_slot_or_the_other_flavours_slots_is_caught() {
    for (cat, [vm51, vm54]) in x86_layouts() {
        let s = two_distinct_ints(&cat);
        let numbers = LuaStack::Memory { vm: vm54, inline_values: true };
        let swapped = |p: &mut Program| {
            for st in &mut p.steps {
                if let Step::ToCInline { lua_index, .. } = st {
                    *lua_index = 3 - *lua_index;
                }
            }
        };
        let e = inline_runs_on(cat.target, &cat, s, swapped, numbers).0.unwrap_err();
        assert!(e.what.starts_with("arg "), "{}: {e}", vm54.name);
        // Slots of 16 bytes on a 12-byte i386 stack, or of 12 on a 16-byte Win32 one.
        let other_slots = |p: &mut Program| p.vm = p.vm.map(|vm| LuaVm { slot: 28 - vm.slot, ..vm });
        for vm in [vm51, vm54] {
            let e = inline_runs_on(cat.target, &cat, s, other_slots, LuaStack::Memory { vm, inline_values: true })
                .0
                .unwrap_err();
            assert!(e.what.contains("arg ") || e.what.contains("argument count"), "{}: {e}", vm.name);
        }
    }
}

#[test]
fn an_x86_thunk_asking_too_little_room_or_reading_the_wrong_result_slot_is_caught() {
    for (cat, [_, vm54]) in x86_layouts() {
        let s = ints_to_int(&cat, 4);
        let run = |edit, inline_values| {
            inline_runs_on(cat.target, &cat, s, edit, LuaStack::Memory { vm: vm54, inline_values })
                .1
                .expect("not variadic")
        };
        assert_eq!(run(|_| {}, false), Ok(()), "{}", s.c_decl);
        assert_eq!(run(|_| {}, true), Ok(()), "{}", s.c_decl);
        // Four arguments, other values: ci->top is one slot short of the room.
        let e = run(room_one_slot_short, false).unwrap_err();
        assert!(e.what.contains(HELPER_CALLS), "{e}");
        let e = run(
            |p| {
                for st in &mut p.steps {
                    if let Step::ToCInline { lua_index, .. } = st {
                        *lua_index = -2;
                    }
                }
            },
            true,
        );
        assert!(e.is_err(), "{e:?}");
    }
}

/// A real backend whose stubs and thunks start with `prefix`: the real code follows,
/// assembled for the address right after it.
struct Prefixed {
    inner: Box<dyn Backend + Sync>,
    prefix: &'static [u8],
}

impl Prefixed {
    /// The prefix, then the code `build` assembles right after it; its prologue ops move up
    /// by the prefix's length.
    fn wrap(&self, base: u64, build: impl FnOnce(u64) -> Result<Code, BackendError>) -> Result<Code, BackendError> {
        let shift = self.prefix.len() as u32;
        let inner = build(base + u64::from(shift))?;
        let mut bytes = self.prefix.to_vec();
        bytes.extend(inner.bytes);
        let mut unwind = inner.unwind;
        unwind.ops.iter_mut().for_each(|op| op.end += shift);
        Ok(Code { bytes, unwind })
    }
}

impl Backend for Prefixed {
    fn target(&self) -> Target {
        self.inner.target()
    }
    fn stub_code(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
        self.wrap(base, |at| self.inner.stub_code(program, at, env))
    }
    fn thunk_code(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
        self.wrap(base, |at| self.inner.thunk_code(program, at, env))
    }
}

#[test]
fn a_clobbered_callee_saved_register_of_the_model_is_caught() {
    // Each target's callee-saved set comes from the model: rsi on Win64 (scratch on SysV),
    // r12 on SysV, and on Win64 xmm6 (Microsoft x64: xmm6-xmm15 are nonvolatile).
    const XOR_ESI: &[u8] = &[0x31, 0xF6]; // xor esi, esi
    const XOR_R12D: &[u8] = &[0x45, 0x31, 0xE4]; // xor r12d, r12d
    const XORPS_XMM6: &[u8] = &[0x0F, 0x57, 0xF6]; // xorps xmm6, xmm6
    for (target, prefix, reg) in [
        (Target::X64_WIN, XOR_ESI, "rsi"),
        (Target::X64_SYSV, XOR_R12D, "r12"),
        (Target::X64_WIN, XORPS_XMM6, "xmm6"),
        (Target::X86_LINUX, XOR_ESI, "esi"),
    ] {
        let cat = catalogue(target);
        let s = find(&cat, |_, p| p.args.len() >= 2 && p.args.iter().all(|a| is_int(a.value)));
        let (stub, thunk) = run(&cat, s, backend_for(target).as_ref());
        assert_eq!((&stub, &thunk), (&Ok(()), &Ok(())), "{target}: {}", s.c_decl);
        let (stub, thunk) = run(&cat, s, &Prefixed { inner: backend_for(target), prefix });
        for (what, got) in [("stub", stub), ("thunk", thunk)] {
            let err = got.expect_err(&format!("{target} {what} clobbering {reg}"));
            assert!(err.what.contains(reg), "{target} {what}: {err}");
        }
    }
    // The same rsi is scratch on SysV: a stub (whose one argument is in rdi) may clobber it.
    let cat = catalogue(Target::X64_SYSV);
    let s = find(&cat, |_, p| p.args.len() >= 2 && p.args.iter().all(|a| is_int(a.value)));
    let (stub, _) = run(&cat, s, &Prefixed { inner: backend_for(Target::X64_SYSV), prefix: XOR_ESI });
    assert_eq!(stub, Ok(()));
}

/// The catalogue's signatures that pass, return or take a callback of an over-aligned record
/// (`spec.over_aligned`).
fn over_aligned_signatures(cat: &Catalogue) -> Vec<&CatSignature> {
    // The catalogue's own spec: the x86-64 ones append vector signatures to the shared one.
    let spec = cat.spec;
    let uses = |d: &emu_harness::catalogue::spec::SigDecl| {
        spec.over_aligned.iter().any(|&n| {
            let r = emu_harness::catalogue::spec::Ty::Record(n);
            d.params.contains(&r) || d.varargs.contains(&r) || d.ret.as_ref() == Some(&r)
        })
    };
    cat.signatures.iter().filter(|s| uses(&spec.signatures[s.index])).collect()
}

#[test]
fn over_aligned_records_reach_the_target_with_the_stack_its_plan_asks() {
    let mut failures = Vec::new();
    let mut beyond_16 = Vec::new();
    for target in Target::ALL {
        let cat = catalogue(target);
        let sigs = over_aligned_signatures(&cat);
        assert!(sigs.len() >= 49, "{target}: {} over-aligned signatures", sigs.len());
        let backend = backend_for(target);
        for s in sigs {
            let plan = plan_of(&cat, s).expect("plan");
            if plan.stack_align > target.stack_align() {
                beyond_16.push((target, plan.stack_align));
            }
            let (stub, thunk) = run_with(&cat, s, backend.as_ref(), LuaStack::Helpers);
            for (dir, r) in [("stub", Some(stub)), ("thunk", thunk)] {
                if let Some(Err(m)) = r {
                    failures.push(format!("{target} {dir} {}: {m}", s.c_decl));
                }
            }
        }
    }
    // SysV passes them on the stack at their own alignment: calls that need 32 and 64.
    for align in [32, 64] {
        assert!(beyond_16.contains(&(Target::X64_SYSV, align)), "no x64-sysv plan aligned to {align}");
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn a_stub_that_ignores_its_programs_stack_alignment_is_caught() {
    let cat = catalogue(Target::X64_SYSV);
    for align in [32, 64] {
        let s = over_aligned_signatures(&cat)
            .into_iter()
            .find(|s| !s.sig.variadic && plan_of(&cat, s).is_ok_and(|p| p.stack_align == align))
            .expect("an over-aligned SysV signature");
        let (stub, _) = caught(Target::X64_SYSV, s, &cat, |p| p.out_align = 0, true, false);
        let stub = stub.unwrap_err();
        assert!(stub.what.contains("stack alignment at the call of the target"), "{stub}");
        assert_eq!(stub.expected, format!("{align} bytes"), "{stub}");
    }
    // Win64 realigns for a by-reference copy of an over-aligned record: a stub that ignores
    // it passes a misaligned copy on some entry sp.
    let cat = catalogue(Target::X64_WIN);
    for align in [32, 64] {
        let s = find(&cat, |_, p| p.frame_align() == align && p.stack_align == 16);
        let (stub, _) = caught(Target::X64_WIN, s, &cat, |p| p.out_align = 0, true, false);
        let stub = stub.unwrap_err();
        assert!(stub.what.contains("alignment of a by-reference argument's copy"), "{stub}");
        assert_eq!(stub.expected, format!("{align} bytes"), "{stub}");
    }
    // The x86 backends never realign (their plans never ask): asked to, they refuse.
    for target in [Target::X86_LINUX, Target::X86_WIN] {
        let cat = catalogue(target);
        let s = find(&cat, |_, p| !p.args.is_empty());
        let (stub, _) = caught(target, s, &cat, |p| p.out_align = 64, true, false);
        let stub = stub.unwrap_err();
        assert!(stub.actual.contains("a call needing a 64-byte aligned stack"), "{target}: {stub}");
    }
}

/// A real backend whose frame descriptions are edited by `edit` (the code is unchanged).
struct WrongUnwind {
    inner: Box<dyn Backend + Sync>,
    edit: fn(&mut FrameOp),
}

impl WrongUnwind {
    fn wrap(&self, code: Result<Code, BackendError>) -> Result<Code, BackendError> {
        let mut code = code?;
        code.unwind.ops.iter_mut().for_each(|op| (self.edit)(&mut op.op));
        Ok(code)
    }
}

impl Backend for WrongUnwind {
    fn target(&self) -> Target {
        self.inner.target()
    }
    fn stub_code(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
        self.wrap(self.inner.stub_code(program, base, env))
    }
    fn thunk_code(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
        self.wrap(self.inner.thunk_code(program, base, env))
    }
}

#[test]
fn a_wrong_frame_description_is_caught_at_the_instruction_it_describes() {
    // The frame pointer said to be a word above sp (16 bytes on x86-64, a frame offset Win64
    // encodes): the CFA is off by that much from there on.
    fn fp_offset(op: &mut FrameOp) {
        if let FrameOp::SetFramePointer { offset, .. } = op {
            *offset = 16;
        }
    }
    fn fp_offset_x86(op: &mut FrameOp) {
        if let FrameOp::SetFramePointer { offset, .. } = op {
            *offset = 4;
        }
    }
    // The stub's saved rbx/ebx described as rsi/esi: the slot holds the caller's rbx.
    fn saved_reg(op: &mut FrameOp) {
        if *op == FrameOp::PushGpr(Gpr::BX) {
            *op = FrameOp::PushGpr(Gpr::SI);
        }
    }
    for target in Target::ALL {
        let cat = catalogue(target);
        let s = find(&cat, |_, p| p.args.len() >= 2 && p.args.iter().all(|a| is_int(a.value)));
        let (stub, thunk) = run(&cat, s, &WrongUnwind { inner: backend_for(target), edit: |_| {} });
        assert_eq!((&stub, &thunk), (&Ok(()), &Ok(())), "{target}: {}", s.c_decl);
        let edit = if target.arch == Arch::X86 { fp_offset_x86 } else { fp_offset };
        let (stub, thunk) = run(&cat, s, &WrongUnwind { inner: backend_for(target), edit });
        for (what, got) in [("stub", stub), ("thunk", thunk)] {
            let err = got.expect_err(&format!("{target} {what} with a wrong frame pointer offset"));
            assert!(err.what.contains("the CFA"), "{target} {what}: {err}");
        }
        let (stub, _) = run(&cat, s, &WrongUnwind { inner: backend_for(target), edit: saved_reg });
        let err = stub.expect_err(&format!("{target} stub with rbx described as rsi"));
        assert!(err.what.contains("the caller's r6"), "{target}: {err}");
    }
}

#[test]
fn a_by_reference_copy_of_an_aligned_32_record_placed_off_its_alignment_is_caught() {
    // Win64 passes an over-aligned record by reference to a copy at its alignment. A plan that
    // puts the copy 16 bytes off (the stack itself still aligned as the plan asks) must fail
    // the stub run, though the callee still reads the right bytes.
    let cat = catalogue(Target::X64_WIN);
    let s = find(&cat, |_, p| {
        p.args.iter().any(|a| {
            matches!((&a.pass, a.value), (abi_model::ArgPass::Indirect { .. }, ValueKind::Record { align: 32, .. }))
        })
    });
    let backend = backend_for(Target::X64_WIN);
    let (stub, _) = run(&cat, s, backend.as_ref());
    assert_eq!(stub, Ok(()), "{}", s.c_decl);

    let mut plan = plan_of(&cat, s).expect("plan");
    for a in &mut plan.args {
        if let (abi_model::ArgPass::Indirect { copy_at, .. }, ValueKind::Record { align: 32, .. }) =
            (&mut a.pass, a.value)
        {
            *copy_at += 16;
        }
    }
    plan.copy_area.1 += 32;
    let img = &cat.images[s.image];
    let mut loaded = load_image(cat.target, &img.stem, img.count).expect("fixture image loads");
    stub_runner::map_code_region(loaded.cpu.as_mut()).expect("code region");
    let values = CaseValues::of(s);
    let case = values.case(s, &plan);
    let stops = stub_runner::stub_stops();
    let got = check_stub(
        loaded.cpu.as_mut(),
        backend.as_ref(),
        &case,
        loaded.callees[s.slot],
        loaded.rec,
        &stops,
        LuaStack::Helpers,
    );
    let err = got.expect_err("a misaligned copy passes");
    assert!(err.what.contains("alignment of a by-reference argument's copy"), "{err:?}");
}
