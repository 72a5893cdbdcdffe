//! The connection budget towards each server (`servers.<name>.max_connections`). A tenant pool
//! reserves its full size before it opens and gives it back only once it has closed: sqlx opens
//! a pool's connections on its own, up to the pool's size, so the size is the only thing that can
//! be counted ahead. Reserving it is what keeps silo from ever holding more than the budget.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ServerSettings;

/// One server's budget, in connections.
pub struct Budget {
    permits: Arc<Semaphore>,
    total: u32,
    /// Connections of pools that are closing: on their way back, so nobody needs to close
    /// another pool for them.
    returning: Arc<AtomicU32>,
}

/// Held by an open pool. Released (explicitly, or when dropped) only after the pool has
/// closed: the budget counts a connection until it is really gone.
pub struct Reservation {
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    connections: u32,
    returning: Arc<AtomicU32>,
    closing: AtomicBool,
}

impl Budget {
    pub fn new(total: u32) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
            returning: Arc::default(),
        }
    }

    /// `connections` for one pool, if there is room right now.
    pub fn try_reserve(&self, connections: u32) -> Option<Reservation> {
        let permit = self
            .permits
            .clone()
            .try_acquire_many_owned(connections)
            .ok()?;
        Some(self.reservation(permit))
    }

    /// `connections` for one pool, waiting at most `wait` for room. Callers wait in short
    /// slices and look for an idle pool to close in between, so waiters are not served in a
    /// strict order.
    pub async fn reserve_within(&self, connections: u32, wait: Duration) -> Option<Reservation> {
        let acquire = self.permits.clone().acquire_many_owned(connections);
        match tokio::time::timeout(wait, acquire).await {
            Ok(Ok(permit)) => Some(self.reservation(permit)),
            // Elapsed; the semaphore itself is never closed.
            Ok(Err(_)) | Err(_) => None,
        }
    }

    /// Connections reserved now, by open pools and by pools still closing.
    pub fn reserved(&self) -> u64 {
        u64::from(self.total).saturating_sub(self.permits.available_permits() as u64)
    }

    /// True while a closing pool is about to give connections back.
    pub fn is_returning(&self) -> bool {
        self.returning.load(Ordering::Acquire) > 0
    }

    pub fn total(&self) -> u32 {
        self.total
    }

    fn reservation(&self, permit: OwnedSemaphorePermit) -> Reservation {
        Reservation {
            connections: permit.num_permits() as u32,
            permit: Mutex::new(Some(permit)),
            returning: self.returning.clone(),
            closing: AtomicBool::new(false),
        }
    }
}

impl Reservation {
    /// Says that the pool holding this is closing: its connections are on their way back.
    pub fn closing(&self) {
        let permit = self.permit.lock().unwrap_or_else(PoisonError::into_inner);
        if permit.is_some() && !self.closing.swap(true, Ordering::AcqRel) {
            self.returning.fetch_add(self.connections, Ordering::AcqRel);
        }
    }

    /// Gives the connections back to the budget (once; later calls do nothing). Called when
    /// the pool has closed rather than left to `Drop`: the cache may keep a copy of a removed
    /// entry alive for a while after the pool is gone.
    pub fn release(&self) {
        let permit = self
            .permit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(permit) = permit {
            // Back before they stop counting as returning, so a waiter never sees neither and
            // closes a pool it did not need to.
            drop(permit);
            if self.closing.load(Ordering::Acquire) {
                self.returning.fetch_sub(self.connections, Ordering::AcqRel);
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release();
    }
}

/// Every configured server's budget, by server name.
pub struct Budgets(HashMap<String, Budget>);

impl Budgets {
    pub fn from_settings(servers: &BTreeMap<String, ServerSettings>) -> Self {
        Self(
            servers
                .iter()
                .map(|(name, server)| (name.clone(), Budget::new(server.max_connections)))
                .collect(),
        )
    }

    pub fn get(&self, server: &str) -> Option<&Budget> {
        self.0.get(server)
    }

    /// Connections reserved now, per server name.
    pub fn reserved_by_server(&self) -> HashMap<String, u64> {
        self.0
            .iter()
            .map(|(name, budget)| (name.clone(), budget.reserved()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_budget_reserves_nothing_until_a_reservation_is_dropped() {
        let budget = Budget::new(5);
        let first = budget.try_reserve(2).expect("room for one pool");
        let _second = budget.try_reserve(2).expect("room for another");
        assert_eq!(budget.reserved(), 4);
        assert!(budget.try_reserve(2).is_none(), "only 1 connection is left");
        drop(first);
        assert_eq!(budget.reserved(), 2);
        assert!(budget.try_reserve(2).is_some());
    }

    #[test]
    fn a_closing_reservation_counts_as_returning_until_it_is_dropped() {
        let budget = Budget::new(2);
        let reservation = budget.try_reserve(2).unwrap();
        assert!(!budget.is_returning());
        reservation.closing();
        reservation.closing();
        assert!(budget.is_returning());
        reservation.release();
        assert!(!budget.is_returning());
        assert_eq!(budget.reserved(), 0);
        reservation.release();
        reservation.closing();
        drop(reservation);
        assert!(!budget.is_returning(), "released once, counted once");
        assert_eq!(budget.reserved(), 0);
    }

    #[tokio::test]
    async fn a_waiting_reservation_gets_the_connections_a_closed_pool_gives_back() {
        let budget = Arc::new(Budget::new(1));
        let held = budget.try_reserve(1).unwrap();
        assert!(budget
            .reserve_within(1, Duration::from_millis(10))
            .await
            .is_none());
        let waiter = {
            let budget = budget.clone();
            tokio::spawn(async move {
                budget
                    .reserve_within(1, Duration::from_secs(60))
                    .await
                    .is_some()
            })
        };
        drop(held);
        assert!(waiter.await.unwrap());
    }
}
