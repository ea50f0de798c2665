//! Build script: the benchmark binary exports its symbols so its C functions resolve through
//! `ffi.C` like any library function, the call path users take: `-rdynamic` for ELF; on
//! Windows (mingw's linker knows no `-rdynamic`) every symbol goes into the .exe's export
//! table, which `ffi.C` searches first there, as LuaJIT's does.

fn main() {
    let export = match std::env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("windows") => "-Wl,--export-all-symbols",
        _ => "-rdynamic",
    };
    println!("cargo:rustc-link-arg-bin=luaffi-bench={export}");
    println!("cargo:rerun-if-changed=build.rs");
}
