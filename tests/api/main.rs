//! The integration suite: one binary, one module per area. Every test spawns a real silo on
//! port 0 with its own data directory and talks to it over real HTTP.

mod helpers;

mod bad_input;
mod cli;
mod identity;
mod isolation;
mod jwt;
mod lifecycle;
mod pools;
mod projects;
mod resolution;
