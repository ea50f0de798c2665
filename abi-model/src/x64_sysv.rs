//! x86-64 System V (psABI 1.0, §3.2.3 "Parameter Passing"), as gcc implements it.
//!
//! Every value is split into eightbytes, each classified INTEGER or SSE (`classify_record`,
//! `merge_classes`); a value whose classes don't fit the registers left goes whole to memory.

use crate::abi::{AbiValue, PlanError};
use crate::plan::{ArgPass, ArgPlan, CallPlan, Ext, Gpr, Loc, Part, RetLoc, RetPlan, ValueKind, Xmm};
use crate::types::{ArrayLen, CType, FloatKind, TypeId, TypeTable};

/// Integer argument registers, in order (psABI Figure 3.4).
pub const SYSV_INT_ARGS: [Gpr; 6] = [Gpr::DI, Gpr::SI, Gpr::DX, Gpr::CX, Gpr::R8, Gpr::R9];
/// Vector argument registers: xmm0..xmm7.
pub const SYSV_SSE_ARGS: u8 = 8;

/// The class of one eightbyte. Ordered from general to specific is not needed here: the
/// merge is spelled out rule by rule in [`merge_classes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Only padding so far.
    NoClass,
    /// General-purpose registers.
    Integer,
    /// Vector registers (low 8 bytes).
    Sse,
}

/// The eightbyte classes of a value passed in registers (1 or 2 entries), or `Err(Memory)`:
/// the value goes to memory. The unit error *is* the rule.
pub type Eightbytes = Result<Vec<Class>, Memory>;

/// "This value is passed and returned in memory."
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Memory;

/// psABI §3.2.3 merge rules for two classes meeting in one eightbyte (the X87 and MEMORY
/// rules never arise here: those types are rejected or already `Err(Memory)`):
/// (a) equal classes stay; (b) NO_CLASS yields the other; (d) INTEGER wins; (f) else SSE.
pub fn merge_classes(a: Class, b: Class) -> Class {
    match (a, b) {
        (x, y) if x == y => x,                        // rule (a)
        (Class::NoClass, x) | (x, Class::NoClass) => x, // rule (b)
        (Class::Integer, _) | (_, Class::Integer) => Class::Integer, // rule (d)
        _ => Class::Sse,                               // rule (f)
    }
}

/// Classifies a struct or union by value (psABI §3.2.3, "classification of aggregates"):
/// 1. larger than two eightbytes -> MEMORY (no __m256 here);
/// 2. a member not at its natural alignment (packed) -> MEMORY;
/// 3. each eightbyte is the merge of the classes of the scalars that overlap it;
/// 4. post-merger: nothing here produces MEMORY or X87 classes beyond rules 1-2.
pub fn classify_record(table: &TypeTable, id: TypeId) -> Result<Eightbytes, PlanError> {
    let size = table.size_of(id)?;
    if size > 16 {
        return Ok(Err(Memory));
    }
    let n = size.div_ceil(8) as usize;
    let mut classes = vec![Class::NoClass; n];
    if classify_into(table, id, 0, &mut classes)?.is_err() {
        return Ok(Err(Memory));
    }
    Ok(Ok(classes))
}

/// Merges the classes of every scalar inside `id` (placed at byte `base`) into `classes`.
fn classify_into(table: &TypeTable, id: TypeId, base: u64, classes: &mut [Class]) -> Result<Result<(), Memory>, PlanError> {
    fn put(classes: &mut [Class], offset: u64, size: u64, class: Class) -> Result<(), Memory> {
        if size == 0 {
            return Ok(());
        }
        let first = offset / 8;
        let last = (offset + size - 1) / 8;
        for eb in first..=last {
            let slot = classes.get_mut(eb as usize).ok_or(Memory)?;
            *slot = merge_classes(*slot, class);
        }
        Ok(())
    }
    match table.get(id) {
        CType::Record(r) => {
            let body = r.body.as_ref().ok_or_else(|| PlanError::Invalid { message: format!("'{}' is incomplete", table.display(id.into())) })?;
            for (field, at) in body.fields.iter().zip(&body.layout.fields) {
                if let Some(bits) = at.bits {
                    // Bit-fields are INTEGER for the bytes they touch.
                    if bits.width > 0 {
                        let first = bits.bit_offset / 8;
                        let last = (bits.bit_offset + u64::from(bits.width) - 1) / 8;
                        if put(classes, base + first, last - first + 1, Class::Integer).is_err() {
                            return Ok(Err(Memory));
                        }
                    }
                    continue;
                }
                let fl = match table.get(field.ty.id) {
                    CType::Array { len: ArrayLen::Flexible | ArrayLen::Variable, .. } => continue,
                    _ => table.layout(field.ty.id)?,
                };
                // Rule 2: an unaligned member puts the whole aggregate in memory.
                if at.offset % u64::from(fl.align) != 0 {
                    return Ok(Err(Memory));
                }
                if classify_into(table, field.ty.id, base + at.offset, classes)?.is_err() {
                    return Ok(Err(Memory));
                }
            }
            Ok(Ok(()))
        }
        CType::Array { elem, len: ArrayLen::Fixed(n) } => {
            let el = table.layout(elem.id)?;
            for i in 0..*n {
                if classify_into(table, elem.id, base + i * el.size, classes)?.is_err() {
                    return Ok(Err(Memory));
                }
            }
            Ok(Ok(()))
        }
        CType::Float(FloatKind::LongDouble) | CType::Complex(FloatKind::LongDouble) => {
            Err(PlanError::Unsupported { what: "long double".into(), reason: "X87 class members are not supported".into() })
        }
        CType::Float(_) | CType::Complex(_) => {
            let l = table.layout(id)?;
            Ok(put(classes, base, l.size, Class::Sse))
        }
        _ => {
            let l = table.layout(id)?;
            Ok(put(classes, base, l.size, Class::Integer))
        }
    }
}

/// The eightbyte classes of any value; scalars by their kind. Borrowed, not built: planning
/// a call allocates nothing per argument for its classes.
fn eightbytes(v: &AbiValue) -> Result<&[Class], Memory> {
    match v.kind {
        ValueKind::Void => Ok(&[]),
        ValueKind::Bool | ValueKind::Int { .. } | ValueKind::Pointer => Ok(&[Class::Integer]),
        ValueKind::F32 | ValueKind::F64 => Ok(&[Class::Sse]),
        // A complex float is one SSE eightbyte holding both parts; a complex double two.
        ValueKind::ComplexF32 => Ok(&[Class::Sse]),
        ValueKind::ComplexF64 => Ok(&[Class::Sse, Class::Sse]),
        ValueKind::Record { .. } => match &v.eightbytes {
            Some(Ok(classes)) => Ok(classes),
            Some(Err(Memory)) | None => Err(Memory),
        },
    }
}

/// Callers widen bool, char and short arguments to 32 bits (gcc and clang agree on it; the
/// psABI leaves it unspecified, so callees must not rely on it).
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

/// Register budget while walking the arguments.
struct Regs {
    int: usize,
    sse: u8,
}

/// Plans a call (psABI §3.2.3, "passing"): arguments left to right take the next free
/// register of their eightbytes' classes; if any eightbyte finds none, the whole argument
/// goes on the stack and the registers stay free for later arguments. Stack arguments take
/// 8-byte slots (16-byte aligned for 16-byte-aligned types). A MEMORY return takes rdi for
/// its hidden pointer and comes back in rax.
pub fn plan(variadic: bool, ret: &AbiValue, args: &[AbiValue], fixed: usize) -> Result<CallPlan, PlanError> {
    let mut regs = Regs { int: 0, sse: 0 };
    let ret_plan = plan_return(ret, &mut regs)?;
    let mut stack: u32 = 0;
    // The call site's stack alignment: 16, or more when a stack argument needs more.
    let mut max_stack_align: u32 = 16;
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        let size = a.kind.size(8);
        let classes = eightbytes(a);
        let in_regs = match classes {
            Ok(cs) => {
                let need_int = cs.iter().filter(|c| **c == Class::Integer).count();
                let need_sse = cs.iter().filter(|c| **c == Class::Sse).count() as u8;
                regs.int + need_int <= SYSV_INT_ARGS.len() && regs.sse + need_sse <= SYSV_SSE_ARGS
            }
            Err(Memory) => false,
        };
        let parts = if in_regs {
            let cs = classes.expect("checked above");
            let mut parts = Vec::with_capacity(cs.len());
            for (i, c) in cs.iter().enumerate() {
                // An eightbyte of nothing but padding takes no register (gcc
                // `construct_container` skips NO_CLASS).
                if *c == Class::NoClass {
                    continue;
                }
                let offset = 8 * i as u32;
                let part_size = (size - offset).min(8);
                let loc = match c {
                    Class::Sse => {
                        let x = Xmm(regs.sse);
                        regs.sse += 1;
                        Loc::Xmm(x)
                    }
                    Class::Integer | Class::NoClass => {
                        let g = SYSV_INT_ARGS[regs.int];
                        regs.int += 1;
                        Loc::Gpr(g)
                    }
                };
                parts.push(Part { loc, offset, size: part_size, ext: ext_of(a.kind) });
            }
            parts
        } else {
            // psABI §3.2.3: stack arguments take eightbyte slots, aligned further to the
            // type's own alignment when it is larger (16 for 16-byte-aligned types; gcc
            // `function_arg_advance_64` rounds to `ix86_function_arg_boundary`, which is the
            // type's alignment on x86-64, so an aligned(32) struct gets a 32-aligned slot).
            let align = match a.kind {
                ValueKind::Record { align, .. } => align.max(8),
                _ => 8,
            };
            max_stack_align = max_stack_align.max(align);
            stack = stack.div_ceil(align) * align;
            let part = Part { loc: Loc::Stack { offset: stack }, offset: 0, size, ext: ext_of(a.kind) };
            stack += size.div_ceil(8) * 8;
            vec![part]
        };
        out.push(ArgPlan { value: a.kind, pass: ArgPass::Direct(parts) });
    }
    Ok(CallPlan {
        ptr_size: 8,
        args: out,
        fixed,
        ret: ret_plan,
        stack_bytes: stack.div_ceil(8) * 8,
        stack_align: max_stack_align,
        shadow: 0,
        copy_area: (0, 0),
        callee_pops: 0,
        // Variadic calls: al holds an upper bound on the vector registers used (§3.5.7).
        al: variadic.then_some(regs.sse),
    })
}

fn plan_return(ret: &AbiValue, regs: &mut Regs) -> Result<RetPlan, PlanError> {
    let loc = match eightbytes(ret) {
        Ok(cs) => match cs {
            [] => RetLoc::Void,
            [Class::NoClass] | [Class::NoClass, Class::NoClass] => {
                return Err(PlanError::Unsupported { what: "a return value of padding only".into(), reason: "no register carries it".into() })
            }
            [Class::NoClass, _] => {
                return Err(PlanError::Unsupported {
                    what: "a return value whose first eightbyte is padding".into(),
                    reason: "no return location names only the second eightbyte".into(),
                })
            }
            [Class::Sse] | [Class::Sse, Class::NoClass] => RetLoc::Xmm0,
            [Class::Integer] | [Class::Integer, Class::NoClass] => RetLoc::Gpr,
            [Class::Sse, Class::Sse] => RetLoc::Xmm0Xmm1,
            [Class::Sse, _] => RetLoc::Xmm0Rax,
            [_, Class::Sse] => RetLoc::RaxXmm0,
            [_, _] => RetLoc::RaxRdx,
            _ => unreachable!("at most two eightbytes are classified"),
        },
        Err(Memory) => {
            regs.int += 1;
            RetLoc::Sret { ptr: Loc::Gpr(SYSV_INT_ARGS[0]) }
        }
    };
    Ok(RetPlan { value: ret.kind, loc })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysv_32_byte_aligned_struct_on_the_stack_gets_a_32_aligned_slot_like_gcc() {
        // gcc `function_arg_advance_64` rounds the stack words up to
        // `ix86_function_arg_boundary`, the type's alignment on x86-64 (psABI §3.2.3 names
        // only 16 and 32 for vector types; gcc applies the type's alignment to any type).
        let int = AbiValue::scalar(ValueKind::Int { size: 8, signed: true });
        let big = AbiValue { kind: ValueKind::Record { size: 64, align: 32 }, eightbytes: Some(Err(Memory)), gcc_mode: None };
        let mut args = vec![int.clone(); 6];
        args.push(int);
        args.push(big);
        let plan = plan(false, &AbiValue::scalar(ValueKind::Void), &args, 8).unwrap();
        let ArgPass::Direct(parts) = &plan.args[7].pass else { panic!("memory argument is direct") };
        assert_eq!(parts[0].loc, Loc::Stack { offset: 32 });
        assert_eq!(plan.stack_bytes, 96);
        assert_eq!(plan.stack_align, 32);
    }
}
