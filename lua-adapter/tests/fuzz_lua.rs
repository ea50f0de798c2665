//! The Lua→C conversion fuzzer (issue 14 §4): random Lua programs feed hostile values — nil,
//! booleans, NaN, ±inf, huge and negative numbers, integers near 2^31 and 2^63, wrong and NULL
//! cdata, type strings and garbage, nested tables, functions, threads, userdata — to every
//! `ffi` function, every cdata metamethod, C functions of every argument kind and callbacks
//! (called from Lua and from C, returning hostile values). Every statement is `pcall`ed; a case
//! passes when the process neither crashes nor aborts and every error is a Lua string without a
//! Rust panic in it.
//!
//! What the programs leave out is what `docs/ffi.md` documents as unsafe, as LuaJIT does:
//! dereferencing NULL or bogus pointers (no numeric index outside an object, no indexing of
//! pointers that may dangle), `ffi.copy`/`ffi.fill` lengths beyond the object, C functions
//! writing through a pointer and a length, calling a NULL function pointer. Every program is
//! plain Lua that also runs under `luaffi` and LuaJIT (`LUAFFI_CALLTEST` set to the test
//! library), so a failure is replayed outside the test.
//!
//! Runs in process, one fresh Lua state per case, a fixed master seed and case count in the
//! test command. `FUZZ_LUA_CASES` (default 4000), `FUZZ_LUA_SECONDS` (instead: run until the
//! time is up), `FUZZ_LUA_SEED` set the run, `FUZZ_LUA_CASE_SEED` replays one case, and
//! `FUZZ_LUA_WRITE=path` writes a case's program without running it, `FUZZ_LUA_PROGRAM=path`
//! runs a program file (a shrunk case) in process. The case being run is
//! always in `<target>/tmp/fuzz-lua/current-case.lua` (or `FUZZ_LUA_CASE_FILE`); on a crash a signal handler prints its
//! seed and that path, and `cargo xtask fuzz --target lua --minimize <file>` shrinks it to the
//! statements that still crash.

mod common;
#[path = "../../abi-model/tests/common/fuzzing.rs"]
mod fuzzing;

use fuzzing::{env_u64, run_cases, write_summary, Rng};
use lua_adapter::surface::module;
use mlua::{Lua, MultiValue, Table};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The program's fixed beginning: declarations, the value pools and the checking function.
/// `B` holds objects that stay alive for the whole program and may be indexed (each with the
/// number of elements a numeric index may reach, in `BASE`); `N` holds NULL pointers (passed,
/// never dereferenced); `R` holds results of earlier statements (passed, never indexed).
const PRELUDE: &str = r#"local ffi = require "ffi"
ffi.cdef [[
int32_t ct_i32(int32_t x); uint32_t ct_u32(uint32_t x); int64_t ct_i64(int64_t x); uint64_t ct_u64(uint64_t x);
int64_t ct_narrow(int8_t a, uint8_t b, int16_t c, uint16_t d);
bool ct_not(bool b); float ct_fscale(float a, float b);
double ct_mix(double a, int b, double c, int64_t d);
size_t ct_strlen(const char *s); const char *ct_strid(const char *s); int ct_isnull(const void *p); void ct_nothing(void);
struct ct_pt { int32_t x, y; }; struct ct_mixed { double d; int32_t i; }; struct ct_ff { float a, b, c; };
struct ct_big { double a, b; int64_t c; }; union ct_u { int32_t i; float f; };
struct ct_pt ct_pt_make(int x, int y); int ct_pt_sum(struct ct_pt p); double ct_mixed_sum(struct ct_mixed m);
struct ct_ff ct_ff_rot(struct ct_ff f); double ct_big_sum(struct ct_big g); float ct_u_float(union ct_u u);
int64_t ct_pt_late(int a, int b, int c, int d, int e, int f, struct ct_pt p);
complex double ct_cmul(complex double a, complex double b); complex float ct_cfconj(complex float a);
double ct_vsum(int n, ...); int ct_set_errno(int e); int ct_get_errno(void);
extern int ct_counter; extern int ct_table[4]; extern const char *ct_name;
int ct_call_binop(int (*f)(int, int), int a, int b); double ct_call_dd(double (*f)(double, double), double a, double b);
int64_t ct_call_i64(int64_t (*f)(int64_t), int64_t a); uint8_t ct_call_u8(uint8_t (*f)(int8_t, uint16_t), int8_t a, uint16_t b);
bool ct_call_bool(bool (*f)(bool), bool b); const char *ct_call_str(const char *(*f)(const char *), const char *s);
void *ct_call_ptr(void *(*f)(void *), void *p); void ct_call_void(void (*f)(int), int a);
int ct_call_pt(int (*f)(struct ct_pt), int x, int y); struct ct_pt ct_call_ret_pt(struct ct_pt (*f)(int, int), int x, int y);
int snprintf(char *buf, size_t n, const char *fmt, ...); int abs(int x);
struct fz_p { int a; double d; char s[8]; int8_t *p; unsigned bf : 3; int64_t q; struct ct_pt pt; };
union fz_u { int32_t i; float f; uint8_t b[4]; };
struct fz_v { int n; double d[?]; };
struct fz_f { int n; char s[]; };
enum fz_e { FZ_A = 1, FZ_B = -2 };
typedef int (*fz_binop)(int, int);
]]
local CT = ffi.load(FUZZ_CALLTEST or os.getenv("LUAFFI_CALLTEST"))
local bad = {}
local function chk(n, ok, err)
  if not ok then
    if type(err) ~= "string" then
      bad[#bad + 1] = n .. ": the error is a " .. type(err) .. ": " .. tostring(err)
    elseif err:find("panick") or err:find("RUST_BACKTRACE") then
      bad[#bad + 1] = n .. ": " .. err
    end
  end
end
local function co(f, ...) return coroutine.resume(coroutine.create(f), ...) end
cbret = 0
local function cbf(...) return cbret end
local function raise(v) error(tostring(v), 0) end
local OP = {
  add = function(a, b) return a + b end, sub = function(a, b) return a - b end,
  mul = function(a, b) return a * b end, div = function(a, b) return a / b end,
  mod = function(a, b) return a % b end, pow = function(a, b) return a ^ b end,
  eq = function(a, b) return a == b end, lt = function(a, b) return a < b end,
  le = function(a, b) return a <= b end, concat = function(a, b) return a .. b end,
  unm = function(a) return -a end, len = function(a) return #a end,
  tostring = function(a) return tostring(a) end, tonumber = function(a, b) return tonumber(a, b) end,
  index = function(a, k) return a[k] end, newindex = function(a, k, v) a[k] = v end,
  call = function(f, ...) return f(...) end, set = function(c, f) return c:set(f) end,
  free = function(c) return c:free() end, pairs = function(a) for _ in pairs(a) do end end,
  ipairs = function(a) for _ in ipairs(a) do end end,
}
local B = {}
-- (LuaJIT makes no callbacks with records or complex numbers by value: B[25], B[37] and
-- B[38] are its error messages there.)
B[1] = ffi.new("int", 7)
B[2] = ffi.new("int[4]", 1, 2, 3, 4)
B[3] = ffi.new("struct fz_p")
B[4] = ffi.new("union fz_u")
B[5] = ffi.new("struct fz_v", 3)
B[6] = ffi.new("struct fz_f")
B[7] = ffi.new("int64_t", -1)
B[8] = ffi.new("uint64_t", 2^63)
B[9] = ffi.new("double complex", 1, 2)
B[10] = ffi.new("bool", true)
B[11] = ffi.new("enum fz_e", 1)
B[12] = ffi.new("char[8]", "abc")
B[13] = ffi.new("float[2][3]")
B[14] = ffi.typeof("int")
B[15] = ffi.typeof("struct fz_p")
B[16] = ffi.typeof("int[?]")
B[17] = ffi.new("const int", 3)
B[18] = ffi.new("uint8_t[?]", 5)
B[19] = ffi.cast("int *", B[2])
B[20] = ffi.cast("struct fz_p *", B[3])
B[21] = ffi.new("struct ct_pt", 1, 2)
B[22] = ffi.new("struct ct_big")
B[23] = ffi.cast("int (*)(int, int)", cbf)
B[24] = ffi.new("fz_binop", B[23])
B[25] = select(2, pcall(ffi.cast, "double (*)(double, int64_t, bool, const char *, struct ct_pt, union fz_u, void *, float complex)", cbf))
B[26] = ffi.new("struct fz_p[2]")
B[27] = CT.ct_table
B[28] = ffi.new("const char *[2]")
B[29] = ffi.new("int8_t[0]")
B[30] = ffi.cast("double (*)(double, double)", cbf)
B[31] = ffi.cast("int64_t (*)(int64_t)", cbf)
B[32] = ffi.cast("uint8_t (*)(int8_t, uint16_t)", cbf)
B[33] = ffi.cast("bool (*)(bool)", cbf)
B[34] = ffi.cast("const char *(*)(const char *)", cbf)
B[35] = ffi.cast("void *(*)(void *)", cbf)
B[36] = ffi.cast("void (*)(int)", cbf)
B[37] = select(2, pcall(ffi.cast, "int (*)(struct ct_pt)", cbf))
B[38] = select(2, pcall(ffi.cast, "struct ct_pt (*)(int, int)", cbf))
B[39] = ffi.new("struct ct_mixed", 1.5, 2)
B[40] = ffi.new("union ct_u")
B[41] = ffi.new("float complex", 0/0, 1)
local N = { ffi.new("void *"), ffi.new("int *"), ffi.cast("const char *", 0), ffi.new("fz_binop"), ffi.new("struct fz_p *"), ffi.new("int (*)[4]") }
local R = {}
-- statements
"#;

/// The pools `B` holds: (index, how many elements a numeric index may reach, what it is).
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Value,
    /// A VLS or flexible-member record (`vls-member-write`).
    Vls,
    /// The ctype of a VLA (constructed only with counts from [`COUNTS`]).
    VlaType,
    /// A callback (`int (*)(int, int)` etc.), callable from Lua; never freed.
    Callback,
}

const BASE: &[(usize, usize, Kind)] = &[
    (1, 0, Kind::Value),
    (2, 4, Kind::Value),
    (3, 0, Kind::Value),
    (4, 0, Kind::Value),
    (5, 0, Kind::Vls),
    (6, 0, Kind::Vls),
    (7, 0, Kind::Value),
    (8, 0, Kind::Value),
    (9, 2, Kind::Value),
    (10, 0, Kind::Value),
    (11, 0, Kind::Value),
    (12, 8, Kind::Value),
    (13, 2, Kind::Value),
    (14, 0, Kind::Value),
    (15, 0, Kind::Value),
    (16, 0, Kind::VlaType),
    (17, 0, Kind::Value),
    (18, 5, Kind::Value),
    (19, 4, Kind::Value),
    (20, 1, Kind::Value),
    (21, 0, Kind::Value),
    (22, 0, Kind::Value),
    (23, 0, Kind::Callback),
    (24, 0, Kind::Callback),
    (25, 0, Kind::Callback),
    (26, 2, Kind::Value),
    (27, 4, Kind::Value),
    (28, 2, Kind::Value),
    (29, 0, Kind::Value),
    (30, 0, Kind::Callback),
    (31, 0, Kind::Callback),
    (32, 0, Kind::Callback),
    (33, 0, Kind::Callback),
    (34, 0, Kind::Callback),
    (35, 0, Kind::Callback),
    (36, 0, Kind::Callback),
    (37, 0, Kind::Callback),
    (38, 0, Kind::Callback),
    (39, 0, Kind::Value),
    (40, 0, Kind::Value),
    (41, 2, Kind::Value),
];
const NULLS: usize = 6;
const RESULTS: usize = 8;

/// Hostile plain Lua values.
const PLAIN: &[&str] = &[
    "nil",
    "true",
    "false",
    "0",
    "-1",
    "1",
    "7",
    "0/0",
    "-(0/0)",
    "math.huge",
    "-math.huge",
    "2^31",
    "2^31-1",
    "-2^31",
    "-2^31-1",
    "2^32",
    "2^32-1",
    "2^53",
    "2^53+1",
    "2^63",
    "-2^63",
    "2^64",
    "1e308",
    "-1e308",
    "-0.0",
    "0.5",
    "-1.5",
    "4.9e-324",
    "(math.maxinteger or 2^63)",
    "(math.mininteger or -2^63)",
    "''",
    "'int'",
    "'int[?]'",
    "'struct fz_p'",
    "'struct fz_p *'",
    "'int (*)(int)'",
    "'void'",
    "'garbage )('",
    "'\\0'",
    "'a\\0b'",
    "string.rep('x', 300)",
    "'123'",
    "'0x10'",
    "'1e999'",
    "'-1'",
    "'nan'",
    "'a'",
    "'d'",
    "'s'",
    "'p'",
    "'bf'",
    "'n'",
    "'q'",
    "'pt'",
    "'i'",
    "'f'",
    "'b'",
    "'x'",
    "'re'",
    "'im'",
    "'free'",
    "'set'",
    "'__index'",
    "{}",
    "{1, 2, 3}",
    "{{1, {2, {3}}}}",
    "{a = 1, d = 2, s = 'x'}",
    "{n = -1}",
    "{0/0, math.huge}",
    "{x = 1, y = 2}",
    "{1, {}, 'x', true}",
    "{[0] = 5, [-1] = 6}",
    "setmetatable({}, {__index = function() error('idx') end})",
    "setmetatable({}, {__len = function() return 2^40 end})",
    "function() end",
    "cbf",
    "raise",
    "coroutine.yield",
    "coroutine.create(cbf)",
    "io.stdout",
    "ffi.C",
    "CT",
    "ffi",
    "B",
    "N",
];

/// Cdata values made on the spot (never pointers that could dangle).
const FRESH: &[&str] = &[
    "ffi.new('int64_t', -1)",
    "ffi.new('uint64_t', 2^63)",
    "ffi.new('int64_t', 2^62)",
    "ffi.new('uint64_t', -1)",
    "ffi.new('double complex', 1, -1)",
    "ffi.new('bool', true)",
    "ffi.new('int8_t', -128)",
    "ffi.new('float', 0/0)",
    "ffi.new('double', -math.huge)",
    "ffi.typeof('int')",
    "ffi.typeof('struct fz_p')",
    "ffi.typeof('int[?]')",
    "ffi.typeof('int (*)(int)')",
    "ffi.new('struct ct_pt')",
    "ffi.new('int[3]', 1)",
    "ffi.new('char[4]', 'xyz')",
    "ffi.new('union fz_u')",
    "ffi.new('enum fz_e', -2)",
];

/// Element counts for VLA/VLS types: hostile, but never a valid huge count (a 2 GiB
/// allocation is legal and only slow).
const COUNTS: &[&str] = &[
    "0",
    "1",
    "3",
    "-1",
    "0/0",
    "math.huge",
    "-math.huge",
    "2^31",
    "2^32",
    "2^53",
    "2^63",
    "-2^63",
    "-2^31",
    "0.5",
    "-0.5",
    "'3'",
    "'x'",
    "nil",
    "{}",
    "true",
    "ffi.new('int64_t', -1)",
    "ffi.new('uint64_t', 2^63)",
    "ffi.new('int64_t', 4)",
    "ffi.new('int64_t', 2^40)",
    "B[1]",
    "B[7]",
    "B[8]",
];

/// Type strings: value types (their `ffi.new` results may be kept in `R`).
const VALUE_TYPES: &[&str] = &[
    "int",
    "char",
    "bool",
    "_Bool",
    "int8_t",
    "uint8_t",
    "int16_t",
    "uint64_t",
    "int64_t",
    "float",
    "double",
    "double complex",
    "float complex",
    "complex",
    "struct fz_p",
    "union fz_u",
    "enum fz_e",
    "int[3]",
    "int[2][2]",
    "char[8]",
    "struct ct_pt",
    "struct ct_big",
    "struct ct_mixed",
    "union ct_u",
    "const int",
    "volatile double",
    "struct { int a; struct { char c; double d; } in; }",
    "struct fz_p[2]",
    "struct __attribute__((packed)) { char c; int i; }",
    "int[0]",
    "struct fz_f",
];

/// Types with `?`: constructed with a count from [`COUNTS`].
const VLA_TYPES: &[&str] = &["int[?]", "char[?]", "uint8_t[?]", "struct fz_v", "struct fz_p[?]", "double[?][2]"];

/// Types whose values are pointers or that are no object type at all.
const OTHER_TYPES: &[&str] = &[
    "int *",
    "const char *",
    "void *",
    "struct fz_p *",
    "int (*)(int)",
    "fz_binop",
    "void",
    "struct fz_undefined",
    "int (int)",
    "int[$]",
    "$ *",
    "struct $",
    "$",
    "int ()",
    "int[-1]",
    "int[0x7fffffff]",
    "char[0x80000000]",
    "struct fz_v[2]",
    "int[?][?]",
    "garbage )(",
    "",
    "int int",
    "unsigned __int128",
    "long double",
    "__attribute__((aligned(64))) int",
];

/// `ffi` functions called with free arguments (copy, fill and string have their own rules).
const FFI_FUNCS: &[&str] = &[
    "new",
    "cast",
    "typeof",
    "sizeof",
    "alignof",
    "offsetof",
    "istype",
    "gc",
    "metatype",
    "cdef",
    "load",
    "errno",
    "abi",
    "addressof",
    "type",
    "eval",
    "tonumber",
];

/// C functions that take no pointer they dereference (pointers, if any, may be NULL).
const C_FUNCS: &[&str] = &[
    "CT.ct_i32",
    "CT.ct_u32",
    "CT.ct_i64",
    "CT.ct_u64",
    "CT.ct_narrow",
    "CT.ct_not",
    "CT.ct_fscale",
    "CT.ct_mix",
    "CT.ct_isnull",
    "CT.ct_strid",
    "CT.ct_nothing",
    "CT.ct_pt_make",
    "CT.ct_pt_sum",
    "CT.ct_mixed_sum",
    "CT.ct_ff_rot",
    "CT.ct_big_sum",
    "CT.ct_u_float",
    "CT.ct_pt_late",
    "CT.ct_cmul",
    "CT.ct_cfconj",
    "CT.ct_set_errno",
    "CT.ct_get_errno",
    "ffi.C.abs",
];

/// C functions calling a function pointer, and the `B` callback of the matching type.
const C_CALLERS: &[(&str, usize)] = &[
    ("CT.ct_call_binop", 23),
    ("CT.ct_call_dd", 30),
    ("CT.ct_call_i64", 31),
    ("CT.ct_call_u8", 32),
    ("CT.ct_call_bool", 33),
    ("CT.ct_call_str", 34),
    ("CT.ct_call_ptr", 35),
    ("CT.ct_call_void", 36),
    ("CT.ct_call_pt", 37),
    ("CT.ct_call_ret_pt", 38),
];

const BINARY_OPS: &[&str] = &["add", "sub", "mul", "div", "mod", "pow", "eq", "lt", "le", "concat"];
const UNARY_OPS: &[&str] = &["unm", "len", "tostring", "tonumber", "pairs", "ipairs"];

/// One program's generator.
struct Gen {
    rng: Rng,
    out: String,
    n: usize,
    /// `B` callbacks freed so far: `cb:free()` makes the cdata NULL (as in LuaJIT), and C
    /// calling a NULL function pointer is a bogus pointer, not a conversion; copies made
    /// before the free (`B[24]`) keep the trap and are still passed.
    freed: Vec<usize>,
}

impl Gen {
    /// Any cdata that may be passed anywhere (no dangling pointers).
    fn cdata(&mut self) -> String {
        match self.rng.below(4) {
            0 => self.rng.pick(FRESH).to_string(),
            1 => format!("N[{}]", 1 + self.rng.below(NULLS)),
            2 => format!("R[{}]", 1 + self.rng.below(RESULTS)),
            _ => format!("B[{}]", self.rng.pick(BASE).0),
        }
    }

    /// Any hostile value.
    fn value(&mut self) -> String {
        match self.rng.below(10) {
            0..=4 => self.rng.pick(PLAIN).to_string(),
            5 => format!("'{}'", self.type_string()),
            _ => self.cdata(),
        }
    }

    fn type_string(&mut self) -> String {
        match self.rng.below(3) {
            0 => self.rng.pick(VALUE_TYPES).to_string(),
            1 => self.rng.pick(VLA_TYPES).to_string(),
            _ => self.rng.pick(OTHER_TYPES).to_string(),
        }
    }

    fn values(&mut self, max: usize) -> Vec<String> {
        (0..self.rng.below(max + 1)).map(|_| self.value()).collect()
    }

    /// A key a `B` object may be indexed with: a number inside it, or anything not a number.
    fn key(&mut self, elems: usize) -> String {
        if elems > 0 && self.rng.one_in(2) {
            return self.rng.below(elems).to_string();
        }
        loop {
            let k = self.value();
            if !is_numeric(&k) {
                return k;
            }
        }
    }

    fn stmt(&mut self, body: &str) {
        self.n += 1;
        let runner = if self.rng.one_in(8) { "co" } else { "pcall" };
        self.out.push_str(&format!("chk({}, {runner}({body}))\n", self.n));
    }

    /// One statement.
    fn statement(&mut self) {
        match self.rng.below(16) {
            0..=3 => self.ffi_call(),
            4 => self.ffi_string_copy_fill(),
            5 | 6 => {
                let op = *self.rng.pick(BINARY_OPS);
                let (a, b) =
                    if self.rng.one_in(2) { (self.cdata(), self.value()) } else { (self.value(), self.cdata()) };
                self.stmt(&format!("OP.{op}, {a}, {b}"));
            }
            7 => {
                let op = *self.rng.pick(UNARY_OPS);
                let a = self.cdata();
                let b =
                    if op == "tonumber" && self.rng.one_in(3) { format!(", {}", self.value()) } else { String::new() };
                self.stmt(&format!("OP.{op}, {a}{b}"));
            }
            8 | 9 => {
                let &(i, elems, _) = self.rng.pick(BASE);
                let k = self.key(elems);
                if self.rng.one_in(2) {
                    self.stmt(&format!("OP.index, B[{i}], {k}"));
                } else {
                    let v = self.value();
                    self.stmt(&format!("OP.newindex, B[{i}], {k}, {v}"));
                }
            }
            10 | 11 => self.c_call(),
            12 => {
                // Construct through a ctype object (`__call`), or call a callback from Lua.
                let &(i, _, kind) = self.rng.pick(BASE);
                let args = if kind == Kind::VlaType { vec![self.rng.pick(COUNTS).to_string()] } else { self.values(3) };
                if kind == Kind::Callback {
                    self.set_cbret();
                }
                self.stmt(&format!("OP.call, B[{i}]{}", lead_comma(&args)));
            }
            13 => {
                // Re-point a callback, or free something that is no callback.
                let callbacks: Vec<usize> = BASE.iter().filter(|b| b.2 == Kind::Callback).map(|b| b.0).collect();
                if self.rng.one_in(2) {
                    let cb = *self.rng.pick(&callbacks);
                    let f = *self.rng.pick(&["cbf", "raise", "coroutine.yield", "function() end", "1", "nil", "{}"]);
                    self.stmt(&format!("OP.set, B[{cb}], {f}"));
                } else {
                    // Freeing a `B` callback makes its later calls the open bug.
                    let target = match self.rng.below(4) {
                        0 => format!("N[{}]", 1 + self.rng.below(NULLS)),
                        1 => self.rng.pick(FRESH).to_string(),
                        2 => {
                            let cb = *self.rng.pick(&callbacks);
                            self.freed.push(cb);
                            format!("B[{cb}]")
                        }
                        _ => self.rng.pick(PLAIN).to_string(),
                    };
                    self.stmt(&format!("OP.free, {target}"));
                }
            }
            14 if self.rng.one_in(2) => {
                // A namespace (`ffi.C`, a library): its symbols, variables, missing names and
                // keys that are no names, read and assigned.
                let ns = *self.rng.pick(&["ffi.C", "CT"]);
                let k = if self.rng.one_in(2) {
                    self.rng
                        .pick(&[
                            "'ct_counter'",
                            "'ct_table'",
                            "'ct_name'",
                            "'abs'",
                            "'ct_i32'",
                            "'ct_missing_function'",
                            "'FZ_A'",
                            "'fz_binop'",
                        ])
                        .to_string()
                } else {
                    self.value()
                };
                if self.rng.one_in(2) {
                    self.stmt(&format!("OP.index, {ns}, {k}"));
                } else {
                    let v = self.value();
                    self.stmt(&format!("OP.newindex, {ns}, {k}, {v}"));
                }
            }
            14 => self.keep_result(),
            _ => {
                if self.rng.one_in(4) {
                    self.out.push_str("collectgarbage()\n");
                } else {
                    self.keep_result();
                }
            }
        }
    }

    fn set_cbret(&mut self) {
        let v = self.value();
        self.out.push_str(&format!("cbret = {v}\n"));
    }

    /// `R[k] = ` the result of `ffi.new` of a value type (or its error message).
    fn keep_result(&mut self) {
        let k = 1 + self.rng.below(RESULTS);
        let (ty, args) = if self.rng.one_in(3) {
            (self.rng.pick(VLA_TYPES).to_string(), vec![self.rng.pick(COUNTS).to_string()])
        } else {
            (self.rng.pick(VALUE_TYPES).to_string(), self.values(3))
        };
        let body = format!("ffi.new, '{ty}'{}", lead_comma(&args));
        self.n += 1;
        self.out.push_str(&format!("R[{k}] = select(2, pcall({body}))\n"));
    }

    /// `ffi.new`, `ffi.cast`, ... with a type (string, ctype or cdata) or anything first.
    fn ffi_call(&mut self) {
        let f = *self.rng.pick(FFI_FUNCS);
        let mut args = Vec::new();
        let vla = match self.rng.below(4) {
            0 => {
                let t = self.rng.pick(VLA_TYPES).to_string();
                args.push(format!("'{t}'"));
                true
            }
            1 | 2 => {
                let t = self.type_string();
                args.push(format!("'{t}'"));
                false
            }
            _ => {
                let v = self.value();
                let vla_ctype = v == "B[16]" || v == "ffi.typeof('int[?]')";
                args.push(v);
                vla_ctype
            }
        };
        if vla && matches!(f, "new" | "cast" | "typeof" | "metatype" | "istype" | "gc") {
            // A count that is not a valid huge one (see COUNTS), then anything.
            args.push(self.rng.pick(COUNTS).to_string());
            args.extend(self.values(2));
        } else {
            args.extend(self.values(3));
        }
        self.stmt(&format!("ffi.{f}, {}", args.join(", ")));
    }

    /// `ffi.string`, `ffi.copy` and `ffi.fill` within their objects' bounds (a length past
    /// the object is documented as unsafe), everything else hostile.
    fn ffi_string_copy_fill(&mut self) {
        // A length: a small number, or anything that is no number.
        let len = |g: &mut Gen, max: usize| -> String {
            if g.rng.one_in(2) {
                g.rng.below(max + 1).to_string()
            } else {
                loop {
                    let v = g.value();
                    if !is_numeric(&v) {
                        return v;
                    }
                }
            }
        };
        // Anything but a NULL pointer (a NULL source or destination of a non-zero length is
        // the documented unsafe part, as in LuaJIT), nor an object smaller than the length (at
        // most 1): B[29] has 0 bytes, and R may.
        let not_null = |g: &mut Gen| loop {
            let v = if g.rng.one_in(2) { g.cdata() } else { g.value() };
            if !v.starts_with("N[") && v != "N" && !v.starts_with("R[") && v != "B[29]" {
                return v;
            }
        };
        match self.rng.below(3) {
            0 => {
                // Without a length, a source whose bytes earlier statements may have set (B,
                // R) can have no NUL, and reading up to one is reading past it (as in LuaJIT):
                // then only values, NULL and fresh cdata. With a length of at most 3, anything
                // but the objects smaller than that (B[29] has 0 bytes, R may have 0).
                let p = loop {
                    let p = if self.rng.one_in(2) { self.cdata() } else { self.value() };
                    if !p.starts_with("R[") && p != "B[29]" {
                        break p;
                    }
                };
                let args = match self.rng.below(3) {
                    // A Lua string as the pointer: its bytes, so no length past them either.
                    _ if p.starts_with('\'') || p.starts_with("string.rep") => {
                        format!("{p}, {}", len(self, 0))
                    }
                    0 if p.starts_with("B[") => format!("{p}, {}", len(self, 3)),
                    0 => p,
                    // Hostile lengths: without a valid one past the objects' 3 bytes, which
                    // reads past the object (`B[1]` is 7; ASan found it).
                    1 => {
                        let n = loop {
                            let n = *self.rng.pick(COUNTS);
                            if !n.starts_with("B[") && n != "ffi.new('int64_t', 4)" {
                                break n;
                            }
                        };
                        format!("{p}, {n}")
                    }
                    _ => format!("{p}, {}", len(self, 3)),
                };
                self.stmt(&format!("ffi.string, {args}"));
            }
            1 => {
                // Into a 64-byte buffer: any source within 64 bytes; into anything else: no
                // byte (length 0, or a length that is no number).
                let args = if self.rng.one_in(3) {
                    let dst = self.value();
                    let n = if self.rng.one_in(2) { "0".to_string() } else { len(self, 0) };
                    format!("{dst}, {}, {n}", self.value())
                } else {
                    let dst = "ffi.new('uint8_t[64]')";
                    match self.rng.below(3) {
                        0 => format!("{dst}, string.rep('s', {})", self.rng.below(64)),
                        _ => format!("{dst}, {}, {}", not_null(self), len(self, 1)),
                    }
                };
                self.stmt(&format!("ffi.copy, {args}"));
            }
            _ => {
                let (dst, n) = if self.rng.one_in(3) {
                    let dst = self.value();
                    (dst, if self.rng.one_in(2) { "0".to_string() } else { len(self, 0) })
                } else {
                    ("ffi.new('uint8_t[64]')".to_string(), len(self, 64))
                };
                let c = if self.rng.one_in(2) { format!(", {}", self.value()) } else { String::new() };
                self.stmt(&format!("ffi.fill, {dst}, {n}{c}"));
            }
        }
    }

    /// A C function with hostile arguments, a variadic call, or C calling a callback.
    fn c_call(&mut self) {
        match self.rng.below(4) {
            0 | 1 => {
                let f = *self.rng.pick(C_FUNCS);
                let args = self.values(8);
                self.stmt(&format!("OP.call, {f}{}", lead_comma(&args)));
            }
            2 => {
                // Variadic: a format that reads no argument, or a count of doubles inside the
                // arguments given.
                let args = self.values(5);
                if self.rng.one_in(2) {
                    self.stmt(&format!("OP.call, CT.snprintf, nil, 0, ''{}", lead_comma(&args)));
                } else {
                    self.stmt(&format!("OP.call, CT.ct_vsum, {}{}", args.len(), lead_comma(&args)));
                }
            }
            _ => {
                let &(caller, cb) = self.rng.pick(C_CALLERS);
                let other = *self.rng.pick(&[23, 24, 25, 30, 38]);
                let f = match self.rng.below(4) {
                    0 => "cbf".to_string(),
                    1 if !self.freed.contains(&cb) => format!("B[{cb}]"),
                    2 if !self.freed.contains(&other) => format!("B[{other}]"),
                    _ => loop {
                        // Anything that is no function. Left out: NULL function pointers and
                        // nil or an unset `R` (C calls address 0), and userdata, which convert to the address of their
                        // block as in LuaJIT (C calls into it): bogus pointers, not conversions.
                        let v = self.value();
                        if !v.starts_with("N[")
                            && !v.starts_with("R[")
                            && !matches!(
                                v.as_str(),
                                "nil"
                                    | "cbf"
                                    | "raise"
                                    | "coroutine.yield"
                                    | "function() end"
                                    | "ffi.C"
                                    | "CT"
                                    | "io.stdout"
                            )
                        {
                            break v;
                        }
                    },
                };
                self.set_cbret();
                let args = self.values(3);
                self.stmt(&format!("OP.call, {caller}, {f}{}", lead_comma(&args)));
            }
        }
    }
}

fn lead_comma(args: &[String]) -> String {
    args.iter().map(|a| format!(", {a}")).collect()
}

/// Whether a value expression may be a number, or converts to one as a length (`true` is 1,
/// as in LuaJIT). Numbers index only inside objects.
fn is_numeric(v: &str) -> bool {
    v == "true"
        || v.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '(')
        || v.starts_with("math.")
        || v.starts_with("ffi.new('int64_t'")
        || v.starts_with("ffi.new('uint64_t'")
        || v.starts_with("ffi.new('int8_t'")
        || v.starts_with("ffi.new('bool'")
        || v.starts_with("ffi.new('float'")
        || v.starts_with("ffi.new('double'")
        || v.starts_with("ffi.new('enum")
        || v.starts_with("ffi.new('double complex'")
        || matches!(v, "B[1]" | "B[7]" | "B[8]" | "B[9]" | "B[10]" | "B[11]" | "B[17]" | "B[41]")
        || v.starts_with("R[")
        || v.starts_with("'") && v[1..].starts_with(|c: char| c.is_ascii_digit() || c == '-')
}

/// The program of one case.
fn program(case_seed: u64) -> String {
    let mut g = Gen { rng: Rng(case_seed), out: String::new(), n: 0, freed: Vec::new() };
    g.out.push_str(&format!("-- fuzz_lua case {case_seed}\n"));
    g.out.push_str(PRELUDE);
    let count = 10 + g.rng.below(50);
    for _ in 0..count {
        g.statement();
    }
    g.out.push_str("collectgarbage()\n-- end\nassert(#bad == 0, 'FUZZ-BAD\\n' .. table.concat(bad, '\\n'))\n");
    g.out
}

/// Runs one program in a fresh Lua state with the module preloaded.
fn run_program(src: &str, calltest: &Path) -> Result<(), String> {
    let lua = Lua::new();
    let open = lua.create_function(|lua, _: MultiValue| module::open(lua)).map_err(|e| e.to_string())?;
    lua.preload_module("ffi", open).map_err(|e| e.to_string())?;
    let globals: Table = lua.globals();
    globals.set("FUZZ_CALLTEST", calltest.to_string_lossy().into_owned()).map_err(|e| e.to_string())?;
    lua.load(src).set_name("=fuzz").exec().map_err(|e| e.to_string())
}

/// Where the case being run is written: `FUZZ_LUA_CASE_FILE`, else
/// `<target>/tmp/fuzz-lua/current-case.lua` (two runs at once need a file each).
fn case_file() -> PathBuf {
    static FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        std::env::var_os("FUZZ_LUA_CASE_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-lua").join("current-case.lua"))
    })
    .clone()
}

/// The case file's path, for the crash handler (set before it is installed).
static CASE_FILE_BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// The seed of the case being run, for the crash handler.
static CURRENT_SEED: AtomicU64 = AtomicU64::new(0);

/// On SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT: prints the case's seed and where its program
/// is, then lets the signal do what it does by default.
fn install_crash_report() {
    CASE_FILE_BYTES.get_or_init(|| case_file().to_string_lossy().into_owned().into_bytes());
    extern "C" fn report(sig: libc::c_int) {
        // No allocation here: the message is assembled in a stack buffer.
        let mut msg = [0u8; 512];
        let mut len = 0;
        let mut put = |bytes: &[u8]| {
            for &b in bytes {
                if len < msg.len() {
                    msg[len] = b;
                    len += 1;
                }
            }
        };
        let decimal = |mut v: u64, out: &mut [u8; 20]| -> usize {
            let mut n = 20;
            loop {
                n -= 1;
                out[n] = b'0' + (v % 10) as u8;
                v /= 10;
                if v == 0 {
                    return n;
                }
            }
        };
        let mut digits = [0u8; 20];
        put(b"\nfuzz_lua: CRASH (signal ");
        let from = decimal(sig as u64, &mut digits);
        put(&digits[from..]);
        put(b") in case FUZZ_LUA_CASE_SEED=");
        let from = decimal(CURRENT_SEED.load(Ordering::Relaxed), &mut digits);
        put(&digits[from..]);
        put(b"\nfuzz_lua: its program is in ");
        put(CASE_FILE_BYTES.get().map_or(&b"?"[..], |b| &b[..]));
        put(b"; shrink it with `cargo xtask fuzz --minimize <file>`\n");
        // SAFETY: write(2) is async-signal-safe; the buffer lives for the call.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), len);
        }
    }
    for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT] {
        // SAFETY: a zeroed sigaction is valid; the handler only calls async-signal-safe code,
        // and SA_RESETHAND restores the default action, so the fault recurs and ends the process
        // as it would have without the handler.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = report as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESETHAND | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The test library, built once per process. Built in a directory of this process and renamed
/// into place: the tests of this binary, and a long run in another process, load it at the
/// same time.
fn calltest() -> PathBuf {
    static LIB: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    LIB.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-lua");
        let scratch = dir.join(format!("build-{}", std::process::id()));
        let built = common::build_calltest(&scratch);
        let lib = dir.join("libcalltest.so");
        std::fs::rename(&built, &lib).unwrap_or_else(|e| panic!("{}: {e}", lib.display()));
        let _ = std::fs::remove_dir(&scratch);
        lib
    })
    .clone()
}

/// Runs one case; the error names the seed and holds the program.
fn run_case(case_seed: u64, lib: &Path) -> Result<(), String> {
    let src = program(case_seed);
    let file = case_file();
    std::fs::write(&file, &src).map_err(|e| format!("{}: {e}", file.display()))?;
    CURRENT_SEED.store(case_seed, Ordering::Relaxed);
    run_program(&src, lib).map_err(|e| {
        format!("FUZZ_LUA_CASE_SEED={case_seed}: {e}\n--- program (also in {}) ---\n{src}", file.display())
    })
}

#[test]
fn hostile_values_to_every_ffi_function_and_metamethod_raise_lua_errors() {
    if let Ok(path) = std::env::var("FUZZ_LUA_WRITE") {
        let seed = env_u64("FUZZ_LUA_CASE_SEED").expect("FUZZ_LUA_WRITE needs FUZZ_LUA_CASE_SEED");
        std::fs::write(&path, program(seed)).unwrap();
        return;
    }
    let lib = calltest();
    std::fs::create_dir_all(case_file().parent().unwrap()).unwrap();
    install_crash_report();
    if let Ok(path) = std::env::var("FUZZ_LUA_PROGRAM") {
        let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        run_program(&src, &lib).unwrap_or_else(|e| panic!("{path}: {e}"));
        return;
    }
    if let Some(seed) = env_u64("FUZZ_LUA_CASE_SEED") {
        run_case(seed, &lib).unwrap();
        return;
    }
    let master = env_u64("FUZZ_LUA_SEED").unwrap_or(0x0051_ab1e_f022_0014);
    let cases = env_u64("FUZZ_LUA_CASES").unwrap_or(4000);
    let (ran, failures) = run_cases(master, cases, env_u64("FUZZ_LUA_SECONDS"), 3, |seed| run_case(seed, &lib));
    let line = format!("fuzz_lua: {ran} cases from seed {master}, {} failing", failures.len());
    println!("{line}");
    write_summary(env!("CARGO_TARGET_TMPDIR"), "lua", &line);
    assert!(
        failures.is_empty(),
        "{} failing case(s) (replay one with FUZZ_LUA_CASE_SEED):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The committed corpus, `tests/lua/fuzz/*.lua`: programs kept from earlier runs (a shrunk
/// crash once its bug is fixed goes here), each run in process like a generated case.
#[test]
fn the_committed_corpus_passes() {
    let lib = calltest();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("lua").join("fuzz");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "lua"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    for file in &files {
        let src = std::fs::read_to_string(file).unwrap();
        run_program(&src, &lib).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}

#[test]
fn every_generated_program_runs_under_the_luaffi_command_too() {
    // The programs are plain Lua: the first case runs as a script of the `luaffi` command with
    // LUAFFI_CALLTEST, as a reported case is replayed.
    let lib = calltest();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-lua");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("standalone.lua");
    std::fs::write(&file, program(1)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_luaffi"))
        .arg(&file)
        .env("LUAFFI_CALLTEST", &lib)
        .env_remove("LUA_INIT")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
