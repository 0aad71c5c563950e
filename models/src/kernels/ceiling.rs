//! The machine's own ceilings: how many integer and f32 multiply-adds per second its cores
//! can issue, measured with short register-resident loops of the very instructions the
//! kernels use. Speed goals are ratios to these, measured in the same run, because the
//! machines Vigie runs on differ (AVX-512 VNNI on some, AVX2 only on others).

use std::time::Instant;

use super::{amx, avx2, avx512, avxvnni, neon, Kernel};

/// Peak rates on every thread of rayon's pool, in giga-operations per second (a
/// multiply-add counts as two operations, as in GFLOP/s).
#[derive(Clone, Copy, Debug)]
pub struct Ceilings {
    /// The kernel whose inner instructions were timed.
    pub kernel: Kernel,
    /// Integer ops/s of that kernel's instruction sequence; 0 for the portable kernel,
    /// which has no fixed sequence.
    pub int8_gops: f64,
    /// f32 FMA ops/s at the widest vector width the processor has.
    pub f32_gflops: f64,
    /// With the AMX kernel, the int8 ops/s of the AVX-512 VNNI sequence too: the vector
    /// ceiling the other kernels are judged against, so shares stay comparable across
    /// machines. Equal to `int8_gops` for every other kernel.
    pub vector_int8_gops: f64,
    /// Threads the loops ran on.
    pub threads: usize,
}

impl Ceilings {
    /// The higher rates of two measurements of the same machine. A shared machine only
    /// ever slows a loop down (other tenants, a lower clock for a while), so the highest
    /// rate seen is the closest to what the cores can do, and shares of it are
    /// conservative.
    pub fn max(self, other: Ceilings) -> Ceilings {
        Ceilings {
            int8_gops: self.int8_gops.max(other.int8_gops),
            f32_gflops: self.f32_gflops.max(other.f32_gflops),
            vector_int8_gops: self.vector_int8_gops.max(other.vector_int8_gops),
            ..self
        }
    }
}

/// Times the loops for about `seconds` each.
pub fn measure(kernel: Kernel, seconds: f64) -> Ceilings {
    let int_loop: fn(u64) -> u64 = match kernel {
        Kernel::Amx => amx::ceiling_loop,
        Kernel::Avx512Vnni => avx512::ceiling_loop,
        Kernel::Avx2 => avx2::ceiling_loop,
        Kernel::AvxVnni => avxvnni::ceiling_loop,
        Kernel::Neon => neon::ceiling_loop,
        Kernel::Portable => |_| 0,
    };
    let f32_loop: fn(u64) -> u64 = if avx512::fma_ceiling_loop(1) > 0 {
        avx512::fma_ceiling_loop
    } else if neon::fma_ceiling_loop(1) > 0 {
        neon::fma_ceiling_loop
    } else {
        avx2::fma_ceiling_loop
    };
    let int8_gops = rate(int_loop, seconds);
    let vector_int8_gops = match kernel {
        Kernel::Amx => rate(avx512::ceiling_loop, seconds),
        _ => int8_gops,
    };
    Ceilings {
        kernel,
        int8_gops,
        vector_int8_gops,
        f32_gflops: rate(f32_loop, seconds),
        threads: rayon::current_num_threads(),
    }
}

/// Giga-ops per second of `work` run on every thread at once.
fn rate(work: fn(u64) -> u64, seconds: f64) -> f64 {
    // Calibrate on one thread, then run long enough on all of them.
    let probe = 1 << 16;
    let started = Instant::now();
    if work(probe) == 0 {
        return 0.0;
    }
    let per_iteration = started.elapsed().as_secs_f64() / probe as f64;
    let iterations = ((seconds / per_iteration.max(1e-12)) as u64).max(probe);
    let started = Instant::now();
    let macs: u64 = rayon::broadcast(|_| work(iterations)).iter().sum();
    2.0 * macs as f64 / started.elapsed().as_secs_f64() / 1e9
}
