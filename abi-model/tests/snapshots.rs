//! Reviewable documentation of every target: one curated catalogue of signatures and one of
//! struct layouts, planned on each of the four targets and printed as text.
//!
//! Plan lines read `argN: <value> <where>`: `i32 edi` is a register, `[sp+8]` a stack slot at
//! the call instruction, `xmm0=0..8 + edi=8..12` a value split by byte ranges,
//! `&copy[sp+48] in rdx` a pointer to a caller-made copy; `sx`/`zx` mark caller
//! widening. `ret:` names the return location (`sret via X`: through a buffer whose address
//! is passed in X). The last line gives the argument area's bytes, the stack alignment at the
//! call and, when present, the shadow space, copy area, bytes the callee pops and `al`.

use abi_model::{
    plan_call, ArrayLen, CType, CallConv, Field, FloatKind, FuncType, IntKind, Param, QualType, RecordAttrs,
    RecordKind, Signature, Target, TypeId, TypeTable,
};
use std::collections::HashMap;
use std::fmt::Write;

/// A C type in the catalogues, independent of any target's table.
#[derive(Clone, Debug)]
enum T {
    Void,
    Bool,
    Int(IntKind),
    Float,
    Double,
    LongDouble,
    ComplexFloat,
    ComplexDouble,
    VoidPtr,
    ConstCharPtr,
    Rec(&'static str),
    Array(Box<T>, u64),
    Flexible(Box<T>),
}

use T::{
    Bool, ComplexDouble as CD, ComplexFloat as CF, ConstCharPtr as Str, Double as D, Float as F, Void, VoidPtr as P,
};

const C: T = T::Int(IntKind::Char);
const SC: T = T::Int(IntKind::SChar);
const UC: T = T::Int(IntKind::UChar);
const S: T = T::Int(IntKind::Short);
const US: T = T::Int(IntKind::UShort);
const I: T = T::Int(IntKind::Int);
const U: T = T::Int(IntKind::UInt);
const L: T = T::Int(IntKind::Long);
const UL: T = T::Int(IntKind::ULong);
const LL: T = T::Int(IntKind::LongLong);
const ULL: T = T::Int(IntKind::ULongLong);

fn arr(t: T, n: u64) -> T {
    T::Array(Box::new(t), n)
}

/// One member of a catalogue record.
struct Member {
    name: Option<&'static str>,
    ty: T,
    bits: Option<u32>,
    aligned: Option<u32>,
}

fn m(name: &'static str, ty: T) -> Member {
    Member { name: Some(name), ty, bits: None, aligned: None }
}

fn bits(name: &'static str, ty: T, width: u32) -> Member {
    Member { name: Some(name), ty, bits: Some(width), aligned: None }
}

fn anon_bits(ty: T, width: u32) -> Member {
    Member { name: None, ty, bits: Some(width), aligned: None }
}

fn aligned(name: &'static str, ty: T, n: u32) -> Member {
    Member { name: Some(name), ty, bits: None, aligned: Some(n) }
}

/// A catalogue record: `kind tag { members } attrs`.
struct Rec {
    tag: &'static str,
    kind: RecordKind,
    members: Vec<Member>,
    attrs: RecordAttrs,
}

fn st(tag: &'static str, members: Vec<Member>) -> Rec {
    Rec { tag, kind: RecordKind::Struct, members, attrs: RecordAttrs::default() }
}

fn un(tag: &'static str, members: Vec<Member>) -> Rec {
    Rec { tag, kind: RecordKind::Union, members, attrs: RecordAttrs::default() }
}

fn with(mut r: Rec, attrs: RecordAttrs) -> Rec {
    r.attrs = attrs;
    r
}

/// Records passed by value in the signature catalogue (sizes 1..40, many shapes); their
/// names give the x86-64 size and the member kinds.
fn value_records() -> Vec<Rec> {
    vec![
        st("s1c", vec![m("a", C)]),
        st("s2c", vec![m("a", C), m("b", C)]),
        st("s3c", vec![m("a", C), m("b", C), m("c", C)]),
        st("s4i", vec![m("a", I)]),
        st("s4f", vec![m("a", F)]),
        st("s4s", vec![m("a", S), m("b", S)]),
        st("s5c", vec![m("a", arr(C, 5))]),
        st("s6s", vec![m("a", S), m("b", S), m("c", S)]),
        st("s7c", vec![m("a", arr(C, 7))]),
        st("s8i", vec![m("a", I), m("b", I)]),
        st("s8f", vec![m("a", F), m("b", F)]),
        st("s8d", vec![m("a", D)]),
        st("s8if", vec![m("a", I), m("b", F)]),
        st("s8ll", vec![m("a", LL)]),
        st("s8nest", vec![m("a", T::Rec("s4f")), m("b", F)]),
        st("s12i", vec![m("a", I), m("b", I), m("c", I)]),
        st("s12f", vec![m("a", F), m("b", F), m("c", F)]),
        st("s12ffi", vec![m("a", F), m("b", F), m("c", I)]),
        st("s16ll", vec![m("a", LL), m("b", LL)]),
        st("s16d", vec![m("a", D), m("b", D)]),
        st("s16dl", vec![m("a", D), m("b", LL)]),
        st("s16ld", vec![m("a", LL), m("b", D)]),
        st("s16f", vec![m("a", arr(F, 4))]),
        st("s16cd", vec![m("a", C), m("b", D)]),
        st("s20i", vec![m("a", arr(I, 5))]),
        st("s24d", vec![m("a", D), m("b", D), m("c", D)]),
        st("s32ll", vec![m("a", arr(LL, 4))]),
        st("s40c", vec![m("a", arr(C, 40))]),
        with(st("s5packed", vec![m("a", C), m("b", I)]), RecordAttrs { packed: true, ..RecordAttrs::default() }),
        with(st("s16al", vec![m("a", I)]), RecordAttrs { aligned: Some(16), ..RecordAttrs::default() }),
        st("s8bits", vec![bits("a", U, 3), bits("b", U, 5), m("c", F)]),
        un("u4", vec![m("a", I), m("b", F)]),
        un("u8", vec![m("a", D), m("b", I)]),
        un("u12", vec![m("a", arr(C, 12)), m("b", I)]),
        un("u16", vec![m("a", D), m("b", arr(LL, 2))]),
    ]
}

/// Records whose layouts (not passing) are documented: bit-fields, packing, alignment.
fn layout_only_records() -> Vec<Rec> {
    vec![
        st("int_double", vec![m("a", I), m("b", D)]),
        st("char_ll", vec![m("a", C), m("b", LL)]),
        st("bf_pack", vec![bits("a", U, 3), bits("b", U, 5), bits("c", U, 24)]),
        st("bf_cross", vec![bits("a", U, 30), bits("b", U, 4)]),
        st("bf_char_int", vec![m("a", C), bits("b", I, 4)]),
        st("bf_types", vec![bits("a", S, 4), bits("b", I, 20), m("c", C)]),
        st("bf_zero", vec![bits("a", I, 3), anon_bits(I, 0), bits("b", I, 2)]),
        st("bf_zero_char", vec![m("a", C), anon_bits(I, 0), m("b", C)]),
        st("bf_unnamed", vec![m("a", C), anon_bits(I, 4), m("b", C)]),
        st("bf_wide", vec![bits("a", UC, 1), bits("b", US, 9), bits("c", ULL, 40)]),
        st("bf_bool", vec![bits("a", Bool, 1), bits("b", Bool, 1), m("c", C)]),
        with(
            st("bf_packed", vec![m("a", C), bits("b", I, 30), bits("c", I, 4)]),
            RecordAttrs { packed: true, ..RecordAttrs::default() },
        ),
        with(
            st("pack2", vec![m("a", C), m("b", I), m("c", D)]),
            RecordAttrs { pack: Some(2), ..RecordAttrs::default() },
        ),
        with(st("pack1", vec![m("a", S), m("b", LL)]), RecordAttrs { pack: Some(1), ..RecordAttrs::default() }),
        st("member_aligned", vec![m("a", C), aligned("b", I, 8), m("c", C)]),
        st("flexible", vec![m("n", I), m("d", T::Flexible(Box::new(D)))]),
        st("nested", vec![m("a", C), m("b", T::Rec("s12i")), m("c", C)]),
        un("u_mixed", vec![m("a", C), m("b", D), m("c", arr(S, 5))]),
        un("u_bits", vec![bits("a", U, 3), bits("b", UC, 7)]),
        st("complex_member", vec![m("a", C), m("b", CD), m("c", CF)]),
        st("ptrs", vec![m("a", C), m("b", P), m("c", Str)]),
    ]
}

/// One target's types: the table and the catalogue records defined in it.
struct Types {
    t: TypeTable,
    recs: HashMap<&'static str, TypeId>,
    /// Record tags in definition order, with their C definitions.
    order: Vec<(&'static str, String)>,
}

impl Types {
    fn new(target: Target) -> Types {
        let mut types = Types { t: TypeTable::new(target), recs: HashMap::new(), order: Vec::new() };
        for r in value_records().into_iter().chain(layout_only_records()) {
            types.define(r);
        }
        types
    }

    fn id(&mut self, ty: &T) -> TypeId {
        match ty {
            T::Void => self.t.void(),
            T::Bool => self.t.bool(),
            T::Int(k) => self.t.int(*k),
            T::Float => self.t.float(FloatKind::Float),
            T::Double => self.t.float(FloatKind::Double),
            T::LongDouble => self.t.float(FloatKind::LongDouble),
            T::ComplexFloat => self.t.complex(FloatKind::Float),
            T::ComplexDouble => self.t.complex(FloatKind::Double),
            T::VoidPtr => {
                let v = self.t.void();
                self.t.pointer_to(v)
            }
            T::ConstCharPtr => {
                let c = self.t.int(IntKind::Char);
                self.t.pointer_to(QualType { id: c, quals: abi_model::Quals::CONST })
            }
            T::Rec(tag) => self.recs[tag],
            T::Array(elem, n) => {
                let e = self.id(elem);
                self.t.array_of(e, ArrayLen::Fixed(*n))
            }
            T::Flexible(elem) => {
                let e = self.id(elem);
                self.t.array_of(e, ArrayLen::Flexible)
            }
        }
    }

    fn define(&mut self, r: Rec) {
        let mut fields = Vec::new();
        let mut text = String::new();
        if let Some(n) = r.attrs.pack {
            write!(text, "#pragma pack({n}) ").unwrap();
        }
        write!(text, "{} {} {{", r.kind.keyword(), r.tag).unwrap();
        for member in &r.members {
            let id = self.id(&member.ty);
            text.push(' ');
            self.t.write_decl(id.into(), member.name.unwrap_or(""), &mut text);
            if let Some(w) = member.bits {
                write!(text, " : {w}").unwrap();
            }
            if let Some(n) = member.aligned {
                write!(text, " __attribute__((aligned({n})))").unwrap();
            }
            text.push(';');
            fields.push(Field {
                name: member.name.map(str::to_string),
                ty: id.into(),
                bit_width: member.bits,
                aligned: member.aligned,
                packed: false,
            });
        }
        text.push_str(" }");
        if r.attrs.packed {
            text.push_str(" __attribute__((packed))");
        }
        if let Some(n) = r.attrs.aligned {
            write!(text, " __attribute__((aligned({n})))").unwrap();
        }
        text.push(';');
        let id = self.t.new_record(r.kind, Some(r.tag));
        self.t.define_record(id, fields, r.attrs).unwrap_or_else(|e| panic!("{}: {e}", r.tag));
        self.recs.insert(r.tag, id);
        self.order.push((r.tag, text));
    }
}

/// One catalogue signature: `ret f(params[, ...])`, called with `extra` variadic arguments,
/// under each of `convs` on x86 (x86-64 ignores the keyword and shows it once).
struct Sig {
    ret: T,
    params: Vec<T>,
    variadic: Option<Vec<T>>,
    convs: &'static [CallConv],
}

const CDECL: &[CallConv] = &[CallConv::Cdecl];
const ALL_CONVS: &[CallConv] = &[CallConv::Cdecl, CallConv::Stdcall, CallConv::Fastcall, CallConv::Thiscall];

fn sig(ret: T, params: Vec<T>) -> Sig {
    Sig { ret, params, variadic: None, convs: CDECL }
}

fn va(ret: T, params: Vec<T>, extra: Vec<T>) -> Sig {
    Sig { ret, params, variadic: Some(extra), convs: CDECL }
}

fn every_conv(ret: T, params: Vec<T>) -> Sig {
    Sig { ret, params, variadic: None, convs: ALL_CONVS }
}

/// The curated signature list, the same for every target.
fn signatures() -> Vec<Sig> {
    let mut sigs = vec![
        // Scalars of every width.
        sig(Void, vec![]),
        sig(Bool, vec![Bool]),
        sig(SC, vec![SC, UC]),
        sig(S, vec![S, US]),
        sig(I, vec![I, U]),
        sig(L, vec![L, UL]),
        sig(LL, vec![LL, ULL]),
        sig(F, vec![F]),
        sig(D, vec![D]),
        sig(P, vec![P, Str]),
        // Mixed integers and floats, exhausting the registers.
        sig(D, vec![I, D, I, D]),
        sig(F, vec![F, I, F, I, F]),
        sig(I, vec![I, I, I, I, I, I, I]),
        sig(D, vec![D, D, D, D, D, D, D, D, D]),
        sig(Void, vec![I, F, LL, D, C, S, P, F, D, I]),
        sig(LL, vec![I, LL, I]),
        // Complex.
        sig(CF, vec![CF]),
        sig(CD, vec![CD]),
        sig(CD, vec![I, CD, D]),
    ];
    // Every by-value record, as argument and as return value.
    for r in value_records() {
        sigs.push(sig(T::Rec(r.tag), vec![T::Rec(r.tag)]));
    }
    sigs.extend([
        // Records among registers running out.
        sig(Void, vec![I, I, I, I, I, T::Rec("s16ll"), I]),
        sig(Void, vec![T::Rec("s12ffi"), D, T::Rec("s16dl"), T::Rec("s8d")]),
        sig(T::Rec("s24d"), vec![I, T::Rec("s12i"), D, T::Rec("s40c")]),
        // Varargs.
        va(I, vec![Str], vec![D, I, D]),
        va(I, vec![Str], vec![F, S, C, Bool]),
        va(I, vec![Str], vec![T::Rec("s16d"), T::Rec("s12i")]),
        va(Void, vec![I, D], vec![I, I, I, I, I, I, D]),
        va(D, vec![Str], vec![D, D, D, D, D, D, D, D, D]),
        // The same signatures under every convention (x86).
        every_conv(I, vec![I, I, I]),
        every_conv(D, vec![D, I, LL, I]),
        every_conv(T::Rec("s12i"), vec![P, I]),
        every_conv(T::Rec("s8i"), vec![I, T::Rec("s4i"), I]),
        every_conv(Void, vec![C, S, F, P]),
        every_conv(LL, vec![LL, I]),
        Sig { ret: I, params: vec![I], variadic: Some(vec![D]), convs: ALL_CONVS },
        // Unsupported, shown as the error.
        sig(T::LongDouble, vec![T::LongDouble]),
    ]);
    sigs
}

/// The C declaration of `f` with this signature and convention.
fn c_decl(types: &mut Types, s: &Sig, conv: CallConv) -> String {
    let ret = types.id(&s.ret);
    let params: Vec<Param> = s.params.iter().map(|p| Param { name: None, ty: types.id(p).into() }).collect();
    let f = types.t.function(FuncType { ret: ret.into(), params, variadic: s.variadic.is_some(), conv });
    let mut text = String::new();
    types.t.write_decl(f.into(), "f", &mut text);
    if let Some(extra) = &s.variadic {
        let names: Vec<String> = extra
            .iter()
            .map(|e| {
                let id = types.id(e);
                types.t.display(id.into())
            })
            .collect();
        write!(text, "  called with ({})", names.join(", ")).unwrap();
    }
    text
}

fn plan_text(types: &mut Types, s: &Sig, conv: CallConv) -> String {
    let ret = types.id(&s.ret);
    let params: Vec<QualType> = s.params.iter().map(|p| types.id(p).into()).collect();
    let extra: Vec<QualType> = s.variadic.iter().flatten().map(|e| types.id(e).into()).collect();
    let signature = Signature::new(ret, params, s.variadic.is_some(), conv);
    match plan_call(&types.t, &signature, &extra) {
        Ok(plan) => plan.to_string(),
        Err(e) => format!("  error: {e}"),
    }
}

fn plans_table(target: Target) -> String {
    let mut types = Types::new(target);
    let mut out = String::new();
    writeln!(out, "{target}: where every argument and return value goes").unwrap();
    writeln!(out).unwrap();
    for (tag, text) in &types.order {
        if value_records().iter().any(|r| r.tag == *tag) {
            let id = types.recs[tag];
            let l = types.t.layout(id).unwrap();
            writeln!(out, "{text}  // size {} align {}", l.size, l.align).unwrap();
        }
    }
    let x86 = target.pointer_size() == 4;
    for s in signatures() {
        let convs: Vec<CallConv> = if x86 { s.convs.to_vec() } else { vec![CallConv::Cdecl] };
        for conv in convs {
            writeln!(out).unwrap();
            let decl = c_decl(&mut types, &s, conv);
            if !x86 && s.convs.len() > 1 {
                writeln!(out, "{decl}  (also __stdcall, __fastcall, __thiscall: the keyword is ignored)").unwrap();
            } else {
                writeln!(out, "{decl}").unwrap();
            }
            writeln!(out, "{}", plan_text(&mut types, &s, conv)).unwrap();
        }
    }
    out
}

fn layouts_table(target: Target) -> String {
    let types = Types::new(target);
    let mut out = String::new();
    writeln!(out, "{target}: struct and union layouts (member: byte offset, or bit range from the record's start)")
        .unwrap();
    for (tag, text) in &types.order {
        let id = types.recs[tag];
        let CType::Record(r) = types.t.get(id) else { unreachable!("catalogue records are records") };
        let body = r.body.as_ref().expect("defined");
        writeln!(out).unwrap();
        writeln!(out, "{text}").unwrap();
        writeln!(out, "  size {} align {}", body.layout.size, body.layout.align).unwrap();
        for (field, at) in body.fields.iter().zip(&body.layout.fields) {
            let name = field.name.as_deref().unwrap_or("(unnamed)");
            match at.bits {
                Some(b) => {
                    writeln!(out, "  {name}: bits {}..{}", b.bit_offset, b.bit_offset + u64::from(b.width)).unwrap()
                }
                None => writeln!(out, "  {name}: {}", at.offset).unwrap(),
            }
        }
    }
    out
}

fn snapshot_name(kind: &str, target: Target) -> String {
    format!("{kind}_{}", target.name().replace('-', "_"))
}

#[test]
fn plans_on_every_target() {
    assert!(signatures().len() >= 60);
    for target in Target::ALL {
        insta::assert_snapshot!(snapshot_name("plans", target), plans_table(target));
    }
}

#[test]
fn layouts_on_every_target() {
    assert!(value_records().len() + layout_only_records().len() >= 30);
    for target in Target::ALL {
        insta::assert_snapshot!(snapshot_name("layouts", target), layouts_table(target));
    }
}
