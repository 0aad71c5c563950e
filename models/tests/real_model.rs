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
    assert!(same_claim > related_topic && related_topic > unrelated, "{same_claim} {related_topic} {unrelated}");
}

/// Posts restating a library claim in the other language find it: a French post an
/// English claim, an English post a French claim; and ordinary posts find none.
#[test]
fn known_claims_are_matched_across_languages() {
    use vigie_models::claims::{builtin_claims, ClaimIndex};
    let dir = default_model_dir();
    let enc = Encoder::load(&dir).unwrap_or_else(|e| panic!("{e} (looked in {})", dir.display()));
    let claims = builtin_claims().unwrap();
    let lang = |id: &str| claims.iter().find(|c| c.id == id).map(|c| c.lang.clone()).unwrap();
    assert_eq!((lang("covid-5g"), lang("vax-malaria-sterility"), lang("ebola-salt-water")), ("en".into(), "fr".into(), "en".into()));
    let index = ClaimIndex::build(claims, &enc).unwrap();
    // The default matching threshold of the pipeline ([risk] claim_match_threshold).
    let threshold = 0.93;
    let cases = [
        ("Les antennes 5G propagent le coronavirus dans nos villes.", Some("covid-5g")),
        ("Se baigner dans l'eau salée protège contre Ebola.", Some("ebola-salt-water")),
        ("The malaria vaccine makes women sterile, it is a plan to reduce Africa's population.", Some("vax-malaria-sterility")),
        ("Réunion de l'équipe de vaccination lundi à 9h au centre de santé.", None),
        ("Reminder: flu vaccination clinics run every Thursday afternoon.", None),
    ];
    let texts: Vec<&str> = cases.iter().map(|c| c.0).collect();
    for ((text, expected), v) in cases.iter().zip(enc.embed(&texts).unwrap()) {
        let found = index.matches(&v, 1, threshold);
        assert_eq!(found.first().map(|m| m.id.as_str()), *expected, "{text}: {:?}", index.matches(&v, 3, 0.0));
    }
}
