//! The functions and values other FFIs for PUC Lua have and LuaJIT lacks, so that programs
//! written for them run too: cffi-lua's `ffi.nullptr`, `ffi.addressof`, `ffi.toretval`,
//! `ffi.type` and `ffi.tonumber`, and luaffi's `ffi.NULL`. Their meaning is cffi-lua's
//! (`docs/api.md` of q66/cffi-lua); where it and LuaJIT differ on the same function, LuaJIT's
//! rule is kept (docs/ffi.md says where).

use std::os::raw::c_int;

use abi_model::cdef;
use abi_model::{FloatKind, QualType};
use mlua::ffi;

use crate::cdata::{self, Form};
use crate::convert;
use crate::ctypes::ctype::{shape, Shape};
use crate::ctypes::state::{self, FfiState};
use crate::stack::{LuaStack, OrRaise};

type CFn = unsafe extern "C-unwind" fn(*mut ffi::lua_State) -> c_int;

const FUNCTIONS: [(&std::ffi::CStr, CFn); 4] =
    [(c"addressof", ffi_addressof), (c"toretval", ffi_toretval), (c"type", ffi_type), (c"eval", ffi_eval)];

/// Adds the extensions to the `ffi` table at stack index `module`: the functions, and
/// `ffi.NULL` and `ffi.nullptr`, one NULL `void *` cdata (the same object under both names).
///
/// # Safety
/// `l` valid in a function Lua called, with 3 free slots; `st` its live state; `module` an
/// absolute index.
pub unsafe fn register(l: *mut ffi::lua_State, st: *mut FfiState, module: c_int) {
    // SAFETY: valid-L with 3 free slots; each push is stored into the module table at once.
    unsafe {
        for (name, f) in FUNCTIONS {
            ffi::lua_pushlightuserdata(l, st as *mut _);
            ffi::lua_pushcclosure(l, f, 1);
            ffi::lua_setfield(l, module, name.as_ptr());
        }
        let desc = (*st).desc(QualType::plain((*st).void_ptr()));
        cdata::push_value(l, st, desc, std::mem::size_of::<usize>());
        ffi::lua_pushvalue(l, -1);
        ffi::lua_setfield(l, module, c"NULL".as_ptr());
        ffi::lua_setfield(l, module, c"nullptr".as_ptr());
    }
}

/// The cdata at argument 1 (not a ctype object), or `bad argument #1 (cdata expected, got
/// ...)`.
unsafe fn check_cdata(l: *mut ffi::lua_State, st: *mut FfiState) -> cdata::Cdata {
    // SAFETY: valid-L and live-state from the caller; raises with nothing owned here.
    unsafe {
        let c = cdata::to_cdata(l, st, 1);
        if c.is_null() || c.form() == Form::CType {
            let got = if c.is_null() { cdata::lua_typename_at(l, 1) } else { "ctype" };
            cdata::raise_arg(l, 1, format!("cdata expected, got {got}"));
        }
        c
    }
}

/// `ffi.addressof(cdata)`: a `T *` to the object a `T` cdata holds or refers to (a struct
/// field, an array element). Like any pointer it does not keep the object alive.
unsafe extern "C-unwind" fn ffi_addressof(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls it with the FFI state as upvalue 1 (live-state); the new
    // cdata's payload holds one pointer.
    unsafe {
        let st = state::from_upvalue(l);
        let c = check_cdata(l, st);
        let ty = cdata::type_of(c);
        let pty = (*st).types.pointer_to(ty);
        let desc = (*st).desc(QualType::plain(pty));
        let w = std::mem::size_of::<usize>();
        let p = cdata::push_value(l, st, desc, w);
        convert::write_int(cdata::bytes(p), w as u8, cdata::bytes(c) as usize as u64);
        1
    }
}

/// `ffi.toretval(cdata)`: the Lua value a C function returning the cdata's type would give:
/// numbers and booleans for scalars, `nil` for a NULL pointer, the cdata (a reference to it)
/// otherwise.
unsafe extern "C-unwind" fn ffi_toretval(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls it with the FFI state as upvalue 1 (live-state); the value
    // read is the cdata's own, anchored at index 1 while its reference lives.
    unsafe {
        let st = state::from_upvalue(l);
        let c = check_cdata(l, st);
        if let Err(e) = convert::c_to_lua(l, st, cdata::type_of(c), cdata::bytes(c), 1) {
            convert::raise_conv(l, st, e);
        }
        1
    }
}

/// `ffi.type(v)`: `"cdata"` for a cdata or ctype object (what `type` gives under LuaJIT),
/// else what `type(v)` gives.
unsafe extern "C-unwind" fn ffi_type(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls it with the FFI state as upvalue 1 (live-state); reads the
    // argument and pushes a static string.
    unsafe {
        let st = state::from_upvalue(l);
        if ffi::lua_gettop(l) < 1 {
            cdata::raise_arg(l, 1, "value expected".into());
        }
        let name = if cdata::to_cdata(l, st, 1).is_null() {
            ffi::lua_typename(l, ffi::lua_type(l, 1))
        } else {
            c"cdata".as_ptr()
        };
        ffi::lua_pushstring(l, name);
        1
    }
}

/// The value of the C integer constant expression `text` and its C type: `int`, else
/// `unsigned int`, else a 64-bit type, as for an enumerator; `uint64_t` for a value only it
/// holds (`0xffffffffffffffffULL`, which no enumerator takes). The cdef parser evaluates it
/// in copies of the state's types and names, so nothing is declared. `Err` is the parser's
/// message.
pub fn eval(st: &FfiState, text: &str) -> Result<(u64, u8, bool), String> {
    const NAME: &str = "__luaffi_eval";
    let declare = |decl: String| {
        let (mut types, mut scope) = (st.types.clone(), st.scope.clone());
        // The message without the position, which is in the wrapped text, not in `text`.
        cdef::cdef(&mut types, &mut scope, &decl, &[]).map_err(|e| {
            let full = e.to_string();
            full.split_once(": ").map_or(full.clone(), |(_, msg)| msg.to_string())
        })?;
        let c = scope.constant(NAME).ok_or_else(|| "constant expression expected".to_string())?;
        match shape(&types, c.ty.id) {
            Shape::Int { size, signed } => Ok((c.value as u64, size, signed)),
            _ => Err("constant expression expected".to_string()),
        }
    };
    declare(format!("enum {{ {NAME} = ({text}) }};"))
        .or_else(|e| declare(format!("static const uint64_t {NAME} = ({text});")).map_err(|_| e))
}

/// A value of a floating constant expression, with its C type.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Num {
    /// An integer (its value; integer operands stay integers, as in C: `7 / 2` is 3).
    Int(i128),
    /// A `float`.
    Float(f32),
    /// A `double`.
    Double(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f64::from(f),
            Num::Double(d) => d,
        }
    }
}

/// Reads and evaluates a floating constant expression (cffi-lua's `ffi.eval` of `"1.5"`,
/// `"1.5f * 2"`): numbers, the names of integer constants, `+ - * /`, unary `+ -` and
/// parentheses, with C's arithmetic conversions (an integer and a `float` give a `float`, a
/// `double` wins over both, two integers stay an integer).
struct Floating<'a> {
    text: &'a [u8],
    at: usize,
    constant: &'a dyn Fn(&str) -> Option<i64>,
}

impl Floating<'_> {
    fn skip_space(&mut self) {
        while self.text.get(self.at).is_some_and(|c| c.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.text.get(self.at).copied()
    }

    /// The token at the current position, for messages.
    fn near(&mut self) -> String {
        self.skip_space();
        let rest = &self.text[self.at..];
        if rest.is_empty() {
            return "near '<eof>'".into();
        }
        let end = rest.iter().position(|c| c.is_ascii_whitespace()).unwrap_or(rest.len()).clamp(1, 20);
        format!("near '{}'", String::from_utf8_lossy(&rest[..end]))
    }

    fn expr(&mut self, depth: u32) -> Result<Num, String> {
        if depth > 200 {
            return Err("chunk has too many syntax levels".into());
        }
        let mut v = self.term(depth)?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.at += 1;
            let r = self.term(depth)?;
            v = arith(op, v, r)?;
        }
        Ok(v)
    }

    fn term(&mut self, depth: u32) -> Result<Num, String> {
        let mut v = self.unary(depth)?;
        while let Some(op @ (b'*' | b'/')) = self.peek() {
            self.at += 1;
            let r = self.unary(depth)?;
            v = arith(op, v, r)?;
        }
        Ok(v)
    }

    fn unary(&mut self, depth: u32) -> Result<Num, String> {
        match self.peek() {
            Some(b'-') => {
                self.at += 1;
                arith(b'-', Num::Int(0), self.unary(depth + 1)?)
            }
            Some(b'+') => {
                self.at += 1;
                self.unary(depth + 1)
            }
            Some(b'(') => {
                self.at += 1;
                let v = self.expr(depth + 1)?;
                if self.peek() != Some(b')') {
                    return Err(format!("')' expected {}", self.near()));
                }
                self.at += 1;
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => self.number(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.at;
                while self.text.get(self.at).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
                    self.at += 1;
                }
                let name = String::from_utf8_lossy(&self.text[start..self.at]).into_owned();
                match (self.constant)(&name) {
                    Some(v) => Ok(Num::Int(i128::from(v))),
                    None => {
                        Err(format!("undeclared or non-integer constant '{name}' in a floating constant expression"))
                    }
                }
            }
            _ => Err(format!("unexpected symbol {}", self.near())),
        }
    }

    /// A decimal floating or integer literal with its suffix.
    fn number(&mut self) -> Result<Num, String> {
        let start = self.at;
        let mut prev = 0u8;
        while let Some(&c) = self.text.get(self.at) {
            let sign_of_exponent = (c == b'+' || c == b'-') && (prev == b'e' || prev == b'E');
            if !(c.is_ascii_alphanumeric() || c == b'.' || sign_of_exponent) {
                break;
            }
            prev = c;
            self.at += 1;
        }
        let lexeme = String::from_utf8_lossy(&self.text[start..self.at]).into_owned();
        let malformed = || format!("malformed number near '{lexeme}'");
        let lower = lexeme.to_ascii_lowercase();
        let is_hex = lower.starts_with("0x");
        let floating = !is_hex && (lower.contains('.') || lower.contains('e'));
        if !floating {
            let digits = lower.trim_end_matches(['u', 'l']);
            let v = if let Some(hex) = digits.strip_prefix("0x") {
                u64::from_str_radix(hex, 16)
            } else if digits.len() > 1 && digits.starts_with('0') {
                u64::from_str_radix(&digits[1..], 8)
            } else {
                digits.parse::<u64>()
            };
            return v.map(|v| Num::Int(i128::from(v))).map_err(|_| malformed());
        }
        if lower.ends_with('l') {
            return Err(format!("'{lexeme}' is a long double constant: the model has no long double"));
        }
        let (digits, single) = match lower.strip_suffix('f') {
            Some(d) => (d, true),
            None => (lower.as_str(), false),
        };
        let v: f64 = digits.parse().map_err(|_| malformed())?;
        Ok(if single { Num::Float(v as f32) } else { Num::Double(v) })
    }
}

/// `a op b` with C's usual arithmetic conversions.
fn arith(op: u8, a: Num, b: Num) -> Result<Num, String> {
    Ok(match (a, b) {
        (Num::Int(x), Num::Int(y)) => Num::Int(match op {
            b'+' => x + y,
            b'-' => x - y,
            b'*' => x.checked_mul(y).ok_or("integer overflow in a constant expression")?,
            _ if y == 0 => return Err("division by zero in a constant expression".into()),
            _ => x / y,
        }),
        (Num::Double(_), _) | (_, Num::Double(_)) => {
            let (x, y) = (a.as_f64(), b.as_f64());
            Num::Double(match op {
                b'+' => x + y,
                b'-' => x - y,
                b'*' => x * y,
                _ => x / y,
            })
        }
        _ => {
            let (x, y) = (a.as_f64() as f32, b.as_f64() as f32);
            Num::Float(match op {
                b'+' => x + y,
                b'-' => x - y,
                b'*' => x * y,
                _ => x / y,
            })
        }
    })
}

/// Does `text` hold a decimal floating literal (`1.5`, `.5`, `1e3`, `2.f`)? Only then is it a
/// floating constant expression; everything else goes to the integer evaluator.
fn has_floating_literal(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            // A name: skip it whole (`e1` is not an exponent).
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            let lit = text[start..i].to_ascii_lowercase();
            if !lit.starts_with("0x") && (lit.contains('.') || lit.contains('e')) {
                return true;
            }
            continue;
        }
        i += 1;
    }
    false
}

/// The value of the floating constant expression `text`: `Ok((value, true))` for a `float`,
/// `Ok((value, false))` for a `double`; `None` when `text` has no floating literal.
pub fn eval_floating(constant: &dyn Fn(&str) -> Option<i64>, text: &str) -> Option<Result<(f64, bool), String>> {
    if !has_floating_literal(text) {
        return None;
    }
    let mut p = Floating { text: text.as_bytes(), at: 0, constant };
    let r = p.expr(0).and_then(|v| {
        if p.peek().is_some() {
            return Err(format!("unexpected symbol {}", p.near()));
        }
        match v {
            Num::Float(f) => Ok((f64::from(f), true)),
            Num::Double(d) => Ok((d, false)),
            Num::Int(_) => Err("constant expression expected".into()),
        }
    });
    Some(r)
}

/// `ffi.eval(text)`: the C constant expression `text` as a cdata of its type: an integer
/// one's (an `int` cdata for `"1 << 4"`, a `uint64_t` one for `"0xffffffffffffffffULL"`, for
/// 64-bit constants a Lua number cannot hold), or a `double` or `float` for a floating one
/// (`"1.5"`, `"1.5f * 2"`, as cffi-lua evaluates them).
unsafe extern "C-unwind" fn ffi_eval(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: cfunction: Lua calls it with the FFI state as upvalue 1 (live-state); the text and
    // the result are dropped or moved into the raising function before anything raises.
    unsafe {
        let st = state::from_upvalue(l);
        let (p, len) = LuaStack::new(l).check_bytes(1).or_raise(l);
        let floating = {
            let text = String::from_utf8_lossy(std::slice::from_raw_parts(p, len));
            let constant = |name: &str| (*st).scope.constant(name).map(|c| c.value);
            eval_floating(&constant, &text)
        };
        match floating {
            Some(Ok((v, single))) => {
                let (kind, size) = if single { (FloatKind::Float, 4) } else { (FloatKind::Double, 8) };
                let desc = (*st).desc(QualType::plain((*st).types.float(kind)));
                let c = cdata::push_value(l, st, desc, size);
                convert::write_float(cdata::bytes(c), size as u8, v);
                return 1;
            }
            Some(Err(msg)) => cdata::raise(l, msg),
            None => {}
        }
        let result = {
            let text = String::from_utf8_lossy(std::slice::from_raw_parts(p, len));
            eval(&*st, &text)
        };
        let (value, size, signed) = match result {
            Ok(v) => v,
            Err(msg) => cdata::raise(l, msg),
        };
        let id = (*st).types.int_of_size(size as u32, signed).unwrap_or(abi_model::TypeId(0));
        let desc = (*st).desc(QualType::plain(id));
        let c = cdata::push_value(l, st, desc, size as usize);
        convert::write_int(cdata::bytes(c), size, value);
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(text: &str) -> Option<Result<(f64, bool), String>> {
        let constant = |name: &str| (name == "K").then_some(3);
        eval_floating(&constant, text)
    }

    #[test]
    fn floating_constant_expressions_follow_c_arithmetic() {
        assert_eq!(ev("1.5"), Some(Ok((1.5, false))));
        assert_eq!(ev(".5"), Some(Ok((0.5, false))));
        assert_eq!(ev("1e3"), Some(Ok((1000.0, false))));
        assert_eq!(ev("2.5e-1"), Some(Ok((0.25, false))));
        assert_eq!(ev("1.5f * 2"), Some(Ok((3.0, true))));
        assert_eq!(ev("1.5f * 2.0"), Some(Ok((3.0, false))), "a double wins over a float");
        assert_eq!(ev("7 / 2 + 0.5"), Some(Ok((3.5, false))), "two integers divide as integers");
        assert_eq!(ev("-(K * 0.5)"), Some(Ok((-1.5, false))), "an integer constant's name");
        assert_eq!(ev("0.1f"), Some(Ok((f64::from(0.1f32), true))), "a float is rounded to float");
        assert_eq!(ev("1.0 / 0"), Some(Ok((f64::INFINITY, false))));
    }

    #[test]
    fn integer_expressions_are_left_to_the_integer_evaluator() {
        for text in ["1 + 2", "0x1e", "0xe1", "K * 2", "sizeof(int)", "e1", "1ULL << 40"] {
            assert_eq!(ev(text), None, "{text}");
        }
    }

    #[test]
    fn bad_floating_expressions_say_what_is_wrong() {
        let err = |t: &str| ev(t).expect("floating").expect_err("an error");
        assert_eq!(err("1.5 +"), "unexpected symbol near '<eof>'");
        assert_eq!(err("1.5 << 2"), "unexpected symbol near '<<'");
        assert_eq!(err("(1.5"), "')' expected near '<eof>'");
        assert_eq!(err("1.5L"), "'1.5L' is a long double constant: the model has no long double");
        assert_eq!(err("1.5.5"), "malformed number near '1.5.5'");
        assert_eq!(err("X * 1.5"), "undeclared or non-integer constant 'X' in a floating constant expression");
        assert_eq!(err("1 / 0 + 0.5"), "division by zero in a constant expression");
    }
}
