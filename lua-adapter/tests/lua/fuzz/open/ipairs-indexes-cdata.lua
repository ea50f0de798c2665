-- Open (found by tests/fuzz_lua.rs; left out there as "ipairs-indexes-cdata"): Lua 5.4 has no
-- __ipairs, so ipairs(cdata) indexes 1, 2, ... until it gets nil, which an array or pointer
-- never gives: it reads past any array, and a NULL pointer crashes at once. LuaJIT raises
-- "'int' has no '__ipairs' metamethod" for both. Run: luaffi open/ipairs-indexes-cdata.lua
local ffi = require "ffi"
print(pcall(function() for _ in ipairs(ffi.new("int *")) do end end))
print(pcall(function() for _ in ipairs(ffi.new("int[4]")) do end end))
