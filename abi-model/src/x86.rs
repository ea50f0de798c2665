//! x86-32: cdecl, stdcall, fastcall and thiscall, in their i386 Linux (System V i386 psABI,
//! as gcc implements it) and Win32 (MSVC, as mingw implements it) flavours.
//!
//! The conventions differ by one row of data ([`X86_CONVENTIONS`]): which registers take
//! the first small integer arguments, and whether the callee pops. The OS flavours differ in
//! how aggregates come back ([`returns_in_registers`]) and who pops the hidden return pointer
//! ([`callee_pops_hidden_pointer`]).

use crate::abi::{AbiValue, PlanError};
use crate::plan::{ArgPass, ArgPlan, CallPlan, Ext, Gpr, Loc, Part, RetLoc, RetPlan, ValueKind};
use crate::{CallConv, Os};

/// One x86 convention as data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct X86Convention {
    /// The convention.
    pub conv: CallConv,
    /// Registers that take the first eligible arguments, in order.
    pub regs: &'static [Gpr],
    /// Whether the callee removes the stack arguments (`ret n`).
    pub callee_pops: bool,
}

/// The four conventions: fastcall, thiscall and cdecl/stdcall differ only in how many
/// registers are free (2, 1, 0) and in who pops.
pub const X86_CONVENTIONS: [X86Convention; 4] = [
    X86Convention { conv: CallConv::Cdecl, regs: &[], callee_pops: false },
    X86Convention { conv: CallConv::Stdcall, regs: &[], callee_pops: true },
    X86Convention { conv: CallConv::Fastcall, regs: &[Gpr::CX, Gpr::DX], callee_pops: true },
    X86Convention { conv: CallConv::Thiscall, regs: &[Gpr::CX], callee_pops: true },
];

/// The row for `conv`. A variadic function is always cdecl: the callee cannot know how many
/// bytes to pop (gcc ignores the other attributes on variadic functions).
pub fn convention(conv: CallConv, variadic: bool) -> X86Convention {
    let conv = if variadic { CallConv::Cdecl } else { conv };
    *X86_CONVENTIONS.iter().find(|c| c.conv == conv).expect("every convention has a row")
}

/// Register arguments are "DWORD or smaller" integers and pointers (Microsoft, __fastcall);
/// gcc agrees: never floating point, 64-bit integers or aggregates.
fn fits_register(kind: ValueKind) -> bool {
    matches!(kind, ValueKind::Bool | ValueKind::Pointer) || matches!(kind, ValueKind::Int { size, .. } if size <= 4)
}

/// Convention registers an argument that does not go in one still uses up (gcc
/// `function_arg_advance_32`): a 64-bit integer (DImode) and every struct or union (an
/// integer or BLK mode) advance the register count by their size in dwords, so the arguments
/// after them find fewer (or no) registers left; float, double and complex values use none.
/// MSVC differs here (its "first two DWORD or smaller arguments" skip them without using a
/// register); the fixtures are built by gcc and mingw, so gcc's rule is the model's.
/// Not modelled: gcc gives a struct whose only member is a `float` or `double` that
/// member's floating mode, so such a struct uses no register either.
fn registers_used_up(kind: ValueKind) -> usize {
    match kind {
        ValueKind::Int { size: 8, .. } => 2,
        ValueKind::Record { size, .. } => size.div_ceil(4) as usize,
        _ => 0,
    }
}

/// Where a value comes back when it is not through a hidden pointer:
/// 1. integers, pointers, bool up to 4 bytes: eax; 64-bit integers: edx:eax;
/// 2. float and double: st(0);
/// 3. `float complex`: edx:eax (gcc; an 8-byte aggregate on Win32);
/// 4. aggregates: never on i386 Linux (gcc's default -fpcc-struct-return); on Win32 those of
///    1, 2 or 4 bytes in eax and of 8 bytes in edx:eax (MSVC "Return values").
pub fn returns_in_registers(os: Os, kind: ValueKind) -> Option<RetLoc> {
    match kind {
        ValueKind::Void => Some(RetLoc::Void),
        ValueKind::Int { size: 8, .. } | ValueKind::ComplexF32 => Some(RetLoc::EdxEax),
        ValueKind::Bool | ValueKind::Int { .. } | ValueKind::Pointer => Some(RetLoc::Gpr),
        ValueKind::F32 | ValueKind::F64 => Some(RetLoc::St0),
        ValueKind::ComplexF64 => None,
        ValueKind::Record { size, .. } => match (os, size) {
            (Os::Windows, 1 | 2 | 4) => Some(RetLoc::Gpr),
            (Os::Windows, 8) => Some(RetLoc::EdxEax),
            _ => None,
        },
    }
}

/// i386 psABI: a function returning through a hidden pointer pops that pointer itself
/// (`ret $4`) even under cdecl; MSVC leaves it to the caller.
pub fn callee_pops_hidden_pointer(os: Os) -> bool {
    os == Os::Linux
}

fn ext_of(kind: ValueKind) -> Ext {
    match kind {
        ValueKind::Bool => Ext::Zero,
        ValueKind::Int { size, signed } if size < 4 => {
            if signed {
                Ext::Sign
            } else {
                Ext::Zero
            }
        }
        _ => Ext::None,
    }
}

/// Plans a call: the hidden return pointer first, then the arguments left to right; each
/// takes the next free convention register if it fits one, else the next 4-byte-aligned
/// stack slot (its size rounded up to 4). Stack slots are 4-byte aligned whatever the type's
/// alignment (gcc `ix86_function_arg_boundary`: only SSE vector types get more on i386).
pub fn plan(os: Os, conv: CallConv, variadic: bool, ret: &AbiValue, args: &[AbiValue], fixed: usize) -> Result<CallPlan, PlanError> {
    let row = convention(conv, variadic);
    // Index of the next free convention register in `row.regs`.
    let mut next_reg = 0usize;
    let mut stack: u32 = 0;
    let mut take_stack = |size: u32| {
        let at = stack;
        stack += size.div_ceil(4) * 4;
        Loc::Stack { offset: at }
    };
    let mut hidden_on_stack = false;
    let ret_loc = match returns_in_registers(os, ret.kind) {
        Some(loc) => loc,
        None => {
            // The hidden pointer is the first argument, so it takes the first convention
            // register: ecx under fastcall and also under thiscall, where gcc then passes
            // `this` on the stack (gcc `x86_this_parameter`: "thiscall ... if (aggr) this is
            // at 4(%esp)"; MSVC C++ keeps `this` in ecx instead, see the crate README).
            let ptr = match row.regs.get(next_reg) {
                Some(g) => {
                    next_reg += 1;
                    Loc::Gpr(*g)
                }
                None => {
                    hidden_on_stack = true;
                    take_stack(4)
                }
            };
            RetLoc::Sret { ptr }
        }
    };
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        let size = a.kind.size(4);
        let reg = match row.regs.get(next_reg) {
            Some(g) if fits_register(a.kind) => {
                next_reg += 1;
                Some(*g)
            }
            _ => {
                next_reg = (next_reg + registers_used_up(a.kind)).min(row.regs.len());
                None
            }
        };
        let loc = match reg {
            Some(g) => Loc::Gpr(g),
            None => take_stack(size),
        };
        out.push(ArgPlan { value: a.kind, pass: ArgPass::Direct(vec![Part { loc, offset: 0, size, ext: ext_of(a.kind) }]) });
    }
    let callee_pops = if row.callee_pops {
        stack
    } else if hidden_on_stack && callee_pops_hidden_pointer(os) {
        4
    } else {
        0
    };
    Ok(CallPlan {
        ptr_size: 4,
        args: out,
        fixed,
        ret: RetPlan { value: ret.kind, loc: ret_loc },
        stack_bytes: stack,
        // gcc on Linux keeps the stack 16-byte aligned at calls (-mpreferred-stack-boundary=4
        // and the i386 psABI's 2015 revision); Win32 guarantees 4.
        stack_align: if os == Os::Linux { 16 } else { 4 },
        shadow: 0,
        copy_area: (0, 0),
        callee_pops,
        al: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(size: u8) -> AbiValue {
        AbiValue::scalar(ValueKind::Int { size, signed: true })
    }

    fn first_loc(plan: &CallPlan, i: usize) -> Loc {
        match &plan.args[i].pass {
            ArgPass::Direct(parts) => parts[0].loc,
            ArgPass::Indirect { ptr, .. } => *ptr,
        }
    }

    #[test]
    fn fastcall_long_long_uses_up_both_registers_like_gcc() {
        // gcc `function_arg_advance_32`: a DImode argument goes to the stack under fastcall
        // but still advances the register count by two words, so the int after it finds no
        // register left.
        let void = AbiValue::scalar(ValueKind::Void);
        let plan = plan(Os::Windows, CallConv::Fastcall, false, &void, &[int(8), int(4)], 2).unwrap();
        assert_eq!(first_loc(&plan, 0), Loc::Stack { offset: 0 });
        assert_eq!(first_loc(&plan, 1), Loc::Stack { offset: 8 });
        assert_eq!(plan.callee_pops, 12);
    }

    #[test]
    fn fastcall_struct_argument_uses_up_a_register_per_dword_like_gcc() {
        // gcc `function_arg_advance_32`: an aggregate (integer or BLK mode) is never passed in
        // a register under fastcall, but advances the register count by its dwords.
        let void = AbiValue::scalar(ValueKind::Void);
        let rec4 = AbiValue::scalar(ValueKind::Record { size: 4, align: 4 });
        let plan = plan(Os::Linux, CallConv::Fastcall, false, &void, &[rec4, int(4), int(4)], 3).unwrap();
        assert_eq!(first_loc(&plan, 0), Loc::Stack { offset: 0 });
        assert_eq!(first_loc(&plan, 1), Loc::Gpr(Gpr::DX));
        assert_eq!(first_loc(&plan, 2), Loc::Stack { offset: 4 });
    }

    #[test]
    fn thiscall_hidden_return_pointer_takes_ecx_and_this_goes_to_the_stack_like_gcc() {
        // gcc `x86_this_parameter`: for thiscall with an aggregate return, `this` is at
        // 4(%esp), i.e. the hidden pointer (the first argument) took ecx.
        let big = AbiValue::scalar(ValueKind::Record { size: 12, align: 4 });
        let this = AbiValue::scalar(ValueKind::Pointer);
        let plan = plan(Os::Windows, CallConv::Thiscall, false, &big, &[this], 1).unwrap();
        assert_eq!(plan.ret.loc, RetLoc::Sret { ptr: Loc::Gpr(Gpr::CX) });
        assert_eq!(first_loc(&plan, 0), Loc::Stack { offset: 0 });
        assert_eq!(plan.callee_pops, 4);
    }
}
