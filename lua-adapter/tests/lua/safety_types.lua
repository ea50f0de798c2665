-- C types against hostile input (issue 14 §2.7, §2.11, §2.13): nesting is bounded with a clear
-- error (under the main C stack and in coroutines), the type table does not grow from failed or
-- repeated declarations and stays bounded when types are made in a loop, and C types the model
-- cannot represent are errors instead of silently wrong.
local ffi = require "ffi"
local T = require "testlib"

-- Under valgrind the loops are shorter and the RSS is valgrind's own.
local under_valgrind = os.getenv("LUAFFI_UNDER_VALGRIND") ~= nil
local N = under_valgrind and 5000 or 200000
local HOSTILE = under_valgrind and 2000 or 100000

local rss_kb, settle = T.rss_kb, T.settle

-- How much running f grows the RSS (KB), or nil where it cannot be read.
local function growth(f)
  settle()
  local r0 = rss_kb()
  f()
  settle()
  local r1 = rss_kb()
  return r0 and r1 and not under_valgrind and (r1 - r0) or nil
end

local BOUND_KB = 16 * 1024

local function small(kb, name)
  if kb then T.ok(kb < BOUND_KB, ("%s: RSS grew %d KB"):format(name, kb)) end
end

-- Runs f in a coroutine (a Lua stack of its own, the same C stack) and returns its results.
local function in_coroutine(f, ...)
  local co = coroutine.create(f)
  local res = { coroutine.resume(co, ...) }
  assert(res[1], res[2])
  return (table.unpack or unpack)(res, 2)
end

-- ---- §2.7: bounded recursion ----

local function nested_conditional()
  return pcall(ffi.cdef, "enum { A = " .. string.rep("1 ? 1 : ", HOSTILE) .. "1 };")
end

T.ours("LuaJIT accepts 10^5 nested ?: (its parser recurses on a larger stack)", function()
  local ok, err = nested_conditional()
  T.eq(ok, false, "10^5 nested ?: are refused")
  T.eq(T.normalize(err), "chunk has too many syntax levels", "with LuaJIT's nesting error")
  local ok2, err2 = in_coroutine(nested_conditional)
  T.eq(ok2 or T.normalize(err2), "chunk has too many syntax levels", "in a coroutine too")
end)

-- Declares prefix..i for i = 1, 2, ... with decl(i) until one fails; returns the deepest name
-- declared and the error.
local function chain(first, decl)
  ffi.cdef(first)
  for i = 1, HOSTILE do
    local ok, err = pcall(ffi.cdef, decl(i))
    if not ok then return i - 1, err end
  end
  return HOSTILE, nil
end

T.ours("LuaJIT allows pointer chains up to its 65536-type table (and arrays to 99 levels)", function()
  local n, err = chain("typedef int arr0[1];", function(i) return ("typedef arr%d arr%d[1];"):format(i - 1, i) end)
  T.like(err, "C type nested too deeply", "a typedef chain of arrays stops with a clear error")
  T.ok(n >= 100 and n < 1000, "after a bounded depth (" .. n .. ")")
  T.eq(ffi.sizeof("arr" .. n), 4, "the deepest array is laid out")
  local m, err2 = in_coroutine(chain, "typedef int *ptr0;", function(i) return ("typedef ptr%d *ptr%d;"):format(i - 1, i) end)
  T.like(err2, "C type nested too deeply", "a pointer chain in a coroutine too")
  T.like(tostring(ffi.typeof("ptr" .. m)), "^ctype<int %*+>$", "the deepest pointer prints")
  local t, deep_err = ffi.typeof("int"), nil
  for _ = 1, HOSTILE do
    local ok, next_t = pcall(ffi.typeof, "$[1]", t)
    if not ok then deep_err = next_t break end
    t = next_t
  end
  T.like(deep_err, "C type nested too deeply", "a $ chain stops with a clear error")
end)

T.ours("LuaJIT has no struct-by-value callbacks", function()
  -- Every walk over the deepest allowed struct: layout, printing, new, the SysV
  -- classification of a callback and a call through it, inside a coroutine.
  local n = chain("typedef struct { int v; } st0;", function(i) return ("typedef struct { st%d in; } st%d;"):format(i - 1, i) end)
  local deepest = "st" .. n
  T.ok(n >= 100, "structs nest " .. n .. " levels")
  in_coroutine(function()
    T.eq(ffi.sizeof(deepest), 4, "the deepest struct has a size")
    local v = ffi.new(deepest)
    local p = ffi.cast("int *", v)
    T.eq(p[0], 0, "a new deepest struct is zeroed")
    -- A function type over a struct is one level deeper, its pointer two.
    local arg = "st" .. (n - 2)
    local cb = ffi.cast(("int (*)(%s, int)"):format(arg), function(s, k) return k + 1 end)
    T.eq(cb(ffi.new(arg), 41), 42, "a callback taking a struct that deep by value runs")
    cb:free()
    T.like(tostring(ffi.typeof(arg .. " *")), "^ctype<struct %d+ %*>$", "its pointer prints")
  end)
end)

-- ---- §2.11: the type table does not grow ----

T.noerr("a failed cdef declares nothing", function()
  small(growth(function()
    for _ = 1, N do
      pcall(ffi.cdef, "struct zz_fail { int x; struct { char c; } in; }; int zz_f(int x int y);")
    end
  end), "200k failed cdefs")
  small(growth(function()
    for _ = 1, N do
      pcall(ffi.typeof, "struct { int x; int (*f)(double); } bad")
    end
  end), "200k failed ffi.typeof")
end)

T.ours("LuaJIT makes a new struct for each repeated typedef and rejects a second body", function()
  local decls = "typedef struct { int q; int r; } div2_t; struct s1 { int x; struct { char c; } in; };"
    .. " enum e1 { EA1, EB1 }; int f1(int (*)(double), struct { int a; } *);"
  ffi.cdef(decls)
  small(growth(function()
    for _ = 1, N do ffi.cdef(decls) end
  end), "200k identical redeclarations")
  T.eq(ffi.sizeof("struct s1"), 8, "the first declaration still stands")
end)

T.ours("LuaJIT makes a new type for every function type", function()
  small(growth(function()
    for _ = 1, N do
      local a = ffi.typeof("int (*)(int, const char *)")
      local b = ffi.typeof("int [?]")
      local c = ffi.new("double[?]", 2)
    end
  end), "200k derived types")
end)

T.noerr("distinct spellings of one type do not grow a cache", function()
  local pad = string.rep(" ", 100)
  small(growth(function()
    for i = 1, N do
      local p = ffi.cast("int *" .. pad .. "/*" .. i .. "*/", nil)
    end
  end), "200k spellings of int *")
end)

-- ---- §2.13: types the model cannot represent ----

T.ours("LuaJIT reads 'unsigned __int128' as an unsigned parameter named __int128", function()
  local cases = {
    { "void i128_f(unsigned __int128);", "__int128" },
    { "void i128_g(signed __int128 x);", "__int128" },
    { "__int128 i128_h(void);", "__int128" },
    { "struct i128_s { int a; unsigned __int128; };", "__int128" },
    { "typedef unsigned __int128 u128_t;", "__int128" },
    { "void f128(_Float128);", "_Float128" },
    { "void f80(long __float80);", "__float80" },
    { "void d64(_Decimal64 d);", "_Decimal64" },
    { "enum { I128_SIZE = sizeof(unsigned __int128) };", "__int128" },
  }
  for _, c in ipairs(cases) do
    local ok, err = pcall(ffi.cdef, c[1])
    T.like(ok or err, "'" .. c[2]:gsub("_", "%%_") .. "' is not supported", c[1])
  end
  for _, ty in ipairs { "unsigned __int128", "__int128 *", "_Float16", "__uint128_t" } do
    local ok, err = pcall(ffi.typeof, ty)
    T.like(ok or err, "is not supported", "ffi.typeof " .. ty)
    ok, err = pcall(ffi.sizeof, ty)
    T.like(ok or err, "is not supported", "ffi.sizeof " .. ty)
  end
end)

if ffi.arch == "x64" and ffi.os ~= "Windows" then
  ffi.cdef [[ struct with_ld { char c; long double x; int y; }; typedef long double ld_t; ]]
  T.eq(ffi.sizeof("long double"), 16, "sizeof long double")
  T.eq(ffi.alignof("long double"), 16, "alignof long double (was 1)")
  T.eq(ffi.sizeof("struct with_ld"), 48, "a struct with a long double member")
  T.eq(ffi.offsetof("struct with_ld", "x"), 16, "the long double member's offset")
  T.eq(ffi.offsetof("struct with_ld", "y"), 32, "the member after it")
  T.eq(ffi.alignof("struct with_ld"), 16, "the struct's alignment")
  T.eq(ffi.sizeof("ld_t[3]"), 48, "an array of long double")
  local s = ffi.new("struct with_ld")
  s.y = 7
  T.eq(s.y, 7, "the other members work")
  T.err("cannot convert 'number' to 'long double'", "a number into a long double", function() s.x = 1 end)
  T.err("cannot convert 'number' to 'long double'", "ffi.new with a value", ffi.new, "long double", 1)
  T.noerr("ffi.new without a value", ffi.new, "ld_t")
  T.ours("LuaJIT makes long double complex a complex double", function()
    T.eq(ffi.sizeof("long double complex"), 32, "sizeof long double complex")
    T.eq(ffi.alignof("long double complex"), 16, "alignof long double complex")
  end)
end

-- Last: it fills the table. Under valgrind 65536 parses take minutes: skipped there.
if under_valgrind then
  print("  anonymous structs up to the table limit: skipped under valgrind")
else
  T.noerr("anonymous structs made in a loop stop at the table limit", function()
    local made = 0
    local err
    local kb = growth(function()
      for _ = 1, 100000 do
        local ok, t = pcall(ffi.typeof, "struct { int x; }")
        if not ok then err = t break end
        made = made + 1
      end
    end)
    T.eq(err and T.normalize(err), "table overflow", "with LuaJIT's error")
    T.ok(made < 70000, "after at most 65536 types (" .. made .. ")")
    if kb then T.ok(kb < 64 * 1024, ("RSS grew %d KB"):format(kb)) end
  end)
end

T.done("safety_types.lua")
