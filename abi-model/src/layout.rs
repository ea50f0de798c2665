//! Sizes, alignments and record layouts on each target.
//!
//! Scalars follow each target's psABI table. Records follow gcc's rules on the System V
//! targets and MSVC's on the Windows targets (which mingw follows by default,
//! `-mms-bitfields`). The compiled layout fixtures are the oracle for both.

use crate::types::{ArrayLen, CType, Field, FloatKind, IntKind, RecordAttrs, RecordKind, TypeError, TypeId, TypeTable};
use crate::{DataModel, RecordRules, Target};

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

/// Layout of a real floating type. `long double` is unsupported: its size and passing differ
/// between every target (12/16-byte x87 on Linux, a plain double on Windows).
pub fn float_layout(target: Target, kind: FloatKind) -> Result<Layout, TypeError> {
    match kind {
        FloatKind::Float => Ok(Layout { size: 4, align: 4 }),
        FloatKind::Double => Ok(Layout { size: 8, align: eight_byte_scalar_align(target) }),
        FloatKind::LongDouble => Err(unsupported("long double", "its format and passing differ per target")),
    }
}

/// Size and alignment of any type in `table`.
pub fn type_layout(table: &TypeTable, id: TypeId) -> Result<Layout, TypeError> {
    let target = table.target();
    let incomplete = || TypeError::Incomplete { ty: table.display(id.into()) };
    match table.get(id) {
        CType::Void | CType::Function(_) => Err(incomplete()),
        CType::Bool => Ok(Layout { size: 1, align: 1 }),
        CType::Int(k) => Ok(int_layout(target, *k)),
        CType::Float(k) => float_layout(target, *k),
        CType::Complex(FloatKind::LongDouble) => {
            Err(unsupported("complex long double", "long double is not supported"))
        }
        // A complex number is laid out as an array of two of its parts.
        CType::Complex(k) => float_layout(target, *k).map(|l| Layout { size: l.size * 2, align: l.align }),
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
    /// Alignment after `packed`, `aligned(n)` and `#pragma pack`.
    align: u32,
}

/// The alignment a member gets: its type's, raised by `aligned(n)` on the member, lowered to
/// 1 by `packed` (unless the member has its own `aligned`), then capped by `#pragma pack(n)`,
/// which caps even explicit alignments (gcc `layout_decl`; MSVC documents the same for pack).
fn member_align(natural: u32, field: &Field, attrs: RecordAttrs) -> u32 {
    let mut a = natural;
    if (attrs.packed || field.packed) && field.aligned.is_none() {
        a = 1;
    }
    if let Some(n) = field.aligned {
        a = a.max(n);
    }
    if let Some(p) = attrs.pack {
        a = a.min(p);
    }
    a
}

fn member(table: &TypeTable, field: &Field, attrs: RecordAttrs, is_last: bool, kind: RecordKind) -> Result<Member, TypeError> {
    let ty = match table.get(field.ty.id) {
        CType::Array { elem, len: ArrayLen::Flexible | ArrayLen::Variable } => {
            if !is_last || kind == RecordKind::Union {
                return Err(TypeError::Invalid {
                    message: format!("flexible array member '{}' must be the last member of a struct", field.name.as_deref().unwrap_or("?")),
                });
            }
            let e = type_layout(table, elem.id)?;
            Layout { size: 0, align: e.align }
        }
        _ => type_layout(table, field.ty.id)?,
    };
    Ok(Member { ty, align: member_align(ty.align, field, attrs) })
}

/// Checks a bit-field's declared type and width.
fn check_bitfield(table: &TypeTable, field: &Field, width: u32, ty: Layout) -> Result<(), TypeError> {
    let name = field.name.as_deref().unwrap_or("<anonymous>");
    let integral = matches!(table.get(field.ty.id), CType::Int(_) | CType::Bool | CType::Enum(_));
    if !integral {
        return Err(TypeError::Invalid { message: format!("bit-field '{name}' has non-integral type") });
    }
    let max = if matches!(table.get(field.ty.id), CType::Bool) { 1 } else { ty.size * 8 };
    if u64::from(width) > max {
        return Err(TypeError::Invalid { message: format!("width of bit-field '{name}' ({width} bits) exceeds its type ({max} bits)") });
    }
    if width == 0 && field.name.is_some() {
        return Err(TypeError::Invalid { message: format!("named bit-field '{name}' has zero width") });
    }
    Ok(())
}

/// Lays out a struct or union of `fields` under the target's rules.
pub fn record_layout(table: &TypeTable, kind: RecordKind, fields: &[Field], attrs: RecordAttrs) -> Result<RecordLayout, TypeError> {
    let rules = table.target().record_rules();
    let mut state = Placer { rules, kind, attrs, bitpos: 0, size_bits: 0, align: 1, ms_unit: None, ms_pending_align: None };
    let mut out = Vec::with_capacity(fields.len());
    for (i, field) in fields.iter().enumerate() {
        let m = member(table, field, attrs, i + 1 == fields.len(), kind)?;
        let placed = match field.bit_width {
            Some(w) => {
                check_bitfield(table, field, w, m.ty)?;
                state.place_bitfield(field, w, &m)
            }
            None => state.place_plain(&m),
        };
        out.push(placed);
    }
    let mut align = state.align;
    if let Some(n) = attrs.aligned {
        align = align.max(n);
    }
    let end = state.size_bits.div_ceil(8);
    Ok(RecordLayout { size: align_up(end, align as u64), align, fields: out })
}

/// The running state of one record's layout.
struct Placer {
    rules: RecordRules,
    kind: RecordKind,
    attrs: RecordAttrs,
    /// Next free bit (structs only; unions place everything at 0).
    bitpos: u64,
    /// Bits covered so far (the record's unpadded size).
    size_bits: u64,
    /// The record's alignment so far.
    align: u32,
    /// MS: the open bit-field storage unit: (first bit, size in bits, bits used).
    ms_unit: Option<(u64, u64, u64)>,
    /// MS: alignment a zero-width bit-field imposes on the next member.
    ms_pending_align: Option<u32>,
}

impl Placer {
    fn start_of(&self, align_bits: u64) -> u64 {
        match self.kind {
            RecordKind::Struct => align_up(self.bitpos, align_bits),
            RecordKind::Union => 0,
        }
    }

    fn cover(&mut self, start: u64, bits: u64) {
        self.size_bits = self.size_bits.max(start + bits);
        if self.kind == RecordKind::Struct {
            self.bitpos = start + bits;
        }
    }

    fn place_plain(&mut self, m: &Member) -> FieldLayout {
        self.ms_unit = None;
        let mut align = m.align;
        if let Some(a) = self.ms_pending_align.take() {
            align = align.max(a);
        }
        let start = self.start_of(align as u64 * 8);
        self.cover(start, m.ty.size * 8);
        self.align = self.align.max(align);
        FieldLayout { offset: start / 8, bits: None }
    }

    fn place_bitfield(&mut self, field: &Field, width: u32, m: &Member) -> FieldLayout {
        let w = u64::from(width);
        let type_bits = m.ty.size * 8;
        let align_bits = m.align as u64 * 8;
        match self.rules {
            RecordRules::Gcc => {
                if width == 0 {
                    // A zero-width bit-field moves the next member to its type's alignment; it
                    // is unnamed, so it does not align the record (x86: no align_anon_bitfield).
                    let start = self.start_of(align_bits);
                    self.cover(start, 0);
                    return FieldLayout { offset: start / 8, bits: Some(BitPos { bit_offset: start, width: 0 }) };
                }
                let packed = self.attrs.packed || field.packed;
                let mut start = match self.kind {
                    RecordKind::Struct => self.bitpos,
                    RecordKind::Union => 0,
                };
                // gcc `excess_unit_span`: a bit-field may not span more alignment units of its
                // type than the type itself has; if it would, it moves to the next unit.
                // Packed bit-fields are exempt.
                if !packed && align_bits > 0 {
                    let within = start % align_bits;
                    if (within + w).div_ceil(align_bits) > type_bits / align_bits {
                        start = align_up(start, align_bits);
                    }
                }
                self.cover(start, w);
                // Named bit-fields align the record as their type; unnamed ones don't.
                if field.name.is_some() {
                    self.align = self.align.max(m.align);
                }
                FieldLayout { offset: start / 8, bits: Some(BitPos { bit_offset: start, width }) }
            }
            RecordRules::Ms => {
                if width == 0 {
                    // MSVC: a zero-width bit-field ends the open unit and aligns the next
                    // member to its type; after a non-bit-field it is ignored.
                    if self.ms_unit.take().is_some() {
                        self.ms_pending_align = Some(m.align);
                    }
                    let at = self.bitpos;
                    return FieldLayout { offset: at / 8, bits: Some(BitPos { bit_offset: at, width: 0 }) };
                }
                if self.kind == RecordKind::Union {
                    self.cover(0, type_bits);
                    self.align = self.align.max(m.align);
                    return FieldLayout { offset: 0, bits: Some(BitPos { bit_offset: 0, width }) };
                }
                // A bit-field shares the open unit when its type has the unit's size and it
                // fits in the bits left; otherwise it opens a new unit of its type's size.
                if let Some((unit_start, unit_bits, used)) = self.ms_unit {
                    if unit_bits == type_bits && used + w <= unit_bits {
                        self.ms_unit = Some((unit_start, unit_bits, used + w));
                        return FieldLayout { offset: (unit_start + used) / 8, bits: Some(BitPos { bit_offset: unit_start + used, width }) };
                    }
                }
                let mut align = m.align;
                if let Some(a) = self.ms_pending_align.take() {
                    align = align.max(a);
                }
                let start = align_up(self.bitpos, align as u64 * 8);
                self.cover(start, type_bits);
                self.ms_unit = Some((start, type_bits, w));
                self.align = self.align.max(align);
                FieldLayout { offset: start / 8, bits: Some(BitPos { bit_offset: start, width }) }
            }
        }
    }
}

/// True when the type's natural layout cannot be computed for `target` because the model
/// lacks a rule (as opposed to the type being incomplete).
pub fn is_unsupported(err: &TypeError) -> bool {
    matches!(err, TypeError::Unsupported { .. })
}

