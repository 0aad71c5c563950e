//! The handle that settles one input message: acknowledged when every record made from it
//! was delivered, failed otherwise, and always when the last reference to it is dropped.
//!
//! Every record handed to the producer carries a reference ([`Arc<InputAck>`] as the
//! delivery opaque); the run loop holds one more until all the input's records are handed
//! over. Whatever path ends the input's life (a delivery report, a record the producer
//! refused and gave back, a batch abandoned on an error, a producer purged at shutdown),
//! the last reference to go settles it. No path can forget to: there is nothing to call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::context::Shared;
use super::offsets::PartitionKey;

/// One input message in flight; see the module doc.
pub(crate) struct InputAck {
    shared: Arc<Shared>,
    pub key: PartitionKey,
    pub epoch: u64,
    pub offset: i64,
    read_at: Instant,
    /// Every record made from the input was handed to the producer.
    handed_over: AtomicBool,
    /// A record made from the input was finally refused by the broker.
    failed: AtomicBool,
}

impl InputAck {
    /// Starts tracking a message read under `epoch`. None, and nothing tracked, when its
    /// partition was revoked (or reassigned) since it was read: the message is skipped.
    pub fn start(
        shared: &Arc<Shared>,
        key: PartitionKey,
        epoch: u64,
        offset: i64,
        read_at: Instant,
    ) -> Option<Arc<InputAck>> {
        if !shared.tracker().start(&key, epoch, offset) {
            return None;
        }
        Some(Arc::new(InputAck {
            shared: shared.clone(),
            key,
            epoch,
            offset,
            read_at,
            handed_over: AtomicBool::new(false),
            failed: AtomicBool::new(false),
        }))
    }

    /// Every record of the input is with the producer: once their references are gone,
    /// the input counts as delivered unless one of them failed.
    pub fn handed_over(&self) {
        self.handed_over.store(true, Ordering::SeqCst);
    }

    /// A record of the input will never be delivered: the input must be read again.
    pub fn fail(&self) {
        self.failed.store(true, Ordering::SeqCst);
    }

    fn delivered(&self) -> bool {
        self.handed_over.load(Ordering::SeqCst) && !self.failed.load(Ordering::SeqCst)
    }
}

impl Drop for InputAck {
    fn drop(&mut self) {
        if self.delivered() {
            self.shared
                .acknowledged(&self.key, self.epoch, self.offset, self.read_at);
        } else {
            self.shared.abandoned(&self.key, self.epoch, self.offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::Metrics;
    use crate::ops::Health;

    fn key() -> PartitionKey {
        ("posts".to_string(), 0)
    }

    fn shared() -> Arc<Shared> {
        let shared = Arc::new(Shared::new(
            Arc::new(Metrics::new()),
            Arc::new(Health::default()),
            Duration::from_millis(10),
            false,
        ));
        shared.tracker().assign([key()]);
        shared
    }

    /// What happened to one input before its handles went.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Fate {
        /// Handed over, every record delivered.
        Delivered,
        /// Handed over, a record refused by the broker.
        Refused,
        /// The batch stopped before all its records were handed over.
        NotHandedOver,
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![Vec::new()];
        }
        let mut out = Vec::new();
        for rest in permutations(n - 1) {
            for at in 0..=rest.len() {
                let mut p = rest.clone();
                p.insert(at, n - 1);
                out.push(p);
            }
        }
        out
    }

    /// Every order of dropping the handles of four inputs (offsets 10..14), each with two
    /// records in the producer and the loop's own reference, for every mix of fates. After
    /// each drop, no commit goes past an input not yet delivered; at the end the commit is
    /// the first input not delivered (or one past the last) and nothing stays in flight.
    #[test]
    fn dropping_handles_in_any_order_commits_up_to_the_first_undelivered_input() {
        let fates = [Fate::Delivered, Fate::Refused, Fate::NotHandedOver];
        let orders = permutations(4);
        for mix in 0..3usize.pow(4) {
            let fate: Vec<Fate> = (0..4).map(|i| fates[mix / 3usize.pow(i) % 3]).collect();
            for order in &orders {
                let shared = shared();
                let epoch = shared.tracker().epoch(&key()).expect("assigned");
                // rounds[r][i]: the r-th handle of input i (the loop's, then two records').
                let mut rounds: [Vec<Option<Arc<InputAck>>>; 3] = Default::default();
                for (i, f) in fate.iter().enumerate() {
                    let offset = 10 + i as i64;
                    let ack = InputAck::start(&shared, key(), epoch, offset, Instant::now())
                        .expect("partition assigned");
                    let records = [ack.clone(), ack.clone()];
                    match f {
                        Fate::Delivered => ack.handed_over(),
                        Fate::Refused => {
                            ack.handed_over();
                            records[1].fail();
                        }
                        Fate::NotHandedOver => {}
                    }
                    for (round, handle) in
                        rounds.iter_mut().zip(std::iter::once(ack).chain(records))
                    {
                        round.push(Some(handle));
                    }
                }
                assert_eq!(shared.pending(), 4, "in flight until the handles go");
                let mut gone = [0usize; 4];
                let mut last_commit = None;
                // The loop's references first, in `order`, then each record's likewise.
                for round in &mut rounds {
                    for &i in order {
                        drop(round[i].take());
                        gone[i] += 1;
                        let settled_ok = |j: usize| gone[j] == 3 && fate[j] == Fate::Delivered;
                        let limit = 10 + (0..4).find(|&j| !settled_ok(j)).unwrap_or(4) as i64;
                        for (_, offset) in shared.tracker().take_commits() {
                            assert!(offset <= limit, "{offset} > {limit}: {fate:?} {order:?}");
                            last_commit = Some(offset);
                        }
                    }
                }
                let first_undelivered = fate.iter().position(|f| *f != Fate::Delivered);
                let expected = 10 + first_undelivered.unwrap_or(4) as i64;
                assert_eq!(
                    last_commit,
                    Some(expected),
                    "fates {fate:?}, order {order:?}"
                );
                assert_eq!(shared.pending(), 0, "fates {fate:?}, order {order:?}");
            }
        }
    }

    #[test]
    fn a_message_of_a_revoked_partition_gets_no_handle() {
        let shared = shared();
        let epoch = shared.tracker().epoch(&key()).expect("assigned");
        shared.tracker().revoke(&[key()]);
        assert!(InputAck::start(&shared, key(), epoch, 3, Instant::now()).is_none());
        assert_eq!(shared.pending(), 0);
    }

    #[test]
    fn an_input_settles_only_when_its_last_record_goes() {
        let shared = shared();
        let epoch = shared.tracker().epoch(&key()).expect("assigned");
        let ack = InputAck::start(&shared, key(), epoch, 0, Instant::now()).expect("assigned");
        let record = ack.clone();
        ack.handed_over();
        drop(ack);
        assert_eq!(shared.pending(), 1, "a record is still with the producer");
        assert_eq!(shared.tracker().take_commits(), vec![(key(), 0)]);
        drop(record);
        assert_eq!(shared.pending(), 0);
        assert_eq!(shared.tracker().take_commits(), vec![(key(), 1)]);
    }
}
