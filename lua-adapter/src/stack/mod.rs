//! Layer 1, the Lua stack: what the other layers know about the running Lua's stack.
//!
//! * [`LuaStack`]: the stack of the running C function, with `push_*`, `to_*` and `check_*`
//!   that raise nothing (the checks answer `Err(Raise)`).
//! * [`raise`]: **the one raising boundary**. Every error this crate raises in Lua goes
//!   through it: it takes a [`Raise`] (which owns the message), moves the message onto the
//!   Lua stack in a frame of its own, where the message is dropped, then calls `lua_error` (or
//!   `luaL_argerror`) with nothing that owns memory alive in its frame. It returns `!`, so a
//!   caller's type shows that it raises; a function that returns `Result<_, Raise>` does not
//!   raise itself but leaves it to its caller.
//! * [`vm_check`]: the Lua stack layout stubs use inline, checked against the running Lua.
//!
//! Lua API calls that allocate may still raise a memory error (as in every C function of a
//! Lua library); they own nothing that would leak when they do.
//!
//! Imports nothing from the crate.

use std::marker::PhantomData;
use std::os::raw::{c_char, c_int, c_void};

use mlua::ffi;

pub mod vm_check;

/// Lua 5.3 and later have integers: C integers read from memory become Lua integers there.
pub const HAS_INTEGERS: bool = cfg!(any(feature = "lua53", feature = "lua54", feature = "lua55"));

/// Creates a userdata of `size` bytes with `user_values` user value slots (Lua 5.4), or a
/// plain userdata (earlier versions, where every userdata has one environment/user value).
///
/// # Safety
/// `l` must be valid with a free stack slot. May raise a memory error.
pub unsafe fn new_userdata(l: *mut ffi::lua_State, size: usize, user_values: c_int) -> *mut c_void {
    #[cfg(any(feature = "lua54", feature = "lua55"))]
    // SAFETY: valid-L with a free slot (this function's contract), which the new userdata
    // takes; raise-clean: it may raise a memory error, and this frame owns nothing.
    unsafe {
        ffi::lua_newuserdatauv(l, size, user_values)
    }
    #[cfg(not(any(feature = "lua54", feature = "lua55")))]
    {
        let _ = user_values;
        // SAFETY: valid-L with a free slot (this function's contract), which the new userdata
        // takes; raise-clean: it may raise a memory error, and this frame owns nothing.
        unsafe { ffi::lua_newuserdata(l, size) }
    }
}

/// An error to raise in Lua, with what [`raise`] needs to build its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raise {
    /// `msg` prefixed with the position of the calling Lua code (as `luaL_error` does).
    Message(String),
    /// `msg` as it is, without a position (LuaJIT raises `dlerror()`'s text like this).
    Plain(String),
    /// Lua's `bad argument #narg to 'name' (msg)`.
    Arg(c_int, String),
    /// The value on top of the stack, as it is (a kept error value).
    Top,
    /// Argument `narg` is not of type `LUA_T*` (Lua's own `T expected, got U`).
    Type(c_int, c_int),
    /// The stack cannot grow by this many slots (Lua's own `stack overflow`).
    Stack(c_int),
}

/// A [`Raise`] for the caller to raise: `result.or_raise(l)` is the value or the raise.
pub trait OrRaise<T> {
    /// The value, or [`raise`] of the error.
    ///
    /// # Safety
    /// As [`raise`], when it is an error.
    unsafe fn or_raise(self, l: *mut ffi::lua_State) -> T;
}

impl<T> OrRaise<T> for Result<T, Raise> {
    #[inline]
    unsafe fn or_raise(self, l: *mut ffi::lua_State) -> T {
        match self {
            Ok(v) => v,
            // SAFETY: valid-L with 2 free slots, in a function Lua called, nothing owning memory
            // alive in the frames between (this method's contract, `raise`'s); `e` is moved
            // into `raise`, so this frame owns nothing.
            Err(e) => unsafe { raise(l, e) },
        }
    }
}

/// Moves the message of `e` onto the stack (dropping the `String` in this frame), so that
/// [`raise`]'s own frame owns nothing; returns the argument number for [`Raise::Arg`].
///
/// # Safety
/// `l` valid with 2 free slots.
#[inline(never)]
unsafe fn push_raise(l: *mut ffi::lua_State, e: Raise) -> Option<c_int> {
    let push = |msg: &str| {
        // SAFETY: valid-L with 2 free slots (this function's contract): each arm pushes at
        // most two values; Lua copies `msg`'s bytes. Not raise-clean: a memory error in a push
        // would leak the message `String` this frame owns (a leak, nothing unsound).
        unsafe { ffi::lua_pushlstring(l, msg.as_ptr() as *const c_char, msg.len()) };
    };
    match e {
        Raise::Message(msg) => {
            // SAFETY: valid-L with 2 free slots (this function's contract): `luaL_where`
            // pushes one string, the message below takes the second slot. A memory error here
            // would leak `msg`, as in `push`.
            unsafe { ffi::luaL_where(l, 1) };
            push(&msg);
            // SAFETY: valid-L (this function's contract); the top two values are the two
            // strings just pushed, which `lua_concat` replaces by one.
            unsafe { ffi::lua_concat(l, 2) };
            None
        }
        Raise::Plain(msg) => {
            push(&msg);
            None
        }
        Raise::Arg(narg, msg) => {
            push(&msg);
            Some(narg)
        }
        Raise::Top => None,
        // Lua's own check raised before this (in `raise`); not reached.
        Raise::Type(..) | Raise::Stack(_) => {
            push("an argument or stack check failed");
            None
        }
    }
}

/// Raises `e` in Lua: the crate's one raising boundary (see the [module docs](self)). Never
/// returns: `lua_error` longjmps over this frame and its callers' (which must own nothing).
///
/// # Safety
/// `l` valid with 2 free slots (for [`Raise::Top`], the error value on top), in a function
/// Lua called (a `lua_CFunction` or a helper called by one), with no Rust value owning memory
/// alive in the frames between it and that function.
#[cold]
pub unsafe fn raise(l: *mut ffi::lua_State, e: Raise) -> ! {
    // SAFETY: valid-L with 2 free slots (`push_raise` pushes at most two), in a function
    // Lua called (this function's contract), so `lua_error` unwinds to its protected call.
    // raise-clean: the caller's frames own nothing (contract), and `e` is moved into
    // `push_raise`, whose frame drops its message; for `Type` and `Stack`, `e` owns nothing
    // while Lua's own check raises. `luaL_argerror`'s message stays on the stack, so its
    // pointer is valid during the call.
    unsafe {
        // Lua's own checks, which failed in the caller, raise Lua's own messages.
        match e {
            Raise::Type(narg, t) => ffi::luaL_checktype(l, narg, t),
            Raise::Stack(n) => ffi::luaL_checkstack(l, n, std::ptr::null()),
            _ => {}
        }
        match push_raise(l, e) {
            // The message stays on the stack, so its pointer outlives the call.
            Some(narg) => {
                ffi::luaL_argerror(l, narg, ffi::lua_tolstring(l, -1, std::ptr::null_mut()));
            }
            None => {
                ffi::lua_error(l);
            }
        }
    }
    #[allow(unreachable_code)]
    {
        unreachable!("lua_error does not return")
    }
}

/// The stack of the running C function of Lua state `'l`: reads and pushes that raise
/// nothing but Lua's memory errors, and checks that answer `Err(Raise)` for [`raise`].
#[derive(Clone, Copy)]
pub struct LuaStack<'l> {
    l: *mut ffi::lua_State,
    state: PhantomData<&'l mut ffi::lua_State>,
}

impl<'l> LuaStack<'l> {
    /// The stack of `l`.
    ///
    /// # Safety
    /// `l` is a valid Lua state for `'l`, the one of the running C function, and every index
    /// given to the methods is valid (acceptable, for the reads) in it. A push is made only
    /// with a free slot (a C function starts with `LUA_MINSTACK`; pushing more needs
    /// [`LuaStack::check_stack`] first).
    #[inline]
    pub unsafe fn new(l: *mut ffi::lua_State) -> LuaStack<'l> {
        LuaStack { l, state: PhantomData }
    }

    /// The raw state, for the Lua API calls this wrapper does not cover.
    #[inline]
    pub fn raw(self) -> *mut ffi::lua_State {
        self.l
    }

    /// The index of the top value (the number of values).
    #[inline]
    pub fn top(self) -> c_int {
        // SAFETY: valid state (`new`'s contract).
        unsafe { ffi::lua_gettop(self.l) }
    }

    /// The type tag (`LUA_T*`) of the value at `idx`.
    #[inline]
    pub fn type_of(self, idx: c_int) -> c_int {
        // SAFETY: valid state and index (`new`'s contract).
        unsafe { ffi::lua_type(self.l, idx) }
    }

    /// Pops `n` values.
    #[inline]
    pub fn pop(self, n: c_int) {
        // SAFETY: valid state; `n` values are there (`new`'s contract).
        unsafe { ffi::lua_pop(self.l, n) }
    }

    /// The absolute index of `idx` (which stays valid as values are pushed).
    #[inline]
    pub fn abs_index(self, idx: c_int) -> c_int {
        // SAFETY: valid state and index.
        unsafe { ffi::lua_absindex(self.l, idx) }
    }

    /// Whether the value at `idx` is `nil`.
    #[inline]
    pub fn is_nil(self, idx: c_int) -> bool {
        self.type_of(idx) == ffi::LUA_TNIL
    }

    /// Removes the value at `idx`, shifting the ones above it down.
    #[inline]
    pub fn remove(self, idx: c_int) {
        // SAFETY: valid state and index.
        unsafe { ffi::lua_remove(self.l, idx) }
    }

    /// Pushes a copy of the value at `idx`.
    #[inline]
    pub fn push_copy(self, idx: c_int) {
        // SAFETY: valid state and index, a free slot.
        unsafe { ffi::lua_pushvalue(self.l, idx) }
    }

    /// Pushes the registry's value for reference `r`.
    #[inline]
    pub fn push_ref(self, r: c_int) {
        // SAFETY: valid state with a free slot.
        unsafe { ffi::lua_rawgeti(self.l, ffi::LUA_REGISTRYINDEX, r as ffi::lua_Integer) };
    }

    /// Replaces the key on top by `table[key]`, raw (no metamethod runs), `table` at `idx`.
    #[inline]
    pub fn raw_get(self, idx: c_int) {
        // SAFETY: valid state; a table at `idx` and a key on top (`new`'s contract).
        unsafe { ffi::lua_rawget(self.l, idx) };
    }

    /// Pops a key and a value (on top) into the table at `idx`, raw.
    #[inline]
    pub fn raw_set(self, idx: c_int) {
        // SAFETY: valid state; a table at `idx`, key and value on top (`new`'s contract).
        unsafe { ffi::lua_rawset(self.l, idx) }
    }

    /// Pushes `nil`.
    #[inline]
    pub fn push_nil(self) {
        // SAFETY: valid state with a free slot (`new`'s contract).
        unsafe { ffi::lua_pushnil(self.l) }
    }

    /// Pushes a boolean.
    #[inline]
    pub fn push_bool(self, b: bool) {
        // SAFETY: valid-L with a free slot (`new`'s contract), which the boolean takes; no
        // allocation.
        unsafe { ffi::lua_pushboolean(self.l, b as c_int) }
    }

    /// Pushes a number.
    #[inline]
    pub fn push_number(self, n: f64) {
        // SAFETY: valid-L with a free slot (`new`'s contract), which the number takes; no
        // allocation.
        unsafe { ffi::lua_pushnumber(self.l, n) }
    }

    /// Pushes an integer (a float on Lua 5.1/5.2, as `lua_pushinteger` does there).
    #[inline]
    pub fn push_integer(self, n: ffi::lua_Integer) {
        // SAFETY: valid-L with a free slot (`new`'s contract), which the integer takes; no
        // allocation.
        unsafe { ffi::lua_pushinteger(self.l, n) }
    }

    /// Pushes a copy of the C string `s`.
    #[inline]
    pub fn push_cstr(self, s: &std::ffi::CStr) {
        // SAFETY: valid-L with a free slot (`new`'s contract); `s` is NUL-terminated and Lua
        // copies it; raise-clean: a memory error leaves only the borrow `s`.
        unsafe { ffi::lua_pushstring(self.l, s.as_ptr()) };
    }

    /// Pushes a copy of `bytes` as a string.
    #[inline]
    pub fn push_bytes(self, bytes: &[u8]) {
        // SAFETY: valid-L with a free slot (`new`'s contract); `bytes` is `len` readable bytes,
        // which Lua copies; raise-clean: a memory error leaves only the borrow `bytes`.
        unsafe { ffi::lua_pushlstring(self.l, bytes.as_ptr() as *const c_char, bytes.len()) };
    }

    /// The value at `idx` as a boolean (Lua's truth).
    #[inline]
    pub fn to_bool(self, idx: c_int) -> bool {
        // SAFETY: valid state and index.
        unsafe { ffi::lua_toboolean(self.l, idx) != 0 }
    }

    /// The value at `idx` as a number (0 if it is not one, nor a string that converts).
    #[inline]
    pub fn to_number(self, idx: c_int) -> f64 {
        // SAFETY: valid state and index.
        unsafe { ffi::lua_tonumber(self.l, idx) }
    }

    /// Whether the value at `idx` is an integer (Lua 5.3+; never on 5.1 and 5.2).
    #[inline]
    pub fn is_integer(self, idx: c_int) -> bool {
        // SAFETY: valid state and index.
        unsafe { ffi::lua_isinteger(self.l, idx) != 0 }
    }

    /// The value at `idx` as a 64-bit integer (0 if it does not convert exactly).
    #[inline]
    pub fn to_integer(self, idx: c_int) -> i64 {
        // SAFETY: valid state and index.
        unsafe { ffi::lua_tointegerx(self.l, idx, std::ptr::null_mut()) as i64 }
    }

    /// The block of the (full or light) userdata at `idx`, null for anything else.
    #[inline]
    pub fn to_userdata(self, idx: c_int) -> *mut c_void {
        // SAFETY: valid state and index.
        unsafe { ffi::lua_touserdata(self.l, idx) }
    }

    /// Room for `n` more values.
    #[inline]
    pub fn check_stack(self, n: c_int) -> Result<(), Raise> {
        // SAFETY: valid-L (`new`'s contract): `lua_checkstack` grows the stack or answers 0;
        // raise-clean: it raises at most a memory error (Lua 5.1 grows the stack unprotected;
        // 5.2+ answer 0), and this frame owns nothing.
        match unsafe { ffi::lua_checkstack(self.l, n) } {
            0 => Err(Raise::Stack(n)),
            _ => Ok(()),
        }
    }

    /// Argument `narg` is of type `t` (`LUA_T*`).
    #[inline]
    pub fn check_type(self, narg: c_int, t: c_int) -> Result<(), Raise> {
        if self.type_of(narg) != t {
            return Err(Raise::Type(narg, t));
        }
        Ok(())
    }

    /// Argument `narg` as a string (a number is converted in place, as `luaL_checklstring`
    /// does): its bytes, alive while the value stays at `narg`.
    #[inline]
    pub fn check_bytes(self, narg: c_int) -> Result<(*const u8, usize), Raise> {
        let mut len = 0usize;
        // SAFETY: valid state and index.
        let p = unsafe { ffi::lua_tolstring(self.l, narg, &mut len) };
        if p.is_null() {
            return Err(Raise::Type(narg, ffi::LUA_TSTRING));
        }
        Ok((p as *const u8, len))
    }

    /// Argument `narg`: a value must be there (LuaJIT's `value expected`).
    #[inline]
    pub fn check_any(self, narg: c_int) -> Result<(), Raise> {
        if narg > self.top() {
            return Err(Raise::Arg(narg, "value expected".into()));
        }
        Ok(())
    }
}
