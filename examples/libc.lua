-- libc.lua: calling the C library from Lua.
--   luaffi examples/libc.lua
local ffi = require "ffi"

-- time_t is a `long` in glibc and in 32-bit Windows' msvcrt.dll, but 64 bits in 64-bit
-- Windows' C runtime, where a `long` has 32: a declaration can depend on the platform.
local time_t = (ffi.os == "Windows" and ffi.abi("64bit")) and "int64_t" or "long"
ffi.cdef([[
int printf(const char *fmt, ...);
size_t strlen(const char *s);
char *getenv(const char *name);
typedef ]] .. time_t .. [[ time_t;
time_t time(time_t *t);
/* The fields C names, in C's order; glibc's struct has more after them, which code reading
   the struct through a pointer the C library returns needn't declare. */
struct tm { int tm_sec, tm_min, tm_hour, tm_mday, tm_mon, tm_year, tm_wday, tm_yday, tm_isdst; };
struct tm *gmtime(const time_t *t);
size_t strftime(char *s, size_t max, const char *fmt, const struct tm *tm);
]])
local C = ffi.C

-- printf is variadic: Lua numbers pass as double, strings as const char *.
C.printf("printf: %s has %d letters and pi is about %.4f\n", "luaffi", ffi.new("int", 6), math.pi)
io.stdout:flush()

local s = "Hello, C!"
print(("strlen(%q) = %d"):format(s, tonumber(C.strlen(s))))

-- A NULL pointer cdata: PUC Lua never calls __eq between a userdata and nil, so `p == nil`
-- (true for NULL under LuaJIT) is always false here; compare the address as a number.
local function is_null(p) return tonumber(ffi.cast("intptr_t", p)) == 0 end
local home = C.getenv("HOME")
print("getenv(\"HOME\") = " .. (is_null(home) and "(not set)" or ffi.string(home)))
print("getenv(\"LUAFFI_SURELY_UNSET\") is NULL: " .. tostring(is_null(C.getenv("LUAFFI_SURELY_UNSET"))))

-- time() through a pointer argument, then formatted by the C library.
local now = ffi.new("time_t[1]")
local t = C.time(now)
assert(t == now[0], "time() returns what it stores")
local tm = C.gmtime(now) -- the C library's own struct, overwritten by the next call
local buf = ffi.new("char[64]")
local n = C.strftime(buf, 64, "%Y-%m-%d %H:%M:%S UTC", tm)
print(("time() = %d, that is %s (year %d)"):format(tonumber(t), ffi.string(buf, n), tm.tm_year + 1900))
