//! The curated signatures every backend shows (`abi_model::lua::curated`), in one snapshot: per
//! signature the plan, the stub and thunk programs and their disassembly. The same list
//! appears in the other backends' snapshots, for side-by-side reading.

use abi_model::lua::curated::curated_listing;
use backend_x64_win::{disasm_with_env, Win64Backend};

#[test]
fn curated_signatures_match_their_snapshot() {
    insta::assert_snapshot!("curated_x64-win", curated_listing(&Win64Backend, disasm_with_env, None, &[]).unwrap());
}

/// The stubs and thunks lua-adapter builds on Lua 5.4 and 5.1: the count check, the function
/// address, number, string and record-cdata arguments, number results, errno and the
/// callback's entry, call and pop inline, each with its helper call for the values it does
/// not take. The same signatures as x64-sysv's inline snapshots, for side-by-side reading.
#[test]
fn curated_inline_stubs_match_their_snapshot() {
    use abi_model::lua::vm::LuaVm;
    let only = ["add", "mix", "float_float", "u64_u64", "widen", "ptr_ptr", "struct_fi"];
    for (name, vm) in [("curated_inline_lua54_x64-win", LuaVm::LUA54), ("curated_inline_lua51_x64-win", LuaVm::LUA51)] {
        let inline = abi_model::lua::curated::listing_inline(vm);
        insta::assert_snapshot!(name, curated_listing(&Win64Backend, disasm_with_env, Some(&inline), &only).unwrap());
    }
}
