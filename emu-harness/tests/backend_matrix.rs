//! Every backend's stubs and thunks against gcc and mingw: every catalogue signature on
//! every target, under the emulator, with mock helpers. Writes its rows for
//! `cargo xtask test-all-abis`.

use emu_harness::matrix::{backend_matrix, inline_stub_matrix, run_all_targets};

#[test]
fn every_backend_stub_and_thunk_matches_the_compilers() {
    let report = run_all_targets("backend", backend_matrix, 12);
    assert!(report.is_empty(), "backend mismatches:\n{report}");
}

#[test]
fn every_inline_stub_matches_the_compilers_on_every_lua_layout() {
    let report = run_all_targets("inline", inline_stub_matrix, 12);
    assert!(report.is_empty(), "inline stub mismatches:\n{report}");
}
