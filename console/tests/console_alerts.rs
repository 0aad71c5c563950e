//! Rumour alerts end to end: a rumour that spikes in the stream (assertions and people
//! asking whether it is true) raises alerts by the config's rules, the tracker shows them,
//! a local webhook receiver gets them signed (after a failed first try, retried), and a
//! steady rumour raises none. The weekly report gives the fact-check and a response.

mod session;

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::{Duration, Utc};
use tower::ServiceExt;

use vigie_console::alerts::{self, AlertPayload, SIGNATURE_HEADER};
use vigie_console::{
    router, Alerting, AppState, ConsoleSettings, DecisionPublisher, LexicalEmbedder, Role, Store,
};
use vigie_pipeline::config::AlertsConfig;
use vigie_pipeline::contract::{MatchedClaim, Stance};
use vigie_pipeline::stages::redaction::RedactionStage;
use vigie_pipeline::testing::{moderation_record, rumour_signal_record};
use vigie_rules::{ReplaceMode, RuleSet};

const SECRET: &str = "shared secret for the test receiver";

#[derive(Default)]
struct Receiver {
    /// (signature header, body) of every POST answered 200.
    accepted: Vec<(String, Bytes)>,
    /// POSTs answered 503 (the receiver is "down" for the first one).
    refused: usize,
}

async fn start_receiver() -> (String, Arc<Mutex<Receiver>>) {
    let state = Arc::new(Mutex::new(Receiver::default()));
    let shared = state.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let state = shared.clone();
            async move {
                let mut s = state.lock().unwrap();
                if s.refused == 0 {
                    s.refused += 1;
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let sig = headers
                    .get(SIGNATURE_HEADER)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                s.accepted.push((sig, body));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), state)
}

fn sterility_claim() -> MatchedClaim {
    MatchedClaim {
        id: "vaccine-infertility".into(),
        similarity: 0.93,
        topic: "vaccines".into(),
        lang: "en".into(),
        text: "COVID-19 vaccines cause infertility.".into(),
        verdict: "false".into(),
        correction: "Studies of millions of vaccinated people found no effect on fertility.".into(),
        source_url: "https://factuel.example.org/vaccins-fertilite".into(),
    }
}

fn rfc(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The stream: a rumour that simmered for three days then spiked in the last hour, with
/// as many people asking about it; and a rumour that runs steadily at two posts an hour.
fn stream(now: chrono::DateTime<Utc>) -> Vec<vigie_pipeline::contract::ScreenedRecord> {
    let mut records = Vec::new();
    let assertions = [
        ("fr", "le vaccin rend les femmes stériles, partagez"),
        ("en", "the covid vaccine makes women infertile, share this"),
        ("fr", "ATTENTION le vaccin covid rend sterile !!"),
        ("en", "Vaccine = infertility. They don't tell you"),
    ];
    let questions = [
        ("fr", "c'est vrai que le vaccin rend stérile ?"),
        ("en", "is it true the vaccine causes infertility?"),
        ("fr", "ma voisine dit que le vaccin rend stérile, c vrai ?"),
    ];
    for i in 0..6 {
        let (lang, text) = assertions[i % assertions.len()];
        let mut r = moderation_record(
            &format!("old-{i}"),
            lang,
            text,
            true,
            &rfc(now - Duration::hours(12 * (i as i64 + 1))),
        );
        r.risk.as_mut().unwrap().claims = vec![sterility_claim()];
        records.push(r);
    }
    for i in 0..6 {
        let (lang, text) = assertions[i % assertions.len()];
        let mut r = moderation_record(
            &format!("spike-{i}"),
            lang,
            text,
            true,
            &rfc(now - Duration::minutes(5 * i as i64 + 1)),
        );
        r.risk.as_mut().unwrap().claims = vec![sterility_claim()];
        records.push(r);
        let (lang, text) = questions[i % questions.len()];
        records.push(rumour_signal_record(
            &format!("question-{i}"),
            lang,
            text,
            Stance::Queries,
            Some(sterility_claim()),
            &rfc(now - Duration::minutes(5 * i as i64 + 3)),
        ));
    }
    for i in 0..96 {
        records.push(moderation_record(
            &format!("steady-{i}"),
            "en",
            "5G towers spread the coronavirus, turn them off",
            true,
            &rfc(now - Duration::minutes(30 * i + 7)),
        ));
    }
    records
}

async fn get(app: &Router, uri: &str, cookie: &str, lang: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .uri(uri)
        .header(header::COOKIE, cookie)
        .header(header::ACCEPT_LANGUAGE, lang)
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_spike_raises_an_alert_on_the_tracker_and_at_the_webhook() {
    let (hook, receiver) = start_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("console.db")).unwrap());
    let now = Utc::now();
    store
        .add_user("aminata", Role::Staff, "staff password 123", "test", now)
        .unwrap();
    let report = store
        .import(&stream(now), &LexicalEmbedder, "test", now)
        .unwrap();
    assert_eq!(report.signals, 6, "questions are tracked, not queued");
    assert!(
        store
            .queue(&Default::default(), 1000)
            .unwrap()
            .iter()
            .all(|i| !i.id.starts_with("question-")),
        "rumour signals never enter the moderators' queue"
    );

    // The questions joined the assertions' rumour through the matched claim.
    let rumours = store.rumours().unwrap();
    let spiking = rumours
        .iter()
        .find(|r| r.claim_id.as_deref() == Some("vaccine-infertility"))
        .unwrap();
    assert_eq!(
        (spiking.posts, spiking.signals, spiking.questions),
        (18, 6, 6)
    );
    let steady = rumours.iter().find(|r| r.title.starts_with("5G")).unwrap();
    assert_eq!(steady.posts, 96);

    let config = AlertsConfig {
        webhook_url: Some(hook),
        console_url: Some("https://console.example.org".into()),
        ..AlertsConfig::default()
    };
    let refused = Alerting::from_config(&config, None)
        .err()
        .expect("a webhook needs its secret");
    assert!(
        refused.to_string().contains("VIGIE_ALERT_WEBHOOK_SECRET"),
        "{refused}"
    );
    let alerting = Arc::new(Alerting::from_config(&config, Some(SECRET)).unwrap());

    let raised = alerting.check(&store, now).unwrap();
    let alerts = store.alerts_since(now - Duration::hours(1)).unwrap();
    assert_eq!(raised.len(), 2, "{alerts:?}");
    let mut rules: Vec<&str> = alerts.iter().map(|a| a.rule.as_str()).collect();
    rules.sort();
    assert_eq!(rules, ["information-void", "spike"]);
    assert!(
        alerts.iter().all(|a| a.rumour == spiking.id),
        "the steady rumour raises none"
    );
    let spike = alerts.iter().find(|a| a.rule == "spike").unwrap();
    assert_eq!(spike.figures.recent, 12);
    assert!(spike.figures.velocity >= 3.0 && spike.figures.question_share == 0.5);
    assert_eq!(spike.figures.languages, 2);
    assert!(
        alerting
            .check(&store, now + Duration::minutes(1))
            .unwrap()
            .is_empty(),
        "one alert per cool-down"
    );

    // The receiver is down for the first POST: that alert stays undelivered, is tried
    // again once its back-off has passed, and both arrive signed.
    assert_eq!(alerting.deliver(&store, now).await, 1);
    let waiting = store.alerts_since(now - Duration::hours(1)).unwrap();
    let failed: Vec<_> = waiting
        .iter()
        .filter(|a| a.delivered_at.is_none())
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].attempts, failed[0].last_error.as_str()),
        (1, "webhook answered 503")
    );
    assert_eq!(
        alerting.deliver(&store, now).await,
        0,
        "not retried before its back-off"
    );
    assert_eq!(
        alerting.deliver(&store, now + Duration::minutes(1)).await,
        1
    );
    assert!(store
        .alerts_since(now - Duration::hours(1))
        .unwrap()
        .iter()
        .all(|a| a.delivered_at.is_some()));

    let got = receiver.lock().unwrap().accepted.clone();
    assert_eq!(got.len(), 2);
    let mut delivered_ids = Vec::new();
    for (sig, body) in &got {
        assert!(
            alerts::verify(SECRET.as_bytes(), sig, body, Utc::now().timestamp(), 300),
            "bad signature {sig}"
        );
        assert!(!alerts::verify(
            b"another secret",
            sig,
            body,
            Utc::now().timestamp(),
            300
        ));
        let payload: AlertPayload = serde_json::from_slice(body).unwrap();
        assert_eq!(payload.kind, "vigie.rumour_alert");
        assert_eq!(payload.rumour.id, spiking.id);
        assert_eq!(
            payload.rumour.fact_check_url,
            "https://factuel.example.org/vaccins-fertilite"
        );
        assert_eq!(
            payload.rumour.tracker_url.as_deref(),
            Some(format!("https://console.example.org/tracker#rumour-{}", spiking.id).as_str())
        );
        assert!(!payload.condition.is_empty());
        delivered_ids.push(payload.alert_id);
    }
    delivered_ids.sort();
    let mut expected: Vec<i64> = alerts.iter().map(|a| a.id).collect();
    expected.sort();
    assert_eq!(delivered_ids, expected, "each alert delivered once");

    // Staff see the alerts on the tracker, in either language.
    let state = AppState::new(
        store.clone(),
        Arc::new(LexicalEmbedder),
        RedactionStage::new(RuleSet::builtin().unwrap(), 0.5, ReplaceMode::Placeholder),
        ConsoleSettings {
            secure_cookies: false,
            ..Default::default()
        },
        DecisionPublisher::default(),
    )
    .with_alerting(alerting.clone());
    let app = router(state);
    let session = session::sign_in(&app, "aminata", "staff password 123").await;
    let (status, page) = get(&app, "/tracker", &session, "en").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.matches("data-alert=").count(), 2, "both alerts listed");
    assert!(
        page.contains(&format!(
            r#"id="rumour-{}" data-rumour="{}" class="alerted""#,
            spiking.id, spiking.id
        )),
        "the spiking rumour is marked"
    );
    assert!(
        page.contains(&format!(
            r#"id="rumour-{}" data-rumour="{}">"#,
            steady.id, steady.id
        )),
        "the steady rumour is not"
    );
    assert!(
        page.contains("recent &gt;= 5 and velocity &gt;= 3"),
        "the rules are shown"
    );
    let (_, french) = get(&app, "/tracker", &session, "fr").await;
    assert!(french.contains("Alertes") && french.contains("Vélocité"));

    // The weekly report: counts, the fact-check and a response to adapt, as a page and CSV.
    let (status, weekly) = get(&app, "/report/weekly", &session, "en").await;
    assert_eq!(status, StatusCode::OK);
    assert!(weekly.contains(&format!(r#"id="report-{}""#, spiking.id)));
    assert!(weekly.contains("This is false.") && weekly.contains("no effect on fertility"));
    assert!(weekly.contains(r#"href="https://factuel.example.org/vaccins-fertilite""#));
    let (_, french) = get(&app, "/report/weekly", &session, "fr").await;
    assert!(
        french.contains("C&#39;est faux.") || french.contains("C'est faux."),
        "French response"
    );
    let (status, csv) = get(
        &app,
        &format!("/report/weekly.csv?end={}", now.date_naive()),
        &session,
        "en",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header = rows.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let row = rows
        .records()
        .map(Result::unwrap)
        .find(|r| r[col("id")] == spiking.id.to_string())
        .unwrap();
    assert_eq!(&row[col("posts_this_week")], "18");
    assert!(
        row[col("suggested_response")].contains("https://factuel.example.org/vaccins-fertilite")
    );
    let (status, _) = get(&app, "/report/weekly?end=yesterday", &session, "en").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
