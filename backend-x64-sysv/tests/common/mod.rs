//! Signatures of the native tests, built with `abi_model::TypeTable`
//! (the cdef parser is not a dependency of this crate).
#![allow(dead_code)]

use abi_model::{
    plan_call, CallConv, CallPlan, Field, FloatKind, IntKind, QualType, RecordAttrs, RecordKind, Signature, Target,
    TypeId, TypeTable,
};

/// One curated signature: its name, its C declaration (for the reader) and its plan.
pub struct Case {
    pub name: &'static str,
    pub decl: &'static str,
    pub plan: CallPlan,
}

struct Types {
    t: TypeTable,
}

impl Types {
    fn new() -> Types {
        Types { t: TypeTable::new(Target::X64_SYSV) }
    }
    fn int(&self, k: IntKind) -> TypeId {
        self.t.int(k)
    }
    fn f32(&self) -> TypeId {
        self.t.float(FloatKind::Float)
    }
    fn f64(&self) -> TypeId {
        self.t.float(FloatKind::Double)
    }
    fn record(&mut self, tag: &str, fields: &[(&str, TypeId)]) -> TypeId {
        let s = self.t.new_record(RecordKind::Struct, Some(tag));
        self.t
            .define_record(s, fields.iter().map(|(n, ty)| Field::named(n, *ty)).collect(), RecordAttrs::default())
            .expect("valid struct");
        s
    }
    fn plan(&self, ret: TypeId, params: &[TypeId], variadic: bool, varargs: &[TypeId]) -> CallPlan {
        let params: Vec<QualType> = params.iter().map(|p| (*p).into()).collect();
        let varargs: Vec<QualType> = varargs.iter().map(|p| (*p).into()).collect();
        plan_call(&self.t, &Signature::new(ret, params, variadic, CallConv::Cdecl), &varargs).expect("plannable")
    }
}

/// The curated signatures, covering every step kind and return location SysV programs use.
pub fn catalogue() -> Vec<Case> {
    let mut ty = Types::new();
    let int = ty.int(IntKind::Int);
    let i64_ = ty.int(IntKind::LongLong);
    let u64_ = ty.int(IntKind::ULongLong);
    let char_ = ty.int(IntKind::Char);
    let ushort = ty.int(IntKind::UShort);
    let short = ty.int(IntKind::Short);
    let bool_ = ty.t.bool();
    let f32_ = ty.f32();
    let f64_ = ty.f64();
    let void = ty.t.void();
    let u8_ = ty.int(IntKind::UChar);
    let cchar = ty.t.int(IntKind::Char);
    let charp = ty.t.pointer_to(cchar);
    let voidp = ty.t.pointer_to(void);
    let size_t = ty.int(IntKind::ULong);
    let cf32 = ty.t.complex(FloatKind::Float);
    let cf64 = ty.t.complex(FloatKind::Double);
    let fi = ty.record("fi", &[("f", f32_), ("i", int)]);
    let big = ty.record("big24", &[("a", i64_), ("b", f64_), ("c", i64_)]);
    let ld = ty.record("ld", &[("l", i64_), ("d", f64_)]);
    let dl = ty.record("dl", &[("d", f64_), ("l", i64_)]);
    let ll = ty.record("ll", &[("a", i64_), ("b", i64_)]);
    let fff = ty.record("fff", &[("x", f32_), ("y", f32_), ("z", f32_)]);
    let rgb = ty.record("rgb", &[("r", u8_), ("g", u8_), ("b", u8_)]);
    let s7 = ty.record("s7", &[("a", int), ("b", short), ("c", char_)]);
    vec![
        Case { name: "add", decl: "int add(int a, int b)", plan: ty.plan(int, &[int, int], false, &[]) },
        Case { name: "mix", decl: "double mix(double a, int b, double c, int64_t d)", plan: ty.plan(f64_, &[f64_, int, f64_, i64_], false, &[]) },
        Case { name: "void_void", decl: "void nothing(void)", plan: ty.plan(void, &[], false, &[]) },
        Case { name: "float_float", decl: "float half(float x)", plan: ty.plan(f32_, &[f32_], false, &[]) },
        Case { name: "ptr_ptr", decl: "void *next(void *p, size_t n)", plan: ty.plan(voidp, &[voidp, size_t], false, &[]) },
        Case { name: "u64_u64", decl: "uint64_t rot(uint64_t x, unsigned char n)", plan: ty.plan(u64_, &[u64_, u8_], false, &[]) },
        Case { name: "widen", decl: "char widen(bool b, char c, unsigned short u)", plan: ty.plan(char_, &[bool_, char_, ushort], false, &[]) },
        Case { name: "ret_bool", decl: "bool is_odd(short s)", plan: ty.plan(bool_, &[short], false, &[]) },
        Case { name: "ret_ushort", decl: "unsigned short lo16(unsigned int x)", plan: ty.plan(ushort, &[ty.int(IntKind::UInt)], false, &[]) },
        Case { name: "struct_fi", decl: "struct fi swap_fi(struct fi v)", plan: ty.plan(fi, &[fi], false, &[]) },
        Case { name: "struct_big24", decl: "struct big24 twice(struct big24 v, int k)", plan: ty.plan(big, &[big, int], false, &[]) },
        Case { name: "struct_ld", decl: "struct ld make_ld(int64_t l, double d)", plan: ty.plan(ld, &[i64_, f64_], false, &[]) },
        Case { name: "struct_dl", decl: "struct dl flip_dl(struct ld v)", plan: ty.plan(dl, &[ld], false, &[]) },
        Case { name: "struct_ll", decl: "struct ll add_ll(struct ll a, struct ll b)", plan: ty.plan(ll, &[ll, ll], false, &[]) },
        Case { name: "struct_fff", decl: "struct fff scale(struct fff v, float k)", plan: ty.plan(fff, &[fff, f32_], false, &[]) },
        Case { name: "struct_rgb", decl: "struct rgb gray(struct rgb c)", plan: ty.plan(rgb, &[rgb], false, &[]) },
        Case { name: "struct_s7", decl: "struct s7 bump(struct s7 v)", plan: ty.plan(s7, &[s7], false, &[]) },
        Case { name: "complex_f32", decl: "float complex cmul(float complex a, float complex b)", plan: ty.plan(cf32, &[cf32, cf32], false, &[]) },
        Case { name: "complex_f64", decl: "double complex conj(double complex a)", plan: ty.plan(cf64, &[cf64], false, &[]) },
        Case {
            name: "mixed10",
            decl: "double mixed10(int a, double b, int64_t c, float d, char e, double f, unsigned short g, int h, void *p, int j)",
            plan: ty.plan(f64_, &[int, f64_, i64_, f32_, char_, f64_, ushort, int, voidp, int], false, &[]),
        },
        Case {
            name: "many16",
            decl: "double many16(double d0, ..., double d8, int i0, ..., int i6)",
            plan: ty.plan(f64_, &[f64_, f64_, f64_, f64_, f64_, f64_, f64_, f64_, f64_, int, int, int, int, int, int, int], false, &[]),
        },
        Case {
            name: "stack_struct",
            decl: "int64_t late(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, struct fi s, struct fi t)",
            plan: ty.plan(i64_, &[i64_, i64_, i64_, i64_, i64_, fi, fi], false, &[]),
        },
        Case { name: "sret_only", decl: "struct big24 make_big(int64_t a)", plan: ty.plan(big, &[i64_], false, &[]) },
        Case {
            name: "snprintf",
            decl: "int snprintf(char *buf, size_t n, const char *fmt, ...) called with (double, int, double)",
            plan: ty.plan(int, &[charp, size_t, charp], true, &[f64_, int, f64_]),
        },
    ]
}

/// The case called `name`.
pub fn case(name: &str) -> Case {
    catalogue().into_iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no case {name}"))
}
