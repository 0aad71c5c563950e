//! Heap held by the compiled automata of the built-in rules, by form:
//! `cargo run --release -p vigie-rules --example regex_sizes`.
//!
//! Each rule has three forms (see `CompiledRule`): the one run on texts with ASCII digits
//! (boundaries made ASCII where safe), the pattern as written (texts with other digits)
//! and the anchored one (sub-spans of a match). Only the first is built at load; this
//! shows what the other two would hold if they were, and the rules that weigh most.

use regex_automata::meta::Regex;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let set = vigie_rules::rule::RuleSet::builtin()?;
    let size = |p: &str| -> Result<usize, Box<dyn std::error::Error>> {
        Ok(Regex::new(p).map_err(Box::new)?.memory_usage())
    };
    let mut rows = Vec::new();
    let (mut run, mut written, mut anchored) = (0, 0, 0);
    for rule in set.rules() {
        let pattern = &rule.spec.pattern;
        let forms = [
            size(&vigie_rules::word_boundaries::rewrite(pattern))?,
            size(pattern)?,
            size(&format!("^(?:{pattern})$"))?,
        ];
        run += forms[0];
        written += forms[1];
        anchored += forms[2];
        rows.push((forms.iter().sum::<usize>(), rule.spec.id.clone()));
    }
    rows.sort_by(|a, b| b.cmp(a));
    let mb = |b: usize| b as f64 / 1e6;
    println!(
        "{} rules: {:.1} MB built at load, {:.1} MB as written and {:.1} MB anchored built on first use",
        rows.len(),
        mb(run),
        mb(written),
        mb(anchored)
    );
    for (bytes, id) in rows.iter().take(10) {
        println!("{:6.2} MB  {id} (all three forms)", mb(*bytes));
    }
    Ok(())
}
