-- LuaJIT idioms that PUC Lua lacks, and the other FFIs' APIs (issue 17, parts 1, 3 and 4):
-- `require "bit"`, NULL pointers, cffi-lua/luaffi functions, pairs/ipairs, error names, enum
-- names as strings.
local T = require "testlib"
local ffi = require "ffi"

-- require "bit": LuaJIT's own under LuaJIT (the reference), the module's elsewhere when no
-- `bit` is installed.
local function LL(n) return ffi.new("int64_t", n) end
local function ULL(n) return ffi.new("uint64_t", n) end

do
  local bit = require "bit"
  T.eq(type(bit), "table", "require 'bit' gives a table")
  T.eq(bit.tobit(2^32 + 5), 5, "tobit wraps modulo 2^32")
  T.eq(bit.tobit(0xffffffff), -1, "tobit is signed")
  T.eq(bit.tobit(1.5), 2, "tobit rounds half to even (1.5)")
  T.eq(bit.tobit(2.5), 2, "tobit rounds half to even (2.5)")
  T.eq(bit.tobit(-1.5), -2, "tobit rounds half to even (-1.5)")
  T.eq(bit.tobit("12"), 12, "tobit takes a numeric string")
  T.eq(bit.tobit(LL(0x100000001)), 1, "tobit of a cdata is a number")
  T.eq(bit.tohex(0x12345678), "12345678", "tohex default 8 digits")
  T.eq(bit.tohex(-1), "ffffffff", "tohex of -1")
  T.eq(bit.tohex(0x12345678, 2), "78", "tohex cuts to n digits")
  T.eq(bit.tohex(0x12345678, -4), "5678", "tohex negative n: upper case")
  T.eq(bit.tohex(0xabcdef, -6), "ABCDEF", "tohex upper case digits")
  T.eq(bit.tohex(-1, 9), "0ffffffff", "tohex pads past 8 digits")
  T.eq(bit.tohex(1, 0), "", "tohex with 0 digits")
  T.eq(bit.tohex(LL(-1)), "ffffffffffffffff", "tohex of a 64-bit cdata: 16 digits")
  T.eq(bit.tohex(LL(0x12345678) * 2^32 + 0x90abcdef, -20), "00001234567890ABCDEF", "tohex of a cdata, 20 digits")
  T.eq(bit.bnot(0), -1, "bnot")
  T.str(bit.bnot(LL(0)), "-1LL", "bnot of int64")
  T.str(bit.bnot(ULL(0)), "18446744073709551615ULL", "bnot of uint64")
  T.eq(bit.band(0xff, 0x0f, 0x3c), 0x0c, "band of three")
  T.eq(bit.bor(1, 2, 4), 7, "bor")
  T.eq(bit.bxor(1, 3, 7), 5, "bxor")
  T.eq(bit.band(-1, 0xffffffff), -1, "band result is signed")
  T.str(bit.band(LL(0x100000001), 0xffffffff), "1LL", "band with an int64 is 64-bit")
  T.str(bit.band(ffi.new("int", 5), 3), "1LL", "any numeric cdata makes it 64-bit")
  T.str(bit.bor(ffi.new("uint8_t", 1), 2), "3LL", "bor of a uint8_t cdata")
  T.str(bit.band(ULL(1), LL(1)), "1ULL", "uint64 wins")
  T.str(bit.band(LL(1), ULL(1)), "1ULL", "uint64 wins in second place")
  T.eq(bit.lshift(1, 33), 2, "lshift count modulo 32")
  T.str(bit.lshift(LL(1), 33), "8589934592LL", "lshift of int64, count modulo 64")
  T.eq(bit.lshift(1, LL(32)), 1, "a cdata count shifts a number on 32 bits")
  T.str(bit.rol(LL(1), 65), "2LL", "rol of int64")
  T.eq(bit.ror(1, 1), -2147483648, "ror")
  T.eq(bit.rol(0x12345678, 8), 0x34567812, "rol")
  T.eq(bit.arshift(-256, 4), -16, "arshift")
  T.eq(bit.rshift(-256, 4), 268435440, "rshift is logical")
  T.str(bit.arshift(LL(-256), 4), "-16LL", "arshift of int64")
  T.str(bit.rshift(LL(-256), 4), "1152921504606846960LL", "rshift of int64")
  T.eq(bit.bswap(0x12345678), 0x78563412, "bswap")
  T.str(bit.bswap(LL(0x1234)), "3752061439553044480LL", "bswap of int64")
  T.err("bad argument #1 (number expected, got no value)", "band without arguments", bit.band)
  T.err("bad argument #1 (number expected, got table)", "band of a table", bit.band, {})
  T.err("bad argument #2 (number expected, got no value)", "lshift without a count", bit.lshift, 1)
  T.err("bad argument #1 (number expected, got string)", "tobit of a word", bit.tobit, "x")
  T.err("bad argument #2 (cannot convert 'int *' to 'int64_t')", "band of a pointer", bit.band, 1, ffi.new("int *"))
  T.ok(require "bit" == bit, "require 'bit' twice gives the same table")

  -- An installed bit wins: package.preload (and every other searcher) comes first.
  local searchers = package.searchers or package.loaders
  local count = #searchers
  package.loaded.bit = nil
  package.preload.bit = function() return "installed bit" end
  T.eq(require "bit", "installed bit", "an installed bit is never overridden")
  package.preload.bit, package.loaded.bit = nil, bit
  package.loaded.ffi = nil
  T.ok(require "ffi" ~= nil, "require 'ffi' again")
  T.eq(#searchers, count, "require 'ffi' again adds no second searcher")
  package.loaded.ffi = ffi
  T.err("module 'no.such.module' not found:", "other names find nothing", function()
    local ok, msg = pcall(require, "no.such.module")
    error(msg:match("^[^\n]*"), 0)
  end)
end

T.done("compat.lua")
