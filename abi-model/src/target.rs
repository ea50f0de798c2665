//! Targets: the four x86 ABIs this project generates code for, and the facts that follow from
//! the choice of one (data model, record layout rules, calling conventions that exist there).

use crate::plan::{Gpr, Xmm};
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
    pub const fn host() -> Option<Target> {
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
    pub const fn pointer_size(self) -> u32 {
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

    /// General-purpose registers a called function must give back as it found them, besides
    /// the stack pointer. i386 psABI 2.2.1 (Win32 alike): ebx, ebp, esi, edi. x86-64 psABI
    /// §3.2.1 (Figure 3.4): rbx, rbp, r12–r15. Microsoft x64, "Caller/callee saved
    /// registers": rbx, rbp, rdi, rsi, r12–r15 (rsi and rdi too, unlike System V).
    pub const fn callee_saved_gprs(self) -> &'static [Gpr] {
        match (self.arch, self.os) {
            (Arch::X86, _) => &[Gpr::BX, Gpr::BP, Gpr::SI, Gpr::DI],
            (Arch::X86_64, Os::Linux) => &[Gpr::BX, Gpr::BP, Gpr::R12, Gpr::R13, Gpr::R14, Gpr::R15],
            (Arch::X86_64, Os::Windows) => {
                &[Gpr::BX, Gpr::BP, Gpr::SI, Gpr::DI, Gpr::R12, Gpr::R13, Gpr::R14, Gpr::R15]
            }
        }
    }

    /// General-purpose registers a called function may change without restoring them (the
    /// complement of [`Target::callee_saved_gprs`] without the stack pointer): eax, ecx, edx on
    /// x86; rax, rcx, rdx, rsi, rdi, r8–r11 on System V; rax, rcx, rdx, r8–r11 on Win64.
    pub const fn scratch_gprs(self) -> &'static [Gpr] {
        match (self.arch, self.os) {
            (Arch::X86, _) => &[Gpr::AX, Gpr::CX, Gpr::DX],
            (Arch::X86_64, Os::Linux) => {
                &[Gpr::AX, Gpr::CX, Gpr::DX, Gpr::SI, Gpr::DI, Gpr::R8, Gpr::R9, Gpr::R10, Gpr::R11]
            }
            (Arch::X86_64, Os::Windows) => &[Gpr::AX, Gpr::CX, Gpr::DX, Gpr::R8, Gpr::R9, Gpr::R10, Gpr::R11],
        }
    }

    /// SSE registers a called function must give back as it found them: xmm6–xmm15 on Win64
    /// (Microsoft x64, "Caller/callee saved registers"; their low 128 bits), none elsewhere
    /// (x86-64 psABI Figure 3.4: every xmm register is caller-saved; i386: all of xmm0–7).
    pub const fn callee_saved_xmms(self) -> &'static [Xmm] {
        const WIN64: [Xmm; 10] = [Xmm(6), Xmm(7), Xmm(8), Xmm(9), Xmm(10), Xmm(11), Xmm(12), Xmm(13), Xmm(14), Xmm(15)];
        match (self.arch, self.os) {
            (Arch::X86_64, Os::Windows) => &WIN64,
            _ => &[],
        }
    }

    /// SSE registers a called function may change: xmm0–xmm7 on x86 (the ones that exist),
    /// xmm0–xmm15 on System V, xmm0–xmm5 on Win64.
    pub fn scratch_xmms(self) -> &'static [Xmm] {
        const ALL: [Xmm; 16] = [
            Xmm(0),
            Xmm(1),
            Xmm(2),
            Xmm(3),
            Xmm(4),
            Xmm(5),
            Xmm(6),
            Xmm(7),
            Xmm(8),
            Xmm(9),
            Xmm(10),
            Xmm(11),
            Xmm(12),
            Xmm(13),
            Xmm(14),
            Xmm(15),
        ];
        match (self.arch, self.os) {
            (Arch::X86, _) => &ALL[..8],
            (Arch::X86_64, Os::Linux) => &ALL,
            (Arch::X86_64, Os::Windows) => &ALL[..6],
        }
    }

    /// The alignment of the stack pointer at a call instruction (a plan may ask for more,
    /// [`crate::CallPlan::stack_align`], for over-aligned stack arguments). i386 Linux: 16,
    /// as gcc keeps it (`-mpreferred-stack-boundary=4`) and the i386 psABI's 2015 revision
    /// (2.2.2) requires; Win32: 4; x86-64 psABI §3.2.2 and Microsoft x64 "Stack allocation":
    /// 16.
    pub const fn stack_align(self) -> u32 {
        match (self.arch, self.os) {
            (Arch::X86, Os::Windows) => 4,
            _ => 16,
        }
    }

    /// Bytes a `call` pushes (the return address): a callee finds its stack arguments this
    /// far above its entry stack pointer.
    pub const fn return_address_size(self) -> u32 {
        self.pointer_size()
    }

    /// Home (shadow) space a caller reserves at `[sp, sp + 32)` for the callee on Win64
    /// (Microsoft x64, "Stack allocation"); 0 elsewhere.
    pub const fn shadow_space(self) -> u32 {
        match (self.arch, self.os) {
            (Arch::X86_64, Os::Windows) => crate::x64_win::WIN64_SHADOW,
            _ => 0,
        }
    }

    /// Bytes below the stack pointer that a function may use without moving it and that no
    /// signal or interrupt handler touches: 128 on x86-64 System V (psABI §3.2.2, "The Red
    /// Zone"), none elsewhere.
    pub const fn red_zone(self) -> u32 {
        match (self.arch, self.os) {
            (Arch::X86_64, Os::Linux) => 128,
            _ => 0,
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
    fn callee_saved_and_scratch_gprs_split_every_register_but_the_stack_pointer() {
        for t in Target::ALL {
            let regs = if t.arch == Arch::X86 { 8 } else { 16 };
            let mut all: Vec<Gpr> = t.callee_saved_gprs().iter().chain(t.scratch_gprs()).copied().collect();
            all.push(Gpr::SP);
            all.sort();
            assert_eq!(all, (0..regs).map(Gpr).collect::<Vec<_>>(), "{t}");
        }
    }

    #[test]
    fn i386_callee_saves_ebx_ebp_esi_edi_on_linux_and_windows() {
        // i386 psABI 2.2.1, Table 2.3 ("Registers and the Stack Frame"): ebx, ebp, esi, edi
        // belong to the calling function; Win32's conventions keep the same four.
        for t in [Target::X86_LINUX, Target::X86_WIN] {
            assert_eq!(t.callee_saved_gprs(), &[Gpr::BX, Gpr::BP, Gpr::SI, Gpr::DI]);
            assert_eq!(t.scratch_gprs(), &[Gpr::AX, Gpr::CX, Gpr::DX]);
            assert!(t.callee_saved_xmms().is_empty());
            assert_eq!(t.scratch_xmms().len(), 8);
        }
    }

    #[test]
    fn sysv_rsi_and_rdi_are_scratch_and_every_xmm_is_caller_saved() {
        // x86-64 psABI §3.2.1, Figure 3.4: rbx, rbp, r12-r15 are "preserved across function
        // calls"; rsi, rdi (argument registers) and all of xmm0-15 are not.
        let t = Target::X64_SYSV;
        assert_eq!(t.callee_saved_gprs(), &[Gpr::BX, Gpr::BP, Gpr::R12, Gpr::R13, Gpr::R14, Gpr::R15]);
        assert!(t.scratch_gprs().contains(&Gpr::SI) && t.scratch_gprs().contains(&Gpr::DI));
        assert!(t.callee_saved_xmms().is_empty());
        assert_eq!(t.scratch_xmms().len(), 16);
    }

    #[test]
    fn win64_rsi_rdi_and_xmm6_to_xmm15_are_callee_saved() {
        // Microsoft x64 calling convention, "Caller/callee saved registers": RBX, RBP, RDI,
        // RSI, RSP, R12-R15 and XMM6-XMM15 are nonvolatile; RAX, RCX, RDX, R8-R11, XMM0-XMM5
        // volatile.
        let t = Target::X64_WIN;
        assert!(t.callee_saved_gprs().contains(&Gpr::SI) && t.callee_saved_gprs().contains(&Gpr::DI));
        assert_eq!(t.scratch_gprs(), &[Gpr::AX, Gpr::CX, Gpr::DX, Gpr::R8, Gpr::R9, Gpr::R10, Gpr::R11]);
        assert_eq!(t.callee_saved_xmms().first(), Some(&Xmm(6)));
        assert_eq!(t.callee_saved_xmms().len(), 10);
        assert_eq!(t.scratch_xmms().len(), 6);
    }

    #[test]
    fn stack_is_16_aligned_at_calls_except_on_win32() {
        // i386 psABI 2.2.2 (2015 revision) and gcc: 16; Win32: 4 (MSVC keeps only 4-byte
        // alignment); x86-64 psABI §3.2.2 and Microsoft x64 "Stack allocation": 16.
        assert_eq!(Target::X86_LINUX.stack_align(), 16);
        assert_eq!(Target::X86_WIN.stack_align(), 4);
        assert_eq!(Target::X64_SYSV.stack_align(), 16);
        assert_eq!(Target::X64_WIN.stack_align(), 16);
    }

    #[test]
    fn only_win64_has_shadow_space_and_only_sysv_x64_a_red_zone() {
        // Microsoft x64 "Stack allocation": 32 bytes of home space; x86-64 psABI §3.2.2: a
        // 128-byte red zone below rsp.
        for t in Target::ALL {
            assert_eq!(t.shadow_space(), if t == Target::X64_WIN { 32 } else { 0 }, "{t}");
            assert_eq!(t.red_zone(), if t == Target::X64_SYSV { 128 } else { 0 }, "{t}");
            assert_eq!(t.return_address_size(), t.pointer_size(), "{t}");
        }
    }

    #[test]
    fn win64_is_llp64_long_stays_32_bits() {
        // Microsoft x64 docs, "Data type ranges": long is 4 bytes on 64-bit Windows.
        assert_eq!(Target::X64_WIN.data_model(), DataModel::Llp64);
        assert_eq!(Target::X64_SYSV.data_model(), DataModel::Lp64);
    }
}
