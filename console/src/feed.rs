//! Keeps the console fed while it runs: follows a moderation JSONL file as `vigie screen`
//! (or another writer) appends to it, or consumes the moderation topic that `vigie run`
//! produces to; and publishes moderators' decisions (JSONL file, Kafka topic).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use chrono::Utc;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::store::Store;
use crate::tracker::Embedder;
use vigie_pipeline::config::KafkaConfig;
use vigie_pipeline::contract::ScreenedRecord;

/// Where a followed file has been read up to. Only complete lines are consumed, so a
/// line being written when we look is read whole on the next pass.
pub struct FileFollower {
    path: PathBuf,
    offset: u64,
    line: usize,
    /// Where the last poll read up to; becomes `offset` once its records are stored.
    pending: Option<(u64, usize)>,
}

impl FileFollower {
    pub fn new(path: &Path) -> Self {
        FileFollower {
            path: path.to_path_buf(),
            offset: 0,
            line: 0,
            pending: None,
        }
    }

    /// The records of the last poll are stored: the next poll starts after them. Without
    /// this call, the next poll reads them again.
    pub fn commit(&mut self) {
        if let Some((offset, line)) = self.pending.take() {
            self.offset = offset;
            self.line = line;
        }
    }

    /// Records appended since the last call. A file that shrank was rewritten (a new
    /// `vigie screen` run): it is read again from the start; ids already stored are
    /// skipped by the import.
    pub fn poll(&mut self) -> std::io::Result<Vec<ScreenedRecord>> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            self.offset = 0;
            self.line = 0;
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        file.take(len - self.offset).read_to_end(&mut buf)?;
        let complete = buf
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(0);
        let mut line = self.line;
        let mut records = Vec::new();
        for raw in buf[..complete].split(|b| *b == b'\n') {
            if raw.iter().all(u8::is_ascii_whitespace) {
                if !raw.is_empty() {
                    line += 1;
                }
                continue;
            }
            line += 1;
            match serde_json::from_slice::<ScreenedRecord>(raw) {
                Ok(r) => records.push(r),
                // Neither the line nor serde's message (which can quote it) is logged: it
                // is not known to be redacted.
                Err(e) => {
                    tracing::warn!(file = %self.path.display(), line, kind = ?e.classify(), column = e.column(), "skipping a line that is not a moderation record")
                }
            }
        }
        self.pending = Some((self.offset + complete as u64, line));
        Ok(records)
    }
}

/// Polls `path` every `every` and imports what it finds, until the task is dropped.
pub async fn follow(
    store: Arc<Store>,
    embedder: Arc<dyn Embedder>,
    path: PathBuf,
    every: Duration,
) {
    let mut follower = FileFollower::new(&path);
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let store = store.clone();
        let embedder = embedder.clone();
        let mut f = std::mem::replace(&mut follower, FileFollower::new(&path));
        let (back, result) = match tokio::task::spawn_blocking(move || {
            let result = f.poll().map_err(|e| e.to_string()).and_then(|records| {
                if records.is_empty() {
                    Ok(None)
                } else {
                    store
                        .import(&records, embedder.as_ref(), "feed", Utc::now())
                        .map(Some)
                        .map_err(|e| e.to_string())
                }
            });
            // Only stored records move the follower on; after an error they are read again.
            if result.is_ok() {
                f.commit();
            }
            (f, result)
        })
        .await
        {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "the feed task failed");
                continue;
            }
        };
        follower = back;
        match result {
            Ok(Some(report)) => tracing::info!(
                new = report.new,
                duplicates = report.duplicates,
                "moderation records imported"
            ),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, file = %path.display(), "cannot import moderation records")
            }
        }
    }
}

/// Consumes moderation records from `cfg.moderation_topic` (and rumour signals from
/// `cfg.rumour_topic`, when set) into the store, in batches,
/// committing offsets only after a batch is stored (at-least-once; re-deliveries are
/// recognised by post id and skipped). Returns when `shutdown` resolves, or on a Kafka
/// error the client cannot recover from.
pub async fn consume_kafka(
    store: Arc<Store>,
    embedder: Arc<dyn Embedder>,
    cfg: &KafkaConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), KafkaError> {
    let consumer: StreamConsumer = vigie_pipeline::kafka::simple_consumer(cfg)?;
    // Rumour signals (when the pipeline produces them to their own topic) feed the
    // tracker and its alerts beside the moderation records.
    let mut topics = vec![cfg.moderation_topic.as_str()];
    topics.extend(cfg.rumour_topic.as_deref());
    consumer.subscribe(&topics)?;
    tracing::info!(topics = ?topics, group = %cfg.group_id, "consuming screened records");
    tokio::pin!(shutdown);
    loop {
        let mut batch = Vec::new();
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(cfg.batch_wait_ms.max(50));
        while batch.len() < 256 {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = tokio::time::sleep_until(deadline) => break,
                m = consumer.recv() => {
                    let m = match m {
                        Ok(m) => m,
                        // Broker trouble, or a topic not created yet: librdkafka retries.
                        Err(e) => {
                            tracing::warn!(error = %e, "moderation topic unavailable; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                    };
                    match m.payload().map(serde_json::from_slice::<ScreenedRecord>) {
                        Some(Ok(r)) => batch.push(r),
                        // Not echoed, nor serde's message: the payload is not known to be redacted.
                        Some(Err(e)) => tracing::warn!(topic = m.topic(), partition = m.partition(), offset = m.offset(), kind = ?e.classify(), "skipping a message that is not a moderation record"),
                        None => tracing::warn!(topic = m.topic(), partition = m.partition(), offset = m.offset(), "skipping an empty message"),
                    }
                }
            }
        }
        // A batch that cannot be stored (database locked, disk full) is retried with
        // back-off, offsets uncommitted, so that nothing is skipped.
        let batch = Arc::new(batch);
        let mut backoff = Duration::from_millis(500);
        while !batch.is_empty() {
            let (store, embedder, records) = (store.clone(), embedder.clone(), batch.clone());
            match tokio::task::spawn_blocking(move || {
                store.import(&records, embedder.as_ref(), "kafka", Utc::now())
            })
            .await
            {
                Ok(Ok(report)) => {
                    tracing::info!(
                        new = report.new,
                        duplicates = report.duplicates,
                        "moderation records imported"
                    );
                    break;
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, retry_in = ?backoff, "cannot store moderation records")
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in = ?backoff, "the import task failed")
                }
            }
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
        // Commits what has been stored (or skipped as unreadable); nothing when idle.
        match consumer.commit_consumer_state(CommitMode::Async) {
            Ok(())
            | Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                tracing::warn!(error = %e, "offset commit failed; records may be delivered again")
            }
        }
    }
}

/// Where decisions go besides the database (which stays the record of truth). Decisions
/// reach it through the store's outbox ([`DecisionPublisher::deliver`]), at least once.
#[derive(Default)]
pub struct DecisionPublisher {
    file: Option<Mutex<File>>,
    kafka: Option<(FutureProducer, String)>,
    /// One delivery at a time, so two requests do not send the same rows twice.
    delivering: tokio::sync::Mutex<()>,
}

/// Outbox rows read per round.
const OUTBOX_BATCH: usize = 256;

impl DecisionPublisher {
    pub fn with_file(mut self, path: &Path) -> std::io::Result<Self> {
        self.file = Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ));
        Ok(self)
    }

    pub fn with_kafka(mut self, cfg: &KafkaConfig, topic: &str) -> Result<Self, KafkaError> {
        self.kafka = Some((
            vigie_pipeline::kafka::future_producer(cfg)?,
            topic.to_string(),
        ));
        Ok(self)
    }

    /// Delivers the outbox, oldest first: each decision appended to the file and sent to
    /// the topic keyed by post id, then marked sent. Stops at the first failure (logged);
    /// the rest waits for the next call. A crash between sending and marking sends a
    /// decision again, with the same `decision_id`. Returns how many were delivered.
    pub async fn deliver(&self, store: &Store) -> usize {
        let _one_at_a_time = self.delivering.lock().await;
        let mut delivered = 0;
        loop {
            let pending = match store.pending_decisions(OUTBOX_BATCH) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the decisions outbox");
                    return delivered;
                }
            };
            let mut sent = Vec::with_capacity(pending.len());
            let mut failed = false;
            for (seq, item, line) in &pending {
                if !self.send_one(item, line).await {
                    failed = true;
                    break;
                }
                sent.push(*seq);
            }
            if let Err(e) = store.mark_decisions_sent(&sent, chrono::Utc::now()) {
                tracing::error!(error = %e, "cannot mark decisions sent; they will be sent again");
                return delivered;
            }
            delivered += sent.len();
            if failed || pending.len() < OUTBOX_BATCH {
                return delivered;
            }
        }
    }

    async fn send_one(&self, item: &str, line: &str) -> bool {
        if let Some(file) = &self.file {
            let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = writeln!(file, "{line}").and_then(|_| file.flush()) {
                tracing::error!(error = %e, item = %item, "cannot append to the decisions file");
                return false;
            }
        }
        if let Some((producer, topic)) = &self.kafka {
            let record = FutureRecord::to(topic).key(item).payload(line);
            if let Err((e, _)) = producer.send(record, Duration::from_secs(5)).await {
                tracing::error!(error = %e, item = %item, "decision not delivered to Kafka");
                return false;
            }
        }
        true
    }

    /// Waits for decisions queued for Kafka to be delivered (at shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Some((producer, _)) = &self.kafka {
            use rdkafka::producer::Producer;
            if let Err(e) = producer.flush(timeout) {
                tracing::warn!(error = %e, "decisions still queued for Kafka at shutdown");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn record_line(id: &str) -> String {
        format!(
            r#"{{"id":"{id}","lang":{{"code":"fr","confidence":0.9}},"redacted_text":"texte","redactions":[],"risk":null,"route":{{"queue":"privacy-fr","priority":"low","reasons":["privacy"]}},"channel":"forum","processed_at":"2024-05-01T10:00:00Z","vigie_version":"0.1.0"}}"#
        )
    }

    #[test]
    fn reads_complete_lines_once_and_restarts_after_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moderation.jsonl");
        let mut f = FileFollower::new(&path);
        assert!(
            f.poll().unwrap().is_empty(),
            "a missing file is not an error"
        );
        let mut file = std::fs::File::create(&path).unwrap();
        write!(
            file,
            "{}\nnot json\n{}",
            record_line("a"),
            &record_line("b")[..20]
        )
        .unwrap();
        file.flush().unwrap();
        let got: Vec<String> = f.poll().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(
            got,
            ["a"],
            "the bad line is skipped, the half-written one waits"
        );
        assert_eq!(
            f.poll().unwrap().len(),
            1,
            "uncommitted records are read again"
        );
        f.commit();
        writeln!(file, "{}", &record_line("b")[20..]).unwrap();
        file.flush().unwrap();
        let got: Vec<String> = f.poll().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(got, ["b"]);
        f.commit();
        assert!(f.poll().unwrap().is_empty());
        f.commit();
        std::fs::write(&path, format!("{}\n", record_line("c"))).unwrap();
        let got: Vec<String> = f.poll().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(got, ["c"], "a shorter file is read from the start");
    }
}
