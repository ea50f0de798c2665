//! Every backend's stubs and thunks against gcc and mingw: every catalogue signature on
//! every target, under the emulator, with mock helpers. Writes its rows for
//! `cargo xtask test-all-abis`.

use abi_model::Target;
use emu_harness::catalogue::catalogue;
use emu_harness::matrix::backend_matrix;
use emu_harness::report::write_rows;
use rayon::prelude::*;

#[test]
fn every_backend_stub_and_thunk_matches_the_compilers() {
    let results: Vec<_> = Target::ALL.par_iter().map(|&t| (t, backend_matrix(&catalogue(t)))).collect();
    let mut rows = Vec::new();
    let mut report = String::new();
    for (t, r) in results {
        let (target_rows, failures) = r.unwrap_or_else(|e| panic!("{t}: {e}"));
        rows.extend(target_rows);
        for f in failures.iter().take(12) {
            report.push_str(&format!("{t} {}: {}\n    {}\n", f.direction, f.c_decl, f.mismatch));
        }
        if failures.len() > 12 {
            report.push_str(&format!("{t}: ... and {} more\n", failures.len() - 12));
        }
    }
    write_rows("backend", &rows).expect("write the matrix rows");
    for r in &rows {
        eprintln!("{:<10} {:<5} {:<9} checked {:>6} failed {:>5}", r.target, r.subject, r.direction, r.checked, r.failed);
    }
    assert!(report.is_empty(), "backend mismatches:\n{report}");
}
