-- Unwinding through generated code: Lua errors raised inside helpers a stub calls (a bad
-- argument, a wrong argument count, a record field that does not convert) and inside
-- callbacks called from C through two C frames, many times each under pcall; and, where
-- libgcc's unwinder is the system's, a C backtrace taken below a stub walks past it.
local ffi = require "ffi"
local T = require "testlib"

local path = assert(os.getenv("LUAFFI_CALLTEST"), "LUAFFI_CALLTEST is not set")
ffi.cdef [[
struct ct_pt { int32_t x, y; };
int32_t ct_add(int32_t a, int32_t b);
int ct_pt_sum(struct ct_pt p);
int calltest_two_frames(int (*cb)(int));
int calltest_backtrace_frames(void);
]]
local L = ffi.load(path)
local N = 2000

-- Counts the runs of f(...) that raise an error whose message contains `want`.
local function raises(want, f, ...)
  local n = 0
  for _ = 1, N do
    local ok, msg = pcall(f, ...)
    if not ok and tostring(msg):find(want, 1, true) then n = n + 1 end
  end
  return n
end

T.eq(raises("bad argument #2", L.ct_add, 1, "x"), N, "a bad argument raised by a conversion helper under the stub")
T.eq(raises("wrong number of arguments", L.ct_add, 1), N, "a wrong argument count raised by the stub's helper")
T.eq(raises("cannot convert 'string' to 'int'", L.ct_pt_sum, { x = "a" }), N,
  "a field that does not convert, raised by the record conversion helper")
T.eq(L.ct_add(40, 2), 42, "calls work after the errors")

-- An error in a callback reaches the Lua caller of the C function (docs/ffi.md, Callbacks),
-- the callback being two C frames below it. The callbacks are made once (LuaJIT keeps every
-- Lua function passed as a callback argument, and runs out after about 900).
local function cb(f) return ffi.cast("int (*)(int)", f) end
local echo, raise, wrong = cb(function(x) return x end), cb(function(x) error("deep " .. x) end),
  cb(function() return "not a number" end)
T.eq(L.calltest_two_frames(echo), 42, "a callback through two C frames returns")
T.eq(raises("deep 40", L.calltest_two_frames, raise), N, "an error in a callback two C frames down reaches the Lua caller")
T.eq(raises("", L.calltest_two_frames, wrong), N, "a callback result that does not convert raises in the Lua caller")
T.eq(L.calltest_two_frames(echo), 42, "callbacks work after the errors")

if ffi.os ~= "Windows" then
  -- Without a description of the stub's frame the walk stops at the stub (2 frames or
  -- fewer); with it, it goes on through the Lua interpreter to the process's first frames.
  local below_stub = L.calltest_backtrace_frames()
  T.ok(below_stub >= 6, "a C backtrace walks past the stub (" .. below_stub .. " frames)")
  local backtrace = cb(function() return L.calltest_backtrace_frames() end)
  local in_callback = L.calltest_two_frames(backtrace) - 2
  T.ok(in_callback > below_stub + 2,
    "a C backtrace in a callback walks past its thunk, two C frames and the outer stub (" .. in_callback .. " frames)")
end

T.done("unwind.lua")
