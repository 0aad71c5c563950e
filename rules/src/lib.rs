//! Patient-identifier redaction for short French and English posts.
//!
//! Rules are data: every rule is one `[[rule]]` entry in a TOML file under `rules/sets/`,
//! carrying its pattern, the kind of identifier it finds, a confidence, an optional
//! checksum validator and inline examples that the test suite runs. The Rust side only
//! compiles those entries ([`RuleSet`]), checks numbers ([`validators`]) and applies the
//! winning matches to a text ([`Redactor`]).

#![warn(missing_docs)]

pub mod gate;
pub mod listed;
pub mod names;
pub mod normalise;
pub mod prescan;
pub mod redactor;
pub mod rule;
pub mod validators;
pub mod word_boundaries;
pub mod zipf;

pub use normalise::MatchView;
pub use redactor::{ExtraSpan, Finding, PseudonymKey, Redaction, Redactor, ReplaceMode};
pub use rule::{CompiledRule, ExampleFailure, RuleError, RuleSet, RuleSpec};
pub use validators::Validator;

/// Whether a text in `lang` (one code, or several joined by `+` for a post that mixes
/// languages: `fr+en`) is in one of `languages`.
pub fn includes_language(lang: &str, languages: &[String]) -> bool {
    lang.split('+')
        .any(|part| languages.iter().any(|l| l == part))
}

#[cfg(test)]
mod language_tests {
    #[test]
    fn a_mixed_post_is_in_each_of_its_languages() {
        let fr = vec!["fr".to_string()];
        assert!(super::includes_language("fr", &fr));
        assert!(super::includes_language("fr+en", &fr));
        assert!(super::includes_language("en+fr", &fr));
        assert!(!super::includes_language("en", &fr));
    }
}
