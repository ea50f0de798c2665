//! C types as the `ffi` module sees them: the shape a type has for conversions, its size and
//! alignment (from abi-model, the project's one layout code path), and the printable spelling
//! LuaJIT gives a type (`ctype<struct foo *>`).

use abi_model::{ArrayLen, CType, FloatKind, QualType, Quals, RecordKind, TypeError, TypeId, TypeTable};

/// What a type is, as far as conversions and indexing care: enums are their integer type,
/// qualifiers and tags are gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `void`
    Void,
    /// `bool` / `_Bool`
    Bool,
    /// A bool of 2, 4 or 8 bytes (`_Bool int`): read and written through its first
    /// `size.min(4)` bytes (see [`Shape::bool_bytes`]), otherwise a `bool`.
    WideBool {
        /// Bytes: 2, 4 or 8.
        size: u8,
    },
    /// An integer of `size` bytes (1, 2, 4, 8); enums take this shape with their repr.
    Int {
        /// Bytes.
        size: u8,
        /// Signedness.
        signed: bool,
    },
    /// A 16- or 32-byte integer (`mode(TI)`, `mode(OI)`): not a number to Lua. LuaJIT copies
    /// it, converts integer cdata to it (extending) and it to integer cdata (truncating), and
    /// raises for everything else (numbers, arithmetic, comparisons).
    WideInt {
        /// Bytes: 16 or 32.
        size: u8,
        /// Signedness.
        signed: bool,
    },
    /// `float` (4) or `double` (8).
    Float {
        /// Bytes.
        size: u8,
    },
    /// `complex float` (part 4) or `complex` (part 8).
    Complex {
        /// Bytes of each of re and im.
        part: u8,
    },
    /// A pointer to the qualified type.
    Pointer(QualType),
    /// A 4-byte pointer (`int * __ptr32` on x86-64): stored truncated to its low 32 bits,
    /// read zero-extended as an ordinary pointer to the same type (NULL as `nil`).
    Ptr32(QualType),
    /// An array of the qualified element type.
    Array(QualType, ArrayLen),
    /// A struct or union.
    Record,
    /// A function type.
    Func,
    /// `long double` and its complex: the model has no rule for them.
    Unsupported,
}

impl Shape {
    /// Integers, floats and bool: what LuaJIT calls `CT_NUM`.
    pub fn is_num(self) -> bool {
        matches!(self, Shape::Bool | Shape::WideBool { .. } | Shape::Int { .. } | Shape::Float { .. })
    }

    /// For a bool of any size, the bytes its value is read from and written to: 1 for
    /// `bool`; the first 4 of an 8-byte one (LuaJIT reads and writes an `int` there), all 2 of
    /// a 2-byte one (LuaJIT reads and writes 4 bytes, past it: not followed). None otherwise.
    pub fn bool_bytes(self) -> Option<u8> {
        match self {
            Shape::Bool => Some(1),
            Shape::WideBool { size } => Some(size.min(4)),
            _ => None,
        }
    }

    /// Pointers and arrays (which decay to pointers).
    pub fn is_ptr_like(self) -> bool {
        matches!(self, Shape::Pointer(_) | Shape::Array(..))
    }
}

/// The shape of type `id` in `types`.
#[inline]
pub fn shape(types: &TypeTable, id: TypeId) -> Shape {
    match types.get(id) {
        CType::Void => Shape::Void,
        CType::Bool => Shape::Bool,
        CType::WideBool { size } => Shape::WideBool { size: *size as u8 },
        CType::Int(k) => Shape::Int { size: types.int_size(*k) as u8, signed: k.is_signed() },
        CType::Enum(e) => Shape::Int { size: types.int_size(e.repr) as u8, signed: e.repr.is_signed() },
        CType::WideInt { size, signed } => Shape::WideInt { size: *size as u8, signed: *signed },
        CType::Float(FloatKind::Float) => Shape::Float { size: 4 },
        CType::Float(FloatKind::Double) => Shape::Float { size: 8 },
        CType::Complex(FloatKind::Float) => Shape::Complex { part: 4 },
        CType::Complex(FloatKind::Double) => Shape::Complex { part: 8 },
        CType::Float(FloatKind::LongDouble) | CType::Complex(FloatKind::LongDouble) => Shape::Unsupported,
        CType::Pointer(to) => Shape::Pointer(*to),
        CType::Ptr32(to) => Shape::Ptr32(*to),
        CType::Array { elem, len } => Shape::Array(*elem, *len),
        CType::Record(_) => Shape::Record,
        CType::Function(_) => Shape::Func,
    }
}

/// The function type a cdata of type `ty` calls: its own (a function) or its target's (a
/// pointer to a function).
#[inline]
pub fn callable_type(types: &TypeTable, ty: TypeId) -> Option<TypeId> {
    match types.get(ty) {
        CType::Function(_) => Some(ty),
        CType::Pointer(to) if matches!(types.get(to.id), CType::Function(_)) => Some(to.id),
        _ => None,
    }
}

/// Whether a Lua string converts to a pointer of shape `to` as its bytes: the target is
/// `const` and a 1-byte integer or `void` (what LuaJIT's `const char []` source allows).
pub fn string_passes_as(types: &TypeTable, to: Shape) -> bool {
    match to {
        Shape::Pointer(to) if to.quals.is_const => {
            matches!(types.get(to.id), CType::Void) || matches!(shape(types, to.id), Shape::Int { size: 1, .. })
        }
        _ => false,
    }
}

/// `ffi.alignof`: the type's alignment. A type without a size answers as in LuaJIT (a
/// `T[?]`/`T[]` array its element's alignment, anything else 1); a type the model cannot lay
/// out on this target (`long double` on Windows) is an error, not a guess.
pub fn align_of(types: &TypeTable, id: TypeId) -> Result<u32, TypeError> {
    let known = |id| match types.layout(id) {
        Ok(layout) => Ok(Some(layout.align)),
        Err(e @ TypeError::Unsupported { .. }) => Err(e),
        Err(_) => Ok(None),
    };
    if let Some(align) = known(id)? {
        return Ok(align);
    }
    match types.get(id) {
        CType::Array { elem, .. } => Ok(known(elem.id)?.unwrap_or(1)),
        _ => Ok(1),
    }
}

/// Builds LuaJIT's printable spelling of a type (lj_ctype.c `ctype_repr`): a buffer grown at
/// both ends, words prepended with a separating space when one is needed.
struct Repr {
    /// The part before the declarator's centre, reversed (prepending = pushing).
    pre_rev: String,
    /// The part after it.
    post: String,
    /// A word prepended next needs a space after it.
    needs_space: bool,
}

impl Repr {
    fn prep_str(&mut self, s: &str) {
        if self.needs_space {
            self.pre_rev.push(' ');
        }
        self.needs_space = true;
        self.pre_rev.extend(s.chars().rev());
    }

    fn prep_char(&mut self, c: char) {
        self.pre_rev.push(c);
    }

    fn prep_quals(&mut self, q: Quals) {
        if q.is_volatile {
            self.prep_str("volatile");
        }
        if q.is_const {
            self.prep_str("const");
        }
    }

    fn finish(self) -> String {
        let mut s: String = self.pre_rev.chars().rev().collect();
        s.push_str(&self.post);
        s
    }
}

/// The spelling LuaJIT prints for a type inside `ctype<...>` and `cdata<...>`, and in error
/// messages. `is_ref` spells a reference (`struct foo &`, `int (&)[3]`), the type of the
/// cdata LuaJIT returns for a struct or array member.
///
/// It differs from [`TypeTable::display`] on purpose where LuaJIT's spelling does: 8-byte
/// integers print as `int64_t`/`uint64_t` (whatever their C name), `signed char` as `char`,
/// 4-byte `long` as `int`, function types without parameters (`int (*)()`), and anonymous
/// records and enums by a number.
pub fn repr(types: &TypeTable, ty: QualType, is_ref: bool) -> String {
    spell(types, ty, is_ref, false)
}

/// [`repr`] with the parameter lists of function types (`int (*)(const void *, const void
/// *)`, `void (*)(void)`, `int (*)(const char *, ...)`), for error messages: LuaJIT's `int
/// (*)()` names every function pointer alike, so "cannot convert 'int (*)()' to 'int (*)()'"
/// would not say what differs.
pub fn repr_with_params(types: &TypeTable, ty: QualType) -> String {
    spell(types, ty, false, true)
}

fn spell(types: &TypeTable, ty: QualType, is_ref: bool, params: bool) -> String {
    let mut r = Repr { pre_rev: String::new(), post: String::new(), needs_space: false };
    let mut cur = ty;
    let mut ptr_to = false;
    if is_ref {
        r.prep_char('&');
        ptr_to = true;
        r.needs_space = true;
    }
    loop {
        match types.get(cur.id) {
            CType::Pointer(to) | CType::Ptr32(to) => {
                r.prep_quals(cur.quals);
                if matches!(types.get(cur.id), CType::Ptr32(_)) {
                    r.prep_str("__ptr32");
                }
                r.prep_char('*');
                ptr_to = true;
                r.needs_space = true;
                cur = *to;
            }
            // A vector: its element type with the attribute, as LuaJIT spells it
            // (`float __attribute__((vector_size(16)))`).
            CType::Array { elem, .. } if types.is_vector(cur.id) => {
                r.prep_str(&format!("__attribute__((vector_size({})))", types.size_of(cur.id).unwrap_or(0)));
                cur = QualType { id: elem.id, quals: elem.quals.union(cur.quals) };
            }
            CType::Array { elem, len } => {
                r.needs_space = true;
                if ptr_to {
                    ptr_to = false;
                    r.prep_char('(');
                    r.post.push(')');
                }
                match len {
                    ArrayLen::Fixed(n) => r.post.push_str(&format!("[{n}]")),
                    ArrayLen::Variable => r.post.push_str("[?]"),
                    ArrayLen::Flexible => r.post.push_str("[]"),
                }
                // Qualifiers of an array type belong to its elements.
                cur = QualType { id: elem.id, quals: elem.quals.union(cur.quals) };
            }
            CType::Function(f) => {
                r.needs_space = true;
                if ptr_to {
                    ptr_to = false;
                    r.prep_char('(');
                    r.post.push(')');
                }
                if params {
                    r.post.push('(');
                    for (i, p) in f.params.iter().enumerate() {
                        if i > 0 {
                            r.post.push_str(", ");
                        }
                        r.post.push_str(&spell(types, p.ty, false, true));
                    }
                    match (f.params.is_empty(), f.variadic) {
                        (true, false) => r.post.push_str("void"),
                        (true, true) => r.post.push_str("..."),
                        (false, true) => r.post.push_str(", ..."),
                        (false, false) => {}
                    }
                    r.post.push(')');
                } else {
                    r.post.push_str("()");
                }
                cur = f.ret;
            }
            other => {
                base_repr(&mut r, types, cur, other);
                return r.finish();
            }
        }
    }
}

fn base_repr(r: &mut Repr, types: &TypeTable, ty: QualType, ct: &CType) {
    match ct {
        CType::Void => r.prep_str("void"),
        CType::Bool | CType::WideBool { .. } => r.prep_str("bool"),
        CType::Float(k) => r.prep_str(k.c_name()),
        CType::Complex(k) => {
            match k {
                FloatKind::Float => r.prep_str("float"),
                FloatKind::Double => {}
                FloatKind::LongDouble => r.prep_str("long double"),
            }
            r.prep_str("complex");
            return;
        }
        CType::Int(k) => {
            let size = types.int_size(*k);
            match size {
                1 if k.is_signed() => r.prep_str("char"),
                1 => r.prep_str("unsigned char"),
                2 | 4 => {
                    r.prep_str(if size == 4 { "int" } else { "short" });
                    if !k.is_signed() {
                        r.prep_str("unsigned");
                    }
                }
                _ => r.prep_str(if k.is_signed() { "int64_t" } else { "uint64_t" }),
            }
        }
        CType::WideInt { size, signed } => {
            r.prep_str(match (size, signed) {
                (16, true) => "int128_t",
                (16, false) => "uint128_t",
                (_, true) => "int256_t",
                (_, false) => "uint256_t",
            });
        }
        CType::Record(rec) => {
            let kw = match rec.kind {
                RecordKind::Struct => "struct",
                RecordKind::Union => "union",
            };
            tagged(r, rec.tag.as_deref(), ty.id, kw);
        }
        CType::Enum(e) => tagged(r, e.tag.as_deref(), ty.id, "enum"),
        CType::Pointer(_) | CType::Ptr32(_) | CType::Array { .. } | CType::Function(_) => {
            unreachable!("declarators are walked by repr")
        }
    }
    r.prep_quals(ty.quals);
}

/// `struct tag`, or `struct N` for an anonymous one (N: the type's number, as LuaJIT prints
/// its type id).
fn tagged(r: &mut Repr, tag: Option<&str>, id: TypeId, keyword: &str) {
    match tag {
        Some(t) => r.prep_str(t),
        None => {
            if r.needs_space {
                r.prep_char(' ');
            }
            r.pre_rev.extend(id.0.to_string().chars().rev());
            r.needs_space = true;
        }
    }
    r.prep_str(keyword);
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_model::{CallConv, Field, FuncType, IntKind, Param, RecordAttrs, Target};

    fn table() -> TypeTable {
        TypeTable::new(Target::X64_SYSV)
    }

    #[test]
    fn repr_spells_scalars_as_luajit() {
        let t = table();
        let cases = [
            (IntKind::Char, "char"),
            (IntKind::SChar, "char"),
            (IntKind::UChar, "unsigned char"),
            (IntKind::Short, "short"),
            (IntKind::UShort, "unsigned short"),
            (IntKind::UInt, "unsigned int"),
            (IntKind::Long, "int64_t"),
            (IntKind::ULongLong, "uint64_t"),
        ];
        for (k, s) in cases {
            assert_eq!(repr(&t, t.int(k).into(), false), s);
        }
        assert_eq!(repr(&t, t.complex(FloatKind::Float).into(), false), "complex float");
        assert_eq!(repr(&t, t.complex(FloatKind::Double).into(), false), "complex");
        let ci = QualType { id: t.int(IntKind::Int), quals: Quals::CONST };
        assert_eq!(repr(&t, ci, false), "const int");
    }

    #[test]
    fn repr_spells_declarators_as_luajit() {
        let mut t = table();
        let int = t.int(IntKind::Int);
        let ch = t.int(IntKind::Char);
        let ccp = t.pointer_to(QualType { id: ch, quals: Quals::CONST });
        assert_eq!(repr(&t, ccp.into(), false), "const char *");
        let cp = QualType { id: ccp, quals: Quals::CONST };
        let pp = t.pointer_to(cp);
        assert_eq!(repr(&t, pp.into(), false), "const char *const *");
        let arr = t.array_of(int, ArrayLen::Fixed(3));
        assert_eq!(repr(&t, arr.into(), false), "int [3]");
        assert_eq!(repr(&t, arr.into(), true), "int (&)[3]");
        let parr = t.pointer_to(arr);
        assert_eq!(repr(&t, parr.into(), false), "int (*)[3]");
        let f = t.function(FuncType {
            ret: int.into(),
            params: vec![Param { name: None, ty: int.into() }],
            variadic: false,
            conv: CallConv::Cdecl,
        });
        let fp = t.pointer_to(f);
        assert_eq!(repr(&t, fp.into(), false), "int (*)()");
        assert_eq!(repr_with_params(&t, fp.into()), "int (*)(int)");
        let void = t.void();
        let cvp = t.pointer_to(QualType { id: void, quals: Quals::CONST });
        let g = t.function(FuncType {
            ret: fp.into(),
            params: vec![Param { name: None, ty: cvp.into() }, Param { name: None, ty: fp.into() }],
            variadic: true,
            conv: CallConv::Cdecl,
        });
        let gp = t.pointer_to(g);
        assert_eq!(repr(&t, gp.into(), false), "int (*(*)())()");
        assert_eq!(repr_with_params(&t, gp.into()), "int (*(*)(const void *, int (*)(int), ...))(int)");
        let h = t.function(FuncType { ret: void.into(), params: vec![], variadic: false, conv: CallConv::Cdecl });
        let hp = t.pointer_to(h);
        assert_eq!(repr_with_params(&t, hp.into()), "void (*)(void)");
        let v = t.function(FuncType { ret: void.into(), params: vec![], variadic: true, conv: CallConv::Cdecl });
        let vp = t.pointer_to(v);
        assert_eq!(repr_with_params(&t, vp.into()), "void (*)(...)");
        assert_eq!(repr_with_params(&t, arr.into()), "int [3]");
        let s = t.new_record(RecordKind::Struct, Some("foo"));
        t.define_record(s, vec![Field::named("x", int)], RecordAttrs::default()).unwrap();
        assert_eq!(repr(&t, s.into(), true), "struct foo &");
        let ps = t.pointer_to(s);
        assert_eq!(repr(&t, ps.into(), false), "struct foo *");
        let anon = t.new_record(RecordKind::Union, None);
        assert_eq!(repr(&t, anon.into(), false), format!("union {}", anon.0));
        let cs = QualType { id: s, quals: Quals::CONST };
        assert_eq!(repr(&t, cs, false), "const struct foo");
        let vla = t.array_of(ch, ArrayLen::Variable);
        assert_eq!(repr(&t, vla.into(), false), "char [?]");
    }

    #[test]
    fn alignof_refuses_a_type_the_model_cannot_lay_out_instead_of_saying_1() {
        // ffi.alignof("long double") said 1; on Windows (MSVC 8, mingw 16) it has no answer.
        for (target, want) in [
            (Target::X64_SYSV, Some(16)),
            (Target::X86_LINUX, Some(4)),
            (Target::X64_WIN, None),
            (Target::X86_WIN, None),
        ] {
            let mut t = TypeTable::new(target);
            let ld = t.float(FloatKind::LongDouble);
            assert_eq!(align_of(&t, ld).ok(), want, "{target}");
            let vla = t.array_of(ld, ArrayLen::Variable);
            assert_eq!(align_of(&t, vla).ok(), want, "{target}: long double[?]");
        }
        // Types without a size keep LuaJIT's answers: an incomplete struct 1, a VLA its element's.
        let mut t = table();
        let s = t.new_record(RecordKind::Struct, Some("incomplete"));
        assert_eq!(align_of(&t, s), Ok(1));
        let dbl = t.float(FloatKind::Double);
        let vla = t.array_of(dbl, ArrayLen::Variable);
        assert_eq!(align_of(&t, vla), Ok(8));
    }
}
