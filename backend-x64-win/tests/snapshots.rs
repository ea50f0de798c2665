//! Snapshots: per curated signature, the plan, the stub's steps and disassembly, and (for
//! fixed-argument signatures) the thunk's steps and disassembly. Reviewed line by line
//! against the Microsoft x64 convention; the review notes are in the crate's report.

mod common;

use backend_x64_win::{disasm_with_env, lower_stub, lower_thunk};
use common::{cases, env, BASE};
use std::fmt::Write;

#[test]
fn curated_signatures() {
    let env = env();
    for case in cases() {
        let mut text = String::new();
        writeln!(text, "{}\nplan:\n{}", case.decl, case.plan).unwrap();
        let stub = case.stub_program();
        let code = lower_stub(&stub, BASE, &env).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        writeln!(text, "stub:\n{stub}stub code ({} bytes):\n{}", code.len(), disasm_with_env(&code, BASE, &env))
            .unwrap();
        if let Some(thunk) = case.thunk_program() {
            let code = lower_thunk(&thunk, BASE, &env).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            writeln!(text, "thunk:\n{thunk}thunk code ({} bytes):\n{}", code.len(), disasm_with_env(&code, BASE, &env))
                .unwrap();
        }
        insta::assert_snapshot!(case.name, text);
    }
}
