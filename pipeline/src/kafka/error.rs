//! How a Kafka run fails, with the facts a caller may act on as fields.

use std::fmt;

use rdkafka::error::KafkaError;

use super::dead_letter::BudgetExceeded;
use super::offsets::PartitionKey;

/// Why [`super::run`] stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum KafkaRunError {
    /// The Kafka client could not be created, subscribed or driven.
    #[error("kafka client: {0}")]
    Client(#[from] KafkaError),
    /// A record could not be delivered (or the run could not go on reading). Boxed: it
    /// is rare, and would make every `Result` of the run loop large.
    #[error("{0}; offsets not committed past it, the input will be read again")]
    Delivery(Box<DeliveryFailure>),
    /// A record could not be serialised.
    #[error("cannot encode record: {0}")]
    Encode(#[from] serde_json::Error),
    /// Too many dead letters among the last messages: a bad deploy upstream.
    #[error(transparent)]
    DeadLetterBudget(#[from] BudgetExceeded),
    /// A batch could not be screened (its pass panicked, or the worker stopped).
    #[error("screening failed: {0}; offsets not committed past it, the input will be read again")]
    Screening(#[from] crate::batcher::SubmitError),
    /// The screening worker thread could not be started.
    #[error("cannot start the screening worker: {0}")]
    Worker(std::io::Error),
    /// Exactly-once: a transaction failed and was aborted.
    #[error("transaction failed: {0}; it was aborted and its inputs will be read again")]
    Transaction(KafkaError),
}

impl From<DeliveryFailure> for KafkaRunError {
    fn from(failure: DeliveryFailure) -> Self {
        KafkaRunError::Delivery(Box::new(failure))
    }
}

/// Where an input message was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputPosition {
    /// Input topic.
    pub topic: String,
    /// Partition of the input topic.
    pub partition: i32,
    /// Offset of the message in that partition.
    pub offset: i64,
}

impl InputPosition {
    pub(crate) fn of(key: &PartitionKey, offset: i64) -> Self {
        InputPosition {
            topic: key.0.clone(),
            partition: key.1,
            offset,
        }
    }
}

impl fmt::Display for InputPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} offset {}",
            self.topic, self.partition, self.offset
        )
    }
}

/// The first failure that stops a run; the input it names stays uncommitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryFailure {
    /// The broker finally refused a record (after librdkafka's retries).
    #[error("delivery to {topic} failed: {error} (input {input})")]
    Refused {
        /// Output topic of the record.
        topic: String,
        /// The input the record was made from.
        input: InputPosition,
        /// librdkafka's final error.
        error: KafkaError,
    },
    /// The producer would not take a record at all (not a full queue: that waits).
    #[error("cannot produce to {topic}: {error} (input {input})")]
    NotQueued {
        /// Output topic of the record.
        topic: String,
        /// The input the record was made from.
        input: InputPosition,
        /// The producer's error.
        error: KafkaError,
    },
    /// The consumer cannot go on (e.g. fenced by a newer instance).
    #[error("consumer: {0}")]
    ConsumerFatal(KafkaError),
    /// Exactly-once: the consumer has no group metadata to commit offsets with.
    #[error("no consumer-group metadata to commit offsets in the transaction")]
    NoGroupMetadata,
}
