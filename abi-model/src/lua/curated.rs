//! The curated signatures every backend shows in its disassembly snapshots: one list, written
//! as C, so the three backends' listings can be read side by side. It covers every step kind
//! and return location: integers of each width, floats, pointers, records by value of each
//! class and size, complex, stack arguments, hidden return pointers, a variadic call, and the
//! x86 conventions (their keywords are ignored on x86-64, as by LuaJIT).

use crate::cdef::{cdef, parse_type, CScope};
use crate::lua::helpers::Helper;
use crate::lua::steps::{stub_program_inline, thunk_program_inline, CallbackFunc, CdataHeader, CdataLayout, Inline};
use crate::lua::vm::LuaVm;
use crate::lua::{Backend, BackendError, CallSlots, CodeEnv};
use crate::{plan_call, CType, CallPlan, CallbackFrame, Signature, Target, TypeTable};

/// The record types the signatures use.
pub const TYPES: &str = "
struct fi { float f; int i; };
struct big24 { int64_t a; double b; int64_t c; };
struct ld { int64_t l; double d; };
struct dl { double d; int64_t l; };
struct ll { int64_t a; int64_t b; };
struct fff { float x, y, z; };
struct rgb { uint8_t r, g, b; };
struct s7 { int a; short b; char c; };
struct f1 { float f; };
";

/// One curated signature.
#[derive(Clone, Copy, Debug)]
pub struct Curated {
    /// A short name (the snapshot section).
    pub name: &'static str,
    /// The function declaration, in C.
    pub decl: &'static str,
    /// For a variadic function: the types of the extra arguments of the call shown.
    pub varargs: &'static [&'static str],
}

const fn c(name: &'static str, decl: &'static str) -> Curated {
    Curated { name, decl, varargs: &[] }
}

/// The list.
pub const CURATED: &[Curated] = &[
    c("add", "int add(int a, int b)"),
    c("mix", "double mix(double a, int b, double c, int64_t d)"),
    c("void_void", "void nothing(void)"),
    c("float_float", "float half(float x)"),
    c("ptr_ptr", "void *next(void *p, size_t n)"),
    c("u64_u64", "uint64_t rot(uint64_t x, unsigned char n)"),
    c("widen", "char widen(bool b, char c, unsigned short u)"),
    c("ret_bool", "bool is_odd(short s)"),
    c("ret_ushort", "unsigned short lo16(unsigned int x)"),
    c("struct_fi", "struct fi swap_fi(struct fi v)"),
    c("struct_big24", "struct big24 twice(struct big24 v, int k)"),
    c("struct_ld", "struct ld make_ld(int64_t l, double d)"),
    c("struct_dl", "struct dl flip_dl(struct ld v)"),
    c("struct_ll", "struct ll add_ll(struct ll a, struct ll b)"),
    c("struct_fff", "struct fff scale(struct fff v, float k)"),
    c("struct_rgb", "struct rgb gray(struct rgb c)"),
    c("struct_s7", "struct s7 bump(struct s7 v)"),
    c("struct_f1", "struct f1 neg(struct f1 v)"),
    c("complex_f32", "float complex cmul(float complex a, float complex b)"),
    c("complex_f64", "double complex conj(double complex a)"),
    c("sret_only", "struct big24 make_big(int64_t a)"),
    c("mixed10", "double mixed10(int a, double b, int64_t c, float d, char e, double f, unsigned short g, int h, void *p, int j)"),
    c(
        "many16",
        "double many16(double d0, double d1, double d2, double d3, double d4, double d5, double d6, double d7, double d8, \
         int i0, int i1, int i2, int i3, int i4, int i5, int i6)",
    ),
    c("stack_struct", "int64_t late(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, struct fi s, struct fi t)"),
    Curated { name: "snprintf", decl: "int snprintf(char *buf, size_t n, const char *fmt, ...)", varargs: &["double", "int", "double"] },
    c("stdcall", "int __stdcall sub2(int a, int b)"),
    c("fastcall", "int __fastcall fmix(int a, long long b, char c, int d)"),
    c("thiscall", "double __thiscall method(void *self, double x, int y)"),
];

/// A curated signature planned for a target.
#[derive(Clone, Debug)]
pub struct CuratedPlan {
    /// The entry it comes from.
    pub curated: Curated,
    /// Its plan on the target.
    pub plan: CallPlan,
}

/// Every curated signature planned for `target`, in list order. Panics only if the list
/// itself is wrong (a test of this module proves it is not).
pub fn curated_plans(target: Target) -> Vec<CuratedPlan> {
    let mut table = TypeTable::new(target);
    let mut scope = CScope::new(&mut table);
    cdef(&mut table, &mut scope, TYPES, &[]).expect("curated types parse");
    CURATED
        .iter()
        .map(|cur| {
            cdef(&mut table, &mut scope, &format!("{};", cur.decl), &[])
                .unwrap_or_else(|e| panic!("{}: {e}", cur.decl));
            let name = cur
                .decl
                .split('(')
                .next()
                .and_then(|head| head.split_whitespace().last())
                .map(|n| n.trim_start_matches('*'))
                .expect("a name");
            let f = scope.function(name).unwrap_or_else(|| panic!("{name} declared"));
            let CType::Function(ft) = table.get(f.ty).clone() else { unreachable!("a function") };
            let varargs: Vec<_> = cur
                .varargs
                .iter()
                .map(|v| parse_type(&mut table, &mut scope, v, &[]).unwrap_or_else(|e| panic!("{v}: {e}")))
                .collect();
            let sig = Signature::new(ft.ret, ft.params.iter().map(|p| p.ty).collect(), ft.variadic, ft.conv);
            let plan = plan_call(&table, &sig, &varargs).unwrap_or_else(|e| panic!("{target}: {}: {e}", cur.decl));
            CuratedPlan { curated: *cur, plan }
        })
        .collect()
}

/// A made-up cdata header for listings of inline record arguments (lua-adapter's layout on
/// Lua 5.4+, with a recognisable key).
pub const LISTING_CDATA: CdataHeader =
    CdataHeader { size: 16, desc_at: 0, bytes_at: 16, tag_at: 8, tag_rotate: 17, tag_key: 0x5A5A_5A5A_5A5A_5A5A };

/// Where the listings' ctypes hold the address of their bare values' metatable (lua-adapter
/// stores values bare on Lua 5.1–5.3; the listings' ctypes are 16 bytes apart).
pub const LISTING_BARE: CdataLayout = CdataLayout::Bare { desc_metatable_at: 8 };

/// The cdata layout of the listings for the Lua of `vm`: bare values where a userdata has
/// no user-value count (5.1–5.3, as lua-adapter stores them there), [`LISTING_CDATA`]
/// elsewhere.
pub fn listing_cdata(vm: LuaVm) -> CdataLayout {
    match vm.userdata.no_user_values_at {
        None => LISTING_BARE,
        Some(_) => CdataLayout::Header(LISTING_CDATA),
    }
}

/// Where the listings' callback records hold their function's value (lua-adapter's layout:
/// at the start of the record).
pub const LISTING_CALLBACK: CallbackFunc = CallbackFunc { value_at: 0, tag_at: 8 };

/// The inline steps of the listings (`cargo xtask disasm --lua`, the backends' inline
/// snapshots) and of the emulator's inline rows: everything a namespace function's stub or a
/// callback's thunk may take inline in lua-adapter (the function address in upvalue 3, errno,
/// strings for every pointer argument, records as [`listing_cdata`] says, the callback's entry
/// with [`LISTING_CALLBACK`]).
pub fn listing_inline(vm: LuaVm) -> Inline {
    Inline {
        vm,
        func_upvalue: Some(3),
        errno: true,
        string_args: u64::MAX,
        cdata: Some(listing_cdata(vm)),
        callback: Some(LISTING_CALLBACK),
    }
}

/// Where listings assemble their code: an address whose bytes are recognisable.
pub const LISTING_BASE: u64 = 0x10_0000;

/// Made-up, recognisable helper and ctype addresses for listings (a disassembler given this
/// environment names the helpers), of the target's pointer width.
pub fn listing_env(target: Target, nargs: usize) -> CodeEnv {
    let (code, data, callback) = if target.pointer_size() == 8 {
        (0x7f00_0000_0000, 0x5500_0000_0000, 0x5600_0000_0000)
    } else {
        (0x7f00_0000, 0x5500_0000, 0x5600_0000)
    };
    CodeEnv {
        helpers: Helper::ALL.iter().map(|h| code + 0x1000 + 0x10 * h.id() as u64).collect(),
        arg_ctypes: (0..nargs).map(|i| data + 0x100 + 0x10 * i as u64).collect(),
        ret_ctype: data,
        callback_data: callback,
        call_slots: Some(CallSlots {
            saved_errno: data + 0x80,
            calling_l: data + 0x88,
            pending_error: data + 0x90,
            no_pending: -2,
            main_l: data + 0x98,
        }),
    }
}

/// A disassembler: code bytes, their base address and the environment they were built with.
pub type Disassembler = fn(&[u8], u64, &CodeEnv) -> String;

/// The listing of one signature: its plan, the stub program and code, and (unless
/// `variadic_call`: variadic functions cannot be callbacks) the thunk program and code, all
/// with the inline steps `inline` allows, built by `backend` at [`LISTING_BASE`] with
/// [`listing_env`].
pub fn listing(
    plan: &CallPlan,
    backend: &dyn Backend,
    disasm: Disassembler,
    variadic_call: bool,
    inline: Option<&Inline>,
) -> Result<String, BackendError> {
    let env = listing_env(backend.target(), plan.args.len());
    let stub = stub_program_inline(plan, 1, inline);
    let code = backend.stub(&stub, LISTING_BASE, &env)?;
    let mut out = format!(
        "plan:\n{plan}\n\nstub program:\n{stub}stub ({} bytes):\n{}",
        code.len(),
        disasm(&code, LISTING_BASE, &env)
    );
    if variadic_call {
        out.push_str("\n(no callback thunk: variadic functions cannot be callbacks)\n");
    } else {
        let thunk = thunk_program_inline(&CallbackFrame::from_plan(plan), inline);
        let code = backend.thunk(&thunk, LISTING_BASE, &env)?;
        out.push_str(&format!(
            "\nthunk program:\n{thunk}thunk ({} bytes):\n{}",
            code.len(),
            disasm(&code, LISTING_BASE, &env)
        ));
    }
    Ok(out)
}

/// A curated signature whose code `backend` could not build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListingError {
    /// The signature, in C.
    pub decl: &'static str,
    /// Why.
    pub cause: BackendError,
}

impl std::fmt::Display for ListingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.decl, self.cause)
    }
}

/// The cause is part of the message, so it is not also a `source`.
impl std::error::Error for ListingError {}

/// Every curated signature's [`listing`] on `backend`'s target, one section each: what the
/// backends' snapshots show. With `inline`, the stubs take the inline steps it allows (the
/// signatures `only` names, or all).
pub fn curated_listing(
    backend: &dyn Backend,
    disasm: Disassembler,
    inline: Option<&Inline>,
    only: &[&str],
) -> Result<String, ListingError> {
    let plans = curated_plans(backend.target());
    let shown: Vec<_> = plans.into_iter().filter(|c| only.is_empty() || only.contains(&c.curated.name)).collect();
    plans_listing(backend, disasm, inline, &shown)
}

/// The [`listing`] of each of `plans` (planned for `backend`'s target), one section each
/// headed `==== name: declaration`, as in [`curated_listing`]: for a backend's own topics
/// beyond the shared list.
pub fn plans_listing(
    backend: &dyn Backend,
    disasm: Disassembler,
    inline: Option<&Inline>,
    plans: &[CuratedPlan],
) -> Result<String, ListingError> {
    let mut out = String::new();
    for c in plans {
        out.push_str(&format!("==== {}: {}", c.curated.name, c.curated.decl));
        if !c.curated.varargs.is_empty() {
            out.push_str(&format!(" called with ({})", c.curated.varargs.join(", ")));
        }
        out.push('\n');
        out.push_str(
            &listing(&c.plan, backend, disasm, !c.curated.varargs.is_empty(), inline)
                .map_err(|cause| ListingError { decl: c.curated.decl, cause })?,
        );
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_curated_signature_plans_on_every_target() {
        for t in Target::ALL {
            let plans = curated_plans(t);
            assert_eq!(plans.len(), CURATED.len());
            let snprintf = plans.iter().find(|p| p.curated.name == "snprintf").unwrap();
            assert_eq!(snprintf.plan.args.len(), 6, "{t}: fixed and extra arguments");
        }
        // The x86 conventions are kept on x86: stdcall pops its arguments.
        let stdcall = curated_plans(Target::X86_WIN).into_iter().find(|p| p.curated.name == "stdcall").unwrap();
        assert_eq!(stdcall.plan.callee_pops, 8);
    }
}
