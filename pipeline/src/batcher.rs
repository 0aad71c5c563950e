//! Dynamic batching: every source's posts share encoder passes.
//!
//! One worker thread owns the screener's time; the screening API's requests and
//! `vigie run`'s Kafka batches are its jobs. When it is free it takes what is waiting
//! and screens it in one pass. A lone request on an idle worker goes at once; under
//! load, requests pile up while a pass runs, so the next pass is larger: the batch size
//! follows the arrival rate without a timer. While the last pass held more than one
//! post (load), the worker also waits up to `max_wait` for the batch to fill.
//!
//! How large a pass may grow is the [`PassSizer`]'s call: as many posts as the worker
//! screens in `pass_target` (learned from its own passes), so that a request's wait,
//! the pass under way plus its own, stays near twice that; a full `max_batch` once that
//! many are waiting, because then the queue grows faster than short passes clear it and
//! throughput comes first. The queue is bounded in posts: past `capacity` a submission
//! is refused at once ([`SubmitError::Full`]) rather than joining an unbounded backlog,
//! and posts whose request gave up (deadline passed) are dropped before their pass.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::contract::Origin;
use crate::metrics::Metrics;
use crate::screener::{Outcome, Screener};

/// How the batcher gathers posts.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    pub max_batch: usize,
    pub max_wait: Duration,
    /// Posts waiting at most.
    pub capacity: usize,
    /// How long a pass should take while fewer than `max_batch` posts wait (`None`:
    /// passes always take up to `max_batch`).
    pub pass_target: Option<Duration>,
}

/// How long a pass waits for more posts after its first: `max_wait` under load (the
/// last pass held more than one post), nothing otherwise, so that a lone request at a
/// quiet moment goes at once. `vigie run` gathers its Kafka batches by the same rule.
pub fn fill_wait(last_pass: usize, max_wait: Duration) -> Duration {
    if last_pass > 1 {
        max_wait
    } else {
        Duration::ZERO
    }
}

/// How many posts the next pass may hold.
///
/// A pass's time is nearly proportional to its posts (on two cores a pass of 8 posts
/// runs at 0.9 × the rate of a pass of 64), so a short pass costs little throughput and
/// bounds the wait of whoever arrives during it. The cost of a post is learned from the
/// worker's own passes (a moving average of pass time over posts, the fixed part of a
/// pass included, which errs towards shorter passes).
#[derive(Debug, Clone)]
pub struct PassSizer {
    max_batch: usize,
    target: Option<Duration>,
    /// Seconds per post, once a pass was timed.
    per_post: Option<f64>,
}

impl PassSizer {
    /// Weight of the newest pass in the moving average.
    const SMOOTHING: f64 = 0.2;

    pub fn new(max_batch: usize, target: Option<Duration>) -> PassSizer {
        PassSizer {
            max_batch: max_batch.max(1),
            target: target.filter(|t| !t.is_zero()),
            per_post: None,
        }
    }

    /// The most posts the next pass may take when `waiting` posts wait.
    pub fn limit(&self, waiting: usize) -> usize {
        if waiting >= self.max_batch {
            return self.max_batch;
        }
        match (self.target, self.per_post) {
            (Some(target), Some(per_post)) if per_post > 0.0 => {
                let fits = (target.as_secs_f64() / per_post).floor();
                (fits as usize).clamp(1, self.max_batch)
            }
            _ => self.max_batch,
        }
    }

    /// A pass of `posts` posts took `took`.
    pub fn observe(&mut self, posts: usize, took: Duration) {
        if posts == 0 {
            return;
        }
        let sample = took.as_secs_f64() / posts as f64;
        self.per_post = Some(match self.per_post {
            Some(avg) => avg + Self::SMOOTHING * (sample - avg),
            None => sample,
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("the screening queue is full")]
    Full,
    #[error("the request's deadline passed before its posts were screened")]
    Expired,
    #[error("the screener stopped")]
    Stopped,
    #[error("the records could not be stored in the moderation sink")]
    NotStored,
}

/// Posts the batcher took: their outcomes come when their pass is done.
pub struct Pending {
    answer: oneshot::Receiver<Answer>,
    deadline: Instant,
}

impl Pending {
    /// One outcome per input, in order, or why there are none.
    pub async fn outcomes(self) -> Result<Vec<Outcome>, SubmitError> {
        match tokio::time::timeout_at(self.deadline.into(), self.answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(SubmitError::Stopped),
            // The worker sees the deadline too and drops the job unscreened if its pass
            // has not begun; if it has, the posts may still be screened and stored (a
            // client that retries may store them twice: consumers dedupe by post id).
            Err(_) => Err(SubmitError::Expired),
        }
    }
}

/// Posts the batcher did not take, handed back with the reason.
pub struct Refused {
    pub error: SubmitError,
    pub inputs: Vec<(Origin, Vec<u8>)>,
}

/// What to do with the records of a pass before the answers go out (write flagged
/// records to the moderation sink). Runs on the worker thread; an error fails the pass's
/// requests, so a record is never answered without being stored where it must go.
pub type AfterPass = Box<dyn Fn(&[Outcome]) -> Result<(), String> + Send>;

type Answer = Result<Vec<Outcome>, SubmitError>;

/// Where a job's answer goes: taken by the first answer, so that after a panicking pass
/// the worker can answer whoever was not answered yet.
#[derive(Clone)]
struct Reply(Arc<std::sync::Mutex<Option<oneshot::Sender<Answer>>>>);

impl Reply {
    fn new(tx: oneshot::Sender<Answer>) -> Reply {
        Reply(Arc::new(std::sync::Mutex::new(Some(tx))))
    }

    fn send(&self, answer: Answer) {
        let taken = self.0.lock().ok().and_then(|mut slot| slot.take());
        if let Some(tx) = taken {
            // A request that gave up meanwhile is simply not answered.
            let _ = tx.send(answer);
        }
    }

    /// The request gave up (or was answered).
    fn is_closed(&self) -> bool {
        self.0
            .lock()
            .map(|slot| slot.as_ref().is_none_or(|tx| tx.is_closed()))
            .unwrap_or(true)
    }
}

struct Job {
    inputs: Vec<(Origin, Vec<u8>)>,
    deadline: Instant,
    reply: Reply,
}

/// A handle to the batcher; clones share the worker.
#[derive(Clone)]
pub struct Batcher {
    tx: SyncSender<Job>,
    alive: Arc<std::sync::atomic::AtomicBool>,
    queued: Arc<AtomicUsize>,
    capacity: usize,
    metrics: Arc<Metrics>,
    passes: Arc<PassCounts>,
}

/// Passes run and the posts they held, for benches and tests.
#[derive(Debug, Default)]
pub struct PassCounts {
    pub passes: AtomicU64,
    pub posts: AtomicU64,
    /// Time spent screening, in microseconds (how busy the worker was).
    pub busy_micros: AtomicU64,
}

impl Batcher {
    /// Starts the worker thread. It stops when every handle is dropped.
    pub fn start(
        screener: Arc<Screener>,
        policy: BatchPolicy,
        metrics: Arc<Metrics>,
        after_pass: Option<AfterPass>,
    ) -> std::io::Result<Batcher> {
        let policy = BatchPolicy {
            max_batch: policy.max_batch.max(1),
            capacity: policy.capacity.max(policy.max_batch.max(1)),
            ..policy
        };
        // Jobs are counted in posts by `queued`; the channel only needs room for them.
        let (tx, rx) = mpsc::sync_channel(policy.capacity);
        let queued = Arc::new(AtomicUsize::new(0));
        let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let passes = Arc::new(PassCounts::default());
        let worker = Worker {
            alive: alive.clone(),
            screener,
            policy,
            rx,
            queued: queued.clone(),
            metrics: metrics.clone(),
            after_pass,
            passes: passes.clone(),
        };
        std::thread::Builder::new()
            .name("vigie-batcher".into())
            .spawn(move || worker.run())?;
        Ok(Batcher {
            tx,
            alive,
            queued,
            capacity: policy.capacity,
            metrics,
            passes,
        })
    }

    /// Screens `inputs` in the next pass that has room; one outcome per input, in order.
    pub async fn screen(
        &self,
        inputs: Vec<(Origin, Vec<u8>)>,
        deadline: Instant,
    ) -> Result<Vec<Outcome>, SubmitError> {
        match self.enqueue(inputs, deadline) {
            Ok(pending) => pending.outcomes().await,
            Err(refused) => Err(refused.error),
        }
    }

    /// Queues `inputs` for a pass and returns at once; the outcomes come through the
    /// returned [`Pending`]. A refusal hands the inputs back, so that a source with no
    /// deadline (Kafka) can offer them again later without a copy.
    pub fn enqueue(
        &self,
        inputs: Vec<(Origin, Vec<u8>)>,
        deadline: Instant,
    ) -> Result<Pending, Refused> {
        let n = inputs.len();
        // Reserve room only if it fits, so that concurrent submissions cannot overshoot
        // the bound and a refused one never takes room from others.
        let capacity = self.capacity;
        let reserved = self
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                (q + n <= capacity).then_some(q + n)
            });
        let before = match reserved {
            Ok(before) => before,
            Err(_) => {
                return Err(Refused {
                    error: SubmitError::Full,
                    inputs,
                })
            }
        };
        self.metrics.queued(before + n);
        let (reply, answer) = oneshot::channel();
        let job = Job {
            inputs,
            deadline,
            reply: Reply::new(reply),
        };
        match self.tx.try_send(job) {
            Ok(()) => Ok(Pending { answer, deadline }),
            Err(e) => {
                self.queued.fetch_sub(n, Ordering::SeqCst);
                Err(match e {
                    mpsc::TrySendError::Full(job) => Refused {
                        error: SubmitError::Full,
                        inputs: job.inputs,
                    },
                    mpsc::TrySendError::Disconnected(job) => Refused {
                        error: SubmitError::Stopped,
                        inputs: job.inputs,
                    },
                })
            }
        }
    }

    /// Time the worker spent in passes so far (the rest it waited for posts).
    pub fn busy(&self) -> Duration {
        Duration::from_micros(self.passes.busy_micros.load(Ordering::Relaxed))
    }

    /// The worker is running (for readiness).
    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Posts waiting for a pass.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Passes run so far and the posts they held.
    pub fn pass_counts(&self) -> (u64, u64) {
        (
            self.passes.passes.load(Ordering::Relaxed),
            self.passes.posts.load(Ordering::Relaxed),
        )
    }
}

struct Worker {
    alive: Arc<std::sync::atomic::AtomicBool>,
    screener: Arc<Screener>,
    policy: BatchPolicy,
    rx: Receiver<Job>,
    queued: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    after_pass: Option<AfterPass>,
    passes: Arc<PassCounts>,
}

impl Worker {
    fn run(self) {
        let mut last_pass = 0usize;
        let mut sizer = PassSizer::new(self.policy.max_batch, self.policy.pass_target);
        // A job that did not fit the last pass opens the next one.
        let mut carried: Option<Job> = None;
        loop {
            let first = match carried.take() {
                Some(job) => job,
                None => match self.rx.recv() {
                    Ok(job) => job,
                    Err(_) => break,
                },
            };
            let mut posts = first.inputs.len();
            let mut jobs = vec![first];
            // Counted before the gathered posts leave the queue: the first job included.
            let limit = sizer.limit(self.queued.load(Ordering::SeqCst));
            let fill_until = Instant::now() + fill_wait(last_pass, self.policy.max_wait);
            while posts < limit {
                let next = match self.rx.try_recv() {
                    Ok(job) => Some(job),
                    Err(TryRecvError::Disconnected) => None,
                    Err(TryRecvError::Empty) => {
                        let now = Instant::now();
                        if now >= fill_until {
                            None
                        } else {
                            self.rx.recv_timeout(fill_until - now).ok()
                        }
                    }
                };
                let Some(job) = next else { break };
                if posts + job.inputs.len() > limit {
                    carried = Some(job);
                    break;
                }
                posts += job.inputs.len();
                jobs.push(job);
            }
            let left = self.queued.fetch_sub(posts, Ordering::SeqCst) - posts;
            self.metrics.queued(left);
            // A panic in a pass (a model or sink fault) fails that pass's requests, not the
            // worker: the next pass runs as usual.
            let replies: Vec<Reply> = jobs.iter().map(|j| j.reply.clone()).collect();
            let started = Instant::now();
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.pass(jobs))) {
                Ok(n) => {
                    let took = started.elapsed();
                    if n > 0 {
                        self.passes
                            .busy_micros
                            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
                    }
                    sizer.observe(n, took);
                    last_pass = n;
                }
                Err(_) => {
                    tracing::error!("a screening pass panicked; its requests fail");
                    for reply in replies {
                        reply.send(Err(SubmitError::Stopped));
                    }
                    last_pass = 0;
                }
            }
        }
        self.alive.store(false, Ordering::SeqCst);
    }

    /// Screens the jobs still wanted in one pass; returns how many posts it held.
    fn pass(&self, jobs: Vec<Job>) -> usize {
        let now = Instant::now();
        let (live, expired): (Vec<Job>, Vec<Job>) = jobs
            .into_iter()
            .partition(|j| j.deadline > now && !j.reply.is_closed());
        for job in expired {
            job.reply.send(Err(SubmitError::Expired));
        }
        if live.is_empty() {
            return 0;
        }
        let inputs: Vec<(Origin, &[u8])> = live
            .iter()
            .flat_map(|j| j.inputs.iter().map(|(o, b)| (o.clone(), b.as_slice())))
            .collect();
        let (outcomes, times) = self.screener.process_timed(&inputs);
        for (stage, took) in times.named() {
            self.metrics.stage(stage, took);
        }
        if times.model_batch > 0 {
            self.metrics
                .model_batch(times.model_batch, times.repost_cache_hits);
        }
        self.passes.passes.fetch_add(1, Ordering::Relaxed);
        self.passes
            .posts
            .fetch_add(outcomes.len() as u64, Ordering::Relaxed);
        let stored = match &self.after_pass {
            Some(after) => after(&outcomes),
            None => Ok(()),
        };
        if let Err(e) = &stored {
            tracing::error!(error = %e, "records not stored; the pass's requests fail");
        }
        let posts = outcomes.len();
        let mut outcomes = outcomes.into_iter();
        for job in live {
            let mine: Vec<Outcome> = outcomes.by_ref().take(job.inputs.len()).collect();
            let answer = match &stored {
                Ok(()) => Ok(mine),
                Err(_) => Err(SubmitError::NotStored),
            };
            job.reply.send(answer);
        }
        posts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::sync::Mutex;

    fn screener() -> Arc<Screener> {
        let mut config = Config::default();
        config.risk.enabled = false;
        Arc::new(Screener::with_risk(&config, None).unwrap())
    }

    fn post(i: usize) -> (Origin, Vec<u8>) {
        (
            Origin::Request {
                request: format!("r{i}"),
                item: 0,
            },
            format!(r#"{{"id":"p{i}","text":"rdv jeudi {i}"}}"#).into_bytes(),
        )
    }

    /// A batcher whose passes are recorded (their sizes), a pass of n posts held
    /// `hold(n)` long.
    fn recorded(
        policy: BatchPolicy,
        hold: impl Fn(usize) -> Duration + Send + 'static,
    ) -> (Batcher, Arc<Mutex<Vec<usize>>>) {
        let passes = Arc::new(Mutex::new(Vec::new()));
        let seen = passes.clone();
        let after: AfterPass = Box::new(move |outcomes| {
            seen.lock().unwrap().push(outcomes.len());
            std::thread::sleep(hold(outcomes.len()));
            Ok(())
        });
        let b = Batcher::start(screener(), policy, Arc::new(Metrics::new()), Some(after)).unwrap();
        (b, passes)
    }

    const POLICY: BatchPolicy = BatchPolicy {
        max_batch: 16,
        max_wait: Duration::from_millis(2),
        capacity: 64,
        pass_target: None,
    };

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lone_request_goes_at_once_and_a_crowd_shares_passes() {
        let (b, passes) = recorded(POLICY, |_| Duration::from_millis(5));
        let one = b.screen(vec![post(0)], soon()).await.unwrap();
        assert!(matches!(&one[..], [Outcome::Screened(r)] if r.id == "p0"));
        assert_eq!(*passes.lock().unwrap(), vec![1]);

        let tasks: Vec<_> = (1..=60)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move { (i, b.screen(vec![post(i)], soon()).await) })
            })
            .collect();
        for t in tasks {
            let (i, out) = t.await.unwrap();
            let out = out.unwrap();
            assert!(
                matches!(&out[..], [Outcome::Screened(r)] if r.id == format!("p{i}")),
                "each request gets its own post's record"
            );
        }
        {
            let passes = passes.lock().unwrap();
            let later = &passes[1..];
            assert_eq!(later.iter().sum::<usize>(), 60);
            assert!(later.len() < 60, "requests shared passes: {later:?}");
        }
        // Requests of several posts never push a pass over max_batch.
        let tasks: Vec<_> = (0..6)
            .map(|k| {
                let b = b.clone();
                let inputs = (0..10).map(|i| post(100 + 10 * k + i)).collect();
                tokio::spawn(async move { b.screen(inputs, soon()).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().len(), 10);
        }
        let passes = passes.lock().unwrap();
        assert_eq!(passes.iter().sum::<usize>(), 121);
        assert!(
            passes.iter().all(|n| *n <= 16),
            "no pass over max_batch: {passes:?}"
        );
    }

    #[test]
    fn the_sizer_fits_passes_to_the_target_until_a_full_batch_waits() {
        let mut sizer = PassSizer::new(64, Some(Duration::from_millis(20)));
        assert_eq!(sizer.limit(3), 64, "nothing timed yet: no limit");
        sizer.observe(10, Duration::from_millis(20));
        assert_eq!(sizer.limit(3), 10, "2 ms a post: 10 posts in 20 ms");
        assert_eq!(sizer.limit(63), 10);
        assert_eq!(sizer.limit(64), 64, "a full batch waits: throughput first");
        assert_eq!(sizer.limit(500), 64);
        // Posts got cheaper: the average moves a fifth of the way at each pass.
        sizer.observe(10, Duration::from_millis(10));
        assert_eq!(sizer.limit(3), 11, "1.8 ms a post");
        for _ in 0..40 {
            sizer.observe(10, Duration::from_millis(10));
        }
        assert_eq!(sizer.limit(3), 19, "converges to 1 ms a post (just above)");
        // A post slower than the whole target still goes, one per pass.
        sizer.observe(1, Duration::from_secs(5));
        assert_eq!(sizer.limit(3), 1);
        sizer.observe(0, Duration::from_secs(5));
        assert_eq!(sizer.limit(3), 1, "an empty pass teaches nothing");
        // No target: passes take what waits, up to max_batch.
        let mut free = PassSizer::new(64, None);
        free.observe(10, Duration::from_millis(20));
        assert_eq!(free.limit(3), 64);
        let mut zero = PassSizer::new(64, Some(Duration::ZERO));
        zero.observe(10, Duration::from_millis(20));
        assert_eq!(zero.limit(3), 64, "0 ms means no target");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_keep_to_their_target_under_load_and_grow_for_a_backlog() {
        let policy = BatchPolicy {
            max_batch: 64,
            max_wait: Duration::from_millis(2),
            capacity: 1024,
            pass_target: Some(Duration::from_millis(20)),
        };
        // At least 2 ms a post: a 20 ms pass holds 10 posts at most.
        let (b, passes) = recorded(policy, |n| Duration::from_millis(2) * n as u32);
        b.screen(vec![post(0)], soon()).await.unwrap();
        let steady: Vec<_> = (1..=40)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move { b.screen(vec![post(i)], soon()).await })
            })
            .collect();
        for t in steady {
            assert_eq!(t.await.unwrap().unwrap().len(), 1);
        }
        {
            let passes = passes.lock().unwrap();
            assert_eq!(passes.iter().sum::<usize>(), 41);
            assert!(
                passes.iter().all(|n| *n <= 10),
                "passes within the 20 ms target: {passes:?}"
            );
            assert!(
                passes.len() < 41,
                "requests still shared passes: {passes:?}"
            );
        }
        // A backlog of more than max_batch: passes of max_batch.
        let backlog: Vec<_> = (0..200)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move { b.screen(vec![post(1000 + i)], soon()).await })
            })
            .collect();
        for t in backlog {
            assert_eq!(t.await.unwrap().unwrap().len(), 1);
        }
        let passes = passes.lock().unwrap();
        assert_eq!(passes.iter().sum::<usize>(), 241);
        assert!(
            passes.contains(&64),
            "a full batch waited, so a pass took it: {passes:?}"
        );
        assert!(passes.iter().all(|n| *n <= 64), "{passes:?}");
        assert_eq!(b.pass_counts(), (passes.len() as u64, 241));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_and_late_requests_are_dropped() {
        let policy = BatchPolicy {
            max_batch: 2,
            capacity: 4,
            ..POLICY
        };
        let (b, passes) = recorded(policy, |_| Duration::from_millis(300));
        // The first pass holds the worker; four more posts fill the queue.
        let first = {
            let b = b.clone();
            tokio::spawn(async move { b.screen(vec![post(0)], soon()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waiting: Vec<_> = (1..=4)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move { b.screen(vec![post(i)], soon()).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(b.queued(), 4);
        assert_eq!(
            b.screen(vec![post(9)], soon()).await.unwrap_err(),
            SubmitError::Full
        );
        // A request whose deadline passes while it waits is answered `Expired` and its
        // post is not screened.
        assert!(first.await.unwrap().is_ok());
        for w in waiting {
            assert!(w.await.unwrap().is_ok());
        }
        let busy = {
            let b = b.clone();
            tokio::spawn(async move { b.screen(vec![post(11)], soon()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The worker holds post 11's pass for 300 ms; post 10 gives up after 50.
        let late = b
            .screen(vec![post(10)], Instant::now() + Duration::from_millis(50))
            .await;
        assert_eq!(late.unwrap_err(), SubmitError::Expired);
        assert!(busy.await.unwrap().is_ok());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            passes.lock().unwrap().iter().sum::<usize>(),
            6,
            "the late post was dropped, not screened"
        );
        assert_eq!(b.queued(), 0);
    }
}
