//! storyflow's entry point: parse the command line, run one command, turn
//! the outcome into an exit code. Everything else lives in the modules.

use std::process::ExitCode;

use clap::Parser;
use storyflow::{cli, error};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                error::exit::USAGE
            } else {
                error::exit::OK
            });
        }
    };
    if !matches!(cli.command, None | Some(cli::Command::Serve(_))) {
        quiet_on_closed_pipe();
    }
    match cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            match err.hint() {
                Some(hint) => eprintln!("error: {err}; {hint}"),
                None => eprintln!("error: {err}"),
            }
            ExitCode::from(err.exit_code())
        }
    }
}

/// A command whose reader went away (`storyflow story export ID | head`)
/// ends at once and quietly, as command-line tools do, instead of failing
/// on its next write. Rust starts with SIGPIPE ignored; the default action is
/// put back for every command but `serve`, which must outlive its clients.
#[cfg(unix)]
fn quiet_on_closed_pipe() {
    // SAFETY: called before any thread starts; `signal` with `SIG_DFL` only
    // restores the default disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn quiet_on_closed_pipe() {}
