//! abi-model against gcc and mingw: every catalogue signature on every target, in both
//! directions, under the emulator. Writes its rows for `cargo xtask test-all-abis`.

use abi_model::Target;
use emu_harness::catalogue::catalogue;
use emu_harness::matrix::plan_matrix;
use emu_harness::report::write_rows;
use rayon::prelude::*;

#[test]
fn every_catalogue_signature_matches_the_compilers_in_both_directions() {
    let results: Vec<_> = Target::ALL.par_iter().map(|&t| (t, plan_matrix(&catalogue(t)))).collect();
    let mut rows = Vec::new();
    let mut report = String::new();
    for (t, r) in results {
        let (target_rows, failures) = r.unwrap_or_else(|e| panic!("{t}: {e}"));
        rows.extend(target_rows);
        for f in failures.iter().take(15) {
            report.push_str(&format!("{t} {}: {}\n    {}\n", f.direction, f.c_decl, f.mismatch));
        }
        if failures.len() > 15 {
            report.push_str(&format!("{t}: ... and {} more\n", failures.len() - 15));
        }
    }
    write_rows("plan", &rows).expect("write the matrix rows");
    for r in &rows {
        eprintln!("{:<10} plan {:<9} checked {:>6} failed {:>5}", r.target, r.direction, r.checked, r.failed);
    }
    assert!(report.is_empty(), "plan mismatches:\n{report}");
}
