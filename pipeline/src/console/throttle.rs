//! Sign-in throttling: failed sign-ins slow down the account they aim at and the address
//! they come from, exponentially, so a password-guessing run gets a few guesses a minute
//! and then fewer, while everyone else signs in as usual.
//!
//! - Each account and each client address has a count of consecutive failures. The first
//!   [`ThrottlePolicy::free_failures`] cost nothing (typos); after that each failure
//!   blocks the key for `base_delay · 2^(n − free − 1)`, up to `max_delay`.
//! - A blocked sign-in is answered at once (429 and `Retry-After`) without checking the
//!   password, so an attack costs the server nothing and cannot crowd out the permits
//!   real sign-ins use.
//! - After [`ThrottlePolicy::lockout_after`] consecutive failures on one account, the
//!   account is locked in the database (audited) until an admin unlocks it: by then the
//!   back-off has let through hours of guessing at a few per hour.
//! - A success clears the account's count, never the address's: an attacker cannot
//!   launder an address by signing in to an account of their own. Address counts are
//!   forgotten after `forget_after` without failures.
//!
//! State is per console instance and in memory; lockouts are in the shared database.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How hard failures are punished.
#[derive(Debug, Clone)]
pub struct ThrottlePolicy {
    /// Consecutive failures allowed before any delay.
    pub free_failures: u32,
    /// Delay after the first failure past the free ones; doubles with each next one.
    pub base_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// Consecutive failures on one account that lock it until an admin unlocks it.
    pub lockout_after: u32,
    /// A key with no failure for this long starts again from zero.
    pub forget_after: Duration,
    /// Keys remembered at most (an attacker spraying user names cannot grow memory past it).
    pub max_keys: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            free_failures: 3,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(15 * 60),
            lockout_after: 20,
            forget_after: Duration::from_secs(60 * 60),
            max_keys: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    blocked_until: Instant,
}

/// What a failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    /// The account has just reached the lockout threshold: lock it now.
    pub lock_account: bool,
}

/// Failure counts by account and by client address.
pub struct SignInThrottle {
    policy: ThrottlePolicy,
    entries: Mutex<HashMap<String, Entry>>,
}

fn account_key(account: &str) -> String {
    format!("account:{}", account.trim().to_lowercase())
}

fn address_key(address: &str) -> String {
    format!("address:{address}")
}

impl SignInThrottle {
    /// A throttle with the given policy.
    pub fn new(policy: ThrottlePolicy) -> Self {
        SignInThrottle {
            policy,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves counts, never a broken invariant.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(wait)` while the account or the address is blocked.
    pub fn check(&self, account: &str, address: &str, now: Instant) -> Result<(), Duration> {
        let entries = self.entries();
        let wait = [account_key(account), address_key(address)]
            .iter()
            .filter_map(|k| entries.get(k))
            .map(|e| e.blocked_until.saturating_duration_since(now))
            .max()
            .unwrap_or_default();
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    /// Records a failed sign-in.
    pub fn failure(&self, account: &str, address: &str, now: Instant) -> FailureOutcome {
        let mut entries = self.entries();
        if entries.len() >= self.policy.max_keys {
            self.prune(&mut entries, now);
        }
        let mut account_failures = 0;
        for (key, is_account) in [(account_key(account), true), (address_key(address), false)] {
            let entry = entries.entry(key).or_insert(Entry {
                failures: 0,
                last_failure: now,
                blocked_until: now,
            });
            if now.saturating_duration_since(entry.last_failure) > self.policy.forget_after {
                entry.failures = 0;
            }
            entry.failures += 1;
            entry.last_failure = now;
            entry.blocked_until = now + self.delay(entry.failures);
            if is_account {
                account_failures = entry.failures;
            }
        }
        FailureOutcome {
            lock_account: account_failures == self.policy.lockout_after,
        }
    }

    /// Records a successful sign-in: the account starts again from zero.
    pub fn success(&self, account: &str) {
        self.entries().remove(&account_key(account));
    }

    /// The block after `failures` consecutive failures.
    pub fn delay(&self, failures: u32) -> Duration {
        let past_free = failures.saturating_sub(self.policy.free_failures);
        if past_free == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(past_free - 1).unwrap_or(u32::MAX);
        self.policy
            .base_delay
            .checked_mul(factor)
            .unwrap_or(self.policy.max_delay)
            .min(self.policy.max_delay)
    }

    /// Drops keys not failed for `forget_after`; if that is not enough, the oldest half.
    fn prune(&self, entries: &mut HashMap<String, Entry>, now: Instant) {
        let forget = self.policy.forget_after;
        entries.retain(|_, e| now.saturating_duration_since(e.last_failure) <= forget);
        if entries.len() >= self.policy.max_keys {
            let mut ages: Vec<Instant> = entries.values().map(|e| e.last_failure).collect();
            ages.sort();
            let cut = ages[ages.len() / 2];
            entries.retain(|_, e| e.last_failure > cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> SignInThrottle {
        SignInThrottle::new(ThrottlePolicy::default())
    }

    #[test]
    fn delays_start_after_the_free_failures_and_double_up_to_the_cap() {
        let t = throttle();
        let secs: Vec<u64> = (1..=14).map(|n| t.delay(n).as_secs()).collect();
        assert_eq!(
            secs,
            [0, 0, 0, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
        );
        assert_eq!(t.delay(u32::MAX), Duration::from_secs(900));
    }

    /// An attacker who retries the moment the block ends gets a few guesses in the first
    /// minute and one every few minutes after.
    #[test]
    fn a_guessing_run_is_slowed_to_a_few_guesses_a_minute() {
        let t = throttle();
        let start = Instant::now();
        let mut now = start;
        let mut guesses = Vec::new();
        while now < start + Duration::from_secs(3600) {
            match t.check("alice", "10.0.0.9", now) {
                Ok(()) => {
                    guesses.push(now - start);
                    t.failure("alice", "10.0.0.9", now);
                }
                Err(wait) => now += wait,
            }
        }
        let in_first_minute = guesses.iter().filter(|g| g.as_secs() < 60).count();
        assert!(
            in_first_minute <= 8,
            "{in_first_minute} guesses in the first minute"
        );
        assert!(guesses.len() <= 16, "{} guesses in an hour", guesses.len());
    }

    #[test]
    fn the_account_locks_once_at_the_threshold() {
        let t = SignInThrottle::new(ThrottlePolicy {
            lockout_after: 5,
            ..ThrottlePolicy::default()
        });
        let now = Instant::now();
        let locks: Vec<bool> = (0..7)
            .map(|i| t.failure("Bob", &format!("10.0.0.{i}"), now).lock_account)
            .collect();
        assert_eq!(locks, [false, false, false, false, true, false, false]);
    }

    #[test]
    fn blocks_are_per_account_and_per_address() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..5 {
            t.failure("alice", "10.0.0.9", now);
        }
        assert!(
            t.check("alice", "10.0.0.1", now).is_err(),
            "the account is blocked"
        );
        assert!(
            t.check("bob", "10.0.0.9", now).is_err(),
            "the address is blocked"
        );
        assert_eq!(t.check("bob", "10.0.0.1", now), Ok(()), "others are not");
        assert!(
            t.check("ALICE ", "10.0.0.1", now).is_err(),
            "names fold case"
        );
        t.success("alice");
        assert_eq!(t.check("alice", "10.0.0.1", now), Ok(()));
        assert!(
            t.check("alice", "10.0.0.9", now).is_err(),
            "a success does not clear the address"
        );
    }

    #[test]
    fn old_failures_are_forgotten_and_memory_is_bounded() {
        let t = SignInThrottle::new(ThrottlePolicy {
            max_keys: 100,
            ..ThrottlePolicy::default()
        });
        let now = Instant::now();
        for i in 0..1_000 {
            t.failure(
                &format!("user{i}"),
                "10.0.0.9",
                now + Duration::from_millis(i),
            );
        }
        assert!(t.entries().len() <= 100);
        let later = now + Duration::from_secs(2 * 3600);
        t.failure("alice", "10.0.0.8", later);
        assert_eq!(
            t.check("alice", "10.0.0.8", later),
            Ok(()),
            "one fresh failure costs nothing"
        );
    }
}
