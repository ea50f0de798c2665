//! What `README.md` says in prose about the target facts. Its code examples are doctests
//! (`lib.rs` includes the README), each asserting the text it shows.

#[test]
fn target_facts_read_as_the_readme_says() {
    use abi_model::{Ext, Gpr, Target};
    let t = Target::X64_WIN;
    assert_eq!(t.callee_saved_gprs().len(), 8);
    assert!(t.scratch_gprs().contains(&Gpr::R11));
    assert_eq!((t.stack_align(), t.shadow_space(), t.red_zone()), (16, 32, 0));
    assert_eq!(Ext::widening(abi_model::ValueKind::Int { size: 2, signed: true }), Ext::Sign);
}
