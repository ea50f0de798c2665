//! The per-`lua_State` FFI state: the C type table, the declaration scope, type descriptors,
//! metatypes and the saved `errno`. Two Lua states never share one.
//!
//! The state is boxed; a full userdata anchored in the Lua registry (key: the address of
//! [`STATE_KEY`]) holds the box's pointer. Every `ffi` function and cdata metamethod is a C
//! closure whose first upvalue is a light userdata pointing at the state; the call helpers,
//! which have no upvalues, find it through the registry or through a type descriptor's
//! [`CTypeDesc::state`].
//!
//! # When the state is freed
//!
//! Not by the userdata's `__gc`: when the Lua state closes, Lua runs every finalizer, newest
//! first, and only then frees the objects. A finalizer registered before `require "ffi"`
//! therefore runs after the state's, and may still use `ffi` (a namespace function it kept,
//! whose C function is a stub in the state's code arena; a cdata; `require "ffi"` itself).
//! So the `__gc` only hands the state over to this thread's *closed state*, and the state
//! stays whole and working until the next state this thread closes takes its place (or the
//! thread exits): by then every finalizer of its Lua state has run. At most one closed state
//! per thread is kept.

use std::collections::HashMap;
use std::os::raw::{c_int, c_void};

use abi_model::cdef::CScope;
use abi_model::{ArrayLen, IntKind, QualType, Quals, Target, TypeId, TypeTable};
use mlua::ffi;

use crate::ctype::CTypeDesc;

/// Most declaration strings [`FfiState::parsed`] holds.
pub const PARSED_MAX: usize = 4096;
/// Longest declaration string [`FfiState::parsed`] holds, in bytes.
pub const PARSED_KEY_MAX: usize = 256;

/// Registry key (its address) of the userdata holding the boxed [`FfiState`]'s pointer.
pub static STATE_KEY: u8 = 0;

/// Everything the `ffi` module keeps per Lua state.
pub struct FfiState {
    /// All C types known to this state, laid out for the host target.
    pub types: TypeTable,
    /// Typedef names, tags and constants declared by `ffi.cdef`.
    pub scope: CScope,
    /// One descriptor per qualified type, boxed so that its address never changes.
    descs: HashMap<QualType, Box<CTypeDesc>>,
    /// Types of declaration strings already parsed by `ffi.new`/`ffi.cast`/... (strings
    /// without `{`, which would declare a new type each time); cleared by `ffi.cdef`, and
    /// bounded by [`FfiState::remember_parsed`].
    pub parsed: HashMap<Vec<u8>, QualType>,
    /// `ffi.metatype` tables by record (or complex) type: registry references.
    pub metatypes: HashMap<TypeId, c_int>,
    /// `void *`, the type of `nil` and of userdata addresses in conversions.
    pub void_ptr: TypeId,
    /// `const void *` (`ffi.copy`'s source, `ffi.string` with a length).
    pub const_void_ptr: TypeId,
    /// `const char *` (`ffi.string`).
    pub const_char_ptr: TypeId,
    /// `const char []`, the type a Lua string has when it converts to a pointer.
    pub const_char_array: TypeId,
    /// The `errno` value `ffi.errno` reports (saved after each C call).
    pub errno: c_int,
    /// Registry reference of the cdata metatable (no `__gc`).
    pub meta_ref: c_int,
    /// Registry reference of the cdata metatable with `__gc` (for `ffi.gc` and metatype
    /// finalizers).
    pub gc_meta_ref: c_int,
    /// Registry reference of the weak-keyed table cdata -> finalizer.
    pub finalizers_ref: c_int,
    /// Registry reference of the weak-valued table descriptor -> ctype object.
    pub ctype_cache_ref: c_int,
    /// Native calls and callbacks: the code arena, the stub cache, live callbacks.
    pub calls: crate::call::CallState,
    /// `dlopen` handles of collected namespaces, one per library, closed when the state is
    /// freed ([`crate::clib`]).
    pub loaded: Vec<*mut c_void>,
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
            descs: HashMap::new(),
            parsed: HashMap::new(),
            metatypes: HashMap::new(),
            void_ptr,
            const_void_ptr,
            const_char_ptr,
            const_char_array,
            errno: 0,
            meta_ref: ffi::LUA_NOREF,
            gc_meta_ref: ffi::LUA_NOREF,
            finalizers_ref: ffi::LUA_NOREF,
            ctype_cache_ref: ffi::LUA_NOREF,
            calls: crate::call::CallState::new(),
            loaded: Vec::new(),
        }
    }

    /// The descriptor of `ty`, created on first use. The pointer stays valid as long as this
    /// state lives.
    pub fn desc(&mut self, ty: QualType) -> *const CTypeDesc {
        let me: *mut FfiState = self;
        let types = &self.types;
        let d = self.descs.entry(ty).or_insert_with(|| Box::new(CTypeDesc::new(types, ty, me)));
        &**d
    }

    /// Caches the type `key` parsed to. The cache holds declaration strings of at most
    /// [`PARSED_KEY_MAX`] bytes and starts over after [`PARSED_MAX`] of them, so that distinct
    /// spellings made in a loop (`"int *" .. i`) cannot grow it without bound.
    pub fn remember_parsed(&mut self, key: &[u8], ty: QualType) {
        if key.len() > PARSED_KEY_MAX || key.contains(&b'{') {
            return;
        }
        if self.parsed.len() >= PARSED_MAX {
            self.parsed.clear();
        }
        self.parsed.insert(key.to_vec(), ty);
    }

    /// Forgets cached descriptors whose layout may have changed: a record that was incomplete
    /// when its descriptor was made and has been defined since. Called after `ffi.cdef`.
    pub fn refresh_incomplete(&mut self) {
        let me: *mut FfiState = self;
        for d in self.descs.values_mut() {
            if d.size.is_none() {
                let fresh = CTypeDesc::new(&self.types, d.ty, me);
                // Update in place: the box's address is what callers hold.
                **d = fresh;
            }
        }
    }
}

impl Drop for FfiState {
    fn drop(&mut self) {
        for handle in self.loaded.drain(..) {
            // SAFETY: a handle `dlopen` returned, whose reference the collected namespace
            // handed over; no code of this state runs any more.
            unsafe { libc::dlclose(handle) };
        }
    }
}

impl Default for FfiState {
    fn default() -> Self {
        FfiState::new()
    }
}

thread_local! {
    /// The state whose Lua state closed last on this thread (see the [module docs](self)).
    static CLOSED: std::cell::RefCell<Option<Box<FfiState>>> = const { std::cell::RefCell::new(None) };
}

/// `__gc` of the state's userdata: keeps the [`FfiState`] as this thread's closed state and
/// frees the one kept before (module docs).
///
/// # Safety
/// Called by Lua with the userdata at index 1.
unsafe extern "C-unwind" fn state_gc(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: index 1 is the state userdata created by `get_or_create`, holding the pointer of
    // a boxed FfiState; __gc runs once per userdata, so the box is taken over once. The state
    // freed here is the one of a Lua state that finished closing before this one's finalizers
    // began (plain Lua cannot close a Lua state from a finalizer), so nothing can reach it.
    let closed = unsafe {
        let p = *(ffi::lua_touserdata(l, 1) as *const *mut FfiState);
        if p.is_null() {
            return 0;
        }
        Box::from_raw(p)
    };
    let previous = CLOSED.with_borrow_mut(|slot| slot.replace(closed));
    drop(previous);
    0
}

/// The state of `l`, created (and anchored in the registry) on first use. Returns it and
/// whether it was created now.
///
/// # Safety
/// `l` must be a valid Lua state with room for 3 stack slots.
pub unsafe fn get_or_create(l: *mut ffi::lua_State) -> (*mut FfiState, bool) {
    // SAFETY: valid-L: pushes and pops within its free slots.
    unsafe {
        let key = &STATE_KEY as *const u8 as *const c_void;
        let existing = from_registry(l);
        if !existing.is_null() {
            return (existing, false);
        }
        let ud = ffi::lua_newuserdata(l, std::mem::size_of::<*mut FfiState>()) as *mut *mut FfiState;
        let p = Box::into_raw(Box::new(FfiState::new()));
        ud.write(p);
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushcfunction(l, state_gc);
        ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        ffi::lua_setmetatable(l, -2);
        ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, key);
        (p, true)
    }
}

/// The state of `l` from the registry, or null if the module was never opened in it.
///
/// # Safety
/// `l` must be a valid Lua state with room for 1 stack slot.
pub unsafe fn from_registry(l: *mut ffi::lua_State) -> *mut FfiState {
    // SAFETY: valid-L: pushes and pops within its free slots.
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
/// Only for closures created by [`crate::api`] / [`crate::cdata`] with the state as upvalue 1.
#[inline]
pub unsafe fn from_upvalue(l: *mut ffi::lua_State) -> *mut FfiState {
    // SAFETY: the closure was created with a light userdata upvalue.
    unsafe { ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *mut FfiState }
}
