//! `cargo xtask disasm '<C declarations>' [--abi x64-sysv|x64-win|x86-linux|x86-win] [--lua 5.1..5.5]`:
//! for every function the declarations declare, prints its call plan, the stub and
//! callback-thunk programs, and the machine code the target's backend emits for them,
//! disassembled. With `--lua`, the stub is the one lua-adapter builds for a namespace function
//! on that Lua, laid out as on the target (`abi_model::lua::vm::LuaVm::for_target`; no 5.2 on
//! 32-bit x86): the count check, the function address, number, string and record arguments,
//! number results, errno and the callback's entry inline (every backend lowers them; a target
//! without a layout for that Lua is an error).
//!
//! The text may declare types first: `struct P { float x, y; }; struct P mid(struct P, struct P)`.
//! Conventions are written in the declaration (`int __stdcall f(int)`); `--abi` defaults to
//! the host's (x64-sysv). The code is assembled as the backends' snapshots show it
//! (`abi_model::lua::curated::listing`): at a fixed base with made-up helper and ctype addresses,
//! which the listing names, in the one format of `emu_harness::listing` for every `--abi`.

use abi_model::cdef::{cdef, CScope};
use abi_model::lua::curated::listing;
use abi_model::lua::steps::Inline;
use abi_model::lua::vm::LuaVm;
use abi_model::lua::Backend;
use abi_model::{plan_call, CType, Signature, Target, TypeTable};
use emu_harness::listing::disassembler;

fn usage() -> String {
    "usage: cargo xtask disasm '<C declarations>' [--abi x64-sysv|x64-win|x86-linux|x86-win] [--lua 5.1|5.2|5.3|5.4|5.5]".into()
}

/// Runs the task with the arguments after `disasm`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut text = None;
    let mut target = Target::X64_SYSV;
    let mut lua = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--abi" => {
                let name = it.next().ok_or_else(usage)?;
                target = Target::from_name(name).ok_or_else(|| format!("unknown ABI `{name}`\n{}", usage()))?;
            }
            "--lua" => lua = Some(it.next().ok_or_else(usage)?),
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(());
            }
            other if text.is_none() => text = Some(other.to_string()),
            other => return Err(format!("unexpected argument `{other}`\n{}", usage())),
        }
    }
    let text = text.ok_or_else(usage)?;
    // As lua-adapter builds a namespace function's stub.
    let inline = lua.map(|v| lua_layout(v, target)).transpose()?.map(abi_model::lua::curated::listing_inline);
    print!("{}", declarations_listing(&text, target, inline.as_ref())?);
    Ok(())
}

/// The stack layout of Lua `version` on `target`: an error, not a listing without inline
/// steps, when the model has none for the target's pointer width.
fn lua_layout(version: &str, target: Target) -> Result<LuaVm, String> {
    LuaVm::from_version(version).ok_or_else(|| format!("unknown Lua version `{version}`\n{}", usage()))?;
    LuaVm::for_target(version, target)
        .ok_or_else(|| format!("{target}: abi_model::lua::vm has no Lua {version} stack layout for this target"))
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
    let backend = backend_for(target)?;
    let disasm = disassembler(target);
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

fn backend_for(target: Target) -> Result<Box<dyn Backend>, String> {
    Ok(match target {
        Target::X64_SYSV => Box::new(backend_x64_sysv::X64SysvBackend),
        Target::X64_WIN => Box::new(backend_x64_win::Win64Backend),
        t => Box::new(backend_x86::X86Backend::new(t).map_err(|e| e.to_string())?),
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
        assert!(text.contains("ret 8"), "{text}");
        let text = declarations_listing(
            "struct P { float x, y; }; struct P mid(struct P a, struct P b)",
            Target::X64_WIN,
            None,
        )
        .unwrap();
        assert!(text.contains("mid"), "{text}");
    }

    /// One format for every ABI (a test of the checker's own catches is in emu-harness).
    #[test]
    fn every_abi_prints_the_one_listing_format() {
        for target in Target::ALL {
            let text = declarations_listing("double mix(double a, int b, float c, long long d)", target, None).unwrap();
            assert!(text.contains("stub (") && text.contains("thunk ("), "{text}");
            assert_eq!(emu_harness::listing::format_violations(&text), Vec::<String>::new(), "{target}");
        }
        let inline = abi_model::lua::curated::listing_inline(LuaVm::LUA54);
        let text = declarations_listing("int add(int a, int b)", Target::X64_SYSV, Some(&inline)).unwrap();
        assert_eq!(emu_harness::listing::format_violations(&text), Vec::<String>::new());
    }

    #[test]
    fn lua_layouts_are_the_targets_own() {
        assert_eq!(lua_layout("5.4", Target::X64_WIN).unwrap().name, LuaVm::LUA54.name);
        assert!(lua_layout("5.0", Target::X64_SYSV).unwrap_err().contains("unknown Lua version"));
        // Never a 64-bit stack layout read by 32-bit code, nor its silent absence.
        match lua_layout("5.4", Target::X86_WIN) {
            Ok(vm) => assert_eq!(vm.ptr_size, 4),
            Err(e) => assert!(e.contains("no Lua 5.4 stack layout"), "{e}"),
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(declarations_listing("int x", Target::X64_SYSV, None).unwrap_err().contains("no function"));
        assert!(declarations_listing("int f(int", Target::X64_SYSV, None).is_err());
        assert!(declarations_listing("long double f(void)", Target::X64_SYSV, None).is_err());
    }
}
