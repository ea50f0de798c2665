-- fields: numeric members read and written again and again, as a loop does. The first
-- access of a (type, key) takes the general metamethod; later ones take luaffi's inline
-- paths (surface/fast.rs), which must answer exactly as the first: every check below runs
-- each access three times.
local ffi = require "ffi"
local T = require "testlib"

ffi.cdef [[
typedef struct fl_all { double d; float f; int8_t i8; uint8_t u8; int16_t i16; uint16_t u16;
  int32_t i32; uint32_t u32; int64_t i64; uint64_t u64; bool b; int bits:5; } fl_all;
typedef struct fl_packed { char c; double d; int i; } __attribute__((packed)) fl_packed;
typedef struct fl_k { const int k; int m; } fl_k;
typedef union fl_u { int32_t i; float f; } fl_u;
typedef struct fl_m { int a, b; } fl_m;
typedef struct fl_other { double a; int b; } fl_other;
]]

local function thrice(name, f)
  for round = 1, 3 do f(name .. " (round " .. round .. ")") end
end

-- Writes of every kind of Lua number into every numeric member, read back.
local s = ffi.new("fl_all")
local writes = {
  { "d", 1.5, 1.5 }, { "d", 7, 7 }, { "d", -2 ^ 60, -2 ^ 60 },
  { "f", 0.1, 0.10000000149011612 }, { "f", 3, 3 }, { "f", 1e300, math.huge },
  { "i8", 200, -56 }, { "i8", -3.9, -3 }, { "u8", 300, 44 }, { "u8", -1, 255 },
  { "i16", 40000, -25536 }, { "u16", -1, 65535 }, { "u16", 65535.9, 65535 },
  { "i32", 3.9, 3 }, { "i32", -3.9, -3 }, { "i32", 2 ^ 31, -2 ^ 31 }, { "i32", 2 ^ 32 + 5, -2 ^ 31 },
  { "u32", -1, 4294967295 }, { "u32", 2 ^ 32 + 5, 5 }, { "u32", 4294967295.5, 4294967295 },
}
for _, w in ipairs(writes) do
  local key, value, want = w[1], w[2], w[3]
  thrice(key .. " = " .. tostring(value), function(name)
    s[key] = value
    T.eq(s[key], want, name)
  end)
end
thrice("int64_t member", function(name)
  s.i64 = -5
  T.eq(tonumber(s.i64), -5, name)
  s.i64 = 2 ^ 40
  T.eq(tonumber(s.i64), 2 ^ 40, name .. " 2^40")
end)
thrice("uint64_t member above the largest integer is boxed", function(name)
  s.u64 = 2 ^ 63 + 2 ^ 12
  T.eq(tostring(s.u64), "9223372036854779904ULL", name)
end)
thrice("bool member", function(name)
  s.b = 5
  T.eq(s.b, true, name)
end)
thrice("bit-field member", function(name)
  s.bits = 17
  T.eq(s.bits, -15, name)
end)
T.ours("Lua integers in 64-bit members (luaffi on Lua 5.3+)", function()
  if math.type then
    thrice("int64_t takes a Lua integer exactly", function(name)
      s.i64 = math.maxinteger
      T.eq(s.i64, math.maxinteger, name)
      s.u64 = 12345
      T.eq(s.u64, 12345, name .. " uint64_t")
    end)
    thrice("an integer converts to int32_t modulo 2^32", function(name)
      s.i32 = 0x100000007
      T.eq(s.i32, 7, name)
    end)
  end
end)

-- A string, a boolean, a table into a number member: the general path's errors.
thrice("a string into a double member", function(name)
  T.err("cannot convert 'string' to 'double'", name, function() s.d = "x" end)
end)
thrice("a table into an int member", function(name)
  T.err("cannot convert 'table' to 'int'", name, function() s.i32 = {} end)
end)
thrice("true into an int member", function(name)
  s.i32 = true
  T.eq(s.i32, 1, name)
end)

-- Packed (unaligned) members, unions.
local pk = ffi.new("fl_packed")
thrice("packed double", function(name)
  pk.d = 2.25
  pk.i = -9
  T.eq(pk.d, 2.25, name)
  T.eq(pk.i, -9, name .. " int")
end)
local u = ffi.new("fl_u")
thrice("union members share bytes", function(name)
  u.f = 1
  T.eq(u.i, 0x3f800000, name)
end)

-- References (array elements), pointers, const.
local arr = ffi.new("fl_m[3]")
thrice("array element members", function(name)
  for i = 0, 2 do arr[i].a = i * 10; arr[i].b = -i end
  T.eq(arr[2].a, 20, name)
  T.eq(arr[1].b, -1, name .. " b")
end)
local p = ffi.cast("fl_m *", arr)
thrice("members through a pointer", function(name)
  p.b = 99
  T.eq(arr[0].b, 99, name)
  T.eq(p.a, 0, name .. " read")
  T.eq((p + 2).a, 20, name .. " another pointer")
end)
local cp = ffi.cast("const fl_m *", arr)
thrice("members through a pointer to const", function(name)
  T.eq(cp.b, 99, name)
  T.err("attempt to write to constant location", name .. " write", function() cp.b = 1 end)
end)
local k = ffi.new("fl_k", 4, 5)
thrice("const member", function(name)
  T.eq(k.k, 4, name)
  T.err("attempt to write to constant location", name .. " write", function() k.k = 1 end)
  k.m = 6
  T.eq(k.m, 6, name .. " the other member")
end)
local cs = ffi.new("const fl_m", 1, 2)
thrice("const record", function(name)
  T.eq(cs.b, 2, name)
  T.err("attempt to write to constant location", name .. " write", function() cs.b = 1 end)
end)

-- One key, several types; one type, keys made at run time and collected between uses.
local o = ffi.new("fl_other", 0.5, 3)
local m = ffi.new("fl_m", 8, 9)
thrice("one key names different members in different types", function(name)
  T.eq(o.a, 0.5, name)
  T.eq(m.a, 8, name .. " other type")
  T.eq(o.b, 3, name .. " b")
  T.eq(m.b, 9, name .. " other type b")
end)
for round = 1, 200 do
  local key = string.char(96 + round % 2 + 1) -- "a" or "b", made anew
  local want = key == "a" and 8 or 9
  if m[key] ~= want then T.eq(m[key], want, "keys made at run time") break end
  if round % 50 == 0 then collectgarbage() end
end
T.ok(true, "keys made at run time")
thrice("no such member", function(name)
  T.err("'struct fl_m' has no member named 'c'", name, function() return m.c end)
  T.err("'struct fl_m' has no member named 'c'", name .. " write", function() m.c = 1 end)
end)

-- A ctype object is not its value: its members are not readable through it.
local ct = ffi.typeof("fl_m")
thrice("a ctype object has no member values", function(name)
  T.err("'struct fl_m' has no member named 'a'", name, function() return ct.a end)
end)

-- Members come before a metatype's __index; other keys go to it.
ffi.cdef "typedef struct fl_mt { double x; } fl_mt;"
local mt = ffi.metatype("fl_mt", { __index = { x = "metatype", len = function(v) return v.x * 2 end } })
local v = mt(1.25)
thrice("members before the metatype", function(name)
  T.eq(v.x, 1.25, name)
  T.eq(v:len(), 2.5, name .. " method")
end)

-- Elements: `c[i]` with a number key on an array or pointer of numbers is read and written
-- inline from the first access (issue 18); it must answer as the general path did.
ffi.cdef [[
typedef struct fl_e { int a[2]; int b; } fl_e;
typedef struct fl_pt { double x, y; } fl_pt;
typedef struct fl_emt { double x; } fl_emt;
typedef int fl_v4 __attribute__((vector_size(16)));
]]
local kinds = {
  { "double", 1.5, 1.5 }, { "float", 0.1, 0.10000000149011612 }, { "int8_t", 200, -56 },
  { "uint8_t", -1, 255 }, { "int16_t", 40000, -25536 }, { "uint16_t", 65535.9, 65535 },
  { "int32_t", -3.9, -3 }, { "uint32_t", -1, 4294967295 }, { "int", 2 ^ 31, -2 ^ 31 },
}
for _, kd in ipairs(kinds) do
  local ty, value, want = kd[1], kd[2], kd[3]
  local a = ffi.new(ty .. "[4]")
  local vla = ffi.new(ty .. "[?]", 4)
  local p = ffi.cast(ty .. " *", a)
  thrice(ty .. " elements", function(name)
    a[2] = value
    T.eq(a[2], want, name)
    T.eq(p[2], want, name .. " through a pointer")
    p[1] = value
    T.eq(a[1], want, name .. " written through a pointer")
    vla[3] = value
    T.eq(vla[3], want, name .. " VLA")
    T.eq(a[0], 0, name .. " untouched")
  end)
end
-- The bytes read are the element's: changed behind the element's back, the read follows.
local ds = ffi.new("double[3]", 1, 2, 3)
local dbytes = ffi.cast("uint8_t *", ds)
thrice("an element read is its bytes now", function(name)
  ds[1] = 2
  T.eq(ds[1], 2, name)
  dbytes[8 + 7] = 0x40 -- 2.0 is 0x4000000000000000; the top byte stays: set bit 62 again
  dbytes[8 + 6] = 0x08 -- 0x4008000000000000 is 3.0
  T.eq(ds[1], 3, name .. " after a byte write")
  T.eq(ds[0], 1, name .. " the element before")
  T.eq(ds[2], 3, name .. " the element after")
end)
local dp = ffi.cast("const double *", ds)
thrice("const double * elements (the qsort comparator's p[0])", function(name)
  T.eq(dp[0], 1, name)
  T.eq(dp[2], 3, name .. " [2]")
  T.err("attempt to write to constant location", name .. " write", function() dp[0] = 5 end)
  T.eq(dp[0], 1, name .. " unchanged")
end)
local ia = ffi.new("int[5]", 10, 11, 12, 13, 14)
local mid = ffi.cast("int *", ia) + 2
thrice("negative and float indices", function(name)
  T.eq(mid[-2], 10, name .. " [-2]")
  T.eq(mid[-1], 11, name .. " [-1]")
  T.eq(ia[1.5], 11, name .. " [1.5] truncates")
  T.eq(ia[2.99], 12, name .. " [2.99]")
  T.eq(ia[-0.5], 10, name .. " [-0.5] truncates to 0")
  T.eq(mid[-1.5], 11, name .. " [-1.5] through a pointer")
  mid[-1.5] = 21
  T.eq(ia[1], 21, name .. " written at [-1.5]")
  ia[1] = 11
  T.eq(ia[ffi.new("int", 3)], 13, name .. " integer cdata key")
end)
-- No extent is checked, by LuaJIT or by the general path: `a[2]` of `int a[2]` is `b`.
local e = ffi.new("fl_e", { { 1, 2 }, 3 })
thrice("an array member's extent is not checked", function(name)
  T.eq(e.a[2], 3, name)
  e.a[2] = 4
  T.eq(e.b, 4, name .. " write")
  e.b = 3
end)
thrice("const and vector elements are read-only", function(name)
  local ca = ffi.new("const int[2]", 5, 6)
  T.eq(ca[1], 6, name)
  T.err("attempt to write to constant location", name .. " const array", function() ca[1] = 1 end)
  local v4 = ffi.new("fl_v4", 1, 2, 3, 4)
  T.eq(v4[3], 4, name .. " vector")
  T.err("attempt to write to constant location", name .. " vector write", function() v4[0] = 1 end)
end)
thrice("other element kinds and values take the general path", function(name)
  local b = ffi.new("bool[2]", true)
  T.eq(b[0], true, name .. " bool")
  local u = ffi.new("uint64_t[1]")
  u[0] = ffi.new("uint64_t", 2 ^ 63 + 2 ^ 12)
  T.eq(tostring(u[0]), "9223372036854779904ULL", name .. " uint64_t above the largest integer")
  local i64 = ffi.new("int64_t[1]", -5)
  T.eq(tonumber(i64[0]), -5, name .. " int64_t")
  T.err("cannot convert 'string' to 'double'", name .. " a string value", function() ds[0] = "x" end)
  ds[0] = 1
  T.err("'double [3]' cannot be indexed with 'boolean'", name .. " a boolean key", function() return ds[true] end)
  T.err("'double [3]' has no member named 'x'", name .. " a string key", function() return ds.x end)
  local ok, msg = pcall(function() return ffi.typeof("double[3]")[0] end)
  T.eq(ok, false, name .. " a ctype object")
  T.like(msg, "cannot be indexed with 'number'", name .. " a ctype object's error")
end)

-- Record elements: a reference to the element, keeping an array alive.
local pts = ffi.new("fl_pt[3]")
local ppt = ffi.cast("fl_pt *", pts)
thrice("record elements", function(name)
  for i = 0, 2 do pts[i].x = i; pts[i].y = -i end
  T.eq(pts[2].x, 2, name)
  T.eq(ppt[1].y, -1, name .. " through a pointer")
  T.eq(ffi.istype("fl_pt", pts[1]), true, name .. " type")
  T.eq(ffi.istype("fl_pt", ppt[1]), true, name .. " type through a pointer")
  T.eq(ffi.cast("char *", pts[1]) - ffi.cast("char *", pts), ffi.sizeof("fl_pt"), name .. " address")
  local r = ffi.new("fl_pt[2]", { { 7, 8 }, { 9, 10 } })[1]
  collectgarbage()
  collectgarbage()
  T.eq(r.x, 9, name .. " the reference keeps its array alive")
end)
local emt = ffi.metatype("fl_emt", { __index = { twice = function(v) return v.x * 2 end } })
local ems = ffi.new("fl_emt[2]", { { 1 }, { 4 } })
thrice("record elements keep the metatype", function(name)
  T.eq(ems[1]:twice(), 8, name)
  T.eq(ffi.istype(emt, ems[0]), true, name .. " istype")
end)

T.done("fields.lua")
