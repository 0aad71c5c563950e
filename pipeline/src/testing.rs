//! Helpers for tests (here and in `tests/`): a tiny random-weight model with a head
//! trained on it, so the real code path runs without the 70 MB download.

use std::path::{Path, PathBuf};

use vigie_models::encoder::testing::{tiny_encoder, tiny_image_bytes, tiny_tokenizer};
use vigie_models::encoder::{TOKENIZER_FILE, WEIGHTS_FILE};
use vigie_models::{RiskHead, TrainOptions};

use crate::stages::risk::RiskStage;

const SEED: u64 = 42;

/// A head trained on the tiny encoder to score "autism"/"5g" posts as misinformation.
pub fn tiny_head() -> RiskHead {
    let enc = tiny_encoder(SEED);
    let texts = [
        "vaccine causes autism",
        "5g cause autisme",
        "le vaccin cause autisme",
        "the measles vaccine is safe",
        "le vaccin est sûr",
        "rougeole vaccin sûr",
    ];
    let labels = [true, true, true, false, false, false];
    let xs = enc.embed(&texts).expect("tiny embeddings");
    RiskHead::train(
        "tiny",
        vec![],
        &xs,
        &labels,
        None,
        TrainOptions {
            epochs: 800,
            ..Default::default()
        },
    )
    .expect("tiny head")
}

pub fn tiny_risk_stage() -> RiskStage {
    RiskStage::new(tiny_encoder(SEED), tiny_head(), 0.5).expect("tiny risk stage")
}

/// Writes the tiny model files and head into `dir`; returns (model dir, head path) for
/// `--model-dir` and `[risk] head`.
pub fn write_tiny_model(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("model dir");
    std::fs::write(dir.join(WEIGHTS_FILE), tiny_image_bytes(SEED)).expect("weights");
    tiny_tokenizer()
        .save(dir.join(TOKENIZER_FILE), false)
        .expect("tokenizer");
    let head = dir.join("head.json");
    tiny_head().save(&head).expect("head");
    (dir.to_path_buf(), head)
}

/// A moderation record as `vigie screen` writes it, for console tests.
pub fn moderation_record(
    id: &str,
    lang: &str,
    text: &str,
    misinformation: bool,
    created_at: &str,
) -> crate::contract::ScreenedRecord {
    use crate::contract::{
        Channel, Lang, LangCode, Priority, Reason, Risk, RiskBasis, RiskLabel, RiskOutcome, Route,
        ScreenedRecord, Stance,
    };
    let code = match lang {
        "fr" => LangCode::Fr,
        "en" => LangCode::En,
        _ => LangCode::Other,
    };
    let reason = if misinformation {
        Reason::Misinformation
    } else {
        Reason::Privacy
    };
    let queue = format!(
        "{}-{lang}",
        if misinformation {
            "misinformation"
        } else {
            "privacy"
        }
    );
    let score = if misinformation { 0.9 } else { 0.1 };
    ScreenedRecord {
        id: id.to_string(),
        lang: Lang {
            code,
            confidence: 0.9,
            mixed: false,
        },
        redacted_text: text.to_string(),
        redactions: vec![],
        risk: Some(Risk {
            score,
            label: if misinformation {
                RiskLabel::Misinformation
            } else {
                RiskLabel::Reliable
            },
            model: "test".into(),
            head_score: score,
            probability: score,
            claims: vec![],
            outcome: if misinformation {
                RiskOutcome::Misinformation
            } else {
                RiskOutcome::Pass
            },
            basis: RiskBasis::Head,
            claim_probability: 1.0,
            stance: misinformation.then_some(Stance::Supports),
        }),
        route: Route {
            queue,
            priority: if misinformation {
                Priority::High
            } else {
                Priority::Low
            },
            reasons: vec![reason],
        },
        channel: Channel::Forum,
        country: Some("SN".into()),
        created_at: created_at.parse().ok(),
        processed_at: chrono::Utc::now(),
        vigie_version: crate::contract::VIGIE_VERSION.to_string(),
    }
}

/// A record the pipeline routes to programme staff as a rumour signal (not flagged for
/// moderators): a post that asks about (`queries`), refutes (`denies`) or reports
/// (`comments`) a claim, matched to `claim` when given.
pub fn rumour_signal_record(
    id: &str,
    lang: &str,
    text: &str,
    stance: crate::contract::Stance,
    claim: Option<crate::contract::MatchedClaim>,
    created_at: &str,
) -> crate::contract::ScreenedRecord {
    use crate::contract::{Priority, RiskBasis, RiskLabel, RiskOutcome, Route};
    let mut r = moderation_record(id, lang, text, false, created_at);
    if let Some(risk) = r.risk.as_mut() {
        risk.score = 0.3;
        risk.label = RiskLabel::Reliable;
        risk.outcome = RiskOutcome::RumourSignal;
        risk.basis = RiskBasis::Stance;
        risk.stance = Some(stance);
        risk.claims = claim.into_iter().collect();
    }
    r.route = Route {
        queue: "pass".into(),
        priority: Priority::None,
        reasons: vec![],
    };
    r
}
