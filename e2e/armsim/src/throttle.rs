//! Per-subscription token buckets for reads, writes and deletes, as ARM throttles.

use std::time::{Duration, Instant};

use crate::config::{BucketConfig, ThrottlingConfig};

/// Which bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RequestClass {
    Read,
    Write,
    Delete,
}

impl RequestClass {
    pub fn of_method(method: &hyper::Method) -> Self {
        match *method {
            hyper::Method::GET | hyper::Method::HEAD => Self::Read,
            hyper::Method::DELETE => Self::Delete,
            _ => Self::Write,
        }
    }

    /// A what-if only evaluates the template against the inventory and changes nothing:
    /// it draws from the reads bucket although it is a POST.
    pub fn of_request(method: &hyper::Method, route_name: &str) -> Self {
        if *method == hyper::Method::POST && route_name == "deployments/whatIf" {
            Self::Read
        } else {
            Self::of_method(method)
        }
    }

    pub fn header_name(self) -> &'static str {
        match self {
            Self::Read => "x-ms-ratelimit-remaining-subscription-global-reads",
            Self::Write => "x-ms-ratelimit-remaining-subscription-global-writes",
            Self::Delete => "x-ms-ratelimit-remaining-subscription-global-deletes",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    capacity: f64,
    refill_per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(config: BucketConfig, now: Instant) -> Self {
        Self {
            capacity: f64::from(config.capacity),
            refill_per_sec: config.refill_per_sec,
            tokens: f64::from(config.capacity),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.refill_per_sec).min(self.capacity);
        self.last = now;
    }

    /// Takes one token: `Ok(remaining)` or `Err(time until one is available)`.
    pub fn take(&mut self, now: Instant) -> Result<u64, Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(self.tokens.floor() as u64)
        } else {
            let missing = 1.0 - self.tokens;
            Err(Duration::from_secs_f64(missing / self.refill_per_sec))
        }
    }
}

/// The three buckets of one subscription.
#[derive(Debug, Clone)]
pub(crate) struct SubscriptionBuckets {
    reads: TokenBucket,
    writes: TokenBucket,
    deletes: TokenBucket,
}

impl SubscriptionBuckets {
    pub fn new(config: &ThrottlingConfig, now: Instant) -> Self {
        Self {
            reads: TokenBucket::new(config.reads, now),
            writes: TokenBucket::new(config.writes, now),
            deletes: TokenBucket::new(config.deletes, now),
        }
    }

    pub fn take(&mut self, class: RequestClass, now: Instant) -> Result<u64, Duration> {
        match class {
            RequestClass::Read => self.reads.take(now),
            RequestClass::Write => self.writes.take(now),
            RequestClass::Delete => self.deletes.take(now),
        }
    }
}

/// `Retry-After` in whole seconds, at least 1, for a wait.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_empties_then_refills_with_time() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(
            BucketConfig {
                capacity: 3,
                refill_per_sec: 2.0,
            },
            start,
        );
        assert_eq!(bucket.take(start), Ok(2));
        assert_eq!(bucket.take(start), Ok(1));
        assert_eq!(bucket.take(start), Ok(0));
        let wait = bucket.take(start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(retry_after_secs(wait), 1);
        assert_eq!(bucket.take(start + Duration::from_millis(500)), Ok(0));
        // Refill never exceeds the capacity.
        assert_eq!(bucket.take(start + Duration::from_secs(100)), Ok(2));
    }

    #[test]
    fn classes_follow_the_method() {
        assert_eq!(
            RequestClass::of_method(&hyper::Method::GET),
            RequestClass::Read
        );
        assert_eq!(
            RequestClass::of_method(&hyper::Method::POST),
            RequestClass::Write
        );
        assert_eq!(
            RequestClass::of_method(&hyper::Method::DELETE),
            RequestClass::Delete
        );
        assert_eq!(
            RequestClass::of_request(&hyper::Method::POST, "deployments/whatIf"),
            RequestClass::Read
        );
        assert_eq!(
            RequestClass::of_request(&hyper::Method::POST, "deployments/validate"),
            RequestClass::Write
        );
    }
}
