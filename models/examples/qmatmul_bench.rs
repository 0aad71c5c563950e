//! Why the linear layers keep f32 weights: candle's quantised products against its f32
//! product on the encoder's shapes (tokens x in x out).
//! `cargo run --release -p vigie-models --example qmatmul_bench`

use std::time::Instant;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    // 32 posts of 40 tokens through the attention and feed-forward shapes; then one post.
    for (m, k, n) in [
        (1280, 384, 384),
        (1280, 384, 1536),
        (1280, 1536, 384),
        (40, 384, 1536),
    ] {
        let x = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
        let w = Tensor::randn(0f32, 0.05, (n, k), &dev)?;
        let f32_linear = candle_nn::Linear::new(w.clone(), None);
        let q4 = QMatMul::from_qtensor(QTensor::quantize(&w, GgmlDType::Q4_0)?)?;
        let q8 = QMatMul::from_qtensor(QTensor::quantize(&w, GgmlDType::Q8_0)?)?;
        let reference = f32_linear.forward(&x)?;
        for (name, layer) in [
            ("f32", &f32_linear as &dyn Module),
            ("q4_0", &q4),
            ("q8_0", &q8),
        ] {
            let out = layer.forward(&x)?;
            let reps = 5;
            let started = Instant::now();
            for _ in 0..reps {
                layer.forward(&x)?;
            }
            let secs = started.elapsed().as_secs_f64() / reps as f64;
            let cos = (&out * &reference)?.sum_all()?.to_scalar::<f32>()?
                / (out.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?
                    * reference.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?);
            println!(
                "{m:>5} x {k:>4} x {n:>4}  {name}: {:>8.2} ms, {:>6.1} GFLOP/s, cosine to f32 {cos:.4}",
                secs * 1e3,
                2.0 * (m * k * n) as f64 / secs / 1e9
            );
        }
    }
    Ok(())
}
