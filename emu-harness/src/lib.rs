//! Runs abi-model plans, backend stubs and callback thunks under an x86 emulator against
//! fixtures built by gcc and mingw. A test tool: never linked into what ships (GPL-2.0, through
//! unicorn).
