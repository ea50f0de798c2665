//! The target-independent catalogue: record definitions and signatures in a small C AST,
//! generated from one seed. Everything here is the same on every target; [`catalogue`](super)
//! turns it into each target's types, sizes and values with abi-model's layouts.

use abi_model::{CallConv, IntKind, RecordKind};
use std::fmt::Write as _;

/// The seed of the whole catalogue. Changing it changes every fixture.
pub const SEED: u64 = 0x6c75_6166_6669_0001;

/// A small deterministic PRNG (SplitMix64, Steele/Lea/Flood 2014): the catalogue must not
/// depend on any crate's random stream staying the same across versions.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        // Bias is irrelevant here (n is tiny against 2^64); determinism is what matters.
        self.next_u64() % n.max(1)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The two enums of the catalogue: `enum E0 { E0_NEG = -3, E0_POS = 100 }` (signed: `int`
/// everywhere) and `enum E1 { E1_A = 0, E1_B = 70000 }` (`unsigned int` on gcc, `int` under
/// MSVC's rules).
pub const ENUMS: [(&str, &[(&str, i64)]); 2] =
    [("E0", &[("E0_NEG", -3), ("E0_POS", 100)]), ("E1", &[("E1_A", 0), ("E1_B", 70000)])];

/// A scalar C type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scalar {
    /// `_Bool`
    Bool,
    /// An integer kind.
    Int(IntKind),
    /// `float`
    Float,
    /// `double`
    Double,
    /// `_Complex float`
    ComplexFloat,
    /// `_Complex double`
    ComplexDouble,
    /// `enum E<n>` (index into [`ENUMS`]).
    Enum(u8),
    /// `void *`
    Ptr,
    /// `fnptr_t`, i.e. `void (*)(void)`
    FnPtr,
    /// A gcc vector type (`v4sf_t` ...), x86-64 catalogues only ([`generate_x86_64`]).
    Vector(VectorKind),
    /// gcc's `__int128` (`signed`) or `unsigned __int128`; abi-model's 16-byte integer
    /// (`mode(TI)`). x86-64 only: gcc -m32 has none ([`SigDecl::x86_64_only`]).
    Int128 {
        /// Signedness.
        signed: bool,
    },
    /// A bool of this many bytes (2, 4 or 8) to abi-model (`_Bool int`), which no compiler
    /// has: the C side is the unsigned integer of that size, which abi-model must plan alike.
    WideBool(u8),
    /// A 4-byte pointer (`void *__ptr32`) to abi-model, which gcc has not: the C side is
    /// `unsigned int`, which abi-model must plan alike. x86-64 only.
    Ptr32,
}

/// The vector types of the x86-64 catalogues: each size gcc gives a rule (16 bytes SSE+SSEUP,
/// 8 bytes SSE, 4 and 2 bytes INTEGER on SysV; Win64: like records, 16 bytes returned in xmm0),
/// float and integer elements alike. Declared in `types.h` as `typedef <elem> <name>
/// __attribute__((vector_size(<size>)))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VectorKind {
    /// `float` x 4
    V4SF,
    /// `double` x 2
    V2DF,
    /// `int` x 4
    V4SI,
    /// `float` x 2
    V2SF,
    /// `int` x 2
    V2SI,
    /// `signed char` x 8
    V8QI,
    /// `long long` x 1
    V1DI,
    /// `unsigned char` x 4
    V4QI,
    /// `short` x 2
    V2HI,
}

impl VectorKind {
    /// Every vector kind.
    pub const ALL: [VectorKind; 9] = [
        VectorKind::V4SF,
        VectorKind::V2DF,
        VectorKind::V4SI,
        VectorKind::V2SF,
        VectorKind::V2SI,
        VectorKind::V8QI,
        VectorKind::V1DI,
        VectorKind::V4QI,
        VectorKind::V2HI,
    ];

    /// The element type and the number of elements.
    pub fn shape(self) -> (Scalar, u64) {
        match self {
            VectorKind::V4SF => (Scalar::Float, 4),
            VectorKind::V2DF => (Scalar::Double, 2),
            VectorKind::V4SI => (Scalar::Int(IntKind::Int), 4),
            VectorKind::V2SF => (Scalar::Float, 2),
            VectorKind::V2SI => (Scalar::Int(IntKind::Int), 2),
            VectorKind::V8QI => (Scalar::Int(IntKind::SChar), 8),
            VectorKind::V1DI => (Scalar::Int(IntKind::LongLong), 1),
            VectorKind::V4QI => (Scalar::Int(IntKind::UChar), 4),
            VectorKind::V2HI => (Scalar::Int(IntKind::Short), 2),
        }
    }

    /// Its size in bytes (the same on every x86-64 target).
    pub fn size(self) -> u64 {
        let (elem, n) = self.shape();
        elem.size_bound() * n
    }

    /// The typedef name.
    pub fn c_name(self) -> &'static str {
        match self {
            VectorKind::V4SF => "v4sf_t",
            VectorKind::V2DF => "v2df_t",
            VectorKind::V4SI => "v4si_t",
            VectorKind::V2SF => "v2sf_t",
            VectorKind::V2SI => "v2si_t",
            VectorKind::V8QI => "v8qi_t",
            VectorKind::V1DI => "v1di_t",
            VectorKind::V4QI => "v4qi_t",
            VectorKind::V2HI => "v2hi_t",
        }
    }

    /// The typedef that declares it.
    pub fn c_typedef(self) -> String {
        let (elem, _) = self.shape();
        format!("typedef {} {} __attribute__((vector_size({})));", elem.c_name(), self.c_name(), self.size())
    }
}

/// Every scalar the catalogue uses.
pub const ALL_SCALARS: [Scalar; 20] = [
    Scalar::Bool,
    Scalar::Int(IntKind::Char),
    Scalar::Int(IntKind::SChar),
    Scalar::Int(IntKind::UChar),
    Scalar::Int(IntKind::Short),
    Scalar::Int(IntKind::UShort),
    Scalar::Int(IntKind::Int),
    Scalar::Int(IntKind::UInt),
    Scalar::Int(IntKind::Long),
    Scalar::Int(IntKind::ULong),
    Scalar::Int(IntKind::LongLong),
    Scalar::Int(IntKind::ULongLong),
    Scalar::Float,
    Scalar::Double,
    Scalar::ComplexFloat,
    Scalar::ComplexDouble,
    Scalar::Enum(0),
    Scalar::Enum(1),
    Scalar::Ptr,
    Scalar::FnPtr,
];

/// Types a variadic call may pass after `...`: only what survives the default argument
/// promotions (C11 6.5.2.2p6/p7: no `float`, `_Bool`, `char` or `short`), plus records.
const VARARG_SCALARS: [Scalar; 12] = [
    Scalar::Int(IntKind::Int),
    Scalar::Int(IntKind::UInt),
    Scalar::Int(IntKind::Long),
    Scalar::Int(IntKind::ULong),
    Scalar::Int(IntKind::LongLong),
    Scalar::Int(IntKind::ULongLong),
    Scalar::Double,
    Scalar::Ptr,
    Scalar::FnPtr,
    Scalar::Enum(0),
    Scalar::ComplexFloat,
    Scalar::ComplexDouble,
];

impl Scalar {
    /// The C spelling.
    pub fn c_name(self) -> &'static str {
        match self {
            Scalar::Bool => "_Bool",
            Scalar::Int(k) => k.c_name(),
            Scalar::Float => "float",
            Scalar::Double => "double",
            Scalar::ComplexFloat => "_Complex float",
            Scalar::ComplexDouble => "_Complex double",
            Scalar::Enum(0) => "enum E0",
            Scalar::Enum(_) => "enum E1",
            Scalar::Ptr => "void *",
            Scalar::FnPtr => "fnptr_t",
            Scalar::Vector(v) => v.c_name(),
            Scalar::Int128 { signed: true } => "__int128",
            Scalar::Int128 { signed: false } => "unsigned __int128",
            Scalar::WideBool(2) => "unsigned short",
            Scalar::WideBool(4) | Scalar::Ptr32 => "unsigned int",
            Scalar::WideBool(_) => "unsigned long long",
        }
    }

    /// Whether only the x86-64 targets have it.
    pub fn x86_64_only(self) -> bool {
        matches!(self, Scalar::Int128 { .. } | Scalar::Ptr32 | Scalar::Vector(_))
    }

    /// An upper bound of its size over every target.
    fn size_bound(self) -> u64 {
        match self {
            Scalar::Bool => 1,
            Scalar::Int(k) => match k {
                IntKind::Char | IntKind::SChar | IntKind::UChar => 1,
                IntKind::Short | IntKind::UShort => 2,
                IntKind::Int | IntKind::UInt => 4,
                IntKind::Long | IntKind::ULong | IntKind::LongLong | IntKind::ULongLong => 8,
            },
            Scalar::Float | Scalar::Enum(_) => 4,
            Scalar::Double | Scalar::ComplexFloat | Scalar::Ptr | Scalar::FnPtr => 8,
            Scalar::Vector(v) => v.size(),
            Scalar::ComplexDouble | Scalar::Int128 { .. } => 16,
            Scalar::WideBool(n) => u64::from(n),
            Scalar::Ptr32 => 4,
        }
    }

    /// An upper bound of its alignment over every target.
    fn align_bound(self) -> u64 {
        match self {
            Scalar::ComplexFloat => 4,
            Scalar::ComplexDouble => 8,
            s => s.size_bound(),
        }
    }
}

/// A type in the catalogue's AST.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    /// A scalar.
    Scalar(Scalar),
    /// Record number n: `struct Rn` / `union Rn`.
    Record(usize),
    /// A fixed-size array.
    Array(Box<Ty>, u32),
}

/// One member of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDecl {
    /// `m<n>`, or `None` for an unnamed bit-field.
    pub name: Option<String>,
    /// The member's type (the element type of a flexible array member).
    pub ty: Ty,
    /// `Some(width)` for a bit-field.
    pub bits: Option<u32>,
    /// `__attribute__((aligned(n)))` on the member.
    pub aligned: Option<u32>,
    /// `__attribute__((packed))` on the member.
    pub packed: bool,
    /// A flexible array member `T m[]` (the last member of a struct).
    pub flexible: bool,
}

/// One struct or union definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordDecl {
    /// `struct` or `union`.
    pub kind: RecordKind,
    /// Members in order.
    pub fields: Vec<FieldDecl>,
    /// `__attribute__((packed))` on the record.
    pub packed: bool,
    /// `__attribute__((aligned(n)))` on the record.
    pub aligned: Option<u32>,
    /// `#pragma pack(push, n)` around the definition.
    pub pack: Option<u32>,
    /// Upper bound of its size over every target.
    pub size_bound: u64,
    /// Upper bound of its alignment over every target.
    pub align_bound: u64,
}

impl RecordDecl {
    /// True if the record can be passed by value (no flexible array member).
    pub fn by_value(&self) -> bool {
        !self.fields.iter().any(|f| f.flexible)
    }

    /// The C definition (with its `#pragma pack` lines), record `index`.
    pub fn c_definition(&self, records: &[RecordDecl], index: usize) -> String {
        let mut s = String::new();
        if let Some(n) = self.pack {
            let _ = writeln!(s, "#pragma pack(push, {n})");
        }
        let mut attrs = Vec::new();
        if self.packed {
            attrs.push("packed".to_string());
        }
        if let Some(n) = self.aligned {
            attrs.push(format!("aligned({n})"));
        }
        let attrs = if attrs.is_empty() { String::new() } else { format!("__attribute__(({})) ", attrs.join(", ")) };
        let _ = writeln!(s, "{} {attrs}R{index} {{", self.kind.keyword());
        for f in &self.fields {
            let name = f.name.as_deref().unwrap_or("");
            let mut decl = declarator(records, &f.ty, name);
            if f.flexible {
                decl.push_str("[]");
            }
            if let Some(w) = f.bits {
                let _ = write!(decl, " : {w}");
            }
            let mut fattrs = Vec::new();
            if f.packed {
                fattrs.push("packed".to_string());
            }
            if let Some(n) = f.aligned {
                fattrs.push(format!("aligned({n})"));
            }
            if !fattrs.is_empty() {
                let _ = write!(decl, " __attribute__(({}))", fattrs.join(", "));
            }
            let _ = writeln!(s, "    {decl};");
        }
        s.push_str("};\n");
        if self.pack.is_some() {
            s.push_str("#pragma pack(pop)\n");
        }
        s
    }
}

/// `ty` declaring `name` (which may be empty), e.g. `struct R3 m2[4]`.
pub fn declarator(records: &[RecordDecl], ty: &Ty, name: &str) -> String {
    let mut dims = String::new();
    let mut cur = ty;
    while let Ty::Array(elem, n) = cur {
        let _ = write!(dims, "[{n}]");
        cur = elem;
    }
    let base = match cur {
        Ty::Scalar(s) => s.c_name().to_string(),
        Ty::Record(i) => format!("{} R{i}", records[*i].kind.keyword()),
        Ty::Array(..) => unreachable!("arrays were unwrapped"),
    };
    let sep = if base.ends_with('*') || name.is_empty() && dims.is_empty() { "" } else { " " };
    format!("{base}{sep}{name}{dims}")
}

/// One signature of the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigDecl {
    /// Return type; `None` is `void`.
    pub ret: Option<Ty>,
    /// Declared parameters.
    pub params: Vec<Ty>,
    /// Declared with `...`.
    pub variadic: bool,
    /// The types actually passed after `...` (already promoted).
    pub varargs: Vec<Ty>,
    /// The convention on the x86 targets (ignored on x86-64).
    pub conv: CallConv,
}

impl SigDecl {
    /// Whether it passes or returns a type only the x86-64 targets have: such signatures
    /// come last in [`Spec::signatures`], so every target's catalogue is a prefix of it.
    pub fn x86_64_only(&self) -> bool {
        fn only(t: &Ty) -> bool {
            match t {
                Ty::Scalar(s) => s.x86_64_only(),
                Ty::Array(e, _) => only(e),
                Ty::Record(_) => false,
            }
        }
        self.ret.iter().chain(&self.params).chain(&self.varargs).any(only)
    }
}

/// The whole target-independent catalogue.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Every record, in definition order (a record only uses earlier ones).
    pub records: Vec<RecordDecl>,
    /// The records signatures pass by value.
    pub abi_records: Vec<usize>,
    /// Every signature.
    pub signatures: Vec<SigDecl>,
    /// The nested packed/aligned records ([`NESTED_SEED`]): records of depth 2 and 3 with
    /// `packed` and `aligned(n)` on any level and member, each passed, returned and taken by
    /// callbacks by the signatures appended last.
    pub nested_records: Vec<usize>,
    /// Records with a zero-width bit-field in a union ([`ZERO_WIDTH_SEED`]), used like the
    /// nested ones by the signatures appended after theirs.
    pub zero_width_unions: Vec<usize>,
    /// Records aligned beyond the stack's 16 bytes, by `aligned(32)`/`aligned(64)` on the
    /// record or on a member ([`OVER_ALIGNED_SEED`]), used like the nested ones by the
    /// signatures appended last: a SysV call passing one on the stack needs a stack aligned to
    /// it.
    pub over_aligned: Vec<usize>,
    /// x86-64 catalogues ([`generate_x86_64`]): the records holding vectors, used like the
    /// nested ones by the signatures appended last, after those of the bare vectors. Empty
    /// in the i386 catalogue, whose fixtures know no vectors (i386 refuses them by value).
    pub vector_records: Vec<usize>,
    /// x86-64 catalogues ([`generate_x86_64`]): the records holding `__int128`, used like the
    /// nested ones by the signatures appended after the vectors'. Empty in the i386
    /// catalogue (gcc -m32 has no `__int128`).
    pub int128_records: Vec<usize>,
}

/// Number of records generated for argument passing.
const ABI_RANDOM_STRUCTS: usize = 700;
const ABI_RANDOM_UNIONS: usize = 200;
/// Number of records generated only for layout checks.
const LAYOUT_RECORDS: usize = 4000;
/// Number of random signatures, and of random variadic ones.
const RANDOM_SIGNATURES: usize = 3300;
const VARIADIC_SIGNATURES: usize = 1500;
/// Largest record passed by value (upper bound over the targets).
const MAX_ABI_RECORD: u64 = 96;
/// Largest sum of argument sizes of one signature: keeps every fixture frame far below the
/// 4 KiB at which mingw would call `___chkstk_ms`.
const MAX_ARG_BYTES: u64 = 1024;

const BITFIELD_INTS: [IntKind; 11] = IntKind::ALL;

fn ty_bounds(records: &[RecordDecl], ty: &Ty) -> (u64, u64) {
    match ty {
        Ty::Scalar(s) => (s.size_bound(), s.align_bound()),
        Ty::Record(i) => (records[*i].size_bound, records[*i].align_bound),
        Ty::Array(e, n) => {
            let (s, a) = ty_bounds(records, e);
            (s * u64::from(*n), a)
        }
    }
}

fn make_record(
    records: &[RecordDecl],
    kind: RecordKind,
    fields: Vec<FieldDecl>,
    packed: bool,
    aligned: Option<u32>,
    pack: Option<u32>,
) -> RecordDecl {
    let mut size = 0u64;
    let mut align = 1u64;
    for f in &fields {
        let (s, a) = ty_bounds(records, &f.ty);
        let a = a.max(u64::from(f.aligned.unwrap_or(1)));
        let s = if f.flexible { 0 } else { s };
        align = align.max(a);
        match kind {
            RecordKind::Struct => size += s + a - 1,
            RecordKind::Union => size = size.max(s),
        }
    }
    let align = align.max(u64::from(aligned.unwrap_or(1)));
    RecordDecl { kind, fields, packed, aligned, pack, size_bound: size + align - 1, align_bound: align }
}

fn named(i: usize, ty: Ty) -> FieldDecl {
    FieldDecl { name: Some(format!("m{i}")), ty, bits: None, aligned: None, packed: false, flexible: false }
}

fn int(k: IntKind) -> Ty {
    Ty::Scalar(Scalar::Int(k))
}

/// Largest bit-field width for a type on every target (`long` is 32 bits on ILP32/LLP64).
fn max_bits(s: Scalar) -> u32 {
    match s {
        Scalar::Bool => 1,
        Scalar::Int(IntKind::Long | IntKind::ULong) => 32,
        Scalar::Enum(_) => 32,
        s => s.size_bound() as u32 * 8,
    }
}

fn random_bitfield_type(rng: &mut Rng) -> Scalar {
    match rng.below(14) {
        0 => Scalar::Bool,
        1 => Scalar::Enum(0),
        _ => Scalar::Int(rng.pick(&BITFIELD_INTS)),
    }
}

fn random_bitfield(rng: &mut Rng, index: usize) -> FieldDecl {
    let s = random_bitfield_type(rng);
    let (name, width) = if rng.percent(12) {
        (None, 0)
    } else {
        let w = rng.range(1, u64::from(max_bits(s))) as u32;
        // Widths near the type's size straddle units more often: favour them.
        let w = if rng.percent(30) { max_bits(s).saturating_sub(rng.below(3) as u32).max(1) } else { w };
        let name = if rng.percent(85) { Some(format!("m{index}")) } else { None };
        (name, w)
    };
    FieldDecl { name, ty: Ty::Scalar(s), bits: Some(width), aligned: None, packed: false, flexible: false }
}

/// Records whose index is below `limit`, by value, no larger than `max` bytes.
fn nested_candidates(records: &[RecordDecl], max: u64) -> Vec<usize> {
    (0..records.len()).filter(|&i| records[i].by_value() && records[i].size_bound <= max).collect()
}

fn gen_abi_records(rng: &mut Rng, records: &mut Vec<RecordDecl>, abi: &mut Vec<usize>) {
    let mut push = |records: &mut Vec<RecordDecl>, r: RecordDecl| {
        abi.push(records.len());
        records.push(r);
    };
    // Byte arrays of every size from 1 to 72: INTEGER/memory boundaries on every ABI.
    for n in 1..=72u32 {
        let r = make_record(
            records,
            RecordKind::Struct,
            vec![named(0, Ty::Array(Box::new(int(IntKind::UChar)), n))],
            false,
            None,
            None,
        );
        push(records, r);
    }
    // Homogeneous records of every scalar, 1 to 4 members.
    for s in ALL_SCALARS.iter() {
        for count in 1..=4 {
            let fields = (0..count).map(|i| named(i, Ty::Scalar(*s))).collect();
            let r = make_record(records, RecordKind::Struct, fields, false, None, None);
            push(records, r);
        }
    }
    // Odd sizes and arrays of small scalars: 3, 5, 6, 7, 9, 12 ... bytes.
    for s in [IntKind::Char, IntKind::Short, IntKind::Int] {
        for n in [3u32, 5, 6, 7, 9, 11] {
            let r = make_record(
                records,
                RecordKind::Struct,
                vec![named(0, Ty::Array(Box::new(int(s)), n))],
                false,
                None,
                None,
            );
            push(records, r);
        }
    }
    for (a, b) in [
        (IntKind::Short, IntKind::Char),
        (IntKind::Int, IntKind::Char),
        (IntKind::Char, IntKind::Short),
        (IntKind::Int, IntKind::Short),
    ] {
        let r = make_record(records, RecordKind::Struct, vec![named(0, int(a)), named(1, int(b))], false, None, None);
        push(records, r);
        let r = make_record(records, RecordKind::Struct, vec![named(0, int(a)), named(1, int(b))], true, None, None);
        push(records, r);
    }
    for f in [Scalar::Float, Scalar::Double] {
        for n in [2u32, 3, 4, 5] {
            let r = make_record(
                records,
                RecordKind::Struct,
                vec![named(0, Ty::Array(Box::new(Ty::Scalar(f)), n))],
                false,
                None,
                None,
            );
            push(records, r);
        }
    }
    // Random structs: mixed scalars, arrays, nested records, bit-fields, attributes.
    let mut made = 0;
    while made < ABI_RANDOM_STRUCTS {
        let count = rng.range(1, 8) as usize;
        let nested = nested_candidates(records, 32);
        let mut fields = Vec::new();
        for i in 0..count {
            let f = match rng.below(100) {
                0..=54 => named(i, Ty::Scalar(rng.pick(&ALL_SCALARS))),
                55..=69 => named(i, Ty::Array(Box::new(Ty::Scalar(rng.pick(&ALL_SCALARS))), rng.range(1, 5) as u32)),
                70..=84 => named(i, Ty::Record(rng.pick(&nested))),
                _ => random_bitfield(rng, i),
            };
            fields.push(f);
        }
        if !fields.iter().any(|f| f.name.is_some()) {
            fields.push(named(count, Ty::Scalar(Scalar::Int(IntKind::Int))));
        }
        if rng.percent(6) {
            let i = rng.below(fields.len() as u64) as usize;
            if fields[i].bits.is_none() {
                fields[i].aligned = Some(rng.pick(&[8, 16]));
            }
        }
        let packed = rng.percent(10);
        let aligned = if rng.percent(6) { Some(16) } else { None };
        let pack = if rng.percent(5) { Some(rng.pick(&[1, 2, 4])) } else { None };
        let r = make_record(records, RecordKind::Struct, fields, packed, aligned, pack);
        if r.size_bound <= MAX_ABI_RECORD {
            push(records, r);
            made += 1;
        }
    }
    // Unions: float with int, double with long long, arrays, records.
    let union_members = [
        Ty::Scalar(Scalar::Float),
        Ty::Scalar(Scalar::Double),
        int(IntKind::Int),
        int(IntKind::LongLong),
        int(IntKind::Char),
        int(IntKind::Short),
        Ty::Array(Box::new(Ty::Scalar(Scalar::Float)), 2),
        Ty::Array(Box::new(int(IntKind::Char)), 3),
        Ty::Array(Box::new(int(IntKind::Char)), 12),
        Ty::Scalar(Scalar::Ptr),
    ];
    let mut made = 0;
    while made < ABI_RANDOM_UNIONS {
        let nested = nested_candidates(records, 24);
        let count = rng.range(2, 4) as usize;
        let fields = (0..count)
            .map(|i| {
                if rng.percent(20) {
                    named(i, Ty::Record(rng.pick(&nested)))
                } else {
                    named(i, union_members[rng.below(union_members.len() as u64) as usize].clone())
                }
            })
            .collect();
        let r = make_record(records, RecordKind::Union, fields, false, None, None);
        if r.size_bound <= MAX_ABI_RECORD {
            push(records, r);
            made += 1;
        }
    }
}

fn gen_layout_record(rng: &mut Rng, records: &[RecordDecl]) -> RecordDecl {
    let kind = if rng.percent(15) { RecordKind::Union } else { RecordKind::Struct };
    let count = rng.range(1, 12) as usize;
    let nested = nested_candidates(records, 64);
    let mut fields = Vec::with_capacity(count + 1);
    for i in 0..count {
        let mut f = match rng.below(100) {
            0..=44 => random_bitfield(rng, i),
            45..=69 => named(i, Ty::Scalar(rng.pick(&ALL_SCALARS))),
            70..=79 => {
                let elem = Ty::Scalar(rng.pick(&ALL_SCALARS));
                let elem = if rng.percent(20) { Ty::Array(Box::new(elem), rng.range(1, 3) as u32) } else { elem };
                named(i, Ty::Array(Box::new(elem), rng.range(1, 6) as u32))
            }
            80..=93 => named(i, Ty::Record(rng.pick(&nested))),
            _ => named(i, Ty::Array(Box::new(Ty::Record(rng.pick(&nested))), rng.range(1, 3) as u32)),
        };
        if rng.percent(8) {
            f.packed = true;
        }
        // gcc rejects `aligned` on bit-fields.
        if f.bits.is_none() && rng.percent(10) {
            f.aligned = Some(rng.pick(&[1, 2, 4, 8, 16, 32]));
        }
        fields.push(f);
    }
    if !fields.iter().any(|f| f.name.is_some()) {
        fields.push(named(count, Ty::Scalar(rng.pick(&ALL_SCALARS))));
    }
    if kind == RecordKind::Struct && rng.percent(8) {
        let elem = if rng.percent(70) { Ty::Scalar(rng.pick(&ALL_SCALARS)) } else { Ty::Record(rng.pick(&nested)) };
        fields.push(FieldDecl {
            name: Some(format!("m{}", fields.len())),
            ty: elem,
            bits: None,
            aligned: None,
            packed: false,
            flexible: true,
        });
    }
    let packed = rng.percent(15);
    let aligned = if rng.percent(10) { Some(rng.pick(&[1, 2, 4, 8, 16, 32, 64])) } else { None };
    let pack = if rng.percent(20) { Some(rng.pick(&[1, 2, 4, 8, 16])) } else { None };
    make_record(records, kind, fields, packed, aligned, pack)
}

fn sig_bytes(records: &[RecordDecl], params: &[Ty], varargs: &[Ty]) -> u64 {
    params.iter().chain(varargs).map(|t| ty_bounds(records, t).0.max(8)).sum()
}

fn random_conv(rng: &mut Rng) -> CallConv {
    match rng.below(10) {
        0..=3 => CallConv::Cdecl,
        4..=5 => CallConv::Stdcall,
        6..=7 => CallConv::Fastcall,
        _ => CallConv::Thiscall,
    }
}

fn gen_signatures(rng: &mut Rng, records: &[RecordDecl], abi: &[usize]) -> Vec<SigDecl> {
    let mut sigs = Vec::new();
    let convs = [CallConv::Cdecl, CallConv::Stdcall, CallConv::Fastcall, CallConv::Thiscall];
    let sig = |ret: Option<Ty>, params: Vec<Ty>, conv: CallConv| SigDecl {
        ret,
        params,
        variadic: false,
        varargs: Vec::new(),
        conv,
    };
    // Every scalar in every convention, alone, after a register-eating prefix, and repeated
    // until the registers are exhausted.
    let mut pool: Vec<Ty> = ALL_SCALARS.iter().map(|s| Ty::Scalar(*s)).collect();
    pool.extend(abi.iter().map(|&i| Ty::Record(i)));
    for t in &pool {
        for conv in convs {
            sigs.push(sig(Some(t.clone()), vec![t.clone()], conv));
        }
        let conv = random_conv(rng);
        sigs.push(sig(None, vec![int(IntKind::Int), t.clone(), Ty::Scalar(Scalar::Double)], conv));
    }
    for t in pool.iter().take(ALL_SCALARS.len()) {
        for conv in convs {
            sigs.push(sig(Some(t.clone()), vec![], conv));
            sigs.push(sig(Some(t.clone()), vec![t.clone(); 9], conv));
            let mut mixed = vec![Ty::Scalar(Scalar::Double); 8];
            mixed.push(t.clone());
            mixed.extend(vec![int(IntKind::LongLong); 6]);
            mixed.push(t.clone());
            sigs.push(sig(None, mixed, conv));
        }
    }
    // Random signatures, 0 to 20 arguments.
    let scalar_weight = 55;
    let random_ty = |rng: &mut Rng| -> Ty {
        if rng.percent(scalar_weight) {
            Ty::Scalar(rng.pick(&ALL_SCALARS))
        } else {
            Ty::Record(rng.pick(abi))
        }
    };
    let mut made = 0;
    while made < RANDOM_SIGNATURES {
        let n = match rng.below(10) {
            0..=5 => rng.range(0, 6),
            6..=8 => rng.range(7, 12),
            _ => rng.range(13, 20),
        } as usize;
        let params: Vec<Ty> = (0..n).map(|_| random_ty(rng)).collect();
        let ret = if rng.percent(20) { None } else { Some(random_ty(rng)) };
        if sig_bytes(records, &params, &[]) > MAX_ARG_BYTES {
            continue;
        }
        sigs.push(sig(ret, params, random_conv(rng)));
        made += 1;
    }
    // Variadic calls: 1 to 4 fixed parameters, 0 to 8 promoted extra arguments. Variadic
    // functions are always cdecl (gcc ignores stdcall/fastcall/thiscall on them).
    let mut made = 0;
    while made < VARIADIC_SIGNATURES {
        let fixed = rng.range(1, 4) as usize;
        let params: Vec<Ty> = (0..fixed).map(|_| random_ty(rng)).collect();
        let extra = rng.range(0, 8) as usize;
        let varargs: Vec<Ty> = (0..extra)
            .map(|_| if rng.percent(70) { Ty::Scalar(rng.pick(&VARARG_SCALARS)) } else { Ty::Record(rng.pick(abi)) })
            .collect();
        let ret = if rng.percent(20) { None } else { Some(random_ty(rng)) };
        if sig_bytes(records, &params, &varargs) > MAX_ARG_BYTES {
            continue;
        }
        sigs.push(SigDecl { ret, params, variadic: true, varargs, conv: CallConv::Cdecl });
        made += 1;
    }
    sigs
}

/// Generates the catalogue from [`SEED`].
pub fn generate() -> Spec {
    let mut rng = Rng::new(SEED);
    let mut records = Vec::new();
    let mut abi = Vec::new();
    gen_abi_records(&mut rng, &mut records, &mut abi);
    for _ in 0..LAYOUT_RECORDS {
        let r = gen_layout_record(&mut rng, &records);
        records.push(r);
    }
    let mut signatures = gen_signatures(&mut rng, &records, &abi);
    // Appended with their own seed, so everything above keeps its number and its values.
    let nested_records = gen_nested_records(&mut records);
    signatures.extend(gen_nested_signatures(&records, &nested_records, NESTED_SEED ^ 1));
    let zero_width_unions = zero_width_union_records(&mut records);
    signatures.extend(gen_nested_signatures(&records, &zero_width_unions, ZERO_WIDTH_SEED));
    let over_aligned = over_aligned_records(&mut records);
    signatures.extend(gen_over_aligned_signatures(&records, &over_aligned));
    // Last: the integers abi-model reads by their type, then what only x86-64 has.
    signatures.extend(typed_int_signatures());
    signatures.extend(x86_64_only_signatures());
    Spec {
        records,
        abi_records: abi,
        signatures,
        nested_records,
        zero_width_unions,
        over_aligned,
        vector_records: vec![],
        int128_records: vec![],
    }
}

/// The seed of the conventions of the vector signatures (ignored on x86-64, which has one
/// convention; fixed so that the catalogue stays deterministic).
pub const VECTOR_SEED: u64 = 0x6c75_6166_6669_0005;

/// [`generate`] with the vector types appended (issue 17): per [`VectorKind`] V the nested
/// class's signatures (`V f(int)`, `void f(V, int)`, `V f(V)`, V after five ints, V after
/// seven doubles, V as a variadic argument), nine 16-byte vectors (the ninth on the stack,
/// 16-aligned, after a double), then records holding vectors, used the same way. Only the
/// x86-64 targets use it: everything [`generate`] makes keeps its number and its values.
pub fn generate_x86_64() -> Spec {
    let mut spec = generate();
    let vectors: Vec<Ty> = VectorKind::ALL.iter().map(|v| Ty::Scalar(Scalar::Vector(*v))).collect();
    let records = &mut spec.records;
    let (char, int, longlong) = (int(IntKind::Char), int(IntKind::Int), int(IntKind::LongLong));
    let float = Ty::Scalar(Scalar::Float);
    let v = |k: VectorKind| Ty::Scalar(Scalar::Vector(k));
    let out = vec![
        // struct { v4sf_t m0; }: SSE+SSEUP like the vector
        push_record(records, RecordKind::Struct, vec![v(VectorKind::V4SF)], PLAIN),
        // union { v4sf_t m0; float m1[4]; }: SSEUP meets SSE -> SSE, SSE
        push_record(
            records,
            RecordKind::Union,
            vec![v(VectorKind::V4SF), Ty::Array(Box::new(float.clone()), 4)],
            PLAIN,
        ),
        // union { v2df_t m0; long long m1; }: INTEGER, then SSEUP alone -> SSE
        push_record(records, RecordKind::Union, vec![v(VectorKind::V2DF), longlong], PLAIN),
        // struct { v2sf_t m0; int m1; }: SSE, INTEGER
        push_record(records, RecordKind::Struct, vec![v(VectorKind::V2SF), int.clone()], PLAIN),
        // struct { int m0; v2hi_t m1; v2si_t m2; }: INTEGER, SSE
        push_record(records, RecordKind::Struct, vec![int.clone(), v(VectorKind::V2HI), v(VectorKind::V2SI)], PLAIN),
        // struct packed { char m0; v2sf_t m1; }: a misaligned vector -> MEMORY
        push_record(records, RecordKind::Struct, vec![char, v(VectorKind::V2SF)], PACKED),
        // struct { v4qi_t m0; float m1; }: one eightbyte, INTEGER
        push_record(records, RecordKind::Struct, vec![v(VectorKind::V4QI), float], PLAIN),
        // struct { v8qi_t m0; v1di_t m1; }: SSE, SSE
        push_record(records, RecordKind::Struct, vec![v(VectorKind::V8QI), v(VectorKind::V1DI)], PLAIN),
        // struct { v4si_t m0; int m1; }: 32 bytes -> MEMORY
        push_record(records, RecordKind::Struct, vec![v(VectorKind::V4SI), int.clone()], PLAIN),
    ];
    let mut sigs = Vec::new();
    for (i, ty) in vectors.iter().enumerate() {
        sigs.extend(nested_signatures_of(ty, VECTOR_SEED ^ i as u64));
    }
    // Nine 16-byte vectors after a double: xmm0 is the double's, the last two go on the stack.
    let mut nine = vec![Ty::Scalar(Scalar::Double)];
    nine.extend(std::iter::repeat_n(v(VectorKind::V4SF), 9));
    sigs.push(SigDecl {
        ret: Some(v(VectorKind::V2DF)),
        params: nine,
        variadic: false,
        varargs: vec![],
        conv: CallConv::Cdecl,
    });
    sigs.extend(gen_nested_signatures(&spec.records, &out, VECTOR_SEED ^ 0x100));
    // Records holding `__int128` (gcc's TImode: 16-aligned, INTEGER in both eightbytes),
    // after the vectors so that every signature above keeps its number.
    let records = &mut spec.records;
    let (i128, u128) = (Ty::Scalar(Scalar::Int128 { signed: true }), Ty::Scalar(Scalar::Int128 { signed: false }));
    let double = Ty::Scalar(Scalar::Double);
    let wide = vec![
        // struct { __int128 m0; }: INTEGER, INTEGER, in a register pair or 16-aligned memory
        push_record(records, RecordKind::Struct, vec![i128.clone()], PLAIN),
        // union { unsigned __int128 m0; double m1[2]; }: INTEGER wins over SSE in both
        push_record(records, RecordKind::Union, vec![u128.clone(), Ty::Array(Box::new(double.clone()), 2)], PLAIN),
        // struct { long long m0; __int128 m1; }: 32 bytes -> MEMORY
        push_record(records, RecordKind::Struct, vec![self::int(IntKind::LongLong), i128.clone()], PLAIN),
        // struct packed { char m0; __int128 m1; }: a misaligned TImode -> MEMORY
        push_record(records, RecordKind::Struct, vec![self::int(IntKind::Char), i128], PACKED),
    ];
    sigs.extend(gen_nested_signatures(&spec.records, &wide, INT128_RECORD_SEED));
    debug_assert!(sigs.iter().all(|s| sig_bytes(&spec.records, &s.params, &s.varargs) <= MAX_ARG_BYTES));
    spec.signatures.extend(sigs);
    spec.vector_records = out;
    spec.int128_records = wide;
    spec
}

/// The seed of the conventions of the signatures of records holding `__int128` (x86-64
/// only, which has one convention; fixed so that the catalogue stays deterministic).
pub const INT128_RECORD_SEED: u64 = 0x6c75_6166_6669_0006;

/// [`gen_nested_signatures`] for one type that is not a record.
fn nested_signatures_of(ty: &Ty, seed: u64) -> Vec<SigDecl> {
    let mut sigs = Vec::new();
    push_signatures_of(ty, &mut Rng::new(seed), &mut sigs);
    sigs
}

/// The six signatures [`gen_nested_signatures`] makes for one type, their conventions drawn
/// from `rng` in order.
fn push_signatures_of(ty: &Ty, rng: &mut Rng, sigs: &mut Vec<SigDecl>) {
    let (int, double) = (Ty::Scalar(Scalar::Int(IntKind::Int)), Ty::Scalar(Scalar::Double));
    let mut sig = |ret: Option<Ty>, params: Vec<Ty>| {
        sigs.push(SigDecl { ret, params, variadic: false, varargs: Vec::new(), conv: random_conv(rng) });
    };
    sig(Some(ty.clone()), vec![int.clone()]);
    sig(None, vec![ty.clone(), int.clone()]);
    sig(Some(ty.clone()), vec![ty.clone()]);
    let mut ints = vec![int.clone(); 5];
    ints.extend([ty.clone(), int.clone()]);
    sig(Some(Ty::Scalar(Scalar::Float)), ints);
    let mut doubles = vec![double.clone(); 7];
    doubles.extend([ty.clone(), Ty::Scalar(Scalar::Float)]);
    sig(None, doubles);
    sigs.push(SigDecl {
        ret: Some(int.clone()),
        params: vec![int],
        variadic: true,
        varargs: vec![ty.clone(), double],
        conv: CallConv::Cdecl,
    });
}

/// The seed of the nested packed/aligned records and their signatures, appended after
/// everything [`SEED`] generates (issue 14: the generator was blind to this class).
pub const NESTED_SEED: u64 = 0x6c75_6166_6669_0002;
/// Random building blocks (depth 1), then random records of depth 2 and of depth 3.
const NESTED_LEAVES: usize = 160;
const NESTED_DEPTH2: usize = 260;
const NESTED_DEPTH3: usize = 260;
/// Largest nested record: the interesting sizes are those of two eightbytes or less (the
/// SysV register range) and of 1, 2, 4 and 8 bytes (Win64, i386 returns).
const MAX_NESTED_RECORD: u64 = 40;

/// Member scalars of the nested records: small ones, to move the next member off its
/// alignment, and every class (integer, SSE, complex, pointer).
const NESTED_SCALARS: [Scalar; 12] = [
    Scalar::Bool,
    Scalar::Int(IntKind::Char),
    Scalar::Int(IntKind::UChar),
    Scalar::Int(IntKind::Short),
    Scalar::Int(IntKind::Int),
    Scalar::Int(IntKind::UInt),
    Scalar::Int(IntKind::Long),
    Scalar::Int(IntKind::LongLong),
    Scalar::Float,
    Scalar::Double,
    Scalar::ComplexFloat,
    Scalar::Ptr,
];

/// `struct __attribute__((packed))` etc.: the attributes of one generated record.
#[derive(Clone, Copy)]
struct Attrs {
    packed: bool,
    aligned: Option<u32>,
}

const PLAIN: Attrs = Attrs { packed: false, aligned: None };
const PACKED: Attrs = Attrs { packed: true, aligned: None };

fn push_record(records: &mut Vec<RecordDecl>, kind: RecordKind, fields: Vec<Ty>, a: Attrs) -> usize {
    let fields = fields.into_iter().enumerate().map(|(i, t)| named(i, t)).collect();
    let r = make_record(records, kind, fields, a.packed, a.aligned, None);
    records.push(r);
    records.len() - 1
}

/// The shapes of issue 14 §1, written out (P is `struct __attribute__((packed))`), then
/// the two quirks gcc's rule has beside them. Returns the outer records.
fn curated_nested(records: &mut Vec<RecordDecl>) -> Vec<usize> {
    let s = |k: IntKind| Ty::Scalar(Scalar::Int(k));
    let (float, char) = (Ty::Scalar(Scalar::Float), s(IntKind::Char));
    let mut out = Vec::new();
    let mut outer =
        |records: &mut Vec<RecordDecl>, before: Vec<Ty>, inner: Vec<Ty>, inner_attrs: Attrs, outer_attrs: Attrs| {
            let p = push_record(records, RecordKind::Struct, inner, inner_attrs);
            let mut fields = before;
            fields.push(Ty::Record(p));
            out.push(push_record(records, RecordKind::Struct, fields, outer_attrs));
        };
    // struct { char c; P { short s; } p; }
    outer(records, vec![char.clone()], vec![s(IntKind::Short)], PACKED, PLAIN);
    // struct { int a; P { long x; } p; }
    outer(records, vec![s(IntKind::Int)], vec![s(IntKind::Long)], PACKED, PLAIN);
    // struct { char c; P { float v[3]; } p; }
    outer(records, vec![char.clone()], vec![Ty::Array(Box::new(float.clone()), 3)], PACKED, PLAIN);
    // struct { char c; P { float f; } p; }
    outer(records, vec![char.clone()], vec![float.clone()], PACKED, PLAIN);
    // struct { float f; P { uint32_t a; uint64_t b; } p; }
    outer(records, vec![float.clone()], vec![s(IntKind::UInt), s(IntKind::ULongLong)], PACKED, PLAIN);
    // P struct { int i; struct __attribute__((aligned(8))) { float f; } b; }
    outer(records, vec![s(IntKind::Int)], vec![float.clone()], Attrs { packed: false, aligned: Some(8) }, PACKED);
    // struct { char pad[3]; P { char c; float f; } a[2]; }: only a[0].f is aligned.
    let p = push_record(records, RecordKind::Struct, vec![char.clone(), float], PACKED);
    out.push(push_record(
        records,
        RecordKind::Struct,
        vec![Ty::Array(Box::new(char.clone()), 3), Ty::Array(Box::new(Ty::Record(p)), 2)],
        PLAIN,
    ));
    // P struct { char c; P union { int x : 9; } u; }: a union's bit-field has its width's mode.
    let mut u = make_record(records, RecordKind::Union, vec![named(0, s(IntKind::Int))], true, None, None);
    u.fields[0].bits = Some(9);
    records.push(u);
    let u = records.len() - 1;
    out.push(push_record(records, RecordKind::Struct, vec![char, Ty::Record(u)], PACKED));
    out
}

/// One random record of the nested class: 1 to 3 members beside one or two records of
/// `inner` (none for a building block), `packed`, `aligned(n)` and `#pragma pack` on the
/// record and on members at random.
fn gen_nested_level(rng: &mut Rng, records: &[RecordDecl], inner: &[usize]) -> RecordDecl {
    loop {
        let kind = if rng.percent(12) { RecordKind::Union } else { RecordKind::Struct };
        let mut fields: Vec<FieldDecl> = Vec::new();
        let plain = rng.range(if inner.is_empty() { 1 } else { 0 }, 3) as usize;
        for _ in 0..plain {
            let s = rng.pick(&NESTED_SCALARS);
            let f = match rng.below(100) {
                0..=69 => named(0, Ty::Scalar(s)),
                70..=87 => named(0, Ty::Array(Box::new(Ty::Scalar(s)), rng.range(1, 3) as u32)),
                _ => random_bitfield(rng, 0),
            };
            fields.push(f);
        }
        if !inner.is_empty() {
            for _ in 0..if rng.percent(20) { 2 } else { 1 } {
                let r = Ty::Record(rng.pick(inner));
                let ty = if rng.percent(15) { Ty::Array(Box::new(r), rng.range(1, 2) as u32) } else { r };
                let at = rng.below(fields.len() as u64 + 1) as usize;
                fields.insert(at, named(0, ty));
            }
        }
        for f in &mut fields {
            if f.bits.is_none() && rng.percent(12) {
                f.aligned = Some(rng.pick(&[1, 2, 4, 8, 16]));
            }
            if rng.percent(10) {
                f.packed = true;
            }
        }
        for (i, f) in fields.iter_mut().enumerate() {
            if f.name.is_some() {
                f.name = Some(format!("m{i}"));
            }
        }
        if !fields.iter().any(|f| f.name.is_some()) {
            fields.push(named(fields.len(), Ty::Scalar(rng.pick(&NESTED_SCALARS))));
        }
        let packed = rng.percent(40);
        let aligned = if rng.percent(25) { Some(rng.pick(&[2, 4, 8, 16])) } else { None };
        let pack = if rng.percent(8) { Some(rng.pick(&[1, 2, 4])) } else { None };
        let r = make_record(records, kind, fields, packed, aligned, pack);
        if r.size_bound <= MAX_NESTED_RECORD {
            return r;
        }
    }
}

/// The nested packed/aligned class: the curated shapes, then random building blocks and
/// random records of depth 2 and 3 over them. Returns the records of depth 2 and 3.
fn gen_nested_records(records: &mut Vec<RecordDecl>) -> Vec<usize> {
    let mut rng = Rng::new(NESTED_SEED);
    let mut out = curated_nested(records);
    let level = |rng: &mut Rng, records: &mut Vec<RecordDecl>, inner: &[usize], n: usize| -> Vec<usize> {
        (0..n)
            .map(|_| {
                let r = gen_nested_level(rng, records, inner);
                records.push(r);
                records.len() - 1
            })
            .collect()
    };
    let leaves = level(&mut rng, records, &[], NESTED_LEAVES);
    let depth2 = level(&mut rng, records, &leaves, NESTED_DEPTH2);
    let depth3 = level(&mut rng, records, &depth2, NESTED_DEPTH3);
    out.extend(depth2);
    out.extend(depth3);
    out
}

/// Per nested record R, in a random x86 convention each: `R f(int)`, `void f(R, int)`,
/// `R f(R)`, `float f(int x5, R, int)` (integer registers nearly used up), `void f(double x7,
/// R, float)` (vector registers nearly used up), and `int f(int, ...)` passing R and a double.
fn gen_nested_signatures(records: &[RecordDecl], nested: &[usize], seed: u64) -> Vec<SigDecl> {
    let mut rng = Rng::new(seed);
    let mut sigs = Vec::new();
    for &n in nested {
        push_signatures_of(&Ty::Record(n), &mut rng, &mut sigs);
    }
    debug_assert!(sigs.iter().all(|s| sig_bytes(records, &s.params, &s.varargs) <= MAX_ARG_BYTES));
    sigs
}

/// The seed of the conventions of the zero-width bit-field records' signatures, appended
/// after the nested ones (found by lua-adapter's native differential test, not by the
/// catalogue: gcc 12 classifies `union { float f; int : 0; }` as INTEGER).
pub const ZERO_WIDTH_SEED: u64 = 0x6c75_6166_6669_0003;

/// Unions with a zero-width bit-field (gcc 12's union walk counts it as a 1-byte integer),
/// alone and at offsets 4, 8 and 12 of a struct, and a struct with one (which gcc skips).
fn zero_width_union_records(records: &mut Vec<RecordDecl>) -> Vec<usize> {
    let zero =
        |k: IntKind| FieldDecl { name: None, ty: int(k), bits: Some(0), aligned: None, packed: false, flexible: false };
    let (float, double) = (Ty::Scalar(Scalar::Float), Ty::Scalar(Scalar::Double));
    let union = |records: &mut Vec<RecordDecl>, member: Ty, k: IntKind| {
        let r = make_record(records, RecordKind::Union, vec![named(0, member), zero(k)], false, None, None);
        records.push(r);
        records.len() - 1
    };
    let mut out = Vec::new();
    // union { float f; int : 0; }, union { double d[2]; long long : 0; }, union { float f; char : 0; }
    out.push(union(records, float.clone(), IntKind::Int));
    out.push(union(records, Ty::Array(Box::new(double.clone()), 2), IntKind::LongLong));
    out.push(union(records, float.clone(), IntKind::Char));
    // struct { float a; union { float f[3]; long long : 0; } u; }
    let u = union(records, Ty::Array(Box::new(float.clone()), 3), IntKind::LongLong);
    out.push(push_record(records, RecordKind::Struct, vec![float.clone(), Ty::Record(u)], PLAIN));
    // struct { double a; union { float f; int : 0; } u; float b; }
    out.push(push_record(records, RecordKind::Struct, vec![double, Ty::Record(out[0]), float.clone()], PLAIN));
    // struct { float a, b, c; union { float f; long long : 0; } u; }
    let u = union(records, float.clone(), IntKind::LongLong);
    out.push(push_record(
        records,
        RecordKind::Struct,
        vec![float.clone(), float.clone(), float.clone(), Ty::Record(u)],
        PLAIN,
    ));
    // struct { float a; int : 0; float b; }
    let r = make_record(
        records,
        RecordKind::Struct,
        vec![named(0, float.clone()), zero(IntKind::Int), named(2, float)],
        false,
        None,
        None,
    );
    records.push(r);
    out.push(records.len() - 1);
    out
}

/// The seed of the conventions of the over-aligned records' signatures, appended after the
/// zero-width ones (a SysV plan asked for a 32-byte aligned stack and the stub kept 16).
pub const OVER_ALIGNED_SEED: u64 = 0x6c75_6166_6669_0004;

/// Records aligned to 32 and 64: by `aligned(n)` on the record (small and larger than two
/// eightbytes, a struct and a union), by `aligned(n)` on a member, and nested in a struct.
fn over_aligned_records(records: &mut Vec<RecordDecl>) -> Vec<usize> {
    let (float, double) = (Ty::Scalar(Scalar::Float), Ty::Scalar(Scalar::Double));
    let aligned = |n| Attrs { packed: false, aligned: Some(n) };
    let member_aligned = |records: &mut Vec<RecordDecl>, first: Ty, second: Ty, n: u32| {
        let mut fields = vec![named(0, first), named(1, second)];
        fields[1].aligned = Some(n);
        let r = make_record(records, RecordKind::Struct, fields, false, None, None);
        records.push(r);
        records.len() - 1
    };
    let mut out = vec![
        // struct __attribute__((aligned(32))) { int m0; }, and aligned(64)
        push_record(records, RecordKind::Struct, vec![int(IntKind::Int)], aligned(32)),
        push_record(records, RecordKind::Struct, vec![int(IntKind::Int)], aligned(64)),
        // struct __attribute__((aligned(32))) { double m0[5]; }: 40 bytes of data in 64
        push_record(records, RecordKind::Struct, vec![Ty::Array(Box::new(double.clone()), 5)], aligned(32)),
        // union __attribute__((aligned(64))) { float m0; char m1[3]; }
        push_record(
            records,
            RecordKind::Union,
            vec![float.clone(), Ty::Array(Box::new(int(IntKind::Char)), 3)],
            aligned(64),
        ),
        // struct { char m0; double m1 __attribute__((aligned(32))); }
        member_aligned(records, int(IntKind::Char), double, 32),
        // struct { float m0; int m1 __attribute__((aligned(64))); }
        member_aligned(records, float, int(IntKind::Int), 64),
    ];
    // struct { short m0; struct __attribute__((aligned(32))) { int m0; } m1; }
    out.push(push_record(records, RecordKind::Struct, vec![int(IntKind::Short), Ty::Record(out[0])], PLAIN));
    out
}

/// The nested class's signatures for each over-aligned record R, and `void f(int x7, R, int)`:
/// R on the stack after a stack argument, so its slot is padded up to its alignment.
fn gen_over_aligned_signatures(records: &[RecordDecl], over: &[usize]) -> Vec<SigDecl> {
    let mut sigs = gen_nested_signatures(records, over, OVER_ALIGNED_SEED);
    let mut rng = Rng::new(OVER_ALIGNED_SEED ^ 1);
    let int = int(IntKind::Int);
    for &n in over {
        let mut params = vec![int.clone(); 7];
        params.extend([Ty::Record(n), int.clone()]);
        sigs.push(SigDecl { ret: None, params, variadic: false, varargs: Vec::new(), conv: random_conv(&mut rng) });
    }
    sigs
}

/// A signature of `conv` (x86 only) from its return and parameter types.
fn sig(ret: Option<Ty>, params: Vec<Ty>, conv: CallConv) -> SigDecl {
    SigDecl { ret, params, variadic: false, varargs: Vec::new(), conv }
}

/// Bools of 2, 4 and 8 bytes (`_Bool int`) to abi-model, the unsigned integers of those
/// sizes to the compilers: passed and returned in every position and x86 convention.
fn typed_int_signatures() -> Vec<SigDecl> {
    let (i, d, ll) = (int(IntKind::Int), Ty::Scalar(Scalar::Double), int(IntKind::LongLong));
    let mut sigs = Vec::new();
    for n in [2, 4, 8] {
        let wb = Ty::Scalar(Scalar::WideBool(n));
        for conv in [CallConv::Cdecl, CallConv::Stdcall, CallConv::Fastcall, CallConv::Thiscall] {
            sigs.push(sig(Some(wb.clone()), vec![wb.clone(), i.clone(), wb.clone()], conv));
        }
        sigs.push(sig(None, vec![i.clone(), wb.clone(), d.clone(), wb.clone()], CallConv::Cdecl));
        let mut past = vec![ll.clone(); 6];
        past.extend([wb.clone(), i.clone(), wb.clone()]);
        sigs.push(sig(Some(wb), past, CallConv::Cdecl));
    }
    sigs
}

/// `__int128` (both signs) and 4-byte pointers (`unsigned int` to the compilers): in
/// registers, past them (whole to the stack, 16-aligned), after an odd number of stack
/// slots, among floating arguments, returned, and after `...`.
fn x86_64_only_signatures() -> Vec<SigDecl> {
    let (i, d, ll) = (int(IntKind::Int), Ty::Scalar(Scalar::Double), int(IntKind::LongLong));
    let f = Ty::Scalar(Scalar::Float);
    let i128 = Ty::Scalar(Scalar::Int128 { signed: true });
    let u128 = Ty::Scalar(Scalar::Int128 { signed: false });
    let p32 = Ty::Scalar(Scalar::Ptr32);
    let cdecl = CallConv::Cdecl;
    let mut sigs = vec![
        sig(Some(i128.clone()), vec![i128.clone()], cdecl),
        sig(Some(u128.clone()), vec![u128.clone(), i.clone(), i128.clone()], cdecl),
        sig(Some(ll.clone()), [vec![ll.clone(); 5], vec![i128.clone(), ll.clone()]].concat(), cdecl),
        sig(Some(i128.clone()), [vec![ll.clone(); 7], vec![i128.clone(), i.clone()]].concat(), cdecl),
        sig(None, vec![i128.clone(); 4], cdecl),
        sig(Some(d.clone()), vec![d.clone(), i128.clone(), f.clone(), u128.clone()], cdecl),
        sig(Some(p32.clone()), vec![p32.clone()], cdecl),
        sig(None, vec![i.clone(), p32.clone(), d.clone(), p32.clone()], cdecl),
        sig(Some(p32.clone()), [vec![ll.clone(); 6], vec![p32.clone(), i.clone(), p32.clone()]].concat(), cdecl),
    ];
    sigs.push(SigDecl {
        ret: Some(i.clone()),
        params: vec![i.clone()],
        variadic: true,
        varargs: vec![i128, i],
        conv: cdecl,
    });
    sigs
}
