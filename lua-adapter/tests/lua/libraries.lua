-- Small bindings of real libraries written the way public LuaJIT-FFI bindings are (zlib's
-- deflate/inflate streams, sqlite3's statements), run unmodified: `ptr == nil` on NULLs from
-- C, `ffi.string(p, n)`, `ffi.gc`, `bit.band`, `ffi.typeof` with `$`, metatypes with
-- `__index` methods and `__gc`, out-parameters through one-element arrays (issue 17).
local T = require "testlib"
local ffi = require "ffi"
local bit = require "bit"

-- The first of `names` ffi.load opens, or nil and every error.
local function load_any(names)
  local errors = {}
  for _, name in ipairs(names) do
    local ok, lib = pcall(ffi.load, name)
    if ok then return lib end
    errors[#errors + 1] = tostring(lib)
  end
  return nil, table.concat(errors, "; ")
end

-- ---- zlib, streaming, as lua-zlib-ffi style bindings do ----

ffi.cdef [[
typedef void *(*lib_alloc_func)(void *opaque, unsigned int items, unsigned int size);
typedef void (*lib_free_func)(void *opaque, void *address);
typedef struct lib_z_stream_s {
  const unsigned char *next_in; unsigned int avail_in; unsigned long total_in;
  unsigned char *next_out; unsigned int avail_out; unsigned long total_out;
  const char *msg; struct lib_internal_state *state;
  lib_alloc_func zalloc; lib_free_func zfree; void *opaque;
  int data_type; unsigned long adler; unsigned long reserved;
} lib_z_stream;
const char *zlibVersion(void);
int deflateInit_(lib_z_stream *strm, int level, const char *version, int stream_size);
int deflate(lib_z_stream *strm, int flush);
int deflateEnd(lib_z_stream *strm);
int inflateInit_(lib_z_stream *strm, const char *version, int stream_size);
int inflate(lib_z_stream *strm, int flush);
int inflateEnd(lib_z_stream *strm);
unsigned long crc32(unsigned long crc, const unsigned char *buf, unsigned int len);
]]

local Z_OK, Z_STREAM_END, Z_FINISH, Z_NO_FLUSH = 0, 1, 4, 0
local zlib, why = load_any(ffi.os == "Windows" and { "zlib1" } or { "z", "libz.so.1" })
if ffi.os == "Windows" and not zlib then
  print("  no zlib1.dll on this host's path: the zlib binding is not run")
else
  T.ok(zlib ~= nil, "ffi.load zlib: " .. tostring(why))
end

if zlib then
  local stream_t = ffi.typeof("lib_z_stream")
  local buf_t = ffi.typeof("$[?]", ffi.typeof("unsigned char"))

  -- One stream object per call, ended by its finalizer if an error leaves it behind.
  local function stream(init, done)
    local s = ffi.gc(stream_t(), function(x) done(x) end)
    local ret = init(s)
    assert(ret == Z_OK, "init failed: " .. ret)
    return s
  end

  -- Pumps `input` through `step` in chunks of `chunk` bytes; returns the output.
  local function pump(s, step, input, chunk)
    local out, parts = buf_t(chunk), {}
    s.next_in, s.avail_in = input, #input
    repeat
      s.next_out, s.avail_out = out, chunk
      local ret = step(s, Z_FINISH)
      -- Z_BUF_ERROR (-5) with a full output buffer: more output to come.
      if ret == -5 and s.avail_out == 0 then ret = Z_OK end
      if ret ~= Z_OK and ret ~= Z_STREAM_END then
        error("zlib: " .. (s.msg ~= nil and ffi.string(s.msg) or tostring(ret)))
      end
      parts[#parts + 1] = ffi.string(out, chunk - s.avail_out)
    until ret == Z_STREAM_END
    return table.concat(parts)
  end

  local version = zlib.zlibVersion()
  local function compress(input)
    local s = stream(function(s) return zlib.deflateInit_(s, 9, version, ffi.sizeof(stream_t)) end, zlib.deflateEnd)
    local out = pump(s, zlib.deflate, input, 64)
    zlib.deflateEnd(ffi.gc(s, nil))
    return out
  end
  local function uncompress(input)
    local s = stream(function(s) return zlib.inflateInit_(s, version, ffi.sizeof(stream_t)) end, zlib.inflateEnd)
    local out = pump(s, zlib.inflate, input, 64)
    zlib.inflateEnd(ffi.gc(s, nil))
    return out
  end

  local text = string.rep("The quick brown fox jumps over the lazy dog. ", 40)
  local packed = compress(text)
  T.ok(#packed < #text / 4, "deflate shrinks repetitive text (" .. #text .. " -> " .. #packed .. ")")
  T.eq(uncompress(packed), text, "inflate gives the text back, chunk by chunk")
  local crc = tonumber(zlib.crc32(0, "abc", 3))
  T.eq(bit.tohex(crc), "352441c2", "crc32('abc') (an unsigned long result)")
  T.eq(bit.band(crc, 0xffff), 0x41c2, "bit.band of it")
  local s = stream_t()
  T.ok(s.msg == nil, "a NULL char * field read from a fresh stream == nil")
  T.err("zlib: incorrect header check", "a corrupt input reports zlib's message", uncompress, "not zlib data at all")
  collectgarbage()
end

-- ---- sqlite3, as lsqlite3-style FFI bindings do ----

ffi.cdef [[
typedef struct lib_sqlite3 lib_sqlite3;
typedef struct lib_sqlite3_stmt lib_sqlite3_stmt;
int sqlite3_open(const char *filename, lib_sqlite3 **ppDb);
int sqlite3_close(lib_sqlite3 *db);
const char *sqlite3_errmsg(lib_sqlite3 *db);
int sqlite3_exec(lib_sqlite3 *db, const char *sql, int (*callback)(void *, int, char **, char **), void *arg,
                 char **errmsg);
void sqlite3_free(void *p);
int sqlite3_prepare_v2(lib_sqlite3 *db, const char *sql, int nbyte, lib_sqlite3_stmt **stmt, const char **tail);
int sqlite3_bind_int64(lib_sqlite3_stmt *stmt, int i, int64_t value);
int sqlite3_bind_text(lib_sqlite3_stmt *stmt, int i, const char *text, int n, void (*destructor)(void *));
int sqlite3_bind_null(lib_sqlite3_stmt *stmt, int i);
int sqlite3_step(lib_sqlite3_stmt *stmt);
int sqlite3_column_count(lib_sqlite3_stmt *stmt);
int64_t sqlite3_column_int64(lib_sqlite3_stmt *stmt, int i);
const unsigned char *sqlite3_column_text(lib_sqlite3_stmt *stmt, int i);
int sqlite3_column_bytes(lib_sqlite3_stmt *stmt, int i);
int sqlite3_reset(lib_sqlite3_stmt *stmt);
int sqlite3_finalize(lib_sqlite3_stmt *stmt);
]]

local SQLITE_OK, SQLITE_ROW, SQLITE_DONE = 0, 100, 101
-- SQLITE_TRANSIENT: the destructor (void (*)(void *))-1, sqlite copies the text.
local TRANSIENT = ffi.cast("void (*)(void *)", -1)
local sqlite, swhy = load_any(ffi.os == "Windows" and { "sqlite3" } or { "sqlite3", "libsqlite3.so.0" })
if ffi.os == "Windows" and not sqlite then
  print("  no sqlite3.dll on this host: the sqlite3 binding is not run")
else
  T.ok(sqlite ~= nil, "ffi.load sqlite3: " .. tostring(swhy))
end

if sqlite then
  -- A statement object with methods (a metatype over the opaque struct).
  local Stmt = {}
  Stmt.__index = Stmt
  function Stmt:bind(i, v)
    if v == nil then return sqlite.sqlite3_bind_null(self, i) end
    if type(v) == "number" then return sqlite.sqlite3_bind_int64(self, i, v) end
    return sqlite.sqlite3_bind_text(self, i, v, #v, TRANSIENT)
  end
  function Stmt:rows()
    return function()
      local rc = sqlite.sqlite3_step(self)
      if rc == SQLITE_DONE then return nil end
      assert(rc == SQLITE_ROW, "step: " .. rc)
      local row = {}
      for c = 0, sqlite.sqlite3_column_count(self) - 1 do
        local p = sqlite.sqlite3_column_text(self, c)
        row[c + 1] = p ~= nil and ffi.string(p, sqlite.sqlite3_column_bytes(self, c)) or false
      end
      return row
    end
  end
  ffi.metatype("lib_sqlite3_stmt", Stmt)

  local pdb = ffi.new("lib_sqlite3 *[1]")
  T.eq(sqlite.sqlite3_open(":memory:", pdb), SQLITE_OK, "sqlite3_open through an out-parameter")
  local db = ffi.gc(pdb[0], sqlite.sqlite3_close)
  T.ok(db ~= nil, "the database handle is not NULL")

  local function exec(sql)
    local err = ffi.new("char *[1]")
    local rc = sqlite.sqlite3_exec(db, sql, nil, nil, err)
    if err[0] ~= nil then
      local msg = ffi.string(err[0])
      sqlite.sqlite3_free(err[0])
      return rc, msg
    end
    return rc
  end
  local function prepare(sql)
    local ps = ffi.new("lib_sqlite3_stmt *[1]")
    local rc = sqlite.sqlite3_prepare_v2(db, sql, #sql, ps, nil)
    if rc ~= SQLITE_OK then return nil, ffi.string(sqlite.sqlite3_errmsg(db)) end
    return ffi.gc(ps[0], sqlite.sqlite3_finalize)
  end

  T.eq(exec("create table t(id integer primary key, name text, big integer)"), SQLITE_OK, "create table")
  local ins = assert(prepare("insert into t(name, big) values(?, ?)"))
  for i, name in ipairs { "one", "two", "three" } do
    ins:bind(1, name)
    ins:bind(2, i * 1000000000)
    T.eq(sqlite.sqlite3_step(ins), SQLITE_DONE, "insert " .. name)
    sqlite.sqlite3_reset(ins)
  end
  local got = {}
  for row in assert(prepare("select id, name, big from t order by id")):rows() do
    got[#got + 1] = table.concat(row, ":")
  end
  T.eq(table.concat(got, " "), "1:one:1000000000 2:two:2000000000 3:three:3000000000", "rows read back through methods")
  local rc, msg = exec("select * from no_such_table")
  T.ok(rc ~= SQLITE_OK, "a bad statement fails")
  T.eq(msg, "no such table: no_such_table", "its message comes back through a char ** out-parameter")
  local none, perr = prepare("select frob( from t")
  T.ok(none == nil and perr:find("syntax error") ~= nil, "a NULL statement: " .. tostring(perr))
  local counted = 0
  local cb = ffi.cast("int (*)(void *, int, char **, char **)", function(_, n, values)
    counted = counted + n
    T.ok(values[0] ~= nil, "a callback's char ** argument")
    return 0
  end)
  T.eq(sqlite.sqlite3_exec(db, "select name, big from t", cb, nil, nil), SQLITE_OK, "exec with a callback")
  T.eq(counted, 6, "the callback saw every column")
  cb:free()
  ins = nil
  collectgarbage()
end

T.done("libraries.lua")
