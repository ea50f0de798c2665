//! x86-64 Windows (Microsoft, "x64 calling convention"), as MSVC and mingw implement it.
//!
//! Arguments are strictly positional: argument *i* owns slot *i*, which is `rcx`, `rdx`,
//! `r8`, `r9` or `xmm0`..`xmm3` for the first four and an 8-byte stack slot after the 32-byte
//! home space for the rest. Anything that is not 1, 2, 4 or 8 bytes goes by reference.

use crate::abi::{AbiValue, PlanError};
use crate::plan::{ArgPass, ArgPlan, CallPlan, Ext, Gpr, Loc, Part, Parts, RetLoc, RetPlan, ValueKind, Xmm};
use crate::Target;

/// Integer registers of the four positional slots.
pub const WIN64_INT_ARGS: [Gpr; 4] = [Gpr::CX, Gpr::DX, Gpr::R8, Gpr::R9];
/// Home (shadow) space the caller always reserves above the return address.
pub const WIN64_SHADOW: u32 = 32;

/// "Structs and unions of size 8, 16, 32, or 64 bits ... are passed as if they were
/// integers of the same size. \[Others\] are passed as a pointer to memory allocated by the
/// caller" (Microsoft, x64 calling convention, "Parameter passing"). `float complex` is an
/// 8-byte aggregate; `double complex` a 16-byte one.
pub fn win64_passes_by_reference(kind: ValueKind) -> bool {
    match kind {
        ValueKind::Record { size, .. } => !matches!(size, 1 | 2 | 4 | 8),
        // A 16-byte integer too (mingw's `__int128`: "__m128 types, arrays, and strings are
        // never passed by immediate value").
        ValueKind::ComplexF64 | ValueKind::Int { size: 16, .. } => true,
        _ => false,
    }
}

/// Plans a call. Variadic floating arguments in the first four slots are also copied to the
/// slot's integer register, since a variadic callee reads them from there ("Varargs").
pub fn plan(variadic: bool, ret: &AbiValue, args: &[AbiValue], fixed: usize) -> Result<CallPlan, PlanError> {
    plan_into(Vec::new(), variadic, ret, args, fixed)
}

/// [`plan`], its list of arguments written into `out` (cleared first): a caller that
/// plans often passes the list of the last plan it dropped back and allocates none.
pub(crate) fn plan_into(
    mut out: Vec<ArgPlan>,
    variadic: bool,
    ret: &AbiValue,
    args: &[AbiValue],
    fixed: usize,
) -> Result<CallPlan, PlanError> {
    let slot_loc = |slot: usize| -> Loc {
        match WIN64_INT_ARGS.get(slot) {
            Some(g) => Loc::Gpr(*g),
            None => Loc::Stack { offset: WIN64_SHADOW + 8 * (slot as u32 - 4) },
        }
    };
    // Return values: "returned in RAX if 1, 2, 4 or 8 bytes" for aggregates, XMM0 for float
    // and double, otherwise through a caller buffer whose address is the hidden first
    // argument (it takes slot 0) and comes back in RAX.
    let mut slot = 0usize;
    let ret_loc = match ret.kind {
        ValueKind::Void => RetLoc::Void,
        ValueKind::F32 | ValueKind::F64 => RetLoc::Xmm0,
        // "__m128 types ... are returned in XMM0" (Microsoft, Return values); mingw returns
        // every 16-byte vector so. Vectors of 1 to 8 bytes come back like records, in rax;
        // as arguments every vector is passed like a record of its size (16 bytes: by
        // reference, as the page says of __m128).
        ValueKind::Record { size: 16, .. } if ret.vector => RetLoc::Xmm0Full,
        // mingw returns `__int128` whole in xmm0 (gcc `function_value_ms_64`: a 16-byte
        // integer mode goes in the first SSE register), not through a hidden pointer.
        ValueKind::Int { size: 16, .. } => RetLoc::Xmm0Full,
        k if win64_passes_by_reference(k) => {
            slot += 1;
            RetLoc::Sret { ptr: slot_loc(0) }
        }
        _ => RetLoc::Gpr,
    };
    out.clear();
    out.reserve(args.len());
    let mut copies: u32 = 0;
    let mut copy_list = Vec::new();
    // The copies' alignment: 16, or a record's own when it asks more (`aligned(32)`), as the
    // callee may rely on it like on any object of its type. The caller's frame then needs it
    // (`CallPlan::frame_align`); sp at the call stays 16-aligned, as mingw's callers leave it.
    let mut copy_align = Target::X64_WIN.stack_align();
    for (i, a) in args.iter().enumerate() {
        let loc = slot_loc(slot);
        let is_float = matches!(a.kind, ValueKind::F32 | ValueKind::F64);
        let size = a.kind.size(8);
        let pass = if win64_passes_by_reference(a.kind) {
            // Copies are 16-byte aligned, or at their record's alignment when it is larger;
            // their final offsets are known once the argument area's size is.
            let align = match a.kind {
                ValueKind::Record { align, .. } => align.max(16),
                _ => 16,
            };
            copy_align = copy_align.max(align);
            let at = copies.next_multiple_of(align);
            copies = at + size.div_ceil(16) * 16;
            copy_list.push((out.len(), at));
            ArgPass::Indirect { ptr: loc, copy_at: at }
        } else if is_float && slot < 4 {
            let xmm = Part { loc: Loc::Xmm(Xmm(slot as u8)), offset: 0, size, ext: Ext::None };
            if variadic && i >= fixed {
                ArgPass::Direct(Parts::new(&[xmm, Part { loc, offset: 0, size, ext: Ext::None }]))
            } else {
                ArgPass::Direct(Parts::new(&[xmm]))
            }
        } else {
            ArgPass::Direct(Parts::new(&[Part { loc, offset: 0, size, ext: Ext::widening(a.kind) }]))
        };
        out.push(ArgPlan { value: a.kind, pass });
        slot += 1;
    }
    let stack_bytes = WIN64_SHADOW + 8 * slot.saturating_sub(4) as u32;
    let copy_base = stack_bytes.next_multiple_of(copy_align);
    for (idx, at) in copy_list {
        if let ArgPass::Indirect { copy_at, .. } = &mut out[idx].pass {
            *copy_at = copy_base + at;
        }
    }
    Ok(CallPlan {
        ptr_size: 8,
        args: out,
        fixed,
        // Microsoft, "x64 calling convention", Return values: "the state of unused bits in the
        // value returned in RAX or XMM0 is undefined".
        ret: RetPlan { value: ret.kind, loc: ret_loc, ext: Ext::widening(ret.kind) },
        stack_bytes,
        stack_align: Target::X64_WIN.stack_align(),
        shadow: Target::X64_WIN.shadow_space(),
        copy_area: if copies > 0 { (copy_base, copies) } else { (0, 0) },
        callee_pops: 0,
        al: None,
    })
}
