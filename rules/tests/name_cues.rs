//! Names found through their context, end to end with the shared gazetteers: every name of
//! a list after a cue is hidden, in any case and with or without accents.

mod common;

use common::redactor;

#[test]
fn every_name_listed_after_a_cue_is_hidden() {
    let r = redactor();
    let cases = [
        ("Dr. Rakusin and Toolis aware.", "en", &["Rakusin", "Toolis"][..]),
        ("MICU ADDENDUM  Sons Smokey, Morris and Roger in to visit.", "en", &["Smokey", "Morris", "Roger"]),
        ("dr. john bowman aware of plan", "en", &["john", "bowman"]),
        ("EPOUSE MARIE EST VENUE CE MATIN", "fr", &["MARIE"]),
        ("Vu avec son épouse Aminata et sa fille Fatou.", "fr", &["Aminata", "Fatou"]),
    ];
    for (text, lang, names) in cases {
        let out = r.redact_in(text, Some(lang)).text;
        for name in names {
            assert!(!out.contains(name), "{name} survived in {out:?}");
        }
    }
}

#[test]
fn cue_words_alone_hide_nothing() {
    let r = redactor();
    for text in ["wife called this am", "RN present during above", "his son is here", "Dr aware of plan"] {
        let out = r.redact_in(text, Some("en"));
        assert!(out.findings.is_empty(), "{text:?} gave {:?}", out.findings);
    }
}

#[test]
fn names_before_a_midline_cue_are_hidden_and_the_words_around_them_kept() {
    let r = redactor();
    let cases = [
        ("RUN OF VENT BIGEMINY BEA TURA AWARE MGSO4 GIVEN.", &["BEA", "TURA"][..], &["BIGEMINY", "AWARE"][..]),
        ("INR 6.0. Z. MILLER AWARE AND WILL FOLLOW", &["MILLER"], &["AWARE", "WILL"]),
        ("daughter is mrs. marcela carlson, tel 201-561-8910.", &["marcela", "carlson", "8910"], &["tel", "daughter"]),
    ];
    for (text, hidden, kept) in cases {
        let out = r.redact_in(text, Some("en")).text;
        for name in hidden {
            assert!(!out.contains(name), "{name} survived in {out:?}");
        }
        for word in kept {
            assert!(out.contains(word), "{word} was redacted in {out:?}");
        }
    }
    // A run with no listed name or initial is not taken ("S-RESIDENT AWARE").
    let out = r.redact_in("INCREASED SVR FROM PREVIOUS. S-RESIDENT AWARE.", Some("en"));
    assert!(out.findings.is_empty(), "{:?}", out.findings);
}
