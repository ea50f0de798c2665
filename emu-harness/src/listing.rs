//! The one disassembly format of generated code: `cargo xtask disasm` and every backend's
//! snapshots print through here, so a signature's listings on the four targets read side by
//! side.
//!
//! iced-x86, Intel syntax, one instruction a line as `address: instruction`, with
//! - one space after the mnemonic and after each operand comma (`mov rbp, rsp`);
//! - hex numbers as lowercase `0x..` (immediates, displacements, branch targets without
//!   leading zeros); numbers up to 9 in decimal;
//! - the width of every memory operand (`dword ptr [esp+0x8]`): the widths are what a
//!   reviewer checks;
//! - with a [`CodeEnv`], its addresses named: helpers by their C name, ctype constants as
//!   `ctype(argN)` / `ctype(ret)`, the callback data as `cbdata`.
//!
//! [`format_violations`] checks that a text is in this format; the snapshot tests apply it.

use abi_model::lua::helpers::Helper;
use abi_model::lua::steps::CtypeRef;
use abi_model::lua::CodeEnv;
use abi_model::Target;
use iced_x86::{
    Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter, MemorySizeOptions, SymbolResolver, SymbolResult,
};
use std::collections::HashMap;
use std::fmt::Write;

/// `address: instruction` lines for `bytes` of `bitness`-bit code (32 or 64) placed at `base`,
/// with the addresses of `env` named when one is given.
pub fn disassemble(bitness: u32, bytes: &[u8], base: u64, env: Option<&CodeEnv>) -> String {
    let mut formatter = IntelFormatter::with_options(env.map(|e| Box::new(Names::of(e)) as Box<_>), None);
    let o = formatter.options_mut();
    o.set_space_after_operand_separator(true);
    o.set_hex_prefix("0x");
    o.set_hex_suffix("");
    o.set_uppercase_hex(false);
    o.set_branch_leading_zeros(false);
    o.set_memory_size_options(MemorySizeOptions::Always);
    let mut decoder = Decoder::with_ip(bitness, bytes, base, DecoderOptions::NONE);
    let mut out = String::new();
    let mut text = String::new();
    let mut instruction = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut instruction);
        text.clear();
        formatter.format(&instruction, &mut text);
        let _ = writeln!(out, "{:06x}: {}", instruction.ip(), text.trim_end());
    }
    out
}

/// 32-bit code, its addresses named by `env` (a `Disassembler` of `abi_model::lua::curated`).
pub fn disasm32(bytes: &[u8], base: u64, env: &CodeEnv) -> String {
    disassemble(32, bytes, base, Some(env))
}

/// 64-bit code, its addresses named by `env` (a `Disassembler` of `abi_model::lua::curated`).
pub fn disasm64(bytes: &[u8], base: u64, env: &CodeEnv) -> String {
    disassemble(64, bytes, base, Some(env))
}

/// The disassembler for code generated for `target`.
pub fn disassembler(target: Target) -> abi_model::lua::curated::Disassembler {
    if target.pointer_size() == 8 {
        disasm64
    } else {
        disasm32
    }
}

/// The names of `env`'s addresses.
struct Names(HashMap<u64, String>);

impl Names {
    fn of(env: &CodeEnv) -> Names {
        let mut names = HashMap::new();
        // Later insertions win: a helper names its address before a ctype that shares it.
        names.insert(env.callback_data, "cbdata".to_string());
        names.insert(env.ret_ctype, ctype_name(CtypeRef::Ret));
        for (i, c) in env.arg_ctypes.iter().enumerate().rev() {
            names.insert(*c, ctype_name(CtypeRef::Arg(i)));
        }
        for h in Helper::ALL {
            names.insert(env.helper(h), h.name().to_string());
        }
        // An unset address (0) is a number, not a name.
        names.remove(&0);
        Names(names)
    }
}

fn ctype_name(r: CtypeRef) -> String {
    match r {
        CtypeRef::Arg(i) => format!("ctype(arg{i})"),
        CtypeRef::Ret => "ctype(ret)".to_string(),
    }
}

impl SymbolResolver for Names {
    fn symbol(&mut self, _: &Instruction, _: u32, _: Option<u32>, address: u64, _: u32) -> Option<SymbolResult<'_>> {
        self.0.get(&address).map(|name| SymbolResult::with_str(address, name.as_str()))
    }
}

/// Panics, naming every broken line, unless `text` keeps the format of [`disassemble`] (see
/// [`format_violations`]): what a snapshot test asserts before it compares.
pub fn assert_format(text: &str) {
    let found = format_violations(text);
    assert!(found.is_empty(), "{} lines break the listing format:\n{}", found.len(), found.join("\n"));
}

/// Every line of `text` that looks like a disassembled instruction (`hex: ...`) and breaks the
/// format of [`disassemble`], with the rule it breaks: an operand comma without its space, a
/// `h`-suffixed or uppercase hex number, a memory operand without its width, an address
/// column that is not lowercase hex of at least 6 digits. Other lines (plans, programs,
/// headers) are not checked.
pub fn format_violations(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let Some((address, instruction)) = line.split_once(": ") else { continue };
        if address.is_empty() || !address.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let mut broken = |rule: &str| found.push(format!("{rule}: `{line}`"));
        if address.len() < 6 || address.bytes().any(|b| b.is_ascii_uppercase()) {
            broken("address not lowercase hex of 6 or more digits");
        }
        if instruction.contains("  ") || instruction.starts_with(' ') {
            broken("spacing other than one space");
        }
        if instruction.as_bytes().windows(2).any(|w| w[0] == b',' && w[1] != b' ') {
            broken("operand comma without a space");
        }
        let words = instruction.split(|c: char| !c.is_ascii_alphanumeric() && c != '_');
        for word in words.filter(|w| w.starts_with(|c: char| c.is_ascii_digit())) {
            let hex_suffixed =
                word.len() > 1 && word.ends_with('h') && word[..word.len() - 1].bytes().all(|b| b.is_ascii_hexdigit());
            if hex_suffixed {
                broken("hex number with an `h` suffix");
            } else if let Some(digits) = word.strip_prefix("0x") {
                if digits.bytes().any(|b| b.is_ascii_uppercase()) {
                    broken("uppercase hex number");
                }
            } else if !word.bytes().all(|b| b.is_ascii_digit()) {
                broken("number neither decimal nor 0x hex");
            }
        }
        let no_width = instruction.match_indices('[').any(|(at, _)| !instruction[..at].ends_with("ptr "));
        let takes_no_width = ["lea ", "nop ", "prefetch"].iter().any(|m| instruction.starts_with(m));
        if no_width && !takes_no_width {
            broken("memory operand without its width");
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The listings' environment: helpers at 0x7f001000 + 16 * id, the ctype of argument i at
    /// 0x55000100 + 16 * i, the return type's at 0x55000000, the callback data at 0x56000000.
    fn env() -> CodeEnv {
        abi_model::lua::curated::listing_env(Target::X86_LINUX, 2)
    }

    #[test]
    fn names_helpers_ctypes_and_the_callback_data() {
        let gettop = 0x7f00_1000 + 16 * Helper::ArgCount.id() as u32;
        // mov eax, gettop; mov dword ptr [esp+8], ctype(arg1); push cbdata; mov ecx, ctype(ret)
        let mut code = vec![0xb8];
        code.extend(gettop.to_le_bytes());
        code.extend([0xc7, 0x44, 0x24, 0x08]);
        code.extend(0x5500_0110u32.to_le_bytes());
        code.push(0x68);
        code.extend(0x5600_0000u32.to_le_bytes());
        code.push(0xb9);
        code.extend(0x5500_0000u32.to_le_bytes());
        let text = disasm32(&code, 0x10_0000, &env());
        assert_eq!(
            text,
            "100000: mov eax, luaffi_gettop\n\
             100005: mov dword ptr [esp+8], ctype(arg1)\n\
             10000d: push cbdata\n\
             100012: mov ecx, ctype(ret)\n"
        );
        assert!(format_violations(&text).is_empty(), "{:?}", format_violations(&text));
    }

    #[test]
    fn both_widths_print_hex_and_spacing_alike() {
        // push rbp; mov rbp, rsp; sub rsp, 0x58; mov [rbp-0x40], rax; jne to itself
        let code64 = [0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x58, 0x48, 0x89, 0x45, 0xc0, 0x75, 0xfe];
        assert_eq!(
            disassemble(64, &code64, 0x1000, None),
            "001000: push rbp\n001001: mov rbp, rsp\n001004: sub rsp, 0x58\n\
             001008: mov qword ptr [rbp-0x40], rax\n00100c: jne short 0x100c\n"
        );
        // push ebp; mov ebp, esp; and esp, -16
        let code32 = [0x55, 0x89, 0xe5, 0x83, 0xe4, 0xf0];
        assert_eq!(
            disassemble(32, &code32, 0x10_0000, Some(&env())),
            "100000: push ebp\n100001: mov ebp, esp\n100003: and esp, 0xfffffff0\n"
        );
        assert_eq!(disassembler(Target::X86_WIN)(&code32, 0, &env()), disasm32(&code32, 0, &env()));
        assert_eq!(disassembler(Target::X64_WIN)(&code64, 0, &env()), disasm64(&code64, 0, &env()));
    }

    /// The checker catches each drift the three old formatters had.
    #[test]
    fn format_violations_catch_every_other_style() {
        for (wrong, rule) in [
            ("100001: mov rbp,rsp", "comma"),
            ("100005: sub rsp, 38h", "`h` suffix"),
            ("100007: and esp, 0FFFFFFF0h", "`h` suffix"),
            ("100007: and esp, 0xFFFFFFF0", "uppercase"),
            ("100001: mov     rbp, rsp", "spacing"),
            ("100004: mov [rbp-0x40], rax", "width"),
            ("1000c: push rbp", "address"),
            ("100020: je short 000000000010003Ch", "`h` suffix"),
        ] {
            let found = format_violations(wrong);
            assert!(found.iter().any(|f| f.contains(rule)), "`{wrong}` should break the {rule} rule: {found:?}");
        }
        let right = "plan:\n  arg0: i32 [sp+0]\n100000: lea rcx, [rsp+0x20]\n100005: call qword ptr [rsp+0x30]\n";
        assert_eq!(format_violations(right), Vec::<String>::new());
        assert_format(right);
        assert!(std::panic::catch_unwind(|| assert_format("100001: mov rbp,rsp")).is_err());
    }
}
