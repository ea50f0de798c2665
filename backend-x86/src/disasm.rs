//! Disassembly of generated code (iced-x86, 32-bit, Intel syntax), one instruction per line.

use abi_model::lua::helpers::Helper;
use abi_model::lua::steps::CtypeRef;
use abi_model::lua::CodeEnv;
use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter, SymbolResolver, SymbolResult};
use std::collections::HashMap;

/// `addr: instruction` lines for 32-bit code `bytes` assembled at `base`.
pub fn disasm(bytes: &[u8], base: u64) -> String {
    format_with(IntelFormatter::new(), bytes, base)
}

/// As [`disasm`], with the addresses and constants of `env` named: helpers by their C name,
/// ctype constants as `ctype(argN)` / `ctype(ret)`, the callback data as `cbdata`.
pub fn disasm_with(bytes: &[u8], base: u64, env: &CodeEnv) -> String {
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
    names.remove(&0);
    format_with(IntelFormatter::with_options(Some(Box::new(Names(names))), None), bytes, base)
}

fn format_with(mut formatter: IntelFormatter, bytes: &[u8], base: u64) -> String {
    formatter.options_mut().set_first_operand_char_index(8);
    let mut decoder = Decoder::with_ip(32, bytes, base, DecoderOptions::NONE);
    let mut out = String::new();
    let mut text = String::new();
    let mut instruction = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut instruction);
        text.clear();
        formatter.format(&instruction, &mut text);
        out.push_str(&format!("{:06x}: {}\n", instruction.ip(), text.trim_end()));
    }
    out
}

fn ctype_name(r: CtypeRef) -> String {
    match r {
        CtypeRef::Arg(i) => format!("ctype(arg{i})"),
        CtypeRef::Ret => "ctype(ret)".to_string(),
    }
}

struct Names(HashMap<u64, String>);

impl SymbolResolver for Names {
    fn symbol(&mut self, _: &Instruction, _: u32, _: Option<u32>, address: u64, _: u32) -> Option<SymbolResult<'_>> {
        self.0.get(&address).map(|name| SymbolResult::with_str(address, name.as_str()))
    }
}
