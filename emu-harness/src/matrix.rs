//! The emulator matrix: every catalogue signature of a target, run under the emulator
//! against the compiled fixtures, in parallel (rayon, one engine per fixture image).

use crate::catalogue::{CatSignature, Catalogue, CALLEE_TABLE, CALLER_TABLE, REC_BUF, REC_LEN};
use crate::engine::{Cpu, EngineError, Mode};
use crate::image::{Image, ImageError};
use crate::plan_runner::{self, Mismatch, RecordBuffer};
use crate::report::MatrixRow;
use crate::stub_runner::LuaStack;
use crate::unicorn_cpu::UnicornCpu;
use abi_model::lua::vm::LuaVm;
use abi_model::{plan_call, plan_values, AbiValue, Arch, CallConv, CallPlan, PlanError, Target, ValueKind};
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

/// Why a fixture image could not be loaded and run.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io {
        /// Its path.
        path: PathBuf,
        /// The OS error.
        cause: std::io::Error,
    },
    /// The image could not be parsed, loaded or lacks a symbol.
    Image {
        /// Its path.
        path: PathBuf,
        /// What failed.
        cause: ImageError,
    },
    /// The engine failed (creating it, mapping the harness regions, reading memory).
    Engine(EngineError),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io { path, cause } => write!(f, "{}: {cause}", path.display()),
            LoadError::Image { path, cause } => write!(f, "{}: {cause}", path.display()),
            LoadError::Engine(e) => write!(f, "{e}"),
        }
    }
}

/// The cause is part of the message, so it is not also a `source`.
impl std::error::Error for LoadError {}

impl From<EngineError> for LoadError {
    fn from(e: EngineError) -> LoadError {
        LoadError::Engine(e)
    }
}

/// Loads fixture image `stem` of `target` into a new engine with the harness regions mapped.
pub fn load_image(target: Target, stem: &str, count: usize) -> Result<LoadedImage, LoadError> {
    let path = fixtures_dir(target).join(crate::catalogue::image_file(target, stem));
    let bytes = std::fs::read(&path).map_err(|cause| LoadError::Io { path: path.clone(), cause })?;
    let in_image = |cause: ImageError| LoadError::Image { path: path.clone(), cause };
    let image = Image::parse(&bytes).map_err(in_image)?;
    let mut cpu: Box<dyn Cpu> = Box::new(UnicornCpu::new(mode_of(target))?);
    image.load_into(cpu.as_mut()).map_err(in_image)?;
    plan_runner::map_harness_regions(cpu.as_mut())?;
    let sym = |name: &str| image.symbol(name).map_err(in_image);
    let rec = RecordBuffer { buf: sym(REC_BUF)?, len: sym(REC_LEN)? };
    let table = |cpu: &dyn Cpu, name: &str| -> Result<Vec<u64>, LoadError> {
        let base = sym(name)?;
        let w = mode_of(target).word_size();
        (0..count as u64).map(|i| Ok(cpu.read_word(base + i * w)?)).collect()
    };
    let callees = table(cpu.as_ref(), CALLEE_TABLE)?;
    let callers = table(cpu.as_ref(), CALLER_TABLE)?;
    Ok(LoadedImage { cpu, rec, callees, callers })
}

/// The plan of the call to a fixture caller: `void caller(void *fn)`, cdecl.
pub fn caller_entry_plan(target: Target) -> CallPlan {
    plan_values(
        target,
        CallConv::Cdecl,
        false,
        &AbiValue::scalar(ValueKind::Void),
        &[AbiValue::scalar(ValueKind::Pointer)],
        1,
    )
    .expect("a pointer argument is always plannable")
}

/// The plan abi-model makes for a catalogue signature.
pub fn plan_of(cat: &Catalogue, s: &CatSignature) -> Result<CallPlan, PlanError> {
    plan_call(&cat.table, &s.sig, &s.varargs)
}

/// The values of a catalogue signature, as the runners' [`plan_runner::Case`] borrows them.
pub struct CaseValues {
    args: Vec<Vec<u8>>,
    masks: Vec<Vec<u8>>,
    ret: Vec<u8>,
    ret_mask: Vec<u8>,
}

impl CaseValues {
    /// The argument and return bytes and masks of `s`.
    pub fn of(s: &CatSignature) -> CaseValues {
        let (ret, ret_mask) = s.ret.as_ref().map(|v| (v.bytes.clone(), v.mask.clone())).unwrap_or_default();
        CaseValues {
            args: s.args.iter().map(|v| v.bytes.clone()).collect(),
            masks: s.args.iter().map(|v| v.mask.clone()).collect(),
            ret,
            ret_mask,
        }
    }

    /// The case of `s` checked against `plan`.
    pub fn case<'a>(&'a self, s: &'a CatSignature, plan: &'a CallPlan) -> plan_runner::Case<'a> {
        plan_runner::Case {
            c_text: &s.c_decl,
            plan,
            args: &self.args,
            arg_masks: &self.masks,
            ret: &self.ret,
            ret_mask: &self.ret_mask,
        }
    }
}

/// A matrix row's subject and direction, e.g. `("stub", "call")`.
pub type RowKind = (&'static str, &'static str);

/// Per row kind of one signature: `None` when the kind does not apply, else the result.
pub type KindResults = [Option<Result<(), Mismatch>>; 2];

/// A target's matrix: its rows and every failure.
pub type TargetMatrix = Result<(Vec<MatrixRow>, Vec<Failure>), LoadError>;

/// Runs `check` for every signature of `cat` with abi-model's plan, one engine per fixture
/// image, images in parallel, and makes one row per entry of `kinds`. `check` answers per
/// kind: `None` when it does not apply to the signature, else the check's result. A
/// signature abi-model cannot plan fails every kind.
pub fn run_matrix<F>(
    cat: &Catalogue,
    prepare: fn(&mut dyn Cpu) -> Result<(), EngineError>,
    kinds: [RowKind; 2],
    check: F,
) -> TargetMatrix
where
    F: Fn(&mut LoadedImage, &CatSignature, &plan_runner::Case) -> KindResults + Sync,
{
    let run_one = |img: &mut LoadedImage, s: &CatSignature| -> KindResults {
        match plan_of(cat, s) {
            Ok(plan) => {
                let values = CaseValues::of(s);
                check(img, s, &values.case(s, &plan))
            }
            Err(e) => {
                let m = Mismatch { what: "planning".into(), expected: "a plan".into(), actual: e.to_string() };
                [Some(Err(m.clone())), Some(Err(m))]
            }
        }
    };
    let per_image: Vec<Result<Vec<(usize, KindResults)>, LoadError>> = cat
        .images
        .par_iter()
        .enumerate()
        .map(|(i, img)| {
            let mut loaded = load_image(cat.target, &img.stem, img.count)?;
            prepare(loaded.cpu.as_mut())?;
            Ok(cat
                .signatures
                .iter()
                .enumerate()
                .filter(|(_, s)| s.image == i)
                .map(|(n, s)| (n, run_one(&mut loaded, s)))
                .collect())
        })
        .collect();
    let (mut checked, mut failed) = ([0u64; 2], [0u64; 2]);
    let mut failures = Vec::new();
    for r in per_image {
        for (n, results) in r? {
            for (k, res) in results.into_iter().enumerate() {
                let Some(res) = res else { continue };
                checked[k] += 1;
                if let Err(mismatch) = res {
                    failed[k] += 1;
                    failures.push(Failure {
                        c_decl: cat.signatures[n].c_decl.clone(),
                        direction: kinds[k].1,
                        mismatch,
                    });
                }
            }
        }
    }
    let rows = kinds
        .iter()
        .zip(checked.into_iter().zip(failed))
        .map(|(&(subject, direction), (checked, failed))| MatrixRow {
            target: cat.target.name().into(),
            subject: subject.into(),
            direction: direction.into(),
            checked,
            failed,
        })
        .collect();
    Ok((rows, failures))
}

/// The plan matrix of one target: both directions for every catalogue signature.
pub fn plan_matrix(cat: &Catalogue) -> TargetMatrix {
    let entry = caller_entry_plan(cat.target);
    let stops = plan_runner::plan_stops();
    run_matrix(
        cat,
        |_| Ok(()),
        [("plan", "call"), ("plan", "callback")],
        |img, s, case| {
            [
                Some(plan_runner::check_call(img.cpu.as_mut(), case, img.callees[s.slot], img.rec, &stops)),
                Some(plan_runner::check_callback(
                    img.cpu.as_mut(),
                    cat.target,
                    case,
                    img.callers[s.slot],
                    &entry,
                    img.rec,
                    &stops,
                )),
            ]
        },
    )
}

/// The backend for a target.
pub fn backend_for(target: Target) -> Box<dyn abi_model::lua::Backend + Sync> {
    match (target.arch, target.os) {
        (Arch::X86, _) => Box::new(backend_x86::X86Backend::new(target).expect("an x86 target")),
        (Arch::X86_64, abi_model::Os::Linux) => Box::new(backend_x64_sysv::X64SysvBackend),
        (Arch::X86_64, abi_model::Os::Windows) => Box::new(backend_x64_win::Win64Backend),
    }
}

/// The backend matrix of one target: its stub for every catalogue signature (call
/// direction) and its thunk for every non-variadic one (callback direction).
pub fn backend_matrix(cat: &Catalogue) -> TargetMatrix {
    let backend = backend_for(cat.target);
    let entry = caller_entry_plan(cat.target);
    let stops = crate::stub_runner::stub_stops();
    run_matrix(cat, crate::stub_runner::map_code_region, [("stub", "call"), ("thunk", "callback")], |img, s, case| {
        let stub = crate::stub_runner::check_stub(
            img.cpu.as_mut(),
            backend.as_ref(),
            case,
            img.callees[s.slot],
            img.rec,
            &stops,
            LuaStack::Helpers,
        );
        // Callbacks exist for non-variadic signatures only.
        let thunk = (!s.sig.variadic).then(|| {
            crate::stub_runner::check_thunk(
                img.cpu.as_mut(),
                backend.as_ref(),
                case,
                img.callers[s.slot],
                &entry,
                img.rec,
                &stops,
                LuaStack::Helpers,
            )
        });
        [Some(stub), thunk]
    })
}

/// The targets whose inline stubs and thunks the matrix runs: every target (each backend
/// lowers the inline steps).
#[rustfmt::skip] // One line per target, so targets are added without touching the others.
pub const INLINE_TARGETS: &[Target] = &[
    Target::X86_LINUX, // backend-x86
    Target::X86_WIN,   // backend-x86
    Target::X64_SYSV,  // backend-x64-sysv
    Target::X64_WIN,   // backend-x64-win
];

/// The inline stubs and thunks of every target in [`INLINE_TARGETS`]: every catalogue
/// signature's stub and thunk built for each Lua stack layout of the target
/// ([`LuaVm::all_for`]: 5.1 to 5.5 on x86-64; on x86-32 no 5.2, whose NaN-packed values no
/// layout describes, so its stubs are the helper-only ones the `stub` and `thunk` rows run),
/// each run once with the Lua values inline steps take (numbers, nil, strings, cdata: the
/// inline paths) and once with other values (every inline step's helper path), all layouts
/// and both runs in one check per row.
pub fn inline_stub_matrix(cat: &Catalogue) -> TargetMatrix {
    if !INLINE_TARGETS.contains(&cat.target) {
        return Ok((Vec::new(), Vec::new()));
    }
    let backend = backend_for(cat.target);
    let stops = crate::stub_runner::stub_stops();
    run_matrix(
        cat,
        crate::stub_runner::map_code_region,
        [("stub-inline", "call"), ("thunk-inline", "callback")],
        |img, s, case| {
            let on_every_layout =
                |img: &mut LoadedImage, check: &dyn Fn(&mut LoadedImage, LuaStack) -> Result<(), Mismatch>| {
                    LuaVm::all_for(cat.target).iter().try_for_each(|&vm| {
                        [true, false].into_iter().try_for_each(|inline_values| {
                            check(img, LuaStack::Memory { vm, inline_values }).map_err(|m| {
                                let values = if inline_values { "inline values" } else { "other values" };
                                Mismatch { what: format!("{}, {values}: {}", vm.name, m.what), ..m }
                            })
                        })
                    })
                };
            let stub = on_every_layout(img, &|img, lua| {
                crate::stub_runner::check_stub(
                    img.cpu.as_mut(),
                    backend.as_ref(),
                    case,
                    img.callees[s.slot],
                    img.rec,
                    &stops,
                    lua,
                )
            });
            let entry = caller_entry_plan(cat.target);
            let thunk = (!s.sig.variadic).then(|| {
                on_every_layout(img, &|img, lua| {
                    crate::stub_runner::check_thunk(
                        img.cpu.as_mut(),
                        backend.as_ref(),
                        case,
                        img.callers[s.slot],
                        &entry,
                        img.rec,
                        &stops,
                        lua,
                    )
                })
            });
            [Some(stub), thunk]
        },
    )
}

/// Runs `matrix` on every target in parallel, writes its rows as `target/abi-matrix.d/<name>.json`
/// (for `cargo xtask test-all-abis`), prints them, and returns the failures as a report (the
/// first `shown` per target in full), empty when everything passed.
pub fn run_all_targets(name: &str, matrix: fn(&Catalogue) -> TargetMatrix, shown: usize) -> String {
    let results: Vec<_> = Target::ALL.par_iter().map(|&t| (t, matrix(&crate::catalogue::catalogue(t)))).collect();
    let mut rows = Vec::new();
    let mut report = String::new();
    for (t, r) in results {
        let (target_rows, failures) = r.unwrap_or_else(|e| panic!("{t}: {e}"));
        rows.extend(target_rows);
        for f in failures.iter().take(shown) {
            report.push_str(&format!("{t} {}: {}\n    {}\n", f.direction, f.c_decl, f.mismatch));
        }
        if failures.len() > shown {
            report.push_str(&format!("{t}: ... and {} more\n", failures.len() - shown));
        }
    }
    crate::report::write_rows(name, &rows).expect("write the matrix rows");
    for r in &rows {
        eprintln!(
            "{:<10} {:<5} {:<9} checked {:>6} failed {:>5}",
            r.target, r.subject, r.direction, r.checked, r.failed
        );
    }
    report
}
