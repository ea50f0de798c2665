-- Exact error text for bad input, as LuaJIT words it (see T.normalize for what is not
-- compared: the caller's position, the function name in "bad argument", cdef line:col).
local ffi = require "ffi"
local T = require "testlib"

ffi.cdef [[
struct er_s { int x; const int k; int arr[2]; };
struct er_t { double d; };
typedef struct er_s er_s_t;
enum er_e { ER_A, ER_B };
struct er_v { int n; int d[?]; };
]]

local s = ffi.new("struct er_s")
local cases = {
  -- Bad declarations (cdef and type names).
  { "'<eof>' expected near 'int'", ffi.typeof, "int int" },
  { "undeclared or implicit tag 'nope'", ffi.sizeof, "struct nope" },
  { "undeclared or implicit tag 'nope'", ffi.new, "struct nope" },
  { "undeclared or implicit tag 'nope'", ffi.alignof, "struct nope *" },
  { "bad argument #1 (C type expected, got number)", ffi.typeof, 5 },
  { "bad argument #1 (C type expected, got no value)", ffi.new },
  { "bad argument #1 (C type expected, got table)", ffi.sizeof, {} },
  { "bad argument #1 (C type expected, got nil)", ffi.cast, nil, 1 },
  -- Wrong initializers.
  { "cannot convert 'table' to 'int'", ffi.new, "int", {} },
  { "cannot convert 'number' to 'int *'", ffi.new, "int *", 5 },
  { "cannot convert 'string' to 'int'", ffi.new, "int", "abc" },
  { "cannot convert 'string' to 'int *'", ffi.new, "int *", "x" },
  { "cannot convert 'string' to 'char *'", ffi.new, "char *", "x" },
  { "cannot convert 'nil' to 'int'", function() return ffi.new("int", nil) end },
  { "cannot convert 'bool' to 'int *'", ffi.new, "int *", true },
  { "cannot convert 'function' to 'int'", ffi.new, "int", print },
  { "cannot convert 'string' to 'enum er_e'", ffi.new, "enum er_e", "ER_C" },
  { "cannot convert 'nil' to 'unsigned int'", function() return ffi.new("enum er_e", nil) end },
  { "cannot convert 'int *' to 'double'", ffi.new, "double", ffi.new("int *") },
  { "cannot convert 'int *' to 'int'", ffi.new, "int", ffi.new("int *") },
  { "cannot convert 'struct er_t' to 'int'", ffi.new, "struct er_s", ffi.new("struct er_t") },
  { "cannot convert 'struct er_s' to 'struct er_t'", function() ffi.new("struct { struct er_t t; }").t = s end },
  { "cannot convert 'int [3]' to 'double *'", ffi.new, "double *", ffi.new("int[3]") },
  { "cannot convert 'const int *' to 'int *'", ffi.new, "int *", ffi.new("const int *") },
  { "cannot convert 'char *' to 'int *'", ffi.new, "int *", ffi.new("char *") },
  { "cannot convert 'table' to 'int *'", ffi.new, "int *", {} },
  { "cannot convert 'number' to 'struct er_t'", ffi.new, "struct er_t[1]", { 1 } },
  { "too many initializers for 'int [2]'", ffi.new, "int[2]", 1, 2, 3 },
  { "too many initializers for 'int [2]'", ffi.new, "int[2]", { 1, 2, 3 } },
  { "too many initializers for 'struct er_t'", ffi.new, "struct er_t", 1, 2 },
  { "too many initializers for 'int'", ffi.new, "int", 1, 2 },
  { "bad argument #2 (value expected)", ffi.new, "int[?]" },
  { "bad argument #2 (value expected)", ffi.new, "struct er_v" },
  { "bad argument #1 (size of C type is unknown or too large)", ffi.new, "int[?]", -1 },
  { "bad argument #1 (size of C type is unknown or too large)", ffi.new, "void" },
  { "bad argument #1 (size of C type is unknown or too large)", ffi.new, "int[]" },
  { "bad argument #2 (cannot convert 'table' to 'int')", ffi.new, "int[?]", {} },
  -- Bad casts.
  { "bad argument #1 (invalid C type)", ffi.cast, "struct er_t", 1 },
  { "bad argument #1 (invalid C type)", ffi.cast, "int[3]", 1 },
  { "bad argument #2 (value expected)", ffi.cast, "int" },
  { "cannot convert 'table' to 'int *'", ffi.cast, "int *", {} },
  { "cannot convert 'struct er_t' to 'int'", ffi.cast, "int", ffi.new("struct er_t") },
  -- Other ffi functions.
  { "bad argument #1 (cannot convert 'number' to 'const char *')", ffi.string, 5 },
  { "bad argument #1 (cannot convert 'table' to 'const void *')", ffi.string, {}, 3 },
  { "bad argument #1 (value expected)", ffi.string },
  { "bad argument #2 (value expected)", ffi.copy, ffi.new("int[2]") },
  { "bad argument #2 (value expected)", ffi.fill, ffi.new("int[2]") },
  { "bad argument #1 (cannot convert 'number' to 'void *')", ffi.fill, 5, 1 },
  { "bad argument #1 (cannot convert 'const char *' to 'void *')", ffi.copy, ffi.new("const char *"), "x" },
  { "bad argument #1 (invalid C type)", ffi.metatype, "int", {} },
  { "bad argument #1 (invalid C type)", ffi.gc, ffi.new("int"), print },
  { "bad argument #1 (cdata expected, got number)", ffi.gc, 5, print },
  { "bad argument #2 (value expected)", ffi.gc, ffi.new("int *") },
  { "bad argument #2 (value expected)", ffi.istype, "int" },
  { "bad argument #1 (cannot convert 'table' to 'int')", ffi.errno, {} },
  -- Indexing.
  { "'struct er_s' has no member named 'y'", function() return s.y end },
  { "'struct er_s' has no member named 'y'", function() s.y = 1 end },
  { "'struct er_s' has no member named 'y'", function() return ffi.cast("er_s_t *", s).y end },
  { "'int' has no member named 'y'", function() return ffi.new("int").y end },
  { "'int' cannot be indexed with 'number'", function() return ffi.new("int")[0] end },
  { "'int [2]' has no member named 'x'", function() return s.arr.x end },
  { "'struct er_s' cannot be indexed with 'boolean'", function() return s[true] end },
  { "'struct er_s' cannot be indexed with 'struct er_t'", function() return s[ffi.new("struct er_t")] end },
  { "size of C type is unknown or too large", function() return ffi.new("void *")[0] end },
  { "cannot convert 'string' to 'int'", function() s.x = "12" end },
  { "cannot convert 'table' to 'double'", function() ffi.new("double[1]")[0] = {} end },
  -- Writing to constants.
  { "attempt to write to constant location", function() s.k = 1 end },
  { "attempt to write to constant location", function() ffi.new("const int[2]")[0] = 1 end },
  { "attempt to write to constant location", function() ffi.cast("const int *", s)[0] = 1 end },
  { "attempt to write to constant location", function() ffi.new("const struct er_t").d = 1 end },
  { "attempt to write to constant location", function() ffi.new("complex").im = 1 end },
  -- Calling a non-function, arithmetic and comparison on unsuitable cdata.
  { "'int' is not callable", function() return ffi.new("int")() end },
  { "'struct er_s' is not callable", function() return s() end },
  { "'int' is not callable", function() return ffi.new("int *")() end },
  { "attempt to perform arithmetic on 'struct er_s' and 'number'", function() return s + 1 end },
  { "attempt to perform arithmetic on 'void *' and 'number'", function() return ffi.new("void *") + 1 end },
  { "attempt to perform arithmetic on 'int *' and 'int *'", function() return ffi.new("int *") + ffi.new("int *") end },
  { "attempt to perform arithmetic on 'int64_t' and 'table'", function() return ffi.new("int64_t", 1) * {} end },
  { "attempt to compare 'struct er_s' with 'struct er_s'", function() return s < s end },
  { "attempt to compare 'int *' with 'char *'", function() return ffi.new("int *") < ffi.new("char *") end },
  { "attempt to get length of 'struct er_s'", function() return #s end },
  { "attempt to concatenate 'struct er_s' and 'string'", function() return s .. "" end },
  { "attempt to perform arithmetic on 'struct er_t' and 'struct er_t'", function() local t = ffi.new("struct er_t"); return -t end },
}
for i, c in ipairs(cases) do
  -- The last index explicitly: `#c` of a table with nil holes differs between Lua versions
  -- (5.5's constructor gives 2 for { msg, f, nil, 1 }).
  local last = 0
  for k in pairs(c) do last = math.max(last, k) end
  T.err(c[1], "error #" .. i .. " " .. c[1], (table.unpack or unpack)(c, 2, last))
end

-- The deliberate difference: cdef errors name the line and column in the declaration text.
T.ours("cdef errors name line:col in the declaration", function()
  local ok, msg = pcall(ffi.cdef, "struct er_z {\n  int a\n  int b;\n};")
  T.eq(ok, false, "bad cdef fails")
  T.like(msg, "^3:3: ';' expected near 'int'$", "cdef error with line:col")
end)

-- ipairs(cdata) raises unless the metatype has __ipairs, as in LuaJIT; Lua 5.3+'s own ipairs
-- would index 1, 2, ... until nil, past any array, and crash on a NULL pointer (found by
-- tests/fuzz_lua.rs). Errors about a pointer name its pointee, as LuaJIT's do.
T.err("'int' has no '__ipairs' metamethod", "ipairs of a NULL pointer raises",
  function() for _ in ipairs(ffi.new("int *")) do end end)
T.err("'int [4]' has no '__ipairs' metamethod", "ipairs of an array raises",
  function() for _ in ipairs(ffi.new("int[4]")) do end end)
-- (Lua 5.1's pairs takes tables only: it never calls __pairs.)
if T.luajit or _VERSION ~= "Lua 5.1" then
  T.err("'int' has no '__pairs' metamethod", "pairs of a pointer names the pointee", pairs, ffi.new("int *"))
end
T.eq(select("#", ipairs({})), 3, "ipairs of a table is Lua's")

T.done("errors.lua")
