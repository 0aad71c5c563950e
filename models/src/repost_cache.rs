//! Features of recently seen texts ([`Encoder::features`]), so that reposts of a viral
//! rumour (the same words, give or take spacing and invisible characters) are embedded
//! once.
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
use std::sync::Mutex;

use crate::embedding_store::text_key;
use crate::{Encoder, Result};

/// Embeddings of recently seen normalised texts, shared between threads.
pub struct RepostCache {
    generation_size: usize,
    inner: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    current: HashMap<u64, Vec<f32>>,
    previous: HashMap<u64, Vec<f32>>,
}

impl Generations {
    fn get(&mut self, key: u64, generation_size: usize) -> Option<Vec<f32>> {
        if let Some(v) = self.current.get(&key) {
            return Some(v.clone());
        }
        let v = self.previous.remove(&key)?;
        self.put(key, v.clone(), generation_size);
        Some(v)
    }

    fn put(&mut self, key: u64, vector: Vec<f32>, generation_size: usize) {
        if generation_size == 0 {
            return;
        }
        if self.current.len() >= generation_size {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, vector);
    }
}

/// The embeddings of one call, and how they were obtained.
pub struct Embedded {
    /// One embedding per text, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// Texts the cache held.
    pub hits: usize,
    /// Distinct texts run through the encoder (repeats within the call run once).
    pub encoded: usize,
}

/// The form under which two posts count as the same text: runs of white space as one
/// space, zero-width and format characters dropped.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().filter(|c| {
            !matches!(
                c,
                '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
            )
        }));
    }
    out
}

impl RepostCache {
    /// Keeps the features of at most `capacity` texts (6 kB each for e5-small's: its
    /// embedding and three tapped layers of 384 values); 0 keeps none.
    pub fn new(capacity: usize) -> Self {
        RepostCache {
            generation_size: capacity / 2,
            inner: Mutex::new(Generations::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Features of the normalised `texts`, in order; only texts not seen recently
    /// reach the encoder (and each distinct one once per call).
    pub fn embed<S: AsRef<str>>(&self, encoder: &Encoder, texts: &[S]) -> Result<Embedded> {
        let normalised: Vec<String> = texts.iter().map(|t| normalise(t.as_ref())).collect();
        let keys: Vec<u64> = normalised.iter().map(|t| text_key(t)).collect();
        let mut out: Vec<Option<Vec<f32>>> = {
            let mut g = self.lock();
            keys.iter()
                .map(|&k| g.get(k, self.generation_size))
                .collect()
        };
        let hits = out.iter().filter(|v| v.is_some()).count();
        let mut todo: Vec<usize> = Vec::new();
        let mut first_of: HashMap<u64, usize> = HashMap::new();
        for (i, slot) in out.iter().enumerate() {
            if slot.is_none() && !first_of.contains_key(&keys[i]) {
                first_of.insert(keys[i], i);
                todo.push(i);
            }
        }
        if !todo.is_empty() {
            let batch: Vec<&str> = todo.iter().map(|&i| normalised[i].as_str()).collect();
            let vectors = encoder.features(&batch)?;
            let mut g = self.lock();
            for (&i, v) in todo.iter().zip(vectors) {
                g.put(keys[i], v.clone(), self.generation_size);
                out[i] = Some(v);
            }
        }
        // Repeats inside the batch take the vector of their first occurrence.
        let vectors = (0..texts.len())
            .map(|i| {
                out[i]
                    .clone()
                    .unwrap_or_else(|| out[first_of[&keys[i]]].clone().unwrap_or_default())
            })
            .collect();
        Ok(Embedded {
            vectors,
            hits,
            encoded: todo.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::cosine;
    use crate::encoder::testing::tiny_encoder;

    #[test]
    fn normalisation_ignores_spacing_and_invisible_characters() {
        assert_eq!(
            normalise("  Vaccine\tCAUSES \n autism\u{200B} "),
            "Vaccine CAUSES autism"
        );
        assert_ne!(
            normalise("vaccine causes autism"),
            normalise("vaccine cures autism")
        );
        assert_ne!(
            normalise("Vaccine"),
            normalise("vaccine"),
            "the tokenizer tells case apart"
        );
    }

    #[test]
    fn reposts_are_embedded_once_and_match_fresh_embeddings() {
        let enc = tiny_encoder(6);
        let cache = RepostCache::new(100);
        let first = cache
            .embed(
                &enc,
                &[
                    "vaccine causes autism",
                    "vaccine  causes\nautism",
                    "measles",
                ],
            )
            .unwrap();
        assert_eq!(
            (first.hits, first.encoded),
            (0, 2),
            "two distinct texts, one repeated inside the batch"
        );
        let first = first.vectors;
        assert_eq!(first[0], first[1]);
        let again = cache
            .embed(
                &enc,
                &["vaccine causes autism\u{200B}", "le vaccin est sûr"],
            )
            .unwrap();
        assert_eq!((again.hits, again.encoded), (1, 1));
        let again = again.vectors;
        assert_eq!(again[0], first[0]);
        let fresh = &enc.features(&["le vaccin est sûr"]).unwrap()[0];
        assert_eq!(again[1].len(), enc.feature_dim());
        assert!(cosine(&again[1], fresh) > 0.9999);
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
        assert!(
            g.current.contains_key(&text_key("vaccine"))
                || g.previous.contains_key(&text_key("vaccine")),
            "a text in use is kept"
        );
    }
}
