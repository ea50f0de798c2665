//! x86-32: cdecl, stdcall, fastcall and thiscall, in their i386 Linux (System V i386 psABI,
//! as gcc implements it) and Win32 (MSVC, as mingw implements it) flavours.
//!
//! The conventions differ by one row of data ([`X86_CONVENTIONS`]): which registers take
//! the first small integer arguments, and whether the callee pops. The OS flavours differ in
//! how aggregates come back ([`returns_in_registers`]) and who pops the hidden return pointer
//! ([`callee_pops_hidden_pointer`]).

use crate::abi::{AbiValue, PlanError};
use crate::plan::{ArgPass, ArgPlan, CallPlan, Ext, Gpr, Loc, Part, Parts, RetLoc, RetPlan, ValueKind};
use crate::types::{ArrayLen, CType, FloatKind, TypeId, TypeTable};
use crate::{Arch, CallConv, Os, Target};

/// gcc's machine mode of a type on x86-32, reduced to what the i386 back end looks at.
/// gcc and mingw decide by mode, not by C type, how an aggregate is returned
/// (`ix86_return_in_memory`: "BLKmode -> memory"; `function_value_32`: SF/DF modes in st0)
/// and whether it uses up fastcall/thiscall registers (`function_arg_advance_32`: QI, HI,
/// SI, DI and BLK modes do; float and complex modes don't).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GccMode {
    /// An integer mode of this many bytes (QI, HI, SI, DI).
    Int(u32),
    /// SFmode or DFmode: a `float` or `double`.
    Float(u32),
    /// SCmode or DCmode: a complex `float` or `double`.
    Complex(u32),
    /// BLKmode: no machine mode fits; the value lives in memory.
    Blk,
}

/// The largest integer mode on x86-32 (`MAX_FIXED_MODE_SIZE` is DImode's 64 bits).
const MAX_INT_MODE_BYTES: u64 = 8;

fn int_mode_of_size(size: u64) -> GccMode {
    if matches!(size, 1 | 2 | 4) || size == MAX_INT_MODE_BYTES {
        GccMode::Int(size as u32)
    } else {
        GccMode::Blk
    }
}

/// gcc's mode of a type (gcc `stor-layout.cc`):
/// 1. scalars have their own modes;
/// 2. an array of one element has its element's mode; another array the integer mode of
///    its size, if one exists and the element is not BLK (`mode_for_array`);
/// 3. a record or union with a BLK member is BLK (`compute_record_mode`);
/// 4. a struct one of whose members spans the whole struct takes that member's mode;
/// 5. otherwise (unions always, unless their mode would be an integer one anyway) the
///    integer mode of its size, if one exists; else BLK.
pub fn gcc_mode(table: &TypeTable, id: TypeId) -> Result<GccMode, PlanError> {
    let size = table.size_of(id)?;
    Ok(match table.get(id) {
        CType::Float(FloatKind::Float) => GccMode::Float(4),
        CType::Float(_) => GccMode::Float(8),
        CType::Complex(FloatKind::Float) => GccMode::Complex(8),
        CType::Complex(_) => GccMode::Complex(16),
        CType::Array { elem, len: ArrayLen::Fixed(n) } => {
            let e = gcc_mode(table, elem.id)?;
            match (n, e) {
                (1, e) => e, // rule 2, one element
                (_, GccMode::Blk) => GccMode::Blk,
                _ => int_mode_of_size(size), // rule 2
            }
        }
        CType::Record(r) => {
            let body = r.body.as_ref().ok_or_else(|| PlanError::Incomplete { ty: table.display(id.into()) })?;
            let mut whole: Option<GccMode> = None;
            for (f, at) in body.fields.iter().zip(&body.layout.fields) {
                let fsize = match (at.bits, table.get(f.ty.id)) {
                    (Some(b), _) => u64::from(b.width).div_ceil(8),
                    (None, CType::Array { len: ArrayLen::Flexible | ArrayLen::Variable, .. }) => 0,
                    (None, _) => table.size_of(f.ty.id)?,
                };
                if fsize == 0 {
                    continue;
                }
                let m = if at.bits.is_some() {
                    GccMode::Int(table.size_of(f.ty.id)? as u32)
                } else {
                    gcc_mode(table, f.ty.id)?
                };
                if m == GccMode::Blk {
                    return Ok(GccMode::Blk); // rule 3
                }
                // Rule 4: a member as large as the record (the first one wins among equals).
                if at.bits.is_none() && fsize == size && whole.is_none() {
                    whole = Some(m);
                }
            }
            match (r.kind, whole) {
                (crate::RecordKind::Struct, Some(m)) => m,
                _ => int_mode_of_size(size), // rule 5
            }
        }
        _ => int_mode_of_size(size), // integers, bool, enums, pointers
    })
}

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

/// The decorated names Win32 gives a `__stdcall` or `__fastcall` function `name`, which
/// LuaJIT tries in turn when the plain name is not found (`lj_clib.c`, `clib_index`):
/// stdcall `_name@N` (the object file's name) and `name@N` (what a mingw DLL exports);
/// fastcall `@name@N` (both). N is the bytes of the declared parameters, each rounded up to 4
/// (`clib_func_argsize`). mingw agrees: `int __stdcall sf(char, double, struct { char c[3]; },
/// long long)` is `_sf@24` in the object and `sf@24` in the DLL, and the `__fastcall`
/// `ff(char, double, struct { char c[3]; })` is `@ff@16` in both. None for other conventions,
/// variadic functions (always cdecl) or a parameter without a size.
pub fn win32_decorated_names(
    table: &TypeTable,
    name: &str,
    conv: CallConv,
    variadic: bool,
    params: &[TypeId],
) -> Vec<String> {
    if variadic || !matches!(conv, CallConv::Stdcall | CallConv::Fastcall) {
        return Vec::new();
    }
    let mut bytes = 0;
    for &p in params {
        match table.size_of(p) {
            Ok(size) => bytes += size.next_multiple_of(4),
            Err(_) => return Vec::new(),
        }
    }
    match conv {
        CallConv::Stdcall => vec![format!("_{name}@{bytes}"), format!("{name}@{bytes}")],
        _ => vec![format!("@{name}@{bytes}")],
    }
}

/// Register arguments are "DWORD or smaller" integers and pointers (Microsoft, __fastcall);
/// gcc agrees: never floating point, 64-bit integers or aggregates.
fn fits_register(kind: ValueKind) -> bool {
    matches!(kind, ValueKind::Bool | ValueKind::Pointer)
        || matches!(kind, ValueKind::Int { size, .. } | ValueKind::TypedInt { size } if size <= 4)
}

/// Convention registers an argument that does not go in one still uses up (gcc
/// `function_arg_advance_32`): a 64-bit integer (DImode) and every struct or union (an
/// integer or BLK mode) advance the register count by their size in dwords, so the arguments
/// after them find fewer (or no) registers left; float, double and complex values use none.
/// MSVC differs here (its "first two DWORD or smaller arguments" skip them without using a
/// register); the fixtures are built by gcc and mingw, so gcc's rule is the model's.
/// The rule goes by gcc's mode, not the C type: a struct whose mode is a float's or a
/// complex's ([`gcc_mode`], e.g. `struct { double d; }`) uses none.
fn registers_used_up(value: &AbiValue) -> usize {
    match (value.kind, value.gcc_mode) {
        (ValueKind::Int { size: 8, .. } | ValueKind::TypedInt { size: 8 }, _) => 2,
        (ValueKind::Record { .. }, Some(GccMode::Float(_) | GccMode::Complex(_))) => 0,
        (ValueKind::Record { size, .. }, _) => size.div_ceil(4) as usize,
        _ => 0,
    }
}

/// Where a value comes back when it is not through a hidden pointer:
/// 1. integers, pointers, bool up to 4 bytes: eax; 64-bit integers: edx:eax;
/// 2. float and double: st(0);
/// 3. `float complex`: edx:eax (gcc; an 8-byte aggregate on Win32);
/// 4. aggregates: never on i386 Linux (gcc's default -fpcc-struct-return); on Win32 those of
///    1, 2 or 4 bytes in eax and of 8 bytes in edx:eax (MSVC "Return values").
pub fn returns_in_registers(os: Os, value: &AbiValue) -> Option<RetLoc> {
    match value.kind {
        ValueKind::Void => Some(RetLoc::Void),
        ValueKind::Int { size: 8, .. } | ValueKind::TypedInt { size: 8 } | ValueKind::ComplexF32 => {
            Some(RetLoc::EdxEax)
        }
        ValueKind::Bool | ValueKind::Int { .. } | ValueKind::TypedInt { .. } | ValueKind::Pointer => Some(RetLoc::Gpr),
        ValueKind::F32 | ValueKind::F64 => Some(RetLoc::St0),
        ValueKind::ComplexF64 => None,
        // mingw (`MS_AGGREGATE_RETURN`): an aggregate of at most 8 bytes comes back by its
        // gcc mode, unless that mode is BLK (`ix86_return_in_memory`); a struct whose mode is
        // a float's comes back in st(0), like the float.
        ValueKind::Record { .. } if os == Os::Windows => match value.gcc_mode {
            Some(GccMode::Int(8)) | Some(GccMode::Complex(8)) => Some(RetLoc::EdxEax),
            Some(GccMode::Int(_)) => Some(RetLoc::Gpr),
            Some(GccMode::Float(_)) => Some(RetLoc::St0),
            _ => None,
        },
        ValueKind::Record { .. } => None,
    }
}

/// i386 psABI: a function returning through a hidden pointer pops that pointer itself
/// (`ret $4`) even under cdecl; MSVC leaves it to the caller.
pub fn callee_pops_hidden_pointer(os: Os) -> bool {
    os == Os::Linux
}

/// Plans a call: the hidden return pointer first, then the arguments left to right; each
/// takes the next free convention register if it fits one, else the next 4-byte-aligned
/// stack slot (its size rounded up to 4). Stack slots are 4-byte aligned whatever the type's
/// alignment (gcc `ix86_function_arg_boundary`: only SSE vector types get more on i386).
pub fn plan(
    os: Os,
    conv: CallConv,
    variadic: bool,
    ret: &AbiValue,
    args: &[AbiValue],
    fixed: usize,
) -> Result<CallPlan, PlanError> {
    plan_into(Vec::new(), os, conv, variadic, ret, args, fixed)
}

/// [`plan`], its list of arguments written into `out` (cleared first): a caller that
/// plans often passes the list of the last plan it dropped back and allocates none.
pub(crate) fn plan_into(
    mut out: Vec<ArgPlan>,
    os: Os,
    conv: CallConv,
    variadic: bool,
    ret: &AbiValue,
    args: &[AbiValue],
    fixed: usize,
) -> Result<CallPlan, PlanError> {
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
    let ret_loc = match returns_in_registers(os, ret) {
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
    out.clear();
    out.reserve(args.len());
    for a in args {
        let size = a.kind.size(4);
        let reg = match row.regs.get(next_reg) {
            Some(g) if fits_register(a.kind) => {
                next_reg += 1;
                Some(*g)
            }
            _ => {
                next_reg = (next_reg + registers_used_up(a)).min(row.regs.len());
                None
            }
        };
        let loc = match reg {
            Some(g) => Loc::Gpr(g),
            None => take_stack(size),
        };
        out.push(ArgPlan {
            value: a.kind,
            pass: ArgPass::Direct(Parts::new(&[Part { loc, offset: 0, size, ext: Ext::widening(a.kind) }])),
        });
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
        // i386 psABI 2.2.3 (and the Win32 conventions) leave the bits of eax above a small
        // integer result unspecified; gcc and MSVC callers re-extend what they read.
        ret: RetPlan { value: ret.kind, loc: ret_loc, ext: Ext::widening(ret.kind) },
        stack_bytes: stack,
        stack_align: Target { arch: Arch::X86, os }.stack_align(),
        shadow: 0,
        copy_area: (0, 0),
        callee_pops,
        al: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decorated names of the function `name` declared by `src` for Win32.
    fn decorated(src: &str, name: &str) -> Vec<String> {
        use crate::cdef::{cdef, CScope};
        let mut t = TypeTable::new(Target::X86_WIN);
        let mut scope = CScope::new(&mut t);
        cdef(&mut t, &mut scope, src, &[]).unwrap();
        let CType::Function(f) = t.get(scope.function(name).unwrap().ty).clone() else { panic!("{name}") };
        let params: Vec<TypeId> = f.params.iter().map(|p| p.ty.id).collect();
        win32_decorated_names(&t, name, f.conv, f.variadic, &params)
    }

    #[test]
    fn win32_decorations_are_mingws() {
        // What i686-w64-mingw32-gcc names these (nm of the object, objdump -p of the DLL).
        let s3 = "struct s3 { char a[3]; };";
        assert_eq!(
            decorated(&format!("{s3} int __stdcall sf(char a, double b, struct s3 c, long long d);"), "sf"),
            ["_sf@24", "sf@24"]
        );
        assert_eq!(decorated(&format!("{s3} int __fastcall ff(char a, double b, struct s3 c);"), "ff"), ["@ff@16"]);
        assert_eq!(decorated("int __stdcall sv(void);", "sv"), ["_sv@0", "sv@0"]);
        assert_eq!(decorated("int cf(int a);", "cf"), Vec::<String>::new());
        assert_eq!(decorated("int __stdcall vf(int a, ...);", "vf"), Vec::<String>::new());
    }

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

    use crate::{abi_value, Field, FloatKind, IntKind, Position, RecordAttrs, RecordKind, Target, TypeTable};

    fn record(t: &mut TypeTable, fields: Vec<Field>, attrs: RecordAttrs) -> AbiValue {
        let id = t.new_record(RecordKind::Struct, None);
        t.define_record(id, fields, attrs).unwrap();
        abi_value(t, id.into(), Position::Param).unwrap()
    }

    #[test]
    fn win32_struct_of_one_float_or_double_returns_in_st0() {
        // mingw: `struct { float f; }` has gcc's SFmode and comes back like a float, in st(0)
        // (`function_value_32`); proven by the emulator matrix (x86-win, struct R120/R124).
        let mut t = TypeTable::new(Target::X86_WIN);
        let f = t.float(FloatKind::Float);
        let d = t.float(FloatKind::Double);
        let sf = record(&mut t, vec![Field::named("f", f)], RecordAttrs::default());
        let sd = record(&mut t, vec![Field::named("d", d)], RecordAttrs::default());
        assert_eq!(sf.gcc_mode, Some(GccMode::Float(4)));
        assert_eq!(returns_in_registers(Os::Windows, &sf), Some(RetLoc::St0));
        assert_eq!(returns_in_registers(Os::Windows, &sd), Some(RetLoc::St0));
        // On i386 Linux every struct still returns through memory.
        assert_eq!(returns_in_registers(Os::Linux, &sf), None);
    }

    #[test]
    fn win32_eight_byte_struct_with_a_blk_member_returns_through_memory() {
        // gcc `ix86_return_in_memory`: a BLKmode aggregate goes to memory whatever its size.
        // `struct { struct __attribute__((packed)) { char c; short s; } p; int e; }` is 8
        // bytes, but its 3-byte member has no machine mode (matrix: x86-win struct R215).
        let mut t = TypeTable::new(Target::X86_WIN);
        let c = t.int(IntKind::Char);
        let sh = t.int(IntKind::Short);
        let i = t.int(IntKind::Int);
        let inner = t.new_record(RecordKind::Struct, None);
        t.define_record(
            inner,
            vec![Field::named("c", c), Field::named("s", sh)],
            RecordAttrs { packed: true, ..RecordAttrs::default() },
        )
        .unwrap();
        let outer = record(&mut t, vec![Field::named("p", inner), Field::named("e", i)], RecordAttrs::default());
        assert_eq!(outer.kind, ValueKind::Record { size: 8, align: 4 });
        assert_eq!(outer.gcc_mode, Some(GccMode::Blk));
        assert_eq!(returns_in_registers(Os::Windows, &outer), None);
    }

    #[test]
    fn win32_four_byte_struct_holding_a_char_array_of_three_returns_through_memory() {
        // `struct { unsigned char a[3]; signed char b; }`: char[3] is BLKmode, so is the
        // struct (matrix: x86-win struct R220); `char[4]` alone would be SImode, in eax.
        let mut t = TypeTable::new(Target::X86_WIN);
        let uc = t.int(IntKind::UChar);
        let sc = t.int(IntKind::SChar);
        let a3 = t.array_of(uc, crate::ArrayLen::Fixed(3));
        let a4 = t.array_of(uc, crate::ArrayLen::Fixed(4));
        let s = record(&mut t, vec![Field::named("a", a3), Field::named("b", sc)], RecordAttrs::default());
        assert_eq!(returns_in_registers(Os::Windows, &s), None);
        let s4 = record(&mut t, vec![Field::named("a", a4)], RecordAttrs::default());
        assert_eq!(returns_in_registers(Os::Windows, &s4), Some(RetLoc::Gpr));
    }

    #[test]
    fn gcc_fastcall_struct_of_one_complex_double_uses_no_register() {
        // gcc `function_arg_advance_32` goes by mode: `struct { double _Complex z; }` has
        // DCmode, which advances no register, so the short after it takes ecx (matrix:
        // x86-linux fastcall callee_8626).
        let mut t = TypeTable::new(Target::X86_LINUX);
        let z = t.complex(FloatKind::Double);
        let us = t.int(IntKind::UShort);
        let s = record(&mut t, vec![Field::named("z", z)], RecordAttrs::default());
        let short = abi_value(&t, us.into(), Position::Param).unwrap();
        let void = AbiValue::scalar(ValueKind::Void);
        let plan = plan(Os::Linux, CallConv::Fastcall, false, &void, &[s, short], 2).unwrap();
        assert_eq!(first_loc(&plan, 1), Loc::Gpr(Gpr::CX));
        assert_eq!(plan.callee_pops, 16);
    }

    #[test]
    fn gcc_mode_of_a_union_is_an_integer_mode_even_over_a_float() {
        // gcc `compute_record_mode`: a union takes its widest member's mode only when that is
        // an integer mode; `union { float f; int i; }` is SImode.
        let mut t = TypeTable::new(Target::X86_WIN);
        let f = t.float(FloatKind::Float);
        let i = t.int(IntKind::Int);
        let u = t.new_record(RecordKind::Union, None);
        t.define_record(u, vec![Field::named("f", f), Field::named("i", i)], RecordAttrs::default()).unwrap();
        assert_eq!(gcc_mode(&t, u).unwrap(), GccMode::Int(4));
    }
}
