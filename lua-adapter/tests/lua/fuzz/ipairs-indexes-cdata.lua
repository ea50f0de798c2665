-- Found by tests/fuzz_lua.rs (fixed): Lua 5.3+'s ipairs has no __ipairs, so ipairs(cdata)
-- indexed 1, 2, ... until nil, which an array or pointer never gives: it read past any array,
-- and a NULL pointer crashed at once. Now it raises, as LuaJIT does.
local ffi = require "ffi"
assert(not pcall(function() for _ in ipairs(ffi.new("int *")) do end end))
assert(not pcall(function() for _ in ipairs(ffi.new("int[4]")) do end end))
assert(not pcall(function() for _ in ipairs(ffi.new("struct { int x; }")) do end end))
