-- Lifetimes: a finalizer made before the module was loaded runs after the module's own
-- finalizers while Lua closes (Lua finalizes the newest first); ffi must still work there.
-- The process must end cleanly: a failure exits with status 3, which the runners report.
local strlen, buf, binop
local function late()
  local ffi = require "ffi"
  local ok, msg = pcall(function()
    assert(tonumber(ffi.C.strlen("abcd")) == 4, "ffi.C looked up late")
    assert(tonumber(strlen("xy")) == 2, "an ffi.C function kept from before")
    assert(buf[0] == 7, "a cdata made before")
    -- LuaJIT 2.1 crashes here: it unloads the library in the namespace's own finalizer.
    if not rawget(_G, "jit") then
      assert(binop(function(a, b) return a * b end, 6, 7) == 42, "a library function with a callback")
    end
    local cb = ffi.cast("int (*)(int)", function(x) return x + 1 end)
    assert(cb(1) == 2, "a new callback")
    cb:free()
  end)
  if not ok then
    io.stderr:write("lifetimes.lua: late finalizer: ", tostring(msg), "\n")
    os.exit(3)
  end
end
if newproxy then
  -- Lua 5.1 (and LuaJIT): only userdata have finalizers.
  GUARD = newproxy(true)
  getmetatable(GUARD).__gc = late
else
  GUARD = setmetatable({}, { __gc = late })
end

local ffi = require "ffi"
local T = require "testlib"
ffi.cdef [[
size_t strlen(const char *);
int ct_call_binop(int (*f)(int, int), int a, int b);
]]
strlen = ffi.C.strlen
buf = ffi.new("int[1]", 7)
binop = ffi.load(assert(os.getenv("LUAFFI_CALLTEST"), "LUAFFI_CALLTEST is not set")).ct_call_binop
T.eq(tonumber(strlen("abc")), 3, "the module works before Lua closes")
T.eq(binop(function(a, b) return a + b end, 1, 2), 3, "and the library")

T.done("lifetimes.lua")
