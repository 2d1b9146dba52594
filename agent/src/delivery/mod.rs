//! The delivery half: getting reports to the collector. Enrollment ([`enroll`]), the
//! state folder ([`state`]) and its durable writes ([`fswrite`]), the spool ([`spool`]),
//! the report built from a scan ([`upload`]), the HTTP client ([`client`]) and when to
//! try again ([`retry`]).

pub mod client;
pub mod enroll;
pub mod fswrite;
pub mod retry;
pub mod spool;
pub mod state;
pub mod upload;
