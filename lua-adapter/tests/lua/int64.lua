-- 64-bit integer cdata: arithmetic, comparisons, tostring, mixing with Lua numbers.
local ffi = require "ffi"
local T = require "testlib"

local i64 = function(v) return ffi.new("int64_t", v) end
local u64 = function(v) return ffi.new("uint64_t", v) end

T.str(i64(123), "123LL", "tostring int64") T.str(u64(123), "123ULL", "tostring uint64")
T.str(i64(-1), "-1LL", "tostring negative int64")
-- A negative number to uint64_t: a Lua integer (5.3+) wraps modulo 2^64 as C converts an
-- integer; a float, and every number on LuaJIT and 5.1/5.2, takes the double rule (the
-- reference LuaJIT gives 2^63). Narrower unsigned types wrap modulo 2^N either way.
local U64_MAX = "18446744073709551615ULL"
local has_integers = math.type ~= nil and math.type(-1) == "integer"
local neg_u64 = has_integers and U64_MAX or "9223372036854775808ULL"
T.str(u64(-1), neg_u64, "uint64 from -1")
T.str(u64(-1.0), "9223372036854775808ULL", "uint64 from -1.0 (reference LuaJIT's conversion)")
T.str(ffi.cast("uint64_t", -1), neg_u64, "cast -1 to uint64")
T.str(u64(-5), has_integers and "18446744073709551611ULL" or "9223372036854775808ULL", "uint64 from -5")
T.str(ffi.cast("unsigned long long", -(2^53)), "9223372036854775808ULL", "-2^53 as a float")
if has_integers then
  T.str(u64(math.tointeger(-2^53)), "18437736874454810624ULL", "uint64 from the integer -2^53")
  T.str(u64(math.mininteger), "9223372036854775808ULL", "uint64 from mininteger")
  -- Beyond int32_t a Lua integer still narrows modulo 2^N (the double rule narrows through
  -- int32_t, giving INT32_MIN's low bits).
  T.eq(tonumber(ffi.new("uint8_t", math.tointeger(2^32 + 5))), 5, "uint8 from an integer beyond int32")
  T.eq(tonumber(ffi.new("int32_t", math.tointeger(2^32 + 7))), 7, "int32 from an integer beyond int32")
end
T.eq(tonumber(ffi.new("uint32_t", -1)), 4294967295, "uint32 from -1 wraps")
T.eq(tonumber(ffi.cast("uint32_t", -2^32 - 3)), 4294967293, "uint32 wraps modulo 2^32")
T.eq(tonumber(ffi.new("uint16_t", -1)), 65535, "uint16 from -1 wraps")
T.eq(tonumber(ffi.new("uint8_t", -2)), 254, "uint8 from -2 wraps")
local ua = ffi.new("uint64_t[3]", -1, -2)
T.str(ua[0], neg_u64, "uint64 array initialiser")
ua[2] = -1
T.str(ua[2], neg_u64, "uint64 element store")
local us = ffi.new("struct { uint64_t v; uint32_t w; }", -1, -1)
T.str(us.v, neg_u64, "uint64 field initialiser")
T.eq(tonumber(us.w), 4294967295, "uint32 field initialiser wraps")
us.v = -1
T.str(us.v, neg_u64, "uint64 field store")
local ret_u64 = ffi.cast("uint64_t (*)(void)", function() return -1 end)
T.str(ret_u64(), neg_u64, "uint64 callback result")
ret_u64:free()
T.str(u64(2^64 + 2^12), "4096ULL", "uint64 wraps modulo 2^64 from 2^63")
T.str(i64(2^63), "-9223372036854775808LL", "int64 out of range")
T.str(ffi.new("long long", 5), "5LL", "long long prints as int64")

-- Arithmetic.
local cases = {
  { i64(7) + 2, "9LL" }, { i64(7) - 10, "-3LL" }, { i64(7) * 6, "42LL" }, { i64(7) / 2, "3LL" },
  { i64(-7) / 2, "-3LL" }, { i64(-7) % 3, "-1LL" }, { i64(7) % -3, "1LL" }, { i64(2) ^ 10, "1024LL" },
  { i64(2) ^ -1, "0LL" }, { i64(1) ^ -5, "1LL" }, { i64(-1) ^ -3, "-1LL" }, { i64(0) ^ -1, "9223372036854775807LL" },
  { -i64(5), "-5LL" }, { -u64(1), "18446744073709551615ULL" }, { u64(2) ^ 64, "0ULL" },
  { u64(1) + i64(-2), "18446744073709551615ULL" }, { 2 + i64(3), "5LL" }, { i64(3) + i64(4), "7LL" },
  { u64(10) / 3, "3ULL" }, { u64(10) % 3, "1ULL" }, { i64(-1) / 0, "-9223372036854775808LL" },
  { ffi.new("int", 5) + 1, "6LL" }, { ffi.new("double", 1.5) + 1, "2LL" }, { ffi.new("int", -3) + 0.9, "-3LL" },
  { ffi.new("uint8_t", 255) + 1, "256LL" }, { ffi.new("uint32_t", 2^32 - 1) + 1, "4294967296LL" },
  { i64(2^53) + 1, "9007199254740993LL" }, { u64(2^63) * 2, "0ULL" }, { i64(5) - u64(6), "18446744073709551615ULL" },
  { i64(100) * i64(100), "10000LL" }, { i64(9) % 4, "1LL" }, { 9 - i64(4), "5LL" },
}
for i, c in ipairs(cases) do T.str(c[1], c[2], "int64 arithmetic #" .. i) end

-- Comparisons.
T.ok(i64(5) == i64(5), "int64 == int64") T.ok(i64(5) ~= i64(6), "int64 ~=")
T.ok(i64(5) < i64(6), "int64 <") T.ok(i64(-1) < i64(0), "signed <") T.ok(not (u64(-1) < u64(0)), "unsigned <")
T.ok(i64(5) <= i64(5), "int64 <=") T.ok(u64(1) > i64(-1) == false, "uint64 vs -1 compares unsigned")
T.ok(i64(2) >= i64(1), "int64 >=")
T.ok(ffi.new("int", 3) == ffi.new("int", 3), "int cdata equality compares values")

-- Mixed with Lua numbers: PUC Lua calls __lt/__le for mixed operands from 5.2 on, and __eq
-- only between two userdata (5.1 needs both operands of the same type for all three).
if T.luajit then
  T.ok(i64(5) == 5, "LuaJIT: int64 == number")
else
  T.ours("PUC Lua never calls __eq for a userdata and a number", function()
    T.ok(i64(5) ~= 5, "int64 ~= number (PUC Lua semantics)")
  end)
end
if T.luajit or _VERSION ~= "Lua 5.1" then
  T.ok(i64(5) < 6, "int64 < number") T.ok(4 < i64(5), "number < int64") T.ok(i64(5) <= 5, "int64 <= number")
end

-- tonumber and conversions back.
T.eq(tonumber(i64(2^53 + 1)), 2^53, "tonumber rounds to double beyond 2^53 (LuaJIT)") 
T.eq(tonumber(i64(-42)), -42, "tonumber int64")
T.eq(tonumber(u64(-1)), has_integers and 2^64 or 2^63, "tonumber uint64")
T.eq(tonumber(ffi.new("int", 7)), 7, "tonumber int cdata")
T.eq(tonumber("12"), 12, "tonumber still converts strings")
T.eq(tonumber("z", 36), 35, "tonumber keeps its base argument")
T.eq(tonumber({}), nil, "tonumber of a table is nil")
T.eq(tonumber(ffi.new("int *")), nil, "tonumber of a pointer is nil")
T.eq(tonumber(ffi.new("bool", true)), 1, "tonumber of a bool cdata")
T.str(ffi.new("int64_t", i64(9)), "9LL", "int64 from int64 cdata")
T.eq(tonumber(ffi.new("int32_t", i64(2^32 + 7))), 7, "int32 from int64 keeps low bits")
T.eq(tonumber(ffi.cast("int8_t", u64(511))), -1, "cast uint64 to int8")
local arr = ffi.new("int[4]", 10, 20, 30, 40)
T.eq(arr[i64(2)], 30, "index with an int64 cdata")

-- Reads of 64-bit members: boxed on LuaJIT and Lua 5.1/5.2, Lua integers on 5.3+ when exact.
local s = ffi.new("struct { int64_t a; uint64_t b; }", 1, 2)
if T.luajit or not math.type then
  T.str(s.a, "1LL", "boxed int64 read") T.str(s.b, "2ULL", "boxed uint64 read")
else
  T.ours("64-bit reads are Lua integers on 5.3+", function()
    T.eq(math.type(s.a), "integer", "int64 read is an integer") T.eq(s.a + 1, 2, "integer arithmetic")
    s.b = u64(-1)
    T.str(s.b, U64_MAX, "uint64 above maxinteger stays boxed")
    s.b = math.maxinteger
    T.eq(s.b, math.maxinteger, "uint64 at maxinteger is an integer")
  end)
end

T.done("int64.lua")
