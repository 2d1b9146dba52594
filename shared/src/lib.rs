//! Sverka's shared vocabulary: the wire types every agent report is made of, the
//! messenger catalog (shipped inside the binary as TOML data), and the matcher that
//! turns what a source observed into catalog hits.
//!
//! This crate carries no async runtime, HTTP or database code, so the agent stays small.

pub mod catalog;
pub mod federation;
pub mod inventory;
pub mod matcher;
pub mod observation;
pub mod protocol;
pub mod report;

pub use catalog::{AppEntry, AppStatus, Catalog, CatalogError};
pub use inventory::{Inventory, InventoryItem};
pub use matcher::{CatalogMatcher, Hit};
pub use observation::{Observation, Observed};
pub use report::{
    Evidence, Finding, HostInfo, LastUseSource, ScanReport, Scope, SourceError, SourceKind,
    Strength,
};

/// An error and its sources on one line, `: `-joined, each cause once (a TLS failure
/// under "error sending request", say).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
