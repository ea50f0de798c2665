//! The C type system: a per-target table of types, addressed by [`TypeId`].
//!
//! Scalars, pointers, arrays and function types are interned (one id per distinct type);
//! every struct, union and enum *declaration* gets its own id, first incomplete, then defined
//! once with [`TypeTable::define_record`] / [`TypeTable::define_enum`], which computes its
//! layout. Typedef names are not types: they belong to the declaration parser's scope.
//!
//! Limits against hostile declarations: a table holds at most [`MAX_TYPES`] types (LuaJIT's
//! limit, with its "table overflow" error), and no type nests more than [`MAX_TYPE_DEPTH`]
//! levels deep, so every walk over a type (layout, classification, display, conversions)
//! recurses a bounded number of times. The checked constructors (`try_*`, `define_*`) enforce
//! both; [`TypeTable::checkpoint`] lets a failed declaration take back everything it made.

use crate::hash::{FxHashMap, FxHasher};
use crate::layout::{self, Layout, RecordLayout};
use crate::{CallConv, Target};
use std::collections::hash_map::Entry;
use std::fmt;
use std::hash::{Hash, Hasher};

/// Index of a type in its [`TypeTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u32);

/// `const` / `volatile` qualifiers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Quals {
    /// `const`
    pub is_const: bool,
    /// `volatile`
    pub is_volatile: bool,
}

impl Quals {
    /// No qualifier.
    pub const NONE: Quals = Quals { is_const: false, is_volatile: false };
    /// `const` alone.
    pub const CONST: Quals = Quals { is_const: true, is_volatile: false };

    /// Both sets of qualifiers.
    pub fn union(self, other: Quals) -> Quals {
        Quals { is_const: self.is_const || other.is_const, is_volatile: self.is_volatile || other.is_volatile }
    }
}

/// A type with its qualifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QualType {
    /// The unqualified type.
    pub id: TypeId,
    /// Its qualifiers.
    pub quals: Quals,
}

/// Hashed as one word (the id and a bit per qualifier) rather than a word per field: a
/// function type's interning key hashes one per parameter.
impl std::hash::Hash for QualType {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let q = u64::from(self.quals.is_const) << 32 | u64::from(self.quals.is_volatile) << 33;
        state.write_u64(u64::from(self.id.0) | q);
    }
}

impl QualType {
    /// The type without qualifiers.
    pub fn plain(id: TypeId) -> QualType {
        QualType { id, quals: Quals::NONE }
    }
}

impl From<TypeId> for QualType {
    fn from(id: TypeId) -> QualType {
        QualType::plain(id)
    }
}

/// The C integer types, by their C spelling (the fixed-width names are typedefs of these).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntKind {
    /// `char` (signed on every x86 target)
    Char,
    /// `signed char`
    SChar,
    /// `unsigned char`
    UChar,
    /// `short`
    Short,
    /// `unsigned short`
    UShort,
    /// `int`
    Int,
    /// `unsigned int`
    UInt,
    /// `long`
    Long,
    /// `unsigned long`
    ULong,
    /// `long long`
    LongLong,
    /// `unsigned long long`
    ULongLong,
}

impl IntKind {
    /// Every integer kind.
    pub const ALL: [IntKind; 11] = [
        IntKind::Char,
        IntKind::SChar,
        IntKind::UChar,
        IntKind::Short,
        IntKind::UShort,
        IntKind::Int,
        IntKind::UInt,
        IntKind::Long,
        IntKind::ULong,
        IntKind::LongLong,
        IntKind::ULongLong,
    ];

    /// True for the signed kinds; plain `char` is signed on every x86 target.
    pub fn is_signed(self) -> bool {
        matches!(
            self,
            IntKind::Char | IntKind::SChar | IntKind::Short | IntKind::Int | IntKind::Long | IntKind::LongLong
        )
    }

    /// The C spelling.
    pub fn c_name(self) -> &'static str {
        match self {
            IntKind::Char => "char",
            IntKind::SChar => "signed char",
            IntKind::UChar => "unsigned char",
            IntKind::Short => "short",
            IntKind::UShort => "unsigned short",
            IntKind::Int => "int",
            IntKind::UInt => "unsigned int",
            IntKind::Long => "long",
            IntKind::ULong => "unsigned long",
            IntKind::LongLong => "long long",
            IntKind::ULongLong => "unsigned long long",
        }
    }
}

/// The real floating types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FloatKind {
    /// `float`
    Float,
    /// `double`
    Double,
    /// `long double`: laid out on the gcc targets (x87 extended), an `Unsupported` layout on
    /// Windows; passing it by value is an `Unsupported` plan everywhere.
    LongDouble,
}

impl FloatKind {
    /// The C spelling.
    pub fn c_name(self) -> &'static str {
        match self {
            FloatKind::Float => "float",
            FloatKind::Double => "double",
            FloatKind::LongDouble => "long double",
        }
    }
}

/// Length of an array type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArrayLen {
    /// `T[n]` (n may be 0, a gcc extension).
    Fixed(u64),
    /// `T[]`: a flexible array member, or an array whose size comes from its initializer.
    Flexible,
    /// `T[?]`: LuaJIT's variable-length array, sized when an object is created.
    Variable,
}

/// `struct` or `union`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// `struct`
    Struct,
    /// `union`
    Union,
}

impl RecordKind {
    /// The keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            RecordKind::Struct => "struct",
            RecordKind::Union => "union",
        }
    }
}

/// One member of a struct or union as declared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The member name; `None` for unnamed bit-fields and anonymous struct/union members.
    pub name: Option<String>,
    /// The member's type.
    pub ty: QualType,
    /// `Some(width)` for a bit-field (`int x : width`), 0 allowed for unnamed ones.
    pub bit_width: Option<u32>,
    /// `__attribute__((aligned(n)))` on the member: raises its alignment to at least n.
    pub aligned: Option<u32>,
    /// `__attribute__((packed))` on the member: alignment 1 (bit-fields: no padding).
    pub packed: bool,
}

impl Field {
    /// A plain named member.
    pub fn named(name: &str, ty: impl Into<QualType>) -> Field {
        Field { name: Some(name.to_string()), ty: ty.into(), bit_width: None, aligned: None, packed: false }
    }

    /// A bit-field member (`name` None for an unnamed one).
    pub fn bits(name: Option<&str>, ty: impl Into<QualType>, width: u32) -> Field {
        Field { name: name.map(str::to_string), ty: ty.into(), bit_width: Some(width), aligned: None, packed: false }
    }
}

/// Attributes of a struct or union definition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordAttrs {
    /// `__attribute__((packed))` on the record: every member aligned to 1.
    pub packed: bool,
    /// `__attribute__((aligned(n)))` on the record: its alignment is at least n.
    pub aligned: Option<u32>,
    /// `#pragma pack(n)` in force at the definition: member alignment capped at n.
    pub pack: Option<u32>,
}

/// A struct or union definition, with its computed layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordBody {
    /// The members in declaration order.
    pub fields: Vec<Field>,
    /// Attributes of the definition.
    pub attrs: RecordAttrs,
    /// Where each member sits.
    pub layout: RecordLayout,
    /// Constants declared inside the definition (`static const int k = 1;`, the enumerators of
    /// an unnamed member enum), in declaration order: part of the record's namespace, not of
    /// its layout (LuaJIT's `CT_CONSTVAL` members).
    pub constants: Vec<RecordConst>,
}

/// A constant in a struct or union's namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordConst {
    /// Its name.
    pub name: String,
    /// Its value (for an unsigned 64-bit type above `i64::MAX`, the bit pattern).
    pub value: i64,
    /// Its type: the declared integer type, or the enumerator's type.
    pub ty: QualType,
}

/// A struct or union type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// `struct` or `union`.
    pub kind: RecordKind,
    /// The tag, if any.
    pub tag: Option<String>,
    /// `None` while only declared (incomplete). Boxed: a body is large and most types in a
    /// table are not records, while every type takes the size of the largest [`CType`].
    pub body: Option<Box<RecordBody>>,
}

/// An enum type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumType {
    /// The tag, if any.
    pub tag: Option<String>,
    /// The enumerators in declaration order; empty and `complete == false` while only
    /// declared.
    pub constants: Vec<(String, i64)>,
    /// The integer type that represents it (see [`TypeTable::define_enum`]).
    pub repr: IntKind,
    /// Whether the enumerator list has been seen.
    pub complete: bool,
}

/// One parameter of a function type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Param {
    /// The name, if the declaration gave one (not part of the type's identity). A boxed
    /// `str` rather than a `String`: a function type keeps its parameters for good, and
    /// without a capacity a parameter is 24 bytes, not 32.
    pub name: Option<Box<str>>,
    /// The parameter's type, already adjusted (arrays and functions decay to pointers).
    pub ty: QualType,
}

/// A function type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FuncType {
    /// The return type.
    pub ret: QualType,
    /// The parameters.
    pub params: Vec<Param>,
    /// Declared with `...`.
    pub variadic: bool,
    /// The calling convention written in the declaration (`Cdecl` when none).
    pub conv: CallConv,
}

/// A C type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CType {
    /// `void`
    Void,
    /// `bool` / `_Bool`
    Bool,
    /// A bool of 2, 4 or 8 bytes: `_Bool` written with an integer keyword of that size
    /// (`_Bool int`, `int _Bool`, `_Bool __int16`, `_Bool __int64`), as LuaJIT's parser makes
    /// it. Printed `bool`; any nonzero bit of its value (of its first 4 bytes when it has 8,
    /// as LuaJIT reads it) is true; true is stored as 1 in those bytes.
    WideBool {
        /// Bytes: 2, 4 or 8.
        size: u32,
    },
    /// An integer type.
    Int(IntKind),
    /// An integer of 16 or 32 bytes, as `__attribute__((mode(TI)))` / `mode(OI)` make one of
    /// an integer type (LuaJIT's `int128_t`, `uint128_t`, `int256_t`, `uint256_t`): laid out
    /// (aligned to 16), copied and converted to and from other integers, but never an
    /// arithmetic type, a bit-field, a constant's type or a value passed by value.
    WideInt {
        /// Bytes: 16 or 32.
        size: u32,
        /// Signedness (that of the integer type the mode was applied to).
        signed: bool,
    },
    /// A real floating type.
    Float(FloatKind),
    /// `float complex` / `double complex` / `long double complex` (laid out as its two parts).
    Complex(FloatKind),
    /// A pointer to the qualified type.
    Pointer(QualType),
    /// A 4-byte pointer to the qualified type on a 64-bit target: MSVC's `int * __ptr32`, as
    /// LuaJIT lays it out (4 bytes, aligned to 4) and prints it (`int *__ptr32`). Its value is
    /// the low 32 bits of an address, zero-extended when read. 32-bit targets never make one
    /// (`__ptr32` is every pointer there).
    Ptr32(QualType),
    /// An array.
    Array {
        /// The element type.
        elem: QualType,
        /// Its length.
        len: ArrayLen,
    },
    /// A struct or union.
    Record(Record),
    /// An enum.
    Enum(EnumType),
    /// A function type (a function *pointer* is a `Pointer` to one).
    Function(FuncType),
}

/// Errors about types: incomplete types, unsupported types, bad layouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeError {
    /// The type has no size yet (a declared but undefined struct, `void`, a function, `T[]`).
    Incomplete {
        /// The type, spelled in C.
        ty: String,
    },
    /// The model has no rule for this type on this target (e.g. `long double`).
    Unsupported {
        /// The type, spelled in C.
        ty: String,
        /// Why.
        reason: &'static str,
    },
    /// The definition itself is invalid (e.g. a bit-field wider than its type).
    Invalid {
        /// What is wrong.
        message: String,
    },
    /// The table already holds [`MAX_TYPES`] types.
    TableFull,
    /// The type would nest more than [`MAX_TYPE_DEPTH`] levels deep.
    TooDeep,
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeError::Incomplete { ty } => write!(f, "size of '{ty}' is unknown"),
            TypeError::Unsupported { ty, reason } => write!(f, "'{ty}' is not supported: {reason}"),
            TypeError::Invalid { message } => f.write_str(message),
            // LuaJIT's message (LJ_ERR_TABOV) for its own limit of the same size.
            TypeError::TableFull => f.write_str("table overflow"),
            TypeError::TooDeep => write!(f, "C type nested too deeply (more than {MAX_TYPE_DEPTH} levels)"),
        }
    }
}

impl std::error::Error for TypeError {}

/// Key for interning derived types.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Pointer(QualType),
    Array(QualType, ArrayLen),
    /// A vector of that many elements (see [`TypeTable::try_vector_of`]).
    Vector(QualType, u64),
    /// A type with another alignment (see [`TypeTable::try_aligned`]).
    Aligned(TypeId, u32),
    /// A 4-byte pointer (see [`TypeTable::try_ptr32_to`]).
    Ptr32(QualType),
    /// A 16- or 32-byte integer (see [`TypeTable::try_wide_int`]).
    WideInt(u32, bool),
    /// A bool of 2, 4 or 8 bytes (see [`TypeTable::try_wide_bool`]).
    WideBool(u32),
    /// A function type, by the hash of its return type, parameter types, `...` and
    /// convention ([`function_hash`]); the table compares the types themselves (see
    /// [`TypeTable::intern_function`]), so that a key allocates no copy of the parameters.
    Function(u64),
}

/// The hash of a function type's identity: its return type, parameter types (not their
/// names), `...` and convention.
fn function_hash(f: &FuncType) -> u64 {
    #[cfg(test)]
    if tests::CONSTANT_FUNCTION_HASH.get() {
        return 0;
    }
    let mut h = FxHasher::default();
    f.ret.hash(&mut h);
    h.write_usize(f.params.len());
    for p in &f.params {
        p.ty.hash(&mut h);
    }
    (f.variadic, f.conv).hash(&mut h);
    h.finish()
}

/// Most types one table holds: LuaJIT's `CTID_MAX`, past which it raises "table overflow".
/// Anonymous structs made in a loop (`ffi.typeof("struct { int x; }")`) are new types each
/// time, in LuaJIT as here; this bounds the memory they take.
pub const MAX_TYPES: usize = 65_536;

/// Deepest nesting of a type: each pointer, array, function and struct/union level counts one
/// (scalars and enums count zero). Far beyond real declarations; small enough that a walk
/// recursing once per level fits any thread's stack.
pub const MAX_TYPE_DEPTH: u32 = 200;

/// What the table knows about each type besides the type itself.
#[derive(Clone, Debug)]
struct Info {
    /// Nesting depth (see [`MAX_TYPE_DEPTH`]). For a pointer to a struct, the struct's depth
    /// when the pointer was made: a walk that follows pointers into struct bodies must bound
    /// itself anyway (structs can point to themselves).
    depth: u32,
    /// The interning key of a derived type, so that truncating the table forgets it.
    key: Option<Key>,
    /// A fixed-length array's layout, computed once when it is made (when its element had
    /// one), so that chains of arrays are laid out in linear time.
    layout: Option<Layout>,
}

/// A point [`TypeTable::rollback`] returns the table to: see [`TypeTable::checkpoint`].
#[derive(Debug)]
#[must_use = "a checkpoint must be committed or rolled back"]
pub struct Checkpoint {
    /// Number of types when it was taken.
    len: usize,
    /// Length of the journal when it was taken.
    journal: usize,
    /// Number of checkpoints open before this one.
    depth: usize,
}

/// The definition a type had before a checkpointed change completed it.
#[derive(Clone, Debug)]
struct Undo {
    id: TypeId,
    ty: CType,
    depth: u32,
}

/// All types of one target.
#[derive(Clone, Debug)]
pub struct TypeTable {
    target: Target,
    types: Vec<CType>,
    info: Vec<Info>,
    interned: FxHashMap<Key, TypeId>,
    /// Function types whose [`Key::Function`] hash an older function type, a different one,
    /// holds in `interned` (hash collisions: in practice none).
    function_collisions: Vec<TypeId>,
    /// The number of types at each open checkpoint, outermost first.
    open: Vec<usize>,
    /// Definitions of types older than the innermost open checkpoint, as they were before.
    journal: Vec<Undo>,
}

/// Ids of the types every table starts with, in this order.
mod builtin {
    pub const VOID: u32 = 0;
    pub const BOOL: u32 = 1;
    pub const INT0: u32 = 2; // 11 integer kinds, IntKind::ALL order
    pub const FLOAT0: u32 = INT0 + 11; // float, double, long double
    pub const COMPLEX0: u32 = FLOAT0 + 3; // complex float, complex double, complex long double
}

const FLOAT_KINDS: [FloatKind; 3] = [FloatKind::Float, FloatKind::Double, FloatKind::LongDouble];

impl TypeTable {
    /// A table holding the built-in types of `target`.
    pub fn new(target: Target) -> TypeTable {
        let mut types = vec![CType::Void, CType::Bool];
        types.extend(IntKind::ALL.iter().map(|&k| CType::Int(k)));
        types.extend(FLOAT_KINDS.iter().map(|&k| CType::Float(k)));
        types.extend(FLOAT_KINDS.iter().map(|&k| CType::Complex(k)));
        let info = vec![Info { depth: 0, key: None, layout: None }; types.len()];
        TypeTable {
            target,
            types,
            info,
            interned: FxHashMap::default(),
            function_collisions: Vec::new(),
            open: Vec::new(),
            journal: Vec::new(),
        }
    }

    /// The target whose layouts this table computes.
    pub fn target(&self) -> Target {
        self.target
    }

    /// Number of types in the table.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Never true: a table always holds the built-in types.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// The type behind an id.
    ///
    /// # Panics
    /// If `id` does not come from this table.
    pub fn get(&self, id: TypeId) -> &CType {
        &self.types[id.0 as usize]
    }

    /// `void`
    pub fn void(&self) -> TypeId {
        TypeId(builtin::VOID)
    }

    /// `bool`
    pub fn bool(&self) -> TypeId {
        TypeId(builtin::BOOL)
    }

    /// An integer type.
    pub fn int(&self, kind: IntKind) -> TypeId {
        let i = IntKind::ALL.iter().position(|&k| k == kind).expect("every kind is listed");
        TypeId(builtin::INT0 + i as u32)
    }

    /// A real floating type.
    pub fn float(&self, kind: FloatKind) -> TypeId {
        let i = FLOAT_KINDS.iter().position(|&k| k == kind).expect("every kind is listed");
        TypeId(builtin::FLOAT0 + i as u32)
    }

    /// A complex type.
    pub fn complex(&self, kind: FloatKind) -> TypeId {
        let i = FLOAT_KINDS.iter().position(|&k| k == kind).expect("every kind is listed");
        TypeId(builtin::COMPLEX0 + i as u32)
    }

    /// The signed or unsigned integer type of exactly `bytes` bytes on this target
    /// (1, 2, 4 or 8): what `int8_t` .. `uint64_t` name.
    pub fn int_of_size(&self, bytes: u32, signed: bool) -> Option<TypeId> {
        let kind = match (bytes, signed) {
            (1, true) => IntKind::SChar,
            (1, false) => IntKind::UChar,
            (2, true) => IntKind::Short,
            (2, false) => IntKind::UShort,
            (4, true) => IntKind::Int,
            (4, false) => IntKind::UInt,
            (8, true) if self.int_size(IntKind::Long) == 8 => IntKind::Long,
            (8, false) if self.int_size(IntKind::Long) == 8 => IntKind::ULong,
            (8, true) => IntKind::LongLong,
            (8, false) => IntKind::ULongLong,
            _ => return None,
        };
        Some(self.int(kind))
    }

    /// The integer of `size` bytes (16 or 32) and that signedness that `mode(TI)` and
    /// `mode(OI)` make (LuaJIT `cp_decl_mode`): a [`CType::WideInt`], aligned to 16 bytes on
    /// every target (LuaJIT caps a mode's alignment at 16, and gcc aligns `__int128` to 16).
    /// Other sizes are `Invalid`: 1 to 8 bytes are the ordinary kinds of [`Self::int_of_size`].
    pub fn try_wide_int(&mut self, size: u32, signed: bool) -> Result<TypeId, TypeError> {
        if size != 16 && size != 32 {
            return Err(TypeError::Invalid { message: format!("no {size}-byte wide integer: only 16 and 32 bytes") });
        }
        self.intern(Key::WideInt(size, signed), CType::WideInt { size, signed }, true)
    }

    /// The bool of `size` bytes: `bool` for 1, a [`CType::WideBool`] for 2, 4 and 8 (what
    /// LuaJIT makes of `_Bool` with `__int16`, `int`, `__int64`). Other sizes are `Invalid`.
    pub fn try_wide_bool(&mut self, size: u32) -> Result<TypeId, TypeError> {
        match size {
            1 => Ok(self.bool()),
            2 | 4 | 8 => self.intern(Key::WideBool(size), CType::WideBool { size }, true),
            _ => Err(TypeError::Invalid { message: format!("no {size}-byte bool: only 1, 2, 4 and 8 bytes") }),
        }
    }

    /// Size in bytes of an integer kind on this target.
    pub fn int_size(&self, kind: IntKind) -> u32 {
        layout::int_layout(self.target, kind).size as u32
    }

    /// Nesting depth of a type (see [`MAX_TYPE_DEPTH`]).
    pub fn depth(&self, id: TypeId) -> u32 {
        self.info[id.0 as usize].depth
    }

    /// One level above the deepest of `parts`.
    fn depth_over(&self, parts: impl IntoIterator<Item = TypeId>) -> u32 {
        1 + parts.into_iter().map(|id| self.depth(id)).max().unwrap_or(0)
    }

    /// Refuses a type of `depth` or one more type, when `checked`.
    fn check_limits(&self, depth: u32, checked: bool) -> Result<(), TypeError> {
        if !checked {
            return Ok(());
        }
        if depth > MAX_TYPE_DEPTH {
            return Err(TypeError::TooDeep);
        }
        if self.types.len() >= MAX_TYPES {
            return Err(TypeError::TableFull);
        }
        Ok(())
    }

    fn intern(&mut self, key: Key, ty: CType, checked: bool) -> Result<TypeId, TypeError> {
        // The map is out of the table while its entry is held, so that the key is hashed once
        // and the new type's depth and layout can still read the table. Nothing below uses
        // the map.
        let mut interned = std::mem::take(&mut self.interned);
        let id = match interned.entry(key) {
            Entry::Occupied(e) => Ok(*e.get()),
            Entry::Vacant(v) => self.add_interned(v.key().clone(), ty, checked).inspect(|&id| {
                v.insert(id);
            }),
        };
        self.interned = interned;
        id
    }

    /// A new interned type of `key`, which the caller enters in the map.
    fn add_interned(&mut self, key: Key, ty: CType, checked: bool) -> Result<TypeId, TypeError> {
        let (depth, layout) = match &ty {
            CType::Pointer(to) | CType::Ptr32(to) => (self.depth_over([to.id]), None),
            CType::Array { elem, len } => {
                let layout = match len {
                    ArrayLen::Fixed(n) => self
                        .layout(elem.id)
                        .ok()
                        .and_then(|e| Some(Layout { size: e.size.checked_mul(*n)?, align: e.align })),
                    ArrayLen::Flexible | ArrayLen::Variable => None,
                };
                (self.depth_over([elem.id]), layout)
            }
            _ => (0, None),
        };
        self.check_limits(depth, checked)?;
        Ok(self.push(ty, Info { depth, key: Some(key), layout }))
    }

    fn push(&mut self, ty: CType, info: Info) -> TypeId {
        let id = TypeId(u32::try_from(self.types.len()).expect("fewer than 2^32 types"));
        self.types.push(ty);
        self.info.push(info);
        id
    }

    /// Pointer to `pointee`. Unchecked: for types a program builds, and for one level over a
    /// type already in the table; declarations use [`TypeTable::try_pointer_to`].
    pub fn pointer_to(&mut self, pointee: impl Into<QualType>) -> TypeId {
        let pointee = pointee.into();
        let made = self.intern(Key::Pointer(pointee), CType::Pointer(pointee), false);
        made.unwrap_or_else(|_| unreachable!("unchecked"))
    }

    /// Pointer to `pointee`, within the table's limits.
    pub fn try_pointer_to(&mut self, pointee: impl Into<QualType>) -> Result<TypeId, TypeError> {
        let pointee = pointee.into();
        self.intern(Key::Pointer(pointee), CType::Pointer(pointee), true)
    }

    /// A 4-byte pointer to `pointee` (`__ptr32`), within the table's limits. Only 64-bit
    /// targets have one: on a 32-bit target this is `Invalid` (`__ptr32` is every pointer).
    pub fn try_ptr32_to(&mut self, pointee: impl Into<QualType>) -> Result<TypeId, TypeError> {
        let pointee = pointee.into();
        if self.target.pointer_size() != 8 {
            return Err(TypeError::Invalid { message: "a __ptr32 pointer is an ordinary pointer here".into() });
        }
        self.intern(Key::Ptr32(pointee), CType::Ptr32(pointee), true)
    }

    /// Array of `elem`. Unchecked, as [`TypeTable::pointer_to`].
    pub fn array_of(&mut self, elem: impl Into<QualType>, len: ArrayLen) -> TypeId {
        let elem = elem.into();
        let made = self.intern(Key::Array(elem, len), CType::Array { elem, len }, false);
        made.unwrap_or_else(|_| unreachable!("unchecked"))
    }

    /// Array of `elem`, within the table's limits.
    pub fn try_array_of(&mut self, elem: impl Into<QualType>, len: ArrayLen) -> Result<TypeId, TypeError> {
        let elem = elem.into();
        self.intern(Key::Array(elem, len), CType::Array { elem, len }, true)
    }

    /// A gcc vector (`__attribute__((vector_size(n)))`) of `count` elements: a fixed-length
    /// array of the element type (indexed and initialized as one) that is a distinct type and
    /// is aligned to its whole size up to 16 bytes, never below its element's alignment, as
    /// LuaJIT lays them out (`cp_decl_intern`, `CTF_VECTOR`) and as gcc does for the power-of-two
    /// sizes LuaJIT makes (gcc caps at 16 only without AVX; LuaJIT caps always). The element
    /// must be an integer or a `float`/`double`; [`TypeTable::is_vector`] tells a vector
    /// apart from the array of the same element and length.
    pub fn try_vector_of(&mut self, elem: QualType, count: u64) -> Result<TypeId, TypeError> {
        let key = Key::Vector(elem, count);
        if let Some(&id) = self.interned.get(&key) {
            return Ok(id);
        }
        let e = match self.get(elem.id) {
            CType::Int(_) | CType::Float(FloatKind::Float | FloatKind::Double) => self.layout(elem.id)?,
            _ => {
                return Err(TypeError::Invalid {
                    message: format!("'{}' cannot be a vector element", self.display(elem)),
                })
            }
        };
        let size = e.size.checked_mul(count).filter(|s| s.is_power_of_two()).ok_or_else(|| TypeError::Invalid {
            message: format!("a vector of {count} '{}' is not a power of two in size", self.display(elem)),
        })?;
        let align = u32::try_from(size.min(16)).unwrap_or(16).max(e.align);
        let depth = self.depth_over([elem.id]);
        self.check_limits(depth, true)?;
        let info = Info { depth, key: Some(key.clone()), layout: Some(Layout { size, align }) };
        let id = self.push(CType::Array { elem, len: ArrayLen::Fixed(count) }, info);
        self.interned.insert(key, id);
        Ok(id)
    }

    /// `base` with the alignment `align` (a power of two), raised or lowered: what gcc and
    /// LuaJIT (`CTA_ALIGN`) make of `typedef int __attribute__((aligned(8))) i8a;` or the type
    /// name `int __attribute__((aligned(8)))`. A copy of a scalar, pointer, enum or array type
    /// that is the same to everything but its layout: the same size, that alignment (in a
    /// struct member too). `base` itself when `align` is already its alignment. Records and
    /// vectors are refused: a copy would be another struct, and a vector's alignment is its own.
    pub fn try_aligned(&mut self, base: TypeId, align: u32) -> Result<TypeId, TypeError> {
        let natural = self.layout(base)?;
        if natural.align == align {
            return Ok(base);
        }
        let copyable = match self.get(base) {
            CType::Array { .. } => !self.is_vector(base),
            CType::Record(_) | CType::Void | CType::Function(_) => false,
            _ => true,
        };
        if !copyable {
            return Err(TypeError::Invalid {
                message: format!("aligned({align}) on '{}' is not supported", self.display(base.into())),
            });
        }
        let key = Key::Aligned(base, align);
        if let Some(&id) = self.interned.get(&key) {
            return Ok(id);
        }
        let depth = self.info[base.0 as usize].depth;
        self.check_limits(depth, true)?;
        let info = Info { depth, key: Some(key.clone()), layout: Some(Layout { size: natural.size, align }) };
        let id = self.push(self.get(base).clone(), info);
        self.interned.insert(key, id);
        Ok(id)
    }

    /// Whether `id` is a vector made by [`TypeTable::try_vector_of`] (a `CType::Array` to
    /// everything else).
    pub fn is_vector(&self, id: TypeId) -> bool {
        matches!(self.info[id.0 as usize].key, Some(Key::Vector(..)))
    }

    /// A function type. Parameter names are kept from the first declaration of an identical
    /// type; they are not part of its identity. Unchecked, as [`TypeTable::pointer_to`].
    pub fn function(&mut self, f: FuncType) -> TypeId {
        self.intern_function(f, false).unwrap_or_else(|_| unreachable!("unchecked"))
    }

    /// A function type, within the table's limits.
    pub fn try_function(&mut self, f: FuncType) -> Result<TypeId, TypeError> {
        self.intern_function(f, true)
    }

    /// The function type `f`, made unless an identical one exists. It is looked up by its
    /// hash, then compared with the type holding that hash (and with the rare others of an
    /// equal hash), so that no key copies the parameter types.
    fn intern_function(&mut self, f: FuncType, checked: bool) -> Result<TypeId, TypeError> {
        let key = Key::Function(function_hash(&f));
        let held = self.interned.get(&key).copied();
        if let Some(id) = held {
            let mut same_hash = std::iter::once(id).chain(self.function_collisions.iter().copied());
            if let Some(id) = same_hash.find(|&id| self.is_function(id, &f)) {
                return Ok(id);
            }
        }
        let depth = self.depth_over(std::iter::once(f.ret.id).chain(f.params.iter().map(|p| p.ty.id)));
        self.check_limits(depth, checked)?;
        // The first type of a hash is the map's; later ones are listed.
        let key = held.is_none().then_some(key);
        let id = self.push(CType::Function(f), Info { depth, key: key.clone(), layout: None });
        match key {
            Some(key) => {
                self.interned.insert(key, id);
            }
            None => self.function_collisions.push(id),
        }
        Ok(id)
    }

    /// Is type `id` the function type `f` (parameter names aside)?
    fn is_function(&self, id: TypeId, f: &FuncType) -> bool {
        match &self.types[id.0 as usize] {
            CType::Function(g) => {
                g.ret == f.ret
                    && g.variadic == f.variadic
                    && g.conv == f.conv
                    && g.params.len() == f.params.len()
                    && g.params.iter().zip(&f.params).all(|(a, b)| a.ty == b.ty)
            }
            _ => false,
        }
    }

    /// A new, incomplete struct or union. Every call makes a distinct type, as every
    /// declaration in C does; the declaration parser keeps the tag scope.
    pub fn new_record(&mut self, kind: RecordKind, tag: Option<&str>) -> TypeId {
        self.push(
            CType::Record(Record { kind, tag: tag.map(str::to_string), body: None }),
            Info { depth: 1, key: None, layout: None },
        )
    }

    /// [`TypeTable::new_record`], within the table's limits.
    pub fn try_new_record(&mut self, kind: RecordKind, tag: Option<&str>) -> Result<TypeId, TypeError> {
        self.check_limits(1, true)?;
        Ok(self.new_record(kind, tag))
    }

    /// Defines a record declared with [`TypeTable::new_record`] and computes its layout.
    /// Fails (leaving it incomplete) if it is already defined, a member's type is incomplete or
    /// unsupported, or a bit-field is invalid.
    pub fn define_record(&mut self, id: TypeId, fields: Vec<Field>, attrs: RecordAttrs) -> Result<(), TypeError> {
        self.define_record_with_constants(id, fields, Vec::new(), attrs)
    }

    /// [`TypeTable::define_record`] for a definition that also declares constants in the
    /// record's namespace.
    pub fn define_record_with_constants(
        &mut self,
        id: TypeId,
        fields: Vec<Field>,
        constants: Vec<RecordConst>,
        attrs: RecordAttrs,
    ) -> Result<(), TypeError> {
        let kind = match self.get(id) {
            CType::Record(Record { body: Some(_), .. }) => {
                return Err(TypeError::Invalid { message: format!("redefinition of '{}'", self.display(id.into())) })
            }
            CType::Record(r) => r.kind,
            _ => {
                return Err(TypeError::Invalid {
                    message: format!("'{}' is not a struct or union", self.display(id.into())),
                })
            }
        };
        let layout = layout::record_layout(self, kind, &fields, attrs)?;
        let depth = self.depth_over(fields.iter().map(|f| f.ty.id));
        if depth > MAX_TYPE_DEPTH {
            return Err(TypeError::TooDeep);
        }
        self.remember(id);
        self.info[id.0 as usize].depth = depth;
        if let CType::Record(r) = &mut self.types[id.0 as usize] {
            r.body = Some(Box::new(RecordBody { fields, attrs, layout, constants }));
        }
        Ok(())
    }

    /// A new, incomplete enum.
    pub fn new_enum(&mut self, tag: Option<&str>) -> TypeId {
        let e = EnumType { tag: tag.map(str::to_string), constants: Vec::new(), repr: IntKind::UInt, complete: false };
        self.push(CType::Enum(e), Info { depth: 0, key: None, layout: None })
    }

    /// [`TypeTable::new_enum`], within the table's limits.
    pub fn try_new_enum(&mut self, tag: Option<&str>) -> Result<TypeId, TypeError> {
        self.check_limits(0, true)?;
        Ok(self.new_enum(tag))
    }

    /// Defines an enum's constants and picks the integer type that represents it, by gcc's
    /// rule on every target (mingw, the Windows oracle, follows it too): `unsigned int` when
    /// no value is negative, else `int`, widening to 64 bits when a value does not fit 32.
    pub fn define_enum(&mut self, id: TypeId, constants: Vec<(String, i64)>) -> Result<(), TypeError> {
        let fits_i32 = |v: i64| i32::try_from(v).is_ok();
        let fits_u32 = |v: i64| u32::try_from(v).is_ok();
        let any_negative = constants.iter().any(|(_, v)| *v < 0);
        let repr = if any_negative && constants.iter().all(|(_, v)| fits_i32(*v)) {
            IntKind::Int
        } else if !any_negative && constants.iter().all(|(_, v)| fits_u32(*v)) {
            IntKind::UInt
        } else {
            self.kind_of_size(8, any_negative)
        };
        match self.get(id) {
            CType::Enum(e) if e.complete => return Err(TypeError::Invalid { message: "redefinition of enum".into() }),
            CType::Enum(_) => self.remember(id),
            _ => {}
        }
        match &mut self.types[id.0 as usize] {
            CType::Enum(e) => {
                e.constants = constants;
                e.repr = repr;
                e.complete = true;
                Ok(())
            }
            _ => Err(TypeError::Invalid { message: "not an enum".into() }),
        }
    }

    /// Journals the definition of `id` before it changes, if a checkpoint older than `id` is
    /// open.
    fn remember(&mut self, id: TypeId) {
        if self.open.last().is_some_and(|&len| (id.0 as usize) < len) {
            let undo = Undo { id, ty: self.types[id.0 as usize].clone(), depth: self.depth(id) };
            self.journal.push(undo);
        }
    }

    /// Opens a checkpoint: [`TypeTable::rollback`] later takes back every type made and every
    /// older struct, union or enum defined since, [`TypeTable::commit`] keeps them. Checkpoints
    /// nest; closing one closes any opened after it and left open.
    pub fn checkpoint(&mut self) -> Checkpoint {
        let cp = Checkpoint { len: self.types.len(), journal: self.journal.len(), depth: self.open.len() };
        self.open.push(cp.len);
        cp
    }

    /// True when no type older than the checkpoint was defined since: taking back what was
    /// made since then touches nothing older.
    pub fn untouched_since(&self, cp: &Checkpoint) -> bool {
        self.journal.len() == cp.journal
    }

    /// Keeps what was done since the checkpoint.
    pub fn commit(&mut self, cp: Checkpoint) {
        self.open.truncate(cp.depth);
        if self.open.is_empty() {
            self.journal.clear();
        }
    }

    /// Returns the table to the checkpoint: older structs, unions and enums defined since are
    /// incomplete again, and the types made since are gone (their ids will be reused: nothing
    /// may still name them).
    pub fn rollback(&mut self, cp: Checkpoint) {
        while self.journal.len() > cp.journal {
            let undo = self.journal.pop().expect("longer than the checkpoint's");
            if (undo.id.0 as usize) < cp.len {
                self.types[undo.id.0 as usize] = undo.ty;
                self.info[undo.id.0 as usize].depth = undo.depth;
            }
        }
        for info in self.info.drain(cp.len..) {
            if let Some(key) = info.key {
                self.interned.remove(&key);
            }
        }
        // A listed function type is newer than the one its hash names in the map.
        self.function_collisions.retain(|id| (id.0 as usize) < cp.len);
        self.types.truncate(cp.len);
        self.commit(cp);
    }

    /// A fixed-length array's layout as computed when it was made, if it was.
    pub(crate) fn cached_layout(&self, id: TypeId) -> Option<Layout> {
        self.info[id.0 as usize].layout
    }

    fn kind_of_size(&self, bytes: u32, signed: bool) -> IntKind {
        match self.get(self.int_of_size(bytes, signed).expect("8 is a valid size")) {
            CType::Int(k) => *k,
            _ => unreachable!("int_of_size returns integer types"),
        }
    }

    /// Size and alignment of a type on this target.
    pub fn layout(&self, id: TypeId) -> Result<Layout, TypeError> {
        layout::type_layout(self, id)
    }

    /// `sizeof`.
    pub fn size_of(&self, id: TypeId) -> Result<u64, TypeError> {
        self.layout(id).map(|l| l.size)
    }

    /// `_Alignof` (the ABI alignment, as the compilers' `_Alignof` reports it). An array of
    /// unknown or variable length (`T[]`, `T[?]`) has no size but has its element's alignment,
    /// which every object of it needs (as gcc's `_Alignof` and LuaJIT's `ffi.alignof` say).
    pub fn align_of(&self, id: TypeId) -> Result<u32, TypeError> {
        match self.get(id) {
            CType::Array { elem, len: ArrayLen::Flexible | ArrayLen::Variable } => self.align_of(elem.id),
            _ => self.layout(id).map(|l| l.align),
        }
    }

    /// The record's definition, if `id` is a defined struct or union.
    pub fn record_body(&self, id: TypeId) -> Option<&RecordBody> {
        match self.get(id) {
            CType::Record(r) => r.body.as_deref(),
            _ => None,
        }
    }

    /// The type with typedef-free C spelling, as LuaJIT prints it inside `ctype<...>`:
    /// `int`, `const char *`, `struct foo *`, `int [10]`, `int (*)(int, double)`.
    pub fn display(&self, ty: QualType) -> String {
        let mut out = String::new();
        self.write_decl(ty, "", &mut out);
        out
    }

    /// Writes `ty` as a declaration of `name` (name may be empty for an abstract declarator).
    pub fn write_decl(&self, ty: QualType, name: &str, out: &mut String) {
        let mut inner = name.to_string();
        let mut cur = ty;
        // Walk the declarator outwards-in: pointers prefix, arrays and functions suffix.
        loop {
            match self.get(cur.id) {
                CType::Pointer(to) | CType::Ptr32(to) => {
                    let mut s = String::from("*");
                    let narrow = matches!(self.get(cur.id), CType::Ptr32(_));
                    if narrow {
                        s.push_str("__ptr32");
                        if cur.quals.is_const || cur.quals.is_volatile {
                            s.push(' ');
                        }
                    }
                    if cur.quals.is_const {
                        s.push_str("const");
                    }
                    if cur.quals.is_volatile {
                        s.push_str(if cur.quals.is_const { " volatile" } else { "volatile" });
                    }
                    if (narrow || cur.quals.is_const || cur.quals.is_volatile) && !inner.is_empty() {
                        s.push(' ');
                    }
                    inner = format!("{s}{inner}");
                    let to = *to;
                    match self.get(to.id) {
                        // A convention belongs inside the parentheses: `int (__stdcall *)(int)`.
                        CType::Function(f) if f.conv != CallConv::Cdecl => {
                            inner = format!("({} {inner})", f.conv.keyword())
                        }
                        CType::Array { .. } if self.is_vector(to.id) => {}
                        CType::Array { .. } | CType::Function(_) => inner = format!("({inner})"),
                        _ => {}
                    }
                    cur = to;
                }
                // A vector is spelled as its element type with the attribute (LuaJIT's
                // `lj_ctype_repr`): `float __attribute__((vector_size(16)))`.
                CType::Array { .. } if self.is_vector(cur.id) => break,
                CType::Array { elem, len } => {
                    let n = match len {
                        ArrayLen::Fixed(n) => n.to_string(),
                        ArrayLen::Flexible => String::new(),
                        ArrayLen::Variable => "?".into(),
                    };
                    inner = if inner.is_empty() { format!("[{n}]") } else { format!("{inner}[{n}]") };
                    cur = *elem;
                }
                CType::Function(f) => {
                    let mut params: Vec<String> = f.params.iter().map(|p| self.display(p.ty)).collect();
                    if f.variadic {
                        params.push("...".into());
                    }
                    if params.is_empty() {
                        params.push("void".into());
                    }
                    // A bare function type carries its convention in front; behind a pointer it
                    // was written inside the parentheses already.
                    let conv = match f.conv {
                        CallConv::Cdecl => String::new(),
                        _ if inner.starts_with("(__") => String::new(),
                        other => format!("{} ", other.keyword()),
                    };
                    inner = format!("{conv}{inner}({})", params.join(", "));
                    cur = f.ret;
                }
                _ => break,
            }
        }
        let base = match self.get(cur.id) {
            CType::Array { elem, .. } if self.is_vector(cur.id) => {
                let size = self.size_of(cur.id).unwrap_or(0);
                let elem = QualType { id: elem.id, quals: elem.quals.union(cur.quals) };
                format!("{} __attribute__((vector_size({size})))", self.base_name(elem))
            }
            _ => self.base_name(cur),
        };
        out.push_str(&base);
        if !inner.is_empty() {
            out.push(' ');
            out.push_str(&inner);
        }
    }

    fn base_name(&self, ty: QualType) -> String {
        let mut s = String::new();
        if ty.quals.is_const {
            s.push_str("const ");
        }
        if ty.quals.is_volatile {
            s.push_str("volatile ");
        }
        match self.get(ty.id) {
            CType::Void => s.push_str("void"),
            CType::Bool | CType::WideBool { .. } => s.push_str("bool"),
            CType::Int(k) => s.push_str(k.c_name()),
            CType::WideInt { size, signed } => {
                s.push_str(if *signed { "int" } else { "uint" });
                s.push_str(&(size * 8).to_string());
                s.push_str("_t");
            }
            CType::Float(k) => s.push_str(k.c_name()),
            CType::Complex(k) => {
                s.push_str(match k {
                    FloatKind::Float => "complex float",
                    FloatKind::Double => "complex",
                    FloatKind::LongDouble => "complex long double",
                });
            }
            CType::Record(r) => {
                s.push_str(r.kind.keyword());
                s.push(' ');
                match &r.tag {
                    Some(t) => s.push_str(t),
                    None => s.push_str(&ty.id.0.to_string()),
                }
            }
            CType::Enum(e) => {
                s.push_str("enum ");
                match &e.tag {
                    Some(t) => s.push_str(t),
                    None => s.push_str(&ty.id.0.to_string()),
                }
            }
            CType::Pointer(_) | CType::Ptr32(_) | CType::Array { .. } | CType::Function(_) => {
                unreachable!("derived types are declarators")
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Makes every function type hash alike on this thread ([`function_hash`]), so that
        /// a test reaches the handling of hash collisions.
        pub(super) static CONSTANT_FUNCTION_HASH: Cell<bool> = const { Cell::new(false) };
    }

    /// Function types are one per identity (parameter names aside) whatever their hashes: with
    /// every hash equal, distinct types stay distinct, identical ones are found again, and
    /// rolling back forgets those made since, the listed ones too.
    #[test]
    fn function_types_are_interned_through_hash_collisions() {
        for colliding in [false, true] {
            CONSTANT_FUNCTION_HASH.set(colliding);
            let mut t = TypeTable::new(Target::X64_SYSV);
            let int = QualType::plain(t.int(IntKind::Int));
            let dbl = QualType::plain(t.float(FloatKind::Double));
            let f = |params: &[QualType], variadic: bool| FuncType {
                ret: int,
                params: params.iter().map(|&ty| Param { name: Some("p".into()), ty }).collect(),
                variadic,
                conv: CallConv::Cdecl,
            };
            let a = t.function(f(&[int], false));
            let b = t.function(f(&[dbl], false));
            let c = t.function(f(&[int], true));
            assert!(a != b && b != c && a != c, "{colliding}");
            let mut unnamed = f(&[dbl], false);
            unnamed.params[0].name = None;
            assert_eq!(t.function(unnamed), b);
            assert_eq!(t.function(f(&[int], false)), a);
            let cp = t.checkpoint();
            let d = t.function(f(&[int, dbl], false));
            let e = t.function(f(&[dbl, int], false));
            assert_ne!(d, e);
            t.rollback(cp);
            assert_eq!(t.function(f(&[dbl], false)), b);
            let d2 = t.function(f(&[int, dbl], false));
            assert_eq!(t.display(d2.into()), "int (int, double)");
            assert_eq!(t.function(f(&[int, dbl], false)), d2);
            assert_eq!(t.function(f(&[int], true)), c);
        }
        CONSTANT_FUNCTION_HASH.set(false);
    }

    /// A qualified type is hashed as one word: every qualifier changes it, as does the id,
    /// and equal values hash alike.
    #[test]
    fn qualified_types_hash_apart_by_id_and_each_qualifier() {
        use std::hash::BuildHasher;
        let h = |id: u32, c: bool, v: bool| {
            let q = QualType { id: TypeId(id), quals: Quals { is_const: c, is_volatile: v } };
            std::hash::BuildHasherDefault::<crate::hash::FxHasher>::default().hash_one(q)
        };
        let all = [h(5, false, false), h(5, true, false), h(5, false, true), h(5, true, true), h(6, false, false)];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(h(7, true, false), h(7, true, false));
    }

    #[test]
    fn derived_types_are_interned_records_are_not() {
        let mut t = TypeTable::new(Target::X64_SYSV);
        let int = t.int(IntKind::Int);
        assert_eq!(t.pointer_to(int), t.pointer_to(int));
        assert_eq!(t.array_of(int, ArrayLen::Fixed(3)), t.array_of(int, ArrayLen::Fixed(3)));
        assert_ne!(t.array_of(int, ArrayLen::Fixed(3)), t.array_of(int, ArrayLen::Fixed(4)));
        assert_ne!(t.new_record(RecordKind::Struct, Some("a")), t.new_record(RecordKind::Struct, Some("a")));
    }

    #[test]
    fn display_spells_types_as_luajit_prints_them() {
        let mut t = TypeTable::new(Target::X64_SYSV);
        let int = t.int(IntKind::Int);
        let ch = t.int(IntKind::Char);
        let cstr = t.pointer_to(QualType { id: ch, quals: Quals::CONST });
        assert_eq!(t.display(cstr.into()), "const char *");
        let arr = t.array_of(int, ArrayLen::Fixed(10));
        assert_eq!(t.display(arr.into()), "int [10]");
        let dbl = t.float(FloatKind::Double);
        let f = t.function(FuncType {
            ret: int.into(),
            params: vec![Param { name: None, ty: int.into() }, Param { name: None, ty: dbl.into() }],
            variadic: false,
            conv: CallConv::Cdecl,
        });
        let fp = t.pointer_to(f);
        assert_eq!(t.display(fp.into()), "int (*)(int, double)");
        let pa = t.pointer_to(arr);
        assert_eq!(t.display(pa.into()), "int (*)[10]");
        let s = t.new_record(RecordKind::Struct, Some("foo"));
        let ps = t.pointer_to(s);
        assert_eq!(t.display(ps.into()), "struct foo *");
        let cp = QualType { id: ps, quals: Quals::CONST };
        assert_eq!(t.display(cp), "struct foo *const");
        let v = t.array_of(int, ArrayLen::Variable);
        assert_eq!(t.display(v.into()), "int [?]");
    }

    #[test]
    fn fixed_width_names_follow_the_data_model() {
        // int64_t is `long` on LP64 (glibc) and `long long` on ILP32 and LLP64.
        let t = TypeTable::new(Target::X64_SYSV);
        assert_eq!(t.get(t.int_of_size(8, true).unwrap()), &CType::Int(IntKind::Long));
        let w = TypeTable::new(Target::X64_WIN);
        assert_eq!(w.get(w.int_of_size(8, true).unwrap()), &CType::Int(IntKind::LongLong));
    }

    #[test]
    fn gcc_enum_with_negative_value_is_int_else_unsigned() {
        // gcc: an enum is unsigned int unless a value is negative (then int).
        let mut t = TypeTable::new(Target::X86_LINUX);
        let e = t.new_enum(Some("e"));
        t.define_enum(e, vec![("A".into(), -1), ("B".into(), 2)]).unwrap();
        assert!(matches!(t.get(e), CType::Enum(EnumType { repr: IntKind::Int, .. })));
        let u = t.new_enum(Some("u"));
        t.define_enum(u, vec![("A".into(), 0xffff_ffff)]).unwrap();
        assert!(matches!(t.get(u), CType::Enum(EnumType { repr: IntKind::UInt, .. })));
    }

    #[test]
    fn mingw_enum_follows_gcc_unsigned_above_int_max_and_64_bit_when_wider() {
        // mingw lays enums out as gcc does (not as MSVC, which truncates to int): the
        // Windows targets' oracle is mingw.
        let mut t = TypeTable::new(Target::X64_WIN);
        let e = t.new_enum(None);
        t.define_enum(e, vec![("F".into(), 0x8000_0000)]).unwrap();
        assert!(matches!(t.get(e), CType::Enum(EnumType { repr: IntKind::UInt, .. })));
        let w = t.new_enum(None);
        t.define_enum(w, vec![("BIG".into(), 1 << 40)]).unwrap();
        assert_eq!(t.size_of(w).unwrap(), 8);
    }

    #[test]
    fn stdcall_function_pointer_prints_its_convention_inside_the_parentheses() {
        let mut t = TypeTable::new(Target::X86_WIN);
        let int = t.int(IntKind::Int);
        let f = t.function(FuncType {
            ret: int.into(),
            params: vec![Param { name: None, ty: int.into() }],
            variadic: false,
            conv: CallConv::Stdcall,
        });
        let fp = t.pointer_to(f);
        assert_eq!(t.display(fp.into()), "int (__stdcall *)(int)");
        assert_eq!(t.display(f.into()), "int __stdcall (int)");
    }
}
