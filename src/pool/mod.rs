//! Tenant connections: one small pool per tenant, opened lazily on the target its server
//! (`backend`) names, shared by concurrent first requests, closed when idle or when its server's
//! connection budget needs the room.

mod budget;
mod cache;
mod connections;

pub use budget::{Budgets, Reservation};
pub use cache::{PoolPolicy, TenantPools};
pub use connections::{PoolError, PooledConnection, TenantPool};
