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

    /// Starts a sign-in: `Err(wait)` while the account or the address is blocked; else
    /// the attempt is counted as a failure at once (undone by [`SignInThrottle::succeeded`]),
    /// so that requests arriving together cannot all slip through before the first of
    /// them is judged.
    pub fn begin(&self, account: &str, address: &str, now: Instant) -> Result<(), Duration> {
        let mut entries = self.entries();
        let keys = [account_key(account), address_key(address)];
        let wait = keys
            .iter()
            .filter_map(|k| entries.get(k))
            .map(|e| e.blocked_until.saturating_duration_since(now))
            .max()
            .unwrap_or_default();
        if !wait.is_zero() {
            return Err(wait);
        }
        if entries.len() + 2 > self.policy.max_keys {
            self.prune(&mut entries, now);
        }
        for key in keys {
            let entry = entries.entry(key).or_insert(Entry {
                failures: 0,
                last_failure: now,
                blocked_until: now,
            });
            if now.saturating_duration_since(entry.last_failure) > self.policy.forget_after {
                entry.failures = 0;
            }
            entry.failures = entry.failures.saturating_add(1);
            entry.last_failure = now;
            entry.blocked_until = now
                .checked_add(self.delay(entry.failures))
                .unwrap_or(entry.blocked_until);
        }
        Ok(())
    }

    /// The sign-in begun failed: whether the account should be locked now. It locks at
    /// every multiple of `lockout_after` consecutive failures, so a lockout that did not
    /// take (the name typed differently) or that an admin lifted comes back after as many
    /// failures again.
    pub fn failed(&self, account: &str) -> FailureOutcome {
        let failures = self
            .entries()
            .get(&account_key(account))
            .map_or(0, |e| e.failures);
        let every = self.policy.lockout_after.max(1);
        FailureOutcome {
            lock_account: failures >= every && failures.is_multiple_of(every),
        }
    }

    /// The sign-in begun was never judged (the server was too busy): its failure counted
    /// in advance is taken back from both keys.
    pub fn abandoned(&self, account: &str, address: &str) {
        let mut entries = self.entries();
        for key in [account_key(account), address_key(address)] {
            if let Some(e) = entries.get_mut(&key) {
                self.take_back(e);
            }
        }
    }

    /// Undoes the failure a sign-in counted as it began; unblocks the key when what is
    /// left is within the free failures.
    fn take_back(&self, e: &mut Entry) {
        e.failures = e.failures.saturating_sub(1);
        if e.failures <= self.policy.free_failures {
            e.blocked_until = e.last_failure;
        }
    }

    /// The sign-in begun succeeded: the account starts again from zero, and the address
    /// loses the failure counted in advance (its earlier failures stay).
    pub fn succeeded(&self, account: &str, address: &str) {
        let mut entries = self.entries();
        entries.remove(&account_key(account));
        if let Some(e) = entries.get_mut(&address_key(address)) {
            self.take_back(e);
        }
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

    /// Makes room: drops keys not failed for `forget_after`, then the oldest addresses
    /// that are not blocked, then the oldest accounts that are not blocked. Blocked keys
    /// stay, so filling the table from many addresses cannot reset an account's back-off.
    fn prune(&self, entries: &mut HashMap<String, Entry>, now: Instant) {
        let forget = self.policy.forget_after;
        entries.retain(|_, e| now.saturating_duration_since(e.last_failure) <= forget);
        for prefix in ["address:", "account:"] {
            if entries.len() < self.policy.max_keys {
                return;
            }
            let mut free: Vec<(Instant, String)> = entries
                .iter()
                .filter(|(k, e)| k.starts_with(prefix) && e.blocked_until <= now)
                .map(|(k, e)| (e.last_failure, k.clone()))
                .collect();
            free.sort();
            let excess = entries.len() + 1 - self.policy.max_keys.min(entries.len() + 1);
            let target = excess.max(entries.len() / 2);
            for (_, key) in free.into_iter().take(target) {
                entries.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> SignInThrottle {
        SignInThrottle::new(ThrottlePolicy::default())
    }

    /// A sign-in that fails, begun at `now` (false when it was throttled).
    fn fail(t: &SignInThrottle, account: &str, address: &str, now: Instant) -> bool {
        let begun = t.begin(account, address, now).is_ok();
        if begun {
            t.failed(account);
        }
        begun
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
            match t.begin("alice", "10.0.0.9", now) {
                Ok(()) => {
                    guesses.push(now - start);
                    t.failed("alice");
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

    /// Requests that arrive together are counted as they begin, not as they finish.
    #[test]
    fn simultaneous_guesses_are_counted_before_they_are_judged() {
        let t = throttle();
        let now = Instant::now();
        let begun = (0..500)
            .filter(|_| t.begin("alice", "10.0.0.9", now).is_ok())
            .count();
        assert_eq!(
            begun, 4,
            "the free tries and the one that starts the back-off"
        );
    }

    #[test]
    fn the_account_locks_at_every_multiple_of_the_threshold() {
        let t = SignInThrottle::new(ThrottlePolicy {
            lockout_after: 5,
            ..ThrottlePolicy::default()
        });
        let mut now = Instant::now();
        let mut locks = Vec::new();
        while locks.len() < 11 {
            // Each from a new address, and the name typed differently: the account is one.
            let name = if locks.len() % 2 == 0 { "Bob" } else { "bob" };
            match t.begin(name, &format!("10.0.0.{}", locks.len()), now) {
                Ok(()) => locks.push(t.failed(name).lock_account),
                Err(wait) => now += wait,
            }
        }
        let at: Vec<usize> = (0..11).filter(|&i| locks[i]).map(|i| i + 1).collect();
        assert_eq!(at, [5, 10], "locks after the 5th and the 10th failure");
    }

    #[test]
    fn blocks_are_per_account_and_per_address() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..4 {
            assert!(fail(&t, "alice", "10.0.0.9", now));
        }
        assert!(
            t.begin("alice", "10.0.0.1", now).is_err(),
            "the account is blocked"
        );
        assert!(
            t.begin("bob", "10.0.0.9", now).is_err(),
            "the address is blocked"
        );
        assert!(
            t.begin("ALICE ", "10.0.0.1", now).is_err(),
            "names fold case"
        );
        assert_eq!(t.begin("bob", "10.0.0.1", now), Ok(()), "others are not");
        t.succeeded("bob", "10.0.0.1");
        assert_eq!(
            t.begin("bob", "10.0.0.1", now),
            Ok(()),
            "a success leaves no trace"
        );
        t.succeeded("bob", "10.0.0.1");

        let later = now + Duration::from_secs(3);
        assert_eq!(t.begin("alice", "10.0.0.1", later), Ok(()));
        t.succeeded("alice", "10.0.0.1");
        assert_eq!(
            t.begin("alice", "10.0.0.1", later),
            Ok(()),
            "a success clears the account"
        );
        t.succeeded("alice", "10.0.0.1");
        assert!(
            fail(&t, "carol", "10.0.0.9", later),
            "the address's block has run out"
        );
        assert!(
            t.begin("dave", "10.0.0.9", later).is_err(),
            "but its count was kept: one more failure blocks it again"
        );
    }

    #[test]
    fn old_failures_are_forgotten_and_memory_is_bounded() {
        let t = SignInThrottle::new(ThrottlePolicy {
            max_keys: 100,
            ..ThrottlePolicy::default()
        });
        let now = Instant::now();
        for _ in 0..4 {
            fail(&t, "victim", "10.9.9.9", now);
        }
        for i in 0..1_000u32 {
            let at = now + Duration::from_millis(u64::from(i));
            fail(
                &t,
                &format!("user{i}"),
                &format!("10.1.{}.{}", i / 256, i % 256),
                at,
            );
        }
        assert!(t.entries().len() <= 100, "{} keys", t.entries().len());
        assert!(
            t.begin("victim", "10.2.2.2", now + Duration::from_secs(1))
                .is_err(),
            "a blocked account is never evicted"
        );
        let later = now + Duration::from_secs(2 * 3600);
        assert!(fail(&t, "alice", "10.0.0.8", later));
        assert_eq!(
            t.begin("alice", "10.0.0.8", later),
            Ok(()),
            "one fresh failure costs nothing"
        );
    }
}
