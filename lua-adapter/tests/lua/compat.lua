-- LuaJIT idioms that PUC Lua lacks, and the other FFIs' APIs (issue 17, parts 1, 3 and 4):
-- `require "bit"`, NULL pointers, cffi-lua/luaffi functions, pairs/ipairs, error names, enum
-- names as strings.
local T = require "testlib"
local ffi = require "ffi"

-- require "bit": LuaJIT's own under LuaJIT (the reference), the module's elsewhere when no
-- `bit` is installed.
local function LL(n) return ffi.new("int64_t", n) end
local function ULL(n) return ffi.new("uint64_t", n) end

do
  bit = require "bit"
  T.eq(type(bit), "table", "require 'bit' gives a table")
  T.eq(bit.tobit(2^32 + 5), 5, "tobit wraps modulo 2^32")
  T.eq(bit.tobit(0xffffffff), -1, "tobit is signed")
  T.eq(bit.tobit(1.5), 2, "tobit rounds half to even (1.5)")
  T.eq(bit.tobit(2.5), 2, "tobit rounds half to even (2.5)")
  T.eq(bit.tobit(-1.5), -2, "tobit rounds half to even (-1.5)")
  T.eq(bit.tobit("12"), 12, "tobit takes a numeric string")
  T.eq(bit.tobit(LL(0x100000001)), 1, "tobit of a cdata is a number")
  T.eq(bit.tohex(0x12345678), "12345678", "tohex default 8 digits")
  T.eq(bit.tohex(-1), "ffffffff", "tohex of -1")
  T.eq(bit.tohex(0x12345678, 2), "78", "tohex cuts to n digits")
  T.eq(bit.tohex(0x12345678, -4), "5678", "tohex negative n: upper case")
  T.eq(bit.tohex(0xabcdef, -6), "ABCDEF", "tohex upper case digits")
  T.eq(bit.tohex(-1, 9), "0ffffffff", "tohex pads past 8 digits")
  T.eq(bit.tohex(1, 0), "", "tohex with 0 digits")
  T.eq(bit.tohex(LL(-1)), "ffffffffffffffff", "tohex of a 64-bit cdata: 16 digits")
  T.eq(bit.tohex(LL(0x12345678) * 2^32 + 0x90abcdef, -20), "00001234567890ABCDEF", "tohex of a cdata, 20 digits")
  T.eq(bit.bnot(0), -1, "bnot")
  T.str(bit.bnot(LL(0)), "-1LL", "bnot of int64")
  T.str(bit.bnot(ULL(0)), "18446744073709551615ULL", "bnot of uint64")
  T.eq(bit.band(0xff, 0x0f, 0x3c), 0x0c, "band of three")
  T.eq(bit.bor(1, 2, 4), 7, "bor")
  T.eq(bit.bxor(1, 3, 7), 5, "bxor")
  T.eq(bit.band(-1, 0xffffffff), -1, "band result is signed")
  T.str(bit.band(LL(0x100000001), 0xffffffff), "1LL", "band with an int64 is 64-bit")
  T.str(bit.band(ffi.new("int", 5), 3), "1LL", "any numeric cdata makes it 64-bit")
  T.str(bit.bor(ffi.new("uint8_t", 1), 2), "3LL", "bor of a uint8_t cdata")
  T.str(bit.band(ULL(1), LL(1)), "1ULL", "uint64 wins")
  T.str(bit.band(LL(1), ULL(1)), "1ULL", "uint64 wins in second place")
  T.eq(bit.lshift(1, 33), 2, "lshift count modulo 32")
  T.str(bit.lshift(LL(1), 33), "8589934592LL", "lshift of int64, count modulo 64")
  T.eq(bit.lshift(1, LL(32)), 1, "a cdata count shifts a number on 32 bits")
  T.str(bit.rol(LL(1), 65), "2LL", "rol of int64")
  T.eq(bit.ror(1, 1), -2147483648, "ror")
  T.eq(bit.rol(0x12345678, 8), 0x34567812, "rol")
  T.eq(bit.arshift(-256, 4), -16, "arshift")
  T.eq(bit.rshift(-256, 4), 268435440, "rshift is logical")
  T.str(bit.arshift(LL(-256), 4), "-16LL", "arshift of int64")
  T.str(bit.rshift(LL(-256), 4), "1152921504606846960LL", "rshift of int64")
  T.eq(bit.bswap(0x12345678), 0x78563412, "bswap")
  T.str(bit.bswap(LL(0x1234)), "3752061439553044480LL", "bswap of int64")
  T.err("bad argument #1 (number expected, got no value)", "band without arguments", bit.band)
  T.err("bad argument #1 (number expected, got table)", "band of a table", bit.band, {})
  T.err("bad argument #2 (number expected, got no value)", "lshift without a count", bit.lshift, 1)
  T.err("bad argument #1 (number expected, got string)", "tobit of a word", bit.tobit, "x")
  T.err("bad argument #2 (cannot convert 'int *' to 'int64_t')", "band of a pointer", bit.band, 1, ffi.new("int *"))
  T.ok(require "bit" == bit, "require 'bit' twice gives the same table")

  -- An installed bit wins: package.preload (and every other searcher) comes first.
  local searchers = package.searchers or package.loaders
  local count = #searchers
  package.loaded.bit = nil
  package.preload.bit = function() return "installed bit" end
  T.eq(require "bit", "installed bit", "an installed bit is never overridden")
  package.preload.bit, package.loaded.bit = nil, bit
  package.loaded.ffi = nil
  T.ok(require "ffi" ~= nil, "require 'ffi' again")
  T.eq(#searchers, count, "require 'ffi' again adds no second searcher")
  package.loaded.ffi = ffi
  T.err("module 'no.such.module' not found:", "other names find nothing", function()
    local ok, msg = pcall(require, "no.such.module")
    error(msg:match("^[^\n]*"), 0)
  end)
end

-- Enum constant names as strings: arguments, field and element stores, initialisers, and
-- comparisons of an enum cdata with a name (`<`, `<=`: PUC Lua 5.2+ asks the metamethod about
-- a string; `==` between a userdata and a string it never does).
do
  ffi.cdef [[
    typedef enum compat_e { CE_I, CE_II, CE_III } compat_enum_t;
    struct compat_enums { compat_enum_t e; };
  ]]
  local s = ffi.new("struct compat_enums")
  s.e = "CE_II"
  T.ok(s.e == ffi.C.CE_II, "enum field store from a name")
  local a = ffi.new("compat_enum_t[2]")
  a[1] = "CE_III"
  T.ok(a[1] == ffi.C.CE_III, "enum element store from a name")
  T.ok(ffi.new("struct compat_enums", { e = "CE_III" }).e == ffi.C.CE_III, "enum initialiser from a name")
  T.eq(tonumber(ffi.new("compat_enum_t", "CE_II")), 1, "ffi.new of an enum from a name")
  T.eq(tonumber(ffi.cast("compat_enum_t", "CE_III")), 2, "ffi.cast of a name to an enum")
  local id = ffi.cast("int (*)(compat_enum_t)", function(e) return e end)
  T.eq(id("CE_III"), 2, "enum argument from a name")
  id:free()
  T.err("cannot convert 'string' to 'enum compat_e'", "an unknown name", function() s.e = "CE_IV" end)
  if T.luajit or _VERSION ~= "Lua 5.1" then
    local e = ffi.new("compat_enum_t", "CE_II")
    T.ok(e < "CE_III", "enum cdata < a name")
    T.ok(e <= "CE_II", "enum cdata <= a name")
    T.ok("CE_I" < e, "a name < enum cdata")
    T.ok(not (e < "CE_I"), "enum cdata not < a smaller name")
    T.err("cannot convert 'string' to 'enum compat_e'", "comparison with an unknown name", function() return e < "CE_IV" end)
  end
end

-- `$` parameters in cdef and typeof, as LuaJIT and cffi-lua take them: a ctype for a type, a
-- string for a name, a number for an integer.
do
  ffi.cdef("typedef struct { $ $; } compat_param_t;", ffi.typeof("int"), "field")
  T.eq(ffi.new("compat_param_t", 5).field, 5, "cdef with a type and a name parameter")
  local grid = ffi.typeof("uint8_t[$][$]", 2, 3)
  T.eq(ffi.sizeof(grid), 6, "typeof with integer parameters")
  T.like(ffi.typeof("$ *", ffi.typeof("compat_param_t")), "^ctype<struct %d+ %*>$", "typeof with a ctype parameter")
  T.eq(ffi.typeof("struct { int $; }", "x")({ x = 4 }).x, 4, "typeof with a name parameter")
  -- cffi-lua's parameterized tests: a struct tag and a typedef name, several members in one
  -- declaration, enumerator names and values.
  local t_short, t_str = ffi.typeof("short"), ffi.typeof("char const *")
  ffi.cdef([[
    typedef struct $ {
      $ $;
      $ $, $;
      $ $;
    } $;
  ]], "compat_pstruct", ffi.typeof("int"), "test1", t_short, "x", "y", t_str, "test2", "compat_pstruct_t")
  local x = ffi.new("compat_pstruct_t")
  x.test1, x.x, x.y, x.test2 = 1337, 5, 10, "test string"
  T.eq(x.test1 + x.x + x.y, 1352, "parameterized struct members")
  T.eq(ffi.string(x.test2), "test string", "a parameterized pointer member")
  T.eq(ffi.sizeof("struct compat_pstruct"), ffi.sizeof("struct { int x; short a, b; void *y; }"), "tag as a parameter")
  ffi.cdef("enum { $ = $, $ };", "COMPAT_FOO", 1337, "COMPAT_BAR")
  T.eq(ffi.C.COMPAT_FOO + ffi.C.COMPAT_BAR, 2675, "parameterized enumerators")
  ffi.cdef("int compat_pfunc($ a, $ *b);", t_short, ffi.typeof("struct compat_pstruct"))
  T.eq(ffi.sizeof(ffi.typeof("$[$]", ffi.typeof("compat_pstruct_t"), 3)), 3 * ffi.sizeof("compat_pstruct_t"), "an array of a parameter")
  T.eq(ffi.sizeof(ffi.typeof("$", ffi.new("int[3]"))), 12, "a cdata parameter names its type")
  -- A type parameter must be a ctype or cdata; a name a string; an integer a number.
  T.err("declaration specifier expected near '$'", "a string where a type is expected", ffi.typeof, "$ *", "int")
  T.err("'<identifier>' expected near '$'", "a number where a name is expected", ffi.typeof, "struct { int $; }", 5)
  T.err("wrong number of type parameters", "a missing parameter", ffi.typeof, "$ *")
end

-- Conversions between function pointer types (LuaJIT's lj_cconv_compatptr): a callback of
-- one signature goes where another with as many parameters is declared, e.g. a typed qsort
-- comparator. Other parameter counts are refused.
do
  ffi.cdef [[
    void qsort(void *base, size_t nmemb, size_t size, int (*compar)(const void *, const void *));
    struct compat_cmp_holder { int (*cmp)(const void *, const void *); };
  ]]
  local cmp = ffi.cast("int (*)(const double *, const double *)", function(a, b)
    return a[0] < b[0] and -1 or (a[0] > b[0] and 1 or 0)
  end)
  local a = ffi.new("double[5]", { 3, 1, 4, 1, 5 })
  ffi.C.qsort(a, 5, ffi.sizeof("double"), cmp)
  T.eq(string.format("%d%d%d%d%d", a[0], a[1], a[2], a[3], a[4]), "11345", "qsort with a 'const double *' comparator")
  local h = ffi.new("struct compat_cmp_holder")
  h.cmp = cmp
  T.ok(h.cmp ~= nil, "stored into a field of another pointer type")
  T.ok(ffi.new("int (*)(void *, void *)", cmp) ~= nil, "qualifiers of pointer parameters may differ")
  local nothing = ffi.cast("void (*)(const void *, const void *)", function() end)
  T.ok(ffi.new("int (*)(const void *, const void *)", nothing) ~= nil, "a void result where an int is declared")
  local one = ffi.cast("int (*)(const void *)", function() return 0 end)
  T.err("cannot convert 'int (*)(const void *)' to 'int (*)(const void *, const void *)'", "another parameter count",
    function() h.cmp = one end)
  T.ours("conversion errors name the parameters; signatures that are passed differently are refused", function()
    T.err_params("cannot convert 'int (*)(const void *)' to 'int (*)(const void *, const void *)'",
      "another parameter count, named", function() h.cmp = one end)
    local dd = ffi.cast("int (*)(double, double)", function() return 0 end)
    T.err_params("cannot convert 'int (*)(double, double)' to 'int (*)(const void *, const void *)'",
      "doubles where pointers are declared", function() h.cmp = dd end)
    ffi.cdef "struct compat_big { double a, b, c; };"
    local big = ffi.cast("struct compat_big (*)(const void *, const void *)", function() return { 1, 2, 3 } end)
    T.err_params("cannot convert 'struct compat_big (*)(const void *, const void *)' to 'int (*)(const void *, const void *)'",
      "a record result returned through a hidden pointer", function() h.cmp = big end)
    local va = ffi.cast("int (*)(const void *, ...)", ffi.cast("void *", 1))
    T.err_params("cannot convert 'int (*)(const void *, ...)' to 'int (*)(const void *)'", "variadic", ffi.new, "int (*)(const void *)", va)
    T.ok(ffi.cast("int (*)(const void *, const void *)", big) ~= nil, "ffi.cast converts any of them")
    dd:free()
    big:free()
  end)
  cmp:free()
  nothing:free()
  one:free()
end

-- NULL pointers read from C arrive as nil (call results, callback arguments, fields,
-- elements), so LuaJIT's `p == nil` works; pointers Lua makes stay cdata.
ffi.cdef [[
  char *getenv(const char *name);
  char *strchr(const char *s, int c);
  struct compat_pt { int x, y; void *p; };
]]
do
  T.ok(ffi.C.getenv("LUAFFI_NO_SUCH_VARIABLE") == nil, "NULL call result == nil")
  T.ok(ffi.C.strchr("abc", 98) ~= nil, "a non-NULL result ~= nil")
  T.eq(ffi.string(ffi.C.strchr("abc", 98)), "bc", "a non-NULL result is a pointer")
  local s = ffi.new("struct compat_pt")
  T.ok(s.p == nil, "NULL field == nil")
  T.ok(ffi.new("void *[2]")[1] == nil, "NULL element == nil")
  local seen
  local cb = ffi.cast("void *(*)(void *)", function(p) seen = (p == nil); return p end)
  T.ok(cb(nil) == nil, "NULL result of a callback called from Lua == nil")
  T.ok(seen, "NULL callback argument == nil")
  cb:free()
  T.ours("NULL read from C is nil; Lua-made NULL pointers stay cdata", function()
    T.eq(type(ffi.C.getenv("LUAFFI_NO_SUCH_VARIABLE")), "nil", "NULL call result is nil")
    T.eq(type(s.p), "nil", "NULL field is nil")
    T.eq(type(ffi.cast("void *", 0)), "userdata", "ffi.cast gives a NULL cdata")
    T.eq(type(ffi.new("void *")), "userdata", "ffi.new gives a NULL cdata")
    T.str(ffi.new("int *"), "cdata<int *>: NULL", "ffi.new pointer prints as NULL")
    T.eq(ffi.gc(ffi.C.getenv("LUAFFI_NO_SUCH_VARIABLE"), error), nil, "ffi.gc(nil, f) gives nil")
    s.p = ffi.cast("void *", 16)
    T.str(s.p, "cdata<void *>: 0x00000010", "a non-NULL field is a cdata")
  end)
end

-- cffi-lua's and luaffi's extensions.
T.ours("ffi.NULL, ffi.nullptr, ffi.addressof, ffi.toretval, ffi.eval, ffi.type, ffi.tonumber", function()
  T.str(ffi.NULL, "cdata<void *>: NULL", "ffi.NULL is a NULL void *")
  T.ok(ffi.nullptr == ffi.NULL, "ffi.nullptr is ffi.NULL")
  T.ok(ffi.NULL == ffi.cast("int *", 0), "ffi.NULL == a NULL pointer")
  T.ok(ffi.cast("char *", 0) == ffi.nullptr, "a NULL pointer == ffi.nullptr")
  T.ok(ffi.NULL ~= ffi.cast("void *", 1), "ffi.NULL ~= a non-NULL pointer")
  T.ok(ffi.new("int *") == ffi.NULL, "ffi.new's NULL == ffi.NULL")
  T.ok(ffi.NULL ~= nil, "ffi.NULL is a cdata, not nil")

  local s = ffi.new("struct compat_pt", 1, 2)
  local p = ffi.addressof(s)
  T.str(ffi.typeof(p), "ctype<struct compat_pt *>", "addressof gives a T *")
  p.y = 7
  T.eq(s.y, 7, "addressof points at the object")
  local a = ffi.new("struct compat_pt[2]")
  ffi.addressof(a[1]).x = 9
  T.eq(a[1].x, 9, "addressof of an element reference")
  T.eq(ffi.addressof(ffi.new("int", 3))[0], 3, "addressof of a scalar")
  T.err("bad argument #1 (cdata expected, got number)", "addressof of a number", ffi.addressof, 1)
  T.err("bad argument #1 (cdata expected, got ctype)", "addressof of a ctype", ffi.addressof, ffi.typeof("int"))

  T.eq(ffi.toretval(ffi.new("int", 5)), 5, "toretval of an int is a number")
  T.eq(ffi.toretval(ffi.new("bool", true)), true, "toretval of a bool is a boolean")
  T.eq(ffi.toretval(ffi.new("void *")), nil, "toretval of a NULL pointer is nil")
  T.eq(ffi.toretval(s).y, 7, "toretval of a struct is the struct")

  T.eq(ffi.type(1), "number", "ffi.type of a number")
  T.eq(ffi.type(nil), "nil", "ffi.type of nil")
  T.eq(ffi.type(ffi.new("int")), "cdata", "ffi.type of a cdata")
  T.eq(ffi.type(ffi.typeof("int")), "cdata", "ffi.type of a ctype")
  T.err("bad argument #1 (value expected)", "ffi.type()", ffi.type)

  T.str(ffi.eval("0xffffffffffffffffULL"), "18446744073709551615ULL", "ffi.eval of a uint64_t constant")
  T.str(ffi.eval("1LL << 40"), "1099511627776LL", "ffi.eval of an int64_t constant")
  T.ok(ffi.istype("int", ffi.eval("(3 + 4) * 2")), "ffi.eval of a small constant is an int")
  T.eq(tonumber(ffi.eval("(3 + 4) * 2")), 14, "ffi.eval computes")
  T.ok(ffi.istype("unsigned int", ffi.eval("0x80000000")), "ffi.eval: 0x80000000 is unsigned")
  ffi.cdef "enum { COMPAT_EV = 3 };"
  T.eq(tonumber(ffi.eval("COMPAT_EV * sizeof(int)")), 12, "ffi.eval sees declared constants")
  T.err("unexpected symbol near ')'", "ffi.eval of a broken expression", ffi.eval, "1 +")
  -- Floating constant expressions, as cffi-lua evaluates them: a double, or a float when
  -- only float constants (and integers) take part.
  T.ok(ffi.istype("double", ffi.eval("1.5")), "ffi.eval of a floating constant is a double")
  T.eq(tonumber(ffi.eval("1.5")), 1.5, "its value")
  T.ok(ffi.istype("float", ffi.eval("1.5f * 2")), "a float constant times an integer is a float")
  T.eq(tonumber(ffi.eval("1.5f * 2")), 3, "its value")
  T.eq(tonumber(ffi.eval("7 / 2 + 0.5")), 3.5, "integers divide as integers, as in C")
  T.eq(tonumber(ffi.eval("-(COMPAT_EV * 2.5e-1)")), -0.75, "a declared constant in a floating expression")
  T.err("unexpected symbol near '<<'", "floating expressions take + - * /", ffi.eval, "1.5 << 2")
  T.err("'1.5L' is a long double constant: the model has no long double", "long double constants", ffi.eval, "1.5L")
  T.err("missing declaration for symbol '__luaffi_eval'", "ffi.eval declares nothing", function() return ffi.C.__luaffi_eval end)
  T.eq(ffi.tonumber(ffi.new("int", 7)), 7, "ffi.tonumber of a cdata")
  T.eq(ffi.tonumber("0x10"), 16, "ffi.tonumber of a string")
  T.eq(ffi.tonumber("z", 36), 35, "ffi.tonumber with a base")
end)

-- pairs and ipairs honour a metatype's __pairs / __ipairs on every Lua version.
do
  ffi.cdef "struct compat_seq { int n; }"
  local function iter(scale)
    return function(s) return function(_, k) if k < s.n then return k + 1, (k + 1) * scale end end, s, 0 end
  end
  local seq = ffi.metatype("struct compat_seq", { __pairs = iter(10), __ipairs = iter(100) })
  local got = {}
  for k, v in pairs(seq(3)) do got[#got + 1] = k .. ":" .. v end
  for k, v in ipairs(seq(2)) do got[#got + 1] = k .. ":" .. v end
  T.eq(table.concat(got, " "), "1:10 2:20 3:30 1:100 2:200", "__pairs and __ipairs")
  T.err("'int [2]' has no '__pairs' metamethod", "pairs without __pairs", pairs, ffi.new("int[2]"))
  T.err("'int' has no '__ipairs' metamethod", "ipairs without __ipairs", ipairs, ffi.new("int *"))
  local n = 0
  for _ in pairs({ a = 1, b = 2 }) do n = n + 1 end
  for _ in ipairs({ 1, 2, 3 }) do n = n + 1 end
  T.eq(n, 5, "pairs and ipairs of tables")
end

-- Errors name the function the program called (LuaJIT's fast functions say '?').
T.ours("error names", function()
  local function msg(f, ...) return select(2, pcall(f, ...)) end
  T.like(msg(function() return tonumber() end), "^compat%.lua:%d+: bad argument #1 to 'tonumber' %(value expected%)$", "tonumber()")
  T.like(msg(function() return tonumber("z", 99) end), "bad argument #2 to 'tonumber' %(base out of range%)$", "tonumber base")
  T.like(msg(function() return ffi.string() end), "bad argument #1 to 'string' %(value expected%)$", "ffi.string()")
  T.like(msg(function() return ipairs() end), "bad argument #1 to 'ipairs'", "ipairs()")
  T.like(msg(function() return pairs() end), "bad argument #1 to 'pairs'", "pairs()")
  T.like(msg(function() return bit.band({}) end), "bad argument #1 to 'band' %(number expected, got table%)$", "bit.band")
  T.like(msg(function() return tonumber(nil) end), "^nil$", "tonumber(nil) raises nothing")
end)

T.done("compat.lua")
