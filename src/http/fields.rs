//! What the server accepts in each request field, as the OpenAPI schemas of those fields.
//!
//! A generated client checks its values against the document, so the document must refuse
//! nothing the server accepts where it matters and allow nothing the server refuses: every bound
//! here is the constant its check uses, and every pattern states that check in ECMA-262 (and
//! Rust `regex`) syntax. Where the server first trims or lower-cases a value, the pattern states
//! the stricter canonical form. Checks no schema can state (an unknown plan, a taken slug, a
//! domain under the base domain) are in the descriptions and answered `422` or `409`.

use utoipa::openapi::{
    schema::{ArrayBuilder, ObjectBuilder, SchemaFormat, SchemaType, Type},
    KnownFormat, Object,
};

use crate::{
    identity::{Email, NAME_MAX, PASSWORD_MAX_LEN, PASSWORD_MIN_LEN},
    tenant::{Domain, Slug, RESERVED_SLUGS},
};

/// Most characters in a project's description.
pub const DESCRIPTION_MAX: usize = 2000;
/// Longest lifetime of an API token, in days.
pub const API_TOKEN_MAX_DAYS: i64 = 3650;

/// A character an email address may hold: not `@`, whitespace or a control character.
const EMAIL_CHAR: &str = r"[^@\s\u0000-\u001f\u007f-\u009f]";
/// The same, and not `.`: the first and last characters of the domain.
const EMAIL_EDGE: &str = r"[^@.\s\u0000-\u001f\u007f-\u009f]";

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::String))
}

fn nullable(builder: ObjectBuilder) -> ObjectBuilder {
    builder.schema_type(SchemaType::from_iter([Type::String, Type::Null]))
}

/// `min` to `max` characters after trimming; `more` ends the description.
fn named(min: usize, max: usize, more: &str) -> ObjectBuilder {
    string()
        .min_length(Some(min))
        .max_length(Some(max))
        // Trimmed first: a value of spaces only is empty.
        .pattern(Some(r"\S"))
        .description(Some(format!(
            "{min} to {max} characters, not only spaces (trimmed){more}"
        )))
}

/// A name (of a user, project, API token or tenant): 1 to 200 characters, not only spaces.
pub fn name() -> Object {
    named(1, NAME_MAX, "").build()
}

/// An optional name: absent or null takes the default the operation describes.
pub fn optional_name() -> Object {
    nullable(named(1, NAME_MAX, "; absent or null: a default")).build()
}

/// A project's description: up to 2,000 characters; null clears it.
pub fn description() -> Object {
    nullable(string().max_length(Some(DESCRIPTION_MAX)))
        .description(Some(format!(
            "Up to {DESCRIPTION_MAX} characters; null for none"
        )))
        .build()
}

/// An email address that becomes or names an account.
pub fn email() -> Object {
    email_builder().build()
}

/// An email address that may be left out (or null).
pub fn optional_email() -> Object {
    nullable(email_builder()).build()
}

fn email_builder() -> ObjectBuilder {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
        .max_length(Some(Email::MAX_LEN))
        .pattern(Some(format!(
            "^{EMAIL_CHAR}{{1,{local}}}@{EMAIL_EDGE}{EMAIL_CHAR}*\\.{EMAIL_CHAR}*{EMAIL_EDGE}$",
            local = Email::MAX_LOCAL_LEN
        )))
        .description(Some(format!(
            "At most {} characters, at most {} before the `@`, a dot in the domain; \
             compared case-insensitively after trimming",
            Email::MAX_LEN,
            Email::MAX_LOCAL_LEN
        )))
}

/// A new password.
pub fn password() -> Object {
    password_builder().build()
}

/// A new password that may be left out (or null).
pub fn optional_password() -> Object {
    nullable(password_builder()).build()
}

fn password_builder() -> ObjectBuilder {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
        .min_length(Some(PASSWORD_MIN_LEN))
        .max_length(Some(PASSWORD_MAX_LEN))
        .description(Some(format!(
            "{PASSWORD_MIN_LEN} to {PASSWORD_MAX_LEN} characters"
        )))
}

/// The email of a sign-in: only its length is checked, as any other mismatch is
/// `invalid_credentials` like a wrong password.
pub fn login_email() -> Object {
    string()
        .max_length(Some(Email::MAX_LEN))
        .description(Some(format!("At most {} characters", Email::MAX_LEN)))
        .build()
}

/// The password of a sign-in: only its length is checked.
pub fn login_password() -> Object {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
        .max_length(Some(PASSWORD_MAX_LEN))
        .description(Some(format!("At most {PASSWORD_MAX_LEN} characters")))
        .build()
}

fn slug_builder() -> ObjectBuilder {
    string()
        .min_length(Some(Slug::MIN_LEN))
        .max_length(Some(Slug::MAX_LEN))
        .pattern(Some("^[a-z](?:-?[a-z0-9])*$"))
}

/// A new tenant's slug.
pub fn slug() -> Object {
    slug_builder()
        .description(Some(format!(
            "{} to {} of a-z, 0-9 and -, starting with a letter, no trailing - and no --; \
             not reserved ({} and resolve.reserved_slugs)",
            Slug::MIN_LEN,
            Slug::MAX_LEN,
            RESERVED_SLUGS.join(", ")
        )))
        .build()
}

/// Slugs of existing tenants (a target group), or null.
pub fn optional_slugs() -> utoipa::openapi::Array {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(slug_builder().description(Some("The slug of an existing tenant")))
        .build()
}

fn domain_builder() -> ObjectBuilder {
    // A label: its first and last characters, and at most MAX_LABEL_LEN - 2 between.
    let inner = Domain::MAX_LABEL_LEN - 2;
    let label = format!("[a-z0-9](?:[a-z0-9-]{{0,{inner}}}[a-z0-9])?");
    let top = format!("[a-z](?:[a-z0-9-]{{0,{inner}}}[a-z0-9])?");
    string()
        .max_length(Some(Domain::MAX_LEN))
        .pattern(Some(format!("^(?:{label}\\.)+{top}$")))
        .description(Some(format!(
            "A DNS name of at least two labels, up to {} characters, not under \
             resolve.base_domain",
            Domain::MAX_LEN
        )))
}

/// A custom domain.
pub fn domain() -> Object {
    domain_builder().build()
}

/// Custom domains of a new tenant.
pub fn domains() -> utoipa::openapi::Array {
    ArrayBuilder::new().items(domain_builder()).build()
}

/// The reason of a support session, written to the tenant's audit log.
pub fn reason() -> Object {
    named(
        1,
        crate::control::REASON_MAX,
        "; written to the tenant's audit log",
    )
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(schema: Object) -> regex::Regex {
        regex::Regex::new(schema.pattern.as_deref().expect("a pattern")).expect("valid regex")
    }

    /// Each pattern agrees with the check it states, on values either side of it.
    #[test]
    fn patterns_agree_with_the_checks() {
        let email = pattern(email());
        for raw in [
            "a@b.c",
            "Name.Last+tag@example.com",
            "a@b..c",
            &format!("{}@example.com", "x".repeat(64)),
            "a@b.c.",
            "a@.b.c",
            "a@bc",
            "a b@c.d",
            "@b.c",
            "a@@b.c",
            &format!("{}@example.com", "x".repeat(65)),
            "a\u{1}@b.c",
        ] {
            assert_eq!(
                email.is_match(raw),
                Email::parse(raw).is_ok(),
                "email {raw:?}"
            );
        }
        let slug = pattern(slug());
        for raw in [
            "abc", "a-b-c", "a1", "a", "1ab", "ab-", "a--b", "Abc", "a_b",
        ] {
            let shaped = (3..=63).contains(&raw.len());
            assert_eq!(
                slug.is_match(raw) && shaped,
                Slug::parse_shape(raw).is_ok(),
                "slug {raw:?}"
            );
        }
        let domain = pattern(domain());
        for raw in [
            "app.acme.test",
            "a.io",
            "x-1.example.com",
            &format!("{}.com", "a".repeat(63)),
            &format!("{}.com", "a".repeat(64)),
            "localhost",
            "-a.com",
            "a-.com",
            "a..com",
            "1.2.3.4",
            "a_b.com",
        ] {
            assert_eq!(
                domain.is_match(raw),
                Domain::parse(raw, "silo.test").is_ok(),
                "domain {raw:?}"
            );
        }
    }
}
