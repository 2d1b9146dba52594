//! The collector's integration tests, in one binary (one link step): the agent API
//! and the dashboard in-process through `server::router`, the OpenAPI documents held
//! to the code, and the `Store` contract on SQLite and PostgreSQL.

mod api;
mod dashboard;
mod openapi;
mod store_contract;
