-- Calls from Lua to C: every argument and return kind, variadic functions, errno, namespaces
-- and argument errors. The test library (tests/c/calltest.c) is built by tests/lua_suite.rs,
-- which passes its path in LUAFFI_CALLTEST.
local ffi = require "ffi"
local T = require "testlib"

local path = assert(os.getenv("LUAFFI_CALLTEST"), "LUAFFI_CALLTEST is not set")
ffi.cdef [[
int8_t ct_i8(int8_t x); uint8_t ct_u8(uint8_t x); int16_t ct_i16(int16_t x);
uint16_t ct_u16(uint16_t x); int32_t ct_i32(int32_t x); uint32_t ct_u32(uint32_t x);
int64_t ct_i64(int64_t x); uint64_t ct_u64(uint64_t x);
int32_t ct_add(int32_t a, int32_t b);
int64_t ct_narrow(int8_t a, uint8_t b, int16_t c, uint16_t d);
int64_t ct_sum8(int a, int b, int c, int d, int e, int f, int g, int h);
uint64_t ct_u64_add(uint64_t a, uint64_t b);
bool ct_not(bool b); int ct_bool_int(bool b);
float ct_fscale(float a, float b);
double ct_mix(double a, int b, double c, int64_t d);
double ct_dsum10(double a, double b, double c, double d, double e, double f, double g, double h, double i, double j);
double ct_fmix(float a, double b, float c);
size_t ct_strlen(const char *s); const char *ct_strid(const char *s);
int ct_isnull(const void *p); void ct_fill(int *p, int n, int v); void ct_nothing(void);
struct ct_pt { int32_t x, y; };
struct ct_mixed { double d; int32_t i; };
struct ct_ff { float a, b, c; };
struct ct_big { double a, b; int64_t c; };
union ct_u { int32_t i; float f; };
struct ct_pt ct_pt_make(int x, int y); int ct_pt_sum(struct ct_pt p);
struct ct_mixed ct_mixed_make(double d, int i); double ct_mixed_sum(struct ct_mixed m);
struct ct_ff ct_ff_rot(struct ct_ff f);
struct ct_big ct_big_make(double a, double b, int64_t c); double ct_big_sum(struct ct_big g);
union ct_u ct_u_int(int i); float ct_u_float(union ct_u u);
int64_t ct_pt_late(int a, int b, int c, int d, int e, int f, struct ct_pt p);
complex double ct_cmul(complex double a, complex double b);
complex float ct_cfconj(complex float a);
double ct_vsum(int n, ...);
int ct_set_errno(int e); int ct_get_errno(void);
extern int ct_counter; extern int ct_table[4]; extern const char *ct_name;
int ct_missing_function(int);
int ct_call_binop(int (*f)(int, int), int a, int b);
enum ct_colour { CT_RED = 3, CT_GREEN };
size_t strlen(const char *s);
int snprintf(char *buf, size_t n, const char *fmt, ...);
int abs(int x);
]]
local L = ffi.load(path)
local C = ffi.C

-- A 64-bit result as text ("12LL"), the same under LuaJIT (boxed) and PUC Lua 5.3+ (integer).
local function i64s(v) return tostring(ffi.new("int64_t", v)) end
local function u64s(v) return tostring(ffi.new("uint64_t", v)) end

-- Integers of each width: values wrap as C conversions do.
T.eq(L.ct_i8(-5), -5, "int8_t")
T.eq(L.ct_i8(200), -56, "int8_t wraps")
T.eq(L.ct_u8(-1), 255, "uint8_t wraps")
T.eq(L.ct_i16(-30000), -30000, "int16_t")
T.eq(L.ct_i16(40000), -25536, "int16_t wraps")
T.eq(L.ct_u16(65535), 65535, "uint16_t")
T.eq(L.ct_i32(-2147483648), -2147483648, "int32_t min")
T.eq(L.ct_u32(4294967295), 4294967295, "uint32_t max")
T.eq(L.ct_u32(-1), 4294967295, "uint32_t from -1")
T.eq(L.ct_add(40, 2), 42, "int add")
T.eq(L.ct_add(2.9, 1), 3, "double truncated to int")
T.eq(i64s(L.ct_narrow(-1, 255, -2, 65535)), "-744934485LL", "narrow arguments widened by type")
T.eq(i64s(L.ct_sum8(1, 2, 3, 4, 5, 6, 7, 8)), "87654321LL", "eight int arguments (two on the stack)")
T.eq(i64s(L.ct_i64(ffi.new("int64_t", 2^53) + 1)), "9007199254740993LL", "int64_t exact beyond 2^53")
T.eq(i64s(L.ct_i64(-1)), "-1LL", "int64_t -1")
T.eq(u64s(L.ct_u64(ffi.new("uint64_t", 0) - 1)), "18446744073709551615ULL", "uint64_t max")
T.eq(u64s(L.ct_u64_add(ffi.new("uint64_t", 2^63), 1)), "9223372036854775809ULL", "uint64_t above 2^63")
-- A negative Lua integer (5.3+) argument wraps modulo 2^64; a number on LuaJIT and 5.1/5.2
-- takes the double rule (2^63). A `long` result of -1 through uint64_t is 2^64 - 1 everywhere.
local neg_u64 = (math.type and math.type(-1) == "integer") and "18446744073709551615ULL" or "9223372036854775808ULL"
T.eq(u64s(L.ct_u64(-1)), neg_u64, "uint64_t argument from -1")
T.eq(u64s(L.ct_u64_add(-1, -1)), (math.type and math.type(-1) == "integer") and "18446744073709551614ULL" or "0ULL", "uint64_t arguments from -1")
T.eq(u64s(L.ct_u64(-1.0)), "9223372036854775808ULL", "uint64_t argument from -1.0")
if math.type then
  T.eq(L.ct_u8(math.tointeger(2^32 + 5)), 5, "uint8_t argument from an integer beyond int32")
  T.eq(L.ct_i16(math.tointeger(-2^40 - 3)), -3, "int16_t argument from an integer beyond int32")
end
T.eq(tostring(ffi.cast("uint64_t", L.ct_i64(-1))), "18446744073709551615ULL", "int64_t result -1 through uint64_t")
T.ok(ffi.cast("uint64_t", L.ct_i64(-1)) == ffi.new("uint64_t", 0) - 1, "int64_t result -1 compares as uint64_t max")
T.ours("int64_t results are Lua integers on 5.3+ (DESIGN.md)", function()
  if math.type then
    T.eq(math.type(L.ct_i64(5)), "integer", "int64_t result is an integer")
    T.eq(L.ct_i64(math.maxinteger), math.maxinteger, "maxinteger round trip exact")
  end
end)
T.eq(L.ct_not(true), false, "bool argument and result")
T.eq(L.ct_not(false), true, "bool false")
T.eq(L.ct_bool_int(true), 7, "bool to int")
T.eq(L.ct_bool_int(0), 3, "number 0 as bool")

-- Floating point.
T.eq(L.ct_fscale(1.5, 2), 3, "float arguments and result")
T.eq(L.ct_fscale(0.1, 1), tonumber(ffi.new("float", 0.1)), "float rounding")
T.eq(L.ct_mix(0.5, 2, 3, 4), 0.5 + 20 + 300 + 4000, "double/int/double/int64_t")
T.eq(L.ct_dsum10(1, 1, 1, 1, 1, 1, 1, 1, 1, 1), 55, "ten doubles (two on the stack)")
T.eq(L.ct_dsum10(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 385, "ten doubles in order")
T.eq(L.ct_fmix(0.5, 0.25, 2), 0.5 + 0.5 + 8, "float/double/float")

-- Pointers, strings, nil.
T.eq(tonumber(L.ct_strlen("hello")), 5, "Lua string as const char *")
T.eq(tonumber(C.strlen("hello, world")), 12, "ffi.C.strlen")
T.eq(u64s(L.ct_strlen(nil)), ffi.abi("64bit") and "18446744073709551615ULL" or "4294967295ULL", "nil is NULL")
T.eq(ffi.string(L.ct_strid("abc")), "abc", "const char * result")
T.eq(L.ct_isnull(nil), 1, "nil pointer")
T.eq(L.ct_isnull(ffi.new("int[1]")), 0, "array pointer")
T.ok(L.ct_strid(nil) == nil, "NULL result == nil")
T.ours("a NULL pointer read from C is nil (PUC Lua's == asks no __eq about nil)", function()
  T.eq(type(L.ct_strid(nil)), "nil", "NULL result is nil")
  T.eq(type(L.ct_strid("x")), "userdata", "a non-NULL result is a cdata")
end)
local buf = ffi.new("int[4]")
L.ct_fill(buf, 4, 10)
T.eq(buf[0] + buf[3], 10 + 13, "int * argument written by C")
T.eq(L.ct_nothing(), nil, "void function returns nothing")
T.eq(select("#", L.ct_nothing()), 0, "void function returns no value")

-- Structs and unions by value, in and out.
local p = L.ct_pt_make(3, 4)
T.eq(p.x * 10 + p.y, 34, "small struct result")
T.eq(L.ct_pt_sum(p), 304, "small struct argument")
T.eq(L.ct_pt_sum({ 5, 6 }), 506, "struct argument from a table")
local m = L.ct_mixed_make(1.5, 7)
T.eq(m.d, 1.5, "mixed struct result: double")
T.eq(m.i, 7, "mixed struct result: int")
T.eq(L.ct_mixed_sum(m), 7001.5, "mixed struct argument")
local f = L.ct_ff_rot(ffi.new("struct ct_ff", 1, 2, 3))
T.eq(f.a * 100 + f.b * 10 + f.c, 231, "three floats in two SSE eightbytes")
local g = L.ct_big_make(1, 2, 3)
T.eq(g.a + g.b * 10 + tonumber(g.c) * 100, 321, "struct above 16 bytes returned in memory")
T.eq(L.ct_big_sum(g), 321, "struct above 16 bytes passed in memory")
T.eq(L.ct_u_float(L.ct_u_int(0x3f800000)), 1, "union in and out")
T.eq(i64s(L.ct_pt_late(1, 2, 3, 4, 5, 6, { 7, 8 })), "807021LL", "struct on the stack after six ints")

-- Complex numbers.
local z = L.ct_cmul(ffi.new("complex", 1, 2), ffi.new("complex", 3, 4))
T.eq(z.re, -5, "complex double re")
T.eq(z.im, 10, "complex double im")
local zf = L.ct_cfconj(ffi.new("complex float", 1.5, 2.5))
T.eq(zf.re * 10 + zf.im, 15 - 2.5, "complex float")

-- Variadic: numbers pass as double, strings as const char *, cdata by their type.
T.eq(L.ct_vsum(3, 1, 2.5, 3), 6.5, "variadic doubles")
T.eq(L.ct_vsum(0), 0, "variadic without extras")
T.eq(L.ct_vsum(2, ffi.new("float", 0.5), 1), 1.5, "float cdata passes as double")
local out = ffi.new("char[64]")
local n = C.snprintf(out, 64, "%s|%d|%g|%lld|%c|%p", "str", ffi.new("int", -7), 2.5,
  ffi.new("int64_t", 123456789012), ffi.new("char", 65), nil)
T.eq(ffi.string(out), "str|-7|2.5|123456789012|A|(nil)", "snprintf with every vararg kind")
T.eq(n, #"str|-7|2.5|123456789012|A|(nil)", "snprintf result")
T.eq(C.snprintf(out, 64, "%d", true), 1, "boolean vararg is an int")
T.eq(ffi.string(out), "1", "boolean vararg value")
for i = 1, 3 do
  C.snprintf(out, 64, "%d-%s", ffi.new("int", i), "x")
end
T.eq(ffi.string(out), "3-x", "repeated variadic call with one argument list")

-- errno: what the C function left, and what ffi.errno(n) set before the call.
L.ct_set_errno(33)
T.eq(ffi.errno(), 33, "errno after the call")
ffi.errno(12)
T.eq(L.ct_get_errno(), 12, "errno set by ffi.errno is seen by C")
T.eq(ffi.errno(5), 12, "ffi.errno(n) returns the previous value")

-- Namespaces: functions, variables, constants.
T.ok(L.ct_add == L.ct_add, "a namespace returns the same function each time")
if T.luajit then
  T.like(L.ct_add, "^cdata<int %(%)>: 0x%x+$", "function cdata prints its address")
end
T.ours("namespace functions are Lua C closures over their function cdata (README, Differences)", function()
  T.eq(type(L.ct_add), "function", "a namespace function is a Lua function")
  T.eq(tostring(ffi.typeof(L.ct_add)), "ctype<int ()>", "... whose ctype is the C function's")
  T.eq(ffi.cast("int (*)(int, int)", L.ct_add)(40, 2), 42, "... that casts to a callable function pointer")
  T.eq(L.ct_call_binop(L.ct_add, 20, 3), 23, "... and passes as a function pointer argument")
  T.err("bad argument #2 (cannot convert 'table' to 'int')", "... argument numbers count from the first argument", L.ct_call_binop, L.ct_add, {}, 1)
  T.eq(ffi.new("int (*)(int, int)", L.ct_add)(1, 2), 3, "... and initialises a function pointer")
end)
local abs_addr = tostring(ffi.cast("void *", C.abs)):match("0x%x+")
T.eq(abs_addr, tostring(ffi.cast("void *", ffi.cast("int (*)(int)", C.abs))):match("0x%x+"), "a function casts to void *")
local abs_ptr = ffi.cast("int (*)(int)", ffi.cast("void *", C.abs))
T.eq(abs_ptr(-9), 9, "a pointer cast to a function pointer is callable")
T.eq(L.ct_counter, 41, "extern variable read")
L.ct_counter = 99
T.eq(L.ct_counter, 99, "extern variable write")
T.eq(L.ct_table[2], 3, "extern array read through a reference")
L.ct_table[2] = 30
T.eq(L.ct_table[2], 30, "extern array write")
T.eq(ffi.string(L.ct_name), "calltest", "extern pointer variable")
T.eq(L.CT_GREEN, 4, "enum constant through a namespace")
-- An enum argument may be given by its constant's name (the declared enum type converts,
-- not its integer representation); an unknown name is LuaJIT's conversion error.
ffi.cdef [[
enum ct_sign { CT_NEG = -2, CT_POS = 5 };
int32_t ct_enum_arg(enum ct_colour c) __asm__("ct_i32");
int32_t ct_enum_signed_arg(enum ct_sign s) __asm__("ct_i32");
int64_t ct_enum_narrow(int8_t a, enum ct_sign s, int16_t c, enum ct_colour d) __asm__("ct_narrow");
]]
T.eq(L.ct_enum_arg("CT_GREEN"), 4, "an enum argument by constant name")
T.eq(L.ct_enum_signed_arg("CT_NEG"), -2, "a signed enum argument by constant name")
T.eq(ffi.cast("int32_t (*)(enum ct_colour)", L.ct_i32)("CT_RED"), 3, "an enum argument by name through a function pointer")
T.eq(tonumber(L.ct_enum_narrow(1, "CT_POS", 3, "CT_GREEN")), tonumber(L.ct_narrow(1, 5, 3, 4)), "enum arguments by name among others")
T.err("bad argument #1 (cannot convert 'string' to 'enum ct_colour')", "an unknown enum constant name", L.ct_enum_arg, "CT_BLUE")
T.err("bad argument #1 (cannot convert 'string' to 'enum ct_colour')", "an unknown enum constant name through a function pointer", ffi.cast("int32_t (*)(enum ct_colour)", L.ct_i32), "CT_BLUE")
T.err("bad argument #1 (cannot convert 'string' to 'int')", "a constant name for a plain int", L.ct_i32, "CT_GREEN")

-- Records aligned beyond the stack's 16 bytes reach C at their alignment, however the stack
-- was aligned when the stub was entered (x86-64 System V passes them on the stack).
ffi.cdef [[
struct ct_al32 { int a; } __attribute__((aligned(32)));
struct ct_al64 { double d[5]; } __attribute__((aligned(64)));
int ct_al32_arg(struct ct_al32 x, int y);
double ct_al64_arg(int a, struct ct_al64 x, int b);
void ct_call_lowered(int n, void (*f)(void));
]]
T.ours("LuaJIT keeps the stack 16-aligned for these calls (its argument lands misaligned)", function()
  for n = 0, 3 do
    local got = {}
    L.ct_call_lowered(n, function()
      got[1] = L.ct_al32_arg(ffi.new("struct ct_al32", {7}), 3)
      got[2] = L.ct_al64_arg(1, ffi.new("struct ct_al64", {{1, 2, 3, 4, 5}}), 2)
    end)
    T.eq(got[1], 73, "an aligned(32) record argument, stack lowered by " .. 16 * n)
    T.eq(got[2], 9, "an aligned(64) record argument, stack lowered by " .. 16 * n)
  end
end)

-- Errors.
T.err("missing declaration for symbol 'nope'", "undeclared symbol", function() return L.nope end)
T.err("missing declaration for symbol 'nope'", "undeclared symbol in ffi.C", function() return C.nope end)
local ok, msg = pcall(function() return L.ct_missing_function end)
T.ok(not ok and tostring(msg):find("undefined symbol: ct_missing_function", 1, true) ~= nil, "declared but absent symbol: " .. tostring(msg))
T.err("attempt to write to constant location", "assigning a function", function() L.ct_add = 1 end)
T.err("wrong number of arguments for function call", "too few arguments", L.ct_add, 1)
T.err("wrong number of arguments for function call", "too many arguments", L.ct_add, 1, 2, 3)
T.err("wrong number of arguments for function call", "variadic: too few fixed arguments", L.ct_vsum)
T.err("bad argument #2 (cannot convert 'table' to 'int')", "bad second argument", L.ct_add, 1, {})
T.err("bad argument #1 (cannot convert 'table' to 'const char *')", "table for a string", C.strlen, {})
T.err("bad argument #1 (cannot convert 'string' to 'struct ct_pt')", "string for a struct", L.ct_pt_sum, "x")
T.err("bad argument #4 (cannot convert 'table' to 'void *')", "table as vararg", C.snprintf, out, 64, "%p", {})
T.ours("LuaJIT crashes on a NULL function pointer", function()
  T.err("attempt to call a NULL function pointer", "NULL function pointer", ffi.cast("int (*)(int)", nil), 1)
end)
ok, msg = pcall(ffi.load, "luaffi_no_such_library")
T.ok(not ok and tostring(msg):find("libluaffi_no_such_library.so", 1, true) ~= nil, "ffi.load names the file it tried: " .. tostring(msg))

T.done("calls.lua")
