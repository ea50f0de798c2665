-- Issue 14 (§2.4, §2.9, §2.10, §2.12, §3): counts and lengths from Lua are checked, never
-- truncated; every cdata is aligned to its type; records too large for the machine stack are
-- refused; `io` file handles pass their FILE *; surplus type parameters are errors.
local ffi = require "ffi"
local T = require "testlib"

local buf = ffi.new("char[8]", "abcdefg")
local i64 = function(v) return ffi.new("int64_t", v) end

-- §2.4 ffi.string(p, len): LuaJIT reads len as an int32 and refuses anything above its largest
-- string (0x7fffff00 bytes) or below 0 with "string length overflow".
for _, case in ipairs {
  { -1, "-1" }, { 2 ^ 31, "2^31" }, { 2 ^ 31 - 1, "2^31-1" }, { 0x7fffff01, "0x7fffff01" },
  { 2 ^ 32 + 3, "2^32+3" }, { 0 / 0, "NaN" }, { 1 / 0, "inf" }, { -1 / 0, "-inf" },
  { i64(-1), "int64_t(-1)" },
} do
  T.err("string length overflow", "ffi.string length " .. case[2], ffi.string, buf, case[1])
end
T.eq(ffi.string(buf, 3), "abc", "ffi.string with a valid length")
T.eq(ffi.string(buf, 2.7), "ab", "ffi.string length truncates its fraction as LuaJIT does")
T.eq(ffi.string(buf, i64(4)), "abcd", "ffi.string length from an int64_t")
T.eq(ffi.string(ffi.cast("char *", 0), 0), "", "ffi.string of NULL with length 0")
T.ours("LuaJIT truncates an int64_t length to its low 32 bits", function()
  T.err("string length overflow", "ffi.string length int64_t(2^32+3)", ffi.string, buf, i64(2 ^ 32 + 3))
  T.err("string length overflow", "ffi.string length uint64_t(2^64-1)", ffi.string, buf, ffi.new("uint64_t", -1))
end)

-- §2.4 ffi.copy / ffi.fill lengths and element counts: LuaJIT converts them to an int32
-- unchecked (a negative or huge length crashes it); here they must fit that int32 and be >= 0.
T.ours("LuaJIT copies or fills gigabytes for a negative or huge length", function()
  for _, case in ipairs { { -1, "-1" }, { 2 ^ 32 + 1, "2^32+1" }, { 0 / 0, "NaN" }, { i64(-1), "int64_t(-1)" }, { i64(2 ^ 32 + 1), "int64_t(2^32+1)" } } do
    T.err("bad argument #3 (length out of range)", "ffi.copy length " .. case[2], ffi.copy, buf, "xyz", case[1])
    T.err("bad argument #2 (length out of range)", "ffi.fill length " .. case[2], ffi.fill, buf, case[1])
  end
  T.eq(ffi.string(buf, 7), "abcdefg", "the buffer is untouched by the refused calls")
end)
ffi.copy(buf, "xyz", 2)
ffi.fill(buf + 2, 1.9, 65)
T.eq(ffi.string(buf, 4), "xyAd", "ffi.copy and ffi.fill with valid lengths")

for _, case in ipairs { { -1, "-1" }, { 2 ^ 31, "2^31" }, { 2 ^ 32 + 1, "2^32+1" }, { 0 / 0, "NaN" }, { i64(-1), "int64_t(-1)" } } do
  T.err("bad argument #1 (size of C type is unknown or too large)", "VLA count " .. case[2], ffi.new, "char[?]", case[1])
end
T.eq(ffi.sizeof("int[?]", -1), nil, "sizeof of a VLA with a negative count")
T.eq(ffi.sizeof("char[?]", 2 ^ 31), nil, "sizeof of a VLA of 2^31 bytes")
T.ours("LuaJIT truncates an int64_t element count to its low 32 bits", function()
  T.err("bad argument #1 (size of C type is unknown or too large)", "VLA count int64_t(2^32+1)", ffi.new, "char[?]", i64(2 ^ 32 + 1))
  T.eq(ffi.sizeof("char[?]", i64(2 ^ 32 + 1)), nil, "sizeof of a VLA with count int64_t(2^32+1)")
  local big = math.tointeger and math.tointeger(2 ^ 40)
  if big then
    T.err("bad argument #1 (size of C type is unknown or too large)", "VLA count integer 2^40+1", ffi.new, "char[?]", big + 1)
    T.err("string length overflow", "ffi.string length integer 2^40+3", ffi.string, buf, big + 3)
  end
end)
T.eq(ffi.sizeof(ffi.new("char[?]", i64(5))), 5, "VLA count from an int64_t")

-- §2.9 Every cdata is aligned to its type, variable-length ones included.
ffi.cdef [[
typedef struct __attribute__((aligned(16))) { char c; } sa16_t;
typedef struct __attribute__((aligned(32))) { char c; } sa32_t;
typedef struct __attribute__((aligned(64))) { char c; } sa64_t;
typedef struct __attribute__((aligned(4096))) { char c; } sa4k_t;
struct sa_vls16 { char n; sa16_t d[?]; };
struct sa_vls4k { char n; sa4k_t d[?]; };
]]
local function misalignment(cd, align)
  return tonumber(ffi.cast("uintptr_t", ffi.cast("void *", cd)) % align)
end
for _, a in ipairs { 16, 32, 64, 4096 } do
  local t = a == 4096 and "sa4k_t" or ("sa" .. a .. "_t")
  T.eq(ffi.alignof(t .. "[?]"), a, "alignof " .. t .. "[?]")
  local worst = 0
  for n = 1, 8 do
    worst = math.max(worst, misalignment(ffi.new(t), a), misalignment(ffi.new(t .. "[?]", n), a),
      misalignment(ffi.new(t .. "[2]"), a), misalignment(ffi.new(t .. "[?]", n, {}), a))
  end
  T.eq(worst, 0, "cdata of " .. t .. " (plain, fixed and variable arrays) aligned to " .. a)
end
T.eq(misalignment(ffi.new("struct sa_vls16", 3), 16), 0, "VLS with a 16-aligned member")
T.eq(misalignment(ffi.new("struct sa_vls4k", 2), 4096), 0, "VLS with a 4096-aligned member")
T.eq(misalignment(ffi.new("double[?]", 3), ffi.alignof("double")), 0, "VLA of double")
-- A typedef takes its aligned(n), as in gcc and LuaJIT, and objects of it are aligned so.
ffi.cdef "typedef int __attribute__((aligned(32))) sa_i32a_t;"
T.eq(ffi.sizeof("sa_i32a_t") .. "/" .. ffi.alignof("sa_i32a_t"), "4/32", "aligned(32) typedef of int")
T.eq(misalignment(ffi.new("sa_i32a_t"), 32), 0, "cdata of an aligned(32) typedef")

-- §2.10 Records passed by value that need more than 1 MiB of the machine stack are refused
-- (LuaJIT refuses more than 256 bytes of stack arguments: "NYI: cannot call this C function").
ffi.cdef [[
struct sa_big { char b[4194304]; };
struct sa_mib { char b[524288]; };
int abs(struct sa_big);
long labs(struct sa_mib);
]]
T.ours("LuaJIT refuses stack arguments above 256 bytes with an NYI error", function()
  local big = ffi.new("struct sa_big")
  local msg = "cannot call this C function: its stack arguments need 4194304 bytes (at most 1048576)"
  T.err(msg, "4 MiB record by value through a namespace", function() return ffi.C.abs(big) end)
  local f = ffi.cast("int (*)(struct sa_big)", ffi.cast("void *", 1))
  T.err(msg, "4 MiB record by value through a function pointer", function() return f(big) end)
  local co = coroutine.wrap(function() return pcall(f, big) end)
  local ok, err = co()
  T.eq(ok, false, "4 MiB record by value in a coroutine")
  T.eq(T.normalize(err), msg, "4 MiB record by value in a coroutine, message")
  local two = ffi.cast("int (*)(struct sa_mib, struct sa_mib, struct sa_mib)", ffi.cast("void *", 1))
  local mib = ffi.new("struct sa_mib")
  T.err("cannot call this C function: its stack arguments need 1572864 bytes (at most 1048576)", "three 512 KiB records by value", function() return two(mib, mib, mib) end)
  -- Below the bound the stub reserves its frame a page at a time (probing each page).
  T.ok(tonumber(ffi.C.labs(mib)) ~= nil, "a 512 KiB record by value is passed")
end)
-- (LuaJIT makes no callback taking a record at all, in the same words.)
T.err("cannot convert 'function' to 'int (*)()'", "callback taking a 4 MiB record", ffi.cast, "int (*)(struct sa_big)", function() return 0 end)

-- §2.12 An io file handle passes its FILE * (LuaJIT's rule for its io userdata).
ffi.cdef [[
typedef struct _IO_FILE FILE;
int fileno(FILE *stream);
int fputs(const char *s, FILE *stream);
int fflush(FILE *stream);
int fprintf(FILE *stream, const char *format, ...);
]]
T.eq(ffi.C.fileno(io.stdout), 1, "fileno(io.stdout)")
T.eq(ffi.C.fileno(io.stderr), 2, "fileno(io.stderr)")
local f = assert(io.tmpfile())
T.ok(ffi.C.fputs("hello ", f) >= 0, "fputs to a tmpfile")
ffi.C.fprintf(f, "%d %s", ffi.new("int", 42), "end")
ffi.C.fflush(f)
f:seek("set")
T.eq(f:read("*a"), "hello 42 end", "what fputs and fprintf wrote")
local fp = ffi.cast("FILE *", f)
T.eq(ffi.C.fileno(fp), ffi.C.fileno(f), "ffi.cast('FILE *', file) is the handle's FILE *")
T.ok(ffi.cast("void *", f) == ffi.cast("void *", fp), "ffi.cast('void *', file) too")
T.ok(ffi.new("struct { FILE *f; }", { f }).f == fp, "a FILE * member initialised from a file")
f:close()
T.ours("LuaJIT passes NULL for a closed file", function()
  T.err("bad argument #1 (attempt to use a closed file)", "fileno of a closed file", ffi.C.fileno, f)
  T.err("attempt to use a closed file", "cast of a closed file", ffi.cast, "FILE *", f)
end)

-- §3 Surplus or missing `$` parameters are errors, LuaJIT's words.
T.err("wrong number of type parameters", "typeof with a surplus parameter", ffi.typeof, "int", 1)
T.err("wrong number of type parameters", "typeof with a surplus nil", ffi.typeof, "int", nil)
T.err("wrong number of type parameters", "typeof with a surplus string", ffi.typeof, "int", "x")
T.err("wrong number of type parameters", "typeof with two for one", ffi.typeof, "int[$]", 3, 4)
T.err("wrong number of type parameters", "typeof with none for one", ffi.typeof, "int[$]")
T.err("bad argument #2 (type parameter expected, got nil)", "typeof with nil for $", ffi.typeof, "int[$]", nil)
T.err("bad argument #2 (type parameter expected, got table)", "typeof with a table for $", ffi.typeof, "int[$]", {})
T.err("bad argument #3 (type parameter expected, got boolean)", "typeof with a boolean for the second $", ffi.typeof, "struct { int $[$]; }", "x", true)
T.err("bad argument #1 (wrong number of type parameters)", "typeof of a ctype with a parameter", ffi.typeof, ffi.typeof("int"), 1)
T.err("bad argument #1 (wrong number of type parameters)", "typeof of a ctype with a nil", ffi.typeof, ffi.typeof("int"), nil)
T.err("bad argument #1 (wrong number of type parameters)", "typeof of a cdata with a parameter", ffi.typeof, ffi.new("int"), 1)
T.err("wrong number of type parameters", "cdef with a surplus parameter", ffi.cdef, "typedef int sa_t1;", 1)
T.err("wrong number of type parameters", "cdef with a missing parameter", ffi.cdef, "typedef int sa_t2[$];")
T.err("bad argument #2 (type parameter expected, got nil)", "cdef with nil for $", ffi.cdef, "typedef int $;", nil)
T.err("wrong number of type parameters", "new of a $ type", ffi.new, "int[$]", 3)
T.err("wrong number of type parameters", "cast to a $ type", ffi.cast, "int(*)[$]", 3)
T.err("wrong number of type parameters", "sizeof of a $ type", ffi.sizeof, "int[$]", 3)
T.str(ffi.typeof("int[$]", 3), "ctype<int [3]>", "typeof with the right parameters")
T.str(ffi.typeof(ffi.typeof("int")), "ctype<int>", "typeof of a ctype alone")

T.done("safety_api.lua")
