//! The 64-bit Lua stack layouts (`LuaVm::LUA51` ... `LUA55`) hold on Windows x64 (LLP64) as
//! on x86-64 System V (LP64): the structs the inline steps read, declared as each Lua
//! version's `lstate.h` / `lobject.h` declare them (the prefix up to the last field read,
//! `L_Umaxalign`'s `long` included), laid out by abi-model under each target's rules, give
//! exactly the offsets the layouts name. `long`, the one C type the two data models size
//! differently, is in no field they locate nor before one, and does not change the 8-byte
//! alignment of `L_Umaxalign`; so one layout per version serves both targets.
#![cfg(feature = "lua")]

use abi_model::cdef::{cdef, CScope, TagKind};
use abi_model::lua::vm::{ArgsBase, LuaVm, StrBytes};
use abi_model::{Target, TypeTable};

/// `Value` and `TValue` of 5.1-5.3 (`int tt`), the headers, and the 5.1/5.2 unions the
/// string and userdata bytes follow.
const LUA51: &str = "
typedef union { void *gc; void *p; double n; int b; } Value;
typedef struct { Value value; int tt; } TValue;
typedef union { double u; void *s; long l; } L_Umaxalign;
union TString { L_Umaxalign dummy; struct { void *next; unsigned char tt; unsigned char marked;
  unsigned char reserved; unsigned int hash; size_t len; } tsv; };
union Udata { L_Umaxalign dummy; struct { void *next; unsigned char tt; unsigned char marked;
  void *metatable; void *env; size_t len; } uv; };
struct lua_State { void *next; unsigned char tt; unsigned char marked; unsigned char status;
  TValue *top; TValue *base; void *l_G; void *ci; const unsigned int *savedpc; TValue *stack_last; };
struct CallInfo { TValue *base; TValue *func; TValue *top; };
struct CClosure { void *next; unsigned char tt; unsigned char marked; unsigned char isC;
  unsigned char nupvalues; void *gclist; void *env; void *f; TValue upvalue[1]; };
";

const LUA52: &str = "
typedef union { void *gc; void *p; double n; int b; void *f; } Value;
typedef struct { Value value_; int tt_; } TValue;
typedef union { double u; void *s; long l; } L_Umaxalign;
union TString { L_Umaxalign dummy; struct { void *next; unsigned char tt; unsigned char marked;
  unsigned char extra; unsigned int hash; size_t len; } tsv; };
union Udata { L_Umaxalign dummy; struct { void *next; unsigned char tt; unsigned char marked;
  void *metatable; void *env; size_t len; } uv; };
struct lua_State { void *next; unsigned char tt; unsigned char marked; unsigned char status;
  TValue *top; void *l_G; void *ci; const unsigned int *oldpc; TValue *stack_last; };
struct CallInfo { TValue *func; TValue *top; };
struct CClosure { void *next; unsigned char tt; unsigned char marked; unsigned char nupvalues;
  void *gclist; void *f; TValue upvalue[1]; };
";

const LUA53: &str = "
typedef union { void *gc; void *p; int b; void *f; long long i; double n; } Value;
typedef struct { Value value_; int tt_; } TValue;
typedef union { double n; double u; void *s; long long i; long l; } L_Umaxalign;
struct TString { void *next; unsigned char tt; unsigned char marked; unsigned char extra;
  unsigned char shrlen; unsigned int hash; union { size_t lnglen; struct TString *hnext; } u; };
union UTString { L_Umaxalign dummy; struct TString tsv; };
struct Udata { void *next; unsigned char tt; unsigned char marked; unsigned char ttuv_;
  void *metatable; size_t len; Value user_; };
union UUdata { L_Umaxalign dummy; struct Udata uv; };
struct lua_State { void *next; unsigned char tt; unsigned char marked; unsigned short nci;
  unsigned char status; TValue *top; void *l_G; void *ci; const unsigned int *oldpc; TValue *stack_last; };
struct CallInfo { TValue *func; TValue *top; };
struct CClosure { void *next; unsigned char tt; unsigned char marked; unsigned char nupvalues;
  void *gclist; void *f; TValue upvalue[1]; };
";

/// 5.4 and 5.5 share everything read but a long string's bytes (`contents`: inline in 5.4,
/// a pointer in 5.5).
fn lua54(contents: &str) -> String {
    format!(
        "
typedef union {{ void *gc; void *p; void *f; long long i; double n; unsigned char ub; }} Value;
typedef struct {{ Value value_; unsigned char tt_; }} TValue;
typedef union {{ TValue val; struct {{ Value value_; unsigned char tt_; unsigned short delta; }} tbclist; }} StackValue;
typedef union {{ StackValue *p; ptrdiff_t offset; }} StkIdRel;
struct TString {{ void *next; unsigned char tt; unsigned char marked; unsigned char extra;
  signed char shrlen; unsigned int hash; union {{ size_t lnglen; struct TString *hnext; }} u; {contents}; }};
struct Udata0 {{ void *next; unsigned char tt; unsigned char marked; unsigned short nuvalue;
  size_t len; void *metatable; union {{ double n; double u; void *s; long long i; long l; }} bindata; }};
struct lua_State {{ void *next; unsigned char tt; unsigned char marked; unsigned char status;
  unsigned char allowhook; unsigned short nci; StkIdRel top; void *l_G; void *ci; StkIdRel stack_last; }};
struct CallInfo {{ StkIdRel func; StkIdRel top; }};
struct CClosure {{ void *next; unsigned char tt; unsigned char marked; unsigned char nupvalues;
  void *gclist; void *f; TValue upvalue[1]; }};
"
    )
}

/// Layouts of the declarations `text` on `target`.
struct Decls {
    table: TypeTable,
    scope: CScope,
}

impl Decls {
    fn new(target: Target, text: &str) -> Decls {
        let mut table = TypeTable::new(target);
        let mut scope = CScope::new(&mut table);
        cdef(&mut table, &mut scope, text, &[]).unwrap_or_else(|e| panic!("{target}: {e}"));
        Decls { table, scope }
    }

    fn record(&self, name: &str) -> abi_model::TypeId {
        [TagKind::Struct, TagKind::Union]
            .into_iter()
            .find_map(|k| self.scope.tag(&self.table, k, name))
            .or_else(|| self.scope.typedef(name).map(|q| q.id))
            .unwrap_or_else(|| panic!("{name} declared"))
    }

    fn size_of(&self, name: &str) -> u32 {
        self.table.size_of(self.record(name)).expect("sized") as u32
    }

    /// Member `field` of the record type `record`, and its offset.
    fn member(&self, record: abi_model::TypeId, field: &str) -> (abi_model::TypeId, u32) {
        let body = self.table.record_body(record).expect("a defined record");
        let i = body.fields.iter().position(|f| f.name.as_deref() == Some(field)).expect("the field");
        (body.fields[i].ty.id, body.layout.fields[i].offset as u32)
    }

    /// `offsetof(name, field)`.
    fn offset(&self, name: &str, field: &str) -> u32 {
        self.member(self.record(name), field).1
    }

    /// `sizeof(((name *)0)->field)`.
    fn size_of_field(&self, name: &str, field: &str) -> u32 {
        self.table.size_of(self.member(self.record(name), field).0).expect("sized") as u32
    }

    /// `offsetof(name, member.field)`.
    fn offset_in_member(&self, name: &str, member: &str, field: &str) -> u32 {
        let (ty, at) = self.member(self.record(name), member);
        at + self.member(ty, field).1
    }
}

/// What `vm` says, recomputed from the declarations on `target`.
fn from_declarations(vm: LuaVm, target: Target, text: &str) -> LuaVm {
    let d = Decls::new(target, text);
    let modern = vm.tag_size == 1;
    let slot = if modern { d.size_of("StackValue") } else { d.size_of("TValue") };
    let tag_field = if vm.name == "Lua 5.1" { "tt" } else { "tt_" };
    let string_bytes = |long: bool| match vm.name {
        "Lua 5.1" | "Lua 5.2" => StrBytes::At(d.size_of("TString")),
        "Lua 5.3" => StrBytes::At(d.size_of("UTString")),
        "Lua 5.5" if long => StrBytes::Via(d.offset("TString", "contents")),
        _ => StrBytes::At(d.offset("TString", "contents")),
    };
    let mut got = vm;
    got.top = d.offset("lua_State", "top");
    got.args = match vm.args {
        ArgsBase::Base { .. } => ArgsBase::Base { at: d.offset("lua_State", "base") },
        ArgsBase::CallInfo { .. } => {
            ArgsBase::CallInfo { ci: d.offset("lua_State", "ci"), func: d.offset("CallInfo", "func") }
        }
    };
    got.slot = slot;
    got.tag_at = d.offset("TValue", tag_field);
    got.tag_size = d.size_of_field("TValue", tag_field);
    got.strings.short_bytes = string_bytes(false);
    got.strings.long_bytes = string_bytes(true);
    got.cclosure_upvalues = d.offset("CClosure", "upvalue");
    got.room.stack_last = d.offset("lua_State", "stack_last");
    got.room.ci = d.offset("lua_State", "ci");
    got.room.ci_top = d.offset("CallInfo", "top");
    match vm.name {
        "Lua 5.1" | "Lua 5.2" => {
            got.userdata.len_at = d.offset_in_member("Udata", "uv", "len");
            got.userdata.block_at = d.size_of("Udata");
        }
        "Lua 5.3" => {
            got.userdata.len_at = d.offset("Udata", "len");
            got.userdata.block_at = d.size_of("UUdata");
        }
        _ => {
            got.userdata.len_at = d.offset("Udata0", "len");
            got.userdata.block_at = d.offset("Udata0", "bindata");
            got.userdata.no_user_values_at = Some(d.offset("Udata0", "nuvalue"));
        }
    }
    got
}

fn declarations_of(vm: LuaVm) -> String {
    match vm.name {
        "Lua 5.1" => LUA51.into(),
        "Lua 5.2" => LUA52.into(),
        "Lua 5.3" => LUA53.into(),
        "Lua 5.4" => lua54("char contents[1]"),
        "Lua 5.5" => lua54("char *contents"),
        other => panic!("no declarations for {other}"),
    }
}

#[test]
fn every_64_bit_layout_is_what_its_declarations_give_on_lp64_and_llp64() {
    for vm in LuaVm::ALL {
        for target in [Target::X64_SYSV, Target::X64_WIN] {
            assert_eq!(from_declarations(vm, target, &declarations_of(vm)), vm, "{} on {target}", vm.name);
        }
    }
}

#[test]
fn a_long_in_place_of_a_pointer_moves_fields_on_llp64_only_and_is_caught() {
    // The check can fail: were `top` and `l_G` of Lua 5.3's lua_State `long`s (pointer-sized
    // on LP64 only), nothing would move on x86-64 System V, but `ci` and `stack_last` would
    // on Windows x64.
    let vm = LuaVm::LUA53;
    let text = LUA53.replace("TValue *top; void *l_G;", "long top; long l_G;");
    assert_ne!(text, LUA53);
    assert_eq!(from_declarations(vm, Target::X64_SYSV, &text), vm, "LP64: a long is 8 bytes, nothing moves");
    let llp64 = from_declarations(vm, Target::X64_WIN, &text);
    assert_eq!((llp64.room.ci, llp64.room.stack_last), (24, 40), "LLP64: a long is 4 bytes");
    assert_ne!(llp64, vm);
}
