//! C calling conventions and layouts of the x86 ABIs, as data.
//!
//! `abi-model` answers, for four targets (i386 Linux, Win32, x86-64 System V, x86-64
//! Windows), where every argument and return value of a C call goes ([`CallPlan`]), where a
//! generated callback finds them ([`CallbackFrame`]), and how C types are laid out
//! ([`TypeTable`], [`Layout`]). It has no dependencies and no `unsafe`; code generators,
//! emulators and FFIs read its answers, and none of them decides an ABI fact itself.
//!
//! ```
//! use abi_model::{plan_call, IntKind, FloatKind, Signature, Target, TypeTable, CallConv};
//!
//! let mut t = TypeTable::new(Target::X64_SYSV);
//! let int = t.int(IntKind::Int);
//! let dbl = t.float(FloatKind::Double);
//! let sig = Signature::new(dbl, vec![int.into(), dbl.into()], false, CallConv::Cdecl);
//! let plan = plan_call(&t, &sig, &[]).unwrap();
//! assert_eq!(plan.to_string(), "  arg0: i32 edi\n  arg1: f64 xmm0\n  ret: f64 xmm0\n  stack 0 align 16");
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// docs.rs builds with `--cfg docsrs` (Cargo.toml) on nightly: items behind a feature say so.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod abi;
pub mod callback;
pub mod cdef;
mod hash;
pub mod inline_list;
pub mod layout;
#[cfg(feature = "lua")]
pub mod lua;
pub mod plan;
pub mod target;
pub mod types;
pub mod unwind;
pub mod x64_sysv;
pub mod x64_win;
pub mod x86;

pub use abi::{abi_value, plan_call, plan_call_in, plan_values, AbiValue, PlanBuffers, PlanError, Position, Signature};
pub use callback::{CallbackFrame, FrameArg, Spill};
pub use layout::{BitPos, FieldLayout, Layout, RecordLayout};
pub use plan::{ArgPass, ArgPlan, CallPlan, Ext, Gpr, Loc, Part, Parts, RetLoc, RetPlan, ValueKind, Xmm};
pub use target::{Arch, DataModel, Os, RecordRules, Target};
pub use types::{
    ArrayLen, CType, EnumType, Field, FloatKind, FuncType, IntKind, Param, QualType, Quals, Record, RecordAttrs,
    RecordBody, RecordConst, RecordKind, TypeError, TypeId, TypeTable,
};

/// A calling convention as written in a declaration. On x86-64 every keyword means the
/// target's one convention.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallConv {
    /// The default C convention: the caller pops the arguments.
    #[default]
    Cdecl,
    /// `__stdcall`: the callee pops the arguments.
    Stdcall,
    /// `__fastcall`: the first two small integer arguments in ecx and edx; the callee pops.
    Fastcall,
    /// `__thiscall`: the first small integer argument in ecx; the callee pops.
    Thiscall,
}

impl CallConv {
    /// The keyword (`cdecl` for the default).
    pub fn keyword(self) -> &'static str {
        match self {
            CallConv::Cdecl => "__cdecl",
            CallConv::Stdcall => "__stdcall",
            CallConv::Fastcall => "__fastcall",
            CallConv::Thiscall => "__thiscall",
        }
    }
}
