//! The data of the small heads trained beside the misinformation head, on the tune or the
//! measure side of the split ([`is_measure`]):
//! - the **claim gate**: which rows are health claims (stated, asked about or refuted)
//!   and which are ordinary posts;
//! - the **stance head**: which posts keep their distance from the rumour they discuss
//!   (ask about it, refute it, report it) and which support it.
//!
//! Claim gate sources follow.
//!
//! Claims: CONSTRAINT's COVID posts (fake and real alike: both state something
//! checkable), DACCORD's rumours and corrections, Reddit health-misinformation posts, the
//! fact-checkers' claims, and the project's own rumour posts. Ordinary: everyday French
//! tweets, English tweets and Reddit comments (the texts of the NER sets), French and
//! English sentences of the language-ID set, and the project's own operational messages,
//! replies and chatter of health teams. The gate learns "does this talk about a checkable
//! health claim", not any one data set's style: every source of each side mixes styles.
//!
//! Stance: RumourEval replies (queries and denials against supports; comments left out),
//! the project's French stance threads likewise, the project's posts asking about,
//! refuting or reporting rumours against those spreading the same rumours, its stance
//! cases (negations that serve a rumour, corrections in plain words), and, as support,
//! claims stated as posts state them (CONSTRAINT's fake posts, DACCORD's rumour sentences,
//! Reddit misinformation) where the cue words see no distance.

use std::path::{Path, PathBuf};

use vigie_eval::datasets::jsonl_rows;
use vigie_eval::split::sample_key;

/// One group in this many is kept for measuring.
pub const MEASURE_PARTS: usize = 5;

/// Whether the rows of `group` (their article, claim or id) are kept for measuring only:
/// the same fifth that `vigie train` holds out of the misinformation head's DACCORD
/// articles, so that no head or gate tunes on what the other is measured on.
pub fn is_measure(group: &str) -> bool {
    vigie_models::training::fold_of(&format!("holdout:{group}"), MEASURE_PARTS) == 0
}

/// Which side of the split to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Rows trained and tuned on.
    Tune,
    /// Rows only measured on.
    Measure,
}

/// Which head the rows are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Positive: makes or discusses a checkable health claim.
    ClaimGate,
    /// Positive: keeps its distance from the rumour it discusses.
    Stance,
}

/// How a source's rows are labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    /// By the row's `stance`: `denies` and `queries` positive, `supports` negative, other
    /// stances left out.
    ByStance,
    /// Every row talks about a claim.
    Claim,
    /// Every row is an ordinary post.
    Ordinary,
    /// By the row's `kind`: `info` (factual health information) is a claim, other kinds
    /// (ops, reply, emoji, chatter) are ordinary.
    ByKind,
    /// Stance: the row states a false claim as a post would, so it supports it; rows in
    /// which the cue words see a question, a denial or a report are left out. A file's
    /// label says the claim is false, not that the post asserts it (CONSTRAINT's fake
    /// class holds fact-checkers' summaries: "Posts on social media claim that…"), and
    /// the pipeline leaves those rows to the cues anyway.
    Asserts,
    /// Stance, by the row's `label` (its verdict): `reliable` (it refutes, asks or
    /// reports) keeps its distance, `misinformation` (it spreads the rumour) supports it.
    ByVerdict,
}

/// Where a source lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    /// `../shared/datasets` (or the directory the user names).
    Shared,
    /// The project's own `datasets/`.
    Project,
}

/// One file of the gate's data.
struct Source {
    root: Root,
    path: &'static str,
    label: Label,
    /// The field that groups rows for the split (their id when absent).
    group_field: Option<&'static str>,
    /// Keep only rows whose `source` starts with one of these (all when empty).
    sources: &'static [&'static str],
    /// Keep only rows whose `kind` is one of these (all when empty).
    kinds: &'static [&'static str],
    /// Keep only rows in these languages (all when empty).
    langs: &'static [&'static str],
    /// Keep only rows whose `label` is one of these (all when empty).
    labels: &'static [&'static str],
    /// The texts are tokens joined by spaces: glue punctuation back.
    tokenised: bool,
    /// What the file weighs next to the other files of its class (1: alike).
    share: f32,
}

const fn source(root: Root, path: &'static str, label: Label) -> Source {
    Source {
        root,
        path,
        label,
        group_field: None,
        sources: &[],
        kinds: &[],
        langs: &[],
        labels: &[],
        tokenised: false,
        share: 1.0,
    }
}

/// What each of the stance head's three files of stated claims weighs: together, one file.
const ASSERTED_SHARE: f32 = 1.0 / 3.0;

fn sources(task: Task) -> Vec<Source> {
    use Label::*;
    use Root::*;
    if task == Task::Stance {
        return vec![
            Source {
                group_field: Some("thread"),
                ..source(Shared, "risk/stance_en_train.jsonl", ByStance)
            },
            Source {
                group_field: Some("claim"),
                ..source(Project, "risk/stance_fr.jsonl", ByStance)
            },
            Source {
                group_field: Some("claim"),
                ..source(Project, "risk/rumour_talk.jsonl", Claim)
            },
            Source {
                group_field: Some("claim"),
                ..source(Project, "risk/spreading.jsonl", Ordinary)
            },
            // The pairs the cue words cannot tell apart: negations and refusals that serve
            // the rumour ("They'd never test it on their own kids"), and corrections or
            // reports in plain words, without a cue.
            Source {
                group_field: Some("claim"),
                ..source(Project, "risk/stance_cases.jsonl", ByVerdict)
            },
            // Claims stated as posts state them, without a reply's thread: the stance head
            // learnt distance from replies and rumour talk, and read a bare statement in a
            // fact-checker's or a newsfeed's words ("Photo shows…", "There were no deaths
            // in…") as distance. The three files weigh as one, so that the replies and the
            // project's spreading posts still hold most of "supports".
            Source {
                labels: &["misinformation"],
                share: ASSERTED_SHARE,
                ..source(Shared, "risk/constraint_en_train.jsonl", Asserts)
            },
            Source {
                group_field: Some("article"),
                labels: &["misinformation"],
                share: ASSERTED_SHARE,
                ..source(Shared, "risk/daccord_fr_dev.jsonl", Asserts)
            },
            Source {
                labels: &["misinformation"],
                share: ASSERTED_SHARE,
                ..source(Shared, "risk/reddit_health_en_train.jsonl", Asserts)
            },
        ];
    }
    vec![
        source(Shared, "risk/constraint_en_train.jsonl", Claim),
        Source {
            group_field: Some("article"),
            ..source(Shared, "risk/daccord_fr_dev.jsonl", Claim)
        },
        source(Shared, "risk/reddit_health_en_train.jsonl", Claim),
        source(Shared, "risk/claims_known.jsonl", Claim),
        source(Shared, "risk/chatter_fr_train.jsonl", Ordinary),
        Source {
            sources: &["Broad Twitter Corpus", "WNUT-17"],
            tokenised: true,
            ..source(Shared, "redaction/ner_en_train.jsonl", Ordinary)
        },
        Source {
            langs: &["fr", "en"],
            kinds: &["sentences"],
            ..source(Shared, "langid/lingua_dev.jsonl", Ordinary)
        },
        source(Project, "risk/ordinary_posts.jsonl", ByKind),
        Source {
            group_field: Some("claim"),
            ..source(Project, "risk/rumour_talk.jsonl", Claim)
        },
        Source {
            group_field: Some("claim"),
            ..source(Project, "risk/spreading.jsonl", Claim)
        },
    ]
}

/// Whether the claim gate or the stance head tunes on (the tune side of) the file at
/// `path`, known by its last two components (`risk/chatter_fr_train.jsonl`): evaluation
/// then reports only its measure side.
pub fn tunes_on(path: &Path) -> bool {
    tuned_on_by(path, Task::ClaimGate) || tuned_on_by(path, Task::Stance)
}

fn tuned_on_by(path: &Path, task: Task) -> bool {
    let mut parts = path.iter().rev().take(2).collect::<Vec<_>>();
    parts.reverse();
    let tail: PathBuf = parts.iter().collect();
    sources(task).iter().any(|s| Path::new(s.path) == tail)
}

/// One row of the gate's data.
#[derive(Debug, Clone, PartialEq)]
pub struct GateRow {
    /// The row's id in its file.
    pub id: String,
    /// The text, as a post would carry it.
    pub text: String,
    /// The file's language for the row (fr, en).
    pub lang: String,
    /// The positive class: talks about a checkable health claim (gate), keeps its
    /// distance from the rumour (stance).
    pub claim: bool,
    /// The file it comes from (relative to its root), and its kind when it has one:
    /// figures are reported per source.
    pub source: String,
    /// What its file weighs next to the other files of its class (1: alike).
    pub share: f32,
}

/// Why a head's rows could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GateDataError {
    /// A source file is missing or unreadable.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong reading it.
        #[source]
        source: vigie_eval::datasets::JsonlError,
    },
    /// The stance cue words, which choose the rows that assert a claim, did not load.
    #[error("the stance cue words did not load")]
    Cues(#[source] vigie_models::ModelError),
}

/// The gate's rows on `side`, at most `cap` per source file (chosen by a stable hash
/// seeded with `seed`), from the shared datasets in `shared` and the project's own in
/// `project`.
pub fn gate_rows(
    task: Task,
    shared: &Path,
    project: &Path,
    side: Side,
    cap: usize,
    seed: u64,
) -> Result<Vec<GateRow>, GateDataError> {
    let mut out = Vec::new();
    // Only the stance head's stated claims are chosen by the cue words.
    let cues = match task {
        Task::Stance => {
            Some(vigie_models::stance_cues::StanceCues::builtin().map_err(GateDataError::Cues)?)
        }
        Task::ClaimGate => None,
    };
    for s in sources(task) {
        let path = match s.root {
            Root::Shared => shared.join(s.path),
            Root::Project => project.join(s.path),
        };
        let rows: Vec<serde_json::Value> =
            jsonl_rows(&path).map_err(|source| GateDataError::Read {
                path: path.clone(),
                source,
            })?;
        let field = |v: &serde_json::Value, name: &str| {
            v.get(name).and_then(|f| f.as_str()).map(str::to_string)
        };
        let mut picked: Vec<(u64, GateRow)> = rows
            .iter()
            .filter_map(|v| {
                let id = field(v, "id")?;
                let text = field(v, "text")?;
                let lang = field(v, "lang").unwrap_or_default();
                let kind = field(v, "kind");
                let origin = field(v, "source").unwrap_or_default();
                let group = s
                    .group_field
                    .and_then(|g| field(v, g))
                    .unwrap_or_else(|| id.clone());
                let keep = (is_measure(&group) == (side == Side::Measure))
                    && (s.langs.is_empty() || s.langs.contains(&lang.as_str()))
                    && (s.kinds.is_empty()
                        || kind.as_deref().is_some_and(|k| s.kinds.contains(&k)))
                    && (s.sources.is_empty() || s.sources.iter().any(|p| origin.starts_with(p)))
                    && (s.labels.is_empty()
                        || field(v, "label").is_some_and(|l| s.labels.contains(&l.as_str())))
                    && !(s.label == Label::Asserts
                        && cues
                            .as_ref()
                            .is_some_and(|c| c.signs(&text).keeps_distance()));
                if !keep {
                    return None;
                }
                let claim = match s.label {
                    Label::Claim => true,
                    Label::Ordinary | Label::Asserts => false,
                    Label::ByKind => kind.as_deref() == Some("info"),
                    Label::ByVerdict => match field(v, "label").as_deref() {
                        Some("reliable") => true,
                        Some("misinformation") => false,
                        _ => return None,
                    },
                    Label::ByStance => match field(v, "stance").as_deref() {
                        Some("denies" | "queries") => true,
                        Some("supports") => false,
                        _ => return None,
                    },
                };
                let text = if s.tokenised { detokenise(&text) } else { text };
                let source = match &kind {
                    Some(k) if s.label == Label::ByKind => format!("{} ({k})", s.path),
                    _ => s.path.to_string(),
                };
                Some((
                    sample_key(&id, seed),
                    GateRow {
                        id,
                        text,
                        lang,
                        claim,
                        source,
                        share: s.share,
                    },
                ))
            })
            .collect();
        picked.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        out.extend(picked.into_iter().take(cap).map(|(_, row)| row));
    }
    Ok(out)
}

/// The training weight of each row: the two classes weigh alike, and within its class
/// each source file weighs its `share` (most alike), however many rows it holds. So the
/// project's few hundred operational messages count as much as thousands of tweets, and no
/// one source's style stands for "ordinary" or "claim".
pub fn source_weights(rows: &[GateRow]) -> Vec<f32> {
    let mut per_source: std::collections::BTreeMap<(&str, bool), (usize, f32)> = Default::default();
    for r in rows {
        per_source
            .entry((r.source.as_str(), r.claim))
            .or_insert((0, r.share))
            .0 += 1;
    }
    let shares_in = |claim: bool| -> f32 {
        per_source
            .iter()
            .filter(|((_, c), _)| *c == claim)
            .map(|(_, (_, share))| share)
            .sum()
    };
    let class_shares = [shares_in(false), shares_in(true)];
    let n = rows.len() as f32;
    rows.iter()
        .map(|r| {
            let (count, share) = per_source[&(r.source.as_str(), r.claim)];
            n * share / (2.0 * class_shares[usize::from(r.claim)] * count as f32)
        })
        .collect()
}

/// Glues tokenised text back as people type it: no space before closing punctuation or
/// after opening brackets, contractions joined ("do n't" → "don't"), "@ user" → "@user".
pub fn detokenise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let tokens: Vec<&str> = text.split(' ').filter(|t| !t.is_empty()).collect();
    for (i, token) in tokens.iter().enumerate() {
        let glue_left = matches!(*token, "." | "," | "!" | "?" | ";" | ":" | ")" | "]" | "%")
            || token.starts_with('\'')
            || *token == "n't"
            || i > 0 && matches!(tokens[i - 1], "(" | "[" | "@" | "#");
        if i > 0 && !glue_left {
            out.push(' ');
        }
        out.push_str(token);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_a_fifth_is_measured() {
        let measured = (0..10_000)
            .filter(|i| is_measure(&format!("row-{i}")))
            .count();
        assert!((1_800..2_200).contains(&measured), "{measured}");
    }

    #[test]
    fn tokenised_text_is_glued_back() {
        assert_eq!(
            detokenise("I do n't know , @ user said ( again ) it 's fine !"),
            "I don't know, @user said (again) it's fine!"
        );
    }

    fn write(dir: &Path, path: &str, rows: &[serde_json::Value]) {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let text: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
        std::fs::write(file, text.join("\n")).unwrap();
    }

    /// Every source present with `n` rows each: ids distinct, the NER file holding tweets
    /// and Wikipedia, the language-ID file sentences and words, the project's ordinary
    /// posts of every kind.
    fn fixture(n: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let (shared, project) = (dir.path().join("shared"), dir.path().join("project"));
        for s in sources(Task::ClaimGate)
            .into_iter()
            .chain(sources(Task::Stance))
        {
            let root = if s.root == Root::Shared {
                &shared
            } else {
                &project
            };
            let rows: Vec<serde_json::Value> = (0..n)
                .map(|i| {
                    let kinds = ["ops", "info", "reply", "sentences", "single-words"];
                    let origins = ["WNUT-17 x", "WikiANN y"];
                    let stance = ["supports", "denies", "queries", "comments"][i % 4];
                    // Every fifth row asks: the cue words keep it from the stated claims.
                    let text = if i % 5 == 4 {
                        format!("is it true {i}")
                    } else {
                        format!("text {i}")
                    };
                    serde_json::json!({
                        "id": format!("{}-{i}", s.path), "text": text,
                        "label": if i % 2 == 0 { "reliable" } else { "misinformation" },
                        "lang": if i % 3 == 0 { "de" } else { "fr" }, "kind": kinds[i % 5],
                        "source": origins[i % 2], "claim": format!("claim {}", i % 7),
                        "article": format!("a{}", i % 11),
                        "stance": stance,
                        "thread": format!("t{}", i % 13),
                    })
                })
                .collect();
            write(root, s.path, &rows);
        }
        dir
    }

    #[test]
    fn tune_and_measure_never_share_a_group_and_filters_apply() {
        let dir = fixture(200);
        let (shared, project) = (dir.path().join("shared"), dir.path().join("project"));
        let tune = gate_rows(
            Task::ClaimGate,
            &shared,
            &project,
            Side::Tune,
            usize::MAX,
            1,
        )
        .unwrap();
        let measure = gate_rows(
            Task::ClaimGate,
            &shared,
            &project,
            Side::Measure,
            usize::MAX,
            1,
        )
        .unwrap();
        assert!(!tune.is_empty() && !measure.is_empty());
        for row in &measure {
            assert!(!tune
                .iter()
                .any(|t| t.id == row.id && t.source == row.source));
        }
        let ner: Vec<&GateRow> = tune
            .iter()
            .filter(|r| r.source.contains("ner_en"))
            .collect();
        assert!(!ner.is_empty() && ner.iter().all(|r| !r.claim));
        let lingua: Vec<&GateRow> = tune
            .iter()
            .filter(|r| r.source.contains("lingua"))
            .collect();
        assert!(
            lingua.iter().all(|r| r.lang == "fr"),
            "German rows are left out"
        );
        let ordinary: Vec<&GateRow> = tune
            .iter()
            .filter(|r| r.source.contains("ordinary_posts"))
            .collect();
        assert!(ordinary.iter().any(|r| r.claim) && ordinary.iter().any(|r| !r.claim));
        assert!(ordinary
            .iter()
            .all(|r| r.claim == r.source.ends_with("(info)")));
    }

    #[test]
    fn stance_rows_are_labelled_by_their_stance_and_comments_left_out() {
        let dir = fixture(200);
        let (shared, project) = (dir.path().join("shared"), dir.path().join("project"));
        let rows = gate_rows(Task::Stance, &shared, &project, Side::Tune, usize::MAX, 1).unwrap();
        let replies: Vec<&GateRow> = rows
            .iter()
            .filter(|r| r.source.contains("stance_en") || r.source.contains("stance_fr"))
            .collect();
        assert!(!replies.is_empty());
        for r in &replies {
            let n: usize = r.id.rsplit('-').next().unwrap().parse().unwrap();
            assert_ne!(n % 4, 3, "comments are left out");
            assert_eq!(
                r.claim,
                !n.is_multiple_of(4),
                "supports negative, denies and queries positive"
            );
        }
        assert!(rows
            .iter()
            .filter(|r| r.source.contains("spreading"))
            .all(|r| !r.claim));
        assert!(rows
            .iter()
            .filter(|r| r.source.contains("rumour_talk"))
            .all(|r| r.claim));
    }

    fn row_number(r: &GateRow) -> usize {
        r.id.rsplit('-').next().unwrap().parse().unwrap()
    }

    #[test]
    fn stated_claims_support_the_rumour_unless_the_cues_see_distance() {
        let dir = fixture(200);
        let (shared, project) = (dir.path().join("shared"), dir.path().join("project"));
        let rows = gate_rows(Task::Stance, &shared, &project, Side::Tune, usize::MAX, 1).unwrap();
        let from = |name: &str| -> Vec<&GateRow> {
            rows.iter().filter(|r| r.source.contains(name)).collect()
        };
        let (constraint, daccord, reddit) = (from("constraint"), from("daccord"), from("reddit"));
        assert!(!constraint.is_empty() && !daccord.is_empty() && !reddit.is_empty());
        for r in constraint.iter().chain(&daccord).chain(&reddit) {
            assert!(!r.claim, "a stated claim supports the rumour");
            assert!(
                !r.text.starts_with("is it true"),
                "the cues decide a question"
            );
            assert!(
                (r.share - 1.0 / 3.0).abs() < 1e-6,
                "the three files weigh as one"
            );
            assert_eq!(
                row_number(r) % 2,
                1,
                "only the misinformation rows: {}",
                r.id
            );
        }
        let cases = from("stance_cases");
        assert!(!cases.is_empty());
        for r in &cases {
            assert_eq!(
                r.claim,
                row_number(r).is_multiple_of(2),
                "reliable rows keep distance"
            );
            assert_eq!(r.share, 1.0);
        }
    }

    #[test]
    fn every_source_weighs_its_share_of_its_class() {
        let row = |source: &str, claim: bool, share: f32| GateRow {
            id: String::new(),
            text: String::new(),
            lang: "en".into(),
            claim,
            source: source.into(),
            share,
        };
        let mut rows = vec![row("a", true, 1.0); 6];
        rows.extend(vec![row("b", false, 1.0); 2]);
        rows.extend(vec![row("c", false, 0.5); 4]);
        let w = source_weights(&rows);
        let total = |source: &str| -> f32 {
            rows.iter()
                .zip(&w)
                .filter(|(r, _)| r.source == source)
                .map(|(_, w)| w)
                .sum()
        };
        let n = rows.len() as f32;
        assert!(
            (total("a") - n / 2.0).abs() < 1e-4,
            "each class weighs half"
        );
        assert!(
            (total("b") - 2.0 * total("c")).abs() < 1e-4,
            "c weighs half of b"
        );
        assert!((total("b") + total("c") - n / 2.0).abs() < 1e-4);
    }

    #[test]
    fn the_cap_takes_a_stable_seeded_sample() {
        let dir = fixture(100);
        let (shared, project) = (dir.path().join("shared"), dir.path().join("project"));
        let a = gate_rows(Task::ClaimGate, &shared, &project, Side::Tune, 10, 7).unwrap();
        let b = gate_rows(Task::ClaimGate, &shared, &project, Side::Tune, 10, 7).unwrap();
        let c = gate_rows(Task::ClaimGate, &shared, &project, Side::Tune, 10, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().filter(|r| r.source.contains("chatter")).count() <= 10);
    }

    #[test]
    fn files_the_gate_tunes_on_are_known_by_their_tail() {
        assert!(tunes_on(Path::new(
            "../shared/datasets/risk/chatter_fr_train.jsonl"
        )));
        assert!(tunes_on(Path::new("datasets/risk/spreading.jsonl")));
        assert!(!tunes_on(Path::new(
            "../shared/datasets/risk/constraint_en_val.jsonl"
        )));
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err =
            gate_rows(Task::ClaimGate, dir.path(), dir.path(), Side::Tune, 10, 1).unwrap_err();
        assert!(
            matches!(&err, GateDataError::Read { path, .. }
                if path.ends_with("risk/constraint_en_train.jsonl")),
            "{err}"
        );
    }
}
