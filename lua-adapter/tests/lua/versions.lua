-- What differs between Lua 5.1, 5.2, 5.3, 5.4 and 5.5, and what the ffi module does on each.
-- Every branch on _VERSION is a documented difference (README, "Differences from LuaJIT").
local ffi = require "ffi"
local T = require "testlib"

local V = _VERSION
local has_integers = math.type ~= nil -- Lua 5.3+
local has_close = V == "Lua 5.4" or V == "Lua 5.5"

-- The module is per Lua state: requiring it again (after package.loaded.ffi = nil) gives a
-- new table over the same declarations and cdata. (LuaJIT instead re-initialises its C type
-- state there, forgetting earlier declarations.)
ffi.cdef [[ struct ver_rec { int64_t ll; uint64_t ull; int32_t i; double d; }; ]]
local s = ffi.new("struct ver_rec", { -5, 7, 3, 0.5 })
T.ours("re-require shares the state's types", function()
  local tonumber_before = tonumber
  package.loaded.ffi = nil
  local again = require "ffi"
  package.loaded.ffi = ffi
  T.ok(again ~= ffi, "require after package.loaded.ffi = nil builds a new table")
  T.eq(again.sizeof("struct ver_rec"), ffi.sizeof("struct ver_rec"), "... over the same declarations")
  T.ok(again.istype("struct ver_rec", s), "... which knows cdata made before")
  T.ok(tonumber == tonumber_before, "... and doesn't wrap tonumber a second time")
end)

-- 32-bit integers and doubles are plain Lua numbers on every version.
T.eq(type(s.i), "number", "int32 field is a number") T.eq(s.i, 3, "int32 field value")
T.eq(s.d, 0.5, "double field value")
if has_integers and not T.luajit then
  T.eq(math.type(s.i), "integer", "int32 reads are Lua integers on 5.3+")
  T.eq(math.type(s.d), "float", "double reads are floats")
  T.eq(math.type(ffi.sizeof("int")), "integer", "ffi.sizeof gives an integer on 5.3+")
end

-- type() of a cdata: LuaJIT has its own type, PUC Lua only has userdata.
if T.luajit then
  T.eq(type(s), "cdata", "type(cdata) on LuaJIT")
else
  T.ours("type(cdata) is 'userdata' on PUC Lua", function()
    T.eq(type(s), "userdata", "type(cdata)")
    T.eq(getmetatable(s), "ffi", "getmetatable(cdata) is protected as in LuaJIT")
  end)
end

-- 64-bit integers: boxed cdata on LuaJIT and 5.1/5.2; Lua integers on 5.3+ when exact.
if T.luajit or not has_integers then
  T.ok(ffi.istype("int64_t", s.ll), "int64 field is boxed") T.str(s.ll, "-5LL", "its value")
  T.ok(ffi.istype("uint64_t", s.ull), "uint64 field is boxed") T.str(s.ull, "7ULL", "its value")
  T.eq(tonumber(s.ll) + 1, -4, "tonumber unboxes it")
else
  T.ours("64-bit reads are Lua integers on 5.3+ when exact", function()
    T.eq(math.type(s.ll), "integer", "int64 field") T.eq(s.ll, -5, "int64 value")
    T.eq(math.type(s.ull), "integer", "uint64 field") T.eq(s.ull, 7, "uint64 value")
    s.ll = math.mininteger
    T.eq(s.ll, math.mininteger, "INT64_MIN round-trips as an integer")
    s.ull = math.maxinteger
    T.eq(s.ull, math.maxinteger, "UINT64 at maxinteger is still an integer")
    s.ull = ffi.new("uint64_t", -1)
    T.ok(ffi.istype("uint64_t", s.ull), "uint64 above maxinteger stays boxed")
    T.str(s.ull, "18446744073709551615ULL", "its value (-1 wraps)")
  end)
end

-- The global tonumber accepts numeric cdata on every version (LuaJIT's does natively).
T.eq(tonumber(ffi.new("int64_t", 42)), 42, "tonumber(int64 cdata)")
T.eq(tonumber(ffi.new("double", 1.5)), 1.5, "tonumber(double cdata)")
T.eq(tonumber("0x10"), 16, "tonumber of a string unchanged")
T.eq(tonumber("ff", 16), 255, "tonumber with a base unchanged")

-- NULL: LuaJIT compares a NULL pointer cdata equal to nil; PUC Lua never calls __eq for a
-- userdata and nil, so there `ptr == nil` is false: compare with ffi.cast("void *", 0) or use
-- `ptr == nil or ptr == NULL`-style helpers instead.
local null = ffi.cast("void *", 0)
if T.luajit then
  T.ok(null == nil, "LuaJIT: NULL == nil")
else
  T.ours("NULL == nil is false on PUC Lua (no __eq for userdata vs nil)", function()
    T.ok(null ~= nil, "NULL ~= nil")
    T.ok(null == ffi.new("char *"), "NULL == another NULL cdata")
    T.ok(null and true, "a NULL cdata is truthy, like any userdata")
  end)
end

-- __gc: ffi.gc finalizers and metatype __gc run on every version (cdata are userdata, whose
-- __gc Lua 5.1 already honours; tables only get __gc from 5.2, and cdata aren't tables).
local ran = 0
do
  local p = ffi.gc(ffi.new("int[4]"), function() ran = ran + 1 end)
  p = nil
end
collectgarbage() collectgarbage()
T.eq(ran, 1, "ffi.gc finalizer ran once after collection")

-- __pairs: honoured by pairs() on every version (Lua 5.1's own pairs takes tables only; the
-- module's global pairs sends cdata to their metatype).
ffi.cdef [[ struct ver_bag { int n; }; ]]
local bag = ffi.metatype("struct ver_bag", {
  __pairs = function(b) return function(_, k) if k < b.n then return k + 1, (k + 1) * 10 end end, b, 0 end,
})
local sum = 0
for k, v in pairs(bag(3)) do sum = sum + k + v end
T.eq(sum, 66, "pairs(cdata) uses the metatype's __pairs")

-- To-be-closed variables (Lua 5.4+): `local p <close> = ffi.gc(x, f)` runs f at scope exit,
-- once; a cdata without a finalizer is closable too (nothing happens).
if has_close and not T.luajit then
  local closed = 0
  local function count() closed = closed + 1 end
  local scoped = assert(load [[
    local ffi, count, fail = ...
    do
      local p <close> = ffi.gc(ffi.new("int[2]"), count)
      local q <close> = ffi.new("double")
    end
    if fail then
      local r <close> = ffi.gc(ffi.new("int[1]"), count)
      error("boom", 0)
    end
  ]])
  scoped(ffi, count, false)
  T.eq(closed, 1, "<close> ran the finalizer at scope exit")
  collectgarbage() collectgarbage()
  T.eq(closed, 1, "the collector doesn't run it again")
  local ok, err = pcall(scoped, ffi, count, true)
  T.eq(ok, false, "the error propagates") T.eq(err, "boom", "its message")
  T.eq(closed, 3, "<close> ran the finalizers when unwinding the error too")
  local kept = 0
  local removed = assert(load [[
    local ffi, count = ...
    local x = ffi.gc(ffi.new("int[1]"), count)
    do local p <close> = ffi.gc(x, nil) end
  ]])
  removed(ffi, function() kept = kept + 1 end)
  collectgarbage() collectgarbage()
  T.eq(kept, 0, "a finalizer removed with ffi.gc(x, nil) never runs")
elseif not T.luajit then
  local compile = loadstring or load -- 5.1's load takes a function, not a string
  T.ok(compile("local p <close> = nil") == nil, V .. " has no to-be-closed variables")
end

-- Lua 5.1/5.2 call __eq (5.1 also __lt/__le) only when both operands have the same
-- metamethod: a cdata with a finalizer (another metatable) must still compare with one without.
local with_fin = ffi.gc(ffi.cast("int *", 8), function() end)
T.ok(with_fin == ffi.cast("int *", 8), "pointer with a finalizer == pointer without")
T.ok(with_fin < ffi.cast("int *", 12), "pointer with a finalizer < pointer without")
T.ok(ffi.cast("int *", 4) <= with_fin, "pointer without a finalizer <= pointer with")

T.done("versions.lua")
