//! The four targets' listings of every curated signature read side by side: each is in the
//! one format of `emu_harness::listing` (one space after a comma, `0x` lowercase hex, every
//! memory operand sized), and their sections come in the same order. The checker's own
//! catches (`mov rbp,rsp`, `38h`, ...) are tested in `listing`'s unit tests; here a listing
//! with one instruction in another backend's old style must fail.

use abi_model::lua::curated::{curated_listing, curated_plans, plans_listing};
use abi_model::Target;
use emu_harness::listing::{disassembler, format_violations};
use emu_harness::matrix::backend_for;

/// The section lines: signature headers, `plan:`, `stub program:`, `stub (N bytes):` without
/// its size, ..., which every target's listing has in the same order.
fn skeleton(listing: &str) -> Vec<&str> {
    let sections =
        listing.lines().filter(|l| l.starts_with("====") || l.ends_with(':') || l.starts_with("(no callback"));
    sections.map(|l| l.split(" (").next().unwrap_or(l)).collect()
}

#[test]
fn every_curated_signature_lists_alike_on_every_target() {
    let mut skeletons = Vec::new();
    for target in Target::ALL {
        let backend = backend_for(target);
        for c in curated_plans(target) {
            let text = plans_listing(backend.as_ref(), disassembler(target), None, std::slice::from_ref(&c)).unwrap();
            assert_eq!(format_violations(&text), Vec::<String>::new(), "{target}: {}", c.curated.name);
        }
        let text = curated_listing(backend.as_ref(), disassembler(target), None, &[]).unwrap();
        skeletons.push((target, skeleton(&text).into_iter().map(str::to_string).collect::<Vec<_>>()));
    }
    let (first, lines) = &skeletons[0];
    assert!(lines.len() > 100, "{lines:?}");
    for (target, other) in &skeletons[1..] {
        assert_eq!(other, lines, "{target} lists the curated signatures like {first}");
    }
}

#[test]
fn a_listing_with_one_line_in_another_style_fails() {
    let target = Target::X64_WIN;
    let text = curated_listing(backend_for(target).as_ref(), disassembler(target), None, &["add"]).unwrap();
    assert!(format_violations(&text).is_empty());
    for (from, to) in [("mov rbp, rsp", "mov rbp,rsp"), ("sub rsp, 0x58", "sub rsp, 58h")] {
        assert!(text.contains(from), "{text}");
        let drifted = text.replacen(from, to, 1);
        let found = format_violations(&drifted);
        assert_eq!(found.len(), 1, "`{to}` is caught: {found:?}");
    }
}
