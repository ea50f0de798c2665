-- Initialisers and conversions that must never write outside the object or accept what
-- LuaJIT refuses (issue 14, §2.1–2.3 and §3). Where LuaJIT itself writes past the object (a
-- string or table written into a `d[?]` or `d[]` member), luaffi raises or truncates
-- instead: those tests are marked T.ours. The bytes past an object that the string copies
-- used to write are invisible from Lua; tests/init_bounds.rs runs this kind of script under
-- valgrind to see them.
local ffi = require "ffi"
local T = require "testlib"

-- ---- §2.1: nested initialisers ----------------------------------------------------------

-- A table nested `n` deep around `leaf`.
local function nest(n, leaf)
  local t = leaf
  for _ = 1, n do t = { t } end
  return t
end

-- A 40-deep `int[1]...[1]` initialiser inside a coroutine, whose Lua stack starts small:
-- every level holds a stack slot, so the walk must grow the stack as it goes.
do
  local ty = ffi.typeof("int" .. string.rep("[1]", 40))
  local co = coroutine.create(function() return ffi.new(ty, nest(40, 7)) end)
  local ok, x = coroutine.resume(co)
  T.eq(ok, true, "40-deep array initialiser in a coroutine")
  if ok then
    local v = x
    for _ = 1, 40 do v = v[0] end
    T.eq(v, 7, "40-deep array initialiser: the innermost element")
  end
end

-- Records nested 150 deep (each `struct si_nK { struct si_n(K-1) a; }`), initialised by
-- name and by position, in a coroutine.
ffi.cdef "struct si_n0 { int v; };"
for i = 1, 150 do ffi.cdef(("struct si_n%d { struct si_n%d a; };"):format(i, i - 1)) end
do
  local function named(n) local t = { v = 9 } for _ = 1, n do t = { a = t } end return t end
  local co = coroutine.create(function()
    local x = ffi.new("struct si_n150", named(150))
    local y = ffi.new("struct si_n150", nest(150, { 8 }))
    return x, y
  end)
  local ok, x, y = coroutine.resume(co)
  T.eq(ok, true, "150-deep record initialisers in a coroutine")
  if ok then
    local vx, vy = x, y
    for _ = 1, 150 do vx, vy = vx.a, vy.a end
    T.eq(vx.v, 9, "150-deep record initialiser by name")
    T.eq(vy.v, 8, "150-deep record initialiser by position")
  end
end

-- Nesting beyond the bound is a clear error, not a C stack overflow: 201 levels, and 5000
-- (which took ~2.5 KiB of C stack per level and crashed at ~3,200). A bound on type nesting
-- at declaration may refuse the deep declarations first: that is a clear error too.
T.ours("LuaJIT recurses without a bound", function()
  local depth = 0
  local function declare_to(n)
    while depth < n do
      local ok, msg = pcall(ffi.cdef, ("struct si_d%d { %s a; };"):format(depth + 1,
        depth == 0 and "int" or ("struct si_d" .. depth)))
      if not ok then return msg end
      depth = depth + 1
    end
  end
  for _, n in ipairs { 201, 5000 } do
    local refused = declare_to(n)
    if refused then
      T.ok(#refused > 0, n .. "-deep declaration refused with a message")
    else
      local co = coroutine.create(function() return ffi.new("struct si_d" .. n, nest(n, 1)) end)
      local ok, msg = coroutine.resume(co)
      T.eq(ok, false, n .. "-deep initialiser refused")
      T.eq(T.normalize(msg), "initializer nesting too deep", n .. "-deep initialiser message")
    end
  end
  -- 200 levels are within the bound.
  local co = coroutine.create(function() return ffi.new("struct si_d200", nest(200, 5)) end)
  local ok, x = coroutine.resume(co)
  T.eq(ok, true, "200-deep initialiser accepted")
  if ok then
    for _ = 1, 199 do x = x.a end
    T.eq(x.a, 5, "200-deep initialiser: the innermost member")
  end
end)

-- ---- §2.2: strings into char arrays -------------------------------------------------------

ffi.cdef [[
struct si_m { char a[3]; int x; };
struct si_vc { int n; char d[?]; };
struct si_fc { int n; char d[]; };
struct si_zc { int n; char d[0]; };
struct si_v { int n; int d[?]; };
struct si_f { int n; int d[]; };
]]

local function bytes(p, n)
  local t = {}
  for i = 0, n - 1 do t[#t + 1] = tostring(p[i]) end
  return table.concat(t, ",")
end

do
  local s = "abc"
  local a = ffi.new("uint8_t[?]", #s, s)
  T.eq(ffi.sizeof(a), 3, "uint8_t[?] of #s: size")
  T.eq(ffi.string(a, 3), "abc", "uint8_t[?] of #s: the string without its NUL")
  T.eq(bytes(ffi.new("char[?]", 5, "abc"), 5), "97,98,99,0,0", "char[?] longer than the string: NUL and zeros")
  T.eq(bytes(ffi.new("char[?]", 2, "abc"), 2), "97,98", "char[?] shorter than the string: truncated")
  T.eq(bytes(ffi.new("char[?]", 1, ""), 1), "0", "char[?] of 1 from an empty string: the NUL")
  T.eq(ffi.sizeof(ffi.new("char[?]", 0, "abc")), 0, "char[?] of 0 from a string")
  T.eq(bytes(ffi.new("char[2]", "abc"), 2), "97,98", "char[2] from a longer string: truncated, no NUL")
  T.eq(bytes(ffi.new("char[3]", "abc"), 3), "97,98,99", "char[3] from a 3-byte string: no NUL")
  T.eq(bytes(ffi.new("char[4]", "abc"), 4), "97,98,99,0", "char[4] from a 3-byte string: the NUL")
  local m = ffi.new("struct si_m", { "abcdef", 7 })
  T.eq(ffi.string(m.a, 3) .. m.x, "abc7", "member char[3] initialised from a longer string")
  m.x = 8
  m.a = "uvwxyz"
  T.eq(ffi.string(m.a, 3) .. m.x, "uvw8", "member char[3] assigned a longer string")
  m.a = "z"
  T.eq(bytes(m.a, 3) .. ";" .. m.x, "122,0,119;8", "member char[3] assigned a shorter string: the NUL")
  -- VLS members: at most the size given at ffi.new.
  local v = ffi.new("struct si_vc", 2, 5, "abcdef")
  T.eq(ffi.sizeof(v), 6, "VLS of 2 chars: size")
  T.eq(v.n .. ":" .. bytes(v.d, 2), "5:97,98", "VLS char member initialised from a longer string")
  v.d = "xyz"
  T.eq(v.n .. ":" .. bytes(v.d, 2), "5:120,121", "VLS char member assigned a longer string")
  v = ffi.new("struct si_vc", 4, { n = 1, d = "pq" })
  T.eq(v.n .. ":" .. bytes(v.d, 4), "1:112,113,0,0", "VLS char member by name, with its NUL")
  -- Through a pointer the object's extent is unknown (raw memory, as in C): the whole string.
  local buf = ffi.new("char[16]")
  ffi.cast("struct si_fc *", buf).d = "abc"
  T.eq(ffi.string(buf + 4), "abc", "flexible char member through a pointer")
  ffi.cast("struct si_zc *", buf).d = "xy"
  T.eq(bytes(buf + 4, 4), "120,121,0,0", "char d[0] member through a pointer, with its NUL")
  T.err("too many initializers for 'char [0]'", "a table into char d[0]",
    function() ffi.cast("struct si_zc *", buf).d = { 65 } end)
end

T.ours("LuaJIT copies the whole string past the object", function()
  -- A flexible member of an object from ffi.new has no room at all: nothing is written.
  local f = ffi.new("struct si_fc", { 3 })
  f.d = "abcdef"
  T.eq(f.n, 3, "flexible char member of a fixed object: nothing written")
  local v = ffi.new("struct si_vc", 0, 4, "abc")
  T.eq(v.n, 4, "VLS char member of 0: nothing written")
  local z = ffi.new("struct si_zc", 5)
  z.d = "abc"
  T.eq(z.n, 5, "char d[0] member of a fixed object: nothing written")
end)

-- ---- §2.3: tables into VLS and flexible members ------------------------------------------

do
  local v = ffi.new("struct si_v", 2)
  v.d = { 1, 2 }
  T.eq(v.d[0] + v.d[1], 3, "VLS member assigned a table that fits")
  v = ffi.new("struct si_v", 2, { 4, { 5, 6 } })
  T.eq(v.n .. ":" .. v.d[0] .. "," .. v.d[1], "4:5,6", "VLS initialised by position with a fitting table")
  v = ffi.new("struct si_v", 2, 4, { 5, 6 })
  T.eq(v.n .. ":" .. v.d[0] .. "," .. v.d[1], "4:5,6", "VLS initialised by members with a fitting table")
  v = ffi.new("struct si_v", 3, { n = 1, d = { 7 } })
  T.eq(v.n .. ":" .. v.d[0], "1:7", "VLS member by name from a short table")
  -- Through a pointer, the object's extent is unknown (raw memory, as in C): not bounded.
  local buf = ffi.new("int[8]")
  local p = ffi.cast("struct si_f *", buf)
  p.d = { 1, 2, 3 }
  T.eq(buf[1] + buf[2] + buf[3], 6, "flexible member through a pointer")
  local q = ffi.cast("struct si_v *", buf)
  q.d = { 4, 5, 6, 7 }
  T.eq(buf[4], 7, "VLS member through a pointer")
end

T.ours("LuaJIT writes past the object", function()
  local v = ffi.new("struct si_v", 2)
  T.err("too many initializers for 'int [?]'", "VLS member assigned 3 elements",
    function() v.d = { 1, 2, 3 } end)
  T.err("too many initializers for 'int [?]'", "VLS member assigned 100 elements",
    function() local t = {} for i = 1, 100 do t[i] = i end v.d = t end)
  T.err("too many initializers for 'int [?]'", "VLS initialised by position, 3 elements into 2",
    ffi.new, "struct si_v", 2, { 1, { 1, 2, 3 } })
  T.err("too many initializers for 'int [?]'", "VLS initialised by members, 3 elements into 2",
    ffi.new, "struct si_v", 2, 1, { 1, 2, 3 })
  T.err("too many initializers for 'int [?]'", "VLS initialised by name, 3 elements into 2",
    ffi.new, "struct si_v", 2, { n = 1, d = { 1, 2, 3 } })
  T.err("too many initializers for 'int [?]'", "VLS of 0 assigned 1 element",
    function() ffi.new("struct si_v", 0).d = { 1 } end)
  local f = ffi.new("struct si_f")
  T.err("too many initializers for 'int []'", "flexible member of a fixed object assigned 2 elements",
    function() f.d = { 1, 2 } end)
  T.err("too many initializers for 'int []'", "flexible member initialised with 1 element",
    ffi.new, "struct si_f", { 1, { 1 } })
  T.noerr("flexible member assigned an empty table", function() f.d = {} end)
  -- A reference into an object (an array element) knows what remains of the object.
  local arr = ffi.new("struct si_f[2]")
  T.err("too many initializers for 'int []'", "flexible member of the last array element",
    function() arr[1].d = { 1 } end)
  T.err("too many initializers for 'int []'", "flexible member of the first array element, 2 into 1",
    function() arr[0].d = { 1, 2 } end)
end)

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

-- ---- function pointers of another signature --------------------------------------------
-- C calling a function pointer of another signature can corrupt memory (e.g. a struct result
-- written through what the callee sees as an int argument): LuaJIT converts between function
-- pointers with as many parameters; luaffi also wants each parameter and the result passed
-- alike (compat.lua tests what it accepts). An explicit cast converts anything.
do
  ffi.cdef [[ typedef int (*si_ii)(int, int); typedef void *(*si_vp)(void *);
              typedef int (*si_dd)(double, double); ]]
  local f = ffi.cast("si_ii", 0x1000)
  T.err("cannot convert 'int (*)()' to 'void *(*)()'", "another parameter count", ffi.new, "si_vp", f)
  T.ok(ffi.new("si_ii", f) ~= nil, "the same signature converts")
  T.ok(ffi.new("void *", f) ~= nil, "a function pointer converts to void *")
  T.ok(ffi.cast("si_dd", f) ~= nil, "ffi.cast converts any function pointer")
  T.ours("LuaJIT compares parameter counts only", function()
    T.err_params("cannot convert 'int (*)(int, int)' to 'int (*)(double, double)'", "same count, other parameter types", ffi.new, "si_dd", f)
  end)
end

T.done("safety_init.lua")
