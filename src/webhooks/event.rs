//! A lifecycle event as receivers see it: its type, its tenant, when it happened, and the exact
//! JSON body every delivery attempt sends (and signs).

use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    clock,
    tenant::{Slug, TenantId, TenantRecord},
};

/// The events silo announces, by their `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Created,
    Suspended,
    Resumed,
    Migrated,
    MigrationFailed,
    Moved,
    Deleted,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::Created,
        EventType::Suspended,
        EventType::Resumed,
        EventType::Migrated,
        EventType::MigrationFailed,
        EventType::Moved,
        EventType::Deleted,
    ];

    /// The `type` of the body and the `X-Silo-Event` header.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "tenant.created",
            EventType::Suspended => "tenant.suspended",
            EventType::Resumed => "tenant.resumed",
            EventType::Migrated => "tenant.migrated",
            EventType::MigrationFailed => "tenant.migration_failed",
            EventType::Moved => "tenant.moved",
            EventType::Deleted => "tenant.deleted",
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event, made once and stored as is: every attempt to every receiver sends `body`.
#[derive(Debug, Clone)]
pub struct Event {
    /// UUID v7: unique (the receiver's key to drop a duplicate) and time-ordered (it orders a
    /// tenant's events in the outbox).
    pub id: Uuid,
    pub kind: EventType,
    pub tenant_id: String,
    pub tenant_slug: String,
    pub occurred_at: i64,
    /// `{"id", "type", "tenant": {"id", "slug"}, "occurred_at", "data"}`.
    pub body: String,
}

impl Event {
    /// An event about `tenant`, happening now; `data` is the type's own fields (an object).
    pub fn new(kind: EventType, tenant: &TenantRecord, data: Value) -> Self {
        Self::about(kind, tenant.id, &tenant.slug, data)
    }

    /// An event about the tenant with this id and slug, happening now.
    pub fn about(kind: EventType, tenant_id: TenantId, slug: &Slug, data: Value) -> Self {
        let id = Uuid::now_v7();
        let occurred_at = clock::now_ms();
        let body = json!({
            "id": id,
            "type": kind.as_str(),
            "tenant": { "id": tenant_id, "slug": slug.as_str() },
            "occurred_at": clock::rfc3339(occurred_at),
            "data": if data.is_null() { json!({}) } else { data },
        });
        Self {
            id,
            kind,
            tenant_id: tenant_id.to_string(),
            tenant_slug: slug.to_string(),
            occurred_at,
            body: body.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> (TenantId, Slug) {
        (TenantId::new(), Slug::parse_shape("acme").unwrap())
    }

    #[test]
    fn the_body_names_the_type_the_tenant_and_the_time() {
        let (id, slug) = acme();
        let event = Event::about(EventType::Suspended, id, &slug, json!({"to": "suspended"}));
        let body: Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(body["id"], event.id.to_string());
        assert_eq!(body["type"], "tenant.suspended");
        assert_eq!(body["tenant"]["id"], id.to_string());
        assert_eq!(body["tenant"]["slug"], "acme");
        assert_eq!(body["data"]["to"], "suspended");
        let at = body["occurred_at"].as_str().unwrap();
        assert!(at.ends_with('Z') && at.len() == 24, "{at}");
        let empty = Event::about(EventType::Deleted, id, &slug, Value::Null);
        let body: Value = serde_json::from_str(&empty.body).unwrap();
        assert_eq!(body["data"], json!({}));
    }

    #[test]
    fn events_made_one_after_another_are_ordered_by_id() {
        let (id, slug) = acme();
        let ids: Vec<String> = (0..200)
            .map(|_| {
                Event::about(EventType::Migrated, id, &slug, Value::Null)
                    .id
                    .to_string()
            })
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn every_type_has_its_own_name() {
        let names: std::collections::BTreeSet<&str> =
            EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names.len(), EventType::ALL.len());
        assert!(names.iter().all(|n| n.starts_with("tenant.")));
    }
}
