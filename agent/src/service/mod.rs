//! What runs on a schedule and ties the halves together: the run loop ([`run_loop`]:
//! scan, spool, deliver), the child process the loop's scans run in ([`scan_child`]),
//! the installed OS service ([`os_service`]), its settings ([`config`]), and what only
//! the Windows service needs from the OS ([`platform`], the one module allowed
//! `unsafe`), and the cheap look at running processes between scans
//! ([`process_check`]), and the watcher that tells the next scan which folders changed
//! ([`change_watch`]).

pub mod change_watch;
pub mod config;
pub mod os_service;
pub mod platform;
pub mod process_check;
pub mod run_loop;
pub mod scan_child;
