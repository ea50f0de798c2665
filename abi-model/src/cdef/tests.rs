//! Unit tests of the declaration parser, one rule each.

use super::*;
use crate::types::{ArrayLen, FloatKind, FuncType, IntKind};
use crate::{CallConv, Signature, Target};

fn setup(target: Target) -> (TypeTable, CScope) {
    let mut t = TypeTable::new(target);
    let s = CScope::new(&mut t);
    (t, s)
}

fn def(t: &mut TypeTable, s: &mut CScope, src: &str) {
    if let Err(e) = cdef(t, s, src, &[]) {
        panic!("cdef({src:?}) failed: {e}");
    }
}

fn show(t: &mut TypeTable, s: &mut CScope, src: &str) -> String {
    match parse_type(t, s, src, &[]) {
        Ok(q) => t.display(q),
        Err(e) => panic!("parse_type({src:?}) failed: {e}"),
    }
}

fn err(t: &mut TypeTable, s: &mut CScope, src: &str) -> String {
    match cdef(t, s, src, &[]) {
        Ok(()) => panic!("cdef({src:?}) should fail"),
        Err(e) => e.to_string(),
    }
}

fn func<'t>(t: &'t TypeTable, s: &CScope, name: &str) -> &'t FuncType {
    let f = s.function(name).unwrap_or_else(|| panic!("{name} is not a function"));
    match t.get(f.ty) {
        CType::Function(f) => f,
        other => panic!("{other:?}"),
    }
}

/// The convention of the function a pointer type points to.
fn pointee_conv(t: &TypeTable, ptr: QualType) -> CallConv {
    match t.get(ptr.id) {
        CType::Pointer(to) => match t.get(to.id) {
            CType::Function(f) => f.conv,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

fn size(t: &TypeTable, s: &CScope, tag: &str) -> (u64, u32) {
    let id = s.tag(t, TagKind::Struct, tag).or_else(|| s.tag(t, TagKind::Union, tag)).expect("tag");
    let l = t.layout(id).unwrap();
    (l.size, l.align)
}

fn offset(t: &TypeTable, s: &CScope, tag: &str, member: &str) -> u64 {
    let id = s.tag(t, TagKind::Struct, tag).or_else(|| s.tag(t, TagKind::Union, tag)).expect("tag");
    find_member(t, id, member).expect("member").offset
}

#[test]
fn abstract_types_display_as_luajit_prints_them() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    assert_eq!(show(&mut t, &mut s, "int[?]"), "int [?]");
    assert_eq!(show(&mut t, &mut s, "const char *"), "const char *");
    assert_eq!(show(&mut t, &mut s, "int (*)(int)"), "int (*)(int)");
    assert_eq!(show(&mut t, &mut s, "int[3][4]"), "int [3][4]");
    assert_eq!(show(&mut t, &mut s, "int *[3]"), "int *[3]");
    assert_eq!(show(&mut t, &mut s, "int (*)[3]"), "int (*)[3]");
    assert_eq!(show(&mut t, &mut s, "char * const"), "char *const");
    assert_eq!(show(&mut t, &mut s, "unsigned long long int"), "unsigned long long");
    assert_eq!(show(&mut t, &mut s, "signed char"), "signed char");
    assert_eq!(show(&mut t, &mut s, "void (*(*)(int))(double)"), "void (*(*)(int))(double)");
}

#[test]
fn builtin_typedefs_follow_the_target_data_model() {
    let (mut t, mut s) = setup(Target::X86_WIN);
    assert_eq!(show(&mut t, &mut s, "size_t"), "unsigned int");
    assert_eq!(show(&mut t, &mut s, "int64_t"), "long long");
    assert_eq!(show(&mut t, &mut s, "wchar_t"), "unsigned short");
    assert_eq!(show(&mut t, &mut s, "va_list"), "void *");
    let (mut t, mut s) = setup(Target::X64_SYSV);
    assert_eq!(show(&mut t, &mut s, "int64_t"), "long");
    assert_eq!(show(&mut t, &mut s, "ssize_t"), "long");
    assert_eq!(show(&mut t, &mut s, "wchar_t"), "int");
    assert_eq!(show(&mut t, &mut s, "uint8_t"), "unsigned char");
    assert_eq!(show(&mut t, &mut s, "bool"), "bool");
    assert_eq!(show(&mut t, &mut s, "_Bool"), "bool");
}

#[test]
fn typedef_of_function_pointer_keeps_stdcall() {
    let (mut t, mut s) = setup(Target::X86_WIN);
    def(&mut t, &mut s, "typedef int (__stdcall *cb)(int);");
    let cb = s.typedef("cb").unwrap();
    assert_eq!(pointee_conv(&t, cb), CallConv::Stdcall);
}

#[test]
fn calling_conventions_are_accepted_where_compilers_put_them() {
    let (mut t, mut s) = setup(Target::X86_WIN);
    def(
        &mut t,
        &mut s,
        "int __stdcall a(int); __attribute__((fastcall)) int b(int, int); int c(int) __attribute__((stdcall));
         __thiscall int d(void *); int __attribute__((stdcall)) e(void); int (__fastcall *fp)(int);
         int __cdecl f(int);",
    );
    assert_eq!(func(&t, &s, "a").conv, CallConv::Stdcall);
    assert_eq!(func(&t, &s, "b").conv, CallConv::Fastcall);
    assert_eq!(func(&t, &s, "c").conv, CallConv::Stdcall);
    assert_eq!(func(&t, &s, "d").conv, CallConv::Thiscall);
    assert_eq!(func(&t, &s, "e").conv, CallConv::Stdcall);
    assert_eq!(func(&t, &s, "f").conv, CallConv::Cdecl);
    let fp = s.variable("fp").unwrap().ty;
    assert_eq!(pointee_conv(&t, fp), CallConv::Fastcall);
}

#[test]
fn calling_convention_keywords_mean_the_one_convention_on_x64() {
    let (mut t, mut s) = setup(Target::X64_WIN);
    def(&mut t, &mut s, "int __stdcall a(int); int b(int);");
    assert_eq!(s.function("a").unwrap().ty, s.function("b").unwrap().ty);
}

#[test]
fn a_convention_in_the_specifiers_applies_to_every_declarator() {
    let (mut t, mut s) = setup(Target::X86_LINUX);
    def(&mut t, &mut s, "int __stdcall f(int), g(int);");
    assert_eq!(func(&t, &s, "g").conv, CallConv::Stdcall);
}

#[test]
fn multiple_declarators_share_the_specifiers() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(&mut t, &mut s, "extern int a, *b, c[3]; typedef const char *str, **strs;");
    assert_eq!(t.display(s.variable("a").unwrap().ty), "int");
    assert_eq!(t.display(s.variable("b").unwrap().ty), "int *");
    assert_eq!(t.display(s.variable("c").unwrap().ty), "int [3]");
    assert_eq!(show(&mut t, &mut s, "strs"), "const char **");
}

/// A parameter of specifiers alone skips the empty declarator; it must give the type a named
/// one (which does not) gives: typedef'd arrays and functions decay, qualifiers go, a
/// `mode` still applies, `void` still ends the list.
#[test]
fn unnamed_parameters_of_specifiers_alone_type_as_named_ones() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(
        &mut t,
        &mut s,
        "typedef int a4[4]; typedef int fn_t(int);\n\
         void f(a4, fn_t, int __attribute__((mode(QI))), const int, volatile size_t, struct sf *);\n\
         void g(a4 p, fn_t q, int __attribute__((mode(QI))) r, const int s, volatile size_t t, struct sf *u);\n\
         int h(void);",
    );
    assert_eq!(s.function("f").unwrap().ty, s.function("g").unwrap().ty);
    let shown: Vec<String> = func(&t, &s, "f").params.iter().map(|p| t.display(p.ty)).collect();
    assert_eq!(shown, ["int *", "int (*)(int)", "signed char", "int", "unsigned long", "struct sf *"]);
    assert!(func(&t, &s, "h").params.is_empty());
}

/// A parameter that is one type keyword or typedef name right before its `,` or `)` is read
/// by a short path; it types as the general path does (here reached through a comment or line
/// break before the separator, and through names), `void` among them included.
#[test]
fn lone_parameter_types_are_what_the_general_path_makes() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(
        &mut t,
        &mut s,
        "typedef int a4[4]; typedef int fn_t(int); typedef void v_t; typedef const int ci;\n\
         void f(int, double, float, char, __int32, int64_t, a4, fn_t, ci, size_t);\n\
         void g(int /**/, double\n, float x, char y, __int32 z, int64_t /**/, a4 p, fn_t q, ci r, size_t\n);\n\
         int h(v_t); int k(v_t /**/); int m(int, void);",
    );
    assert_eq!(s.function("f").unwrap().ty, s.function("g").unwrap().ty);
    let shown: Vec<String> = func(&t, &s, "f").params.iter().map(|p| t.display(p.ty)).collect();
    assert_eq!(
        shown,
        ["int", "double", "float", "char", "int", "long", "int *", "int (*)(int)", "int", "unsigned long"]
    );
    assert_eq!(s.function("h").unwrap().ty, s.function("k").unwrap().ty);
    assert!(func(&t, &s, "h").params.is_empty());
    let shown: Vec<String> = func(&t, &s, "m").params.iter().map(|p| t.display(p.ty)).collect();
    assert_eq!(shown, ["int"]);
}

/// The `,` or `)` after a lone parameter is read with it, never as a token: the tokens after
/// it keep their columns and lines (spaces and tabs before the separator, a list ended on
/// one line and declared on the next).
#[test]
fn tokens_after_a_lone_parameter_keep_their_positions() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    assert_eq!(err(&mut t, &mut s, "int f(int ,\tdouble )  x;"), "1:23: ';' expected near 'x'");
    assert_eq!(err(&mut t, &mut s, "int f(int,  1);"), "1:13: declaration specifier expected near '1'");
    assert_eq!(err(&mut t, &mut s, "int f(int)\n  x;"), "2:3: ';' expected near 'x'");
    assert_eq!(err(&mut t, &mut s, "int f(int , size_t)(void);"), "1:6: invalid C type");
}

/// The `(` after a declarator's name or `asm`, and the `)` after an `asm` string, are read
/// with the token before them, never as tokens: the list keeps the `(`'s position for its
/// errors, the tokens after them keep theirs, and without them the errors are the same.
#[test]
fn an_open_parenthesis_read_with_a_name_or_asm_keeps_positions() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    assert_eq!(err(&mut t, &mut s, "int f\t (int)(void);"), "1:8: invalid C type");
    assert_eq!(err(&mut t, &mut s, "int g(int) asm  (\"a\" \"b\") x;"), "1:27: ';' expected near 'x'");
    assert_eq!(err(&mut t, &mut s, "int h(int) asm \"a\";"), "1:16: '(' expected near 'a'");
    assert_eq!(err(&mut t, &mut s, "int k(int"), "1:10: ')' expected near '<eof>'");
    assert_eq!(err(&mut t, &mut s, "int m(int) asm (\"a\" x);"), "1:21: ')' expected near 'x'");
    def(&mut t, &mut s, "int n (int) asm ( \"a\" \"b\" ) ;");
    assert_eq!(s.function("n").unwrap().asm_name.as_deref(), Some("ab"));
}

/// Texts the lexer builds (strings with escapes) stay right when a `#define` that is no
/// integer constant is read again as skipped: the string before it, in it and after it.
#[test]
fn built_texts_survive_a_define_read_again() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(&mut t, &mut s, "int f(int) asm(\"f\\x41\");\n#define S \"a\\tb\" \"c\\n\"\nint g(int) asm(\"g\\x42\");");
    assert_eq!(s.function("f").unwrap().asm_name.as_deref(), Some("fA"));
    assert_eq!(s.function("g").unwrap().asm_name.as_deref(), Some("gB"));
    let e = err(&mut t, &mut s, "#define T \"x\\n\" + 1\n\"y\\t\" int;");
    assert_eq!(e, "2:1: declaration specifier expected near 'y\t'");
}

#[test]
fn function_parameters_decay_and_lose_top_level_qualifiers() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(&mut t, &mut s, "int f(const int x, char buf[16], int g(int), ...); int h(void); int k();");
    let f = func(&t, &s, "f").clone();
    assert!(f.variadic);
    let shown: Vec<String> = f.params.iter().map(|p| t.display(p.ty)).collect();
    assert_eq!(shown, ["int", "char *", "int (*)(int)"]);
    assert_eq!(f.params[0].name.as_deref(), Some("x"));
    assert!(func(&t, &s, "h").params.is_empty());
    assert_eq!(s.function("h").unwrap().ty, s.function("k").unwrap().ty);
}

#[test]
fn inline_function_bodies_are_skipped() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(&mut t, &mut s, "static inline int twice(int x) { if (x) { return x * 2; } return 1.5f; } int after(void);");
    assert!(s.function("twice").is_some());
    assert!(s.function("after").is_some());
}

#[test]
fn asm_redirects_name_the_symbol() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(&mut t, &mut s, r#"int stat64(const char *, void *) __asm__("" "__xstat64"); extern int err __asm("errno_");"#);
    assert_eq!(s.function("stat64").unwrap().asm_name.as_deref(), Some("__xstat64"));
    assert_eq!(s.variable("err").unwrap().asm_name.as_deref(), Some("errno_"));
}

#[test]
fn structs_lay_out_with_nested_and_anonymous_members() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(
        &mut t,
        &mut s,
        "struct outer { char tag; struct inner { short a; double b; } in; union { int i; float f; }; struct { char x, y; }; };",
    );
    assert_eq!(size(&t, &s, "inner"), (16, 8));
    assert_eq!(size(&t, &s, "outer"), (32, 8));
    assert_eq!(offset(&t, &s, "outer", "in"), 8);
    assert_eq!(offset(&t, &s, "outer", "f"), 24);
    assert_eq!(offset(&t, &s, "outer", "y"), 29);
}

#[test]
fn forward_declared_struct_is_completed_later_and_can_point_to_itself() {
    let (mut t, mut s) = setup(Target::X86_LINUX);
    def(&mut t, &mut s, "typedef struct node node_t; struct node { node_t *next; struct node *prev; int v; };");
    assert_eq!(size(&t, &s, "node"), (12, 4));
    assert_eq!(show(&mut t, &mut s, "node_t"), "struct node");
}

#[test]
fn struct_tag_and_typedef_name_coexist() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(&mut t, &mut s, "typedef struct foo { int a; } foo; foo x; struct foo y;");
    assert_eq!(s.variable("x").unwrap().ty, s.variable("y").unwrap().ty);
}

#[test]
fn bit_fields_pack_into_their_units() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(&mut t, &mut s, "struct bf { unsigned a : 3, b : 5; int : 0; unsigned c : 1; bool d : 1; };");
    let id = s.tag(&t, TagKind::Struct, "bf").unwrap();
    assert_eq!(find_member(&t, id, "b").unwrap().bits.unwrap().bit_offset, 3);
    assert_eq!(find_member(&t, id, "c").unwrap().offset, 4);
    assert_eq!(size(&t, &s, "bf"), (8, 4));
}

#[test]
fn flexible_and_variable_length_last_members() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(&mut t, &mut s, "struct flex { int n; double d[]; }; struct vls { int n; char data[?]; };");
    assert_eq!(size(&t, &s, "flex"), (8, 8));
    assert_eq!(size(&t, &s, "vls"), (4, 4));
    let vls = s.tag(&t, TagKind::Struct, "vls").unwrap();
    let f = &t.record_body(vls).unwrap().fields[1];
    assert!(matches!(t.get(f.ty.id), CType::Array { len: ArrayLen::Variable, .. }));
}

#[test]
fn enums_with_expressions_negative_values_and_references() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(
        &mut t,
        &mut s,
        "enum e { A = -2, B, C = B + 10, D = (1 << 4) | C, E = sizeof(int) * 2, F = A < 0 ? 100 : 200, G = (unsigned char)300, H = ~0u >> 28, I = 'x', };",
    );
    let value = |n: &str| s.constant(n).unwrap().value;
    assert_eq!(
        [value("A"), value("B"), value("C"), value("D"), value("E"), value("F"), value("G"), value("H"), value("I")],
        [-2, -1, 9, 25, 8, 100, 44, 15, 120]
    );
    let e = s.tag(&t, TagKind::Enum, "e").unwrap();
    assert!(matches!(t.get(e), CType::Enum(en) if en.repr == IntKind::Int));
    assert_eq!(t.display(s.constant("A").unwrap().ty), "int");
}

#[test]
fn enum_constants_above_int_max_stay_unsigned() {
    let (mut t, mut s) = setup(Target::X86_LINUX);
    def(&mut t, &mut s, "enum flags { HIGH = 0x80000000, NEXT };");
    assert_eq!(s.constant("HIGH").unwrap().value, 0x8000_0000);
    assert_eq!(t.display(s.constant("HIGH").unwrap().ty), "unsigned int");
    assert_eq!(s.constant("NEXT").unwrap().value, 0x8000_0001);
}

#[test]
fn constant_expressions_follow_c_arithmetic() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(
        &mut t,
        &mut s,
        "static const int A = -7 / 2, B = -7 % 2, C = (-1 < 0u), D = !5 + !0, E = 1 ? 2 : (1/1), F = 3 ^ 5 & 6 | 8;
         static const long long G = 1LL << 40; static const unsigned H = -1; static const short I = 70000;
         static const int J = (2 + 3) * 4 - 10 / 3 % 2 == 19 && 1 || 0, K = sizeof(long) + __alignof__(double), L = 1 << 33 >> 1;",
    );
    let value = |n: &str| s.constant(n).unwrap().value;
    assert_eq!([value("A"), value("B"), value("C"), value("D"), value("E"), value("F")], [-3, -1, 0, 1, 2, 15]);
    assert_eq!(
        [value("G"), value("H"), value("I"), value("J"), value("K"), value("L")],
        [1 << 40, 0xffff_ffff, 4464, 1, 16, 1]
    );
    assert_eq!(t.display(s.constant("G").unwrap().ty), "const long long");
}

#[test]
fn sizeof_of_expressions_and_member_access() {
    let (mut t, mut s) = setup(Target::X86_LINUX);
    def(
        &mut t,
        &mut s,
        "struct s { char a; double d[3]; }; static const int N = sizeof(((struct s *)0)->d) / sizeof(((struct s *)0)->d[0]);
         static const int M = sizeof \"abc\"; static const int P = sizeof(struct s);",
    );
    assert_eq!(s.constant("N").unwrap().value, 3);
    assert_eq!(s.constant("M").unwrap().value, 4);
    assert_eq!(s.constant("P").unwrap().value, 28);
}

#[test]
fn array_sizes_take_constant_expressions_and_parameters_make_vlas() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(&mut t, &mut s, "enum { N = 4 }; typedef int arr[N * 2 + 1]; void f(int n, int a[n]);");
    assert_eq!(show(&mut t, &mut s, "arr"), "int [9]");
    assert_eq!(t.display(func(&t, &s, "f").params[1].ty), "int *");
}

#[test]
fn packed_and_aligned_attributes_change_layout() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(
        &mut t,
        &mut s,
        "struct __attribute__((packed)) p1 { char c; int i; };
         struct p2 { char c; int i; } __attribute__((__packed__));
         struct a1 { char c; int i __attribute__((aligned(16))); };
         struct __attribute__((aligned)) a2 { char c; };
         struct __declspec(align(8)) a3 { char c; };
         struct m1 { char c; __attribute__((packed)) int i; };",
    );
    assert_eq!(size(&t, &s, "p1"), (5, 1));
    assert_eq!(size(&t, &s, "p2"), (5, 1));
    assert_eq!(offset(&t, &s, "a1", "i"), 16);
    assert_eq!(size(&t, &s, "a1"), (32, 16));
    assert_eq!(size(&t, &s, "a2"), (16, 16));
    assert_eq!(size(&t, &s, "a3"), (8, 8));
    assert_eq!(offset(&t, &s, "m1", "i"), 1);
}

/// gcc: the attributes inside a struct/union specifier (after the keyword, after the closing
/// brace) belong to the record type, not to the member it declares; only a member's own
/// attributes (leading the declaration or after its declarator) are the member's. So in a
/// packed struct an inline `struct __attribute__((aligned(8))) { float f; } b;` member is
/// packed like `struct A8 b;` (`packed` overrides the alignment of a member's type, not an
/// `aligned` on the member itself). Sizes from gcc 12 and mingw-w64 (x86-64 and i386 alike); LuaJIT gives
/// the inline spellings 16/8.
#[test]
fn attributes_inside_an_inline_record_specifier_belong_to_the_record_not_the_member() {
    for target in [Target::X64_SYSV, Target::X86_LINUX, Target::X64_WIN, Target::X86_WIN] {
        let (mut t, mut s) = setup(target);
        def(
            &mut t,
            &mut s,
            "struct __attribute__((aligned(8))) A8 { float f; };
             struct __attribute__((packed)) s1 { int i; struct A8 b; };
             struct __attribute__((packed)) q1 { int i; struct __attribute__((aligned(8))) { float f; } b; };
             struct __attribute__((packed)) q2 { int i; struct { float f; } __attribute__((aligned(8))) b; };
             struct __attribute__((packed)) q3 { int i; __attribute__((aligned(8))) struct { float f; } b; };
             struct __attribute__((packed)) q4 { int i; struct { float f; } b __attribute__((aligned(8))); };
             struct __attribute__((packed)) q5 { int i; struct __attribute__((aligned(8))) T5 { float f; } b; };
             struct __attribute__((packed)) q6 { int i; union __attribute__((aligned(8))) { float f; } b; };
             struct __attribute__((packed)) q7 { int i; struct __attribute__((aligned(8))) { float f; } b, c; };
             struct q8 { char c; struct __attribute__((aligned(8))) { float f; } b; } __attribute__((packed));
             struct q9 { char c; struct __attribute__((aligned(16))) { float f; } b; };
             struct __attribute__((packed)) q10 { int i; struct __attribute__((aligned(8))) { float f; }; };
             #pragma pack(1)
             struct q11 { char c; struct A8 b __attribute__((aligned(8))); };
             #pragma pack()
             typedef struct { float f; } __attribute__((aligned(8))) td8;
             struct __attribute__((packed)) q12 { int i; td8 b; };",
        );
        let want = [
            ("s1", (12, 1)),
            ("q1", (12, 1)),
            ("q2", (12, 1)),
            ("q3", (16, 8)),
            ("q4", (16, 8)),
            ("q5", (12, 1)),
            ("T5", (8, 8)),
            ("q6", (12, 1)),
            ("q7", (20, 1)),
            ("q8", (9, 1)),
            ("q9", (32, 16)),
            ("q10", (12, 1)),
            ("q11", (9, 1)),
            ("q12", (12, 1)),
        ];
        for (name, sz) in want {
            assert_eq!(size(&t, &s, name), sz, "{name} on {target:?}");
        }
        assert_eq!(offset(&t, &s, "q1", "b"), 4);
        assert_eq!(offset(&t, &s, "q7", "c"), 12);
    }
}

#[test]
fn pragma_pack_push_pop_and_reset() {
    let (mut t, mut s) = setup(Target::X64_WIN);
    def(
        &mut t,
        &mut s,
        "#pragma pack(push, 1)\nstruct a { char c; double d; };\n#pragma pack(push)\n#pragma pack(2)\nstruct b { char c; double d; };\n#pragma pack(pop)\nstruct c { char c; double d; };\n#pragma pack(pop)\nstruct d { char c; double d; };\n#pragma pack(4)\nstruct e { char c; double d; };\n#pragma pack()\nstruct f { char c; double d; };\n#pragma once\n",
    );
    let sizes: Vec<u64> = ["a", "b", "c", "d", "e", "f"].iter().map(|n| size(&t, &s, n).0).collect();
    assert_eq!(sizes, [9, 10, 9, 16, 12, 16]);
}

#[test]
fn pragma_pack_does_not_outlive_one_cdef_call() {
    // LuaJIT resets the pack stack for every parse (cp_init).
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(&mut t, &mut s, "#pragma pack(1)\n");
    def(&mut t, &mut s, "struct a { char c; int i; };");
    assert_eq!(size(&t, &s, "a"), (8, 4));
}

#[test]
fn qualifiers_anywhere_and_ignored_keywords() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    let bad = "static __inline int q(void); __attribute__((noreturn)) void die(void); register_t;";
    assert!(cdef(&mut t, &mut s, bad, &[]).is_err());
    // `register_t` names nothing, so the whole text fails and declares nothing.
    assert!(s.function("die").is_none());
    def(
        &mut t,
        &mut s,
        "__extension__ extern const volatile int cv; char const * __restrict p; static __inline int q(void);
         __attribute__((visibility(\"default\"), deprecated, noreturn)) void die(const char *restrict fmt) __attribute__((__nothrow__, __leaf__));
         extern int __declspec(dllimport) imp; int __attribute__((format(printf, 1, 2), nonnull((1)))) pf(const char *, ...);",
    );
    assert_eq!(t.display(s.variable("cv").unwrap().ty), "const volatile int");
    assert_eq!(t.display(s.variable("p").unwrap().ty), "const char *");
    assert!(s.function("die").is_some() && s.function("pf").is_some() && s.variable("imp").is_some());
}

#[test]
fn complex_long_double_and_msvc_integer_spellings() {
    let (mut t, mut s) = setup(Target::X86_WIN);
    assert_eq!(show(&mut t, &mut s, "double complex"), "complex");
    assert_eq!(show(&mut t, &mut s, "float _Complex"), "complex float");
    assert_eq!(show(&mut t, &mut s, "__complex__ double"), "complex");
    assert_eq!(show(&mut t, &mut s, "long double"), "long double");
    assert_eq!(show(&mut t, &mut s, "long double[2]"), "long double [2]");
    assert_eq!(show(&mut t, &mut s, "unsigned __int64"), "unsigned long long");
    assert_eq!(show(&mut t, &mut s, "__int8"), "signed char");
    assert_eq!(show(&mut t, &mut s, "__int16"), "short");
    let q = parse_type(&mut t, &mut s, "double _Complex", &[]).unwrap();
    assert_eq!(t.get(q.id), &CType::Complex(FloatKind::Double));
}

#[test]
fn mode_attribute_resizes_integers() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(
        &mut t,
        &mut s,
        "typedef int i8 __attribute__((mode(QI))); typedef unsigned u64 __attribute__((__mode__(__DI__)));",
    );
    assert_eq!(show(&mut t, &mut s, "i8"), "signed char");
    assert_eq!(show(&mut t, &mut s, "u64"), "unsigned long");
}

#[test]
fn comments_and_line_directives() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(&mut t, &mut s, "// c++ comment\n/* c\ncomment */ int a; # 100 \"x.h\"\nint b;\n#line 7\nint c;");
    let e = err(&mut t, &mut s, "int x;\n#line 50\nint y\nint z;");
    assert_eq!(e, "51:1: ';' expected near 'int'");
}

#[test]
fn identical_redeclarations_are_fine_conflicting_tags_and_constants_are_not() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    let text = "typedef int myint; int f(int a); struct s { int x; struct { int y; } in; }; enum e { A, B }; extern int v; static const int K = 3;";
    def(&mut t, &mut s, text);
    def(&mut t, &mut s, text);
    def(&mut t, &mut s, "int f(int other_name);");
    assert_eq!(err(&mut t, &mut s, "struct s { long x; };"), "1:8: attempt to redefine 's'");
    assert_eq!(err(&mut t, &mut s, "union s;"), "1:7: attempt to redefine 's'");
    assert_eq!(err(&mut t, &mut s, "enum e { A, C };"), "1:6: attempt to redefine 'e'");
    assert_eq!(err(&mut t, &mut s, "enum { B = 7 };"), "1:8: attempt to redefine 'B'");
    assert_eq!(err(&mut t, &mut s, "static const int K = 4;"), "1:18: attempt to redefine 'K'");
}

#[test]
fn conflicting_typedef_function_and_variable_redeclarations_keep_the_first() {
    // LuaJIT (cp_decl_multi) ignores a typedef, function or extern declaration of a name
    // already declared: `typedef int t; typedef long t;` leaves `t` an int, and real headers
    // (`typedef unsigned int size_t;`) depend on it.
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(&mut t, &mut s, "typedef int myint; int f(int a); extern int v; enum { A = 1 };");
    let types = t.len();
    def(&mut t, &mut s, "typedef long myint; double f(int); extern long v; typedef unsigned int size_t;");
    def(&mut t, &mut s, "typedef struct { long a; } myint; int A(int); typedef char f;");
    assert_eq!(t.len(), types, "an ignored redeclaration leaves no type behind");
    assert_eq!(show(&mut t, &mut s, "myint"), "int");
    assert_eq!(show(&mut t, &mut s, "size_t"), "unsigned long");
    assert_eq!(t.display(QualType::plain(s.function("f").unwrap().ty)), "int (int)");
    assert_eq!(t.display(s.variable("v").unwrap().ty), "int");
    assert_eq!(s.constant("A").unwrap().value, 1);
}

#[test]
fn glibc_asm_redeclaration_is_accepted_and_keeps_the_first_symbol() {
    // glibc's preprocessed stdio.h redeclares fscanf with an `__asm__` label; LuaJIT keeps the
    // first declaration, so its symbol stays `fscanf` (a label on the first one would stay too).
    let (mut t, mut s) = setup(Target::X64_SYSV);
    let stdio = "typedef struct _IO_FILE FILE;\n\
        extern int fscanf (FILE *__restrict __stream, const char *__restrict __format, ...);\n\
        extern int fscanf (FILE *__restrict __stream, const char *__restrict __format, ...) __asm__ (\"\" \"__isoc99_fscanf\");\n\
        extern int sscanf (const char *__s, const char *__format, ...) __asm__ (\"\" \"__isoc99_sscanf\");\n\
        extern int sscanf (const char *__s, const char *__format, ...);";
    def(&mut t, &mut s, stdio);
    assert_eq!(s.function("fscanf").unwrap().asm_name, None);
    assert_eq!(s.function("sscanf").unwrap().asm_name.as_deref(), Some("__isoc99_sscanf"));
}

#[test]
fn failed_cdef_leaves_no_new_name() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(&mut t, &mut s, "struct later;");
    let later = s.tag(&t, TagKind::Struct, "later").unwrap();
    let e = err(
        &mut t,
        &mut s,
        "typedef int t1; struct later { int x; }; struct fresh { int y; }; enum { K1 = 5 }; int f1(void); oops",
    );
    assert!(e.ends_with("declaration specifier expected near 'oops'"), "{e}");
    assert!(s.typedef("t1").is_none() && s.constant("K1").is_none() && s.function("f1").is_none());
    assert!(s.tag(&t, TagKind::Struct, "fresh").is_none());
    assert!(t.record_body(later).is_none(), "a record completed by a failed cdef is incomplete again");
    def(&mut t, &mut s, "struct later { int x; }; typedef int t1;");
}

#[test]
fn parse_type_rejects_names_and_unknown_tags_but_accepts_bodies() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    let e = parse_type(&mut t, &mut s, "int x", &[]).unwrap_err();
    assert_eq!(e.to_string(), "1:5: '<eof>' expected near 'x'");
    let e = parse_type(&mut t, &mut s, "struct nope *", &[]).unwrap_err();
    assert_eq!(e.to_string(), "1:8: undeclared or implicit tag 'nope'");
    let q = parse_type(&mut t, &mut s, "struct { int x; double y; }", &[]).unwrap();
    assert_eq!(t.size_of(q.id).unwrap(), 16);
    parse_type(&mut t, &mut s, "enum { RED, GREEN }", &[]).unwrap();
    assert_eq!(s.constant("GREEN").unwrap().value, 1);
}

#[test]
fn dollar_parameters_stand_for_types_numbers_and_names() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    let int = QualType::plain(t.int(IntKind::Int));
    let q = parse_type(&mut t, &mut s, "$ *[$]", &[CParam::Type(int), CParam::Int(5)]).unwrap();
    assert_eq!(t.display(q), "int *[5]");
    cdef(
        &mut t,
        &mut s,
        "struct $ { $ $; }; enum { V = $ };",
        &[CParam::Name("pt".into()), CParam::Type(int), CParam::Name("x".into()), CParam::Int(-3)],
    )
    .unwrap();
    assert_eq!(offset(&t, &s, "pt", "x"), 0);
    assert_eq!(s.constant("V").unwrap().value, -3);
    let e = parse_type(&mut t, &mut s, "$ *", &[]).unwrap_err();
    assert_eq!(e.to_string(), "1:1: wrong number of type parameters");
    let e = parse_type(&mut t, &mut s, "int", &[CParam::Int(1)]).unwrap_err();
    assert_eq!(e.to_string(), "1:4: wrong number of type parameters");
    let e = parse_type(&mut t, &mut s, "$", &[CParam::Int(1)]).unwrap_err();
    assert_eq!(e.to_string(), "1:1: declaration specifier expected near '$'");
}

/// Issue 14 §2.9: `T[?]` and `T[]` have no size but have their element's alignment, which
/// every object of them needs (a VLA object was allocated at 8 bytes whatever its element).
#[test]
fn arrays_without_a_length_have_their_elements_alignment() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    cdef(&mut t, &mut s, "typedef struct __attribute__((aligned(64))) { char c; } a64;", &[]).unwrap();
    for (decl, align) in [("a64[?]", 64), ("a64[]", 64), ("double[?]", 8), ("char[?]", 1)] {
        let q = parse_type(&mut t, &mut s, decl, &[]).unwrap();
        assert_eq!(t.align_of(q.id), Ok(align), "{decl}");
        assert!(t.size_of(q.id).is_err(), "{decl} has no size");
    }
}

/// gcc and LuaJIT give a typedef or type name its `aligned(n)`, raised or lowered, and every
/// struct member of that type takes it (gcc 12 `-m64` and `-m32`, and LuaJIT, print the
/// numbers below; a `packed` record still packs it).
#[test]
fn aligned_typedefs_and_type_names_take_their_alignment() {
    for target in [Target::X64_SYSV, Target::X86_LINUX] {
        let (mut t, mut s) = setup(target);
        def(
            &mut t,
            &mut s,
            "typedef int __attribute__((aligned(32))) i32a; typedef int i32b __attribute__((aligned(16)));
             typedef double __attribute__((aligned(4))) d4; typedef int __attribute__((aligned)) i16;
             typedef char *__attribute__((aligned(16))) p16; typedef int __attribute__((aligned(4))) i4;
             struct s1 { char c; i32a x; }; struct s2 { char c; d4 x; }; struct s3 { char c; p16 p; };
             struct s4 { char c; i32b x; } __attribute__((packed));",
        );
        let ty = |s: &CScope, n: &str| s.typedef(n).unwrap().id;
        let l = |t: &TypeTable, id| t.layout(id).map(|l| (l.size, l.align)).unwrap();
        assert_eq!([l(&t, ty(&s, "i32a")), l(&t, ty(&s, "i16")), l(&t, ty(&s, "d4"))], [(4, 32), (4, 16), (8, 4)]);
        assert_eq!((size(&t, &s, "s1"), offset(&t, &s, "s1", "x")), ((64, 32), 32), "{target}");
        assert_eq!((size(&t, &s, "s2"), offset(&t, &s, "s2", "x")), ((12, 4), 4), "{target}");
        assert_eq!((size(&t, &s, "s3"), offset(&t, &s, "s3", "p")), ((32, 16), 16), "{target}");
        assert_eq!((size(&t, &s, "s4"), offset(&t, &s, "s4", "x")), ((5, 1), 1), "{target}");
        // The type's own alignment changes nothing: the same type.
        assert_eq!(ty(&s, "i4"), t.int(IntKind::Int));
        // An aligned copy reads, prints and converts as its type.
        assert_eq!(t.display(s.typedef("i32a").unwrap()), "int");
        let q = parse_type(&mut t, &mut s, "int __attribute__((aligned(8)))", &[]).unwrap();
        assert_eq!(l(&t, q.id), (4, 8));
        let q = parse_type(&mut t, &mut s, "int __attribute__((aligned(8))) [10]", &[]).unwrap();
        assert_eq!(l(&t, q.id), (40, 8));
        // A struct keeps its own alignment: another one would be another struct.
        def(&mut t, &mut s, "typedef struct __attribute__((aligned(64))) { char c; } a64;");
        def(&mut t, &mut s, "typedef __attribute__((aligned(32))) struct { char c; } b32;");
        assert_eq!(t.align_of(s.typedef("a64").unwrap().id), Ok(64));
        assert_eq!(t.align_of(s.typedef("b32").unwrap().id), Ok(32));
        let e = err(&mut t, &mut s, "struct plain { int x; }; typedef struct plain __attribute__((aligned(16))) p16s;");
        assert!(e.ends_with("aligned(16) on 'struct plain' is not supported"), "{e}");
    }
}

/// Issue 14 §3: a value that cannot be a parameter is an error only where a `$` reaches it
/// (LuaJIT's `cp_param`); unreached, it is a surplus parameter like any other.
#[test]
fn an_invalid_parameter_is_an_error_where_a_dollar_reaches_it() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    let e = parse_type(&mut t, &mut s, "int[$]", &[CParam::Invalid]).unwrap_err();
    assert_eq!(e.to_string(), "1:5: type parameter expected");
    let e = parse_type(&mut t, &mut s, "int", &[CParam::Invalid]).unwrap_err();
    assert_eq!(e.to_string(), "1:4: wrong number of type parameters");
    let e = cdef(&mut t, &mut s, "typedef int $;", &[CParam::Invalid]).unwrap_err();
    assert_eq!(e.message, TYPE_PARAM_EXPECTED);
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    let deep = format!("int {}x{};", "(".repeat(5000), ")".repeat(5000));
    assert!(err(&mut t, &mut s, &deep).ends_with("chunk has too many syntax levels"));
    let deep = format!("enum {{ A = {}1{} }};", "(".repeat(5000), ")".repeat(5000));
    assert!(err(&mut t, &mut s, &deep).ends_with("chunk has too many syntax levels"));
    let deep = format!("{}{}", "struct { ".repeat(3000), "int x; } a; ".repeat(3000));
    assert!(err(&mut t, &mut s, &deep).ends_with("chunk has too many syntax levels"));
    let stars = format!("int {}p;", "*".repeat(1000));
    assert!(err(&mut t, &mut s, &stars).ends_with("chunk has too many syntax levels"));
}

#[test]
fn find_member_reaches_through_anonymous_members_with_offsets() {
    let (mut t, mut s) = setup(Target::X86_WIN);
    def(&mut t, &mut s, "struct v { int kind; union { struct { short lo, hi; }; const double d; }; };");
    let v = s.tag(&t, TagKind::Struct, "v").unwrap();
    let hi = find_member(&t, v, "hi").unwrap();
    assert_eq!(hi.offset, 10);
    assert_eq!(t.display(find_member(&t, v, "d").unwrap().ty), "const double");
    assert!(find_member(&t, v, "nope").is_none());
}

#[test]
fn typedef_of_identical_anonymous_struct_may_be_redeclared() {
    // LuaJIT ignores redeclarations; headers pasted twice must keep working.
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(&mut t, &mut s, "typedef struct { int quot; int rem; } div_t; div_t div(int, int);");
    let first = s.typedef("div_t").unwrap();
    def(&mut t, &mut s, "typedef struct { int quot; int rem; } div_t; div_t div(int, int);");
    assert_eq!(s.typedef("div_t").unwrap(), first);
    def(&mut t, &mut s, "typedef struct { int quot; long rem; } div_t;");
    assert_eq!(s.typedef("div_t").unwrap(), first, "a conflicting one is ignored");
}

#[test]
fn static_const_members_and_member_enums_are_in_the_records_namespace() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(
        &mut t,
        &mut s,
        "struct s { static const int K = 1 << 4 | 1, J = -2; static const unsigned char U = 300; int x;
           enum { EA = 3, EB }; enum named { EN = 9 } e; struct { static const long long DEEP = 1LL << 40; int y; }; };",
    );
    let id = s.tag(&t, TagKind::Struct, "s").unwrap();
    let value = |name| find_constant(&t, id, name).map(|c| c.value);
    assert_eq!(
        [value("K"), value("J"), value("U"), value("EB"), value("DEEP")],
        [Some(17), Some(-2), Some(44), Some(4), Some(1 << 40)]
    );
    assert_eq!(t.display(find_constant(&t, id, "U").unwrap().ty), "const unsigned char");
    // A named member enum's enumerators and real members are not constants of the record;
    // static members are not global names, enumerators are.
    assert_eq!([value("EN"), value("x"), value("e")], [None, None, None]);
    assert_eq!((s.constant("K"), s.constant("EB").map(|c| c.value)), (None, Some(4)));
    // Constants take no room.
    assert_eq!((size(&t, &s, "s").0, offset(&t, &s, "s", "y")), (12, 8));
    // A second identical body is fine, one with another constant value is not.
    def(&mut t, &mut s, "struct t { static const int K = 1; int x; }; struct t { static const int K = 1; int x; };");
    assert_eq!(err(&mut t, &mut s, "struct t { static const int K = 2; int x; };"), "1:8: attempt to redefine 't'");
    // Non-constant or non-integer static members are LuaJIT's "invalid C type".
    assert_eq!(err(&mut t, &mut s, "struct u { static int k = 1; };"), "1:25: invalid C type");
    assert_eq!(err(&mut t, &mut s, "struct u { static const double k = 1; };"), "1:34: invalid C type");
}

#[test]
fn alignof_has_gccs_and_c11s_spellings() {
    let (mut t, mut s) = setup(Target::X86_LINUX);
    def(&mut t, &mut s, "static const int A = __alignof__(double), B = __alignof(long long), C = _Alignof(double);");
    let v = |n| s.constant(n).unwrap().value;
    assert_eq!((v("B"), v("C")), (v("A"), v("A")));
    assert_eq!(show(&mut t, &mut s, "int[_Alignof(short)]"), "int [2]");
}

#[test]
fn define_lines_with_integer_constant_expressions_become_constants() {
    let (mut t, mut s) = setup(Target::X64_SYSV);
    def(
        &mut t,
        &mut s,
        "enum { E = 4 };
         #define D_DEC 42
         #define D_NEG (-1)
         #define D_EXPR (D_DEC * 2 + E)   /* a comment */
         #define D_HEX 0x80000000
         #define D_BIG (1ULL << 63)
         #define D_SIZE sizeof(long) // another
         #define D_CAST ((unsigned char)0x1ff)
         #define D_FUNC(x) ((x) + 1)
         #define D_PAREN (2)
         #define D_STR \"text\"
         #define D_FLOAT 3.14
         #define D_NAME strlen
         #define D_EMPTY
         #define D_TWO 1 2
         #define D_NOTCONST (abs)
         int abs(int);
         #define D_DEC 42
         struct after { int x[D_DEC]; };",
    );
    let v = |n: &str| s.constant(n).map(|c| (c.value, t.display(c.ty)));
    assert_eq!(v("D_DEC"), Some((42, "int".into())));
    assert_eq!(v("D_NEG"), Some((-1, "int".into())));
    assert_eq!(v("D_EXPR"), Some((88, "int".into())));
    assert_eq!(v("D_HEX"), Some((0x8000_0000, "unsigned int".into())));
    assert_eq!(v("D_BIG").map(|(x, ty)| (x as u64, ty)), Some((1 << 63, "unsigned long long".into())));
    assert_eq!(v("D_SIZE").map(|c| c.0), Some(8));
    assert_eq!(v("D_CAST"), Some((255, "unsigned char".into())));
    assert_eq!(v("D_PAREN").map(|c| c.0), Some(2));
    for skipped in ["D_FUNC", "D_STR", "D_FLOAT", "D_NAME", "D_EMPTY", "D_TWO", "D_NOTCONST"] {
        assert!(s.symbol(skipped).is_none(), "{skipped} is not a constant");
    }
    assert_eq!(size(&t, &s, "after").0, 168);
    // Defining a name again with another value, or a name that is already a function, fails.
    assert_eq!(err(&mut t, &mut s, "#define D_DEC 43"), "1:9: attempt to redefine 'D_DEC'");
    assert_eq!(err(&mut t, &mut s, "#define abs 1"), "1:9: attempt to redefine 'abs'");
    // Backslash-newlines join a directive's lines; the next declaration is not part of it.
    def(&mut t, &mut s, "#define D_SPLICED \\\n  (1 << \\\r\n 3)\nint after_splice;\n#define D_FN_SPLICED(x) \\\n ((x) + 1)\nint after_fn;");
    assert_eq!(s.constant("D_SPLICED").map(|c| c.value), Some(8));
    assert!(s.variable("after_splice").is_some() && s.variable("after_fn").is_some());
    assert!(s.symbol("D_FN_SPLICED").is_none());
    def(&mut t, &mut s, "#pragma pack(push, \\\n 1)\nstruct spliced_pack { char c; int x; };\n#pragma pack(pop)");
    assert_eq!(size(&t, &s, "spliced_pack"), (5, 1));
    // Other directives stay errors, as in LuaJIT.
    assert_eq!(err(&mut t, &mut s, "#undef D_DEC"), "1:2: unexpected symbol near 'undef'");
}

#[test]
fn vector_types_are_laid_out_as_luajit_lays_them_out() {
    let (mut t, mut s) = setup(Target::X86_LINUX);
    let layout = |t: &mut TypeTable, s: &mut CScope, src: &str| {
        let q = parse_type(t, s, src, &[]).unwrap_or_else(|e| panic!("{src}: {e}"));
        let l = t.layout(q.id).unwrap();
        (t.display(q), l.size, l.align)
    };
    let v = |d: &str, size, align| (d.to_string(), size, align);
    // The size is rounded down to a power of two; the alignment is the size up to 16, at
    // least the element's (i386 System V: even for double, whose member alignment is 4).
    assert_eq!(
        layout(&mut t, &mut s, "int __attribute__((vector_size(16)))"),
        v("int __attribute__((vector_size(16)))", 16, 16)
    );
    assert_eq!(
        layout(&mut t, &mut s, "double __attribute__((vector_size(32)))"),
        v("double __attribute__((vector_size(32)))", 32, 16)
    );
    assert_eq!(
        layout(&mut t, &mut s, "float __attribute__((vector_size(12)))"),
        v("float __attribute__((vector_size(8)))", 8, 8)
    );
    assert_eq!(
        layout(&mut t, &mut s, "__attribute__((vector_size(8))) short"),
        v("short __attribute__((vector_size(8)))", 8, 8)
    );
    assert_eq!(
        layout(&mut t, &mut s, "float __attribute__((mode(V4SF)))"),
        v("float __attribute__((vector_size(16)))", 16, 16)
    );
    assert_eq!(
        layout(&mut t, &mut s, "int __attribute__((mode(V2DI)))"),
        v("long long __attribute__((vector_size(16)))", 16, 16)
    );
    assert_eq!(
        layout(&mut t, &mut s, "const int __attribute__((vector_size(16)))"),
        v("const int __attribute__((vector_size(16)))", 16, 16)
    );
    // Smaller than the element, or of bool: no vector (LuaJIT ignores the attribute).
    assert_eq!(layout(&mut t, &mut s, "int __attribute__((vector_size(2)))"), v("int", 4, 4));
    assert_eq!(layout(&mut t, &mut s, "bool __attribute__((vector_size(16)))"), v("bool", 1, 1));
    // A typedef'd vector in arrays, structs and behind pointers.
    def(
        &mut t,
        &mut s,
        "typedef float v4sf __attribute__((vector_size(16))); struct sv { char c; v4sf v; }; void f(v4sf, v4sf *);",
    );
    assert_eq!(layout(&mut t, &mut s, "v4sf[2]"), v("float __attribute__((vector_size(16))) [2]", 32, 16));
    assert_eq!((size(&t, &s, "sv"), offset(&t, &s, "sv", "v")), ((32, 16), 16));
    assert_eq!(show(&mut t, &mut s, "v4sf *"), "float __attribute__((vector_size(16))) *");
    // A vector is its own type, not the array of the same elements, and does not decay.
    let vec = parse_type(&mut t, &mut s, "v4sf", &[]).unwrap();
    let arr = parse_type(&mut t, &mut s, "float[4]", &[]).unwrap();
    assert!(t.is_vector(vec.id) && !t.is_vector(arr.id) && vec != arr);
    assert_eq!(func(&t, &s, "f").params[0].ty, vec);
}

/// Plans `int f(<src>)`.
fn plan_as_param(t: &mut TypeTable, s: &mut CScope, src: &str) -> Result<crate::CallPlan, crate::PlanError> {
    let int = parse_type(t, s, "int", &[]).unwrap();
    let q = parse_type(t, s, src, &[]).unwrap_or_else(|e| panic!("{src}: {e}"));
    crate::plan_call(t, &Signature::new(int, vec![q], false, CallConv::Cdecl), &[])
}

/// A call taking `src` by value, and one returning it, are refused as unsupported, with
/// `says` in the message.
fn assert_refused_by_value(t: &mut TypeTable, s: &mut CScope, target: Target, src: &str, says: &str) {
    let q = parse_type(t, s, src, &[]).unwrap_or_else(|e| panic!("{src}: {e}"));
    let returned = crate::plan_call(t, &Signature::new(q, vec![], false, CallConv::Cdecl), &[]);
    for e in [plan_as_param(t, s, src).unwrap_err(), returned.unwrap_err()] {
        assert!(matches!(e, crate::PlanError::Unsupported { .. }), "{target} {src}: {e:?}");
        assert!(e.to_string().contains(says), "{e}");
    }
}

#[test]
fn calls_passing_vectors_by_value_plan_them_as_values_not_as_arrays() {
    for target in Target::ALL {
        let (mut t, mut s) = setup(target);
        def(&mut t, &mut s, "typedef int v4si __attribute__((vector_size(16))); struct holds { int n; v4si v[2]; };");
        for by_value in ["v4si", "struct holds"] {
            if target.arch == crate::Arch::X86 {
                // i386: -mmmx/-msse decide (abi::vector_refusal).
                assert_refused_by_value(&mut t, &mut s, target, by_value, "-msse");
            } else {
                // A vector parameter does not decay to a pointer as an array does.
                let plan =
                    plan_as_param(&mut t, &mut s, by_value).unwrap_or_else(|e| panic!("{target} {by_value}: {e}"));
                assert_ne!(plan.args[0].value, crate::ValueKind::Pointer, "{target} {by_value}");
            }
        }
        // Behind a pointer a vector is only an address.
        assert!(plan_as_param(&mut t, &mut s, "v4si *").is_ok());
        // A function may return a vector (not an array: `int a4[4]; a4 f(void);` stays invalid).
        def(&mut t, &mut s, "v4si returns_vector(v4si);");
        def(&mut t, &mut s, "typedef int a4[4];");
        assert!(err(&mut t, &mut s, "a4 returns_array(void);").contains("invalid C type"));
    }
}

#[test]
fn integer_modes_ti_and_oi_make_16_and_32_byte_integers_aligned_to_16() {
    // LuaJIT `cp_decl_mode`/`cp_decl_intern`: mode(TI) and mode(OI) on any integer type make an
    // integer of 16 or 32 bytes, keeping the signedness, its alignment capped at 16; printed
    // `int128_t`, `uint128_t`, `int256_t`, `uint256_t`. Checked against luajit 2.1.
    for target in Target::ALL {
        let (mut t, mut s) = setup(target);
        // i386 Linux aligns no scalar beyond 4 (LuaJIT `cp_field_align` caps such members).
        let a16 = if target == Target::X86_LINUX { 4 } else { 16 };
        def(
            &mut t,
            &mut s,
            "typedef int i128 __attribute__((mode(TI))); typedef unsigned u128 __attribute__((__mode__(__TI__)));
             typedef long long i256 __attribute__((mode(OI))); struct wt { char c; i128 x; char d; u128 y[2]; };",
        );
        let laid = |t: &mut TypeTable, s: &mut CScope, src: &str| {
            let q = parse_type(t, s, src, &[]).unwrap_or_else(|e| panic!("{src}: {e}"));
            let l = t.layout(q.id).unwrap();
            (t.display(q), l.size, l.align)
        };
        assert_eq!(laid(&mut t, &mut s, "i128"), ("int128_t".into(), 16, a16), "{target}");
        assert_eq!(laid(&mut t, &mut s, "u128"), ("uint128_t".into(), 16, a16), "{target}");
        assert_eq!(laid(&mut t, &mut s, "i256"), ("int256_t".into(), 32, a16), "{target}");
        assert_eq!(laid(&mut t, &mut s, "char __attribute__((mode(TI)))"), ("int128_t".into(), 16, a16));
        assert_eq!(laid(&mut t, &mut s, "unsigned char __attribute__((mode(OI)))"), ("uint256_t".into(), 32, a16));
        assert_eq!(laid(&mut t, &mut s, "const i128 *").0, "const int128_t *");
        // Interned: one type per size and signedness.
        let a = parse_type(&mut t, &mut s, "i128", &[]).unwrap();
        let b = parse_type(&mut t, &mut s, "short __attribute__((mode(TI)))", &[]).unwrap();
        assert_eq!(a, b);
        // In a struct: gcc's and MSVC's rules agree (natural alignment 16; 4 on i386 Linux).
        let (wt_size, offsets) = if a16 == 4 { ((56, 4), (4, 20, 24)) } else { ((80, 16), (16, 32, 48)) };
        assert_eq!(size(&t, &s, "wt"), wt_size, "{target}");
        assert_eq!(
            (offset(&t, &s, "wt", "x"), offset(&t, &s, "wt", "d"), offset(&t, &s, "wt", "y")),
            offsets,
            "{target}"
        );
        // Floating modes of those sizes change nothing, as in LuaJIT.
        assert_eq!(laid(&mut t, &mut s, "double __attribute__((mode(TI)))").0, "double");
        assert_eq!(laid(&mut t, &mut s, "float __attribute__((mode(TF)))").0, "float");
        // Not an integer to the rest of the parser: no bit-fields, no constants of it.
        assert_eq!(err(&mut t, &mut s, "struct wb { i128 x : 3; };"), "1:20: invalid value near ':'");
        assert!(err(&mut t, &mut s, "static const i128 K = 1;").contains("invalid C type"));
    }
}

#[test]
fn wide_integers_by_value_are_planned_only_where_a_compiler_passes_them() {
    // A 16-byte integer by value, and a record holding one, is gcc's and mingw's __int128 on
    // x86-64 (the rules are in tests/rules_sysv.rs and rules_win64.rs); gcc -m32 has none
    // and no compiler has a 32-byte one: those are refused, naming the reason, in a
    // parameter and a result; behind a pointer every one is fine.
    for target in Target::ALL {
        let (mut t, mut s) = setup(target);
        def(
            &mut t,
            &mut s,
            "typedef int i128 __attribute__((mode(TI))); typedef int i256 __attribute__((mode(OI)));
             struct hw { int n; i128 v; };",
        );
        def(&mut t, &mut s, "struct hw256 { int n; i256 v; };");
        if target.arch == crate::Arch::X86_64 {
            assert!(plan_as_param(&mut t, &mut s, "i128").is_ok(), "{target}");
            assert!(plan_as_param(&mut t, &mut s, "struct hw").is_ok(), "{target}");
        } else {
            assert_refused_by_value(&mut t, &mut s, target, "i128", "no __int128");
            assert_refused_by_value(&mut t, &mut s, target, "struct hw", "no __int128");
        }
        assert_refused_by_value(&mut t, &mut s, target, "i256", "mode(OI)");
        assert_refused_by_value(&mut t, &mut s, target, "struct hw256", "mode(OI)");
        for behind in ["i128 *", "i256 *", "struct hw *", "struct hw256 *"] {
            assert!(plan_as_param(&mut t, &mut s, behind).is_ok());
        }
    }
}

#[test]
fn wide_int_constructor_refuses_other_sizes() {
    // The check must be able to fail: 8 bytes is an ordinary integer, 64 no mode makes.
    let mut t = TypeTable::new(Target::X64_SYSV);
    assert!(t.try_wide_int(8, true).is_err());
    assert!(t.try_wide_int(64, false).is_err());
    let a = t.try_wide_int(16, true).unwrap();
    assert_ne!(a, t.try_wide_int(16, false).unwrap());
    assert_eq!(t.layout(a).unwrap().size, 16);
}

#[test]
fn bool_written_with_an_integer_keyword_takes_that_keywords_size() {
    // LuaJIT `cp_decl_spec`: `_Bool` has no size of its own, `bool` has 1; `int`, `__int16`,
    // `__int64` give theirs, so `_Bool int` is a 4-byte bool (printed `bool`), natural
    // alignment (8 bytes: 4 on i386 Linux, as long long). Checked against luajit 2.1.
    for target in Target::ALL {
        let (mut t, mut s) = setup(target);
        let laid = |t: &mut TypeTable, s: &mut CScope, src: &str| {
            let q = parse_type(t, s, src, &[]).unwrap_or_else(|e| panic!("{src}: {e}"));
            let l = t.layout(q.id).unwrap();
            (t.display(q), l.size, l.align)
        };
        let a8 = if target == Target::X86_LINUX { 4 } else { 8 };
        for (src, size, align) in [
            ("_Bool int", 4, 4),
            ("int _Bool", 4, 4),
            ("signed _Bool int", 4, 4),
            ("unsigned int _Bool", 4, 4),
            ("_Bool __int16", 2, 2),
            ("_Bool __int32", 4, 4),
            ("_Bool __int64", 8, a8),
            ("_Bool __int8", 1, 1),
            ("_Bool", 1, 1),
            ("bool _Bool", 1, 1),
            ("_Bool _Bool", 1, 1),
        ] {
            assert_eq!(laid(&mut t, &mut s, src), ("bool".into(), size, align), "{target} {src}");
        }
        // The 1-byte ones are `bool` itself; the wider ones are other types.
        let b = parse_type(&mut t, &mut s, "bool", &[]).unwrap();
        assert_eq!(parse_type(&mut t, &mut s, "_Bool __int8", &[]).unwrap(), b);
        assert_ne!(parse_type(&mut t, &mut s, "_Bool int", &[]).unwrap(), b);
        // In a struct, and as a 1-bit bit-field (LuaJIT: at most 1 bit for any bool).
        def(&mut t, &mut s, "struct bw { char c; _Bool int b; char d; }; struct bb { _Bool int b : 1; int x : 3; };");
        assert_eq!((size(&t, &s, "bw"), offset(&t, &s, "bw", "b")), ((12, 4), 4));
        assert_eq!(size(&t, &s, "bb"), (4, 4));
        assert_eq!(err(&mut t, &mut s, "struct bx { _Bool int b : 2; };"), "1:25: invalid value near ':'");
        // What LuaJIT refuses: `bool` has a size already; char, short, long, float with _Bool.
        for bad in ["_Bool char", "_Bool long", "_Bool short", "_Bool double"] {
            let e = parse_type(&mut t, &mut s, bad, &[]).unwrap_err().to_string();
            assert!(e.contains("invalid C type"), "{bad}: {e}");
        }
        let e = parse_type(&mut t, &mut s, "bool int", &[]).unwrap_err().to_string();
        assert!(e.contains("'<eof>' expected near 'int'"), "{e}");
        // By value, the integer of its size (tests/rules_typed_int.rs has the rules).
        let wb = parse_type(&mut t, &mut s, "_Bool int", &[]).unwrap();
        let plan = crate::plan_call(&t, &Signature::new(wb, vec![wb], false, CallConv::Cdecl), &[]).unwrap();
        assert_eq!(plan.ret.value, crate::ValueKind::TypedInt { size: 4 }, "{target}");
    }
    // The constructor refuses sizes no keyword gives (must be able to fail).
    let mut t = TypeTable::new(Target::X64_SYSV);
    assert!(t.try_wide_bool(3).is_err() && t.try_wide_bool(16).is_err());
    assert_eq!(t.try_wide_bool(1).unwrap(), t.bool());
}

#[test]
fn ptr32_makes_a_4_byte_pointer_on_64_bit_targets_only() {
    // LuaJIT `cp_decl_attributes`/`cp_declarator` (LJ_64): `__ptr32` before or after a `*`
    // makes that pointer 4 bytes, aligned to 4, printed `*__ptr32`; `__ptr64` after it undoes
    // it; left on an integer base it is mode(SI)/mode(DI). Checked against luajit 2.1 (x64).
    for target in [Target::X64_SYSV, Target::X64_WIN] {
        let (mut t, mut s) = setup(target);
        let laid = |t: &mut TypeTable, s: &mut CScope, src: &str| {
            let q = parse_type(t, s, src, &[]).unwrap_or_else(|e| panic!("{src}: {e}"));
            let l = t.layout(q.id).unwrap();
            (t.display(q), l.size, l.align)
        };
        let p = |d: &str, size, align| (d.to_string(), size, align);
        assert_eq!(laid(&mut t, &mut s, "int * __ptr32"), p("int *__ptr32", 4, 4));
        assert_eq!(laid(&mut t, &mut s, "int __ptr32 *"), p("int *__ptr32", 4, 4));
        assert_eq!(laid(&mut t, &mut s, "void * __ptr32"), p("void *__ptr32", 4, 4));
        assert_eq!(laid(&mut t, &mut s, "int * __ptr32 *"), p("int *__ptr32 *", 8, 8));
        assert_eq!(laid(&mut t, &mut s, "int * __ptr32 [3]"), p("int *__ptr32 [3]", 12, 4));
        assert_eq!(laid(&mut t, &mut s, "int (* __ptr32)(int)").1, 4);
        assert_eq!(laid(&mut t, &mut s, "int * __ptr32 const"), p("int *__ptr32 const", 4, 4));
        assert_eq!(laid(&mut t, &mut s, "int * __ptr64"), p("int *", 8, 8));
        assert_eq!(laid(&mut t, &mut s, "int * __ptr64 __ptr32").1, 4);
        assert_eq!(laid(&mut t, &mut s, "int * __ptr32 __ptr64").1, 8);
        assert_eq!(laid(&mut t, &mut s, "char __ptr32").0, "int");
        let q = parse_type(&mut t, &mut s, "int * __ptr32", &[]).unwrap();
        assert_ne!(q, parse_type(&mut t, &mut s, "int *", &[]).unwrap(), "a type of its own");
        def(&mut t, &mut s, "struct p32 { char c; int * __ptr32 p; char d; int * __ptr32 q[2]; };");
        assert_eq!(size(&t, &s, "p32"), (20, 4));
        assert_eq!((offset(&t, &s, "p32", "p"), offset(&t, &s, "p32", "d"), offset(&t, &s, "p32", "q")), (4, 8, 12));
        // By value, a 4-byte integer, as LuaJIT passes it (tests/rules_typed_int.rs).
        let plan = crate::plan_call(&t, &Signature::new(q, vec![q], false, CallConv::Cdecl), &[]).unwrap();
        assert_eq!(plan.args[0].value, crate::ValueKind::TypedInt { size: 4 }, "{target}");
    }
    // On 32-bit targets every pointer is 32 bits: `__ptr32` changes nothing (nor `__ptr64`).
    for target in [Target::X86_LINUX, Target::X86_WIN] {
        let (mut t, mut s) = setup(target);
        assert_eq!(show(&mut t, &mut s, "int * __ptr32"), "int *");
        assert_eq!(show(&mut t, &mut s, "int __ptr64"), "int");
        let mut t2 = TypeTable::new(target);
        let int = t2.int(IntKind::Int);
        assert!(t2.try_ptr32_to(int).is_err(), "{target}: no 4-byte pointer type on a 32-bit target");
    }
}
