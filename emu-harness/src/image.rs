//! Compiled fixture images: parsed with goblin, mapped into a [`Cpu`] at their link address.
//!
//! The fixtures are freestanding C linked at a fixed base with nothing left for a loader to
//! do, in four formats:
//! - **ELF32 / ELF64** (`gcc -m32` / `gcc`, `-static -nostdlib -no-pie`): `ET_EXEC`
//!   executables. Their `PT_LOAD` segments are the memory image; symbols come from `.symtab`
//!   (so don't strip them). An `ET_DYN` file is accepted only when it has no dynamic
//!   relocations and needs no libraries, and is then mapped at its link addresses as is.
//! - **PE32 / PE64** (`i686-w64-mingw32-gcc` / `x86_64-w64-mingw32-gcc`, `-nostdlib`):
//!   executables or DLLs, mapped at their `ImageBase` (the headers, then every section at
//!   `ImageBase + RVA`, its virtual size zero-filled). Base relocations are never applied:
//!   at the preferred base they are not needed. Symbols come from both sources mingw
//!   provides: the export table (`__declspec(dllexport)`, survives `-s`) and the COFF symbol
//!   table that mingw's ld keeps unless the image is stripped. A PE importing anything
//!   (a non-empty import table, e.g. from `-lkernel32`) is refused; mingw always emits an
//!   empty `.idata` terminator, which is fine.
//!
//! # Symbol names
//! [`Image::symbols`] holds every name exactly as the image spells it. On Win32, mingw
//! decorates C names in the COFF table: cdecl `f` is `_f`, stdcall `_f@8`, fastcall `@f@8`;
//! its exports drop the leading underscore (`f`, `f@8`, `@f@8`). [`Image::symbol`] looks a
//! plain C name up through those decorations (and vectorcall's `f@@8`) on PE images; on ELF
//! it matches exactly, since gcc on Linux decorates nothing.

use std::collections::BTreeMap;
use std::fmt;

use goblin::elf::{self, Elf};
use goblin::pe::PE;

use crate::engine::{Cpu, EngineError, Mode, Perms, PAGE_SIZE};

/// The file format of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// 32-bit ELF for i386 (`gcc -m32`).
    Elf32,
    /// 64-bit ELF for x86-64 (`gcc`).
    Elf64,
    /// PE32 for i386 (`i686-w64-mingw32-gcc`).
    Pe32,
    /// PE32+ for x86-64 (`x86_64-w64-mingw32-gcc`).
    Pe64,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Elf32 => "ELF32",
            Format::Elf64 => "ELF64",
            Format::Pe32 => "PE32",
            Format::Pe64 => "PE32+",
        })
    }
}

/// One contiguous piece of the memory image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Where it goes (not necessarily page-aligned).
    pub addr: u64,
    /// Its memory contents: the file data, zero-extended to the size in memory.
    pub bytes: Vec<u8>,
    /// Access rights from the segment or section flags.
    pub perms: Perms,
}

/// A parsed fixture image, ready to be mapped with [`Image::load_into`].
#[derive(Clone, Debug)]
pub struct Image {
    /// The mode its code runs in.
    pub mode: Mode,
    /// The file format.
    pub format: Format,
    /// The memory image, in file order.
    pub segments: Vec<Segment>,
    /// Every defined symbol, by its raw name (see the module docs on decoration).
    pub symbols: BTreeMap<String, u64>,
    /// The entry point, if the image has one (fixtures usually don't: `-e 0`).
    pub entry: Option<u64>,
}

/// Why an image could not be parsed, looked up or loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Not an ELF or PE file, or goblin could not parse it.
    Parse(String),
    /// A well-formed image for something other than i386 / x86-64 executable code.
    Unsupported(String),
    /// The image needs a run-time loader (imports, dynamic relocations, an interpreter).
    NeedsLoader(String),
    /// The image's own tables contradict each other or the file size.
    Malformed(String),
    /// [`Image::symbol`] found no symbol of that name, decorated or not.
    MissingSymbol {
        /// The name looked up.
        name: String,
        /// The image's format.
        format: Format,
    },
    /// [`Image::symbol`] found several decorated symbols for one name at different addresses.
    AmbiguousSymbol {
        /// The name looked up.
        name: String,
        /// The raw names that matched.
        candidates: Vec<String>,
    },
    /// [`Image::load_into`] got a CPU in another mode.
    ModeMismatch {
        /// The image's mode.
        image: Mode,
        /// The CPU's mode.
        cpu: Mode,
    },
    /// The CPU refused to map or write the image.
    Load(EngineError),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Parse(msg) => write!(f, "cannot parse image: {msg}"),
            ImageError::Unsupported(msg) => write!(f, "unsupported image: {msg}"),
            ImageError::NeedsLoader(msg) => {
                write!(f, "image needs a run-time loader, which emu-harness does not have: {msg}")
            }
            ImageError::Malformed(msg) => write!(f, "malformed image: {msg}"),
            ImageError::MissingSymbol { name, format } => {
                write!(f, "symbol `{name}` not found in the {format} image")?;
                if matches!(format, Format::Pe32 | Format::Pe64) {
                    write!(f, " (also looked for _{name}, _{name}@N, @{name}@N, {name}@N, {name}@@N)")?;
                }
                Ok(())
            }
            ImageError::AmbiguousSymbol { name, candidates } => {
                write!(f, "symbol `{name}` is ambiguous: {}", candidates.join(", "))
            }
            ImageError::ModeMismatch { image, cpu } => {
                write!(f, "image is {image:?} code but the CPU runs in {cpu:?} mode")
            }
            ImageError::Load(err) => write!(f, "cannot load image: {err}"),
        }
    }
}

impl std::error::Error for ImageError {}

impl From<EngineError> for ImageError {
    fn from(err: EngineError) -> ImageError {
        ImageError::Load(err)
    }
}

impl Image {
    /// Parses an ELF or PE image (see the module docs for what is accepted).
    pub fn parse(bytes: &[u8]) -> Result<Image, ImageError> {
        if bytes.starts_with(b"\x7fELF") {
            let elf = Elf::parse(bytes).map_err(|e| ImageError::Parse(e.to_string()))?;
            parse_elf(&elf, bytes)
        } else if bytes.starts_with(b"MZ") {
            let pe = PE::parse(bytes).map_err(|e| ImageError::Parse(e.to_string()))?;
            parse_pe(&pe, bytes)
        } else {
            let magic: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
            Err(ImageError::Parse(format!(
                "not an ELF or PE image (starts with {})",
                if magic.is_empty() { "nothing".to_owned() } else { magic.join(" ") }
            )))
        }
    }

    /// The address of the C function or object `name`, tolerating Windows name decoration on
    /// PE images (see the module docs); exact on ELF.
    ///
    /// An exact raw match wins. Otherwise all decorated forms are collected; they must agree
    /// on one address (`add3` exported and `_add3` in the COFF table do), else the lookup is
    /// ambiguous.
    pub fn symbol(&self, name: &str) -> Result<u64, ImageError> {
        if let Some(&addr) = self.symbols.get(name) {
            return Ok(addr);
        }
        let missing = || ImageError::MissingSymbol { name: name.to_owned(), format: self.format };
        if !matches!(self.format, Format::Pe32 | Format::Pe64) {
            return Err(missing());
        }
        let matches: Vec<(&String, u64)> = self
            .symbols
            .iter()
            .filter(|(raw, _)| undecorate(raw, self.format) == name)
            .map(|(raw, &addr)| (raw, addr))
            .collect();
        match matches.as_slice() {
            [] => Err(missing()),
            [(_, addr), rest @ ..] if rest.iter().all(|(_, a)| a == addr) => Ok(*addr),
            _ => Err(ImageError::AmbiguousSymbol {
                name: name.to_owned(),
                candidates: matches.iter().map(|(raw, _)| (*raw).clone()).collect(),
            }),
        }
    }

    /// The address of the symbol spelled exactly `raw_name` (`_sub2@8`), no decoration
    /// tolerance.
    pub fn raw_symbol(&self, raw_name: &str) -> Result<u64, ImageError> {
        self.symbols
            .get(raw_name)
            .copied()
            .ok_or_else(|| ImageError::MissingSymbol { name: raw_name.to_owned(), format: self.format })
    }

    /// The page-aligned range `[start, end)` the image occupies once loaded, so the harness
    /// can place its stack and hook pages elsewhere. `None` for an image with no segments.
    pub fn span(&self) -> Option<(u64, u64)> {
        let start = self.segments.iter().map(|s| page_floor(s.addr)).min()?;
        let end = self.segments.iter().map(|s| page_ceil(s.addr + s.bytes.len() as u64)).max()?;
        Some((start, end))
    }

    /// Maps the image into `cpu` and writes its contents.
    ///
    /// Every page touched by a segment is mapped once; a page shared by segments gets the
    /// union of their rights (a page holding both code and data becomes rwx), and runs of
    /// pages with equal rights are mapped as one region. The pages must be free in `cpu`.
    pub fn load_into(&self, cpu: &mut dyn Cpu) -> Result<(), ImageError> {
        if cpu.mode() != self.mode {
            return Err(ImageError::ModeMismatch { image: self.mode, cpu: cpu.mode() });
        }
        let mut pages: BTreeMap<u64, Perms> = BTreeMap::new();
        for seg in self.segments.iter().filter(|s| !s.bytes.is_empty()) {
            let end = page_ceil(seg.addr + seg.bytes.len() as u64);
            for page in (page_floor(seg.addr)..end).step_by(PAGE_SIZE as usize) {
                let perms = pages.entry(page).or_default();
                *perms = perms.union(seg.perms);
            }
        }
        // Maximal runs of consecutive pages with equal rights.
        let mut runs: Vec<(u64, u64, Perms)> = Vec::new();
        for (&page, &perms) in &pages {
            match runs.last_mut() {
                Some((start, size, p)) if *start + *size == page && *p == perms => *size += PAGE_SIZE,
                _ => runs.push((page, PAGE_SIZE, perms)),
            }
        }
        for (start, size, perms) in runs {
            cpu.map(start, size, perms)?;
        }
        for seg in &self.segments {
            cpu.write(seg.addr, &seg.bytes)?;
        }
        Ok(())
    }
}

/// The plain C name behind a decorated PE symbol: `@f@8` (fastcall), `_f@8` (stdcall,
/// Win32), `_f` (cdecl, Win32), `f@8` (stdcall export), `f@@8` (vectorcall). Anything else
/// is returned as is. Only Win32 prefixes C names with `_`, so it is stripped only there.
fn undecorate(raw: &str, format: Format) -> &str {
    let rest = match (raw.strip_prefix('@'), raw.strip_prefix('_')) {
        (Some(rest), _) => rest,
        (None, Some(rest)) if format == Format::Pe32 => rest,
        _ => raw,
    };
    // `name@N` or `name@@N`, N all digits.
    if let Some((name, digits)) = rest.rsplit_once('@') {
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return name.strip_suffix('@').unwrap_or(name);
        }
    }
    rest
}

fn page_floor(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

fn page_ceil(addr: u64) -> u64 {
    page_floor(addr + (PAGE_SIZE - 1))
}

/// File bytes `[offset, offset + len)`, or a `Malformed` error naming `what`.
fn file_range<'a>(bytes: &'a [u8], offset: u64, len: u64, what: &str) -> Result<&'a [u8], ImageError> {
    let start = usize::try_from(offset).ok();
    let end = offset.checked_add(len).and_then(|e| usize::try_from(e).ok());
    match (start, end) {
        (Some(start), Some(end)) if end <= bytes.len() => Ok(&bytes[start..end]),
        _ => Err(ImageError::Malformed(format!(
            "{what}: file range {offset:#x}+{len:#x} is outside the {}-byte file",
            bytes.len()
        ))),
    }
}

/// `data` zero-extended to `mem_size` bytes, checking the end fits the mode's user address
/// space.
fn memory_bytes(addr: u64, data: &[u8], mem_size: u64, mode: Mode, what: &str) -> Result<Vec<u8>, ImageError> {
    // The user half of the address space: no real image lies above it, and page rounding
    // of an end below it cannot overflow.
    let limit = match mode {
        Mode::X86_32 => 1u64 << 32,
        Mode::X86_64 => 1u64 << 47,
    };
    let fits = addr.checked_add(mem_size).is_some_and(|end| end <= limit);
    let size = usize::try_from(mem_size).ok().filter(|_| fits).ok_or_else(|| {
        ImageError::Malformed(format!("{what}: {mem_size:#x} bytes at {addr:#x} do not fit the address space"))
    })?;
    let mut out = data.to_vec();
    out.resize(size, 0);
    Ok(out)
}

fn parse_elf(elf: &Elf, bytes: &[u8]) -> Result<Image, ImageError> {
    let (mode, format) = match (elf.header.e_machine, elf.is_64) {
        (elf::header::EM_386, false) => (Mode::X86_32, Format::Elf32),
        (elf::header::EM_X86_64, true) => (Mode::X86_64, Format::Elf64),
        (machine, is_64) => {
            return Err(ImageError::Unsupported(format!(
                "ELF{} for machine {machine} ({}); only i386 ELF32 and x86-64 ELF64 run here",
                if is_64 { 64 } else { 32 },
                elf::header::machine_to_str(machine)
            )))
        }
    };
    match elf.header.e_type {
        elf::header::ET_EXEC | elf::header::ET_DYN => {}
        elf::header::ET_REL => return Err(ImageError::Unsupported("a relocatable object (.o): link it first".into())),
        other => {
            return Err(ImageError::Unsupported(format!(
                "ELF type {} is not an executable",
                elf::header::et_to_str(other)
            )))
        }
    }
    if let Some(interp) = elf.interpreter {
        return Err(ImageError::NeedsLoader(format!("it asks for the interpreter {interp}")));
    }
    if !elf.libraries.is_empty() {
        return Err(ImageError::NeedsLoader(format!("it needs {}", elf.libraries.join(", "))));
    }
    let dyn_relocs = elf.dynrelas.len() + elf.dynrels.len() + elf.pltrelocs.len();
    if dyn_relocs > 0 {
        return Err(ImageError::NeedsLoader(format!(
            "it has {dyn_relocs} dynamic relocations (link with -static -no-pie)"
        )));
    }

    let mut segments = Vec::new();
    for (i, ph) in elf.program_headers.iter().enumerate() {
        if ph.p_type != elf::program_header::PT_LOAD || ph.p_memsz == 0 {
            continue;
        }
        let what = format!("PT_LOAD segment {i}");
        if ph.p_filesz > ph.p_memsz {
            return Err(ImageError::Malformed(format!("{what}: file size exceeds memory size")));
        }
        let data = file_range(bytes, ph.p_offset, ph.p_filesz, &what)?;
        let perms = Perms {
            read: ph.p_flags & elf::program_header::PF_R != 0,
            write: ph.p_flags & elf::program_header::PF_W != 0,
            exec: ph.p_flags & elf::program_header::PF_X != 0,
        };
        let bytes = memory_bytes(ph.p_vaddr, data, ph.p_memsz, mode, &what)?;
        segments.push(Segment { addr: ph.p_vaddr, bytes, perms });
    }

    // Globals win over locals of the same name (file-static helpers may repeat a name).
    let mut symbols = BTreeMap::new();
    let mut locals = BTreeMap::new();
    for sym in elf.syms.iter() {
        let defined = sym.st_shndx != elf::section_header::SHN_UNDEF as usize
            && sym.st_shndx != elf::section_header::SHN_ABS as usize;
        let kind = sym.st_type();
        if !defined || kind == elf::sym::STT_SECTION || kind == elf::sym::STT_FILE {
            continue;
        }
        let Some(name) = elf.strtab.get_at(sym.st_name).filter(|n| !n.is_empty()) else {
            continue;
        };
        if sym.st_bind() == elf::sym::STB_LOCAL {
            locals.entry(name.to_owned()).or_insert(sym.st_value);
        } else {
            symbols.insert(name.to_owned(), sym.st_value);
        }
    }
    for (name, addr) in locals {
        symbols.entry(name).or_insert(addr);
    }

    let entry = (elf.entry != 0).then_some(elf.entry);
    Ok(Image { mode, format, segments, symbols, entry })
}

/// PE section flags (IMAGE_SCN_MEM_*).
const SCN_MEM_EXECUTE: u32 = 0x2000_0000;
const SCN_MEM_READ: u32 = 0x4000_0000;
const SCN_MEM_WRITE: u32 = 0x8000_0000;
/// COFF symbol storage classes.
const SYM_CLASS_EXTERNAL: u8 = 2;
const SYM_CLASS_STATIC: u8 = 3;

fn parse_pe(pe: &PE, bytes: &[u8]) -> Result<Image, ImageError> {
    let machine = pe.header.coff_header.machine;
    let (mode, format) = match (machine, pe.is_64) {
        (goblin::pe::header::COFF_MACHINE_X86, false) => (Mode::X86_32, Format::Pe32),
        (goblin::pe::header::COFF_MACHINE_X86_64, true) => (Mode::X86_64, Format::Pe64),
        (machine, is_64) => {
            return Err(ImageError::Unsupported(format!(
                "{} for COFF machine {machine:#x}; only i386 PE32 and x86-64 PE32+ run here",
                if is_64 { "PE32+" } else { "PE32" }
            )))
        }
    };
    if !pe.libraries.is_empty() || !pe.imports.is_empty() {
        let names: Vec<String> = pe.imports.iter().map(|imp| format!("{}!{}", imp.dll, imp.name)).collect();
        let what = if names.is_empty() { pe.libraries.join(", ") } else { names.join(", ") };
        return Err(ImageError::NeedsLoader(format!("it imports {what}")));
    }
    let Some(optional) = pe.header.optional_header else {
        return Err(ImageError::Unsupported("a COFF object without optional header: link it first".into()));
    };
    let base = pe.image_base;

    let mut segments = Vec::new();
    let headers_size = u64::from(optional.windows_fields.size_of_headers).min(bytes.len() as u64);
    if headers_size > 0 {
        let data = file_range(bytes, 0, headers_size, "headers")?;
        let bytes = memory_bytes(base, data, headers_size, mode, "headers")?;
        segments.push(Segment { addr: base, bytes, perms: Perms::R });
    }
    for section in &pe.sections {
        let name = section.name().unwrap_or("?");
        let what = format!("section {name}");
        // Virtual size 0 is what some linkers write when it equals the raw size.
        let mem_size = match section.virtual_size {
            0 => section.size_of_raw_data,
            v => v,
        };
        if mem_size == 0 {
            continue;
        }
        // Raw data is padded to the file alignment: only `mem_size` bytes of it belong.
        let raw_len = section.size_of_raw_data.min(mem_size);
        let data = if raw_len == 0 || section.pointer_to_raw_data == 0 {
            &[][..]
        } else {
            file_range(bytes, u64::from(section.pointer_to_raw_data), u64::from(raw_len), &what)?
        };
        let addr = base + u64::from(section.virtual_address);
        let c = section.characteristics;
        let perms =
            Perms { read: c & SCN_MEM_READ != 0, write: c & SCN_MEM_WRITE != 0, exec: c & SCN_MEM_EXECUTE != 0 };
        let bytes = memory_bytes(addr, data, u64::from(mem_size), mode, &what)?;
        segments.push(Segment { addr, bytes, perms });
    }

    let mut symbols = BTreeMap::new();
    for export in &pe.exports {
        if let (Some(name), None) = (export.name, &export.reexport) {
            symbols.insert(name.to_owned(), base + export.rva as u64);
        }
    }
    add_coff_symbols(pe, bytes, base, &mut symbols)?;

    let entry = (pe.entry != 0).then(|| base + u64::from(pe.entry));
    Ok(Image { mode, format, segments, symbols, entry })
}

/// Adds the COFF symbol table's defined external symbols, and its static ones except section
/// names, to `symbols` (names already there, from the exports, are kept).
fn add_coff_symbols(pe: &PE, bytes: &[u8], base: u64, symbols: &mut BTreeMap<String, u64>) -> Result<(), ImageError> {
    let coff = &pe.header.coff_header;
    let malformed = |e: goblin::error::Error| ImageError::Malformed(format!("COFF symbol table: {e}"));
    let Some(table) = coff.symbols(bytes).map_err(malformed)? else {
        return Ok(());
    };
    let strings = coff.strings(bytes).map_err(malformed)?;
    let mut statics = BTreeMap::new();
    for (_, inline_name, sym) in table.iter() {
        let is_external = sym.storage_class == SYM_CLASS_EXTERNAL;
        if !(is_external || sym.storage_class == SYM_CLASS_STATIC) || sym.section_number <= 0 {
            continue; // undefined, absolute, debug, or a class that names no address
        }
        let name = match (inline_name, &strings) {
            (Some(name), _) => name,
            (None, Some(strings)) => sym.name(strings).map_err(malformed)?,
            (None, None) => continue,
        };
        if name.is_empty() || name.starts_with('.') {
            continue; // section symbols (.text, .rdata$zzz)
        }
        let index = sym.section_number as usize - 1; // one-based, checked positive above
        let Some(section) = pe.sections.get(index) else {
            return Err(ImageError::Malformed(format!(
                "COFF symbol {name} refers to section {} of {}",
                sym.section_number,
                pe.sections.len()
            )));
        };
        let addr = base + u64::from(section.virtual_address) + u64::from(sym.value);
        if is_external {
            symbols.entry(name.to_owned()).or_insert(addr);
        } else {
            statics.entry(name.to_owned()).or_insert(addr);
        }
    }
    for (name, addr) in statics {
        symbols.entry(name).or_insert(addr);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecorate_strips_windows_decorations() {
        assert_eq!(undecorate("_add3", Format::Pe32), "add3");
        assert_eq!(undecorate("_sub2@8", Format::Pe32), "sub2");
        assert_eq!(undecorate("@fsub2@8", Format::Pe32), "fsub2");
        assert_eq!(undecorate("sub2@8", Format::Pe32), "sub2");
        assert_eq!(undecorate("vec@@16", Format::Pe64), "vec");
        // Win64 has no underscore prefix; a trailing `@` without digits is not a decoration.
        assert_eq!(undecorate("_add3", Format::Pe64), "_add3");
        assert_eq!(undecorate("odd@", Format::Pe64), "odd@");
        assert_eq!(undecorate("a@b", Format::Pe64), "a@b");
    }

    #[test]
    fn page_rounding() {
        assert_eq!(page_floor(0x1FFF), 0x1000);
        assert_eq!(page_ceil(0x1001), 0x2000);
        assert_eq!(page_ceil(0x2000), 0x2000);
    }
}
