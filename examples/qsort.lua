-- qsort.lua: the C library's qsort sorting 100,000 numbers with a Lua comparator.
--   luaffi examples/qsort.lua [count]
local ffi = require "ffi"

ffi.cdef [[
void qsort(void *base, size_t n, size_t size, int (*compare)(const void *, const void *));
]]

local n = tonumber(arg and arg[1]) or 100000
local numbers = ffi.new("double[?]", n)
math.randomseed(42)
for i = 0, n - 1 do
  numbers[i] = math.random() * 1e6
end

-- A Lua function as a C function pointer (a callback), freed when done.
local calls = 0
local compare = ffi.cast("int (*)(const void *, const void *)", function(a, b)
  calls = calls + 1
  local x, y = ffi.cast("const double *", a)[0], ffi.cast("const double *", b)[0]
  return x < y and -1 or (x > y and 1 or 0)
end)

local start = os.clock()
ffi.C.qsort(numbers, n, ffi.sizeof("double"), compare)
local seconds = os.clock() - start
compare:free()

for i = 1, n - 1 do
  if numbers[i - 1] > numbers[i] then
    error(("not sorted at %d: %g > %g"):format(i, numbers[i - 1], numbers[i]))
  end
end
print(("sorted %d numbers with %d Lua comparisons in %.3f s: ok"):format(n, calls, seconds))
print(("smallest %.3f, largest %.3f"):format(numbers[0], numbers[n - 1]))
