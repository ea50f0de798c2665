//! Robustness of the declaration parser: random and mutated declaration texts must give `Ok` or
//! `Err`, never a panic, a stack overflow or a hang; and a failed `cdef` must leave every name
//! it mentions as it was, and the type table as long as it was.
//!
//! `CDEF_FUZZ_CASES` (default 100000) sets the number of cases, `CDEF_FUZZ_SECONDS` runs until
//! the time is up instead, `CDEF_FUZZ_SEED` sets the run's seed;
//! a failure prints the case's own seed, which `CDEF_FUZZ_CASE_SEED` replays alone.

use abi_model::cdef::{cdef, parse_type, CParam, CScope, TagKind};
use abi_model::{QualType, Target, TypeTable};
use std::panic::{catch_unwind, AssertUnwindSafe};

#[path = "common/fuzzing.rs"]
mod fuzzing;

use fuzzing::{env_u64, run_cases, write_summary, Rng};

/// Valid declarations the mutations start from.
const CORPUS: &[&str] = &[
    "int printf(const char *fmt, ...);",
    "typedef struct foo { int a, *b; char c[16]; } foo_t;",
    "typedef int (__stdcall *cb)(int, double);",
    "struct node { struct node *next; union { int i; float f; }; struct { char x, y; }; };",
    "enum e { A = -1, B = A + 2, C = sizeof(int) << 2, D = (unsigned char)300, E = 1 ? 2 : 3 };",
    "static const int N = 10 * (3 + 4) / 2 % 7, M = ~0u >> 3;",
    "struct bf { unsigned a : 3, b : 5; int : 0; bool c : 1; };",
    "struct vls { int n; double d[?]; }; struct flex { int n; char s[]; };",
    "#pragma pack(push, 1)\nstruct p { char c; double d; };\n#pragma pack(pop)\n",
    "struct __attribute__((packed, aligned(4))) q { char c; int i __attribute__((aligned(8))); };",
    "__declspec(align(16)) struct r { char c; }; int __fastcall f(int, int);",
    "__attribute__((fastcall)) int g(int a, int b) __asm__(\"g_impl\");",
    "extern const volatile int cv; char *__restrict p; static inline int h(int x) { return x + 1; }",
    "typedef double complex cd; typedef float _Complex cf; long double ld;",
    "void qsort(void *base, size_t n, size_t sz, int (*cmp)(const void *, const void *));",
    "typedef void (*(*signal_t)(int, void (*)(int)))(int);",
    "int a[3][4], (*pa)[4], *ap[4];",
    "typedef __int64 i64; unsigned __int32 u32; __int8 i8;",
    "// comment\n/* block */ int x; # 10 \"f.h\"\nint y;\n#line 3\nint z;",
    "struct s1; typedef struct s1 S1; struct s1 { S1 *self; int v; };",
    "union u { int i; double d; char bytes[sizeof(double)]; };",
    "enum { K1 = 'a', K2 = 0x7fffffff, K3 = 0x7ffffffe, K4 = 0777, K5 = 10ULL };",
    "int f(void) __attribute__((noreturn, visibility(\"default\"), deprecated(\"x\")));",
    "typedef int arr[(1 << 3) + sizeof(struct { char c; int i; })];",
    "static const long L = sizeof(((struct foo *)0)->c) + __alignof__(double);",
    "int $ ($);",
    "struct $ { $ x[$]; };",
];

/// Pieces the mutations insert.
const PIECES: &[&str] = &[
    "int",
    "char",
    "void",
    "struct",
    "union",
    "enum",
    "typedef",
    "static",
    "const",
    "volatile",
    "unsigned",
    "long",
    "short",
    "double",
    "float",
    "complex",
    "__attribute__",
    "((",
    "))",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ";",
    ",",
    "*",
    "&",
    ":",
    "?",
    "=",
    "...",
    "$",
    "x",
    "foo",
    "A",
    "0",
    "1",
    "-1",
    "0x80000000",
    "99999999999999999999",
    "'",
    "\"",
    "/*",
    "//",
    "\\\n",
    "#",
    "#pragma pack(",
    "sizeof",
    "__alignof__",
    "__asm__(\"y\")",
    "__declspec(",
    "__stdcall",
    "[?]",
    "[]",
    "<<",
    ">>",
    "||",
    "->",
    ".",
    "!",
    "~",
    "%",
    "/",
    "__int64",
    "__int128",
    "_Float128",
    "_Decimal64",
    "_Bool",
    "bool",
    "\0",
    "\u{e9}",
    "\r\n",
];

/// Splits text into rough tokens (identifiers/numbers, whitespace runs, single characters).
fn tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in text.chars() {
        let word = c.is_alphanumeric() || c == '_';
        match out.last_mut() {
            Some(last) if word && last.chars().all(|l| l.is_alphanumeric() || l == '_') => last.push(c),
            _ => out.push(c.to_string()),
        }
    }
    out
}

/// One mutated or random text.
fn make_case(rng: &mut Rng) -> String {
    if rng.below(20) == 0 {
        // Random printable-ish bytes.
        let n = rng.below(200);
        return (0..n).map(|_| (b' ' + rng.below(95) as u8) as char).collect();
    }
    let mut toks = tokens(rng.pick::<&str>(CORPUS));
    if rng.below(4) == 0 {
        toks.extend(tokens(rng.pick::<&str>(CORPUS)));
    }
    for _ in 0..1 + rng.below(4) {
        let len = toks.len().max(1);
        match rng.below(9) {
            0 if !toks.is_empty() => {
                toks.remove(rng.below(len));
            }
            1 if !toks.is_empty() => {
                let i = rng.below(len);
                let t = toks[i].clone();
                toks.insert(i, t);
            }
            2 if toks.len() > 1 => {
                let (i, j) = (rng.below(len), rng.below(len));
                toks.swap(i, j);
            }
            3 => {
                let i = rng.below(len + 1).min(toks.len());
                toks.insert(i, rng.pick(PIECES).to_string());
            }
            4 if !toks.is_empty() => {
                let i = rng.below(len);
                toks[i] = ((b'!' + rng.below(94) as u8) as char).to_string();
            }
            5 => {
                let keep = rng.below(len + 1);
                toks.truncate(keep);
            }
            6 => {
                // Deep nesting of one construct.
                let depth = 50 + rng.below(3000);
                let piece = *rng.pick(&[
                    "(",
                    "*",
                    "[1]",
                    "struct { ",
                    "{",
                    "-",
                    "!",
                    "sizeof ",
                    "(int)",
                    "int (*",
                    "enum { A = (",
                    "1 ? 1 : ",
                    "1 ? ",
                ]);
                let i = rng.below(len + 1).min(toks.len());
                toks.insert(i, piece.repeat(depth));
            }
            7 => {
                let i = rng.below(len + 1).min(toks.len());
                toks.insert(i, format!("{}", rng.next() as i64 >> rng.below(64)));
            }
            _ => {
                let i = rng.below(len + 1).min(toks.len());
                toks.insert(i, " ".into());
            }
        }
    }
    toks.concat()
}

/// Identifiers in a text (names a failed cdef might have declared).
fn identifiers(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with(|c: char| c.is_alphabetic() || c == '_'))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    // Enough to catch a leaked name without making every case slow.
    names.truncate(24);
    names
}

/// What a scope says about a name, for before/after comparison.
fn describe(t: &TypeTable, s: &CScope, name: &str) -> String {
    let tags: Vec<String> = [TagKind::Struct, TagKind::Union, TagKind::Enum]
        .iter()
        .map(|k| format!("{:?}", s.tag(t, *k, name).map(|id| t.layout(id).ok())))
        .collect();
    format!("{:?} {}", s.symbol(name), tags.join(" "))
}

const PRELUDE: &str = "struct known { int a; }; typedef int myint; enum { K = 1 }; struct fwd; int f(int);";

/// Runs one case; returns a description of a broken property, if any.
fn run_case(case_seed: u64) -> Result<(), String> {
    let mut rng = Rng(case_seed);
    let text = make_case(&mut rng);
    let target = Target::ALL[rng.below(4)];
    let mut t = TypeTable::new(target);
    let mut s = CScope::new(&mut t);
    cdef(&mut t, &mut s, PRELUDE, &[]).map_err(|e| format!("prelude: {e}"))?;
    let int = QualType::plain(t.int(abi_model::IntKind::Int));
    let params: Vec<CParam> = (0..rng.below(3))
        .map(|_| match rng.below(3) {
            0 => CParam::Type(int),
            1 => CParam::Int(rng.next() as i64 >> rng.below(64)),
            _ => CParam::Name("pname".into()),
        })
        .collect();
    let names = identifiers(&text);
    let before: Vec<String> = names.iter().map(|n| describe(&t, &s, n)).collect();
    let types_before = t.len();
    let declared = catch_unwind(AssertUnwindSafe(|| cdef(&mut t, &mut s, &text, &params)))
        .map_err(|_| format!("cdef panicked on {target} with {text:?} and {params:?}"))?;
    if declared.is_err() {
        if t.len() != types_before {
            return Err(format!("failed cdef of {text:?} left {} types in the table", t.len() - types_before));
        }
        for (name, was) in names.iter().zip(&before) {
            let now = describe(&t, &s, name);
            if &now != was {
                return Err(format!("failed cdef of {text:?} changed '{name}': {was} -> {now}"));
            }
        }
    }
    // Ok or Err are both fine for a type name; only a panic is a failure.
    let _typed = catch_unwind(AssertUnwindSafe(|| parse_type(&mut t, &mut s, &text, &params).map(|q| t.display(q))))
        .map_err(|_| format!("parse_type panicked on {target} with {text:?} and {params:?}"))?;
    Ok(())
}

#[test]
fn random_and_mutated_declarations_never_panic_and_failures_declare_nothing() {
    if let Some(seed) = env_u64("CDEF_FUZZ_CASE_SEED") {
        run_case(seed).unwrap();
        return;
    }
    let master = env_u64("CDEF_FUZZ_SEED").unwrap_or(0x00c0_ffee_cdef_0001);
    let cases = env_u64("CDEF_FUZZ_CASES").unwrap_or(100_000);
    let (ran, failures) = run_cases(master, cases, env_u64("CDEF_FUZZ_SECONDS"), 10, |case_seed| {
        run_case(case_seed).map_err(|e| format!("CDEF_FUZZ_CASE_SEED={case_seed}: {e}"))
    });
    let line = format!("cdef_fuzz: {ran} cases from seed {master}, {} failing", failures.len());
    println!("{line}");
    write_summary(env!("CARGO_TARGET_TMPDIR"), "cdef", &line);
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_corpus_itself_parses() {
    for text in CORPUS.iter().filter(|t| !t.contains('$')) {
        for target in Target::ALL {
            let mut t = TypeTable::new(target);
            let mut s = CScope::new(&mut t);
            cdef(&mut t, &mut s, "struct foo { int a, *b; char c[16]; };", &[]).unwrap();
            if let Err(e) = cdef(&mut t, &mut s, text, &[]) {
                panic!("{target}: {text:?}: {e}");
            }
        }
    }
}
