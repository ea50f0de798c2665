-- Open (issue 14 §2.2; left out in tests/fuzz_lua.rs as "string-init-overflow"): a Lua string
-- initialising a char array copies #s+1 bytes whatever the array's size. Found by the fuzzer
-- as: glibc aborts in free() at the next collection (at once with
-- LD_PRELOAD=libc_malloc_debug.so.0 MALLOC_CHECK_=3).
local ffi = require "ffi"
print(pcall(ffi.new, "uint8_t[?]", 0, "int[?]"))
print(pcall(ffi.new, ffi.typeof("int8_t[0]"), "p"))
collectgarbage()
collectgarbage()
