//! Rumour tracking: posts flagged for misinformation are grouped online into clusters of
//! the same rumour by embedding similarity.
//!
//! With the model, embeddings come from multilingual-e5-small, so a French post and an
//! English post that say the same thing fall into one cluster. Without it (no model
//! files, or `--lexical`), a hashed bag of words and character n-grams stands in: it
//! groups reposts and close paraphrases within one language only.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

/// Turns redacted texts into L2-normalised vectors.
pub trait Embedder: Send + Sync {
    /// Stored in the database: clusters built with one embedder cannot take vectors of another.
    fn name(&self) -> String;
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String>;
    /// Cosine similarity from which two posts count as the same rumour.
    fn same_rumour_threshold(&self) -> f32;
}

/// The real encoder (multilingual-e5-small), cross-lingual.
pub struct ModelEmbedder {
    encoder: vigie_models::Encoder,
}

impl ModelEmbedder {
    pub fn new(encoder: vigie_models::Encoder) -> Self {
        ModelEmbedder { encoder }
    }
}

impl Embedder for ModelEmbedder {
    fn name(&self) -> String {
        vigie_models::encoder::MODEL_NAME.to_string()
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        self.encoder.embed(texts).map_err(|e| e.to_string())
    }

    fn same_rumour_threshold(&self) -> f32 {
        // e5 similarities crowd into 0.8..1: different health claims reach 0.92, while
        // restatements of one claim, in either language, measured 0.92-0.98 (French and
        // English pairs of datasets/samples; see the console section of the README).
        0.925
    }
}

/// Hashed words and character 4-grams, accents and case folded; no model needed.
pub struct LexicalEmbedder;

const LEXICAL_DIM: usize = 1024;

impl Embedder for LexicalEmbedder {
    fn name(&self) -> String {
        format!("lexical-{LEXICAL_DIM}")
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        Ok(texts.iter().map(|t| lexical_vector(t)).collect())
    }

    fn same_rumour_threshold(&self) -> f32 {
        0.45
    }
}

fn lexical_vector(text: &str) -> Vec<f32> {
    let folded: String = text
        .chars()
        .flat_map(char::to_lowercase)
        .map(fold_accent)
        .collect();
    let mut v = vec![0f32; LEXICAL_DIM];
    for word in folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 2)
    {
        v[bucket(word.as_bytes(), 0)] += 2.0;
        let padded: Vec<char> = format!(" {word} ").chars().collect();
        for gram in padded.windows(4) {
            let g: String = gram.iter().collect();
            v[bucket(g.as_bytes(), 1)] += 1.0;
        }
    }
    normalise(&mut v);
    v
}

fn fold_accent(c: char) -> char {
    match c {
        'à' | 'â' | 'ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'î' | 'ï' => 'i',
        'ô' | 'ö' => 'o',
        'ù' | 'û' | 'ü' => 'u',
        'ç' => 'c',
        _ => c,
    }
}

/// FNV-1a; stable across runs and platforms, which the stored vectors need.
fn bucket(bytes: &[u8], salt: u8) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(salt);
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % LEXICAL_DIM as u64) as usize
}

pub fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// A cluster's centroid is kept as the sum of its members' vectors, so adding one is O(dim).
pub struct Centroid {
    pub cluster: i64,
    pub sum: Vec<f32>,
}

/// The cluster a vector belongs to: the most similar of `centroids` at or above the
/// threshold.
pub fn nearest<'a>(
    centroids: impl IntoIterator<Item = &'a Centroid>,
    v: &[f32],
    threshold: f32,
) -> Option<(i64, f32)> {
    centroids
        .into_iter()
        .map(|c| (c.cluster, cosine(&c.sum, v)))
        .filter(|(_, s)| *s >= threshold)
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

pub fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Status of a rumour as programme staff see it.
pub const CLUSTER_STATUSES: [&str; 4] = ["new", "monitoring", "debunked", "responded"];

/// One post of a rumour, as alerts and reports count it.
#[derive(Debug, Clone)]
pub struct Activity {
    pub at: chrono::DateTime<chrono::Utc>,
    /// A rumour signal (asks, refutes, reports), not a post spreading the rumour.
    pub signal: bool,
    /// Asks whether the rumour is true.
    pub question: bool,
    pub lang: String,
    pub country: Option<String>,
}

/// One rumour as the tracker shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RumourView {
    pub id: i64,
    pub title: String,
    pub status: String,
    pub claim_id: Option<String>,
    pub claim_text: Option<String>,
    /// The known claim's verdict (`false`, `misleading`), correction and fact-check link;
    /// empty when the rumour has no known claim or the library gave none.
    pub verdict: String,
    pub correction: String,
    pub fact_check_url: String,
    /// Posts in the cluster: flagged posts (false positives excluded) and rumour signals.
    pub posts: usize,
    /// Posts a moderator marked as this rumour.
    pub confirmed: usize,
    /// Posts that ask about, refute or report it rather than spread it (rumour signals).
    pub signals: usize,
    /// Posts that ask whether it is true.
    pub questions: usize,
    /// Every post's time and kind, oldest first: what alerts and reports count over.
    #[serde(skip)]
    pub activity: Vec<Activity>,
    pub by_language: BTreeMap<String, usize>,
    pub by_country: BTreeMap<String, usize>,
    pub by_channel: BTreeMap<String, usize>,
    pub per_day: BTreeMap<NaiveDate, usize>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

impl RumourView {
    /// A rumour with no posts counted yet.
    pub fn new(
        id: i64,
        title: String,
        status: String,
        claim_id: Option<String>,
        claim_text: Option<String>,
    ) -> Self {
        RumourView {
            id,
            title,
            status,
            claim_id,
            claim_text,
            verdict: String::new(),
            correction: String::new(),
            fact_check_url: String::new(),
            posts: 0,
            confirmed: 0,
            signals: 0,
            questions: 0,
            activity: Vec::new(),
            by_language: BTreeMap::new(),
            by_country: BTreeMap::new(),
            by_channel: BTreeMap::new(),
            per_day: BTreeMap::new(),
            first_seen: None,
            last_seen: None,
        }
    }

    /// Counts per day from `from` to `to` inclusive, zeros included, for sparklines.
    pub fn daily_series(&self, from: NaiveDate, to: NaiveDate) -> Vec<usize> {
        from.iter_days()
            .take_while(|d| *d <= to)
            .map(|d| self.per_day.get(&d).copied().unwrap_or(0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_vectors_group_reposts_not_unrelated_posts() {
        let e = LexicalEmbedder;
        let texts = [
            "Le vaccin ROR provoque l'autisme chez les enfants !".to_string(),
            "ATTENTION le vaccin ROR provoque l autisme chez nos enfants, partagez".to_string(),
            "Réunion de l'équipe de vaccination demain à 9h au centre de santé.".to_string(),
        ];
        let v = e.embed(&texts).unwrap();
        let t = e.same_rumour_threshold();
        assert!(
            cosine(&v[0], &v[1]) >= t,
            "repost similarity {}",
            cosine(&v[0], &v[1])
        );
        assert!(
            cosine(&v[0], &v[2]) < t,
            "unrelated similarity {}",
            cosine(&v[0], &v[2])
        );
        assert!((v[0].iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
    }

    #[test]
    fn nearest_picks_the_best_centroid_above_threshold() {
        let c = vec![
            Centroid {
                cluster: 1,
                sum: vec![1.0, 0.0],
            },
            Centroid {
                cluster: 2,
                sum: vec![2.0, 2.0],
            },
        ];
        assert_eq!(nearest(&c, &[0.6, 0.8], 0.5).map(|x| x.0), Some(2));
        assert_eq!(nearest(&c, &[0.0, -1.0], 0.5), None);
    }

    #[test]
    fn blobs_round_trip() {
        let v = vec![0.25f32, -1.5, 3.0];
        assert_eq!(from_blob(&to_blob(&v)), v);
    }

    #[test]
    fn daily_series_fills_gaps() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let mut view = RumourView::new(1, String::new(), "new".into(), None, None);
        view.per_day.insert(d("2024-05-01"), 2);
        view.per_day.insert(d("2024-05-03"), 1);
        assert_eq!(
            view.daily_series(d("2024-04-30"), d("2024-05-03")),
            vec![0, 2, 0, 1]
        );
    }
}
