//! A linear map that carries a post's embedding toward the embedding of the claim it
//! states, so that known claims are found across wordings and languages.
//!
//! The encoder places a post near its claim only loosely: a French post and the English
//! sentence of the claim it spreads sit at 0.88–0.91, where unrelated claims on the same
//! topic sit at 0.86–0.89 (see `models/README.md`). The map `W` is fitted by ridge
//! regression toward the identity, `W = argmin |X W − Y|² + λ |W − I|²`, on posts `X` and
//! the embeddings `Y` of the claims they state; in closed form,
//! `(XᵀX + λI) W = XᵀY + λI`, solved once by Cholesky in f64. At λ → ∞ it is the
//! identity, i.e. plain cosine. A post is compared with the claims as `unit(x W)`; the
//! claims' own embeddings are left as they are.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{ClassifierFault, HeadError, ModelError, Result};

/// The map and its threshold, as saved in `models/head/claim_map.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClaimMap {
    /// What the file is (for people opening it).
    pub about: String,
    /// Width of the embeddings it maps.
    pub dim: usize,
    /// `dim × dim`, row-major: the mapped post is `x W` (row vector times matrix).
    pub w: Vec<f32>,
    /// The ridge weight it was fitted with.
    pub lambda: f32,
    /// From this cosine of a mapped post to a claim, the claim is matched.
    pub threshold: f32,
    /// How it was trained (data, split, settings, figures on held-out claims).
    pub trained_on: Vec<String>,
}

/// The built-in map (see `models/README.md` for how it was trained).
const BUILTIN: &str = include_str!("../head/claim_map.json");

impl ClaimMap {
    /// The map shipped with Vigie.
    pub fn builtin() -> Result<Self> {
        Self::parse(BUILTIN, "models/head/claim_map.json")
    }

    /// Loads a map saved by [`ClaimMap::save`].
    pub fn load(path: &Path) -> Result<Self> {
        Self::parse(&crate::head::read_file(path)?, &path.display().to_string())
    }

    fn parse(text: &str, origin: &str) -> Result<Self> {
        let origin = origin.to_string();
        let mut map: ClaimMap = serde_json::from_str(text).map_err(|source| HeadError::Parse {
            origin: origin.clone(),
            source,
        })?;
        let fault = if map.w.len() != map.dim * map.dim || map.dim == 0 {
            Some(ClassifierFault::MlpShapes { hidden: map.dim })
        } else if !map.w.iter().all(|v| v.is_finite()) || !map.threshold.is_finite() {
            Some(ClassifierFault::MlpNonFinite)
        } else {
            None
        };
        if let Some(fault) = fault {
            return Err(HeadError::Invalid { origin, fault }.into());
        }
        crate::head::flush_subnormals(&mut map.w);
        Ok(map)
    }

    /// The identity map (plain cosine) for `dim`-wide embeddings, matching from
    /// `threshold`.
    pub fn identity(dim: usize, threshold: f32) -> Self {
        ClaimMap {
            about: "identity: plain cosine".to_string(),
            dim,
            w: (0..dim * dim)
                .map(|i| if i % (dim + 1) == 0 { 1.0 } else { 0.0 })
                .collect(),
            lambda: f32::MAX,
            threshold,
            trained_on: Vec::new(),
        }
    }

    /// Writes the map as JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::head::write_json(self, path)
    }

    /// `unit(x W)`: the post as it is compared with the claims.
    pub fn apply(&self, x: &[f32]) -> Result<Vec<f32>> {
        if x.len() != self.dim {
            return Err(HeadError::Dimension {
                expected: self.dim,
                got: x.len(),
            }
            .into());
        }
        let mut out = vec![0f32; self.dim];
        for (xi, row) in x.iter().zip(self.w.chunks_exact(self.dim)) {
            crate::kernels::elementwise::axpy_f32(*xi, row, &mut out);
        }
        let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        out.iter_mut().for_each(|v| *v /= norm);
        Ok(out)
    }

    /// Fits `W` on `n` posts `x` and their claims' embeddings `y` (both `n × dim`, row
    /// after row) with ridge weight `lambda` toward the identity.
    pub fn fit(x: &[f32], y: &[f32], dim: usize, lambda: f64) -> Result<Vec<f32>> {
        if dim == 0 || x.len() != y.len() || !x.len().is_multiple_of(dim) || lambda <= 0.0 {
            return Err(ModelError::Head(HeadError::Counts {
                examples: x.len() / dim.max(1),
                labels: y.len() / dim.max(1),
                weights: None,
            }));
        }
        // A = XᵀX + λI, B = XᵀY + λI, both dim × dim.
        let mut a = vec![0f64; dim * dim];
        let mut b = vec![0f64; dim * dim];
        for (xr, yr) in x.chunks_exact(dim).zip(y.chunks_exact(dim)) {
            for (i, &xi) in xr.iter().enumerate() {
                let xi = xi as f64;
                let (arow, brow) = (
                    &mut a[i * dim..(i + 1) * dim],
                    &mut b[i * dim..(i + 1) * dim],
                );
                for ((av, bv), (&xj, &yj)) in
                    arow.iter_mut().zip(brow.iter_mut()).zip(xr.iter().zip(yr))
                {
                    *av += xi * xj as f64;
                    *bv += xi * yj as f64;
                }
            }
        }
        for i in 0..dim {
            a[i * dim + i] += lambda;
            b[i * dim + i] += lambda;
        }
        let l = cholesky(&a, dim).ok_or(ModelError::Head(HeadError::Counts {
            examples: x.len() / dim,
            labels: y.len() / dim,
            weights: None,
        }))?;
        // Solve L Lᵀ W = B column by column.
        let mut w = vec![0f32; dim * dim];
        let mut col = vec![0f64; dim];
        for c in 0..dim {
            for (r, v) in col.iter_mut().enumerate() {
                *v = b[r * dim + c];
            }
            solve_cholesky(&l, dim, &mut col);
            for (r, v) in col.iter().enumerate() {
                w[r * dim + c] = *v as f32;
            }
        }
        Ok(w)
    }
}

/// The lower factor `L` of a symmetric positive-definite `a` (`n × n`), or `None` when
/// it is not positive definite.
fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] - dot;
                if d <= 0.0 || !d.is_finite() {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - dot) / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// Solves `L Lᵀ v = b` in place.
fn solve_cholesky(l: &[f64], n: usize, v: &mut [f64]) {
    for i in 0..n {
        let dot: f64 = (0..i).map(|k| l[i * n + k] * v[k]).sum();
        v[i] = (v[i] - dot) / l[i * n + i];
    }
    for i in (0..n).rev() {
        let dot: f64 = (i + 1..n).map(|k| l[k * n + i] * v[k]).sum();
        v[i] = (v[i] - dot) / l[i * n + i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::XorShift;

    fn unit_rows(v: &mut [f32], dim: usize) {
        for row in v.chunks_exact_mut(dim) {
            let n = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            row.iter_mut().for_each(|x| *x /= n);
        }
    }

    #[test]
    fn a_strong_ridge_is_the_identity_and_a_weak_one_learns_the_map() {
        let dim = 6;
        let mut rng = XorShift::new(7);
        // Posts are their claims seen through a fixed mixing (a rotation-like matrix).
        let mix: Vec<f32> = (0..dim * dim)
            .map(|i| {
                if i % (dim + 1) == 0 {
                    1.0
                } else {
                    rng.symmetric(0.15)
                }
            })
            .collect();
        let n = 200;
        let mut y: Vec<f32> = (0..n * dim).map(|_| rng.symmetric(0.5)).collect();
        unit_rows(&mut y, dim);
        let mut x = vec![0f32; n * dim];
        for (xr, yr) in x.chunks_exact_mut(dim).zip(y.chunks_exact(dim)) {
            for (j, xv) in xr.iter_mut().enumerate() {
                *xv = (0..dim).map(|k| yr[k] * mix[k * dim + j]).sum();
            }
        }
        let strong = ClaimMap::fit(&x, &y, dim, 1e9).unwrap();
        for (i, (v, id)) in strong
            .iter()
            .zip(ClaimMap::identity(dim, 0.9).w)
            .enumerate()
        {
            assert!((v - id).abs() < 1e-3, "{i}: {v}");
        }
        let weak = ClaimMap {
            about: String::new(),
            dim,
            w: ClaimMap::fit(&x, &y, dim, 1e-4).unwrap(),
            lambda: 1e-4,
            threshold: 0.9,
            trained_on: Vec::new(),
        };
        // The learned map undoes the mixing: each post lands on its own claim.
        for (xr, yr) in x.chunks_exact(dim).zip(y.chunks_exact(dim)).take(20) {
            let mapped = weak.apply(xr).unwrap();
            let cos: f32 = mapped.iter().zip(yr).map(|(a, b)| a * b).sum();
            assert!(cos > 0.999, "{cos}");
        }
        assert!(weak.apply(&[0.0; 3]).is_err());
        assert!(ClaimMap::fit(&x, &y[..dim], dim, 1.0).is_err());
    }

    #[test]
    fn a_saved_map_loads_and_a_damaged_one_is_refused() {
        let map = ClaimMap {
            about: "test".into(),
            dim: 2,
            w: vec![1.0, 0.0, 0.0, 1.0],
            lambda: 3.0,
            threshold: 0.9,
            trained_on: vec!["nothing".into()],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.json");
        map.save(&path).unwrap();
        assert_eq!(ClaimMap::load(&path).unwrap(), map);
        let broken = ClaimMap {
            w: vec![1.0, 0.0, 0.0],
            ..map
        };
        broken.save(&path).unwrap();
        let err = ClaimMap::load(&path).unwrap_err().to_string();
        assert!(err.contains("map.json"), "{err}");
    }
}
