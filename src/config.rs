//! [`ServeConfig`]: the validated settings of `storyflow serve`, with the one
//! default of each setting.
//!
//! The command line ([`ServeArgs`]) takes its defaults from
//! [`defaults`]; [`ServeConfig::from_args`] validates the arguments once;
//! the app, the engine and the HTTP server read the result. Commands other
//! than `serve`, and tests, use [`ServeConfig::default`], which holds the
//! same defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::error::{Error, Result};
use crate::generator::builtin::Builtin;
use crate::generator::command::CommandGenerator;
use crate::generator::openai::{OpenAi, OpenAiConfig};
use crate::generator::{Generator, PromptBuilder, Templates};
use crate::quality::StockPhrases;
use crate::store::Prices;

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
    pub const BACKUP_INTERVAL_H: f64 = 24.0;
    pub const BACKUP_KEEP: usize = 7;
    pub const TRASH_DAYS: f64 = 30.0;
    /// Not on the command line: the longest wait between two tries of a
    /// generator call.
    pub const RETRY_MAX: Duration = Duration::from_secs(120);
    /// Not on the command line: how often idle workers look for runs queued
    /// by other processes.
    pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
}

/// The flags of `serve`, as clap parses them (their doc comments are the
/// help text); [`ServeConfig::from_args`] validates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GeneratorKind {
    /// Offline, deterministic prose; no network.
    Builtin,
    /// Any OpenAI-compatible chat completions server.
    Openai,
    /// A local program: prompt on stdin, chapter on stdout.
    Command,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback requires --token.
    #[arg(long, default_value = defaults::ADDR)]
    pub addr: SocketAddr,
    /// Worker threads writing stories; 0 leaves runs to external workers.
    #[arg(long, default_value_t = defaults::WORKERS)]
    pub workers: usize,
    /// Request-handling threads.
    #[arg(long, default_value_t = defaults::HTTP_THREADS, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub http_threads: u16,
    /// Open connections served at once; more wait until one closes.
    #[arg(long, default_value_t = defaults::HTTP_MAX_CONNECTIONS, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub http_max_connections: u16,
    /// Seconds a client has to send a whole request (an idle connection is
    /// closed after it), and that a response write may stall.
    #[arg(long, default_value_t = defaults::HTTP_TIMEOUT_S, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_timeout_s: u64,
    /// Which text generator writes the chapters. Given, it wins over the
    /// page's settings [default: the saved setting, else builtin].
    #[arg(long, value_enum)]
    pub generator: Option<GeneratorKind>,
    /// Builtin generator: milliseconds to sleep per chapter (demos, tests).
    #[arg(long, default_value_t = defaults::BUILTIN_DELAY_MS)]
    pub builtin_delay_ms: u64,
    /// OpenAI generator: base URL of the server. Given, it wins over the
    /// page's settings [default: the saved setting, else Ollama's local
    /// address].
    #[arg(long, value_name = "URL")]
    pub llm_url: Option<String>,
    /// OpenAI generator: model name. Given, it wins over the page's settings
    /// [default: the saved setting, else llama3.1].
    #[arg(long, value_name = "MODEL")]
    pub llm_model: Option<String>,
    /// OpenAI generator: seconds before a request times out.
    #[arg(long, default_value_t = defaults::LLM_TIMEOUT_S)]
    pub llm_timeout_s: u64,
    /// OpenAI generator: a JSON object merged into every request body, e.g.
    /// '{"options": {"num_ctx": 16384}}' so that Ollama reads the whole prompt.
    #[arg(long, value_name = "JSON")]
    pub llm_extra_body: Option<String>,
    /// OpenAI generator: API key (sent as a Bearer token).
    #[arg(long, env = "STORYFLOW_LLM_API_KEY", hide_env_values = true)]
    pub llm_api_key: Option<String>,
    /// Command generator: the program and its arguments.
    #[arg(long, value_name = "\"PROGRAM ARGS\"")]
    pub generator_cmd: Option<String>,
    /// Command generator: seconds before the program is killed.
    #[arg(long, default_value_t = defaults::GENERATOR_TIMEOUT_S)]
    pub generator_timeout_s: u64,
    /// Bearer token required on /api and /metrics.
    #[arg(long, env = TOKEN_ENV, hide_env_values = true)]
    pub token: Option<String>,
    /// Seconds a shutdown waits for generator calls in progress; runs still
    /// waiting on one are then handed back and resume after a restart.
    #[arg(long, default_value_t = defaults::SHUTDOWN_GRACE_S)]
    pub shutdown_grace_s: u64,
    /// Seconds between background sweeps.
    #[arg(long, default_value_t = defaults::SWEEP_INTERVAL_S, value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_interval_s: u64,
    /// Seconds a worker's claim on a run lasts without a heartbeat.
    #[arg(long, default_value_t = defaults::LEASE_S, value_parser = clap::value_parser!(u64).range(1..))]
    pub lease_s: u64,
    /// Claims of one run (crash recoveries) before it fails STUCK_TIMEOUT.
    #[arg(long, default_value_t = defaults::MAX_ATTEMPTS)]
    pub max_attempts: u32,
    /// Retries of a transient generator failure, per step.
    #[arg(long, default_value_t = defaults::RETRIES)]
    pub retries: u32,
    /// Delay before the first retry, doubled for each next one.
    #[arg(long, default_value_t = defaults::RETRY_BASE_MS)]
    pub retry_base_ms: u64,
    /// Tokens the model's context window holds: every prompt and its answer
    /// fit in it (the story so far is trimmed oldest-first to make them).
    /// Given, it wins over the page's settings [default: the saved setting,
    /// else 8192].
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u32).range(512..))]
    pub llm_context_tokens: Option<u32>,
    /// A directory of prompt templates overriding the built-in ones
    /// (system.txt, outline.txt, chapter.txt, continue.txt, summary.txt);
    /// a stock_phrases.txt there (UTF-8, one phrase a line, # comments)
    /// replaces the built-in list of stock phrases the chapters' quality
    /// reports.
    #[arg(long, value_name = "DIR")]
    pub prompts: Option<PathBuf>,
    /// A chapter whose share of repeated word 4-grams is above R (0 < R <= 1)
    /// is written once more and the less repetitive of the two is saved
    /// [default: off].
    #[arg(long, value_name = "R")]
    pub rewrite_repetitive: Option<f64>,
    /// Follow-up requests for a chapter cut off by the length limit before
    /// the run fails with CHAPTER_TRUNCATED.
    #[arg(long, default_value_t = defaults::MAX_CONTINUATIONS)]
    pub max_continuations: u32,
    /// For the builtin and command generators: a chapter shorter than this
    /// many words counts as cut off and is continued.
    #[arg(long, default_value_t = defaults::MIN_CHAPTER_WORDS)]
    pub min_chapter_words: u32,
    /// Chapter count for stories with neither a count nor a usable outline.
    #[arg(long, default_value_t = defaults::DEFAULT_CHAPTERS, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub default_chapters: u32,
    /// Seconds a cached chapter count lives.
    #[arg(long, default_value_t = defaults::CACHE_TTL_S)]
    pub cache_ttl_s: u64,
    /// Chapter counts held in the cache at most.
    #[arg(long, default_value_t = defaults::CACHE_CAPACITY)]
    pub cache_capacity: usize,
    /// Hours between backups (fractions allowed); 0 turns timed backups off.
    #[arg(long, default_value_t = defaults::BACKUP_INTERVAL_H)]
    pub backup_interval_h: f64,
    /// Where backups go [default: `<database file name>.backups` beside the database].
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Backups kept; older ones are removed.
    #[arg(long, default_value_t = defaults::BACKUP_KEEP, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub backup_keep: usize,
    /// Days a deleted story stays in the trash before it is purged for good
    /// (fractions allowed).
    #[arg(long, default_value_t = defaults::TRASH_DAYS)]
    pub trash_days: f64,
    /// Price of a million prompt tokens, for the `cost` of runs, stories
    /// and chapters [default: none: cost is null].
    #[arg(long, value_name = "PRICE")]
    pub price_input_per_mtok: Option<f64>,
    /// Price of a million completion tokens [default: none: cost is null].
    #[arg(long, value_name = "PRICE")]
    pub price_output_per_mtok: Option<f64>,
}

/// How many requests and connections the server takes on at once, and how
/// long it waits for a slow client.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Request threads: requests handled at once; the rest queue.
    pub threads: usize,
    /// Open connections at once, each read by its own thread (tiny_http's
    /// design); further ones wait in the kernel's listen backlog.
    pub max_connections: usize,
    /// A request, head and body, must arrive within this of the connection
    /// being free to read it (so an idle or trickling connection is closed),
    /// and a response write may stall no longer.
    pub timeout: Duration,
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
    /// The stock phrases chapters are measured against when saved: the
    /// built-in list, or `stock_phrases.txt` of `--prompts DIR`.
    pub stock_phrases: Arc<StockPhrases>,
    /// A chapter whose repetition share is above this is written once more
    /// (the less repetitive is saved); `None`, off.
    pub rewrite_repetitive: Option<f64>,
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
    /// Time between timed backups; `None` turns them off.
    pub backup_interval: Option<Duration>,
    /// `None`: `<database file name>.backups` beside the database.
    pub backup_dir: Option<PathBuf>,
    pub backup_keep: usize,
    /// How long a story stays in the trash before the sweeper purges it.
    pub trash_retention: Duration,
    /// What tokens cost; none by default (usage then has a null cost).
    pub prices: Prices,
    /// The OpenAI-compatible server's settings as the flags and defaults
    /// give them, whichever generator the flags chose: the page's settings
    /// start from these (see [`crate::settings`]).
    pub llm: OpenAiConfig,
    /// The page's settings that a `serve` flag gave, which therefore win
    /// over the saved ones (names as in `/api/settings`).
    pub fixed_by_flags: Vec<&'static str>,
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
            stock_phrases: Arc::new(StockPhrases::shared().clone()),
            rewrite_repetitive: None,
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
            backup_interval: Some(Duration::from_secs_f64(BACKUP_INTERVAL_H * 3600.0)),
            backup_dir: None,
            backup_keep: BACKUP_KEEP,
            trash_retention: Duration::from_secs_f64(TRASH_DAYS * 86_400.0),
            prices: Prices::default(),
            llm: OpenAiConfig {
                base_url: LLM_URL.to_string(),
                model: LLM_MODEL.to_string(),
                api_key: None,
                timeout: Duration::from_secs(LLM_TIMEOUT_S),
                extra_body: serde_json::Map::new(),
            },
            fixed_by_flags: Vec::new(),
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
    pub fn from_args(args: &ServeArgs) -> Result<ServeConfig> {
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
        let stock_phrases = StockPhrases::load(args.prompts.as_deref())
            .map_err(|e| Error::validation("--prompts", e.to_string()))?;
        let llm = llm_config(args)?;
        Ok(ServeConfig {
            addr: args.addr,
            token: args.token.clone(),
            workers: args.workers,
            http: HttpLimits {
                threads: usize::from(args.http_threads),
                max_connections: usize::from(args.http_max_connections),
                timeout: Duration::from_secs(args.http_timeout_s),
            },
            generator: generator_config(args, &llm)?,
            prompts: Arc::new(PromptBuilder::new(
                templates,
                args.llm_context_tokens
                    .unwrap_or(defaults::LLM_CONTEXT_TOKENS),
            )),
            stock_phrases: Arc::new(stock_phrases),
            rewrite_repetitive: share("--rewrite-repetitive", args.rewrite_repetitive)?,
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
            backup_interval: hours("--backup-interval-h", args.backup_interval_h)?,
            backup_dir: args.backup_dir.clone(),
            backup_keep: args.backup_keep,
            trash_retention: hours("--trash-days", args.trash_days * 24.0)?
                .unwrap_or(Duration::ZERO),
            prices: Prices {
                input_per_mtok: price("--price-input-per-mtok", args.price_input_per_mtok)?,
                output_per_mtok: price("--price-output-per-mtok", args.price_output_per_mtok)?,
            },
            llm,
            fixed_by_flags: fixed_by_flags(args),
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

/// A number of hours from the command line: finite and not negative; 0 is
/// `None` (off).
fn hours(flag: &str, hours: f64) -> Result<Option<Duration>> {
    if !hours.is_finite() || !(0.0..=1e6).contains(&hours) {
        return Err(Error::validation(
            flag,
            format!("must be a number from 0 to 1000000, got {hours}"),
        ));
    }
    Ok((hours > 0.0).then(|| Duration::from_secs_f64(hours * 3600.0)))
}

/// A share of repeated word 4-grams: above 0 and at most 1.
fn share(flag: &str, share: Option<f64>) -> Result<Option<f64>> {
    match share {
        Some(r) if !(r > 0.0 && r <= 1.0) => Err(Error::validation(
            flag,
            format!("must be a share above 0 and at most 1 (e.g. 0.2), got {r}"),
        )),
        other => Ok(other),
    }
}

/// A price per million tokens: a finite number, zero or more.
fn price(flag: &str, price: Option<f64>) -> Result<Option<f64>> {
    match price {
        Some(p) if !p.is_finite() || p < 0.0 => Err(Error::validation(
            flag,
            format!("must be a price of zero or more, got {p}"),
        )),
        other => Ok(other),
    }
}

/// The page's settings a flag was given for (an empty API key is none).
fn fixed_by_flags(args: &ServeArgs) -> Vec<&'static str> {
    let given = [
        ("generator", args.generator.is_some()),
        ("llm_url", args.llm_url.is_some()),
        ("llm_model", args.llm_model.is_some()),
        ("context_tokens", args.llm_context_tokens.is_some()),
        ("price_input_per_mtok", args.price_input_per_mtok.is_some()),
        (
            "price_output_per_mtok",
            args.price_output_per_mtok.is_some(),
        ),
        ("llm_extra_body", args.llm_extra_body.is_some()),
        (
            "llm_api_key",
            args.llm_api_key.as_deref().is_some_and(|k| !k.is_empty()),
        ),
    ];
    given
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
}

fn llm_config(args: &ServeArgs) -> Result<OpenAiConfig> {
    let defaults = ServeConfig::default().llm;
    Ok(OpenAiConfig {
        base_url: args.llm_url.clone().unwrap_or(defaults.base_url),
        model: args.llm_model.clone().unwrap_or(defaults.model),
        api_key: args.llm_api_key.clone().filter(|k| !k.is_empty()),
        timeout: Duration::from_secs(args.llm_timeout_s.max(1)),
        extra_body: match &args.llm_extra_body {
            Some(text) => crate::generator::openai::extra_body(text)
                .map_err(|e| Error::validation("--llm-extra-body", e))?,
            None => serde_json::Map::new(),
        },
    })
}

fn generator_config(args: &ServeArgs, llm: &OpenAiConfig) -> Result<GeneratorConfig> {
    Ok(match args.generator.unwrap_or(GeneratorKind::Builtin) {
        GeneratorKind::Builtin => GeneratorConfig::Builtin {
            delay: Duration::from_millis(args.builtin_delay_ms),
        },
        GeneratorKind::Openai => GeneratorConfig::OpenAi(llm.clone()),
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
        let expected = ServeConfig {
            // The one setting the environment may set while the tests run.
            token: parsed.token.clone(),
            ..ServeConfig::default()
        };
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

    #[test]
    fn prices_are_read_and_a_negative_one_is_refused() {
        let priced = serve(&[
            "--price-input-per-mtok",
            "0.5",
            "--price-output-per-mtok",
            "2",
        ])
        .expect("valid prices");
        assert_eq!(priced.prices.input_per_mtok, Some(0.5));
        assert_eq!(priced.prices.output_per_mtok, Some(2.0));
        assert_eq!(serve(&[]).expect("defaults").prices, Prices::default());
        let err = serve(&["--price-output-per-mtok=-1"]).unwrap_err();
        assert!(
            err.to_string().starts_with("--price-output-per-mtok:"),
            "{err}"
        );
    }

    fn serve(extra: &[&str]) -> Result<ServeConfig> {
        let argv = ["storyflow", "serve"].iter().chain(extra).copied();
        let Ok(Cli {
            command: Some(Command::Serve(args)),
            ..
        }) = Cli::try_parse_from(argv)
        else {
            panic!("parses: {extra:?}");
        };
        ServeConfig::from_args(&args)
    }

    #[test]
    fn rewrite_repetitive_is_off_by_default_and_takes_a_share_up_to_one() {
        assert_eq!(serve(&[]).expect("defaults").rewrite_repetitive, None);
        for ok in ["0.2", "1", "0.001"] {
            let config = serve(&["--rewrite-repetitive", ok]).expect(ok);
            assert_eq!(config.rewrite_repetitive, ok.parse().ok(), "{ok}");
        }
        for bad in ["0", "-0.5", "1.01", "NaN", "inf"] {
            let err = serve(&[&format!("--rewrite-repetitive={bad}")]).unwrap_err();
            assert_eq!(err.code(), "VALIDATION_FAILED", "{bad}");
            assert_eq!(err.exit_code(), crate::error::exit::USAGE, "{bad}");
            assert!(
                err.to_string()
                    .starts_with("--rewrite-repetitive: must be a share"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_stock_phrases_come_from_the_prompts_directory_and_a_bad_file_stops_serve() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        assert_eq!(
            serve(&["--prompts", path]).unwrap().stock_phrases.len(),
            StockPhrases::shared().len()
        );
        std::fs::write(dir.path().join("stock_phrases.txt"), "brass lanterns\n").unwrap();
        assert_eq!(serve(&["--prompts", path]).unwrap().stock_phrases.len(), 1);
        std::fs::write(dir.path().join("stock_phrases.txt"), b"caf\xe9\n").unwrap();
        let err = serve(&["--prompts", path]).unwrap_err();
        assert_eq!(err.code(), "VALIDATION_FAILED");
        assert!(err.to_string().starts_with("--prompts:"), "{err}");
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }
}
