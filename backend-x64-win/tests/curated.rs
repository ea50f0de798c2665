//! The listings of this backend, one snapshot per topic, in the one listing format
//! (`emu_harness::listing`):
//! - `curated_x64-win`: the curated signatures every backend shows (`abi_model::lua::curated`),
//!   per signature the plan, the stub and thunk programs and their disassembly, for
//!   side-by-side reading with the other backends;
//! - `curated_inline_lua54_x64-win`, `curated_inline_lua51_x64-win`: the stubs and thunks
//!   lua-adapter builds, with their inline steps;
//! - `by_reference_x64-win`: what only the Microsoft convention has, beyond that list: a
//!   2-byte record in a register, by-reference copies passed on the stack, the hidden return
//!   pointer shifting the fourth argument to the stack.
//!
//! Regenerate with `INSTA_UPDATE=always cargo test -p backend-x64-win --test curated` and read
//! every changed line.

mod common;

use abi_model::lua::curated::{curated_listing, plans_listing, Curated, CuratedPlan};
use backend_x64_win::Win64Backend;
use emu_harness::listing::{assert_format, disasm64};

/// The topic's signatures, from the shared catalogue (`common`).
const BY_REFERENCE: &[&str] = &["s8_by_value", "by_reference_on_stack", "sret_shifts_args_to_stack"];

#[test]
fn curated_signatures_match_their_snapshot() {
    let text = curated_listing(&Win64Backend, disasm64, None, &[]).unwrap();
    assert_format(&text);
    insta::assert_snapshot!("curated_x64-win", text);
}

#[test]
fn by_reference_records_match_their_snapshot() {
    let cases = common::cases();
    let plans: Vec<CuratedPlan> = BY_REFERENCE
        .iter()
        .map(|&name| {
            let case = cases.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("{name} is in the catalogue"));
            CuratedPlan { curated: Curated { name, decl: case.decl, varargs: &[] }, plan: case.plan.clone() }
        })
        .collect();
    let text = plans_listing(&Win64Backend, disasm64, None, &plans).unwrap();
    assert_format(&text);
    insta::assert_snapshot!("by_reference_x64-win", text);
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
        let text = curated_listing(&Win64Backend, disasm64, Some(&inline), &only).unwrap();
        assert_format(&text);
        insta::assert_snapshot!(name, text);
    }
}
