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

T.done("fields.lua")
