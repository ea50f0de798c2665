//! Which Lua stack layout ([`LuaVm`]) stubs may read and write inline, checked against the
//! running Lua before any stub uses it.
//!
//! The layout is the one of the Lua version this crate is built for (the mlua feature) on the
//! target it is built for ([`compiled_layout`]; none for Lua 5.2 on 32-bit x86). A
//! Lua built differently (another `lua_State`, NaN-packed values, 4-byte integers) would make
//! inline code silently wrong, so [`verified`] calls a probe C closure and compares what the
//! layout says with what the C API reports: the argument count, an integer's and a float's
//! tags and values, a light userdata upvalue, the slots `lua_pushinteger` and
//! `lua_pushnumber` write, nil's tag, where a short and a long string's bytes are, and where
//! a userdata made as value cdata are has its block, length and metatable, and what `lua_checkstack`
//! reads and writes. Any difference and stubs do everything through helpers. The probe reads
//! only memory the kernel reports readable (`Peek`): a wrong layout's pointers may lead
//! anywhere, and must be refused, not followed into a fault. With the layout verified, the
//! helpers also find cdata on the stack without the C API ([`full_userdata`]).

use std::os::raw::{c_int, c_void};

use abi_model::lua::vm::{ArgsBase, LuaVm};
use abi_model::Target;
use mlua::ffi;

/// The Lua version this crate is built for (the mlua feature), written as
/// [`LuaVm::for_target`] takes it.
pub const COMPILED_VERSION: &str = if cfg!(feature = "lua51") {
    "5.1"
} else if cfg!(feature = "lua52") {
    "5.2"
} else if cfg!(feature = "lua53") {
    "5.3"
} else if cfg!(feature = "lua55") {
    "5.5"
} else {
    "5.4"
};

/// The layout of the Lua this crate is built for, as the target it is built for lays it out
/// (`LUA54` on x86-64, `LUA54_I386` on i386 Linux, `LUA54_WIN32` on Win32, ...). `None` where
/// abi-model has no layout: Lua 5.2 on 32-bit x86 (NaN-packed values) and a host outside the
/// four targets; stubs then take every value through the helpers.
pub fn compiled_layout() -> Option<LuaVm> {
    LuaVm::for_target(COMPILED_VERSION, Target::host()?)
}

/// The upvalue of a namespace function's closure holding the function's address as a light
/// userdata, which closure-mode stubs read inline (upvalue 1 is the function cdata, 2 the
/// namespace); the probe closure holds its mark there, so the check reads what stubs read.
pub const FUNC_UPVALUE: u32 = 3;
const MARK_UPVALUE: u32 = FUNC_UPVALUE;
// Its low 32 bits on a 32-bit host: a light userdata holds a pointer-sized value.
const MARK: usize = 0x5A5A_1234_5678_u64 as usize;

/// The value word and tag of the Lua value at index `idx` (> 0, absolute) of the running C
/// function, as the verified layout `vm` lays it out: what [`push_slot`] pushes back (`None`
/// if `L->ci` is not where the layout says, which a verified layout rules out).
///
/// # Safety
/// `vm` is this state's verified layout; `idx` is a valid argument index of the running C
/// function. Only for values that stay alive by other means (the copy is not a reference).
pub unsafe fn read_slot(l: *mut ffi::lua_State, vm: &LuaVm, idx: c_int) -> Option<(u64, u32)> {
    // SAFETY: `vm` is this state's verified layout and `idx` a valid argument index of the running
    // C function (caller's contract), so the slot read lies inside the stack.
    unsafe {
        let at = stack_slot(l, vm, idx)?;
        Some((read::<u64>(at), tag(vm, at)))
    }
}

/// The address of the slot of stack index `idx` of the running C function, as `vm` lays
/// the stack out: an argument from 1, or below the top from -1, inside the frame (what
/// `index2value` of the C API accepts there); `None` for a pseudo-index or an index outside.
///
/// # Safety
/// As [`func_slot`].
#[inline]
unsafe fn stack_slot(l: *mut ffi::lua_State, vm: &LuaVm, idx: c_int) -> Option<usize> {
    // SAFETY: the contract of `func_slot` (valid-L, `vm` verified for it); the slot is
    // bounds-checked against `L->top` before any read.
    unsafe {
        let slot = vm.slot as isize;
        let top: usize = read(l as usize + vm.top as usize);
        let func = func_slot(l, vm)?;
        if idx > 0 {
            func.checked_add_signed(idx as isize * slot).filter(|&at| at < top)
        } else if idx < 0 && idx > ffi::LUA_REGISTRYINDEX {
            top.checked_add_signed(idx as isize * slot).filter(|&at| at > func)
        } else {
            None
        }
    }
}

/// The address of the running C function's stack slot as `vm` says (5.1: the slot below
/// `L->base`; later: `L->ci->func`), or `None` when `L->ci` is not a plausible pointer.
///
/// # Safety
/// `l` valid; `vm.args` names fields inside its `lua_State`.
#[inline(always)]
unsafe fn func_slot(l: *mut ffi::lua_State, vm: &LuaVm) -> Option<usize> {
    // SAFETY: valid-L and `vm.args` naming fields inside its `lua_State` (caller's contract): the
    // words read are those fields, and `ci->func` once `ci` is a plausible pointer.
    func_slot_with(l, vm, |p| Some(unsafe { read::<usize>(p) }))
}

/// [`func_slot`] with the words read by `word` (the raw read, or the probe's checked one):
/// `None` when `word` reads nothing or `L->ci` is not a plausible pointer.
#[inline(always)]
fn func_slot_with(l: *mut ffi::lua_State, vm: &LuaVm, mut word: impl FnMut(usize) -> Option<usize>) -> Option<usize> {
    match vm.args {
        ArgsBase::Base { at } => Some(word(l as usize + at as usize)?.wrapping_sub(vm.slot as usize)),
        ArgsBase::CallInfo { ci, func } => {
            let ci = word(l as usize + ci as usize)?;
            ensure(plausible(ci))?;
            word(ci + func as usize)
        }
    }
}

/// The block and length of the full userdata at stack index `idx` (an argument from 1, or
/// below the top from -1) as the verified layout `vm` lays it out: what `lua_touserdata` and
/// `lua_rawlen` return for it, without their calls. `None` for every other value, for a
/// pseudo-index, an index outside the frame, and (5.4+) a userdata with user values, whose
/// block is elsewhere: the caller asks the C API then.
///
/// # Safety
/// `vm` is this state's verified layout and `l` is running a C function.
#[inline]
pub unsafe fn full_userdata(l: *mut ffi::lua_State, vm: &LuaVm, idx: c_int) -> Option<(usize, usize)> {
    // SAFETY: `vm` is this state's verified layout and `l` runs a C function (caller's contract):
    // the slot read lies between the function's slot and `L->top`.
    unsafe {
        let at = stack_slot(l, vm, idx)?;
        let ud = vm.userdata;
        if tag(vm, at) != ud.tag {
            return None;
        }
        let u: usize = read(at);
        if ud.no_user_values_at.is_some_and(|nuv| read::<u16>(u + nuv as usize) != 0) {
            return None;
        }
        Some((u + ud.block_at as usize, read(u + ud.len_at as usize)))
    }
}

/// Pushes a value [`read_slot`] read: writes its word and tag at `L->top` and moves `top` up,
/// as `lua_pushvalue` would.
///
/// # Safety
/// `vm` as for [`read_slot`]; a free stack slot; the value is still alive.
pub unsafe fn push_slot(l: *mut ffi::lua_State, vm: LuaVm, (value, t): (u64, u32)) {
    // SAFETY: `vm` verified for `l`, a free stack slot and a still-alive value (caller's contract):
    // the write goes to `L->top`, which then moves up one slot.
    unsafe {
        let top_at = l as usize + vm.top as usize;
        let top: usize = read(top_at);
        (top as *mut u64).write_unaligned(value);
        let tag_at = top + vm.tag_at as usize;
        match vm.tag_size {
            1 => (tag_at as *mut u8).write(t as u8),
            _ => (tag_at as *mut u32).write_unaligned(t),
        }
        (top_at as *mut usize).write_unaligned(top + vm.slot as usize);
    }
}

/// Whether a state of this process has verified [`COMPILED`] (see [`process_layout`]).
static PROCESS_VERIFIED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// [`compiled_layout`] as a constant, so that code reading the stack with it is compiled
/// for its offsets and tag sizes (a test checks that both agree).
const COMPILED: Option<LuaVm> = compiled_const();

const fn compiled_const() -> Option<LuaVm> {
    let list: &[LuaVm] = if cfg!(target_arch = "x86_64") {
        &LuaVm::ALL
    } else if cfg!(windows) {
        &LuaVm::ALL_WIN32
    } else {
        &LuaVm::ALL_I386
    };
    let want = COMPILED_VERSION.as_bytes();
    let mut i = 0;
    while i < list.len() {
        // Names start "Lua 5.X".
        let name = list[i].name.as_bytes();
        let mut j = 0;
        while j < want.len() && name.len() > 4 + j && name[4 + j] == want[j] {
            j += 1;
        }
        if j == want.len() && (name.len() == 4 + j || name[4 + j] == b' ') {
            return Some(list[i]);
        }
        i += 1;
    }
    None
}

/// The stack layout a state of this process has verified ([`verified`]), for code that must
/// read the stack before it knows its state (a metamethod reading its state's upvalue). One
/// layout serves the whole process: this crate's Lua API calls all go to the one Lua it is
/// linked against (built in, or the host's), so what the probe found in one state holds in
/// every other.
#[inline(always)]
pub fn process_layout() -> Option<&'static LuaVm> {
    match &COMPILED {
        Some(vm) if PROCESS_VERIFIED.load(std::sync::atomic::Ordering::Relaxed) => Some(vm),
        _ => None,
    }
}

/// The running C function's frame as the verified layout reads it: its function slot and
/// `L->top`, for reading its first arguments and its upvalue 1 and pushing results without
/// the C API.
#[derive(Clone, Copy)]
pub struct Frame {
    func: usize,
    top: usize,
}

impl Frame {
    /// The frame of the running C function, if it has at least `args` arguments.
    ///
    /// # Safety
    /// `vm` is [`process_layout`] (or the state's verified layout) and `l` runs a C function.
    #[inline(always)]
    pub unsafe fn with_args(l: *mut ffi::lua_State, vm: &LuaVm, args: usize) -> Option<Frame> {
        // SAFETY: valid-L running a C function and `vm` verified for its Lua (caller's
        // contract): `top` and the function slot are fields the probe checked.
        unsafe {
            let top: usize = read(l as usize + vm.top as usize);
            let func = func_slot(l, vm)?;
            (func + args * (vm.slot as usize) < top).then_some(Frame { func, top })
        }
    }

    /// The value word and tag of argument `n` (1-based, at most the `args` of
    /// [`Frame::with_args`]).
    ///
    /// # Safety
    /// `vm` as for [`Frame::with_args`]; `n` within its `args`.
    #[inline(always)]
    pub unsafe fn arg(&self, vm: &LuaVm, n: usize) -> (u64, u32) {
        debug_assert!(self.func + n * (vm.slot as usize) < self.top);
        let at = self.func + n * vm.slot as usize;
        // SAFETY: the slot lies between the function's slot and `L->top` (checked by
        // `with_args` for every `n` the caller's contract allows).
        unsafe { (read::<u64>(at), tag(vm, at)) }
    }

    /// The block and length of argument `n` when it is a full userdata without user values
    /// (as [`full_userdata`]).
    ///
    /// # Safety
    /// As [`Frame::arg`].
    #[inline(always)]
    pub unsafe fn full_userdata(&self, vm: &LuaVm, n: usize) -> Option<(usize, usize)> {
        // SAFETY: the slot lies below `L->top` (the contract of `arg`); the `Udata` read is the
        // one the probe checked for a userdata made
        // without user values.
        unsafe {
            let (u, t) = self.arg(vm, n);
            let ud = vm.userdata;
            if t != ud.tag {
                return None;
            }
            let u = u as usize;
            if ud.no_user_values_at.is_some_and(|nuv| read::<u16>(u + nuv as usize) != 0) {
                return None;
            }
            Some((u + ud.block_at as usize, read(u + ud.len_at as usize)))
        }
    }

    /// The address of argument `n`'s string object when it is a short (interned) string: two
    /// equal short strings alive at once are one object. `None` for anything else (5.1
    /// interns every string, so there it is any string).
    ///
    /// # Safety
    /// As [`Frame::arg`].
    #[inline(always)]
    pub unsafe fn short_string(&self, vm: &LuaVm, n: usize) -> Option<usize> {
        // SAFETY: the slot lies between the function's slot and `L->top` (caller's contract).
        let (v, t) = unsafe { self.arg(vm, n) };
        (t == vm.strings.short_tag).then_some(v as usize)
    }

    /// The value of upvalue 1 of the running C closure, as a light userdata holds it.
    ///
    /// # Safety
    /// As [`Frame::with_args`], and the running function is a C closure whose upvalue 1 is a
    /// light userdata (the module's own metamethods).
    #[inline(always)]
    pub unsafe fn light_upvalue1(&self, vm: &LuaVm) -> usize {
        // SAFETY: the function slot holds the running C closure (caller's contract), whose
        // upvalues start where the probe found its closure's.
        unsafe {
            let closure: usize = read(self.func);
            read(closure + vm.cclosure_upvalues as usize)
        }
    }

    /// Pushes a number as `lua_pushnumber` would.
    ///
    /// # Safety
    /// `l` is the frame's state, with a free slot (a C function has `LUA_MINSTACK`), and
    /// nothing pushed since [`Frame::with_args`].
    #[inline(always)]
    pub unsafe fn push_number(&self, l: *mut ffi::lua_State, vm: &LuaVm, n: f64) {
        // SAFETY: the caller's contract: the write goes to `L->top`, a free slot.
        unsafe { self.push(l, vm, n.to_bits(), vm.float_tag) }
    }

    /// Pushes an integer as `lua_pushinteger` would (a number before Lua 5.3).
    ///
    /// # Safety
    /// As [`Frame::push_number`].
    #[inline(always)]
    pub unsafe fn push_integer(&self, l: *mut ffi::lua_State, vm: &LuaVm, v: i64) {
        // SAFETY: the caller's contract: the write goes to `L->top`, a free slot.
        unsafe {
            match vm.int_tag {
                Some(t) => self.push(l, vm, v as u64, t),
                None => self.push(l, vm, (v as f64).to_bits(), vm.float_tag),
            }
        }
    }

    #[inline(always)]
    unsafe fn push(&self, l: *mut ffi::lua_State, vm: &LuaVm, value: u64, t: u32) {
        // SAFETY: `self.top` is `L->top` (nothing pushed since), a free slot (caller's
        // contract); then `top` moves up one slot, as the probe saw `lua_pushnumber` do.
        unsafe {
            (self.top as *mut u64).write_unaligned(value);
            let tag_at = self.top + vm.tag_at as usize;
            match vm.tag_size {
                1 => (tag_at as *mut u8).write(t as u8),
                _ => (tag_at as *mut u32).write_unaligned(t),
            }
            ((l as usize + vm.top as usize) as *mut usize).write_unaligned(self.top + vm.slot as usize);
        }
    }
}

/// [`compiled_layout`] when the running Lua matches it (see the [module docs](self)).
///
/// # Safety
/// `l` is a valid state with 8 free slots.
pub unsafe fn verified(l: *mut ffi::lua_State) -> Option<LuaVm> {
    let vm = compiled_layout()?;
    // SAFETY: valid-L with 8 free slots (caller's contract), which `layout_matches` uses for its
    // probes.
    let ok = unsafe { layout_matches(l, vm) };
    if ok && COMPILED == Some(vm) {
        PROCESS_VERIFIED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    ok.then_some(vm)
}

/// Whether `vm` reads and writes what the C API reports in the running Lua (the probe).
///
/// # Safety
/// As [`verified`].
unsafe fn layout_matches(l: *mut ffi::lua_State, vm: LuaVm) -> bool {
    if vm.ptr_size as usize != std::mem::size_of::<usize>() {
        return false;
    }
    // SAFETY: valid-L: pushes and pops within its free slots; the probe only reads memory the
    // layout names after checking each pointer it follows; `vm` outlives the call (upvalue 1).
    unsafe {
        ffi::lua_pushlightuserdata(l, &vm as *const LuaVm as *mut c_void);
        for _ in 2..MARK_UPVALUE {
            ffi::lua_pushnil(l);
        }
        ffi::lua_pushlightuserdata(l, MARK as *mut c_void);
        ffi::lua_pushcclosure(l, probe, MARK_UPVALUE as c_int);
        push_int(l, 7);
        ffi::lua_pushnumber(l, 2.5);
        ffi::lua_pushboolean(l, 1);
        if ffi::lua_pcall(l, 3, 1, 0) != ffi::LUA_OK {
            ffi::lua_pop(l, 1);
            return false;
        }
        let ok = ffi::lua_toboolean(l, -1) != 0;
        ffi::lua_pop(l, 1);
        ok
    }
}

unsafe fn push_int(l: *mut ffi::lua_State, v: i64) {
    // SAFETY: valid-L with a free slot: one push.
    unsafe {
        if cfg!(any(feature = "lua53", feature = "lua54", feature = "lua55")) {
            ffi::lua_pushinteger(l, v as ffi::lua_Integer);
        } else {
            ffi::lua_pushnumber(l, v as f64);
        }
    }
}

unsafe fn read<T: Copy>(p: usize) -> T {
    // SAFETY: `p` addresses a readable `T` (callers' contract): a field of the `lua_State` at an
    // offset the verified layout names, or a stack slot below `L->top`. (The probe, which reads
    // before the layout is verified, reads through `Peek` instead.)
    unsafe { (p as *const T).read_unaligned() }
}

unsafe fn tag(vm: &LuaVm, slot: usize) -> u32 {
    // SAFETY: `slot` is a slot of `l`'s stack below `L->top` (callers' contract), so its tag field
    // is readable.
    unsafe {
        match vm.tag_size {
            1 => u32::from(read::<u8>(slot + vm.tag_at as usize)),
            _ => read::<u32>(slot + vm.tag_at as usize),
        }
    }
}

/// Whether `p` may point at a Lua object or a stack slot: past the first page, and aligned
/// to a pointer (8 bytes on x86-64; 4 on i386, where a slot is 12 bytes).
fn plausible(p: usize) -> bool {
    p > 0x1000 && p.is_multiple_of(std::mem::size_of::<usize>())
}

/// What the probe reads memory with. Until a layout is checked, the pointers the probe
/// follows were read at offsets that layout names, which in a Lua built differently may hold
/// anything: a wrong layout must be refused, never fault. So every read is of memory the
/// kernel has said is readable ([`crate::os::peek`]), a system call each, or of a 4 KiB
/// page such a read found readable since the last Lua call that may allocate or free
/// (which may return memory to the system: [`Peek::forget`] after each), from memory.
struct Peek {
    pages: [usize; 8],
    known: usize,
}

impl Peek {
    const PAGE: usize = 4096;

    fn new() -> Peek {
        Peek { pages: [0; 8], known: 0 }
    }

    /// The `T` at `p` when it is readable.
    fn val<T: Copy>(&mut self, p: usize) -> Option<T> {
        let page = p & !(Self::PAGE - 1);
        let one_page = (p.checked_add(std::mem::size_of::<T>() - 1)? & !(Self::PAGE - 1)) == page;
        if one_page && self.pages[..self.known].contains(&page) {
            // SAFETY: `p..p + size_of::<T>()` lies in a page the kernel found readable since the
            // last Lua call that may have freed memory (`forget` runs after each).
            return Some(unsafe { (p as *const T).read_unaligned() });
        }
        let v = crate::os::peek::read_if_readable(p)?;
        if one_page && self.known < self.pages.len() {
            self.pages[self.known] = page;
            self.known += 1;
        }
        Some(v)
    }

    /// After a Lua call that may allocate or free: no page is known readable any more.
    fn forget(&mut self) {
        self.known = 0;
    }

    /// [`tag`], checked.
    fn tag(&mut self, vm: &LuaVm, slot: usize) -> Option<u32> {
        match vm.tag_size {
            1 => self.val::<u8>(slot + vm.tag_at as usize).map(u32::from),
            _ => self.val::<u32>(slot + vm.tag_at as usize),
        }
    }

    /// [`func_slot`], checked.
    fn func_slot(&mut self, l: *mut ffi::lua_State, vm: &LuaVm) -> Option<usize> {
        func_slot_with(l, vm, |p| self.val(p))
    }

    /// The slot of the value at the top of `l`'s stack, read with the layout's `L->top`
    /// after any allocation (which may run a collection step that moves the stack: 5.2+
    /// shrink a thread's stack as they traverse it, so the slot is not where it was before).
    fn top_value(&mut self, l: *mut ffi::lua_State, vm: &LuaVm) -> Option<usize> {
        Some(self.val::<usize>(l as usize + vm.top as usize)?.wrapping_sub(vm.slot as usize))
    }
}

/// `Some(())` when `ok`: a failed check of the probe, for `?`.
fn ensure(ok: bool) -> Option<()> {
    ok.then_some(())
}

/// Whether the layout reads what the API reports, for the call `(7, 2.5, true)`.
unsafe fn matches(l: *mut ffi::lua_State, vm: LuaVm) -> bool {
    // SAFETY: valid-L with 8 free slots (contract of `layout_matches`); every read of memory the
    // layout names goes through `Peek`.
    unsafe { checks_pass(l, &vm, &mut Peek::new()) }.is_some()
}

/// The probe's checks, in order; `None` at the first that fails or reads nothing readable
/// (the probe's stack may be left unbalanced then: its caller returns the top value only).
unsafe fn checks_pass(l: *mut ffi::lua_State, vm: &LuaVm, pk: &mut Peek) -> Option<()> {
    // SAFETY: valid-L with 8 free slots (contract of `layout_matches`): pushes and pops within
    // them; memory is read only through `Peek`.
    unsafe {
        let lp = l as usize;
        let slot = vm.slot as usize;
        // L->top: one push moves it by one slot.
        let top0: usize = pk.val(lp + vm.top as usize)?;
        ffi::lua_pushnil(l);
        let top1: Option<usize> = pk.val(lp + vm.top as usize);
        ffi::lua_pop(l, 1);
        ensure(plausible(top0) && top1 == Some(top0 + slot))?;
        // The called function's slot, and the count.
        let func = pk.func_slot(l, vm)?;
        ensure(plausible(func) && func < top0 && (top0 - func) / slot == ffi::lua_gettop(l) as usize + 1)?;
        // The arguments.
        let (a1, a2) = (func + slot, func + 2 * slot);
        let int_ok = match vm.int_tag {
            Some(t) => pk.tag(vm, a1)? == t && pk.val::<i64>(a1)? == 7,
            None => pk.tag(vm, a1)? == vm.float_tag && pk.val::<f64>(a1)? == 7.0,
        };
        ensure(int_ok && pk.tag(vm, a2)? == vm.float_tag && pk.val::<f64>(a2)? == 2.5)?;
        // The closure's upvalue.
        let closure: usize = pk.val(func)?;
        ensure(plausible(closure))?;
        let up = closure + (vm.cclosure_upvalues + (MARK_UPVALUE - 1) * vm.slot) as usize;
        ensure(pk.val::<usize>(up)? == MARK && pk.tag(vm, up)? == vm.light_userdata_tag)?;
        // What the push functions write is what inline pushes write.
        push_int(l, -0x1234_5678_9ABC);
        ffi::lua_pushnumber(l, -1.25);
        let pushed = (|| {
            let int_ok = match vm.int_tag {
                Some(t) => pk.tag(vm, top0)? == t && pk.val::<i64>(top0)? == -0x1234_5678_9ABC,
                None => pk.tag(vm, top0)? == vm.float_tag && pk.val::<f64>(top0)? == -0x1234_5678_9ABC_i64 as f64,
            };
            let float_ok = pk.tag(vm, top0 + slot)? == vm.float_tag && pk.val::<f64>(top0 + slot)? == -1.25;
            let moved = pk.val::<usize>(lp + vm.top as usize)? == top0 + 2 * slot;
            ensure(int_ok && float_ok && moved)
        })();
        ffi::lua_pop(l, 2);
        pushed?;
        strings_match(l, vm, pk)?;
        userdata_matches(l, vm, pk)?;
        room_matches(l, vm, pk)
    }
}

/// Whether `lua_checkstack` writes `ci->top` and leaves `stack_last` where the layout says.
/// Last of the checks: a growing stack moves `L->top`.
unsafe fn room_matches(l: *mut ffi::lua_State, vm: &LuaVm, pk: &mut Peek) -> Option<()> {
    // SAFETY: valid-L with 8 free slots (contract of `layout_matches`); memory is read only
    // through `Peek`.
    unsafe {
        let (lp, slot) = (l as usize, vm.slot as usize);
        // More than the frame's LUA_MINSTACK, so each call raises ci->top to exactly top + n,
        // the second one past the stack's first size; a stack grown for n may end exactly n
        // slots above top (5.4's luaD_growstack: the size needed when doubling is not enough).
        for n in [300usize, 3000] {
            ensure(ffi::lua_checkstack(l, n as c_int) != 0)?;
            pk.forget();
            let top: usize = pk.val(lp + vm.top as usize)?;
            let ci: usize = pk.val(lp + vm.room.ci as usize)?;
            let last: usize = pk.val(lp + vm.room.stack_last as usize)?;
            // `stack`, the base, follows `stack_last` in every version's lua_State: the stack
            // holds `top`. Without it a pointer to memory just above the stack (L->ci, the
            // field before) could pass the checks on `last` alone, as a heap layout made it
            // do once.
            let base: usize = pk.val(lp + vm.room.stack_last as usize + vm.ptr_size as usize)?;
            ensure(plausible(ci))?;
            ensure(
                pk.val::<usize>(ci + vm.room.ci_top as usize)? == top + n * slot
                    && last >= top + n * slot
                    && (last - top).is_multiple_of(slot)
                    && last - top < (n + 100_000) * slot
                    && plausible(base)
                    && base < top
                    && (top - base).is_multiple_of(slot)
                    && top - base < 1_000_000 * slot,
            )?;
        }
        // `stack_last` moves when the stack grows: asking for one slot more than the layout
        // says is free must reallocate the stack, and the word read as `stack_last` must then
        // allow that many. A field that only happens to point a little above the stack stays
        // where it was (`L->l_G`, once in ~90 runs, with the heap laid out so). A layout
        // claiming room for more than 50,000 slots is refused rather than grown into (a legit
        // one has ~3,000 after the loop's `lua_checkstack(3000)`).
        let top: usize = pk.val(lp + vm.top as usize)?;
        let last: usize = pk.val(lp + vm.room.stack_last as usize)?;
        let k = (last - top) / slot + 1;
        ensure(k <= 50_000 && ffi::lua_checkstack(l, k as c_int) != 0)?;
        pk.forget();
        let grown_top: usize = pk.val(lp + vm.top as usize)?;
        let grown_last: usize = pk.val(lp + vm.room.stack_last as usize)?;
        ensure(grown_last != last && grown_last >= grown_top + k * slot)
    }
}

/// Whether a userdata made as value cdata are (no user values) has its block, length and
/// metatable where the layout says.
unsafe fn userdata_matches(l: *mut ffi::lua_State, vm: &LuaVm, pk: &mut Peek) -> Option<()> {
    // SAFETY: valid-L with 8 free slots (contract of `layout_matches`); the userdata is on the
    // stack while its block is read (through `Peek`) at the offsets the layout names, from its
    // slot found after the allocations.
    unsafe {
        let ud = vm.userdata;
        let block = crate::stack::new_userdata(l, 48, 0) as usize;
        ffi::lua_createtable(l, 0, 0);
        let mt = ffi::lua_topointer(l, -1) as usize;
        ffi::lua_setmetatable(l, -2);
        pk.forget();
        let ok = (|| {
            let at = pk.top_value(l, vm)?;
            let u: usize = pk.val(at)?;
            ensure(
                pk.tag(vm, at)? == ud.tag
                    && plausible(u)
                    && u + ud.block_at as usize == block
                    && pk.val::<usize>(u + ud.len_at as usize)? == 48
                    && pk.val::<usize>(u + ud.metatable_at as usize)? == mt,
            )?;
            match ud.no_user_values_at {
                Some(at) => ensure(pk.val::<u16>(u + at as usize)? == 0),
                None => Some(()),
            }
        })();
        ffi::lua_pop(l, 1);
        ok
    }
}

/// Whether a short and a long string (and nil) are where the layout says.
unsafe fn strings_match(l: *mut ffi::lua_State, vm: &LuaVm, pk: &mut Peek) -> Option<()> {
    // SAFETY: valid-L with 8 free slots (contract of `layout_matches`); each string is on the
    // stack while its bytes, read (through `Peek`) from its slot found after its allocation, are
    // compared with what `lua_tolstring` returns.
    unsafe {
        ffi::lua_pushnil(l);
        let nil_tag = pk.top_value(l, vm).and_then(|at| pk.tag(vm, at));
        ffi::lua_pop(l, 1);
        ensure(nil_tag? == vm.nil_tag)?;
        let long = [b'x'; 120];
        for (s, t, bytes) in [
            (&b"short"[..], vm.strings.short_tag, vm.strings.short_bytes),
            (&long[..], vm.strings.long_tag, vm.strings.long_bytes),
        ] {
            ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len());
            pk.forget();
            let api = ffi::lua_tolstring(l, -1, std::ptr::null_mut()) as usize;
            let ok = (|| {
                let at = pk.top_value(l, vm)?;
                let ts: usize = pk.val(at)?;
                ensure(pk.tag(vm, at)? == t && plausible(ts))?;
                let ours = match bytes {
                    abi_model::lua::vm::StrBytes::At(o) => ts + o as usize,
                    abi_model::lua::vm::StrBytes::Via(o) => pk.val(ts + o as usize)?,
                };
                ensure(ours == api)
            })();
            ffi::lua_pop(l, 1);
            ok?;
        }
        Some(())
    }
}

unsafe extern "C-unwind" fn probe(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: a lua_CFunction called by `layout_matches` with three arguments and the layout
    // to check in upvalue 1.
    unsafe {
        let vm = *(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const LuaVm);
        let ok = matches(l, vm);
        ffi::lua_pushboolean(l, c_int::from(ok));
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_model::lua::vm::{LuaUserdata, StackRoom};

    /// How many of `layouts` the probe takes in a fresh Lua, from inside a C function (where
    /// a stub runs).
    fn layouts_taken(layouts: &[LuaVm]) -> i64 {
        unsafe extern "C-unwind" fn count(l: *mut ffi::lua_State) -> c_int {
            // SAFETY: a lua_CFunction called with a light userdata pointing at n layouts, and n.
            unsafe {
                let p = ffi::lua_touserdata(l, 1) as *const LuaVm;
                let n = ffi::lua_tointeger(l, 2) as usize;
                let taken = std::slice::from_raw_parts(p, n).iter().filter(|vm| layout_matches(l, **vm)).count();
                ffi::lua_pushinteger(l, taken as ffi::lua_Integer);
                1
            }
        }
        let lua = mlua::Lua::new();
        // SAFETY: `count` follows the lua_CFunction protocol.
        let f = unsafe { lua.create_c_function(count) }.unwrap();
        f.call::<i64>((mlua::LightUserData(layouts.as_ptr() as *mut c_void), layouts.len())).unwrap()
    }

    /// The compiled layout, which every host has but 32-bit x86 running Lua 5.2 (NaN
    /// packing); the tests that need one pass there without it.
    fn layout() -> Option<LuaVm> {
        let vm = compiled_layout();
        let nan_packed = COMPILED_VERSION == "5.2" && cfg!(target_arch = "x86");
        assert_eq!(vm.is_none(), nan_packed, "Lua {COMPILED_VERSION} on {:?}", Target::host());
        vm
    }

    #[test]
    fn the_running_lua_has_the_layout_this_crate_is_built_for() {
        let Some(vm) = layout() else { return };
        assert_eq!(layouts_taken(&[vm]), 1, "{vm}");
    }

    #[test]
    fn the_constant_layout_is_the_compiled_one() {
        assert_eq!(COMPILED, compiled_layout());
    }

    #[test]
    fn the_compiled_layout_is_the_host_targets() {
        let host = Target::host().expect("an x86 host");
        assert_eq!(compiled_layout(), LuaVm::for_target(COMPILED_VERSION, host));
        if let Some(vm) = compiled_layout() {
            assert_eq!(vm.ptr_size as usize, std::mem::size_of::<usize>(), "{vm}");
        }
    }

    #[test]
    fn the_probe_refuses_every_other_versions_and_targets_layout() {
        // The checker fed wrong answers: 5.4 and 5.5 differ only in where long strings keep
        // their bytes, 5.2 and 5.3 in their number tags and userdata, 5.1 in where arguments
        // start; the same version on another target in its pointer size or slot size (i386
        // Linux's 12-byte slots against Win32's 16).
        let others: Vec<LuaVm> = Target::ALL
            .into_iter()
            .flat_map(LuaVm::all_for)
            .copied()
            .filter(|vm| Some(*vm) != compiled_layout())
            .collect();
        assert_eq!(layouts_taken(&others), 0);
    }

    #[test]
    fn the_probe_refuses_a_layout_that_misplaces_what_lua_checkstack_reads() {
        let Some(vm) = layout() else { return };
        let r = vm.room;
        let wrong = [
            StackRoom { ci_top: r.ci_top + 8, ..r },
            StackRoom { stack_last: r.stack_last + 8, ..r },
            StackRoom { stack_last: r.stack_last - 8, ..r },
            StackRoom { ci: r.ci + 8, ..r },
        ]
        .map(|room| LuaVm { room, ..vm });
        assert_eq!(layouts_taken(&wrong), 0);
    }

    #[test]
    fn the_probe_refuses_without_faulting_layouts_that_follow_any_other_field() {
        // Each pointer the probe follows (`L->top`, `L->ci` or `L->base`, the `ci` that
        // lua_checkstack writes, `L->stack_last`), taken instead from every other word of the
        // `lua_State`: counts, flags, other pointers, whatever the heap left there. The probe
        // must refuse them all without faulting (it reads through `os::peek`; a layout with
        // `ci` one word off once crashed this test binary on 5.3).
        let Some(vm) = layout() else { return };
        let word = vm.ptr_size;
        let mut wrong = Vec::new();
        for off in (0..256).step_by(word as usize) {
            if off != vm.top {
                wrong.push(LuaVm { top: off, ..vm });
            }
            match vm.args {
                ArgsBase::Base { at } if at != off => wrong.push(LuaVm { args: ArgsBase::Base { at: off }, ..vm }),
                ArgsBase::CallInfo { ci, func } if ci != off => {
                    wrong.push(LuaVm { args: ArgsBase::CallInfo { ci: off, func }, ..vm })
                }
                _ => {}
            }
            if off != vm.room.ci {
                wrong.push(LuaVm { room: StackRoom { ci: off, ..vm.room }, ..vm });
            }
            if off != vm.room.stack_last {
                wrong.push(LuaVm { room: StackRoom { stack_last: off, ..vm.room }, ..vm });
            }
        }
        assert_eq!(layouts_taken(&wrong), 0, "of {} layouts", wrong.len());
    }

    #[test]
    fn the_probe_refuses_a_layout_that_misplaces_a_userdatas_metatable() {
        // cdata store the metatable's address at `metatable_at` themselves: one word off
        // either way (the length or the neighbouring field) must be caught.
        let Some(vm) = layout() else { return };
        let ud = vm.userdata;
        let word = vm.ptr_size;
        let wrong = [ud.metatable_at + word, ud.metatable_at - word]
            .map(|metatable_at| LuaVm { userdata: LuaUserdata { metatable_at, ..ud }, ..vm });
        assert_eq!(layouts_taken(&wrong), 0);
    }

    /// For every index form, whether `full_userdata` agrees with `lua_touserdata` and
    /// `lua_rawlen` (or leaves the value to them): 1 when all do.
    unsafe extern "C-unwind" fn userdata_reads_agree(l: *mut ffi::lua_State) -> c_int {
        // SAFETY: a lua_CFunction called with (7, a userdata made by mlua); pushes two more.
        unsafe {
            let vm = layout().expect("a layout");
            crate::stack::new_userdata(l, 40, 0);
            crate::stack::new_userdata(l, 16, 0);
            let api = |idx: c_int| (ffi::lua_touserdata(l, idx) as usize, ffi::lua_rawlen(l, idx));
            let mut ok = true;
            // Arguments, the pushed ones, the same from the top, past the top, a pseudo-index.
            for idx in [1, 2, 3, 4, -1, -2, -3, -4, 5, 9, ffi::LUA_REGISTRYINDEX] {
                ok &= match full_userdata(l, &vm, idx) {
                    Some((block, len)) => (block, len) == api(idx) && ffi::lua_type(l, idx) == ffi::LUA_TUSERDATA,
                    None => {
                        ffi::lua_type(l, idx) != ffi::LUA_TUSERDATA
                            || idx == ffi::LUA_REGISTRYINDEX
                            || idx == 2
                            || idx == -3
                    }
                };
            }
            // The two made without user values are read from the stack, both ways.
            ok &= [3, 4, -1, -2].iter().all(|&idx| full_userdata(l, &vm, idx).is_some());
            ffi::lua_pushboolean(l, c_int::from(ok));
            1
        }
    }

    #[test]
    fn userdata_read_from_the_stack_are_what_the_api_reports() {
        if layout().is_none() {
            return;
        }
        let lua = mlua::Lua::new();
        // SAFETY: follows the lua_CFunction protocol.
        let f = unsafe { lua.create_c_function(userdata_reads_agree) }.unwrap();
        let ud = lua.create_any_userdata([0u8; 24]).unwrap();
        assert!(f.call::<bool>((7, ud)).unwrap());
    }
}
