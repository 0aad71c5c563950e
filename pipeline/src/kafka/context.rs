//! What the librdkafka callbacks share with the run loop: the offset tracker, metrics
//! and health. Delivery reports settle inputs here (end-to-end acknowledgement), and a
//! partition revocation waits here for its in-flight messages before committing.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};

use super::ack::InputAck;
use super::error::{DeliveryFailure, InputPosition};
use super::offsets::{OffsetTracker, PartitionKey};
use crate::metrics::Metrics;
use crate::ops::Health;

pub(crate) struct Shared {
    tracker: Mutex<OffsetTracker>,
    /// Signalled whenever an input settles (acknowledged or failed).
    settled: Condvar,
    /// Wakes the run loop when room frees up or a delivery failed.
    pub progress: tokio::sync::Notify,
    first_failure: Mutex<Option<DeliveryFailure>>,
    /// When the group last gave this consumer its partitions (perhaps none).
    assigned_at: Mutex<Option<Instant>>,
    /// Exactly-once: offsets travel in transactions, never through consumer commits.
    pub transactional: bool,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub drain_timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take offset tracking down with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn new(
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        drain_timeout: Duration,
        transactional: bool,
    ) -> Self {
        Shared {
            tracker: Mutex::new(OffsetTracker::default()),
            settled: Condvar::new(),
            progress: tokio::sync::Notify::new(),
            first_failure: Mutex::new(None),
            assigned_at: Mutex::new(None),
            transactional,
            metrics,
            health,
            drain_timeout,
        }
    }

    pub fn tracker(&self) -> MutexGuard<'_, OffsetTracker> {
        lock(&self.tracker)
    }

    pub fn assigned_at(&self) -> Option<Instant> {
        *lock(&self.assigned_at)
    }

    pub fn pending(&self) -> usize {
        self.tracker().pending(None)
    }

    /// Every record made from the input was delivered ([`InputAck`] dropped).
    pub(super) fn acknowledged(
        &self,
        key: &PartitionKey,
        epoch: u64,
        offset: i64,
        read_at: Instant,
    ) {
        let pending = {
            let mut t = self.tracker();
            t.complete(key, epoch, offset);
            t.pending(None)
        };
        self.metrics.in_flight(pending);
        self.metrics.acknowledged(read_at.elapsed());
        self.settled.notify_all();
        self.progress.notify_one();
    }

    /// The input will not be delivered ([`InputAck`] dropped after a failure or before all
    /// its records were handed over): it is no longer in flight, and is read again after
    /// a restart.
    pub(super) fn abandoned(&self, key: &PartitionKey, epoch: u64, offset: i64) {
        self.tracker().fail(key, epoch, offset);
        self.settled.notify_all();
        self.progress.notify_one();
    }

    /// Stops the run at its next turn (the first failure is the one reported).
    pub fn record_failure(&self, failure: DeliveryFailure) {
        lock(&self.first_failure).get_or_insert(failure);
        self.settled.notify_all();
        self.progress.notify_one();
    }

    /// The first delivery failure, if any: the run must stop.
    pub fn failure(&self) -> Option<DeliveryFailure> {
        lock(&self.first_failure).clone()
    }

    /// Blocks until no message of `keys` (all when None) is in flight, or until the drain
    /// timeout. Returns the tracker, locked, and whether it drained.
    pub fn drain(&self, keys: Option<&[PartitionKey]>) -> (MutexGuard<'_, OffsetTracker>, bool) {
        let guard = self.tracker();
        let (guard, timeout) = self
            .settled
            .wait_timeout_while(guard, self.drain_timeout, |t| t.pending(keys) > 0)
            .unwrap_or_else(PoisonError::into_inner);
        (guard, !timeout.timed_out())
    }
}

pub(crate) fn partition_list(commits: &[(PartitionKey, i64)]) -> KafkaResult<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in commits {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    Ok(tpl)
}

fn keys_of(tpl: &TopicPartitionList) -> Vec<PartitionKey> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

fn client_error(health: &Health, error: &KafkaError, reason: &str) {
    if matches!(error, KafkaError::Global(RDKafkaErrorCode::AllBrokersDown)) {
        health.set_brokers_down(true);
    }
    tracing::warn!(error = %error, reason, "kafka client error");
}

pub(crate) struct ConsumerCtx {
    pub shared: Arc<Shared>,
}

impl ClientContext for ConsumerCtx {
    fn stats(&self, statistics: Statistics) {
        for (name, topic) in &statistics.topics {
            for (id, p) in &topic.partitions {
                // -1 is librdkafka's internal "unassigned" partition.
                if *id < 0 || p.hi_offset < 0 {
                    continue;
                }
                // librdkafka's own consumer_lag waits for a first commit; the position
                // (or, before any read, the committed or low offset) is known sooner.
                let from = [p.app_offset, p.committed_offset, p.lo_offset]
                    .into_iter()
                    .find(|o| *o >= 0);
                if let Some(from) = from {
                    self.shared
                        .metrics
                        .lag(name, *id, (p.hi_offset - from).max(0));
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(&self.shared.health, &error, reason);
    }
}

impl ConsumerContext for ConsumerCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                self.shared.metrics.rebalance("revoke");
                let keys = keys_of(tpl);
                let lost = consumer.assignment_lost();
                // Runs on the thread polling the consumer; deliveries settle on the
                // producer's thread, so waiting here lets the in-flight work finish.
                for (topic, partition) in &keys {
                    self.shared.metrics.forget_lag(topic, *partition);
                }
                let (commits, drained, left) = {
                    // A lost assignment cannot be committed any more: do not wait for it.
                    let (mut t, drained) = if lost {
                        (self.shared.tracker(), false)
                    } else {
                        self.shared.drain(Some(&keys))
                    };
                    let commits = if lost || self.shared.transactional {
                        Vec::new()
                    } else {
                        t.take_commits_for(&keys)
                    };
                    let left = t.pending(Some(&keys));
                    t.revoke(&keys);
                    (commits, drained, left)
                };
                if !lost && !self.shared.transactional {
                    // Store what settled, then commit everything stored before the
                    // partitions go (auto-commit might not have run since).
                    let stored = if commits.is_empty() {
                        Ok(())
                    } else {
                        partition_list(&commits).and_then(|tpl| consumer.store_offsets(&tpl))
                    };
                    match stored.and_then(|()| consumer.commit_consumer_state(CommitMode::Sync)) {
                        Ok(()) => self.shared.metrics.commit(true),
                        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                        Err(e) => {
                            self.shared.metrics.commit(false);
                            tracing::warn!(error = %e, "commit before revocation failed; the next owner re-reads from the last commit");
                        }
                    }
                }
                tracing::info!(
                    partitions = keys.len(),
                    lost,
                    drained,
                    in_flight_left = left,
                    "partitions revoked"
                );
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.shared.metrics.rebalance("assign");
            let keys = keys_of(tpl);
            tracing::info!(partitions = keys.len(), "partitions assigned");
            self.shared.tracker().assign(keys);
            *lock(&self.shared.assigned_at) = Some(Instant::now());
            self.shared.health.set_brokers_down(false);
        }
    }

    /// Results of librdkafka's auto-commits of the stored offsets (manual commits
    /// report their result where they are made).
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                self.shared.metrics.commit(true);
                self.shared.health.set_brokers_down(false);
            }
            // Nothing stored since the last commit.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                // The stored offsets stay stored: the next auto-commit sends them again.
                self.shared.metrics.commit(false);
                tracing::warn!(error = %e, "offset commit failed; retrying at the next interval");
            }
        }
    }
}

pub(crate) struct ProducerCtx {
    pub shared: Arc<Shared>,
}

impl ClientContext for ProducerCtx {
    fn error(&self, error: KafkaError, reason: &str) {
        client_error(&self.shared.health, &error, reason);
    }
}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = Arc<InputAck>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Self::DeliveryOpaque) {
        match result {
            Ok(record) => {
                self.shared.health.set_brokers_down(false);
                self.shared.metrics.message_out(record.topic());
                // The input settles when its last record's reference goes (InputAck).
            }
            Err((error, record)) => {
                // librdkafka retried until message.timeout.ms: this is final. The input
                // stays uncommitted and the run stops, to read it again after a restart.
                ack.fail();
                let failure = DeliveryFailure::Refused {
                    topic: record.topic().to_string(),
                    input: InputPosition::of(&ack.key, ack.offset),
                    error: error.clone(),
                };
                tracing::error!(%failure, "record not delivered");
                self.shared.record_failure(failure);
            }
        }
    }
}
