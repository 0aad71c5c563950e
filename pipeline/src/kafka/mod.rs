//! Kafka source and sinks: `vigie run`.
//!
//! The loop reads what the consumer holds and hands it to the batcher as one job; it
//! reads on while jobs are screened (at most two batches ahead), and hands each job's
//! records (screened, moderation, dead letter; keyed by post id), in the order read, to
//! an idempotent producer, then reads on while the broker acknowledges them. What records an input becomes is planned in [`plan`]. An
//! input is settled once every record made from it is acknowledged, by the handle its
//! records share ([`ack`]); offsets are committed per partition up to the first
//! unsettled input ([`offsets`]), so a crash or an outage re-reads, never loses. What
//! goes to the dead-letter topic, and when dead letters stop the run, is decided in
//! [`dead_letter`]. With `delivery = "exactly-once"` each job is one transaction.

mod ack;
mod client;
pub use client::{future_producer, simple_consumer};
mod context;
pub mod dead_letter;
mod error;
pub use error::{DeliveryFailure, InputPosition, KafkaRunError};
pub mod load;
pub mod offsets;
mod plan;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use serde::Serialize;

use self::ack::InputAck;
use self::context::{partition_list, ConsumerCtx, ProducerCtx, Shared};
use self::dead_letter::DeadLetterBudget;
pub use self::dead_letter::{HEADER_OFFSET, HEADER_PARTITION, HEADER_REASON, HEADER_TOPIC};
use self::offsets::PartitionKey;
use self::plan::{Disposition, Output, OutputTopics};
use crate::batcher::{BatchPolicy, Batcher, SubmitError};
use crate::config::{DeliveryMode, KafkaConfig};
use crate::contract::Origin;
use crate::metrics::Metrics;
use crate::ops::Health;
use crate::screener::{Outcome, Screener};

/// How often settled offsets are stored while no batch arrives.
const STORE_INTERVAL: Duration = Duration::from_millis(100);

/// When a run stops by itself (tests, batch jobs); by default it runs until signalled.
#[derive(Debug, Clone, Copy, Default)]
pub struct StopWhen {
    /// Stop after this long without a message (counted from joining the group).
    pub idle: Option<Duration>,
    /// Stop once this many messages were consumed (checked between batches).
    pub messages: Option<usize>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RunStats {
    pub consumed: usize,
    pub screened: usize,
    pub moderation: usize,
    /// Screened posts that are rumour signals.
    pub rumour_signals: usize,
    pub dead_lettered: usize,
    pub batches: usize,
    pub dead_letters_by_reason: BTreeMap<String, usize>,
    /// Read just before their partition was revoked; the next owner reads them.
    pub skipped_after_rebalance: usize,
    /// Still unacknowledged when the run stopped (left uncommitted, read again later).
    pub handed_back: usize,
}

/// Where a run reports how it is doing.
#[derive(Clone, Default)]
pub struct Telemetry {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

/// Consumes `cfg.input_topic` until `shutdown` resolves or `stop` says so.
pub async fn run(
    cfg: &KafkaConfig,
    screener: Arc<Screener>,
    stop: StopWhen,
    shutdown: impl Future<Output = ()>,
) -> Result<RunStats, KafkaRunError> {
    run_with(cfg, screener, stop, shutdown, Telemetry::default()).await
}

struct Consumed {
    key: PartitionKey,
    epoch: u64,
    offset: i64,
    read_at: Instant,
    payload: Vec<u8>,
}

/// A job on its way through the batcher: its messages (each with the handle that settles
/// it) and, once its pass is done, their outcomes.
type Screening = std::pin::Pin<
    Box<dyn Future<Output = (Vec<Started>, Result<Vec<Outcome>, SubmitError>)> + Send>,
>;

/// What the batcher screens: each input's origin and payload.
type Job = Vec<(Origin, Vec<u8>)>;

/// A message whose handle is tracking it; its payload went to the batcher.
struct Started {
    key: PartitionKey,
    offset: i64,
    bytes: usize,
    ack: Arc<InputAck>,
}

/// [`run`], reporting to the given metrics and health (served by [`crate::ops`]).
///
/// The messages are screened by a [`Batcher`] of its own, which sizes the passes as
/// the screening API's does: what waits, as many as fit `pass_target_ms` while fewer
/// than `batch_size` wait, waiting `batch_wait_ms` to fill only under load.
pub async fn run_with(
    cfg: &KafkaConfig,
    screener: Arc<Screener>,
    stop: StopWhen,
    shutdown: impl Future<Output = ()>,
    telemetry: Telemetry,
) -> Result<RunStats, KafkaRunError> {
    let batcher = Batcher::start(screener, batch_policy(cfg), telemetry.metrics.clone(), None)
        .map_err(KafkaRunError::Worker)?;
    run_on(cfg, &batcher, stop, shutdown, telemetry).await
}

/// How `vigie run`'s own batcher gathers passes.
pub fn batch_policy(cfg: &KafkaConfig) -> BatchPolicy {
    BatchPolicy {
        max_batch: cfg.batch_size.max(1),
        max_wait: Duration::from_millis(cfg.batch_wait_ms),
        capacity: most_ahead(cfg),
        pass_target: Some(Duration::from_millis(cfg.pass_target_ms)),
    }
}

/// Messages read and not yet delivered at most: the pass under way and the next, so
/// that the encoder never waits for the loop.
fn most_ahead(cfg: &KafkaConfig) -> usize {
    2 * cfg.batch_size.max(1)
}

/// Messages per job handed to the batcher: a quarter of a pass, so that passes fill to
/// within a quarter of `batch_size` whatever the consumer delivers at once (measured:
/// passes of 12 and 22 alternated where 32 were waiting). In exactly-once mode a job is
/// one transaction, which costs broker round trips: jobs stay whole there.
fn job_size(cfg: &KafkaConfig) -> usize {
    match cfg.delivery {
        DeliveryMode::ExactlyOnce => cfg.batch_size.max(1),
        _ => (cfg.batch_size / 4).max(1),
    }
}

/// [`run_with`] on a batcher that other sources may share (the screening API's), so
/// that both fill the same encoder passes instead of taking turns for the cores.
pub async fn run_on(
    cfg: &KafkaConfig,
    batcher: &Batcher,
    stop: StopWhen,
    shutdown: impl Future<Output = ()>,
    telemetry: Telemetry,
) -> Result<RunStats, KafkaRunError> {
    let transactional = cfg.delivery == DeliveryMode::ExactlyOnce;
    let shared = Arc::new(Shared::new(
        telemetry.metrics.clone(),
        telemetry.health.clone(),
        Duration::from_millis(cfg.drain_timeout_ms),
        transactional,
    ));
    let consumer = client::consumer(
        cfg,
        ConsumerCtx {
            shared: shared.clone(),
        },
    )?;
    let producer = client::producer(
        cfg,
        ProducerCtx {
            shared: shared.clone(),
        },
    )?;
    if transactional {
        let timeout = Duration::from_millis(cfg.drain_timeout_ms);
        tokio::task::block_in_place(|| producer.init_transactions(timeout))?;
    }
    consumer.subscribe(&[cfg.input_topic.as_str()])?;
    telemetry.health.set_consuming(true);
    tracing::info!(topic = %cfg.input_topic, group = %cfg.group_id, delivery = ?cfg.delivery, "consuming");

    let mut run = Loop {
        cfg,
        batcher,
        shared: &shared,
        consumer: &consumer,
        producer: &producer,
        budget: DeadLetterBudget::new(cfg.dead_letter_max_ratio, cfg.dead_letter_window),
        stats: RunStats::default(),
        topics: OutputTopics {
            screened: cfg.screened_topic.clone(),
            moderation: cfg.moderation_topic.clone(),
            dead_letters: cfg.dlq_topic.clone(),
            rumours: cfg.rumour_topic.clone(),
            max_record_bytes: client::max_output_bytes(cfg),
        },
    };
    let result = run.consume(stop, shutdown).await;

    // Finish or hand back what is in flight, then commit what is settled.
    telemetry.health.set_draining();
    let (handed_back, commits) = tokio::task::block_in_place(|| {
        let (mut t, _) = shared.drain(None);
        let left = t.pending(None);
        (
            left,
            if transactional {
                Vec::new()
            } else {
                t.take_commits()
            },
        )
    });
    run.stats.handed_back = handed_back;
    if !transactional {
        let stored = if commits.is_empty() {
            Ok(())
        } else {
            partition_list(&commits).and_then(|tpl| consumer.store_offsets(&tpl))
        };
        let committed = stored.and_then(|()| {
            tokio::task::block_in_place(|| consumer.commit_consumer_state(CommitMode::Sync))
        });
        match committed {
            // Nothing new since the last auto-commit.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Ok(()) => telemetry.metrics.commit(true),
            Err(e) => {
                telemetry.metrics.commit(false);
                tracing::warn!(error = %e, "final commit failed; the last inputs will be read again");
            }
        }
    }
    if let Err(e) = tokio::task::block_in_place(|| producer.flush(Duration::from_secs(10))) {
        tracing::warn!(error = %e, "producer flush at shutdown");
    }
    if result.is_err() {
        telemetry.health.set_failed();
    }
    let stats = run.stats;
    tracing::info!(
        consumed = stats.consumed,
        screened = stats.screened,
        dead_lettered = stats.dead_lettered,
        handed_back = stats.handed_back,
        "stopped"
    );
    result.map(|()| stats)
}

struct Loop<'a> {
    cfg: &'a KafkaConfig,
    batcher: &'a Batcher,
    shared: &'a Arc<Shared>,
    consumer: &'a StreamConsumer<ConsumerCtx>,
    producer: &'a ThreadedProducer<ProducerCtx>,
    budget: DeadLetterBudget,
    stats: RunStats,
    topics: OutputTopics,
}

impl Loop<'_> {
    async fn consume(
        &mut self,
        stop: StopWhen,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), KafkaRunError> {
        use futures::stream::{FuturesOrdered, StreamExt};
        tokio::pin!(shutdown);
        let mut screening: FuturesOrdered<Screening> = FuturesOrdered::new();
        // Messages handed to the batcher and not yet delivered.
        let mut ahead = 0usize;
        let mut last_message = Instant::now();
        let mut stopping = false;
        loop {
            if let Some(failure) = self.shared.failure() {
                return Err(failure.into());
            }
            let reached = stop.messages.is_some_and(|n| self.stats.consumed >= n);
            if (stopping || reached) && screening.is_empty() {
                return Ok(());
            }
            // Read on while there is room: unacknowledged messages under `max_in_flight`
            // (backpressure) and jobs ahead of the producer under two batches.
            let room = self
                .cfg
                .max_in_flight
                .max(1)
                .saturating_sub(self.shared.pending())
                .min(most_ahead(self.cfg).saturating_sub(ahead));
            let may_read = !stopping && !reached && room > 0;
            // Idle time counts from the last message or the last group join, whichever
            // is later: joining a group can take longer than the idle limit.
            let idle_at = match (stop.idle, self.shared.assigned_at()) {
                (Some(d), Some(joined)) if screening.is_empty() => {
                    Some(last_message.max(joined) + d)
                }
                _ => None,
            };
            tokio::select! {
                _ = &mut shutdown, if !stopping => {
                    tracing::info!("shutdown requested; finishing the jobs under way");
                    stopping = true;
                }
                _ = sleep_until(idle_at), if may_read => {
                    tracing::info!("idle; stopping");
                    stopping = true;
                }
                done = screening.next(), if !screening.is_empty() => {
                    if let Some((started, outcomes)) = done {
                        ahead -= started.len();
                        self.deliver(started, outcomes).await?;
                    }
                    self.store_settled();
                }
                _ = self.shared.progress.notified(), if !may_read => self.store_settled(),
                _ = tokio::time::sleep(STORE_INTERVAL) => self.store_settled(),
                m = self.consumer.recv(), if may_read => {
                    let mut batch = Vec::new();
                    batch.extend(self.take_message(m));
                    // What the consumer holds already joins the job (no more than a
                    // message count to stop at asks for); the batcher decides the passes.
                    let most = match stop.messages {
                        Some(n) => room.min(n.saturating_sub(self.stats.consumed)),
                        None => room,
                    }
                    .min(self.cfg.batch_size.max(1));
                    for _ in 1..most {
                        let now = tokio::time::Instant::now();
                        match tokio::time::timeout_at(now, self.consumer.recv()).await {
                            Ok(m) => batch.extend(self.take_message(m)),
                            Err(_) => break,
                        }
                    }
                    last_message = Instant::now();
                    // In jobs of a few messages, not one per read: the batcher fills a
                    // pass with whole jobs, so that a large job that does not fit would
                    // leave the pass short and go alone in the next.
                    let chunk = job_size(self.cfg);
                    while !batch.is_empty() {
                        let rest = batch.split_off(batch.len().min(chunk));
                        if let Some(job) = self.start(batch) {
                            ahead += job.0.len();
                            screening.push_back(self.submit(job.0, job.1));
                        }
                        batch = rest;
                    }
                }
            }
        }
    }

    /// The message as the loop keeps it; consumer errors yield none (a fatal one stops
    /// the run at the next round).
    fn take_message(
        &self,
        m: Result<rdkafka::message::BorrowedMessage<'_>, KafkaError>,
    ) -> Option<Consumed> {
        match m {
            Ok(m) => {
                self.shared.health.set_brokers_down(false);
                self.shared.metrics.message_in(m.topic());
                let key = (m.topic().to_string(), m.partition());
                // No epoch: the partition is not (or no longer) assigned; start() skips it.
                let epoch = self.shared.tracker().epoch(&key).unwrap_or(0);
                Some(Consumed {
                    key,
                    epoch,
                    offset: m.offset(),
                    read_at: Instant::now(),
                    payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                })
            }
            // The consumer cannot go on (e.g. fenced by a newer instance): stop the run.
            Err(e @ KafkaError::MessageConsumptionFatal(_)) => {
                self.shared
                    .record_failure(DeliveryFailure::ConsumerFatal(e));
                None
            }
            // Transient broker errors are retried by librdkafka; they carry no message.
            Err(e) => {
                tracing::warn!(error = %e, "consumer error");
                None
            }
        }
    }

    /// Starts tracking the batch's messages: from here on each message's handle settles
    /// it whatever happens, acknowledged once all its records are delivered, failed if
    /// the run stops before that. Messages of a partition revoked since they were read
    /// are skipped (their next owner reads them). Returns the tracked messages and the
    /// job to screen, none when nothing is left.
    fn start(&mut self, batch: Vec<Consumed>) -> Option<(Vec<Started>, Job)> {
        let read = batch.len();
        self.stats.consumed += read;
        let mut started = Vec::with_capacity(read);
        let mut inputs = Vec::with_capacity(read);
        for m in batch {
            let Some(ack) =
                InputAck::start(self.shared, m.key.clone(), m.epoch, m.offset, m.read_at)
            else {
                continue;
            };
            let origin = Origin::Kafka {
                topic: m.key.0.clone(),
                partition: m.key.1,
                offset: m.offset,
            };
            started.push(Started {
                key: m.key,
                offset: m.offset,
                bytes: m.payload.len(),
                ack,
            });
            inputs.push((origin, m.payload));
        }
        if started.len() < read {
            self.stats.skipped_after_rebalance += read - started.len();
            self.shared
                .metrics
                .skipped_after_rebalance(read - started.len());
        }
        if started.is_empty() {
            return None;
        }
        self.shared.metrics.in_flight(self.shared.pending());
        Some((started, inputs))
    }

    /// The job on its way through the batcher (the loop's thread stays free to read and
    /// deliver meanwhile). A batcher shared with other sources may be full for a moment:
    /// the job waits for room rather than failing.
    fn submit(&self, started: Vec<Started>, inputs: Job) -> Screening {
        // Kafka inputs have no caller waiting with a deadline; this only bounds a stuck pass.
        const NO_DEADLINE: Duration = Duration::from_secs(24 * 3600);
        let batcher = self.batcher.clone();
        Box::pin(async move {
            let mut inputs = inputs;
            let outcomes = loop {
                match batcher.enqueue(inputs, Instant::now() + NO_DEADLINE) {
                    Ok(pending) => break pending.outcomes().await,
                    Err(refused) if refused.error == SubmitError::Full => {
                        inputs = refused.inputs;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err(refused) => break Err(refused.error),
                }
            };
            (started, outcomes)
        })
    }

    /// Hands a screened job's records to the producer (in exactly-once mode, in one
    /// transaction with its offsets). The handles of inputs not fully handed over when
    /// it returns early fail them as they drop.
    async fn deliver(
        &mut self,
        started: Vec<Started>,
        outcomes: Result<Vec<Outcome>, SubmitError>,
    ) -> Result<(), KafkaRunError> {
        let result = match outcomes {
            Ok(outcomes) => self.dispatch(started, outcomes).await,
            Err(e) => Err(e.into()),
        };
        if result.is_err() && self.shared.transactional {
            let timeout = Duration::from_millis(self.cfg.drain_timeout_ms);
            // Refused when the error came before the transaction began: nothing to abort.
            if let Err(e) = tokio::task::block_in_place(|| self.producer.abort_transaction(timeout))
            {
                tracing::debug!(error = %e, "abort_transaction");
            }
        }
        result
    }

    async fn dispatch(
        &mut self,
        started: Vec<Started>,
        outcomes: Vec<Outcome>,
    ) -> Result<(), KafkaRunError> {
        // Checked before anything of this job is written: if the cap trips, the job
        // stays uncommitted for after the operator's fix.
        self.budget
            .record(outcomes.iter().map(|o| matches!(o, Outcome::Rejected(_))))?;

        let mut planned = Vec::with_capacity(started.len());
        for (message, outcome) in started.iter().zip(outcomes) {
            let input = InputPosition::of(&message.key, message.offset);
            let plan = plan::plan(&self.topics, &input, message.bytes, outcome)?;
            self.count(&input, &plan.disposition);
            planned.push(plan.outputs);
        }
        if self.shared.transactional {
            self.producer
                .begin_transaction()
                .map_err(KafkaRunError::Transaction)?;
        }
        let read: Vec<(PartitionKey, i64)> =
            started.iter().map(|m| (m.key.clone(), m.offset)).collect();
        // Each loop reference goes as soon as its input is handed over, so that the input
        // settles with its last delivery report; on an early return the ones left fail.
        for (message, outputs) in started.into_iter().zip(planned) {
            for output in outputs {
                self.send(output, &message.key, message.offset, message.ack.clone())
                    .await?;
            }
            message.ack.handed_over();
        }
        if self.shared.transactional {
            self.commit_transaction(&read)?;
        }
        self.stats.batches += 1;
        Ok(())
    }

    /// The run's counts, metrics and logs for what became of one input.
    fn count(&mut self, input: &InputPosition, disposition: &Disposition) {
        match disposition {
            Disposition::Screened { flagged, rumour } => {
                self.stats.screened += 1;
                self.stats.moderation += usize::from(*flagged);
                self.stats.rumour_signals += usize::from(*rumour);
            }
            Disposition::DeadLetter { reason, detail } => {
                self.stats.dead_lettered += 1;
                *self
                    .stats
                    .dead_letters_by_reason
                    .entry(reason.clone())
                    .or_default() += 1;
                self.shared.metrics.dead_letter(reason);
                tracing::warn!(
                    reason = %reason,
                    detail = %detail,
                    partition = input.partition,
                    offset = input.offset,
                    "dead-lettered"
                );
            }
        }
    }

    /// Hands one record to the producer, waiting while its queue is full.
    async fn send(
        &self,
        output: Output,
        key: &PartitionKey,
        offset: i64,
        ack: Arc<InputAck>,
    ) -> Result<(), KafkaRunError> {
        let mut record = BaseRecord::with_opaque_to(&output.topic, ack)
            .key(&output.key)
            .payload(&output.payload);
        if let Some(h) = output.headers {
            record = record.headers(h);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if let Some(failure) = self.shared.failure() {
                        return Err(failure.into());
                    }
                    record = back;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err((error, _)) => {
                    return Err(DeliveryFailure::NotQueued {
                        topic: output.topic,
                        input: InputPosition::of(key, offset),
                        error,
                    }
                    .into())
                }
            }
        }
    }

    /// Stores the offsets that settled since the last call (at-least-once); librdkafka's
    /// auto-commit sends stored offsets to the broker every `commit_interval_ms`, and
    /// retries them after a failure. Storing is local and cheap, so it runs often.
    fn store_settled(&mut self) {
        if self.shared.transactional {
            return;
        }
        let commits = self.shared.tracker().take_commits();
        if commits.is_empty() {
            return;
        }
        if let Err(e) = partition_list(&commits).and_then(|tpl| self.consumer.store_offsets(&tpl)) {
            // A partition revoked in between: its next owner re-reads from the last commit.
            tracing::debug!(error = %e, "offsets not stored");
        }
    }

    /// Exactly-once: the batch's offsets join its records in one transaction.
    fn commit_transaction(&mut self, read: &[(PartitionKey, i64)]) -> Result<(), KafkaRunError> {
        let mut next: BTreeMap<PartitionKey, i64> = BTreeMap::new();
        for (key, offset) in read {
            let e = next.entry(key.clone()).or_insert(offset + 1);
            *e = (*e).max(offset + 1);
        }
        let commits: Vec<(PartitionKey, i64)> = next.into_iter().collect();
        let timeout = Duration::from_millis(self.cfg.drain_timeout_ms);
        let group = self
            .consumer
            .group_metadata()
            .ok_or(DeliveryFailure::NoGroupMetadata)?;
        let result = tokio::task::block_in_place(|| -> Result<(), KafkaError> {
            let tpl = partition_list(&commits)?;
            self.producer
                .send_offsets_to_transaction(&tpl, &group, timeout)?;
            self.producer.commit_transaction(timeout)
        });
        result.map_err(KafkaRunError::Transaction)?;
        // Settled and committed together: keep the tracker from re-offering them.
        let _ = self.shared.tracker().take_commits();
        Ok(())
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_a_quarter_of_a_pass_except_as_transactions() {
        let mut cfg = KafkaConfig {
            batch_size: 32,
            ..KafkaConfig::default()
        };
        assert_eq!(job_size(&cfg), 8);
        cfg.batch_size = 3;
        assert_eq!(job_size(&cfg), 1);
        cfg.batch_size = 32;
        cfg.delivery = DeliveryMode::ExactlyOnce;
        assert_eq!(job_size(&cfg), 32);
    }
}
