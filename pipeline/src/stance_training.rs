//! The rows the four-way stance classifier (`models/head/stance_classes.json`) learns
//! from, split as every other head's: a stable hash of each row's thread (RumourEval) or
//! claim (the project's sets) puts one group in five on the measure side, never trained on.

use std::path::{Path, PathBuf};

use vigie_eval::datasets::jsonl_rows;
use vigie_eval::split::sample_key;
use vigie_models::stance_classes::STANCES;

use crate::gate_training::{is_measure, GateDataError, Side};

/// One reply or post and its stance toward the rumour it answers or discusses.
#[derive(Debug, Clone, PartialEq)]
pub struct StanceRow {
    /// The row's id in its file.
    pub id: String,
    /// The text, as a post would carry it.
    pub text: String,
    /// The file's language for the row (fr, en).
    pub lang: String,
    /// Index into [`STANCES`].
    pub class: u8,
    /// The file it comes from, relative to its root.
    pub source: &'static str,
    /// The thread or claim it belongs to: rows of one group are never split apart.
    pub group: String,
}

/// How a file's rows get their stance.
#[derive(Debug, Clone, Copy)]
enum Labels {
    /// The row's `stance` field.
    Field,
    /// The row's `kind`: `query` queries, `deny` denies, `report` comments (it tells
    /// what is said without taking a side), `spread` supports.
    Kind,
    /// Every row spreads the rumour.
    Supports,
}

/// The files, whether they are shared (else the project's own), how they are labelled
/// and the field that groups them.
const SOURCES: [(bool, &str, Labels, &str); 5] = [
    (true, "risk/stance_en_train.jsonl", Labels::Field, "thread"),
    (false, "risk/stance_fr.jsonl", Labels::Field, "claim"),
    (false, "risk/rumour_talk.jsonl", Labels::Kind, "claim"),
    (false, "risk/spreading.jsonl", Labels::Supports, "claim"),
    (false, "risk/stance_cases.jsonl", Labels::Kind, "claim"),
];

fn class_of(stance: &str) -> Option<u8> {
    STANCES.iter().position(|s| *s == stance).map(|i| i as u8)
}

/// The rows on `side`, at most `cap` of each file (a stable sample seeded with `seed`),
/// from the shared datasets in `shared` and the project's in `project`. Rows without a
/// stance the classifier knows are left out.
pub fn stance_rows(
    shared: &Path,
    project: &Path,
    side: Side,
    cap: usize,
    seed: u64,
) -> Result<Vec<StanceRow>, GateDataError> {
    let mut out = Vec::new();
    for (is_shared, file, labels, group_field) in SOURCES {
        let path: PathBuf = if is_shared { shared } else { project }.join(file);
        let rows: Vec<serde_json::Value> =
            jsonl_rows(&path).map_err(|source| GateDataError::Read {
                path: path.clone(),
                source,
            })?;
        let mut picked = Vec::new();
        for v in rows {
            let field = |name: &str| v.get(name).and_then(|f| f.as_str());
            let (Some(id), Some(text)) = (field("id"), field("text")) else {
                continue;
            };
            let group = field(group_field).unwrap_or(id);
            if is_measure(group) != (side == Side::Measure) {
                continue;
            }
            let class = match labels {
                Labels::Field => field("stance").and_then(class_of),
                Labels::Kind => match field("kind") {
                    Some("query") => class_of("queries"),
                    Some("deny") => class_of("denies"),
                    Some("report") => class_of("comments"),
                    Some("spread") => class_of("supports"),
                    _ => None,
                },
                Labels::Supports => class_of("supports"),
            };
            let Some(class) = class else { continue };
            picked.push((
                sample_key(id, seed),
                StanceRow {
                    id: id.to_string(),
                    text: text.to_string(),
                    lang: field("lang").unwrap_or("en").to_string(),
                    class,
                    source: file,
                    group: group.to_string(),
                },
            ));
        }
        // Under the cap every row is kept, in the file's order.
        if picked.len() > cap {
            picked.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
            picked.truncate(cap);
        }
        out.extend(picked.into_iter().map(|(_, row)| row));
    }
    Ok(out)
}

/// Weights that give each class the same total, so the rare denials and questions count
/// as much as the many comments (the measure is the macro-F1 over the four).
/// `classes` are the rows' classes (indices into [`STANCES`]).
pub fn balanced_weights(classes: &[u8]) -> Vec<f32> {
    let mut counts = [0usize; 4];
    for &c in classes {
        counts[c as usize] += 1;
    }
    let present = counts.iter().filter(|&&c| c > 0).count().max(1) as f32;
    let n = classes.len() as f32;
    classes
        .iter()
        .map(|&c| n / (present * counts[c as usize] as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, path: &str, lines: &[serde_json::Value]) {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let text: Vec<String> = lines.iter().map(|r| r.to_string()).collect();
        std::fs::write(file, text.join("\n")).unwrap();
    }

    const FIXTURE_STANCES: [&str; 5] = ["supports", "denies", "queries", "comments", "unknown"];

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let (shared, project) = (dir.path().join("s"), dir.path().join("p"));
        let kinds = ["query", "deny", "report", "spread", "other"];
        let rows = |prefix: &str, group: &str| -> Vec<serde_json::Value> {
            (0..200)
                .map(|i| {
                    serde_json::json!({"id": format!("{prefix}-{i}"), "text": format!("t {i}"),
                        "lang": "fr", "stance": FIXTURE_STANCES[i % 5], "kind": kinds[i % 5],
                        group: format!("g{}", i % 17)})
                })
                .collect()
        };
        write(&shared, SOURCES[0].1, &rows("re", "thread"));
        for (_, file, _, _) in &SOURCES[1..] {
            write(&project, file, &rows(file, "claim"));
        }
        dir
    }

    #[test]
    fn each_file_is_labelled_its_way_and_the_sides_never_share_a_group() {
        let dir = fixture();
        let (shared, project) = (dir.path().join("s"), dir.path().join("p"));
        let tune = stance_rows(&shared, &project, Side::Tune, usize::MAX, 1).unwrap();
        let measure = stance_rows(&shared, &project, Side::Measure, usize::MAX, 1).unwrap();
        let capped = stance_rows(&shared, &project, Side::Tune, 10, 1).unwrap();
        assert_eq!(capped.len(), 50, "10 of each of the five files");
        assert_eq!(
            capped,
            stance_rows(&shared, &project, Side::Tune, 10, 1).unwrap()
        );
        assert_ne!(
            capped,
            stance_rows(&shared, &project, Side::Tune, 10, 2).unwrap()
        );
        assert!(!tune.is_empty() && !measure.is_empty());
        let group =
            |r: &StanceRow| r.text.split(' ').nth(1).unwrap().parse::<usize>().unwrap() % 17;
        for m in &measure {
            assert!(!tune
                .iter()
                .any(|t| t.source == m.source && group(t) == group(m)));
        }
        for r in tune.iter().chain(&measure) {
            let i: usize = r.id.rsplit('-').next().unwrap().parse().unwrap();
            let expected = match r.source {
                "risk/rumour_talk.jsonl" | "risk/stance_cases.jsonl" => {
                    ["queries", "denies", "comments", "supports"][i % 5]
                }
                "risk/spreading.jsonl" => "supports",
                _ => FIXTURE_STANCES[i % 5],
            };
            assert_eq!(STANCES[r.class as usize], expected, "{r:?}");
        }
        assert!(
            !tune
                .iter()
                .any(|r| r.source == "risk/stance_fr.jsonl" && r.id.ends_with("-4")),
            "an unknown stance is left out"
        );
    }

    #[test]
    fn every_class_weighs_alike() {
        let row = |class| StanceRow {
            id: String::new(),
            text: String::new(),
            lang: "en".into(),
            class,
            source: "x",
            group: String::new(),
        };
        let rows: Vec<StanceRow> = [0, 0, 0, 1, 2, 2].into_iter().map(row).collect();
        let classes: Vec<u8> = rows.iter().map(|r| r.class).collect();
        let w = balanced_weights(&classes);
        let total = |c: u8| -> f32 {
            rows.iter()
                .zip(&w)
                .filter(|(r, _)| r.class == c)
                .map(|(_, w)| w)
                .sum()
        };
        assert!((total(0) - total(1)).abs() < 1e-5 && (total(1) - total(2)).abs() < 1e-5);
    }
}
