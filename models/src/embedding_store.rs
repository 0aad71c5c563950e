//! Embeddings and features kept across runs, keyed by the text they were computed from.
//!
//! Training and evaluation embed the same datasets again and again (every option tried,
//! every retrain after moderators' decisions are added); embedding them takes minutes
//! on two cores, looking them up milliseconds. The store is one binary file per encoder:
//! a header (`VGE1`, dimension), then records of an FNV-1a 64 key of the exact text and
//! its vector. A file that does not parse is reported and ignored, never trusted.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Encoder, FormatError, HeadError, ModelError, Result};

const MAGIC: &[u8; 4] = b"VGE1";
/// Texts embedded per encoder call; also how often progress is reported.
const CHUNK: usize = 64;

/// Embeddings by text key, loaded from and saved to one file (or kept in memory only).
pub struct EmbeddingStore {
    path: Option<PathBuf>,
    dim: usize,
    vectors: HashMap<u64, Vec<f32>>,
    added: usize,
}

/// FNV-1a, 64 bits: stable across runs and platforms (std's hasher is not).
pub fn text_key(text: &str) -> u64 {
    let mut key = Fnv::default();
    key.write(text.as_bytes());
    key.finish()
}

/// FNV-1a over any bytes fed to it, in order.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Feeds `bytes` to the digest.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> u64 {
        self.0
    }
}

impl EmbeddingStore {
    /// A store that lives in memory only.
    pub fn in_memory(dim: usize) -> Self {
        EmbeddingStore {
            path: None,
            dim,
            vectors: HashMap::new(),
            added: 0,
        }
    }

    /// Opens the store at `path` (created on [`EmbeddingStore::save`]). A missing file is
    /// an empty store; a file that is damaged or of another dimension is set aside with
    /// a warning, as recomputing is always possible.
    pub fn open(path: &Path, dim: usize) -> Self {
        let mut store = EmbeddingStore {
            path: Some(path.to_path_buf()),
            ..Self::in_memory(dim)
        };
        match std::fs::read(path) {
            Ok(bytes) => match parse(&bytes, dim) {
                Ok(vectors) => store.vectors = vectors,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "embedding store ignored; it will be rebuilt")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "embedding store unreadable; it will be rebuilt")
            }
        }
        store
    }

    /// Number of embeddings held.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    /// Whether no embedding is held.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// The vector stored under `key` (any string that names how it was computed).
    pub fn get(&self, key: &str) -> Option<&[f32]> {
        self.vectors.get(&text_key(key)).map(Vec::as_slice)
    }

    /// Stores `vector` under `key`; a vector of another width is refused.
    pub fn insert(&mut self, key: &str, vector: Vec<f32>) -> Result<()> {
        if vector.len() != self.dim {
            return Err(HeadError::StoreDimension {
                stored: self.dim,
                encoder: vector.len(),
            }
            .into());
        }
        self.vectors.insert(text_key(key), vector);
        self.added += 1;
        Ok(())
    }

    /// Features of `texts` in order ([`Encoder::features`]: the embedding first),
    /// computing (in chunks, reporting progress as `progress(done)`) only those not
    /// stored yet.
    pub fn embed_all<S: AsRef<str>>(
        &mut self,
        encoder: &Encoder,
        texts: &[S],
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<Vec<f32>>> {
        if encoder.feature_dim() != self.dim {
            return Err(HeadError::StoreDimension {
                stored: self.dim,
                encoder: encoder.feature_dim(),
            }
            .into());
        }
        let mut missing: Vec<&str> = texts
            .iter()
            .map(AsRef::as_ref)
            .filter(|t| !self.vectors.contains_key(&text_key(t)))
            .collect();
        // Similar lengths together, so the encoder's batches carry little padding.
        missing.sort_unstable_by_key(|t| (t.len(), *t));
        missing.dedup();
        let mut done = texts.len() - missing.len();
        progress(done);
        for chunk in missing.chunks(CHUNK) {
            for (text, vector) in chunk.iter().zip(encoder.features(chunk)?) {
                self.vectors.insert(text_key(text), vector);
                self.added += 1;
            }
            done += chunk.len();
            progress(done);
        }
        Ok(texts
            .iter()
            .map(|t| self.vectors[&text_key(t.as_ref())].clone())
            .collect())
    }

    /// Writes the store if anything was added (to a temporary file, then renamed, so a
    /// crash never leaves half a file).
    pub fn save(&mut self) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if self.added == 0 {
            return Ok(());
        }
        let io = |source| ModelError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut bytes = Vec::with_capacity(8 + self.vectors.len() * (8 + 4 * self.dim));
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(self.dim as u32).to_le_bytes());
        for (key, vector) in &self.vectors {
            bytes.extend_from_slice(&key.to_le_bytes());
            vector
                .iter()
                .for_each(|x| bytes.extend_from_slice(&x.to_le_bytes()));
        }
        // One temporary file per process: two trainings saving at once do not mix their
        // bytes (the last rename wins, and the other's additions are recomputed next time).
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(&bytes))
            .map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        self.added = 0;
        Ok(())
    }
}

fn parse(bytes: &[u8], dim: usize) -> Result<HashMap<u64, Vec<f32>>> {
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(FormatError::StoreHeader.into());
    }
    let stored_dim = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    if stored_dim != dim {
        return Err(FormatError::StoreDimension {
            stored: stored_dim,
            expected: dim,
        }
        .into());
    }
    let record = 8 + 4 * dim;
    let body = &bytes[8..];
    if !body.len().is_multiple_of(record) {
        return Err(FormatError::StoreTruncated.into());
    }
    Ok(body
        .chunks_exact(record)
        .map(|r| {
            let key = u64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
            let vector = r[8..]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (key, vector)
        })
        .collect())
}

/// Where `vigie train` and `vigie eval risk` keep embeddings: next to the model files.
pub fn default_store_path(model_dir: &Path) -> PathBuf {
    model_dir
        .join("embeddings")
        .join(format!("{}.vge", crate::encoder::MODEL_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::testing::tiny_encoder;

    #[test]
    fn stores_reuses_and_survives_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e").join("tiny.vge");
        let enc = tiny_encoder(4);
        let mut store = EmbeddingStore::open(&path, enc.feature_dim());
        let texts = ["vaccine causes autism", "measles", "vaccine causes autism"];
        let mut reports = Vec::new();
        let first = store.embed_all(&enc, &texts, |d| reports.push(d)).unwrap();
        assert_eq!(reports.last(), Some(&3));
        assert_eq!(store.len(), 2, "a repeated text is embedded once");
        assert_eq!(
            first[0],
            enc.features(&["vaccine causes autism"]).unwrap()[0]
        );
        assert_eq!(
            first[0][..enc.dim()],
            enc.embed(&["vaccine causes autism"]).unwrap()[0],
            "the features start with the embedding"
        );
        store.save().unwrap();

        let mut again = EmbeddingStore::open(&path, enc.feature_dim());
        assert_eq!(again.len(), 2);
        let mut reports = Vec::new();
        let second = again.embed_all(&enc, &texts, |d| reports.push(d)).unwrap();
        assert_eq!(second, first);
        assert_eq!(reports, vec![3], "nothing recomputed");

        // A header of the right width, then a record cut short.
        let width = u8::try_from(enc.feature_dim()).unwrap();
        let mut damaged = b"VGE1".to_vec();
        damaged.extend([width, 0, 0, 0]);
        damaged.extend(b"short");
        std::fs::write(&path, damaged).unwrap();
        assert!(
            EmbeddingStore::open(&path, enc.feature_dim()).is_empty(),
            "a damaged file is ignored"
        );
        assert!(
            EmbeddingStore::open(&path, 7).is_empty(),
            "another dimension is ignored"
        );
    }
}
