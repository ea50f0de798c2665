-- Smoke test of an installed module: a declaration, calls into the C library, a Lua callback
-- called by C, a struct (made in Lua, and returned by value from C). Needs only the C
-- library every host has (strlen, abs, div, qsort) and testlib.lua beside it: the install
-- tests of the rocks run it (`cargo xtask test-all-abis`, xtask/src/dist.rs) with the Lua
-- and the ffi.so a rock installed, and it runs with the rest of the suite everywhere.
local ffi = require "ffi"
local T = require "testlib"

ffi.cdef [[
size_t strlen(const char *s);
int abs(int x);
typedef struct { int quot, rem; } smoke_div_t;
smoke_div_t div(int num, int den);
void qsort(void *base, size_t n, size_t size, int (*compare)(const void *, const void *));
struct smoke_point { double x, y; int32_t tag, flags; };
]]

-- Calls.
T.eq(tonumber(ffi.C.strlen("luaffi smoke")), 12, "strlen of a Lua string")
T.eq(ffi.C.abs(-42), 42, "abs")

-- A struct returned by value.
local d = ffi.C.div(47, 5)
T.eq(d.quot, 9, "div quot (struct returned by value)")
T.eq(d.rem, 2, "div rem")

-- A struct made in Lua: layout (the same on every host: i386 Linux aligns a double member
-- to 4, the others to 8), fields, an array of them.
T.eq(ffi.sizeof("struct smoke_point"), 24, "sizeof struct")
T.eq(ffi.offsetof("struct smoke_point", "tag"), 16, "offsetof")
local p = ffi.new("struct smoke_point", 1.5, -2, 7, 1)
p.y = p.y * 2
T.eq(p.x + p.y, -2.5, "fields read and written")
T.eq(p.tag + p.flags, 8, "int32_t fields")
local points = ffi.new("struct smoke_point[3]", { { 1 }, { 2 }, { 3 } })
T.eq(points[2].x, 3, "array of structs")

-- A Lua callback called by C: qsort with a Lua comparator.
local n = 100
local numbers = ffi.new("int[?]", n)
for i = 0, n - 1 do
  numbers[i] = (i * 37) % n
end
local calls = 0
local compare = ffi.cast("int (*)(const void *, const void *)", function(a, b)
  calls = calls + 1
  local x, y = ffi.cast("const int *", a)[0], ffi.cast("const int *", b)[0]
  return x < y and -1 or (x > y and 1 or 0)
end)
ffi.C.qsort(numbers, n, ffi.sizeof("int"), compare)
compare:free()
local sorted = true
for i = 0, n - 1 do
  sorted = sorted and numbers[i] == i
end
T.ok(sorted, "qsort with a Lua comparator sorted")
T.ok(calls >= n - 1, "the comparator was called from C")

print(("smoke: %s with ffi on %s/%s: strlen, abs, div, struct, qsort callback (%d calls)"):format(
  _VERSION, ffi.os, ffi.arch, calls))
T.done("smoke.lua")
