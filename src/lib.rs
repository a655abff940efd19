//! storyflow: a self-hosted story generation workbench in one binary.
//!
//! See `ARCHITECTURE.md` for the map; each module's own documentation says
//! what it owns. The binary (`main.rs`) only parses and dispatches.

pub mod app;
pub mod backup;
pub mod cancel;
pub mod cli;
pub mod clock;
pub mod config;
pub mod diff;
pub mod doorbell;
pub mod engine;
pub mod error;
pub mod export;
pub mod generator;
pub mod http;
pub mod import;
pub mod live;
pub mod maintenance;
pub mod metrics;
pub mod progress;
pub mod quality;
pub mod run;
pub mod settings;
pub mod store;
