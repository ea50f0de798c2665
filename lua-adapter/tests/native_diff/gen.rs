//! The signatures of the native differential test: a small model of C types and values, and a
//! seeded generator over it (the fuzzers' splitmix64: a seed names the same signatures on
//! every machine and with every version of any crate).
//!
//! The space: every scalar (char/short/int/long/long long signed and unsigned, bool, float,
//! double), enums, pointers (data, record and function pointers), complex float/double,
//! structs and unions nested up to three deep with arrays, bit-fields (named and unnamed `:0`),
//! `packed` and `aligned(n)` on records and on members; 0-20 parameters; variadic functions.
//! Half the records are drawn from a "small" space biased to records of 16 bytes or less with
//! `packed`/`aligned(n)` at several levels, where System V classification is subtle.
//! Long double and __int128 are left out: the module refuses them.

use abi_model::types::{FloatKind, IntKind};

/// The fuzzers' splitmix64 generator (`abi-model/tests/common/fuzzing.rs`), with the
/// 64-bit ranges this generator draws.
pub struct Rng(crate::fuzzing::Rng);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(crate::fuzzing::Rng(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next()
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True `p` times in a hundred.
    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// The C scalar types: abi-model's integer kinds, bool, float and double.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    Int(IntKind),
    Bool,
    Float,
    Double,
}

/// Every scalar.
fn scalars() -> Vec<Scalar> {
    let ints = IntKind::ALL.into_iter().map(Scalar::Int);
    ints.chain([Scalar::Bool, Scalar::Float, Scalar::Double]).collect()
}

/// The scalars of the small records (no 8-byte ones, so that more fields fit in 16 bytes).
const SMALL_SCALARS: [Scalar; 9] = [
    Scalar::Int(IntKind::Char),
    Scalar::Int(IntKind::UChar),
    Scalar::Int(IntKind::Short),
    Scalar::Int(IntKind::UShort),
    Scalar::Int(IntKind::Int),
    Scalar::Int(IntKind::UInt),
    Scalar::Bool,
    Scalar::Float,
    Scalar::Float,
];

impl Scalar {
    pub fn c_name(self) -> &'static str {
        match self {
            Scalar::Int(k) => k.c_name(),
            Scalar::Bool => "bool",
            Scalar::Float => FloatKind::Float.c_name(),
            Scalar::Double => FloatKind::Double.c_name(),
        }
    }

    /// Value bits on the host (a bool holds one, in a byte; `long` is the host C compiler's:
    /// 64 bits on x86-64 System V, 32 on i386).
    pub fn bits(self) -> u32 {
        match self {
            Scalar::Bool => 1,
            Scalar::Int(IntKind::Char | IntKind::SChar | IntKind::UChar) => 8,
            Scalar::Int(IntKind::Short | IntKind::UShort) => 16,
            Scalar::Int(IntKind::Long | IntKind::ULong) => 8 * std::mem::size_of::<std::ffi::c_long>() as u32,
            Scalar::Int(IntKind::Int | IntKind::UInt) | Scalar::Float => 32,
            Scalar::Int(_) | Scalar::Double => 64,
        }
    }

    pub fn signed(self) -> bool {
        matches!(self, Scalar::Int(k) if k.is_signed())
    }

    pub fn is_float(self) -> bool {
        matches!(self, Scalar::Float | Scalar::Double)
    }

    /// C's default argument promotion (what `va_arg` must read for a variadic argument).
    pub fn promoted(self) -> Scalar {
        match self {
            Scalar::Bool
            | Scalar::Int(IntKind::Char | IntKind::SChar | IntKind::UChar | IntKind::Short | IntKind::UShort) => {
                Scalar::Int(IntKind::Int)
            }
            Scalar::Float => Scalar::Double,
            s => s,
        }
    }
}

/// A C type; indices name the signature's own enums and records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// Only as a return type.
    Void,
    Scalar(Scalar),
    Enum(usize),
    Ptr(Pointee),
    Complex {
        double: bool,
    },
    Record(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pointee {
    Void,
    Int,
    ConstChar,
    Record(usize),
    /// `nd_fn`, the prelude's `int (*)(int, double)`.
    Func,
}

pub struct Enum {
    pub values: Vec<i64>,
}

pub struct Record {
    pub union: bool,
    pub packed: bool,
    pub aligned: Option<u32>,
    pub fields: Vec<Field>,
}

pub struct Field {
    pub ty: Ty,
    /// Array dimensions, outermost first (empty: not an array).
    pub dims: Vec<u32>,
    /// A bit-field's width; `Some(0)` is an unnamed `:0` field.
    pub bits: Option<u32>,
    pub packed: bool,
    pub aligned: Option<u32>,
}

impl Field {
    /// Unnamed `:0` bit-fields have no value and are not recorded.
    pub fn named(&self) -> bool {
        self.bits != Some(0)
    }

    pub fn elements(&self) -> u32 {
        self.dims.iter().product()
    }
}

/// A value of a [`Ty`], with the choices of how Lua spells it (decided once, so that every
/// emission of the value is the same).
#[derive(Clone, Debug)]
pub enum Val {
    /// Integers, bool (0/1) and an enum outside its enumerators.
    Int(i128),
    /// A float or double (a float's value is exact in f64).
    Float(f64),
    /// Enumerator `k` of the enum; Lua passes its name as a string when `by_name`.
    Enumerator {
        k: usize,
        by_name: bool,
    },
    /// A pointer; a NULL one is passed as `nil` from Lua when `nil`.
    Ptr {
        addr: u64,
        nil: bool,
    },
    Complex(f64, f64),
    /// A struct's named fields in order, or a union's first named field alone (what C's
    /// initializer sets); Lua passes it as a plain table instead of a cdata when `table`.
    Record {
        fields: Vec<Val>,
        table: bool,
    },
    /// An array's elements (a nested one per dimension).
    Array(Vec<Val>),
    Void,
}

pub struct Sig {
    pub id: usize,
    pub enums: Vec<Enum>,
    pub records: Vec<Record>,
    pub ret: Ty,
    pub ret_val: Val,
    pub params: Vec<Ty>,
    pub args: Vec<Val>,
    /// `Some` for a variadic function: the types and values of the variadic arguments.
    pub varargs: Option<Vec<(Ty, Val)>>,
}

impl Sig {
    /// Names of the signature's functions and types start with this.
    pub fn prefix(&self) -> String {
        format!("nd{}", self.id)
    }

    pub fn record_tag(&self, j: usize) -> String {
        let kw = if self.records[j].union { "union" } else { "struct" };
        format!("{kw} nd{}_s{j}", self.id)
    }

    pub fn enumerator(&self, e: usize, k: usize) -> String {
        format!("nd{}_e{e}_{k}", self.id)
    }

    /// The C spelling of `ty`.
    pub fn spell(&self, ty: Ty) -> String {
        match ty {
            Ty::Void => "void".into(),
            Ty::Scalar(s) => s.c_name().into(),
            Ty::Enum(e) => format!("enum nd{}_e{e}", self.id),
            Ty::Ptr(Pointee::Void) => "void *".into(),
            Ty::Ptr(Pointee::Int) => "int *".into(),
            Ty::Ptr(Pointee::ConstChar) => "const char *".into(),
            Ty::Ptr(Pointee::Record(j)) => format!("{} *", self.record_tag(j)),
            Ty::Ptr(Pointee::Func) => "nd_fn".into(),
            Ty::Complex { double: true } => "_Complex double".into(),
            Ty::Complex { double: false } => "_Complex float".into(),
            Ty::Record(j) => self.record_tag(j),
        }
    }
}

/// Generates signature `id` from `rng`.
pub fn signature(rng: &mut Rng, id: usize) -> Sig {
    let mut g = Gen { rng, scalars: scalars(), enums: Vec::new(), records: Vec::new() };
    let variadic = g.rng.percent(12);
    let mut nparams = match g.rng.below(100) {
        0..=39 => g.rng.below(4),
        40..=74 => 4 + g.rng.below(5),
        _ => 9 + g.rng.below(12),
    } as usize;
    if variadic {
        nparams = nparams.clamp(1, 12);
    }
    let params: Vec<Ty> = (0..nparams).map(|_| g.ty(false)).collect();
    let ret = g.ty(true);
    let varargs = variadic.then(|| (0..g.rng.below(9)).map(|_| g.vararg_ty()).collect::<Vec<Ty>>());
    let args = params.iter().map(|&t| g.val(t, true)).collect();
    let ret_val = g.val(ret, true);
    let varargs = varargs.map(|tys| tys.into_iter().map(|t| (t, g.val(t, true))).collect());
    Sig { id, enums: g.enums, records: g.records, ret, ret_val, params, args, varargs }
}

struct Gen<'a> {
    rng: &'a mut Rng,
    /// [`scalars`].
    scalars: Vec<Scalar>,
    enums: Vec<Enum>,
    records: Vec<Record>,
}

/// Records stop growing new members past about this many bytes.
const RECORD_BUDGET: u32 = 160;

impl Gen<'_> {
    /// A parameter's or (`ret`) the return's type.
    fn ty(&mut self, ret: bool) -> Ty {
        let roll = self.rng.below(100);
        match roll {
            _ if ret && roll < 8 => Ty::Void,
            _ if roll < 45 => Ty::Scalar(self.rng.pick(&self.scalars)),
            _ if roll < 50 => self.new_enum(),
            _ if roll < 56 => Ty::Ptr(self.pointee()),
            _ if roll < 63 => Ty::Complex { double: self.rng.percent(50) },
            _ if !self.records.is_empty() && self.rng.percent(45) => {
                Ty::Record(self.rng.below(self.records.len() as u64) as usize)
            }
            _ => {
                let small = self.rng.percent(50);
                Ty::Record(self.record(0, small))
            }
        }
    }

    /// A variadic argument's type (no records: C passes them, LuaJIT passes a pointer).
    fn vararg_ty(&mut self) -> Ty {
        match self.rng.below(100) {
            0..=69 => Ty::Scalar(self.rng.pick(&self.scalars)),
            70..=77 => self.new_enum(),
            78..=91 => Ty::Ptr(self.pointee()),
            _ => Ty::Complex { double: self.rng.percent(50) },
        }
    }

    fn pointee(&mut self) -> Pointee {
        match self.rng.below(5) {
            0 => Pointee::Void,
            1 => Pointee::Int,
            2 => Pointee::ConstChar,
            3 if !self.records.is_empty() => Pointee::Record(self.rng.below(self.records.len() as u64) as usize),
            _ => Pointee::Func,
        }
    }

    fn new_enum(&mut self) -> Ty {
        let n = 1 + self.rng.below(4);
        let values = (0..n)
            .map(|_| match self.rng.below(3) {
                0 => self.rng.below(16) as i64,
                1 => self.rng.below(1 << 31) as i64,
                _ => self.rng.below(1 << 32) as i64 - (1 << 31),
            })
            .collect();
        self.enums.push(Enum { values });
        Ty::Enum(self.enums.len() - 1)
    }

    /// A new record at nesting `depth` (0: passed or returned itself); `small` biases it to
    /// 16 bytes or less with `packed`/`aligned(n)` likely at every level. Returns its index;
    /// the records it contains come before it.
    fn record(&mut self, depth: u32, small: bool) -> usize {
        let union = self.rng.percent(if small { 12 } else { 15 });
        let packed = self.rng.percent(if small { 35 } else { 15 });
        let aligned = self.rng.percent(if small { 25 } else { 12 }).then(|| self.alignment());
        let nfields = if small { 1 + self.rng.below(3) } else { 1 + self.rng.below(5) };
        let mut fields: Vec<Field> = Vec::new();
        let mut estimate = 0;
        for _ in 0..nfields {
            if !fields.is_empty() && self.rng.percent(3) {
                fields.push(Field {
                    ty: Ty::Scalar(Scalar::Int(IntKind::Int)),
                    dims: Vec::new(),
                    bits: Some(0),
                    packed: false,
                    aligned: None,
                });
            }
            let field = self.field(depth, small, estimate >= RECORD_BUDGET);
            estimate += self.estimate(&field);
            fields.push(field);
        }
        self.records.push(Record { union, packed, aligned, fields });
        self.records.len() - 1
    }

    fn field(&mut self, depth: u32, small: bool, full: bool) -> Field {
        let ty = match self.rng.below(100) {
            _ if full => Ty::Scalar(self.rng.pick(&SMALL_SCALARS)),
            r if depth < 3 && r < if small { 40 } else { 15 } => Ty::Record(self.record(depth + 1, small)),
            r if r < 50 => Ty::Scalar(self.rng.pick(if small { &SMALL_SCALARS[..] } else { &self.scalars[..] })),
            r if r < 55 => self.new_enum(),
            r if r < 62 && !small => Ty::Ptr(self.pointee()),
            r if r < 68 => Ty::Complex { double: !small && self.rng.percent(50) },
            _ => Ty::Scalar(self.rng.pick(if small { &SMALL_SCALARS[..] } else { &self.scalars[..] })),
        };
        let integer = matches!(ty, Ty::Scalar(s) if !s.is_float());
        if integer && self.rng.percent(15) {
            let Ty::Scalar(s) = ty else { unreachable!() };
            let width = if s == Scalar::Bool { 1 } else { 1 + self.rng.below(u64::from(s.bits())) as u32 };
            return Field { ty, dims: Vec::new(), bits: Some(width), packed: false, aligned: None };
        }
        let mut dims = Vec::new();
        if !full && self.rng.percent(if small { 8 } else { 18 }) {
            let max = if matches!(ty, Ty::Record(_)) {
                2
            } else if small {
                3
            } else {
                4
            };
            dims.push(1 + self.rng.below(max) as u32);
            if self.rng.percent(15) {
                dims.push(1 + self.rng.below(max) as u32);
            }
        }
        let packed = self.rng.percent(if small { 15 } else { 6 });
        let aligned = self.rng.percent(if small { 15 } else { 6 }).then(|| self.alignment());
        Field { ty, dims, bits: None, packed, aligned }
    }

    fn alignment(&mut self) -> u32 {
        if self.rng.percent(3) {
            32
        } else {
            self.rng.pick(&[1, 2, 4, 8, 16])
        }
    }

    /// Roughly a field's bytes (padding ignored), to keep records within [`RECORD_BUDGET`].
    fn estimate(&self, f: &Field) -> u32 {
        let one = match f.ty {
            Ty::Scalar(s) => s.bits().div_ceil(8),
            Ty::Enum(_) => 4,
            Ty::Ptr(_) => 8,
            Ty::Complex { double } => {
                if double {
                    16
                } else {
                    8
                }
            }
            Ty::Record(j) => self.records[j].fields.iter().map(|f| self.estimate(f)).sum(),
            Ty::Void => 0,
        };
        one * f.elements()
    }

    /// A value of `ty`; `top` when it is a whole argument or result (only those may be `nil`
    /// or a plain table in Lua).
    fn val(&mut self, ty: Ty, top: bool) -> Val {
        match ty {
            Ty::Void => Val::Void,
            Ty::Scalar(Scalar::Float) => Val::Float(f64::from(self.float32())),
            Ty::Scalar(Scalar::Double) => Val::Float(self.float64()),
            Ty::Scalar(s) => Val::Int(self.int(s.bits(), s.signed())),
            Ty::Enum(e) => {
                if self.rng.percent(75) {
                    let k = self.rng.below(self.enums[e].values.len() as u64) as usize;
                    Val::Enumerator { k, by_name: self.rng.percent(40) }
                } else {
                    Val::Int(self.rng.below(1_000_000) as i128)
                }
            }
            Ty::Ptr(_) => {
                // A user-space address of the host: below 2^47 on x86-64, any 32 bits on i386.
                let space = if cfg!(target_pointer_width = "64") { 1 << 47 } else { 1 << 32 };
                let addr = if self.rng.percent(15) { 0 } else { self.rng.below(space) };
                Val::Ptr { addr, nil: top && addr == 0 && self.rng.percent(50) }
            }
            Ty::Complex { double } => {
                let part = |g: &mut Self| {
                    if double {
                        g.float64()
                    } else {
                        f64::from(g.float32())
                    }
                };
                Val::Complex(part(self), part(self))
            }
            Ty::Record(j) => {
                let union = self.records[j].union;
                let tys: Vec<Field> = self.records[j]
                    .fields
                    .iter()
                    .filter(|f| f.named())
                    .map(|f| Field { ty: f.ty, dims: f.dims.clone(), bits: f.bits, packed: false, aligned: None })
                    .take(if union { 1 } else { usize::MAX })
                    .collect();
                let fields = tys.iter().map(|f| self.field_val(f)).collect();
                Val::Record { fields, table: top && self.rng.percent(20) }
            }
        }
    }

    fn field_val(&mut self, f: &Field) -> Val {
        match (f.bits, f.ty) {
            (Some(w), Ty::Scalar(s)) => Val::Int(self.int(w, s.signed())),
            _ => self.array_val(f.ty, &f.dims),
        }
    }

    fn array_val(&mut self, ty: Ty, dims: &[u32]) -> Val {
        match dims.split_first() {
            None => self.val(ty, false),
            Some((&n, rest)) => Val::Array((0..n).map(|_| self.array_val(ty, rest)).collect()),
        }
    }

    /// An integer of `bits` bits: often an extreme or a small number, else anything.
    fn int(&mut self, bits: u32, signed: bool) -> i128 {
        let (lo, hi): (i128, i128) =
            if signed { (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) } else { (0, (1 << bits) - 1) };
        match self.rng.below(10) {
            0 => lo,
            1 => hi,
            2..=4 => (self.rng.below(201) as i128 - 100).clamp(lo, hi),
            _ => lo + (u128::from(self.rng.next_u64()) % (hi - lo + 1) as u128) as i128,
        }
    }

    fn float32(&mut self) -> f32 {
        if self.rng.percent(30) {
            return (self.rng.below(2001) as f32 - 1000.0) / 8.0;
        }
        loop {
            let v = f32::from_bits(self.rng.next_u64() as u32);
            if v.is_finite() {
                return v;
            }
        }
    }

    fn float64(&mut self) -> f64 {
        if self.rng.percent(30) {
            return (self.rng.below(2001) as f64 - 1000.0) / 8.0;
        }
        loop {
            let v = f64::from_bits(self.rng.next_u64());
            if v.is_finite() {
                return v;
            }
        }
    }
}

/// `v` as a hexadecimal floating literal (C99 and Lua 5.2+ read it exactly), e.g. `-0x1.8p+1`.
pub fn hex_float(v: f64) -> String {
    let bits = v.to_bits();
    let sign = if bits >> 63 == 1 { "-" } else { "" };
    let exp = ((bits >> 52) & 0x7ff) as i64;
    let mant = bits & ((1 << 52) - 1);
    match (exp, mant) {
        (0, 0) => format!("{sign}0x0p+0"),
        (0, _) => format!("{sign}0x0.{mant:013x}p-1022"),
        _ => format!("{sign}0x1.{mant:013x}p{:+}", exp - 1023),
    }
}

/// Hand-made signatures run after the random ones, each pinning a case the random ones found
/// (with other seeds) so that it stays covered whatever the seed; `first_id` is the first one's id.
pub fn pinned(first_id: usize) -> Vec<Sig> {
    let float = Ty::Scalar(Scalar::Float);
    let field = |ty, bits| Field { ty, dims: Vec::new(), bits, packed: false, aligned: None };
    let zero_width = || field(Ty::Scalar(Scalar::Int(IntKind::Int)), Some(0));
    let record = |union, fields| Record { union, packed: false, aligned: None, fields };
    let value = |fields: Vec<f64>| Val::Record { fields: fields.into_iter().map(Val::Float).collect(), table: false };
    let sig = |id, record: Record, val: Val, ret_val: Val| Sig {
        id,
        enums: Vec::new(),
        records: vec![record],
        ret: Ty::Record(0),
        ret_val,
        params: vec![Ty::Record(0), Ty::Scalar(Scalar::Double)],
        args: vec![val, Val::Float(-2.5)],
        varargs: None,
    };
    vec![
        // `union { float f0; int : 0; }` as argument and result: gcc 12 classifies a union's
        // zero-width bit-field as its declared type, so the union is INTEGER (rdi, rax).
        sig(first_id, record(true, vec![field(float, None), zero_width()]), value(vec![1.5]), value(vec![-0.75])),
        // `struct { float f0; int : 0; float f2; }`: in a struct gcc 12 ignores it (SSE, xmm0).
        sig(
            first_id + 1,
            record(false, vec![field(float, None), zero_width(), field(float, None)]),
            value(vec![1.5, 3.25]),
            value(vec![-0.75, 6.0]),
        ),
    ]
}
