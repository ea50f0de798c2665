//! Sizes, alignments and record layouts on each target.
//!
//! Scalars follow each target's psABI table. Records follow gcc's rules on the System V
//! targets and MSVC's on the Windows targets (which mingw follows by default,
//! `-mms-bitfields`). The compiled layout fixtures are the oracle for both.

use crate::types::{ArrayLen, CType, Field, FloatKind, IntKind, RecordAttrs, RecordKind, TypeError, TypeId, TypeTable};
use crate::{Arch, DataModel, Os, RecordRules, Target};

/// Size and alignment of a type, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    /// `sizeof`
    pub size: u64,
    /// `_Alignof`
    pub align: u32,
}

/// Where a bit-field's bits are: bit numbers count from bit 0 of the record's first byte,
/// little-endian, so bit `n` is bit `n % 8` of byte `n / 8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BitPos {
    /// The first (least significant) bit.
    pub bit_offset: u64,
    /// Number of bits.
    pub width: u32,
}

/// Where one member sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FieldLayout {
    /// Byte offset of the member (for a bit-field: of the byte holding its first bit).
    pub offset: u64,
    /// For a bit-field, its bits.
    pub bits: Option<BitPos>,
}

/// The layout of a struct or union: one [`FieldLayout`] per declared member, in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RecordLayout {
    /// `sizeof` (a flexible or `[?]` last member counts as 0 elements).
    pub size: u64,
    /// `_Alignof`
    pub align: u32,
    /// Per declared member, in declaration order.
    pub fields: Vec<FieldLayout>,
}

fn unsupported(ty: &str, reason: &'static str) -> TypeError {
    TypeError::Unsupported { ty: ty.to_string(), reason }
}

/// `long long` and `double` align to 4 on i386 Linux (i386 psABI, Table 2.1: "double ... 4",
/// as gcc's `_Alignof` reports); to 8 everywhere else, Win32 included (MSVC aligns 8-byte
/// scalars to 8).
fn eight_byte_scalar_align(target: Target) -> u32 {
    if target == Target::X86_LINUX {
        4
    } else {
        8
    }
}

/// Layout of an integer kind on `target`.
pub fn int_layout(target: Target, kind: IntKind) -> Layout {
    let size: u64 = match kind {
        IntKind::Char | IntKind::SChar | IntKind::UChar => 1,
        IntKind::Short | IntKind::UShort => 2,
        IntKind::Int | IntKind::UInt => 4,
        // LP64 is the only data model with a 64-bit long.
        IntKind::Long | IntKind::ULong => match target.data_model() {
            DataModel::Lp64 => 8,
            DataModel::Ilp32 | DataModel::Llp64 => 4,
        },
        IntKind::LongLong | IntKind::ULongLong => 8,
    };
    let align = if size == 8 { eight_byte_scalar_align(target) } else { size as u32 };
    Layout { size, align }
}

/// Layout of a 16- or 32-byte integer (`mode(TI)`, `mode(OI)`): aligned to 16 (LuaJIT's
/// `cp_decl_intern` caps a mode's alignment there; gcc aligns `__int128` to 16 on x86-64 and
/// Win64), except on i386 Linux, whose psABI aligns no scalar beyond 4 (LuaJIT's
/// `cp_field_align` caps such members at 4 there; gcc has no `__int128` for i386).
pub fn wide_int_layout(target: Target, size: u32) -> Layout {
    let align = if target == Target::X86_LINUX { 4 } else { size.min(16) };
    Layout { size: u64::from(size), align }
}

/// Layout of a bool of 2, 4 or 8 bytes (`_Bool int`, `_Bool __int64`: LuaJIT's `cp_decl_spec`
/// gives `_Bool` the size of the integer keyword written with it): the layout of the integer
/// of that size, natural alignment (8 bytes: 4 on i386 Linux, as `long long`).
pub fn wide_bool_layout(target: Target, size: u32) -> Layout {
    let align = if size == 8 { eight_byte_scalar_align(target) } else { size };
    Layout { size: u64::from(size), align }
}

/// Layout of a real floating type. `long double` is the x87 80-bit extended format on the
/// gcc targets, padded to 16 bytes and aligned to 16 on x86-64 (psABI §3.1.2, Figure 3.1) and
/// to 12 bytes aligned to 4 on i386 (i386 psABI, Table 2.1). On Windows MSVC makes it a
/// `double` while mingw keeps the x87 format (16/16 on x86-64, 12/4 on i686): which one a
/// library was built with is unknowable here, so it is unsupported rather than guessed.
/// Passing it by value is unsupported everywhere (the planners refuse it).
pub fn float_layout(target: Target, kind: FloatKind) -> Result<Layout, TypeError> {
    match kind {
        FloatKind::Float => Ok(Layout { size: 4, align: 4 }),
        FloatKind::Double => Ok(Layout { size: 8, align: eight_byte_scalar_align(target) }),
        FloatKind::LongDouble => match (target.os, target.arch) {
            (Os::Windows, _) => Err(unsupported("long double", "MSVC makes it a double, mingw an 80-bit x87 number")),
            (Os::Linux, Arch::X86_64) => Ok(Layout { size: 16, align: 16 }),
            (Os::Linux, Arch::X86) => Ok(Layout { size: 12, align: 4 }),
        },
    }
}

/// Size and alignment of any type in `table`.
pub fn type_layout(table: &TypeTable, id: TypeId) -> Result<Layout, TypeError> {
    let target = table.target();
    let incomplete = || TypeError::Incomplete { ty: table.display(id.into()) };
    // Aligned copies of a type, and fixed-length arrays, have their layout from when they
    // were made: chains of arrays are not walked again.
    if let Some(l) = table.cached_layout(id) {
        return Ok(l);
    }
    match table.get(id) {
        CType::Void | CType::Function(_) => Err(incomplete()),
        CType::Bool => Ok(Layout { size: 1, align: 1 }),
        CType::Int(k) => Ok(int_layout(target, *k)),
        CType::WideInt { size, .. } => Ok(wide_int_layout(target, *size)),
        CType::WideBool { size } => Ok(wide_bool_layout(target, *size)),
        CType::Float(k) => float_layout(target, *k),
        // A complex number is laid out as an array of two of its parts.
        CType::Complex(k) => float_layout(target, *k).map(|l| Layout { size: l.size * 2, align: l.align }),
        CType::Ptr32(_) => Ok(Layout { size: 4, align: 4 }),
        CType::Pointer(_) => {
            let p = target.pointer_size();
            Ok(Layout { size: p as u64, align: p })
        }
        CType::Array { elem, len } => match len {
            ArrayLen::Fixed(n) => {
                let e = type_layout(table, elem.id)?;
                let size = e.size.checked_mul(*n).ok_or_else(|| TypeError::Invalid {
                    message: format!("size of array '{}' is too large", table.display(id.into())),
                })?;
                Ok(Layout { size, align: e.align })
            }
            ArrayLen::Flexible | ArrayLen::Variable => Err(incomplete()),
        },
        CType::Record(r) => match &r.body {
            Some(b) => Ok(Layout { size: b.layout.size, align: b.layout.align }),
            None => Err(incomplete()),
        },
        CType::Enum(e) if e.complete => Ok(int_layout(target, e.repr)),
        CType::Enum(_) => Err(incomplete()),
    }
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// A member's layout facts before placement.
struct Member {
    /// Natural layout of the member's type (for a flexible/`[?]` array: size 0, the element's
    /// alignment).
    ty: Layout,
}

fn member(table: &TypeTable, field: &Field, is_last: bool, kind: RecordKind) -> Result<Member, TypeError> {
    let ty = match table.get(field.ty.id) {
        CType::Array { elem, len: ArrayLen::Flexible | ArrayLen::Variable } => {
            if !is_last || kind == RecordKind::Union {
                return Err(TypeError::Invalid {
                    message: format!(
                        "flexible array member '{}' must be the last member of a struct",
                        field.name.as_deref().unwrap_or("?")
                    ),
                });
            }
            let e = type_layout(table, elem.id)?;
            Layout { size: 0, align: e.align }
        }
        _ => type_layout(table, field.ty.id)?,
    };
    Ok(Member { ty })
}

/// Checks a bit-field's declared type and width.
fn check_bitfield(table: &TypeTable, field: &Field, width: u32, ty: Layout) -> Result<(), TypeError> {
    let name = field.name.as_deref().unwrap_or("<anonymous>");
    let is_bool = matches!(table.get(field.ty.id), CType::Bool | CType::WideBool { .. });
    let integral = is_bool || matches!(table.get(field.ty.id), CType::Int(_) | CType::Enum(_));
    if !integral {
        return Err(TypeError::Invalid { message: format!("bit-field '{name}' has non-integral type") });
    }
    let max = if is_bool { 1 } else { ty.size * 8 };
    if u64::from(width) > max {
        return Err(TypeError::Invalid {
            message: format!("width of bit-field '{name}' ({width} bits) exceeds its type ({max} bits)"),
        });
    }
    if width == 0 && field.name.is_some() {
        return Err(TypeError::Invalid { message: format!("named bit-field '{name}' has zero width") });
    }
    Ok(())
}

/// Lays out a struct or union of `fields` under the target's rules.
///
/// The rules below are gcc's (System V targets) and mingw's (`-mms-bitfields`, the Windows
/// targets), as measured by the compiled layout fixtures (`emu-harness/tests/layout.rs`) and
/// as catalogued by the repr-c project's compiler test cases; each rule names its case.
pub fn record_layout(
    table: &TypeTable,
    kind: RecordKind,
    fields: &[Field],
    attrs: RecordAttrs,
) -> Result<RecordLayout, TypeError> {
    let rules = table.target().record_rules();
    let mut state = Placer { kind, attrs, size_bits: 0, align: attrs.aligned.unwrap_or(1).max(1), ms_unit: None };
    let mut out = Vec::with_capacity(fields.len());
    for (i, field) in fields.iter().enumerate() {
        let m = member(table, field, i + 1 == fields.len(), kind)?;
        let placed = match (field.bit_width, rules) {
            (Some(w), rules) => {
                check_bitfield(table, field, w, m.ty)?;
                match rules {
                    RecordRules::Gcc => state.gcc_bitfield(field, w, &m),
                    RecordRules::Ms => state.ms_bitfield(field, w, &m),
                }
            }
            (None, RecordRules::Gcc) => state.gcc_plain(field, &m),
            (None, RecordRules::Ms) => state.ms_plain(field, &m),
        };
        out.push(placed);
    }
    let align = state.align;
    let end = state.size_bits.div_ceil(8);
    Ok(RecordLayout { size: align_up(end, align as u64), align, fields: out })
}

/// The running state of one record's layout. All positions are in bits.
struct Placer {
    kind: RecordKind,
    attrs: RecordAttrs,
    /// Bits covered so far: for a struct also the first free bit.
    size_bits: u64,
    /// The record's alignment so far, in bytes (starts at its own `aligned(n)`).
    align: u32,
    /// MS: the open bit-field storage unit: (size of its type in bits, bits still unused).
    ms_unit: Option<(u64, u64)>,
}

impl Placer {
    fn is_union(&self) -> bool {
        self.kind == RecordKind::Union
    }

    /// `packed` on the record or on the member.
    fn packed(&self, field: &Field) -> bool {
        self.attrs.packed || field.packed
    }

    /// Caps an alignment at `#pragma pack(n)`.
    fn capped(&self, align: u32) -> u32 {
        self.attrs.pack.map_or(align, |p| align.min(p))
    }

    fn place(&mut self, align_bytes: u32, size_bits: u64) -> u64 {
        let start = if self.is_union() { 0 } else { align_up(self.size_bits, u64::from(align_bytes) * 8) };
        self.size_bits = self.size_bits.max(start + size_bits);
        start
    }

    /// gcc, a member that is not a bit-field: `packed` (record or member) drops the type's
    /// alignment to 1, `aligned(n)` raises it to n, and `#pragma pack(n)` caps the result,
    /// explicit alignments included (repr-c 0084, 0085). The record takes the member's
    /// alignment.
    fn gcc_plain(&mut self, field: &Field, m: &Member) -> FieldLayout {
        let natural = if self.packed(field) { 1 } else { m.ty.align };
        let align = self.capped(natural.max(field.aligned.unwrap_or(1)));
        let start = self.place(align, m.ty.size * 8);
        self.align = self.align.max(align);
        FieldLayout { offset: start / 8, bits: None }
    }

    /// gcc (`PCC_BITFIELD_TYPE_MATTERS`), a bit-field.
    fn gcc_bitfield(&mut self, field: &Field, width: u32, m: &Member) -> FieldLayout {
        let w = u64::from(width);
        let type_bits = m.ty.size * 8;
        let type_align_bits = u64::from(m.ty.align) * 8;
        let annotation = field.aligned.unwrap_or(1);
        let first_free = if self.is_union() { 0 } else { self.size_bits };
        let align_bits = if width == 0 {
            // A zero-width bit-field aligns the next member to its type; `packed` and
            // `#pragma pack` do not apply to it (repr-c 0075).
            type_align_bits.max(u64::from(annotation) * 8)
        } else {
            // Without `aligned(n)` a bit-field may start at any bit.
            let mut align_bits = field.aligned.map_or(1, |n| u64::from(self.capped(n)) * 8);
            // Without `packed` or `#pragma pack`, a bit-field that would straddle more units
            // of its type's alignment than its type has moves to the next unit (gcc
            // `excess_unit_span`); with either, it is placed at the next free bit (repr-c 0083).
            let packing = self.packed(field) || self.attrs.pack.is_some();
            if !packing {
                let start = align_up(first_free, align_bits);
                if type_align_bits > type_bits || start % type_align_bits + w > type_bits {
                    align_bits = align_bits.max(type_align_bits);
                }
            }
            align_bits
        };
        let start = if self.is_union() { 0 } else { align_up(first_free, align_bits) };
        self.size_bits = self.size_bits.max(start + w);
        // Named bit-fields align the record as their type (capped by `#pragma pack`, which
        // then overrides `packed`; else `packed` leaves only `aligned(n)`); unnamed ones don't
        // on x86 (no `align_anon_bitfield`) (repr-c 0076, 0077, 0078, 0079).
        if field.name.is_some() {
            let inherited = match self.attrs.pack {
                Some(p) => m.ty.align.max(annotation).min(p),
                None if self.packed(field) => annotation,
                None => m.ty.align.max(annotation),
            };
            self.align = self.align.max(inherited);
        }
        FieldLayout { offset: start / 8, bits: Some(BitPos { bit_offset: start, width }) }
    }

    /// mingw (`-mms-bitfields`), a member that is not a bit-field: aligned as under gcc; it
    /// closes any open bit-field unit.
    fn ms_plain(&mut self, field: &Field, m: &Member) -> FieldLayout {
        self.ms_unit = None;
        self.gcc_plain(field, m)
    }

    /// mingw (`-mms-bitfields`), a bit-field: it shares the open storage unit when its type
    /// has the unit's size and the unit has room; otherwise it opens a unit of its type's size
    /// at its type's alignment (repr-c 0037). A zero-width bit-field closes the unit.
    fn ms_bitfield(&mut self, field: &Field, width: u32, m: &Member) -> FieldLayout {
        let w = u64::from(width);
        let type_bits = m.ty.size * 8;
        let packed = self.packed(field);
        let annotation = field.aligned.unwrap_or(1);
        let open = self.ms_unit;
        // The member's own alignment ignores its type's when it is packed, when it continues a
        // unit of the same size, or when it is a zero-width bit-field that closes no unit
        // (repr-c 0068).
        let ignore_type = packed || open.map_or(width == 0, |(unit_bits, _)| unit_bits == type_bits);
        let align = self.capped(if ignore_type { 1 } else { m.ty.align }.max(annotation));
        // The record takes the type's alignment from a nonzero bit-field that is not packed
        // and from a zero-width one that closes a unit (`packed` does not apply to it)
        // (repr-c 0068, 0069).
        let raises_record = if width == 0 { open.is_some() } else { !packed };
        if raises_record {
            let natural = if packed && width != 0 { 1 } else { m.ty.align };
            self.align = self.align.max(self.capped(natural.max(annotation)));
        }
        if self.is_union() {
            // In a union only the bits, not the type, count toward its size (repr-c 0070).
            self.size_bits = self.size_bits.max(w);
            return FieldLayout { offset: 0, bits: Some(BitPos { bit_offset: 0, width }) };
        }
        if width == 0 {
            self.ms_unit = None;
        } else {
            if let Some((unit_bits, unused)) = open {
                if unit_bits == type_bits && unused >= w {
                    let start = self.size_bits - unused;
                    self.ms_unit = Some((unit_bits, unused - w));
                    return FieldLayout { offset: start / 8, bits: Some(BitPos { bit_offset: start, width }) };
                }
            }
            self.ms_unit = Some((type_bits, type_bits - w));
        }
        let start = align_up(self.size_bits, u64::from(align) * 8);
        self.size_bits = if width == 0 { start } else { start + type_bits };
        FieldLayout { offset: start / 8, bits: Some(BitPos { bit_offset: start, width }) }
    }
}

/// True when the type's natural layout cannot be computed for `target` because the model
/// lacks a rule (as opposed to the type being incomplete).
pub fn is_unsupported(err: &TypeError) -> bool {
    matches!(err, TypeError::Unsupported { .. })
}

#[cfg(test)]
mod tests {
    //! Each case was compiled with gcc 12 / mingw-w64 gcc 12 and is also covered by the
    //! layout fixtures (`emu-harness/tests/layout.rs`).
    use super::*;
    use crate::types::RecordKind;

    fn record(t: &mut TypeTable, kind: RecordKind, fields: Vec<Field>, attrs: RecordAttrs) -> RecordLayout {
        let id = t.new_record(kind, None);
        t.define_record(id, fields, attrs).unwrap();
        t.record_body(id).unwrap().layout.clone()
    }

    fn bits_of(l: &RecordLayout, i: usize) -> (u64, u32) {
        let b = l.fields[i].bits.unwrap();
        (b.bit_offset, b.width)
    }

    #[test]
    fn packed_member_with_aligned_takes_the_aligned_value_not_its_type_alignment() {
        // struct __attribute__((packed)) { long long m0; fnptr_t m1 __attribute__((aligned(2))); char c; }
        // gcc and mingw: m1 at 8, alignment 2, size 18 (the type's 8 is dropped by packed).
        for target in [Target::X64_SYSV, Target::X64_WIN] {
            let mut t = TypeTable::new(target);
            let ll = t.int(IntKind::LongLong);
            let void = t.void();
            let fp = t.pointer_to(void);
            let ch = t.int(IntKind::Char);
            let mut m1 = Field::named("m1", fp);
            m1.aligned = Some(2);
            let l = record(
                &mut t,
                RecordKind::Struct,
                vec![Field::named("m0", ll), m1, Field::named("c", ch)],
                RecordAttrs { packed: true, ..Default::default() },
            );
            assert_eq!((l.size, l.align, l.fields[1].offset), (18, 2, 8), "{target}");
        }
    }

    #[test]
    fn gcc_pragma_pack_overrides_packed_for_the_alignment_a_bitfield_gives_the_record() {
        // #pragma pack(2) struct __attribute__((packed)) { short m0 : 15; }: size 2, align 2.
        let mut t = TypeTable::new(Target::X64_SYSV);
        let short = t.int(IntKind::Short);
        let l = record(
            &mut t,
            RecordKind::Struct,
            vec![Field::bits(Some("m0"), short, 15)],
            RecordAttrs { packed: true, pack: Some(2), aligned: None },
        );
        assert_eq!((l.size, l.align), (2, 2));
    }

    #[test]
    fn gcc_pragma_pack_lets_a_bitfield_straddle_its_type_unit() {
        // #pragma pack(2) struct { unsigned m0; unsigned m1 : 31; unsigned short m2 : 16; short m3; }
        // gcc: m2 at bit 63 (not moved to 64), m3 at 10, size 12.
        let mut t = TypeTable::new(Target::X86_LINUX);
        let u = t.int(IntKind::UInt);
        let us = t.int(IntKind::UShort);
        let s = t.int(IntKind::Short);
        let fields = vec![
            Field::named("m0", u),
            Field::bits(Some("m1"), u, 31),
            Field::bits(Some("m2"), us, 16),
            Field::named("m3", s),
        ];
        let l = record(&mut t, RecordKind::Struct, fields, RecordAttrs { pack: Some(2), ..Default::default() });
        assert_eq!(bits_of(&l, 2), (63, 16));
        assert_eq!((l.fields[3].offset, l.size), (10, 12));
    }

    #[test]
    fn ms_bitfield_after_a_full_unit_of_the_same_size_ignores_its_type_alignment() {
        // mingw: struct { char c; int a : 24 __attribute__((packed)); int b : 25; }
        // a opens a packed int unit at byte 1; b needs a new int unit, which starts right after
        // it at byte 5 (bit 40), unaligned; the record is still aligned 4 (b is not packed).
        let mut t = TypeTable::new(Target::X64_WIN);
        let ch = t.int(IntKind::Char);
        let int = t.int(IntKind::Int);
        let mut a = Field::bits(Some("a"), int, 24);
        a.packed = true;
        let l = record(
            &mut t,
            RecordKind::Struct,
            vec![Field::named("c", ch), a, Field::bits(Some("b"), int, 25)],
            RecordAttrs::default(),
        );
        assert_eq!(bits_of(&l, 1), (8, 24));
        assert_eq!(bits_of(&l, 2), (40, 25));
        assert_eq!((l.size, l.align), (12, 4));
    }

    #[test]
    fn ms_union_bitfield_counts_its_bits_not_its_type_toward_the_size() {
        // mingw: union __attribute__((packed)) { char c; long long b : 4; } is 1 byte.
        let mut t = TypeTable::new(Target::X86_WIN);
        let ch = t.int(IntKind::Char);
        let ll = t.int(IntKind::LongLong);
        let l = record(
            &mut t,
            RecordKind::Union,
            vec![Field::named("c", ch), Field::bits(Some("b"), ll, 4)],
            RecordAttrs { packed: true, ..Default::default() },
        );
        assert_eq!((l.size, l.align), (1, 1));
    }

    #[test]
    fn gcc_unnamed_bitfields_do_not_align_the_record_and_zero_width_ones_align_the_next_member() {
        // gcc x86-64: struct { char a; int : 0; char b; long long : 3; } has b at 4, size 6, align 1.
        let mut t = TypeTable::new(Target::X64_SYSV);
        let ch = t.int(IntKind::Char);
        let int = t.int(IntKind::Int);
        let ll = t.int(IntKind::LongLong);
        let fields =
            vec![Field::named("a", ch), Field::bits(None, int, 0), Field::named("b", ch), Field::bits(None, ll, 3)];
        let l = record(&mut t, RecordKind::Struct, fields, RecordAttrs::default());
        assert_eq!((l.fields[2].offset, l.size, l.align), (4, 6, 1));
    }

    #[test]
    fn long_double_is_x87_extended_on_the_gcc_targets_and_unsupported_on_windows() {
        // gcc 12 x86-64: sizeof 16, _Alignof 16, struct { char c; long double x; } is 32 bytes
        // with x at 16; i386 psABI Table 2.1: 12 bytes aligned to 4. Windows: MSVC 8/8, mingw
        // 16/16 (x86-64) or 12/4 (i686), so no layout is right for every library.
        let cases = [(Target::X64_SYSV, 16, 16, 32), (Target::X86_LINUX, 12, 4, 16)];
        for (target, size, align, record_size) in cases {
            let mut t = TypeTable::new(target);
            let ld = t.float(FloatKind::LongDouble);
            assert_eq!(t.layout(ld).unwrap(), Layout { size, align }, "{target}");
            let cld = t.complex(FloatKind::LongDouble);
            assert_eq!(t.layout(cld).unwrap(), Layout { size: 2 * size, align }, "{target}");
            let ch = t.int(IntKind::Char);
            let l = record(
                &mut t,
                RecordKind::Struct,
                vec![Field::named("c", ch), Field::named("x", ld)],
                RecordAttrs::default(),
            );
            assert_eq!((l.size, l.fields[1].offset), (record_size, u64::from(align)), "{target}");
        }
        for target in [Target::X64_WIN, Target::X86_WIN] {
            let t = TypeTable::new(target);
            assert!(is_unsupported(&t.layout(t.float(FloatKind::LongDouble)).unwrap_err()), "{target}");
            assert!(is_unsupported(&t.layout(t.complex(FloatKind::LongDouble)).unwrap_err()), "{target}");
        }
    }
}
