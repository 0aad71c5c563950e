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
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM)`); [`supported`] asks once. Each task of a product
//! loads the tile configuration ([`configure`]) before its tiles. Rust has no stable AMX
//! intrinsics, so the instructions are inline assembly, each tile one block from its
//! zeroed accumulators to their store (tile registers cannot carry values between blocks).

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

/// Loads the tile configuration on the calling thread: before the tiles of each task.
pub(super) fn configure() {
    imp::configure()
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

    /// Loads the tile configuration on the calling thread. The product calls it at the
    /// start of each of its tasks, so a tile never runs on a configuration that other code
    /// on the thread (none today) could have released or changed in between.
    pub(super) fn configure() {
        assert!(supported(), "the AMX kernel ran on a processor without AMX");
        // SAFETY: AMX was granted (`supported`); the operand is a valid palette-1
        // configuration, 64-byte aligned. Loading it zeroes every tile register, declared
        // as clobbered.
        unsafe {
            asm!(
                "ldtilecfg [{0}]",
                in(reg) &CONFIG,
                out("tmm0") _, out("tmm1") _, out("tmm2") _, out("tmm3") _,
                out("tmm4") _, out("tmm5") _, out("tmm6") _, out("tmm7") _,
                options(nostack, readonly)
            )
        };
    }

    pub(super) fn tile(a: &[u8], stride: usize, w: &[i8], steps: usize, ctx: &Epilogue) {
        assert!(supported(), "the AMX kernel ran on a processor without AMX");
        // SAFETY: features checked above, bounds by the caller, configuration loaded by
        // the caller's task (`configure`).
        unsafe { tile_16(a.as_ptr(), stride, w.as_ptr(), steps, ctx) }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile_16(a: *const u8, stride: usize, w: *const i8, steps: usize, ctx: &Epilogue) {
        let mut sums = std::mem::MaybeUninit::<Sums>::uninit();
        let quad_row = 4 * PANEL;
        // One block of assembly from the zeroed accumulators to their store: tile registers
        // cannot carry values from one `asm!` to the next, so the loop over `k` is inside.
        // Per step of 64 bytes: the 16 rows' activations, then the panel's four 16-column
        // weight tiles 64 bytes apart in each 256-byte quad row, each into its accumulator.
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            "test {steps}, {steps}",
            "jz 3f",
            "2:",
            "tileloadd tmm4, [{a} + {sa}*1]",
            "tileloadd tmm5, [{b} + {sb}*1]",
            "tileloadd tmm6, [{b} + {sb}*1 + 64]",
            "tdpbusd tmm0, tmm4, tmm5",
            "tileloadd tmm7, [{b} + {sb}*1 + 128]",
            "tdpbusd tmm1, tmm4, tmm6",
            "tileloadd tmm5, [{b} + {sb}*1 + 192]",
            "tdpbusd tmm2, tmm4, tmm7",
            "tdpbusd tmm3, tmm4, tmm5",
            "add {a}, 64",
            "add {b}, {b_step}",
            "dec {steps}",
            "jnz 2b",
            "3:",
            "tilestored [{c} + {sb}*1], tmm0",
            "tilestored [{c} + {sb}*1 + 64], tmm1",
            "tilestored [{c} + {sb}*1 + 128], tmm2",
            "tilestored [{c} + {sb}*1 + 192], tmm3",
            a = inout(reg) a => _,
            b = inout(reg) w => _,
            steps = inout(reg) steps => _,
            sa = in(reg) stride,
            sb = in(reg) quad_row,
            b_step = in(reg) (K_STEP / 4) * quad_row,
            c = in(reg) sums.as_mut_ptr() as *mut u8,
            out("tmm0") _, out("tmm1") _, out("tmm2") _, out("tmm3") _,
            out("tmm4") _, out("tmm5") _, out("tmm6") _, out("tmm7") _,
            options(nostack)
        );
        // SAFETY: the four stores wrote all 16 rows × 64 sums (16 rows of 256 bytes).
        let sums = sums.assume_init();
        for (r, row) in sums.0.iter().enumerate() {
            let p = row.as_ptr() as *const __m512i;
            let acc = [
                _mm512_loadu_si512(p),
                _mm512_loadu_si512(p.add(1)),
                _mm512_loadu_si512(p.add(2)),
                _mm512_loadu_si512(p.add(3)),
            ];
            super::super::avx512::imp::store_row(&acc, r, ctx);
        }
    }

    /// A tile's sums, on a line boundary for `tilestored`.
    #[repr(C, align(64))]
    struct Sums([[i32; PANEL]; ROWS]);

    pub(super) fn ceiling_loop(iterations: u64) -> u64 {
        if !supported() {
            return 0;
        }
        configure();
        // SAFETY: AMX granted and configured above; the loop reads and writes tiles only,
        // all declared as clobbered.
        unsafe {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                "tilezero tmm4",
                "tilezero tmm5",
                "test {n}, {n}",
                "jz 3f",
                "2:",
                "tdpbusd tmm0, tmm4, tmm5",
                "tdpbusd tmm1, tmm4, tmm5",
                "tdpbusd tmm2, tmm4, tmm5",
                "tdpbusd tmm3, tmm4, tmm5",
                "dec {n}",
                "jnz 2b",
                "3:",
                n = inout(reg) iterations => _,
                out("tmm0") _, out("tmm1") _, out("tmm2") _, out("tmm3") _,
                out("tmm4") _, out("tmm5") _, out("tmm6") _, out("tmm7") _,
                options(nostack, nomem)
            );
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

    pub(super) fn configure() {
        unreachable!("the AMX kernel is only chosen on x86-64 Linux processors that have it")
    }

    pub(super) fn tile(_: &[u8], _: usize, _: &[i8], _: usize, _: &Epilogue) {
        unreachable!("the AMX kernel is only chosen on x86-64 Linux processors that have it")
    }

    pub(super) fn ceiling_loop(_: u64) -> u64 {
        0
    }
}
