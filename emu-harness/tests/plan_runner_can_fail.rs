//! The plan checker must catch a wrong plan: each test perturbs a correct plan for a
//! catalogue signature in one way and asserts the emulator run reports it.

use abi_model::{ArgPass, CallConv, CallPlan, Gpr, Loc, RetLoc, Target};
use emu_harness::catalogue::spec::Ty;
use emu_harness::catalogue::{catalogue, CatSignature, Catalogue};
use emu_harness::matrix::{caller_entry_plan, load_image, plan_of, CaseValues};
use emu_harness::plan_runner::{self, Mismatch};

/// Runs both directions of `s` with `plan` instead of abi-model's; returns each result.
fn run(cat: &Catalogue, s: &CatSignature, plan: &CallPlan) -> (Result<(), Mismatch>, Result<(), Mismatch>) {
    let img = &cat.images[s.image];
    let mut loaded = load_image(cat.target, &img.stem, img.count).expect("fixture image loads");
    let values = CaseValues::of(s);
    let case = values.case(s, plan);
    let stops = plan_runner::plan_stops();
    let call = plan_runner::check_call(loaded.cpu.as_mut(), &case, loaded.callees[s.slot], loaded.rec, &stops);
    let entry = caller_entry_plan(cat.target);
    let callback = plan_runner::check_callback(
        loaded.cpu.as_mut(),
        cat.target,
        &case,
        loaded.callers[s.slot],
        &entry,
        loaded.rec,
        &stops,
    );
    (call, callback)
}

fn find(cat: &Catalogue, pred: impl Fn(&CatSignature, &CallPlan) -> bool) -> (&CatSignature, CallPlan) {
    cat.signatures
        .iter()
        .find_map(|s| plan_of(cat, s).ok().filter(|p| pred(s, p)).map(|p| (s, p)))
        .expect("the catalogue has such a signature")
}

fn gpr_args(p: &CallPlan) -> Vec<Loc> {
    p.args
        .iter()
        .filter_map(|a| match &a.pass {
            ArgPass::Direct(parts)
                if parts.len() == 1
                    && matches!(parts[0].loc, Loc::Gpr(_))
                    && a.value.size(p.ptr_size) == p.ptr_size =>
            {
                Some(parts[0].loc)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_correct_plan_passes_so_the_perturbed_ones_fail_for_their_perturbation() {
    let cat = catalogue(Target::X64_SYSV);
    let (s, plan) = find(&cat, |_, p| gpr_args(p).len() >= 2);
    let (call, callback) = run(&cat, s, &plan);
    assert_eq!(call, Ok(()), "{}", s.c_decl);
    assert_eq!(callback, Ok(()), "{}", s.c_decl);
}

#[test]
fn an_argument_moved_to_another_register_is_caught() {
    let cat = catalogue(Target::X64_SYSV);
    let (s, mut plan) = find(&cat, |_, p| gpr_args(p).len() >= 2);
    // Swap the registers of the first two register arguments.
    let idx: Vec<usize> = plan
        .args
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(&a.pass, ArgPass::Direct(parts) if parts.len() == 1 && matches!(parts[0].loc, Loc::Gpr(_)) && a.value.size(8) == 8))
        .map(|(i, _)| i)
        .take(2)
        .collect();
    let loc_of = |plan: &CallPlan, i: usize| match &plan.args[i].pass {
        ArgPass::Direct(parts) => parts[0].loc,
        ArgPass::Indirect { .. } => unreachable!(),
    };
    let (a, b) = (loc_of(&plan, idx[0]), loc_of(&plan, idx[1]));
    for (i, loc) in [(idx[0], b), (idx[1], a)] {
        if let ArgPass::Direct(parts) = &mut plan.args[i].pass {
            parts[0].loc = loc;
        }
    }
    let (call, callback) = run(&cat, s, &plan);
    let call = call.expect_err("swapped registers must be caught in the call direction");
    assert!(call.what.starts_with("arg "), "{call}");
    assert!(callback.is_err(), "swapped registers must be caught in the callback direction");
}

#[test]
fn a_wrong_callee_pop_count_is_caught() {
    let cat = catalogue(Target::X86_LINUX);
    let (s, mut plan) = find(&cat, |s, p| s.sig.conv == CallConv::Stdcall && p.callee_pops >= 8);
    plan.callee_pops -= 4;
    let (call, callback) = run(&cat, s, &plan);
    let call = call.expect_err("a wrong pop count must be caught");
    assert!(call.what.contains("callee-popped"), "{call}");
    assert!(callback.is_err(), "a callee that pops the wrong amount breaks the compiled caller");
}

#[test]
fn a_struct_given_the_wrong_class_is_caught() {
    // An SSE-class struct moved to an integer register (INTEGER instead of SSE).
    let cat = catalogue(Target::X64_SYSV);
    let (s, mut plan) = find(&cat, |_, p| {
        p.args.first().is_some_and(|a| {
            matches!(a.value, abi_model::ValueKind::Record { .. })
                && matches!(&a.pass, ArgPass::Direct(parts) if parts.len() == 1 && matches!(parts[0].loc, Loc::Xmm(_)))
        }) && p
            .args
            .iter()
            .skip(1)
            .all(|a| matches!(&a.pass, ArgPass::Direct(parts) if parts.iter().all(|x| !matches!(x.loc, Loc::Gpr(_)))))
    });
    if let ArgPass::Direct(parts) = &mut plan.args[0].pass {
        parts[0].loc = Loc::Gpr(Gpr::DI);
    }
    let (call, callback) = run(&cat, s, &plan);
    assert!(call.is_err(), "a wrong class must be caught: {}", s.c_decl);
    assert!(callback.is_err(), "a wrong class must be caught: {}", s.c_decl);
}

#[test]
fn a_wrong_return_location_is_caught() {
    let cat = catalogue(Target::X64_WIN);
    let (s, mut plan) = find(&cat, |_, p| p.ret.loc == RetLoc::Xmm0);
    plan.ret.loc = RetLoc::Gpr;
    let (call, callback) = run(&cat, s, &plan);
    let call = call.expect_err("a wrong return register must be caught");
    assert!(call.what.contains("return value"), "{call}");
    assert!(callback.is_err());
}

#[test]
fn a_struct_passed_by_value_instead_of_by_reference_is_caught() {
    let cat = catalogue(Target::X64_WIN);
    let (s, mut plan) =
        find(&cat, |_, p| p.args.first().is_some_and(|a| matches!(a.pass, ArgPass::Indirect { ptr: Loc::Gpr(_), .. })));
    let size = plan.args[0].value.size(8);
    if let ArgPass::Indirect { ptr, .. } = plan.args[0].pass {
        plan.args[0].pass = ArgPass::Direct(abi_model::Parts::new(&[abi_model::Part {
            loc: ptr,
            offset: 0,
            size: size.min(8),
            ext: abi_model::Ext::None,
        }]));
    }
    let (call, callback) = run(&cat, s, &plan);
    assert!(call.is_err(), "{}", s.c_decl);
    assert!(callback.is_err(), "{}", s.c_decl);
}

#[test]
fn the_matrix_counts_every_failure_its_checks_report() {
    // A check that fails every seventh signature in the first kind and skips the second kind
    // for odd ones: the rows and the failure list must say exactly that.
    use emu_harness::matrix::run_matrix;
    let cat = catalogue(Target::X86_WIN);
    let (rows, failures) = run_matrix(
        &cat,
        |_| Ok(()),
        [("plan", "call"), ("plan", "callback")],
        |_, s, _| {
            let first = if s.index % 7 == 0 { Err(plan_runner::mismatch("made up", "pass", "fail")) } else { Ok(()) };
            [Some(first), (s.index % 2 == 0).then_some(Ok(()))]
        },
    )
    .expect("the fixtures load");
    let n = cat.signatures.len() as u64;
    let sevenths = cat.signatures.iter().filter(|s| s.index % 7 == 0).count() as u64;
    let evens = cat.signatures.iter().filter(|s| s.index % 2 == 0).count() as u64;
    assert_eq!((rows[0].checked, rows[0].failed), (n, sevenths));
    assert_eq!((rows[1].checked, rows[1].failed), (evens, 0));
    assert_eq!(failures.len() as u64, sevenths);
    assert!(failures.iter().all(|f| f.direction == "call" && f.mismatch.what == "made up"));
}

/// The plan of `s` with every record argument and the record return classified `classes`
/// instead of by abi-model's rule (the wrong plan an earlier, wrong rule would make).
fn plan_with_classes(cat: &Catalogue, s: &CatSignature, classes: abi_model::x64_sysv::Eightbytes) -> CallPlan {
    use abi_model::{abi_value, plan_values, Position};
    let reclass = |mut v: abi_model::AbiValue| {
        if matches!(v.kind, abi_model::ValueKind::Record { .. }) {
            v.eightbytes = Some(classes.clone());
        }
        v
    };
    let ret = reclass(abi_value(&cat.table, s.sig.ret, Position::Return).unwrap());
    let args: Vec<_> =
        s.sig.params.iter().map(|p| reclass(abi_value(&cat.table, *p, Position::Param).unwrap())).collect();
    plan_values(cat.target, s.sig.conv, false, &ret, &args, args.len()).unwrap()
}

/// The non-variadic signature of the nested-record class whose declared shape is
/// `ret f(params)`, with `R` the `which`th nested record.
fn nested_sig(cat: &Catalogue, which: usize, shape: impl Fn(&Ty) -> (Option<Ty>, Vec<Ty>)) -> &CatSignature {
    let r = Ty::Record(cat.spec.nested_records[which]);
    let (ret, params) = shape(&r);
    cat.signatures
        .iter()
        .find(|s| {
            let d = &cat.spec.signatures[s.index];
            !d.variadic && d.ret == ret && d.params == params
        })
        .expect("the nested class has this signature")
}

#[test]
fn a_nested_packed_record_put_in_registers_instead_of_memory_is_caught() {
    // Issue 14 §1: struct { int a; P { long x; } p; } is MEMORY for gcc (x at absolute
    // offset 4). The plan a rule judging P on its own made (INTEGER, INTEGER) must fail
    // against the fixtures, as an argument and as a return.
    use emu_harness::catalogue::spec::Scalar;
    let cat = catalogue(Target::X64_SYSV);
    let int = Ty::Scalar(Scalar::Int(abi_model::IntKind::Int));
    let wrong = Ok(vec![abi_model::x64_sysv::Class::Integer, abi_model::x64_sysv::Class::Integer]);
    let arg = nested_sig(&cat, 1, |r| (None, vec![r.clone(), int.clone()]));
    let right = plan_of(&cat, arg).unwrap();
    assert_eq!(run(&cat, arg, &right), (Ok(()), Ok(())), "{}", arg.c_decl);
    let (call, callback) = run(&cat, arg, &plan_with_classes(&cat, arg, wrong.clone()));
    assert!(call.is_err() && callback.is_err(), "{}", arg.c_decl);
    let ret = nested_sig(&cat, 1, |r| (Some(r.clone()), vec![int.clone()]));
    let (call, callback) = run(&cat, ret, &plan_with_classes(&cat, ret, wrong));
    assert!(call.is_err() && callback.is_err(), "{}", ret.c_decl);
}

#[test]
fn a_nested_packed_record_put_in_memory_instead_of_registers_is_caught() {
    // Issue 14 §1: struct { float f; P { uint32_t a; uint64_t b; } p; } goes in rdi and rsi
    // for gcc; the memory plan of a rule checking `b` against P alone must fail.
    let cat = catalogue(Target::X64_SYSV);
    let s = nested_sig(&cat, 4, |r| (Some(r.clone()), vec![r.clone()]));
    let right = plan_of(&cat, s).unwrap();
    assert_eq!(run(&cat, s, &right), (Ok(()), Ok(())), "{}", s.c_decl);
    let (call, callback) = run(&cat, s, &plan_with_classes(&cat, s, Err(abi_model::x64_sysv::Memory)));
    assert!(call.is_err() && callback.is_err(), "{}", s.c_decl);
}

/// The plan of a catalogue signature returning a 16-byte integer on `target`.
fn int128_sig(cat: &Catalogue, pred: impl Fn(&CallPlan) -> bool) -> (&CatSignature, CallPlan) {
    find(cat, |_, p| p.ret.value == abi_model::ValueKind::Int { size: 16, signed: true } && pred(p))
}

#[test]
fn an_int128_result_read_through_a_hidden_pointer_on_win64_is_caught() {
    // mingw returns `__int128` in xmm0; the rule of a 16-byte struct (a hidden pointer in
    // rcx) must fail against it, and so must reading only the low half of xmm0.
    let cat = catalogue(Target::X64_WIN);
    let (s, plan) = int128_sig(&cat, |p| p.args.len() == 1);
    assert_eq!(run(&cat, s, &plan), (Ok(()), Ok(())), "{}", s.c_decl);
    let mut sret = plan.clone();
    sret.ret.loc = RetLoc::Sret { ptr: Loc::Gpr(Gpr::CX) };
    if let ArgPass::Indirect { ptr, .. } = &mut sret.args[0].pass {
        *ptr = Loc::Gpr(Gpr::DX);
    }
    let (call, callback) = run(&cat, s, &sret);
    assert!(call.is_err() && callback.is_err(), "{}: {call:?} {callback:?}", s.c_decl);
    let mut rax = plan.clone();
    rax.ret.loc = RetLoc::RaxRdx;
    let (call, callback) = run(&cat, s, &rax);
    assert!(call.is_err() && callback.is_err(), "{}: {call:?} {callback:?}", s.c_decl);
}

#[test]
fn an_int128_on_the_sysv_stack_in_an_8_aligned_slot_is_caught() {
    // psABI: an `__int128` in memory is 16-aligned; after seven longs (one stack slot) gcc
    // skips 8 bytes. Putting it at the next eightbyte, as a struct of two longs goes, fails.
    let cat = catalogue(Target::X64_SYSV);
    let (s, plan) = int128_sig(&cat, |p| {
        p.args.iter().any(|a| matches!(&a.pass, ArgPass::Direct(parts) if parts[0].loc == Loc::Stack { offset: 16 }))
    });
    assert_eq!(run(&cat, s, &plan), (Ok(()), Ok(())), "{}", s.c_decl);
    let mut packed = plan.clone();
    for a in &mut packed.args {
        if let ArgPass::Direct(parts) = &mut a.pass {
            for p in parts.iter_mut() {
                if let Loc::Stack { offset } = &mut p.loc {
                    if *offset >= 16 {
                        *offset -= 8;
                    }
                }
            }
        }
    }
    let (call, callback) = run(&cat, s, &packed);
    assert!(call.is_err() && callback.is_err(), "{}: {call:?} {callback:?}", s.c_decl);
}
