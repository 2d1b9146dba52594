//! sverka-agent as a library, laid out by its halves: [`scan`] finds what is on this PC
//! (evidence sources, the registry, binary formats), [`delivery`] gets reports to the
//! collector (enrollment, state folder, spool, HTTP client), [`service`] runs both on a
//! schedule (the run loop, the scan child, the OS service, its settings and platform
//! code), and [`cli`] is the command line. `src/main.rs` is a thin shell over
//! [`cli::main`].
//!
//! Imports go one way: `scan` imports none of the others; `delivery` imports `scan`
//! (host facts, bounded reads, the scan outcome) and, on Windows only,
//! `service::platform` (the state folder the MSI recorded); `service` and `cli` import
//! both halves.
//!
//! Invariants: a scan never fails whole (every source reports its own errors); nothing
//! that comes from the machine is trusted to be well-formed; the agent reads software
//! metadata only, never messages, chat databases, documents or browser history.

pub mod cli;
pub mod delivery;
pub mod scan;
pub mod service;
