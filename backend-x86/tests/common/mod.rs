//! Curated x86-32 signatures shared by the snapshot and emulator tests, built with
//! `abi_model::TypeTable` (the cdef parser is not a dependency of this crate).
#![allow(dead_code)]

use abi_model::lua::helpers::Helper;
use abi_model::lua::CodeEnv;
use abi_model::{
    plan_call, CallConv, CallPlan, Field, FloatKind, IntKind, QualType, RecordAttrs, RecordKind, Signature, Target,
    TypeId, TypeTable,
};

/// One curated signature: a name, its C declaration (for the reader), its target and plan.
pub struct Case {
    pub name: String,
    pub decl: &'static str,
    pub target: Target,
    pub plan: CallPlan,
}

/// The C types the catalogue uses, on one target.
struct Types {
    t: TypeTable,
    int: TypeId,
    uint: TypeId,
    i64_: TypeId,
    char_: TypeId,
    uchar: TypeId,
    short: TypeId,
    ushort: TypeId,
    bool_: TypeId,
    f32_: TypeId,
    f64_: TypeId,
    void: TypeId,
    voidp: TypeId,
    charp: TypeId,
    s4: TypeId,
    s8: TypeId,
    s12: TypeId,
    /// `struct sf { float f; }` and `struct sd { double d; }`: gcc modes SF and DF.
    sf: TypeId,
    sd: TypeId,
}

impl Types {
    fn new(target: Target) -> Types {
        let mut t = TypeTable::new(target);
        let int = t.int(IntKind::Int);
        let void = t.void();
        let char_ = t.int(IntKind::Char);
        let record = |t: &mut TypeTable, tag: &str, n: usize| {
            let s = t.new_record(RecordKind::Struct, Some(tag));
            let fields = (0..n).map(|i| Field::named(&format!("f{i}"), int)).collect();
            t.define_record(s, fields, RecordAttrs::default()).expect("valid struct");
            s
        };
        let s4 = record(&mut t, "s4", 1);
        let s8 = record(&mut t, "s8", 2);
        let s12 = record(&mut t, "s12", 3);
        let f32_ = t.float(FloatKind::Float);
        let f64_ = t.float(FloatKind::Double);
        let mut wrap = |tag: &str, ty: TypeId| {
            let s = t.new_record(RecordKind::Struct, Some(tag));
            t.define_record(s, vec![Field::named("v", ty)], RecordAttrs::default()).expect("valid struct");
            s
        };
        let sf = wrap("sf", f32_);
        let sd = wrap("sd", f64_);
        Types {
            int,
            uint: t.int(IntKind::UInt),
            i64_: t.int(IntKind::LongLong),
            char_,
            uchar: t.int(IntKind::UChar),
            short: t.int(IntKind::Short),
            ushort: t.int(IntKind::UShort),
            bool_: t.bool(),
            f32_,
            f64_,
            void,
            voidp: t.pointer_to(void),
            charp: t.pointer_to(char_),
            s4,
            s8,
            s12,
            sf,
            sd,
            t,
        }
    }

    fn plan(&self, conv: CallConv, ret: TypeId, params: &[TypeId], varargs: Option<&[TypeId]>) -> CallPlan {
        let params: Vec<QualType> = params.iter().map(|p| (*p).into()).collect();
        let varargs: Vec<QualType> = varargs.unwrap_or(&[]).iter().map(|p| (*p).into()).collect();
        plan_call(&self.t, &Signature::new(ret, params, !varargs.is_empty(), conv), &varargs).expect("plannable")
    }
}

/// The curated signatures on both flavours: every step kind and return location an x86-32
/// program uses.
pub fn catalogue() -> Vec<Case> {
    use CallConv::{Cdecl, Fastcall, Stdcall, Thiscall};
    let mut cases = Vec::new();
    for target in [Target::X86_LINUX, Target::X86_WIN] {
        let ty = Types::new(target);
        let flavour = if target == Target::X86_LINUX { "linux" } else { "win" };
        let mut add = |name: &str, decl: &'static str, plan: CallPlan| {
            cases.push(Case { name: format!("{flavour}_{name}"), decl, target, plan });
        };
        let Types {
            int,
            uint,
            i64_,
            char_,
            uchar,
            short,
            ushort,
            bool_,
            f32_,
            f64_,
            void,
            voidp,
            charp,
            s4,
            s8,
            s12,
            sf,
            sd,
            ..
        } = ty;
        add("add_cdecl", "int add(int a, int b)", ty.plan(Cdecl, int, &[int, int], None));
        add("add_stdcall", "int __stdcall add(int a, int b)", ty.plan(Stdcall, int, &[int, int], None));
        add("add_fastcall", "int __fastcall add(int a, int b)", ty.plan(Fastcall, int, &[int, int], None));
        add("add_thiscall", "int __thiscall add(int a, int b)", ty.plan(Thiscall, int, &[int, int], None));
        add("nothing", "void nothing(void)", ty.plan(Cdecl, void, &[], None));
        add("ret_i64", "long long mul(long long a, int b)", ty.plan(Cdecl, i64_, &[i64_, int], None));
        add("ret_f64", "double scale(double x, float k)", ty.plan(Cdecl, f64_, &[f64_, f32_], None));
        add("float_args", "float fma3(float a, float b, float c)", ty.plan(Stdcall, f32_, &[f32_, f32_, f32_], None));
        add("ptr", "void *next(void *p, unsigned int n)", ty.plan(Cdecl, voidp, &[voidp, uint], None));
        add("ret_s4", "struct s4 make4(int a)", ty.plan(Cdecl, s4, &[int], None));
        add("ret_s8", "struct s8 make8(int a, int b)", ty.plan(Cdecl, s8, &[int, int], None));
        add("ret_s12", "struct s12 make12(int a)", ty.plan(Cdecl, s12, &[int], None));
        add("ret_sf", "struct sf { float v; } get_sf(int a)", ty.plan(Cdecl, sf, &[int], None));
        add("ret_sd", "struct sd { double v; } __stdcall get_sd(struct sd a)", ty.plan(Stdcall, sd, &[sd], None));
        add("ret_s12_stdcall", "struct s12 __stdcall make12(int a)", ty.plan(Stdcall, s12, &[int], None));
        add("struct_arg", "int sum12(struct s12 v, char k)", ty.plan(Cdecl, int, &[s12, char_], None));
        add(
            "thiscall_sret",
            "struct s12 __thiscall get(void *this, int k)",
            ty.plan(Thiscall, s12, &[voidp, int], None),
        );
        add(
            "fastcall_i64_first",
            "int __fastcall skip(long long a, int b)",
            ty.plan(Fastcall, int, &[i64_, int], None),
        );
        add(
            "mix12",
            "double mix12(int a, double b, long long c, float d, char e, double f, unsigned short g, int h, void *p, bool q, short r, unsigned char s)",
            ty.plan(Cdecl, f64_, &[int, f64_, i64_, f32_, char_, f64_, ushort, int, voidp, bool_, short, uchar], None),
        );
        add(
            "widen_fastcall",
            "char __fastcall widen(signed char c, unsigned short u, bool b)",
            ty.plan(Fastcall, char_, &[char_, ushort, bool_], None),
        );
        add("ret_bool", "bool __thiscall is_odd(short s)", ty.plan(Thiscall, bool_, &[short], None));
        add(
            "ret_ushort",
            "unsigned short lo16(unsigned char c, short s)",
            ty.plan(Cdecl, ushort, &[uchar, short], None),
        );
        add(
            "printf",
            "int printf(const char *fmt, ...) called with (double, int, float->double)",
            ty.plan(Cdecl, int, &[charp], Some(&[f64_, int, f32_])),
        );
    }
    cases
}

/// Helpers at `0x7000_0000 + 16 * id`, ctypes at `0x6000_0000 + 16 * i` (the return type's
/// at `0x6000_0ff0`), the callback data at `0x5000_0000`: recognisable in listings, and
/// named by `emu_harness::listing`.
pub fn fake_env(plan: &CallPlan) -> CodeEnv {
    CodeEnv {
        helpers: Helper::ALL.iter().map(|h| 0x7000_0000 + 16 * h.id() as u64).collect(),
        arg_ctypes: (0..plan.args.len()).map(|i| 0x6000_0000 + 16 * i as u64).collect(),
        ret_ctype: 0x6000_0ff0,
        callback_data: 0x5000_0000,
        call_slots: None,
    }
}
