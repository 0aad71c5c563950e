//! `vigie claims import`: a fact-checker's ClaimReview feed goes into a claims directory,
//! a second import of the same feed changes nothing, a broken feed leaves the directory
//! as it was, and the result is a library `vigie claims check` accepts.

use std::path::Path;
use std::process::{Command, Output};

fn vigie(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigie"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("vigie runs")
}

const FEED: &str = r#"[
  {"@context": "https://schema.org", "@type": "ClaimReview",
   "url": "https://factcheck.example/polio-sterility",
   "claimReviewed": "The polio vaccine makes girls sterile",
   "datePublished": "2025-02-11", "inLanguage": "en",
   "author": {"@type": "Organization", "name": "Example Check"},
   "reviewRating": {"@type": "Rating", "alternateName": "False"}},
  {"@context": "https://schema.org", "@type": "ClaimReview",
   "url": "https://factcheck.example/tisane-palu",
   "claimReviewed": "Une tisane d'artemisia guérit le paludisme en trois jours",
   "datePublished": "2025-03-02", "inLanguage": "fr-FR",
   "author": {"@type": "Organization", "name": "Exemple Vérif"},
   "reviewRating": {"@type": "Rating", "alternateName": "Trompeur"}},
  {"@context": "https://schema.org", "@type": "ClaimReview",
   "url": "https://factcheck.example/handwashing",
   "claimReviewed": "Washing hands with soap prevents diarrhoea",
   "inLanguage": "en", "reviewRating": {"@type": "Rating", "alternateName": "True"}}
]"#;

#[test]
fn a_claim_review_feed_is_imported_idempotently_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("feed.json"), FEED).unwrap();
    let import = ["claims", "import", "feed.json", "--into", "library"];
    let first = vigie(&import, dir.path());
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("2 claims read"), "{stdout}");
    let file = dir.path().join("library/imported.toml");
    let once = std::fs::read_to_string(&file).unwrap();
    assert!(once.contains("status = \"misleading\"") && once.contains("Example Check"));
    assert!(
        !once.contains("soap"),
        "a claim rated true is not a false claim"
    );

    assert!(vigie(&import, dir.path()).status.success());
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        once,
        "re-import changes nothing"
    );

    std::fs::write(dir.path().join("broken.json"), "{\"claimReviewed\": ").unwrap();
    let broken = vigie(
        &["claims", "import", "broken.json", "--into", "library"],
        dir.path(),
    );
    assert!(
        broken.status.success(),
        "an unreadable record is skipped, not fatal"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), once);

    let check = vigie(&["claims", "check", "library"], dir.path());
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stdout).contains("2 claims ok"));
}
