//! The helper table: every function a generated stub or thunk may call, with its C
//! signature, so calls to helpers are planned by the same model as calls to user functions.
//!
//! Native code binds each helper to a real function (lua-adapter); the emulator binds each to
//! a hook over a mock Lua stack (emu-harness). Stubs never touch the Lua C API directly.

use crate::abi::{plan_values, AbiValue};
use crate::plan::{CallPlan, ValueKind};
use crate::{CallConv, Target};

/// A helper function. `L` is the `lua_State *`; `ctype` an opaque pointer to the type's
/// record in the ctype registry, embedded in the stub as a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Helper {
    /// `int luaffi_gettop(lua_State *L)`: number of Lua arguments.
    ArgCount,
    /// `void luaffi_argcount_error(lua_State *L, int expected, int got)`: raises
    /// "wrong number of arguments"; never returns.
    ArgCountError,
    /// `int32_t luaffi_to_i32(lua_State *L, int idx)`: Lua value at idx as a 32-bit integer
    /// (numbers, booleans, integer cdata; raises on anything else).
    ToI32,
    /// `uint32_t luaffi_to_u32(lua_State *L, int idx)`.
    ToU32,
    /// `int32_t luaffi_to_i8(lua_State *L, int idx)`: as `ToI32`, then narrowed to 8 bits
    /// (wrapping, as a C conversion) and sign-extended back, so a small integer lands in a
    /// stack slot already widened as the ABI expects.
    ToI8,
    /// `uint32_t luaffi_to_u8(lua_State *L, int idx)`: narrowed to 8 bits, zero-extended.
    ToU8,
    /// `int32_t luaffi_to_i16(lua_State *L, int idx)`: narrowed to 16 bits, sign-extended.
    ToI16,
    /// `uint32_t luaffi_to_u16(lua_State *L, int idx)`: narrowed to 16 bits, zero-extended.
    ToU16,
    /// `int64_t luaffi_to_i64(lua_State *L, int idx)`.
    ToI64,
    /// `uint64_t luaffi_to_u64(lua_State *L, int idx)`.
    ToU64,
    /// `float luaffi_to_f32(lua_State *L, int idx)`.
    ToF32,
    /// `double luaffi_to_f64(lua_State *L, int idx)`.
    ToF64,
    /// `int luaffi_to_bool(lua_State *L, int idx)`: 0 or 1.
    ToBool,
    /// `void *luaffi_to_ptr(lua_State *L, int idx, const void *ctype)`: nil, strings,
    /// pointer/array cdata and callbacks converted to a pointer of the given type.
    ToPtr,
    /// `void luaffi_to_record(lua_State *L, int idx, const void *ctype, void *dst)`: copies a
    /// struct/union/complex value of that type into dst; for a [`crate::ValueKind::TypedInt`]
    /// (`__ptr32`, `_Bool int`), stores the value into dst's bytes of that type.
    ToRecord,
    /// `void luaffi_push_i32(lua_State *L, int32_t v)`.
    PushI32,
    /// `void luaffi_push_u32(lua_State *L, uint32_t v)`.
    PushU32,
    /// `void luaffi_push_i64(lua_State *L, int64_t v)`: a Lua integer when exact on 5.3+,
    /// else a boxed `int64_t` cdata.
    PushI64,
    /// `void luaffi_push_u64(lua_State *L, uint64_t v)`.
    PushU64,
    /// `void luaffi_push_f32(lua_State *L, float v)`.
    PushF32,
    /// `void luaffi_push_f64(lua_State *L, double v)`.
    PushF64,
    /// `void luaffi_push_bool(lua_State *L, int v)`.
    PushBool,
    /// `void luaffi_push_ptr(lua_State *L, void *p, const void *ctype)`: a pointer cdata
    /// (nil never: NULL is a NULL cdata, as in LuaJIT).
    PushPtr,
    /// `void luaffi_push_record(lua_State *L, const void *ctype, const void *src)`: pushes a
    /// new cdata of that struct/union/complex type holding a copy of `src`; for a
    /// [`crate::ValueKind::TypedInt`], the value of that type at `src` (a `__ptr32` cdata, nil
    /// for NULL; true or false).
    PushRecord,
    /// `void *luaffi_new_result(lua_State *L, const void *ctype)`: pushes a new cdata of the
    /// return type and returns its storage, which the call fills (aggregate returns).
    NewResult,
    /// `void *luaffi_func_addr(lua_State *L)`: the address of the C function being called
    /// (stubs are shared by every function of one signature).
    FuncAddr,
    /// `lua_State *luaffi_errno_restore(lua_State *L, const void *ret_ctype)`: sets errno
    /// (Windows: SetLastError) to the value `ffi.errno(n)` stored, just before the call, and
    /// makes L the thread callbacks run on during the call; returns the thread it replaced,
    /// for `AfterCall` to put back. The return type's descriptor is passed so the helper finds
    /// its state with one load instead of looking up the called object on the Lua stack.
    ErrnoRestore,
    /// `void luaffi_after_call(lua_State *L, const void *ret_ctype, lua_State *prev)`: stores
    /// errno (Windows: GetLastError) for `ffi.errno()` right after the call, puts back `prev`
    /// (what `ErrnoRestore` returned) as the callback thread, then raises the error of a
    /// callback that failed during the call, if any (the descriptor as for `ErrnoRestore`).
    AfterCall,
    /// `lua_State *luaffi_callback_enter(void *cb)`: finds the callback's state, pushes its
    /// Lua function; returns the state.
    CallbackEnter,
    /// `void luaffi_callback_call(lua_State *L, int nargs, void *cb)`: calls the function
    /// pushed by enter for callback `cb` with nargs arguments, leaving one result; errors are
    /// reported, not propagated across C frames.
    CallbackCall,
    /// `void luaffi_callback_leave(lua_State *L)`: pops what the callback left.
    CallbackLeave,
    /// `int *luaffi_errno_location(void)`: the calling thread's `errno` (the C library's
    /// `__errno_location`), for stubs that restore and save it inline.
    ErrnoLocation,
    /// `int luaffi_callback_pcall(lua_State *L, int nargs, int nresults, int errfunc,
    /// intptr_t ctx, void *k)`: `lua_pcallk` itself (Lua 5.1's `lua_pcall` takes the first
    /// four and ignores the rest: every x86 convention leaves arguments to the caller), called
    /// as `(L, nargs, 1, 0, 0, NULL)` for the function a callback's entry pushed; returns its
    /// status. Never raises. A thunk that calls it (instead of `CallbackCall`) has checked
    /// that no callback error is pending, and hands the status to `CallbackResult` unless it
    /// is 0 and the result is a value the thunk converts inline.
    CallbackPcall,
    /// `void luaffi_callback_result(lua_State *L, int status, void *cb)`: after
    /// `CallbackPcall`, leaves one result that converts to the callback's return type: on an
    /// error (status not 0), or a result that does not convert, the error is kept (raised
    /// when the C call returns) and the result replaced by zero. Never raises.
    CallbackResult,
}

use ValueKind::{Pointer as P, F32, F64};
const I32: ValueKind = ValueKind::Int { size: 4, signed: true };
const U32: ValueKind = ValueKind::Int { size: 4, signed: false };
const I64: ValueKind = ValueKind::Int { size: 8, signed: true };
const U64: ValueKind = ValueKind::Int { size: 8, signed: false };
const VOID: ValueKind = ValueKind::Void;

impl Helper {
    /// Every helper, in a fixed order (the index is the helper's id).
    pub const ALL: [Helper; 34] = [
        Helper::ArgCount,
        Helper::ArgCountError,
        Helper::ToI32,
        Helper::ToU32,
        Helper::ToI8,
        Helper::ToU8,
        Helper::ToI16,
        Helper::ToU16,
        Helper::ToI64,
        Helper::ToU64,
        Helper::ToF32,
        Helper::ToF64,
        Helper::ToBool,
        Helper::ToPtr,
        Helper::ToRecord,
        Helper::PushI32,
        Helper::PushU32,
        Helper::PushI64,
        Helper::PushU64,
        Helper::PushF32,
        Helper::PushF64,
        Helper::PushBool,
        Helper::PushPtr,
        Helper::PushRecord,
        Helper::NewResult,
        Helper::FuncAddr,
        Helper::ErrnoRestore,
        Helper::AfterCall,
        Helper::CallbackEnter,
        Helper::CallbackCall,
        Helper::CallbackLeave,
        Helper::ErrnoLocation,
        Helper::CallbackPcall,
        Helper::CallbackResult,
    ];

    /// The helper's index in [`Helper::ALL`].
    pub fn id(self) -> usize {
        // ALL lists the variants in declaration order (checked by a test).
        self as usize
    }

    /// The C symbol name.
    pub fn name(self) -> &'static str {
        self.c_decl().split('(').next().and_then(|s| s.rsplit([' ', '*']).next()).unwrap_or("")
    }

    /// The C declaration.
    pub fn c_decl(self) -> &'static str {
        match self {
            Helper::ArgCount => "int luaffi_gettop(lua_State *L)",
            Helper::ArgCountError => "void luaffi_argcount_error(lua_State *L, int expected, int got)",
            Helper::ToI32 => "int32_t luaffi_to_i32(lua_State *L, int idx)",
            Helper::ToU32 => "uint32_t luaffi_to_u32(lua_State *L, int idx)",
            Helper::ToI8 => "int32_t luaffi_to_i8(lua_State *L, int idx)",
            Helper::ToU8 => "uint32_t luaffi_to_u8(lua_State *L, int idx)",
            Helper::ToI16 => "int32_t luaffi_to_i16(lua_State *L, int idx)",
            Helper::ToU16 => "uint32_t luaffi_to_u16(lua_State *L, int idx)",
            Helper::ToI64 => "int64_t luaffi_to_i64(lua_State *L, int idx)",
            Helper::ToU64 => "uint64_t luaffi_to_u64(lua_State *L, int idx)",
            Helper::ToF32 => "float luaffi_to_f32(lua_State *L, int idx)",
            Helper::ToF64 => "double luaffi_to_f64(lua_State *L, int idx)",
            Helper::ToBool => "int luaffi_to_bool(lua_State *L, int idx)",
            Helper::ToPtr => "void *luaffi_to_ptr(lua_State *L, int idx, const void *ctype)",
            Helper::ToRecord => "void luaffi_to_record(lua_State *L, int idx, const void *ctype, void *dst)",
            Helper::PushI32 => "void luaffi_push_i32(lua_State *L, int32_t v)",
            Helper::PushU32 => "void luaffi_push_u32(lua_State *L, uint32_t v)",
            Helper::PushI64 => "void luaffi_push_i64(lua_State *L, int64_t v)",
            Helper::PushU64 => "void luaffi_push_u64(lua_State *L, uint64_t v)",
            Helper::PushF32 => "void luaffi_push_f32(lua_State *L, float v)",
            Helper::PushF64 => "void luaffi_push_f64(lua_State *L, double v)",
            Helper::PushBool => "void luaffi_push_bool(lua_State *L, int v)",
            Helper::PushPtr => "void luaffi_push_ptr(lua_State *L, void *p, const void *ctype)",
            Helper::PushRecord => "void luaffi_push_record(lua_State *L, const void *ctype, const void *src)",
            Helper::NewResult => "void *luaffi_new_result(lua_State *L, const void *ctype)",
            Helper::FuncAddr => "void *luaffi_func_addr(lua_State *L)",
            Helper::ErrnoRestore => "lua_State *luaffi_errno_restore(lua_State *L, const void *ret_ctype)",
            Helper::AfterCall => "void luaffi_after_call(lua_State *L, const void *ret_ctype, lua_State *prev)",
            Helper::ErrnoLocation => "int *luaffi_errno_location(void)",
            Helper::CallbackEnter => "lua_State *luaffi_callback_enter(void *cb)",
            Helper::CallbackCall => "void luaffi_callback_call(lua_State *L, int nargs, void *cb)",
            Helper::CallbackLeave => "void luaffi_callback_leave(lua_State *L)",
            Helper::CallbackPcall => {
                "int luaffi_callback_pcall(lua_State *L, int nargs, int nresults, int errfunc, intptr_t ctx, void *k)"
            }
            Helper::CallbackResult => "void luaffi_callback_result(lua_State *L, int status, void *cb)",
        }
    }

    /// The most parameters a helper takes (`CallbackPcall`'s six): what a helper call step's
    /// [`crate::lua::steps::Operands`] hold at most.
    pub const MAX_PARAMS: usize = 6;

    /// Return and parameter kinds, matching [`Helper::c_decl`].
    pub fn kinds(self) -> (ValueKind, &'static [ValueKind]) {
        match self {
            Helper::ArgCount => (I32, &[P]),
            Helper::ArgCountError => (VOID, &[P, I32, I32]),
            Helper::ToI32 => (I32, &[P, I32]),
            Helper::ToU32 | Helper::ToU8 | Helper::ToU16 => (U32, &[P, I32]),
            Helper::ToI8 | Helper::ToI16 => (I32, &[P, I32]),
            Helper::ToI64 => (I64, &[P, I32]),
            Helper::ToU64 => (U64, &[P, I32]),
            Helper::ToF32 => (F32, &[P, I32]),
            Helper::ToF64 => (F64, &[P, I32]),
            Helper::ToBool => (I32, &[P, I32]),
            Helper::ToPtr => (P, &[P, I32, P]),
            Helper::ToRecord => (VOID, &[P, I32, P, P]),
            Helper::PushI32 => (VOID, &[P, I32]),
            Helper::PushU32 => (VOID, &[P, U32]),
            Helper::PushI64 => (VOID, &[P, I64]),
            Helper::PushU64 => (VOID, &[P, U64]),
            Helper::PushF32 => (VOID, &[P, F32]),
            Helper::PushF64 => (VOID, &[P, F64]),
            Helper::PushBool => (VOID, &[P, I32]),
            Helper::PushPtr => (VOID, &[P, P, P]),
            Helper::PushRecord => (VOID, &[P, P, P]),
            Helper::NewResult => (P, &[P, P]),
            Helper::FuncAddr => (P, &[P]),
            Helper::ErrnoRestore => (P, &[P, P]),
            Helper::AfterCall => (VOID, &[P, P, P]),
            Helper::CallbackLeave => (VOID, &[P]),
            Helper::ErrnoLocation => (P, &[]),
            Helper::CallbackEnter => (P, &[P]),
            Helper::CallbackCall => (VOID, &[P, I32, P]),
            // ctx is `intptr_t`: pointer-sized, passed as a pointer is.
            Helper::CallbackPcall => (I32, &[P, I32, I32, I32, P, P]),
            Helper::CallbackResult => (VOID, &[P, I32, P]),
        }
    }

    /// The helper's call plan on `target` (helpers are plain C functions: cdecl).
    pub fn plan(self, target: Target) -> CallPlan {
        let (ret, params) = self.kinds();
        let args: Vec<AbiValue> = params.iter().map(|k| AbiValue::scalar(*k)).collect();
        plan_values(target, CallConv::Cdecl, false, &AbiValue::scalar(ret), &args, args.len())
            .expect("helper signatures are scalar and always plannable")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_names_come_from_their_declarations() {
        assert_eq!(Helper::ToPtr.name(), "luaffi_to_ptr");
        assert_eq!(Helper::CallbackEnter.name(), "luaffi_callback_enter");
        for h in Helper::ALL {
            assert!(h.name().starts_with("luaffi_"), "{h:?}");
            assert_eq!(Helper::ALL[h.id()], h, "ALL is in declaration order");
            let (_, params) = h.kinds();
            let declared = if h.c_decl().ends_with("(void)") { 0 } else { h.c_decl().matches(',').count() + 1 };
            assert_eq!(params.len(), declared, "{h:?} kinds match its C declaration");
            assert!(params.len() <= Helper::MAX_PARAMS, "{h:?} takes more than MAX_PARAMS");
        }
        let most = Helper::ALL.iter().map(|h| h.kinds().1.len()).max();
        assert_eq!(most, Some(Helper::MAX_PARAMS), "MAX_PARAMS is the most a helper takes");
    }

    #[test]
    fn every_helper_plans_on_every_target() {
        for t in Target::ALL {
            for h in Helper::ALL {
                let p = h.plan(t);
                assert_eq!(p.args.len(), h.kinds().1.len());
            }
        }
    }

    #[test]
    fn lua_pcallk_context_is_pointer_sized() {
        // lua_KContext is intptr_t (luaconf.h 5.3+): 4 bytes on i386, so k follows at 20 of
        // the 24-byte cdecl area; as an int64_t it would take k's place.
        let p = Helper::CallbackPcall.plan(Target::X86_LINUX);
        assert_eq!(p.stack_bytes, 24);
        assert_eq!(Helper::CallbackPcall.plan(Target::X64_SYSV).args[4].value.size(8), 8);
    }
}
