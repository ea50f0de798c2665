//! Exact error texts of the declaration parser: `line:col: message near 'token'`, with
//! LuaJIT's messages (lj_errmsg.h) and LuaJIT's choice of offending token.

use abi_model::cdef::{cdef, parse_type, CScope};
use abi_model::{Target, TypeTable};

/// Declarations every case can refer to.
const PRELUDE: &str = "struct known { int a; }; typedef int myint; enum { K = 1 }; struct fwd;";

/// (text, expected error). A text starting with `T:` goes to `parse_type`, others to `cdef`.
const CASES: &[(&str, &str)] = &[
    // Syntax: LuaJIT's "'X' expected near 'Y'".
    ("int f(int x int y);", "1:13: ')' expected near 'int'"),
    ("int a\nint b;", "2:1: ';' expected near 'int'"),
    ("int;", "1:4: '<identifier>' expected near ';'"),
    ("struct s { int a[]; int b; };", "1:25: '}' expected near 'b'"),
    ("enum { };", "1:8: '<identifier>' expected near '}'"),
    ("T:int [3", "1:7: ']' expected near '<eof>'"),
    ("T:int (*)(int", "1:12: ')' expected near '<eof>'"),
    ("T:int[3]]", "1:7: '<eof>' expected near ']'"),
    ("unsigned float", "1:15: '<identifier>' expected near '<eof>'"),
    ("int x = 12;", "1:7: ';' expected near '='"),
    ("int x : 3;", "1:7: ';' expected near ':'"),
    ("int @ x;", "1:5: '<identifier>' expected near '@'"),
    ("int f() {", "1:10: '}' expected near '<eof>'"),
    ("struct s { int x; } __attribute__((aligned(K K)));", "1:46: ')' expected near 'K'"),
    ("#pragma pack(push, 4", "1:21: ')' expected near '<eof>'"),
    ("#line x", "1:7: '<integer>' expected near 'x'"),
    ("int a[1.5];", "1:9: '<identifier>' expected near '5'"),
    // Names and tags.
    ("T:int x", "1:5: '<eof>' expected near 'x'"),
    ("T:struct known x", "1:14: '<eof>' expected near 'x'"),
    ("T:struct nope", "1:8: undeclared or implicit tag 'nope'"),
    ("enum { myint };", "1:8: attempt to redefine 'myint'"),
    ("struct known { long b; };", "1:8: attempt to redefine 'known'"),
    ("union known;", "1:7: attempt to redefine 'known'"),
    ("struct a { struct a { int x; } y; };", "1:19: attempt to redefine 'a'"),
    ("enum e { A } ; enum e { B };", "1:21: attempt to redefine 'e'"),
    ("enum { K = 2 };", "1:8: attempt to redefine 'K'"),
    // Specifiers and storage classes.
    ("auto int x;", "1:1: bad storage class near 'auto'"),
    ("T:typedef int x", "1:1: bad storage class near 'typedef'"),
    ("struct s { extern int x; };", "1:12: bad storage class near 'extern'"),
    ("T:const", "1:6: declaration specifier expected near '<eof>'"),
    ("T:", "1:1: declaration specifier expected near '<eof>'"),
    ("struct s { int a; ;", "1:19: declaration specifier expected near ';'"),
    ("T:bool long", "1:10: invalid C type"),
    // Types that cannot exist.
    ("int f(void) (int);", "1:6: invalid C type"),
    ("int f(void)[3];", "1:6: invalid C type"),
    ("typedef int arr[3]; arr f(void);", "1:26: invalid C type"),
    ("static int X = 5;", "1:14: invalid C type"),
    ("static const double D = 1;", "1:23: invalid C type"),
    ("int &r;", "1:5: invalid C type near '&'"),
    // Sizes.
    ("struct s { struct fwd f; };", "1:23: size of C type is unknown or too large"),
    ("int a[-1];", "1:9: size of C type is unknown or too large"),
    ("int a[0x80000000];", "1:17: size of C type is unknown or too large"),
    ("double a[0x10000000];", "1:9: size of C type is unknown or too large"),
    ("void v[3];", "1:7: size of C type is unknown or too large"),
    ("T:int[?][?]", "1:4: size of C type is unknown or too large"),
    ("typedef struct { int v[?]; } vls; vls a[2];", "1:40: size of C type is unknown or too large"),
    ("enum { A = sizeof(struct fwd) };", "1:31: size of C type is unknown or too large"),
    ("struct s { int x; };\nstruct t { struct s s; int y: -1; };", "2:33: size of C type is unknown or too large"),
    // Values.
    ("struct s { int x : 33; };", "1:18: invalid value near ':'"),
    ("struct s { int x : 0; };", "1:18: invalid value near ':'"),
    ("struct s { float x : 3; };", "1:20: invalid value near ':'"),
    ("enum { A = 1 / 0 };", "1:14: invalid value"),
    ("enum { A = (-2147483647 - 1) % -1 };", "1:30: invalid value"),
    ("enum { A = B };", "1:12: unexpected symbol near 'B'"),
    ("enum { A = *K };", "1:15: 'int' cannot be indexed"),
    ("enum { A = ((struct known *)0)->zz };", "1:33: 'struct known' has no member named 'zz'"),
    ("#undef X", "1:2: unexpected symbol near 'undef'"),
    ("#pragma pack(frob)", "1:14: unexpected symbol near 'frob'"),
    // Lexical errors.
    ("enum { A = 12abc };", "1:12: malformed number near '12abc'"),
    ("enum { A = \"x };", "1:17: unfinished string near '<eof>'"),
    ("enum { A = 'ab' };", "1:12: ''' expected near 'ab'"),
    ("enum { A = $x };", "1:12: syntax error near 'x'"),
    ("int x; $", "1:8: wrong number of type parameters"),
    // What the type table cannot represent.
    ("long double v __attribute__((vector_size(32)));", "1:13: 'long double' cannot be a vector element"),
    // A 16-byte integer (mode(TI)) is no bit-field type, as in LuaJIT.
    ("struct wb { int __attribute__((mode(TI))) x : 3; };", "1:45: invalid value near ':'"),
    ("__attribute__((regparm(3))) int f(int);", "1:23: the 'regparm' calling convention is not supported"),
    // Types the model has no rule for, which LuaJIT reads as a name after `unsigned`.
    ("void f(unsigned __int128);", "1:17: '__int128' is not supported: the model has no 128-bit integer type"),
    ("T:_Float128", "1:1: '_Float128' is not supported: the model has no such floating type"),
    ("struct s { _Decimal64 d; };", "1:12: '_Decimal64' is not supported: the model has no decimal floating types"),
];

fn run(text: &str) -> Result<(), String> {
    let mut t = TypeTable::new(Target::X86_WIN);
    let mut s = CScope::new(&mut t);
    cdef(&mut t, &mut s, PRELUDE, &[]).expect("prelude parses");
    let r = match text.strip_prefix("T:") {
        Some(ty) => parse_type(&mut t, &mut s, ty, &[]).map(|_| ()),
        None => cdef(&mut t, &mut s, text, &[]),
    };
    r.map_err(|e| e.to_string())
}

#[test]
fn every_bad_declaration_gives_its_exact_error() {
    let mut wrong = Vec::new();
    for (text, expected) in CASES {
        match run(text) {
            Err(got) if got == *expected => {}
            other => wrong.push(format!("{text:?}\n  expected: {expected}\n  got:      {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases differ:\n{}", wrong.len(), CASES.len(), wrong.join("\n"));
}

#[test]
fn the_error_cases_are_distinct_inputs() {
    let mut texts: Vec<&str> = CASES.iter().map(|(t, _)| *t).collect();
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), CASES.len());
    assert!(CASES.len() >= 25);
}

#[test]
fn error_fields_hold_position_message_and_token() {
    let mut t = TypeTable::new(Target::X64_SYSV);
    let mut s = CScope::new(&mut t);
    let e = cdef(&mut t, &mut s, "struct s {\n  int a;\n  int b c;\n};", &[]).unwrap_err();
    assert_eq!((e.line, e.col, e.message.as_str(), e.token.as_deref()), (3, 9, "';' expected", Some("c")));
    let e = cdef(&mut t, &mut s, "enum { A = 1 % 0 };", &[]).unwrap_err();
    assert_eq!(e.token, None);
}
