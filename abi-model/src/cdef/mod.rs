//! The C declaration parser: LuaJIT's C declaration subset -> [`TypeTable`] types.
//!
//! [`cdef`] reads a list of declarations (what `ffi.cdef` takes) into a [`CScope`];
//! [`parse_type`] reads one type name or abstract declarator (what `ffi.typeof`, `ffi.new`,
//! `ffi.cast` take). The accepted language and the error messages follow LuaJIT's
//! `lj_cparse.c` (the "C Language Support" section of LuaJIT's `ext_ffi_semantics` page is the
//! spec); the deliberate differences are listed on [`cdef`].
//!
//! ```
//! use abi_model::cdef::{cdef, parse_type, CScope};
//! use abi_model::{Target, TypeTable};
//!
//! let mut t = TypeTable::new(Target::X64_SYSV);
//! let mut scope = CScope::new(&mut t);
//! cdef(&mut t, &mut scope, "typedef struct point { int x, y; } point_t; int abs(int);", &[]).unwrap();
//! let p = parse_type(&mut t, &mut scope, "point_t *", &[]).unwrap();
//! assert_eq!(t.display(p), "struct point *");
//! let err = cdef(&mut t, &mut scope, "int f(int x int y);", &[]).unwrap_err();
//! assert_eq!(err.to_string(), "1:13: ')' expected near 'int'");
//! ```

mod expr;
mod lexer;
mod parser;
mod same;
#[cfg(test)]
mod tests;

use crate::hash::{FxHashMap, FxHashSet};
use crate::layout::BitPos;
use crate::types::{CType, IntKind, QualType, RecordKind, TypeId, TypeTable};
use crate::Target;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::Arc;

/// The message of the error a `$` that reaches a [`CParam::Invalid`] gives.
pub const TYPE_PARAM_EXPECTED: &str = "type parameter expected";

/// A `$` parameter of a declaration, as LuaJIT's `ffi.cdef`/`ffi.typeof` accept them after the
/// text: each `$` in the text takes the next parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum CParam {
    /// A ctype: `$` stands where a type name may stand (`"$ *"`, `"struct { $ x; }"`).
    Type(QualType),
    /// A number: `$` is an integer literal (array size, enum value, any constant expression).
    Int(i64),
    /// A string: `$` is an identifier with that name (never a keyword), e.g. a struct tag or a
    /// member name.
    Name(String),
    /// A value that cannot be a parameter (the embedding's to name): the `$` that reaches it
    /// is the error "type parameter expected". As in LuaJIT, it is only an error if a `$`
    /// reaches it; otherwise it is a surplus parameter ("wrong number of type parameters").
    Invalid,
}

/// A declaration error, located in the declaration text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CdefError {
    /// 1-based line of the offending token (after `#line` renumbering).
    pub line: u32,
    /// 1-based column (in characters) of the offending token.
    pub col: u32,
    /// What is wrong, in LuaJIT's wording where LuaJIT has one.
    pub message: String,
    /// The offending token as LuaJIT names it after "near" (`<eof>` at the end, `$` for a
    /// parameter); `None` for errors LuaJIT reports without a token.
    pub token: Option<String>,
}

impl fmt::Display for CdefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)?;
        if let Some(t) = &self.token {
            write!(f, " near '{t}'")?;
        }
        Ok(())
    }
}

impl std::error::Error for CdefError {}

/// A declared function: its type and the symbol that calls it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncDecl {
    /// The function type (a [`CType::Function`]).
    pub ty: TypeId,
    /// The symbol name given by `__asm__("name")`, if any; otherwise the declared name.
    /// Shared by every declaration of the scope that gives the same name.
    pub asm_name: Option<Arc<str>>,
}

/// A declared extern variable: its type and the symbol that holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarDecl {
    /// The variable's type.
    pub ty: QualType,
    /// The symbol name given by `__asm__("name")`, if any (shared as a function's).
    pub asm_name: Option<Arc<str>>,
}

/// A named integer constant: an enumerator or a `static const` integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConstDecl {
    /// The value. For `uint64_t`-typed constants above `i64::MAX` this is the value's bit
    /// pattern (read it as `value as u64`).
    pub value: i64,
    /// Its type: `int` for enumerators that fit (`unsigned int`, then a 64-bit type, for those
    /// that don't, as LuaJIT keeps `0x80000000` unsigned), the declared type for a `static const`.
    pub ty: QualType,
}

/// What an ordinary identifier names. Typedef names, functions, variables and constants share
/// C's ordinary identifier namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Symbol {
    /// A typedef name.
    Typedef(QualType),
    /// A function.
    Function(FuncDecl),
    /// An extern variable.
    Variable(VarDecl),
    /// An enumerator or `static const` constant.
    Constant(ConstDecl),
}

/// Which kind of tag a tag name was declared with. Struct, union and enum tags share C's tag
/// namespace, so `struct foo` and `union foo` conflict, while `struct foo` and typedef `foo`
/// coexist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TagKind {
    /// `struct`
    Struct,
    /// `union`
    Union,
    /// `enum`
    Enum,
}

impl TagKind {
    /// The keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            TagKind::Struct => "struct",
            TagKind::Union => "union",
            TagKind::Enum => "enum",
        }
    }

    fn of_record(kind: RecordKind) -> TagKind {
        match kind {
            RecordKind::Struct => TagKind::Struct,
            RecordKind::Union => TagKind::Union,
        }
    }
}

/// The names declared so far for one [`TypeTable`] (one per user of the parser and target): typedef
/// names, tags and ordinary identifiers.
#[derive(Clone, Debug)]
pub struct CScope {
    target: Target,
    /// Shared names: a declaration's [`Added`] record is the same allocation.
    ordinary: FxHashMap<Arc<str>, Symbol>,
    tags: FxHashMap<String, TypeId>,
    /// The `__asm__` symbol names given so far, each kept once: declarations redirected to
    /// one symbol share its name rather than allocate a copy each.
    labels: FxHashSet<Arc<str>>,
    /// The parser's buffers, kept empty between parses so that each reuses them.
    spare: Spare,
}

/// Buffers a parse needs and gives back empty: the names it added, the parameter stack and a
/// declarator's list of derivations.
#[derive(Clone, Debug, Default)]
pub(crate) struct Spare {
    pub(crate) added: Vec<Added>,
    pub(crate) params: Vec<crate::types::Param>,
    pub(crate) ops: Vec<parser::Op>,
}

/// One name added by a declaration, so a failed `cdef` can take it back.
#[derive(Clone, Debug)]
pub(crate) enum Added {
    Ordinary(Arc<str>),
    Tag(String),
}

impl CScope {
    /// A scope holding LuaJIT's predefined typedefs for `table`'s target: `int8_t` ..
    /// `uint64_t`, `intptr_t`, `uintptr_t`, `ptrdiff_t`, `size_t`, `ssize_t`, `wchar_t` (`int`
    /// on Linux, `unsigned short` on Windows, as LuaJIT's `CTID_WCHAR`), and `va_list`,
    /// `__builtin_va_list`, `__gnuc_va_list` as `void *` (LuaJIT's `CTTDDEF`). `bool` and
    /// `_Bool` are keywords, not typedefs.
    pub fn new(table: &mut TypeTable) -> CScope {
        let target = table.target();
        let mut scope = CScope {
            target,
            ordinary: FxHashMap::default(),
            tags: FxHashMap::default(),
            labels: FxHashSet::default(),
            spare: Spare::default(),
        };
        let ptr = table.target().pointer_size();
        let mut def = |name: &str, id: Option<TypeId>| {
            if let Some(id) = id {
                scope.ordinary.insert(name.into(), Symbol::Typedef(QualType::plain(id)));
            }
        };
        for bytes in [1u32, 2, 4, 8] {
            def(&format!("int{}_t", bytes * 8), table.int_of_size(bytes, true));
            def(&format!("uint{}_t", bytes * 8), table.int_of_size(bytes, false));
        }
        for name in ["intptr_t", "ptrdiff_t", "ssize_t"] {
            def(name, table.int_of_size(ptr, true));
        }
        for name in ["uintptr_t", "size_t"] {
            def(name, table.int_of_size(ptr, false));
        }
        let wchar = match target.os {
            crate::Os::Windows => table.int(IntKind::UShort),
            crate::Os::Linux => table.int(IntKind::Int),
        };
        def("wchar_t", Some(wchar));
        let void_ptr = table.pointer_to(table.void());
        for name in ["va_list", "__builtin_va_list", "__gnuc_va_list"] {
            def(name, Some(void_ptr));
        }
        scope
    }

    /// The target whose table this scope belongs to.
    pub fn target(&self) -> Target {
        self.target
    }

    /// What the ordinary identifier `name` names, if anything.
    pub fn symbol(&self, name: &str) -> Option<&Symbol> {
        self.ordinary.get(name)
    }

    /// The type a typedef name stands for.
    pub fn typedef(&self, name: &str) -> Option<QualType> {
        match self.ordinary.get(name)? {
            Symbol::Typedef(q) => Some(*q),
            _ => None,
        }
    }

    /// The struct, union or enum declared with tag `name`, if it was declared with `kind`.
    pub fn tag(&self, table: &TypeTable, kind: TagKind, name: &str) -> Option<TypeId> {
        let id = *self.tags.get(name)?;
        (tag_kind(table, id) == Some(kind)).then_some(id)
    }

    /// A declared function.
    pub fn function(&self, name: &str) -> Option<&FuncDecl> {
        match self.ordinary.get(name)? {
            Symbol::Function(f) => Some(f),
            _ => None,
        }
    }

    /// A declared extern variable.
    pub fn variable(&self, name: &str) -> Option<&VarDecl> {
        match self.ordinary.get(name)? {
            Symbol::Variable(v) => Some(v),
            _ => None,
        }
    }

    /// A declared constant (enumerator or `static const`).
    pub fn constant(&self, name: &str) -> Option<ConstDecl> {
        match self.ordinary.get(name)? {
            Symbol::Constant(c) => Some(*c),
            _ => None,
        }
    }

    pub(crate) fn tag_id(&self, name: &str) -> Option<TypeId> {
        self.tags.get(name).copied()
    }

    /// Adds an ordinary identifier, returning the name as the scope keeps it.
    /// Enters `name` as `sym` when it is not declared yet, hashing it once; when it is, `Err`
    /// gives its meaning and `sym` back, and nothing changes.
    pub(crate) fn insert_new_ordinary(&mut self, name: &str, sym: Symbol) -> Result<Arc<str>, (&Symbol, Symbol)> {
        match self.ordinary.entry(name.into()) {
            Entry::Occupied(e) => Err((e.into_mut(), sym)),
            Entry::Vacant(v) => {
                let name = v.key().clone();
                v.insert(sym);
                Ok(name)
            }
        }
    }

    /// The `__asm__` symbol name `label` as the scope keeps it, allocated the first time it is
    /// given. A label stays when the declaration giving it fails (it names nothing then).
    pub(crate) fn label(&mut self, label: &str) -> Arc<str> {
        if let Some(kept) = self.labels.get(label) {
            return kept.clone();
        }
        let kept: Arc<str> = label.into();
        self.labels.insert(kept.clone());
        kept
    }

    pub(crate) fn insert_tag(&mut self, name: &str, id: TypeId) {
        self.tags.insert(name.to_string(), id);
    }

    pub(crate) fn take_back(&mut self, added: &[Added]) {
        for a in added.iter().rev() {
            match a {
                Added::Ordinary(n) => {
                    self.ordinary.remove(&**n);
                }
                Added::Tag(n) => {
                    self.tags.remove(n);
                }
            }
        }
    }
}

/// The tag kind of a record or enum type.
pub(crate) fn tag_kind(table: &TypeTable, id: TypeId) -> Option<TagKind> {
    match table.get(id) {
        CType::Record(r) => Some(TagKind::of_record(r.kind)),
        CType::Enum(_) => Some(TagKind::Enum),
        _ => None,
    }
}

/// Reads a list of C declarations (what `ffi.cdef` takes) into `scope`, creating their types
/// in `table`.
///
/// On error the table and the scope are as they were: every name the failed text declared is
/// taken back, every type it made is gone, and a struct/union/enum declared before this call
/// and completed by it is incomplete again (as LuaJIT restores its type table). A declaration
/// that only repeats an identical one leaves no type behind either, so neither grows the table.
/// Types nest at most [`crate::types::MAX_TYPE_DEPTH`] levels deep and a table holds at most
/// [`crate::types::MAX_TYPES`] (then "table overflow", as LuaJIT).
///
/// A typedef, function or extern declaration of a name already declared (with any meaning) is
/// ignored and the first one stays, as in LuaJIT: `typedef long t;` after `typedef int t;`
/// leaves `t` an int, `typedef unsigned int size_t;` keeps the predefined `size_t`, and glibc's
/// redeclaration of `fscanf` with `__asm__("__isoc99_fscanf")` keeps the first symbol name.
///
/// Where this differs from LuaJIT on purpose:
/// - A struct/union/enum body or a constant (enumerator, `static const`) declared again
///   identically is fine; a different one is "attempt to redefine". (LuaJIT rejects every
///   second struct body and enumerator, and fails to parse a second `static const`.)
/// - Constant expressions are evaluated with C's 32/64-bit integer types (LuaJIT: 32 bits),
///   casts to integer types convert, and `static const` constants may have any integer type.
/// - On x86-64 the calling-convention keywords are accepted and ignored (as LuaJIT does there).
/// - `#pragma pack` state lasts for one call, as in LuaJIT.
/// - What the type table cannot represent is an error rather than silently wrong:
///   vectors of `long double`, references, `regparm` on x86,
///   and an `aligned(n)` typedef of a struct or union other than its own alignment (gcc and
///   LuaJIT make it another type; the table has no such copies of records).
pub fn cdef(table: &mut TypeTable, scope: &mut CScope, src: &str, params: &[CParam]) -> Result<(), CdefError> {
    parser::run(table, scope, src, params, parser::Mode::Declarations).map(|_| ())
}

/// Reads one type (what `ffi.typeof`, `ffi.new`, `ffi.cast`, `ffi.sizeof` take): a type name
/// with an abstract declarator, such as `"int[?]"`, `"struct foo *"`, `"int (*)(int)"`,
/// `"const char *"`, `"int[3][4]"` or `"struct { int x; }"`.
///
/// As in LuaJIT, a declarator name is an error (`'<eof>' expected near 'x'`), and a tag that was
/// never declared is "undeclared or implicit tag" (no implicit declaration here). A struct body
/// or enum list is allowed; enumerators it declares become visible constants, as in LuaJIT.
pub fn parse_type(
    table: &mut TypeTable,
    scope: &mut CScope,
    src: &str,
    params: &[CParam],
) -> Result<QualType, CdefError> {
    parser::run(table, scope, src, params, parser::Mode::TypeName)
}

/// A member found by [`find_member`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberRef {
    /// The member's type, with the qualifiers of any anonymous members it sits in added.
    pub ty: QualType,
    /// Byte offset from the start of the outer record (for a bit-field: of the byte holding
    /// its first bit).
    pub offset: u64,
    /// For a bit-field, its bits, counted from bit 0 of the outer record.
    pub bits: Option<BitPos>,
}

/// Looks up member `name` of the defined struct or union `record`, searching the members of
/// anonymous struct/union members too (C11 6.7.2.1p13; LuaJIT's `lj_ctype_getfieldq`), with
/// offsets relative to `record`. Anonymous members are stored as fields with no name whose type
/// is the inner record.
pub fn find_member(table: &TypeTable, record: TypeId, name: &str) -> Option<MemberRef> {
    find_member_in(table, record, name, 0)
}

fn find_member_in(table: &TypeTable, record: TypeId, name: &str, depth: u32) -> Option<MemberRef> {
    // Anonymous members nest no deeper than the parser's nesting limit; stop anyway.
    if depth > parser::MAX_DEPTH {
        return None;
    }
    let body = table.record_body(record)?;
    for (field, place) in body.fields.iter().zip(&body.layout.fields) {
        match &field.name {
            Some(n) if n == name => return Some(MemberRef { ty: field.ty, offset: place.offset, bits: place.bits }),
            Some(_) => {}
            None if field.bit_width.is_none() => {
                if let Some(inner) = find_member_in(table, field.ty.id, name, depth + 1) {
                    let shift = place.offset;
                    return Some(MemberRef {
                        ty: QualType { id: inner.ty.id, quals: inner.ty.quals.union(field.ty.quals) },
                        offset: inner.offset + shift,
                        bits: inner.bits.map(|b| BitPos { bit_offset: b.bit_offset + shift * 8, width: b.width }),
                    });
                }
            }
            None => {}
        }
    }
    None
}

/// Looks up the constant `name` declared inside the defined struct or union `record`
/// (`struct s { static const int k = 1; enum { A, B }; }`), searching anonymous struct/union
/// members too, as LuaJIT's `lj_ctype_getfieldq` finds `CT_CONSTVAL` members: `s.k` reads it
/// through an instance or the ctype. Enumerators of a *named* member enum are not in the
/// record's namespace (only in the global one), as in LuaJIT.
pub fn find_constant(table: &TypeTable, record: TypeId, name: &str) -> Option<ConstDecl> {
    find_constant_in(table, record, name, 0)
}

fn find_constant_in(table: &TypeTable, record: TypeId, name: &str, depth: u32) -> Option<ConstDecl> {
    if depth > parser::MAX_DEPTH {
        return None;
    }
    let body = table.record_body(record)?;
    if let Some(c) = body.constants.iter().find(|c| c.name == name) {
        return Some(ConstDecl { value: c.value, ty: c.ty });
    }
    body.fields
        .iter()
        .filter(|f| f.name.is_none() && f.bit_width.is_none())
        .find_map(|f| find_constant_in(table, f.ty.id, name, depth + 1))
}
