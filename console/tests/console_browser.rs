//! The console in a real browser: headless Chromium driven through ChromeDriver
//! (WebDriver, via fantoccini). A moderator signs in, claims an item, marks it as a
//! rumour with the keyboard shortcut, and sees the rumour tracker update; an admin
//! changes the rumour's status and reads the audit log. Screenshots of every page go to
//! `target/tmp/console-screenshots/` (or `$VIGIE_SCREENSHOTS`), and axe-core (installed by
//! `scripts/setup`, or `$VIGIE_AXE`) checks every one of those pages against WCAG 2.1 A
//! and AA: a serious or critical violation fails the test.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/setup` installs them).
//! Without them the test says so and passes, unless `VIGIE_REQUIRE_BROWSER` is set, as
//! `scripts/test` (and so CI) does.
//!
//! `VIGIE_CONSOLE_RECORDS=out/moderation.jsonl:out/rumours.jsonl` tours real screening output instead of
//! the built-in records (with `VIGIE_CONSOLE_MODEL=1`, clustered by the model): that is
//! how the README's screenshots are made.

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use fantoccini::{Client, ClientBuilder, Locator};

use vigie_console::{
    router, AppState, ConsoleSettings, DecisionPublisher, Embedder, LexicalEmbedder, ModelEmbedder,
    Role, Store,
};
use vigie_pipeline::stages::redaction::RedactionStage;
use vigie_pipeline::testing::moderation_record as record;
use vigie_rules::{ReplaceMode, RuleSet};

fn find(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    std::env::var_os(env)
        .map(PathBuf::from)
        .or_else(|| candidates.iter().map(PathBuf::from).find(|p| p.is_file()))
}

/// Kills ChromeDriver when the test ends, however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_driver(chromedriver: &Path) -> (Driver, String) {
    let port = free_port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
    let driver = Driver(child);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not open port {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (driver, url)
}

async fn browser(driver_url: &str, chromium: &Path, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            // The machine has no network: Chromium's background services are switched off
            // so that it does not stall on them.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1280,1000", format!("--user-data-dir={}", profile.display())],
        }),
    );
    ClientBuilder::native()
        .capabilities(caps)
        .connect(driver_url)
        .await
        .expect("a WebDriver session")
}

/// The weekly report's address for the week that ends with the last record's day.
fn report_of_the_last_week() -> String {
    let last = records()
        .iter()
        .map(|r| r.created_at.unwrap_or(r.processed_at).date_naive())
        .max()
        .expect("records");
    format!("/report/weekly?end={last}")
}

fn records() -> Vec<vigie_pipeline::contract::ScreenedRecord> {
    // One file or several, joined like PATH (moderation.jsonl:rumours.jsonl).
    if let Some(paths) = std::env::var_os("VIGIE_CONSOLE_RECORDS") {
        let mut records = Vec::new();
        for path in std::env::split_paths(&paths) {
            let text = std::fs::read_to_string(&path).expect("VIGIE_CONSOLE_RECORDS");
            records.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| serde_json::from_str(l).expect("a screened record")),
            );
        }
        return records;
    }
    vec![
        record("fr-01", "fr", "Attention : le vaccin ROR provoque l'autisme chez les enfants, ne faites pas vacciner vos petits !", true, "2024-05-01T08:15:00Z"),
        record("fr-21", "fr", "ATTENTION partagez : le vaccin ROR provoque l'autisme chez nos enfants.", true, "2024-05-03T18:05:00Z"),
        record("en-17", "en", "The MMR vaccine causes autism in children, do not let them vaccinate your kids!", true, "2024-05-02T14:20:00Z"),
        record("fr-23", "fr", "Les antennes 5G propagent le coronavirus dans les grandes villes.", true, "2024-05-02T11:30:00Z"),
        record("fr-18", "fr", "Dr [PERSON] demande qu'on rappelle le [PHONE] pour l'enfant vu le [DATE].", false, "2024-05-04T09:00:00Z"),
    ]
}

fn embedder() -> Arc<dyn Embedder> {
    if std::env::var_os("VIGIE_CONSOLE_MODEL").is_some() {
        let dir = std::env::var_os("VIGIE_MODEL_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(vigie_models::encoder::default_model_dir);
        return Arc::new(ModelEmbedder::new(
            vigie_models::Encoder::load(&dir).expect("the model"),
        ));
    }
    Arc::new(LexicalEmbedder)
}

async fn serve(store: Arc<Store>, embedder: Arc<dyn Embedder>) -> String {
    let settings = ConsoleSettings {
        secure_cookies: false,
        ..Default::default()
    };
    let state = AppState::new(
        store,
        embedder,
        RedactionStage::new(RuleSet::builtin().unwrap(), 0.5, ReplaceMode::Placeholder),
        settings,
        DecisionPublisher::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    base
}

/// The tracker's row of the rumour with one confirmed post.
const CONFIRMED_ROW: &str = "//table[contains(@class,'rumours')]//tr[td[contains(@class,'confirmed')][normalize-space()='1']]";

/// Screenshots, and an accessibility check of every page screenshotted.
struct Shots(PathBuf, Option<String>);

impl Shots {
    async fn take(&self, c: &Client, name: &str) {
        let png = c.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
        std::fs::write(self.0.join(format!("{name}.png")), png).unwrap();
        if let Some(axe) = &self.1 {
            let problems = accessibility_problems(c, axe).await;
            assert!(
                problems.is_empty(),
                "{name}: axe-core finds serious or critical violations: {problems:#?}"
            );
        }
    }
}

/// axe-core's source: `$VIGIE_AXE`, or where `scripts/setup` installs it.
fn axe_source() -> Option<String> {
    let path = find(
        "VIGIE_AXE",
        &[concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../.tools/axe/node_modules/axe-core/axe.min.js"
        )],
    )?;
    std::fs::read_to_string(path).ok()
}

/// Runs axe-core (WCAG 2.x A and AA rules) on the current page; returns each serious or
/// critical violation with the elements it concerns.
async fn accessibility_problems(c: &Client, axe: &str) -> Vec<String> {
    c.execute(axe, vec![]).await.expect("axe-core loads");
    let script = r#"
        const done = arguments[arguments.length - 1];
        axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
          .then(r => done(r.violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ') + (v.nodes.length > 3 ? ' … ' + v.nodes.length + ' in all' : ''))))
          .catch(e => done(['axe failed: ' + e]));
    "#;
    let value = c
        .execute_async(script, vec![])
        .await
        .expect("axe-core runs");
    serde_json::from_value(value).expect("a list of violations")
}

async fn path_of(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_string()
}

async fn sign_in(c: &Client, base: &str, user: &str, password: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    c.find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    c.find(Locator::Css("form.login button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_path(c, |p| p != "/login").await;
}

async fn wait_for_path(c: &Client, ok: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let p = path_of(c).await;
        if ok(&p) {
            return;
        }
        assert!(Instant::now() < deadline, "stuck on {p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderator_decides_and_the_tracker_follows_in_a_real_browser() {
    let required = std::env::var_os("VIGIE_REQUIRE_BROWSER").is_some();
    let (Some(chromedriver), Some(chromium)) = (
        find("VIGIE_CHROMEDRIVER", &["/usr/bin/chromedriver"]),
        find("VIGIE_CHROMIUM", &["/usr/bin/chromium"]),
    ) else {
        assert!(!required, "VIGIE_REQUIRE_BROWSER is set but chromium / chromedriver are missing (apt-get install chromium chromium-driver)");
        eprintln!("SKIPPED: chromium and chromedriver not installed (scripts/setup installs them)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let axe = axe_source();
    assert!(
        axe.is_some() || !required,
        "VIGIE_REQUIRE_BROWSER is set but axe-core is missing (scripts/setup installs it)"
    );
    let shots = Shots(
        std::env::var_os("VIGIE_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")),
        axe,
    );
    std::fs::create_dir_all(&shots.0).unwrap();

    let store = Arc::new(Store::open(&dir.path().join("console.db")).unwrap());
    let now = Utc::now();
    store
        .add_user("amina", Role::Moderator, "amina password 1", "test", now)
        .unwrap();
    store
        .add_user("root", Role::Admin, "root password 12", "test", now)
        .unwrap();
    let embedder = embedder();
    store
        .import(&records(), embedder.as_ref(), "test", now)
        .unwrap();
    let base = serve(store.clone(), embedder).await;

    let (_driver, driver_url) = start_driver(&chromedriver).await;
    let c = browser(&driver_url, &chromium, &dir.path().join("profile")).await;

    // Signed out, the queue sends the browser to the sign-in page.
    c.goto(&format!("{base}/queue")).await.unwrap();
    assert_eq!(path_of(&c).await, "/login");
    shots.take(&c, "1-login").await;
    c.find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys("amina")
        .await
        .unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("not her password")
        .await
        .unwrap();
    c.find(Locator::Css("form.login button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let error = c
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("p.error"))
        .await
        .expect("an error message");
    assert!(error.text().await.unwrap().contains("wrong password"));

    sign_in(&c, &base, "amina", "amina password 1").await;
    assert_eq!(path_of(&c).await, "/queue");
    let rows = c
        .find_all(Locator::Css("table.queue tbody tr"))
        .await
        .unwrap();
    let open_before = rows.len();
    assert!(open_before >= 2, "the queue lists the imported items");
    let first = rows[0]
        .attr("data-item")
        .await
        .unwrap()
        .expect("rows name their item");
    shots.take(&c, "2-queue").await;

    // Claim the top item; its page shows the explanation and the decision form.
    rows[0]
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_path(&c, |p| p.starts_with("/items/")).await;
    let item = store.item(&first).unwrap();
    assert_eq!(
        item.locked_by.as_deref(),
        Some("amina"),
        "claiming locked the item"
    );
    let page = c.source().await.unwrap();
    assert!(page.contains("Why it is here") && page.contains("Risk score"));
    // Every decision says what it rested on.
    assert!(
        page.contains("Decision") && page.contains("health claim"),
        "{page}"
    );

    // Keyboard: `m` picks "mark as rumour" and moves to the reason box.
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("m")
        .await
        .unwrap();
    assert_eq!(
        c.find(Locator::Css("input[value=rumour]"))
            .await
            .unwrap()
            .prop("checked")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    let active = c.active_element().await.unwrap();
    assert_eq!(
        active.attr("name").await.unwrap().as_deref(),
        Some("reason")
    );
    active
        .send_keys("Debunked: large studies find no link (WHO fact sheet)")
        .await
        .unwrap();
    let suggested = c
        .find(Locator::Css("select[name=claim_id] option[selected]"))
        .await
        .ok();
    if suggested.is_none() {
        c.find(Locator::Css("input[name=new_claim]"))
            .await
            .unwrap()
            .send_keys("The MMR vaccine causes autism")
            .await
            .unwrap();
    }
    shots.take(&c, "3-item").await;
    c.find(Locator::Css("form#decide button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_path(&c, |p| p == "/queue").await;
    assert_eq!(
        c.find_all(Locator::Css("table.queue tbody tr"))
            .await
            .unwrap()
            .len(),
        open_before - 1,
        "the decided item left the queue"
    );
    assert_eq!(
        store.item(&first).unwrap().decision.as_deref(),
        Some("rumour")
    );

    // The tracker shows the rumour with one confirmed post, under a known claim: the new
    // one typed above, or the one the page suggested when the rumour already had one.
    c.goto(&format!("{base}/tracker")).await.unwrap();
    let row = c
        .find(Locator::XPath(CONFIRMED_ROW))
        .await
        .expect("a rumour with a confirmed post");
    assert!(
        row.find(Locator::Css("small.claim")).await.is_ok(),
        "the rumour is linked to a known claim"
    );
    if suggested.is_none() {
        assert!(
            row.text()
                .await
                .unwrap()
                .contains("The MMR vaccine causes autism"),
            "the new claim names the rumour"
        );
    }
    assert!(
        c.find(Locator::Css("svg.chart rect")).await.is_ok(),
        "the volume chart is drawn"
    );
    assert!(
        c.find(Locator::Css("svg.sparkline polyline")).await.is_ok(),
        "rumours have sparklines"
    );
    shots.take(&c, "4-tracker").await;
    c.find(Locator::Css("form.logout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_path(&c, |p| p == "/login").await;

    // The admin marks the rumour as debunked and finds everything in the audit log.
    sign_in(&c, &base, "root", "root password 12").await;
    c.goto(&format!("{base}/tracker")).await.unwrap();
    let row = c.find(Locator::XPath(CONFIRMED_ROW)).await.unwrap();
    row.find(Locator::Css("select[name=status]"))
        .await
        .unwrap()
        .select_by_value("debunked")
        .await
        .unwrap();
    row.find(Locator::Css("form.status button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The reloaded page shows the stored status (the browser's own selection is gone).
    let stored =
        format!("{CONFIRMED_ROW}//select[@name='status']/option[@selected and @value='debunked']");
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::XPath(&stored))
        .await
        .expect("the rumour is shown as debunked");
    c.goto(&format!("{base}/audit")).await.unwrap();
    let audit = c
        .find(Locator::Css("table.audit"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "login_failed",
        "claim",
        "decide:rumour",
        "Debunked: large studies find no link (WHO fact sheet)",
        "rumour_status",
    ] {
        assert!(audit.contains(expected), "the audit log lacks {expected}");
    }
    shots.take(&c, "5-audit").await;
    // The weekly rumour report (printable), from the tracker's link.
    c.goto(&format!("{base}/tracker")).await.unwrap();
    c.find(Locator::Css("section.alerts a[href='/report/weekly']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_path(&c, |p| p == "/report/weekly").await;
    // This week's report is empty for old sample posts: the week of the last post shows one.
    let last_week = report_of_the_last_week();
    c.goto(&format!("{base}{last_week}")).await.unwrap();
    assert!(
        c.find(Locator::Css("article.report-rumour blockquote.response"))
            .await
            .is_ok(),
        "the report gives a response for the week's rumours"
    );
    shots.take(&c, "6-report").await;
    c.goto(&format!("{base}/audit")).await.unwrap();

    // The same pages in French, chosen from the header's language links; each is checked
    // by axe-core again (labels and contrast in the other language).
    c.find(Locator::Css("nav.langs a[hreflang=fr]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_path(&c, |p| p == "/audit").await;
    let lang = c
        .find(Locator::Css("html"))
        .await
        .unwrap()
        .attr("lang")
        .await
        .unwrap();
    assert_eq!(lang.as_deref(), Some("fr"));
    shots.take(&c, "5-audit-fr").await;
    for (path, name) in [("/queue", "2-queue-fr"), ("/tracker", "4-tracker-fr")] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        shots.take(&c, name).await;
    }
    let first_item = c.find(Locator::Css("table.rumours td.text")).await.is_ok();
    assert!(first_item, "the tracker lists the rumour in French too");
    c.goto(&format!("{base}{last_week}")).await.unwrap();
    shots.take(&c, "6-report-fr").await;
    c.close().await.unwrap();
    eprintln!("screenshots in {}", shots.0.display());
}
