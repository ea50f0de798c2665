-- Memory: a cdata's storage is owned by it and freed when it is collected. Allocating and
-- dropping 1,000,000 cdata must leave the Lua heap and the process RSS near the baseline.
local ffi = require "ffi"
local T = require "testlib"

ffi.cdef [[ struct mem_obj { double d; int a[6]; }; ]]

-- Under valgrind (`cargo xtask valgrind` sets LUAFFI_UNDER_VALGRIND) the loop is shorter and
-- the RSS is valgrind's own, so only the Lua heap is checked there.
local under_valgrind = os.getenv("LUAFFI_UNDER_VALGRIND") ~= nil
local N = under_valgrind and 20000 or 1000000

local rss_kb, settle = T.rss_kb, T.settle

-- Warm up once so that lazily created state (type descriptors, caches) is in the baseline.
for i = 1, 1000 do local x = ffi.new("struct mem_obj", i); local y = ffi.new("int[?]", 8) end
settle()
local heap0, rss0 = collectgarbage("count"), rss_kb()

local sum = 0
for i = 1, N do
  local o = ffi.new("struct mem_obj", { i, { i, i } })
  local v = ffi.new("int[?]", 4 + i % 8, i)
  local p = ffi.cast("int *", v) + 1
  sum = sum + o.a[1] + p[0] - v[0]
end
T.eq(sum, N * (N + 1) / 2, "the loop did its work")
settle()
local heap1, rss1 = collectgarbage("count"), rss_kb()
T.ok(heap1 < heap0 + 256, ("Lua heap back near baseline (%.0f KB -> %.0f KB)"):format(heap0, heap1))
if rss0 and not under_valgrind then
  T.ok(rss1 < rss0 + 16 * 1024, ("RSS back near baseline (%d KB -> %d KB)"):format(rss0, rss1))
end

T.done("memory.lua")
