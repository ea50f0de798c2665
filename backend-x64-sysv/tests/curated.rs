//! The curated signatures every backend shows (`abi_model::curated`), in one snapshot: per
//! signature the plan, the stub and thunk programs and their disassembly. The same list
//! appears in the other backends' snapshots, for side-by-side reading.

use abi_model::curated::curated_listing;
use backend_x64_sysv::{disasm_with, X64SysvBackend};

#[test]
fn curated_signatures_match_their_snapshot() {
    insta::assert_snapshot!("curated_x64-sysv", curated_listing(&X64SysvBackend, disasm_with, None, &[]).unwrap());
}

/// The stubs lua-adapter builds for namespace functions on Lua 5.4 and 5.1: the count check,
/// the function address and number arguments and results inline, each with its helper call
/// for the values it does not take.
#[test]
fn curated_inline_stubs_match_their_snapshot() {
    use abi_model::lua_vm::LuaVm;
    use abi_model::steps::Inline;
    let only = ["add", "mix", "float_float", "u64_u64", "widen", "ptr_ptr", "struct_fi"];
    for (name, vm) in [("curated_inline_lua54_x64-sysv", LuaVm::LUA54), ("curated_inline_lua51_x64-sysv", LuaVm::LUA51)] {
        let inline = Inline { vm, func_upvalue: Some(3), errno: true, string_args: u64::MAX };
        insta::assert_snapshot!(name, curated_listing(&X64SysvBackend, disasm_with, Some(&inline), &only).unwrap());
    }
}
