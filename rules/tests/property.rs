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
    "\u{2060}",
    "\u{feff}",
    "\u{ad}",
    "\u{202e}",
    "\u{fe0f}",
    "５",
    "٣",
    "𝟗",
    "\r\n",
    "\u{2028}",
    "ﬁ",
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

/// Ways to disguise one identifier: each returns the identifier as it would be typed.
fn disguise(rng: &mut Rng, secret: &str) -> String {
    const INVISIBLE: &[char] = &[
        '\u{200b}', '\u{200d}', '\u{2060}', '\u{feff}', '\u{ad}', '\u{200e}',
    ];
    const ZEROS: &[u32] = &[0xFF10, 0x0660, 0x06F0, 0x0966, 0x1D7CE, 0x0E50];
    let chars: Vec<char> = secret.chars().collect();
    let zero = ZEROS[rng.below(ZEROS.len())];
    let invisible = INVISIBLE[rng.below(INVISIBLE.len())];
    let mut out = String::new();
    let (fold_digits, hide, breaks) = (rng.below(2) == 0, rng.below(2) == 0, rng.below(3) == 0);
    let break_at = 1 + rng.below(chars.len() - 1);
    for (i, &c) in chars.iter().enumerate() {
        if breaks && i == break_at {
            out.push('\n');
        }
        match c.to_digit(10) {
            Some(d) if fold_digits => out.push(char::from_u32(zero + d).unwrap_or(c)),
            _ => out.push(c),
        }
        if hide && i + 1 < chars.len() && rng.below(3) == 0 {
            out.push(invisible);
        }
    }
    out
}

/// A text as the rules read it, spaces and line breaks taken out: what a reader would
/// recognise an identifier in.
fn squeezed(text: &str) -> String {
    vigie_rules::normalise::normalised(text)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

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

#[test]
fn disguised_identifiers_never_survive() {
    let redactor = redactor();
    let mut rng = Rng(0x0d15_9015_ed00_01d5);
    for _ in 0..2000 {
        let secret = PLANTED[rng.below(PLANTED.len())];
        let shaped = disguise(&mut rng, secret);
        let text = format!(
            "{} {shaped} {}",
            random_text(&mut rng, 25),
            random_text(&mut rng, 25)
        );
        let r = redactor.redact_in(&text, [None, Some("fr"), Some("en")][rng.below(3)]);
        check_spans(&text, &r);
        assert!(
            !squeezed(&r.text).contains(&squeezed(secret)),
            "{secret:?} survived as {shaped:?} in {:?} -> {:?}",
            text,
            r.text
        );
    }
}
