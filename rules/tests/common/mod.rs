//! What the integration tests share: the built-in rules with the shared gazetteers, and a
//! fixed-seed generator so that failures reproduce.

#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};

use vigie_rules::{Redactor, RuleSet};

/// `../shared` beside the repository, as in CI.
pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// The built-in rule sets with the shared gazetteers loaded.
pub fn rules() -> RuleSet {
    let mut rules = RuleSet::builtin().expect("built-in rules");
    rules
        .load_gazetteers(&shared().join("gazetteers"))
        .expect("shared gazetteers");
    rules
}

pub fn redactor() -> Redactor {
    Redactor::new(rules())
}

/// Xorshift: tiny, seeded, the same sequence on every machine.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}
