//! abi-model's record layouts against gcc's and mingw's, on all four targets, from the
//! committed layout fixtures; and the committed fixture sources against the catalogue.

use abi_model::Target;
use emu_harness::catalogue::catalogue;
use emu_harness::cgen;
use emu_harness::layout_check::{check_committed, check_layouts, fixture_dir, read_layouts};
use emu_harness::report::{write_rows, MatrixRow};

/// How many mismatches to print in full before summarising.
const SHOWN: usize = 15;

fn check_target(target: Target) {
    let cat = catalogue(target);
    let (checked, mismatches) = check_committed(&cat).unwrap_or_else(|e| panic!("{target}: {e}"));
    assert_eq!(checked, cat.spec.records.len());
    let mut records: Vec<usize> = mismatches.iter().map(|m| m.record).collect();
    records.dedup();
    let row = MatrixRow {
        target: target.name().into(),
        subject: "layout".into(),
        direction: "data".into(),
        checked: checked as u64,
        failed: records.len() as u64,
    };
    write_rows(&format!("layout-{}", target.name()), &[row]).expect("write the matrix row");
    if mismatches.is_empty() {
        return;
    }
    let shown: Vec<String> = mismatches.iter().take(SHOWN).map(ToString::to_string).collect();
    panic!(
        "{target}: {} mismatches in {} of {checked} records; first {}:\n{}",
        mismatches.len(),
        records.len(),
        shown.len(),
        shown.join("\n")
    );
}

#[test]
fn x86_linux_layouts_match_gcc() {
    check_target(Target::X86_LINUX);
}

#[test]
fn x86_win_layouts_match_mingw() {
    check_target(Target::X86_WIN);
}

#[test]
fn x64_sysv_layouts_match_gcc() {
    check_target(Target::X64_SYSV);
}

#[test]
fn x64_win_layouts_match_mingw() {
    check_target(Target::X64_WIN);
}

#[test]
fn the_check_reports_a_wrong_layout() {
    // Corrupt the compiler's answers for one record with a bit-field and one with members, and
    // make sure each corruption is reported with the record's C text.
    let cat = catalogue(Target::X64_SYSV);
    let path = fixture_dir(cat.target).join("layout.elf");
    let bytes = std::fs::read(&path).expect("committed layout fixture");
    let mut layouts = read_layouts(&bytes, &cat).expect("readable layout tables");
    let with_offsets = layouts.iter().position(|l| !l.offsets.is_empty()).expect("a record with members");
    layouts[with_offsets].offsets[0] += 1;
    layouts[with_offsets].size += 8;
    let with_bits = layouts.iter().position(|l| l.bits.iter().any(Option::is_some)).expect("a record with a bit-field");
    let b = layouts[with_bits].bits.iter_mut().find(|b| b.is_some()).expect("a bit-field");
    *b = b.map(|(o, w)| (o + 1, w));
    let mismatches = check_layouts(&cat, &layouts);
    assert!(mismatches.iter().any(|m| m.record == with_offsets && m.member.starts_with("offsetof(")), "{mismatches:?}");
    assert!(mismatches.iter().any(|m| m.record == with_offsets && m.member == "sizeof"));
    let bit = mismatches
        .iter()
        .find(|m| m.record == with_bits && m.member.starts_with("bits of "))
        .expect("the bit-field is reported");
    assert!(bit.to_string().contains(&format!("R{with_bits} {{")), "the report shows the C definition: {bit}");
}

#[test]
fn committed_sources_are_what_the_catalogue_generates() {
    for target in Target::ALL {
        let cat = catalogue(target);
        for src in cgen::sources(&cat) {
            let path = fixture_dir(target).join(&src.name);
            let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                committed == src.text,
                "{}: differs from the catalogue; run `cargo xtask fixtures`",
                path.display()
            );
        }
    }
}
