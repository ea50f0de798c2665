-- The host's preprocessed C headers go through ffi.cdef whole (issue 17): glibc's stdio.h
-- (with its __asm__-labelled redeclarations), stdlib.h, string.h, zlib.h and sqlite3.h, on
-- every Lua version the suite runs on; then functions declared by them are called. The
-- headers are preprocessed by the host's C compiler (`cc -E -P`, `-m32` for x86), so this
-- runs on Linux only. abi-model/tests/cdef_system_headers.rs checks the parser alone.
local T = require "testlib"
local ffi = require "ffi"

-- `#include <header>` preprocessed, or nil and why.
local function preprocessed(header)
  local m32 = ffi.arch == "x86" and " -m32" or ""
  local p = io.popen("printf '#include <%s>\\n' '" .. header .. "' | cc -E -P" .. m32 .. " -x c - 2>&1")
  local text = p:read("*a")
  local ok = p:close()
  -- 5.1's close gives no status: a failed run prints an error and no declarations.
  if ok == false or not text:find(";") then
    return nil, "cannot preprocess <" .. header .. "> (needs gcc" .. m32 .. ", zlib1g-dev, libsqlite3-dev): " .. text
  end
  return text
end

if ffi.os ~= "Linux" then
  print("  headers.lua needs the host's C compiler and glibc headers: not run on " .. ffi.os)
  T.done("headers.lua")
  return
end

local headers = {}
for _, h in ipairs { "stdio.h", "stdlib.h", "string.h", "sqlite3.h", "zlib.h" } do
  local text, why = preprocessed(h)
  T.ok(text ~= nil, why or h)
  headers[h] = text or ""
end

-- Once each, in an order LuaJIT takes too (its zlib.h after stdlib.h redefines struct
-- timeval: "attempt to redefine").
for _, h in ipairs { "stdio.h", "stdlib.h", "string.h", "sqlite3.h" } do
  T.noerr("cdef of <" .. h .. ">", ffi.cdef, headers[h])
end

-- Functions the headers declared, called as declared there.
local buf = ffi.new("char[32]")
T.eq(ffi.C.snprintf(buf, 32, "%d-%s", ffi.new("int", 42), "x"), 4, "snprintf from <stdio.h>")
T.eq(ffi.string(buf), "42-x", "snprintf wrote its text")
T.eq(tonumber(ffi.C.strlen("hello")), 5, "strlen from <string.h>")
T.eq(tonumber(ffi.C.strtol("ff", nil, 16)), 255, "strtol from <stdlib.h>")
local v = ffi.new("int[1]")
T.eq(ffi.C.sscanf("17", "%d", v), 1, "sscanf (declared with an __asm__ label) from <stdio.h>")
T.eq(v[0], 17, "sscanf read its number")
T.ok(ffi.sizeof("FILE") > 0, "FILE is a complete type")
T.ok(ffi.offsetof("struct _IO_FILE", "_flags") == 0, "struct _IO_FILE's first member")
T.eq(ffi.sizeof("sqlite3_int64"), 8, "sqlite3_int64 from <sqlite3.h>")

-- Beyond LuaJIT: a second cdef of identical declarations is accepted (LuaJIT: "attempt to
-- redefine" for the structs), so headers sharing declarations go in any order.
T.ours("identical struct redeclarations are accepted", function()
  if ffi.arch == "x86" then
    -- gcc's i386 <stddef.h> gives max_align_t a __float128 member (LuaJIT knows no
    -- __float128 either); abi-model/tests/cdef_system_headers.rs checks the refusal.
    T.err("'__float128' is not supported: the model has no such floating type", "i386 <zlib.h>", ffi.cdef, headers["zlib.h"])
    print("  <zlib.h> for i386 declares __float128: the zlib part is not run")
    return
  end
  T.noerr("cdef of <zlib.h> after <stdlib.h>", ffi.cdef, headers["zlib.h"])
  for _, h in ipairs { "stdio.h", "stdlib.h", "string.h", "sqlite3.h", "zlib.h" } do
    T.noerr("cdef of <" .. h .. "> again", ffi.cdef, headers[h])
  end
  -- zlib through its own header's declarations.
  local ok, z = pcall(ffi.load, "z")
  T.ok(ok, "ffi.load 'z': " .. tostring(z))
  if ok then
    T.like(ffi.string(z.zlibVersion()), "^1%.", "zlibVersion from <zlib.h>")
    local src = string.rep("luaffi ", 100)
    local n = ffi.new("uLongf[1]", z.compressBound(#src))
    local out = ffi.new("Bytef[?]", n[0])
    -- (Z_BEST_COMPRESSION and Z_OK are macros, gone after the preprocessor.)
    T.eq(z.compress2(out, n, src, #src, 9), 0, "compress2")
    local back, m = ffi.new("Bytef[?]", #src), ffi.new("uLongf[1]", #src)
    T.eq(z.uncompress(back, m, out, n[0]), 0, "uncompress")
    T.eq(ffi.string(back, m[0]), src, "the round trip")
  end
end)

T.done("headers.lua")
