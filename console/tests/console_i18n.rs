//! The console in French and English: every page and CSV export rendered in both, the
//! language taken from the person's choice (cookie) or the browser's Accept-Language,
//! and no English text left on a French page.

mod session;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use chrono::{Duration, Utc};
use tower::ServiceExt;

use vigie_console::i18n::{missing, FRENCH};
use vigie_console::{
    router, AppState, ConsoleSettings, DecisionInput, DecisionPublisher, LexicalEmbedder, Role,
    Store,
};
use vigie_pipeline::stages::redaction::RedactionStage;
use vigie_pipeline::testing::moderation_record as record;
use vigie_rules::{ReplaceMode, RuleSet};

async fn get(
    app: &Router,
    uri: &str,
    cookie: &str,
    accept_language: &str,
) -> (StatusCode, String, String) {
    let req = Request::builder()
        .uri(uri)
        .header(header::COOKIE, cookie)
        .header(header::ACCEPT_LANGUAGE, accept_language)
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let lang = res
        .headers()
        .get(header::CONTENT_LANGUAGE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, lang, String::from_utf8_lossy(&body).into_owned())
}

/// Visible text of a page: tags and attribute values other than labels left out.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// `phrase` as whole words in `text` ("Lang" is not in "Langue").
fn contains_words(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[tokio::test]
async fn every_page_renders_in_french_and_english() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("console.db")).unwrap());
    let now = Utc::now();
    store
        .add_user("root", Role::Admin, "root password 123", "test", now)
        .unwrap();
    store
        .import(
            &[
                record(
                    "m1",
                    "fr",
                    "Le vaccin ROR provoque l'autisme",
                    true,
                    "2024-05-01T09:00:00Z",
                ),
                record(
                    "m2",
                    "en",
                    "The MMR vaccine causes autism",
                    true,
                    "2024-05-02T09:00:00Z",
                ),
                record(
                    "m3",
                    "fr",
                    "Le vaccin rend stérile",
                    true,
                    "2024-05-02T10:00:00Z",
                ),
            ],
            &LexicalEmbedder,
            "test",
            now,
        )
        .unwrap();
    // One decided item and one claimed item, so every part of the item page shows.
    store
        .claim("m1", "root", now, Duration::minutes(15))
        .unwrap();
    store
        .decide(
            "m1",
            "root",
            &DecisionInput {
                decision: "rumour".into(),
                reason: "rumeur connue".into(),
                claim_id: None,
                new_claim: Some("le vaccin ROR cause l'autisme".into()),
            },
            &LexicalEmbedder,
            now,
        )
        .unwrap();
    store
        .claim("m2", "root", now, Duration::minutes(15))
        .unwrap();
    let state = AppState::new(
        store.clone(),
        Arc::new(LexicalEmbedder),
        RedactionStage::new(RuleSet::builtin().unwrap(), 0.5, ReplaceMode::Placeholder),
        ConsoleSettings {
            secure_cookies: false,
            ..Default::default()
        },
        DecisionPublisher::default(),
    );
    let app = router(state);
    let session = session::sign_in(&app, "root", "root password 123").await;

    let pages = [
        "/login",
        "/queue",
        "/items/m1",
        "/items/m2",
        "/items/m3",
        "/tracker",
        "/report/weekly?end=2024-05-07",
        "/audit",
    ];
    let csvs = [
        "/queue.csv",
        "/tracker.csv",
        "/volume.csv",
        "/audit.csv",
        "/report/weekly.csv?end=2024-05-07",
    ];
    // English words that must not be left on French pages: every catalogue entry whose
    // French differs, as whole phrases of at least two words or a capitalised word.
    let english: Vec<&str> = FRENCH
        .iter()
        .filter(|(en, fr)| {
            en != fr && (en.contains(' ') || en.chars().next().is_some_and(char::is_uppercase))
        })
        .filter(|(en, _)| en.chars().count() >= 4 && !en.contains('{'))
        .map(|(en, _)| *en)
        .collect();

    for path in pages.iter().chain(&csvs) {
        // By Accept-Language.
        let (status, lang, fr) = get(&app, path, &session, "fr-CA,fr;q=0.9,en;q=0.5").await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(lang, "fr", "{path}");
        let (_, lang, en) = get(&app, path, &session, "en-GB,en;q=0.9").await;
        assert_eq!(lang, "en", "{path}");
        assert_ne!(fr, en, "{path} is the same in both languages");
        if !path.contains(".csv") {
            assert!(fr.contains(r#"<html lang="fr">"#), "{path}");
            let text = visible_text(&fr);
            for phrase in &english {
                assert!(
                    !contains_words(&text, phrase),
                    "{path} in French still says {phrase:?}"
                );
            }
        }
        // The person's choice (cookie) wins over the browser.
        let (_, lang, chosen) = get(&app, path, &format!("{session}; vigie_lang=fr"), "en").await;
        assert_eq!(lang, "fr", "{path}");
        assert_eq!(chosen.lines().next(), fr.lines().next(), "{path}");
    }
    assert!(missing().is_empty(), "no French for: {:?}", missing());

    // French numbers use a decimal comma; the language links set the cookie.
    let (_, _, queue) = get(&app, "/queue", &session, "fr").await;
    assert!(queue.contains("0,"), "risk scores in French notation");
    let req = Request::builder()
        .uri("/lang/fr")
        .header(header::REFERER, "http://console.example/tracker")
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[header::LOCATION], "/tracker");
    assert!(res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .starts_with("vigie_lang=fr"));
}
