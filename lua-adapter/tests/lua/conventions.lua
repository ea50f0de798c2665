-- The x86 calling conventions: __cdecl, __stdcall, __fastcall and __thiscall functions called
-- from Lua, and Lua callbacks of each convention called from C, over tests/c/calltest.c's
-- CT_CONVENTION functions (int pairs, a double between ints, ten mixed arguments, records in
-- and out, a 24-byte record). On i386 each convention is its own ABI: registers, who pops the
-- arguments, the hidden return pointer. On x86-64 there is one convention: the keywords are
-- accepted and ignored, as LuaJIT ignores them, and the same calls run as plain C calls.
local ffi = require "ffi"
local T = require "testlib"

local path = assert(os.getenv("LUAFFI_CALLTEST"), "LUAFFI_CALLTEST is not set")
ffi.cdef [[
struct ct_pt { int32_t x, y; };
struct ct_big { double a, b; int64_t c; };
]]
local L = ffi.load(path)
local x86 = ffi.arch == "x86"
local names = { "cdecl", "stdcall", "fastcall", "thiscall" }

local function i64s(v) return tostring(ffi.new("int64_t", v)) end

-- What the C callees compute, for the callbacks to compute the same and the checks to expect.
local function add(a, b) return a * 10 + b end
local function mix(a, b, c) return a + b * 10 + c * 100 end
local function many(a, b, c, d, e, f, g, h, i, j)
  return ffi.new("int64_t", a) + b * 10 + c * 100 + math.floor(d * 1000) + math.floor(e * 10000) + f * 100000
    + g * 1000000 + h * 10000000 + i * 1000000000 + j * 1e10
end
local function pt(p, k) return ffi.new("struct ct_pt", p.x * k, p.y + k) end
local function big(g, k) return g.a + g.b * 10 + tonumber(g.c) * 100 + k * 1000 end

for _, name in ipairs(names) do
  local conv = "__" .. name
  ffi.cdef((([[
  int CONV ct_NAME_add(int a, int b);
  double CONV ct_NAME_mix(int a, double b, int c);
  int64_t CONV ct_NAME_many(int8_t, int16_t, int64_t, double, float, int, int, uint8_t, int, int);
  struct ct_pt CONV ct_NAME_pt(struct ct_pt p, int k);
  double CONV ct_NAME_big(struct ct_big g, int k);
  int ct_NAME_call_add(int (CONV *f)(int, int), int a, int b);
  double ct_NAME_call_mix(double (CONV *f)(int, double, int), int a, double b, int c);
  int64_t ct_NAME_call_many(int64_t (CONV *f)(int8_t, int16_t, int64_t, double, float, int, int, uint8_t, int, int), int base);
  int ct_NAME_call_pt(struct ct_pt (CONV *f)(struct ct_pt, int), int x, int y, int k);
  double ct_NAME_call_big(double (CONV *f)(struct ct_big, int), double a, int k);
  ]]):gsub("CONV", conv):gsub("NAME", name)))
  local function fn(what) return L["ct_" .. name .. "_" .. what] end

  -- Lua calling C.
  T.eq(fn "add"(3, -4), add(3, -4), conv .. ": int (int, int)")
  T.eq(fn "mix"(3, 0.25, -2), mix(3, 0.25, -2), conv .. ": double (int, double, int)")
  T.eq(i64s(fn "many"(-5, 300, ffi.new("int64_t", 7), 2.5, 0.25, 11, 12, 250, 1, 2)),
    i64s(many(-5, 300, 7, 2.5, 0.25, 11, 12, 250, 1, 2)), conv .. ": ten mixed arguments")
  local r = fn "pt"(ffi.new("struct ct_pt", 3, 4), 5)
  T.eq(r.x * 1000 + r.y, 15009, conv .. ": a record in and out")
  T.eq(fn "big"(ffi.new("struct ct_big", 1.5, 2, 3), 4), 4321.5, conv .. ": a 24-byte record")
  -- Each call twice in a row: a stub that pops what the callee already popped (or leaves
  -- what it did not) moves the stack under the next call.
  local s = 0
  for i = 1, 100 do s = s + fn "add"(i, 1) end
  T.eq(s, 50600, conv .. ": a hundred calls in a row")

  -- C calling Lua, through an explicit callback of the convention and through a Lua function
  -- converted to the parameter's function pointer type.
  local lua_fns = { add = add, mix = mix, many = many, pt = pt, big = big }
  local cb = {
    add = ffi.cast("int (" .. conv .. " *)(int, int)", add),
    mix = ffi.cast("double (" .. conv .. " *)(int, double, int)", mix),
    many = ffi.cast("int64_t (" .. conv .. " *)(int8_t, int16_t, int64_t, double, float, int, int, uint8_t, int, int)", many),
  }
  for _, via in ipairs { "callback", "function" } do
    local function f(what) return (via == "callback" and cb or lua_fns)[what] end
    local tag = conv .. " " .. via .. ": "
    T.eq(fn "call_add"(f "add", 3, 4), 34 + 43 * 1000, tag .. "int (int, int)")
    T.eq(fn "call_mix"(f "mix", 1, 0.5, 2), 206 + 107 * 100000, tag .. "double (int, double, int)")
    T.eq(i64s(fn "call_many"(f "many", 10)),
      i64s(many(10, 11, 12, 10.5, 1.5, 13, 14, 200, 15, 16) + many(1, 1, 1, 1, 1, 1, 1, 1, 1, 1) * 1000), tag .. "ten mixed arguments")
  end
  for _, c in pairs(cb) do c:free() end
  T.ours("LuaJIT has no by-value aggregates in callbacks", function()
    local rec = {
      pt = ffi.cast("struct ct_pt (" .. conv .. " *)(struct ct_pt, int)", pt),
      big = ffi.cast("double (" .. conv .. " *)(struct ct_big, int)", big),
    }
    for _, via in ipairs { "callback", "function" } do
      local function f(what) return (via == "callback" and rec or lua_fns)[what] end
      local tag = conv .. " " .. via .. ": "
      T.eq(fn "call_pt"(f "pt", 2, 3, 4), 8008, tag .. "a record in and out")
      T.eq(fn "call_big"(f "big", 0.5, 2), 2310.5 + 310.5 * 1000, tag .. "a 24-byte record")
    end
    for _, c in pairs(rec) do c:free() end
  end)
end

-- The types: on x86 a convention makes a function type of its own; on x64 the keyword is
-- ignored and the types are the same. (luaffi's function types are interned, so equal types
-- compare equal; LuaJIT makes a new ctype per declaration.)
T.ours("ctype equality of function types", function()
  for _, name in ipairs { "stdcall", "fastcall", "thiscall" } do
    local same = ffi.typeof("int (__" .. name .. " *)(int, int)") == ffi.typeof("int (*)(int, int)")
    T.eq(same, not x86, "__" .. name .. " function pointer type " .. (x86 and "differs from" or "is") .. " cdecl's")
  end
  T.ok(ffi.typeof("int (__cdecl *)(int, int)") == ffi.typeof("int (*)(int, int)"), "__cdecl is the default")
end)
-- LuaJIT spells every convention's pointer type as cdecl's.
T.str(ffi.typeof("int (__stdcall *)(int)"), "ctype<int (*)()>", "a __stdcall pointer type prints as LuaJIT prints it")

print(x86 and "conventions: cdecl, stdcall, fastcall and thiscall called from Lua and as callbacks (x86)"
  or ("conventions: the four keywords accepted and ignored, one convention (" .. ffi.arch .. ")"))
T.done("conventions.lua")
