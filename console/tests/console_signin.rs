//! Sign-in abuse and slow clients, over real TCP connections from distinct loopback
//! addresses: a password-guessing run on one account is slowed to a few guesses a minute
//! and then locked (audited), while another user signs in every time; clients that send
//! half a request are cut off by the timeouts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use vigie_console::{
    router, serve, AppState, ConsoleSettings, DecisionPublisher, LexicalEmbedder, LoginOutcome,
    Role, ServeLimits, Store, ThrottlePolicy,
};
use vigie_pipeline::stages::redaction::RedactionStage;
use vigie_rules::{ReplaceMode, RuleSet};

const ALICE_PASSWORD: &str = "alice's long password";
const BOB_PASSWORD: &str = "bob's long password";

/// Serves a console on 127.0.0.1 with the given policy; returns its address and store.
async fn start(policy: ThrottlePolicy, limits: ServeLimits) -> (std::net::SocketAddr, Arc<Store>) {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let now = Utc::now();
    store
        .add_user("alice", Role::Moderator, ALICE_PASSWORD, "test", now)
        .unwrap();
    store
        .add_user("bob", Role::Moderator, BOB_PASSWORD, "test", now)
        .unwrap();
    let settings = ConsoleSettings {
        secure_cookies: false,
        throttle: policy,
        ..Default::default()
    };
    let state = AppState::new(
        store.clone(),
        Arc::new(LexicalEmbedder),
        RedactionStage::new(RuleSet::builtin().unwrap(), 0.5, ReplaceMode::Placeholder),
        settings,
        DecisionPublisher::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(
        listener,
        router(state),
        limits,
        std::future::pending(),
    ));
    (addr, store)
}

/// A connection from `from` (another loopback address: another client).
async fn connect(from: &str, to: std::net::SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Posts the sign-in form; returns the status and the Retry-After header.
async fn sign_in(
    from: &str,
    to: std::net::SocketAddr,
    user: &str,
    password: &str,
) -> (u16, Option<u64>) {
    let body = format!(
        "username={user}&password={}",
        password.replace(' ', "+").replace('\'', "%27")
    );
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: {to}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = connect(from, to).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let retry_after = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("retry-after:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok());
    (status, retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guessing_run_is_slowed_and_locked_while_others_sign_in() {
    let policy = ThrottlePolicy {
        lockout_after: 6,
        ..ThrottlePolicy::default()
    };
    let (addr, store) = start(policy, ServeLimits::default()).await;

    let attack = tokio::spawn(async move {
        let (mut checked, mut throttled, mut retry_hints) = (0, 0, Vec::new());
        let started = Instant::now();
        let mut i = 0;
        while started.elapsed() < Duration::from_secs(8) {
            i += 1;
            match sign_in("127.0.0.2", addr, "alice", &format!("guess number {i}")).await {
                (401, _) => checked += 1,
                (429, hint) => {
                    throttled += 1;
                    retry_hints.extend(hint);
                }
                (403, _) => checked += 1, // locked: the password was checked, and refused
                other => panic!("unexpected answer to a guess: {other:?}"),
            }
        }
        (checked, throttled, retry_hints)
    });
    let mut bob_in = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        let (status, _) = sign_in("127.0.0.3", addr, "bob", BOB_PASSWORD).await;
        assert_eq!(
            status, 303,
            "bob signs in every time, even during the attack"
        );
        bob_in += 1;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let (checked, throttled, hints) = attack.await.unwrap();
    assert!(bob_in >= 10, "bob signed in {bob_in} times");
    // Free failures at once, then 2 s, 4 s: at most a handful checked in 8 seconds.
    assert!(checked <= 7, "{checked} guesses checked in 8 s");
    assert!(throttled >= 20, "only {throttled} guesses throttled");
    assert!(hints.iter().all(|&s| (1..=900).contains(&s)), "{hints:?}");

    // The sixth failure locked the account, in the audit log; the right password is
    // refused until an admin unlocks it.
    let log = store.audit_log(1000).unwrap();
    assert_eq!(
        log.iter()
            .filter(|e| e.action == "lockout" && e.target == "alice")
            .count(),
        1
    );
    assert!(matches!(
        store
            .login(
                "alice",
                ALICE_PASSWORD,
                Utc::now(),
                chrono::Duration::hours(1)
            )
            .unwrap(),
        LoginOutcome::Locked
    ));
    assert!(store.unlock_user("admin", "alice", Utc::now()).unwrap());
    // From another address alice is back, once the account's last back-off has run out
    // (the throttle is in memory; the unlock was in the database).
    let mut status = 0;
    for _ in 0..3 {
        let (s, hint) = sign_in("127.0.0.4", addr, "alice", ALICE_PASSWORD).await;
        status = s;
        match (s, hint) {
            (429, Some(wait)) if wait <= 16 => tokio::time::sleep(Duration::from_secs(wait)).await,
            _ => break,
        }
    }
    assert_eq!(status, 303, "alice signs in after the unlock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    let limits = ServeLimits {
        header_read_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        ..ServeLimits::default()
    };
    let (addr, _store) = start(ThrottlePolicy::default(), limits).await;

    // Half a request head, then silence: the connection is closed.
    let mut stream = connect("127.0.0.5", addr).await;
    stream
        .write_all(b"POST /login HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(6), stream.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "a client stuck in its headers is still connected after 6 s"
    );
    assert!(started.elapsed() < Duration::from_secs(4));

    // A whole head, a tenth of the body announced: 408 once the request deadline passes.
    let mut stream = connect("127.0.0.6", addr).await;
    stream
        .write_all(
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=a",
        )
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(6), stream.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "a client stuck in its body is still connected after 6 s"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");

    // The server keeps serving.
    let (status, _) = sign_in("127.0.0.7", addr, "bob", BOB_PASSWORD).await;
    assert_eq!(status, 303);
}
