//! The AMX kernel (Intel Sapphire Rapids and later Xeons): `tdpbusd` multiplies a tile of
//! 16 rows × 64 unsigned activation bytes by a tile of 16 quads × 16 columns of signed
//! weight bytes into 16 × 16 32-bit sums, 16,384 multiply-adds in one instruction where
//! `vpdpbusd` on 512 bits does 64. A tile here is 16 rows × one 64-column panel: four
//! accumulator tiles, one activation tile and two weight tiles in turn.
//!
//! The weights are the AVX-512 kernel's packing (`[k/4][64][4]` per panel), read as four
//! 16-column tiles 256 bytes apart per quad row; `k` is padded to whole 64-byte steps.
//! Activations are stored as `q + 128`, with the same `shift_comp`. Rows that do not fill a
//! 16-row tile (the last of a block) go to the AVX-512 kernel on the same packing.
//!
//! Linux hands AMX's 8 KB of tile state to a process only when asked
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM)`); [`supported`] asks once. Each thread loads the tile
//! configuration once, the first time it runs a tile; nothing else in the process uses
//! the tile registers. Rust has no stable AMX intrinsics, so the instructions are inline
//! assembly.

use super::Epilogue;

/// Output columns per panel: four tiles of 16 columns (the AVX-512 kernel's panel).
pub(super) const PANEL: usize = 64;

/// Rows of one tile.
pub(super) const ROWS: usize = 16;

/// Bytes of `k` one `tdpbusd` consumes: `k` is padded to a multiple of this.
pub(super) const K_STEP: usize = 64;

/// Whether this processor (and operating system) runs the kernel.
pub(super) fn supported() -> bool {
    imp::supported()
}

/// Sums 16 rows of shifted activations (`q + 128`, `stride` apart, `64·steps` long) against
/// one packed panel (`[16·steps][64][4]`) and stores them through `ctx`.
pub(super) fn tile(a: &[u8], stride: usize, w: &[i8], steps: usize, ctx: &Epilogue) {
    assert!(a.len() >= (ROWS - 1) * stride + K_STEP * steps && w.len() >= steps * K_STEP * PANEL);
    assert!(ctx.row_scales.len() >= ROWS);
    imp::tile(a, stride, w, steps, ctx)
}

/// Multiply-adds done by a loop of 4 independent `tdpbusd` on tiles that never touch
/// memory (`iterations` rounds), or 0 without AMX.
pub(super) fn ceiling_loop(iterations: u64) -> u64 {
    imp::ceiling_loop(iterations)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod imp {
    use std::arch::asm;
    use std::arch::x86_64::*;
    use std::cell::Cell;
    use std::sync::OnceLock;

    use super::{Epilogue, K_STEP, PANEL, ROWS};

    /// The 64-byte operand of `ldtilecfg`: palette 1, then bytes per row and rows of each
    /// of the 8 tiles.
    #[repr(C, align(64))]
    struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        bytes_per_row: [u16; 16],
        rows: [u8; 16],
    }

    const CONFIG: TileConfig = TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        bytes_per_row: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
        rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
    };

    pub(super) fn supported() -> bool {
        static GRANTED: OnceLock<bool> = OnceLock::new();
        *GRANTED.get_or_init(|| {
            // The epilogue and the rows left over run on the AVX-512 kernel.
            // CPUID leaf 7: AMX-TILE (EDX bit 24) and AMX-INT8 (bit 25).
            let leaf7 = __cpuid_count(7, 0);
            let cpu = (leaf7.edx >> 24) & 1 == 1 && (leaf7.edx >> 25) & 1 == 1;
            cpu && super::super::avx512::supported() && request_tile_data()
        })
    }

    /// Asks Linux for the AMX tile data state (`ARCH_REQ_XCOMP_PERM`, feature 18); true
    /// once granted (every thread of the process then has it).
    fn request_tile_data() -> bool {
        const ARCH_PRCTL: i64 = 158;
        const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
        const XFEATURE_XTILEDATA: i64 = 18;
        let ret: i64;
        // SAFETY: a plain system call with integer arguments; it touches no memory of ours.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") ARCH_PRCTL => ret,
                in("rdi") ARCH_REQ_XCOMP_PERM,
                in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack)
            );
        }
        ret == 0
    }

    thread_local! {
        static CONFIGURED: Cell<bool> = const { Cell::new(false) };
    }

    /// Loads the tile configuration on this thread the first time (the kernel saves and
    /// restores it with the thread's state from then on).
    fn configure_thread() {
        CONFIGURED.with(|done| {
            if !done.get() {
                // SAFETY: AMX was granted (`supported`); the operand is a valid palette-1
                // configuration, 64-byte aligned.
                unsafe { asm!("ldtilecfg [{0}]", in(reg) &CONFIG, options(nostack)) };
                done.set(true);
            }
        });
    }

    pub(super) fn tile(a: &[u8], stride: usize, w: &[i8], steps: usize, ctx: &Epilogue) {
        assert!(supported(), "the AMX kernel ran on a processor without AMX");
        configure_thread();
        // SAFETY: features checked above, bounds by the caller.
        unsafe { tile_16(a.as_ptr(), stride, w.as_ptr(), steps, ctx) }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile_16(a: *const u8, stride: usize, w: *const i8, steps: usize, ctx: &Epilogue) {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack, nomem)
        );
        let quad_row = 4 * PANEL;
        for s in 0..steps {
            let ap = a.add(s * K_STEP);
            let bp = w.add(s * (K_STEP / 4) * quad_row);
            asm!(
                "tileloadd tmm4, [{a} + {sa}*1]",
                "tileloadd tmm5, [{b0} + {sb}*1]",
                "tileloadd tmm6, [{b1} + {sb}*1]",
                "tdpbusd tmm0, tmm4, tmm5",
                "tileloadd tmm5, [{b2} + {sb}*1]",
                "tdpbusd tmm1, tmm4, tmm6",
                "tileloadd tmm6, [{b3} + {sb}*1]",
                "tdpbusd tmm2, tmm4, tmm5",
                "tdpbusd tmm3, tmm4, tmm6",
                a = in(reg) ap,
                sa = in(reg) stride,
                b0 = in(reg) bp,
                b1 = in(reg) bp.add(64),
                b2 = in(reg) bp.add(128),
                b3 = in(reg) bp.add(192),
                sb = in(reg) quad_row,
                options(nostack, readonly)
            );
        }
        let mut sums = Sums([[0i32; PANEL]; ROWS]);
        let base = sums.0.as_mut_ptr() as *mut u8;
        asm!(
            "tilestored [{c0} + {s}*1], tmm0",
            "tilestored [{c1} + {s}*1], tmm1",
            "tilestored [{c2} + {s}*1], tmm2",
            "tilestored [{c3} + {s}*1], tmm3",
            c0 = in(reg) base,
            c1 = in(reg) base.add(64),
            c2 = in(reg) base.add(128),
            c3 = in(reg) base.add(192),
            s = in(reg) 4 * PANEL,
            options(nostack)
        );
        for (r, row) in sums.0.iter().enumerate() {
            if ctx.cols == PANEL {
                let row_scale = _mm512_set1_ps(ctx.row_scales[r]);
                let dst = ctx.out.add(r * ctx.out_stride);
                for v in 0..4 {
                    let sum = _mm512_loadu_si512(row.as_ptr().add(16 * v) as *const __m512i);
                    let comp =
                        _mm512_loadu_si512(ctx.shift_comp.as_ptr().add(16 * v) as *const __m512i);
                    let scale =
                        _mm512_mul_ps(row_scale, _mm512_loadu_ps(ctx.scales.as_ptr().add(16 * v)));
                    let bias = _mm512_loadu_ps(ctx.bias.as_ptr().add(16 * v));
                    let sum = _mm512_cvtepi32_ps(_mm512_sub_epi32(sum, comp));
                    _mm512_storeu_ps(dst.add(16 * v), _mm512_fmadd_ps(sum, scale, bias));
                }
            } else {
                ctx.store_row(r, row);
            }
        }
    }

    /// A tile's sums, on a line boundary for `tilestored`.
    #[repr(C, align(64))]
    struct Sums([[i32; PANEL]; ROWS]);

    pub(super) fn ceiling_loop(iterations: u64) -> u64 {
        if !supported() {
            return 0;
        }
        configure_thread();
        // SAFETY: AMX granted and configured above; the loop reads and writes tiles only.
        unsafe {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                "tilezero tmm4",
                "tilezero tmm5",
                options(nostack, nomem)
            );
            for _ in 0..iterations {
                asm!(
                    "tdpbusd tmm0, tmm4, tmm5",
                    "tdpbusd tmm1, tmm4, tmm5",
                    "tdpbusd tmm2, tmm4, tmm5",
                    "tdpbusd tmm3, tmm4, tmm5",
                    options(nostack, nomem)
                );
            }
        }
        iterations * 4 * (ROWS * 16 * K_STEP) as u64
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod imp {
    use super::Epilogue;

    pub(super) fn supported() -> bool {
        false
    }

    pub(super) fn tile(_: &[u8], _: usize, _: &[i8], _: usize, _: &Epilogue) {
        unreachable!("the AMX kernel is only chosen on x86-64 Linux processors that have it")
    }

    pub(super) fn ceiling_loop(_: u64) -> u64 {
        0
    }
}
