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
