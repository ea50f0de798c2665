//! `cargo xtask disasm '<C declarations>' [--abi x64-sysv|x64-win|x86-linux|x86-win]`: for
//! every function the declarations declare, prints its call plan, the stub and callback-thunk
//! programs, and the machine code the target's backend emits for them, disassembled.
//!
//! The text may declare types first: `struct P { float x, y; }; struct P mid(struct P, struct P)`.
//! Conventions are written in the declaration (`int __stdcall f(int)`); `--abi` defaults to
//! the host's (x64-sysv). The code is assembled at a fixed base with made-up helper and ctype
//! addresses, which the listing names.

use abi_model::cdef::{cdef, CScope};
use abi_model::helpers::Helper;
use abi_model::steps::{stub_program, thunk_program};
use abi_model::{plan_call, Backend, CType, CallbackFrame, CodeEnv, Signature, Target, TypeTable};

/// Where the listing's code is assembled.
const BASE: u64 = 0x10_0000;

fn usage() -> String {
    "usage: cargo xtask disasm '<C declarations>' [--abi x64-sysv|x64-win|x86-linux|x86-win]".into()
}

/// Runs the task with the arguments after `disasm`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut text = None;
    let mut target = Target::X64_SYSV;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--abi" => {
                let name = it.next().ok_or_else(usage)?;
                target = Target::from_name(name).ok_or_else(|| format!("unknown ABI `{name}`\n{}", usage()))?;
            }
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(());
            }
            other if text.is_none() => text = Some(other.to_string()),
            other => return Err(format!("unexpected argument `{other}`\n{}", usage())),
        }
    }
    let text = text.ok_or_else(usage)?;
    print!("{}", listing(&text, target)?);
    Ok(())
}

/// The listing for every function declared in `text`, in the order their names appear.
pub fn listing(text: &str, target: Target) -> Result<String, String> {
    let mut table = TypeTable::new(target);
    let mut scope = CScope::new(&mut table);
    let mut src = text.trim().to_string();
    if !src.ends_with(';') {
        src.push(';');
    }
    cdef(&mut table, &mut scope, &src, &[]).map_err(|e| format!("{target}: {e}"))?;
    let mut seen = Vec::new();
    for name in identifiers(&src) {
        if scope.function(name).is_some() && !seen.contains(&name) {
            seen.push(name);
        }
    }
    if seen.is_empty() {
        return Err(format!("no function is declared in `{text}`"));
    }
    let backend = backend_for(target)?;
    let mut out = String::new();
    for name in seen {
        let decl = scope.function(name).expect("found above");
        let CType::Function(f) = table.get(decl.ty) else { unreachable!("a function declaration has a function type") };
        let sig = Signature::new(f.ret, f.params.iter().map(|p| p.ty).collect(), f.variadic, f.conv);
        let shown = format!("{name}: {}", table.display(decl.ty.into()));
        let plan = plan_call(&table, &sig, &[]).map_err(|e| format!("{target}: {shown}: {e}"))?;
        let env = fake_env(target, plan.args.len());
        let stub = stub_program(&plan, 1);
        let stub_code = backend.stub(&stub, BASE, &env).map_err(|e| format!("{target}: {shown}: stub: {e}"))?;
        out.push_str(&format!("{target}: {shown}\n\nplan:\n{plan}\n\nstub program:\n{stub}stub ({} bytes):\n{}", stub_code.len(), disasm(target, &stub_code, &env)));
        if f.variadic {
            out.push_str("\n(no callback thunk: variadic functions cannot be callbacks)\n");
        } else {
            let thunk = thunk_program(&CallbackFrame::from_plan(&plan));
            let thunk_code = backend.thunk(&thunk, BASE, &env).map_err(|e| format!("{target}: {shown}: thunk: {e}"))?;
            out.push_str(&format!("\nthunk program:\n{thunk}thunk ({} bytes):\n{}", thunk_code.len(), disasm(target, &thunk_code, &env)));
        }
        out.push('\n');
    }
    Ok(out)
}

/// The identifiers of `src`, in order.
fn identifiers(src: &str) -> impl Iterator<Item = &str> {
    src.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
}

fn backend_for(target: Target) -> Result<Box<dyn Backend>, String> {
    Ok(match target {
        Target::X64_SYSV => Box::new(backend_x64_sysv::X64SysvBackend),
        Target::X64_WIN => Box::new(backend_x64_win::Win64Backend),
        t => Box::new(backend_x86::X86Backend::new(t).map_err(|e| e.to_string())?),
    })
}

fn disasm(target: Target, code: &[u8], env: &CodeEnv) -> String {
    match target {
        Target::X64_SYSV => backend_x64_sysv::disasm_with(code, BASE, env),
        Target::X64_WIN => backend_x64_win::disasm_with_env(code, BASE, env),
        _ => backend_x86::disasm_with(code, BASE, env),
    }
}

/// Recognisable made-up addresses for helpers and ctype descriptors (the listing names them).
/// 32-bit targets get 32-bit addresses.
fn fake_env(target: Target, nargs: usize) -> CodeEnv {
    let high = if target.pointer_size() == 8 { 0x7f00_0000_0000 } else { 0x7f00_0000 };
    let data = if target.pointer_size() == 8 { 0x5500_0000_0000 } else { 0x5500_0000 };
    CodeEnv {
        helpers: Helper::ALL.iter().map(|h| high + 0x1000 + 0x10 * h.id() as u64).collect(),
        arg_ctypes: (0..nargs).map(|i| data + 0x100 + 0x10 * i as u64).collect(),
        ret_ctype: data,
        callback_data: data + 0x0100_0000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_plan_stub_and_thunk_for_each_abi() {
        let text = listing("int add(int a, int b)", Target::X64_SYSV).unwrap();
        assert!(text.starts_with("x64-sysv: add: int"), "{text}");
        assert!(text.contains("stub (") && text.contains("thunk ("), "{text}");
        let text = listing("int __stdcall sub2(int, int)", Target::X86_WIN).unwrap();
        // stdcall thunks pop their 8 argument bytes.
        assert!(text.contains("ret     8") || text.contains("ret 8"), "{text}");
        let text = listing("struct P { float x, y; }; struct P mid(struct P a, struct P b)", Target::X64_WIN).unwrap();
        assert!(text.contains("mid"), "{text}");
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(listing("int x", Target::X64_SYSV).unwrap_err().contains("no function"));
        assert!(listing("int f(int", Target::X64_SYSV).is_err());
        assert!(listing("long double f(void)", Target::X64_SYSV).is_err());
    }
}
