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
