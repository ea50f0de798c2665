-- Function-pointer members initialised from Lua functions inside a table initialiser: the
-- walk over the record's members creates callbacks (which makes C types and descriptors) as
-- it goes, plain members, arrays of function pointers and members of nested and anonymous
-- records alike. Each callback is then called through C and through the member.
local ffi = require "ffi"
local T = require "testlib"

local path = assert(os.getenv("LUAFFI_CALLTEST"), "LUAFFI_CALLTEST is not set")
ffi.cdef [[
int ct_call_binop(int (*f)(int, int), int a, int b);
double ct_call_dd(double (*f)(double, double), double a, double b);
typedef int (*rc_binop_t)(int, int);
struct rc_ops { int tag; rc_binop_t op; double (*div)(double, double); int after; };
struct rc_table { int n; rc_binop_t ops[3]; };
struct rc_outer {
  int first;
  struct rc_ops inner;
  struct { rc_binop_t anon_op; int anon_n; };
  union { rc_binop_t either; int64_t raw; };
  rc_binop_t last;
};
]]
local L = ffi.load(path)

local function add(a, b) return a + b end
local function sub(a, b) return a - b end
local function mul(a, b) return a * b end
local function div(a, b) return a / b end

-- By name.
local s = ffi.new("struct rc_ops", { tag = 7, op = mul, div = div, after = 9 })
T.eq(s.tag + s.after, 16, "members around the function pointers by name")
T.eq(L.ct_call_binop(s.op, 6, 7), 42, "named member: through C")
T.eq(s.op(6, 7), 42, "named member: through the member")
T.eq(L.ct_call_dd(s.div, 1, 4), 0.25, "second named member (another signature): through C")
T.eq(s.div(3, 4), 0.75, "second named member: through the member")

-- By position.
local p = ffi.new("struct rc_ops", { 3, sub, div, 4 })
T.eq(p.tag * p.after, 12, "members around the function pointers by position")
T.eq(L.ct_call_binop(p.op, 10, 3), 7, "positional member: through C")
T.eq(p.op(10, 3), 7, "positional member: through the member")

-- By position as ffi.new's arguments.
local m = ffi.new("struct rc_ops", 5, add, div, 6)
T.eq(m.tag + m.after, 11, "members around the function pointers as arguments")
T.eq(L.ct_call_binop(m.op, 10, 3) + m.div(1, 2), 13.5, "function pointers as arguments: through C and the member")

-- An array of function pointers, inside a record and on its own.
local t = ffi.new("struct rc_table", { n = 3, ops = { add, sub, mul } })
T.eq(t.n, 3, "member before the array")
T.eq(L.ct_call_binop(t.ops[0], 5, 3), 8, "array element 0: through C")
T.eq(L.ct_call_binop(t.ops[1], 5, 3), 2, "array element 1: through C")
T.eq(t.ops[2](5, 3), 15, "array element 2: through the element")
local a = ffi.new("rc_binop_t[2]", { mul, add })
T.eq(L.ct_call_binop(a[0], 4, 5) + a[1](4, 5), 29, "array of function pointers")

-- A nested record's members, an anonymous record's, a union's and the one after them.
local o = ffi.new("struct rc_outer", {
  first = 1,
  inner = { tag = 2, op = add, div = div, after = 3 },
  anon_op = sub,
  anon_n = 4,
  either = mul,
  last = function(x, y) return x * 100 + y end,
})
T.eq(o.first + o.inner.tag + o.inner.after + o.anon_n, 10, "plain members of every level")
T.eq(L.ct_call_binop(o.inner.op, 20, 22), 42, "nested record's member: through C")
T.eq(o.inner.div(1, 8), 0.125, "nested record's second member: through the member")
T.eq(L.ct_call_binop(o.anon_op, 20, 22), -2, "anonymous record's member: through C")
T.eq(o.anon_op(9, 4), 5, "anonymous record's member: through the member")
T.eq(o.either(6, 7), 42, "union member: through the member")
T.eq(L.ct_call_binop(o.last, 4, 2), 402, "member after the nested ones: through C")

-- The same by position: the anonymous members take their places in the list.
local q = ffi.new("struct rc_outer", { 5, { 6, add, div, 7 }, mul, 8, sub, add })
T.eq(q.first + q.inner.tag + q.inner.after + q.anon_n, 26, "positional: plain members of every level")
T.eq(q.inner.op(2, 3) + q.anon_op(2, 3) + q.either(2, 3) + q.last(2, 3), 5 + 6 - 1 + 5, "positional: every function pointer")

-- Many records in a row, each making new callbacks while its members are walked.
local total = 0
for i = 1, 50 do
  local r = ffi.new("struct rc_outer", {
    first = i,
    inner = { op = function(x, y) return x + y + i end },
    anon_op = function(x, y) return x * y end,
    last = function(x) return x - i end,
  })
  total = total + L.ct_call_binop(r.inner.op, 1, 2) + r.anon_op(i, 2) - L.ct_call_binop(r.last, i, 0)
end
T.eq(total, 50 * 3 + 1275 + 2 * 1275 - 0, "50 records with callbacks made during their initialisation")

T.done("record_callbacks.lua")
