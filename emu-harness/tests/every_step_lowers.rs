//! Every backend lowers every step (issue 15 §6): a backend missing a step's lowering fails
//! this test, which names the step, instead of failing at run time in production.
//!
//! The programs are the ones the model really builds: the stub and thunk of every curated and
//! every catalogue signature for the target, plain and with every inline step (for each Lua
//! layout). Every program must lower. Each step kind the target's programs can contain
//! ([`occurs_on`], an exhaustive match: a new [`StepKind`] does not compile until it is placed
//! there) must be in some program, and no other kind may be. A stand-in backend that refuses
//! one step proves the check catches it, by name.

use abi_model::lua::curated::{curated_plans, listing_env, listing_inline, LISTING_BASE};
use abi_model::lua::steps::{stub_program_inline, thunk_program_inline, Inline, Program, StepKind};
use abi_model::lua::vm::LuaVm;
use abi_model::lua::{Backend, BackendError, Code, CodeEnv, ProgramKind};
use abi_model::{CallPlan, CallbackFrame, Target};
use emu_harness::catalogue::catalogue;
use emu_harness::matrix::{backend_for, plan_of};
use std::collections::{BTreeMap, BTreeSet};

/// Whether programs for `target` can contain a step of `kind`.
fn occurs_on(kind: StepKind, target: Target) -> bool {
    match kind {
        // Only SysV variadic calls tell the callee how many vector registers they use.
        StepKind::SetAl => target == Target::X64_SYSV,
        // Arguments passed by reference: Microsoft x64 only.
        StepKind::StoreAddr | StepKind::LoadAddr => target == Target::X64_WIN,
        // A hidden return pointer on the stack: x86-32 only (x86-64 passes it in a register).
        StepKind::CopyPtr => target.pointer_size() == 4,
        StepKind::CheckArgCount
        | StepKind::LoadPtr
        | StepKind::CallHelper
        | StepKind::LoadArg
        | StepKind::CallTarget
        | StepKind::SaveReturn
        | StepKind::Spill
        | StepKind::LoadReturn
        | StepKind::CheckArgCountInline
        | StepKind::FuncAddrFromUpvalue
        | StepKind::ToCInline
        | StepKind::PtrInline
        | StepKind::RecordInline
        | StepKind::PushInline
        | StepKind::ErrnoRestoreInline
        | StepKind::AfterCallInline
        | StepKind::CallbackEnterInline
        | StepKind::CallbackCallInline
        | StepKind::PopInline
        | StepKind::ReturnToLua
        | StepKind::ReturnToC => true,
    }
}

/// One program of the corpus, with what it is called in a failure message.
struct Sample {
    name: String,
    kind: ProgramKind,
    program: Program,
    env: CodeEnv,
}

/// The stub and (unless variadic) the thunk of `plan`, without inline steps and with all of
/// them for every Lua layout of the target.
fn samples(target: Target, decl: &str, plan: &CallPlan, variadic: bool, out: &mut Vec<Sample>) {
    let env = listing_env(target, plan.args.len());
    let inlines: Vec<Option<Inline>> =
        std::iter::once(None).chain(LuaVm::all_for(target).iter().map(|vm| Some(listing_inline(*vm)))).collect();
    for inline in &inlines {
        let layout = inline.as_ref().map_or("no layout", |i| i.vm.name);
        let stub = stub_program_inline(plan, 1, inline.as_ref());
        let name = format!("{decl} stub ({layout})");
        out.push(Sample { name, kind: ProgramKind::Stub, program: stub, env: env.clone() });
        if !variadic {
            let thunk = thunk_program_inline(&CallbackFrame::from_plan(plan), inline.as_ref());
            let name = format!("{decl} thunk ({layout})");
            out.push(Sample { name, kind: ProgramKind::Thunk, program: thunk, env: env.clone() });
        }
    }
}

/// Every program the model builds for `target` from the curated and catalogue signatures.
fn corpus(target: Target) -> Vec<Sample> {
    let mut out = Vec::new();
    for c in curated_plans(target) {
        samples(target, c.curated.decl, &c.plan, !c.curated.varargs.is_empty(), &mut out);
    }
    let cat = catalogue(target);
    for s in &cat.signatures {
        let plan = plan_of(&cat, s).unwrap_or_else(|e| panic!("{target}: {}: {e}", s.c_decl));
        samples(target, &s.c_decl, &plan, s.sig.variadic, &mut out);
    }
    out
}

/// What is wrong with `backend` on its target's corpus, one line per failure: a step kind no
/// program contains or one the target should not have ([`occurs_on`]), and the first program
/// that does not lower for each step the backend names in its error.
fn missing_lowerings(backend: &dyn Backend) -> Vec<String> {
    let target = backend.target();
    let mut seen = BTreeSet::new();
    let mut refused: BTreeMap<Option<StepKind>, String> = BTreeMap::new();
    for s in corpus(target) {
        seen.extend(s.program.steps.iter().map(|step| step.kind()));
        let built = match s.kind {
            ProgramKind::Stub => backend.stub(&s.program, LISTING_BASE, &s.env),
            ProgramKind::Thunk => backend.thunk(&s.program, LISTING_BASE, &s.env),
        };
        if let Err(e) = built {
            refused.entry(e.step()).or_insert_with(|| format!("{target}: {}: {e}", s.name));
        }
    }
    let mut failures: Vec<String> = refused.into_values().collect();
    for &kind in StepKind::ALL {
        match (occurs_on(kind, target), seen.contains(&kind)) {
            (true, false) => failures.push(format!("{target}: step {kind}: no program the model builds uses it")),
            (false, true) => failures.push(format!("{target}: step {kind}: used, but `occurs_on` says it cannot be")),
            _ => {}
        }
    }
    failures
}

#[test]
fn every_backend_lowers_every_step_its_target_uses() {
    let failures: Vec<String> = Target::ALL.iter().flat_map(|t| missing_lowerings(backend_for(*t).as_ref())).collect();
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// A real backend that has no lowering for one step kind.
struct Refusing {
    inner: Box<dyn Backend + Sync>,
    refuses: StepKind,
}

impl Refusing {
    fn check(&self, program: &Program) -> Result<(), BackendError> {
        match program.steps.iter().position(|s| s.kind() == self.refuses) {
            Some(index) => Err(BackendError::NotLowered { index: Some(index), step: self.refuses }),
            None => Ok(()),
        }
    }
}

impl Backend for Refusing {
    fn target(&self) -> Target {
        self.inner.target()
    }
    fn stub_code(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
        self.check(program)?;
        self.inner.stub_code(program, base, env)
    }
    fn thunk_code(&self, program: &Program, base: u64, env: &CodeEnv) -> Result<Code, BackendError> {
        self.check(program)?;
        self.inner.thunk_code(program, base, env)
    }
}

#[test]
fn a_backend_missing_one_step_fails_naming_the_step() {
    // The SysV backend lowers everything (the test above); take one step away at a time.
    for refuses in [StepKind::LoadArg, StepKind::RecordInline, StepKind::CallbackEnterInline, StepKind::PopInline] {
        let backend = Refusing { inner: backend_for(Target::X64_SYSV), refuses };
        let failures = missing_lowerings(&backend);
        assert!(!failures.is_empty(), "a backend without {refuses} passed");
        assert_eq!(failures.len(), 1, "{failures:#?}");
        assert!(failures[0].contains(&format!("backend cannot lower step {refuses} (step ")), "{}", failures[0]);
    }
}
