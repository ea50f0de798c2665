//! x86-64 Windows backend: lowers an `abi_model` plan to call stubs and callback thunks.
//! It decides no ABI fact.
