-- libc.lua: calling the C library from Lua.
--   luaffi examples/libc.lua
local ffi = require "ffi"

local windows = ffi.os == "Windows"
-- time_t is a long on Linux; on Windows it is 64 bits, and msvcrt.dll names the functions
-- _time64 and _gmtime64_s (POSIX's gmtime_r with its arguments swapped).
ffi.cdef(windows and [[
typedef int64_t time_t;
time_t time(time_t *t) __asm__("_time64");
]] or [[
typedef long time_t;
time_t time(time_t *t);
]])
ffi.cdef [[
int printf(const char *fmt, ...);
size_t strlen(const char *s);
char *getenv(const char *name);
struct tm { int tm_sec, tm_min, tm_hour, tm_mday, tm_mon, tm_year, tm_wday, tm_yday, tm_isdst;
            long tm_gmtoff; const char *tm_zone; };
struct tm *gmtime_r(const time_t *t, struct tm *out);
int _gmtime64_s(struct tm *out, const time_t *t);
size_t strftime(char *s, size_t max, const char *fmt, const struct tm *tm);
]]
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
local tm = ffi.new("struct tm")
if windows then C._gmtime64_s(tm, now) else C.gmtime_r(now, tm) end
local buf = ffi.new("char[64]")
local n = C.strftime(buf, 64, "%Y-%m-%d %H:%M:%S UTC", tm)
print(("time() = %d, that is %s (year %d)"):format(tonumber(t), ffi.string(buf, n), tm.tm_year + 1900))
