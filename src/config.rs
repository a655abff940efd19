//! [`ServeConfig`]: the validated settings of `storyflow serve`, with the one
//! default of each setting.
//!
//! The command line ([`crate::cli::ServeArgs`]) takes its defaults from
//! [`defaults`]; [`ServeConfig::from_args`] validates the arguments once;
//! the app, the engine and the HTTP server read the result. Commands other
//! than `serve`, and tests, use [`ServeConfig::default`], which holds the
//! same defaults.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::generator::builtin::Builtin;
use crate::generator::command::CommandGenerator;
use crate::generator::openai::{OpenAi, OpenAiConfig};
use crate::generator::{Generator, PromptBuilder, Templates};
use crate::http::HttpLimits;

/// The environment variable that sets `--token`.
pub const TOKEN_ENV: &str = "STORYFLOW_TOKEN";

/// The one default of each setting; clap's `default_value_t` reads these.
pub mod defaults {
    use std::time::Duration;

    pub const ADDR: &str = "127.0.0.1:7878";
    pub const WORKERS: usize = 2;
    pub const HTTP_THREADS: u16 = 8;
    pub const HTTP_MAX_CONNECTIONS: u16 = 128;
    pub const HTTP_TIMEOUT_S: u64 = 30;
    pub const BUILTIN_DELAY_MS: u64 = 0;
    pub const LLM_URL: &str = "http://127.0.0.1:11434/v1";
    pub const LLM_MODEL: &str = "llama3.1";
    pub const LLM_TIMEOUT_S: u64 = 300;
    pub const GENERATOR_TIMEOUT_S: u64 = 600;
    pub const SHUTDOWN_GRACE_S: u64 = 10;
    pub const SWEEP_INTERVAL_S: u64 = 60;
    pub const LEASE_S: u64 = 30;
    pub const MAX_ATTEMPTS: u32 = 5;
    pub const RETRIES: u32 = 4;
    pub const RETRY_BASE_MS: u64 = 500;
    pub const LLM_CONTEXT_TOKENS: u32 = 8192;
    pub const MAX_CONTINUATIONS: u32 = 3;
    pub const MIN_CHAPTER_WORDS: u32 = 50;
    pub const DEFAULT_CHAPTERS: u32 = crate::progress::DEFAULT_CHAPTER_COUNT;
    pub const CACHE_TTL_S: u64 = crate::progress::DEFAULT_TTL.as_secs();
    pub const CACHE_CAPACITY: usize = crate::progress::DEFAULT_CACHE_CAPACITY;
    /// Not on the command line: the longest wait between two tries of a
    /// generator call.
    pub const RETRY_MAX: Duration = Duration::from_secs(120);
    /// Not on the command line: how often idle workers look for runs queued
    /// by other processes.
    pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
}

/// Which backend writes, with its settings.
#[derive(Debug, Clone)]
pub enum GeneratorConfig {
    /// Offline, deterministic prose; `delay` per chapter (demos, tests).
    Builtin { delay: Duration },
    /// Any OpenAI-compatible chat completions server.
    OpenAi(OpenAiConfig),
    /// A local program (`PROGRAM ARGS`), killed after `timeout`.
    Command { command: String, timeout: Duration },
}

impl GeneratorConfig {
    /// The backend's name, as `/api/health` shows it.
    pub fn name(&self) -> &'static str {
        match self {
            GeneratorConfig::Builtin { .. } => "builtin",
            GeneratorConfig::OpenAi(_) => "openai",
            GeneratorConfig::Command { .. } => "command",
        }
    }

    /// Starts the backend; its own checks (the URL, the command line) fail
    /// as validation errors naming the flag.
    pub fn build(&self) -> Result<Arc<dyn Generator>> {
        Ok(match self {
            GeneratorConfig::Builtin { delay } => Arc::new(Builtin { delay: *delay }),
            GeneratorConfig::OpenAi(config) => Arc::new(
                OpenAi::new(config.clone()).map_err(|e| Error::validation("--llm-url", e))?,
            ),
            GeneratorConfig::Command { command, timeout } => Arc::new(
                CommandGenerator::new(command, *timeout)
                    .map_err(|e| Error::validation("--generator-cmd", e))?,
            ),
        })
    }
}

/// The validated settings of a serving storyflow.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub addr: SocketAddr,
    /// Required on /api and /metrics when set; required when `addr` is not
    /// loopback.
    pub token: Option<String>,
    /// Worker threads writing stories; 0 leaves runs to external workers.
    pub workers: usize,
    pub http: HttpLimits,
    pub generator: GeneratorConfig,
    /// Renders prompts within the context budget.
    pub prompts: Arc<PromptBuilder>,
    /// How long a shutdown waits for generator calls in progress.
    pub shutdown_grace: Duration,
    pub sweep_interval: Duration,
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    /// Claims of one run (crash recoveries) before it fails `STUCK_TIMEOUT`.
    pub max_attempts: u32,
    /// Retries of a transient generator failure, per step.
    pub retries: u32,
    /// The first retry's delay; doubled each time, with jitter.
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub poll_interval: Duration,
    /// Follow-up requests for a chapter that was cut off.
    pub max_continuations: u32,
    /// For generators that cannot say they were cut off: fewer words than
    /// this means the chapter was.
    pub min_chapter_words: u32,
    /// The chapter count of stories with neither a count nor a usable outline.
    pub default_chapter_count: u32,
    pub cache_ttl: Duration,
    pub cache_capacity: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        use defaults::*;
        ServeConfig {
            addr: ADDR.parse().expect("the default address parses"),
            token: None,
            workers: WORKERS,
            http: HttpLimits {
                threads: usize::from(HTTP_THREADS),
                max_connections: usize::from(HTTP_MAX_CONNECTIONS),
                timeout: Duration::from_secs(HTTP_TIMEOUT_S),
            },
            generator: GeneratorConfig::Builtin {
                delay: Duration::from_millis(BUILTIN_DELAY_MS),
            },
            prompts: Arc::new(PromptBuilder::new(
                // The built-in templates are part of this build and tested.
                Templates::load(None).expect("the built-in prompt templates parse"),
                LLM_CONTEXT_TOKENS,
            )),
            shutdown_grace: Duration::from_secs(SHUTDOWN_GRACE_S),
            sweep_interval: Duration::from_secs(SWEEP_INTERVAL_S),
            lease: Duration::from_secs(LEASE_S),
            max_attempts: MAX_ATTEMPTS,
            retries: RETRIES,
            retry_base: Duration::from_millis(RETRY_BASE_MS),
            retry_max: RETRY_MAX,
            poll_interval: POLL_INTERVAL,
            max_continuations: MAX_CONTINUATIONS,
            min_chapter_words: MIN_CHAPTER_WORDS,
            default_chapter_count: DEFAULT_CHAPTERS,
            cache_ttl: Duration::from_secs(CACHE_TTL_S),
            cache_capacity: CACHE_CAPACITY,
        }
    }
}

impl ServeConfig {
    /// `storyflow` without a command serves with every default, and with the
    /// token of [`TOKEN_ENV`] as `serve` would read it (no other setting of
    /// the builtin generator reads the environment).
    pub fn without_arguments() -> ServeConfig {
        ServeConfig {
            token: std::env::var(TOKEN_ENV).ok(),
            ..ServeConfig::default()
        }
    }

    /// Validates the arguments of `serve`, once: the address and its token,
    /// the generator's settings, the prompt templates.
    pub fn from_args(args: &crate::cli::ServeArgs) -> Result<ServeConfig> {
        let token = args.token.clone().filter(|t| !t.is_empty());
        if !args.addr.ip().is_loopback() && token.is_none() {
            return Err(Error::validation(
                "--addr",
                format!(
                    "binding {} exposes storyflow beyond this machine; set --token or STORYFLOW_TOKEN",
                    args.addr
                ),
            ));
        }
        let templates = Templates::load(args.prompts.as_deref())
            .map_err(|e| Error::validation("--prompts", format!("prompt template {e}")))?;
        Ok(ServeConfig {
            addr: args.addr,
            token: args.token.clone(),
            workers: args.workers,
            http: HttpLimits {
                threads: usize::from(args.http_threads),
                max_connections: usize::from(args.http_max_connections),
                timeout: Duration::from_secs(args.http_timeout_s),
            },
            generator: generator_config(args)?,
            prompts: Arc::new(PromptBuilder::new(templates, args.llm_context_tokens)),
            shutdown_grace: Duration::from_secs(args.shutdown_grace_s),
            sweep_interval: Duration::from_secs(args.sweep_interval_s),
            lease: Duration::from_secs(args.lease_s),
            max_attempts: args.max_attempts,
            retries: args.retries,
            retry_base: Duration::from_millis(args.retry_base_ms),
            max_continuations: args.max_continuations,
            min_chapter_words: args.min_chapter_words,
            default_chapter_count: args.default_chapters,
            cache_ttl: Duration::from_secs(args.cache_ttl_s),
            cache_capacity: args.cache_capacity,
            ..ServeConfig::default()
        })
    }

    /// Database connections the server needs: one per request thread and
    /// worker, and a few for the heartbeat, the sweeper and the integrity
    /// check.
    pub fn connections(&self) -> u32 {
        (self.http.threads + self.workers + 3).min(u32::MAX as usize) as u32
    }
}

fn generator_config(args: &crate::cli::ServeArgs) -> Result<GeneratorConfig> {
    use crate::cli::GeneratorKind;
    Ok(match args.generator {
        GeneratorKind::Builtin => GeneratorConfig::Builtin {
            delay: Duration::from_millis(args.builtin_delay_ms),
        },
        GeneratorKind::Openai => GeneratorConfig::OpenAi(OpenAiConfig {
            base_url: args.llm_url.clone(),
            model: args.llm_model.clone(),
            api_key: args.llm_api_key.clone().filter(|k| !k.is_empty()),
            timeout: Duration::from_secs(args.llm_timeout_s.max(1)),
        }),
        GeneratorKind::Command => GeneratorConfig::Command {
            command: args.generator_cmd.clone().ok_or_else(|| {
                Error::validation(
                    "--generator-cmd",
                    "--generator command needs --generator-cmd \"PROGRAM ARGS\"",
                )
            })?,
            timeout: Duration::from_secs(args.generator_timeout_s.max(1)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn the_command_line_defaults_are_the_config_defaults() {
        let Ok(Cli {
            command: Some(Command::Serve(args)),
            ..
        }) = Cli::try_parse_from(["storyflow", "serve"])
        else {
            panic!("`storyflow serve` parses");
        };
        let parsed = ServeConfig::from_args(&args).expect("the defaults are valid");
        let mut expected = ServeConfig::default();
        // The one setting the environment may set while the tests run.
        expected.token = parsed.token.clone();
        assert_eq!(format!("{parsed:?}"), format!("{expected:?}"));
        assert_eq!(parsed.workers, 2);
    }

    #[test]
    fn a_command_generator_needs_its_command() {
        let Ok(Cli {
            command: Some(Command::Serve(args)),
            ..
        }) = Cli::try_parse_from(["storyflow", "serve", "--generator", "command"])
        else {
            panic!("parses");
        };
        let err = ServeConfig::from_args(&args).unwrap_err();
        assert_eq!(err.code(), "VALIDATION_FAILED");
        assert!(err.to_string().starts_with("--generator-cmd:"), "{err}");
    }
}
