//! Which offsets may be committed, per partition, when work completes out of order.
//!
//! A message is *pending* from the moment it is handed to the pipeline until every record
//! produced from it is acknowledged. The offset committed for a partition is the lowest
//! pending offset, or one past the highest completed one when nothing is pending: a
//! commit therefore never skips a message whose outputs are not yet safely written,
//! whatever order batches finish in. A message that *failed* (a record the broker
//! refused, a batch the run gave up on) is no longer in flight but still holds the commit
//! back: it must be read again after a restart.
//!
//! Each assignment of a partition gets a new *epoch*. Messages read under an older epoch
//! (the partition was revoked, perhaps handed back) are not tracked: the new owner, or
//! this consumer again, reads them from the committed offset.

use std::collections::{BTreeMap, BTreeSet};

pub type PartitionKey = (String, i32);

#[derive(Debug, Default)]
struct PartitionState {
    epoch: u64,
    pending: BTreeSet<i64>,
    failed: BTreeSet<i64>,
    /// One past the highest completed offset.
    done_up_to: Option<i64>,
    /// The offset last handed out for committing.
    committed: Option<i64>,
}

impl PartitionState {
    fn commit_point(&self) -> Option<i64> {
        let lowest = match (self.pending.first(), self.failed.first()) {
            (Some(&a), Some(&b)) => Some(a.min(b)),
            (a, b) => a.or(b).copied(),
        };
        lowest.or(self.done_up_to)
    }
}

#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: BTreeMap<PartitionKey, PartitionState>,
    next_epoch: u64,
}

impl OffsetTracker {
    /// The partitions were assigned to this consumer.
    pub fn assign(&mut self, keys: impl IntoIterator<Item = PartitionKey>) {
        for key in keys {
            self.next_epoch += 1;
            self.partitions.insert(
                key,
                PartitionState {
                    epoch: self.next_epoch,
                    ..Default::default()
                },
            );
        }
    }

    /// The partitions were taken away; their pending work no longer counts.
    pub fn revoke<'a>(&mut self, keys: impl IntoIterator<Item = &'a PartitionKey>) {
        for key in keys {
            self.partitions.remove(key);
        }
    }

    /// The current epoch of an assigned partition.
    pub fn epoch(&self, key: &PartitionKey) -> Option<u64> {
        self.partitions.get(key).map(|p| p.epoch)
    }

    /// Marks a message read under `epoch` as pending. Returns false, and tracks nothing,
    /// when the partition was revoked (or reassigned) since: skip the message.
    pub fn start(&mut self, key: &PartitionKey, epoch: u64, offset: i64) -> bool {
        match self.partitions.get_mut(key) {
            Some(p) if p.epoch == epoch => {
                p.pending.insert(offset);
                true
            }
            _ => false,
        }
    }

    /// Every output of the message is acknowledged.
    pub fn complete(&mut self, key: &PartitionKey, epoch: u64, offset: i64) {
        if let Some(p) = self.partitions.get_mut(key).filter(|p| p.epoch == epoch) {
            if p.pending.remove(&offset) {
                p.done_up_to = Some(p.done_up_to.map_or(offset + 1, |d| d.max(offset + 1)));
            }
        }
    }

    /// The message will not be acknowledged: stop waiting for it, never commit past it.
    pub fn fail(&mut self, key: &PartitionKey, epoch: u64, offset: i64) {
        if let Some(p) = self.partitions.get_mut(key).filter(|p| p.epoch == epoch) {
            if p.pending.remove(&offset) {
                p.failed.insert(offset);
            }
        }
    }

    /// Offsets to commit now: those that moved since the last call.
    pub fn take_commits(&mut self) -> Vec<(PartitionKey, i64)> {
        self.commits_where(|_| true)
    }

    /// Like [`OffsetTracker::take_commits`], restricted to some partitions.
    pub fn take_commits_for(&mut self, keys: &[PartitionKey]) -> Vec<(PartitionKey, i64)> {
        self.commits_where(|k| keys.contains(k))
    }

    fn commits_where(
        &mut self,
        wanted: impl Fn(&PartitionKey) -> bool,
    ) -> Vec<(PartitionKey, i64)> {
        let mut out = Vec::new();
        for (key, p) in self.partitions.iter_mut().filter(|(k, _)| wanted(k)) {
            if let Some(point) = p.commit_point() {
                if p.committed.is_none_or(|c| point > c) {
                    p.committed = Some(point);
                    out.push((key.clone(), point));
                }
            }
        }
        out
    }

    /// Messages handed to the pipeline and still in flight (neither acknowledged nor
    /// failed), in some partitions (all when `keys` is None).
    pub fn pending(&self, keys: Option<&[PartitionKey]>) -> usize {
        self.partitions
            .iter()
            .filter(|(k, _)| keys.is_none_or(|keys| keys.contains(k)))
            .map(|(_, p)| p.pending.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> PartitionKey {
        ("posts".to_string(), p)
    }

    #[test]
    fn commit_waits_for_the_lowest_pending_offset() {
        let mut t = OffsetTracker::default();
        t.assign([key(0)]);
        let e = t.epoch(&key(0)).unwrap();
        for o in 10..15 {
            assert!(t.start(&key(0), e, o));
        }
        // Later work finishes first: nothing may be committed yet.
        t.complete(&key(0), e, 12);
        t.complete(&key(0), e, 14);
        assert_eq!(t.take_commits(), vec![(key(0), 10)]);
        assert_eq!(
            t.take_commits(),
            vec![],
            "unchanged offsets are not committed twice"
        );
        t.complete(&key(0), e, 10);
        t.complete(&key(0), e, 11);
        assert_eq!(t.take_commits(), vec![(key(0), 13)]);
        t.complete(&key(0), e, 13);
        assert_eq!(t.take_commits(), vec![(key(0), 15)]);
        assert_eq!(t.pending(None), 0);
    }

    #[test]
    fn a_failed_message_holds_the_commit_back_but_is_not_in_flight() {
        let mut t = OffsetTracker::default();
        t.assign([key(0)]);
        let e = t.epoch(&key(0)).unwrap();
        for o in 0..3 {
            t.start(&key(0), e, o);
        }
        t.complete(&key(0), e, 0);
        t.fail(&key(0), e, 1);
        t.complete(&key(0), e, 2);
        assert_eq!(t.pending(None), 0);
        assert_eq!(t.take_commits(), vec![(key(0), 1)]);
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::default();
        t.assign([key(0), key(1)]);
        let (e0, e1) = (t.epoch(&key(0)).unwrap(), t.epoch(&key(1)).unwrap());
        t.start(&key(0), e0, 5);
        t.start(&key(1), e1, 7);
        t.start(&key(1), e1, 8);
        t.complete(&key(1), e1, 7);
        assert_eq!(t.take_commits(), vec![(key(0), 5), (key(1), 8)]);
        assert_eq!(t.pending(Some(&[key(1)])), 1);
        assert_eq!(t.take_commits_for(&[key(0)]), vec![]);
    }

    #[test]
    fn messages_from_an_earlier_assignment_are_not_tracked() {
        let mut t = OffsetTracker::default();
        t.assign([key(0)]);
        let old = t.epoch(&key(0)).unwrap();
        t.start(&key(0), old, 3);
        t.revoke(&[key(0)]);
        assert!(!t.start(&key(0), old, 4), "revoked partition");
        t.assign([key(0)]);
        assert!(
            !t.start(&key(0), old, 4),
            "read before the partition came back"
        );
        // A completion from the old assignment does not move the new one.
        t.complete(&key(0), old, 3);
        assert_eq!(t.take_commits(), vec![]);
        let new = t.epoch(&key(0)).unwrap();
        assert!(t.start(&key(0), new, 3));
        t.complete(&key(0), new, 3);
        assert_eq!(t.take_commits(), vec![(key(0), 4)]);
    }
}
