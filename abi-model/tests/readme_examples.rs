//! The two uses `README.md` shows, compiled and run with the text the README prints: the C
//! ABI alone (`default-features = false` leaves out only `abi_model::lua`), and luaffi's stub
//! language on top of it.

#[test]
fn c_abi_alone_plans_a_c_declaration_on_every_target() {
    use abi_model::cdef::{cdef, CScope};
    use abi_model::{plan_call, CType, Signature, Target, TypeTable};

    let mut out = String::new();
    for target in Target::ALL {
        let mut table = TypeTable::new(target);
        let mut scope = CScope::new(&mut table);
        cdef(&mut table, &mut scope, "short __stdcall scale(short x, double by);", &[]).unwrap();
        let decl = scope.function("scale").unwrap();
        let CType::Function(f) = table.get(decl.ty) else { unreachable!("a function declaration") };
        let sig = Signature::new(f.ret, f.params.iter().map(|p| p.ty).collect(), f.variadic, f.conv);
        let plan = plan_call(&table, &sig, &[]).unwrap();
        out += &format!("{target}: {}\n", plan.to_string().trim().replace("\n  ", "; "));
    }
    assert_eq!(
        out,
        "x86-linux: arg0: i16 [sp+0] sx; arg1: f64 [sp+4]; ret: i16 eax; stack 12 align 16 callee-pops 12
x86-win: arg0: i16 [sp+0] sx; arg1: f64 [sp+4]; ret: i16 eax; stack 12 align 4 callee-pops 12
x64-sysv: arg0: i16 edi sx; arg1: f64 xmm0; ret: i16 eax; stack 0 align 16
x64-win: arg0: i16 ecx sx; arg1: f64 xmm1; ret: i16 eax; stack 32 align 16 shadow 32
"
    );
}

#[test]
fn target_facts_read_as_the_readme_says() {
    use abi_model::{Ext, Gpr, Target};
    let t = Target::X64_WIN;
    assert_eq!(t.callee_saved_gprs().len(), 8);
    assert!(t.scratch_gprs().contains(&Gpr::R11));
    assert_eq!((t.stack_align(), t.shadow_space(), t.red_zone()), (16, 32, 0));
    assert_eq!(Ext::widening(abi_model::ValueKind::Int { size: 2, signed: true }), Ext::Sign);
}

#[cfg(feature = "lua")]
#[test]
fn stub_language_turns_a_plan_into_steps() {
    use abi_model::lua::lua_state_at_entry;
    use abi_model::lua::steps::stub_program;
    use abi_model::{plan_call, CallConv, Gpr, IntKind, Loc, Signature, Target, TypeTable};

    let t = TypeTable::new(Target::X64_WIN);
    let int = t.int(IntKind::Int);
    let sig = Signature::new(int, vec![int.into(), int.into()], false, CallConv::Cdecl);
    let plan = plan_call(&t, &sig, &[]).unwrap();
    let program = stub_program(&plan, 1); // the Lua arguments from stack index 1 on
    assert_eq!(lua_state_at_entry(Target::X64_WIN), Loc::Gpr(Gpr::CX));
    assert_eq!(
        program.to_string(),
        "  frame: out 32 stage 48 entry 0
  check-args 2
  luaffi_func_addr(L) -> stage[0]
  luaffi_to_i32(L, 1) -> stage[8]
  luaffi_to_i32(L, 2) -> stage[16]
  luaffi_errno_restore(L, ctype(ret)) -> stage[24]
  load ecx <- stage[8] (4)
  load edx <- stage[16] (4)
  call *stage[0]
  save-return Gpr i32 -> stage[32]
  luaffi_after_call(L, ctype(ret), *stage[24])
  luaffi_push_i32(L, i32 stage[32])
  return 1
"
    );
}
