-- bench-workloads.lua: the workloads of `luaffi-bench` beyond the per-call path, run alike by
-- luaffi-bench's embedded Lua (with luaffi-rs) and by `luajit -joff` (the reference). Plain
-- LuaJIT-FFI code: what differs between the two runs is the FFI and the interpreter only.
--
-- Globals given by the runner: SCALE (1 for the full run, smaller for --quick), ROUNDS,
-- HEADER (a preprocessed stdio.h + stdlib.h, or nil), HAND (the hand-written bindings
-- luaffi-bench registers, nil under LuaJIT). Returns a list of { key, value } rows: times in
-- ns, memory in bytes per object; the runner prints them against each other.
local ffi = require "ffi"
local SCALE, ROUNDS, HEADER, HAND = SCALE or 1, ROUNDS or 5, HEADER, HAND
local unpack = unpack or table.unpack
local rows = {}
local function row(key, value) rows[#rows + 1] = { key, value } end
local clock = os.clock

-- The best of ROUNDS runs of f, in seconds. Each run starts from a collected heap, so that
-- what it pays the collector is its own garbage's, not what the rows before it left (a row
-- that makes garbage fast, as qsort's comparators do, moved by up to 1.5x with that).
local function best(f)
  local b = math.huge
  for _ = 1, ROUNDS do
    collectgarbage()
    local t = clock(); f(); b = math.min(b, clock() - t)
  end
  return b
end

-- Pseudo-random numbers below 65537, the same on every Lua (exact in doubles and integers).
local function lcg(x) return (x * 75 + 74) % 65537 end

-- Distinct signatures: signature k is `int (int, T1, T2, ...)` with the Ti picked by k's
-- base-3 digits, so every k names a type the FFI has not seen yet. The functions all resolve
-- to libc's `abs` (asm label), which reads its first argument only.
local kinds = { "int", "double", "int64_t" }
local function params(k)
  local p = { "int" }
  repeat
    p[#p + 1] = kinds[k % 3 + 1]; k = math.floor(k / 3)
  until k == 0
  return table.concat(p, ", ")
end
local next_sig = 1
local function args_for(k)
  local a = {}
  for t in params(k):gmatch("[^, ]+") do a[#a + 1] = (t == "double") and 1.5 or 1 end
  return a
end

-- ffi.cdef of one declaration with a new signature, then the first call of it. The
-- declarations, names and arguments are made before the clock starts, as the cast row's type
-- strings are: formatting a declaration costs more than declaring it on Lua 5.x (~1.1 us
-- against ~0.8 us on 5.4), and the rows measure the FFI, not the script's string building.
do
  local K = math.max(20, math.floor(200 * SCALE))
  local cdef_t, call_t = math.huge, math.huge
  for _ = 1, ROUNDS do
    local first = next_sig
    next_sig = next_sig + K
    local decls, names, argv = {}, {}, {}
    for k = first, first + K - 1 do
      decls[k] = ("int bench_first_%d(%s) asm(\"abs\");"):format(k, params(k))
      names[k] = "bench_first_" .. k
      argv[k] = args_for(k)
    end
    collectgarbage() -- as `best` does, before each timed loop
    local t = clock()
    for k = first, first + K - 1 do
      ffi.cdef(decls[k])
    end
    cdef_t = math.min(cdef_t, clock() - t)
    collectgarbage()
    t = clock()
    for k = first, first + K - 1 do
      local r = ffi.C[names[k]](-7, unpack(argv[k], 2))
      assert(r == 7)
    end
    call_t = math.min(call_t, clock() - t)
  end
  row("cdef", cdef_t / K * 1e9)
  row("first_call", call_t / K * 1e9)
end

-- ffi.cast of an address to a new function-pointer type, and its first call.
do
  local K = math.max(20, math.floor(200 * SCALE))
  ffi.cdef "int abs(int);"
  local abs_addr = ffi.cast("void *", ffi.C.abs)
  local cast_t, castcall_t = math.huge, math.huge
  for _ = 1, ROUNDS do
    local first = next_sig
    next_sig = next_sig + 2 * K
    local types, argv = {}, {}
    for k = first, first + 2 * K - 1 do
      types[k] = ("int (*)(%s)"):format(params(k)); argv[k] = args_for(k)
    end
    collectgarbage()
    local t = clock()
    for k = first, first + K - 1 do
      ffi.cast(types[k], abs_addr)
    end
    cast_t = math.min(cast_t, clock() - t)
    collectgarbage()
    t = clock()
    for k = first + K, first + 2 * K - 1 do
      assert(ffi.cast(types[k], abs_addr)(-7, unpack(argv[k], 2)) == 7)
    end
    castcall_t = math.min(castcall_t, clock() - t)
  end
  row("cast_new_fnptr", cast_t / K * 1e9)
  row("cast_new_fnptr_call", castcall_t / K * 1e9)
end

-- qsort of doubles with a Lua comparator: taking `const void *` and casting (the example's),
-- and taking `const double *`; ns per comparison.
do
  ffi.cdef "void qsort(void *base, size_t n, size_t size, int (*compare)(const void *, const void *));"
  local n = math.max(1000, math.floor(100000 * SCALE))
  local src = ffi.new("double[?]", n)
  local x = 12345
  for i = 0, n - 1 do
    x = lcg(x)
    src[i] = x / 65537 * 1e6
  end
  local work = ffi.new("double[?]", n)
  local calls = 0
  local by_void = ffi.cast("int (*)(const void *, const void *)", function(a, b)
    calls = calls + 1
    local x, y = ffi.cast("const double *", a)[0], ffi.cast("const double *", b)[0]
    return x < y and -1 or (x > y and 1 or 0)
  end)
  local by_double = ffi.cast("int (*)(const double *, const double *)", function(a, b)
    calls = calls + 1
    local x, y = a[0], b[0]
    return x < y and -1 or (x > y and 1 or 0)
  end)
  -- (qsort's parameter type; LuaJIT would also take by_double as it is)
  local cmp_type = "int (*)(const void *, const void *)"
  for _, c in ipairs { { "qsort_void", by_void }, { "qsort_double", ffi.cast(cmp_type, by_double) } } do
    local per = math.huge
    for _ = 1, ROUNDS do
      ffi.copy(work, src, n * 8)
      calls = 0
      collectgarbage() -- as `best` does
      local t = clock()
      ffi.C.qsort(work, n, 8, c[2])
      per = math.min(per, (clock() - t) / calls)
    end
    for i = 1, n - 1 do assert(work[i - 1] <= work[i], "not sorted") end
    row(c[1], per * 1e9)
  end
  if HAND then
    -- The same comparator body under a hand-written qsort binding that boxes each element as
    -- a full userdata with an `__index` (what a `const double *` argument is to plain Lua).
    local by_hand = function(a, b)
      calls = calls + 1
      local x, y = a[0], b[0]
      return x < y and -1 or (x > y and 1 or 0)
    end
    local address = tonumber(ffi.cast("uintptr_t", work))
    local per = math.huge
    for _ = 1, ROUNDS do
      ffi.copy(work, src, n * 8)
      calls = 0
      collectgarbage()
      local t = clock()
      HAND.qsort_double(address, n, by_hand)
      per = math.min(per, (clock() - t) / calls)
    end
    for i = 1, n - 1 do assert(work[i - 1] <= work[i], "not sorted by hand") end
    row("qsort_double_hand", per * 1e9)
  end
  by_void:free(); by_double:free()
end

-- Memory of `struct { double x, y; }` in a table (bytes per object as Lua's allocator
-- counts them, the table's slot included), against a hand-written 16-byte full userdata: what
-- the second n objects add, over n, so that what a loop allocates once is not counted per
-- object (a type's own metatable on 5.1-5.3, ~1.3 KB; on 5.2 the records of deeper calls,
-- 0.6 KB: 0.0013 and 0.0006 B on each of 1M).
local function bytes_per(new, n)
  collectgarbage(); collectgarbage()
  local t = {}
  for i = 1, n do t[i] = new(i) end
  local before = collectgarbage("count")
  for i = n + 1, 2 * n do t[i] = new(i) end
  local after = collectgarbage("count")
  t = nil
  collectgarbage()
  return (after - before) * 1024 / n
end
do
  ffi.cdef "typedef struct { double x, y; } bench_vec2;"
  local n = math.max(10000, math.floor(1000000 * SCALE))
  local vec2 = ffi.typeof("bench_vec2")
  row("memory", bytes_per(function(i) return vec2(i, i) end, n))
  if HAND then
    local new = HAND.new_vec2
    row("memory_hand", bytes_per(function(i) return new(i, i) end, n))
  end
end

-- A struct field read and write through __index / __newindex; ns each, the bare loop taken
-- away.
do
  local v = ffi.new("bench_vec2", 1, 2)
  local N = math.max(100000, math.floor(2000000 * SCALE))
  local bare = best(function() for i = 1, N do end end)
  local s = 0
  local read = best(function() for i = 1, N do s = v.x end end)
  local write = best(function() for i = 1, N do v.y = i end end)
  row("field_read", (read - bare) / N * 1e9)
  row("field_write", (write - bare) / N * 1e9)
  if HAND then
    local h = HAND.new_vec2(1, 2)
    local hread = best(function() for i = 1, N do s = h.x end end)
    local hwrite = best(function() for i = 1, N do h.y = i end end)
    row("field_read_hand", (hread - bare) / N * 1e9)
    row("field_write_hand", (hwrite - bare) / N * 1e9)
  end
end

-- A particle loop: 10k particles of four doubles in a C array, moved 1 step each; ns per
-- particle step (4 field reads, 2 writes, array indexing).
do
  ffi.cdef "typedef struct { double x, y, vx, vy; } bench_particle;"
  local n = 10000
  local steps = math.max(5, math.floor(50 * SCALE))
  local p = ffi.new("bench_particle[?]", n)
  for i = 0, n - 1 do p[i].vx = i % 7; p[i].vy = i % 5 end
  local t = best(function()
    for _ = 1, steps do
      for i = 0, n - 1 do
        local q = p[i]
        q.x = q.x + q.vx * 0.01
        q.y = q.y + q.vy * 0.01
      end
    end
  end)
  row("particles", t / (n * steps) * 1e9)
end

-- zlib: 1 MB compressed and uncompressed back in 4 KB chunks; ns per chunk round trip.
do
  ffi.cdef [[
unsigned long compressBound(unsigned long sourceLen);
int compress2(uint8_t *dest, unsigned long *destLen, const uint8_t *source, unsigned long sourceLen, int level);
int uncompress(uint8_t *dest, unsigned long *destLen, const uint8_t *source, unsigned long sourceLen);
]]
  local ok, z = pcall(ffi.load, "z")
  if not ok then ok, z = pcall(ffi.load, "libz.so.1") end
  if ok then
    local chunk = 4096
    local total = chunk * math.max(16, math.floor(256 * SCALE))
    local data = ffi.new("uint8_t[?]", total)
    local x = 1
    for i = 0, total - 1 do
      x = lcg(x)
      data[i] = (x % 16) + 65 -- compressible, not trivially
    end
    local bound = tonumber(z.compressBound(chunk))
    local packed = ffi.new("uint8_t[?]", bound)
    local back = ffi.new("uint8_t[?]", chunk)
    local size = ffi.new("unsigned long[1]")
    local t = best(function()
      for off = 0, total - chunk, chunk do
        size[0] = bound
        assert(z.compress2(packed, size, data + off, chunk, 6) == 0)
        local plen = size[0]
        size[0] = chunk
        assert(z.uncompress(back, size, packed, plen) == 0)
      end
    end)
    assert(ffi.string(back, chunk) == ffi.string(data + (total - chunk), chunk))
    row("zlib", t / (total / chunk) * 1e9)
  end
end

-- ffi.cdef of a preprocessed stdio.h + stdlib.h, once (LuaJIT refuses to define its
-- structs again).
if HEADER then
  local t = clock()
  if pcall(ffi.cdef, HEADER) then row("header", (clock() - t) * 1e9) end
end

return rows
