//! x86-32 backend (cdecl, stdcall, fastcall, thiscall; i386 Linux and Win32 flavours):
//! lowers an `abi_model` plan to call stubs and callback thunks. It decides no ABI fact.
