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
