//! x86-64 System V backend: lowers an `abi_model` plan to call stubs and callback thunks.
//! It decides no ABI fact.
