//! The known-claim library: false health claims that fact-checkers have debunked
//! (`models/claims/*.toml`), matched against posts by embedding similarity.
//!
//! multilingual-e5-small puts a sentence and its translation close together, so one
//! entry per claim serves French and English posts alike.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::encoder::Encoder;
use crate::{ClaimFault, ClaimsError, ModelError, Result};

/// One debunked claim, as written in a `[[claim]]` table of a claims file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// Unique id (ASCII letters, digits, - and _), reported with matches.
    pub id: String,
    /// The claim as a post would state it; what posts are compared with.
    pub text: String,
    /// `fr` or `en`: the language of `text`.
    pub lang: String,
    /// Subject area (`vaccines`, `covid`, `measles`, ...).
    pub topic: String,
    /// `false` or `misleading`.
    #[serde(default = "default_status")]
    pub status: String,
    /// What the fact-checkers found, in a sentence or two.
    #[serde(default)]
    pub correction: String,
    /// Who debunked it.
    pub source: String,
    /// Where the debunking is published.
    pub source_url: String,
}

fn default_status() -> String {
    "false".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimFile {
    #[serde(rename = "claim", default)]
    claims: Vec<Claim>,
}

/// The files compiled into the binary (used when no claims directory is configured).
const BUILTIN: &[(&str, &str)] = &[
    ("vaccines.toml", include_str!("../claims/vaccines.toml")),
    ("covid.toml", include_str!("../claims/covid.toml")),
    (
        "malaria_ebola_measles.toml",
        include_str!("../claims/malaria_ebola_measles.toml"),
    ),
];

/// The claims compiled into the binary, validated.
pub fn builtin_claims() -> Result<Vec<Claim>> {
    let mut claims = Vec::new();
    for (name, text) in BUILTIN {
        claims.extend(parse(name, text)?);
    }
    validate(&claims)?;
    Ok(claims)
}

/// The claims of fact-checkers' files (claim rows as in `claims_known.jsonl`, or
/// ClaimReview JSON-LD), as `vigie claims import` reads them, leaving out those whose
/// topic is in `skip_topics` and those whose id an earlier claim (in `have`, or an earlier
/// file) holds: a file adds to a library, never replaces one of its claims.
pub fn from_feeds(files: &[PathBuf], skip_topics: &[String], have: &[Claim]) -> Result<Vec<Claim>> {
    let mut seen: std::collections::HashSet<String> = have.iter().map(|c| c.id.clone()).collect();
    let mut claims = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.clone(),
            source,
        })?;
        let imported = crate::claims_import::import(&crate::claims_import::read_records(&text));
        claims.extend(
            imported.claims.into_iter().filter(|c| {
                !skip_topics.iter().any(|t| t == &c.topic) && seen.insert(c.id.clone())
            }),
        );
    }
    Ok(claims)
}

/// Stamps of `files` (modification time and length), to tell when one changed.
pub fn files_stamp(files: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    files
        .iter()
        .map(|p| {
            let meta = std::fs::metadata(p).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            (p.clone(), modified, meta.map(|m| m.len()).unwrap_or(0))
        })
        .collect()
}

/// The claims of one claims file's text (`name` names it in errors); not yet validated.
pub fn parse_str(name: &str, text: &str) -> Result<Vec<Claim>> {
    parse(name, text)
}

fn parse(name: &str, text: &str) -> Result<Vec<Claim>> {
    let file: ClaimFile = toml::from_str(text).map_err(|source| ClaimsError::Parse {
        file: name.into(),
        source: Box::new(source),
    })?;
    Ok(file.claims)
}

/// Reads every `*.toml` file of a directory, in name order.
pub fn load_dir(dir: &Path) -> Result<Vec<Claim>> {
    let mut claims = Vec::new();
    for path in toml_files(dir)? {
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
            path: path.clone(),
            source,
        })?;
        claims.extend(parse(&path.display().to_string(), &text)?);
    }
    validate(&claims)?;
    Ok(claims)
}

/// The `*.toml` files of a claims directory, in name order.
pub fn toml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| ModelError::Io {
        path: dir.into(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// What identifies the state of a claims directory: the files and their modification
/// times. A running pipeline compares stamps to notice edits and reload.
pub fn dir_stamp(dir: &Path) -> Result<Vec<(PathBuf, Option<SystemTime>, u64)>> {
    Ok(files_stamp(&toml_files(dir)?))
}

/// Ids unique and non-empty, texts present, languages known.
pub fn validate(claims: &[Claim]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for c in claims {
        let bad = |fault| {
            Err(ClaimsError::Invalid {
                id: c.id.clone(),
                fault,
            }
            .into())
        };
        if c.id.trim().is_empty()
            || !c
                .id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            return bad(ClaimFault::BadId);
        }
        if !seen.insert(c.id.as_str()) {
            return bad(ClaimFault::DuplicateId);
        }
        if c.text.trim().is_empty() {
            return bad(ClaimFault::EmptyText);
        }
        if !matches!(c.lang.as_str(), "fr" | "en") {
            return bad(ClaimFault::UnknownLang);
        }
        if !matches!(c.status.as_str(), "false" | "misleading") {
            return bad(ClaimFault::UnknownStatus);
        }
    }
    Ok(())
}

/// A post's similarity to one known claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimMatch {
    /// The claim's id.
    pub id: String,
    /// Cosine similarity of the post's embedding and the claim's.
    pub similarity: f32,
}

/// Claims with their embeddings, ready for matching.
pub struct ClaimIndex {
    claims: Vec<Claim>,
    vectors: Vec<Vec<f32>>,
}

impl ClaimIndex {
    /// Embeds every claim's text with `encoder`.
    pub fn build(claims: Vec<Claim>, encoder: &Encoder) -> Result<Self> {
        let vectors = if claims.is_empty() {
            Vec::new()
        } else {
            encoder.embed(&claims.iter().map(|c| c.text.as_str()).collect::<Vec<_>>())?
        };
        Ok(ClaimIndex { claims, vectors })
    }

    /// An index that matches nothing.
    pub fn empty() -> Self {
        ClaimIndex {
            claims: Vec::new(),
            vectors: Vec::new(),
        }
    }

    /// Number of claims.
    pub fn len(&self) -> usize {
        self.claims.len()
    }

    /// Whether there are no claims.
    pub fn is_empty(&self) -> bool {
        self.claims.is_empty()
    }

    /// The claim with this id, if any.
    pub fn claim(&self, id: &str) -> Option<&Claim> {
        self.claims.iter().find(|c| c.id == id)
    }

    /// The `k` most similar claims at or above `min_similarity`, best first.
    pub fn matches(&self, embedding: &[f32], k: usize, min_similarity: f32) -> Vec<ClaimMatch> {
        // Vectors are unit length: the cosine is the dot product, in vector lanes (a
        // running sum would not vectorise). Ids are copied for the matches kept only:
        // every post is matched against the whole library.
        let mut scored: Vec<(usize, f32)> = self
            .vectors
            .iter()
            .map(|v| crate::kernels::elementwise::dot_f32(embedding, v))
            .enumerate()
            .filter(|(_, similarity)| *similarity >= min_similarity)
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored.truncate(k);
        scored
            .into_iter()
            .map(|(i, similarity)| ClaimMatch {
                id: self.claims[i].id.clone(),
                similarity,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_claims_are_valid_and_cover_the_topics() {
        let claims = builtin_claims().unwrap();
        assert!(claims.len() >= 25, "{} claims", claims.len());
        for topic in ["vaccines", "covid", "malaria", "ebola", "measles"] {
            assert!(claims.iter().any(|c| c.topic == topic), "no {topic} claim");
        }
        for lang in ["fr", "en"] {
            assert!(claims.iter().any(|c| c.lang == lang), "no {lang} claim");
        }
        assert!(claims.iter().all(|c| c.source_url.starts_with("https://")
            && !c.source.is_empty()
            && !c.correction.is_empty()));
    }

    #[test]
    fn bad_libraries_are_refused_with_the_claim_named() {
        let dir = tempfile::tempdir().unwrap();
        let entry = |id: &str, lang: &str| {
            format!("[[claim]]\nid = \"{id}\"\nlang = \"{lang}\"\ntopic = \"t\"\ntext = \"x\"\nsource = \"s\"\nsource_url = \"https://e\"\n")
        };
        std::fs::write(
            dir.path().join("a.toml"),
            entry("c1", "fr") + &entry("c1", "en"),
        )
        .unwrap();
        let err = load_dir(dir.path()).unwrap_err();
        assert!(
            matches!(
                &err,
                ModelError::Claims(ClaimsError::Invalid {
                    id,
                    fault: ClaimFault::DuplicateId
                }) if id == "c1"
            ),
            "{err:?}"
        );
        let err = err.to_string();
        assert!(err.contains("c1") && err.contains("duplicate"), "{err}");
        std::fs::write(dir.path().join("a.toml"), entry("c1", "de")).unwrap();
        assert!(load_dir(dir.path())
            .unwrap_err()
            .to_string()
            .contains("lang"));
        std::fs::write(
            dir.path().join("a.toml"),
            "[[claim]]\nid = \"c1\"\ntypo = 1\n",
        )
        .unwrap();
        assert!(matches!(
            load_dir(dir.path()),
            Err(ModelError::Claims(ClaimsError::Parse { .. }))
        ));
        std::fs::write(dir.path().join("a.toml"), entry("c1", "fr")).unwrap();
        std::fs::write(dir.path().join("b.toml"), entry("c2", "en")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        assert_eq!(
            load_dir(dir.path())
                .unwrap()
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>(),
            ["c1", "c2"]
        );
        assert_eq!(dir_stamp(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn matches_are_ranked_and_thresholded() {
        let enc = crate::encoder::testing::tiny_encoder(7);
        let claims = vec![
            Claim {
                id: "a".into(),
                text: "vaccine causes autism".into(),
                lang: "en".into(),
                topic: "t".into(),
                status: "false".into(),
                correction: String::new(),
                source: "s".into(),
                source_url: "https://e".into(),
            },
            Claim {
                id: "b".into(),
                text: "rougeole vaccin sûr".into(),
                lang: "fr".into(),
                topic: "t".into(),
                status: "false".into(),
                correction: String::new(),
                source: "s".into(),
                source_url: "https://e".into(),
            },
        ];
        let index = ClaimIndex::build(claims, &enc).unwrap();
        let v = &enc.embed(&["vaccine causes autism"]).unwrap()[0];
        let m = index.matches(v, 5, -1.0);
        assert_eq!(m[0].id, "a");
        assert!((m[0].similarity - 1.0).abs() < 1e-4);
        assert!(m[0].similarity >= m[1].similarity);
        assert_eq!(index.matches(v, 1, -1.0).len(), 1);
        assert!(index.matches(v, 5, 1.01).is_empty());
    }
}
