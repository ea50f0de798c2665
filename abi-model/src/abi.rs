//! The shared front of every ABI module: C types to [`AbiValue`]s (adjustments, promotions,
//! unsupported types), then one `match` on the target that picks the ABI module.

use crate::plan::{CallPlan, ValueKind};
use crate::types::{CType, FloatKind, QualType, TypeError, TypeTable};
use crate::x64_sysv::{self, Eightbytes};
use crate::x86::GccMode;
use crate::{x64_win, x86, Arch, CallConv, Os, Target};
use std::fmt;

/// A function signature to plan.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Signature {
    /// The return type.
    pub ret: QualType,
    /// The declared parameter types.
    pub params: Vec<QualType>,
    /// Declared with `...`.
    pub variadic: bool,
    /// The calling convention as written.
    pub conv: CallConv,
}

impl Signature {
    /// A signature from its parts.
    pub fn new(ret: impl Into<QualType>, params: Vec<QualType>, variadic: bool, conv: CallConv) -> Signature {
        Signature { ret: ret.into(), params, variadic, conv }
    }
}

/// Why a call cannot be planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// The model has no rule for this (e.g. `long double`): an error, never a guess.
    Unsupported {
        /// What was asked for, in C.
        what: String,
        /// Why it is not supported.
        reason: String,
    },
    /// `void` as a parameter type.
    VoidParameter,
    /// A type passed or returned by value that has no definition (spelled in C).
    Incomplete {
        /// The type.
        ty: String,
    },
    /// An array or function type returned.
    ReturnsArrayOrFunction {
        /// The type.
        ty: String,
    },
    /// A record whose size does not fit the ABI's 32-bit sizes of values passed by value.
    TooLargeByValue {
        /// The type.
        ty: String,
    },
    /// Extra arguments given to a function that is not variadic.
    NotVariadic,
    /// The layout of a type could not be computed.
    Type(TypeError),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Unsupported { what, reason } => write!(f, "'{what}' is not supported: {reason}"),
            PlanError::VoidParameter => f.write_str("'void' is not a valid parameter type"),
            PlanError::Incomplete { ty } => write!(f, "'{ty}' is incomplete"),
            PlanError::ReturnsArrayOrFunction { ty } => write!(f, "a function cannot return '{ty}'"),
            PlanError::TooLargeByValue { ty } => write!(f, "'{ty}' is too large to pass by value"),
            PlanError::NotVariadic => f.write_str("extra arguments to a function that is not variadic"),
            PlanError::Type(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PlanError {}

impl From<TypeError> for PlanError {
    fn from(e: TypeError) -> PlanError {
        match e {
            TypeError::Unsupported { ty, reason } => PlanError::Unsupported { what: ty, reason: reason.into() },
            other => PlanError::Type(other),
        }
    }
}

/// One argument or return value as the ABI modules see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbiValue {
    /// Its kind after adjustment and promotion.
    pub kind: ValueKind,
    /// x86-64 System V only: the classes of its eightbytes (computed from the record's
    /// members, which only that ABI looks at). `None` on the other targets.
    pub eightbytes: Option<Eightbytes>,
    /// x86-32 only: gcc's machine mode of an aggregate, which decides how gcc and mingw
    /// return it and whether it uses up fastcall registers ([`crate::x86::gcc_mode`]).
    /// `None` on the other targets and for scalars (their kind says it).
    pub gcc_mode: Option<GccMode>,
    /// A gcc vector type itself (`vector_size(n)`, `mode(V4SF)`), passed as a block of
    /// bytes ([`ValueKind::Record`]) but returned by its own rule on Windows (16 bytes in
    /// `xmm0`, like `__m128`). A record holding a vector is not one.
    pub vector: bool,
}

impl AbiValue {
    /// A value whose kind alone decides its passing (every scalar).
    pub fn scalar(kind: ValueKind) -> AbiValue {
        AbiValue { kind, eightbytes: None, gcc_mode: None, vector: false }
    }
}

/// Where a type is used: the adjustments differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// A declared parameter: arrays and functions decay to pointers.
    Param,
    /// A variadic argument: also the default argument promotions (float -> double, integers
    /// narrower than int -> int).
    Vararg,
    /// The return value: `void` allowed, arrays and functions not.
    Return,
}

/// Turns a C type into the value the ABI passes, for `pos`.
pub fn abi_value(table: &TypeTable, ty: QualType, pos: Position) -> Result<AbiValue, PlanError> {
    let spelled = || table.display(ty);
    // Only an array (a vector), a record or a wide integer can be or hold what is refused: a
    // scalar skips the walks (most of the cost of planning a scalar parameter).
    let ctype = table.get(ty.id);
    if matches!(ctype, CType::Array { .. } | CType::Record(_) | CType::WideInt { .. }) {
        if let Some(reason) = vector_refusal(table, ty.id) {
            return Err(PlanError::Unsupported { what: spelled(), reason: reason.into() });
        }
        if let Some(reason) = wide_int_refusal(table, ty.id) {
            return Err(PlanError::Unsupported { what: spelled(), reason: reason.into() });
        }
    }
    let kind = match ctype {
        CType::Void if pos == Position::Return => ValueKind::Void,
        CType::Void => return Err(PlanError::VoidParameter),
        CType::Bool => ValueKind::Bool,
        CType::Int(k) => {
            let l = crate::layout::int_layout(table.target(), *k);
            ValueKind::Int { size: l.size as u8, signed: k.is_signed() }
        }
        CType::Enum(e) if e.complete => {
            let l = crate::layout::int_layout(table.target(), e.repr);
            ValueKind::Int { size: l.size as u8, signed: e.repr.is_signed() }
        }
        CType::Enum(_) => return Err(PlanError::Incomplete { ty: spelled() }),
        CType::Float(FloatKind::Float) => ValueKind::F32,
        CType::Float(FloatKind::Double) => ValueKind::F64,
        CType::Complex(FloatKind::Float) => ValueKind::ComplexF32,
        CType::Complex(FloatKind::Double) => ValueKind::ComplexF64,
        CType::Float(FloatKind::LongDouble) | CType::Complex(FloatKind::LongDouble) => {
            return Err(PlanError::Unsupported {
                what: spelled(),
                reason: "long double is passed differently on every target".into(),
            })
        }
        // x86-64 only (`wide_int_refusal`): gcc's and mingw's `__int128`.
        CType::WideInt { size, signed } => ValueKind::Int { size: *size as u8, signed: *signed },
        // A bool of more than one byte (`_Bool int`) is passed as the integer of its size
        // (LuaJIT `ctype_isinteger_or_bool`; gcc and mingw: the same-size integer's rules).
        CType::WideBool { size } => ValueKind::TypedInt { size: *size as u8 },
        CType::Pointer(_) => ValueKind::Pointer,
        // A 4-byte pointer on a 64-bit target is, to the ABI, a 4-byte unsigned integer.
        CType::Ptr32(_) => ValueKind::TypedInt { size: 4 },
        // A vector is a value, not an array that decays: its bytes travel as a block, in the
        // places the ABI module's rules for it give.
        CType::Array { .. } if table.is_vector(ty.id) => {
            let l = table.layout(ty.id)?;
            ValueKind::Record { size: l.size as u32, align: l.align }
        }
        CType::Array { .. } | CType::Function(_) if pos != Position::Return => ValueKind::Pointer,
        CType::Array { .. } | CType::Function(_) => return Err(PlanError::ReturnsArrayOrFunction { ty: spelled() }),
        CType::Record(_) => {
            let l = table.layout(ty.id)?;
            if l.size == 0 {
                return Err(PlanError::Unsupported {
                    what: spelled(),
                    reason: "empty structs by value are passed differently by gcc and MSVC".into(),
                });
            }
            let size = u32::try_from(l.size).map_err(|_| PlanError::TooLargeByValue { ty: spelled() })?;
            ValueKind::Record { size, align: l.align }
        }
    };
    let kind = match (pos, kind) {
        (Position::Vararg, ValueKind::F32) => ValueKind::F64,
        (Position::Vararg, ValueKind::Bool) => ValueKind::Int { size: 4, signed: true },
        // A 2-byte bool is promoted as the 2-byte integer it is passed as.
        (Position::Vararg, ValueKind::TypedInt { size }) if size < 4 => ValueKind::Int { size: 4, signed: true },
        (Position::Vararg, ValueKind::Int { size, signed }) if size < 4 => {
            // Integer promotions: every narrower type fits in int.
            let _ = signed;
            ValueKind::Int { size: 4, signed: true }
        }
        (_, k) => k,
    };
    // Only a record has eightbytes or a machine mode, and only an array is a vector: a
    // scalar (most parameters) asks the table nothing more.
    let (eightbytes, gcc_mode) = match kind {
        ValueKind::Record { .. } => (
            match table.target() {
                Target::X64_SYSV => Some(x64_sysv::classify_record(table, ty.id)?),
                _ => None,
            },
            match table.target().arch {
                Arch::X86 => Some(x86::gcc_mode(table, ty.id)?),
                _ => None,
            },
        ),
        _ => (None, None),
    };
    let vector = matches!(ctype, CType::Array { .. }) && table.is_vector(ty.id);
    Ok(AbiValue { kind, eightbytes, gcc_mode, vector })
}

/// Plans a call of `sig` with the actual types `varargs` after its fixed parameters.
pub fn plan_call(table: &TypeTable, sig: &Signature, varargs: &[QualType]) -> Result<CallPlan, PlanError> {
    plan_call_in(&mut PlanBuffers::default(), table, sig, varargs)
}

/// The lists planning a call fills, kept by a caller that plans many calls and drops each
/// plan soon after ([`plan_call_in`]), so that planning allocates nothing it drops.
#[derive(Debug, Default)]
pub struct PlanBuffers {
    /// The arguments as the ABI modules see them (a plan's input).
    values: Vec<AbiValue>,
    /// A dropped plan's [`CallPlan::args`], which the next plan fills: give it back with
    /// [`PlanBuffers::recycle`].
    args: Vec<crate::plan::ArgPlan>,
}

impl PlanBuffers {
    /// Keeps `plan`'s list of arguments for the next plan.
    pub fn recycle(&mut self, plan: CallPlan) {
        self.args = plan.args;
    }
}

/// [`plan_call`] with the lists of `buffers`: its plan's [`CallPlan::args`] is the list
/// recycled last ([`PlanBuffers::recycle`]).
pub fn plan_call_in(
    buffers: &mut PlanBuffers,
    table: &TypeTable,
    sig: &Signature,
    varargs: &[QualType],
) -> Result<CallPlan, PlanError> {
    if !sig.variadic && !varargs.is_empty() {
        return Err(PlanError::NotVariadic);
    }
    let ret = abi_value(table, sig.ret, Position::Return)?;
    let args = &mut buffers.values;
    args.clear();
    args.reserve(sig.params.len() + varargs.len());
    for p in &sig.params {
        args.push(abi_value(table, *p, Position::Param)?);
    }
    for v in varargs {
        args.push(abi_value(table, *v, Position::Vararg)?);
    }
    let out = std::mem::take(&mut buffers.args);
    plan_values_into(out, table.target(), sig.conv, sig.variadic, &ret, args, sig.params.len())
}

/// Why a value of type `id`, a vector or a record holding one (in a member, an array member,
/// a nested record), cannot be passed by value on the table's target; `None` when it can
/// (or holds no vector).
/// - i386: gcc passes an 8-byte vector in `mm0`-`mm2` with `-mmmx`, a 16-byte one in
///   `xmm0`-`xmm2` with `-msse`, and both on the stack without them (`gcc -m32` defaults to
///   neither; it warns "changes the ABI"): how a library was built decides, not the target.
/// - x86-64: a 32- or 64-byte vector goes in `ymm`/`zmm` registers when the library was built
///   with `-mavx`/`-mavx512f` and in memory without (gcc warns the same): refused alike.
/// - x86-64: a vector of one `float` or `double` is `BLKmode` to gcc: SysV passes it in
///   memory (clang: a `float` one in a general register), mingw by reference (MSVC: by
///   value): refused.
fn vector_refusal(table: &TypeTable, id: crate::types::TypeId) -> Option<&'static str> {
    if table.target().arch == Arch::X86 {
        return holds(table, id, 0, &|t, id| t.is_vector(id)).then_some(
            "on i386 gcc passes vectors in MMX or SSE registers or on the stack depending on \
             -mmmx/-msse, which differ between libraries (gcc -m32 enables neither)",
        );
    }
    let big = |t: &TypeTable, id| t.is_vector(id) && t.size_of(id).is_ok_and(|s| s > 16);
    if holds(table, id, 0, &big) {
        return Some(
            "vectors of 32 or 64 bytes go in AVX registers when the library was built with -mavx \
             and in memory without it: the model cannot know which",
        );
    }
    let one_float = |t: &TypeTable, id| {
        t.is_vector(id)
            && matches!(t.get(id), CType::Array { elem, len: crate::types::ArrayLen::Fixed(1) }
                if matches!(t.get(elem.id), CType::Float(_)))
    };
    holds(table, id, 0, &one_float).then_some(
        "a vector of one float or double has no machine mode in gcc, which passes it by rules \
         of its own (in memory on x86-64 Linux, by reference on Windows) that clang and MSVC \
         do not share",
    )
}

/// Why a value of type `id` that is or holds a 16- or 32-byte integer (`mode(TI)`,
/// `mode(OI)`) cannot be passed by value, or `None` when it can: a 16-byte integer itself on
/// x86-64, where gcc and mingw have `__int128` (SysV: two INTEGER eightbytes; Windows: by
/// reference, returned in xmm0), and a record holding one there. No compiler passes a
/// 32-byte integer, and gcc -m32 has no `__int128`.
fn wide_int_refusal(table: &TypeTable, id: crate::types::TypeId) -> Option<&'static str> {
    match table.get(id) {
        CType::WideInt { size: 16, .. } if table.target().arch == Arch::X86_64 => None,
        CType::WideInt { size: 16, .. } => {
            Some("a 128-bit integer (mode(TI)) by value has no rule on 32-bit x86: gcc -m32 has no __int128")
        }
        CType::WideInt { .. } => Some("a 256-bit integer (mode(OI)) by value has no rule: no C compiler passes one"),
        _ if holds(table, id, 0, &|t, id| matches!(t.get(id), CType::WideInt { size, .. } if *size > 16)) => {
            Some("a record holding a 256-bit integer (mode(OI)) by value has no rule: no C compiler passes one")
        }
        // A record holding `__int128` goes by the record rules (SysV: its members' INTEGER
        // eightbytes, 16-aligned; Windows: by its size), as gcc and mingw pass it.
        _ if table.target().arch != Arch::X86_64
            && holds(table, id, 0, &|t, id| matches!(t.get(id), CType::WideInt { .. })) =>
        {
            Some("a record holding a 128-bit integer (mode(TI)) by value has no rule on 32-bit x86: gcc -m32 has no __int128")
        }
        _ => None,
    }
}

/// Whether `id` is, or (a record's member, an array member's element, nested) holds, a type
/// for which `is` is true. Array parameters decay to pointers: a top-level array holds nothing.
fn holds(
    table: &TypeTable,
    id: crate::types::TypeId,
    depth: u32,
    is: &dyn Fn(&TypeTable, crate::types::TypeId) -> bool,
) -> bool {
    if is(table, id) {
        return true;
    }
    if depth > crate::types::MAX_TYPE_DEPTH {
        return false;
    }
    match table.get(id) {
        CType::Array { elem, .. } if depth > 0 => holds(table, elem.id, depth + 1, is),
        CType::Record(r) => {
            r.body.as_ref().is_some_and(|b| b.fields.iter().any(|f| holds(table, f.ty.id, depth + 1, is)))
        }
        _ => false,
    }
}

/// Plans a call from already-classified values: the single place that picks the ABI module.
pub fn plan_values(
    target: Target,
    conv: CallConv,
    variadic: bool,
    ret: &AbiValue,
    args: &[AbiValue],
    fixed: usize,
) -> Result<CallPlan, PlanError> {
    plan_values_into(Vec::new(), target, conv, variadic, ret, args, fixed)
}

/// [`plan_values`], the plan's list of arguments written into `out` (cleared first).
fn plan_values_into(
    out: Vec<crate::plan::ArgPlan>,
    target: Target,
    conv: CallConv,
    variadic: bool,
    ret: &AbiValue,
    args: &[AbiValue],
    fixed: usize,
) -> Result<CallPlan, PlanError> {
    match (target.arch, target.os) {
        (Arch::X86, os) => x86::plan_into(out, os, conv, variadic, ret, args, fixed),
        (Arch::X86_64, Os::Linux) => x64_sysv::plan_into(out, variadic, ret, args, fixed),
        (Arch::X86_64, Os::Windows) => x64_win::plan_into(out, variadic, ret, args, fixed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{FloatKind, IntKind};
    use crate::CallConv;

    /// Planning with recycled lists gives the plan a fresh one does, whatever the last plan
    /// left in them (a longer list, other kinds), on every target.
    #[test]
    fn a_plan_from_recycled_lists_is_the_plan_from_new_ones() {
        for target in [Target::X86_LINUX, Target::X86_WIN, Target::X64_SYSV, Target::X64_WIN] {
            let mut t = TypeTable::new(target);
            let int = QualType::plain(t.int(IntKind::Int));
            let double = QualType::plain(t.float(FloatKind::Double));
            let long_long = QualType::plain(t.int(IntKind::LongLong));
            let ptr = QualType::plain(t.pointer_to(int));
            let long = Signature::new(
                double,
                vec![double, int, long_long, double, ptr, int, double, int, double],
                false,
                CallConv::Cdecl,
            );
            let short = Signature::new(int, vec![ptr, double], false, CallConv::Cdecl);
            let mut buffers = PlanBuffers::default();
            for sig in [&long, &short, &long, &short] {
                let plan = plan_call_in(&mut buffers, &t, sig, &[]).unwrap();
                assert_eq!(plan, plan_call(&t, sig, &[]).unwrap(), "{target:?}");
                buffers.recycle(plan);
            }
        }
    }
}
