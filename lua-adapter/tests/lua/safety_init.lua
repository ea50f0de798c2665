-- Conversions that must not accept what LuaJIT refuses (issue 14, §3).
local ffi = require "ffi"
local T = require "testlib"

-- ---- §3: what LuaJIT refuses ---------------------------------------------------------------

ffi.cdef "enum si_e { SI_A, SI_B }; struct si_s { int a; };"
local refused = {
  -- Only booleans, numbers and number-like cdata convert to bool.
  { "cannot convert 'string' to 'bool'", ffi.new, "bool", "false" },
  { "cannot convert 'string' to 'bool'", ffi.new, "bool", "" },
  { "cannot convert 'string' to 'bool'", ffi.cast, "bool", "x" },
  { "cannot convert 'nil' to 'bool'", function() return ffi.new("bool", nil) end },
  { "cannot convert 'nil' to 'bool'", function() return ffi.cast("bool", nil) end },
  { "cannot convert 'int *' to 'bool'", ffi.new, "bool", ffi.new("int *") },
  { "cannot convert 'void *' to 'bool'", ffi.cast, "bool", ffi.cast("void *", 1) },
  { "cannot convert 'int [2]' to 'bool'", ffi.new, "bool", ffi.new("int[2]") },
  { "cannot convert 'complex' to 'bool'", ffi.new, "bool", ffi.new("double complex", 1) },
  { "cannot convert 'int (*)()' to 'bool'", ffi.new, "bool", ffi.cast("int (*)(int)", 8) },
  { "cannot convert 'struct si_s' to 'bool'", ffi.new, "bool", ffi.new("struct si_s") },
  -- Booleans don't convert to pointers, even by a cast.
  { "cannot convert 'bool' to 'int *'", ffi.cast, "int *", true },
  { "cannot convert 'bool' to 'int *'", ffi.cast, "int *", false },
  { "cannot convert 'bool' to 'void *'", ffi.cast, "void *", ffi.new("bool", true) },
  { "cannot convert 'bool' to 'int (*)()'", ffi.cast, "int (*)(int)", true },
  -- ... nor to complex numbers.
  { "cannot convert 'bool' to 'complex'", ffi.new, "double complex", true },
  { "cannot convert 'bool' to 'complex'", ffi.new, "double complex", false },
  { "cannot convert 'bool' to 'complex float'", ffi.new, "float complex", true },
  { "cannot convert 'bool' to 'complex'", ffi.new, "double complex", ffi.new("bool", true) },
  { "cannot convert 'bool' to 'complex'", function() ffi.new("struct { double complex c; }").c = true end },
  -- An enum cdata is named by its integer type.
  { "cannot convert 'unsigned int' to 'int *'", ffi.new, "int *", ffi.new("enum si_e", 1) },
}
for i, c in ipairs(refused) do
  local last = 0
  for k in pairs(c) do last = math.max(last, k) end
  T.err(c[1], "refused #" .. i .. " " .. c[1], (table.unpack or unpack)(c, 2, last))
end

-- What LuaJIT accepts around those.
-- (A bool element reads back as a Lua boolean.)
local function as_bool(v) return ffi.new("bool[1]", v)[0] end
T.eq(as_bool(0) == false and as_bool(2) == true, true, "numbers to bool")
T.eq(as_bool(ffi.new("int64_t", 1)), true, "an int64_t cdata to bool")
T.eq(as_bool(ffi.new("double", 0.5)), true, "a double cdata to bool")
T.eq(as_bool(ffi.new("enum si_e", 1)), true, "an enum cdata to bool")
T.eq(tonumber(ffi.new("int", true)), 1, "true to int")
T.eq(tonumber(ffi.cast("double", false)), 0, "false to double")
T.eq(tostring(ffi.new("double complex", 2)), "2+0i", "a number to complex")
T.eq(tostring(ffi.new("double complex", { 1, 2 })), "1+2i", "a table to complex")
T.eq(tonumber(ffi.cast("intptr_t", ffi.cast("int *", 16))), 16, "a number cast to a pointer")

T.done("safety_init.lua")
