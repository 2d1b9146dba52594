//! sverka-agent as a library: the evidence sources, the scan that runs them, reporting
//! to the collector (enrollment, state folder, spool, HTTP client, the run loop), and
//! the command line. `src/main.rs` is a thin shell over [`cli::main`].
//!
//! Invariants: a scan never fails whole (every source reports its own errors); nothing
//! that comes from the machine is trusted to be well-formed; the agent reads software
//! metadata only, never messages, chat databases, documents or browser history.

pub mod cli;
pub mod client;
pub mod config;
pub mod enroll;
pub mod fsread;
pub mod fswrite;
pub mod host;
pub mod leveldb;
pub mod output;
pub mod pe;
pub mod platform;
pub mod registry;
pub mod retry;
pub mod root;
pub mod run;
pub mod scan;
pub mod scan_process;
pub mod service;
pub mod sources;
pub mod spool;
pub mod state;
pub mod upload;
pub mod users;
pub mod windows;
