//! Words both paths share about a tenant. Pure: no I/O, unit-tested beside each type.

mod domain;
mod id;
mod record;
mod slug;
mod status;

pub use domain::Domain;
pub use id::TenantId;
pub use record::TenantRecord;
pub use slug::{Slug, RESERVED as RESERVED_SLUGS};
pub use status::Status;
