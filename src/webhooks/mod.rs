//! Lifecycle webhooks: each tenant lifecycle event is recorded in the registry's outbox with the
//! change it reports, then delivered to every `webhooks.urls` receiver, signed, at least once,
//! in order per tenant, retried with backoff while a receiver is down.

mod deliver;
mod event;
mod sign;

pub use deliver::{backoff, run};
pub use event::{Event, EventType};
pub use sign::signature;
