//! End-to-end tests of Sverka, in one test binary (one link step on a small machine).
//! Every test builds its own small fixture root; none reads this machine's own
//! packages, except the live-scan smoke test and `readme_commands` (which runs the
//! README's `sverka-agent scan`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accessibility;
mod activity;
mod architecture_map;
mod bad_input;
mod browser;
mod cli;
mod collector;
mod dashboard;
mod executable_inventory;
mod federation;
mod fuzz;
mod install_methods;
mod last_use;
mod mail;
mod multi_collector;
mod negative_controls;
mod notifications;
mod packaging;
mod proof;
mod readme_commands;
mod reporting;
mod rpm_real;
mod tools;
mod windows;
mod wine_prefixes;
