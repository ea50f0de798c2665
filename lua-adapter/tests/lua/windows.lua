-- Windows: ffi.C and ffi.load resolve as LuaJIT's do there, errno and FILE * are the C
-- runtime's (the one Lua's io library uses), and GetLastError() is what the last C call left.
-- Nothing to test on other systems.
local ffi = require "ffi"
local T = require "testlib"

if ffi.os ~= "Windows" then
  print("  not Windows: nothing to test")
  T.done("windows.lua")
  return
end

local C = ffi.C
ffi.cdef [[
typedef struct FILE FILE;
int fputs(const char *s, FILE *stream);
int fprintf(FILE *stream, const char *format, ...);
int fflush(FILE *stream);
long strtol(const char *s, char **end, int base);
uint32_t __stdcall GetLastError(void);
void __stdcall SetLastError(uint32_t code);
uint32_t __stdcall GetCurrentProcessId(void);
int __stdcall GetSystemMetrics(int index);
void * __stdcall GetStockObject(int object);
]]

-- ffi.C: the C runtime, then kernel32, user32 and gdi32 (LuaJIT's clib_getsym).
T.ok(C.GetCurrentProcessId() > 0, "ffi.C finds kernel32's functions")
T.eq(type(C.GetSystemMetrics(0)), "number", "ffi.C finds user32's functions")
T.ok(C.GetStockObject(0) ~= nil, "ffi.C finds gdi32's functions")
T.eq(C.strtol("-42", nil, 10), -42, "ffi.C finds the C runtime's functions")

-- ffi.load: a name without '.' gets ".dll"; a name with one is kept.
local k32 = ffi.load("kernel32")
T.eq(k32.GetCurrentProcessId(), C.GetCurrentProcessId(), "ffi.load('kernel32') is kernel32.dll")
T.eq(ffi.load("kernel32.dll").GetCurrentProcessId(), C.GetCurrentProcessId(), "ffi.load('kernel32.dll')")
local ok, msg = pcall(ffi.load, "luaffi_no_such_library")
T.ok(not ok and tostring(msg):find("cannot load module 'luaffi_no_such_library.dll': ", 1, true) == 1,
  "ffi.load's error names the file and the system's reason: " .. tostring(msg))
ok, msg = pcall(function() return k32.luaffi_no_such_function end)
T.ok(not ok and tostring(msg):find("missing declaration for symbol 'luaffi_no_such_function'", 1, true) ~= nil,
  "an undeclared name: " .. tostring(msg))

-- errno is the C runtime's: what strtol sets is what ffi.errno reports (ERANGE is 34).
ffi.errno(0)
C.strtol("99999999999999999999999", nil, 10)
T.eq(ffi.errno(), 34, "ffi.errno() after strtol overflowed")

-- GetLastError() is what the last C call left, whatever the module did in between (LuaJIT
-- saves and restores it around its own work): here a LoadLibrary that fails with its own
-- code, and allocations.
C.SetLastError(1234)
T.ok(not pcall(ffi.load, "luaffi_no_such_library"), "ffi.load fails (setting its own code)")
local keep = {}
for i = 1, 100 do keep[i] = ffi.new("char[?]", 4096) end
T.eq(C.GetLastError(), 1234, "GetLastError() after other work is the last call's")

-- An io file handle passes the C runtime's FILE *, which the runtime's functions use.
local path = (os.getenv("TEMP") or ".") .. "\\luaffi-windows-test.txt"
local f = assert(io.open(path, "w"))
f:write("lua;")
T.eq(C.fprintf(f, "%s=%d;", "fprintf", ffi.new("int", 42)), 11, "fprintf on an io file")
T.ok(C.fputs("fputs", f) >= 0, "fputs on an io file")
T.eq(C.fflush(f), 0, "fflush on an io file")
f:write(";lua")
f:close()
f = assert(io.open(path, "r"))
T.eq(f:read("*a"), "lua;fprintf=42;fputs;lua", "Lua's and C's writes share one FILE")
f:close()
os.remove(path)
io.stdout:write("  io.stdout: ")
T.ok(C.fputs("written by fputs through ffi.C\n", io.stdout) >= 0, "fputs on io.stdout")
T.eq(C.fflush(io.stdout), 0, "fflush on io.stdout")

T.done("windows.lua")
