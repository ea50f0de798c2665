//! Limits of the declaration parser and the type table against hostile input (issue 14
//! §2.7, §2.11, §2.13): every recursion over user input is bounded with a clear error, every
//! walk over a type of the deepest allowed nesting fits a 2 MiB thread stack, the table does not
//! grow from identical redeclarations or failed declarations, and C types the model cannot
//! represent (`__int128`, `_Float128`, ...) are errors in every position.
//!
//! The deep cases run on a thread with a 2 MiB stack (a test thread's default), so a recursion
//! that is not bounded overflows it instead of passing by luck on a large main stack.

use abi_model::cdef::{cdef, find_member, parse_type, CParam, CScope, Symbol, TagKind};
use abi_model::{plan_call, CallConv, QualType, Signature, Target, TypeTable};

/// Input nesting far beyond any limit: 10^5 levels.
const HOSTILE: usize = 100_000;

/// Runs `f` on a thread with a 2 MiB stack and returns its result.
fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the thread finished without a panic")
}

fn setup(target: Target) -> (TypeTable, CScope) {
    let mut t = TypeTable::new(target);
    let s = CScope::new(&mut t);
    (t, s)
}

/// The error of a declaration text that must fail.
fn cdef_err(t: &mut TypeTable, s: &mut CScope, text: &str) -> String {
    match cdef(t, s, text, &[]) {
        Ok(()) => panic!("accepted: {}", &text[..text.len().min(200)]),
        Err(e) => e.to_string(),
    }
}

const TOO_DEEP_SYNTAX: &str = "chunk has too many syntax levels";
const TOO_DEEP_TYPE: &str = "C type nested too deeply";

#[test]
fn conditional_chains_in_constant_expressions_are_bounded() {
    // `?:` recursed through expr_sub without counting a level: 10^5 of them crashed the stack.
    on_small_stack(|| {
        let (mut t, mut s) = setup(Target::X64_SYSV);
        let right = format!("enum {{ A = {}1 }};", "1 ? 1 : ".repeat(HOSTILE));
        assert!(cdef_err(&mut t, &mut s, &right).ends_with(TOO_DEEP_SYNTAX));
        let middle = format!("enum {{ B = {}1{} }};", "1 ? ".repeat(HOSTILE), " : 1".repeat(HOSTILE));
        assert!(cdef_err(&mut t, &mut s, &middle).ends_with(TOO_DEEP_SYNTAX));
        let in_array = format!("int a[{}1];", "0 ? 2 : ".repeat(HOSTILE));
        assert!(cdef_err(&mut t, &mut s, &in_array).ends_with(TOO_DEEP_SYNTAX));
        // A short chain is still a constant.
        cdef(&mut t, &mut s, "enum { C = 0 ? 1 : 0 ? 2 : 3 };", &[]).unwrap();
        assert_eq!(s.constant("C").unwrap().value, 3);
    });
}

/// Declares `name_i` for i = 1.. as `decl(i)` until one fails; returns (the deepest name
/// declared, the error).
fn chain(t: &mut TypeTable, s: &mut CScope, first: &str, decl: impl Fn(usize) -> String) -> (String, String) {
    cdef(t, s, first, &[]).unwrap();
    for i in 1..HOSTILE {
        if let Err(e) = cdef(t, s, &decl(i), &[]) {
            return (format!("t{}", i - 1), e.to_string());
        }
    }
    panic!("{HOSTILE} levels of nesting were accepted");
}

/// A way to nest types one declaration at a time: (what, the first declaration, the i-th).
type Chain = (&'static str, &'static str, fn(usize) -> String);

/// Every shape of type nesting a declaration can build one level at a time.
fn chains() -> Vec<Chain> {
    vec![
        ("arrays of typedefs", "typedef int t0[1];", |i| format!("typedef t{} t{i}[1];", i - 1)),
        ("pointers to typedefs", "typedef int *t0;", |i| format!("typedef t{} *t{i};", i - 1)),
        ("structs in structs", "typedef struct { int x; } t0;", |i| {
            format!("typedef struct {{ t{} x; }} t{i};", i - 1)
        }),
        ("anonymous members", "typedef struct { int x; } t0;", |i| format!("typedef struct {{ t{}; }} t{i};", i - 1)),
        ("functions taking functions", "typedef void (*t0)(int);", |i| format!("typedef void (*t{i})(t{});", i - 1)),
        ("functions returning pointers", "typedef int *t0;", |i| format!("typedef t{} (*t{i})(void);", i - 1)),
    ]
}

#[test]
fn type_nesting_over_typedef_chains_is_bounded_with_a_clear_error() {
    // One typedef at a time, each level's array size computed from the last: this recursed
    // once per level in every later walk (layout, classification, display) and was quadratic.
    on_small_stack(|| {
        for (what, first, decl) in chains() {
            let (mut t, mut s) = setup(Target::X64_SYSV);
            let (_, err) = chain(&mut t, &mut s, first, decl);
            assert!(err.contains(TOO_DEEP_TYPE), "{what}: {err}");
        }
    });
}

#[test]
fn type_nesting_over_dollar_chains_is_bounded() {
    on_small_stack(|| {
        for pattern in ["$[1]", "$ *", "struct { $ x; }", "void (*)($)"] {
            let (mut t, mut s) = setup(Target::X64_SYSV);
            let mut ty = QualType::plain(t.int(abi_model::IntKind::Int));
            let err = (0..HOSTILE).find_map(|_| match parse_type(&mut t, &mut s, pattern, &[CParam::Type(ty)]) {
                Ok(next) => {
                    ty = next;
                    None
                }
                Err(e) => Some(e.to_string()),
            });
            let err = err.unwrap_or_else(|| panic!("{pattern}: {HOSTILE} levels accepted"));
            assert!(err.contains(TOO_DEEP_TYPE), "{pattern}: {err}");
        }
    });
}

#[test]
fn every_walk_over_the_deepest_allowed_type_fits_a_small_stack() {
    // The table refuses deeper types, so layout, display, calls by value and member lookup
    // over the deepest type it accepts must all finish on a 2 MiB stack.
    on_small_stack(|| {
        for target in Target::ALL {
            for (what, first, decl) in chains() {
                let (mut t, mut s) = setup(target);
                let (deepest, _) = chain(&mut t, &mut s, first, decl);
                let ty = s.typedef(&deepest).unwrap();
                let _ = t.layout(ty.id);
                let _ = t.display(ty);
                let int = QualType::plain(t.int(abi_model::IntKind::Int));
                for sig in [
                    Signature::new(int, vec![ty], false, CallConv::Cdecl),
                    Signature::new(ty, vec![int], false, CallConv::Cdecl),
                ] {
                    let _ = plan_call(&t, &sig, &[]);
                }
                let _ = find_member(&t, ty.id, "nope");
                // Redeclaring it compares the whole type with itself.
                let again = decl(deepest[1..].parse().unwrap());
                let _ = cdef(&mut t, &mut s, &again, &[]);
                assert!(matches!(s.symbol(&deepest), Some(Symbol::Typedef(_))), "{what}");
            }
        }
    });
}

#[test]
fn nested_struct_definitions_and_declarators_are_bounded() {
    on_small_stack(|| {
        let (mut t, mut s) = setup(Target::X64_SYSV);
        let structs = format!("{}int x;{}", "struct { ".repeat(HOSTILE), " } a;".repeat(HOSTILE));
        assert!(cdef_err(&mut t, &mut s, &structs).ends_with(TOO_DEEP_SYNTAX));
        let parens = format!("int {}x{};", "(".repeat(HOSTILE), ")".repeat(HOSTILE));
        assert!(cdef_err(&mut t, &mut s, &parens).ends_with(TOO_DEEP_SYNTAX));
        let funcs = format!("void f({}int{});", "void (*)(".repeat(HOSTILE), ")".repeat(HOSTILE));
        assert!(cdef_err(&mut t, &mut s, &funcs).ends_with(TOO_DEEP_SYNTAX));
        let casts = format!("enum {{ A = {}1 }};", "(int)".repeat(HOSTILE));
        assert!(cdef_err(&mut t, &mut s, &casts).ends_with(TOO_DEEP_SYNTAX));
        let sizes = format!("enum {{ A = {}1 }};", "sizeof ".repeat(HOSTILE));
        assert!(cdef_err(&mut t, &mut s, &sizes).ends_with(TOO_DEEP_SYNTAX));
    });
}

// ---- §2.11: the table does not grow from what leaves nothing behind ----

#[test]
fn identical_redeclarations_do_not_grow_the_table() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    let decls = "struct s1 { int x; struct { char c; } in; union { int i; float f; }; };\
                 typedef struct { int q; int r; } div2_t;\
                 enum e1 { EA, EB = 4 };\
                 typedef enum { EC, ED } e2_t;\
                 int f1(int (*)(double), struct s1 *, struct { int a; } *);\
                 typedef int (*cb_t)(int, int[3]);";
    cdef(&mut t, &mut s, decls, &[]).unwrap();
    let len = t.len();
    for _ in 0..1000 {
        cdef(&mut t, &mut s, decls, &[]).unwrap();
    }
    assert_eq!(t.len(), len, "1000 identical redeclarations grew the table");
}

#[test]
fn a_failed_cdef_leaves_the_table_as_it_was() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    cdef(&mut t, &mut s, "struct fwd; enum efwd;", &[]).unwrap();
    let len = t.len();
    let failing = [
        "struct zz { int x; } ; int f(int x int y);",
        "int g(int (*)(int, double), struct { int a; } b) bad;",
        "struct fwd { int x; struct { char c; } in; }; int h(int x int y);",
        "enum efwd { EF1, EF2 }; struct { int v[3]; } *p; int bad bad;",
        "typedef struct { struct { int deep[2][3]; } *p; } td_t; enum { td_t };",
    ];
    for _ in 0..1000 {
        for text in failing {
            assert!(cdef(&mut t, &mut s, text, &[]).is_err(), "{text}");
        }
        assert!(parse_type(&mut t, &mut s, "struct { int x; } *[3] x", &[]).is_err());
    }
    assert_eq!(t.len(), len, "5000 failed declarations grew the table");
    // What the failures completed is incomplete again, and their names are gone.
    let fwd = s.tag(&t, TagKind::Struct, "fwd").unwrap();
    assert!(t.layout(fwd).is_err());
    assert!(s.tag(&t, TagKind::Struct, "zz").is_none());
    assert!(s.constant("EF1").is_none());
    // And the table still works: the same texts without their errors succeed.
    cdef(&mut t, &mut s, "struct fwd { int x; struct { char c; } in; };", &[]).unwrap();
    assert_eq!(t.size_of(fwd).unwrap(), 8);
}

#[test]
fn anonymous_types_made_in_a_loop_stop_at_luajits_table_limit() {
    // LuaJIT makes a new type for every anonymous struct and raises "table overflow" once its
    // table holds 65536 types; so does this table, which therefore stays bounded.
    let (mut t, mut s) = setup(Target::X64_SYSV);
    let mut made = 0usize;
    let err = loop {
        match parse_type(&mut t, &mut s, "struct { int x; }", &[]) {
            Ok(_) => made += 1,
            Err(e) => break e.to_string(),
        }
        assert!(made <= 70_000, "70000 anonymous structs were made");
    };
    assert!(err.ends_with("table overflow"), "{err}");
    assert!(t.len() <= 65_536, "{}", t.len());
    // Derived types are interned: making them again costs nothing, even at the limit.
    let len = t.len();
    for text in ["int *", "int[?]", "int (*)(int)", "const char *[3]"] {
        let _ = parse_type(&mut t, &mut s, text, &[]);
    }
    for text in ["int *", "int[?]", "int (*)(int)", "const char *[3]"] {
        let _ = parse_type(&mut t, &mut s, text, &[]);
    }
    assert!(t.len() <= len + 4);
}

// ---- §2.13: C types the model cannot represent ----

/// Spellings of C types the model has no rule for, with the error's wording.
const UNSUPPORTED: &[&str] = &[
    "__int128",
    "__int128_t",
    "__uint128_t",
    "__float128",
    "_Float128",
    "__float80",
    "__ibm128",
    "_Float16",
    "__fp16",
    "__bf16",
    "_Float32",
    "_Float64",
    "_Float32x",
    "_Float64x",
    "_Float128x",
    "_Decimal32",
    "_Decimal64",
    "_Decimal128",
];

#[test]
fn wide_and_exotic_number_types_are_errors_in_every_position() {
    // `void f(unsigned __int128)` parsed as an unsigned int parameter named `__int128`: the
    // callee then read garbage in the upper half.
    for name in UNSUPPORTED {
        let positions = [
            format!("void f(unsigned {name});"),
            format!("void f(signed {name});"),
            format!("void f({name});"),
            format!("void f({name} x);"),
            format!("void f(int, unsigned {name}, int);"),
            format!("{name} f(void);"),
            format!("unsigned {name} f(void);"),
            format!("struct s {{ {name} x; }};"),
            format!("struct s {{ int a; unsigned {name}; }};"),
            format!("typedef {name} t;"),
            format!("typedef unsigned {name} t;"),
            format!("extern {name} v;"),
            format!("enum {{ A = sizeof({name}) }};"),
            format!("enum {{ A = sizeof(unsigned {name}) }};"),
            format!("enum {{ A = ({name})1 }};"),
            format!("int {name};"),
            format!("T:{name}"),
            format!("T:unsigned {name}"),
            format!("T:{name} *"),
            format!("T:int (*)(long {name})"),
        ];
        for text in &positions {
            let (mut t, mut s) = setup(Target::X64_SYSV);
            let r = match text.strip_prefix("T:") {
                Some(ty) => parse_type(&mut t, &mut s, ty, &[]).map(|_| ()),
                None => cdef(&mut t, &mut s, text, &[]),
            };
            let err = r.map(|()| "accepted".to_string()).unwrap_or_else(|e| e.to_string());
            assert!(err.contains(&format!("'{name}' is not supported")), "{text}: {err}");
        }
    }
}

#[test]
fn unsupported_type_names_stay_usable_as_dollar_names() {
    // A `$` name is an identifier, never a keyword (LuaJIT): only the spelled type is refused.
    let (mut t, mut s) = setup(Target::X64_SYSV);
    cdef(&mut t, &mut s, "struct s { int $; };", &[CParam::Name("__int128".into())]).unwrap();
}
