//! Shared builders for the `rules_*` tests: a [`TypeTable`] for one target plus short ways
//! to declare structs and plan signatures. Included by the rule files with
//! `#[path = "rules_support.rs"] mod support;` (built alone it is an empty test binary).
#![allow(dead_code)]

use abi_model::{
    plan_call, ArgPass, CallConv, CallPlan, Field, FloatKind, IntKind, Loc, Part, PlanError, QualType, RecordAttrs,
    RecordKind, Signature, Target, TypeId, TypeTable,
};

/// A type table for one target with shorthand constructors.
pub struct Env {
    /// The table every type of the test lives in.
    pub t: TypeTable,
}

impl Env {
    pub fn new(target: Target) -> Env {
        Env { t: TypeTable::new(target) }
    }

    pub fn void(&self) -> TypeId {
        self.t.void()
    }
    pub fn bool(&self) -> TypeId {
        self.t.bool()
    }
    pub fn int(&self, k: IntKind) -> TypeId {
        self.t.int(k)
    }
    pub fn i8(&self) -> TypeId {
        self.t.int(IntKind::SChar)
    }
    pub fn u8(&self) -> TypeId {
        self.t.int(IntKind::UChar)
    }
    pub fn i16(&self) -> TypeId {
        self.t.int(IntKind::Short)
    }
    pub fn u16(&self) -> TypeId {
        self.t.int(IntKind::UShort)
    }
    pub fn i32(&self) -> TypeId {
        self.t.int(IntKind::Int)
    }
    pub fn i64(&self) -> TypeId {
        self.t.int(IntKind::LongLong)
    }
    pub fn f32(&self) -> TypeId {
        self.t.float(FloatKind::Float)
    }
    pub fn f64(&self) -> TypeId {
        self.t.float(FloatKind::Double)
    }
    pub fn long_double(&self) -> TypeId {
        self.t.float(FloatKind::LongDouble)
    }
    pub fn cf32(&self) -> TypeId {
        self.t.complex(FloatKind::Float)
    }
    pub fn cf64(&self) -> TypeId {
        self.t.complex(FloatKind::Double)
    }
    pub fn ptr(&mut self, to: TypeId) -> TypeId {
        self.t.pointer_to(to)
    }
    pub fn void_ptr(&mut self) -> TypeId {
        let v = self.t.void();
        self.t.pointer_to(v)
    }
    pub fn array(&mut self, elem: TypeId, n: u64) -> TypeId {
        self.t.array_of(elem, abi_model::ArrayLen::Fixed(n))
    }
    /// A gcc vector of `n` elements (`elem __attribute__((vector_size(n * sizeof elem)))`).
    pub fn vector(&mut self, elem: TypeId, n: u64) -> TypeId {
        self.t.try_vector_of(elem.into(), n).expect("test vector is valid")
    }

    /// `struct { m0; m1; ... }` with members named a, b, c, ...
    pub fn strukt(&mut self, members: &[TypeId]) -> TypeId {
        self.record(RecordKind::Struct, members, RecordAttrs::default())
    }

    /// `union { m0; m1; ... }`
    pub fn union(&mut self, members: &[TypeId]) -> TypeId {
        self.record(RecordKind::Union, members, RecordAttrs::default())
    }

    /// A struct or union of plain members with the given attributes.
    pub fn record(&mut self, kind: RecordKind, members: &[TypeId], attrs: RecordAttrs) -> TypeId {
        let fields = members.iter().enumerate().map(|(i, m)| Field::named(&member_name(i), *m)).collect();
        self.record_of(kind, fields, attrs)
    }

    /// A struct or union of explicit fields (bit-fields, member attributes).
    pub fn record_of(&mut self, kind: RecordKind, fields: Vec<Field>, attrs: RecordAttrs) -> TypeId {
        let id = self.t.new_record(kind, None);
        self.t.define_record(id, fields, attrs).expect("test record is valid");
        id
    }

    /// A declared but never defined struct.
    pub fn incomplete_struct(&mut self) -> TypeId {
        self.t.new_record(RecordKind::Struct, Some("opaque"))
    }

    pub fn try_plan(&self, ret: TypeId, params: &[TypeId], conv: CallConv) -> Result<CallPlan, PlanError> {
        let sig = Signature::new(ret, params.iter().map(|p| QualType::from(*p)).collect(), false, conv);
        plan_call(&self.t, &sig, &[])
    }

    pub fn plan(&self, ret: TypeId, params: &[TypeId]) -> CallPlan {
        self.plan_conv(ret, params, CallConv::Cdecl)
    }

    pub fn plan_conv(&self, ret: TypeId, params: &[TypeId], conv: CallConv) -> CallPlan {
        self.try_plan(ret, params, conv).expect("signature plans")
    }

    /// A call of a variadic function declared with `fixed` parameters, passing `extra`.
    pub fn plan_variadic(&self, ret: TypeId, fixed: &[TypeId], extra: &[TypeId], conv: CallConv) -> CallPlan {
        let sig = Signature::new(ret, fixed.iter().map(|p| QualType::from(*p)).collect(), true, conv);
        let extra: Vec<QualType> = extra.iter().map(|p| QualType::from(*p)).collect();
        plan_call(&self.t, &sig, &extra).expect("variadic call plans")
    }
}

/// Member names a, b, c, ... (then m26, m27, ...).
pub fn member_name(i: usize) -> String {
    match u8::try_from(i) {
        Ok(n) if n < 26 => char::from(b'a' + n).to_string(),
        _ => format!("m{i}"),
    }
}

/// The parts of a directly passed argument.
pub fn parts(plan: &CallPlan, i: usize) -> &[Part] {
    match &plan.args[i].pass {
        ArgPass::Direct(parts) => parts,
        other => panic!("argument {i} is not direct: {other:?}"),
    }
}

/// The one location of an argument passed whole in one place.
pub fn loc(plan: &CallPlan, i: usize) -> Loc {
    match parts(plan, i) {
        [p] => p.loc,
        more => panic!("argument {i} has {} parts", more.len()),
    }
}

/// Every location of an argument's parts, in order.
pub fn locs(plan: &CallPlan, i: usize) -> Vec<Loc> {
    parts(plan, i).iter().map(|p| p.loc).collect()
}

pub fn stack(offset: u32) -> Loc {
    Loc::Stack { offset }
}

pub fn gpr(g: abi_model::Gpr) -> Loc {
    Loc::Gpr(g)
}

pub fn xmm(n: u8) -> Loc {
    Loc::Xmm(abi_model::Xmm(n))
}

/// The widening a callee of `ret` gives its result, for each of the small integer returns
/// `bool`, `signed char`, `unsigned char`, `short`, `unsigned short`, then `int` and
/// `long long` (no widening: they fill their register or register pair).
pub fn return_exts(e: &Env) -> Vec<abi_model::Ext> {
    [e.bool(), e.i8(), e.u8(), e.i16(), e.u16(), e.i32(), e.i64()].iter().map(|t| e.plan(*t, &[]).ret.ext).collect()
}

/// What every target's callee writes: `bool` and unsigned small integers zero-extended to 32
/// bits, signed ones sign-extended, wider ones as they are.
pub const SMALL_RESULTS_WIDENED_BY_TYPE: [abi_model::Ext; 7] = {
    use abi_model::Ext::{None, Sign, Zero};
    [Zero, Sign, Zero, Sign, Zero, None, None]
};
