//! The per-`lua_State` FFI state: the C type table, the declaration scope, type descriptors,
//! metatypes and the saved `errno`. Two Lua states never share one.
//!
//! The state is boxed (inside the native layer's state); a full userdata anchored in the Lua registry (key: the address of
//! [`STATE_KEY`]) holds the box's pointer. Every `ffi` function and cdata metamethod is a C
//! closure whose first upvalue is a light userdata pointing at the state; the call helpers,
//! which have no upvalues, find it through the registry or through a type descriptor's
//! [`CTypeDesc::state`].
//!
//! The state is the first part of the native layer's `crate::native::state::State`, which
//! [`crate::native::get_or_create`] makes (see there for when it is freed).

use rustc_hash::FxHashMap;
use std::os::raw::{c_int, c_void};
use std::ptr::NonNull;
use std::sync::Arc;

use abi_model::cdef::CScope;
use abi_model::lua::vm::LuaVm;
use abi_model::{ArrayLen, CType, IntKind, QualType, Quals, Target, TypeId, TypeTable};
use mlua::ffi;

use crate::ctypes::ctype::{callable_type, shape, Shape};
use crate::os::chunks::Chunks;

/// Most declaration strings [`FfiState::parsed`] holds.
pub const PARSED_MAX: usize = 4096;
/// Longest declaration string [`FfiState::parsed`] holds, in bytes.
pub const PARSED_KEY_MAX: usize = 256;

/// Registry key (its address) of the userdata holding the boxed [`FfiState`]'s pointer.
pub static STATE_KEY: u8 = 0;

/// Registry references of the Lua values a state keeps: made once, by the cdata metatable's
/// creation (`surface::meta::create_metatables`), before any cdata exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryRefs {
    /// The cdata metatable (no `__gc`).
    pub metatable: c_int,
    /// The cdata metatable with `__gc` (for `ffi.gc` and metatype finalizers).
    pub gc_metatable: c_int,
    /// The weak-keyed table cdata -> finalizer.
    pub finalizers: c_int,
    /// The weak-valued table descriptor -> ctype object.
    pub ctype_cache: c_int,
    /// The table keeping alive the key strings of [`FfiState::field`]'s slots (slot + 1 ->
    /// string), so that no other string can take the address a slot compares.
    pub field_keys: c_int,
}

/// The C type part of the per-Lua-state state: what every layer from here up reads.
///
/// # Invariants
///
/// * **Address.** Once boxed (inside `native::state::State`, [`FfiState::set_address`]) the
///   state never moves until its Lua state is closed and every finalizer ran: closures,
///   descriptors, callback records and generated code hold its address.
/// * **Descriptors.** Each [`CTypeDesc`] stays where it was made as long as the state; only
///   [`FfiState::refresh_incomplete`] rewrites one, in place, between conversions.
/// * **Borrows.** `types` and `scope` are public so that a declaration can borrow both
///   mutably at once; the type table is borrowed immutably by conversions, and no borrow of
///   it is held across a conversion that may make a callback (which takes the whole state
///   mutably, adding types and descriptors: see `convert::walk_members`).
/// * **Registry.** [`FfiState::refs`] are valid from the metatables' creation on.
///
/// The other fields are private to this layer; the layers above use the accessors.
pub struct FfiState {
    /// All C types known to this state, laid out for the host target.
    pub types: TypeTable,
    /// Typedef names, tags and constants declared by `ffi.cdef`.
    pub scope: CScope,
    /// One descriptor per qualified type, kept in [`FfiState::desc_store`].
    descs: FxHashMap<QualType, NonNull<CTypeDesc>>,
    /// Where the descriptors are, each at an address that never changes, many to an
    /// allocation (a new function type's first call made one for its own).
    desc_store: Chunks<CTypeDesc, 64>,
    /// Descriptors looked up lately, in a slot picked by the type ([`FfiState::desc`]): a
    /// cast or a field access repeated in a loop finds its descriptor without hashing. A
    /// descriptor is never removed from `descs` (only updated in place), so an entry never
    /// goes stale.
    recent_descs: Box<[(QualType, *const CTypeDesc); RECENT_DESCS]>,
    /// The descriptors of `descs` that may gain a size by a later `ffi.cdef` (sizeless, and
    /// not [`never_sized`]): all [`FfiState::refresh_incomplete`] looks at, so that
    /// a cdef costs nothing per function type met before.
    may_complete: Vec<QualType>,
    /// Types of declaration strings already parsed by `ffi.new`/`ffi.cast`/... (strings
    /// without `{`, which would declare a new type each time); cleared by `ffi.cdef`, and
    /// bounded by [`FfiState::remember_parsed`].
    parsed: FxHashMap<Arc<[u8]>, QualType>,
    /// `ffi.metatype` tables by record (or complex) type: registry references.
    metatypes: FxHashMap<TypeId, c_int>,
    /// `void *`, `const void *`, `const char *`, `const char []` ([`FfiState::void_ptr`], ...).
    common: [TypeId; 4],
    /// The `errno` value `ffi.errno` reports (saved after each C call).
    errno: c_int,
    /// Windows: the `GetLastError()` code saved after each C call and restored before the
    /// next, so work done between them doesn't change what the next call (such as
    /// `GetLastError` itself) sees. Always 0 elsewhere.
    last_error: u32,
    /// The Lua values the state keeps in the registry ([`FfiState::set_refs`]).
    refs: RegistryRefs,
    /// The Lua stack layout stubs read and write inline, once checked against the running
    /// Lua ([`crate::stack::vm_check`]); `None`: every conversion through the C API.
    inline_vm: Option<LuaVm>,
    /// The addresses of both shared cdata metatables, without and with `__gc` (their
    /// `Table`s, what `lua_topointer` gives; 0 before [`FfiState::set_shared_metatables`]):
    /// [`crate::cdata`] stores the first into the userdata it makes with the verified
    /// layout, without `lua_setmetatable`. The registry keeps both alive as long as the
    /// state.
    shared_metatables: [usize; 2],
    /// Lua 5.1–5.3: the types' own value metatables by address
    /// ([`crate::cdata::BARE_VALUES`]): how a bare value's type is found.
    bare_metatables: FxHashMap<usize, NonNull<CTypeDesc>>,
    /// The entry of `bare_metatables` found last, with its type's size (a loop over values
    /// of one type looks up the same metatable again and again): three cells, read as
    /// three words (a tuple in one cell was copied through the stack).
    bare_recent_mt: std::cell::Cell<usize>,
    bare_recent_desc: std::cell::Cell<*const CTypeDesc>,
    bare_recent_size: std::cell::Cell<u64>,
    /// Where this state lives for good (set once it is boxed, `crate::native::state::State::boxed`),
    /// the pointer descriptors carry; null before.
    address: *mut FfiState,
    /// Members found by name ([`FfiState::member`]), so that `cdata.field` does not search
    /// the record again on every access.
    members: Box<[Option<MemberEntry>; MEMBER_CACHE]>,
    /// Numeric members by (descriptor, key string address) ([`FfiState::field`]): what the
    /// inline `__index`/`__newindex` read.
    fields: Box<[Field; FIELD_CACHE]>,
    /// Declaration strings met lately, by the address of their Lua string: string address,
    /// text, type ([`FfiState::parsed`]); emptied with `parsed`.
    recent_types: Box<[Option<RecentType>; RECENT_TYPES]>,
}

/// A slot of [`FfiState::parsed`]'s address-picked cache: the Lua string's address, its text
/// and the type it parsed to.
/// The text is the map's own (one allocation per declaration string for both).
type RecentType = (usize, Arc<[u8]>, QualType);

/// Slots of [`FfiState::parsed`]'s address-picked cache (a power of two).
const RECENT_TYPES: usize = 64;

/// Slots of [`FfiState::field`]'s cache (a power of two).
pub const FIELD_CACHE: usize = 256;

/// How a [`Field`]'s bytes read and write as a Lua number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// `float` (4) or `double` (8).
    Float(u8),
    /// An integer of this many bytes (1, 2, 4; 8 only where Lua has integers), signed or not.
    Int(u8, bool),
}

/// A numeric member of a record found by name, as the inline `__index`/`__newindex` use it:
/// for the cdata of one type descriptor (a record, or a pointer to one) and one key string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The descriptor's address (0: an empty slot).
    pub desc: usize,
    /// The key's Lua string object, kept alive while the slot holds it (`field_keys`).
    pub key: usize,
    /// Byte offset in the record.
    pub offset: usize,
    /// How it reads and writes.
    pub kind: FieldKind,
    /// The cdata holds a pointer to the record (`p.x` is `p->x`).
    pub deref: bool,
    /// Neither the record nor the member is `const`.
    pub writable: bool,
}

impl Field {
    /// An empty slot.
    pub const EMPTY: Field =
        Field { desc: 0, key: 0, offset: 0, kind: FieldKind::Float(8), deref: false, writable: false };

    /// The slot of `(desc, key)` in [`FfiState::field`]'s cache.
    #[inline(always)]
    pub fn slot(desc: usize, key: usize) -> usize {
        ((key ^ (desc >> 3)) >> 4) & (FIELD_CACHE - 1)
    }
}

/// Slots of [`FfiState::desc`]'s cache (a power of two).
const RECENT_DESCS: usize = 64;

/// How `c[i]` with a number key reaches the element of a pointer or array cdata on the
/// inline path ([`crate::surface::fast`]): made with the descriptor, for elements whose size
/// was known then (so nothing here goes stale).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elem {
    /// The element's type as the general path types it: an array's qualifiers (and a
    /// vector's `const`) added to the element's.
    pub ty: QualType,
    /// How a numeric element reads and writes; `None` for a record element (read as a
    /// reference).
    pub kind: Option<FieldKind>,
    /// The element's size: the distance from `c[i]` to `c[i + 1]`.
    pub step: usize,
    /// The cdata holds a pointer to the elements (an array holds them).
    pub deref: bool,
    /// The element is not `const`.
    pub writable: bool,
}

impl Elem {
    /// The inline access to elements of type `ty` of `step` bytes, when they are numbers Lua
    /// reads unboxed (not a 64-bit integer where Lua has no integers) or records.
    fn new(types: &TypeTable, ty: QualType, step: u64, deref: bool) -> Option<Elem> {
        let kind = match shape(types, ty.id) {
            Shape::Float { size } => Some(FieldKind::Float(size)),
            Shape::Int { size, signed } if size < 8 || crate::stack::HAS_INTEGERS => Some(FieldKind::Int(size, signed)),
            Shape::Record => None,
            _ => return None,
        };
        Some(Elem { ty, kind, step: usize::try_from(step).ok()?, deref, writable: !ty.quals.is_const })
    }
}

/// Slots of [`FfiState::member`]'s cache (a power of two).
const MEMBER_CACHE: usize = 256;

/// A member of a record as indexing needs it: its type (with the member's own qualifiers),
/// byte offset, bit position for a bit-field, and the type's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub ty: QualType,
    pub offset: u64,
    pub bits: Option<abi_model::BitPos>,
    pub shape: Shape,
}

/// A slot of the member cache: the record, the name (its bytes, and the address of the Lua
/// string they were last read from, which picks the slot) and what it names.
struct MemberEntry {
    record: TypeId,
    key_at: usize,
    name: Box<[u8]>,
    member: Member,
}

/// A type's descriptor: what the `ctype` argument of the conversion helpers points to.
///
/// One descriptor exists per distinct qualified type per Lua state; it is kept by the
/// state's [`FfiState`] (which lives as long as the Lua state) where it was made, so its
/// address is stable and may be embedded in generated code as a constant. Its fields are
/// read-only after creation. Aligned to 8 on every target: a cdata keeps three bits of
/// its own in the low bits of its descriptor's address (`crate::cdata`).
#[derive(Debug)]
#[repr(align(8))]
pub struct CTypeDesc {
    /// The type.
    pub ty: QualType,
    /// Its shape.
    pub shape: Shape,
    /// `sizeof`, when the type has a size (not for `void`, functions, `T[]`, `T[?]`,
    /// incomplete records, `long double`).
    pub size: Option<u64>,
    /// `_Alignof` (1 when unknown), also for the sizeless `T[]` and `T[?]`: every object of
    /// the type is allocated at a multiple of it.
    pub align: u32,
    /// Pointers and arrays: the size of an element, when it was known as the descriptor was
    /// made (a type with a size keeps it, so `Some` never goes stale; `None` means ask the
    /// type table, the element may have been defined since).
    pub elem_size: Option<u64>,
    /// Pointers and arrays of numbers or records with a known element size: how the inline
    /// `c[i]` reaches an element.
    pub elem: Option<Elem>,
    /// Pointers and arrays of records: the element's descriptor (of [`Elem::ty`]) once the
    /// inline `c[i]` asked for it, 0 before. Written by [`crate::surface::fast`] only.
    pub elem_desc: std::cell::Cell<usize>,
    /// The state that owns this descriptor.
    pub state: *mut FfiState,
    /// Function types and pointers to them: the entry of the shared call stub for this
    /// signature once one was built (0 before; never for variadic functions, whose stub
    /// depends on the arguments). Written by [`crate::native::call`] only.
    pub call_stub: std::cell::Cell<usize>,
    /// Function types: the C function of the Lua C closures that namespaces return for
    /// functions of this type (the shared closure-mode stub, or the variadic dispatcher),
    /// 0 before one was made. It is how [`crate::cdata::to_cdata`] recognises those closures.
    /// Written by [`crate::native::call`] only.
    pub closure_entry: std::cell::Cell<usize>,
    /// Function types run on tier 0 (`crate::native::closure`): the C function closures made
    /// before the stub was built keep until their next call (0 otherwise); recognised as
    /// [`CTypeDesc::closure_entry`] is. Written by [`crate::native::call`] only.
    pub tier0_entry: std::cell::Cell<usize>,
    /// Function types run on tier 0: the address of the signature's `Tier0Sig`, which the
    /// state owns (0 otherwise). Written by [`crate::native::call`] only.
    pub tier0: std::cell::Cell<usize>,
    /// Callable types whose `__call` runs on tier 0: the address of the `Tier0Sig` of their
    /// metamethod-mode calls, which the state owns (0 otherwise). Written by
    /// [`crate::native::call`] only.
    pub tier0_call: std::cell::Cell<usize>,
    /// Lua 5.1–5.3 ([`crate::cdata::BARE_VALUES`]): whether an inline value of this type is
    /// stored bare, without a header: every type but functions and pointers to them (whose
    /// cdata the call paths read as a header at the start of a block).
    pub bare: bool,
    /// Lua 5.1–5.3: this type's own value metatables once a bare value of it was made
    /// ([`ValueMetatables::UNMADE`] before). Written by [`crate::cdata`] only; stubs read
    /// `addr` ([`crate::cdata::header_layout`]).
    pub value_metatables: std::cell::Cell<ValueMetatables>,
}

/// A type's own metatables for its bare values ([`CTypeDesc::value_metatables`]): copies of
/// the two shared cdata metatables (the one with `__gc` made with the type's first
/// finalizer), anchored in the registry for the state's life, which
/// [`FfiState::bare_value_desc`] maps back to the type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueMetatables {
    /// The plain one's address (what `lua_topointer` gives).
    pub addr: usize,
    /// Registry references: the plain one, the one with `__gc` (`LUA_NOREF` until made).
    pub refs: [c_int; 2],
}

impl ValueMetatables {
    /// Before they are made: an `addr` no userdata has as its metatable (not 0, which one
    /// without a metatable has), so that a stub comparing it never takes another userdata
    /// for a value of the type.
    pub const UNMADE: ValueMetatables = ValueMetatables { addr: usize::MAX, refs: [ffi::LUA_NOREF; 2] };
}

impl CTypeDesc {
    /// Builds the descriptor of `ty`.
    pub fn new(types: &TypeTable, ty: QualType, state: *mut FfiState) -> CTypeDesc {
        let shape = shape(types, ty.id);
        // `void` and functions never have a size: not asked, since the answer would be an
        // error spelling the type out (a string per function descriptor).
        let sizeless = matches!(shape, Shape::Void | Shape::Func);
        let layout = if sizeless { None } else { types.layout(ty.id).ok() };
        let elem_size = match shape {
            // A pointer to a function or `void` has no element size (not asked, as above).
            Shape::Pointer(elem) if matches!(types.get(elem.id), CType::Function(_) | CType::Void) => None,
            Shape::Pointer(elem) | Shape::Array(elem, _) => types.size_of(elem.id).ok(),
            _ => None,
        };
        let elem = match (shape, elem_size) {
            (Shape::Pointer(e), Some(step)) => Elem::new(types, e, step, true),
            (Shape::Array(e, _), Some(step)) => {
                let mut quals = e.quals.union(ty.quals);
                // A vector's elements are read-only (as `surface::meta::resolve` has it).
                quals.is_const |= types.is_vector(ty.id);
                Elem::new(types, QualType { id: e.id, quals }, step, false)
            }
            _ => None,
        };
        CTypeDesc {
            ty,
            shape,
            elem_size,
            elem,
            elem_desc: std::cell::Cell::new(0),
            size: layout.map(|l| l.size),
            align: match layout {
                Some(l) => l.align,
                None if sizeless => 1,
                None => types.align_of(ty.id).unwrap_or(1),
            },
            state,
            call_stub: std::cell::Cell::new(0),
            closure_entry: std::cell::Cell::new(0),
            tier0_entry: std::cell::Cell::new(0),
            tier0: std::cell::Cell::new(0),
            tier0_call: std::cell::Cell::new(0),
            bare: callable_type(types, ty.id).is_none(),
            value_metatables: std::cell::Cell::new(ValueMetatables::UNMADE),
        }
    }
}

/// Whether a type of this shape can never have a size, whatever is declared later: `void`,
/// functions, `T[]` and `T[?]`, and the types the model has no rule for (`long double`).
fn never_sized(shape: Shape) -> bool {
    matches!(
        shape,
        Shape::Void | Shape::Func | Shape::Unsupported | Shape::Array(_, ArrayLen::Flexible | ArrayLen::Variable)
    )
}

/// The host's target; the module only builds for the four x86 targets abi-model knows
/// (elsewhere the table uses x86-64 System V layouts, which callers must not rely on).
pub fn host_target() -> Target {
    Target::host().unwrap_or(Target::X64_SYSV)
}

impl FfiState {
    /// A fresh state with the built-in types and typedefs.
    pub fn new() -> FfiState {
        let mut types = TypeTable::new(host_target());
        let scope = CScope::new(&mut types);
        let void = types.void();
        let void_ptr = types.pointer_to(void);
        let cchar = QualType { id: types.int(IntKind::Char), quals: Quals::CONST };
        let const_char_array = types.array_of(cchar, ArrayLen::Flexible);
        let const_void_ptr = types.pointer_to(QualType { id: void, quals: Quals::CONST });
        let const_char_ptr = types.pointer_to(cchar);
        FfiState {
            types,
            scope,
            descs: FxHashMap::default(),
            desc_store: Chunks::default(),
            recent_descs: Box::new([(QualType::plain(TypeId(0)), std::ptr::null()); RECENT_DESCS]),
            may_complete: Vec::new(),
            parsed: FxHashMap::default(),
            metatypes: FxHashMap::default(),
            common: [void_ptr, const_void_ptr, const_char_ptr, const_char_array],
            errno: 0,
            last_error: 0,
            refs: RegistryRefs {
                metatable: ffi::LUA_NOREF,
                gc_metatable: ffi::LUA_NOREF,
                finalizers: ffi::LUA_NOREF,
                ctype_cache: ffi::LUA_NOREF,
                field_keys: ffi::LUA_NOREF,
            },
            inline_vm: None,
            shared_metatables: [0; 2],
            bare_metatables: FxHashMap::default(),
            bare_recent_mt: std::cell::Cell::new(0),
            bare_recent_desc: std::cell::Cell::new(std::ptr::null()),
            bare_recent_size: std::cell::Cell::new(0),
            address: std::ptr::null_mut(),
            members: Box::new([const { None }; MEMBER_CACHE]),
            fields: Box::new([Field::EMPTY; FIELD_CACHE]),
            recent_types: Box::new([const { None }; RECENT_TYPES]),
        }
    }

    /// `void *`, the type of `nil` and of userdata addresses in conversions.
    #[inline]
    pub fn void_ptr(&self) -> TypeId {
        self.common[0]
    }

    /// `const void *` (`ffi.copy`'s source, `ffi.string` with a length).
    #[inline]
    pub fn const_void_ptr(&self) -> TypeId {
        self.common[1]
    }

    /// `const char *` (`ffi.string`).
    #[inline]
    pub fn const_char_ptr(&self) -> TypeId {
        self.common[2]
    }

    /// `const char []`, the type a Lua string has when it converts to a pointer.
    #[inline]
    pub fn const_char_array(&self) -> TypeId {
        self.common[3]
    }

    /// The `errno` value `ffi.errno` reports.
    #[inline]
    pub fn errno(&self) -> c_int {
        self.errno
    }

    /// Sets the `errno` value `ffi.errno` reports (after a C call, or `ffi.errno(n)`).
    #[inline]
    pub fn set_errno(&mut self, n: c_int) {
        self.errno = n;
    }

    /// The `GetLastError()` code saved after the last C call (Windows).
    #[inline]
    pub fn last_error(&self) -> u32 {
        self.last_error
    }

    /// Saves the `GetLastError()` code the next C call starts with (Windows).
    #[inline]
    pub fn set_last_error(&mut self, code: u32) {
        self.last_error = code;
    }

    /// Where the saved `errno` is, for stubs that save and restore it inline.
    pub fn errno_slot(&self) -> *const c_int {
        &self.errno
    }

    /// The registry references of the state's Lua values.
    #[inline]
    pub fn refs(&self) -> RegistryRefs {
        self.refs
    }

    /// Records the registry references, once, when the metatables are made.
    pub fn set_refs(&mut self, refs: RegistryRefs) {
        self.refs = refs;
    }

    /// The verified Lua stack layout, if the running Lua has been checked to match it.
    #[inline]
    pub fn inline_vm(&self) -> Option<&LuaVm> {
        self.inline_vm.as_ref()
    }

    /// Records the addresses of the shared cdata metatables (without and with `__gc`), when
    /// they are made; the first is [`FfiState::metatable_addr`] from then on.
    pub fn set_shared_metatables(&mut self, addrs: [usize; 2]) {
        self.shared_metatables = addrs;
    }

    /// Whether `mt` is the address of one of the shared cdata metatables.
    #[inline(always)]
    pub fn is_shared_metatable(&self, mt: usize) -> bool {
        mt != 0 && (mt == self.shared_metatables[0] || mt == self.shared_metatables[1])
    }

    /// Records `mt` as one of `desc`'s own value metatables.
    pub fn add_bare_value_metatable(&mut self, mt: usize, desc: *const CTypeDesc) {
        if let Some(d) = NonNull::new(desc as *mut CTypeDesc) {
            self.bare_metatables.insert(mt, d);
        }
    }

    /// The type whose bare values have the metatable at `mt`, and its size, when it is the
    /// one found last ([`FfiState::bare_value_desc`]).
    #[inline(always)]
    pub fn recent_bare_value_desc(&self, mt: usize) -> Option<(*const CTypeDesc, u64)> {
        (self.bare_recent_mt.get() == mt && mt != 0).then(|| (self.bare_recent_desc.get(), self.bare_recent_size.get()))
    }

    /// The type whose bare values have the metatable at `mt`, if any, and its size; kept as
    /// the one found last.
    #[inline]
    pub fn bare_value_desc(&self, mt: usize) -> Option<(*const CTypeDesc, u64)> {
        let desc = self.bare_metatables.get(&mt)?.as_ptr() as *const CTypeDesc;
        // SAFETY: a descriptor of this state lives as long as it.
        let size = unsafe { (*desc).size.unwrap_or(0) };
        self.bare_recent_mt.set(mt);
        self.bare_recent_desc.set(desc);
        self.bare_recent_size.set(size);
        Some((desc, size))
    }

    /// The cdata metatable's address, once recorded ([`FfiState::set_shared_metatables`]).
    #[inline]
    pub fn metatable_addr(&self) -> Option<usize> {
        let addr = self.shared_metatables[0];
        (addr != 0).then_some(addr)
    }

    /// Records the result of checking the running Lua's stack layout.
    pub fn set_inline_vm(&mut self, vm: Option<LuaVm>) {
        self.inline_vm = vm;
    }

    /// The type the declaration string `key` parsed to, if it is cached. `key_at` is the
    /// address of the Lua string holding it: a program casting to one type in a loop passes
    /// the same (interned) string every time, answered from a slot picked by that address
    /// without hashing the text (the bytes decide a hit, as in [`FfiState::member`]).
    #[inline]
    pub fn parsed(&mut self, key: &[u8], key_at: usize) -> Option<QualType> {
        let slot = (key_at >> 4) & (RECENT_TYPES - 1);
        if let Some((at, text, ty)) = &self.recent_types[slot] {
            if *at == key_at && **text == *key {
                return Some(*ty);
            }
        }
        let (text, &ty) = self.parsed.get_key_value(key)?;
        self.recent_types[slot] = Some((key_at, text.clone(), ty));
        Some(ty)
    }

    /// Forgets every cached declaration string (`ffi.cdef` may change what they mean).
    pub fn forget_parsed(&mut self) {
        // A recent entry is always one of `parsed`'s (`remember_parsed` clears the map only
        // to insert into it): nothing to forget, and no 64 slots to refill, in a program that
        // declares without parsing type strings in between.
        if self.parsed.is_empty() {
            debug_assert!(self.recent_types.iter().all(Option::is_none));
            return;
        }
        self.parsed.clear();
        self.recent_types.fill(None);
    }

    /// The registry reference of the metatype of record (or complex) type `id`.
    #[inline]
    pub fn metatype(&self, id: TypeId) -> Option<c_int> {
        self.metatypes.get(&id).copied()
    }

    /// Records the metatype of `id` (a registry reference); a type has at most one.
    pub fn set_metatype(&mut self, id: TypeId, r: c_int) {
        self.metatypes.insert(id, r);
    }

    /// Records where this state lives for good: `address` points to it with the provenance
    /// of the allocation that holds it, and is the pointer descriptors made from now on
    /// carry ([`CTypeDesc::state`]).
    ///
    /// # Safety
    /// `address` points to `self`, which never moves again.
    pub unsafe fn set_address(&mut self, address: *mut FfiState) {
        self.address = address;
    }

    /// The pointer descriptors carry: the one given to [`FfiState::set_address`], else this
    /// borrow's (a state that is not boxed, whose descriptors no stub runs with).
    fn address(&mut self) -> *mut FfiState {
        if self.address.is_null() {
            self
        } else {
            self.address
        }
    }

    /// The descriptor of `ty`, created on first use. The pointer stays valid as long as this
    /// state lives.
    #[inline]
    pub fn desc(&mut self, ty: QualType) -> *const CTypeDesc {
        let slot = (ty.id.0 as usize * 4 + usize::from(ty.quals.is_const) * 2 + usize::from(ty.quals.is_volatile))
            & (RECENT_DESCS - 1);
        let (seen, d) = self.recent_descs[slot];
        if seen == ty && !d.is_null() {
            return d;
        }
        let d = self.desc_in_map(ty);
        self.recent_descs[slot] = (ty, d);
        d
    }

    /// [`FfiState::desc`] from the map.
    fn desc_in_map(&mut self, ty: QualType) -> *const CTypeDesc {
        let me = self.address();
        let types = &self.types;
        let may_complete = &mut self.may_complete;
        let store = &mut self.desc_store;
        let d = self.descs.entry(ty).or_insert_with(|| {
            let d = CTypeDesc::new(types, ty, me);
            if d.size.is_none() && !never_sized(d.shape) {
                may_complete.push(ty);
            }
            store.push(d)
        });
        d.as_ptr()
    }

    /// The member `name` of the record `record` (anonymous members searched), or `None`.
    /// `key_at` is the address of the Lua string holding `name`: equal strings are usually
    /// the same (interned) string, so it picks the cache slot; the name's bytes decide a hit,
    /// so a string freed and another made at its address cannot be mistaken for it. A record
    /// with a member has its body for good, so an answer never goes stale.
    #[inline]
    pub fn member(&mut self, record: TypeId, name: &[u8], key_at: usize) -> Option<Member> {
        let slot = ((key_at >> 4) ^ (record.0 as usize).wrapping_mul(0x9e37_79b9)) & (MEMBER_CACHE - 1);
        if let Some(e) = &self.members[slot] {
            if e.record == record && e.key_at == key_at && *e.name == *name {
                return Some(e.member);
            }
        }
        let key = std::str::from_utf8(name).ok()?;
        let found = abi_model::cdef::find_member(&self.types, record, key)?;
        let member =
            Member { ty: found.ty, offset: found.offset, bits: found.bits, shape: shape(&self.types, found.ty.id) };
        self.members[slot] = Some(MemberEntry { record, key_at, name: name.into(), member });
        Some(member)
    }

    /// The numeric member that the key string at `key` names in cdata of descriptor `desc`,
    /// if it is cached. A hit compares two words: the string is alive (the caller holds it)
    /// and the slot keeps its own key string alive, so one address is one string.
    #[inline(always)]
    pub fn field(&self, desc: usize, key: usize) -> Option<Field> {
        let f = self.fields[Field::slot(desc, key)];
        (f.desc == desc && f.key == key).then_some(f)
    }

    /// Fills `f`'s slot. The caller has first made the `field_keys` table hold `f.key` at
    /// the slot's index + 1 (replacing the string of the entry it overwrites).
    pub fn set_field(&mut self, f: Field) {
        self.fields[Field::slot(f.desc, f.key)] = f;
    }

    /// Caches the type `key` parsed to. The cache holds declaration strings of at most
    /// [`PARSED_KEY_MAX`] bytes and starts over after [`PARSED_MAX`] of them, so that distinct
    /// spellings made in a loop (`"int *" .. i`) cannot grow it without bound.
    pub fn remember_parsed(&mut self, key: &[u8], key_at: usize, ty: QualType) {
        if key.len() > PARSED_KEY_MAX || key.contains(&b'{') {
            return;
        }
        if self.parsed.len() >= PARSED_MAX {
            self.parsed.clear();
        }
        let text: Arc<[u8]> = key.into();
        self.parsed.insert(text.clone(), ty);
        self.recent_types[(key_at >> 4) & (RECENT_TYPES - 1)] = Some((key_at, text, ty));
    }

    /// Forgets cached descriptors whose layout has changed: a record that was incomplete
    /// when its descriptor was made and has been defined since. Called after `ffi.cdef`.
    ///
    /// Only a descriptor that gained a size is replaced: the others of sizeless types
    /// (functions, `void`, `T[]`, records still incomplete) keep their caches, among them a
    /// function type's stubs and the closure entry by which namespace functions made before
    /// the cdef are still recognised as function cdata.
    pub fn refresh_incomplete(&mut self) {
        let me = self.address();
        let (types, descs) = (&self.types, &self.descs);
        self.may_complete.retain(|ty| {
            let d = *descs.get(ty).expect("a listed descriptor exists");
            if types.layout(ty.id).is_err() {
                return true;
            }
            // Update in place: the address is what callers hold.
            // SAFETY: `d` is a descriptor `desc_store` keeps (alive and unmoved as long as the
            // state); callers hold its address, never a reference across an `ffi.cdef`, which
            // is where this runs, so writing it aliases nothing.
            unsafe { *d.as_ptr() = CTypeDesc::new(types, *ty, me) };
            false
        });
    }
}

impl Default for FfiState {
    fn default() -> Self {
        FfiState::new()
    }
}

/// The state of `l` from the registry, or null if the module was never opened in it.
///
/// # Safety
/// `l` must be a valid Lua state with room for 1 stack slot.
pub unsafe fn from_registry(l: *mut ffi::lua_State) -> *mut FfiState {
    // SAFETY: valid-L with 1 free slot (this function's contract): `lua_rawgetp` pushes one
    // value (a raw read: no metamethod, no allocation) and `lua_pop` removes it. Only
    // `native::get_or_create` sets the registry key `&STATE_KEY`, to a full userdata whose
    // block holds the box's pointer, so a non-null `ud` is that block and `*ud` reads it.
    unsafe {
        ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, &STATE_KEY as *const u8 as *const c_void);
        let ud = ffi::lua_touserdata(l, -1) as *const *mut FfiState;
        ffi::lua_pop(l, 1);
        if ud.is_null() {
            return std::ptr::null_mut();
        }
        // The userdata holds the box's pointer from its creation on (`get_or_create`).
        *ud
    }
}

/// The state of a C closure registered by this module (its upvalue 1).
///
/// # Safety
/// Only for closures created by [`crate::surface::api`] / [`crate::cdata`] with the state as upvalue 1.
#[inline]
pub unsafe fn from_upvalue(l: *mut ffi::lua_State) -> *mut FfiState {
    // SAFETY: the closure was created with a light userdata upvalue.
    unsafe { ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *mut FfiState }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The member cache answers by name: two names read from strings at one address (a
    /// string freed and another made in its place) are told apart by their bytes.
    #[test]
    fn member_cache_tells_names_at_one_address_apart() {
        let mut st = FfiState::new();
        let rec =
            abi_model::cdef::parse_type(&mut st.types, &mut st.scope, "struct { double x; int y; }", &[]).unwrap().id;
        let at = 0x1000;
        let x = st.member(rec, b"x", at).expect("x");
        let y = st.member(rec, b"y", at).expect("y");
        assert_eq!((x.offset, x.shape), (0, Shape::Float { size: 8 }));
        assert_eq!((y.offset, y.shape), (8, Shape::Int { size: 4, signed: true }));
        assert_eq!(st.member(rec, b"x", at), Some(x), "x again, after y took the slot");
        assert_eq!(st.member(rec, b"z", at), None);
    }

    /// `ffi.cdef` refreshes the descriptor of a record it defines (in place), and keeps only
    /// descriptors that may still gain a size on the list it looks at: not functions.
    #[test]
    fn a_cdef_refreshes_records_it_defines_and_skips_functions() {
        let mut st = FfiState::new();
        let rec = abi_model::cdef::parse_type(&mut st.types, &mut st.scope, "struct later", &[]);
        assert!(rec.is_err(), "an undeclared tag is refused");
        abi_model::cdef::cdef(&mut st.types, &mut st.scope, "struct later; int f(int);", &[]).unwrap();
        let rec = abi_model::cdef::parse_type(&mut st.types, &mut st.scope, "struct later", &[]).unwrap();
        let func = abi_model::cdef::parse_type(&mut st.types, &mut st.scope, "int (int)", &[]).unwrap();
        let (d_rec, d_func) = (st.desc(rec), st.desc(func));
        // SAFETY: descriptors live as long as the state.
        unsafe {
            assert_eq!(((*d_rec).size, (*d_func).size, (*d_func).align), (None, None, 1));
        }
        assert_eq!(st.may_complete, [rec]);
        abi_model::cdef::cdef(&mut st.types, &mut st.scope, "struct later { int x, y; };", &[]).unwrap();
        st.refresh_incomplete();
        // SAFETY: the descriptors live, unmoved, as long as the state; the refresh rewrote this one in place.
        unsafe {
            // Two ints, so every host lays it out alike (a lone double aligns to 4 on i386 Linux).
            assert_eq!(((*d_rec).size, (*d_rec).align), (Some(8), 4));
        }
        assert_eq!(st.may_complete, []);
    }

    /// The descriptor cache answers by the whole qualified type: types that share a slot
    /// (ids 16 apart, or one type with and without `const`) each get their own descriptor,
    /// the one the map holds, however they alternate.
    #[test]
    fn cached_descriptors_are_the_types_own() {
        let mut st = FfiState::new();
        let a = QualType::plain(st.types.int(IntKind::Int));
        for n in 1..=32 {
            abi_model::cdef::parse_type(&mut st.types, &mut st.scope, &format!("int[{n}]"), &[]).unwrap();
        }
        let b = QualType::plain(TypeId(a.id.0 + 16));
        assert!((b.id.0 as usize) < st.types.len(), "a type with a colliding slot exists");
        let ca = QualType { quals: Quals { is_const: true, is_volatile: false }, ..a };
        let from_map: Vec<_> = [a, b, ca].iter().map(|t| st.desc_in_map(*t)).collect();
        for round in 0..3 {
            for (i, t) in [a, b, ca, a, ca, b].iter().enumerate() {
                let d = st.desc(*t);
                // SAFETY: descriptors live as long as the state.
                assert_eq!(unsafe { (*d).ty }, *t, "round {round}, lookup {i}");
                assert_eq!(d, from_map[[a, b, ca].iter().position(|x| x == t).unwrap()]);
            }
        }
    }

    /// The declaration-string cache answers by text too: another string at the address a
    /// cached one had names its own type, and `ffi.cdef` (forget_parsed) empties both levels.
    #[test]
    fn parsed_types_are_told_apart_by_text_and_forgotten_by_cdef() {
        let mut st = FfiState::new();
        let int = QualType::plain(st.types.int(IntKind::Int));
        let ptr = QualType::plain(st.void_ptr());
        st.remember_parsed(b"int", 0x2000, int);
        assert_eq!(st.parsed(b"int", 0x2000), Some(int));
        assert_eq!(st.parsed(b"void *", 0x2000), None, "another text at the same address");
        st.remember_parsed(b"void *", 0x2000, ptr);
        assert_eq!(st.parsed(b"void *", 0x2000), Some(ptr));
        assert_eq!(st.parsed(b"int", 0x2000), Some(int), "from the map, the slot taken");
        st.forget_parsed();
        assert_eq!(st.parsed(b"void *", 0x2000), None);
    }
}
