-- luaffi-rs: LuaJIT's `ffi` module for PUC Lua 5.1-5.5, built with cargo.
--
--   luarocks make                     -- from a checkout, for the Lua luarocks is set up for
--   luarocks --lua-version 5.1 make   -- for another Lua
--
-- The build needs Rust (cargo, rust >= 1.88) and fetches crates from crates.io; it calls no
-- other build back-end. It builds lua-adapter as the `ffi` module for the Lua that luarocks
-- targets (`$(LUA)`, asked for its _VERSION) and installs it as ffi.so in the tree's lib
-- directory. Environment: CARGO_TARGET_DIR (default ./target) is honoured;
-- LUAFFI_CARGO_PROFILE picks the cargo profile (default "release"; the project's tests use
-- "dev" to reuse their debug builds).
rockspec_format = "3.0"
package = "luaffi"
version = "scm-1"
source = {
   -- There is no published repository yet: use `luarocks make` in a checkout, which
   -- builds the files at hand and never fetches this URL.
   url = "git+file://./luaffi-rs",
}
description = {
   summary = "LuaJIT's FFI (ffi.cdef, ffi.new, ffi.C, callbacks) for PUC Lua 5.1-5.5",
   detailed = [[
A LuaJIT-compatible `ffi` module for standard Lua, written in Rust: C declarations,
C data, calls into C libraries and Lua callbacks through machine code generated at run
time for x86-64 (System V and Windows) and x86-32.]],
   license = "MIT",
   labels = { "ffi", "c", "luajit" },
}
supported_platforms = { "linux" }
dependencies = {
   "lua >= 5.1, < 5.6",
}
build = {
   type = "command",
   build_command = [[
set -e
lua_version=$("$(LUA)" -e "io.write((_VERSION:gsub('^Lua (%d+)%.(%d+).*$', '%1%2')))")
profile=${LUAFFI_CARGO_PROFILE:-release}
case "$profile" in dev|test) profile_dir=debug ;; *) profile_dir=$profile ;; esac
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --profile "$profile" -p lua-adapter --lib --no-default-features --features "module,lua$lua_version"
mkdir -p "$target_dir/luarocks"
cp "$target_dir/$profile_dir/liblua_adapter.so" "$target_dir/luarocks/ffi.so"
]],
   install_command = [[
cp "${CARGO_TARGET_DIR:-target}/luarocks/ffi.so" "$(LIBDIR)/ffi.so"
]],
}
