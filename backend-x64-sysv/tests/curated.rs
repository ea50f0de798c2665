//! The listings of this backend, one snapshot per topic, in the one listing format
//! (`emu_harness::listing`):
//! - `curated_x64-sysv`: the curated signatures every backend shows (`abi_model::lua::curated`),
//!   per signature the plan, the stub and thunk programs and their disassembly, for
//!   side-by-side reading with the other backends;
//! - `curated_inline_lua54_x64-sysv`, `curated_inline_lua51_x64-sysv`: the stubs lua-adapter
//!   builds for namespace functions, with their inline steps.
//!
//! Regenerate with `INSTA_UPDATE=always cargo test -p backend-x64-sysv --test curated` and read
//! every changed line.

use abi_model::lua::curated::curated_listing;
use backend_x64_sysv::X64SysvBackend;
use emu_harness::listing::{assert_format, disasm64};

#[test]
fn curated_signatures_match_their_snapshot() {
    let text = curated_listing(&X64SysvBackend, disasm64, None, &[]).unwrap();
    assert_format(&text);
    insta::assert_snapshot!("curated_x64-sysv", text);
}

/// The stubs lua-adapter builds for namespace functions on Lua 5.4 and 5.1: the count check,
/// the function address and number arguments and results inline, each with its helper call
/// for the values it does not take.
#[test]
fn curated_inline_stubs_match_their_snapshot() {
    use abi_model::lua::vm::LuaVm;
    let only = ["add", "mix", "float_float", "u64_u64", "widen", "ptr_ptr", "struct_fi"];
    for (name, vm) in [("curated_inline_lua54_x64-sysv", LuaVm::LUA54), ("curated_inline_lua51_x64-sysv", LuaVm::LUA51)]
    {
        let inline = abi_model::lua::curated::listing_inline(vm);
        let text = curated_listing(&X64SysvBackend, disasm64, Some(&inline), &only).unwrap();
        assert_format(&text);
        insta::assert_snapshot!(name, text);
    }
}

/// The backend says its code is the same at every address; lua-adapter then assembles once.
#[test]
fn stubs_and_thunks_are_the_same_bytes_at_every_base() {
    use abi_model::lua::curated::{curated_plans, listing_env};
    use abi_model::lua::steps::{stub_program, stub_program_inline, thunk_program};
    use abi_model::lua::vm::LuaVm;
    use abi_model::lua::Backend;
    use abi_model::{CallbackFrame, Target};
    assert!(X64SysvBackend.position_independent());
    for c in curated_plans(Target::X64_SYSV) {
        let env = listing_env(Target::X64_SYSV, c.plan.args.len());
        let inline = abi_model::lua::curated::listing_inline(LuaVm::LUA54);
        let mut programs = vec![stub_program(&c.plan, 1), stub_program_inline(&c.plan, 1, Some(&inline))];
        let thunk = c.curated.varargs.is_empty().then(|| thunk_program(&CallbackFrame::from_plan(&c.plan)));
        for (i, p) in programs.drain(..).enumerate() {
            let at = |base| X64SysvBackend.stub(&p, base, &env).unwrap();
            assert_eq!(at(0), at(0x7fff_1234_5000), "{} stub {i}", c.curated.name);
        }
        if let Some(p) = thunk {
            let at = |base| X64SysvBackend.thunk(&p, base, &env).unwrap();
            assert_eq!(at(0), at(0x7fff_1234_5000), "{} thunk", c.curated.name);
        }
    }
}
