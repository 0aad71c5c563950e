//! The committed token tagger in the pipeline, on the real model: names, places and
//! dates that no cue word announces are redacted (the rules alone leave them), while
//! ordinary posts keep their words. The posts here were written for this test, in the
//! shapes of the families the tagger is for; none is a training row.

use std::path::PathBuf;

use vigie_pipeline::config::Config;
use vigie_pipeline::screener::Screener;

/// The defaults, with the shared gazetteers (the name lists the rules read).
fn config() -> Config {
    let mut config = Config::default();
    let gazetteers = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/gazetteers");
    config.gazetteers_dir = std::env::var_os("VIGIE_GAZETTEERS")
        .map(PathBuf::from)
        .or(Some(gazetteers));
    config
}

fn screener() -> Screener {
    let s = Screener::from_config(&config()).expect("the real model (vigie model fetch)");
    assert!(s.tags(), "the tagger runs by default");
    s
}

#[test]
fn names_and_places_no_cue_announces_are_redacted() {
    let s = screener();
    let rules_only = {
        let mut config = config();
        config.risk.enabled = false;
        Screener::from_config(&config).unwrap()
    };
    let cases = [
        ("took Aminata to the ward this morning", "Aminata"),
        (
            "Okonkwo's daughter called back about the results",
            "Okonkwo",
        ),
        ("j'ai revu Fatoumata hier soir, elle va mieux", "Fatoumata"),
        ("Kouassi est rentré chez lui à Bouaké", "Bouaké"),
        ("on a transféré Moussa Sangaré aux urgences", "Sangaré"),
        ("Siobhan and Priya are off sick today", "Priya"),
        ("can someone bring Ikechukwu's file to room 4", "Ikechukwu"),
        ("elle vit à Ziguinchor avec sa tante", "Ziguinchor"),
    ];
    let mut left_by_rules = 0;
    let mut found = Vec::new();
    for (text, identifier) in cases {
        let tagged = s.redact_text(text).unwrap();
        if !tagged.text.contains(identifier) {
            found.push(identifier);
        }
        if rules_only
            .redact_text(text)
            .unwrap()
            .text
            .contains(identifier)
        {
            left_by_rules += 1;
        }
    }
    assert!(
        left_by_rules >= 4,
        "the rules alone leave most of these: {left_by_rules}"
    );
    assert!(found.len() >= 7, "the tagger finds them: only {found:?}");
}

#[test]
fn ordinary_posts_keep_their_words() {
    let s = screener();
    let posts = [
        "ok",
        "Got it, thanks.",
        "Session moved to Thursday at 10",
        "Le vaccin ROR est sûr et efficace",
        "rdv demain 9h au centre, prévoir les carnets",
        "The cold chain fridge is back to 4 degrees",
        "Merci à toute l'équipe pour la campagne 👏",
        "Measles cases are rising, check the children's cards",
        "ADMIN TO FOLLOW UP ON THE WEAN",
        // Vaccines and diseases by acronym, in both languages and several shapes.
        "2e dose de VPH faite au collège",
        "BCG at birth for all newborns this week",
        "le vaccin RRO est offert au CLSC",
        "DTaP and MMR catch-up list is on the drive",
        "rappel DTP + coqueluche pour les 6 ans",
        "RSV season: masks in the waiting room",
    ];
    let touched: Vec<String> = posts
        .iter()
        .map(|p| s.redact_text(p).unwrap().text)
        .filter(|r| r.contains('['))
        .collect();
    assert!(touched.is_empty(), "ordinary posts redacted: {touched:?}");
}

/// Training reads each post as the pipeline does: for the same texts,
/// `prepare_for_risk` gives the redacted text and the vector whose head probability
/// `screen` reports. Posts with rule and tagger redactions, and one without, so the
/// pooling without redacted tokens is what is compared.
#[test]
fn training_sees_the_vectors_the_pipeline_scores() {
    use vigie_pipeline::contract::Origin;
    use vigie_pipeline::screener::{known_language, Outcome};

    let s = screener();
    let stage = s.risk().expect("the risk stage runs");
    let texts = [
        "Mme Kouassi dit que le vaccin ROR provoque l'autisme, rappelez-la au 06 12 34 56 78",
        "took Aminata to the ward, her mother says the measles jab gives kids autism",
        "The polio drops are a plan to sterilise our girls, keep your children inside",
    ];
    let prepared = s
        .prepare_for_risk(stage.encoder(), &texts)
        .expect("prepared");
    let inputs: Vec<(Origin, Vec<u8>)> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let post = serde_json::json!({"id": format!("p{i}"), "text": t, "channel": "forum"});
            (
                Origin::Line {
                    file: "t.jsonl".into(),
                    line: i + 1,
                },
                post.to_string().into_bytes(),
            )
        })
        .collect();
    let borrowed: Vec<(Origin, &[u8])> = inputs.iter().map(|(o, b)| (o.clone(), &b[..])).collect();
    let outcomes = s.process(&borrowed);
    let mut redacted_posts = 0;
    for (i, outcome) in outcomes.iter().enumerate() {
        let Outcome::Screened(record) = outcome else {
            panic!("post {i} was rejected: {outcome:?}")
        };
        assert_eq!(record.redacted_text, prepared.redacted[i].text, "post {i}");
        redacted_posts += usize::from(!record.redactions.is_empty());
        let risk = record.risk.as_ref().expect("judged");
        let pooled = prepared.features[i].as_ref().expect("one pass, pooled");
        let lang = known_language(prepared.langs[i].code);
        let (_, probability) = stage.head().scores(pooled, lang).unwrap();
        assert!(
            (probability - risk.probability).abs() < 1e-5,
            "post {i}: training's vector scores {probability}, the pipeline {}",
            risk.probability
        );
    }
    assert_eq!(redacted_posts, 2, "two posts hold identifiers");
}
