//! Disassembly for snapshots and `cargo xtask disasm`: iced-x86, Intel syntax, one
//! instruction per line as `addr: instruction`.

use abi_model::lua::helpers::Helper;
use abi_model::lua::CodeEnv;
use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter, MemorySizeOptions, OpKind};
use std::fmt::Write;

fn formatter() -> IntelFormatter {
    let mut f = IntelFormatter::new();
    let o = f.options_mut();
    o.set_space_after_operand_separator(true);
    o.set_hex_prefix("0x");
    o.set_hex_suffix("");
    o.set_uppercase_hex(false);
    // Every memory operand names its width: the widths are what a reviewer checks.
    o.set_memory_size_options(MemorySizeOptions::Always);
    f
}

/// Disassembles `bytes` placed at `base`.
pub fn disasm(bytes: &[u8], base: u64) -> String {
    disasm_inner(bytes, base, None)
}

/// Disassembles `bytes` placed at `base`, naming helper addresses that `env` binds
/// (`mov rax, 0x... ; luaffi_to_i32`).
pub fn disasm_with_env(bytes: &[u8], base: u64, env: &CodeEnv) -> String {
    disasm_inner(bytes, base, Some(env))
}

fn disasm_inner(bytes: &[u8], base: u64, env: Option<&CodeEnv>) -> String {
    let mut decoder = Decoder::with_ip(64, bytes, base, DecoderOptions::NONE);
    let mut f = formatter();
    let mut out = String::new();
    let mut text = String::new();
    let mut ins = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut ins);
        text.clear();
        f.format(&ins, &mut text);
        let _ = write!(out, "{:x}: {text}", ins.ip());
        if let Some(name) = env.and_then(|env| helper_named(&ins, env)) {
            let _ = write!(out, " ; {name}");
        }
        out.push('\n');
    }
    out
}

/// The helper whose address a `mov r64, imm64` loads.
fn helper_named(ins: &Instruction, env: &CodeEnv) -> Option<&'static str> {
    if ins.op_count() != 2 || ins.op1_kind() != OpKind::Immediate64 {
        return None;
    }
    let imm = ins.immediate64();
    Helper::ALL.into_iter().find(|h| env.helpers.get(h.id()) == Some(&imm)).map(Helper::name)
}
