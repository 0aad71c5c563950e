//! Share of the machine's int8 ceiling that each of the encoder's products reaches, shape
//! by shape (tokens × in × out), with the kernel chosen at run time (`VIGIE_KERNELS` caps
//! it). Tells whether one shape (the 1,536-deep feed-forward output, whose weight panels
//! outgrow L1) lags the others.
//! Times are medians of calls.
//! `cargo run --release -p vigie-models --example int8_shapes [tokens] [seconds]`

use std::time::Instant;

use vigie_models::kernels::{ceiling, Kernel, QuantizedLinear};
use vigie_models::rng::XorShift;

fn main() {
    let mut args = std::env::args().skip(1);
    let m: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1741);
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2.0);
    let kernel = Kernel::detect();
    let mut rng = XorShift::new(7);
    if kernel == Kernel::Portable {
        eprintln!("the portable kernel has no fixed instruction sequence to take a ceiling of");
        return;
    }
    let seconds = seconds.max(0.1);
    let mut ceilings = ceiling::measure(kernel, 0.5);
    println!(
        "kernel {}, {} threads, int8 ceiling {:.0} GOP/s",
        kernel.name(),
        ceilings.threads,
        ceilings.int8_gops
    );
    for (name, k, n) in [
        ("qkv", 384, 1152),
        ("attention out", 384, 384),
        ("ffn in", 384, 1536),
        ("ffn out", 1536, 384),
    ] {
        let layer = QuantizedLinear::new(&rng.vec(n * k, 0.05), &rng.vec(n, 0.1), n, k, kernel);
        let x = rng.vec(m * k, 1.0);
        let rows = layer.quantize_input(&x, m);
        // The median call: a shared machine's other tenants slow some calls down, and a
        // mean would carry them.
        let mut times = Vec::new();
        let started = Instant::now();
        while started.elapsed().as_secs_f64() < seconds || times.len() < 5 {
            let call = Instant::now();
            std::hint::black_box(layer.forward_rows_to_vec(&rows, m));
            times.push(call.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let secs = times[times.len() / 2];
        let gops = 2.0 * (m * k * n) as f64 / secs / 1e9;
        ceilings = ceilings.max(ceiling::measure(kernel, 0.5));
        println!(
            "{name:>14} {m}×{k}×{n}: {:7.3} ms, {gops:6.0} GOP/s, {:4.1} % of the ceiling",
            secs * 1e3,
            100.0 * gops / ceilings.int8_gops
        );
    }
}
