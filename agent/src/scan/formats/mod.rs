//! Binary formats the scan reads from untrusted files, parsed purely over bytes and
//! bounded: Windows programs' version resources ([`pe`]) and LevelDB logs and tables
//! ([`leveldb`], Chromium's web app database).

pub mod leveldb;
pub mod pe;
