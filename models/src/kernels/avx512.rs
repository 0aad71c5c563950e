//! The AVX-512 VNNI kernel: `vpdpbusd` multiplies four unsigned activation bytes by four
//! signed weight bytes and adds them into each 32-bit lane in one instruction. A tile is 6
//! rows × 64 columns: 24 accumulators, four weight registers, one broadcast, all in the
//! 32 vector registers; each 256-byte weight load serves six rows.

use super::Epilogue;

/// Output columns per panel: four 512-bit registers of 32-bit sums.
pub(super) const PANEL: usize = 64;

/// Whether this processor runs the kernel.
pub(super) fn supported() -> bool {
    imp::supported()
}

/// Sums `rows` (≤ 6) rows of shifted activations (`q + 128`, `stride` apart, `4·quads`
/// long) against one packed panel (`[quads][64][4]`) and stores them through `ctx`.
pub(super) fn tile(a: &[u8], stride: usize, rows: usize, w: &[i8], quads: usize, ctx: &Epilogue) {
    assert!((1..=super::TILE_ROWS).contains(&rows));
    assert!(a.len() >= (rows - 1) * stride + 4 * quads && w.len() >= quads * 4 * PANEL);
    imp::tile(a, stride, rows, w, quads, ctx)
}

/// Multiply-adds done by a loop of 12 independent `vpdpbusd` that never touches memory
/// (`iterations` rounds), or 0 when the processor lacks AVX-512 VNNI.
pub(super) fn ceiling_loop(iterations: u64) -> u64 {
    imp::ceiling_loop(iterations)
}

/// f32 multiply-adds done by a loop of 12 independent 512-bit FMAs that never touches
/// memory, or 0 without AVX-512 F.
pub(super) fn fma_ceiling_loop(iterations: u64) -> u64 {
    imp::fma_ceiling_loop(iterations)
}

#[cfg(target_arch = "x86_64")]
pub(super) mod imp {
    use std::arch::x86_64::*;

    use super::{Epilogue, PANEL};

    pub(super) fn supported() -> bool {
        // AVX2 and FMA too: the per-element code compiled for this level uses them, and
        // a virtual machine may hide them while showing AVX-512.
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
    }

    pub(super) fn tile(
        a: &[u8],
        stride: usize,
        rows: usize,
        w: &[i8],
        quads: usize,
        ctx: &Epilogue,
    ) {
        assert!(
            supported(),
            "the VNNI kernel ran on a processor without AVX-512 VNNI"
        );
        let (a, w) = (a.as_ptr(), w.as_ptr());
        // SAFETY: the feature check above, and the bounds checked by the caller.
        unsafe {
            match rows {
                1 => tile_rows::<1>(a, stride, w, quads, ctx),
                2 => tile_rows::<2>(a, stride, w, quads, ctx),
                3 => tile_rows::<3>(a, stride, w, quads, ctx),
                4 => tile_rows::<4>(a, stride, w, quads, ctx),
                5 => tile_rows::<5>(a, stride, w, quads, ctx),
                _ => tile_rows::<6>(a, stride, w, quads, ctx),
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile_rows<const MR: usize>(
        a: *const u8,
        stride: usize,
        w: *const i8,
        quads: usize,
        ctx: &Epilogue,
    ) {
        let mut acc = [[_mm512_setzero_si512(); 4]; MR];
        // Two steps of `k` per turn of the loop: its counter and row pointers cost a
        // twelfth of the kernel's rate on one step (measured on L1-resident data).
        let mut q = 0;
        while q + 2 <= quads {
            step::<MR>(&mut acc, a, stride, w, q);
            step::<MR>(&mut acc, a, stride, w, q + 1);
            q += 2;
        }
        if q < quads {
            step::<MR>(&mut acc, a, stride, w, q);
        }
        for (r, acc) in acc.iter().enumerate() {
            store_row(acc, r, ctx);
        }
    }

    /// Stores row `r` of a tile from its 64 sums in four registers: scaled, shifted back
    /// and biased in registers for a whole panel, through [`Epilogue::store_row`] for a
    /// partial one. The AMX kernel stores its rows through it too.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(in crate::kernels) unsafe fn store_row(acc: &[__m512i; 4], r: usize, ctx: &Epilogue) {
        if ctx.cols == PANEL {
            let row_scale = _mm512_set1_ps(ctx.row_scales[r]);
            let dst = ctx.out.add(r * ctx.out_stride);
            for (v, &sum) in acc.iter().enumerate() {
                let comp =
                    _mm512_loadu_si512(ctx.shift_comp.as_ptr().add(16 * v) as *const __m512i);
                let scale =
                    _mm512_mul_ps(row_scale, _mm512_loadu_ps(ctx.scales.as_ptr().add(16 * v)));
                let bias = _mm512_loadu_ps(ctx.bias.as_ptr().add(16 * v));
                let sum = _mm512_cvtepi32_ps(_mm512_sub_epi32(sum, comp));
                _mm512_storeu_ps(dst.add(16 * v), _mm512_fmadd_ps(sum, scale, bias));
            }
        } else {
            let mut sums = [0i32; PANEL];
            for (v, &sum) in acc.iter().enumerate() {
                _mm512_storeu_si512(sums.as_mut_ptr().add(16 * v) as *mut __m512i, sum);
            }
            ctx.store_row(r, &sums);
        }
    }

    /// One step of `k` (four bytes) for every row of the tile against the panel's 64
    /// columns.
    #[inline(always)]
    unsafe fn step<const MR: usize>(
        acc: &mut [[__m512i; 4]; MR],
        a: *const u8,
        stride: usize,
        w: *const i8,
        q: usize,
    ) {
        let wp = w.add(q * 4 * PANEL) as *const __m512i;
        let ws = [
            _mm512_loadu_si512(wp),
            _mm512_loadu_si512(wp.add(1)),
            _mm512_loadu_si512(wp.add(2)),
            _mm512_loadu_si512(wp.add(3)),
        ];
        for (r, acc) in acc.iter_mut().enumerate() {
            let x = _mm512_set1_epi32((a.add(r * stride + 4 * q) as *const i32).read_unaligned());
            for (acc, &wv) in acc.iter_mut().zip(&ws) {
                *acc = _mm512_dpbusd_epi32(*acc, x, wv);
            }
        }
    }

    pub(super) fn ceiling_loop(iterations: u64) -> u64 {
        if !supported() {
            return 0;
        }
        // SAFETY: feature checked above.
        unsafe { ceiling(iterations) }
    }

    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn ceiling(iterations: u64) -> u64 {
        let mut x = _mm512_set1_epi8(3);
        let y = _mm512_set1_epi8(std::hint::black_box(5));
        let mut acc = [_mm512_setzero_si512(); 12];
        for _ in 0..iterations {
            // An empty asm that "changes" x keeps the products inside the loop.
            std::arch::asm!("/* {0} */", inout(zmm_reg) x, options(nomem, nostack, preserves_flags));
            for a in acc.iter_mut() {
                *a = _mm512_dpbusd_epi32(*a, x, y);
            }
        }
        let mut sink = [0i32; 16];
        for a in acc {
            _mm512_storeu_si512(sink.as_mut_ptr() as *mut __m512i, a);
            std::hint::black_box(sink);
        }
        iterations * 12 * 64
    }

    pub(super) fn fma_ceiling_loop(iterations: u64) -> u64 {
        if !is_x86_feature_detected!("avx512f") {
            return 0;
        }
        // SAFETY: feature checked above.
        unsafe { fma_ceiling(iterations) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn fma_ceiling(iterations: u64) -> u64 {
        let mut x = _mm512_set1_ps(0.999);
        let y = _mm512_set1_ps(std::hint::black_box(1e-3));
        let mut acc = [_mm512_setzero_ps(); 12];
        for _ in 0..iterations {
            std::arch::asm!("/* {0} */", inout(zmm_reg) x, options(nomem, nostack, preserves_flags));
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(x, y, *a);
            }
        }
        let mut sink = [0f32; 16];
        for a in acc {
            _mm512_storeu_ps(sink.as_mut_ptr(), a);
            std::hint::black_box(sink);
        }
        iterations * 12 * 16
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    use super::Epilogue;

    pub(super) fn supported() -> bool {
        false
    }

    pub(super) fn tile(_: &[u8], _: usize, _: usize, _: &[i8], _: usize, _: &Epilogue) {
        unreachable!("the VNNI kernel is only chosen on x86-64 processors that have it")
    }

    pub(super) fn ceiling_loop(_: u64) -> u64 {
        0
    }

    pub(super) fn fma_ceiling_loop(_: u64) -> u64 {
        0
    }
}
