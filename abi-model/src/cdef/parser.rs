//! Declarations, declaration specifiers, declarators, records and enums.
//!
//! The structure follows LuaJIT's `lj_cparse.c` (`cp_decl_multi`, `cp_decl_spec`,
//! `cp_declarator`, `cp_decl_struct`, `cp_decl_enum`, `cp_decl_func`), and so do the error
//! messages. Types are built directly in the [`TypeTable`]: a declarator is parsed into a list
//! of derivations (pointer, array, function) in the order they apply to the base type.

use std::borrow::Cow;
use std::sync::Arc;

use super::lexer::{Lexer, Tok, Token};
use super::{tag_kind, Added, CParam, CScope, CdefError, ConstDecl, FuncDecl, Spare, Symbol, TagKind, VarDecl};
use crate::types::{
    ArrayLen, CType, Checkpoint, Field, FloatKind, FuncType, IntKind, Param, QualType, Quals, RecordAttrs, RecordConst,
    RecordKind, TypeError, TypeId, TypeTable,
};
use crate::{Arch, CallConv};

/// Deepest nesting of declarators, expressions and struct bodies (LuaJIT's
/// `CPARSE_MAX_DECLDEPTH` is 20; C compilers allow far more, and 200 keeps the parser's own
/// stack use small).
pub(crate) const MAX_DEPTH: u32 = 200;
/// Most derivations (`*`, `[]`, `()`) in one declarator (LuaJIT's `CPARSE_MAX_DECLSTACK`).
const MAX_DERIVATIONS: usize = 100;
/// Deepest `#pragma pack(push)` stack.
const MAX_PACK_DEPTH: usize = 64;
/// Objects of 2^31 bytes or more are rejected, as LuaJIT does (`CTSIZE_INVALID` limits).
pub(crate) const MAX_OBJECT_SIZE: u64 = 0x8000_0000;
/// A member of 2^29 bytes or more is rejected (LuaJIT `cp_struct_layout`: its size in bits
/// must fit 32 bits).
const MAX_MEMBER_SIZE: u64 = 0x2000_0000;

pub(crate) const TOO_DEEP: &str = "chunk has too many syntax levels";
pub(crate) const BAD_SIZE: &str = "size of C type is unknown or too large";
pub(crate) const BAD_TYPE: &str = "invalid C type";
pub(crate) const BAD_VALUE: &str = "invalid value";

/// What the text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A list of declarations (`ffi.cdef`; LuaJIT's `CPARSE_MODE_MULTI|CPARSE_MODE_DIRECT`).
    Declarations,
    /// One abstract type (`ffi.typeof`; `CPARSE_MODE_ABSTRACT|CPARSE_MODE_NOIMPLICIT`).
    TypeName,
}

/// The keywords LuaJIT's C parser knows (`CTKWDEF` in `lj_ctype.c`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kw {
    Void,
    /// `bool`: a 1-byte bool.
    Bool,
    /// `_Bool`: a bool of the size of the integer keyword written with it (`_Bool int` has 4
    /// bytes), 1 byte alone (LuaJIT's keyword table gives `_Bool` no size, `bool` size 1).
    BareBool,
    Char,
    /// `int` (size 4) and the MSVC `__int8` .. `__int64` spellings (their size).
    Int(u32),
    Float,
    Double,
    Long,
    Short,
    Complex,
    Signed,
    Unsigned,
    Const,
    Volatile,
    Restrict,
    Inline,
    Typedef,
    Extern,
    Static,
    Auto,
    Register,
    Extension,
    Asm,
    Attribute,
    Declspec,
    Conv(CallConv),
    Ptr32,
    Ptr64,
    Struct,
    Union,
    Enum,
    Sizeof,
    Alignof,
    /// A type gcc or C23 knows and the model has no rule for (`__int128`, `_Float128`,
    /// `_Decimal64`, ...), with why. A keyword, so that it is never taken for a declarator's
    /// name (`unsigned __int128` is not an `unsigned` named `__int128`).
    Unsupported(Unsupported),
}

/// Why a [`Kw::Unsupported`] type is (a byte, so that a token's keyword stays small).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unsupported {
    Int128,
    Float,
    Decimal,
}

impl Unsupported {
    fn why(self) -> &'static str {
        match self {
            Unsupported::Int128 => "the model has no 128-bit integer type",
            Unsupported::Float => "the model has no such floating type",
            Unsupported::Decimal => "the model has no decimal floating types",
        }
    }
}

impl Kw {
    /// Is this a keyword [`Parser::attributes`] reads?
    #[inline]
    fn is_attribute(self) -> bool {
        matches!(
            self,
            Kw::Const
                | Kw::Volatile
                | Kw::Restrict
                | Kw::Extension
                | Kw::Ptr32
                | Kw::Ptr64
                | Kw::Attribute
                | Kw::Asm
                | Kw::Declspec
                | Kw::Conv(_)
        )
    }
}

pub(crate) fn keyword_of(s: &str) -> Option<Kw> {
    // Split by the first byte, so that a name is compared with the spellings of its length in
    // one half only (`int64_t` with 2 of length 7, not 12).
    if s.starts_with('_') {
        underscore_keyword_of(s)
    } else {
        word_keyword_of(s)
    }
}

/// [`keyword_of`] for a name that does not start with `_`.
fn word_keyword_of(s: &str) -> Option<Kw> {
    Some(match s {
        "void" => Kw::Void,
        "bool" => Kw::Bool,
        "char" => Kw::Char,
        "int" => Kw::Int(4),
        "float" => Kw::Float,
        "double" => Kw::Double,
        "long" => Kw::Long,
        "short" => Kw::Short,
        "complex" => Kw::Complex,
        "signed" => Kw::Signed,
        "unsigned" => Kw::Unsigned,
        "const" => Kw::Const,
        "volatile" => Kw::Volatile,
        "restrict" => Kw::Restrict,
        "inline" => Kw::Inline,
        "typedef" => Kw::Typedef,
        "extern" => Kw::Extern,
        "static" => Kw::Static,
        "auto" => Kw::Auto,
        "register" => Kw::Register,
        "asm" => Kw::Asm,
        "struct" => Kw::Struct,
        "union" => Kw::Union,
        "enum" => Kw::Enum,
        "sizeof" => Kw::Sizeof,
        _ => return None,
    })
}

/// [`keyword_of`] for a name that starts with `_`.
fn underscore_keyword_of(s: &str) -> Option<Kw> {
    Some(match s {
        "_Bool" => Kw::BareBool,
        "__int8" => Kw::Int(1),
        "__int16" => Kw::Int(2),
        "__int32" => Kw::Int(4),
        "__int64" => Kw::Int(8),
        "_Complex" | "__complex" | "__complex__" => Kw::Complex,
        "__signed" | "__signed__" => Kw::Signed,
        "__const" | "__const__" => Kw::Const,
        "__volatile" | "__volatile__" => Kw::Volatile,
        "__restrict" | "__restrict__" => Kw::Restrict,
        "__inline" | "__inline__" => Kw::Inline,
        "__extension__" => Kw::Extension,
        "__attribute" | "__attribute__" => Kw::Attribute,
        "__asm" | "__asm__" => Kw::Asm,
        "__declspec" => Kw::Declspec,
        "__cdecl" => Kw::Conv(CallConv::Cdecl),
        "__thiscall" => Kw::Conv(CallConv::Thiscall),
        "__fastcall" => Kw::Conv(CallConv::Fastcall),
        "__stdcall" => Kw::Conv(CallConv::Stdcall),
        "__ptr32" => Kw::Ptr32,
        "__ptr64" => Kw::Ptr64,
        // `_Alignof` is C11's spelling (beyond LuaJIT, which knows only gcc's).
        "__alignof" | "__alignof__" | "_Alignof" => Kw::Alignof,
        "__int128" | "__int128_t" | "__uint128_t" => Kw::Unsupported(Unsupported::Int128),
        "__float128" | "_Float128" | "__float80" | "__ibm128" | "_Float16" | "__fp16" | "__bf16" | "_Float32"
        | "_Float64" | "_Float32x" | "_Float64x" | "_Float128x" => Kw::Unsupported(Unsupported::Float),
        "_Decimal32" | "_Decimal64" | "_Decimal128" => Kw::Unsupported(Unsupported::Decimal),
        _ => return None,
    })
}

/// Storage classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Storage {
    Typedef,
    Extern,
    Static,
    Auto,
    Register,
}

/// `__attribute__((mode(...)))`: the size in bytes a numeric base type is changed to (LuaJIT
/// `cp_decl_mode`: an integer of any mode's size, a floating type only to 4 or 8 bytes, a
/// `bool` never).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ModeAttr(u32);

/// Qualifiers and attributes collected while parsing one declaration (LuaJIT's `decl->attr`
/// and `decl->fattr`, plus the `__asm__` redirect).
#[derive(Clone, Debug, Default)]
pub(crate) struct Attrs {
    /// Qualifiers not yet given to a type.
    pub quals: Quals,
    pub packed: bool,
    /// The largest `aligned(n)`: what a struct member or a record gets (gcc).
    pub aligned: Option<u32>,
    /// The last `aligned(n)`: what a typedef or type name gets (LuaJIT's parse tests: `char
    /// __attribute__((aligned(8))) const __attribute__((aligned(2)))` is aligned to 2).
    pub aligned_last: Option<u32>,
    /// A calling convention waiting for the next function declarator.
    pub conv: Option<CallConv>,
    pub redir: Option<Arc<str>>,
    pub mode: Option<ModeAttr>,
    /// `__ptr32` (4) or `__ptr64` (8) on a 64-bit target, the last written: the next `*` makes
    /// a 4-byte pointer for 4 and takes it (LuaJIT's `MSIZEP` attribute); left over, it is a
    /// mode on an integer base type (`char __ptr32` is an `int`, as in LuaJIT).
    pub ptr_size: Option<u32>,
    /// `vector_size(n)` (or a vector `mode(V4SF)`): the vector's size in bytes, a power of two.
    pub vector: Option<u64>,
}

/// The result of the declaration specifiers.
struct Spec {
    base: QualType,
    storage: Option<Storage>,
    attrs: Attrs,
}

/// Which declarators are allowed (LuaJIT's `CPARSE_MODE_DIRECT/ABSTRACT/FIELD`).
#[derive(Clone, Copy)]
struct DeclMode {
    direct: bool,
    abstract_: bool,
    field: bool,
}

const DIRECT: DeclMode = DeclMode { direct: true, abstract_: false, field: false };
const ABSTRACT: DeclMode = DeclMode { direct: false, abstract_: true, field: false };
const PARAM: DeclMode = DeclMode { direct: true, abstract_: true, field: false };
const FIELD: DeclMode = DeclMode { direct: true, abstract_: true, field: true };

/// One derivation, applied to the type built so far.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Pointer(Quals),
    /// `* __ptr32` on a 64-bit target: a 4-byte pointer.
    Ptr32(Quals),
    Array {
        len: ArrayLen,
        at: (u32, u32),
    },
    Func {
        params: Vec<Param>,
        variadic: bool,
        conv: Option<CallConv>,
        at: (u32, u32),
    },
}

/// A parsed declarator.
struct Declarator<'a> {
    name: Option<Token<'a>>,
    ops: Vec<Op>,
    /// Bit-field width and where its `:` is.
    bits: Option<(u64, (u32, u32))>,
    attrs: Attrs,
}

pub(crate) struct Parser<'a> {
    pub(crate) lex: Lexer<'a>,
    pub(crate) tok: Token<'a>,
    pub(crate) table: &'a mut TypeTable,
    pub(crate) scope: &'a mut CScope,
    mode: Mode,
    depth: u32,
    /// The `#pragma pack` in force, and those `pack(push)` saved (no allocation until one).
    pack: Option<u32>,
    pack_saved: Vec<Option<u32>>,
    /// Names added so far (taken back on error).
    added: Vec<Added>,
    /// Records whose body is being parsed.
    defining: Vec<TypeId>,
    /// The parameters read so far of the function declarators being parsed, outermost
    /// first (what a parameter's array size may name: `int f(int n, int a[n])`).
    pub(crate) params: Vec<Param>,
    /// An empty list of derivations a declarator may fill (see [`Parser::recycle_ops`]).
    spare_ops: Vec<Op>,
}

/// Parses `src` in `mode`; on error takes back every name it added, every type it made and
/// every record or enum it completed, leaving `table` and `scope` as they were.
pub(crate) fn run(
    table: &mut TypeTable,
    scope: &mut CScope,
    src: &str,
    params: &[CParam],
    mode: Mode,
) -> Result<QualType, CdefError> {
    if scope.target() != table.target() {
        return Err(CdefError {
            line: 1,
            col: 1,
            message: format!("the scope is for {} but the type table for {}", scope.target(), table.target()),
            token: None,
        });
    }
    let cp = table.checkpoint();
    // The buffers of the last parse, empty, so that a parse allocates none of its own.
    let Spare { added: spare_added, params: spare_params, ops: spare_ops } = std::mem::take(&mut scope.spare);
    let (result, mut added, mut spare_params, mut spare_ops) = {
        let mut lex = Lexer::new(src, params);
        match lex.next_token() {
            Err(e) => (Err(e), spare_added, spare_params, spare_ops),
            Ok(first) => {
                let mut p = Parser {
                    lex,
                    tok: first,
                    table: &mut *table,
                    scope: &mut *scope,
                    mode,
                    depth: 0,
                    pack: None,
                    pack_saved: Vec::new(),
                    added: spare_added,
                    defining: Vec::new(),
                    params: spare_params,
                    spare_ops,
                };
                let r = match mode {
                    Mode::Declarations => p.declarations().map(|()| QualType::plain(p.table.void())),
                    Mode::TypeName => p.type_name(),
                };
                let r = r.and_then(|ty| {
                    if p.lex.params_used() != params.len() {
                        Err(p.err("wrong number of type parameters"))
                    } else {
                        Ok(ty)
                    }
                });
                (r, p.added, p.params, p.spare_ops)
            }
        }
    };
    if result.is_err() {
        scope.take_back(&added);
        table.rollback(cp);
    } else {
        table.commit(cp);
    }
    added.clear();
    spare_params.clear();
    spare_ops.clear();
    // A large header's list of names is not kept for good.
    added.shrink_to(64);
    scope.spare = Spare { added, params: spare_params, ops: spare_ops };
    result
}

impl<'a> Parser<'a> {
    // ---- tokens and errors ----

    #[inline]
    pub(crate) fn next(&mut self) -> Result<(), CdefError> {
        if self.lex.plain_token_into(&mut self.tok) {
            return Ok(());
        }
        self.next_general()
    }

    /// [`Self::next`] for a token the plain path leaves, out of line so that the plain path
    /// keeps a small frame (the general path builds a whole token and may fail).
    #[inline(never)]
    fn next_general(&mut self) -> Result<(), CdefError> {
        self.tok = self.lex.general_token()?;
        Ok(())
    }

    /// Consumes punctuation `p` if it is the current token.
    pub(crate) fn opt(&mut self, p: &str) -> Result<bool, CdefError> {
        if self.tok.is(p) {
            self.next()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Consumes punctuation `p` or fails with "'p' expected near ...".
    pub(crate) fn expect(&mut self, p: &str) -> Result<(), CdefError> {
        if !self.tok.is(p) {
            return Err(self.err_expected(p));
        }
        self.next()
    }

    /// "'what' expected near '<current token>'" (LuaJIT `cp_err_token`).
    pub(crate) fn err_expected(&self, what: &str) -> CdefError {
        self.err_near(&format!("'{what}' expected"))
    }

    /// An error naming the current token.
    pub(crate) fn err_near(&self, message: &str) -> CdefError {
        CdefError {
            line: self.tok.line,
            col: self.tok.col,
            message: message.to_string(),
            token: Some(self.lex.shown(&self.tok).to_string()),
        }
    }

    /// An error at the current token, without naming it (LuaJIT `cp_err`).
    pub(crate) fn err(&self, message: &str) -> CdefError {
        CdefError { line: self.tok.line, col: self.tok.col, message: message.to_string(), token: None }
    }

    pub(crate) fn err_at(at: (u32, u32), message: &str) -> CdefError {
        CdefError { line: at.0, col: at.1, message: message.to_string(), token: None }
    }

    /// The name a declarator's name token spells.
    fn token_name(&self, t: &Token<'a>) -> Option<String> {
        (t.tok == Tok::Ident).then(|| self.lex.text(t).to_string())
    }

    fn pos(&self) -> (u32, u32) {
        (self.tok.line, self.tok.col)
    }

    pub(crate) fn enter(&mut self) -> Result<(), CdefError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(TOO_DEEP));
        }
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth -= 1;
    }

    /// The keyword the current token is, if any (a `$` name is never a keyword).
    pub(crate) fn kw(&self) -> Option<Kw> {
        self.tok.kw
    }

    /// The current token as a plain identifier (not a keyword): borrowed from the text when
    /// the token is.
    pub(crate) fn ident(&self) -> Option<Cow<'a, str>> {
        match &self.tok.tok {
            Tok::Ident if self.tok.kw.is_none() => Some(self.lex.text_cow(&self.tok)),
            _ => None,
        }
    }

    /// Can the current token start a type name (LuaJIT `cp_istypedecl`)?
    pub(crate) fn starts_type(&self) -> bool {
        if let Some(k) = self.kw() {
            return !matches!(k, Kw::Sizeof | Kw::Alignof);
        }
        match &self.tok.tok {
            Tok::TypeParam(_) => true,
            Tok::Ident => self.scope.typedef(self.lex.text(&self.tok)).is_some(),
            _ => false,
        }
    }

    // ---- declaration lists ----

    /// A list of declarations (LuaJIT `cp_decl_multi`).
    fn declarations(&mut self) -> Result<(), CdefError> {
        let mut first = true;
        while self.tok.tok != Tok::Eof {
            if self.opt(";")? {
                first = false;
                continue;
            }
            if self.tok.is("#") {
                self.directive()?;
                continue;
            }
            let cp = self.table.checkpoint();
            let names = self.added.len();
            let spec = self.decl_spec(&[Storage::Typedef, Storage::Extern, Storage::Static])?;
            let tag_only = matches!(self.table.get(spec.base.id), CType::Record(_) | CType::Enum(_));
            if !(tag_only && (self.tok.is(";") || self.tok.tok == Tok::Eof)) {
                loop {
                    let mut d = self.full_declarator(DIRECT, &spec.attrs)?;
                    let ty = self.build(spec.base, &mut d)?;
                    self.declare(spec.storage, d, ty)?;
                    if !self.opt(",")? {
                        break;
                    }
                }
            }
            self.keep_if_new(cp, names);
            // One declaration may omit its ';'.
            if self.tok.tok == Tok::Eof && first {
                break;
            }
            first = false;
            self.expect(";")?;
        }
        Ok(())
    }

    /// One abstract type, alone (LuaJIT `cp_decl_single`).
    fn type_name(&mut self) -> Result<QualType, CdefError> {
        let ty = self.abstract_type()?;
        if self.tok.tok != Tok::Eof {
            return Err(self.err_expected("<eof>"));
        }
        Ok(ty)
    }

    /// An abstract type inside a text (casts, `sizeof`) or alone (LuaJIT `cp_decl_abstract`).
    pub(crate) fn abstract_type(&mut self) -> Result<QualType, CdefError> {
        let spec = self.decl_spec(&[])?;
        let at = self.pos();
        let mut d = self.full_declarator(ABSTRACT, &spec.attrs)?;
        let ty = self.build(spec.base, &mut d)?;
        // `int __attribute__((aligned(8)))` names an aligned int, as in a typedef.
        self.aligned(ty, d.attrs.aligned_last, at)
    }

    /// `ty` with the alignment an `aligned(n)` attribute gives a typedef or type name (see
    /// [`TypeTable::try_aligned`]); a record whose own alignment differs is refused.
    fn aligned(&mut self, ty: QualType, align: Option<u32>, at: (u32, u32)) -> Result<QualType, CdefError> {
        let Some(n) = align else { return Ok(ty) };
        let id = self.table.try_aligned(ty.id, n).map_err(|e| Self::err_at(at, &type_error_message(&e)))?;
        Ok(QualType { id, quals: ty.quals })
    }

    /// Closes a checkpoint taken before a declaration or definition: when it declared no new
    /// name and completed no older type (an identical redeclaration), the types it made are
    /// unreachable and taken back, so that redeclaring costs nothing.
    fn keep_if_new(&mut self, cp: Checkpoint, names: usize) {
        if self.added.len() == names && self.table.untouched_since(&cp) {
            self.table.rollback(cp);
        } else {
            self.table.commit(cp);
        }
    }

    /// A table limit (or layout error) as a declaration error at the current token.
    pub(crate) fn type_err(&self, e: TypeError) -> CdefError {
        self.err(&type_error_message(&e))
    }

    /// Gives the declared name its meaning.
    fn declare(&mut self, storage: Option<Storage>, d: Declarator<'a>, ty: QualType) -> Result<(), CdefError> {
        let Some(name) = d.name else { return Ok(()) };
        let sym = if storage == Some(Storage::Typedef) {
            // gcc and LuaJIT give a typedef its `aligned(n)` (raised or lowered), which changes
            // the layout of every struct using it.
            Symbol::Typedef(self.aligned(ty, d.attrs.aligned_last, (name.line, name.col))?)
        } else if matches!(self.table.get(ty.id), CType::Function(_)) {
            // Static and extern functions are both declarations of a symbol to look up.
            Symbol::Function(FuncDecl { ty: ty.id, asm_name: d.attrs.redir })
        } else if storage == Some(Storage::Static) {
            Symbol::Constant(self.const_init(ty)?)
        } else {
            Symbol::Variable(VarDecl { ty, asm_name: d.attrs.redir })
        };
        self.define_symbol(&name, sym)
    }

    /// Adds an ordinary identifier. When the name is already declared, a typedef, function or
    /// extern declaration is ignored and the first meaning stays, whatever it was (LuaJIT's
    /// `cp_decl_multi`: `typedef int t; typedef long t;` leaves `t` an int, and glibc's
    /// `__asm__`-labelled redeclarations keep the first symbol name); a constant is fine when
    /// identical and otherwise an error.
    pub(crate) fn define_symbol(&mut self, name: &Token<'a>, sym: Symbol) -> Result<(), CdefError> {
        if name.tok != Tok::Ident {
            return Ok(());
        }
        let n = self.lex.text(name);
        let (old, sym) = match self.scope.insert_new_ordinary(n, sym) {
            Ok(n) => {
                self.added.push(Added::Ordinary(n));
                return Ok(());
            }
            Err(old) => old,
        };
        let same = match (old, &sym) {
            (_, Symbol::Typedef(_) | Symbol::Function(_) | Symbol::Variable(_)) => true,
            (Symbol::Constant(a), Symbol::Constant(b)) => super::same::constants_equivalent(self.table, a, b),
            (_, Symbol::Constant(_)) => false,
        };
        if same {
            return Ok(());
        }
        Err(Self::err_at((name.line, name.col), &format!("attempt to redefine '{n}'")))
    }

    /// `static const T name = expr`: an integer constant (LuaJIT `cp_decl_constinit`, which
    /// allows only types up to 4 bytes; every integer type is allowed here).
    fn const_init(&mut self, ty: QualType) -> Result<ConstDecl, CdefError> {
        let class = match self.table.get(ty.id) {
            CType::Int(k) => Some((self.table.int_size(*k) * 8, k.is_signed())),
            CType::Enum(e) if e.complete => Some((self.table.int_size(e.repr) * 8, e.repr.is_signed())),
            _ => None,
        };
        let Some((width, signed)) = class.filter(|_| ty.quals.is_const) else {
            return Err(self.err(BAD_TYPE));
        };
        self.expect("=")?;
        let v = self.kint()?;
        let bits = super::expr::normalize(v.bits, width, signed);
        Ok(ConstDecl { value: bits as i64, ty })
    }

    // ---- preprocessor lines ----

    /// A `#` line at the start of a declaration: `#pragma pack`, other pragmas (skipped),
    /// `#line n` and `# n "file"` (renumber lines). Anything else is an error, as in LuaJIT,
    /// which has no preprocessor.
    fn directive(&mut self) -> Result<(), CdefError> {
        // The line the directive spans, backslash-newlines joined.
        let hash_line = self.tok.joined_line;
        self.next()?;
        if let Tok::Int(lit) = self.tok.tok {
            return self.line_marker(hash_line, lit.value);
        }
        match self.ident().as_deref() {
            Some("line") => {
                self.next()?;
                match self.tok.tok {
                    Tok::Int(lit) => self.line_marker(hash_line, lit.value),
                    _ => Err(self.err_expected("<integer>")),
                }
            }
            Some("pragma") => self.pragma(hash_line),
            Some("define") => self.define(hash_line),
            _ => Err(self.err_near("unexpected symbol")),
        }
    }

    /// `#define NAME <integer constant expression>` (beyond LuaJIT, which has no
    /// preprocessor): NAME becomes a constant of the expression's type, as a `static const`
    /// would (`ffi.C.NAME`). Every other `#define` (function-like macros, strings, floating
    /// numbers, names of functions or variables, empty ones) is skipped: real headers are full
    /// of them. A constant already declared with another value is "attempt to redefine".
    fn define(&mut self, hash_line: u32) -> Result<(), CdefError> {
        self.next()?;
        let Some(name) = self.ident().filter(|_| self.tok.joined_line == hash_line) else {
            return self.skip_define(hash_line);
        };
        let name_tok = self.tok;
        self.next()?;
        // `NAME(` without a space between is a function-like macro.
        let name_end = name_tok.col.saturating_add(name.chars().count() as u32);
        let function_like = self.tok.is("(") && self.tok.line == name_tok.line && self.tok.col == name_end;
        if function_like || self.tok.joined_line != hash_line || self.tok.tok == Tok::Eof {
            return self.skip_define(hash_line);
        }
        let (mark, tok, names) = (self.lex.mark(), self.tok, self.added.len());
        let cp = self.table.checkpoint();
        match self.kint() {
            Ok(v) if self.tok.joined_line != hash_line || self.tok.tok == Tok::Eof => {
                self.table.commit(cp);
                let value = ConstDecl { value: v.bits as i64, ty: QualType::plain(v.ty) };
                self.define_symbol(&name_tok, Symbol::Constant(value))
            }
            // Not an integer constant expression filling the line: as if never read.
            _ => {
                self.scope.take_back(&self.added[names..]);
                self.added.truncate(names);
                self.table.rollback(cp);
                self.lex.reset(mark);
                self.tok = tok;
                self.skip_define(hash_line)
            }
        }
    }

    /// Skips the rest of a `#define` line, whatever its tokens (`3.14` is no error there).
    fn skip_define(&mut self, line: u32) -> Result<(), CdefError> {
        self.lex.skipping = true;
        let skipped = self.skip_line(line);
        self.lex.skipping = false;
        skipped
    }

    fn skip_line(&mut self, line: u32) -> Result<(), CdefError> {
        while self.tok.tok != Tok::Eof && self.tok.joined_line == line {
            self.next()?;
        }
        Ok(())
    }

    fn line_marker(&mut self, hash_line: u32, number: u64) -> Result<(), CdefError> {
        self.skip_line(hash_line)?;
        let line = u32::try_from(number).unwrap_or(u32::MAX);
        self.lex.renumber(&mut self.tok, line);
        Ok(())
    }

    /// `#pragma pack(n)`, `pack()`, `pack(push[, n])`, `pack(pop[, n])` (LuaJIT `cp_pragma`;
    /// MSVC's and gcc's meaning): the cap on member alignment for records defined afterwards.
    fn pragma(&mut self, hash_line: u32) -> Result<(), CdefError> {
        self.next()?;
        if self.ident().as_deref() != Some("pack") {
            return self.skip_line(hash_line);
        }
        self.next()?;
        self.expect("(")?;
        if let Some(word) = self.ident() {
            match &*word {
                "push" => {
                    if self.pack_saved.len() + 1 >= MAX_PACK_DEPTH {
                        return Err(self.err_near(TOO_DEEP));
                    }
                    self.pack_saved.push(self.pack);
                }
                "pop" => {
                    if let Some(saved) = self.pack_saved.pop() {
                        self.pack = saved;
                    }
                }
                _ => return Err(self.err_near("unexpected symbol")),
            }
            self.next()?;
            if !self.opt(",")? {
                return self.expect(")");
            }
        }
        let value = match self.tok.tok {
            Tok::Int(lit) => {
                self.next()?;
                // pack(0) restores the default, like pack().
                (lit.value > 0).then(|| floor_pow2(lit.value))
            }
            _ => None,
        };
        self.pack = value;
        self.expect(")")
    }

    // ---- declaration specifiers ----

    /// Declaration specifiers: storage class, type specifiers, qualifiers and attributes
    /// (LuaJIT `cp_decl_spec`).
    fn decl_spec(&mut self, allowed: &[Storage]) -> Result<Spec, CdefError> {
        #[derive(Default)]
        struct Seen {
            void: bool,
            bool_: bool,
            char_: bool,
            fp: bool,
            longs: u32,
            short: bool,
            complex: bool,
            signed: bool,
            unsigned: bool,
            int: bool,
        }
        let mut seen = Seen::default();
        let mut size: Option<u32> = None;
        let mut tdef: Option<QualType> = None;
        let mut storage = None;
        let mut attrs = Attrs::default();
        loop {
            self.attributes(&mut attrs)?;
            let kw = self.kw();
            if let Some(Kw::Unsupported(why)) = kw {
                return Err(self.err(&format!("'{}' is not supported: {}", self.lex.text(&self.tok), why.why())));
            }
            let sized = match kw {
                Some(Kw::Void) => Some(0),
                Some(Kw::Bool) => Some(1),
                Some(Kw::Char) => Some(1),
                Some(Kw::Int(n)) => Some(n),
                Some(Kw::Float) => Some(4),
                Some(Kw::Double) => Some(8),
                _ => None,
            };
            let class = match kw {
                Some(Kw::Typedef) => Some(Storage::Typedef),
                Some(Kw::Extern) => Some(Storage::Extern),
                Some(Kw::Static) => Some(Storage::Static),
                Some(Kw::Auto) => Some(Storage::Auto),
                Some(Kw::Register) => Some(Storage::Register),
                _ => None,
            };
            let simple = sized.is_some()
                || class.is_some()
                || matches!(
                    kw,
                    Some(Kw::BareBool | Kw::Long | Kw::Short | Kw::Complex | Kw::Signed | Kw::Unsigned | Kw::Inline)
                );
            if simple {
                if let Some(n) = sized {
                    // A second sized keyword ends the specifiers ("int int" is then a bad
                    // declarator), as a type keyword after a typedef name does.
                    if size.is_some() {
                        break;
                    }
                    size = Some(n);
                }
                match class {
                    Some(c) => {
                        if !allowed.contains(&c) {
                            return Err(self.err_near("bad storage class"));
                        }
                        storage = Some(c);
                    }
                    None if tdef.is_some() => break,
                    None => {}
                }
                match kw {
                    Some(Kw::Void) => seen.void = true,
                    Some(Kw::Bool | Kw::BareBool) => seen.bool_ = true,
                    Some(Kw::Char) => seen.char_ = true,
                    Some(Kw::Int(4)) => seen.int = true,
                    Some(Kw::Float | Kw::Double) => seen.fp = true,
                    Some(Kw::Long) => seen.longs += 1,
                    Some(Kw::Short) => seen.short = true,
                    Some(Kw::Complex) => seen.complex = true,
                    Some(Kw::Signed) => seen.signed = true,
                    Some(Kw::Unsigned) => seen.unsigned = true,
                    _ => {}
                }
                self.next()?;
                continue;
            }
            if size.is_some()
                || tdef.is_some()
                || seen.short
                || seen.longs > 0
                || seen.signed
                || seen.unsigned
                || seen.complex
            {
                break;
            }
            match kw {
                Some(Kw::Struct) => {
                    tdef = Some(QualType::plain(self.record_specifier(RecordKind::Struct, &mut attrs)?))
                }
                Some(Kw::Union) => tdef = Some(QualType::plain(self.record_specifier(RecordKind::Union, &mut attrs)?)),
                Some(Kw::Enum) => tdef = Some(QualType::plain(self.enum_specifier(&mut attrs)?)),
                _ => match &self.tok.tok {
                    Tok::TypeParam(q) => {
                        tdef = Some(*q);
                        self.next()?;
                    }
                    Tok::Ident if kw.is_none() => match self.scope.typedef(self.lex.text(&self.tok)) {
                        Some(q) => {
                            tdef = Some(q);
                            self.next()?;
                        }
                        None => break,
                    },
                    _ => break,
                },
            }
        }
        let t = &*self.table;
        let signed = !seen.unsigned;
        let base = if seen.complex {
            let kind = if size == Some(4) {
                FloatKind::Float
            } else if seen.longs > 0 {
                FloatKind::LongDouble
            } else {
                FloatKind::Double
            };
            t.complex(kind)
        } else if let Some(q) = tdef {
            let quals = q.quals.union(attrs.quals);
            attrs.quals = Quals::NONE;
            return Ok(Spec { base: QualType { id: q.id, quals }, storage, attrs });
        } else if seen.void {
            t.void()
        } else if seen.bool_ {
            if seen.char_ || seen.fp || seen.longs > 0 || seen.short || seen.void {
                return Err(self.err(BAD_TYPE));
            }
            let made = self.table.try_wide_bool(size.unwrap_or(1));
            made.map_err(|e| self.err(&type_error_message(&e)))?
        } else if seen.fp {
            if seen.longs > 0 {
                t.float(FloatKind::LongDouble)
            } else if size == Some(4) {
                t.float(FloatKind::Float)
            } else {
                t.float(FloatKind::Double)
            }
        } else if seen.char_ {
            t.int(match (seen.signed, seen.unsigned) {
                (_, true) => IntKind::UChar,
                (true, false) => IntKind::SChar,
                (false, false) => IntKind::Char,
            })
        } else if seen.short {
            t.int(if signed { IntKind::Short } else { IntKind::UShort })
        } else if seen.longs >= 2 {
            t.int(if signed { IntKind::LongLong } else { IntKind::ULongLong })
        } else if seen.longs == 1 {
            t.int(if signed { IntKind::Long } else { IntKind::ULong })
        } else if let Some(n) = size.filter(|_| !seen.int) {
            // __int8 .. __int64 (MSVC): the integer of that size; __int64 is long long.
            let kind = match (n, signed) {
                (1, true) => IntKind::SChar,
                (1, false) => IntKind::UChar,
                (2, true) => IntKind::Short,
                (2, false) => IntKind::UShort,
                (8, true) => IntKind::LongLong,
                (8, false) => IntKind::ULongLong,
                (_, true) => IntKind::Int,
                (_, false) => IntKind::UInt,
            };
            t.int(kind)
        } else if seen.int || seen.signed || seen.unsigned {
            t.int(if signed { IntKind::Int } else { IntKind::UInt })
        } else {
            return Err(self.err_near("declaration specifier expected"));
        };
        let quals = attrs.quals;
        attrs.quals = Quals::NONE;
        Ok(Spec { base: QualType { id: base, quals }, storage, attrs })
    }

    // ---- attributes ----

    /// Qualifiers, `__attribute__`, `__declspec`, `__asm__`, calling conventions (LuaJIT
    /// `cp_decl_attributes`).
    #[inline]
    fn attributes(&mut self, a: &mut Attrs) -> Result<(), CdefError> {
        // Most tokens are none of them: no call.
        match self.tok.kw {
            Some(k) if k.is_attribute() => self.attributes_from(a),
            _ => Ok(()),
        }
    }

    /// [`Self::attributes`] from a token that is one.
    fn attributes_from(&mut self, a: &mut Attrs) -> Result<(), CdefError> {
        loop {
            match self.kw() {
                Some(Kw::Const) => a.quals.is_const = true,
                Some(Kw::Volatile) => a.quals.is_volatile = true,
                Some(Kw::Restrict | Kw::Extension) => {}
                // LuaJIT reads them on 64-bit targets only; on x86 they change nothing.
                Some(Kw::Ptr64) if self.table.target().pointer_size() == 8 => a.ptr_size = Some(8),
                Some(Kw::Ptr32) if self.table.target().pointer_size() == 8 => a.ptr_size = Some(4),
                Some(Kw::Ptr32 | Kw::Ptr64) => {}
                Some(Kw::Attribute) => {
                    self.gcc_attribute(a)?;
                    continue;
                }
                Some(Kw::Asm) => {
                    self.asm_redirect(a)?;
                    continue;
                }
                Some(Kw::Declspec) => {
                    self.msvc_attribute(a)?;
                    continue;
                }
                Some(Kw::Conv(c)) => a.conv = Some(c),
                _ => return Ok(()),
            }
            self.next()?;
        }
    }

    /// Skips a parenthesized token list, nested parentheses included.
    fn skip_parens(&mut self) -> Result<(), CdefError> {
        if !self.opt("(")? {
            return Ok(());
        }
        let mut level = 1u32;
        loop {
            if self.tok.tok == Tok::Eof {
                return Err(self.err_expected(")"));
            }
            if self.tok.is("(") {
                level += 1;
            } else if self.tok.is(")") {
                level -= 1;
                if level == 0 {
                    return self.next();
                }
            }
            self.next()?;
        }
    }

    /// `__attribute__((a, b(x), ...))` (LuaJIT `cp_decl_gccattribute`). `aligned`, `packed`,
    /// `mode` and, on x86, the calling conventions mean something; others are skipped.
    fn gcc_attribute(&mut self, a: &mut Attrs) -> Result<(), CdefError> {
        self.next()?;
        self.expect("(")?;
        self.expect("(")?;
        while !self.tok.is(")") {
            if let Some(name) = self.ident() {
                self.next()?;
                let bare = name.strip_prefix("__").and_then(|n| n.strip_suffix("__")).unwrap_or(&name);
                let x86 = self.table.target().arch == Arch::X86;
                match bare {
                    "aligned" => self.align_attribute(a)?,
                    "packed" => a.packed = true,
                    "mode" => self.mode_attribute(a)?,
                    "vector_size" => {
                        self.expect("(")?;
                        let n = self.ksize()?;
                        self.expect(")")?;
                        // Rounded down to a power of two (LuaJIT `lj_fls`); 0 means none.
                        if n > 0 {
                            a.vector = Some(u64::from(floor_pow2(n)));
                        }
                    }
                    "cdecl" if x86 => a.conv = Some(CallConv::Cdecl),
                    "stdcall" if x86 => a.conv = Some(CallConv::Stdcall),
                    "fastcall" if x86 => a.conv = Some(CallConv::Fastcall),
                    "thiscall" if x86 => a.conv = Some(CallConv::Thiscall),
                    "regparm" | "sseregparm" if x86 => {
                        return Err(self.err(&format!("the '{bare}' calling convention is not supported")));
                    }
                    _ => self.skip_parens()?,
                }
            } else if self.kw().is_some() {
                // `__attribute__((const))` and other keywords used as attribute names.
                self.next()?;
                self.skip_parens()?;
            } else {
                break;
            }
            if !self.opt(",")? {
                break;
            }
        }
        self.expect(")")?;
        self.expect(")")
    }

    /// `__declspec(align(n) ...)` (LuaJIT `cp_decl_msvcattribute`).
    fn msvc_attribute(&mut self, a: &mut Attrs) -> Result<(), CdefError> {
        self.next()?;
        self.expect("(")?;
        while let Some(name) = self.ident() {
            self.next()?;
            if name == "align" {
                self.align_attribute(a)?;
            } else {
                self.skip_parens()?;
            }
        }
        self.expect(")")
    }

    /// `aligned`, `aligned(n)`: n rounded down to a power of two (LuaJIT `lj_fls`), 16 when
    /// omitted (gcc's `__BIGGEST_ALIGNMENT__` on x86 with SSE), 0 meaning no change. Several
    /// alignments: the largest wins (gcc).
    fn align_attribute(&mut self, a: &mut Attrs) -> Result<(), CdefError> {
        let n = if self.tok.is("(") {
            self.next()?;
            let n = self.ksize()?;
            self.expect(")")?;
            n
        } else {
            16
        };
        if n > 0 {
            let n = floor_pow2(n);
            a.aligned = Some(a.aligned.map_or(n, |old| old.max(n)));
            a.aligned_last = Some(n);
        }
        Ok(())
    }

    /// `mode(QI|HI|SI|DI|TI|OI)` with an `I` or `F` after the size letter (gcc machine modes:
    /// 1, 2, 4, 8, 16, 32 bytes): the numeric base type gets that size; `mode(V4SF)` and the
    /// like make a vector of that many such elements; other modes (`SC`, `XF`'s `X`) change
    /// nothing (LuaJIT `cp_decl_mode`). Beyond LuaJIT, gcc's `byte`, `word` and `pointer`.
    fn mode_attribute(&mut self, a: &mut Attrs) -> Result<(), CdefError> {
        self.expect("(")?;
        if let Some(name) = self.ident() {
            let bare = name.strip_prefix("__").and_then(|n| n.strip_suffix("__")).unwrap_or(&name);
            let (lanes, bare) = match bare.strip_prefix('V') {
                Some(rest) => {
                    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                    (rest[..digits].parse::<u64>().ok(), &rest[digits..])
                }
                None => (None, bare),
            };
            let size = match bare {
                "byte" => Some(1),
                "word" | "pointer" => Some(self.table.target().pointer_size()),
                _ => {
                    let size = match bare.as_bytes().first() {
                        Some(b'Q') => Some(1),
                        Some(b'H') => Some(2),
                        Some(b'S') => Some(4),
                        Some(b'D') => Some(8),
                        Some(b'T') => Some(16),
                        Some(b'O') => Some(32),
                        _ => None,
                    };
                    size.filter(|_| matches!(bare.as_bytes().get(1), Some(b'I' | b'F')))
                }
            };
            if let Some(n) = size {
                a.mode = Some(ModeAttr(n));
            }
            let element = size.map_or(0, u64::from);
            if let Some(n) = lanes.map(|lanes| lanes.saturating_mul(element)).filter(|&n| n > 0) {
                a.vector = Some(u64::from(floor_pow2(n)));
            }
            self.next()?;
        }
        self.expect(")")
    }

    /// `__asm__("symbol")`: the symbol name to look up instead of the declared name.
    fn asm_redirect(&mut self, a: &mut Attrs) -> Result<(), CdefError> {
        // `asm(`: the `(` is read with the keyword, never as a token.
        if self.lex.take_punct(b'(').is_some() {
            self.next()?;
        } else {
            self.next()?;
            self.expect("(")?;
        }
        // Adjacent string literals are one name; one literal is borrowed from the text.
        let mut name: Option<Cow<'a, str>> = None;
        let mut closed = false;
        while self.tok.tok == Tok::Str {
            match &mut name {
                None => name = Some(self.lex.text_cow(&self.tok)),
                Some(n) => n.to_mut().push_str(self.lex.text(&self.tok)),
            }
            // `"name")`: the `)` is read with the string, never as a token.
            if self.lex.take_punct(b')').is_some() {
                closed = true;
                break;
            }
            self.next()?;
        }
        if let Some(name) = name {
            a.redir = Some(self.scope.label(&name));
        }
        if closed {
            self.next()
        } else {
            self.expect(")")
        }
    }

    // ---- declarators ----

    /// A declarator with its bit-field width and trailing attributes.
    fn full_declarator(&mut self, mode: DeclMode, spec: &Attrs) -> Result<Declarator<'a>, CdefError> {
        let mut attrs = spec.clone();
        let mut name = None;
        let mut ops = self.declarator(mode, &mut attrs, &mut name)?;
        let mut bits = None;
        if mode.field && self.tok.is(":") {
            let colon = self.pos();
            self.next()?;
            bits = Some((self.ksize()?, colon));
        }
        self.attributes(&mut attrs)?;
        give_conv(&mut ops, &mut attrs);
        Ok(Declarator { name, ops, bits, attrs })
    }

    /// One level of declarator: pointers, a name or parenthesized inner declarator, then array
    /// and function suffixes (LuaJIT `cp_declarator`). Returns the derivations in the order
    /// they apply to the base type.
    fn declarator(
        &mut self,
        mode: DeclMode,
        a: &mut Attrs,
        name: &mut Option<Token<'a>>,
    ) -> Result<Vec<Op>, CdefError> {
        self.enter()?;
        let mut pointers = Vec::new();
        loop {
            if self.opt("*")? {
                self.attributes(a)?;
                let quals = std::mem::take(&mut a.quals);
                pointers.push(match a.ptr_size.take() {
                    Some(4) => Op::Ptr32(quals),
                    _ => Op::Pointer(quals),
                });
            } else if self.tok.is("&") || self.tok.is("&&") {
                // C++ references: LuaJIT has them, the type table does not.
                return Err(self.err_near(BAD_TYPE));
            } else {
                break;
            }
        }
        let mut inner = Vec::new();
        // The list of an earlier declarator when one was given back: the one level of most
        // declarators (`name(...)`) then allocates none.
        let mut suffixes = std::mem::take(&mut self.spare_ops);
        if self.tok.is("(") {
            let at = self.pos();
            self.next()?;
            self.attributes(a)?;
            // In an abstract declarator "(" followed by ")" or a type starts a parameter list.
            if mode.abstract_ && (self.tok.is(")") || self.starts_type()) {
                suffixes.push(self.func_suffix(a, at)?);
            } else {
                inner = self.declarator(mode, a, name)?;
                self.expect(")")?;
            }
        } else if self.ident().is_some() && !matches!(self.tok.tok, Tok::TypeParam(_)) {
            if !mode.direct {
                return Err(self.err_expected("<eof>"));
            }
            *name = Some(self.tok);
            // `name(`: the `(` is read with the name, never as a token.
            if let Some(at) = self.lex.take_punct(b'(') {
                self.next()?;
                suffixes.push(self.func_suffix(a, at)?);
            } else {
                self.next()?;
            }
        } else if !mode.abstract_ {
            return Err(self.err_expected("<identifier>"));
        }
        loop {
            let at = self.pos();
            if self.opt("[")? {
                suffixes.push(self.array_suffix(a, at)?);
            } else if self.opt("(")? {
                suffixes.push(self.func_suffix(a, at)?);
            } else {
                break;
            }
        }
        self.attributes(a)?;
        // Without pointers at this level (`name(...)`, `(*)(...)`) the suffixes' list is
        // the result, and without suffixes the inner one: no third list.
        let mut ops = if pointers.is_empty() {
            if suffixes.is_empty() {
                self.spare_ops = suffixes;
                inner
            } else {
                suffixes.reverse();
                suffixes.extend(inner);
                suffixes
            }
        } else {
            let mut ops = pointers;
            if !suffixes.is_empty() {
                ops.extend(suffixes.drain(..).rev());
            }
            ops.extend(inner);
            self.spare_ops = suffixes;
            ops
        };
        give_conv(&mut ops, a);
        if ops.len() > MAX_DERIVATIONS {
            return Err(self.err(TOO_DEEP));
        }
        self.leave();
        Ok(ops)
    }

    /// `[n]`, `[]`, `[?]` (LuaJIT `cp_decl_array`): a size that is not a constant (it names a
    /// parameter or variable) also makes a variable-length array.
    fn array_suffix(&mut self, a: &mut Attrs, at: (u32, u32)) -> Result<Op, CdefError> {
        self.attributes(a)?;
        let len = if self.opt("?")? {
            ArrayLen::Variable
        } else if self.tok.is("]") {
            ArrayLen::Flexible
        } else {
            let v = self.expr_sub(0)?;
            if !self.is_integer(v.ty) {
                return Err(self.err(BAD_VALUE));
            }
            if v.imm {
                let n = self.value_of(v);
                if !(0..MAX_OBJECT_SIZE as i128).contains(&n) {
                    return Err(self.err(BAD_SIZE));
                }
                ArrayLen::Fixed(n as u64)
            } else {
                ArrayLen::Variable
            }
        };
        self.expect("]")?;
        Ok(Op::Array { len, at })
    }

    /// A parameter list after its `(` (LuaJIT `cp_decl_func`): parameters with or without
    /// names, `(void)`, `...`; arrays and functions decay to pointers, top-level qualifiers are
    /// dropped (C11 6.7.6.3p15: they are not part of the function's type). A body `{ ... }` is
    /// skipped, as LuaJIT skips inline function definitions.
    fn func_suffix(&mut self, a: &mut Attrs, at: (u32, u32)) -> Result<Op, CdefError> {
        if self.params.capacity() == 0 {
            // Room for most lists, nested ones too, without growing.
            self.params.reserve(16);
        }
        let start = self.params.len();
        let op = self.func_suffix_at(a, at, start);
        // Parameters of lists left unfinished by an error (a `#define` that is not a constant
        // goes on parsing) are no one's.
        self.params.truncate(start);
        op
    }

    /// [`Self::func_suffix`], its parameters pushed on [`Parser::params`] from `start` on.
    fn func_suffix_at(&mut self, a: &mut Attrs, at: (u32, u32), start: usize) -> Result<Op, CdefError> {
        self.enter()?;
        let mut variadic = false;
        // The list's `)` was read with its last parameter (see below).
        let mut closed = false;
        if !self.tok.is(")") {
            loop {
                if self.opt(".")? {
                    // "..." arrives as three '.' tokens.
                    self.expect(".")?;
                    self.expect(".")?;
                    variadic = true;
                    break;
                }
                if let Some(ty) = self.lone_param_type() {
                    if self.is_plain_param(ty) {
                        // Its `,` or `)` is read with it and never becomes a token: nothing
                        // after a parameter that ends well needs the separator's position.
                        self.params.push(Param { name: None, ty: QualType::plain(ty.id) });
                        if self.lex.take_list_separator() == Some(b')') {
                            closed = true;
                            break;
                        }
                        self.next()?;
                        continue;
                    }
                    self.next()?;
                    if !self.param_type(ty, None, start)? {
                        break;
                    }
                    if !self.opt(",")? {
                        break;
                    }
                    continue;
                }
                let spec = self.decl_spec(&[Storage::Register])?;
                let bare = (self.tok.is(",") || self.tok.is(")"))
                    && spec.attrs.mode.is_none()
                    && spec.attrs.ptr_size.is_none()
                    && spec.attrs.vector.is_none()
                    && self.depth < MAX_DEPTH;
                let (ty, pname) = if bare {
                    // A parameter of the specifiers alone (`int`, `size_t`): the empty
                    // declarator would change nothing (no mode or vector to apply, and the
                    // depth its level would take is free).
                    (spec.base, None)
                } else {
                    let mut d = self.full_declarator(PARAM, &spec.attrs)?;
                    let ty = self.build(spec.base, &mut d)?;
                    (ty, d.name.as_ref().and_then(|t| self.token_name(t)).map(String::into_boxed_str))
                };
                if !self.param_type(ty, pname, start)? {
                    break;
                }
                if !self.opt(",")? {
                    break;
                }
            }
        }
        // One allocation of the list's own length, its parameters copied in one move.
        let params: Vec<Param> = self.params.split_off(start);
        if closed {
            self.next()?;
        } else {
            self.expect(")")?;
        }
        if self.tok.is("{") {
            self.skip_body()?;
        }
        self.leave();
        Ok(Op::Func { params, variadic, conv: a.conv.take(), at })
    }

    /// Adds a parameter of type `ty` to the list begun at `start`, arrays and functions
    /// decayed to pointers; false (adding none) for `void`, which ends the list.
    #[inline(always)]
    fn param_type(&mut self, ty: QualType, name: Option<Box<str>>, start: usize) -> Result<bool, CdefError> {
        debug_assert!(self.params.len() >= start);
        let id = match self.table.get(ty.id) {
            CType::Void => return Ok(false),
            CType::Array { .. } | CType::Function(_) => self.decayed(ty)?,
            _ => ty.id,
        };
        self.params.push(Param { name, ty: QualType::plain(id) });
        Ok(true)
    }

    /// Is `ty` a parameter type taken as it is: not `void` (which ends the list) and not
    /// an array or function (which decay, see [`Self::param_type`])?
    fn is_plain_param(&self, ty: QualType) -> bool {
        !matches!(self.table.get(ty.id), CType::Void | CType::Array { .. } | CType::Function(_))
    }

    /// The pointer an array or function parameter type decays to (out of line: it may make
    /// a type, or an error).
    #[inline(never)]
    fn decayed(&mut self, ty: QualType) -> Result<TypeId, CdefError> {
        let decayed = match self.table.get(ty.id) {
            // A vector is a value, not an array: it does not decay.
            CType::Array { .. } if self.table.is_vector(ty.id) => Ok(ty.id),
            CType::Array { elem, .. } => {
                let elem = *elem;
                self.table.try_pointer_to(elem)
            }
            CType::Function(_) => self.table.try_pointer_to(ty),
            _ => Ok(ty.id),
        };
        decayed.map_err(|e| self.type_err(e))
    }

    /// The type of a parameter written as one type keyword or typedef name right before its
    /// `,` or `)` (`int`, `double`, `size_t`): what [`Self::decl_spec`] and an empty
    /// declarator make of it, without their general machinery (most parameters of real
    /// declarations are such). `None` for anything else, and at the deepest nesting, where
    /// the declarator's level is an error.
    fn lone_param_type(&self) -> Option<QualType> {
        if self.depth >= MAX_DEPTH || !self.lex.next_is_list_separator() {
            return None;
        }
        let id = match self.tok.kw {
            // `int` and `__int32`, as [`Self::decl_spec`] reads them alone.
            Some(Kw::Int(4)) => self.table.int(IntKind::Int),
            Some(Kw::Double) => self.table.float(FloatKind::Double),
            Some(Kw::Float) => self.table.float(FloatKind::Float),
            Some(Kw::Char) => self.table.int(IntKind::Char),
            Some(_) => return None,
            None => match &self.tok.tok {
                Tok::Ident => return self.scope.typedef(self.lex.text(&self.tok)),
                _ => return None,
            },
        };
        Some(QualType::plain(id))
    }

    /// Skips `{ ... }` and leaves a `;` in place of the closing brace, as LuaJIT does.
    fn skip_body(&mut self) -> Result<(), CdefError> {
        let mut level = 0u32;
        self.lex.skipping = true;
        loop {
            if self.tok.is("{") {
                level += 1;
            } else if self.tok.is("}") {
                level -= 1;
                if level == 0 {
                    break;
                }
            } else if self.tok.tok == Tok::Eof {
                self.lex.skipping = false;
                return Err(self.err_expected("}"));
            }
            if let Err(e) = self.next() {
                self.lex.skipping = false;
                return Err(e);
            }
        }
        self.lex.skipping = false;
        self.tok.set_punct(";");
        Ok(())
    }

    /// Applies a declarator's derivations to the base type (LuaJIT `cp_decl_intern`), checking
    /// what C and LuaJIT forbid: arrays of functions, of incomplete or variable-length types,
    /// of 2^31 bytes or more; functions returning functions or arrays. A function
    /// derivation's parameters are moved into its type, and its list is kept for the next
    /// declarator (`d` is built once).
    fn build(&mut self, base: QualType, d: &mut Declarator<'_>) -> Result<QualType, CdefError> {
        let at = d.name.as_ref().map_or(self.pos(), |n| (n.line, n.col));
        let mode = d.attrs.mode.or(d.attrs.ptr_size.map(ModeAttr));
        let mut t = self.apply_mode(base, mode, at)?;
        if let Some(bytes) = d.attrs.vector {
            t = self.apply_vector(t, bytes, at)?;
        }
        for op in &mut d.ops {
            t = match op {
                Op::Pointer(q) => {
                    QualType { id: self.table.try_pointer_to(t).map_err(|e| self.type_err(e))?, quals: *q }
                }
                Op::Ptr32(q) => QualType { id: self.table.try_ptr32_to(t).map_err(|e| self.type_err(e))?, quals: *q },
                Op::Array { len, at } => {
                    let elem_size = match self.table.get(t.id) {
                        CType::Function(_) | CType::Void => return Err(Self::err_at(*at, BAD_SIZE)),
                        _ => match self.table.layout(t.id) {
                            Ok(l) => Some(l.size),
                            // long double has a size; only its layout is unsupported.
                            Err(TypeError::Unsupported { .. }) => None,
                            Err(_) => return Err(Self::err_at(*at, BAD_SIZE)),
                        },
                    };
                    if self.is_variable_length(t.id) {
                        return Err(Self::err_at(*at, BAD_SIZE));
                    }
                    if let (ArrayLen::Fixed(n), Some(size)) = (&*len, elem_size) {
                        if size.checked_mul(*n).is_none_or(|total| total >= MAX_OBJECT_SIZE) {
                            return Err(Self::err_at(*at, BAD_SIZE));
                        }
                    }
                    let array = self.table.try_array_of(t, *len);
                    QualType::plain(array.map_err(|e| Self::err_at(*at, &type_error_message(&e)))?)
                }
                Op::Func { params, variadic, conv, at } => {
                    // A vector is a value a function may return (LuaJIT's too), not an array.
                    let array = matches!(self.table.get(t.id), CType::Array { .. }) && !self.table.is_vector(t.id);
                    if array || matches!(self.table.get(t.id), CType::Function(_)) {
                        return Err(Self::err_at(*at, BAD_TYPE));
                    }
                    // On x86-64 there is one convention; LuaJIT ignores the keywords there.
                    let conv = match self.table.target().arch {
                        Arch::X86 => conv.unwrap_or_default(),
                        Arch::X86_64 => CallConv::Cdecl,
                    };
                    let f = FuncType { ret: t, params: std::mem::take(params), variadic: *variadic, conv };
                    let func = self.table.try_function(f);
                    QualType::plain(func.map_err(|e| Self::err_at(*at, &type_error_message(&e)))?)
                }
            };
        }
        self.recycle_ops(std::mem::take(&mut d.ops));
        Ok(t)
    }

    /// Keeps a declarator's list of derivations, emptied, for the next declarator, when it
    /// has more room than the one kept.
    fn recycle_ops(&mut self, mut ops: Vec<Op>) {
        if ops.capacity() > self.spare_ops.capacity() {
            ops.clear();
            self.spare_ops = ops;
        }
    }

    /// `mode(...)` changes a numeric base type's size: an integer's to any mode's (16 and 32
    /// bytes make a [`CType::WideInt`], LuaJIT's `int128_t`/`int256_t`), a floating type's to 4
    /// or 8 bytes only; `bool` and enums keep theirs (LuaJIT `cp_decl_intern`).
    fn apply_mode(&mut self, base: QualType, mode: Option<ModeAttr>, at: (u32, u32)) -> Result<QualType, CdefError> {
        let Some(mode) = mode else { return Ok(base) };
        let id = match (mode, self.table.get(base.id)) {
            (ModeAttr(n), &CType::Int(k)) => match self.table.int_of_size(n, k.is_signed()) {
                Some(id) => id,
                None => {
                    let made = self.table.try_wide_int(n, k.is_signed());
                    made.map_err(|e| Self::err_at(at, &type_error_message(&e)))?
                }
            },
            (ModeAttr(4), CType::Float(_)) => self.table.float(FloatKind::Float),
            (ModeAttr(8), CType::Float(_)) => self.table.float(FloatKind::Double),
            _ => base.id,
        };
        Ok(QualType { id, quals: base.quals })
    }

    /// `vector_size(bytes)` makes a numeric base type a vector of `bytes` (LuaJIT
    /// `cp_decl_intern`): qualifiers go on the vector; a size below the element's leaves the
    /// element alone, and so does a `bool` (LuaJIT ignores both).
    fn apply_vector(&mut self, base: QualType, bytes: u64, at: (u32, u32)) -> Result<QualType, CdefError> {
        let numeric = matches!(self.table.get(base.id), CType::Int(_) | CType::Float(_));
        // A `long double` without a layout here goes on to the refusal of its vector.
        let elem_size = self.table.size_of(base.id).unwrap_or(1);
        if !numeric || bytes < elem_size {
            return Ok(base);
        }
        let made = self.table.try_vector_of(QualType::plain(base.id), bytes / elem_size);
        let id = made.map_err(|e| Self::err_at(at, &type_error_message(&e)))?;
        Ok(QualType { id, quals: base.quals })
    }

    /// A `[?]` array, or a struct whose last member is one (LuaJIT's VLA and VLS).
    pub(crate) fn is_variable_length(&self, id: TypeId) -> bool {
        match self.table.get(id) {
            CType::Array { len: ArrayLen::Variable, .. } => true,
            CType::Record(r) => r
                .body
                .as_ref()
                .and_then(|b| b.fields.last())
                .is_some_and(|f| matches!(self.table.get(f.ty.id), CType::Array { len: ArrayLen::Variable, .. })),
            _ => false,
        }
    }

    // ---- structs and unions ----

    /// `struct`/`union` [attributes] [tag] [`{` members `}` [attributes]] (LuaJIT
    /// `cp_struct_name` and `cp_decl_struct`).
    ///
    /// gcc gives the attributes inside the specifier (after the keyword, after the body) to
    /// the record type only: a member `struct __attribute__((aligned(8))) { float f; } b;` is
    /// not a member with an explicit `aligned(8)` (which would survive an enclosing `packed`).
    /// Those written before the keyword still apply to both, as before.
    fn record_specifier(&mut self, kind: RecordKind, a: &mut Attrs) -> Result<TypeId, CdefError> {
        let mut own = a.clone();
        let id = self.record_specifier_with(kind, &mut own)?;
        // Everything but the layout attributes goes on to the declaration.
        *a = Attrs { packed: a.packed, aligned: a.aligned, aligned_last: a.aligned_last, ..own };
        Ok(id)
    }

    /// [`Self::record_specifier`] with the record's own attributes in `a`.
    fn record_specifier_with(&mut self, kind: RecordKind, a: &mut Attrs) -> Result<TypeId, CdefError> {
        self.next()?;
        self.attributes(a)?;
        let want = TagKind::of_record(kind);
        let (id, tag) = self.tag_reference(want)?;
        let Some((name, at)) = tag else {
            // No tag: an anonymous record, which needs a body.
            let made = self.table.try_new_record(kind, None);
            let id = made.map_err(|e| self.type_err(e))?;
            self.record_body(id, kind, a)?;
            return Ok(id);
        };
        let id = id.expect("a tag names a type");
        if !self.tok.is("{") {
            return Ok(id);
        }
        if self.defining.contains(&id) {
            return Err(Self::err_at(at, &format!("attempt to redefine '{name}'")));
        }
        if self.table.record_body(id).is_none() {
            self.record_body(id, kind, a)?;
            return Ok(id);
        }
        // A second body: fine if identical (and then nothing it made is kept), else a
        // redefinition.
        let cp = self.table.checkpoint();
        let names = self.added.len();
        let made = self.table.try_new_record(kind, Some(&name));
        let again = made.map_err(|e| self.type_err(e))?;
        self.defining.push(id);
        let parsed = self.record_body(again, kind, a);
        self.defining.pop();
        parsed?;
        if !super::same::records_equivalent(self.table, id, again) {
            return Err(Self::err_at(at, &format!("attempt to redefine '{name}'")));
        }
        self.keep_if_new(cp, names);
        Ok(id)
    }

    /// Reads the tag after `struct`/`union`/`enum` if there is one: the type it names
    /// (declaring it, incomplete, when new and implicit declarations are allowed) and the tag
    /// with its position.
    #[allow(clippy::type_complexity)]
    fn tag_reference(&mut self, want: TagKind) -> Result<(Option<TypeId>, Option<(String, (u32, u32))>), CdefError> {
        if self.tok.is("{") {
            return Ok((None, None));
        }
        let Some(name) = self.ident() else {
            return Err(self.err_expected("<identifier>"));
        };
        let at = self.pos();
        let id = match self.scope.tag_id(&name) {
            Some(id) => {
                if tag_kind(self.table, id) != Some(want) {
                    return Err(Self::err_at(at, &format!("attempt to redefine '{name}'")));
                }
                id
            }
            None => {
                if self.mode == Mode::TypeName {
                    return Err(Self::err_at(at, &format!("undeclared or implicit tag '{name}'")));
                }
                let made = match want {
                    TagKind::Struct => self.table.try_new_record(RecordKind::Struct, Some(&name)),
                    TagKind::Union => self.table.try_new_record(RecordKind::Union, Some(&name)),
                    TagKind::Enum => self.table.try_new_enum(Some(&name)),
                };
                let id = made.map_err(|e| self.type_err(e))?;
                self.scope.insert_tag(&name, id);
                self.added.push(Added::Tag(name.to_string()));
                id
            }
        };
        self.next()?;
        Ok((Some(id), Some((name.into_owned(), at))))
    }

    /// `{ members } [attributes]`, then the layout.
    fn record_body(&mut self, id: TypeId, kind: RecordKind, a: &mut Attrs) -> Result<(), CdefError> {
        self.enter()?;
        let open = self.pos();
        self.expect("{")?;
        self.defining.push(id);
        let mut fields: Vec<Field> = Vec::new();
        let mut constants: Vec<RecordConst> = Vec::new();
        let mut after_flexible = false;
        while !self.tok.is("}") {
            let spec = self.decl_spec(&[Storage::Static])?;
            let is_static = spec.storage == Some(Storage::Static);
            let mode = if is_static { DIRECT } else { FIELD };
            loop {
                if after_flexible {
                    return Err(self.err_expected("}"));
                }
                let mut d = self.full_declarator(mode, &spec.attrs)?;
                let ty = self.build(spec.base, &mut d)?;
                let at = d.name.as_ref().map_or(self.pos(), |t| (t.line, t.col));
                if is_static {
                    // A constant in the struct's namespace (not the global one), read as a
                    // member: `s.k`.
                    let c = self.const_init(ty)?;
                    if let Some(name) = d.name.as_ref().and_then(|t| self.token_name(t)) {
                        constants.push(RecordConst { name, value: c.value, ty: c.ty });
                    }
                } else if let Some((width, colon)) = &d.bits {
                    let name = d.name.as_ref().and_then(|t| self.token_name(t));
                    self.check_bitfield(ty, *width, name.is_some(), *colon)?;
                    let mut f = Field::bits(name.as_deref(), ty, *width as u32);
                    f.aligned = d.attrs.aligned;
                    f.packed = d.attrs.packed;
                    fields.push(f);
                } else {
                    let flexible = matches!(
                        self.table.get(ty.id),
                        CType::Array { len: ArrayLen::Flexible | ArrayLen::Variable, .. }
                    );
                    if flexible {
                        if kind == RecordKind::Union {
                            return Err(Self::err_at(at, BAD_SIZE));
                        }
                        after_flexible = true;
                    } else {
                        self.check_member_size(ty, at)?;
                    }
                    match d.name.as_ref().and_then(|t| self.token_name(t)) {
                        Some(n) => {
                            let mut f = Field::named(&n, ty);
                            f.aligned = d.attrs.aligned;
                            f.packed = d.attrs.packed;
                            fields.push(f);
                        }
                        // An unnamed struct/union member is anonymous: its members belong to
                        // the outer record. An unnamed enum declares only its constants.
                        None => match self.table.get(ty.id) {
                            CType::Record(_) if !self.is_variable_length(ty.id) => {
                                fields.push(Field {
                                    name: None,
                                    ty,
                                    bit_width: None,
                                    aligned: d.attrs.aligned,
                                    packed: d.attrs.packed,
                                });
                            }
                            // Its enumerators are also read as members (LuaJIT `CTA_SUBTYPE`).
                            CType::Enum(e) => {
                                for (name, _) in &e.constants {
                                    if let Some(c) = self.scope.constant(name) {
                                        constants.push(RecordConst { name: name.clone(), value: c.value, ty: c.ty });
                                    }
                                }
                            }
                            _ => return Err(self.err_expected("<identifier>")),
                        },
                    }
                }
                if !self.opt(",")? {
                    break;
                }
            }
            self.expect(";")?;
        }
        self.next()?;
        self.attributes(a)?;
        self.defining.pop();
        let attrs = RecordAttrs { packed: a.packed, aligned: a.aligned, pack: self.pack };
        let defined = self.table.define_record_with_constants(id, fields, constants, attrs);
        defined.map_err(|e| Self::err_at(open, &type_error_message(&e)))?;
        self.leave();
        Ok(())
    }

    /// A member must have a size below 2^29 bytes and not be variable-length (LuaJIT
    /// `cp_struct_layout`).
    fn check_member_size(&self, ty: QualType, at: (u32, u32)) -> Result<(), CdefError> {
        if self.is_variable_length(ty.id) {
            return Err(Self::err_at(at, BAD_SIZE));
        }
        match self.table.layout(ty.id) {
            Ok(l) if l.size < MAX_MEMBER_SIZE => Ok(()),
            Err(TypeError::Unsupported { .. }) => Ok(()),
            _ => Err(Self::err_at(at, BAD_SIZE)),
        }
    }

    /// A bit-field's type must be an integer, bool or enum, and its width fit the type; only
    /// an unnamed one may be 0 wide. LuaJIT reports these as "invalid value near ':'".
    fn check_bitfield(&self, ty: QualType, width: u64, named: bool, colon: (u32, u32)) -> Result<(), CdefError> {
        let max = match self.table.get(ty.id) {
            CType::Bool | CType::WideBool { .. } => Some(1),
            CType::Int(k) => Some(u64::from(self.table.int_size(*k)) * 8),
            CType::Enum(e) if e.complete => Some(u64::from(self.table.int_size(e.repr)) * 8),
            _ => None,
        };
        match max {
            Some(max) if width <= max && !(width == 0 && named) => Ok(()),
            _ => Err(CdefError { line: colon.0, col: colon.1, message: BAD_VALUE.into(), token: Some(":".into()) }),
        }
    }

    // ---- enums ----

    /// `enum` [attributes] [tag] [`{` enumerators `}`] (LuaJIT `cp_decl_enum`).
    fn enum_specifier(&mut self, a: &mut Attrs) -> Result<TypeId, CdefError> {
        self.next()?;
        self.attributes(a)?;
        let (id, tag) = self.tag_reference(TagKind::Enum)?;
        let Some((name, at)) = tag else {
            // No tag: an anonymous enum, which needs a body.
            let id = self.table.try_new_enum(None).map_err(|e| self.type_err(e))?;
            self.enum_body(id)?;
            return Ok(id);
        };
        let id = id.expect("a tag names a type");
        if !self.tok.is("{") {
            return Ok(id);
        }
        let complete = matches!(self.table.get(id), CType::Enum(e) if e.complete);
        if !complete {
            self.enum_body(id)?;
            return Ok(id);
        }
        let cp = self.table.checkpoint();
        let names = self.added.len();
        let made = self.table.try_new_enum(Some(&name));
        let again = made.map_err(|e| self.type_err(e))?;
        self.enum_body(again)?;
        let same = match (self.table.get(id), self.table.get(again)) {
            (CType::Enum(x), CType::Enum(y)) => x.constants == y.constants,
            _ => false,
        };
        if !same {
            return Err(Self::err_at(at, &format!("attempt to redefine '{name}'")));
        }
        self.keep_if_new(cp, names);
        Ok(id)
    }

    /// `{ A, B = expr, ... }`: each enumerator is the previous one plus 1 unless given; a
    /// trailing comma is fine.
    fn enum_body(&mut self, id: TypeId) -> Result<(), CdefError> {
        let open = self.pos();
        self.expect("{")?;
        let mut constants: Vec<(String, i64)> = Vec::new();
        let mut next_value: i128 = 0;
        loop {
            let Some(name) = self.ident() else {
                return Err(self.err_expected("<identifier>"));
            };
            let name_tok = self.tok;
            self.next()?;
            if self.opt("=")? {
                let v = self.kint()?;
                next_value = self.value_of(v);
            }
            let value = i64::try_from(next_value).map_err(|_| self.err(BAD_VALUE))?;
            let ty = self.constant_type(value);
            self.define_symbol(&name_tok, Symbol::Constant(ConstDecl { value, ty: QualType::plain(ty) }))?;
            constants.push((name.into_owned(), value));
            next_value += 1;
            if !self.opt(",")? || self.tok.is("}") {
                break;
            }
        }
        self.expect("}")?;
        self.table.define_enum(id, constants).map_err(|e| Self::err_at(open, &type_error_message(&e)))
    }

    /// The type of an enumerator: `int` when it fits, else `unsigned int` (LuaJIT keeps
    /// `0x80000000`-style constants unsigned), else a 64-bit integer.
    fn constant_type(&self, value: i64) -> TypeId {
        let t = &*self.table;
        if i32::try_from(value).is_ok() {
            t.int(IntKind::Int)
        } else if u32::try_from(value).is_ok() {
            t.int(IntKind::UInt)
        } else {
            t.int(IntKind::LongLong)
        }
    }
}

/// A convention left over after a declarator level goes to its outermost function (gcc:
/// an attribute after a declarator applies to the declared function).
fn give_conv(ops: &mut [Op], a: &mut Attrs) {
    if a.conv.is_none() {
        return;
    }
    if let Some(Op::Func { conv, .. }) = ops.iter_mut().rev().find(|op| matches!(op, Op::Func { .. })) {
        *conv = a.conv.take();
    }
}

fn floor_pow2(n: u64) -> u32 {
    let n = n.min(1 << 31);
    1u32 << (63 - n.leading_zeros())
}

/// A layout error as a declaration error message.
fn type_error_message(e: &TypeError) -> String {
    match e {
        TypeError::Incomplete { .. } => BAD_SIZE.to_string(),
        other => other.to_string(),
    }
}
