//! Where a Lua VM keeps what a `lua_CFunction` reads and writes, as data, so that a stub can
//! take the common cases (the count check, the called function's address, number, nil,
//! string and record-cdata arguments, number results) inline instead of through helpers that
//! call the Lua C API.
//!
//! These are facts of the Lua implementation, not of the C ABI, but they are facts a backend
//! needs and must not decide: a stub built with a [`LuaVm`] reads `L->top`, the current
//! function's stack slot and the slots' type tags at the offsets given here. Each layout is
//! the one `lstate.h`/`lobject.h` of that Lua version give on one target, as gcc lays the
//! structs out: [`LuaVm::ALL`] on a 64-bit target (LP64 or LLP64: pointers, `lua_Integer`
//! and `lua_Number` are 8 bytes), [`LuaVm::ALL_I386`] on i386 Linux (`gcc -m32`: 4-byte
//! pointers, `double` and `long long` 4-aligned inside structs, so a `TValue` is 12 bytes)
//! and [`LuaVm::ALL_WIN32`] on Win32 (mingw i686: 4-byte pointers, `double` 8-aligned, a
//! `TValue` of 16 bytes). [`LuaVm::for_target`] chooses one. Lua 5.2 on 32-bit x86 packs
//! every value into a `double` (`LUA_NANTRICK`: a value is a number unless its high word is
//! a NaN pattern carrying the type), which no layout here describes: it has no 32-bit
//! layout, and its stubs take every value through the helpers. An embedding must check the
//! layout against the running Lua before it uses one (lua-adapter does, by comparing what
//! the C API wrote with what the layout says); everything the layout does not cover still
//! goes through the helpers.

use crate::plan::ValueKind;
use crate::{Arch, Os, Target};
use std::fmt;

/// How a C function finds its first argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgsBase {
    /// Lua 5.1: `L->base`, at byte `at` of the `lua_State`, is the first argument; the called
    /// function is the slot below it.
    Base {
        /// Offset of `base` in `lua_State`.
        at: u32,
    },
    /// Lua 5.2 and later: `L->ci` at byte `ci` of the `lua_State`, its `func` at byte `func`
    /// of the `CallInfo`; the first argument is the slot after the function.
    CallInfo {
        /// Offset of `ci` in `lua_State`.
        ci: u32,
        /// Offset of `func` in `CallInfo`.
        func: u32,
    },
}

/// Where a string's bytes are, from its `TString`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StrBytes {
    /// At this offset of the `TString`.
    At(u32),
    /// Pointed to by the pointer at this offset (Lua 5.5's long strings).
    Via(u32),
}

/// How strings are tagged and where their bytes are (what `lua_tolstring` returns for one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LuaStrings {
    /// The slot tag of a short string (as stored: with the collectable bit from 5.2 on).
    pub short_tag: u32,
    /// The slot tag of a long string (5.1 has one kind: the same tag).
    pub long_tag: u32,
    /// A short string's bytes.
    pub short_bytes: StrBytes,
    /// A long string's bytes.
    pub long_bytes: StrBytes,
}

/// Where a full userdata's block and length are, from its `Udata`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LuaUserdata {
    /// The slot tag of a full userdata.
    pub tag: u32,
    /// Offset of `size_t len`.
    pub len_at: u32,
    /// Offset of the block (`lua_touserdata`'s result).
    pub block_at: u32,
    /// Offset of `Table *metatable`, which the module writes itself into a userdata it has
    /// just made (what `lua_setmetatable` stores; see lua-adapter's `cdata` for why no
    /// barrier is needed there).
    pub metatable_at: u32,
    /// Lua 5.4 and later: offset of `unsigned short nuvalue`; the block is at `block_at` only
    /// for a userdata made without user values (`Udata0`), so a stub reads one only then.
    pub no_user_values_at: Option<u32>,
}

/// Where `lua_checkstack(L, n)` looks, so a callback's entry can see that the stack already
/// has room for `n` more values and the current `CallInfo`'s `top` already allows them: then
/// `lua_checkstack` would change nothing, and the entry pushes without calling it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StackRoom {
    /// Offset of `stack_last` in `lua_State`: the stack has room for `n` more slots when
    /// `stack_last - top > n` (in slots; every version, lapi.c `lua_checkstack`).
    pub stack_last: u32,
    /// Offset of `ci` (the current `CallInfo *`) in `lua_State`.
    pub ci: u32,
    /// Offset of `top` in `CallInfo`: values may be pushed up to it.
    pub ci_top: u32,
}

/// The memory layout of one Lua version's stack, as a stub uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LuaVm {
    /// The versions it describes, for printing.
    pub name: &'static str,
    /// The pointer size it was derived for (8 or 4); a program for a target of another
    /// pointer size ignores it.
    pub ptr_size: u32,
    /// Offset of `top` (the first free slot) in `lua_State`.
    pub top: u32,
    /// Where the arguments start.
    pub args: ArgsBase,
    /// Bytes per stack slot (`TValue` / `StackValue`).
    pub slot: u32,
    /// Offset of the type tag in a slot.
    pub tag_at: u32,
    /// Bytes of the type tag (1: `lu_byte tt_`; 4: `int tt`).
    pub tag_size: u32,
    /// The tag of an integer (`LUA_VNUMINT`, `LUA_TNUMINT`); `None` before Lua 5.3.
    pub int_tag: Option<u32>,
    /// The tag of a float (`LUA_VNUMFLT`, `LUA_TNUMFLT`; `LUA_TNUMBER` before 5.3).
    pub float_tag: u32,
    /// The tag of a light userdata.
    pub light_userdata_tag: u32,
    /// The tag of nil.
    pub nil_tag: u32,
    /// Strings.
    pub strings: LuaStrings,
    /// Full userdata.
    pub userdata: LuaUserdata,
    /// Offset of `upvalue[0]` in a `CClosure`.
    pub cclosure_upvalues: u32,
    /// What `lua_checkstack` reads.
    pub room: StackRoom,
}

impl LuaVm {
    /// Lua 5.1: `L->base` at 24; `TValue { Value value; int tt; }`; no integers;
    /// `ClosureHeader` carries `isC` and `env`, so the upvalues start at 40.
    pub const LUA51: LuaVm = LuaVm {
        name: "Lua 5.1",
        ptr_size: 8,
        top: 16,
        args: ArgsBase::Base { at: 24 },
        slot: 16,
        tag_at: 8,
        tag_size: 4,
        int_tag: None,
        float_tag: 3,
        light_userdata_tag: 2,
        nil_tag: 0,
        // `union TString { L_Umaxalign dummy; struct { CommonHeader; lu_byte reserved;
        // unsigned int hash; size_t len; } tsv; }`: 24 bytes, getstr(ts) = ts + 1.
        strings: LuaStrings { short_tag: 4, long_tag: 4, short_bytes: StrBytes::At(24), long_bytes: StrBytes::At(24) },
        // `union Udata { L_Umaxalign dummy; struct { CommonHeader; Table *metatable;
        // Table *env; size_t len; } uv; }`: 40 bytes, the block after it (5.2 alike).
        userdata: LuaUserdata { tag: 7, len_at: 32, block_at: 40, metatable_at: 16, no_user_values_at: None },
        cclosure_upvalues: 40,
        // `lua_State { CommonHeader; lu_byte status; StkId top, base; global_State *l_G;
        // CallInfo *ci; const Instruction *savedpc; StkId stack_last; ... }`;
        // `CallInfo { StkId base, func, top; ... }`.
        room: StackRoom { stack_last: 56, ci: 40, ci_top: 16 },
    };

    /// Lua 5.2: `L->ci` at 32, `ci->func` at 0; `int tt_`; no integers; short and long
    /// strings (`ctb(LUA_TSHRSTR)` = 4 | 64, `ctb(LUA_TLNGSTR)` = 20 | 64), bytes after the
    /// 24-byte header as in 5.1 (5.3's `UTString` and 5.4's `contents` are there too).
    pub const LUA52: LuaVm = LuaVm {
        name: "Lua 5.2",
        args: ArgsBase::CallInfo { ci: 32, func: 0 },
        cclosure_upvalues: 32,
        // `lua_State { CommonHeader; lu_byte status; StkId top; global_State *l_G;
        // CallInfo *ci; const Instruction *oldpc; StkId stack_last; ... }` (5.3 puts
        // `nci` into the header's padding: the same offsets); `CallInfo { StkId func, top; ... }`.
        room: StackRoom { stack_last: 48, ci: 32, ci_top: 8 },
        strings: LuaStrings {
            short_tag: 0x44,
            long_tag: 0x54,
            short_bytes: StrBytes::At(24),
            long_bytes: StrBytes::At(24),
        },
        userdata: LuaUserdata { tag: 0x47, ..LuaVm::LUA51.userdata },
        ..LuaVm::LUA51
    };

    /// Lua 5.3: as 5.2, with integers: `LUA_TNUMINT` = 3 | 1 << 4, `LUA_TNUMFLT` = 3.
    /// `Udata { CommonHeader; lu_byte ttuv_; Table *metatable; size_t len; Value user_; }`:
    /// `len` at 24, the block after the 40-byte `UUdata`.
    pub const LUA53: LuaVm = LuaVm {
        name: "Lua 5.3",
        int_tag: Some(0x13),
        float_tag: 3,
        userdata: LuaUserdata { tag: 0x47, len_at: 24, block_at: 40, metatable_at: 16, no_user_values_at: None },
        ..LuaVm::LUA52
    };

    /// Lua 5.4: `lu_byte tt_`; `LUA_VNUMINT` = 3, `LUA_VNUMFLT` = 3 | 1 << 4; a userdata
    /// without user values is a `Udata0 { CommonHeader; unsigned short nuvalue; size_t len;
    /// Table *metatable; bindata }`: `len` at 16, the block at 32.
    pub const LUA54: LuaVm = LuaVm {
        name: "Lua 5.4",
        tag_size: 1,
        int_tag: Some(3),
        float_tag: 0x13,
        userdata: LuaUserdata { tag: 0x47, len_at: 16, block_at: 32, metatable_at: 24, no_user_values_at: Some(10) },
        // `lua_State { CommonHeader; lu_byte status, allowhook; unsigned short nci;
        // StkIdRel top; global_State *l_G; CallInfo *ci; StkIdRel stack_last; ... }`: no
        // `oldpc` before `stack_last` any more (5.5 alike).
        room: StackRoom { stack_last: 40, ci: 32, ci_top: 8 },
        ..LuaVm::LUA53
    };

    /// Lua 5.5: as 5.4, but a long string's `contents` is a pointer to its bytes (external
    /// strings); a short string's bytes start where that pointer would be.
    pub const LUA55: LuaVm = LuaVm {
        name: "Lua 5.5",
        strings: LuaStrings { long_bytes: StrBytes::Via(24), ..LuaVm::LUA54.strings },
        ..LuaVm::LUA54
    };

    /// Lua 5.1 on i386 Linux (`gcc -m32`): 4-byte pointers, `TValue { Value value; int tt; }`
    /// of 12 bytes (`double` 4-aligned in a struct); `lua_State { CommonHeader; lu_byte status;
    /// StkId top, base; global_State *l_G; CallInfo *ci; const Instruction *savedpc; StkId
    /// stack_last; ... }`: `top` at 8, `base` at 12, `ci` at 20, `stack_last` at 28;
    /// `CallInfo { StkId base, func, top; ... }`; `TString` of 16 bytes; `Udata` of 20 with
    /// `len` at 16; the upvalues of a `CClosure` at 20.
    pub const LUA51_I386: LuaVm = LuaVm {
        name: "Lua 5.1 (i386)",
        ptr_size: 4,
        top: 8,
        args: ArgsBase::Base { at: 12 },
        slot: 12,
        strings: LuaStrings { short_tag: 4, long_tag: 4, short_bytes: StrBytes::At(16), long_bytes: StrBytes::At(16) },
        userdata: LuaUserdata { tag: 7, len_at: 16, block_at: 20, metatable_at: 8, no_user_values_at: None },
        cclosure_upvalues: 20,
        room: StackRoom { stack_last: 28, ci: 20, ci_top: 8 },
        ..LuaVm::LUA51
    };

    /// Lua 5.3 on i386 Linux: `lua_State` with `nci` after `status`: `top` at 12, `ci` at 20,
    /// `stack_last` at 28; `CallInfo { StkId func, top; ... }`; a 12-byte `TValue` with `int
    /// tt_` at 8 (`lua_Integer` is `long long`, 4-aligned); `UTString` of 16 bytes;
    /// `Udata { CommonHeader; lu_byte ttuv_; Table *metatable; size_t len; Value user_; }`:
    /// `len` at 12, the block after the 24-byte `UUdata`; upvalues at 16.
    pub const LUA53_I386: LuaVm = LuaVm {
        name: "Lua 5.3 (i386)",
        ptr_size: 4,
        top: 12,
        args: ArgsBase::CallInfo { ci: 20, func: 0 },
        slot: 12,
        strings: LuaStrings { short_bytes: StrBytes::At(16), long_bytes: StrBytes::At(16), ..LuaVm::LUA53.strings },
        userdata: LuaUserdata { tag: 0x47, len_at: 12, block_at: 24, metatable_at: 8, no_user_values_at: None },
        cclosure_upvalues: 16,
        room: StackRoom { stack_last: 28, ci: 20, ci_top: 4 },
        ..LuaVm::LUA53
    };

    /// Lua 5.4 on i386 Linux: `top` at 12, `ci` at 20, `stack_last` at 24; a 12-byte
    /// `StackValue` with `lu_byte tt_` at 8; `TString`'s `contents` at 16; `Udata0 {
    /// CommonHeader; unsigned short nuvalue; size_t len; Table *metatable; bindata }`:
    /// `nuvalue` at 6, `len` at 8, the block at 16; upvalues at 16.
    pub const LUA54_I386: LuaVm = LuaVm {
        name: "Lua 5.4 (i386)",
        ptr_size: 4,
        top: 12,
        args: ArgsBase::CallInfo { ci: 20, func: 0 },
        slot: 12,
        strings: LuaStrings { short_bytes: StrBytes::At(16), long_bytes: StrBytes::At(16), ..LuaVm::LUA54.strings },
        userdata: LuaUserdata { tag: 0x47, len_at: 8, block_at: 16, metatable_at: 12, no_user_values_at: Some(6) },
        cclosure_upvalues: 16,
        room: StackRoom { stack_last: 24, ci: 20, ci_top: 4 },
        ..LuaVm::LUA54
    };

    /// Lua 5.5 on i386 Linux: as 5.4, but `lua_State` has no `nci` before `top` any more:
    /// `top` at 8, `ci` at 16, `stack_last` at 20; a long string's `contents` (at 16) points
    /// to its bytes.
    pub const LUA55_I386: LuaVm = LuaVm {
        name: "Lua 5.5 (i386)",
        top: 8,
        args: ArgsBase::CallInfo { ci: 16, func: 0 },
        strings: LuaStrings { long_bytes: StrBytes::Via(16), ..LuaVm::LUA54_I386.strings },
        room: StackRoom { stack_last: 20, ci: 16, ci_top: 4 },
        ..LuaVm::LUA54_I386
    };

    /// Lua 5.1 on Win32 (mingw i686): as on i386 Linux but `double` is 8-aligned in a
    /// struct: a 16-byte `TValue`, so the upvalues of a `CClosure` start at 24, and the
    /// `Udata` union (aligned as `L_Umaxalign`, which holds a `double`) is 24 bytes.
    pub const LUA51_WIN32: LuaVm = LuaVm {
        name: "Lua 5.1 (Win32)",
        slot: 16,
        cclosure_upvalues: 24,
        userdata: LuaUserdata { block_at: 24, ..LuaVm::LUA51_I386.userdata },
        ..LuaVm::LUA51_I386
    };

    /// Lua 5.3 on Win32: as on i386 Linux with a 16-byte `TValue`.
    pub const LUA53_WIN32: LuaVm = LuaVm { name: "Lua 5.3 (Win32)", slot: 16, ..LuaVm::LUA53_I386 };

    /// Lua 5.4 on Win32: as on i386 Linux with a 16-byte `StackValue`.
    pub const LUA54_WIN32: LuaVm = LuaVm { name: "Lua 5.4 (Win32)", slot: 16, ..LuaVm::LUA54_I386 };

    /// Lua 5.5 on Win32: as on i386 Linux with a 16-byte `StackValue`.
    pub const LUA55_WIN32: LuaVm = LuaVm { name: "Lua 5.5 (Win32)", slot: 16, ..LuaVm::LUA55_I386 };

    /// Every layout, oldest first.
    pub const ALL: [LuaVm; 5] = [LuaVm::LUA51, LuaVm::LUA52, LuaVm::LUA53, LuaVm::LUA54, LuaVm::LUA55];

    /// Every i386 Linux layout, oldest first (no Lua 5.2: see the module documentation).
    pub const ALL_I386: [LuaVm; 4] = [LuaVm::LUA51_I386, LuaVm::LUA53_I386, LuaVm::LUA54_I386, LuaVm::LUA55_I386];

    /// Every Win32 layout, oldest first (no Lua 5.2: see the module documentation).
    pub const ALL_WIN32: [LuaVm; 4] = [LuaVm::LUA51_WIN32, LuaVm::LUA53_WIN32, LuaVm::LUA54_WIN32, LuaVm::LUA55_WIN32];

    /// Every layout of `target`, oldest first.
    pub fn all_for(target: Target) -> &'static [LuaVm] {
        match (target.arch, target.os) {
            (Arch::X86_64, _) => &LuaVm::ALL,
            (Arch::X86, Os::Linux) => &LuaVm::ALL_I386,
            (Arch::X86, Os::Windows) => &LuaVm::ALL_WIN32,
        }
    }

    /// The layout of Lua `version` (`5.1` ... `5.5`) on `target`; `None` for an unknown
    /// version and for Lua 5.2 on 32-bit x86 (NaN packing).
    pub fn for_target(version: &str, target: Target) -> Option<LuaVm> {
        let vm64 = LuaVm::from_version(version)?;
        LuaVm::all_for(target).iter().copied().find(|vm| vm.name.starts_with(vm64.name))
    }

    /// The 64-bit layout of a version written `5.1` ... `5.5`.
    pub fn from_version(v: &str) -> Option<LuaVm> {
        match v {
            "5.1" => Some(LuaVm::LUA51),
            "5.2" => Some(LuaVm::LUA52),
            "5.3" => Some(LuaVm::LUA53),
            "5.4" => Some(LuaVm::LUA54),
            "5.5" => Some(LuaVm::LUA55),
            _ => None,
        }
    }

    /// Whether numbers have an integer subtype (Lua 5.3 and later).
    pub fn has_integers(&self) -> bool {
        self.int_tag.is_some()
    }

    /// Whether a stub converts a Lua number to a C value of `kind` inline. The rules, which
    /// give exactly what the conversion helpers give for these values and leave everything
    /// else to them:
    ///
    /// * an integer `v` (integer tag) to `int64_t`: `v`; to `uint64_t`: `v` when `v >= 0`;
    ///   to a 4-byte unsigned integer: the low 32 bits of `v`; to any other integer of at
    ///   most 4 bytes: `v` narrowed, when `v` fits `int32_t`; to `double`: `(double)v`;
    /// * a float `d` (float tag) to `double`: `d`; to `float`: `(float)d`; to an integer:
    ///   as the integer `(int64_t)d` when `d` is integral and fits `int32_t` (and, for
    ///   `uint64_t`, is not negative).
    pub fn converts_inline(&self, kind: ValueKind) -> bool {
        matches!(kind, ValueKind::Int { size: 1 | 2 | 4 | 8, .. } | ValueKind::F32 | ValueKind::F64)
    }

    /// Whether a stub pushes a C value of `kind` as a Lua number inline: integers of at most
    /// 4 bytes (an integer on 5.3+, a float before), `float` and `double` (a float), and on
    /// 5.3+ `int64_t` and the `uint64_t` values up to `INT64_MAX` (an integer; larger ones
    /// take the helper, which boxes them).
    pub fn pushes_inline(&self, kind: ValueKind) -> bool {
        match kind {
            ValueKind::Int { size, .. } if size <= 4 => true,
            ValueKind::Int { size: 8, .. } => self.has_integers(),
            ValueKind::F32 | ValueKind::F64 => true,
            _ => false,
        }
    }
}

impl fmt::Display for LuaVm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = match self.args {
            ArgsBase::Base { at } => format!("L->base @{at}"),
            ArgsBase::CallInfo { ci, func } => format!("L->ci @{ci} ->func @{func} + 1"),
        };
        write!(
            f,
            "{}: top @{}, args {base}, slot {} (tag @{} x{}",
            self.name, self.top, self.slot, self.tag_at, self.tag_size
        )?;
        if let Some(i) = self.int_tag {
            write!(f, ", int {i:#x}")?;
        }
        write!(f, ", float {:#x}), upvalues @{}", self.float_tag, self.cclosure_upvalues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua54_numbers_are_variants_of_number_in_one_tag_byte() {
        // lobject.h 5.4: makevariant(LUA_TNUMBER, 0) / (LUA_TNUMBER, 1); TValuefields ends in lu_byte tt_.
        assert_eq!((LuaVm::LUA54.int_tag, LuaVm::LUA54.float_tag, LuaVm::LUA54.tag_size), (Some(3), 0x13, 1));
    }

    #[test]
    fn lua53_swaps_the_integer_and_float_variants_of_54() {
        // lobject.h 5.3: LUA_TNUMFLT = LUA_TNUMBER | (0 << 4), LUA_TNUMINT = LUA_TNUMBER | (1 << 4), int tt_.
        assert_eq!((LuaVm::LUA53.int_tag, LuaVm::LUA53.float_tag, LuaVm::LUA53.tag_size), (Some(0x13), 3, 4));
    }

    #[test]
    fn lua55_long_strings_point_to_their_bytes_and_short_ones_hold_them() {
        // lobject.h 5.5: `char *contents` of a long string (external strings); a short
        // string's bytes start at that field (rawgetshrstr).
        assert_eq!(LuaVm::LUA55.strings.long_bytes, StrBytes::Via(24));
        assert_eq!(LuaVm::LUA55.strings.short_bytes, StrBytes::At(24));
        assert_eq!(LuaVm::LUA54.strings.long_bytes, StrBytes::At(24), "5.4: getstr is contents, inline");
    }

    #[test]
    fn strings_and_userdata_carry_the_collectable_bit_from_52_on() {
        // ctb(t) = t | BIT_ISCOLLECTABLE (1 << 6); 5.1 stores the bare type.
        assert_eq!((LuaVm::LUA51.strings.short_tag, LuaVm::LUA51.userdata.tag), (4, 7));
        for vm in [LuaVm::LUA52, LuaVm::LUA53, LuaVm::LUA54, LuaVm::LUA55] {
            assert_eq!((vm.strings.short_tag, vm.strings.long_tag, vm.userdata.tag), (0x44, 0x54, 0x47), "{}", vm.name);
        }
    }

    #[test]
    fn lua54_userdata_block_follows_udata0_only_without_user_values() {
        // udatamemoffset(0) = offsetof(Udata0, bindata) = 32; nuvalue at 10, len at 16.
        let u = LuaVm::LUA54.userdata;
        assert_eq!((u.block_at, u.len_at, u.no_user_values_at), (32, 16, Some(10)));
        assert_eq!(LuaVm::LUA53.userdata.no_user_values_at, None, "5.3 has one user value slot inside Udata");
    }

    #[test]
    fn stack_room_is_read_where_lua_checkstack_reads_it() {
        // lstate.h: 5.1 has `base` between `top` and `l_G` and `savedpc` before
        // `stack_last`; 5.2/5.3 `oldpc`; 5.4 dropped it. CallInfo's `top` follows `func`
        // (5.1: `base, func, top`).
        assert_eq!(LuaVm::LUA51.room, StackRoom { stack_last: 56, ci: 40, ci_top: 16 });
        assert_eq!(LuaVm::LUA52.room, LuaVm::LUA53.room);
        assert_eq!(LuaVm::LUA53.room, StackRoom { stack_last: 48, ci: 32, ci_top: 8 });
        assert_eq!(LuaVm::LUA54.room, StackRoom { stack_last: 40, ci: 32, ci_top: 8 });
        assert_eq!(LuaVm::LUA55.room, LuaVm::LUA54.room);
        for vm in LuaVm::ALL {
            if let ArgsBase::CallInfo { ci, .. } = vm.args {
                assert_eq!(ci, vm.room.ci, "{}: one L->ci", vm.name);
            }
        }
    }

    #[test]
    fn lua51_finds_its_arguments_at_l_base_and_has_no_integers() {
        assert_eq!(LuaVm::LUA51.args, ArgsBase::Base { at: 24 });
        assert!(!LuaVm::LUA51.has_integers());
        assert_eq!(
            LuaVm::LUA51.cclosure_upvalues,
            40,
            "ClosureHeader 5.1: next, tt, marked, isC, nupvalues, gclist, env; then f"
        );
    }

    #[test]
    fn i386_slots_are_12_bytes_and_win32_slots_16() {
        // gcc -m32: sizeof(TValue) / sizeof(StackValue) = 12 (double, long long 4-aligned in
        // structs); i686-w64-mingw32-gcc: 16 (8-aligned).
        for vm in LuaVm::ALL_I386 {
            assert_eq!((vm.slot, vm.ptr_size, vm.tag_at), (12, 4, 8), "{}", vm.name);
        }
        for vm in LuaVm::ALL_WIN32 {
            assert_eq!((vm.slot, vm.ptr_size, vm.tag_at), (16, 4, 8), "{}", vm.name);
        }
    }

    #[test]
    fn i386_lua_state_offsets_are_what_gcc_m32_gives() {
        // offsetof(lua_State, top / base / ci / stack_last), offsetof(CallInfo, top), gcc -m32
        // on lua-src 5.1.5, 5.3.6, 5.4.9, 5.5.1.
        assert_eq!((LuaVm::LUA51_I386.top, LuaVm::LUA51_I386.args), (8, ArgsBase::Base { at: 12 }));
        assert_eq!(LuaVm::LUA51_I386.room, StackRoom { stack_last: 28, ci: 20, ci_top: 8 });
        assert_eq!((LuaVm::LUA53_I386.top, LuaVm::LUA53_I386.args), (12, ArgsBase::CallInfo { ci: 20, func: 0 }));
        assert_eq!(LuaVm::LUA53_I386.room, StackRoom { stack_last: 28, ci: 20, ci_top: 4 });
        assert_eq!((LuaVm::LUA54_I386.top, LuaVm::LUA54_I386.args), (12, ArgsBase::CallInfo { ci: 20, func: 0 }));
        assert_eq!(LuaVm::LUA54_I386.room, StackRoom { stack_last: 24, ci: 20, ci_top: 4 });
        assert_eq!((LuaVm::LUA55_I386.top, LuaVm::LUA55_I386.args), (8, ArgsBase::CallInfo { ci: 16, func: 0 }));
        assert_eq!(LuaVm::LUA55_I386.room, StackRoom { stack_last: 20, ci: 16, ci_top: 4 });
    }

    #[test]
    fn i386_objects_are_what_gcc_m32_gives() {
        // offsetof(CClosure, upvalue); sizeof(TString) / sizeof(UTString) /
        // offsetof(TString, contents); offsetof(Udata, len), the block offset, nuvalue.
        let upvalues: Vec<u32> = LuaVm::ALL_I386.iter().map(|vm| vm.cclosure_upvalues).collect();
        assert_eq!(upvalues, [20, 16, 16, 16]);
        for vm in LuaVm::ALL_I386 {
            assert_eq!(vm.strings.short_bytes, StrBytes::At(16), "{}", vm.name);
        }
        assert_eq!(LuaVm::LUA55_I386.strings.long_bytes, StrBytes::Via(16));
        let ud = |vm: LuaVm| (vm.userdata.len_at, vm.userdata.block_at, vm.userdata.no_user_values_at);
        assert_eq!(ud(LuaVm::LUA51_I386), (16, 20, None));
        assert_eq!(ud(LuaVm::LUA53_I386), (12, 24, None));
        assert_eq!(ud(LuaVm::LUA54_I386), (8, 16, Some(6)));
        assert_eq!(ud(LuaVm::LUA55_I386), (8, 16, Some(6)));
        // offsetof(Udata, uv.metatable) (5.1), offsetof(Udata, metatable) (5.3),
        // offsetof(Udata0, metatable) (5.4, 5.5); mingw i686 gives the same.
        let mt: Vec<u32> = LuaVm::ALL_I386.iter().map(|vm| vm.userdata.metatable_at).collect();
        assert_eq!(mt, [8, 8, 12, 12]);
        let mt: Vec<u32> = LuaVm::ALL_WIN32.iter().map(|vm| vm.userdata.metatable_at).collect();
        assert_eq!(mt, [8, 8, 12, 12]);
    }

    #[test]
    fn userdata_metatables_are_where_gcc_puts_them() {
        // x86-64 gcc, the lua-src 551 sources: offsetof(Udata, uv.metatable) in 5.1 and 5.2,
        // offsetof(Udata, metatable) in 5.3, offsetof(Udata0, metatable) in 5.4 and 5.5.
        let mt: Vec<u32> = LuaVm::ALL.iter().map(|vm| vm.userdata.metatable_at).collect();
        assert_eq!(mt, [16, 16, 16, 24, 24]);
    }

    #[test]
    fn win32_differs_from_i386_only_where_a_double_is_8_aligned() {
        // i686-w64-mingw32-gcc: 5.1's CClosure upvalues at 24 and Udata of 24 bytes (an
        // L_Umaxalign union); everything else as gcc -m32 but the slot size.
        for (w, l) in LuaVm::ALL_WIN32.iter().zip(LuaVm::ALL_I386) {
            let as_linux = LuaVm { name: l.name, slot: 12, ..*w };
            if w.name.contains("5.1") {
                assert_eq!((w.cclosure_upvalues, w.userdata.block_at), (24, 24));
                assert_eq!(LuaVm { cclosure_upvalues: 20, userdata: l.userdata, ..as_linux }, l);
            } else {
                assert_eq!(as_linux, l, "{}", w.name);
            }
        }
    }

    #[test]
    fn lua52_has_no_32_bit_layout_and_every_target_chooses_its_own() {
        // luaconf.h 5.2: LUA_NANTRICK on __i386__ and _M_IX86.
        assert_eq!(LuaVm::for_target("5.2", Target::X86_LINUX), None);
        assert_eq!(LuaVm::for_target("5.2", Target::X86_WIN), None);
        assert_eq!(LuaVm::for_target("5.2", Target::X64_WIN), Some(LuaVm::LUA52));
        assert_eq!(LuaVm::for_target("5.4", Target::X86_LINUX), Some(LuaVm::LUA54_I386));
        assert_eq!(LuaVm::for_target("5.4", Target::X86_WIN), Some(LuaVm::LUA54_WIN32));
        assert_eq!(LuaVm::for_target("5.1", Target::X64_SYSV), Some(LuaVm::LUA51));
        for t in Target::ALL {
            for vm in LuaVm::all_for(t) {
                assert_eq!(vm.ptr_size, t.pointer_size(), "{} on {}", vm.name, t.name());
            }
        }
    }
}
