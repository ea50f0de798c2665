//! Integer constant expressions (LuaJIT `cp_expr_*`): C's unary, binary and conditional
//! operators with C's precedence, casts, `sizeof`, `__alignof__`, enumerators and `static
//! const` constants, with C's usual arithmetic conversions over 32- and 64-bit integers.
//! Values that are not constants (a parameter, an extern variable, `&x`) are carried with
//! `imm == false`, as LuaJIT does, so that `[n]` with a parameter `n` is a variable-length array.

use super::lexer::{Text, Tok};
use super::parser::{Kw, Parser, BAD_SIZE, BAD_VALUE};
use super::CdefError;
use super::{find_member, Symbol};
use crate::types::{ArrayLen, CType, IntKind, QualType, Quals, TypeId};

/// A value and its C type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Val {
    /// The bits, normalized for the type when it is an integer: truncated to its width, then
    /// sign-extended (signed) or zero-extended (unsigned) to 64 bits.
    pub bits: u64,
    pub ty: TypeId,
    /// A compile-time constant.
    pub imm: bool,
}

/// An integer class: width in bits and signedness.
type Class = (u32, bool);

/// Truncates `bits` to `width` bits and extends them back to 64 per `signed`.
pub(crate) fn normalize(bits: u64, width: u32, signed: bool) -> u64 {
    if width >= 64 {
        return bits;
    }
    let shift = 64 - width;
    if signed {
        (((bits << shift) as i64) >> shift) as u64
    } else {
        (bits << shift) >> shift
    }
}

/// Integer promotion (C11 6.3.1.1): everything narrower than `int` becomes `int`.
fn promote(c: Class) -> Class {
    if c.0 < 32 {
        (32, true)
    } else {
        c
    }
}

/// The usual arithmetic conversions (C11 6.3.1.8) for the promoted classes: the wider type
/// wins; at equal width unsigned wins.
fn common(a: Class, b: Class) -> Class {
    let (a, b) = (promote(a), promote(b));
    match a.0.cmp(&b.0) {
        std::cmp::Ordering::Equal => (a.0, a.1 && b.1),
        std::cmp::Ordering::Greater => a,
        std::cmp::Ordering::Less => b,
    }
}

/// Binary operators: (precedence level as in LuaJIT's `cp_expr_infix`, operator).
fn binary_level(op: &str) -> Option<u8> {
    Some(match op {
        "||" => 1,
        "&&" => 2,
        "|" => 3,
        "^" => 4,
        "&" => 5,
        "==" | "!=" => 6,
        "<" | ">" | "<=" | ">=" => 7,
        "<<" | ">>" => 8,
        "+" | "-" => 9,
        "*" | "/" | "%" => 10,
        _ => return None,
    })
}

impl Parser<'_> {
    /// The integer class of a type, if it is an integer (bool and enums included).
    fn class_of(&self, ty: TypeId) -> Option<Class> {
        match self.table.get(ty) {
            CType::Int(k) => Some((self.table.int_size(*k) * 8, k.is_signed())),
            CType::Bool => Some((8, false)),
            CType::Enum(e) if e.complete => Some((self.table.int_size(e.repr) * 8, e.repr.is_signed())),
            CType::Enum(_) => Some((32, true)),
            _ => None,
        }
    }

    pub(crate) fn is_integer(&self, ty: TypeId) -> bool {
        self.class_of(ty).is_some()
    }

    /// The mathematical value of an integer `Val`.
    pub(crate) fn value_of(&self, v: Val) -> i128 {
        match self.class_of(v.ty) {
            Some((_, true)) => v.bits as i64 as i128,
            _ => v.bits as i128,
        }
    }

    fn type_of_class(&self, c: Class) -> TypeId {
        let kind = match c {
            (64, true) => IntKind::LongLong,
            (64, false) => IntKind::ULongLong,
            (_, true) => IntKind::Int,
            (_, false) => IntKind::UInt,
        };
        self.table.int(kind)
    }

    fn int_val(&self, bits: u64, c: Class, imm: bool) -> Val {
        Val { bits: normalize(bits, c.0, c.1), ty: self.type_of_class(c), imm }
    }

    fn size_t(&self) -> TypeId {
        let t = &*self.table;
        t.int_of_size(t.target().pointer_size(), false).unwrap_or_else(|| t.int(IntKind::UInt))
    }

    /// An integer constant expression (LuaJIT `cp_expr_kint`): "invalid value" otherwise.
    pub(crate) fn kint(&mut self) -> Result<Val, CdefError> {
        let v = self.expr_sub(0)?;
        if !v.imm || !self.is_integer(v.ty) {
            return Err(self.err(BAD_VALUE));
        }
        Ok(v)
    }

    /// A non-negative size below 2^31 (LuaJIT `cp_expr_ksize`).
    pub(crate) fn ksize(&mut self) -> Result<u64, CdefError> {
        let v = self.kint()?;
        let n = self.value_of(v);
        if !(0..super::parser::MAX_OBJECT_SIZE as i128).contains(&n) {
            return Err(self.err(BAD_SIZE));
        }
        Ok(n as u64)
    }

    /// `a, b, c`: the last value.
    fn expr_comma(&mut self) -> Result<Val, CdefError> {
        loop {
            let v = self.expr_sub(0)?;
            if !self.opt(",")? {
                return Ok(v);
            }
        }
    }

    /// A unary expression followed by binary operators of level `pri` or tighter (level 0 also
    /// takes `?:`).
    pub(crate) fn expr_sub(&mut self, pri: u8) -> Result<Val, CdefError> {
        let mut k = self.unary()?;
        loop {
            if pri == 0 && self.tok.is("?") {
                // Both branches nest one level: `1 ? 1 : 1 ? ...` recurses through here.
                self.enter()?;
                self.next()?;
                let yes = self.expr_comma()?;
                self.expect(":")?;
                let no = self.expr_sub(0)?;
                self.leave();
                let c =
                    common(self.class_of(yes.ty).unwrap_or((64, false)), self.class_of(no.ty).unwrap_or((64, false)));
                let chosen = if k.bits != 0 { yes } else { no };
                k = self.int_val(chosen.bits, c, k.imm && chosen.imm);
                continue;
            }
            // Known punctuation is a slice; a character built as a token is no operator.
            let op = match (self.tok.tok, self.tok.text) {
                (Tok::Punct, Text::Slice(p)) => p,
                _ => return Ok(k),
            };
            let Some(level) = binary_level(op) else {
                return Ok(k);
            };
            if level < pri.max(1) {
                return Ok(k);
            }
            let at = (self.tok.line, self.tok.col);
            self.next()?;
            let rhs = if level == 10 { self.unary()? } else { self.expr_sub(level + 1)? };
            k = self.binary(op, k, rhs, at)?;
        }
    }

    fn binary(&self, op: &str, a: Val, b: Val, at: (u32, u32)) -> Result<Val, CdefError> {
        let ints = self.is_integer(a.ty) && self.is_integer(b.ty);
        let imm = a.imm && b.imm && ints;
        let ca = self.class_of(a.ty).unwrap_or((64, false));
        let cb = self.class_of(b.ty).unwrap_or((64, false));
        let c = common(ca, cb);
        let (x, y) = (normalize(a.bits, c.0, c.1), normalize(b.bits, c.0, c.1));
        let truth = |v: bool| self.int_val(v as u64, (32, true), imm);
        let less = |x: u64, y: u64| if c.1 { (x as i64) < (y as i64) } else { x < y };
        Ok(match op {
            "||" => truth(a.bits != 0 || b.bits != 0),
            "&&" => truth(a.bits != 0 && b.bits != 0),
            "==" => truth(x == y),
            "!=" => truth(x != y),
            "<" => truth(less(x, y)),
            ">" => truth(less(y, x)),
            "<=" => truth(!less(y, x)),
            ">=" => truth(!less(x, y)),
            "<<" | ">>" => {
                // The result has the promoted left type; the count is taken modulo the width
                // (what x86 shift instructions do with an out-of-range count).
                let l = promote(ca);
                let count = (b.bits % u64::from(l.0)) as u32;
                let lhs = normalize(a.bits, l.0, l.1);
                let bits = match (op, l.1) {
                    ("<<", _) => lhs << count,
                    (_, true) => ((lhs as i64) >> count) as u64,
                    (_, false) => lhs >> count,
                };
                self.int_val(bits, l, imm)
            }
            "+" => self.int_val(x.wrapping_add(y), c, imm),
            "-" => self.int_val(x.wrapping_sub(y), c, imm),
            "*" => self.int_val(x.wrapping_mul(y), c, imm),
            "&" => self.int_val(x & y, c, imm),
            "|" => self.int_val(x | y, c, imm),
            "^" => self.int_val(x ^ y, c, imm),
            "/" | "%" => {
                if !imm {
                    return Ok(self.int_val(0, c, false));
                }
                let min = normalize(1 << (c.0 - 1), c.0, true);
                if y == 0 || (c.1 && x == min && y as i64 == -1) {
                    return Err(Self::err_at(at, BAD_VALUE));
                }
                let bits = match (op, c.1) {
                    ("/", true) => ((x as i64) / (y as i64)) as u64,
                    ("/", false) => x / y,
                    (_, true) => ((x as i64) % (y as i64)) as u64,
                    (_, false) => x % y,
                };
                self.int_val(bits, c, true)
            }
            _ => return Err(Self::err_at(at, "unexpected symbol")),
        })
    }

    /// Prefix operators, then postfix ones.
    fn unary(&mut self) -> Result<Val, CdefError> {
        self.enter()?;
        let v = self.prefix()?;
        let v = self.postfix(v)?;
        self.leave();
        Ok(v)
    }

    fn prefix(&mut self) -> Result<Val, CdefError> {
        if let Tok::Int(lit) = self.tok.tok {
            self.next()?;
            // An `L` literal is as wide as the target's `long`.
            let width = if lit.long_suffix { lit.width.max(self.table.int_size(IntKind::Long) * 8) } else { lit.width };
            return Ok(self.int_val(lit.value, (width, lit.signed), true));
        }
        for op in ["+", "-", "~", "!"] {
            if self.opt(op)? {
                let v = self.unary()?;
                let c = promote(self.class_of(v.ty).unwrap_or((64, false)));
                let imm = v.imm && self.is_integer(v.ty);
                return Ok(match op {
                    "+" => self.int_val(v.bits, c, imm),
                    "-" => self.int_val(v.bits.wrapping_neg(), c, imm),
                    "~" => self.int_val(!v.bits, c, imm),
                    _ => self.int_val((v.bits == 0) as u64, (32, true), v.imm),
                });
            }
        }
        if self.opt("(")? {
            if self.starts_type() {
                let ty = self.abstract_type()?;
                self.expect(")")?;
                let v = self.unary()?;
                // A cast to an integer type converts; to any other type it only retypes.
                return Ok(match self.class_of(ty.id) {
                    Some(c) => {
                        Val { bits: normalize(v.bits, c.0, c.1), ty: ty.id, imm: v.imm && self.is_integer(v.ty) }
                    }
                    None => Val { bits: v.bits, ty: ty.id, imm: v.imm },
                });
            }
            let v = self.expr_comma()?;
            self.expect(")")?;
            return Ok(v);
        }
        if self.opt("*")? {
            let v = self.unary()?;
            let Some(target) = self.pointee(v.ty) else {
                return Err(self.err(&format!("'{}' cannot be indexed", self.table.display(QualType::plain(v.ty)))));
            };
            return Ok(Val { bits: 0, ty: target, imm: false });
        }
        if self.opt("&")? {
            let v = self.unary()?;
            let ty = self.table.try_pointer_to(v.ty).map_err(|e| self.type_err(e))?;
            return Ok(Val { bits: 0, ty, imm: false });
        }
        match self.kw() {
            Some(Kw::Sizeof) => return self.size_or_align(true),
            Some(Kw::Alignof) => return self.size_or_align(false),
            _ => {}
        }
        if let Some(name) = self.ident() {
            let in_params = self.params.iter().any(|p| p.name.as_deref() == Some(&*name));
            let v = if in_params {
                Val { bits: 0, ty: self.table.int(IntKind::Int), imm: false }
            } else {
                match self.scope.symbol(&name) {
                    Some(Symbol::Constant(c)) => Val { bits: c.value as u64, ty: c.ty.id, imm: true },
                    Some(Symbol::Variable(v)) => Val { bits: 0, ty: v.ty.id, imm: false },
                    Some(Symbol::Function(f)) => Val { bits: 0, ty: f.ty, imm: false },
                    _ => return Err(self.err_near("unexpected symbol")),
                }
            };
            self.next()?;
            return Ok(v);
        }
        if self.tok.tok == Tok::Str {
            // A string literal: `const char[n]` (for `sizeof("...")`).
            let mut len = 0u64;
            while self.tok.tok == Tok::Str {
                len += self.lex.text(&self.tok).len() as u64;
                self.next()?;
            }
            let ch = QualType { id: self.table.int(IntKind::Char), quals: Quals::CONST };
            let made = self.table.try_array_of(ch, ArrayLen::Fixed(len + 1));
            let ty = made.map_err(|e| self.type_err(e))?;
            return Ok(Val { bits: 0, ty, imm: false });
        }
        Err(self.err_near("unexpected symbol"))
    }

    /// What a pointer or array type points to.
    fn pointee(&self, ty: TypeId) -> Option<TypeId> {
        match self.table.get(ty) {
            CType::Pointer(q) | CType::Ptr32(q) => Some(q.id),
            CType::Array { elem, .. } => Some(elem.id),
            _ => None,
        }
    }

    /// `[i]`, `.member`, `->member`: only their types matter.
    fn postfix(&mut self, mut v: Val) -> Result<Val, CdefError> {
        loop {
            if self.opt("[")? {
                let index = self.expr_comma()?;
                let elem = self.pointee(v.ty).or_else(|| self.pointee(index.ty));
                let Some(elem) = elem else {
                    return Err(self.err(&format!("'{}' cannot be indexed", self.table.display(QualType::plain(v.ty)))));
                };
                self.expect("]")?;
                v = Val { bits: 0, ty: elem, imm: false };
            } else if self.tok.is(".") || self.tok.is("->") {
                let mut record = v.ty;
                if self.tok.is("->") {
                    match self.pointee(v.ty) {
                        Some(t) => record = t,
                        None => {
                            return Err(
                                self.err(&format!("'{}' cannot be indexed", self.table.display(QualType::plain(v.ty))))
                            );
                        }
                    }
                }
                self.next()?;
                let Some(name) = self.ident() else {
                    return Err(self.err_expected("<identifier>"));
                };
                let member = find_member(self.table, record, &name).filter(|m| m.bits.is_none());
                let Some(member) = member else {
                    let shown = self.table.display(QualType::plain(record));
                    return Err(self.err(&format!("'{shown}' has no member named '{name}'")));
                };
                self.next()?;
                v = Val { bits: 0, ty: member.ty.id, imm: false };
            } else {
                return Ok(v);
            }
        }
    }

    /// `sizeof` / `__alignof__` of a type in parentheses or of an expression's type.
    fn size_or_align(&mut self, size: bool) -> Result<Val, CdefError> {
        self.next()?;
        let ty = if self.opt("(")? {
            let ty = if self.starts_type() { self.abstract_type()?.id } else { self.expr_comma()?.ty };
            self.expect(")")?;
            ty
        } else {
            self.unary()?.ty
        };
        let layout = self.table.layout(ty).map_err(|_| self.err(BAD_SIZE))?;
        let n = if size { layout.size } else { u64::from(layout.align) };
        let st = self.size_t();
        let c = self.class_of(st).unwrap_or((64, false));
        Ok(Val { bits: normalize(n, c.0, c.1), ty: st, imm: true })
    }
}
