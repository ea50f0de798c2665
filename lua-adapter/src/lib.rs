//! The `ffi` module for standard Lua: ctype registry, cdata, namespaces, helpers, the
//! executable-code arena and callbacks. Holds no ABI rules and no assembly.
