//! How Lua enters a stub: a stub is a `lua_CFunction`, `int f(lua_State *L)`, a plain C
//! function in the target's default convention (Lua's `LUA_API` names no other), so the
//! model plans it as any C function and says where `L` arrives.

use crate::{plan_values, AbiValue, ArgPass, CallConv, CallPlan, Loc, Target, ValueKind};

/// The plan of a `lua_CFunction` on `target`: one pointer argument, an `int` result.
pub fn lua_cfunction_plan(target: Target) -> CallPlan {
    plan_values(
        target,
        CallConv::Cdecl,
        false,
        &AbiValue::scalar(ValueKind::Int { size: 4, signed: true }),
        &[AbiValue::scalar(ValueKind::Pointer)],
        1,
    )
    .expect("a pointer argument and an int result plan on every target")
}

/// Where the `lua_State *` is when a stub starts: `rdi` on x86-64 System V, `rcx` on Win64, the
/// first stack slot on x86 (`Loc::Stack { offset: 0 }`, counted as every plan counts stack
/// slots: from the stack pointer at the call, so at `[entry sp + return address size]`).
pub fn lua_state_at_entry(target: Target) -> Loc {
    match &lua_cfunction_plan(target).args[0].pass {
        ArgPass::Direct(parts) => parts[0].loc,
        ArgPass::Indirect { .. } => unreachable!("a pointer is passed by value on every target"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Gpr;

    #[test]
    fn lua_state_arrives_in_the_first_integer_argument_place_of_each_target() {
        // x86-64 psABI §3.2.3: the first INTEGER argument in %rdi; Microsoft x64: the first
        // argument in RCX; i386 cdecl (psABI 2.2.3 / Win32): on the stack right above the
        // return address.
        assert_eq!(lua_state_at_entry(Target::X64_SYSV), Loc::Gpr(Gpr::DI));
        assert_eq!(lua_state_at_entry(Target::X64_WIN), Loc::Gpr(Gpr::CX));
        assert_eq!(lua_state_at_entry(Target::X86_LINUX), Loc::Stack { offset: 0 });
        assert_eq!(lua_state_at_entry(Target::X86_WIN), Loc::Stack { offset: 0 });
    }

    #[test]
    fn a_lua_cfunction_pops_nothing_and_returns_its_count_in_eax() {
        for t in Target::ALL {
            let p = lua_cfunction_plan(t);
            assert_eq!(p.callee_pops, 0, "{t}");
            assert_eq!(p.ret.loc, crate::RetLoc::Gpr, "{t}");
        }
    }
}
