//! Runs the real multilingual-e5-small weights (fetched by `vigie model fetch`, which the
//! README's test command does first). Fails, naming the fix, when the files are missing.

use vigie_models::encoder::{cosine, default_model_dir};
use vigie_models::Encoder;

#[test]
fn real_model_embeds_paraphrases_across_languages_close_together() {
    let dir = default_model_dir();
    let enc = Encoder::load(&dir).unwrap_or_else(|e| panic!("{e} (looked in {})", dir.display()));
    assert_eq!(enc.dim(), 384);
    let texts = [
        "The measles vaccine causes autism in children.",
        "Le vaccin contre la rougeole provoque l'autisme chez les enfants.",
        "The football match ended in a draw after extra time.",
        "Malaria is transmitted by the bite of infected mosquitoes.",
    ];
    let v = enc.embed(&texts).unwrap();
    for e in &v {
        let norm: f32 = e.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3);
    }
    let same_claim = cosine(&v[0], &v[1]);
    let unrelated = cosine(&v[0], &v[2]);
    let related_topic = cosine(&v[0], &v[3]);
    assert!(same_claim > 0.85, "fr/en paraphrase cosine {same_claim}");
    assert!(
        same_claim > related_topic && related_topic > unrelated,
        "{same_claim} {related_topic} {unrelated}"
    );
}

/// Posts restating a library claim in the other language find it: a French post an
/// English claim, an English post a French claim; and ordinary posts find none.
#[test]
fn known_claims_are_matched_across_languages() {
    use vigie_models::claims::{builtin_claims, ClaimIndex};
    let dir = default_model_dir();
    let enc = Encoder::load(&dir).unwrap_or_else(|e| panic!("{e} (looked in {})", dir.display()));
    let claims = builtin_claims().unwrap();
    let lang = |id: &str| {
        claims
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.lang.clone())
            .unwrap()
    };
    assert_eq!(
        (
            lang("covid-5g"),
            lang("vax-malaria-sterility"),
            lang("ebola-salt-water")
        ),
        ("en".into(), "fr".into(), "en".into())
    );
    let index = ClaimIndex::build(claims, &enc).unwrap();
    // The default matching threshold of the pipeline ([risk] claim_match_threshold).
    let threshold = 0.93;
    let cases = [
        (
            "Les antennes 5G propagent le coronavirus dans nos villes.",
            Some("covid-5g"),
        ),
        (
            "Se baigner dans l'eau salée protège contre Ebola.",
            Some("ebola-salt-water"),
        ),
        (
            "The malaria vaccine makes women sterile, it is a plan to reduce Africa's population.",
            Some("vax-malaria-sterility"),
        ),
        (
            "Réunion de l'équipe de vaccination lundi à 9h au centre de santé.",
            None,
        ),
        (
            "Reminder: flu vaccination clinics run every Thursday afternoon.",
            None,
        ),
    ];
    let texts: Vec<&str> = cases.iter().map(|c| c.0).collect();
    for ((text, expected), v) in cases.iter().zip(enc.embed(&texts).unwrap()) {
        let found = index.matches(&v, 1, threshold);
        assert_eq!(
            found.first().map(|m| m.id.as_str()),
            *expected,
            "{text}: {:?}",
            index.matches(&v, 3, 0.0)
        );
    }
}

/// The fast forward pass computes what candle-transformers' `BertModel` computes: on
/// the sample posts and on whatever dev texts are at hand, every embedding agrees.
#[test]
fn fast_forward_agrees_with_the_reference_bert_model() {
    let dir = default_model_dir();
    let fast = Encoder::load(&dir).unwrap_or_else(|e| panic!("{e} (looked in {})", dir.display()));
    let reference = Encoder::load_with(&dir, true).unwrap();
    let samples = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../datasets/samples/posts.jsonl"
    );
    let dev = std::env::var("VIGIE_DATA_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/datasets").into());
    let mut texts: Vec<String> = Vec::new();
    for path in [
        samples.to_string(),
        format!("{dev}/risk/daccord_fr_dev.jsonl"),
        format!("{dev}/risk/constraint_en_val.jsonl"),
    ] {
        let Ok(body) = std::fs::read_to_string(&path) else {
            continue;
        };
        texts.extend(
            body.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| v.get("text")?.as_str().map(String::from))
                .take(40),
        );
    }
    assert!(
        texts.len() >= 40,
        "the sample posts are part of the repository"
    );
    let a = fast.embed(&texts).unwrap();
    let b = reference.embed(&texts).unwrap();
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| cosine(x, y))
        .fold(1.0f32, f32::min);
    assert!(
        worst >= 0.999,
        "lowest cosine between the two forwards: {worst}"
    );
}

/// The committed head, on the real encoder, ranks a rumour above its correction in
/// French and in English (texts written for this test, not taken from the datasets).
#[test]
fn builtin_head_ranks_rumours_above_corrections() {
    use vigie_models::RiskHead;
    let dir = default_model_dir();
    let enc = Encoder::load(&dir).unwrap_or_else(|e| panic!("{e} (looked in {})", dir.display()));
    let head = RiskHead::builtin().unwrap();
    let pairs = [
        (
            "fr",
            "Le vaccin contre le Covid-19 modifie l'ADN des personnes vaccinées, c'est prouvé.",
            "Les vaccins à ARN messager ne modifient pas l'ADN : l'ARN n'entre pas dans le noyau des cellules, selon les chercheurs.",
        ),
        (
            "en",
            "BREAKING: drinking hot water every 15 minutes kills the coronavirus, share before they delete it!",
            "The health ministry reports 1,203 new confirmed cases today; testing continues in all regions.",
        ),
    ];
    for (lang, rumour, correction) in pairs {
        let v = enc.features(&[rumour, correction]).unwrap();
        let (r, c) = (
            head.score(&v[0], Some(lang)).unwrap(),
            head.score(&v[1], Some(lang)).unwrap(),
        );
        assert!(r > c, "{lang}: rumour {r} vs correction {c}");
        assert!((0.0..=1.0).contains(&r) && (0.0..=1.0).contains(&c));
    }
}

/// One pass on the real tokenizer and weights: token spans point at the words of the
/// text (accents, elisions, emoji), pooling every token is the sentence embedding, and
/// pooling without a redacted name moves the embedding, towards the text without it.
#[test]
fn one_pass_spans_and_pooling_hold_on_the_real_model() {
    let dir = default_model_dir();
    let enc = Encoder::load(&dir).unwrap_or_else(|e| panic!("{e} (looked in {})", dir.display()));
    let texts = [
        "Rappeler Mme Aminata Diallo au sujet de l'état de son fils 👍",
        "took Okonkwo's daughter to the ward",
    ];
    let batch = enc.encode(&texts).unwrap();
    let embedded = enc.embed(&texts).unwrap();
    for ((text, encoded), embedding) in texts.iter().zip(&batch.texts).zip(&embedded) {
        assert!(
            cosine(&encoded.pooled(|_| true), embedding) > 0.9999,
            "{text}"
        );
        let chars: Vec<char> = text.chars().collect();
        let mut covered = vec![false; chars.len()];
        for &(s, e) in encoded.spans.iter().flatten() {
            assert!(s < e && e <= chars.len(), "{text}: {s}..{e}");
            covered[s..e].iter_mut().for_each(|c| *c = true);
        }
        for (c, seen) in chars.iter().zip(&covered) {
            assert!(c.is_whitespace() || *seen, "{text}: {c:?} has no token");
        }
    }
    let name = texts[0].find("Aminata Diallo").unwrap();
    let name = texts[0][..name].chars().count();
    let without = batch.texts[0].pooled_without(&[(name, name + 14)]);
    let plain = enc
        .embed(&["Rappeler Mme au sujet de l'état de son fils 👍"])
        .unwrap();
    assert!(cosine(&without, &plain[0]) > cosine(&embedded[0], &plain[0]));
}
