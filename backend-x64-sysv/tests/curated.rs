//! The curated signatures every backend shows (`abi_model::curated`), in one snapshot: per
//! signature the plan, the stub and thunk programs and their disassembly. The same list
//! appears in backend-x86's and the other x86-64 backend's snapshots, for side-by-side reading.

use abi_model::curated::curated_plans;
use abi_model::helpers::Helper;
use abi_model::steps::{stub_program, thunk_program};
use abi_model::{Backend, CallbackFrame, CodeEnv, Target};
use backend_x64_sysv::{disasm_with, X64SysvBackend};

const BASE: u64 = 0x10_0000;

fn env(nargs: usize) -> CodeEnv {
    CodeEnv {
        helpers: Helper::ALL.iter().map(|h| 0x7f00_0000_1000 + 0x10 * h.id() as u64).collect(),
        arg_ctypes: (0..nargs).map(|i| 0x5500_0000_0100 + 0x10 * i as u64).collect(),
        ret_ctype: 0x5500_0000_0000,
        callback_data: 0x5600_0000_0000,
    }
}

#[test]
fn curated_signatures_match_their_snapshot() {
    let target: Target = Target::X64_SYSV;
    let mut out = String::new();
    for c in curated_plans(target) {
        let env = env(c.plan.args.len());
        let stub = stub_program(&c.plan, 1);
        let code = X64SysvBackend.stub(&stub, BASE, &env).unwrap_or_else(|e| panic!("{}: {e}", c.curated.decl));
        out.push_str(&format!("==== {}: {}", c.curated.name, c.curated.decl));
        if !c.curated.varargs.is_empty() {
            out.push_str(&format!(" called with ({})", c.curated.varargs.join(", ")));
        }
        out.push_str(&format!("\nplan:\n{}\n\nstub program:\n{stub}stub ({} bytes):\n{}", c.plan, code.len(), disasm_with(&code, BASE, &env)));
        if c.curated.varargs.is_empty() {
            let thunk = thunk_program(&CallbackFrame::from_plan(&c.plan));
            let code = X64SysvBackend.thunk(&thunk, BASE, &env).unwrap_or_else(|e| panic!("{}: {e}", c.curated.decl));
            out.push_str(&format!("\nthunk program:\n{thunk}thunk ({} bytes):\n{}", code.len(), disasm_with(&code, BASE, &env)));
        }
        out.push('\n');
    }
    insta::assert_snapshot!(format!("curated_{}", target.name()), out);
}
