//! Structural equality of struct/union bodies, for redeclarations: a second identical body
//! of a tagged record is accepted, a different one is a redefinition.

use crate::types::{CType, QualType, TypeId, TypeTable};

/// Deepest nesting compared (anonymous members nest no deeper than the parser allows).
const MAX_DEPTH: u32 = 64;

/// True when two defined records have the same kind, attributes and members, member types
/// being the same type or anonymous records (or pointers/arrays of them) with equal bodies.
pub(crate) fn records_equivalent(table: &TypeTable, a: TypeId, b: TypeId) -> bool {
    bodies_equal(table, a, b, 0)
}

fn bodies_equal(table: &TypeTable, a: TypeId, b: TypeId, depth: u32) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let (CType::Record(ra), CType::Record(rb)) = (table.get(a), table.get(b)) else {
        return false;
    };
    let (Some(ba), Some(bb)) = (&ra.body, &rb.body) else {
        return false;
    };
    ra.kind == rb.kind
        && ba.attrs == bb.attrs
        && ba.fields.len() == bb.fields.len()
        && ba.fields.iter().zip(&bb.fields).all(|(x, y)| {
            x.name == y.name
                && x.bit_width == y.bit_width
                && x.aligned == y.aligned
                && x.packed == y.packed
                && same_type(table, x.ty, y.ty, depth + 1)
        })
}

fn same_type(table: &TypeTable, a: QualType, b: QualType, depth: u32) -> bool {
    if a == b {
        return true;
    }
    if a.quals != b.quals || depth > MAX_DEPTH {
        return false;
    }
    match (table.get(a.id), table.get(b.id)) {
        (CType::Record(x), CType::Record(y)) if x.tag.is_none() && y.tag.is_none() => bodies_equal(table, a.id, b.id, depth + 1),
        (CType::Enum(x), CType::Enum(y)) if x.tag.is_none() && y.tag.is_none() => x.constants == y.constants,
        (CType::Pointer(x), CType::Pointer(y)) => same_type(table, *x, *y, depth + 1),
        (CType::Array { elem: x, len: lx }, CType::Array { elem: y, len: ly }) => lx == ly && same_type(table, *x, *y, depth + 1),
        _ => false,
    }
}
