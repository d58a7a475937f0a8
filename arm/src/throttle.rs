//! Client-side throttling: one token bucket per subscription and request class, plus a
//! pause set by `Retry-After` on 429/503 during which nothing of that class is sent.
//! Shared by all clones of a client, so the whole process slows down together. Requests of
//! [`Priority::Spare`] take only what the others leave: they never wait in a bucket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// ARM counts reads, writes and deletes in separate buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestClass {
    Read,
    Write,
    Delete,
}

impl RequestClass {
    /// ARM's header with the subscription's remaining requests of this class.
    pub(crate) fn remaining_header(self) -> &'static str {
        match self {
            Self::Read => "x-ms-ratelimit-remaining-subscription-global-reads",
            Self::Write => "x-ms-ratelimit-remaining-subscription-global-writes",
            Self::Delete => "x-ms-ratelimit-remaining-subscription-global-deletes",
        }
    }

    pub fn of(method: &reqwest::Method) -> Self {
        match *method {
            reqwest::Method::GET | reqwest::Method::HEAD => Self::Read,
            reqwest::Method::DELETE => Self::Delete,
            _ => Self::Write,
        }
    }
}

/// Which share of a bucket a request may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Priority {
    /// Takes its token and waits for it to refill if need be, in turn with every other
    /// such request: deployments, deletes, polls, anything a user asked for.
    #[default]
    Queued,
    /// Takes a token only from spare budget (see [`SPARE_RESERVE`]) and is otherwise not
    /// sent at all: for work that can as well be done later, such as periodic re-checks,
    /// so that it never delays a queued request.
    Spare,
    /// Like [`Priority::Spare`], and only once no queued request of its bucket has taken
    /// a token for [`IDLE_AFTER`]: for work that should not even share the caller's other
    /// resources (its workers, its apiserver) with queued requests while they are busy.
    Idle,
}

/// Share of a bucket's burst that requests of [`Priority::Spare`] and [`Priority::Idle`]
/// leave untouched, so that deployments after a stretch of re-checks still find a burst
/// ready.
pub const SPARE_RESERVE: f64 = 0.5;

/// How long no queued request may have taken a token before a [`Priority::Idle`] one
/// goes: long enough that a stream of deployments slowed down by something else (the
/// apiserver, say) still counts as busy.
pub const IDLE_AFTER: Duration = Duration::from_secs(10);

/// Why a request was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotSent {
    /// A `Retry-After` pause with this much left, longer than the caller waits.
    Paused(Duration),
    /// A request of [`Priority::Spare`] found no spare budget.
    NoSpareBudget,
}

/// Size and refill rate of one bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketLimit {
    /// Requests that may be sent at once after an idle period.
    pub burst: f64,
    /// Sustained requests per second.
    pub per_second: f64,
}

/// Limits per request class. Defaults are ARM's published per-subscription buckets
/// (250 reads refilling 25/s, 200 writes refilling 10/s; deletes like writes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThrottleLimits {
    pub reads: BucketLimit,
    pub writes: BucketLimit,
    pub deletes: BucketLimit,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        Self {
            reads: BucketLimit {
                burst: 250.0,
                per_second: 25.0,
            },
            writes: BucketLimit {
                burst: 200.0,
                per_second: 10.0,
            },
            deletes: BucketLimit {
                burst: 200.0,
                per_second: 10.0,
            },
        }
    }
}

impl ThrottleLimits {
    fn of(&self, class: RequestClass) -> BucketLimit {
        match class {
            RequestClass::Read => self.reads,
            RequestClass::Write => self.writes,
            RequestClass::Delete => self.deletes,
        }
    }
}

/// A token bucket whose level may go negative: a caller takes its token at once and waits
/// for the deficit to refill, so concurrent callers queue fairly without a lock held
/// across the wait.
#[derive(Debug)]
pub(crate) struct Bucket {
    limit: BucketLimit,
    tokens: f64,
    updated: Instant,
    paused_until: Option<Instant>,
    /// When a queued request last took a token.
    last_queued: Option<Instant>,
}

impl Bucket {
    pub(crate) fn new(limit: BucketLimit, now: Instant) -> Self {
        Self {
            limit,
            tokens: limit.burst,
            updated: now,
            paused_until: None,
            last_queued: None,
        }
    }

    /// Time left of a `Retry-After` pause.
    pub(crate) fn paused_for(&self, now: Instant) -> Duration {
        self.paused_until
            .map(|until| until.saturating_duration_since(now))
            .unwrap_or_default()
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.limit.per_second).min(self.limit.burst);
        self.updated = now;
    }

    /// Takes one token; returns how long the caller must wait before sending.
    pub(crate) fn take(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.last_queued = Some(now);
        self.tokens -= 1.0;
        let refill_wait = if self.tokens >= 0.0 || self.limit.per_second <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.limit.per_second)
        };
        refill_wait.max(self.paused_for(now))
    }

    /// Whether a request of `priority` may be sent now without waiting. For
    /// [`Priority::Spare`]: no `Retry-After` pause, and more than [`SPARE_RESERVE`] of the
    /// burst still left after its token, which also means that nobody waits for a token
    /// (a waiting caller leaves the level below zero until its token has refilled). Spare
    /// requests never lower the level below the reserve, so as soon as queued requests
    /// leave it above, the next spare one goes. [`Priority::Idle`] also needs the queued
    /// requests to have left the bucket alone for [`IDLE_AFTER`]. A bucket that does not
    /// refill limits nothing, as in [`Bucket::take`].
    pub(crate) fn has_spare(&mut self, now: Instant, priority: Priority) -> bool {
        self.refill(now);
        let left_after = match priority {
            Priority::Queued => 0.0,
            Priority::Spare | Priority::Idle => self.limit.burst * SPARE_RESERVE,
        };
        let idle = self
            .last_queued
            .is_none_or(|at| now.saturating_duration_since(at) >= IDLE_AFTER);
        self.paused_for(now).is_zero()
            && (priority != Priority::Idle || idle)
            && (self.limit.per_second <= 0.0 || self.tokens - 1.0 >= left_after)
    }

    /// Takes one token if [`Bucket::has_spare`] at `priority` (spare or idle); never makes
    /// the caller wait.
    pub(crate) fn take_spare(&mut self, now: Instant, priority: Priority) -> bool {
        let spare = self.has_spare(now, priority);
        if spare {
            self.tokens -= 1.0;
        }
        spare
    }

    /// ARM's own count of what is left (`x-ms-ratelimit-remaining-*`): other processes may
    /// share the subscription, so the local bucket never believes it has more than ARM.
    pub(crate) fn observe_remaining(&mut self, remaining: f64, now: Instant) {
        self.refill(now);
        self.tokens = self.tokens.min(remaining);
    }

    /// Nothing may be sent before `until` (ARM said so with Retry-After). A later pause
    /// never shortens an earlier, longer one.
    pub(crate) fn pause_until(&mut self, until: Instant) {
        if self.paused_until.is_none_or(|current| current < until) {
            self.paused_until = Some(until);
        }
    }
}

/// All buckets of one client (and its clones).
#[derive(Clone, Debug)]
pub(crate) struct Throttle {
    limits: ThrottleLimits,
    buckets: Arc<Mutex<HashMap<(String, RequestClass), Bucket>>>,
}

impl Throttle {
    pub(crate) fn new(limits: ThrottleLimits) -> Self {
        Self {
            limits,
            buckets: Arc::default(),
        }
    }

    fn with_bucket<T>(
        &self,
        subscription: &str,
        class: RequestClass,
        f: impl FnOnce(&mut Bucket, Instant) -> T,
    ) -> T {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets
            .entry((subscription.to_ascii_lowercase(), class))
            .or_insert_with(|| Bucket::new(self.limits.of(class), now));
        f(bucket, now)
    }

    /// Waits until a request of this class may be sent to this subscription and returns
    /// the time waited. Takes nothing and returns why, so that the caller can come back
    /// later instead of blocking, when a `Retry-After` pause has more than `max_pause` left
    /// or a request of [`Priority::Spare`] finds no spare budget.
    pub(crate) async fn acquire(
        &self,
        subscription: &str,
        class: RequestClass,
        priority: Priority,
        max_pause: Duration,
    ) -> Result<Duration, NotSent> {
        let wait = self.with_bucket(subscription, class, |b, now| {
            let paused = b.paused_for(now);
            match priority {
                Priority::Queued if paused > max_pause => Err(NotSent::Paused(paused)),
                Priority::Queued => Ok(b.take(now)),
                Priority::Spare | Priority::Idle if b.take_spare(now, priority) => {
                    Ok(Duration::ZERO)
                }
                Priority::Spare | Priority::Idle => Err(NotSent::NoSpareBudget),
            }
        })?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(wait)
    }

    /// Whether a request of `priority` would be sent now without waiting (see
    /// [`Bucket::has_spare`]).
    pub(crate) fn has_spare(
        &self,
        subscription: &str,
        class: RequestClass,
        priority: Priority,
    ) -> bool {
        self.with_bucket(subscription, class, |b, now| b.has_spare(now, priority))
    }

    pub(crate) fn observe_remaining(
        &self,
        subscription: &str,
        class: RequestClass,
        remaining: f64,
    ) {
        self.with_bucket(subscription, class, |b, now| {
            b.observe_remaining(remaining, now)
        });
    }

    pub(crate) fn pause(&self, subscription: &str, class: RequestClass, for_: Duration) {
        self.with_bucket(subscription, class, |b, now| b.pause_until(now + for_));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: BucketLimit = BucketLimit {
        burst: 3.0,
        per_second: 2.0,
    };

    #[test]
    fn burst_then_refill_rate() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(LIMIT, t0);
        for _ in 0..3 {
            assert_eq!(bucket.take(t0), Duration::ZERO);
        }
        // The 4th and 5th callers queue behind each other at 2/s.
        assert_eq!(bucket.take(t0), Duration::from_millis(500));
        assert_eq!(bucket.take(t0), Duration::from_millis(1000));
        // After 1 s the two reserved tokens are refilled and the level is 0 again.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(bucket.take(t1), Duration::from_millis(500));
    }

    #[test]
    fn refill_is_capped_at_burst() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(LIMIT, t0);
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(bucket.take(later), Duration::ZERO);
        }
        assert!(bucket.take(later) > Duration::ZERO);
    }

    #[test]
    fn pause_delays_even_with_tokens_and_never_shrinks() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(LIMIT, t0);
        bucket.pause_until(t0 + Duration::from_secs(10));
        bucket.pause_until(t0 + Duration::from_secs(2));
        assert_eq!(bucket.take(t0), Duration::from_secs(10));
        assert_eq!(
            bucket.take(t0 + Duration::from_secs(4)),
            Duration::from_secs(6)
        );
        assert_eq!(bucket.take(t0 + Duration::from_secs(11)), Duration::ZERO);
    }

    #[test]
    fn remaining_header_lowers_but_never_raises_the_level() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(LIMIT, t0);
        bucket.observe_remaining(1.0, t0);
        assert_eq!(bucket.take(t0), Duration::ZERO);
        assert_eq!(bucket.take(t0), Duration::from_millis(500));
        bucket.observe_remaining(100.0, t0);
        assert_eq!(bucket.take(t0), Duration::from_millis(1000));
    }

    #[test]
    fn classes_by_method() {
        assert_eq!(RequestClass::of(&reqwest::Method::GET), RequestClass::Read);
        assert_eq!(RequestClass::of(&reqwest::Method::PUT), RequestClass::Write);
        assert_eq!(
            RequestClass::of(&reqwest::Method::POST),
            RequestClass::Write
        );
        assert_eq!(
            RequestClass::of(&reqwest::Method::DELETE),
            RequestClass::Delete
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttle_separates_subscriptions_and_classes() {
        let throttle = Throttle::new(ThrottleLimits {
            reads: LIMIT,
            writes: LIMIT,
            deletes: LIMIT,
        });
        let max = Duration::from_secs(10);
        let queued = Priority::Queued;
        throttle.pause("SUB-A", RequestClass::Write, Duration::from_secs(5));
        assert_eq!(
            throttle
                .acquire("sub-b", RequestClass::Write, queued, max)
                .await,
            Ok(Duration::ZERO)
        );
        assert_eq!(
            throttle
                .acquire("sub-a", RequestClass::Read, queued, max)
                .await,
            Ok(Duration::ZERO)
        );
        assert_eq!(
            throttle
                .acquire("sub-a", RequestClass::Write, queued, max)
                .await,
            Ok(Duration::from_secs(5))
        );
        throttle.pause("sub-a", RequestClass::Delete, Duration::from_secs(60));
        assert_eq!(
            throttle
                .acquire("sub-a", RequestClass::Delete, queued, max)
                .await,
            Err(NotSent::Paused(Duration::from_secs(60))),
            "a long pause is reported instead of waited"
        );
    }

    /// Burst 4 at 2/s: spare requests leave 2 tokens.
    const SPARE_LIMIT: BucketLimit = BucketLimit {
        burst: 4.0,
        per_second: 2.0,
    };

    #[test]
    fn spare_requests_leave_the_reserve_to_queued_ones() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(SPARE_LIMIT, t0);
        assert!(bucket.take_spare(t0, Priority::Spare));
        assert!(bucket.take_spare(t0, Priority::Spare));
        assert!(
            !bucket.take_spare(t0, Priority::Spare),
            "only the reserve is left"
        );
        assert!(
            !bucket.take_spare(t0, Priority::Spare),
            "a refused spare request takes nothing"
        );
        // The reserve is whole: the next two queued requests go at once.
        assert_eq!(bucket.take(t0), Duration::ZERO);
        assert_eq!(bucket.take(t0), Duration::ZERO);
        assert_eq!(bucket.take(t0), Duration::from_millis(500));
    }

    #[test]
    fn spare_requests_go_behind_waiting_callers_and_as_soon_as_budget_is_spare() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(SPARE_LIMIT, t0);
        for _ in 0..6 {
            bucket.take(t0);
        }
        // Level -2: two callers wait for their tokens.
        assert!(!bucket.take_spare(t0, Priority::Spare));
        // At 1 s both have theirs and the level is 0; still below the reserve.
        assert!(!bucket.take_spare(t0 + Duration::from_secs(1), Priority::Spare));
        // At 2.5 s the level is 3: one token above the reserve is spare, and taken.
        let spare = t0 + Duration::from_millis(2500);
        assert!(bucket.has_spare(spare, Priority::Spare));
        assert!(bucket.take_spare(spare, Priority::Spare));
        assert!(!bucket.take_spare(spare, Priority::Spare));
        // Left alone, the bucket refills and spare requests go again.
        let later = t0 + Duration::from_secs(60);
        assert!(bucket.take_spare(later, Priority::Spare));
    }

    #[test]
    fn spare_requests_respect_a_pause_and_an_unlimited_bucket_always_has_spare() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(SPARE_LIMIT, t0);
        bucket.pause_until(t0 + Duration::from_secs(10));
        assert!(!bucket.take_spare(t0, Priority::Spare));
        assert!(bucket.take_spare(t0 + Duration::from_secs(10), Priority::Spare));

        let mut unlimited = Bucket::new(
            BucketLimit {
                burst: 1.0,
                per_second: 0.0,
            },
            t0,
        );
        for _ in 0..10 {
            assert!(unlimited.take_spare(t0, Priority::Spare));
        }
    }

    #[test]
    fn idle_requests_wait_for_queued_ones_to_pause() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(SPARE_LIMIT, t0);
        assert!(bucket.has_spare(t0, Priority::Idle), "never used");
        assert_eq!(bucket.take(t0), Duration::ZERO);
        // Level 3: spare, but a queued request just took a token.
        assert!(bucket.has_spare(t0, Priority::Spare));
        assert!(!bucket.take_spare(t0, Priority::Idle));
        let soon = t0 + IDLE_AFTER - Duration::from_millis(100);
        assert!(!bucket.take_spare(soon, Priority::Idle));
        let later = t0 + IDLE_AFTER;
        assert!(bucket.take_spare(later, Priority::Idle));
        // Spare and idle requests themselves do not count as activity.
        assert!(bucket.take_spare(later, Priority::Idle));
        assert!(
            !bucket.take_spare(later, Priority::Idle),
            "the reserve is left"
        );
        // Queued: whether it would go without waiting.
        assert!(bucket.has_spare(later, Priority::Queued));
    }

    #[tokio::test(start_paused = true)]
    async fn a_spare_request_without_budget_is_not_sent_and_takes_nothing() {
        let throttle = Throttle::new(ThrottleLimits {
            reads: SPARE_LIMIT,
            writes: SPARE_LIMIT,
            deletes: SPARE_LIMIT,
        });
        let max = Duration::from_secs(10);
        let write = RequestClass::Write;
        for _ in 0..2 {
            assert_eq!(
                throttle.acquire("s", write, Priority::Spare, max).await,
                Ok(Duration::ZERO)
            );
        }
        assert!(!throttle.has_spare("s", write, Priority::Spare));
        assert_eq!(
            throttle.acquire("s", write, Priority::Spare, max).await,
            Err(NotSent::NoSpareBudget)
        );
        assert!(throttle.has_spare("s", RequestClass::Read, Priority::Spare));
        for _ in 0..2 {
            assert_eq!(
                throttle.acquire("s", write, Priority::Queued, max).await,
                Ok(Duration::ZERO)
            );
        }
    }
}
