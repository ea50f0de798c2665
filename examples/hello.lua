-- hello.lua: the first luaffi-rs example.
--   luaffi examples/hello.lua
--   lua5.4 examples/hello.lua   (with ffi.so from the module build on package.cpath)
-- It will grow real C calls (ffi.cdef + ffi.C.printf) as the ffi module grows.
local ffi = require "ffi"

print("ffi.os   = " .. ffi.os)
print("ffi.arch = " .. ffi.arch)
print(("Hello from luaffi-rs: %s, %s, %s-endian, %s."):format(
  _VERSION, ffi.abi("64bit") and "64-bit" or "32-bit",
  ffi.abi("le") and "little" or "big", ffi.abi("win") and "Windows ABI" or "non-Windows ABI"))
