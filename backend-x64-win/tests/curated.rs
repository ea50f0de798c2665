//! The curated signatures every backend shows (`abi_model::lua::curated`), in one snapshot: per
//! signature the plan, the stub and thunk programs and their disassembly. The same list
//! appears in the other backends' snapshots, for side-by-side reading.

use abi_model::lua::curated::curated_listing;
use backend_x64_win::{disasm_with_env, Win64Backend};

#[test]
fn curated_signatures_match_their_snapshot() {
    insta::assert_snapshot!("curated_x64-win", curated_listing(&Win64Backend, disasm_with_env, None, &[]).unwrap());
}
