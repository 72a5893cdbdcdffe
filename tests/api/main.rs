//! The integration suite: one binary, one module per area. Every test spawns a real silo on
//! port 0 with its own data directory and talks to it over real HTTP.

mod helpers;

mod api_tokens;
mod bad_input;
mod cli;
mod early_answers;
mod identity;
mod invitations;
mod isolation;
mod jwt;
mod keys;
mod lifecycle;
mod members;
mod openapi;
mod openapi_bounds;
mod operations;
mod operators;
mod placement;
mod pools;
mod postgres_tenants;
mod projects;
mod quotas;
mod request_connection;
mod resolution;
mod roles;
mod routers;
mod schema;
mod webhooks;
