//! The signature and layout catalogue: one deterministic list of C records and signatures
//! (generated from [`spec::SEED`]), turned per target into abi-model types, argument and
//! return values, and the names of the fixture images that compiled them.
//!
//! The same [`spec::Spec`] serves every target: [`cgen`](crate::cgen) prints it as C, the
//! compilers lay it out and call it, and [`catalogue`] builds it into an
//! [`abi_model::TypeTable`] so abi-model's answers can be compared with the compilers'.
//! Calling conventions exist only on x86: on x86-64 every signature is the target's one
//! convention and no attribute is written.

pub mod spec;

use abi_model::{
    Arch, CallConv, Field, FloatKind, FuncType, QualType, RecordAttrs, RecordKind, Signature, Target, TypeId, TypeTable,
};
use spec::{declarator, Rng, Scalar, SigDecl, Spec, Ty, ENUMS, SEED};
use std::fmt;
use std::sync::OnceLock;

/// Signatures per fixture image: keeps each image around a megabyte and lets the compilers
/// work in parallel.
pub const SIGS_PER_IMAGE: usize = 1600;

/// Symbol of the table of callee addresses (`void *const callee_table[]`), one entry per
/// signature of the image, in catalogue order.
pub const CALLEE_TABLE: &str = "callee_table";
/// Symbol of the table of caller addresses (`void *const caller_table[]`): each caller is
/// `void caller_N(void *fn)` in the default C convention.
pub const CALLER_TABLE: &str = "caller_table";
/// Symbol of the record buffer (`unsigned char rec_buf[REC_BUF_SIZE]`).
pub const REC_BUF: &str = "rec_buf";
/// Symbol of the number of bytes recorded so far (`unsigned int rec_len`); reset it to 0
/// before each call.
pub const REC_LEN: &str = "rec_len";
/// Size of `rec_buf`.
pub const REC_BUF_SIZE: usize = 16384;
/// Symbol of the image's first signature index (`const unsigned int sig_first`).
pub const SIG_FIRST: &str = "sig_first";
/// Symbol of the image's signature count (`const unsigned int sig_count`).
pub const SIG_COUNT: &str = "sig_count";
/// The entry point every fixture image defines (an empty function; nothing runs it).
pub const ENTRY: &str = "fixture_entry";

/// The catalogue's target-independent part, generated once per process.
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(spec::generate)
}

/// The part `target` uses: [`spec()`] on i386, with the vector types appended on x86-64
/// ([`spec::generate_x86_64`]; i386 refuses vectors by value).
pub fn spec_for(target: Target) -> &'static Spec {
    static SPEC_X86_64: OnceLock<Spec> = OnceLock::new();
    match target.arch {
        Arch::X86 => spec(),
        Arch::X86_64 => SPEC_X86_64.get_or_init(spec::generate_x86_64),
    }
}

/// A value's bytes as the target lays it out, with the mask of the bytes (bits, for
/// bit-fields) that carry meaning: padding and bits outside bit-fields are 0 in `mask` and in
/// `bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// The value, `sizeof` bytes.
    pub bytes: Vec<u8>,
    /// 0xff for a meaningful byte, 0 for padding, partial for bit-fields.
    pub mask: Vec<u8>,
}

impl Value {
    /// True if `actual` equals this value on every meaningful bit.
    pub fn matches(&self, actual: &[u8]) -> bool {
        actual.len() == self.bytes.len()
            && self.bytes.iter().zip(&self.mask).zip(actual).all(|((e, m), a)| e & m == a & m)
    }
}

/// One signature of the catalogue on one target.
#[derive(Clone, Debug)]
pub struct CatSignature {
    /// Index in the catalogue (the `N` of `callee_N` / `caller_N`).
    pub index: usize,
    /// The callee's C declaration, e.g. `struct R5 __attribute__((stdcall)) callee_7(int a0, double a1)`.
    pub c_decl: String,
    /// The signature for abi-model, in [`Catalogue::table`].
    pub sig: Signature,
    /// For a variadic signature, the types passed after `...` by the caller.
    pub varargs: Vec<QualType>,
    /// The values the caller passes: fixed arguments, then the variadic ones.
    pub args: Vec<Value>,
    /// The value the callee returns (`None` for `void`).
    pub ret: Option<Value>,
    /// Which fixture image holds it ([`Catalogue::images`]).
    pub image: usize,
    /// Its index in that image's `callee_table` and `caller_table`.
    pub slot: usize,
}

/// One fixture image of signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigImage {
    /// The file stem, e.g. `sig_03` (the C file is `sig_03.c`).
    pub stem: String,
    /// Index of its first signature.
    pub first: usize,
    /// Number of signatures.
    pub count: usize,
}

/// Why a catalogue could not be built for a target: abi-model rejected a type the compilers
/// accept (a bug in one of the two).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueError {
    /// The target.
    pub target: Target,
    /// What failed, with the C text involved.
    pub message: String,
}

impl fmt::Display for CatalogueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.target, self.message)
    }
}

impl std::error::Error for CatalogueError {}

/// The catalogue on one target.
#[derive(Clone, Debug)]
pub struct Catalogue {
    /// The target.
    pub target: Target,
    /// Every type of the catalogue.
    pub table: TypeTable,
    /// The target-independent catalogue.
    pub spec: &'static Spec,
    /// The id of record `n` (`struct Rn` / `union Rn`) in `table`.
    pub record_ids: Vec<TypeId>,
    /// Every signature, in order.
    pub signatures: Vec<CatSignature>,
    /// The images of signatures, in order.
    pub images: Vec<SigImage>,
}

/// The catalogue on `target`.
///
/// # Panics
/// If abi-model rejects a catalogue type (see [`try_catalogue`] for the error instead).
pub fn catalogue(target: Target) -> Catalogue {
    try_catalogue(target).unwrap_or_else(|e| panic!("{e}"))
}

/// The catalogue on `target`, or the first type abi-model rejects.
pub fn try_catalogue(target: Target) -> Result<Catalogue, CatalogueError> {
    let spec = spec_for(target);
    let mut b = Builder::new(target, spec)?;
    // The signatures this target has: all but the x86-64-only ones, which come last.
    let has = |s: &SigDecl| target.arch == Arch::X86_64 || !s.x86_64_only();
    let count = spec.signatures.iter().take_while(|s| has(s)).count();
    if spec.signatures[count..].iter().any(has) {
        return Err(CatalogueError {
            target,
            message: format!("signature {count} is x86-64-only but a later one is not: the catalogue is no prefix"),
        });
    }
    let mut signatures = Vec::with_capacity(count);
    for (index, s) in spec.signatures[..count].iter().enumerate() {
        signatures.push(b.signature(index, s)?);
    }
    let images = (0..count.div_ceil(SIGS_PER_IMAGE))
        .map(|i| {
            let first = i * SIGS_PER_IMAGE;
            SigImage { stem: format!("sig_{i:02}"), first, count: SIGS_PER_IMAGE.min(count - first) }
        })
        .collect();
    Ok(Catalogue { target, table: b.table, spec, record_ids: b.record_ids, signatures, images })
}

impl Catalogue {
    /// The C definition of record `n`.
    pub fn record_c(&self, n: usize) -> String {
        self.spec.records[n].c_definition(&self.spec.records, n)
    }

    /// The file name of a fixture image with this stem on this target (`.elf` or `.exe`).
    pub fn image_file(&self, stem: &str) -> String {
        image_file(self.target, stem)
    }
}

/// The file name of a fixture image with this stem on `target` (`.elf` or `.exe`).
pub fn image_file(target: Target, stem: &str) -> String {
    match target.os {
        abi_model::Os::Linux => format!("{stem}.elf"),
        abi_model::Os::Windows => format!("{stem}.exe"),
    }
}

/// The attribute that selects `conv` on `target` (empty for the default convention and on
/// x86-64, where the x86 conventions do not exist).
pub fn conv_attribute(target: Target, conv: CallConv) -> &'static str {
    if target.arch != Arch::X86 {
        return "";
    }
    match conv {
        CallConv::Cdecl => "",
        CallConv::Stdcall => "__attribute__((stdcall)) ",
        CallConv::Fastcall => "__attribute__((fastcall)) ",
        CallConv::Thiscall => "__attribute__((thiscall)) ",
    }
}

/// The convention a catalogue signature has on `target`.
pub fn conv_on(target: Target, conv: CallConv) -> CallConv {
    if target.arch == Arch::X86 {
        conv
    } else {
        CallConv::Cdecl
    }
}

/// Builds the catalogue's types into a [`TypeTable`] and its values from their layouts.
struct Builder {
    target: Target,
    spec: &'static Spec,
    table: TypeTable,
    record_ids: Vec<TypeId>,
    enum_ids: Vec<TypeId>,
    void_ptr: TypeId,
    fn_ptr: TypeId,
    /// Per [`spec::VectorKind::ALL`], its type.
    vector_ids: Vec<TypeId>,
    /// `int128_t`, `uint128_t`, the 2-, 4- and 8-byte bools, `void *__ptr32` (on x86:
    /// `void *`, which no signature of that target uses in its place).
    typed: [TypeId; 6],
}

impl Builder {
    fn new(target: Target, spec: &'static Spec) -> Result<Builder, CatalogueError> {
        let err = |message: String| CatalogueError { target, message };
        let mut table = TypeTable::new(target);
        let mut enum_ids = Vec::new();
        for (tag, constants) in ENUMS {
            let id = table.new_enum(Some(tag));
            table
                .define_enum(id, constants.iter().map(|(n, v)| (n.to_string(), *v)).collect())
                .map_err(|e| err(format!("enum {tag}: {e}")))?;
            enum_ids.push(id);
        }
        let void = table.void();
        let void_ptr = table.pointer_to(void);
        let f =
            table.function(FuncType { ret: void.into(), params: Vec::new(), variadic: false, conv: CallConv::Cdecl });
        let fn_ptr = table.pointer_to(f);
        let mut vector_ids = Vec::with_capacity(spec::VectorKind::ALL.len());
        for v in spec::VectorKind::ALL {
            let (elem, n) = v.shape();
            let elem = match elem {
                Scalar::Float => table.float(FloatKind::Float),
                Scalar::Double => table.float(FloatKind::Double),
                Scalar::Int(k) => table.int(k),
                other => unreachable!("vector element {other:?}"),
            };
            vector_ids.push(table.try_vector_of(elem.into(), n).map_err(|e| err(format!("{}: {e}", v.c_name())))?);
        }
        let typed_err = |e: abi_model::TypeError| err(format!("a typed integer: {e}"));
        let typed = [
            table.try_wide_int(16, true).map_err(typed_err)?,
            table.try_wide_int(16, false).map_err(typed_err)?,
            table.try_wide_bool(2).map_err(typed_err)?,
            table.try_wide_bool(4).map_err(typed_err)?,
            table.try_wide_bool(8).map_err(typed_err)?,
            match target.arch {
                Arch::X86_64 => table.try_ptr32_to(void).map_err(typed_err)?,
                Arch::X86 => void_ptr,
            },
        ];
        let mut b =
            Builder { target, spec, table, record_ids: Vec::new(), enum_ids, void_ptr, fn_ptr, vector_ids, typed };
        for (n, r) in spec.records.iter().enumerate() {
            let id = b.table.new_record(r.kind, Some(&format!("R{n}")));
            let mut fields = Vec::with_capacity(r.fields.len());
            for f in &r.fields {
                let ty = b.ty_id(&f.ty);
                let ty = if f.flexible { b.table.array_of(ty, abi_model::ArrayLen::Flexible) } else { ty };
                fields.push(Field {
                    name: f.name.clone(),
                    ty: ty.into(),
                    bit_width: f.bits,
                    aligned: f.aligned,
                    packed: f.packed,
                });
            }
            let attrs = RecordAttrs { packed: r.packed, aligned: r.aligned, pack: r.pack };
            b.table
                .define_record(id, fields, attrs)
                .map_err(|e| err(format!("{e} in\n{}", r.c_definition(&spec.records, n))))?;
            b.record_ids.push(id);
        }
        Ok(b)
    }

    fn scalar_id(&self, s: Scalar) -> TypeId {
        match s {
            Scalar::Bool => self.table.bool(),
            Scalar::Int(k) => self.table.int(k),
            Scalar::Float => self.table.float(FloatKind::Float),
            Scalar::Double => self.table.float(FloatKind::Double),
            Scalar::ComplexFloat => self.table.complex(FloatKind::Float),
            Scalar::ComplexDouble => self.table.complex(FloatKind::Double),
            Scalar::Enum(n) => self.enum_ids[n as usize],
            Scalar::Ptr => self.void_ptr,
            Scalar::FnPtr => self.fn_ptr,
            Scalar::Vector(v) => self.vector_ids[spec::VectorKind::ALL.iter().position(|k| *k == v).unwrap_or(0)],
            // Built in `Builder::new` (x86-64 only for `__int128` and `__ptr32`).
            Scalar::Int128 { signed: true } => self.typed[0],
            Scalar::Int128 { signed: false } => self.typed[1],
            Scalar::WideBool(2) => self.typed[2],
            Scalar::WideBool(4) => self.typed[3],
            Scalar::WideBool(_) => self.typed[4],
            Scalar::Ptr32 => self.typed[5],
        }
    }

    fn ty_id(&mut self, ty: &Ty) -> TypeId {
        match ty {
            Ty::Scalar(s) => self.scalar_id(*s),
            Ty::Record(n) => self.record_ids[*n],
            Ty::Array(elem, n) => {
                let e = self.ty_id(elem);
                self.table.array_of(e, abi_model::ArrayLen::Fixed(u64::from(*n)))
            }
        }
    }

    fn size_of(&self, ty: &Ty) -> usize {
        let size = match ty {
            Ty::Scalar(s) => self.table.size_of(self.scalar_id(*s)),
            Ty::Record(n) => self.table.size_of(self.record_ids[*n]),
            Ty::Array(elem, n) => return self.size_of(elem) * *n as usize,
        };
        // Every catalogue type was laid out when its record was defined.
        size.map_or(0, |s| s as usize)
    }

    fn signature(&mut self, index: usize, s: &SigDecl) -> Result<CatSignature, CatalogueError> {
        let records = &self.spec.records;
        let conv = conv_on(self.target, s.conv);
        let ret_c = s.ret.as_ref().map_or_else(|| "void".to_string(), |t| declarator(records, t, ""));
        let mut params_c: Vec<String> =
            s.params.iter().enumerate().map(|(i, t)| declarator(records, t, &format!("a{i}"))).collect();
        if s.variadic {
            params_c.push("...".into());
        }
        if params_c.is_empty() {
            params_c.push("void".into());
        }
        let c_decl = format!("{ret_c} {}callee_{index}({})", conv_attribute(self.target, conv), params_c.join(", "));
        let ret = match &s.ret {
            Some(t) => self.ty_id(t),
            None => self.table.void(),
        };
        let params = s.params.iter().map(|t| self.ty_id(t).into()).collect();
        let varargs = s.varargs.iter().map(|t| self.ty_id(t).into()).collect();
        let sig = Signature::new(ret, params, s.variadic, conv);
        // Values depend only on the signature's index and the target's layouts.
        let mut rng = Rng::new(SEED ^ (index as u64 + 1).wrapping_mul(0xd134_2543_de82_ef95));
        let args = s.params.iter().chain(&s.varargs).map(|t| self.value(t, &mut rng)).collect();
        let ret_value = s.ret.as_ref().map(|t| self.value(t, &mut rng));
        Ok(CatSignature {
            index,
            c_decl,
            sig,
            varargs,
            args,
            ret: ret_value,
            image: index / SIGS_PER_IMAGE,
            slot: index % SIGS_PER_IMAGE,
        })
    }

    fn value(&self, ty: &Ty, rng: &mut Rng) -> Value {
        let n = self.size_of(ty);
        let mut v = Value { bytes: vec![0; n], mask: vec![0; n] };
        self.fill(ty, 0, rng, &mut v);
        v
    }

    fn fill(&self, ty: &Ty, at: usize, rng: &mut Rng, v: &mut Value) {
        match ty {
            Ty::Scalar(s) => self.fill_scalar(*s, at, rng, v),
            Ty::Array(elem, n) => {
                let size = self.size_of(elem);
                for i in 0..*n as usize {
                    self.fill(elem, at + i * size, rng, v);
                }
            }
            Ty::Record(n) => self.fill_record(*n, at, rng, v),
        }
    }

    fn fill_record(&self, n: usize, at: usize, rng: &mut Rng, v: &mut Value) {
        let decl = &self.spec.records[n];
        let Some(body) = self.table.record_body(self.record_ids[n]) else {
            return;
        };
        let members = decl.fields.iter().zip(&body.layout.fields);
        match decl.kind {
            RecordKind::Struct => {
                for (f, l) in members {
                    if f.flexible || (f.bits.is_some() && f.name.is_none()) {
                        continue;
                    }
                    match l.bits {
                        Some(b) => set_random_bits(v, at as u64 * 8 + b.bit_offset, b.width, rng),
                        None => self.fill(&f.ty, at + l.offset as usize, rng, v),
                    }
                }
            }
            RecordKind::Union => {
                // Only the member stored last has a value: fill the largest named one.
                let size = |f: &spec::FieldDecl, l: &abi_model::FieldLayout| match l.bits {
                    Some(b) => (b.bit_offset + u64::from(b.width)).div_ceil(8) as usize,
                    None => self.size_of(&f.ty),
                };
                let largest =
                    members.filter(|(f, _)| f.name.is_some()).fold(None, |best: Option<(usize, _, _)>, (f, l)| {
                        let s = size(f, l);
                        match best {
                            Some((bs, _, _)) if bs >= s => best,
                            _ => Some((s, f, l)),
                        }
                    });
                if let Some((_, f, l)) = largest {
                    match l.bits {
                        Some(b) => set_random_bits(v, at as u64 * 8 + b.bit_offset, b.width, rng),
                        None => self.fill(&f.ty, at + l.offset as usize, rng, v),
                    }
                }
            }
        }
    }

    fn fill_scalar(&self, s: Scalar, at: usize, rng: &mut Rng, v: &mut Value) {
        let mut put = |bytes: &[u8]| {
            v.bytes[at..at + bytes.len()].copy_from_slice(bytes);
            v.mask[at..at + bytes.len()].fill(0xff);
        };
        match s {
            // A _Bool holds 0 or 1; any other byte is not a value of the type.
            Scalar::Bool => put(&[rng.below(2) as u8]),
            Scalar::Float => put(&normal_f32(rng).to_le_bytes()),
            Scalar::Double => put(&normal_f64(rng).to_le_bytes()),
            Scalar::ComplexFloat => {
                let (re, im) = (normal_f32(rng), normal_f32(rng));
                put(&[re.to_le_bytes(), im.to_le_bytes()].concat());
            }
            Scalar::ComplexDouble => {
                let (re, im) = (normal_f64(rng), normal_f64(rng));
                put(&[re.to_le_bytes(), im.to_le_bytes()].concat());
            }
            Scalar::Vector(k) => {
                // Element by element, so float elements are normal numbers.
                let (elem, n) = k.shape();
                let size = k.size() as usize / n as usize;
                for i in 0..n as usize {
                    self.fill_scalar(elem, at + i * size, rng, v);
                }
            }
            Scalar::Int128 { .. } => put(&[rng.next_u64().to_le_bytes(), rng.next_u64().to_le_bytes()].concat()),
            // A bool holds 0 or 1, in all of its bytes.
            Scalar::WideBool(n) => {
                let mut b = vec![0; usize::from(n)];
                b[0] = rng.below(2) as u8;
                put(&b);
            }
            _ => {
                let n = self.table.size_of(self.scalar_id(s)).map_or(0, |n| n as usize);
                let bytes = rng.next_u64().to_le_bytes();
                put(&bytes[..n]);
            }
        }
    }
}

/// A random finite, normal `f32` bit pattern: random sign and fraction, exponent never 0
/// (zero/subnormal) nor 255 (infinity/NaN).
fn normal_f32(rng: &mut Rng) -> u32 {
    let r = rng.next_u64();
    let exp = 1 + (r >> 40) % 254;
    ((r as u32) & 0x807f_ffff) | ((exp as u32) << 23)
}

/// A random finite, normal `f64` bit pattern (exponent never 0 nor 2047).
fn normal_f64(rng: &mut Rng) -> u64 {
    let r = rng.next_u64();
    let exp = 1 + rng.next_u64() % 2046;
    (r & 0x800f_ffff_ffff_ffff) | (exp << 52)
}

fn set_random_bits(v: &mut Value, first: u64, width: u32, rng: &mut Rng) {
    for bit in first..first + u64::from(width) {
        let (byte, shift) = ((bit / 8) as usize, bit % 8);
        if byte >= v.bytes.len() {
            return;
        }
        v.mask[byte] |= 1 << shift;
        if rng.below(2) == 1 {
            v.bytes[byte] |= 1 << shift;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_large_enough_on_every_target() {
        for t in Target::ALL {
            let c = catalogue(t);
            assert!(c.signatures.len() >= 10_000, "{t}: {} signatures", c.signatures.len());
            assert!(c.spec.records.len() >= 5_000);
        }
    }

    #[test]
    fn generation_is_deterministic() {
        let a = spec::generate();
        let b = spec::generate();
        assert_eq!(a.records, b.records);
        assert_eq!(a.signatures, b.signatures);
    }

    #[test]
    fn values_follow_their_masks_and_floats_are_normal() {
        let c = catalogue(Target::X64_SYSV);
        for s in c.signatures.iter().take(3000) {
            for v in s.args.iter().chain(&s.ret) {
                assert_eq!(v.bytes.len(), v.mask.len());
                assert!(
                    v.bytes.iter().zip(&v.mask).all(|(b, m)| b & !m == 0),
                    "callee_{}: bits outside the mask",
                    s.index
                );
            }
        }
        let mut rng = Rng::new(1);
        for _ in 0..10_000 {
            assert!(f32::from_bits(normal_f32(&mut rng)).is_normal());
            assert!(f64::from_bits(normal_f64(&mut rng)).is_normal());
        }
    }

    #[test]
    fn nested_packed_and_aligned_records_are_covered_as_arguments_returns_and_callbacks() {
        // Issue 14 §1: the class gcc classifies by absolute member offsets. Depth 2 and 3,
        // packed and aligned on outer records, inner records and members; every record passed,
        // returned, and taken by a callback (non-variadic signatures run both directions).
        let spec = spec();
        let depth = |n: usize| -> usize {
            fn d(spec: &Spec, ty: &spec::Ty) -> usize {
                match ty {
                    spec::Ty::Scalar(_) => 0,
                    spec::Ty::Array(e, _) => d(spec, e),
                    spec::Ty::Record(i) => {
                        1 + spec.records[*i].fields.iter().map(|f| d(spec, &f.ty)).max().unwrap_or(0)
                    }
                }
            }
            d(spec, &spec::Ty::Record(n))
        };
        let nested = &spec.nested_records;
        assert!(nested.iter().filter(|&&n| depth(n) == 2).count() >= 200);
        assert!(nested.iter().filter(|&&n| depth(n) == 3).count() >= 200);
        let inner = |n: usize| {
            spec.records[n]
                .fields
                .iter()
                .filter_map(|f| match &f.ty {
                    spec::Ty::Record(i) => Some(*i),
                    spec::Ty::Array(e, _) => match **e {
                        spec::Ty::Record(i) => Some(i),
                        _ => None,
                    },
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        let count = |pred: &dyn Fn(usize) -> bool| nested.iter().filter(|&&n| pred(n)).count();
        assert!(count(&|n| inner(n).iter().any(|&i| spec.records[i].packed)) >= 100, "packed inner records");
        assert!(count(&|n| inner(n).iter().any(|&i| spec.records[i].aligned.is_some())) >= 50, "aligned inner records");
        assert!(count(&|n| spec.records[n].packed) >= 100 && count(&|n| spec.records[n].aligned.is_some()) >= 50);
        assert!(count(&|n| spec.records[n].fields.iter().any(|f| f.aligned.is_some() || f.packed)) >= 50);
        for &n in nested {
            let r = spec::Ty::Record(n);
            let uses = |pred: &dyn Fn(&SigDecl) -> bool| spec.signatures.iter().any(pred);
            assert!(uses(&|s| !s.variadic && s.params.contains(&r)), "R{n} as a (callback) argument");
            assert!(uses(&|s| !s.variadic && s.ret.as_ref() == Some(&r)), "R{n} returned");
            assert!(uses(&|s| s.varargs.contains(&r)), "R{n} as a variadic argument");
        }
        // Both sides of the SysV rule, within two eightbytes.
        let c = catalogue(Target::X64_SYSV);
        let (mut regs, mut memory) = (0, 0);
        for &n in nested {
            let id = c.record_ids[n];
            if c.table.size_of(id).unwrap() <= 16 {
                match abi_model::x64_sysv::classify_record(&c.table, id).unwrap() {
                    Ok(_) => regs += 1,
                    Err(_) => memory += 1,
                }
            }
        }
        assert!(regs >= 300 && memory >= 80, "{regs} in registers, {memory} in memory");
    }

    #[test]
    fn vectors_are_in_the_x86_64_catalogues_only_passed_returned_and_variadic() {
        // i386 refuses vectors by value: its catalogue (and fixtures) are the plain spec,
        // without its x86-64-only suffix (`__int128`, `__ptr32`).
        let plain = spec().signatures.iter().filter(|s| !s.x86_64_only()).count();
        assert_eq!(catalogue(Target::X86_LINUX).signatures.len(), plain);
        for target in [Target::X64_SYSV, Target::X64_WIN] {
            let c = catalogue(target);
            let decls = &c.spec.signatures;
            for v in spec::VectorKind::ALL {
                let t = Ty::Scalar(Scalar::Vector(v));
                assert!(decls.iter().any(|s| s.params.contains(&t)), "{v:?} as an argument");
                assert!(decls.iter().any(|s| s.ret.as_ref() == Some(&t)), "{v:?} returned");
                assert!(decls.iter().any(|s| s.varargs.contains(&t)), "{v:?} as a variadic argument");
            }
            // Both new return rules are exercised: all of xmm0 (SysV SSE+SSEUP, Win64 __m128).
            let full = c
                .signatures
                .iter()
                .filter(|s| crate::matrix::plan_of(&c, s).is_ok_and(|p| p.ret.loc == abi_model::RetLoc::Xmm0Full))
                .count();
            assert!(full >= 6, "{target}: {full} signatures return in all of xmm0");
        }
    }

    #[test]
    fn x86_64_signatures_carry_no_x86_convention() {
        let c = catalogue(Target::X64_WIN);
        assert!(c.signatures.iter().all(|s| s.sig.conv == CallConv::Cdecl && !s.c_decl.contains("__attribute__")));
        let x = catalogue(Target::X86_WIN);
        assert!(x.signatures.iter().any(|s| s.sig.conv == CallConv::Thiscall && s.c_decl.contains("thiscall")));
    }
}
