//! `cargo xtask disasm '<C declarations>' [--abi x64-sysv|x64-win|x86-linux|x86-win] [--lua 5.1..5.5]`:
//! for every function the declarations declare, prints its call plan, the stub and
//! callback-thunk programs, and the machine code the target's backend emits for them,
//! disassembled. With `--lua`, the stub is the one lua-adapter builds for a namespace function
//! on that Lua, laid out as on the target (`abi_model::lua::vm::LuaVm::for_target`; no 5.2 on
//! 32-bit x86): number arguments and results, the count check and the function address inline.
//!
//! The text may declare types first: `struct P { float x, y; }; struct P mid(struct P, struct P)`.
//! Conventions are written in the declaration (`int __stdcall f(int)`); `--abi` defaults to
//! the host's (x64-sysv). The code is assembled as the backends' snapshots show it
//! (`abi_model::lua::curated::listing`): at a fixed base with made-up helper and ctype addresses,
//! which the listing names.

use abi_model::cdef::{cdef, CScope};
use abi_model::lua::curated::{listing, Disassembler};
use abi_model::lua::steps::Inline;
use abi_model::lua::vm::LuaVm;
use abi_model::lua::Backend;
use abi_model::{plan_call, CType, Signature, Target, TypeTable};

fn usage() -> String {
    "usage: cargo xtask disasm '<C declarations>' [--abi x64-sysv|x64-win|x86-linux|x86-win] [--lua 5.1|5.2|5.3|5.4|5.5]".into()
}

/// Runs the task with the arguments after `disasm`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut text = None;
    let mut target = Target::X64_SYSV;
    let mut lua_version = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--abi" => {
                let name = it.next().ok_or_else(usage)?;
                target = Target::from_name(name).ok_or_else(|| format!("unknown ABI `{name}`\n{}", usage()))?;
            }
            "--lua" => lua_version = Some(it.next().ok_or_else(usage)?),
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(());
            }
            other if text.is_none() => text = Some(other.to_string()),
            other => return Err(format!("unexpected argument `{other}`\n{}", usage())),
        }
    }
    let text = text.ok_or_else(usage)?;
    // The layout of that version on the chosen target, as lua-adapter builds a namespace
    // function's stub with it.
    let inline = match lua_version {
        Some(v) if LuaVm::from_version(v).is_none() => return Err(format!("unknown Lua version `{v}`\n{}", usage())),
        Some(v) => {
            let vm = LuaVm::for_target(v, target)
                .ok_or_else(|| format!("Lua {v} has no inline stack layout on {target} (its stubs use the helpers)"))?;
            Some(abi_model::lua::curated::listing_inline(vm))
        }
        None => None,
    };
    print!("{}", declarations_listing(&text, target, inline.as_ref())?);
    Ok(())
}

/// The listing for every function declared in `text`, in the order their names appear.
pub fn declarations_listing(text: &str, target: Target, inline: Option<&Inline>) -> Result<String, String> {
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
    let (backend, disasm) = backend_for(target)?;
    let mut out = String::new();
    for name in seen {
        let decl = scope.function(name).expect("found above");
        let CType::Function(f) = table.get(decl.ty) else { unreachable!("a function declaration has a function type") };
        let sig = Signature::new(f.ret, f.params.iter().map(|p| p.ty).collect(), f.variadic, f.conv);
        let shown = format!("{name}: {}", table.display(decl.ty.into()));
        let plan = plan_call(&table, &sig, &[]).map_err(|e| format!("{target}: {shown}: {e}"))?;
        let text = listing(&plan, backend.as_ref(), disasm, f.variadic, inline)
            .map_err(|e| format!("{target}: {shown}: {e}"))?;
        out.push_str(&format!("{target}: {shown}\n\n{text}\n"));
    }
    Ok(out)
}

/// The identifiers of `src`, in order.
fn identifiers(src: &str) -> impl Iterator<Item = &str> {
    src.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
}

fn backend_for(target: Target) -> Result<(Box<dyn Backend>, Disassembler), String> {
    Ok(match target {
        Target::X64_SYSV => (Box::new(backend_x64_sysv::X64SysvBackend), backend_x64_sysv::disasm_with),
        Target::X64_WIN => (Box::new(backend_x64_win::Win64Backend), backend_x64_win::disasm_with_env),
        t => (Box::new(backend_x86::X86Backend::new(t).map_err(|e| e.to_string())?), backend_x86::disasm_with),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_plan_stub_and_thunk_for_each_abi() {
        let text = declarations_listing("int add(int a, int b)", Target::X64_SYSV, None).unwrap();
        assert!(text.starts_with("x64-sysv: add: int"), "{text}");
        assert!(text.contains("stub (") && text.contains("thunk ("), "{text}");
        let text = declarations_listing("int __stdcall sub2(int, int)", Target::X86_WIN, None).unwrap();
        // stdcall thunks pop their 8 argument bytes.
        assert!(text.contains("ret     8") || text.contains("ret 8"), "{text}");
        let text = declarations_listing(
            "struct P { float x, y; }; struct P mid(struct P a, struct P b)",
            Target::X64_WIN,
            None,
        )
        .unwrap();
        assert!(text.contains("mid"), "{text}");
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(declarations_listing("int x", Target::X64_SYSV, None).unwrap_err().contains("no function"));
        assert!(declarations_listing("int f(int", Target::X64_SYSV, None).is_err());
        assert!(declarations_listing("long double f(void)", Target::X64_SYSV, None).is_err());
    }
}
