//! Dead-letter policy, kept apart from the run loop: the headers that say where a
//! record came from and why it failed, and the budget that stops a consumer which is
//! dead-lettering too much of its input (a bad deploy, a producer sending a new format)
//! instead of quietly moving everything aside.

use std::collections::VecDeque;

use rdkafka::message::{Header, OwnedHeaders};

use crate::contract::RejectedRecord;

/// Headers on dead-letter records.
pub const HEADER_REASON: &str = "vigie.reason";
pub const HEADER_TOPIC: &str = "vigie.original.topic";
pub const HEADER_PARTITION: &str = "vigie.original.partition";
pub const HEADER_OFFSET: &str = "vigie.original.offset";

pub fn headers(record: &RejectedRecord, topic: &str, partition: i32, offset: i64) -> OwnedHeaders {
    let partition = partition.to_string();
    let offset = offset.to_string();
    OwnedHeaders::new()
        .insert(Header {
            key: HEADER_REASON,
            value: Some(record.reason.as_str()),
        })
        .insert(Header {
            key: HEADER_TOPIC,
            value: Some(topic),
        })
        .insert(Header {
            key: HEADER_PARTITION,
            value: Some(partition.as_str()),
        })
        .insert(Header {
            key: HEADER_OFFSET,
            value: Some(offset.as_str()),
        })
}

/// The share of dead letters over the last `window` messages, checked once the window
/// holds at least a tenth of its size (so one bad message at start-up does not trip it).
#[derive(Debug)]
pub struct DeadLetterBudget {
    max_ratio: f64,
    window: usize,
    recent: VecDeque<bool>,
    dead_in_window: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{dead} of the last {seen} messages were dead-lettered (limit {max_ratio}); stopping so that an operator can look: \
         the offending batch is not committed and will be read again after a restart")]
pub struct BudgetExceeded {
    pub dead: usize,
    pub seen: usize,
    pub max_ratio: f64,
}

impl DeadLetterBudget {
    /// `max_ratio` of 1.0 or more switches the cap off.
    pub fn new(max_ratio: f64, window: usize) -> Self {
        DeadLetterBudget {
            max_ratio,
            window: window.max(1),
            recent: VecDeque::new(),
            dead_in_window: 0,
        }
    }

    /// Records a batch's outcomes (true = dead-lettered) and checks the budget.
    pub fn record(
        &mut self,
        outcomes: impl IntoIterator<Item = bool>,
    ) -> Result<(), BudgetExceeded> {
        for dead in outcomes {
            self.recent.push_back(dead);
            self.dead_in_window += usize::from(dead);
            if self.recent.len() > self.window && self.recent.pop_front() == Some(true) {
                self.dead_in_window -= 1;
            }
        }
        let seen = self.recent.len();
        let enough = seen * 10 >= self.window;
        if self.max_ratio < 1.0
            && enough
            && self.dead_in_window as f64 > self.max_ratio * seen as f64
        {
            return Err(BudgetExceeded {
                dead: self.dead_in_window,
                seen,
                max_ratio: self.max_ratio,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_dead_letters_pass_a_flood_stops() {
        let mut b = DeadLetterBudget::new(0.5, 100);
        // 1 in 5 dead: fine, for as long as it lasts.
        for _ in 0..100 {
            b.record([true, false, false, false, false]).unwrap();
        }
        // Then everything fails: the window fills with dead letters and the cap trips.
        let mut tripped = None;
        for i in 0..100 {
            if let Err(e) = b.record([true]) {
                tripped = Some((i, e));
                break;
            }
        }
        let (i, e) = tripped.expect("the cap trips");
        assert!(
            i > 20 && i < 100,
            "tripped after {i} consecutive dead letters"
        );
        assert_eq!(e.seen, 100);
        assert!(e.dead > 50);
    }

    #[test]
    fn not_judged_on_a_handful_of_messages() {
        let mut b = DeadLetterBudget::new(0.5, 1000);
        assert!(
            b.record([true; 50]).is_ok(),
            "50 messages are under a tenth of the window"
        );
        assert!(b.record([true; 60]).is_err());
    }

    #[test]
    fn a_ratio_of_one_switches_the_cap_off() {
        let mut b = DeadLetterBudget::new(1.0, 10);
        assert!(b.record([true; 100]).is_ok());
    }
}
