-- ffi.metatype: every metamethod LuaJIT supports on cdata, __index/__newindex included.
local ffi = require "ffi"
local T = require "testlib"

ffi.cdef [[
typedef struct mt_vec { double x, y; } mt_vec_t;
typedef struct mt_box { int v; } mt_box_t;
typedef struct mt_fin { int id; } mt_fin_t;
typedef struct mt_tab { int a; } mt_tab_t;
]]

local vec
local mt = {
  __add = function(a, b) return vec(a.x + b.x, a.y + b.y) end,
  __sub = function(a, b) return vec(a.x - b.x, a.y - b.y) end,
  __mul = function(a, k) return vec(a.x * k, a.y * k) end,
  __div = function(a, k) return vec(a.x / k, a.y / k) end,
  __mod = function(a, k) return vec(a.x % k, a.y % k) end,
  __pow = function(a, k) return vec(a.x ^ k, a.y ^ k) end,
  __unm = function(a) return vec(-a.x, -a.y) end,
  __eq = function(a, b) return a.x == b.x and a.y == b.y end,
  __lt = function(a, b) return a.x < b.x end,
  __le = function(a, b) return a.x <= b.x end,
  __len = function(a) return math.sqrt(a.x * a.x + a.y * a.y) end,
  __concat = function(a, b) return tostring(a) .. "|" .. tostring(b) end,
  __tostring = function(a) return ("vec(%d,%d)"):format(a.x, a.y) end,
  __call = function(a, k) return a.x * k end,
  __index = { norm2 = function(a) return a.x * a.x + a.y * a.y end, kind = "vector" },
}
vec = ffi.metatype("mt_vec_t", mt)
local a, b = vec(1, 2), vec(3, 4)
T.str(ffi.typeof(a), "ctype<struct mt_vec>", "metatype returns the ctype")
T.eq((a + b).x, 4, "__add") T.eq((b - a).y, 2, "__sub") T.eq((a * 3).y, 6, "__mul")
T.eq((b / 2).x, 1.5, "__div") T.eq((b % 2).x, 1, "__mod") T.eq((a ^ 2).y, 4, "__pow")
T.eq((-a).x, -1, "__unm") T.ok(a == vec(1, 2), "__eq") T.ok(a ~= b, "__eq false")
T.ok(a < b, "__lt") T.ok(a <= b, "__le") T.eq(#b, 5, "__len")
T.eq(a .. b, "vec(1,2)|vec(3,4)", "__concat") T.str(a, "vec(1,2)", "__tostring")
T.eq(a(10), 10, "__call") T.eq(a:norm2(), 5, "__index table method") T.eq(a.kind, "vector", "__index table value")
T.eq(a.x, 1, "fields before __index")
local pa = ffi.cast("mt_vec_t *", a)
T.eq(pa:norm2(), 5, "__index through a pointer") T.str(pa, "vec(1,2)", "__tostring through a pointer")
T.err("'struct mt_vec' has no member named 'nope'", "__index table without the key", function() return a.nope end)

-- __index / __newindex functions, __new.
local store = {}
local box = ffi.metatype("mt_box_t", {
  __index = function(self, k) return "virtual " .. k end,
  __newindex = function(self, k, v) store[k] = v end,
  __new = function(ct, v) return ffi.new(ct, v * 2) end,
})
local bx = box(21)
T.eq(bx.v, 42, "__new") T.eq(bx.other, "virtual other", "__index function")
bx.extra = 5 T.eq(store.extra, 5, "__newindex function") bx.v = 1 T.eq(bx.v, 1, "fields before __newindex")
T.eq(box.static, "virtual static", "__index on the ctype object")

-- __newindex table.
local sink = {}
local tab = ffi.metatype("mt_tab_t", { __newindex = sink })
local tb = tab()
tb.q = 3 T.eq(sink.q, 3, "__newindex table")
T.err("cannot change a protected metatable", "metatype twice", ffi.metatype, "mt_tab_t", {})

-- __gc of a metatype runs for ffi.new objects, once.
local freed = {}
local fin = ffi.metatype("mt_fin_t", { __gc = function(o) freed[#freed + 1] = o.id end })
do local f1, f2 = fin(1), ffi.new("mt_fin_t", 2) end
collectgarbage(); collectgarbage()
table.sort(freed)
T.eq(#freed, 2, "metatype __gc ran for both") T.eq(freed[1], 1, "first") T.eq(freed[2], 2, "second")
collectgarbage()
T.eq(#freed, 2, "and only once")

-- getmetatable(cdata) is protected as in LuaJIT.
T.eq(getmetatable(a), "ffi", "getmetatable(cdata)")

T.done("metatype.lua")
