//! Tenant connections: which server holds a tenant's database, and one small pool per tenant,
//! opened lazily, shared by concurrent first requests, closed when idle or when its server's
//! connection budget needs the room.

mod budget;
mod cache;
mod connections;
mod server;

pub use budget::{Budgets, Reservation};
pub use cache::{PoolPolicy, TenantPools};
pub use connections::{PooledConnection, TenantPool};
pub use server::{Server, Servers};
