-- Callbacks: Lua functions called from C through function pointers, of each argument and
-- return kind; qsort with a Lua comparator; errors raised inside a callback; free and set.
local ffi = require "ffi"
local T = require "testlib"

local path = assert(os.getenv("LUAFFI_CALLTEST"), "LUAFFI_CALLTEST is not set")
ffi.cdef [[
struct ct_pt { int32_t x, y; };
struct ct_big { double a, b; int64_t c; };
int ct_call_binop(int (*f)(int, int), int a, int b);
double ct_call_dd(double (*f)(double, double), double a, double b);
float ct_call_f(float (*f)(float), float a);
int64_t ct_call_i64(int64_t (*f)(int64_t), int64_t a);
uint8_t ct_call_u8(uint8_t (*f)(int8_t, uint16_t), int8_t a, uint16_t b);
bool ct_call_bool(bool (*f)(bool), bool b);
const char *ct_call_str(const char *(*f)(const char *), const char *s);
void *ct_call_ptr(void *(*f)(void *), void *p);
void ct_call_void(void (*f)(int), int a);
int64_t ct_call_many(int64_t (*f)(int, int, int, int, int, int, int, double, double, double, double, double, double, double, double, double), int base);
int ct_call_pt(int (*f)(struct ct_pt), int x, int y);
struct ct_pt ct_call_ret_pt(struct ct_pt (*f)(int, int), int x, int y);
double ct_call_big(double (*f)(struct ct_big), double a);
struct ct_big ct_call_ret_big(struct ct_big (*f)(double), double a);
int ct_call_n(int (*f)(int), int n);
void ct_keep(int (*f)(int));
int ct_call_kept(int x);
void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));
typedef int (*ct_binop_t)(int, int);
struct ct_holder { ct_binop_t op; };
]]
local L = ffi.load(path)

local function i64s(v) return tostring(ffi.new("int64_t", v)) end

-- Each kind, passed as a Lua function (an implicit callback, freed once the call returned).
T.eq(L.ct_call_binop(function(a, b) return a * 10 + b end, 4, 2), 42, "int (*)(int, int)")
T.eq(L.ct_call_dd(function(a, b) return a / b end, 1, 4), 0.25, "double (*)(double, double)")
T.eq(L.ct_call_f(function(a) return a * 2 end, 1.25), 2.5, "float (*)(float)")
T.eq(i64s(L.ct_call_i64(function(a) return a + 1 end, ffi.new("int64_t", 2^53))), "9007199254740993LL", "int64_t (*)(int64_t), exact")
T.eq(L.ct_call_u8(function(a, b) return a + b end, -1, 300), 43, "narrow integers in and out")
T.eq(L.ct_call_bool(function(b) return not b end, true), false, "bool (*)(bool)")
T.eq(ffi.string(L.ct_call_str(function(s) return ffi.string(s) == "hi" and "yes" or "no" end, "hi")), "yes", "const char * in and out")
local cell = ffi.new("int[1]", 5)
local got = L.ct_call_ptr(function(p) return ffi.cast("int *", p) + 0 end, cell)
T.eq(ffi.cast("int *", got)[0], 5, "void * in and out")
local seen
L.ct_call_void(function(a) seen = a end, 17)
T.eq(seen, 17, "void (*)(int)")
T.eq(i64s(L.ct_call_many(function(a, b, c, d, e, f, g, x1, x2, x3, x4, x5, x6, x7, x8, x9)
  return a + b + c + d + e + f + g + (x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9) * 1000
end, 1)), tostring(ffi.new("int64_t", 28 + 40500)), "sixteen arguments, stack ones included")
local calls = 0
T.eq(L.ct_call_n(function(i) calls = calls + 1; return i end, 100), 4950, "a C loop calling a Lua function")
T.eq(calls, 100, "called once per iteration")

-- Callbacks inside callbacks, deep enough that the Lua stack grows (and moves) under the
-- thunks waiting on it, and a callback whose Lua function recurses deeply between calls.
local function nested(depth)
  if depth == 0 then return 1 end
  return L.ct_call_n(function(i) return i == 0 and nested(depth - 1) or 0 end, 2)
end
T.eq(nested(150), 1, "150 nested C calls, each calling back into Lua")
local function deep(k) if k == 0 then return 0 end return 1 + deep(k - 1) end
T.eq(L.ct_call_n(function(i) return deep(5000) - 5000 + i end, 50), 1225, "a callback growing the Lua stack on every call")

-- A callback runs on the thread of the innermost C call in progress: not on a coroutine that
-- made a C call inside an earlier callback and has since yielded.
do
  local main = tostring(coroutine.running())
  local co = coroutine.wrap(function()
    L.ct_call_n(function() return 0 end, 1)
    coroutine.yield("yielded")
    return "done"
  end)
  local threads = {}
  L.ct_call_n(function(i)
    threads[#threads + 1] = tostring(coroutine.running())
    if i == 0 then T.eq(co(), "yielded", "a coroutine calling C inside a callback") end
    return i
  end, 3)
  T.eq(table.concat(threads, " "), main .. " " .. main .. " " .. main, "every call of the callback on the caller's thread")
  T.eq(co(), "done", "the coroutine resumes where it yielded")
end

-- Explicit callbacks: callable from Lua and C, set, free.
local add = ffi.cast("int (*)(int, int)", function(a, b) return a + b end)
T.eq(add(2, 3), 5, "a callback called from Lua")
T.eq(L.ct_call_binop(add, 20, 22), 42, "a callback passed as a pointer")
add:set(function(a, b) return a - b end)
T.eq(L.ct_call_binop(add, 20, 22), -2, "cb:set replaces the function")
add:free()
T.err("bad callback", "free twice", function() add:free() end)
T.err("bad callback", "free on a plain function pointer", function() ffi.cast("int (*)(int, int)", nil):free() end)
-- A freed callback's code stays a trap: C (or Lua) calling a copy of its pointer raises
-- "bad callback" (after the C function returns, here), until a new callback takes the slot.
do
  local cb = ffi.cast("int (*)(int, int)", function(a, b) return a + b end)
  local dangling = ffi.cast("int (*)(int, int)", ffi.cast("void *", cb))
  cb:free()
  T.err("bad callback", "a freed callback called from C", L.ct_call_binop, dangling, 1, 2)
  T.err("bad callback", "a freed callback called from C, again", L.ct_call_binop, dangling, 3, 4)
  T.err("bad callback", "a freed callback called from Lua", dangling, 1, 2)
  T.eq(L.ct_call_binop(function(a, b) return a - b end, 5, 3), 2, "callbacks work after a bad callback")
  local n = 0
  local counted = ffi.cast("int (*)(int)", function(i) n = n + 1; return i end)
  local stale = ffi.cast("int (*)(int)", ffi.cast("void *", counted))
  counted:free()
  T.err("bad callback", "a freed callback called in a C loop", L.ct_call_n, stale, 3)
  T.eq(n, 0, "the freed callback's old function never ran")
end
T.ours("a freed slot is reused only by a callback of the same type", function()
  local cb = ffi.cast("int (*)(int, int)", function(a, b) return a + b end)
  local p = ffi.cast("void *", cb)
  cb:free()
  local other = ffi.cast("double (*)(double)", function(x) return x end)
  T.ok(ffi.cast("void *", other) ~= p, "another type takes another slot")
  T.err("bad callback", "the freed slot still traps", L.ct_call_binop, ffi.cast("int (*)(int, int)", p), 1, 2)
  local same = ffi.cast("int (*)(int, int)", function(a, b) return a * b end)
  T.ok(ffi.cast("void *", same) == p, "the same type reuses it")
  T.eq(L.ct_call_binop(ffi.cast("int (*)(int, int)", p), 6, 7), 42, "the old pointer now runs the new callback")
  same:free()
  other:free()
end)
T.ours("a Lua function passed as an argument is a callback for that call only", function()
  L.ct_keep(function(x) return x * 3 end)
  T.eq(L.ct_call_kept(5), 15, "still alive until garbage is collected")
  collectgarbage()
  collectgarbage()
  T.err("bad callback", "freed once the call returned and the lease was collected", L.ct_call_kept, 5)
  local kept = ffi.cast("int (*)(int)", function(x) return x * 4 end)
  L.ct_keep(kept)
  collectgarbage()
  T.eq(L.ct_call_kept(5), 20, "an ffi.cast callback lives until freed")
  kept:free()
end)
local holder = ffi.new("struct ct_holder")
holder.op = function(a, b) return a * b end
T.eq(holder.op(6, 7), 42, "a Lua function stored in a function-pointer field")

-- qsort with a Lua comparator.
local n = 1000
local arr = ffi.new("int[?]", n)
local seed = 12345
for i = 0, n - 1 do
  seed = (seed * 1103515245 + 12345) % 2147483648
  arr[i] = seed % 100000
end
local cmp = ffi.cast("int (*)(const void *, const void *)", function(a, b)
  local x, y = ffi.cast("const int *", a)[0], ffi.cast("const int *", b)[0]
  return x < y and -1 or (x > y and 1 or 0)
end)
ffi.C.qsort(arr, n, ffi.sizeof("int"), cmp)
local sorted = true
for i = 1, n - 1 do
  if arr[i - 1] > arr[i] then sorted = false end
end
T.ok(sorted, "qsort with a Lua comparator")
cmp:free()

-- An error inside a callback reaches the Lua caller once C returns.
T.err("boom", "error in a callback called from C", function()
  return L.ct_call_binop(function() error("boom") end, 1, 2)
end)
T.err("boom", "error in a callback called from Lua", function()
  local c = ffi.cast("int (*)(int)", function() error("boom") end)
  return c(1)
end)
T.err("cannot convert 'string' to 'int'", "a callback result that does not convert", function()
  return L.ct_call_binop(function() return "str" end, 1, 2)
end)
-- An enum result may be given by its constant's name; an unknown name fails like any result.
ffi.cdef [[
enum ct_cb_e { CT_CB_A = 2, CT_CB_B = 7 };
int ct_call_enum_binop(enum ct_cb_e (*f)(int, int), int a, int b) __asm__("ct_call_binop");
]]
T.eq(L.ct_call_enum_binop(function() return "CT_CB_B" end, 1, 2), 7, "an enum callback result by constant name")
T.eq(ffi.cast("enum ct_cb_e (*)(int, int)", function(a, b) return a == b and "CT_CB_A" or "CT_CB_B" end)(3, 3) == 2, true, "an enum result by name, called from Lua")
T.err("cannot convert 'string' to 'enum ct_cb_e'", "an unknown enum constant name as a callback result", function()
  return L.ct_call_enum_binop(function() return "CT_CB_C" end, 1, 2)
end)
local ok, obj = pcall(L.ct_call_binop, function() error({ code = 7 }) end, 1, 2)
T.ok(not ok and type(obj) == "table" and obj.code == 7, "a non-string error object is kept")
T.eq(L.ct_call_binop(function(a, b) return a + b end, 1, 2), 3, "calls work after a callback error")
T.ours("after a callback error the remaining callbacks of that C call return 0 without running", function()
  local runs = 0
  local ok2 = pcall(L.ct_call_n, function(i) runs = runs + 1; if i == 3 then error("stop") end; return 1 end, 10)
  T.ok(not ok2, "the error is raised")
  T.eq(runs, 4, "callbacks after the failing one did not run")
end)

-- Records by value through callbacks (LuaJIT does not support these).
T.ours("LuaJIT has no by-value aggregates in callbacks", function()
  T.eq(L.ct_call_pt(function(p) return p.x * 100 + p.y end, 3, 4), 304, "struct argument in a callback")
  local r = L.ct_call_ret_pt(function(x, y) return { x + 1, y + 1 } end, 3, 4)
  T.eq(r.x * 10 + r.y, 45, "struct result from a callback")
  T.eq(L.ct_call_big(function(g) return g.a + g.b + tonumber(g.c) end, 1), 6, "large struct argument in a callback")
  local b = L.ct_call_ret_big(function(a) return { a, a * 2, 9 } end, 1.5)
  T.eq(b.a + b.b + tonumber(b.c), 13.5, "large struct result from a callback (memory)")
end)

T.done("callbacks.lua")
