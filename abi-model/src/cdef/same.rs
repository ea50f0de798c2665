//! Structural equality of struct/union bodies and constants, for redeclarations: a second
//! identical body of a tagged record (or constant) is accepted, a different one is a
//! redefinition.

use super::ConstDecl;
use crate::types::{CType, QualType, TypeId, TypeTable};

/// Deepest nesting compared: no type nests deeper than the table allows, so a deeper
/// comparison would be a bug; it stops anyway.
const MAX_DEPTH: u32 = crate::types::MAX_TYPE_DEPTH + 1;

/// True when two defined records have the same kind, attributes and members, member types
/// being the same type or anonymous records (or pointers/arrays of them) with equal bodies.
pub(crate) fn records_equivalent(table: &TypeTable, a: TypeId, b: TypeId) -> bool {
    bodies_equal(table, a, b, 0)
}

/// True when a redeclared constant means the same as the first declaration: the same value
/// and type, anonymous enums compared by body.
pub(crate) fn constants_equivalent(table: &TypeTable, a: &ConstDecl, b: &ConstDecl) -> bool {
    a.value == b.value && same_type(table, a.ty, b.ty, 0)
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
        && ba.constants.len() == bb.constants.len()
        && ba
            .constants
            .iter()
            .zip(&bb.constants)
            .all(|(x, y)| x.name == y.name && x.value == y.value && same_type(table, x.ty, y.ty, depth + 1))
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
        (CType::Record(x), CType::Record(y)) if x.tag.is_none() && y.tag.is_none() => {
            bodies_equal(table, a.id, b.id, depth + 1)
        }
        (CType::Enum(x), CType::Enum(y)) if x.tag.is_none() && y.tag.is_none() => x.constants == y.constants,
        (CType::Pointer(x), CType::Pointer(y)) | (CType::Ptr32(x), CType::Ptr32(y)) => {
            same_type(table, *x, *y, depth + 1)
        }
        (CType::Array { elem: x, len: lx }, CType::Array { elem: y, len: ly }) => {
            lx == ly && same_type(table, *x, *y, depth + 1)
        }
        (CType::Function(x), CType::Function(y)) => {
            x.variadic == y.variadic
                && x.conv == y.conv
                && x.params.len() == y.params.len()
                && same_type(table, x.ret, y.ret, depth + 1)
                && x.params.iter().zip(&y.params).all(|(p, q)| same_type(table, p.ty, q.ty, depth + 1))
        }
        _ => false,
    }
}
