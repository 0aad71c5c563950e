//! Names found through their context, end to end with the shared gazetteers: every name of
//! a list after a cue is hidden, in any case and with or without accents.

mod common;

use common::redactor;

#[test]
fn every_name_listed_after_a_cue_is_hidden() {
    let r = redactor();
    let cases = [
        (
            "Dr. Rakusin and Toolis aware.",
            "en",
            &["Rakusin", "Toolis"][..],
        ),
        (
            "MICU ADDENDUM  Sons Smokey, Morris and Roger in to visit.",
            "en",
            &["Smokey", "Morris", "Roger"],
        ),
        ("dr. john bowman aware of plan", "en", &["john", "bowman"]),
        ("EPOUSE MARIE EST VENUE CE MATIN", "fr", &["MARIE"]),
        (
            "Vu avec son épouse Aminata et sa fille Fatou.",
            "fr",
            &["Aminata", "Fatou"],
        ),
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
    for text in [
        "wife called this am",
        "RN present during above",
        "his son is here",
        "Dr aware of plan",
    ] {
        let out = r.redact_in(text, Some("en"));
        assert!(out.findings.is_empty(), "{text:?} gave {:?}", out.findings);
    }
}

#[test]
fn names_before_a_midline_cue_are_hidden_and_the_words_around_them_kept() {
    let r = redactor();
    let cases = [
        (
            "RUN OF VENT BIGEMINY BEA TURA AWARE MGSO4 GIVEN.",
            &["BEA", "TURA"][..],
            &["BIGEMINY", "AWARE"][..],
        ),
        (
            "INR 6.0. Z. MILLER AWARE AND WILL FOLLOW",
            &["MILLER"],
            &["AWARE", "WILL"],
        ),
        (
            "daughter is mrs. marcela carlson, tel 201-561-8910.",
            &["marcela", "carlson", "8910"],
            &["tel", "daughter"],
        ),
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

#[test]
fn french_identity_lines_give_surname_and_first_name() {
    let r = redactor();
    let cases = [
        // Usual name, comma, birth name and first name; first names as common as words.
        (
            "TAILLARD, TAILLARD PIERRE\n08 . 04 . 1941",
            None,
            &["TAILLARD", "PIERRE"][..],
        ),
        (
            "Patient M. MENARD, Julien - né le 21/03/1950",
            Some("fr"),
            &["MENARD", "Julien"],
        ),
        // Surnames in capitals beside a first name, in either order, on a line in capitals.
        (
            "TRAITEMENT EN SC 3 MOIS  LIMONE Félicia  3 0 0 3 2 0 2 1",
            Some("fr"),
            &["LIMONE", "Félicia"],
        ),
        // Labels followed by a colon, with or without a number.
        (
            "Patients discutés : Patient 1: Azila Marie | 12/05/1973",
            Some("fr"),
            &["Azila", "Marie"],
        ),
        (
            "Fax: 09 19 39 12 00 Patiente: M. DAUBERT | F |",
            Some("fr"),
            &["DAUBERT"],
        ),
        // Compound initials after a title.
        (
            "Dr R-L. BOULEVANT 05.21.16.18.29",
            Some("fr"),
            &["BOULEVANT"],
        ),
        (
            "Patient Ph. ROCHE, Téléphone : 08 09 83 43 66.",
            Some("fr"),
            &["ROCHE"],
        ),
    ];
    for (text, lang, names) in cases {
        let out = r.redact_in(text, lang).text;
        for name in names {
            assert!(!out.contains(name), "{name} survived in {out:?}");
        }
    }
}

#[test]
fn english_notes_in_capitals_keep_their_findings() {
    // Pupils, limbs and the abdomen: first names in the lists, not names here.
    let r = redactor();
    // Neither in English nor when the language is unknown (redact() without one).
    for lang in [Some("en"), None] {
        for text in [
            "NEURO: PERL, MAE, FOLLOWS COMMANDS.",
            "GI: ABD DISTENDED WITH POS BS. NO BM TODAY.",
            "Patient NIR 123 stable",
            "Patient: stable overnight",
        ] {
            let out = r.redact_in(text, lang);
            assert!(
                out.findings.iter().all(|f| f.kind != "PERSON"),
                "{text:?} ({lang:?}) gave {:?}",
                out.findings
            );
        }
    }
}

#[test]
fn ordinary_words_beside_names_stay() {
    let r = redactor();
    let cases = [
        // A plural after a number is no initial.
        (
            "BP DROPPED TO LOW 80'S. PACER INCREASED UP TO 94.",
            &["PACER"][..],
        ),
        // A name keeps its case; prepositions are never names.
        (
            "Patient and family seen by Dr Vining early this am.",
            &["early this am"],
        ),
        ("spoke to Dr. Wisniewski via phone", &["via phone"]),
        (
            "Updated pt's daughter via telephone last pm.",
            &["via telephone"],
        ),
    ];
    for (text, kept) in cases {
        let out = r.redact_in(text, Some("en")).text;
        for k in kept {
            assert!(out.contains(k), "{k:?} was redacted in {out:?}");
        }
    }
    // The names themselves still go.
    let out = r
        .redact_in("seen by Dr Vining early this am", Some("en"))
        .text;
    assert!(!out.contains("Vining"), "{out:?}");
}
