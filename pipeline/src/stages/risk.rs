//! Risk stage: misinformation score from the encoder and the trained head.
//! It reads the redacted text: identifiers carry no signal about rumours, and the model
//! then never sees them.

use vigie_models::{Encoder, RiskHead};

use crate::contract::{Risk, RiskLabel};

pub struct RiskStage {
    encoder: Encoder,
    head: RiskHead,
    threshold: f32,
    model_name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RiskError {
    #[error("head expects {head}-dimensional embeddings but the encoder makes {encoder}")]
    DimensionMismatch { head: usize, encoder: usize },
    #[error(transparent)]
    Model(#[from] vigie_models::ModelError),
}

impl RiskStage {
    pub fn new(encoder: Encoder, head: RiskHead, threshold: f32) -> Result<Self, RiskError> {
        if head.dim() != encoder.dim() {
            return Err(RiskError::DimensionMismatch { head: head.dim(), encoder: encoder.dim() });
        }
        let model_name = format!("{}+logreg", head.encoder);
        Ok(RiskStage { encoder, head, threshold, model_name })
    }

    /// Scores a batch of (redacted) texts, in order.
    pub fn score<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Risk>, RiskError> {
        let embeddings = self.encoder.embed(texts)?;
        embeddings
            .iter()
            .map(|e| {
                let score = self.head.score(e)?;
                let label = if score >= self.threshold { RiskLabel::Misinformation } else { RiskLabel::Reliable };
                Ok(Risk { score, label, model: self.model_name.clone() })
            })
            .collect()
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vigie_models::encoder::testing::tiny_encoder;
    use vigie_models::TrainOptions;

    pub(crate) fn tiny_stage() -> RiskStage {
        crate::testing::tiny_risk_stage()
    }

    #[test]
    fn scores_follow_the_trained_head() {
        let stage = tiny_stage();
        let r = stage.score(&["vaccine causes autism", "the measles vaccine is safe"]).unwrap();
        assert!(r[0].score > r[1].score, "{r:?}");
        assert_eq!(r[0].label, RiskLabel::Misinformation);
        assert_eq!(r[1].label, RiskLabel::Reliable);
        assert_eq!(r[0].model, "tiny+logreg");
    }

    #[test]
    fn mismatched_head_is_refused() {
        let head = RiskHead { encoder: "x".into(), weights: vec![0.0; 3], bias: 0.0, trained_on: vec![], options: TrainOptions::default() };
        assert!(matches!(RiskStage::new(tiny_encoder(1), head, 0.5), Err(RiskError::DimensionMismatch { .. })));
    }
}
