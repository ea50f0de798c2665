//! The type-to-layout fuzzer (issue 14 §4): random declarations — records nested three deep
//! with `packed`, `aligned(n)` and `#pragma pack` at every level, bit-fields of every width,
//! arrays of odd and huge lengths, flexible and VLS members, unions, enums — and functions
//! taking and returning them under every calling convention, with and without `...`, go
//! through the whole path the module takes: `cdef` into a [`TypeTable`], the layout, size and
//! alignment of every type in the table, the call plan of every function type (with variadic
//! arguments of every declared type), its callback frame, and the stub and thunk step
//! programs (plain and with the inline Lua stack layouts), on all four targets. Nothing may
//! panic: every result is `Ok` or a typed error.
//!
//! `LAYOUT_FUZZ_CASES` (default 10,000) sets the number of cases, `LAYOUT_FUZZ_SECONDS` runs
//! until the time is up instead, `LAYOUT_FUZZ_SEED` sets the run's seed; a failure prints the
//! case's own seed, which `LAYOUT_FUZZ_CASE_SEED` replays alone.

#[path = "common/fuzzing.rs"]
mod fuzzing;

use abi_model::cdef::{cdef, CScope};
use abi_model::lua::steps::{stub_program, stub_program_inline, thunk_program, thunk_program_inline, Inline};
use abi_model::lua::vm::LuaVm;
use abi_model::types::CType;
use abi_model::{plan_call, CallbackFrame, QualType, Signature, Target, TypeId, TypeTable};
use fuzzing::{env_u64, run_cases, write_summary, Rng};
use std::panic::{catch_unwind, AssertUnwindSafe};

const SCALARS: &[&str] = &[
    "char",
    "signed char",
    "unsigned char",
    "short",
    "unsigned short",
    "int",
    "unsigned",
    "long",
    "unsigned long",
    "long long",
    "unsigned long long",
    "float",
    "double",
    "bool",
    "int8_t",
    "uint16_t",
    "int32_t",
    "uint64_t",
    "size_t",
    "intptr_t",
    "void *",
    "char *",
    "double complex",
    "float complex",
    "enum fe",
    "wchar_t",
    "fnp",
];

const ALIGNS: &[&str] = &["1", "2", "4", "8", "16", "32", "64", "3", "0", "4096", "1 << 20", "0x80000000"];
const LENGTHS: &[&str] = &["0", "1", "1", "2", "2", "3", "3", "5", "7", "16", "1000", "0x7fffffff", "0x20000000"];
const CONVS: &[&str] =
    &["", "", "__cdecl ", "__stdcall ", "__fastcall ", "__thiscall ", "__attribute__((regparm(2))) "];

struct Gen {
    rng: Rng,
    records: usize,
    text: String,
}

impl Gen {
    fn attr(&mut self) -> String {
        match self.rng.below(6) {
            0 => "__attribute__((packed)) ".into(),
            1 => format!("__attribute__((aligned({}))) ", self.rng.pick(ALIGNS)),
            2 => format!("__attribute__((packed, aligned({}))) ", self.rng.pick(ALIGNS)),
            _ => String::new(),
        }
    }

    /// A member type: a scalar, an earlier record, or a record defined in place (nested).
    fn member_type(&mut self, depth: usize) -> String {
        match self.rng.below(8) {
            0 if depth < 3 => self.record_body(depth + 1, ""),
            1 if self.records > 0 => format!("struct r{}", self.rng.below(self.records)),
            _ => self.rng.pick(SCALARS).to_string(),
        }
    }

    /// `struct|union ATTRS TAG { members }`.
    fn record_body(&mut self, depth: usize, tag: &str) -> String {
        let kind = if self.rng.one_in(4) { "union" } else { "struct" };
        let attr = self.attr();
        let mut body = String::new();
        let n = 1 + self.rng.below(5);
        for i in 0..n {
            let ty = self.member_type(depth);
            let name = format!("m{depth}_{i}");
            let member = match self.rng.below(8) {
                0 => format!("{ty} {name}[{}]", self.rng.pick(LENGTHS)),
                1 => {
                    let width = if self.rng.one_in(8) { self.rng.below(70) } else { self.rng.below(17) };
                    format!(
                        "{} {name} : {width}",
                        self.rng.pick(&["int", "unsigned", "char", "long long", "bool", "uint8_t"])
                    )
                }
                2 => format!("unsigned : {}", self.rng.below(40)),
                3 => format!("{ty} {name} __attribute__((aligned({})))", self.rng.pick(ALIGNS)),
                4 => format!("{ty} {name} __attribute__((packed))"),
                _ => format!("{ty} {name}"),
            };
            body.push_str(&member);
            body.push_str("; ");
        }
        if depth == 0 && self.rng.one_in(6) {
            let tail = *self.rng.pick::<&str>(&["char tail[];", "double tail[?];", "int tail[0];"]);
            body.push_str(tail);
        }
        format!("{kind} {attr}{tag}{{ {body}}}")
    }

    fn param_type(&mut self) -> String {
        match self.rng.below(5) {
            0 | 1 if self.records > 0 => format!("struct r{}", self.rng.below(self.records)),
            2 => self.record_body(1, ""),
            _ => self.rng.pick(SCALARS).to_string(),
        }
    }

    fn case(&mut self) {
        self.text.push_str("enum fe { FA = -1, FB = 0x7fffffff }; typedef int (*fnp)(int);\n");
        if self.rng.one_in(4) {
            self.text.push_str(&format!(
                "#pragma pack({})\n",
                self.rng.pick(&["1", "2", "4", "8", "16", "push, 2", "3", ""])
            ));
        }
        for _ in 0..1 + self.rng.below(4) {
            let tag = format!("r{} ", self.records);
            let body = self.record_body(0, &tag);
            // Every record is named `struct rN`, unions too (`union rN` would be the tag).
            self.text.push_str(&body.replacen("union ", "struct ", 1));
            self.text.push_str(";\n");
            self.records += 1;
        }
        for f in 0..1 + self.rng.below(4) {
            let ret = if self.rng.one_in(5) { "void".to_string() } else { self.param_type() };
            let conv = self.rng.pick(CONVS).to_string();
            let params: Vec<String> = (0..self.rng.below(8)).map(|_| self.param_type()).collect();
            let variadic = if self.rng.one_in(4) {
                if params.is_empty() {
                    "..."
                } else {
                    ", ..."
                }
            } else {
                ""
            };
            self.text.push_str(&format!("{ret} {conv}f{f}({}{variadic});\n", params.join(", ")));
        }
    }
}

/// Every type in the table: layout, size, alignment; every function type: plans, frames and
/// step programs. Returns how many plans were made.
fn walk(t: &TypeTable) -> usize {
    let ids: Vec<TypeId> = (0..t.len() as u32).map(TypeId).collect();
    let mut plans = 0;
    for &id in &ids {
        let _ = t.layout(id);
        let _ = t.size_of(id);
        let _ = t.align_of(id);
        let _ = t.display(QualType::plain(id));
        let CType::Function(f) = t.get(id) else {
            continue;
        };
        let sig = Signature::new(f.ret, f.params.iter().map(|p| p.ty).collect(), f.variadic, f.conv);
        let mut varargs: Vec<Vec<QualType>> = vec![Vec::new()];
        if f.variadic {
            varargs.extend(ids.iter().step_by(7).map(|&v| vec![QualType::plain(v), QualType::plain(id)]));
        }
        for extra in &varargs {
            let Ok(plan) = plan_call(t, &sig, extra) else {
                continue;
            };
            plans += 1;
            let _ = stub_program(&plan, 1);
            for vm in LuaVm::ALL {
                let _ = stub_program_inline(&plan, 1, Some(&Inline::layout_only(vm)));
            }
            if extra.is_empty() {
                let frame = CallbackFrame::from_plan(&plan);
                let _ = thunk_program(&frame);
                for vm in LuaVm::ALL {
                    let _ = thunk_program_inline(&frame, Some(&Inline::layout_only(vm)));
                }
            }
        }
    }
    plans
}

/// Runs one case on every target; returns the case's text and what panicked, if anything.
fn run_case(case_seed: u64) -> Result<usize, String> {
    let mut g = Gen { rng: Rng(case_seed), records: 0, text: String::new() };
    g.case();
    let text = g.text;
    let mut plans = 0;
    for target in Target::ALL {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut t = TypeTable::new(target);
            let mut s = CScope::new(&mut t);
            // Declared one at a time, so that one bad declaration leaves the others to walk.
            for decl in text.split_inclusive('\n') {
                let _ = cdef(&mut t, &mut s, decl, &[]);
            }
            walk(&t)
        }));
        match outcome {
            Ok(n) => plans += n,
            Err(_) => return Err(format!("panicked on {target} with:\n{text}")),
        }
    }
    Ok(plans)
}

#[test]
fn random_records_and_signatures_lay_out_and_plan_without_panicking() {
    if let Some(seed) = env_u64("LAYOUT_FUZZ_CASE_SEED") {
        run_case(seed).unwrap();
        return;
    }
    let master = env_u64("LAYOUT_FUZZ_SEED").unwrap_or(0x1a70_07f0_2200_0014);
    let cases = env_u64("LAYOUT_FUZZ_CASES").unwrap_or(10_000);
    let mut plans = 0usize;
    let (ran, failures) = run_cases(master, cases, env_u64("LAYOUT_FUZZ_SECONDS"), 5, |case_seed| {
        plans += run_case(case_seed).map_err(|e| format!("LAYOUT_FUZZ_CASE_SEED={case_seed}: {e}"))?;
        Ok(())
    });
    let line = format!(
        "layout_fuzz: {ran} cases from seed {master} on 4 targets, {plans} call plans, {} failing",
        failures.len()
    );
    println!("{line}");
    write_summary(env!("CARGO_TARGET_TMPDIR"), "layout", &line);
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
    // The generator must reach the planner, not only the parser's errors.
    assert!(plans as u64 >= ran, "only {plans} plans in {ran} cases: the declarations mostly fail");
}
