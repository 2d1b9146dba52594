//! The collector's integration tests, in one binary (one link step): the agent API
//! and the dashboard in-process through `server::router`, the OpenAPI documents held
//! to the code, an upstream's federation API (`federation.rs`), the brakes on enrollment (`brakes.rs`), slow clients against a served
//! socket (`slow_clients.rs`), and the `Store` contract on SQLite and PostgreSQL.

mod api;
mod api_use;
mod brakes;
mod dashboard;
mod federation;
mod openapi;
mod slow_clients;
mod store_contract;
