//! x86-64 System V (psABI 1.0, §3.2.3 "Parameter Passing"), as gcc implements it.
//!
//! Every value is split into eightbytes, each classified INTEGER or SSE (`classify_record`,
//! `merge_classes`); a value whose classes don't fit the registers left goes whole to memory.

use crate::abi::{AbiValue, PlanError};
use crate::plan::{ArgPass, ArgPlan, CallPlan, Ext, Gpr, Loc, Part, Parts, RetLoc, RetPlan, ValueKind, Xmm};
use crate::types::{ArrayLen, CType, FloatKind, TypeId, TypeTable};
use crate::Target;

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
    /// The upper 8 bytes of the vector register the SSE eightbyte before it took (a 16-byte
    /// vector: psABI "SSEUP"). Takes no register of its own.
    SseUp,
}

/// The eightbyte classes of a value passed in registers (1 or 2 entries), or `Err(Memory)`:
/// the value goes to memory. The unit error *is* the rule.
pub type Eightbytes = Result<Vec<Class>, Memory>;

/// "This value is passed and returned in memory."
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Memory;

/// psABI §3.2.3 merge rules for two classes meeting in one eightbyte (the X87 and MEMORY
/// rules never arise here: those types are rejected or already `Err(Memory)`):
/// (a) equal classes stay; (b) NO_CLASS yields the other; (d) INTEGER wins; (f) else SSE
/// (so SSEUP meeting SSE is SSE, as gcc `merge_classes` has it).
pub fn merge_classes(a: Class, b: Class) -> Class {
    match (a, b) {
        (x, y) if x == y => x,                                       // rule (a)
        (Class::NoClass, x) | (x, Class::NoClass) => x,              // rule (b)
        (Class::Integer, _) | (_, Class::Integer) => Class::Integer, // rule (d)
        _ => Class::Sse,                                             // rule (f)
    }
}

/// Classifies a struct or union by value (psABI §3.2.3, "classification of aggregates"):
/// 1. larger than two eightbytes -> MEMORY (no __m256 here);
/// 2. a scalar member not at a multiple of its size, counted from the start of the whole
///    argument, -> MEMORY (`classify_at`, below);
/// 3. each eightbyte is the merge of the classes of the scalars that overlap it;
/// 4. post-merger: an SSEUP not preceded by SSE or SSEUP becomes SSE (psABI §3.2.3 5(c));
///    nothing here produces MEMORY or X87 classes beyond rules 1-2.
///
/// A vector type by value (not a record) is classified here too, as the one scalar it is.
pub fn classify_record(table: &TypeTable, id: TypeId) -> Result<Eightbytes, PlanError> {
    if table.size_of(id)? > 16 {
        return Ok(Err(Memory));
    }
    let Ok(mut classes) = classify_at(table, id, 0)? else { return Ok(Err(Memory)) };
    for i in 0..classes.len() {
        if classes[i] == Class::SseUp && (i == 0 || !matches!(classes[i - 1], Class::Sse | Class::SseUp)) {
            classes[i] = Class::Sse;
        }
    }
    Ok(Ok(classes))
}

/// gcc `classify_argument`'s vector modes (the psABI: `__m64` is SSE, `__m128` SSE+SSEUP),
/// for a vector of `size` bytes at byte `at` of the argument (larger than 16 bytes and
/// one-`float`/`double` vectors are refused before: [`crate::abi_value`]):
/// - 16 bytes: SSE then SSEUP, one whole `xmm` register (`V4SF`, `V2DF`, `V4SI`, ...);
/// - 8 bytes: SSE, integer elements too (`V2SF`, `V2SI`, `V4HI`, `V8QI`, `V1DI`);
/// - 1 to 4 bytes (integer elements only: `V4QI`, `V2HI`, `V1SI`, `V2QI`): INTEGER;
/// - like a scalar, misaligned (`at` not a multiple of `size`) is MEMORY.
fn vector_classes(at: u64, size: u64) -> Eightbytes {
    match size {
        16 => scalar_classes(at, 16, 16, Class::Sse).map(|_| vec![Class::Sse, Class::SseUp]),
        8 => scalar_classes(at, 8, 8, Class::Sse),
        _ => scalar_classes(at, size, size, Class::Integer),
    }
}

/// gcc `classify_argument` (i386.cc; the oracle is the compiled fixtures) for `id` placed at
/// byte `at` of the outermost argument. The classes returned cover the eightbytes `id`
/// overlaps, the first being the one holding byte `at`. The rules, in gcc's order:
/// 1. a scalar must sit at an ABSOLUTE offset that is a multiple of its size (a complex
///    number: of its part's size), else the whole argument is MEMORY; a record's own
///    alignment is never checked, so a packed or over-aligned record nested anywhere is
///    judged by the scalars inside it;
/// 2. a struct merges its members' classes eightbyte by eightbyte; a union merges all of
///    them from its first eightbyte; a struct's bit-fields are INTEGER for the eightbytes they
///    touch and are never misaligned, a union's are integers of their width's mode, checked
///    by rule 1; flexible and `[?]` members are ignored;
/// 3. an array is classified by its FIRST element alone (only its offset is checked) and
///    that element's classes repeat over the array's eightbytes; an array of no bytes that
///    starts an eightbyte is NO_CLASS without looking at the element;
/// 4. more than two eightbytes is MEMORY (vectors of more than 16 bytes are refused);
/// 5. a vector is one scalar of its machine mode ([`vector_classes`]).
fn classify_at(table: &TypeTable, id: TypeId, at: u64) -> Result<Eightbytes, PlanError> {
    let skew = at % 8;
    match table.get(id) {
        CType::Array { .. } if table.is_vector(id) => Ok(vector_classes(at, table.layout(id)?.size)),
        CType::Record(r) => {
            let body = r.body.as_ref().ok_or_else(|| PlanError::Incomplete { ty: table.display(id.into()) })?;
            let Some(mut classes) = no_class_words(body.layout.size, skew) else { return Ok(Err(Memory)) };
            let is_union = matches!(r.kind, crate::types::RecordKind::Union);
            for (field, fl) in body.fields.iter().zip(&body.layout.fields) {
                if let Some(bits) = fl.bits.filter(|b| b.width > 0 || is_union) {
                    if is_union {
                        // Rule 2: gcc's union walk has no bit-field case: the member is the
                        // C front end's integer of `width` bits, checked like any scalar. A
                        // zero-width one too (gcc 12): its 0-bit type has QImode, so it is a
                        // 1-byte INTEGER at the union's offset (size 1 below).
                        let size = u64::from(bits.width.div_ceil(8).next_power_of_two());
                        let Ok(sub) = scalar_classes(at, size, size, Class::Integer) else { return Ok(Err(Memory)) };
                        for (c, s) in classes.iter_mut().zip(sub) {
                            *c = merge_classes(*c, s);
                        }
                    } else {
                        // Rule 2: bit-fields are INTEGER (gcc handles them before their
                        // type, which would otherwise look misaligned).
                        let first = (skew * 8 + bits.bit_offset) / 64;
                        let last = (skew * 8 + bits.bit_offset + u64::from(bits.width) - 1) / 64;
                        for eb in first..=last {
                            if let Some(c) = classes.get_mut(eb as usize) {
                                *c = merge_classes(*c, Class::Integer);
                            }
                        }
                    }
                    continue;
                }
                if fl.bits.is_some() {
                    continue; // gcc 12's record walk skips zero-width bit-fields
                }
                if let CType::Array { len: ArrayLen::Flexible | ArrayLen::Variable, .. } = table.get(field.ty.id) {
                    continue;
                }
                let Ok(sub) = classify_at(table, field.ty.id, at + fl.offset)? else { return Ok(Err(Memory)) };
                let pos = if is_union { 0 } else { ((skew + fl.offset) / 8) as usize };
                for (c, s) in classes.iter_mut().skip(pos).zip(sub) {
                    *c = merge_classes(*c, s);
                }
            }
            Ok(Ok(classes))
        }
        CType::Array { elem, len: ArrayLen::Fixed(n) } => {
            let size = table.layout(elem.id)?.size.saturating_mul(*n);
            let Some(mut classes) = no_class_words(size, skew) else { return Ok(Err(Memory)) };
            if classes.is_empty() {
                return Ok(Ok(vec![Class::NoClass]));
            }
            // Rule 3: the first element, repeated.
            let Ok(sub) = classify_at(table, elem.id, at)? else { return Ok(Err(Memory)) };
            for (c, s) in classes.iter_mut().zip(sub.iter().cycle()) {
                *c = *s;
            }
            Ok(Ok(classes))
        }
        CType::Array { .. } => Ok(Ok(vec![Class::NoClass])),
        CType::Float(FloatKind::LongDouble) | CType::Complex(FloatKind::LongDouble) => Err(PlanError::Unsupported {
            what: "long double".into(),
            reason: "X87 class members are not supported".into(),
        }),
        other => {
            let size = table.layout(id)?.size;
            Ok(match other {
                CType::Float(_) => scalar_classes(at, size, size, Class::Sse),
                CType::Complex(_) => scalar_classes(at, size, size / 2, Class::Sse),
                _ => scalar_classes(at, size, size, Class::Integer),
            })
        }
    }
}

/// The classes of a scalar of `size` bytes at byte `at` of the argument, aligned by its
/// `part`'s size (rule 1: "misaligned fields are always returned in memory", gcc).
fn scalar_classes(at: u64, size: u64, part: u64, class: Class) -> Eightbytes {
    if at.checked_rem(part) != Some(0) {
        return Err(Memory);
    }
    Ok(vec![class; (at % 8 + size).div_ceil(8) as usize])
}

/// NO_CLASS for each eightbyte of `size` bytes starting `skew` bytes into an eightbyte, or
/// `None` when that is more than two eightbytes (rule 4).
fn no_class_words(size: u64, skew: u64) -> Option<Vec<Class>> {
    let words = (size + skew).div_ceil(8);
    (words <= 2).then(|| vec![Class::NoClass; words as usize])
}

/// The eightbyte classes of any value; scalars by their kind. Borrowed, not built: planning
/// a call allocates nothing per argument for its classes.
fn eightbytes(v: &AbiValue) -> Result<&[Class], Memory> {
    match v.kind {
        ValueKind::Void => Ok(&[]),
        // psABI §3.2.3: `__int128` is classified as `struct { long low, high; }`.
        ValueKind::Int { size: 16, .. } => Ok(&[Class::Integer, Class::Integer]),
        ValueKind::Bool | ValueKind::Int { .. } | ValueKind::Pointer | ValueKind::TypedInt { .. } => {
            Ok(&[Class::Integer])
        }
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
    let mut regs = Regs { int: 0, sse: 0 };
    let ret_plan = plan_return(ret, &mut regs)?;
    // `max_stack_align`, the call site's stack alignment: 16, or more when a stack argument
    // needs more.
    let mut place = Placement { regs, stack: 0, max_stack_align: Target::X64_SYSV.stack_align() };
    out.clear();
    out.reserve(args.len());
    for a in args {
        let parts = match place.scalar(a.kind) {
            Some(parts) => parts,
            None => place.by_classes(a),
        };
        out.push(ArgPlan { value: a.kind, pass: ArgPass::Direct(parts) });
    }
    Ok(CallPlan {
        ptr_size: 8,
        args: out,
        fixed,
        ret: ret_plan,
        stack_bytes: place.stack.div_ceil(8) * 8,
        stack_align: place.max_stack_align,
        shadow: 0,
        copy_area: (0, 0),
        callee_pops: 0,
        // Variadic calls: al holds an upper bound on the vector registers used (§3.5.7).
        al: variadic.then_some(place.regs.sse),
    })
}

/// Where the arguments of a call go, left to right: the registers and the stack they have
/// used so far, and the largest alignment a stack argument asked for.
struct Placement {
    regs: Regs,
    stack: u32,
    max_stack_align: u32,
}

impl Placement {
    /// The parts of argument `a` (psABI §3.2.3): every eightbyte in the next free register of
    /// its class, or, if one finds none, the whole argument on the stack.
    fn by_classes(&mut self, a: &AbiValue) -> Parts {
        let size = a.kind.size(8);
        let classes = eightbytes(a);
        let in_regs = match classes {
            Ok(cs) => {
                let need_int = cs.iter().filter(|c| **c == Class::Integer).count();
                // An SSEUP eightbyte rides in its SSE eightbyte's register.
                let need_sse = cs.iter().filter(|c| **c == Class::Sse).count() as u8;
                self.regs.int + need_int <= SYSV_INT_ARGS.len() && self.regs.sse + need_sse <= SYSV_SSE_ARGS
            }
            Err(Memory) => false,
        };
        if in_regs {
            let cs = classes.expect("checked above");
            let mut parts = Parts::default();
            for (i, c) in cs.iter().enumerate() {
                // An eightbyte of nothing but padding takes no register (gcc
                // `construct_container` skips NO_CLASS).
                if *c == Class::NoClass {
                    continue;
                }
                let offset = 8 * i as u32;
                let part_size = (size - offset).min(8);
                if *c == Class::SseUp {
                    // psABI: the upper half of the previous SSE eightbyte's register. The
                    // classification puts an SSE or SSEUP eightbyte before every SSEUP.
                    let Some(Part { loc: Loc::Xmm(_), size, .. }) = parts.last_mut() else {
                        unreachable!("an SSEUP eightbyte follows an SSE one (classify_record)")
                    };
                    *size += part_size;
                    continue;
                }
                let loc = match c {
                    Class::Sse => self.take_xmm(),
                    Class::Integer | Class::NoClass | Class::SseUp => self.take_gpr(),
                };
                parts.push(Part { loc, offset, size: part_size, ext: Ext::widening(a.kind) });
            }
            parts
        } else {
            self.on_stack(a.kind)
        }
    }

    /// The next free general register (the caller checked that one is left).
    fn take_gpr(&mut self) -> Loc {
        self.regs.int += 1;
        Loc::Gpr(SYSV_INT_ARGS[self.regs.int - 1])
    }

    /// The next free vector register (the caller checked that one is left).
    fn take_xmm(&mut self) -> Loc {
        self.regs.sse += 1;
        Loc::Xmm(Xmm(self.regs.sse - 1))
    }

    /// The whole value of `kind` on the stack. psABI §3.2.3: stack arguments take eightbyte
    /// slots, aligned further to the type's own alignment when it is larger (16 for
    /// 16-byte-aligned types; gcc `function_arg_advance_64` rounds to
    /// `ix86_function_arg_boundary`, which is the type's alignment on x86-64, so an
    /// aligned(32) struct gets a 32-aligned slot).
    fn on_stack(&mut self, kind: ValueKind) -> Parts {
        let size = kind.size(8);
        let align = match kind {
            ValueKind::Record { align, .. } => align.max(8),
            // psABI §3.2.3: "arguments of type __int128 that are stored in memory must be
            // aligned on a 16-byte boundary".
            ValueKind::Int { size: 16, .. } => 16,
            _ => 8,
        };
        self.max_stack_align = self.max_stack_align.max(align);
        self.stack = self.stack.div_ceil(align) * align;
        let part = Part { loc: Loc::Stack { offset: self.stack }, offset: 0, size, ext: Ext::widening(kind) };
        self.stack += size.div_ceil(8) * 8;
        Parts::new(&[part])
    }

    /// [`Placement::by_classes`] for a scalar of at most 8 bytes (one INTEGER or SSE
    /// eightbyte: the next register of its class, or an 8-byte stack slot), without walking
    /// a list of classes: a first call plans each argument, and the walk was ~200
    /// instructions of it. `None` for any other kind. The two agree on every scalar in every
    /// register state (`scalars_place_as_their_classes_say`).
    #[inline]
    fn scalar(&mut self, kind: ValueKind) -> Option<Parts> {
        let sse = match kind {
            ValueKind::Bool | ValueKind::Pointer => false,
            ValueKind::Int { size, .. } | ValueKind::TypedInt { size } if size <= 8 => false,
            ValueKind::F32 | ValueKind::F64 => true,
            _ => return None,
        };
        let loc = match sse {
            false if self.regs.int < SYSV_INT_ARGS.len() => self.take_gpr(),
            true if self.regs.sse < SYSV_SSE_ARGS => self.take_xmm(),
            _ => return Some(self.on_stack(kind)),
        };
        Some(Parts::new(&[Part { loc, offset: 0, size: kind.size(8), ext: Ext::widening(kind) }]))
    }
}

fn plan_return(ret: &AbiValue, regs: &mut Regs) -> Result<RetPlan, PlanError> {
    let loc = match eightbytes(ret) {
        Ok(cs) => match cs {
            [] => RetLoc::Void,
            [Class::NoClass] | [Class::NoClass, Class::NoClass] => {
                return Err(PlanError::Unsupported {
                    what: "a return value of padding only".into(),
                    reason: "no register carries it".into(),
                })
            }
            [Class::NoClass, _] => {
                return Err(PlanError::Unsupported {
                    what: "a return value whose first eightbyte is padding".into(),
                    reason: "no return location names only the second eightbyte".into(),
                })
            }
            [Class::Sse] | [Class::Sse, Class::NoClass] => RetLoc::Xmm0,
            // psABI §3.2.3 returning, 4: "the next available eightbyte of the used vector
            // register": all 16 bytes of xmm0.
            [Class::Sse, Class::SseUp] => RetLoc::Xmm0Full,
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
    // psABI §3.2.3 says nothing of the bits above a small INTEGER result (only that a
    // `_Bool`'s bits 1 to 7 are zero); gcc callers read only the value's bytes.
    Ok(RetPlan { value: ret.kind, loc, ext: Ext::widening(ret.kind) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SysV: a scalar of at most 8 bytes takes the next register of its one eightbyte's
    /// class (INTEGER or SSE), or an 8-byte stack slot; the fast path says exactly what the
    /// class walk says, for every scalar in every register and stack state.
    #[test]
    fn scalars_place_as_their_classes_say() {
        let mut kinds = vec![ValueKind::Bool, ValueKind::Pointer, ValueKind::F32, ValueKind::F64];
        for size in [1u8, 2, 4, 8] {
            kinds.extend([ValueKind::Int { size, signed: true }, ValueKind::Int { size, signed: false }]);
            kinds.push(ValueKind::TypedInt { size });
        }
        let mut checked = 0;
        for kind in kinds {
            let value = AbiValue { kind, eightbytes: None, gcc_mode: None, vector: false };
            for int in 0..=SYSV_INT_ARGS.len() {
                for sse in 0..=SYSV_SSE_ARGS {
                    for stack in [0u32, 8, 12, 40] {
                        let run = |fast: bool| {
                            let mut place = Placement { regs: Regs { int, sse }, stack, max_stack_align: 16 };
                            let parts =
                                if fast { place.scalar(kind).expect("a scalar") } else { place.by_classes(&value) };
                            (parts, place.regs.int, place.regs.sse, place.stack, place.max_stack_align)
                        };
                        assert_eq!(run(true), run(false), "{kind:?} with {int} GPRs, {sse} XMMs, {stack} bytes used");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 16 * 7 * 9 * 4);
        // Not scalars of one eightbyte: the class walk places them.
        let mut place = Placement { regs: Regs { int: 0, sse: 0 }, stack: 0, max_stack_align: 16 };
        for kind in [
            ValueKind::Int { size: 16, signed: true },
            ValueKind::ComplexF32,
            ValueKind::ComplexF64,
            ValueKind::Record { size: 8, align: 8 },
        ] {
            assert_eq!(place.scalar(kind), None, "{kind:?}");
        }
    }

    #[test]
    fn sysv_32_byte_aligned_struct_on_the_stack_gets_a_32_aligned_slot_like_gcc() {
        // gcc `function_arg_advance_64` rounds the stack words up to
        // `ix86_function_arg_boundary`, the type's alignment on x86-64 (psABI §3.2.3 names
        // only 16 and 32 for vector types; gcc applies the type's alignment to any type).
        let int = AbiValue::scalar(ValueKind::Int { size: 8, signed: true });
        let big = AbiValue {
            kind: ValueKind::Record { size: 64, align: 32 },
            eightbytes: Some(Err(Memory)),
            gcc_mode: None,
            vector: false,
        };
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
