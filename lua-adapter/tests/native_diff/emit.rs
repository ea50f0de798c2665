//! C and Lua source for the native differential test.
//!
//! Per signature `ndN`, C gets:
//! * `ndN_f`, the callee: records every argument it received, each in its own segment, and
//!   returns a literal;
//! * `ndN_caller(fp)`: calls `fp` with literal arguments, then records the result `fp`
//!   returned (variadic signatures have no caller: Lua functions can't be variadic callbacks);
//! * `ndN_ref()`: C calling C, `ndN_caller(ndN_f)` (or the call itself, if variadic), whose
//!   recording is the expected answer of both directions;
//! * `nd_rec_ndN_sJ(p)` per record: records its value member by member, so padding (and a
//!   union's bytes beyond its initialized member) is never compared.
//!
//! The Lua script calls `ndN_f` with the same literals (call direction) and passes `ndN_caller`
//! a Lua function, cast to the function pointer type, that records what it received through
//! the same C recorders (given a pointer to a copy) and returns the same literal (callback
//! direction). Both recordings must equal the reference byte for byte.

use crate::gen::{hex_float, Field, Scalar, Sig, Ty, Val};
use std::fmt::Write;

/// Declarations both C and the Lua script start from: the recording buffer's interface.
pub const COMMON_DECLS: &str = "\
void nd_reset(void);
void nd_arg(void);
void nd_rec_bytes(const void *p, size_t n);
const unsigned char *nd_buf(void);
size_t nd_len(void);
const size_t *nd_segs(void);
int nd_nseg(void);
typedef int (*nd_fn)(int, double);
";

/// The C file's head: includes, the common declarations and the recording buffer.
pub fn c_prelude() -> String {
    format!(
        "#include <complex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
{COMMON_DECLS}"
    )
}

/// The recording buffer, defined once in the library.
pub const C_BUFFER: &str = "
static unsigned char nd_buffer[1 << 20];
static size_t nd_length, nd_offsets[256];
static int nd_count;
void nd_reset(void) { nd_length = 0; nd_count = 0; }
void nd_arg(void) { if (nd_count == 256) abort(); nd_offsets[nd_count++] = nd_length; }
void nd_rec_bytes(const void *p, size_t n) {
    if (n > sizeof nd_buffer - nd_length) abort();
    memcpy(nd_buffer + nd_length, p, n);
    nd_length += n;
}
const unsigned char *nd_buf(void) { return nd_buffer; }
size_t nd_len(void) { return nd_length; }
const size_t *nd_segs(void) { return nd_offsets; }
int nd_nseg(void) { return nd_count; }
";

/// The signature's enum and record definitions and the prototypes of its functions, as C
/// declares them; `params` are the parameter types to declare (the signature's own, except
/// when the can-fail test declares the Lua side wrongly on purpose).
pub fn declarations(sig: &Sig, params: &[Ty]) -> String {
    let p = sig.prefix();
    let mut out = String::new();
    for (e, en) in sig.enums.iter().enumerate() {
        let items: Vec<String> =
            en.values.iter().enumerate().map(|(k, v)| format!("{} = {v}", sig.enumerator(e, k))).collect();
        writeln!(out, "enum {p}_e{e} {{ {} }};", items.join(", ")).unwrap();
    }
    for j in 0..sig.records.len() {
        out += &record_definition(sig, j);
        writeln!(out, "void nd_rec_{p}_s{j}(const void *p);").unwrap();
    }
    writeln!(out, "{};", prototype(sig, params)).unwrap();
    if sig.varargs.is_none() {
        writeln!(out, "void {p}_caller({});", fn_type(sig, params, "fp")).unwrap();
    }
    writeln!(out, "void {p}_ref(void);").unwrap();
    out
}

/// `R ndN_f(P0 a0, P1 a1)`.
fn prototype(sig: &Sig, params: &[Ty]) -> String {
    let mut list: Vec<String> = params.iter().enumerate().map(|(i, &t)| format!("{} a{i}", sig.spell(t))).collect();
    if sig.varargs.is_some() {
        list.push("...".into());
    }
    if list.is_empty() {
        list.push("void".into());
    }
    format!("{} {}_f({})", sig.spell(sig.ret), sig.prefix(), list.join(", "))
}

/// The function pointer type `R (*name)(P0, P1)` (`name` may be empty).
pub fn fn_type(sig: &Sig, params: &[Ty], name: &str) -> String {
    let list: Vec<String> = params.iter().map(|&t| sig.spell(t)).collect();
    let list = if list.is_empty() { "void".to_string() } else { list.join(", ") };
    format!("{} (*{name})({list})", sig.spell(sig.ret))
}

fn record_definition(sig: &Sig, j: usize) -> String {
    let r = &sig.records[j];
    let mut attrs = Vec::new();
    if r.packed {
        attrs.push("packed".to_string());
    }
    if let Some(n) = r.aligned {
        attrs.push(format!("aligned({n})"));
    }
    let (kw, name) = sig.record_tag(j).split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())).unwrap();
    let attrs = if attrs.is_empty() { String::new() } else { format!("__attribute__(({})) ", attrs.join(", ")) };
    let mut out = format!("{kw} {attrs}{name} {{");
    for (k, f) in r.fields.iter().enumerate() {
        let ty = sig.spell(f.ty);
        match f.bits {
            Some(0) => write!(out, " {ty} : 0;").unwrap(),
            Some(w) => write!(out, " {ty} f{k} : {w};").unwrap(),
            None => {
                let dims: String = f.dims.iter().map(|d| format!("[{d}]")).collect();
                let mut fattrs = Vec::new();
                if f.packed {
                    fattrs.push("packed".to_string());
                }
                if let Some(n) = f.aligned {
                    fattrs.push(format!("aligned({n})"));
                }
                let fattrs =
                    if fattrs.is_empty() { String::new() } else { format!(" __attribute__(({}))", fattrs.join(", ")) };
                write!(out, " {ty} f{k}{dims}{fattrs};").unwrap();
            }
        }
    }
    out += " };\n";
    out
}

/// The fields a record's value holds, with their names: a struct's named fields, a union's
/// first named one.
fn value_fields(sig: &Sig, j: usize) -> Vec<(String, &Field)> {
    let r = &sig.records[j];
    let named = r.fields.iter().enumerate().filter(|(_, f)| f.named()).map(|(k, f)| (format!("f{k}"), f));
    named.take(if r.union { 1 } else { usize::MAX }).collect()
}

/// The C definitions of the signature's recorders and functions.
pub fn c_definitions(sig: &Sig) -> String {
    let p = sig.prefix();
    let mut out = String::new();
    for j in 0..sig.records.len() {
        let tag = sig.record_tag(j);
        writeln!(out, "void nd_rec_{p}_s{j}(const void *p) {{\n    const char *b = p;\n    (void)b;").unwrap();
        for (name, f) in value_fields(sig, j) {
            let at = format!("b + offsetof({tag}, {name})");
            match (f.bits, f.ty) {
                (Some(_), ty) => writeln!(
                    out,
                    "    {{ {} v = (({tag} const *)p)->{name}; nd_rec_bytes(&v, sizeof v); }}",
                    sig.spell(ty)
                )
                .unwrap(),
                (None, Ty::Record(r)) => writeln!(
                    out,
                    "    for (size_t i = 0; i < {}; i++) nd_rec_{p}_s{r}({at} + i * sizeof({}));",
                    f.elements(),
                    sig.record_tag(r)
                )
                .unwrap(),
                (None, _) => writeln!(out, "    nd_rec_bytes({at}, sizeof((({tag} *)0)->{name}));").unwrap(),
            }
        }
        out += "}\n";
    }

    writeln!(out, "{} {{", prototype(sig, &sig.params)).unwrap();
    for (i, &t) in sig.params.iter().enumerate() {
        writeln!(out, "    nd_arg(); {}", c_record(sig, t, &format!("&a{i}"))).unwrap();
    }
    if let Some(varargs) = &sig.varargs {
        writeln!(out, "    va_list ap;\n    va_start(ap, a{});", sig.params.len() - 1).unwrap();
        for (t, _) in varargs {
            writeln!(out, "    {{ {} v = va_arg(ap, {0}); nd_arg(); nd_rec_bytes(&v, sizeof v); }}", va_type(sig, *t))
                .unwrap();
        }
        out += "    va_end(ap);\n";
    }
    if sig.ret != Ty::Void {
        writeln!(out, "    return {};", c_val(sig, sig.ret, &sig.ret_val, true)).unwrap();
    }
    out += "}\n";

    let mut args: Vec<String> = sig.params.iter().zip(&sig.args).map(|(&t, v)| c_val(sig, t, v, true)).collect();
    let call = match &sig.varargs {
        None => {
            writeln!(out, "void {p}_caller({}) {{", fn_type(sig, &sig.params, "fp")).unwrap();
            "fp".to_string()
        }
        Some(varargs) => {
            args.extend(varargs.iter().map(|(t, v)| c_val(sig, *t, v, true)));
            writeln!(out, "void {p}_ref(void) {{").unwrap();
            format!("{p}_f")
        }
    };
    out += "    nd_reset();\n";
    if sig.ret == Ty::Void {
        writeln!(out, "    {call}({});", args.join(", ")).unwrap();
    } else {
        writeln!(out, "    {} r = {call}({});", sig.spell(sig.ret), args.join(", ")).unwrap();
        writeln!(out, "    nd_arg(); {}", c_record(sig, sig.ret, "&r")).unwrap();
    }
    out += "}\n";
    if sig.varargs.is_none() {
        writeln!(out, "void {p}_ref(void) {{ {p}_caller({p}_f); }}").unwrap();
    }
    out
}

/// The statement recording the value of type `ty` at `addr`.
fn c_record(sig: &Sig, ty: Ty, addr: &str) -> String {
    match ty {
        Ty::Record(j) => format!("nd_rec_{}_s{j}({addr});", sig.prefix()),
        _ => format!("nd_rec_bytes({addr}, sizeof({}));", sig.spell(ty)),
    }
}

/// The type `va_arg` reads a variadic argument of type `ty` as (C's default promotions; an
/// enum's 4 bytes are read as `unsigned int`).
fn va_type(sig: &Sig, ty: Ty) -> String {
    match ty {
        Ty::Scalar(s) => s.promoted().c_name().into(),
        Ty::Enum(_) => "unsigned int".into(),
        _ => sig.spell(ty),
    }
}

/// A C expression of type `ty` with value `v`; `top` for a whole argument or result (a
/// record is then a compound literal, else a brace initializer).
fn c_val(sig: &Sig, ty: Ty, v: &Val, top: bool) -> String {
    match (ty, v) {
        (Ty::Scalar(Scalar::Float), Val::Float(x)) => format!("{}f", hex_float(*x)),
        (Ty::Scalar(Scalar::Double), Val::Float(x)) => hex_float(*x),
        (Ty::Scalar(s), Val::Int(n)) => format!("(({}){})", s.c_name(), c_int(*n)),
        (Ty::Enum(e), Val::Enumerator { k, .. }) => sig.enumerator(e, *k),
        (Ty::Enum(_), Val::Int(n)) => format!("(({}){n})", sig.spell(ty)),
        (Ty::Ptr(_), Val::Ptr { addr, .. }) => format!("(({}){addr:#x}ULL)", sig.spell(ty)),
        (Ty::Complex { double }, Val::Complex(re, im)) => {
            let (f, suffix) = if double { ("CMPLX", "") } else { ("CMPLXF", "f") };
            format!("{f}({}{suffix}, {}{suffix})", hex_float(*re), hex_float(*im))
        }
        (Ty::Record(j), Val::Record { fields, .. }) => {
            let inits: Vec<String> = value_fields(sig, j)
                .iter()
                .zip(fields)
                .map(|((name, f), v)| format!(".{name} = {}", c_member(sig, f.ty, &f.dims, v)))
                .collect();
            let braces = format!("{{ {} }}", inits.join(", "));
            if top {
                format!("(({}){braces})", sig.spell(ty))
            } else {
                braces
            }
        }
        _ => panic!("no C value {v:?} of {ty:?}"),
    }
}

/// A member's initializer (arrays as nested braces).
fn c_member(sig: &Sig, ty: Ty, dims: &[u32], v: &Val) -> String {
    match (dims.split_first(), v) {
        (Some((_, rest)), Val::Array(items)) => {
            let items: Vec<String> = items.iter().map(|v| c_member(sig, ty, rest, v)).collect();
            format!("{{ {} }}", items.join(", "))
        }
        _ => c_val(sig, ty, v, false),
    }
}

/// An integer literal of any value a scalar holds (`LL`/`ULL`, the most negative one as an
/// expression since `9223372036854775808LL` does not exist).
fn c_int(n: i128) -> String {
    match n {
        _ if n == i128::from(i64::MIN) => "(-9223372036854775807LL - 1)".into(),
        _ if n > i128::from(i64::MAX) => format!("{n}ULL"),
        _ => format!("{n}LL"),
    }
}

/// How the Lua side is written: what it should do wrong on purpose (the can-fail test), and
/// which spellings to avoid while the module refuses them.
#[derive(Default)]
pub struct LuaOptions {
    /// Pass enum arguments and callback results by name (`"nd1_e0_2"`) where the generator
    /// chose to; when false they are passed as numbers there (names stay in table initializers).
    pub enum_names_at_top_level: bool,
    /// Signatures whose expected recording gets its first byte flipped.
    pub flip_expected: Vec<usize>,
    /// Signatures whose parameters Lua declares with these types instead.
    pub lua_params: Vec<(usize, Vec<Ty>)>,
}

/// The Lua script's head: loads the library, declares the common part, and defines the
/// checker. The script prints `BEGIN <sig> <direction>` before each check and `BEGIN <sig>
/// setup` before a signature's declarations and C reference (so a crash names its case),
/// `MISMATCH <sig> <direction> <expected> <actual>` (segments in hex, separated by `,`) or
/// `ERROR <sig> <direction> <message>` for a failed one, and `DONE` at the end. It starts at
/// signature `ND_START` and skips the case `ND_SKIP` (where the previous run crashed).
const LUA_HEAD: &str = r#"local ffi = require "ffi"
local L = ffi.load(assert(os.getenv("ND_LIBRARY"), "ND_LIBRARY is not set"))
ffi.cdef[==[
COMMON_DECLS]==]

local function snapshot()
  local n = L.nd_nseg()
  return { data = ffi.string(L.nd_buf(), L.nd_len()), segs = ffi.string(L.nd_segs(), n * ffi.sizeof("size_t")), n = n }
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- The recording's segments (one per argument and the result), in hex, separated by ",".
local function show(snap)
  if #snap.data == 0 and snap.n == 0 then return "-" end
  local parts, offsets = {}, {}
  local segs = ffi.cast("const size_t *", snap.segs)
  for k = 0, snap.n - 1 do offsets[#offsets + 1] = tonumber(segs[k]) end
  if offsets[1] ~= 0 then table.insert(offsets, 1, 0) end
  for k = 1, #offsets do
    local from, to = offsets[k], offsets[k + 1] or #snap.data
    local seg = snap.data:sub(from + 1, to)
    parts[#parts + 1] = #seg == 0 and "." or hex(seg)
  end
  return table.concat(parts, ",")
end

local function expect(ref, flip)
  ref()
  local snap = snapshot()
  if flip then snap.data = string.char(snap.data:byte(1) ~ 1) .. snap.data:sub(2) end
  return snap
end

-- The case a crashed run ended in, "<sig> call": a new run skips it.
local SKIP = os.getenv("ND_SKIP")

local function check(i, dir, exp, run)
  if SKIP == i .. " " .. dir then return end
  io.write("BEGIN ", i, " ", dir, "\n")
  io.stdout:flush()
  local ok, err = pcall(run)
  if not ok then
    io.write("ERROR ", i, " ", dir, " ", (tostring(err):gsub("%s+", " ")), "\n")
    return
  end
  local got = snapshot()
  if got.data ~= exp.data or got.segs ~= exp.segs then
    io.write("MISMATCH ", i, " ", dir, " ", show(exp), " ", show(got), "\n")
  end
end

-- Records v, a value of ctype ct ("T[1]"), with recorder (a record's) or as plain bytes.
local function rec(ct, v, recorder)
  local t = ffi.new(ct)
  t[0] = v
  if recorder then recorder(t) else L.nd_rec_bytes(t, ffi.sizeof(t)) end
end

local S = {}
"#;

const LUA_TAIL: &str = r#"
for i = tonumber(os.getenv("ND_START")) or 0, #S do
  io.write("BEGIN ", i, " setup\n")
  io.stdout:flush()
  local ok, err = pcall(S[i])
  if not ok then io.write("ERROR ", i, " setup ", (tostring(err):gsub("%s+", " ")), "\n") end
end
io.write("DONE\n")
"#;

/// The whole Lua script for `sigs` (whose ids are their indices).
pub fn lua_script(sigs: &[Sig], options: &LuaOptions) -> String {
    let mut out = LUA_HEAD.replace("COMMON_DECLS", COMMON_DECLS);
    for (id, sig) in sigs.iter().enumerate() {
        assert_eq!(sig.id, id, "signature ids are their indices");
        let params = options.lua_params.iter().find(|(i, _)| *i == id).map_or(&sig.params[..], |(_, p)| &p[..]);
        out += &LuaWriter { sig, enum_names: options.enum_names_at_top_level }
            .signature(params, options.flip_expected.contains(&id));
    }
    out += LUA_TAIL;
    out
}

/// Writes one signature's Lua code.
struct LuaWriter<'a> {
    sig: &'a Sig,
    /// [`LuaOptions::enum_names_at_top_level`].
    enum_names: bool,
}

impl LuaWriter<'_> {
    fn signature(&self, params: &[Ty], flip: bool) -> String {
        let sig = self.sig;
        let (p, id) = (sig.prefix(), sig.id);
        let mut out = format!("S[{id}] = function()\nffi.cdef[==[\n{}]==]\n", declarations(sig, params));
        writeln!(out, "local exp = expect(L.{p}_ref, {flip})").unwrap();

        let mut args: Vec<String> = sig.args.iter().zip(&sig.params).map(|(v, &t)| self.val(t, v, true)).collect();
        if let Some(varargs) = &sig.varargs {
            args.extend(varargs.iter().map(|(t, v)| self.vararg(*t, v)));
        }
        writeln!(out, "check({id}, \"call\", exp, function()\n  L.nd_reset()").unwrap();
        if sig.ret == Ty::Void {
            writeln!(out, "  L.{p}_f({})", args.join(", ")).unwrap();
        } else {
            writeln!(out, "  local r = L.{p}_f({})", args.join(", ")).unwrap();
            writeln!(out, "  L.nd_arg(); {}", self.record(sig.ret, "r")).unwrap();
        }
        out += "end)\n";

        if sig.varargs.is_none() {
            let names: Vec<String> = (0..params.len()).map(|i| format!("a{i}")).collect();
            writeln!(out, "local cb = ffi.cast(\"{}\", function({})", fn_type(sig, params, ""), names.join(", "))
                .unwrap();
            for (i, &t) in params.iter().enumerate() {
                writeln!(out, "  L.nd_arg(); {}", self.record(t, &format!("a{i}"))).unwrap();
            }
            if sig.ret != Ty::Void {
                writeln!(out, "  return {}", self.val(sig.ret, &sig.ret_val, true)).unwrap();
            }
            out += "end)\n";
            writeln!(out, "check({id}, \"callback\", exp, function() L.{p}_caller(cb) end)\ncb:free()").unwrap();
        }
        out += "end\n";
        out
    }

    /// The Lua statement recording `var`, a value of `ty`.
    fn record(&self, ty: Ty, var: &str) -> String {
        let recorder = match ty {
            Ty::Record(j) => format!("L.nd_rec_{}_s{j}", self.sig.prefix()),
            _ => "nil".into(),
        };
        format!("rec(\"{}[1]\", {var}, {recorder})", self.sig.spell(ty))
    }

    /// A Lua expression for value `v` of `ty`; `top` for a whole argument or result.
    fn val(&self, ty: Ty, v: &Val, top: bool) -> String {
        let sig = self.sig;
        match (ty, v) {
            (Ty::Scalar(Scalar::Bool), Val::Int(n)) => (*n != 0).to_string(),
            (Ty::Scalar(_), Val::Int(n)) => lua_int(*n),
            (Ty::Scalar(_), Val::Float(x)) => hex_float(*x),
            (Ty::Enum(e), Val::Enumerator { k, by_name: true }) if self.enum_names || !top => {
                format!("\"{}\"", sig.enumerator(e, *k))
            }
            (Ty::Enum(e), Val::Enumerator { k, .. }) => sig.enums[e].values[*k].to_string(),
            (Ty::Enum(_), Val::Int(n)) => n.to_string(),
            (Ty::Ptr(_), Val::Ptr { nil: true, .. }) => "nil".into(),
            (Ty::Ptr(_), Val::Ptr { addr, .. }) => {
                format!("ffi.cast(\"{}\", {addr:#x})", sig.spell(ty))
            }
            (Ty::Complex { .. }, Val::Complex(re, im)) => {
                format!("ffi.new(\"{}\", {}, {})", sig.spell(ty), hex_float(*re), hex_float(*im))
            }
            (Ty::Record(j), Val::Record { fields, table }) => {
                let inits: Vec<String> = value_fields(sig, j)
                    .iter()
                    .zip(fields)
                    .map(|((name, f), v)| format!("{name} = {}", self.member(f.ty, &f.dims, v)))
                    .collect();
                let table_text = format!("{{ {} }}", inits.join(", "));
                if top && !table {
                    format!("ffi.new(\"{}\", {table_text})", sig.spell(ty))
                } else {
                    table_text
                }
            }
            _ => panic!("no Lua value {v:?} of {ty:?}"),
        }
    }

    /// A member's initializer (arrays as nested tables).
    fn member(&self, ty: Ty, dims: &[u32], v: &Val) -> String {
        match (dims.split_first(), v) {
            (Some((_, rest)), Val::Array(items)) => {
                let items: Vec<String> = items.iter().map(|v| self.member(ty, rest, v)).collect();
                format!("{{ {} }}", items.join(", "))
            }
            _ => self.val(ty, v, false),
        }
    }

    /// A variadic argument as Lua passes it: a Lua number is a double there, so every other
    /// type is a cdata of that type (the module promotes it as C would), a bool is a boolean.
    fn vararg(&self, ty: Ty, v: &Val) -> String {
        match ty {
            Ty::Scalar(Scalar::Double | Scalar::Bool) | Ty::Ptr(_) | Ty::Complex { .. } => self.val(ty, v, true),
            Ty::Scalar(_) | Ty::Enum(_) => format!("ffi.new(\"{}\", {})", self.sig.spell(ty), self.val(ty, v, false)),
            Ty::Void | Ty::Record(_) => panic!("no variadic {ty:?}"),
        }
    }
}

/// A Lua integer expression converting exactly to any C integer type holding `n` (a Lua 5.4
/// integer up to `math.maxinteger`; above it a `uint64_t` cdata, since a negative Lua number
/// converts to `uint64_t` as LuaJIT converts it, not modulo 2^64).
fn lua_int(n: i128) -> String {
    match n {
        _ if n == i128::from(i64::MIN) => "math.mininteger".into(),
        _ if n > i128::from(i64::MAX) => match n - (1i128 << 64) {
            w if w == i128::from(i64::MIN) => "ffi.cast(\"uint64_t\", ffi.new(\"int64_t\", math.mininteger))".into(),
            w => format!("ffi.cast(\"uint64_t\", ffi.new(\"int64_t\", {w}))"),
        },
        _ => n.to_string(),
    }
}
