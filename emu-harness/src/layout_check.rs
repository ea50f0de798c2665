//! The layout check: abi-model's record layouts against the compilers', read from the layout
//! tables of the committed `layout.elf`/`layout.exe` fixture of each target (static data, so
//! no emulator is needed). The table format is described in [`cgen`](crate::cgen).

use crate::catalogue::{image_file, Catalogue};
use crate::cgen::{LAYOUT_BITS, LAYOUT_COUNT, LAYOUT_DATA, LAYOUT_STEM};
use crate::image::{Image, ImageError};
use crate::Mode;
use abi_model::Target;
use std::fmt;
use std::path::PathBuf;

/// A record's layout as the compiler computed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompilerLayout {
    /// The record's number in the catalogue.
    pub record: usize,
    /// `sizeof`
    pub size: u64,
    /// `_Alignof`
    pub align: u64,
    /// `offsetof` of every named member that is not a bit-field, in declaration order.
    pub offsets: Vec<u64>,
    /// Every named bit-field of nonzero width, in declaration order: its first bit and width
    /// (counted from bit 0 of the record), or `None` if its bits were not contiguous.
    pub bits: Vec<Option<(u64, u32)>>,
}

/// One disagreement between the compiler and abi-model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The target.
    pub target: Target,
    /// The record's number in the catalogue.
    pub record: usize,
    /// The record's C definition.
    pub c_type: String,
    /// What differs: `sizeof`, `_Alignof`, `offsetof(m3)`, `bits of m2`.
    pub member: String,
    /// The compiler's answer.
    pub expected: String,
    /// abi-model's answer.
    pub actual: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: R{} {}: compiler {}, abi-model {}\n{}",
            self.target, self.record, self.member, self.expected, self.actual, self.c_type
        )
    }
}

/// The directory of committed fixtures of `target`.
pub fn fixture_dir(target: Target) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(target.name())
}

/// Why a layout fixture could not be read.
#[derive(Debug)]
pub enum LayoutReadError {
    /// The fixture file could not be read.
    Io {
        /// Its path.
        path: PathBuf,
        /// The OS error.
        cause: std::io::Error,
    },
    /// The image is not one this harness reads, or lacks a symbol.
    Image(ImageError),
    /// Bytes the tables point to are outside the image.
    OutOfImage {
        /// Their address.
        va: u64,
        /// How many.
        len: usize,
    },
    /// The image describes another number of records than the catalogue has (fixtures older
    /// than the catalogue).
    RecordCount {
        /// Records in the image.
        image: usize,
        /// Records in the catalogue.
        catalogue: usize,
    },
    /// `layout_data` holds another record than the next one expected.
    OutOfStep {
        /// The record found.
        found: usize,
        /// The record expected.
        expected: usize,
    },
}

impl fmt::Display for LayoutReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutReadError::Io { path, cause } => write!(f, "{}: {cause}", path.display()),
            LayoutReadError::Image(e) => write!(f, "{e}"),
            LayoutReadError::OutOfImage { va, len } => write!(f, "{va:#x}+{len} is not in the image"),
            LayoutReadError::RecordCount { image, catalogue } => {
                write!(f, "the image has {image} records, the catalogue {catalogue}: regenerate the fixtures")
            }
            LayoutReadError::OutOfStep { found, expected } => {
                write!(f, "layout_data is out of step: record {found} where {expected} was expected")
            }
        }
    }
}

/// The cause is part of the message, so it is not also a `source`.
impl std::error::Error for LayoutReadError {}

impl From<ImageError> for LayoutReadError {
    fn from(e: ImageError) -> LayoutReadError {
        LayoutReadError::Image(e)
    }
}

/// A fixture image's static data, read without mapping it.
struct StaticImage {
    image: Image,
    pointer_size: usize,
}

impl StaticImage {
    fn parse(bytes: &[u8]) -> Result<StaticImage, LayoutReadError> {
        let image = Image::parse(bytes)?;
        let pointer_size = match image.mode {
            Mode::X86_32 => 4,
            Mode::X86_64 => 8,
        };
        Ok(StaticImage { image, pointer_size })
    }

    fn symbol(&self, name: &str) -> Result<u64, LayoutReadError> {
        Ok(self.image.symbol(name)?)
    }

    fn read(&self, va: u64, len: usize) -> Result<&[u8], LayoutReadError> {
        for seg in &self.image.segments {
            if va >= seg.addr && va + len as u64 <= seg.addr + seg.bytes.len() as u64 {
                let at = (va - seg.addr) as usize;
                return Ok(&seg.bytes[at..at + len]);
            }
        }
        Err(LayoutReadError::OutOfImage { va, len })
    }

    fn u32_at(&self, va: u64) -> Result<u32, LayoutReadError> {
        let b = self.read(va, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn pointer_at(&self, va: u64) -> Result<u64, LayoutReadError> {
        let b = self.read(va, self.pointer_size)?;
        let mut v = [0u8; 8];
        v[..b.len()].copy_from_slice(b);
        Ok(u64::from_le_bytes(v))
    }
}

/// Reads the compiler's layouts out of a layout image of `cat`'s target.
pub fn read_layouts(image: &[u8], cat: &Catalogue) -> Result<Vec<CompilerLayout>, LayoutReadError> {
    let img = StaticImage::parse(image)?;
    let count = img.u32_at(img.symbol(LAYOUT_COUNT)?)? as usize;
    if count != cat.spec.records.len() {
        return Err(LayoutReadError::RecordCount { image: count, catalogue: cat.spec.records.len() });
    }
    let mut data = img.symbol(LAYOUT_DATA)?;
    let mut next_u32 = || -> Result<u32, LayoutReadError> {
        let v = img.u32_at(data)?;
        data += 4;
        Ok(v)
    };
    let mut bits_at = img.symbol(LAYOUT_BITS)?;
    let mut out = Vec::with_capacity(count);
    for (n, decl) in cat.spec.records.iter().enumerate() {
        let number = next_u32()? as usize;
        if number != n {
            return Err(LayoutReadError::OutOfStep { found: number, expected: n });
        }
        let size = u64::from(next_u32()?);
        let align = u64::from(next_u32()?);
        let offsets = (0..next_u32()?).map(|_| next_u32().map(u64::from)).collect::<Result<Vec<_>, _>>()?;
        let mut bits = Vec::new();
        for _ in decl.fields.iter().filter(|f| f.name.is_some() && f.bits.is_some_and(|w| w > 0)) {
            let probe = img.pointer_at(bits_at)?;
            bits_at += img.pointer_size as u64;
            bits.push(set_bits(img.read(probe, size as usize)?));
        }
        out.push(CompilerLayout { record: n, size, align, offsets, bits });
    }
    Ok(out)
}

/// The first set bit and the number of set bits, if they are contiguous.
fn set_bits(bytes: &[u8]) -> Option<(u64, u32)> {
    let bit = |i: u64| bytes[(i / 8) as usize] >> (i % 8) & 1 == 1;
    let total = bytes.len() as u64 * 8;
    let first = (0..total).find(|&i| bit(i))?;
    let width = (first..total).take_while(|&i| bit(i)).count() as u64;
    let rest = (first + width..total).any(bit);
    (!rest).then_some((first, width as u32))
}

/// Compares every record's compiler layout with abi-model's.
pub fn check_layouts(cat: &Catalogue, layouts: &[CompilerLayout]) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for cl in layouts {
        let n = cl.record;
        let mismatch = |member: String, expected: String, actual: String| Mismatch {
            target: cat.target,
            record: n,
            c_type: cat.record_c(n),
            member,
            expected,
            actual,
        };
        let Some(body) = cat.table.record_body(cat.record_ids[n]) else {
            out.push(mismatch("definition".into(), "defined".into(), "not defined".into()));
            continue;
        };
        let model = &body.layout;
        if model.size != cl.size {
            out.push(mismatch("sizeof".into(), cl.size.to_string(), model.size.to_string()));
        }
        if u64::from(model.align) != cl.align {
            out.push(mismatch("_Alignof".into(), cl.align.to_string(), model.align.to_string()));
        }
        let decl = &cat.spec.records[n];
        let (mut offsets, mut bits) = (cl.offsets.iter(), cl.bits.iter());
        for (f, l) in decl.fields.iter().zip(&model.fields) {
            let Some(name) = &f.name else { continue };
            match f.bits {
                None => {
                    let Some(&expected) = offsets.next() else { break };
                    if expected != l.offset {
                        out.push(mismatch(format!("offsetof({name})"), expected.to_string(), l.offset.to_string()));
                    }
                }
                Some(0) => {}
                Some(_) => {
                    let Some(&expected) = bits.next() else { break };
                    let actual = l.bits.map(|b| (b.bit_offset, b.width));
                    if expected != actual {
                        let show = |b: Option<(u64, u32)>| {
                            b.map_or("non-contiguous".to_string(), |(o, w)| {
                                format!("bits {o}..{} ({w} wide)", o + u64::from(w))
                            })
                        };
                        out.push(mismatch(format!("bits of {name}"), show(expected), show(actual)));
                    }
                }
            }
        }
    }
    out
}

/// Reads the committed layout fixture of `cat`'s target and compares: the number of records
/// checked and every mismatch.
pub fn check_committed(cat: &Catalogue) -> Result<(usize, Vec<Mismatch>), LayoutReadError> {
    let path = fixture_dir(cat.target).join(image_file(cat.target, LAYOUT_STEM));
    let bytes = std::fs::read(&path).map_err(|cause| LayoutReadError::Io { path: path.clone(), cause })?;
    let layouts = read_layouts(&bytes, cat)?;
    Ok((layouts.len(), check_layouts(cat, &layouts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_bits_finds_contiguous_runs_only() {
        // Bits 4..9 across a byte boundary.
        assert_eq!(set_bits(&[0b1111_0000, 0b0000_0001]), Some((4, 5)));
        assert_eq!(set_bits(&[0b0111_0000, 0b0000_0001]), None);
        assert_eq!(set_bits(&[0b0101_0000]), None);
        assert_eq!(set_bits(&[0, 0]), None);
    }
}
