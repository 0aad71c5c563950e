//! Property test over arbitrary Unicode: the redactor never panics, its spans are valid
//! (inside the text, ordered, not overlapping, on the original's code points), and an
//! identifier planted between spaces never comes out intact, whatever surrounds it.
//! A fixed-seed generator keeps failures reproducible.

mod common;

use common::{redactor, Rng};

const POOL: &[&str] = &[
    "a",
    "e",
    "Z",
    "é",
    "ç",
    "Œ",
    "ß",
    "ж",
    "Щ",
    "中",
    "文",
    "ع",
    "ह",
    "🙂",
    "👍🏽",
    "\u{301}",
    "\u{200b}",
    "0",
    "1",
    "7",
    "9",
    "/",
    ".",
    "-",
    "+",
    "@",
    "(",
    ")",
    "|",
    "'",
    "’",
    " ",
    " ",
    " ",
    "\n",
    "\t",
    "\u{a0}",
    "Dr ",
    "Mme ",
    "né le ",
    "rue ",
    "IPP ",
    "NHS ",
    "+33 ",
    "75013 ",
    "Hôpital ",
    "MARTIN ",
    "Awa ",
];

/// Identifiers that must never come out intact when they stand between spaces.
const PLANTED: &[&str] = &[
    "1 85 05 75 123 456 73",
    "943 476 5919",
    "+221 77 123 45 67",
    "awa.diop@example.sn",
    "06 12 34 56 78",
    "+44 20 7946 0958",
    "+225 07 07 12 34 56",
    "4539 1488 0343 6467",
];

fn random_text(rng: &mut Rng, max_pieces: usize) -> String {
    (0..rng.below(max_pieces))
        .map(|_| POOL[rng.below(POOL.len())])
        .collect()
}

fn check_spans(text: &str, r: &vigie_rules::Redaction) {
    let n = text.chars().count();
    let mut last_end = 0;
    for f in &r.findings {
        assert!(
            f.start < f.end && f.end <= n,
            "span {f:?} outside a text of {n} chars: {text:?}"
        );
        assert!(
            f.start >= last_end,
            "overlapping or unordered spans in {:?}",
            r.findings
        );
        last_end = f.end;
    }
}

#[test]
fn arbitrary_unicode_never_panics_and_spans_stay_valid() {
    let redactor = redactor();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for _ in 0..3000 {
        let text = random_text(&mut rng, 60);
        for lang in [None, Some("fr"), Some("en")] {
            let r = redactor.redact_in(&text, lang);
            check_spans(&text, &r);
        }
    }
}

#[test]
fn planted_identifiers_never_survive() {
    let redactor = redactor();
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    for _ in 0..2000 {
        let secret = PLANTED[rng.below(PLANTED.len())];
        let text = format!(
            "{} {secret} {}",
            random_text(&mut rng, 25),
            random_text(&mut rng, 25)
        );
        let r = redactor.redact_in(&text, [None, Some("fr"), Some("en")][rng.below(3)]);
        check_spans(&text, &r);
        assert!(
            !r.text.contains(secret),
            "{secret:?} survived in {:?} -> {:?}",
            text,
            r.text
        );
    }
}
