-- luaffi-rs 0.1.0: LuaJIT's `ffi` module for PUC Lua 5.1-5.5, built with cargo.
--
--   luarocks install luaffi-0.1.0-1.src.rock        -- the source rock `cargo xtask dist` makes
--   luarocks --lua-version 5.1 install luaffi-0.1.0-1.src.rock
--
-- The same build as luaffi-scm-1.rockspec, from the release archive luaffi-0.1.0.tar.gz
-- (`cargo xtask dist` writes it, and the source rock holding it and this file, to
-- target/dist/; the source rock installs without a checkout or a download). Users without
-- Rust install a binary rock instead (target/dist/lua5.X/luaffi-0.1.0-1.linux-x86_64.rock;
-- .linux-x86, .win32-x86_64, .win32-x86). This rockspec builds on Linux only (its build is a
-- shell command); a Windows rock's copy says supported_platforms = { "windows" } and its
-- lib/ffi.dll imports the Lua DLL of its version (lua51.dll ... lua54.dll, see README).
-- The build needs Rust (cargo, rust >= 1.88) and the crates of Cargo.lock (from crates.io,
-- or cargo's cache). It builds lua-adapter as the `ffi` module for the Lua that luarocks
-- targets (`$(LUA)`, asked for its _VERSION) and installs it as ffi.so in the tree's lib
-- directory. Environment: CARGO_TARGET_DIR (default ./target) is honoured;
-- LUAFFI_CARGO_PROFILE picks the cargo profile (default "release"; the project's tests use
-- "dev" to reuse their debug builds).
rockspec_format = "3.0"
package = "luaffi"
version = "0.1.0-1"
source = {
   -- Where the release archive will be published (nothing is yet): the source rock
   -- (`cargo xtask dist`) carries this file, so installing it fetches nothing.
   url = "https://github.com/luaffi-rs/luaffi-rs/releases/download/v0.1.0/luaffi-0.1.0.tar.gz",
   dir = "luaffi-0.1.0",
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
