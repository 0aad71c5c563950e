//! Privacy as a tested property: a post full of identifiers goes through `vigie screen`
//! (the real binary, with debug logs in JSON and a tiny model so the risk stage runs too)
//! and neither the three output files nor stdout/stderr contain any identifier; then
//! through the console (import, every page, API and CSV export, the server's trace logs
//! and the database file), which contain none either.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigie_pipeline::testing::write_tiny_model;

const SECRETS: &[&str] = &[
    "1 85 05 75 123 456 73", // NIR with a valid key
    "943 476 5919",          // NHS number (valid mod 11)
    "+221 77 123 45 67",     // Senegalese mobile
    "awa.diop@example.sn",
    "06 12 34 56 78",
    "Fatou Ndiaye",
];

/// Screens the post full of identifiers (and two broken copies) into `dir/out`;
/// returns the output directory, stdout and stderr.
fn screen_secret_post(dir: &Path) -> (PathBuf, String, String) {
    let (model_dir, head) = write_tiny_model(&dir.join("model"));
    let config = dir.join("vigie.toml");
    std::fs::write(
        &config,
        // The tiny random model has no claim gate or stance head of its own (the built-in
        // ones read multilingual-e5-small embeddings).
        format!(
            "[risk]\nhead = {:?}\nclaim_gate = false\nstance_head_enabled = false\n",
            head.display().to_string()
        ),
    )
    .unwrap();

    let text = format!(
        "Patient NIR {}, NHS {}, joignable au {} ou {} ; la patiente {} a rappelé au {}",
        SECRETS[0], SECRETS[1], SECRETS[2], SECRETS[3], SECRETS[5], SECRETS[4]
    );
    let good = serde_json::json!({"id": "p1", "text": text, "channel": "message"}).to_string();
    // The same identifiers in inputs that cannot be parsed: they are rejected, not leaked.
    let broken = format!("{{\"id\":\"p2\",\"text\":\"{text}\"");
    let bad_channel =
        serde_json::json!({"id": "p3", "text": text, "channel": SECRETS[2]}).to_string();
    // The same identifiers shaped to slip past patterns: invisible characters inside,
    // other scripts' digits, full-width digits, soft hyphens, a line break in an address;
    // the author and metadata hold them too (they never reach an output).
    let disguised = format!(
        "NIR {}, NHS {}, tel {} ou {} ; mail {} ; la patiente {}",
        "1 85\u{200B} 05 75\u{2060} 123 456\u{FEFF} 73",
        "９４３ ４７６ ５９１９",
        "+٢٢١ ٧٧ ١٢٣ ٤٥ ٦٧",
        "06\u{AD}12\u{AD}34\u{AD}56\u{AD}78",
        "awa.di\nop@example.sn",
        "Fa\u{200C}tou Nd\u{200D}iaye",
    );
    let shaped = serde_json::json!({
        "id": "p4", "text": disguised, "channel": "forum",
        "author": SECRETS[5], "metadata": {"phone": SECRETS[4], "mail": SECRETS[3]},
    })
    .to_string();
    // Identifiers in the fields copied into records: refused, with nothing quoted.
    let id_exposes =
        serde_json::json!({"id": SECRETS[3], "text": "rdv jeudi", "channel": "forum"}).to_string();
    let country_exposes = serde_json::json!(
        {"id": "p6", "text": "rdv jeudi", "channel": "forum", "country": SECRETS[4]}
    )
    .to_string();
    let input = dir.join("in.jsonl");
    std::fs::write(
        &input,
        format!("{good}\n{broken}\n{bad_channel}\n{shaped}\n{id_exposes}\n{country_exposes}\n"),
    )
    .unwrap();
    let out = dir.join("out");

    let output = Command::new(env!("CARGO_BIN_EXE_vigie"))
        .args(["--log-format", "json", "screen", "--input"])
        .arg(&input)
        .arg("--out-dir")
        .arg(&out)
        .arg("--config")
        .arg(&config)
        .arg("--model-dir")
        .arg(&model_dir)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "vigie failed: {stderr}");
    (out, stdout, stderr)
}

#[test]
fn identifiers_reach_no_output_and_no_log() {
    let dir = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = screen_secret_post(dir.path());

    let screened = std::fs::read_to_string(out.join("screened.jsonl")).unwrap();
    let moderation = std::fs::read_to_string(out.join("moderation.jsonl")).unwrap();
    let rejected = std::fs::read_to_string(out.join("rejected.jsonl")).unwrap();
    assert_eq!(screened.lines().count(), 2);
    assert_eq!(
        moderation.lines().count(),
        2,
        "a post with identifiers goes to moderators"
    );
    assert_eq!(rejected.lines().count(), 4);
    let reasons: Vec<String> = rejected
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["reason"].to_string())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("identifier_in_id")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("invalid_field")),
        "{reasons:?}"
    );
    let record: serde_json::Value = serde_json::from_str(screened.lines().next().unwrap()).unwrap();
    let kinds: Vec<&str> = record["redactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    for kind in ["NATIONAL_ID", "PHONE", "EMAIL", "PERSON"] {
        assert!(kinds.contains(&kind), "{kind} not redacted: {kinds:?}");
    }
    assert!(record["risk"]["score"].is_number(), "the risk stage ran");

    for (name, content) in [
        ("screened", &screened),
        ("moderation", &moderation),
        ("rejected", &rejected),
        ("stdout", &stdout.to_string()),
        ("logs", &stderr.to_string()),
    ] {
        assert_no_secret(name, content);
    }
    assert!(
        stderr.contains("pipeline ready"),
        "logs were captured: {stderr}"
    );
}

/// No secret in `content`, as written or disguised: the content is read as the rules read
/// text (invisible characters dropped, digits of every script folded, NFKC), JSON escapes
/// resolved, and compared with spaces and line breaks taken out of both.
fn assert_no_secret(name: &str, content: &str) {
    let unescaped = content
        .replace("\\n", "\n")
        .replace("\\r", "\r")
        .replace("\\u00ad", "\u{ad}");
    let squeeze = |s: &str| -> String {
        vigie_rules::normalise::normalised(s)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect()
    };
    let seen = squeeze(&unescaped);
    for secret in SECRETS {
        assert!(
            !content.contains(secret),
            "{secret:?} leaked into {name}:\n{content}"
        );
        assert!(
            !seen.contains(&squeeze(secret)),
            "{secret:?} leaked, disguised, into {name}:\n{content}"
        );
    }
}

fn vigie(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigie"));
    c.args(args).env("RUST_LOG", "trace");
    c
}

/// One HTTP/1.1 exchange over a plain socket; returns the raw response.
fn http(addr: &str, method: &str, path: &str, cookie: Option<&str>, form: Option<&str>) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let body = form.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if form.is_some() {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: {c}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}

/// Kills the console when the test ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn identifiers_reach_no_console_page_export_log_or_database() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _, _) = screen_secret_post(dir.path());
    let db = dir.path().join("console.db");
    let db_arg = db.to_str().unwrap();
    let moderation = out.join("moderation.jsonl");
    let import = vigie(&[
        "console",
        "import",
        moderation.to_str().unwrap(),
        "--db",
        db_arg,
        "--lexical",
    ])
    .output()
    .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let mut add = vigie(&[
        "console", "add-user", "root", "--role", "admin", "--db", db_arg,
    ])
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"root password 123\n")
        .unwrap();
    assert!(add.wait().unwrap().success());
    // A raw post is refused by the import: only redacted records get in.
    let raw = dir.path().join("in.jsonl");
    let refused = vigie(&[
        "console",
        "import",
        raw.to_str().unwrap(),
        "--db",
        db_arg,
        "--lexical",
    ])
    .output()
    .unwrap();
    assert!(!refused.status.success());

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let logs = dir.path().join("console.log");
    let server = Server(
        vigie(&[
            "--log-format",
            "json",
            "console",
            "serve",
            "--listen",
            &addr,
            "--db",
            db_arg,
            "--lexical",
        ])
        .stderr(std::fs::File::create(&logs).unwrap())
        .spawn()
        .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the console did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let login = http(
        &addr,
        "POST",
        "/login",
        None,
        Some("username=root&password=root+password+123"),
    );
    let cookie = login
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie: {login}"))
        .to_string();
    let mut seen = String::new();
    for path in [
        "/queue",
        "/items/p1",
        "/tracker",
        "/audit",
        "/queue.csv",
        "/tracker.csv",
        "/audit.csv",
        "/api/queue",
        "/api/items/p1",
        "/api/rumours",
    ] {
        let page = http(&addr, "GET", path, Some(&cookie), None);
        assert!(
            page.starts_with("HTTP/1.1 200"),
            "{path}: {}",
            page.lines().next().unwrap_or("")
        );
        seen.push_str(&page);
    }
    assert!(
        seen.contains("[NIR]") || seen.contains("[NATIONAL_ID]") || seen.contains("[PHONE]"),
        "the pages show the redacted post"
    );
    drop(server);
    let logs = std::fs::read_to_string(&logs).unwrap();
    // With the server killed, recent writes may still sit in the write-ahead log.
    let mut database = String::from_utf8_lossy(&std::fs::read(&db).unwrap()).into_owned();
    if let Ok(wal) = std::fs::read(dir.path().join("console.db-wal")) {
        database.push_str(&String::from_utf8_lossy(&wal));
    }
    assert!(database.contains("p1"), "the database holds the item");
    for (name, content) in [
        ("pages", &seen),
        ("console logs", &logs),
        ("database file", &database),
    ] {
        assert_no_secret(name, content);
    }
    assert!(logs.contains("console ready"), "logs were captured");
}
