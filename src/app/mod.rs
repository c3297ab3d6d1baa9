//! The application shell: the command line, one file per command, loading
//! the configuration, and wiring the parts into a daemon. Nothing in the
//! library of parts uses this module; it uses them.

pub mod ask;
pub mod assemble;
pub mod chats;
pub mod check;
pub mod cli;
pub mod config;
pub mod export;
pub mod forget;
pub mod init;
pub mod knowledge;
pub mod login;
pub mod orders;
pub mod report;
pub mod run;
pub mod table;
pub mod telemetry;
pub mod wiring;
