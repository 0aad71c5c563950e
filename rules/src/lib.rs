//! Patient-identifier redaction for short French and English posts.
//!
//! Rules are data: every rule is one `[[rule]]` entry in a TOML file under `rules/sets/`,
//! carrying its pattern, the kind of identifier it finds, a confidence, an optional
//! checksum validator and inline examples that the test suite runs. The Rust side only
//! compiles those entries ([`RuleSet`]), checks numbers ([`validators`]) and applies the
//! winning matches to a text ([`Redactor`]).

#![warn(missing_docs)]

pub mod gate;
pub mod names;
pub mod normalise;
pub mod prescan;
pub mod redactor;
pub mod rule;
pub mod validators;
pub mod word_boundaries;

pub use normalise::MatchView;
pub use redactor::{ExtraSpan, Finding, PseudonymKey, Redaction, Redactor, ReplaceMode};
pub use rule::{CompiledRule, ExampleFailure, RuleError, RuleSet, RuleSpec};
pub use validators::Validator;
