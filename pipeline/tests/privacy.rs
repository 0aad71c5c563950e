//! Privacy as a tested property: a post full of identifiers goes through `vigie screen`
//! (the real binary, with debug logs in JSON and a tiny model so the risk stage runs too)
//! and neither the three output files nor stdout/stderr contain any identifier.

use std::process::Command;

use vigie_pipeline::testing::write_tiny_model;

const SECRETS: &[&str] = &[
    "1 85 05 75 123 456 73", // NIR with a valid key
    "943 476 5919",          // NHS number (valid mod 11)
    "+221 77 123 45 67",     // Senegalese mobile
    "awa.diop@example.sn",
    "06 12 34 56 78",
    "Fatou Ndiaye",
];

#[test]
fn identifiers_reach_no_output_and_no_log() {
    let dir = tempfile::tempdir().unwrap();
    let (model_dir, head) = write_tiny_model(&dir.path().join("model"));
    let config = dir.path().join("vigie.toml");
    std::fs::write(&config, format!("[risk]\nhead = {:?}\n", head.display().to_string())).unwrap();

    let text = format!(
        "Patient NIR {}, NHS {}, joignable au {} ou {} ; la patiente {} a rappelé au {}",
        SECRETS[0], SECRETS[1], SECRETS[2], SECRETS[3], SECRETS[5], SECRETS[4]
    );
    let good = serde_json::json!({"id": "p1", "text": text, "channel": "message"}).to_string();
    // The same identifiers in inputs that cannot be parsed: they are rejected, not leaked.
    let broken = format!("{{\"id\":\"p2\",\"text\":\"{text}\"");
    let bad_channel = serde_json::json!({"id": "p3", "text": text, "channel": SECRETS[2]}).to_string();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, format!("{good}\n{broken}\n{bad_channel}\n")).unwrap();
    let out = dir.path().join("out");

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
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "vigie failed: {stderr}");

    let screened = std::fs::read_to_string(out.join("screened.jsonl")).unwrap();
    let moderation = std::fs::read_to_string(out.join("moderation.jsonl")).unwrap();
    let rejected = std::fs::read_to_string(out.join("rejected.jsonl")).unwrap();
    assert_eq!(screened.lines().count(), 1);
    assert_eq!(moderation.lines().count(), 1, "a post with identifiers goes to moderators");
    assert_eq!(rejected.lines().count(), 2);
    let record: serde_json::Value = serde_json::from_str(screened.lines().next().unwrap()).unwrap();
    let kinds: Vec<&str> = record["redactions"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    for kind in ["NATIONAL_ID", "PHONE", "EMAIL", "PERSON"] {
        assert!(kinds.contains(&kind), "{kind} not redacted: {kinds:?}");
    }
    assert!(record["risk"]["score"].is_number(), "the risk stage ran");

    for (name, content) in [("screened", &screened), ("moderation", &moderation), ("rejected", &rejected), ("stdout", &stdout.to_string()), ("logs", &stderr.to_string())] {
        for secret in SECRETS {
            assert!(!content.contains(secret), "{secret:?} leaked into {name}:\n{content}");
        }
    }
    assert!(stderr.contains("pipeline ready"), "logs were captured: {stderr}");
}
