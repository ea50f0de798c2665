//! The emulator matrix: every catalogue signature of a target, run under the emulator
//! against the compiled fixtures, in parallel (rayon, one engine per fixture image).

use crate::catalogue::{CatSignature, Catalogue, CALLEE_TABLE, CALLER_TABLE, REC_BUF, REC_LEN};
use crate::engine::{Cpu, EngineError, Mode};
use crate::image::Image;
use crate::plan_runner::{self, Mismatch, RecordBuffer};
use crate::report::MatrixRow;
use crate::unicorn_cpu::UnicornCpu;
use abi_model::{plan_call, plan_values, AbiValue, Arch, CallConv, CallPlan, Target, ValueKind};
use rayon::prelude::*;
use std::path::PathBuf;

/// `emu-harness/fixtures/<target>/`.
pub fn fixtures_dir(target: Target) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(target.name())
}

/// One failed case.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The signature in C.
    pub c_decl: String,
    /// `call` or `callback`.
    pub direction: &'static str,
    /// What differed.
    pub mismatch: Mismatch,
}

/// A fixture image loaded into a fresh engine, with the addresses the runners need.
pub struct LoadedImage {
    /// The engine.
    pub cpu: Box<dyn Cpu>,
    /// The record buffer.
    pub rec: RecordBuffer,
    /// Callee addresses, by slot.
    pub callees: Vec<u64>,
    /// Caller addresses, by slot.
    pub callers: Vec<u64>,
}

fn mode_of(target: Target) -> Mode {
    match target.arch {
        Arch::X86 => Mode::X86_32,
        Arch::X86_64 => Mode::X86_64,
    }
}

/// Loads fixture image `stem` of `target` into a new engine with the harness regions mapped.
pub fn load_image(target: Target, stem: &str, count: usize) -> Result<LoadedImage, String> {
    let path = fixtures_dir(target).join(crate::catalogue::image_file(target, stem));
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let image = Image::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut cpu: Box<dyn Cpu> = Box::new(UnicornCpu::new(mode_of(target)).map_err(|e| e.to_string())?);
    image.load_into(cpu.as_mut()).map_err(|e| format!("{}: {e}", path.display()))?;
    plan_runner::map_harness_regions(cpu.as_mut()).map_err(|e| e.to_string())?;
    let sym = |name: &str| image.symbol(name).map_err(|e| format!("{}: {e}", path.display()));
    let rec = RecordBuffer { buf: sym(REC_BUF)?, len: sym(REC_LEN)? };
    let table = |cpu: &dyn Cpu, name: &str| -> Result<Vec<u64>, String> {
        let base = sym(name)?;
        let w = mode_of(target).word_size();
        (0..count as u64).map(|i| cpu.read_word(base + i * w).map_err(|e: EngineError| e.to_string())).collect()
    };
    let callees = table(cpu.as_ref(), CALLEE_TABLE)?;
    let callers = table(cpu.as_ref(), CALLER_TABLE)?;
    Ok(LoadedImage { cpu, rec, callees, callers })
}

/// The plan of the call to a fixture caller: `void caller(void *fn)`, cdecl.
pub fn caller_entry_plan(target: Target) -> CallPlan {
    plan_values(target, CallConv::Cdecl, false, &AbiValue::scalar(ValueKind::Void), &[AbiValue::scalar(ValueKind::Pointer)], 1)
        .expect("a pointer argument is always plannable")
}

/// The plan abi-model makes for a catalogue signature.
pub fn plan_of(cat: &Catalogue, s: &CatSignature) -> Result<CallPlan, String> {
    plan_call(&cat.table, &s.sig, &s.varargs).map_err(|e| e.to_string())
}

/// Per direction of one signature: `None` when it does not apply, `Some(None)` for a pass,
/// `Some(Some(failure))` for a failure.
pub type DirectionResults = Vec<Option<Option<Failure>>>;

/// Runs `check` for every signature of `cat`, one engine per fixture image, images in
/// parallel. `check` returns one entry per direction: `None` when that direction does not
/// apply to the signature, `Some(None)` for a pass, `Some(Some(failure))` for a failure.
/// Returns, per direction, the number checked and the failures.
pub fn run_signatures_with<F>(cat: &Catalogue, prepare: fn(&mut dyn Cpu) -> Result<(), EngineError>, check: F) -> Result<Vec<(usize, Vec<Failure>)>, String>
where
    F: Fn(&mut LoadedImage, &CatSignature) -> DirectionResults + Sync,
{
    let per_image: Vec<Result<Vec<DirectionResults>, String>> = cat
        .images
        .par_iter()
        .enumerate()
        .map(|(i, img)| {
            let mut loaded = load_image(cat.target, &img.stem, img.count)?;
            prepare(loaded.cpu.as_mut()).map_err(|e| e.to_string())?;
            Ok(cat.signatures.iter().filter(|s| s.image == i).map(|s| check(&mut loaded, s)).collect())
        })
        .collect();
    let mut out: Vec<(usize, Vec<Failure>)> = Vec::new();
    for r in per_image {
        for results in r? {
            if out.len() < results.len() {
                out.resize_with(results.len(), || (0, Vec::new()));
            }
            for (d, res) in results.into_iter().enumerate() {
                if let Some(res) = res {
                    out[d].0 += 1;
                    out[d].1.extend(res);
                }
            }
        }
    }
    Ok(out)
}

/// The plan matrix of one target: both directions for every catalogue signature.
pub fn plan_matrix(cat: &Catalogue) -> Result<(Vec<MatrixRow>, Vec<Failure>), String> {
    let entry = caller_entry_plan(cat.target);
    let stops = plan_runner::plan_stops();
    let results = run_signatures_with(cat, |_| Ok(()), |img, s| {
        let plan = match plan_of(cat, s) {
            Ok(p) => p,
            Err(e) => {
                let m = Mismatch { what: "planning".into(), expected: "a plan".into(), actual: e };
                return vec![
                    Some(Some(Failure { c_decl: s.c_decl.clone(), direction: "call", mismatch: m.clone() })),
                    Some(Some(Failure { c_decl: s.c_decl.clone(), direction: "callback", mismatch: m })),
                ];
            }
        };
        let args: Vec<Vec<u8>> = s.args.iter().map(|v| v.bytes.clone()).collect();
        let masks: Vec<Vec<u8>> = s.args.iter().map(|v| v.mask.clone()).collect();
        let (ret, ret_mask) = s.ret.as_ref().map(|v| (v.bytes.clone(), v.mask.clone())).unwrap_or_default();
        let case = plan_runner::Case { c_text: &s.c_decl, plan: &plan, args: &args, arg_masks: &masks, ret: &ret, ret_mask: &ret_mask };
        let call = plan_runner::check_call(img.cpu.as_mut(), &case, img.callees[s.slot], img.rec, &stops)
            .err()
            .map(|m| Failure { c_decl: s.c_decl.clone(), direction: "call", mismatch: m });
        let callback = plan_runner::check_callback(img.cpu.as_mut(), &case, img.callers[s.slot], &entry, img.rec, &stops)
            .err()
            .map(|m| Failure { c_decl: s.c_decl.clone(), direction: "callback", mismatch: m });
        vec![Some(call), Some(callback)]
    })?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (dir, (checked, fails)) in ["call", "callback"].iter().zip(results) {
        rows.push(MatrixRow { target: cat.target.name().into(), subject: "plan".into(), direction: dir.to_string(), checked: checked as u64, failed: fails.len() as u64 });
        failures.extend(fails);
    }
    Ok((rows, failures))
}

/// The backend for a target.
pub fn backend_for(target: Target) -> Box<dyn abi_model::Backend + Sync> {
    match (target.arch, target.os) {
        (Arch::X86, _) => Box::new(backend_x86::X86Backend::new(target).expect("an x86 target")),
        (Arch::X86_64, abi_model::Os::Linux) => Box::new(backend_x64_sysv::X64SysvBackend),
        (Arch::X86_64, abi_model::Os::Windows) => Box::new(backend_x64_win::Win64Backend),
    }
}

/// The backend matrix of one target: its stub for every catalogue signature (call
/// direction) and its thunk for every non-variadic one (callback direction).
pub fn backend_matrix(cat: &Catalogue) -> Result<(Vec<MatrixRow>, Vec<Failure>), String> {
    let backend = backend_for(cat.target);
    let entry = caller_entry_plan(cat.target);
    let stops = crate::stub_runner::stub_stops();
    let results = run_signatures_with(cat, crate::stub_runner::map_code_region, |img, s| {
        let plan = match plan_of(cat, s) {
            Ok(p) => p,
            Err(e) => {
                let m = Mismatch { what: "planning".into(), expected: "a plan".into(), actual: e };
                return vec![Some(Some(Failure { c_decl: s.c_decl.clone(), direction: "call", mismatch: m.clone() })), Some(Some(Failure { c_decl: s.c_decl.clone(), direction: "callback", mismatch: m }))];
            }
        };
        let args: Vec<Vec<u8>> = s.args.iter().map(|v| v.bytes.clone()).collect();
        let masks: Vec<Vec<u8>> = s.args.iter().map(|v| v.mask.clone()).collect();
        let (ret, ret_mask) = s.ret.as_ref().map(|v| (v.bytes.clone(), v.mask.clone())).unwrap_or_default();
        let case = plan_runner::Case { c_text: &s.c_decl, plan: &plan, args: &args, arg_masks: &masks, ret: &ret, ret_mask: &ret_mask };
        let stub = crate::stub_runner::check_stub(img.cpu.as_mut(), backend.as_ref(), &case, img.callees[s.slot], img.rec, &stops)
            .err()
            .map(|m| Failure { c_decl: s.c_decl.clone(), direction: "call", mismatch: m });
        // Callbacks exist for non-variadic signatures only.
        let thunk = (!s.sig.variadic).then(|| {
            crate::stub_runner::check_thunk(img.cpu.as_mut(), backend.as_ref(), &case, img.callers[s.slot], &entry, img.rec, &stops)
                .err()
                .map(|m| Failure { c_decl: s.c_decl.clone(), direction: "callback", mismatch: m })
        });
        vec![Some(stub), thunk]
    })?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for ((subject, dir), (checked, fails)) in [("stub", "call"), ("thunk", "callback")].iter().zip(results) {
        rows.push(MatrixRow { target: cat.target.name().into(), subject: subject.to_string(), direction: dir.to_string(), checked: checked as u64, failed: fails.len() as u64 });
        failures.extend(fails);
    }
    Ok((rows, failures))
}
