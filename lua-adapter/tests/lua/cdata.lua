-- cdata: ffi.new and initializers, field/element access with conversions, pointers,
-- ffi.cast, ffi.string, ffi.copy, ffi.fill, complex numbers, alignment, ffi.gc, tostring.
local ffi = require "ffi"
local T = require "testlib"

ffi.cdef [[
typedef struct cd_point { int x, y; } cd_point_t;
struct cd_rect { cd_point_t a, b; int tag[3]; };
struct cd_bits { int a:3; unsigned b:4; bool c:1; int d; };
struct cd_al16 { char c; int v __attribute__((aligned(16))); };
struct cd_dbl { char c; double d; };
struct cd_vls { int n; double d[?]; };
struct cd_const { const int k; int m; };
struct cd_mixed { char c; short s; int i; float f; double d; bool b; int64_t ll; uint64_t ull; void *p; };
union cd_u { int i; float f; unsigned char bytes[4]; };
struct cd_anon { int k; union { int ui; float uf; }; struct { int sx, sy; }; };
enum cd_e { CD_A = 1, CD_B = 7 };
struct cd_ewrap { enum cd_e e; };
]]

-- Zero fill.
local p = ffi.new("cd_point_t")
T.eq(p.x, 0, "new struct is zeroed x") T.eq(p.y, 0, "new struct is zeroed y")
local a = ffi.new("int[5]")
for i = 0, 4 do T.eq(a[i], 0, "new array zeroed [" .. i .. "]") end

-- Scalars: ffi.new(type, value) and tonumber.
T.eq(tonumber(ffi.new("int", 42)), 42, "int init")
T.eq(tonumber(ffi.new("double", 1.5)), 1.5, "double init")
T.eq(tonumber(ffi.new("float", 0.5)), 0.5, "float init")
T.eq(tonumber(ffi.new("bool", true)), 1, "bool init")
T.eq(tonumber(ffi.new("uint8_t", 300)), 44, "uint8_t wraps")
T.eq(tonumber(ffi.new("int8_t", 200)), -56, "int8_t wraps")
T.eq(tonumber(ffi.new("int16_t", 40000)), -25536, "int16_t wraps")
T.eq(tonumber(ffi.new("unsigned int", -1)), 4294967295, "unsigned int from -1")
T.eq(tonumber(ffi.new("int", 3.9)), 3, "double truncates toward zero")
T.eq(tonumber(ffi.new("int", -3.9)), -3, "negative truncates toward zero")
T.eq(tonumber(ffi.new("int", 2^31)), -2^31, "out of range int is INT_MIN (x86)")
T.eq(tonumber(ffi.new("unsigned int", 2^32 + 5)), 5, "unsigned int wraps mod 2^32")
T.eq(tonumber(ffi.new("float", 1e300)), math.huge, "float overflow is inf")
T.eq(tonumber(ffi.new("int", true)), 1, "int from true")
T.eq(tonumber(ffi.new("int", false)), 0, "int from false")
T.eq(tonumber(ffi.new("bool", 0.5)), 1, "bool from 0.5")
T.eq(tonumber(ffi.new("bool", 0)), 0, "bool from 0")
T.eq(tonumber(ffi.new("int", ffi.new("double", 7.9))), 7, "int from double cdata")
T.eq(tonumber(ffi.new("double", ffi.new("int", -7))), -7, "double from int cdata")
T.eq(tonumber(ffi.new("enum cd_e", "CD_B")), 7, "enum from its constant name")
T.eq(ffi.new("int*") == ffi.cast("int*", 0), true, "NULL pointer cdata")

-- Struct initializers: positional, by name, nested tables, partial.
local r = ffi.new("struct cd_rect", { { 1, 2 }, { x = 3, y = 4 }, { 5, 6, 7 } })
T.eq(r.a.x, 1, "nested positional a.x") T.eq(r.a.y, 2, "nested positional a.y")
T.eq(r.b.x, 3, "nested named b.x") T.eq(r.b.y, 4, "nested named b.y")
T.eq(r.tag[0], 5, "nested array [0]") T.eq(r.tag[2], 7, "nested array [2]")
local q = ffi.new("cd_point_t", 9)
T.eq(q.x, 9, "single initializer sets the first member") T.eq(q.y, 0, "rest is zero")
q = ffi.new("cd_point_t", 1, 2)
T.eq(q.y, 2, "multiple initializers fill members in order")
q = ffi.new("cd_point_t", { y = 5 })
T.eq(q.x, 0, "named init leaves others zero") T.eq(q.y, 5, "named init")
q = ffi.new("cd_point_t", { 8 })
T.eq(q.x, 8, "positional table first") T.eq(q.y, 0, "positional table rest zero")
q = ffi.new("cd_point_t", ffi.new("cd_point_t", 3, 4))
T.eq(q.y, 4, "struct from struct cdata copies")
local u = ffi.new("union cd_u", 65)
T.eq(u.i, 65, "union initializes its first member")
T.eq(u.bytes[0], 65, "union bytes alias")
local an = ffi.new("struct cd_anon", 1, 2, 3, 4)
T.eq(an.k, 1, "anon: k") T.eq(an.ui, 2, "anon union: first member only") T.eq(an.sx, 3, "anon struct sx") T.eq(an.sy, 4, "anon struct sy")
an = ffi.new("struct cd_anon", { k = 1, uf = 2.5, sy = 9 })
T.eq(an.uf, 2.5, "anon union member by name") T.eq(an.sy, 9, "anon struct member by name")

-- Array initializers.
local arr = ffi.new("int[4]", 7)
T.eq(arr[3], 7, "single initializer fills the array")
arr = ffi.new("int[4]", { 7 })
T.eq(arr[3], 7, "single-element table fills the array")
arr = ffi.new("int[4]", { 1, 2 })
T.eq(arr[1], 2, "table init") T.eq(arr[2], 0, "remainder zero")
arr = ffi.new("int[4]", 1, 2, 3)
T.eq(arr[2], 3, "multiple initializers") T.eq(arr[3], 0, "multiple: remainder zero")
arr = ffi.new("int[3]", { [0] = 10, 11, 12 })
T.eq(arr[0], 10, "0-based table [0]") T.eq(arr[2], 12, "0-based table [2]")
local vla = ffi.new("int[?]", 3, 4, 5, 6)
T.eq(vla[0], 4, "VLA init [0]") T.eq(vla[2], 6, "VLA init [2]")
T.str(ffi.typeof(vla), "ctype<int [?]>", "VLA type")
local vls = ffi.new("struct cd_vls", 2, { 2, { 1.5, 2.5 } })
T.eq(vls.n, 2, "VLS fixed part") T.eq(vls.d[1], 2.5, "VLS variable part")
local m = ffi.new("int[2][3]", { { 1, 2, 3 }, { 4, 5, 6 } })
T.eq(m[1][2], 6, "2-D array") T.eq(m[0][1], 2, "2-D array [0][1]")

-- Strings into char arrays.
local cs = ffi.new("char[8]", "hello")
T.eq(ffi.string(cs), "hello", "string into char array")
T.eq(cs[5], 0, "terminating NUL copied")
cs = ffi.new("char[3]", "abcdef")
T.eq(cs[0], 97, "truncated string [0]") T.eq(cs[2], 99, "truncated string has no NUL")
T.eq(ffi.string(ffi.new("char[?]", 4, "xy")), "xy", "string into char VLA")
T.eq(ffi.new("uint8_t[4]", "AB")[1], 66, "string into uint8_t array")

-- Field writes convert.
local mx = ffi.new("struct cd_mixed")
mx.c = 65; T.eq(mx.c, 65, "char field")
mx.c = 300; T.eq(mx.c, 44, "char field wraps")
mx.s = -2; T.eq(mx.s, -2, "short field")
mx.i = 2^31 + 1; T.eq(mx.i, -2^31, "int field out of range")
mx.f = 0.1; T.ok(mx.f ~= 0.1 and math.abs(mx.f - 0.1) < 1e-7, "float field rounds to single precision")
mx.d = 1 / 3; T.eq(mx.d, 1 / 3, "double field")
mx.b = true; T.eq(mx.b, true, "bool field true")
mx.b = 0; T.eq(mx.b, false, "bool field from 0")
mx.b = 2; T.eq(mx.b, true, "bool field from 2")
mx.p = nil; T.ok(mx.p == nil, "pointer field from nil")
mx.p = ffi.cast("void *", 0x1234); T.str(mx.p, "cdata<void *>: 0x00001234", "pointer field")
local ew = ffi.new("struct cd_ewrap")
ew.e = "CD_B"; T.eq(ew.e, 7, "enum field from a string")
ew.e = 1; T.eq(ew.e, 1, "enum field from a number")

-- Bit-fields.
local bf = ffi.new("struct cd_bits", -1, 31, true, 5)
T.eq(bf.a, -1, "signed bit-field sign-extends") T.eq(bf.b, 15, "unsigned bit-field keeps its width")
T.eq(bf.c, true, "bool bit-field") T.eq(bf.d, 5, "member after bit-fields")
bf.a = 3; T.eq(bf.a, 3, "bit-field write") T.eq(bf.b, 15, "neighbour untouched")
bf.a = 4; T.eq(bf.a, -4, "bit-field wraps into the sign bit")
bf.b = 16; T.eq(bf.b, 0, "unsigned bit-field wraps")
bf.c = false; T.eq(bf.c, false, "bool bit-field write")

-- Nested structs and arrays are references.
local rect = ffi.new("struct cd_rect")
local inner = rect.b
inner.x = 77
T.eq(rect.b.x, 77, "nested struct by reference")
local tag = rect.tag
tag[1] = 5
T.eq(rect.tag[1], 5, "nested array by reference")
T.like(rect.b, "^cdata<struct cd_point &>: 0x%x+$", "reference tostring")
T.like(rect.tag, "^cdata<int %(&%)%[3%]>: 0x%x+$", "array reference tostring")
rect.a = { 1, 2 }
T.eq(rect.a.y, 2, "assign a table to a struct member")
rect.a = ffi.new("cd_point_t", 5, 6)
T.eq(rect.a.x, 5, "assign a struct to a struct member")
do
  local keep = ffi.new("struct cd_rect").b
  collectgarbage(); collectgarbage()
  keep.y = 3
  T.eq(keep.y, 3, "a reference keeps its parent alive")
end
-- References share what keeps their parent alive (on 5.1/5.2 one table per parent, not
-- one per reference): each must still keep it alive alone, through a reference to a
-- reference too, and the parent must still be collected once no reference is left.
T.ours("LuaJIT's references do not keep their parent alive", function()
  local freed = 0
  local refs = {}
  do
    local arr = ffi.gc(ffi.new("struct cd_rect[4]"), function() freed = freed + 1 end)
    for i = 0, 3 do refs[#refs + 1] = arr[i] end
    refs[#refs + 1] = arr[2].b
    refs[#refs + 1] = refs[2].a
    arr[1].a.x = 41
  end
  collectgarbage(); collectgarbage()
  T.eq(freed, 0, "references keep a shared parent alive")
  local last = #refs
  for k = 1, last - 1 do
    refs[k] = nil
    collectgarbage(); collectgarbage()
    T.eq(freed, 0, "the last references keep it alive (" .. k .. " dropped)")
  end
  T.eq(refs[last].x, 41, "a reference to a reference reads its parent's bytes")
  refs[last].y = 5
  T.eq(refs[last].y, 5, "and writes them")
  refs = nil
  collectgarbage(); collectgarbage()
  T.eq(freed, 1, "the parent is collected with its last reference")
  local n = 0
  local junk
  for round = 1, 200 do
    local a = ffi.new("struct cd_rect[2]")
    a[0].b.x = round
    junk = a[0].b
    if round % 50 == 0 then collectgarbage() end
    n = n + junk.x
  end
  T.eq(n, 200 * 201 / 2, "references made and dropped in a loop")
end)

-- Pointers.
local ints = ffi.new("int[10]", { 0, 10, 20, 30, 40, 50, 60, 70, 80, 90 })
local ip = ffi.cast("int *", ints)
T.eq(ip[3], 30, "index a pointer")
ip[3] = 33; T.eq(ints[3], 33, "write through a pointer")
local ip2 = ip + 5
T.eq(ip2[0], 50, "pointer + n") T.eq((ip2 - 2)[0], 33, "pointer - n")
T.eq(ip2 - ip, 5, "pointer difference") T.eq(ip - ip2, -5, "negative pointer difference")
T.ok(ip < ip2, "pointer <") T.ok(ip2 > ip, "pointer >") T.ok(ip <= ip, "pointer <=")
T.ok(ip + 5 == ip2, "pointer equality") T.ok(ip ~= ip2, "pointer inequality")
T.eq((ints + 2)[0], 20, "array decays to pointer in arithmetic")
T.eq((1 + ip)[0], 10, "n + pointer")
T.str(ffi.typeof(ip + 1), "ctype<int *>", "pointer arithmetic type")
T.str(ffi.typeof(ints + 1), "ctype<int *>", "array arithmetic gives a pointer")
local pp = ffi.new("cd_point_t[2]", { { 1, 2 }, { 3, 4 } })
local ptp = ffi.cast("cd_point_t *", pp)
T.eq(ptp.y, 2, "p.field through a pointer (->)")
T.eq(ptp[1].x, 3, "p[i].field")
ptp[1].y = 40; T.eq(pp[1].y, 40, "write through p[i].field")
T.eq(ffi.cast("char *", ints)[4], 10, "cast int array to char * (little-endian)")
T.eq(tonumber(ffi.cast("intptr_t", ffi.cast("void *", 4096))), 4096, "pointer to integer cast")
T.str(ffi.cast("void *", 12345), "cdata<void *>: 0x00003039", "tostring of a pointer")
T.str(ffi.new("int *"), "cdata<int *>: NULL", "tostring of NULL")
T.ok(ffi.cast("void *", 0) == ffi.new("char *"), "NULL pointers of different types are equal")

-- ffi.cast.
T.eq(tonumber(ffi.cast("int", 3.9)), 3, "cast double to int")
T.eq(tonumber(ffi.cast("uint8_t", 300)), 44, "cast truncates")
T.eq(tonumber(ffi.cast("int8_t", ffi.new("int", 255))), -1, "cast int cdata to int8_t")
T.eq(tonumber(ffi.cast("int32_t", ffi.cast("uint32_t", 0xffffffff))), -1, "cast between signedness")
local same = ffi.new("int", 5)
T.ok(rawequal(ffi.cast("int", same), same), "cast to the same type returns the cdata")
T.str(ffi.cast("int *", 16) + 1, "cdata<int *>: 0x00000014", "cast number to pointer")
T.eq(tonumber(ffi.cast("double", ffi.new("int64_t", 3))), 3, "cast int64 to double")
T.eq(tonumber(ffi.cast("bool", 2)), 1, "cast to bool")

-- ffi.string, ffi.copy, ffi.fill.
T.eq(ffi.string("abc", 2), "ab", "string with length from a Lua string")
T.eq(ffi.string(ffi.new("char[4]", "xyz")), "xyz", "string to NUL")
T.eq(#ffi.string(ffi.new("char[4]"), 4), 4, "string with length includes NULs")
local buf = ffi.new("char[8]")
ffi.copy(buf, "hi")
T.eq(ffi.string(buf), "hi", "copy a Lua string with its NUL")
ffi.copy(buf, "abcdef", 3)
T.eq(ffi.string(buf, 4), "abc\0", "copy with a length")
local src = ffi.new("int[3]", 1, 2, 3)
local dst = ffi.new("int[3]")
ffi.copy(dst, src, ffi.sizeof(src))
T.eq(dst[2], 3, "copy between cdata")
ffi.fill(dst, ffi.sizeof(dst))
T.eq(dst[1], 0, "fill with zero")
ffi.fill(buf, 3, 65)
T.eq(ffi.string(buf, 3), "AAA", "fill with a byte")
ffi.fill(buf, 2, 0x141)
T.eq(buf[0], 0x41, "fill uses the low byte")

-- Complex numbers.
local c = ffi.new("complex", 1, -2)
T.eq(c.re, 1, "complex re") T.eq(c.im, -2, "complex im")
T.str(c, "1-2i", "tostring complex")
T.str(ffi.new("complex", 0.5, 1 / 0), "0.5+infI", "tostring complex inf")
T.str(ffi.new("complex float", 1.5, 2), "1.5+2i", "tostring complex float")
T.eq(ffi.new("complex float", 1.1, 2).re == 1.1, false, "complex float parts are floats")
T.eq(ffi.new("complex", 3).im, 0, "complex from a number: im 0")
T.eq(ffi.new("complex", { 4, 5 }).im, 5, "complex from a table")
T.eq(tonumber(ffi.new("complex", 3, 4)), 3, "tonumber complex is re")
local cst = ffi.new("struct { complex z; }", { { 1, 2 } })
T.eq(cst.z.im, 2, "complex member")
T.err("attempt to write to constant location", "complex parts are read-only", function() c.re = 5 end)

-- Alignment of cdata storage.
for i = 1, 20 do
  local al = ffi.new("struct cd_al16")
  local addr = tonumber(ffi.cast("uintptr_t", ffi.cast("void *", al)))
  T.eq(addr % 16, 0, "aligned(16) struct storage is 16-byte aligned #" .. i)
  local dbl = ffi.new("struct cd_dbl")
  T.eq(tonumber(ffi.cast("uintptr_t", ffi.cast("void *", dbl))) % ffi.alignof("double"), 0, "double struct aligned as double #" .. i)
  local junk = ffi.new("char[?]", i)
end

-- ffi.gc: finalizers run exactly once; ffi.gc(cd, nil) removes one.
local runs = 0
do
  local x = ffi.gc(ffi.new("int[4]"), function() runs = runs + 1 end)
  T.ok(ffi.istype("int[4]", x), "ffi.gc returns its cdata")
end
collectgarbage(); collectgarbage()
T.eq(runs, 1, "finalizer ran once")
collectgarbage(); collectgarbage()
T.eq(runs, 1, "finalizer did not run again")
do
  local y = ffi.gc(ffi.new("int[4]"), function() runs = runs + 100 end)
  ffi.gc(y, nil)
end
collectgarbage(); collectgarbage()
T.eq(runs, 1, "removed finalizer does not run")
local seen
do
  local z = ffi.gc(ffi.cast("void *", 0x10), function(v) seen = tostring(v) end)
end
collectgarbage(); collectgarbage()
T.eq(seen, "cdata<void *>: 0x00000010", "finalizer receives the cdata")

-- tostring of cdata.
T.like(ffi.new("int"), "^cdata<int>: 0x%x+$", "tostring int cdata")
T.like(ffi.new("cd_point_t"), "^cdata<struct cd_point>: 0x%x+$", "tostring struct cdata")
T.str(ffi.new("enum cd_e", 7), "cdata<enum cd_e>: 7", "tostring enum cdata")
T.str(ffi.typeof("cd_point_t *"), "ctype<struct cd_point *>", "tostring ctype")

-- 64-bit values read from memory: Lua integers on 5.3+ (deliberate), boxed on LuaJIT/5.1/5.2.
local w = ffi.new("struct cd_mixed", { ll = -5, ull = 7 })
if T.luajit or not math.type then
  T.str(w.ll, "-5LL", "int64 field is boxed") T.str(w.ull, "7ULL", "uint64 field is boxed")
else
  T.ours("64-bit reads are Lua integers on 5.3+", function()
    T.eq(math.type(w.ll), "integer", "int64 field is a Lua integer") T.eq(w.ll, -5, "int64 field value")
    T.eq(math.type(w.ull), "integer", "uint64 field is a Lua integer") T.eq(w.ull, 7, "uint64 field value")
    w.ull = ffi.new("uint64_t", 2^63 + 2^11)
    T.str(w.ull, "9223372036854777856ULL", "uint64 above maxinteger stays boxed")
    local big = ffi.new("int64_t[1]", math.maxinteger)
    T.eq(big[0], math.maxinteger, "int64 element exact at maxinteger")
    T.eq(ffi.new("int64_t", math.mininteger + 1) + 0 == ffi.new("int64_t", math.mininteger + 1), true, "integer init exact beyond 2^53")
  end)
end

-- Another library's userdata is never taken for a cdata (io.stdout is a full userdata).
T.ok(not ffi.istype("int", io.stdout), "a foreign userdata is not a cdata")
T.ok(not pcall(ffi.sizeof, io.stdout), "a foreign userdata is not a ctype")
T.ok(not pcall(function() return io.stdout + ffi.new("int", 1) end), "no arithmetic with a foreign userdata")

-- Floating-point members read and written by name (the fast path of __index/__newindex)
-- convert as any member does: float rounds, integers become doubles, const refuses, other
-- values take the general conversion, references and pointers reach the same bytes.
do
  ffi.cdef "struct cd_fl { float f; const double k; double d; struct { double inner; } n; };"
  local v = ffi.new("struct cd_fl", 0.5, 2.5, 0)
  v.f = 1 / 3
  T.eq(v.f, tonumber(ffi.new("float", 1 / 3)), "float member rounds to float")
  v.d = 7
  T.eq(v.d, 7, "an integer written to a double member")
  T.eq(math.type and math.type(v.d) or "float", "float", "a double member reads as a float")
  T.err("attempt to write to constant location", "const double member", function() v.k = 1 end)
  T.eq(v.k, 2.5, "const double member reads")
  v.d = ffi.new("int", 9)
  T.eq(v.d, 9, "a cdata number written to a double member")
  T.err("cannot convert 'string' to 'double'", "a string written to a double member", function() v.d = "x" end)
  v.n.inner = 4.25
  T.eq(v.n.inner, 4.25, "a member of a nested struct reference")
  local p = ffi.cast("struct cd_fl *", v)
  p.d = 3.5
  T.eq(v.d, 3.5, "through a pointer")
  local fa = ffi.new("float[3]", 0.25, 1 / 3, 3)
  T.eq(fa[1], tonumber(ffi.new("float", 1 / 3)), "a float array element")
  T.eq(fa[2.0], 3, "an element by an integral float key")
  local da = ffi.new("double[2]", 1.5, 2.5)
  local dp = ffi.cast("const double *", da) + 1
  T.eq(dp[-1], 1.5, "a double before a pointer") T.eq(dp[0], 2.5, "a double at a pointer")
  -- Two doubles before d, whatever d's offset is (12 on i386 Linux, where a double member is
  -- 4-aligned; 16 elsewhere).
  local d_at = ffi.offsetof("struct cd_fl", "d")
  T.eq(ffi.cast("double *", ffi.cast("char *", p) + d_at - 16)[2], 3.5, "a double member through a cast pointer")
  local cv = ffi.new("const struct cd_fl", 1, 2, 3)
  T.err("attempt to write to constant location", "member of a const struct", function() cv.d = 1 end)
end

-- The debug library can give another userdata a cdata's metatable (as it can any C library's,
-- whose luaL_checkudata then takes it for its own): that never makes a cdata of it larger than
-- its block. On 5.1-5.3 a struct value is told by its type's own metatable, so the block of a
-- file handle with a 64-byte struct's metatable is no cdata; elsewhere it has no header.
T.ours("LuaJIT's cdata metatable cannot be moved", function()
  ffi.cdef "typedef struct { double a[8]; } cd_big;"
  local big = ffi.new("cd_big")
  local f = io.tmpfile()
  local file_mt = debug.getmetatable(f)
  debug.setmetatable(f, debug.getmetatable(big))
  local ok, msg = pcall(function() return f.a end)
  debug.setmetatable(f, file_mt)
  f:close()
  T.ok(not ok and tostring(msg):find("cdata expected", 1, true) ~= nil,
    "a smaller userdata with a struct's metatable is not a cdata (" .. tostring(msg) .. ")")
  big.a[7] = 3
  T.eq(big.a[7], 3, "the struct itself is still one")
end)

T.done("cdata.lua")
