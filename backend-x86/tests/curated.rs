//! The listings of this backend, one snapshot per topic and flavour (i386 Linux, Win32), in
//! the one listing format (`emu_harness::listing`):
//! - `curated_<target>`: the curated signatures every backend shows
//!   (`abi_model::lua::curated`), for side-by-side reading with the x86-64 backends;
//! - `conventions_<target>`: what only x86-32 has, beyond that list: stdcall, fastcall and
//!   thiscall meeting hidden return pointers, 64-bit and small arguments, small records
//!   returned in registers, a float promoted to double through `...`;
//! - `curated_inline_lua54_<target>`, `curated_inline_lua51_<target>`: the stubs and thunks
//!   lua-adapter builds, with their inline steps, on that flavour's Lua stack layouts.
//!
//! Regenerate with `INSTA_UPDATE=always cargo test -p backend-x86 --test curated` and read
//! every changed line.

mod common;

use abi_model::lua::curated::{curated_listing, plans_listing, Curated, CuratedPlan};
use abi_model::Target;
use backend_x86::X86Backend;
use emu_harness::listing::{assert_format, disassembler};

/// The topic's signatures from the shared catalogue (`common`), with the extra arguments of
/// the variadic call shown.
const CONVENTIONS: &[(&str, &[&str])] = &[
    ("ret_s4", &[]),
    ("ret_sd", &[]),
    ("ret_s12_stdcall", &[]),
    ("thiscall_sret", &[]),
    ("ret_bool", &[]),
    ("fastcall_i64_first", &[]),
    ("widen_fastcall", &[]),
    ("printf", &["double", "int", "float"]),
];

fn conventions(target: Target) -> Vec<CuratedPlan> {
    let cases = common::catalogue();
    CONVENTIONS
        .iter()
        .map(|&(name, varargs)| {
            let flavour = if target == Target::X86_LINUX { "linux" } else { "win" };
            let case = cases
                .iter()
                .find(|c| c.target == target && c.name == format!("{flavour}_{name}"))
                .unwrap_or_else(|| panic!("{name} is in the catalogue"));
            // The section header says what the variadic call passes.
            let decl = case.decl.split(" called with").next().unwrap_or(case.decl);
            CuratedPlan { curated: Curated { name, decl, varargs }, plan: case.plan.clone() }
        })
        .collect()
}

#[test]
fn curated_signatures_match_their_snapshot() {
    for target in [Target::X86_LINUX, Target::X86_WIN] {
        let backend = X86Backend::new(target).unwrap();
        let text = curated_listing(&backend, disassembler(target), None, &[]).unwrap();
        assert_format(&text);
        insta::assert_snapshot!(format!("curated_{target}"), text);
    }
}

#[test]
fn x86_conventions_match_their_snapshot() {
    for target in [Target::X86_LINUX, Target::X86_WIN] {
        let backend = X86Backend::new(target).unwrap();
        let text = plans_listing(&backend, disassembler(target), None, &conventions(target)).unwrap();
        assert_format(&text);
        insta::assert_snapshot!(format!("conventions_{target}"), text);
    }
}

/// The stubs and thunks lua-adapter's inline steps give namespace functions and callbacks
/// on Lua 5.4 and 5.1, per flavour (its own slot size): the count check, the function
/// address, number, pointer and record arguments and number results inline, each with its
/// helper call for the values it does not take.
#[test]
fn curated_inline_stubs_match_their_snapshot() {
    use abi_model::lua::vm::LuaVm;
    let only = ["add", "mix", "float_float", "u64_u64", "widen", "ptr_ptr", "struct_fi"];
    for (target, flavour) in [(Target::X86_LINUX, "x86-linux"), (Target::X86_WIN, "x86-win")] {
        let backend = X86Backend::new(target).unwrap();
        for version in ["5.4", "5.1"] {
            let vm = LuaVm::for_target(version, target).expect("a 32-bit layout");
            let inline = abi_model::lua::curated::listing_inline(vm);
            let name = format!("curated_inline_lua{}_{flavour}", version.replace('.', ""));
            let text = curated_listing(&backend, disassembler(target), Some(&inline), &only).unwrap();
            assert_format(&text);
            insta::assert_snapshot!(name, text);
        }
    }
}
