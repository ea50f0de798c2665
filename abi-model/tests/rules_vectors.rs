//! gcc vector types (`vector_size(n)`, `mode(V4SF)`) by value, one test per rule, on every
//! target. The oracle is gcc 12 and mingw-w64 gcc 12 (`-O1` output of the same signatures,
//! and the emulator fixtures): each test also holds a near case that must plan differently,
//! so a rule that stopped applying fails the test.

#[path = "rules_support.rs"]
mod support;

use abi_model::{ArgPass, Gpr, IntKind, PlanError, RecordAttrs, RecordKind, RetLoc, Target};
use support::{gpr, loc, parts, stack, xmm, Env};

fn sysv() -> Env {
    Env::new(Target::X64_SYSV)
}

fn win64() -> Env {
    Env::new(Target::X64_WIN)
}

/// The reason a signature taking `ty` is refused, or a panic if it plans.
fn refusal(e: &Env, ty: abi_model::TypeId) -> String {
    match e.try_plan(e.void(), &[ty], abi_model::CallConv::Cdecl) {
        Err(PlanError::Unsupported { reason, .. }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn sysv_float_vector_size_16_is_sse_sseup_in_one_xmm() {
    // psABI §3.2.3: __m128 is SSE + SSEUP: both eightbytes in one vector register, the next
    // argument takes the next register; returned in all of %xmm0 (gcc: `addps %xmm1, %xmm0`).
    let mut e = sysv();
    let v = e.vector(e.f32(), 4);
    let plan = e.plan(v, &[v, v]);
    let p = parts(&plan, 0);
    assert_eq!(p.len(), 1, "one register, not two eightbytes: {p:?}");
    assert_eq!((p[0].loc, p[0].offset, p[0].size), (xmm(0), 0, 16));
    assert_eq!(loc(&plan, 1), xmm(1));
    assert_eq!(plan.ret.loc, RetLoc::Xmm0Full);
    assert_eq!(plan.describe_ret(), "rec16/16 xmm0(16)");
    // Must differ: float[4] in a struct is SSE, SSE: two registers, xmm0 and xmm1 back.
    let a = e.array(e.f32(), 4);
    let s = e.strukt(&[a]);
    let plan = e.plan(s, &[s]);
    assert_eq!(parts(&plan, 0).len(), 2);
    assert_eq!(plan.ret.loc, RetLoc::Xmm0Xmm1);
}

#[test]
fn sysv_integer_vectors_of_16_and_8_bytes_are_sse_not_integer() {
    // gcc classify_argument: V4SImode/V2DImode are SSE+SSEUP, V2SImode/V4HImode/V8QImode/
    // V1DImode SSE (gcc: `paddd %xmm1, %xmm0`, `paddw %xmm0, %xmm0`, `movq %xmm0, %rax`).
    let mut e = sysv();
    let v4si = e.vector(e.i32(), 4);
    let v2si = e.vector(e.i32(), 2);
    let v8qi = e.vector(e.i8(), 8);
    let v1di = e.vector(e.i64(), 1);
    let plan = e.plan(v2si, &[v4si, v2si, v8qi, v1di]);
    assert_eq!(parts(&plan, 0)[0].size, 16);
    for (i, x) in [(0, 0), (1, 1), (2, 2), (3, 3)] {
        assert_eq!(loc(&plan, i), xmm(x), "argument {i}");
    }
    assert_eq!(plan.ret.loc, RetLoc::Xmm0);
    // Must differ: a struct of two ints (the same 8 bytes) is INTEGER.
    let s = e.strukt(&[e.i32(), e.i32()]);
    let plan = e.plan(s, &[s]);
    assert_eq!(loc(&plan, 0), gpr(Gpr::DI));
    assert_eq!(plan.ret.loc, RetLoc::Gpr);
}

#[test]
fn sysv_integer_vectors_of_4_bytes_or_less_are_integer() {
    // gcc: V4QImode, V2HImode (and the one-int vector, SImode) fall to its INTEGER default
    // (`movl %edi, %eax`; `movd %edi, %xmm0` ... `movd %xmm0, %eax`).
    let mut e = sysv();
    let v4qi = e.vector(e.i8(), 4);
    let v2hi = e.vector(e.i16(), 2);
    let v1si = e.vector(e.i32(), 1);
    let plan = e.plan(v2hi, &[v4qi, v2hi, v1si]);
    assert_eq!(loc(&plan, 0), gpr(Gpr::DI));
    assert_eq!(loc(&plan, 1), gpr(Gpr::SI));
    assert_eq!(loc(&plan, 2), gpr(Gpr::DX));
    assert_eq!(plan.ret.loc, RetLoc::Gpr);
    // Must differ: 8 bytes of chars is SSE.
    let v8qi = e.vector(e.i8(), 8);
    assert_eq!(loc(&e.plan(e.void(), &[v8qi]), 0), xmm(0));
}

#[test]
fn sysv_16_byte_vectors_take_the_eight_xmm_registers_then_a_16_aligned_stack_slot() {
    // psABI §3.2.3: SSEUP takes no register of its own, so eight vectors fill xmm0..xmm7;
    // the ninth goes to memory at its 16-byte alignment (gcc: `movaps 8(%rsp), %xmm0` after
    // eight doubles).
    let mut e = sysv();
    let v = e.vector(e.f32(), 4);
    let plan = e.plan(e.void(), &[v; 9]);
    for i in 0..8 {
        assert_eq!(loc(&plan, i), xmm(i as u8));
    }
    assert_eq!(loc(&plan, 8), stack(0));
    let plan = e.plan(e.void(), &[e.i64(), e.i64(), e.i64(), e.i64(), e.i64(), e.i64(), e.i64(), e.f64(), v, v, v]);
    // Seven longs: one on the stack at 0; the vectors still find registers.
    assert_eq!(loc(&plan, 8), xmm(1));
    let nine_doubles = [e.f64(), e.f64(), e.f64(), e.f64(), e.f64(), e.f64(), e.f64(), e.f64(), e.f64(), v];
    let plan = e.plan(e.void(), &nine_doubles);
    // Must differ from an 8-byte slot: the double at 0, the vector at 16, not 8.
    assert_eq!(loc(&plan, 8), stack(0));
    assert_eq!(loc(&plan, 9), stack(16));
    assert_eq!(plan.stack_bytes, 32);
}

#[test]
fn sysv_struct_of_one_vector_is_sse_sseup_and_a_union_with_floats_merges_to_sse_sse() {
    // psABI §3.2.3: struct { __m128 v; } classifies as its member (gcc returns it untouched
    // in %xmm0); in union { __m128 v; float f[4]; } SSEUP meets SSE and merge rule (f) gives
    // SSE, so the union travels in two registers (gcc reads f[2] from %xmm1).
    let mut e = sysv();
    let v = e.vector(e.f32(), 4);
    let s = e.strukt(&[v]);
    let plan = e.plan(s, &[s]);
    assert_eq!(parts(&plan, 0).len(), 1);
    assert_eq!((parts(&plan, 0)[0].loc, parts(&plan, 0)[0].size), (xmm(0), 16));
    assert_eq!(plan.ret.loc, RetLoc::Xmm0Full);
    let f4 = e.array(e.f32(), 4);
    let u = e.union(&[v, f4]);
    let plan = e.plan(u, &[u]);
    let p = parts(&plan, 0);
    assert_eq!(p.iter().map(|p| (p.loc, p.offset, p.size)).collect::<Vec<_>>(), [(xmm(0), 0, 8), (xmm(1), 8, 8)]);
    assert_eq!(plan.ret.loc, RetLoc::Xmm0Xmm1);
}

#[test]
fn sysv_record_with_an_8_byte_vector_and_an_int_is_sse_then_integer() {
    // struct { __m64 v; int b; }: SSE, INTEGER -> %xmm0 and %rdi (gcc returns it in %xmm0
    // and %rax); the same struct packed after a char puts the vector at byte 1, misaligned:
    // MEMORY (gcc: `movss 13(%rsp), %xmm0`).
    let mut e = sysv();
    let v2sf = e.vector(e.f32(), 2);
    let s = e.strukt(&[v2sf, e.i32()]);
    let plan = e.plan(s, &[s]);
    let p = parts(&plan, 0);
    assert_eq!(p.iter().map(|p| (p.loc, p.offset)).collect::<Vec<_>>(), [(xmm(0), 0), (gpr(Gpr::DI), 8)]);
    assert_eq!(plan.ret.loc, RetLoc::Xmm0Rax);
    let packed = RecordAttrs { packed: true, ..RecordAttrs::default() };
    let c = e.int(IntKind::Char);
    let p = e.record(RecordKind::Struct, &[c, v2sf], packed);
    let plan = e.plan(e.void(), &[p]);
    assert_eq!(loc(&plan, 0), stack(0));
}

#[test]
fn vectors_over_16_bytes_are_refused_on_x86_64_as_avx_decides_them() {
    // gcc without -mavx passes __m256 in memory and warns "AVX vector argument without AVX
    // enabled changes the ABI"; with it, in %ymm0: a library's flags decide.
    for mut e in [sysv(), win64()] {
        let v8sf = e.vector(e.f32(), 8);
        assert!(refusal(&e, v8sf).contains("AVX"));
        let s = e.strukt(&[e.i32(), v8sf]);
        assert!(refusal(&e, s).contains("AVX"), "a struct holding one");
        // Must plan: 16 bytes is the largest vector with one rule.
        let v4sf = e.vector(e.f32(), 4);
        e.plan(v4sf, &[v4sf]);
    }
}

#[test]
fn one_element_float_and_double_vectors_are_refused_as_gcc_alone_passes_them() {
    // gcc has no V1SF/V1DF mode: SysV passes them in memory (`movsd 8(%rsp)` and an sret
    // return for double vector_size(8)), mingw by reference (`movsd (%rcx), %xmm0`) though
    // an 8-byte record goes in rcx; clang passes <1 x float> in a general register.
    for mut e in [sysv(), win64()] {
        for elem in [e.f32(), e.f64()] {
            let v1 = e.vector(elem, 1);
            assert!(refusal(&e, v1).contains("one float or double"));
        }
        // Must plan: the one-element integer vectors have ordinary rules.
        let v1di = e.vector(e.i64(), 1);
        e.plan(v1di, &[v1di]);
    }
}

#[test]
fn win64_16_byte_vectors_go_by_reference_and_return_in_xmm0() {
    // Microsoft x64: "__m128 types ... are passed by reference", "returned in XMM0" (mingw:
    // `movups (%rdx), %xmm0; addps (%rcx), %xmm0; ret`). A struct holding one is an ordinary
    // 16-byte record: by reference and returned through memory (mingw: `movq %rcx, %rax`).
    let mut e = win64();
    let v = e.vector(e.f32(), 4);
    let plan = e.plan(v, &[v, v]);
    assert!(matches!(plan.args[0].pass, ArgPass::Indirect { ptr, .. } if ptr == gpr(Gpr::CX)));
    assert!(matches!(plan.args[1].pass, ArgPass::Indirect { ptr, .. } if ptr == gpr(Gpr::DX)));
    assert_eq!(plan.ret.loc, RetLoc::Xmm0Full);
    let s = e.strukt(&[v]);
    let plan = e.plan(s, &[s]);
    assert!(matches!(plan.args[0].pass, ArgPass::Indirect { ptr, .. } if ptr == gpr(Gpr::DX)));
    assert_eq!(plan.ret.loc, RetLoc::Sret { ptr: gpr(Gpr::CX) });
}

#[test]
fn win64_vectors_of_8_bytes_or_less_go_and_return_in_integer_registers() {
    // mingw: `movq %rcx, %xmm0; movq %rdx, %xmm1; addps ...; movq %xmm0, %rax` for __m64-
    // sized float vectors, the same for integer ones: like records of their size.
    let mut e = win64();
    let v2sf = e.vector(e.f32(), 2);
    let v4qi = e.vector(e.i8(), 4);
    let plan = e.plan(v2sf, &[v2sf, v4qi]);
    assert_eq!(loc(&plan, 0), gpr(Gpr::CX));
    assert_eq!(loc(&plan, 1), gpr(Gpr::DX));
    assert_eq!(plan.ret.loc, RetLoc::Gpr);
    // Must differ from SysV, where the same vector is SSE.
    let mut s = sysv();
    let v2sf = s.vector(s.f32(), 2);
    assert_eq!(loc(&s.plan(s.void(), &[v2sf]), 0), xmm(0));
}

#[test]
fn i386_vectors_are_refused_as_mmx_and_sse_flags_decide_them() {
    // gcc -m32 passes __m128 in %xmm0 with -msse and on the stack without (and warns
    // "SSE vector argument without SSE enabled changes the ABI"), __m64 in %mm0 with -mmmx:
    // no one rule for i386 Linux or Windows libraries.
    for target in [Target::X86_LINUX, Target::X86_WIN] {
        let mut e = Env::new(target);
        let v4sf = e.vector(e.f32(), 4);
        let v2si = e.vector(e.i32(), 2);
        for v in [v4sf, v2si] {
            assert!(refusal(&e, v).contains("-msse"), "{target:?}");
        }
        let s = e.strukt(&[v4sf]);
        assert!(refusal(&e, s).contains("-msse"));
        // Must plan: the same bytes as an array in a struct.
        let a = e.array(e.f32(), 4);
        let s = e.strukt(&[a]);
        e.plan(s, &[s]);
    }
}

#[test]
fn sysv_sseup_after_an_integer_eightbyte_becomes_sse() {
    // psABI §3.2.3 post-merger 5(c): "If SSEUP is not preceded by SSE or SSEUP, it is
    // converted to SSE". union { __m128 v; long l; }: INTEGER (v's SSE meets l), then v's
    // SSEUP alone -> SSE: %rdi and %xmm0 (gcc reads v[2] from %xmm0 untouched, returns
    // the union in %rax and %xmm0).
    let mut e = sysv();
    let v = e.vector(e.f32(), 4);
    let u = e.union(&[v, e.i64()]);
    let plan = e.plan(u, &[u]);
    let p = parts(&plan, 0);
    assert_eq!(p.iter().map(|p| (p.loc, p.offset, p.size)).collect::<Vec<_>>(), [(gpr(Gpr::DI), 0, 8), (xmm(0), 8, 8)]);
    assert_eq!(plan.ret.loc, RetLoc::RaxXmm0);
    // Must differ: without the long the union is the vector, one whole register.
    let alone = e.union(&[v]);
    assert_eq!(e.plan(alone, &[alone]).ret.loc, RetLoc::Xmm0Full);
}
