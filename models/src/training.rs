//! How `vigie train` builds the risk head from labeled, embedded examples: example
//! weights, grouped cross-validation to compare classifiers and to get held-out
//! predictions for calibration, and the cross-lingual check.
//!
//! Folds are drawn by *group* (a fact-check article, whose rumour and correction are
//! near-paraphrases of each other), never by row: a row's twin in the training folds
//! would make the held-out figures meaningless.

use std::collections::BTreeMap;

use vigie_eval::risk::{summarise, RiskGroup};

use crate::embedding_store::text_key;
use crate::head::{augment, Calibration, Platt, RiskHead, TrainOptions};
use crate::Result;

#[derive(Debug, Clone)]
pub struct Example {
    pub id: String,
    /// The dataset's language: classes are balanced and figures reported per language.
    pub lang: String,
    /// The language the pipeline detects for the text (None: not French or English), which
    /// is what the head reads, in training as in production.
    pub detected: Option<String>,
    /// Rows of one group stay in one fold (DACCORD: the article; else the row's id).
    pub group: String,
    pub misinformation: bool,
    pub embedding: Vec<f32>,
}

/// Weights that balance the two classes within each language, then give each language
/// `language_share` of the total (languages not named share what is left equally). The
/// few French rows would otherwise count for 7% of the loss.
pub fn example_weights(examples: &[&Example], language_share: &BTreeMap<String, f32>) -> Vec<f32> {
    let mut counts: BTreeMap<(&str, bool), usize> = BTreeMap::new();
    for e in examples {
        *counts
            .entry((e.lang.as_str(), e.misinformation))
            .or_default() += 1;
    }
    let langs: Vec<&str> = {
        let mut l: Vec<&str> = counts.keys().map(|k| k.0).collect();
        l.dedup();
        l
    };
    let named: f32 = langs.iter().filter_map(|l| language_share.get(*l)).sum();
    let unnamed = langs
        .iter()
        .filter(|l| !language_share.contains_key(**l))
        .count();
    let share = |lang: &str| {
        language_share
            .get(lang)
            .copied()
            .unwrap_or(((1.0 - named) / unnamed.max(1) as f32).max(0.0))
    };
    let n = examples.len() as f32;
    examples
        .iter()
        .map(|e| {
            let classes_present = counts.contains_key(&(e.lang.as_str(), true)) as usize
                + counts.contains_key(&(e.lang.as_str(), false)) as usize;
            let in_class = counts[&(e.lang.as_str(), e.misinformation)] as f32;
            // Each (language, class) cell sums to share / classes, scaled so weights average 1.
            share(&e.lang) / classes_present as f32 / in_class * n
        })
        .collect()
}

/// Fold of a group, stable across runs.
pub fn fold_of(group: &str, folds: usize) -> usize {
    (text_key(group) % folds.max(1) as u64) as usize
}

/// What a head is trained with: the classifier's settings and the languages that get
/// weights of their own (see [`crate::head::augment`]).
#[derive(Debug, Clone)]
pub struct Recipe {
    pub options: TrainOptions,
    pub adapted_languages: Vec<String>,
    /// Share of the total weight per language (see [`example_weights`]).
    pub language_share: BTreeMap<String, f32>,
}

fn train_on(examples: &[&Example], recipe: &Recipe) -> Result<RiskHead> {
    let weights = example_weights(examples, &recipe.language_share);
    let xs: Vec<Vec<f32>> = examples
        .iter()
        .map(|e| {
            augment(
                &e.embedding,
                e.detected.as_deref(),
                &recipe.adapted_languages,
            )
        })
        .collect();
    let ys: Vec<bool> = examples.iter().map(|e| e.misinformation).collect();
    let mut head = RiskHead::train(
        crate::encoder::MODEL_NAME,
        Vec::new(),
        &xs,
        &ys,
        Some(&weights),
        recipe.options,
    )?;
    head.adapted_languages = recipe.adapted_languages.clone();
    Ok(head)
}

/// Out-of-fold logits: each example scored by a head trained on the other folds.
pub fn cross_validated_logits(
    examples: &[Example],
    recipe: &Recipe,
    folds: usize,
    mut progress: impl FnMut(usize),
) -> Result<Vec<f32>> {
    let fold: Vec<usize> = examples.iter().map(|e| fold_of(&e.group, folds)).collect();
    let mut logits = vec![0.0; examples.len()];
    for k in 0..folds {
        let train: Vec<&Example> = examples
            .iter()
            .zip(&fold)
            .filter(|(_, &f)| f != k)
            .map(|(e, _)| e)
            .collect();
        let head = train_on(&train, recipe)?;
        for (i, e) in examples.iter().enumerate().filter(|(i, _)| fold[*i] == k) {
            logits[i] = head.logit(&e.embedding, e.detected.as_deref())?;
        }
        progress(k + 1);
    }
    Ok(logits)
}

/// Figures at probability 0.5, the routing threshold `vigie train` reports at.
fn figures(probabilities: &[f32], labels: &[bool]) -> RiskGroup {
    summarise(probabilities, labels, 0.5)
}

/// Fits the calibration on (example, logit) pairs: overall, and per adapted language
/// with both classes present.
fn fit_calibration<'a>(
    pairs: impl Iterator<Item = (&'a Example, f32)> + Clone,
    adapted: &[String],
) -> Result<Calibration> {
    let (z, y): (Vec<f32>, Vec<bool>) = pairs.clone().map(|(e, z)| (z, e.misinformation)).unzip();
    let mut calibration = Calibration {
        overall: Platt::fit(&z, &y)?,
        by_language: BTreeMap::new(),
    };
    for lang in adapted {
        let (z, y): (Vec<f32>, Vec<bool>) = pairs
            .clone()
            .filter(|(e, _)| e.detected.as_ref() == Some(lang))
            .map(|(e, z)| (z, e.misinformation))
            .unzip();
        if let Ok(platt) = Platt::fit(&z, &y) {
            calibration.by_language.insert(lang.clone(), platt);
        }
    }
    Ok(calibration)
}

/// The calibration fit on all out-of-fold logits (what the final head gets), and figures
/// per language of those logits, each fold calibrated by a fit on the other folds only
/// (so the calibration error is measured on data the calibration did not see either).
pub fn per_language(
    examples: &[Example],
    logits: &[f32],
    adapted: &[String],
    folds: usize,
) -> Result<(Calibration, BTreeMap<String, RiskGroup>)> {
    let calibration = fit_calibration(examples.iter().zip(logits.iter().copied()), adapted)?;
    let fold: Vec<usize> = examples.iter().map(|e| fold_of(&e.group, folds)).collect();
    let mut probs = vec![0.0f32; examples.len()];
    for k in 0..folds.max(1) {
        let others = examples
            .iter()
            .zip(logits.iter().copied())
            .zip(&fold)
            .filter(|(_, &f)| f != k)
            .map(|(p, _)| p);
        let held = fit_calibration(others, adapted).unwrap_or_else(|_| calibration.clone());
        for (i, e) in examples.iter().enumerate().filter(|(i, _)| fold[*i] == k) {
            probs[i] = held.for_lang(e.detected.as_deref()).apply(logits[i]);
        }
    }
    let labels: Vec<bool> = examples.iter().map(|e| e.misinformation).collect();
    let mut by_lang: BTreeMap<String, (Vec<f32>, Vec<bool>)> = BTreeMap::new();
    for ((e, &p), &y) in examples.iter().zip(&probs).zip(&labels) {
        for key in ["all".to_string(), e.lang.clone()] {
            let b = by_lang.entry(key).or_default();
            b.0.push(p);
            b.1.push(y);
        }
    }
    Ok((
        calibration,
        by_lang
            .into_iter()
            .map(|(k, (p, y))| (k, figures(&p, &y)))
            .collect(),
    ))
}

/// Trains without any example of `lang` and scores that language: how the head does on
/// a language it has never seen labeled.
pub fn cross_lingual(
    examples: &[Example],
    lang: &str,
    recipe: &Recipe,
) -> Result<Option<RiskGroup>> {
    let (held, train): (Vec<&Example>, Vec<&Example>) =
        examples.iter().partition(|e| e.lang == lang);
    if held.is_empty() || train.is_empty() {
        return Ok(None);
    }
    // No labeled example of the language: no weights of its own either.
    let recipe = Recipe {
        adapted_languages: recipe
            .adapted_languages
            .iter()
            .filter(|l| *l != lang)
            .cloned()
            .collect(),
        ..recipe.clone()
    };
    let head = train_on(&train, &recipe)?;
    let train_logits: Vec<f32> = train
        .iter()
        .map(|e| head.logit(&e.embedding, e.detected.as_deref()))
        .collect::<Result<_>>()?;
    let train_labels: Vec<bool> = train.iter().map(|e| e.misinformation).collect();
    // Calibrated on the languages it saw (in-sample: a rough mapping, as a user
    // without labeled data in the new language would have).
    let platt = Platt::fit(&train_logits, &train_labels)?;
    let probs: Vec<f32> = held
        .iter()
        .map(|e| {
            head.logit(&e.embedding, e.detected.as_deref())
                .map(|z| platt.apply(z))
        })
        .collect::<Result<_>>()?;
    let labels: Vec<bool> = held.iter().map(|e| e.misinformation).collect();
    Ok(Some(figures(&probs, &labels)))
}

/// Trains the final head on every example, calibrated with out-of-fold logits.
pub fn train_final(
    examples: &[Example],
    recipe: &Recipe,
    calibration: Calibration,
    trained_on: Vec<String>,
) -> Result<RiskHead> {
    let all: Vec<&Example> = examples.iter().collect();
    let mut head = train_on(&all, recipe)?;
    head.calibration = calibration;
    head.trained_on = trained_on;
    head.trained_ids = examples.iter().map(|e| e.id.clone()).collect();
    head.trained_ids.sort();
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::HeadKind;

    fn example(id: usize, lang: &str, misinformation: bool) -> Example {
        // Misinformation along +x, noise along y; French shifted so a head must see it.
        let noise = ((id * 7919) % 101) as f32 / 50.0 - 1.0;
        let x = if misinformation { 1.0 } else { -1.0 } + noise * 0.8;
        let shift = if lang == "fr" { 0.7 } else { 0.0 };
        Example {
            id: id.to_string(),
            lang: lang.into(),
            detected: Some(lang.into()),
            group: (id / 2).to_string(),
            misinformation,
            embedding: vec![x + shift, noise, 1.0],
        }
    }

    fn data() -> Vec<Example> {
        (0..400)
            .map(|i| example(i, if i % 10 == 0 { "fr" } else { "en" }, i % 3 == 0))
            .collect()
    }

    #[test]
    fn weights_balance_classes_within_languages_and_share_languages() {
        let ex = data();
        let share = BTreeMap::from([("fr".to_string(), 0.4)]);
        let w = example_weights(&ex.iter().collect::<Vec<_>>(), &share);
        let sum = |lang: &str, y: bool| {
            ex.iter()
                .zip(&w)
                .filter(|(e, _)| e.lang == lang && e.misinformation == y)
                .map(|(_, w)| w)
                .sum::<f32>()
        };
        let total: f32 = w.iter().sum();
        assert!((sum("fr", true) / total - 0.2).abs() < 1e-4);
        assert!((sum("fr", false) / total - 0.2).abs() < 1e-4);
        assert!((sum("en", true) / total - 0.3).abs() < 1e-4);
        assert!((total / ex.len() as f32 - 1.0).abs() < 1e-4);
    }

    #[test]
    fn folds_spread_groups_and_never_split_one() {
        let ex = data();
        let mut fold_of_group: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &ex {
            let f = fold_of(&e.group, 5);
            assert!(f < 5);
            assert_eq!(
                *fold_of_group.entry(&e.group).or_insert(f),
                f,
                "group {} in two folds",
                e.group
            );
        }
        let mut sizes = [0usize; 5];
        fold_of_group.values().for_each(|&f| sizes[f] += 1);
        assert!(
            sizes.iter().all(|&n| n >= 20),
            "200 groups spread over 5 folds: {sizes:?}"
        );
    }

    #[test]
    fn cross_validation_and_calibration_on_learnable_data() {
        let ex = data();
        let recipe = Recipe {
            options: TrainOptions {
                kind: HeadKind::Logistic,
                epochs: 300,
                ..Default::default()
            },
            adapted_languages: vec!["fr".into()],
            language_share: BTreeMap::from([("fr".to_string(), 0.3)]),
        };
        let logits = cross_validated_logits(&ex, &recipe, 5, |_| {}).unwrap();
        let (calibration, figs) = per_language(&ex, &logits, &recipe.adapted_languages, 5).unwrap();
        assert!(figs["all"].roc_auc.unwrap() > 0.85, "{figs:?}");
        assert!(figs["all"].ece.unwrap() < 0.1, "{figs:?}");
        assert!(calibration.by_language.contains_key("fr"));
        assert!(figs["fr"].ece.unwrap() < 0.15, "{figs:?}");
        let head =
            train_final(&ex, &recipe, calibration.clone(), vec!["synthetic".into()]).unwrap();
        assert_eq!(head.trained_ids.len(), ex.len());
        assert_eq!(head.calibration, calibration);
        assert_eq!(head.adapted_languages, vec!["fr".to_string()]);
        assert_eq!(head.dim(), 3);
        let xl = cross_lingual(&ex, "fr", &recipe).unwrap().unwrap();
        assert_eq!(xl.n, 40);
        assert!(xl.roc_auc.unwrap() > 0.7, "{xl:?}");
    }
}
