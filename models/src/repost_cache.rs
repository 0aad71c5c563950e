//! Embeddings of recently seen texts, so that reposts of a viral rumour (the same words,
//! give or take spacing and invisible characters) are embedded once.
//!
//! What is embedded is the normalised text itself, so a post's score depends on its
//! text alone, never on which variant of it arrived first. Case is kept: the encoder's
//! tokenizer distinguishes it.
//!
//! Bounded two-generation cache: lookups go to the current generation, then the
//! previous one (promoting the entry); when the current one is full it becomes the
//! previous one and the oldest is dropped. Recently used entries survive, memory stays
//! below two generations, and every operation is O(1) without an LRU list.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::embedding_store::text_key;
use crate::{Encoder, Result};

pub struct RepostCache {
    generation_size: usize,
    inner: Mutex<Generations>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct Generations {
    current: HashMap<u64, Vec<f32>>,
    previous: HashMap<u64, Vec<f32>>,
}

/// The form under which two posts count as the same text: runs of white space as one
/// space, zero-width and format characters dropped.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().filter(|c| !matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}')));
    }
    out
}

impl RepostCache {
    /// Keeps at most `capacity` embeddings (about 1.6 kB each for 384 dimensions);
    /// 0 keeps none.
    pub fn new(capacity: usize) -> Self {
        RepostCache {
            generation_size: capacity / 2,
            inner: Mutex::new(Generations::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// (hits, misses) since the cache was made.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }

    fn get(&self, key: u64) -> Option<Vec<f32>> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = g.current.get(&key) {
            return Some(v.clone());
        }
        let v = g.previous.remove(&key)?;
        self.put_locked(&mut g, key, v.clone());
        Some(v)
    }

    fn put_locked(&self, g: &mut Generations, key: u64, vector: Vec<f32>) {
        if self.generation_size == 0 {
            return;
        }
        if g.current.len() >= self.generation_size {
            g.previous = std::mem::take(&mut g.current);
        }
        g.current.insert(key, vector);
    }

    /// Embeddings of the normalised `texts`, in order; only texts not seen recently
    /// reach the encoder (and each distinct one once per call).
    pub fn embed<S: AsRef<str>>(&self, encoder: &Encoder, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        let normalised: Vec<String> = texts.iter().map(|t| normalise(t.as_ref())).collect();
        let keys: Vec<u64> = normalised.iter().map(|t| text_key(t)).collect();
        let mut out: Vec<Option<Vec<f32>>> = keys.iter().map(|&k| self.get(k)).collect();
        let mut todo: Vec<usize> = Vec::new();
        let mut first_of: HashMap<u64, usize> = HashMap::new();
        for (i, slot) in out.iter().enumerate() {
            if slot.is_none() && !first_of.contains_key(&keys[i]) {
                first_of.insert(keys[i], i);
                todo.push(i);
            }
        }
        let hits = out.iter().filter(|v| v.is_some()).count() as u64;
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses.fetch_add(todo.len() as u64, Ordering::Relaxed);
        if !todo.is_empty() {
            let batch: Vec<&str> = todo.iter().map(|&i| normalised[i].as_str()).collect();
            let vectors = encoder.embed(&batch)?;
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            for (&i, v) in todo.iter().zip(vectors) {
                self.put_locked(&mut g, keys[i], v.clone());
                out[i] = Some(v);
            }
        }
        // Repeats inside the batch take the vector of their first occurrence.
        Ok((0..texts.len()).map(|i| out[i].clone().unwrap_or_else(|| out[first_of[&keys[i]]].clone().unwrap_or_default())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::cosine;
    use crate::encoder::testing::tiny_encoder;

    #[test]
    fn normalisation_ignores_spacing_and_invisible_characters() {
        assert_eq!(normalise("  Vaccine\tCAUSES \n autism\u{200B} "), "Vaccine CAUSES autism");
        assert_ne!(normalise("vaccine causes autism"), normalise("vaccine cures autism"));
        assert_ne!(normalise("Vaccine"), normalise("vaccine"), "the tokenizer tells case apart");
    }

    #[test]
    fn reposts_are_embedded_once_and_match_fresh_embeddings() {
        let enc = tiny_encoder(6);
        let cache = RepostCache::new(100);
        let first = cache.embed(&enc, &["vaccine causes autism", "vaccine  causes\nautism", "measles"]).unwrap();
        assert_eq!(cache.stats(), (0, 2), "two distinct texts, one repeated inside the batch");
        assert_eq!(first[0], first[1]);
        let again = cache.embed(&enc, &["vaccine causes autism\u{200B}", "le vaccin est sûr"]).unwrap();
        assert_eq!(cache.stats(), (1, 3));
        assert_eq!(again[0], first[0]);
        assert!(cosine(&again[1], &enc.embed(&["le vaccin est sûr"]).unwrap()[0]) > 0.9999);
    }

    #[test]
    fn stays_bounded_and_keeps_what_is_used() {
        let enc = tiny_encoder(6);
        let cache = RepostCache::new(4);
        cache.embed(&enc, &["vaccine"]).unwrap();
        for filler in ["the", "is", "safe", "measles", "cause", "5g"] {
            cache.embed(&enc, &[filler, "vaccine"]).unwrap();
        }
        let g = cache.inner.lock().unwrap();
        assert!(g.current.len() + g.previous.len() <= 4);
        assert!(g.current.contains_key(&text_key("vaccine")) || g.previous.contains_key(&text_key("vaccine")), "a text in use is kept");
    }
}
