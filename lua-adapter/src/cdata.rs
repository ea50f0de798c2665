//! cdata: full userdata holding a C object (or a reference to one, or a ctype), and the
//! creation, recognition and error-raising primitives the rest of the module shares.
//!
//! A cdata userdata starts with a `Header` of two words: the object's type descriptor with
//! its storage in the two low bits, and the tag that recognises it. What follows depends on
//! the storage:
//! - an *inline value* (a type of known size aligned no more than a userdata block): its bytes,
//!   right after the header, so the address of a value's bytes is computed, not stored. A
//!   `struct { double x, y; }` takes 32 bytes after Lua's own userdata header: 64 in all on
//!   Lua 5.4, against 72 for a hand-written 16-byte userdata with one user value;
//! - a reference, or an *extended value* (variable-length or over-aligned): an extent
//!   (the address of the bytes and their length), then for the value its bytes, aligned to the
//!   type's alignment (the userdata is over-allocated by `align - 1` bytes);
//! - a ctype object: nothing.
//!
//! On Lua 5.1–5.3 ([`BARE_VALUES`]) an inline value has no header at all: its bytes are the
//! whole block, 56 bytes for that struct, as much as a hand-written 16-byte userdata (their
//! userdata header, 40 bytes, leaves a 16-byte one no room to hide in). Its type is told by
//! its metatable instead, one per type ([`CTypeDesc::value_metatables`]), which the state maps
//! back to the descriptor ([`FfiState::bare_value_desc`]). Values of function types and of
//! pointers to them keep their header, which the call paths read from the block directly.
//!
//! A value's bytes are freed with its userdata. A reference's bytes live in another object,
//! which the reference keeps alive through its user value.
//!
//! Every other cdata shares one metatable (or its twin with `__gc`, given to cdata that have
//! a finalizer), whose metamethods dispatch on the type (see [`crate::surface::meta`]); the
//! per-type metatables of bare values hold the very same metamethods.

use std::os::raw::{c_int, c_void};

use abi_model::QualType;
use mlua::ffi;

use crate::ctypes::state::{CTypeDesc, FfiState, ValueMetatables};
use crate::stack::{self, new_userdata, OrRaise, Raise};

/// Whether inline values are stored without a header (Lua 5.1–5.3; see the module docs).
pub const BARE_VALUES: bool = cfg!(not(any(feature = "lua54", feature = "lua55")));

/// What a cdata userdata holds.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// A C object stored in this userdata.
    Value,
    /// A reference to a C object stored elsewhere (a struct member or array element that is
    /// itself an aggregate, or the target of a pointer).
    Ref,
    /// A ctype object (what `ffi.typeof` returns): no C object at all.
    CType,
}

/// How a cdata stores its object, in the two low bits of [`Header`]'s descriptor word (a
/// descriptor is aligned to at least 4).
mod storage {
    /// A value whose bytes follow the header (its length is its type's size), or make the
    /// whole block of a bare value.
    pub const INLINE: usize = 0;
    /// A reference: an [`super::Extent`] follows the header.
    pub const REF: usize = 1;
    /// A ctype object: nothing follows.
    pub const CTYPE: usize = 2;
    /// A value with an [`super::Extent`] after the header, then its bytes.
    pub const EXTENDED: usize = 3;
    /// The bits.
    pub const MASK: usize = 3;
}

/// A [`Cdata`]'s own bit beside the storage (never in a header): a bare value (see the module
/// docs), whose bytes are its whole block.
const BARE: usize = 4;

/// The bits of a descriptor word that are not the descriptor's address.
const NOT_DESC: usize = storage::MASK | BARE;

// A descriptor is aligned to 8 (`CTypeDesc`'s `repr(align(8))`), leaving the three bits.
const _: () = assert!(std::mem::align_of::<CTypeDesc>() > NOT_DESC);

/// The header at the start of a cdata userdata: 16 bytes on 64-bit targets, 8 on 32-bit
/// ones.
#[repr(C)]
struct Header {
    /// The type descriptor's address, or-ed with the storage (`storage`). For an inline
    /// value it is the descriptor's address itself, which is what the stubs compare.
    word: usize,
    /// `tag_of` this header in its state: how [`to_cdata`] recognises a cdata of this state
    /// without pushing and comparing its metatable.
    tag: usize,
}

/// What follows the header of a reference or an extended value.
#[repr(C)]
struct Extent {
    /// The object's bytes.
    ptr: *mut u8,
    /// [`byte_len`].
    len: usize,
}

/// A cdata as the module handles it, found by [`to_cdata`] or made by [`push_value`] and
/// its kin: its userdata block and its descriptor word (as a `Header` has it, or-ed with
/// `BARE` for a bare value). Two words, so that it travels in registers. It is only used
/// while the userdata is alive (on the Lua stack, or anchored by a value that is): see
/// **live-cdata** in the crate docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cdata {
    block: *mut u8,
    word: usize,
}

impl Cdata {
    /// No cdata (what the lookups answer for any other value).
    pub const NULL: Cdata = Cdata { block: std::ptr::null_mut(), word: 0 };

    /// Whether this is [`Cdata::NULL`].
    #[inline(always)]
    pub fn is_null(self) -> bool {
        self.block.is_null()
    }

    /// The cdata whose block, starting with a header, is at `block`.
    ///
    /// # Safety
    /// `block` is the block of a live cdata that has a header (any but a bare value).
    #[inline(always)]
    pub unsafe fn with_header(block: *mut u8) -> Cdata {
        // SAFETY: the caller's contract: the header is initialised.
        unsafe { Cdata { block, word: (*(block as *const Header)).word } }
    }

    /// The bare value of type `desc` whose bytes are the block at `block`.
    #[inline(always)]
    fn bare(block: *mut u8, desc: *const CTypeDesc) -> Cdata {
        Cdata { block, word: desc as usize | storage::INLINE | BARE }
    }

    #[inline(always)]
    fn storage(self) -> usize {
        self.word & storage::MASK
    }

    /// The object's type descriptor.
    #[inline(always)]
    pub fn desc(self) -> *const CTypeDesc {
        (self.word & !NOT_DESC) as *const CTypeDesc
    }

    /// What this is.
    #[inline(always)]
    pub fn form(self) -> Form {
        match self.storage() {
            storage::INLINE | storage::EXTENDED => Form::Value,
            storage::REF => Form::Ref,
            _ => Form::CType,
        }
    }

    /// Whether this value is bare (no header: its bytes are its block).
    #[inline(always)]
    fn is_bare(self) -> bool {
        BARE_VALUES && self.word & BARE != 0
    }
}

/// The extent after the header of the block at `block`; only for `REF` and `EXTENDED` storage.
#[inline(always)]
fn extent(block: *const u8) -> *const Extent {
    block.wrapping_add(HEADER) as *const Extent
}

/// The object's bytes of the cdata `c` (null for a ctype object).
///
/// # Safety
/// `c` is a live cdata.
#[inline(always)]
pub unsafe fn bytes(c: Cdata) -> *mut u8 {
    // SAFETY: live-cdata (caller's contract): a header of a `REF` or `EXTENDED` storage is
    // followed by an initialised `Extent` in the same block (written by `push_ref` /
    // `push_value` before the cdata became visible).
    unsafe {
        match c.storage() {
            storage::INLINE if c.is_bare() => c.block,
            storage::INLINE => c.block.add(HEADER),
            storage::REF | storage::EXTENDED => (*extent(c.block)).ptr,
            _ => std::ptr::null_mut(),
        }
    }
}

/// Number of bytes at [`bytes`] of the cdata `c`: a value's size (the actual size of a
/// variable-length object); for a reference, what remains of the object that owns its bytes,
/// or [`UNKNOWN_LEN`] for memory reached through a raw pointer; 0 for a ctype object.
///
/// # Safety
/// `c` is a live cdata.
#[inline]
pub unsafe fn byte_len(c: Cdata) -> usize {
    // SAFETY: live-cdata (caller's contract): a `REF` or `EXTENDED` storage has a header with an
    // initialised `Extent` after it; the descriptor lives as long as the state, which outlives
    // its cdata, and an inline value's type has a size (`push_value` stores a value inline
    // only then).
    unsafe {
        match c.storage() {
            storage::INLINE => (*c.desc()).size.unwrap_or(0) as usize,
            storage::REF | storage::EXTENDED => (*extent(c.block)).len,
            _ => 0,
        }
    }
}

/// The tag of a header at `block` in state `st`: both addresses mixed with a constant, so a
/// userdata that is not one of this state's cdata (another library's, or a cdata of another
/// copy of the module) carries it only by a 1-in-2^64 (2^32 on a 32-bit host) accident. Lua code
/// cannot write a userdata's bytes, so it cannot forge one; on 5.1–5.3, where a bare value's
/// bytes are the user's, a header is only looked for in a block whose metatable is the shared
/// one ([`cdata_in_block`]).
#[inline(always)]
fn tag_of(block: *const u8, st: *const FfiState) -> usize {
    (block as usize).rotate_left(TAG_ROTATE) ^ (st as usize) ^ TAG_KEY
}

const TAG_ROTATE: u32 = 17;
// Its low 32 bits on a 32-bit host, where tags are 32-bit (as backend-x86 computes them).
const TAG_KEY: usize = 0x6c75_6166_6669_2d72_u64 as usize;

/// How stubs of state `st` that copy record arguments from a cdata of exactly their type
/// inline tell one: on 5.4+ by its header (the same test as [`userdata_cdata`], and the
/// descriptor word equal to the type's descriptor: an inline value of that type, whose bytes
/// follow); on 5.1–5.3 as a bare value (the userdata's metatable is the address the type's
/// descriptor holds in [`CTypeDesc::value_metatables`], the block at least the type's size).
pub fn header_layout(st: *const FfiState) -> abi_model::lua::steps::CdataLayout {
    use abi_model::lua::steps::{CdataHeader, CdataLayout};
    if BARE_VALUES {
        let at = std::mem::offset_of!(CTypeDesc, value_metatables) + std::mem::offset_of!(ValueMetatables, addr);
        return CdataLayout::Bare { desc_metatable_at: at as u32 };
    }
    CdataLayout::Header(CdataHeader {
        size: HEADER as u32,
        desc_at: std::mem::offset_of!(Header, word) as u32,
        bytes_at: HEADER as u32,
        tag_at: std::mem::offset_of!(Header, tag) as u32,
        tag_rotate: TAG_ROTATE,
        tag_key: ((st as usize) ^ TAG_KEY) as u64,
    })
}

pub use crate::stack::HAS_INTEGERS;

const HEADER: usize = std::mem::size_of::<Header>();

/// The alignment every Lua userdata block has at least (Lua aligns them to `LUAI_MAXALIGN`,
/// which includes a pointer's); the header's size is a multiple of it, so a value of a type
/// aligned no more than this needs no room to be realigned.
const BLOCK_ALIGN: usize = std::mem::align_of::<usize>();

/// Writes a header of `word` at `block` and returns its cdata.
///
/// # Safety
/// `block` has room for a header (and the extent, for `REF` and `EXTENDED` storage, which the
/// caller writes before the cdata is used).
#[inline(always)]
unsafe fn write_header(block: *mut u8, st: *const FfiState, word: usize) -> Cdata {
    // SAFETY: the caller's contract; a userdata block is aligned to BLOCK_ALIGN, a header's.
    unsafe { (block as *mut Header).write(Header { word, tag: tag_of(block, st) }) };
    Cdata { block, word }
}

/// Pushes a new value cdata of type `desc` with `len` zeroed bytes, aligned to the type's
/// alignment, and returns it. The bytes follow the header (or, bare, make the block) when
/// the type has size `len` and needs no realignment; otherwise an extent says where they are.
///
/// # Safety
/// `l` must be valid with 2 free stack slots; `st` is its state. May raise a memory error
/// (nothing is owned in this frame).
pub unsafe fn push_value(l: *mut ffi::lua_State, st: *mut FfiState, desc: *const CTypeDesc, len: usize) -> Cdata {
    // SAFETY: desc comes from the state and lives as long as it.
    let (align, size) = unsafe { ((*desc).align.max(1) as usize, (*desc).size) };
    if align <= BLOCK_ALIGN && size == Some(len as u64) {
        // SAFETY: valid-L; the userdata has room for the header (if any) and `len` bytes after
        // it, aligned to BLOCK_ALIGN (HEADER is a multiple of it), so to the type's alignment.
        unsafe {
            let (c, at) = push_inline(l, st, desc, len);
            std::ptr::write_bytes(at, 0, len);
            return c;
        }
    }
    let head = HEADER + std::mem::size_of::<Extent>();
    let total = head + len + if align > BLOCK_ALIGN { align - 1 } else { 0 };
    // SAFETY: valid-L; the userdata has `total` writable bytes: the header, the extent and
    // `len` bytes from the first address past them aligned to `align`.
    unsafe {
        let base = new_userdata(l, total, 0) as *mut u8;
        let start = base as usize + head;
        let aligned = start.next_multiple_of(align);
        let ptr = base.add(aligned - base as usize);
        debug_assert!(aligned + len <= base as usize + total, "the userdata block is aligned to BLOCK_ALIGN");
        std::ptr::write_bytes(ptr, 0, len);
        let c = write_header(base, st, desc as usize | storage::EXTENDED);
        (extent(base) as *mut Extent).write(Extent { ptr, len });
        set_plain_meta(l, st, base);
        c
    }
}

/// Pushes a new inline value of type `desc` (size `len`, aligned no more than a block) with
/// its bytes not yet written, with its metatable: bare when [`CTypeDesc::bare`] says so.
/// Returns it and the address of its bytes.
///
/// # Safety
/// As [`push_value`]; the type is as said.
#[inline(always)]
unsafe fn push_inline(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    desc: *const CTypeDesc,
    len: usize,
) -> (Cdata, *mut u8) {
    // SAFETY: valid-L with 2 free slots (caller's contract) and a live desc; the block has
    // `len` bytes after the header (none for a bare value).
    unsafe {
        if BARE_VALUES && (*desc).bare {
            let mt = value_metatable(l, st, desc);
            let block = new_userdata(l, len, 0) as *mut u8;
            set_new_meta(l, st, block, Some(mt), || (*desc).value_metatables.get().refs[0]);
            return (Cdata::bare(block, desc), block);
        }
        let block = new_userdata(l, HEADER + len, 0) as *mut u8;
        let c = write_header(block, st, desc as usize | storage::INLINE);
        set_plain_meta(l, st, block);
        (c, block.add(HEADER))
    }
}

/// The address of `desc`'s own plain value metatable, made the first time a bare value of
/// the type is (a copy of the shared one, mapped back to `desc` by the state; its `__gc`
/// twin waits for the type's first finalizer, [`set_meta_of`]).
///
/// # Safety
/// `l` valid; `st` its state, `desc` one of its descriptors. May raise a memory error.
#[inline(always)]
unsafe fn value_metatable(l: *mut ffi::lua_State, st: *mut FfiState, desc: *const CTypeDesc) -> usize {
    // SAFETY: a live desc (caller's contract).
    // The address alone, not the whole cell's value.
    let mt = unsafe { (*(*desc).value_metatables.as_ptr()).addr };
    if mt != ValueMetatables::UNMADE.addr {
        return mt;
    }
    // SAFETY: valid-L, live-state `st` and its live desc (caller's contract), all that the
    // metatables' making needs.
    unsafe { make_value_metatables(l, st, desc) }
}

#[cold]
#[inline(never)]
unsafe fn make_value_metatables(l: *mut ffi::lua_State, st: *mut FfiState, desc: *const CTypeDesc) -> usize {
    // SAFETY: the caller's contract (valid-L, live-state `st`, its live desc).
    unsafe {
        let (addr, r) = copy_metatable(l, st, desc, (*st).refs().metatable);
        let mut made = ValueMetatables::UNMADE;
        made.addr = addr;
        made.refs[0] = r;
        (*desc).value_metatables.set(made);
        addr
    }
}

/// A copy of the shared metatable at registry reference `shared` for the bare values of
/// `desc`, sized to it, anchored in the registry and mapped back to `desc` by the state:
/// its address and reference. The twin with `__gc` is made only when a value of the type
/// first gets a finalizer (most types never do): 1.35 KB and 1.4 µs a type on 5.1.
///
/// # Safety
/// `l` valid; `st` its state, `desc` one of its descriptors. May raise a memory error.
#[cold]
#[inline(never)]
unsafe fn copy_metatable(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    desc: *const CTypeDesc,
    shared: c_int,
) -> (usize, c_int) {
    // SAFETY: valid-L: `check_stack` makes room for the 5 values this pushes at once (it
    // raises a Lua error otherwise, with nothing owned here); the shared metatables are
    // anchored in the registry (`create_metatables`); the copy is anchored there before its
    // address is recorded, for the state's whole life (as the descriptor lives).
    unsafe {
        stack::LuaStack::new(l).check_stack(5).or_raise(l);
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, shared as ffi::lua_Integer);
        let mut entries = 0;
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, -2) != 0 {
            entries += 1;
            ffi::lua_pop(l, 1);
        }
        ffi::lua_createtable(l, 0, entries);
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, -3) != 0 {
            ffi::lua_pushvalue(l, -2);
            ffi::lua_insert(l, -2);
            ffi::lua_rawset(l, -4);
        }
        ffi::lua_remove(l, -2);
        let addr = ffi::lua_topointer(l, -1) as usize;
        (*st).add_bare_value_metatable(addr, desc);
        (addr, ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX))
    }
}

/// Where the `Udata` whose block is at `block` keeps its metatable, as the verified layout
/// `vm` places it (`block - block_at` is the `Udata`, on 5.4+ one without user values).
#[inline(always)]
fn metatable_field(vm: &abi_model::lua::vm::LuaVm, block: usize) -> *mut usize {
    let ud = vm.userdata;
    block.wrapping_sub(ud.block_at as usize).wrapping_add(ud.metatable_at as usize) as *mut usize
}

/// Gives the userdata just made at the top, whose block (made with no user values) is at
/// `block`, a metatable without `__gc` anchored in the registry for the state's life: with
/// the verified layout and its address `mt` known, that address is stored into the
/// userdata's `metatable` field as `lua_setmetatable` stores it, without the call (a third
/// of the cost of a boxed 64-bit result on Lua 5.1 besides the allocation); through the API
/// otherwise, pushing it from registry reference `r()`.
///
/// No write barrier is needed for the store: the metatable is anchored in the registry for
/// the state's whole life, so every collection reaches it from the roots whatever the new
/// userdata's colour (Lua 5.3+ may run a step inside `lua_newuserdata`, after making it),
/// and it has no `__gc`, so `lua_setmetatable` would not mark the userdata for finalization
/// either.
///
/// # Safety
/// `l` valid with a free slot; the top is the full userdata whose block is `block`, made by
/// [`new_userdata`] in this call with no user values (on 5.1–5.3, with any: their user value
/// is in the userdata's header, which the count does not change); `mt`, when given, is the
/// address of the table at `r()`, which is as said.
#[inline(always)]
unsafe fn set_new_meta(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    block: *mut u8,
    mt: Option<usize>,
    r: impl FnOnce() -> c_int,
) {
    // SAFETY: valid-L with a free slot and the userdata at the top (caller's contract); with
    // the verified layout, `metatable_field` is its `metatable` field; the metatable is
    // anchored for the state's life and has no `__gc`, so no barrier is owed.
    unsafe {
        match ((*st).inline_vm(), mt) {
            (Some(vm), Some(mt)) => metatable_field(vm, block as usize).write_unaligned(mt),
            _ => {
                ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, r() as ffi::lua_Integer);
                ffi::lua_setmetatable(l, -2);
            }
        }
    }
}

/// [`set_meta`] without `__gc` for the userdata just made at the top ([`set_new_meta`] with
/// the shared metatable).
///
/// # Safety
/// As [`set_new_meta`].
#[inline(always)]
unsafe fn set_plain_meta(l: *mut ffi::lua_State, st: *mut FfiState, block: *mut u8) {
    // SAFETY: the caller's contract; the shared metatable's address is recorded with it
    // (`create_metatables`).
    unsafe { set_new_meta(l, st, block, (*st).metatable_addr(), || (*st).refs().metatable) }
}

/// Pushes a new value cdata of the scalar type `desc` (`len` bytes, at most 8) holding the low
/// `len` bytes of `bits`, and returns it: [`push_value`] without the zeroing and, for a
/// type aligned no more than a userdata block, without the realignment. The constructor of the
/// values C hands back one at a time (boxed 64-bit results, pointer arguments of callbacks).
///
/// # Safety
/// As [`push_value`]; `len` is the type's size.
pub unsafe fn push_scalar(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    desc: *const CTypeDesc,
    bits: u64,
    len: usize,
) -> Cdata {
    debug_assert!(len <= 8, "a scalar has at most 8 bytes");
    // The low `len` bytes of `bits`, as the little-endian x86 targets store them; the usual
    // sizes with one store (a call to `memcpy` costs more than the rest of the header).
    let store = |ptr: *mut u8| {
        // SAFETY: `ptr` has `len` writable bytes (the callers below).
        unsafe {
            match len {
                8 => (ptr as *mut u64).write_unaligned(bits),
                4 => (ptr as *mut u32).write_unaligned(bits as u32),
                n => std::ptr::copy_nonoverlapping(bits.to_le_bytes().as_ptr(), ptr, n.min(8)),
            }
        }
    };
    // SAFETY: desc comes from the state and lives as long as it; valid-L with 2 free slots
    // (caller's contract): an inline value has `len` writable bytes at its address, aligned
    // for the type (the block is aligned to BLOCK_ALIGN, a multiple of the type's alignment
    // here, and so is HEADER).
    unsafe {
        if (*desc).align as usize > BLOCK_ALIGN || (*desc).size != Some(len as u64) {
            let c = push_value(l, st, desc, len);
            store(bytes(c));
            return c;
        }
        let (c, at) = push_inline(l, st, desc, len);
        store(at);
        c
    }
}

/// [`byte_len`] of a reference to memory of unknown extent (reached through a raw pointer).
pub const UNKNOWN_LEN: usize = usize::MAX;

/// The bytes from `p` to the end of the object that `c` holds or refers to (0 past its end),
/// or `u64::MAX` when its extent is unknown.
///
/// # Safety
/// `c` is a live cdata header.
pub unsafe fn room_at(c: Cdata, p: *const u8) -> u64 {
    // SAFETY: `c` is a live-cdata (caller's contract): its header fields are initialised and
    // readable.
    let (ptr, len) = unsafe { (bytes(c) as usize, byte_len(c)) };
    if len == UNKNOWN_LEN {
        return u64::MAX;
    }
    (ptr + len).saturating_sub(p as usize) as u64
}

/// Pushes a reference cdata to the object of type `desc` at `ptr`. If `anchor` is not 0, the
/// value at that stack index (the object owning the bytes, a cdata) is kept alive by the
/// reference, and bounds it: the reference's `len` is what remains of that object from `ptr`.
///
/// # Safety
/// `l` valid with 3 free slots; `anchor` 0 or a valid absolute index.
pub unsafe fn push_ref(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    desc: *const CTypeDesc,
    ptr: *mut u8,
    anchor: c_int,
) -> Cdata {
    // SAFETY: valid-L; `to_cdata` reads the value at `anchor` (caller's contract).
    unsafe {
        let owner = if anchor != 0 { to_cdata(l, st, anchor) } else { Cdata::NULL };
        push_ref_owned(l, st, desc, ptr, owner, anchor)
    }
}

/// [`push_ref`] with the cdata at `anchor` already known: `owner` (null when `anchor` is 0
/// or the value there is not a cdata of `st`).
///
/// # Safety
/// As [`push_ref`]; `owner` is null or the live cdata at `anchor`.
#[inline]
pub unsafe fn push_ref_owned(
    l: *mut ffi::lua_State,
    st: *mut FfiState,
    desc: *const CTypeDesc,
    ptr: *mut u8,
    owner: Cdata,
    anchor: c_int,
) -> Cdata {
    // SAFETY: valid-L with the free slots of `push_ref`'s contract; the userdata holds a
    // header and an extent; `owner`, when not null, is a live cdata header.
    unsafe {
        let len =
            if owner.is_null() { UNKNOWN_LEN } else { usize::try_from(room_at(owner, ptr)).unwrap_or(UNKNOWN_LEN) };
        let block = new_userdata(l, HEADER + std::mem::size_of::<Extent>(), 1) as *mut u8;
        let c = write_header(block, st, desc as usize | storage::REF);
        (extent(block) as *mut Extent).write(Extent { ptr, len });
        // 5.4+ through the API: `set_plain_meta`'s direct store knows the block offset of a
        // userdata without user values only, and a reference has one (its anchor). 5.1–5.3
        // keep a user value in the userdata's header, so the block is where a plain one's is.
        #[cfg(any(feature = "lua54", feature = "lua55"))]
        set_meta(l, st, false);
        #[cfg(not(any(feature = "lua54", feature = "lua55")))]
        set_plain_meta(l, st, block);
        if anchor != 0 {
            set_anchor(l, anchor, owner);
        }
        c
    }
}

/// Makes the userdata at the top keep the value at `anchor` alive (its user value); `owner`
/// is the cdata there, or null.
///
/// On 5.3+ the user value is the anchor itself. On 5.1/5.2 it must be a table (or nil on
/// 5.2), and a table made per reference was most of what `q = p[i]` cost (~810 of ~4,000
/// instructions a particle of the bench's loop on 5.1), so the table is shared:
/// * a value anchor gets `{value}` once, kept as its own user value too (a value's is unused
///   otherwise), and every reference into it shares that table;
/// * a reference anchor's memory is its own anchor's (or no cdata's), which its user value
///   already keeps alive: a reference into it shares that user value.
///
/// # Safety
/// `l` valid with 2 free slots, a userdata at the top; `anchor` a valid absolute index below
/// it; `owner` null or the live cdata at `anchor`.
unsafe fn set_anchor(l: *mut ffi::lua_State, anchor: c_int, owner: Cdata) {
    // SAFETY: valid-L: at most 2 values pushed at once (the table and its element or a copy,
    // or `shared_anchor`'s 2), within its free slots; user values accept any value on 5.3+,
    // a table (5.2: or nil) on 5.1/5.2, which is all that is stored there; `owner`, when not
    // null, is the live cdata at `anchor`.
    unsafe {
        if HAS_INTEGERS {
            ffi::lua_pushvalue(l, anchor);
        } else if !owner.is_null() && owner.form() == Form::Ref {
            ffi::lua_getuservalue(l, anchor);
        } else if owner.is_null() || !shared_anchor(l, anchor) {
            ffi::lua_createtable(l, 1, 0);
            ffi::lua_pushvalue(l, anchor);
            ffi::lua_rawseti(l, -2, 1);
            if !owner.is_null() {
                // The value's own user value from now on: the next reference shares it.
                ffi::lua_pushvalue(l, -1);
                ffi::lua_setuservalue(l, anchor);
            }
        }
        ffi::lua_setuservalue(l, -2);
    }
}

/// 5.1/5.2: pushes the value at `anchor`'s user value and returns true when it is the table
/// [`set_anchor`] made for it (`{value}`); pushes nothing and returns false otherwise.
///
/// # Safety
/// `l` valid with 2 free slots; `anchor` a valid absolute index of a full userdata.
unsafe fn shared_anchor(l: *mut ffi::lua_State, anchor: c_int) -> bool {
    // SAFETY: valid-L: pushes two values and pops what it does not return.
    unsafe {
        if ffi::lua_getuservalue(l, anchor) == ffi::LUA_TTABLE {
            ffi::lua_rawgeti(l, -1, 1);
            let same = ffi::lua_rawequal(l, -1, anchor) != 0;
            ffi::lua_pop(l, 1);
            if same {
                return true;
            }
        }
        ffi::lua_pop(l, 1);
        false
    }
}

/// Pushes the ctype object of `desc`; equal types give the same object while it lives.
///
/// # Safety
/// `l` valid with 3 free slots.
pub unsafe fn push_ctype(l: *mut ffi::lua_State, st: *mut FfiState, desc: *const CTypeDesc) {
    // SAFETY: valid-L: pushes and pops within its free slots; the cache table is anchored in the
    // registry.
    unsafe {
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, (*st).refs().ctype_cache as ffi::lua_Integer);
        ffi::lua_rawgetp(l, -1, desc as *const c_void);
        if ffi::lua_isnil(l, -1) == 0 {
            ffi::lua_remove(l, -2);
            return;
        }
        ffi::lua_pop(l, 1);
        let block = new_userdata(l, HEADER, 0) as *mut u8;
        write_header(block, st, desc as usize | storage::CTYPE);
        set_plain_meta(l, st, block);
        ffi::lua_pushvalue(l, -1);
        ffi::lua_rawsetp(l, -3, desc as *const c_void);
        ffi::lua_remove(l, -2);
    }
}

/// Sets the cdata metatable (with `__gc` when `with_gc`) on the userdata at the top.
///
/// # Safety
/// `l` valid with a free slot; the top is a userdata.
pub unsafe fn set_meta(l: *mut ffi::lua_State, st: *mut FfiState, with_gc: bool) {
    // SAFETY: the metatables are anchored in the registry by `meta::create_metatables`.
    unsafe {
        let r = if with_gc { (*st).refs().gc_metatable } else { (*st).refs().metatable };
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, r as ffi::lua_Integer);
        ffi::lua_setmetatable(l, -2);
    }
}

/// [`set_meta`] for the cdata `c` at the top: a bare value takes its type's own metatable
/// (with `__gc` when `with_gc`).
///
/// # Safety
/// `l` valid with a free slot; the top is the live cdata `c`.
pub unsafe fn set_meta_of(l: *mut ffi::lua_State, st: *mut FfiState, c: Cdata, with_gc: bool) {
    // SAFETY: a bare value's type made its plain metatable when the value was made
    // (`push_inline`); its `__gc` twin is made here the first time (`copy_metatable`, which
    // makes room on the stack for itself); both are anchored in the registry for the
    // state's life. May raise a memory error, with nothing owned here.
    unsafe {
        if c.is_bare() {
            let desc = c.desc();
            let mut made = (*desc).value_metatables.get();
            if with_gc && made.refs[1] == ffi::LUA_NOREF {
                made.refs[1] = copy_metatable(l, st, desc, (*st).refs().gc_metatable).1;
                (*desc).value_metatables.set(made);
            }
            let r = made.refs[with_gc as usize];
            ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, r as ffi::lua_Integer);
            ffi::lua_setmetatable(l, -2);
        } else {
            set_meta(l, st, with_gc);
        }
    }
}

/// The cdata at `idx`, or [`Cdata::NULL`] if it is not a cdata of this state.
///
/// A function returned by a namespace (`ffi.C.f`, a C closure over its function cdata, see
/// [`crate::native::call`]) counts as its function cdata: the cdata returned is that one, kept
/// alive by the closure at `idx`.
///
/// # Safety
/// `l` valid with 2 free slots; `st` its state.
#[inline]
pub unsafe fn to_cdata(l: *mut ffi::lua_State, st: *const FfiState, idx: c_int) -> Cdata {
    // SAFETY: valid-L: pushes and pops within its free slots.
    unsafe {
        if let Some(c) = stack_userdata_cdata(l, st, idx) {
            return c;
        }
        match ffi::lua_type(l, idx) {
            ffi::LUA_TUSERDATA => api_userdata_cdata(l, st, idx),
            ffi::LUA_TFUNCTION => closure_cdata(l, st, idx),
            _ => Cdata::NULL,
        }
    }
}

/// The cdata at `idx` if it is a userdata that is a cdata of `st` (see `cdata_in_block`),
/// [`Cdata::NULL`] otherwise: any other value at `idx` gives null too (`lua_touserdata` is
/// null for it), which makes this the cheapest test for a value that cannot be a namespace
/// function.
///
/// # Safety
/// `l` valid with a free slot; `idx` a valid index; `st` its state.
#[inline]
pub unsafe fn userdata_cdata(l: *mut ffi::lua_State, st: *const FfiState, idx: c_int) -> Cdata {
    // SAFETY: valid-L, an acceptable `idx` and live-state `st` (caller's contract), which both
    // lookups need.
    unsafe { stack_userdata_cdata(l, st, idx).unwrap_or_else(|| api_userdata_cdata(l, st, idx)) }
}

/// [`userdata_cdata`] through the C API (`lua_touserdata`, `lua_rawlen`, and on 5.1–5.3
/// `lua_getmetatable`).
///
/// # Safety
/// As [`userdata_cdata`].
#[inline]
unsafe fn api_userdata_cdata(l: *mut ffi::lua_State, st: *const FfiState, idx: c_int) -> Cdata {
    // SAFETY: valid-L with a free slot: only reads of existing stack slots, and the metatable
    // pushed and popped; `lua_rawlen` only for a userdata (on a number, 5.1's converts it to a
    // string in place).
    unsafe {
        let block = ffi::lua_touserdata(l, idx) as usize;
        if block == 0 || ffi::lua_type(l, idx) != ffi::LUA_TUSERDATA {
            return Cdata::NULL;
        }
        let metatable = || {
            if ffi::lua_getmetatable(l, idx) == 0 {
                return 0;
            }
            let mt = ffi::lua_topointer(l, -1) as usize;
            ffi::lua_pop(l, 1);
            mt
        };
        cdata_in_block(block, ffi::lua_rawlen(l, idx), st, metatable)
    }
}

/// [`userdata_cdata`] read straight from the Lua stack with the state's verified layout
/// ([`crate::stack::vm_check::full_userdata`]): `Some` when that answers (a full userdata there, cdata
/// or not), `None` when the C API must.
///
/// # Safety
/// As [`userdata_cdata`], from a C function.
#[inline]
unsafe fn stack_userdata_cdata(l: *mut ffi::lua_State, st: *const FfiState, idx: c_int) -> Option<Cdata> {
    // SAFETY: valid-L running a C function and live-state `st` (caller's contract); `full_userdata`
    // reads only slots between the function's slot and `L->top`, with the layout verified against
    // the running Lua.
    unsafe {
        let vm = (*st).inline_vm()?;
        let (block, len) = crate::stack::vm_check::full_userdata(l, vm, idx)?;
        Some(in_block(vm, block, len, st))
    }
}

/// The cdata of `st` whose userdata block of `len` bytes is at `block` (read from the stack
/// with the verified layout `vm`), or [`Cdata::NULL`].
///
/// # Safety
/// `block` is the block of a full userdata of `len` bytes, laid out as `vm` says (on 5.4+,
/// one without user values).
#[inline(always)]
pub unsafe fn in_block(vm: &abi_model::lua::vm::LuaVm, block: usize, len: usize, st: *const FfiState) -> Cdata {
    // SAFETY: `block` is a userdata block of `len` bytes laid out as `vm` says (caller's
    // contract): its `Udata`'s metatable field is where `vm` puts it, as `set_new_meta`
    // writes it.
    unsafe { cdata_in_block(block, len, st, || metatable_field(vm, block).read_unaligned()) }
}

/// The cdata of `st` whose userdata block of `len` bytes is at `block`, or [`Cdata::NULL`];
/// `metatable` gives the userdata's metatable address (0 for none), asked on 5.1–5.3 only.
///
/// A cdata with a header has a block large enough for one that carries this state's tag
/// (and on 5.1–5.3 one of the shared metatables: a bare value's bytes, which Lua code
/// writes, are never taken for a header). A bare value has its type's own metatable, which
/// the state maps to its descriptor, and a block as large as the type (a userdata of
/// another library given that metatable through the debug library is not taken for more
/// than its block).
///
/// # Safety
/// `block` is a userdata block of `len` bytes; `metatable` reads that userdata's.
#[inline(always)]
unsafe fn cdata_in_block(block: usize, len: usize, st: *const FfiState, metatable: impl FnOnce() -> usize) -> Cdata {
    let b = block as *mut u8;
    // SAFETY: live-state `st`; a descriptor the state maps to lives as long as it; the header is
    // read only once the block's length has room for it.
    unsafe {
        if BARE_VALUES {
            let mt = metatable();
            let found = match (*st).recent_bare_value_desc(mt) {
                Some(found) => Some(found),
                None if (*st).is_shared_metatable(mt) => None,
                None => match (*st).bare_value_desc(mt) {
                    Some(found) => Some(found),
                    None => return Cdata::NULL,
                },
            };
            if let Some((desc, size)) = found {
                return if len as u64 >= size { Cdata::bare(b, desc) } else { Cdata::NULL };
            }
        }
        if len < HEADER || std::ptr::addr_of!((*(b as *const Header)).tag).read_unaligned() != tag_of(b, st) {
            return Cdata::NULL;
        }
        Cdata::with_header(b)
    }
}

/// The function cdata behind a namespace function closure at `idx` (its upvalue 1), or null
/// if the function at `idx` is anything else. The closure is recognised by its C function
/// being the one its cdata's type hands out ([`CTypeDesc::closure_entry`]) or handed out
/// before its stub was built ([`CTypeDesc::tier0_entry`]).
#[cold]
unsafe fn closure_cdata(l: *mut ffi::lua_State, st: *const FfiState, idx: c_int) -> Cdata {
    // SAFETY: valid-L: pushes and pops within its free slots; the value at idx is a function.
    unsafe {
        let Some(f) = ffi::lua_tocfunction(l, idx) else { return Cdata::NULL };
        if ffi::lua_getupvalue(l, idx, 1).is_null() {
            return Cdata::NULL;
        }
        let c = if ffi::lua_type(l, -1) == ffi::LUA_TUSERDATA { userdata_cdata(l, st, -1) } else { Cdata::NULL };
        ffi::lua_pop(l, 1);
        if c.is_null()
            || c.form() != Form::Value
            || ((*c.desc()).closure_entry.get() != f as usize && (*c.desc()).tier0_entry.get() != f as usize)
        {
            return Cdata::NULL;
        }
        c
    }
}

/// The type a cdata's object has (a ctype object's type for `Form::CType`).
///
/// # Safety
/// `c` must be a live cdata.
#[inline]
pub unsafe fn type_of(c: Cdata) -> QualType {
    // SAFETY: `c` is a live-cdata (caller's contract), and its `desc` a live-desc.
    unsafe { (*c.desc()).ty }
}

/// Raises `msg` as a Lua error with the caller's position (`file:line: msg`), through the
/// crate's one raising boundary ([`crate::stack::raise`]).
///
/// # Safety
/// As [`crate::stack::raise`].
pub unsafe fn raise(l: *mut ffi::lua_State, msg: String) -> ! {
    // SAFETY: valid-L with 2 free slots, in a function Lua called (this function's contract,
    // `stack::raise`'s); raise-clean: `msg` moves into `Raise::Message` and on into
    // `stack::raise`, which drops it before `lua_error`, so this frame owns nothing then.
    unsafe { stack::raise(l, Raise::Message(msg)) }
}

/// Raises Lua's `bad argument #narg to 'name' (msg)` ([`crate::stack::raise`]).
///
/// # Safety
/// As [`crate::stack::raise`].
pub unsafe fn raise_arg(l: *mut ffi::lua_State, narg: c_int, msg: String) -> ! {
    // SAFETY: valid-L with 2 free slots, in a function Lua called (this function's contract,
    // `stack::raise`'s); raise-clean: `msg` moves into `Raise::Arg` and on into `stack::raise`,
    // which drops it before `luaL_argerror`, so this frame owns nothing then.
    unsafe { stack::raise(l, Raise::Arg(narg, msg)) }
}

/// The type name Lua gives the value at `idx` (`nil`, `table`, ...), for messages.
///
/// # Safety
/// `l` valid.
pub unsafe fn lua_typename_at(l: *mut ffi::lua_State, idx: c_int) -> &'static str {
    // SAFETY: valid-L and an acceptable `idx`: `lua_type` only reads the slot.
    let t = unsafe { ffi::lua_type(l, idx) };
    lua_type_name(t)
}

/// Lua's name of a type tag.
pub fn lua_type_name(t: c_int) -> &'static str {
    match t {
        ffi::LUA_TNONE => "no value",
        ffi::LUA_TNIL => "nil",
        ffi::LUA_TBOOLEAN => "boolean",
        ffi::LUA_TLIGHTUSERDATA => "userdata",
        ffi::LUA_TNUMBER => "number",
        ffi::LUA_TSTRING => "string",
        ffi::LUA_TTABLE => "table",
        ffi::LUA_TFUNCTION => "function",
        ffi::LUA_TUSERDATA => "userdata",
        ffi::LUA_TTHREAD => "thread",
        _ => "?",
    }
}

/// Formats a pointer as LuaJIT does (`lj_strfmt_wptr`): `NULL`, or `0x` and at least 8 hex
/// digits, 12 or 16 when the upper half is used on 64-bit targets.
pub fn format_ptr(p: usize) -> String {
    if p == 0 {
        return "NULL".into();
    }
    let hi = (p as u64) >> 32;
    let digits = if hi == 0 { 8 } else { 8 + 2 + 2 * ((63 - hi.leading_zeros()) as usize >> 3) };
    format!("0x{:0width$x}", p, width = digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The storage bits decode to the form, leave the descriptor whole, and a reference's or
    /// extended value's extent gives its bytes and length; an inline value's bytes follow its
    /// header.
    #[test]
    fn headers_decode_their_storage() {
        #[cfg(target_pointer_width = "64")]
        assert_eq!(HEADER, 16);
        let desc = 0x1000_usize as *const CTypeDesc;
        let mut block = [0usize; 8];
        let b = block.as_mut_ptr() as *mut u8;
        let data = 0x2468_usize as *mut u8;
        for (bits, form) in [
            (storage::INLINE, Form::Value),
            (storage::REF, Form::Ref),
            (storage::CTYPE, Form::CType),
            (storage::EXTENDED, Form::Value),
        ] {
            for len in [0, 16, usize::MAX >> 1, UNKNOWN_LEN] {
                // SAFETY: `block` has room for a header and an extent, aligned to a word.
                unsafe {
                    (b as *mut Header).write(Header { word: desc as usize | bits, tag: 0 });
                    (extent(b) as *mut Extent).write(Extent { ptr: data, len });
                    let c = Cdata::with_header(b);
                    assert_eq!(c.desc(), desc);
                    assert_eq!(c.form(), form);
                    assert!(!c.is_bare());
                    let expect = match bits {
                        storage::INLINE => b.add(HEADER),
                        storage::CTYPE => std::ptr::null_mut(),
                        _ => data,
                    };
                    assert_eq!(bytes(c), expect);
                    if bits == storage::REF || bits == storage::EXTENDED {
                        assert_eq!(byte_len(c), len);
                    }
                    if bits == storage::CTYPE {
                        assert_eq!(byte_len(c), 0);
                    }
                }
            }
        }
        // A bare value (5.1–5.3 only): its bytes are its block.
        if BARE_VALUES {
            let c = Cdata::bare(b, desc);
            // SAFETY: a bare value's bytes are its block; nothing is read.
            assert_eq!((c.desc(), c.form(), unsafe { bytes(c) }), (desc, Form::Value, b));
            assert!(c.is_bare());
        }
    }

    #[test]
    fn pointers_print_as_luajit_prints_them() {
        assert_eq!(format_ptr(0), "NULL");
        assert_eq!(format_ptr(0x3039), "0x00003039");
        assert_eq!(format_ptr(0xf7a1_2340), "0xf7a12340");
        #[cfg(target_pointer_width = "64")]
        {
            assert_eq!(format_ptr(0x7f3a7e58f350), "0x7f3a7e58f350");
            assert_eq!(format_ptr(0xffff_ffff_ffff_ffff), "0xffffffffffffffff");
        }
    }
}
