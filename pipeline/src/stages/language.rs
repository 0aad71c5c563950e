//! Language stage: French, English, another language, or undetermined.

use whatlang::{Detector, Lang as WLang};

use crate::contract::{Lang, LangCode};

/// Fewer letters than this and the text is `und`: trigram statistics mean nothing.
const MIN_LETTERS: usize = 2;

pub struct LanguageStage {
    detector: Detector,
}

impl Default for LanguageStage {
    fn default() -> Self {
        LanguageStage { detector: Detector::new() }
    }
}

impl LanguageStage {
    pub fn detect(&self, text: &str) -> Lang {
        let letters = text.chars().filter(|c| c.is_alphabetic()).count();
        if letters < MIN_LETTERS {
            return Lang { code: LangCode::Und, confidence: 0.0 };
        }
        match self.detector.detect(text) {
            None => Lang { code: LangCode::Und, confidence: 0.0 },
            Some(info) => {
                let code = match info.lang() {
                    WLang::Fra => LangCode::Fr,
                    WLang::Eng => LangCode::En,
                    _ => LangCode::Other,
                };
                Lang { code, confidence: info.confidence() as f32 }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_english_other_und() {
        let s = LanguageStage::default();
        assert_eq!(s.detect("Le vaccin contre la rougeole protège les enfants dès leur plus jeune âge.").code, LangCode::Fr);
        assert_eq!(s.detect("The measles vaccine protects children from a very young age.").code, LangCode::En);
        assert_eq!(s.detect("La vacuna contra el sarampión protege a los niños desde muy pequeños.").code, LangCode::Other);
        assert_eq!(s.detect("Прививка защищает детей").code, LangCode::Other);
        assert_eq!(s.detect("12 34 !!").code, LangCode::Und);
        assert_eq!(s.detect("").code, LangCode::Und);
    }

    #[test]
    fn confidence_is_a_probability() {
        let s = LanguageStage::default();
        let l = s.detect("Les agents de santé communautaires sont formés chaque année.");
        assert!((0.0..=1.0).contains(&l.confidence) && l.confidence > 0.5, "{l:?}");
    }
}
