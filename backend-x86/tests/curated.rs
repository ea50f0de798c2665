//! The curated signatures every backend shows (`abi_model::lua::curated`), one snapshot per
//! flavour (i386 Linux, Win32): per signature the plan, the stub and thunk programs and their
//! disassembly. The same list appears in the x86-64 backends' snapshots.

use abi_model::lua::curated::curated_listing;
use abi_model::Target;
use backend_x86::{disasm_with, X86Backend};

#[test]
fn curated_signatures_match_their_snapshot_on_i386_linux() {
    let backend = X86Backend::new(Target::X86_LINUX).unwrap();
    insta::assert_snapshot!("curated_x86-linux", curated_listing(&backend, disasm_with, None, &[]).unwrap());
}

#[test]
fn curated_signatures_match_their_snapshot_on_win32() {
    let backend = X86Backend::new(Target::X86_WIN).unwrap();
    insta::assert_snapshot!("curated_x86-win", curated_listing(&backend, disasm_with, None, &[]).unwrap());
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
            insta::assert_snapshot!(name, curated_listing(&backend, disasm_with, Some(&inline), &only).unwrap());
        }
    }
}
