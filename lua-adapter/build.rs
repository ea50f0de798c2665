//! Build script: the benchmark binary exports its symbols (`-rdynamic`) so its C functions
//! resolve through `ffi.C` like any library function, the call path users take.

fn main() {
    println!("cargo:rustc-link-arg-bin=luaffi-bench=-rdynamic");
    println!("cargo:rerun-if-changed=build.rs");
}
