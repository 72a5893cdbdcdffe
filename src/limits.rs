//! Per-tenant limits from the tenant's plan: a token bucket (`requests_per_second`, `burst`)
//! and a cap on requests in flight (`max_concurrent_requests`). Past either, that tenant alone
//! gets `429 rate_limited` with `Retry-After`; a noisy tenant cannot starve the others.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use dashmap::DashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{error::Error, plans::PlanSettings, tenant::TenantId};

#[derive(Default)]
pub struct TenantLimits {
    tenants: DashMap<TenantId, Arc<Limiter>>,
}

/// Held while a request runs; dropping it frees the tenant's concurrency slot.
pub struct Admission {
    _in_flight: OwnedSemaphorePermit,
}

struct Limiter {
    in_flight: Arc<Semaphore>,
    bucket: Mutex<Bucket>,
    rate: f64,
    capacity: f64,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl TenantLimits {
    /// Admits one request of `tenant` under `plan`'s limits, or says when to retry.
    pub fn admit(&self, tenant: TenantId, plan: &PlanSettings) -> Result<Admission, Error> {
        // A read lock on the map for every request after a tenant's first; `entry` (a write
        // lock on the shard) only when the tenant is new here.
        let limiter = match self.tenants.get(&tenant) {
            Some(limiter) => limiter.clone(),
            None => self
                .tenants
                .entry(tenant)
                .or_insert_with(|| Arc::new(Limiter::new(plan)))
                .clone(),
        };
        // The slot is taken first, so a request refused for concurrency spends no token.
        let slot = limiter
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::RateLimited { retry_after: 1 })?;
        limiter.take_token()?;
        Ok(Admission { _in_flight: slot })
    }
}

impl Limiter {
    fn new(plan: &PlanSettings) -> Self {
        let rate = f64::from(plan.requests_per_second.max(1));
        let capacity = f64::from(plan.burst.max(1));
        Self {
            in_flight: Arc::new(Semaphore::new(plan.max_concurrent_requests.max(1) as usize)),
            bucket: Mutex::new(Bucket {
                tokens: capacity,
                refilled: Instant::now(),
            }),
            rate,
            capacity,
        }
    }

    fn take_token(&self) -> Result<(), Error> {
        let mut bucket = self
            .bucket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.capacity);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / self.rate;
        Err(Error::RateLimited {
            retry_after: wait.ceil().max(1.0) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rps: u32, burst: u32, concurrent: u32) -> PlanSettings {
        PlanSettings {
            open_signup: true,
            requests_per_second: rps,
            burst,
            max_concurrent_requests: concurrent,
            max_users: None,
            max_projects: None,
            max_database_bytes: None,
        }
    }

    #[test]
    fn a_burst_is_admitted_then_the_rate_applies() {
        let limits = TenantLimits::default();
        let tenant = TenantId::new();
        let plan = plan(1, 3, 100);
        for _ in 0..3 {
            drop(limits.admit(tenant, &plan).expect("within the burst"));
        }
        match limits.admit(tenant, &plan) {
            Err(Error::RateLimited { retry_after }) => assert!(retry_after >= 1),
            _ => panic!("the fourth request should be limited"),
        }
    }

    #[test]
    fn concurrency_is_capped_and_freed_when_a_request_ends() {
        let limits = TenantLimits::default();
        let tenant = TenantId::new();
        let plan = plan(1000, 1000, 2);
        let first = limits.admit(tenant, &plan).unwrap();
        let _second = limits.admit(tenant, &plan).unwrap();
        assert!(matches!(
            limits.admit(tenant, &plan),
            Err(Error::RateLimited { .. })
        ));
        drop(first);
        assert!(limits.admit(tenant, &plan).is_ok());
    }

    #[test]
    fn tenants_are_limited_separately() {
        let limits = TenantLimits::default();
        let plan = plan(1, 1, 10);
        let (a, b) = (TenantId::new(), TenantId::new());
        let _ = limits.admit(a, &plan).unwrap();
        assert!(limits.admit(a, &plan).is_err());
        assert!(limits.admit(b, &plan).is_ok(), "b is not slowed by a");
    }
}
