-- zlib.lua: compress and uncompress a string with zlib, loaded with ffi.load: "z" opens libz.so
-- (Debian's zlib1g-dev), "zlib1" zlib1.dll, zlib's name on Windows (beside the program or on
-- PATH; Debian's libz-mingw-w64 has one for each Windows architecture).
--   luaffi examples/zlib.lua
local ffi = require "ffi"

ffi.cdef [[
unsigned long compressBound(unsigned long sourceLen);
int compress2(uint8_t *dest, unsigned long *destLen, const uint8_t *source, unsigned long sourceLen, int level);
int uncompress(uint8_t *dest, unsigned long *destLen, const uint8_t *source, unsigned long sourceLen);
const char *zlibVersion(void);
]]
-- zlib's own Windows build (and Debian's libz-mingw-w64) names the DLL zlib1.dll.
local zlib = ffi.load(ffi.os == "Windows" and "zlib1" or "z")

local function compress(text)
  local size = ffi.new("unsigned long[1]", zlib.compressBound(#text))
  local out = ffi.new("uint8_t[?]", size[0])
  local rc = zlib.compress2(out, size, text, #text, 9)
  assert(rc == 0, "compress2 failed: " .. rc)
  return ffi.string(out, size[0])
end

local function uncompress(data, original_size)
  local size = ffi.new("unsigned long[1]", original_size)
  local out = ffi.new("uint8_t[?]", original_size)
  local rc = zlib.uncompress(out, size, data, #data)
  assert(rc == 0, "uncompress failed: " .. rc)
  return ffi.string(out, size[0])
end

local text = string.rep("luaffi-rs calls zlib through a generated stub. ", 100)
local packed = compress(text)
local unpacked = uncompress(packed, #text)
print("zlib " .. ffi.string(zlib.zlibVersion()))
print(("%d bytes compressed to %d, uncompressed back to %d: %s"):format(
  #text, #packed, #unpacked, unpacked == text and "ok" or "MISMATCH"))
assert(unpacked == text)
