-- What LuaJIT's C parser takes beyond plain C types, each as LuaJIT lays it out, reads,
-- writes and converts it (checked against luajit 2.1; the suite runs this under both):
-- 16- and 32-byte integers made by mode(TI)/mode(OI), _Bool with an integer keyword,
-- 4-byte pointers (__ptr32).
-- Differences are marked T.ours.
local ffi = require "ffi"
local T = require "testlib"

-- An int64_t cdata (PUC Lua has no LL literals).
local function L(v) return ffi.new("int64_t", v) end

local function size_align(t) return ffi.sizeof(t) .. "/" .. ffi.alignof(t) end

-- The bytes of the first `n` bytes of the object `o` (an array or struct cdata), in hex.
local function hex(o, n)
  local b = ffi.cast("const uint8_t *", o)
  local s = {}
  for i = 0, n - 1 do s[#s + 1] = string.format("%02x", b[i]) end
  return table.concat(s)
end

-- ---- 1. mode(TI) and mode(OI): 16- and 32-byte integers LuaJIT can only copy ----

ffi.cdef [[
typedef int cg_i128 __attribute__((mode(TI)));
typedef unsigned cg_u128 __attribute__((__mode__(__TI__)));
typedef long long cg_i256 __attribute__((mode(OI)));
struct cg_wide { char c; cg_i128 x; char d; cg_u128 y[2]; };
]]
T.str(ffi.typeof("cg_i128"), "ctype<int128_t>", "mode(TI) on int prints int128_t")
T.str(ffi.typeof("cg_u128"), "ctype<uint128_t>", "mode(TI) on unsigned prints uint128_t")
T.str(ffi.typeof("cg_i256"), "ctype<int256_t>", "mode(OI) prints int256_t")
T.str(ffi.typeof("unsigned char __attribute__((mode(OI)))"), "ctype<uint256_t>", "mode(OI) keeps the sign")
T.str(ffi.typeof("cg_i128 *"), "ctype<int128_t *>", "pointer to int128_t")
T.str(ffi.typeof("const cg_u128 [2]"), "ctype<const uint128_t [2]>", "array of const uint128_t")
-- Aligned to 16, except on i386 Linux, whose psABI aligns no scalar beyond 4 (LuaJIT's
-- cp_field_align caps such struct members at 4 there too).
local i386_sysv = ffi.arch == "x86" and ffi.os ~= "Windows"
local a16 = i386_sysv and 4 or 16
T.eq(size_align("cg_i128"), "16/" .. a16, "sizeof/alignof int128_t")
T.eq(size_align("cg_i256"), "32/" .. a16, "sizeof/alignof int256_t: alignment capped at 16")
T.eq(ffi.sizeof("cg_i128[3]"), 48, "array of int128_t")
T.eq(size_align("struct cg_wide"), i386_sysv and "56/4" or "80/16", "struct with 16-byte integer members")
T.eq(ffi.offsetof("struct cg_wide", "x") .. "/" .. ffi.offsetof("struct cg_wide", "d") .. "/"
  .. ffi.offsetof("struct cg_wide", "y"), i386_sysv and "4/20/24" or "16/32/48", "their offsets")
T.ok(ffi.typeof("short __attribute__((mode(TI)))") == ffi.typeof("cg_i128"), "one int128_t type")
T.str(ffi.typeof("double __attribute__((mode(TI)))"), "ctype<double>", "a floating mode(TI) changes nothing")
T.err("invalid value near ':'", "no int128_t bit-field", ffi.cdef, "struct cg_wb { cg_i128 x : 3; };")
T.err("invalid C type", "no int128_t constant", ffi.cdef, "static const cg_i128 CG_K = 1;")

-- Zero-filled when created, copied whole.
T.eq(hex(ffi.new("cg_i128[1]"), 16), string.rep("00", 16), "new int128_t is zero")
do
  local a = ffi.new("cg_i128[2]", L(-2), L(5))
  T.eq(hex(a, 16), "fe" .. string.rep("ff", 15), "int64_t -2 sign-extends to int128_t")
  T.eq(hex(a + 1, 16), "05" .. string.rep("00", 15), "L(5) zero-extends")
  a[1] = a[0]
  T.eq(hex(a + 1, 16), "fe" .. string.rep("ff", 15), "int128_t element copied to another")
  a[0] = ffi.new("uint8_t", 200)
  T.eq(hex(a, 16), "c8" .. string.rep("00", 15), "unsigned char zero-extends")
  a[0] = ffi.new("short", -1)
  T.eq(hex(a, 16), string.rep("ff", 16), "short -1 sign-extends")
  local u = ffi.new("cg_u128[1]", L(-3))
  T.eq(hex(u, 16), "fd" .. string.rep("ff", 15), "int64_t -3 to uint128_t: sign-extended")
  local w = ffi.new("cg_i256[1]", L(-1))
  T.eq(hex(w, 32), string.rep("ff", 32), "int256_t from L(-1)")
  w[0] = a[0]
  T.eq(hex(w, 32), string.rep("ff", 32), "int128_t -1 to int256_t: sign-extended")
  local u2 = ffi.new("cg_u128[1]")
  u2[0] = w[0]
  T.eq(hex(u2, 16), string.rep("ff", 16), "int256_t to uint128_t: truncated")
  a[0] = true
  T.eq(hex(a, 16), "01" .. string.rep("00", 15), "true is 1")
end

-- Reading gives an int128_t cdata (a copy); it converts to integers, truncating.
do
  local s = ffi.new("struct cg_wide")
  s.x = L(-2)
  local x = s.x
  T.str(ffi.typeof(x), "ctype<int128_t>", "a read int128_t member is an int128_t cdata")
  s.x = L(7)
  T.str(ffi.cast("int64_t", x), "-2LL", "the read value is a copy")
  T.str(ffi.cast("int64_t", s.x), "7LL", "int128_t to int64_t")
  T.eq(tonumber(ffi.cast("int32_t", ffi.new("cg_i128", L(-5)))), -5, "int128_t to int32_t")
  T.str(ffi.cast("uint64_t", ffi.new("cg_u128", L(-3))), "18446744073709551613ULL", "uint128_t to uint64_t")
  T.eq(tonumber(ffi.new("int", ffi.new("cg_i128", L(300)))), 300, "int128_t initialises an int")
  T.eq(tonumber(ffi.cast("uint8_t", ffi.new("cg_i128", L(300)))), 44, "int128_t to uint8_t: low byte")
  T.eq(ffi.new("bool", ffi.new("cg_i128")) == ffi.new("bool", ffi.new("cg_i128")), true, "bools from int128_t")
  T.eq(tonumber(ffi.cast("int", ffi.new("bool", ffi.new("cg_i128", L(1))))), 1, "int128_t 1 is true")
  T.eq(tonumber(ffi.cast("int", ffi.new("bool", ffi.new("cg_i128")))), 0, "int128_t 0 is false")
  local hb = ffi.new("cg_i128[1]")
  ffi.cast("uint8_t *", hb)[15] = 0x80
  T.eq(tonumber(ffi.cast("int", ffi.new("bool", hb[0]))), 1, "only the top bit set is true")
  T.eq(tonumber(ffi.cast("intptr_t", ffi.cast("char *", ffi.new("cg_i128", L(-8))))), -8,
    "ffi.cast makes a pointer of one, truncating")
  T.like(tostring(ffi.new("cg_i128")), "^cdata<int128_t>: 0x%x+$", "tostring shows the address")
  local init = ffi.new("struct cg_wide", 1, L(2), 3)
  T.eq(init.d, 3, "a struct initialiser with an int64_t for the int128_t member")
  T.str(ffi.cast("int64_t", init.x), "2LL", "the member got it")
end

-- What LuaJIT raises for them.
T.err("cannot convert 'number' to 'int128_t'", "no int128_t from a Lua number", ffi.new, "cg_i128", 5)
T.err("cannot convert 'number' to 'int128_t'", "not even 0", ffi.new, "cg_i128", 0)
T.err("cannot convert 'number' to 'int128_t'", "nor by a cast", ffi.cast, "cg_i128", 1)
T.err("cannot convert 'number' to 'int128_t'", "a struct member from a number", ffi.new, "struct cg_wide", { 1, 2, 3 })
T.err("cannot convert 'double' to 'int128_t'", "nor from a double cdata", ffi.new, "cg_i128", ffi.new("double", 1))
T.err("cannot convert 'string' to 'int128_t'", "nor from a string", ffi.new, "cg_i128", "x")
T.err("cannot convert 'table' to 'int128_t'", "nor from a table", ffi.new, "cg_i128", { 1 })
T.err("cannot convert 'void *' to 'int128_t'", "nor from a pointer", ffi.new, "cg_i128", ffi.cast("void *", 5))
T.err("cannot convert 'int128_t' to 'double'", "no double from it", ffi.new, "double", ffi.new("cg_i128"))
T.err("cannot convert 'int128_t' to 'double'", "tonumber refuses it", tonumber, ffi.new("cg_i128"))
T.err("cannot convert 'int128_t' to 'int *'", "no pointer from it", ffi.new, "int *", ffi.new("cg_i128"))
do
  local a = ffi.new("cg_i128[1]")
  T.err("cannot convert 'number' to 'int128_t'", "an element store of a number", function() a[0] = 1 end)
  local x = ffi.new("cg_i128")
  T.err("attempt to perform arithmetic on 'int128_t' and 'number'", "no arithmetic", function() return x + 1 end)
  T.err("attempt to compare 'int128_t' with 'int128_t'", "no ordering", function() return x < x end)
end
-- By value: x86-64 only (gcc's and mingw's __int128), in tests/c/calltest.c.
local CT = ffi.load(assert(os.getenv("LUAFFI_CALLTEST"), "LUAFFI_CALLTEST is not set"))
if ffi.arch == "x64" then
  ffi.cdef [[
  cg_i128 cg_i128_shl(int64_t x, int n);
  cg_i128 cg_i128_add(cg_i128 a, int b, cg_i128 c);
  uint64_t cg_i128_hi(cg_i128 a);
  int64_t cg_i128_late(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, cg_i128 x, int64_t f);
  cg_i128 cg_i128_call(cg_i128 (*f)(cg_i128, int), cg_i128 a, int b);
  ]]
  local function bytes(v) return hex(ffi.new("cg_i128[1]", v), 16) end
  local r = CT.cg_i128_shl(L(-3), 64)
  T.str(ffi.typeof(r), "ctype<int128_t>", "an int128_t result is an int128_t cdata")
  T.eq(bytes(r), string.rep("00", 8) .. "fd" .. string.rep("ff", 7), "(int128_t)-3 << 64: both halves")
  T.eq(bytes(CT.cg_i128_shl(5, 1)), "0a" .. string.rep("00", 15), "5 << 1")
  T.ours("int128_t arguments (LuaJIT: NYI)", function()
    local a = CT.cg_i128_shl(1, 64)
    T.eq(tonumber(CT.cg_i128_hi(a)), 1, "an int128_t argument's high half")
    T.eq(bytes(CT.cg_i128_add(a, -1, L(2))), "01" .. string.rep("00", 7) .. "01" .. string.rep("00", 7),
      "(1 << 64) + -1 + 2: an int64_t converts to the int128_t argument")
    T.eq(bytes(CT.cg_i128_add(ffi.new("cg_i128", L(-1)), 0, ffi.new("cg_i128"))), string.rep("ff", 16), "-1 + 0 + 0")
    T.eq(tonumber(CT.cg_i128_late(1, 2, 3, 4, 5, CT.cg_i128_shl(7, 64), 6)), 7021,
      "an int128_t that does not fit the registers left goes whole to the stack; the next argument takes a register")
    T.err("bad argument #1 (cannot convert 'number' to 'int128_t')", "no int128_t argument from a Lua number",
      CT.cg_i128_hi, 5)
    local seen
    local f = ffi.cast("cg_i128 (*)(cg_i128, int)", function(x, n)
      seen = bytes(x) .. "/" .. n
      return CT.cg_i128_shl(n, 64)
    end)
    T.eq(bytes(CT.cg_i128_call(f, CT.cg_i128_shl(-1, 0), 9)), "01" .. string.rep("00", 7) .. "09" .. string.rep("00", 7),
      "a callback's int128_t result (9 << 64) + 1")
    T.eq(seen, string.rep("ff", 16) .. "/9", "a callback's int128_t argument is an int128_t cdata")
    f:free()
  end)
  T.ours("a struct holding an int128_t by value (LuaJIT: NYI)", function()
    ffi.cdef [[
    struct cg_i128s { cg_i128 v; };
    struct cg_i128s cg_i128s_twice(struct cg_i128s s, int k);
    int64_t cg_i128s_late(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, struct cg_i128s s, int64_t f);
    struct cg_i128s cg_i128s_call(struct cg_i128s (*f)(struct cg_i128s, int), struct cg_i128s s, int k);
    ]]
    local s = ffi.new("struct cg_i128s", { CT.cg_i128_shl(3, 63) })
    local r = CT.cg_i128s_twice(s, 5)
    T.str(ffi.typeof(r), "ctype<struct cg_i128s>", "a struct result")
    T.eq(bytes(r.v), "05" .. string.rep("00", 7) .. "03" .. string.rep("00", 7), "(3 << 63) * 2 + 5: both halves")
    T.eq(tonumber(CT.cg_i128s_late(1, 2, 3, 4, 5, ffi.new("struct cg_i128s", { CT.cg_i128_shl(7, 64) }), 6)), 7021,
      "with one register left, the struct goes whole to the stack; the next argument takes a register")
    local seen
    local f = ffi.cast("struct cg_i128s (*)(struct cg_i128s, int)", function(x, k)
      seen = bytes(x.v) .. "/" .. k
      return { CT.cg_i128_shl(k, 64) }
    end)
    T.eq(bytes(CT.cg_i128s_call(f, s, 2).v), "01" .. string.rep("00", 7) .. "02" .. string.rep("00", 7),
      "a callback's struct result (2 << 64) + 1")
    T.eq(seen, string.rep("00", 7) .. "80" .. "01" .. string.rep("00", 7) .. "/2", "a callback's struct argument")
    f:free()
  end)
end
T.ours("calls with 32-byte integers, and 16-byte ones on 32-bit x86, are refused with the reason", function()
  local take = ffi.cast("int (*)(cg_i256)", ffi.cast("void *", 1))
  T.like(select(2, pcall(take, ffi.new("cg_i256"))), "int256_t.*mode%(OI%)",
    "an int256_t parameter is refused with the reason")
  local ret = ffi.cast("cg_i256 (*)(int)", ffi.cast("void *", 1))
  T.like(select(2, pcall(ret, 1)), "int256_t.*mode%(OI%)", "an int256_t result is refused with the reason")
  if ffi.arch == "x86" then
    local rec = ffi.cast("int (*)(struct cg_wide)", ffi.cast("void *", 1))
    T.like(select(2, pcall(rec, ffi.new("struct cg_wide"))), "holding a 128%-bit integer.*no __int128",
      "so is a struct holding one on x86")
    local t128 = ffi.cast("int (*)(cg_i128)", ffi.cast("void *", 1))
    T.like(select(2, pcall(t128, ffi.new("cg_i128"))), "int128_t.*no __int128", "an int128_t on x86")
  end
end)

-- ---- 2. _Bool with an integer keyword: a bool of that keyword's size ----

T.str(ffi.typeof("_Bool int"), "ctype<bool>", "_Bool int prints as bool")
T.eq(size_align("_Bool int"), "4/4", "_Bool int: 4 bytes")
T.eq(size_align("int _Bool"), "4/4", "int _Bool: 4 bytes")
T.eq(size_align("signed _Bool int"), "4/4", "signed _Bool int")
T.eq(size_align("unsigned int _Bool"), "4/4", "unsigned int _Bool")
T.eq(size_align("_Bool __int16"), "2/2", "_Bool __int16: 2 bytes")
T.eq(ffi.sizeof("_Bool __int64"), 8, "_Bool __int64: 8 bytes")
T.eq(size_align("_Bool __int8"), "1/1", "_Bool __int8 is bool")
T.eq(size_align("_Bool _Bool"), "1/1", "_Bool _Bool")
T.eq(size_align("bool _Bool"), "1/1", "bool _Bool")
T.ok(ffi.typeof("_Bool int") ~= ffi.typeof("bool"), "_Bool int is not bool")
T.ok(ffi.typeof("_Bool __int8") == ffi.typeof("bool"), "_Bool __int8 is bool")
T.str(ffi.typeof("_Bool int *"), "ctype<bool *>", "pointer to _Bool int")
T.err("invalid C type", "_Bool char", ffi.typeof, "_Bool char")
T.err("invalid C type", "_Bool long", ffi.typeof, "_Bool long")
T.err("invalid C type", "_Bool short", ffi.typeof, "_Bool short")
T.err("'<eof>' expected near 'int'", "bool has its size already", ffi.typeof, "bool int")
T.err("'<eof>' expected near 'int'", "one int only", ffi.typeof, "_Bool int int")

ffi.cdef [[
struct cg_bool { char c; _Bool int b; char d; };
struct cg_bbits { _Bool int b : 1; int x : 3; };
]]
T.eq(size_align("struct cg_bool") .. "/" .. ffi.offsetof("struct cg_bool", "b"), "12/4/4", "_Bool int member")
T.err("invalid value near ':'", "a bool bit-field has 1 bit", ffi.cdef, "struct cg_bb2 { _Bool int b : 2; };")
do
  local b = ffi.new("_Bool int[1]")
  local i = ffi.cast("int *", b)
  b[0] = true
  T.eq(i[0], 1, "true is stored as the int 1")
  b[0] = false
  T.eq(i[0], 0, "false is stored as 0")
  b[0] = 5
  T.eq(i[0], 1, "a nonzero number is stored as 1")
  i[0] = 0x100
  T.eq(b[0], true, "all 4 bytes are read: 0x100 is true")
  i[0] = -1
  T.eq(b[0], true, "-1 is true")
  i[0] = 0
  T.eq(b[0], false, "0 is false")
  local s = ffi.new("struct cg_bool", 1, true, 2)
  T.eq(s.b, true, "a _Bool int member reads as a boolean")
  T.eq(s.c + s.d, 3, "its neighbours are intact")
  s.b = false
  T.eq(ffi.cast("int *", ffi.cast("char *", s) + 4)[0], 0, "a member store writes 4 bytes")
  local bb = ffi.new("struct cg_bbits")
  bb.b = true
  bb.x = 3
  T.eq(tostring(bb.b) .. "/" .. bb.x .. "/" .. ffi.cast("int *", bb)[0], "true/3/7", "a _Bool int bit-field")
  local w8 = ffi.new("_Bool __int64[1]")
  local q = ffi.cast("uint8_t *", w8)
  for k = 0, 7 do q[k] = 0xff end
  w8[0] = true
  T.eq(hex(w8, 8), "01000000ffffffff", "an 8-byte bool is written through its first 4 bytes")
  ffi.cast("int64_t *", w8)[0] = ffi.new("int64_t", 4294967296)
  T.eq(w8[0], false, "and read from them (as LuaJIT)")
  local w2 = ffi.new("_Bool __int16[1]")
  w2[0] = true
  T.eq(hex(w2, 2), "0100", "a 2-byte bool stores 1")
end
do
  local x = ffi.new("_Bool int", true)
  T.eq(tonumber(x), 1, "tonumber of a true _Bool int")
  T.eq(tonumber(ffi.cast("_Bool int", 2)), 1, "ffi.cast to _Bool int")
  T.eq(tonumber(ffi.new("int", x)), 1, "_Bool int converts to int")
  T.str(ffi.cast("int64_t", x), "1LL", "and to int64_t")
  T.ok(x == ffi.new("bool", true), "compares with a bool")
  T.ok(not (ffi.new("_Bool int", false) == x), "false ~= true")
  T.str(x + 1, "2LL", "arithmetic as a bool")
  local a = ffi.new("_Bool int[2]")
  T.str(ffi.typeof(ffi.new("_Bool int *", a)), "ctype<bool *>", "its array converts to its pointer")
  T.err("cannot convert 'bool [2]' to 'bool *'", "but not to a 1-byte bool's", ffi.new, "bool *", a)
  T.err("cannot convert 'bool [2]' to 'int *'", "nor to an int's", ffi.new, "int *", a)
end
T.ours("a 2-byte bool is read and written in its own 2 bytes (LuaJIT: 4, past it)", function()
  local s = ffi.new("struct { _Bool __int16 b; short x; }")
  s.x = 5
  s.b = true
  T.eq(s.x, 5, "storing a 2-byte bool leaves the next member alone")
  s.b = false
  s.x = 1
  T.eq(s.b, false, "reading it ignores the next member")
end)
-- By value, a bool of more than one byte is the integer of its size (tests/c/calltest.c
-- declares these functions with int, short and long long): true/false in and out, read as
-- the store reads it.
ffi.cdef [[
_Bool int cg_wb_not(_Bool int b);
_Bool int cg_wb_raw(int x);
int cg_wb_call(_Bool int (*f)(_Bool int), int x);
_Bool __int16 cg_wb16_raw(short x);
short cg_wb16_call(_Bool __int16 (*f)(_Bool __int16), short x);
_Bool __int64 cg_wb64_raw(int64_t x);
int64_t cg_wb64_call(_Bool __int64 (*f)(_Bool __int64), int64_t x);
]]
do
  T.eq(CT.cg_wb_not(true), false, "a _Bool int argument and result: !true")
  T.eq(CT.cg_wb_not(false), true, "!false")
  T.eq(CT.cg_wb_not(ffi.new("_Bool int", true)), false, "a _Bool int cdata argument")
  T.eq(CT.cg_wb_raw(0x100), true, "a _Bool int result reads all 4 bytes")
  T.eq(CT.cg_wb_raw(0), false, "0 is false")
  T.eq(CT.cg_wb16_raw(0x100), true, "a _Bool __int16 result reads its 2 bytes")
  T.eq(CT.cg_wb16_raw(0), false, "a _Bool __int16 0 is false")
  T.eq(CT.cg_wb64_raw(1), true, "a _Bool __int64 result")
  T.eq(CT.cg_wb64_raw(L(4294967296)), false, "a _Bool __int64 result is read from its first 4 bytes")
  -- msvcrt.dll exports C99's snprintf as _snprintf.
  ffi.cdef("int snprintf(char *buf, size_t n, const char *fmt, ...)"
    .. (ffi.os == "Windows" and ' __asm__("_snprintf")' or "") .. ";")
  local buf = ffi.new("char[32]")
  ffi.C.snprintf(buf, 32, "%d %d", ffi.new("_Bool int", true), ffi.new("_Bool __int16", true))
  T.eq(ffi.string(buf), "1 1", "wide bool cdata after ... are promoted to int")
  local seen = {}
  local f = ffi.cast("_Bool int (*)(_Bool int)", function(b) seen[#seen + 1] = b; return not b end)
  T.eq(CT.cg_wb_call(f, 0x100), 0, "a callback's _Bool int argument 0x100 is true, its result false is 0")
  T.eq(CT.cg_wb_call(f, 0), 1, "a callback's argument 0 is false, its result true is 1")
  T.eq(tostring(seen[1]) .. "/" .. tostring(seen[2]), "true/false", "the callback saw booleans")
  f:free()
  local f16 = ffi.cast("_Bool __int16 (*)(_Bool __int16)", function(b) return not b end)
  T.eq(CT.cg_wb16_call(f16, 0x100), 0, "a _Bool __int16 callback: 0x100 is true")
  T.eq(CT.cg_wb16_call(f16, 0), 1, "a _Bool __int16 callback returns 1 for true")
  f16:free()
  local f64 = ffi.cast("_Bool __int64 (*)(_Bool __int64)", function(b) return not b end)
  T.eq(tonumber(CT.cg_wb64_call(f64, 1)) % 2 ^ 32, 0, "a _Bool __int64 callback: 1 is true, false is 0")
  T.ours("an 8-byte bool result's upper 4 bytes are 0 (LuaJIT leaves what was there)", function()
    T.eq(tonumber(CT.cg_wb64_call(f64, L(4294967296))), 1,
      "a _Bool __int64 callback: its first 4 bytes are 0, so false; true comes back as exactly 1")
  end)
  f64:free()
end

-- ---- 3. __ptr32: a 4-byte pointer on 64-bit targets, an ordinary one on 32-bit ----

if ffi.abi("64bit") then
  T.str(ffi.typeof("int * __ptr32"), "ctype<int *__ptr32>", "int * __ptr32")
  T.str(ffi.typeof("int __ptr32 *"), "ctype<int *__ptr32>", "__ptr32 before the *")
  T.str(ffi.typeof("int * __ptr64"), "ctype<int *>", "__ptr64 is the ordinary pointer")
  T.str(ffi.typeof("int * __ptr32 *"), "ctype<int *__ptr32 *>", "pointer to a 4-byte pointer")
  T.str(ffi.typeof("int * __ptr32 [3]"), "ctype<int *__ptr32 [3]>", "array of 4-byte pointers")
  T.str(ffi.typeof("int (* __ptr32)(int)"), "ctype<int (*__ptr32)()>", "4-byte function pointer")
  T.str(ffi.typeof("int * __ptr32 const"), "ctype<int *__ptr32 const>", "const 4-byte pointer")
  T.str(ffi.typeof("const int * __ptr32"), "ctype<const int *__ptr32>", "4-byte pointer to const")
  T.str(ffi.typeof("int *__ptr64 __ptr32"), "ctype<int *__ptr32>", "the last size wins")
  T.str(ffi.typeof("int *__ptr32 __ptr64"), "ctype<int *>", "the last size wins (64)")
  T.str(ffi.typeof("char __ptr32"), "ctype<int>", "__ptr32 on an integer is a 4-byte mode")
  T.str(ffi.typeof("int __ptr64"), "ctype<int64_t>", "__ptr64 on an integer is an 8-byte mode")
  T.eq(size_align("int * __ptr32"), "4/4", "sizeof/alignof int * __ptr32")
  T.eq(size_align("int * __ptr64"), "8/8", "sizeof/alignof int * __ptr64")
  T.eq(ffi.sizeof("int * __ptr32 *"), 8, "a pointer to one is 8 bytes")
  T.eq(ffi.sizeof("int * __ptr32 [3]"), 12, "three of them")
  T.ok(ffi.typeof("int * __ptr32") ~= ffi.typeof("int *"), "a type of its own")
  ffi.cdef [[
  struct cg_p32 { char c; int * __ptr32 p; char d; int * __ptr32 q[2]; };
  typedef int * __ptr32 cg_p32_t;
  ]]
  T.eq(size_align("struct cg_p32"), "20/4", "struct with 4-byte pointers")
  T.eq(ffi.offsetof("struct cg_p32", "p") .. "/" .. ffi.offsetof("struct cg_p32", "d") .. "/"
    .. ffi.offsetof("struct cg_p32", "q"), "4/8/12", "their offsets")
  T.eq(ffi.sizeof("cg_p32_t"), 4, "a typedef of one")
  T.str(ffi.typeof("cg_p32_t *"), "ctype<int *__ptr32 *>", "a pointer to the typedef")

  local s = ffi.new("struct cg_p32")
  T.eq(s.p, nil, "a NULL 4-byte pointer member reads as nil (luaffi's NULL bridge)")
  s.p = ffi.cast("int *", 0x12345678)
  T.eq(tonumber(ffi.cast("uintptr_t", s.p)), 0x12345678, "stored and read back")
  s.p = ffi.cast("int *", 0x80000001)
  T.eq(tonumber(ffi.cast("uintptr_t", s.p)), 0x80000001, "read zero-extended")
  s.p = ffi.cast("int *", 0x123456789)
  T.eq(tonumber(ffi.cast("uintptr_t", s.p)), 0x23456789, "stored truncated to 32 bits")
  T.eq(ffi.cast("uint32_t *", ffi.cast("char *", s) + 4)[0], 0x23456789, "in 4 bytes")
  T.eq(s.c + s.d, 0, "its neighbours are untouched")
  s.q[1] = ffi.cast("void *", 0x1000)
  T.eq(tonumber(ffi.cast("uintptr_t", s.q[1] + 1)), 0x1004, "arithmetic on a read element")
  T.ok(s.q[1] == ffi.cast("int *", 0x1000), "compares with an int *")
  T.eq(tonumber(s.q[1] - ffi.cast("int *", 0)), 1024, "pointer difference")

  local p = ffi.new("int * __ptr32")
  T.eq(ffi.sizeof(p), 4, "ffi.new of one is 4 bytes")
  T.str(p, "cdata<int *__ptr32>: NULL", "tostring of a NULL one")
  T.str(ffi.cast("int * __ptr32", 0x1000), "cdata<int *__ptr32>: 0x00001000", "tostring shows its value")
  local h = ffi.new("int * __ptr32", ffi.cast("int *", 0x80000001))
  T.eq(tonumber(ffi.cast("intptr_t", h)), 0x80000001, "to intptr_t: zero-extended")
  T.eq(tonumber(ffi.cast("uintptr_t", ffi.cast("int *", h))), 0x80000001, "to int *")
  T.eq(tonumber(ffi.cast("uintptr_t", ffi.cast("int *", ffi.cast("int * __ptr32", -1)))), 0xffffffff,
    "ffi.cast of -1: truncated")
  T.eq(tonumber(ffi.cast("uintptr_t", ffi.cast("int *", ffi.cast("int * __ptr32", 0xfffffffff)))), 0xffffffff,
    "ffi.cast of a number above 32 bits: truncated")
  T.err("cannot convert 'number' to 'int *__ptr32'", "no 4-byte pointer from a number", ffi.new, "int * __ptr32", 5)
  T.err("cannot convert 'double [1]' to 'int *__ptr32'", "nor from an incompatible pointer", ffi.new,
    "int * __ptr32", ffi.new("double[1]"))
  s.p = ffi.cast("int *", 0x1000)
  T.str(ffi.typeof(s.p), "ctype<int *__ptr32>", "a 4-byte pointer member reads as one")
  T.str(ffi.typeof(s.q[0] or s.q[1]), "ctype<int *__ptr32>", "so does an element")
  local q = ffi.cast("int * __ptr32", 0x1000)
  T.str(ffi.typeof(q + 1), "ctype<int *>", "arithmetic gives an ordinary pointer")
  T.eq(tonumber(ffi.cast("uintptr_t", q + 2)), 0x1008, "stepping by its element")
  T.eq(tonumber(ffi.cast("uintptr_t", q - 1)), 0xffc, "and back")
  T.ok(q == ffi.cast("int *", 0x1000), "== an ordinary pointer to the same address")
  T.ok(q == ffi.cast("int * __ptr32", 0x1000), "== another 4-byte one")
  T.ok(q ~= ffi.cast("int *", 0x1004), "~= another address")
  T.ok(q < ffi.cast("int * __ptr32", 0x1004), "ordered as addresses")
  T.eq(tonumber(ffi.cast("int * __ptr32", 0x1010) - q), 4, "a difference of two")
  T.ok(s.p == q, "a member compares as its address")

  -- Memory a 4-byte pointer can reach: a page below 4 GiB.
  local low
  if ffi.os == "Linux" then
    ffi.cdef [[void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off);]]
    -- PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_32BIT
    local m = ffi.C.mmap(nil, 4096, 3, 0x22 + 0x40, -1, 0)
    if m ~= nil and tonumber(ffi.cast("intptr_t", m)) ~= -1 then low = m end
  elseif ffi.os == "Windows" then
    ffi.cdef [[void *VirtualAlloc(void *addr, size_t len, uint32_t type, uint32_t protect);]]
    for a = 0x20000000, 0x70000000, 0x10000000 do
      -- MEM_COMMIT|MEM_RESERVE, PAGE_READWRITE
      local m = ffi.C.VirtualAlloc(ffi.cast("void *", a), 4096, 0x3000, 4)
      if m ~= nil then low = m break end
    end
  end
  T.ok(low ~= nil, "a page below 4 GiB")
  if low ~= nil then
    local a = ffi.cast("int *", low)
    for i = 0, 3 do a[i] = (i + 1) * 10 end
    local lp = ffi.cast("int * __ptr32", a)
    T.eq(lp[2], 30, "indexed: reads the element")
    lp[3] = 7
    T.eq(a[3], 7, "indexed: writes the element")
    T.eq((lp + 1)[0], 20, "through arithmetic")
    s.p = a
    T.eq(s.p[1], 20, "a member indexed")
    s.p[1] = 21
    T.eq(a[1], 21, "a member's element written")
    ffi.cdef [[struct cg_p32_pt { int x, y; };]]
    local pt = ffi.cast("struct cg_p32_pt * __ptr32", a)
    T.eq(pt.y, 21, "p.x through a 4-byte pointer to a struct")
    pt.x = 5
    T.eq(a[0], 5, "and written")
    T.eq(pt[0].y, 21, "p[0].y")
    ffi.metatype("struct cg_p32_pt", {
      __index = { sum = function(p) return p.x + p.y end },
      __tostring = function(p) return "pt " .. p.x end,
    })
    T.eq(pt:sum(), 26, "a metatype's method through a 4-byte pointer")
    T.eq(tostring(pt), "pt 5", "its __tostring")

    -- A 4-byte function pointer is called as the address it holds: `int f(int x)
    -- { return x + 1; }` copied into the low page (`lea eax, [rdi+1]; ret`, rcx on Windows),
    -- which is then made read+execute.
    local code = ffi.cast("uint8_t *", low) + 64
    local bytes = { 0x8d, ffi.os == "Windows" and 0x41 or 0x47, 0x01, 0xc3 }
    for i = 1, 4 do code[i - 1] = bytes[i] end
    local rx
    if ffi.os == "Linux" then
      ffi.cdef [[int mprotect(void *addr, size_t len, int prot);]]
      rx = ffi.C.mprotect(low, 4096, 5) == 0 -- PROT_READ|PROT_EXEC
    else
      ffi.cdef [[int VirtualProtect(void *addr, size_t len, uint32_t prot, uint32_t *old);]]
      rx = ffi.C.VirtualProtect(low, 4096, 0x20, ffi.new("uint32_t[1]")) ~= 0 -- PAGE_EXECUTE_READ
    end
    T.ok(rx, "the page made executable")
    if rx then
      local f32 = ffi.cast("int (* __ptr32)(int)", code)
      T.eq(f32(41), 42, "a call through a 4-byte function pointer")
      ffi.cdef [[struct cg_p32_fn { int (* __ptr32 f)(int); };]]
      local holder = ffi.new("struct cg_p32_fn", { ffi.cast("int (*)(int)", code) })
      T.eq(holder.f(1), 2, "through a 4-byte function pointer member")
    end
  end
  -- By value, a 4-byte pointer is a 4-byte unsigned integer (calltest.c declares these
  -- with unsigned int): the low 32 bits of a pointer go in, a 4-byte pointer comes out.
  ffi.cdef [[
  int * __ptr32 cg_p32_next(int * __ptr32 p);
  int * __ptr32 cg_p32_call(int * __ptr32 (*f)(int * __ptr32), int * __ptr32 p);
  ]]
  local function addr(p) return tonumber(ffi.cast("uintptr_t", ffi.cast("int *", p))) end
  local r = CT.cg_p32_next(ffi.cast("int *", 0x80001000))
  T.eq(addr(r), 0x80001004, "a __ptr32 argument and result (int * in, 4 bytes wide)")
  T.eq(addr(CT.cg_p32_next(ffi.cast("int *", 0x123456789))), 0x2345678d, "an int * argument is truncated to 32 bits")
  T.eq(addr(CT.cg_p32_next(ffi.cast("int * __ptr32", 0x1000))), 0x1004, "a __ptr32 cdata argument")
  T.eq(addr(CT.cg_p32_next(nil)), 4, "nil is NULL")
  T.eq(addr(CT.cg_p32_next(ffi.cast("int * __ptr32", -4))), 0, "NULL as a result")
  T.ok(CT.cg_p32_next(ffi.cast("int * __ptr32", -4)) == nil, "a NULL __ptr32 result == nil")
  local got
  local f = ffi.cast("int * __ptr32 (*)(int * __ptr32)", function(p)
    got = addr(p)
    return ffi.cast("int *", 0x123456780)
  end)
  T.eq(addr(CT.cg_p32_call(f, ffi.cast("int *", 0xfffffff0))), 0x23456780,
    "a callback's __ptr32 result is truncated to 32 bits")
  T.eq(got, 0xfffffff0, "its __ptr32 argument is zero-extended")
  f:free()
  T.ours("a __ptr32 call result is a __ptr32 cdata, nil for NULL (luaffi's NULL bridge)", function()
    T.str(ffi.typeof(CT.cg_p32_next(ffi.cast("int *", 0x1000))), "ctype<int *__ptr32>", "its type")
    T.eq(CT.cg_p32_next(ffi.cast("int * __ptr32", -4)), nil, "NULL is nil")
    local cb = ffi.cast("int * __ptr32 (*)(int * __ptr32)", function(p) got = p; return nil end)
    T.eq(CT.cg_p32_call(cb, nil), nil, "a callback's NULL __ptr32 argument is nil, its nil result NULL")
    T.eq(got, nil, "(the argument)")
    cb:free()
  end)
else
  T.str(ffi.typeof("int * __ptr32"), "ctype<int *>", "__ptr32 is every pointer on 32-bit targets")
  T.eq(ffi.sizeof("int * __ptr32"), 4, "4 bytes")
  T.str(ffi.typeof("int __ptr64"), "ctype<int>", "__ptr64 changes nothing there")
end

T.done("cparse_gaps.lua")
