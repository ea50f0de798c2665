-- A tiny assertion library shared by the test scripts. The same scripts run under luaffi
-- (PUC Lua with this crate's ffi) and under LuaJIT (its built-in ffi, the reference).
local T = { passed = 0, failed = 0, skipped = 0, errors = {} }

-- True under LuaJIT: the reference implementation.
T.luajit = rawget(_G, "jit") ~= nil

local function record(ok, name, detail)
  if ok then
    T.passed = T.passed + 1
  else
    T.failed = T.failed + 1
    T.errors[#T.errors + 1] = name .. ": " .. detail
  end
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

-- got == want.
function T.eq(got, want, name)
  record(got == want, name, "expected " .. show(want) .. ", got " .. show(got))
end

-- cond is true.
function T.ok(cond, name)
  record(cond and true or false, name, "expected true, got " .. show(cond))
end

-- tostring(v) == want.
function T.str(v, want, name)
  local s = tostring(v)
  record(s == want, name, "expected " .. show(want) .. ", got " .. show(s))
end

-- tostring(v) matches a Lua pattern.
function T.like(v, pattern, name)
  local s = tostring(v)
  record(s:match(pattern) ~= nil, name, "expected a match for " .. show(pattern) .. ", got " .. show(s))
end

-- An error message without what legitimately differs between the implementations: the
-- position of the calling code (LuaJIT omits it for errors raised by ffi functions), the
-- function name in "bad argument" (LuaJIT's fast functions report '?'), and the line:column
-- prefix of cdef errors (luaffi names the position in the declaration text; deliberate).
function T.normalize(msg)
  msg = tostring(msg)
  msg = msg:gsub("^[^:\n]+:%d+: ", "", 1)
  msg = msg:gsub("^%d+:%d+: ", "", 1)
  msg = msg:gsub("^bad argument #(%d+) to '[^']*' %(", "bad argument #%1 (")
  return msg
end

-- A message with the parameter lists of function types left out, as LuaJIT spells them
-- (`int (*)()`; luaffi's conversion errors say `int (*)(const void *, const void *)`).
local function without_params(msg)
  return (msg:gsub("%)%b()", ")()"))
end

local function check_err(want, name, exact, f, ...)
  local ok, msg = pcall(f, ...)
  if ok then
    record(false, name, "expected error " .. show(want) .. ", but it succeeded")
  else
    local got = T.normalize(msg)
    local same = got == want or (not exact and without_params(got) == without_params(want))
    record(same, name, "expected error " .. show(want) .. ", got " .. show(got))
  end
end

-- f(...) raises exactly `want` (after T.normalize; function types' parameter lists are not
-- compared, see T.err_params).
function T.err(want, name, f, ...)
  check_err(want, name, false, f, ...)
end

-- f(...) raises exactly `want`, function types' parameter lists included (luaffi's own
-- spelling: use inside T.ours).
function T.err_params(want, name, f, ...)
  check_err(want, name, true, f, ...)
end

-- f(...) does not raise.
function T.noerr(name, f, ...)
  local ok, msg = pcall(f, ...)
  record(ok, name, "unexpected error " .. show(msg))
end

-- A test of behaviour where luaffi deliberately differs from LuaJIT: runs only under
-- luaffi; under LuaJIT it is skipped, printing the reason.
function T.ours(reason, f)
  if T.luajit then
    T.skipped = T.skipped + 1
    print("  skipped on LuaJIT (" .. reason .. ")")
  else
    f()
  end
end

-- The process's resident set size in KB (Linux), or nil where it cannot be read.
function T.rss_kb()
  local f = io.open("/proc/self/statm")
  if not f then return nil end
  local _, resident = f:read("*n", "*n")
  f:close()
  return resident * 4
end

-- Full collections until finalizers and weak tables have settled.
function T.settle()
  for _ = 1, 4 do collectgarbage("collect") end
end

-- Prints the summary; raises if anything failed.
function T.done(script)
  print(string.format("%s: %d passed, %d failed, %d skipped", script, T.passed, T.failed, T.skipped))
  if T.failed > 0 then
    error(script .. ": " .. T.failed .. " failed:\n  " .. table.concat(T.errors, "\n  "), 0)
  end
end

return T
