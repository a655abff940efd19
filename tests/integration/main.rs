//! storyflow's integration tests, as one test binary: one module per area,
//! one set of helpers in [`util`], compiled and linked once.
//!
//! Tests that need a real socket, a signal, `kill -9` or a real disk start
//! the real `storyflow` binary (`util::Server`, killed on drop). Tests of a
//! request and its answer alone (validation, routing, error shapes) call the
//! handlers in process through `util::InProcess`, the same `dispatch` the
//! server calls after it has read a request.
//!
//! Run one area with `cargo test --test integration api::`, or leave one out
//! with `-- --skip browser`.

mod util;

mod api;
mod api_status;
mod app_settings;
mod backups;
mod bible;
mod books;
mod browser;
mod browser_app_settings;
mod browser_bible;
mod browser_history;
mod browser_import;
mod browser_live;
mod browser_page;
mod browser_paging;
mod browser_reader;
mod browser_settings;
mod cancel;
mod clean_text;
mod cli;
mod cli_files;
mod cli_shell;
mod crash;
mod disk_full;
mod fuzz;
mod history;
mod import;
mod llm;
mod maintenance;
mod maintenance_more;
mod quality;
mod quality_stored;
mod search;
mod security;
mod security_clients;
mod smoke;
mod story_fields;
mod streaming;
mod usage;
mod whole_pieces;
