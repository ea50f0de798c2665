//! The plan checker must catch a wrong plan: each test perturbs a correct plan for a
//! catalogue signature in one way and asserts the emulator run reports it.

use abi_model::{ArgPass, CallConv, CallPlan, Gpr, Loc, RetLoc, Target};
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
    let callback = plan_runner::check_callback(loaded.cpu.as_mut(), &case, loaded.callers[s.slot], &entry, loaded.rec, &stops);
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
            ArgPass::Direct(parts) if parts.len() == 1 && matches!(parts[0].loc, Loc::Gpr(_)) && a.value.size(p.ptr_size) == p.ptr_size => Some(parts[0].loc),
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
        p.args.first().is_some_and(|a| matches!(a.value, abi_model::ValueKind::Record { .. }) && matches!(&a.pass, ArgPass::Direct(parts) if parts.len() == 1 && matches!(parts[0].loc, Loc::Xmm(_))))
            && p.args.iter().skip(1).all(|a| matches!(&a.pass, ArgPass::Direct(parts) if parts.iter().all(|x| !matches!(x.loc, Loc::Gpr(_)))))
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
    let (s, mut plan) = find(&cat, |_, p| p.args.first().is_some_and(|a| matches!(a.pass, ArgPass::Indirect { ptr: Loc::Gpr(_), .. })));
    let size = plan.args[0].value.size(8);
    if let ArgPass::Indirect { ptr, .. } = plan.args[0].pass {
        plan.args[0].pass = ArgPass::Direct(vec![abi_model::Part { loc: ptr, offset: 0, size: size.min(8), ext: abi_model::Ext::None }]);
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
    let (rows, failures) = run_matrix(&cat, |_| Ok(()), [("plan", "call"), ("plan", "callback")], |_, s, _| {
        let first = if s.index % 7 == 0 { Err(plan_runner::mismatch("made up", "pass", "fail")) } else { Ok(()) };
        [Some(first), (s.index % 2 == 0).then_some(Ok(()))]
    })
    .expect("the fixtures load");
    let n = cat.signatures.len() as u64;
    let sevenths = cat.signatures.iter().filter(|s| s.index % 7 == 0).count() as u64;
    let evens = cat.signatures.iter().filter(|s| s.index % 2 == 0).count() as u64;
    assert_eq!((rows[0].checked, rows[0].failed), (n, sevenths));
    assert_eq!((rows[1].checked, rows[1].failed), (evens, 0));
    assert_eq!(failures.len() as u64, sevenths);
    assert!(failures.iter().all(|f| f.direction == "call" && f.mismatch.what == "made up"));
}
