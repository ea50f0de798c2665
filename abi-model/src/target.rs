//! Targets: the four x86 ABIs this project generates code for, and the facts that follow from
//! the choice of one (data model, record layout rules, calling conventions that exist there).

use crate::CallConv;
use std::fmt;

/// Instruction set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    /// x86-32 (i386 and later).
    X86,
    /// x86-64.
    X86_64,
}

/// Operating-system family, as far as the ABI is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Os {
    /// Linux and the other ELF systems that follow the System V psABIs.
    Linux,
    /// Windows (MSVC's ABI, which mingw follows).
    Windows,
}

/// C data model: the sizes of `int`, `long` and pointers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataModel {
    /// `int`, `long` and pointers are 32 bits (x86-32).
    Ilp32,
    /// `long` and pointers are 64 bits (x86-64 System V).
    Lp64,
    /// Only `long long` and pointers are 64 bits; `long` stays 32 (Windows x64).
    Llp64,
}

/// Which compiler's rules lay out structs and unions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordRules {
    /// gcc's System V rules: bit-fields pack across types and must not straddle more
    /// alignment units of their type than the type has; unnamed bit-fields don't align the
    /// record.
    Gcc,
    /// MSVC's rules (mingw's default, `-mms-bitfields`): a bit-field sits in a storage unit of
    /// its declared type's size; a change of type size starts a new unit.
    Ms,
}

/// One ABI target: an architecture on an OS family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// Instruction set.
    pub arch: Arch,
    /// OS family.
    pub os: Os,
}

impl Target {
    /// i386 Linux: the System V i386 psABI as gcc implements it.
    pub const X86_LINUX: Target = Target { arch: Arch::X86, os: Os::Linux };
    /// 32-bit Windows, as MSVC and mingw implement it.
    pub const X86_WIN: Target = Target { arch: Arch::X86, os: Os::Windows };
    /// x86-64 System V (Linux, BSD, macOS).
    pub const X64_SYSV: Target = Target { arch: Arch::X86_64, os: Os::Linux };
    /// x86-64 Windows.
    pub const X64_WIN: Target = Target { arch: Arch::X86_64, os: Os::Windows };

    /// Every supported target, in a fixed order.
    pub const ALL: [Target; 4] = [Self::X86_LINUX, Self::X86_WIN, Self::X64_SYSV, Self::X64_WIN];

    /// The short name used on command lines and in reports: `x86-linux`, `x86-win`,
    /// `x64-sysv`, `x64-win`.
    pub fn name(self) -> &'static str {
        match (self.arch, self.os) {
            (Arch::X86, Os::Linux) => "x86-linux",
            (Arch::X86, Os::Windows) => "x86-win",
            (Arch::X86_64, Os::Linux) => "x64-sysv",
            (Arch::X86_64, Os::Windows) => "x64-win",
        }
    }

    /// The target named by [`Target::name`].
    pub fn from_name(name: &str) -> Option<Target> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The target this crate was compiled for, if it is one of the four.
    pub fn host() -> Option<Target> {
        if cfg!(target_arch = "x86_64") && cfg!(windows) {
            Some(Self::X64_WIN)
        } else if cfg!(target_arch = "x86_64") {
            Some(Self::X64_SYSV)
        } else if cfg!(target_arch = "x86") && cfg!(windows) {
            Some(Self::X86_WIN)
        } else if cfg!(target_arch = "x86") {
            Some(Self::X86_LINUX)
        } else {
            None
        }
    }

    /// Size of a data pointer (and of a general-purpose register) in bytes.
    pub fn pointer_size(self) -> u32 {
        match self.arch {
            Arch::X86 => 4,
            Arch::X86_64 => 8,
        }
    }

    /// The C data model.
    pub fn data_model(self) -> DataModel {
        match (self.arch, self.os) {
            (Arch::X86, _) => DataModel::Ilp32,
            (Arch::X86_64, Os::Linux) => DataModel::Lp64,
            (Arch::X86_64, Os::Windows) => DataModel::Llp64,
        }
    }

    /// The record layout rules.
    pub fn record_rules(self) -> RecordRules {
        match self.os {
            Os::Linux => RecordRules::Gcc,
            Os::Windows => RecordRules::Ms,
        }
    }

    /// The calling conventions that exist on this target. On x86-64 each OS has exactly one;
    /// the x86 keywords (`__stdcall` and friends) are accepted there and mean that one.
    pub fn conventions(self) -> &'static [CallConv] {
        match self.arch {
            Arch::X86 => &[CallConv::Cdecl, CallConv::Stdcall, CallConv::Fastcall, CallConv::Thiscall],
            Arch::X86_64 => &[CallConv::Cdecl],
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in Target::ALL {
            assert_eq!(Target::from_name(t.name()), Some(t));
        }
        assert_eq!(Target::from_name("arm64"), None);
    }

    #[test]
    fn win64_is_llp64_long_stays_32_bits() {
        // Microsoft x64 docs, "Data type ranges": long is 4 bytes on 64-bit Windows.
        assert_eq!(Target::X64_WIN.data_model(), DataModel::Llp64);
        assert_eq!(Target::X64_SYSV.data_model(), DataModel::Lp64);
    }
}
