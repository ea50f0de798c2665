-- Open (issue 14 §2.3; left out in tests/fuzz_lua.rs as "vls-member-write"): the count 0.5
-- truncates to 0 elements, and the initialiser's table still writes 3 doubles into the VLS
-- member, past the object. Found by the fuzzer under glibc's malloc checks (free() aborts;
-- at once with LD_PRELOAD=libc_malloc_debug.so.0 MALLOC_CHECK_=3, or `cargo xtask asan`).
-- LuaJIT 2.1 crashes on it too (segfault).
local ffi = require "ffi"
ffi.cdef "struct fz_v { int n; double d[?]; };"
print(pcall(ffi.new, "struct fz_v", 0.5, ffi.new("int64_t", -1), {1, 2, 3}))
collectgarbage()
collectgarbage()
