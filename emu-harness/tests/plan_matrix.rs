//! abi-model against gcc and mingw: every catalogue signature on every target, in both
//! directions, under the emulator. Writes its rows for `cargo xtask test-all-abis`.

use emu_harness::matrix::{plan_matrix, run_all_targets};

#[test]
fn every_catalogue_signature_matches_the_compilers_in_both_directions() {
    let report = run_all_targets("plan", plan_matrix, 15);
    assert!(report.is_empty(), "plan mismatches:\n{report}");
}
