//! Per signature: the plan, the stub and thunk programs and their disassembly, as reviewed
//! text. Regenerate with `INSTA_UPDATE=always cargo test -p backend-x64-sysv --test snapshots`
//! and read every changed file.

mod common;

use abi_model::lua::steps::{stub_program, thunk_program};
use abi_model::lua::Backend;
use abi_model::CallbackFrame;
use backend_x64_sysv::{disasm_with, X64SysvBackend};

/// Where the snapshots assemble: an address whose bytes are recognisable in the listing.
const BASE: u64 = 0x10_0000;

fn render(case: &common::Case) -> String {
    let env = common::fake_env(&case.plan);
    let stub = stub_program(&case.plan, 1);
    let frame = CallbackFrame::from_plan(&case.plan);
    let thunk = thunk_program(&frame);
    let stub_code = X64SysvBackend.stub(&stub, BASE, &env).expect("stub lowers");
    let thunk_code = X64SysvBackend.thunk(&thunk, BASE, &env).expect("thunk lowers");
    format!(
        "{}\nplan:\n{}\n\nstub program:\n{}stub ({} bytes):\n{}\nthunk program:\n{}thunk ({} bytes):\n{}",
        case.decl,
        case.plan,
        stub,
        stub_code.len(),
        disasm_with(&stub_code, BASE, &env),
        thunk,
        thunk_code.len(),
        disasm_with(&thunk_code, BASE, &env),
    )
}

#[test]
fn every_curated_signature_matches_its_snapshot() {
    let cases = common::catalogue();
    assert!(cases.len() >= 15);
    for case in &cases {
        insta::assert_snapshot!(case.name, render(case));
    }
}
