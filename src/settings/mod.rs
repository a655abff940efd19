//! The writer's settings: which generator writes, which model server and
//! models, temperature, context size, prices, the API key. Owns what they
//! mean, their validation, and how the effective value of each is found:
//! a `serve` flag wins over the saved value, which wins over the default
//! (the defaults are [`crate::config::defaults`], carried by
//! [`ServeConfig`]). Saving them is [`crate::store::settings`]'s job;
//! applying them without a restart is [`live::LiveSettings`]'s.
//!
//! Decisions:
//! - `generator` is `builtin` or `openai`; the command generator is set by
//!   `serve --generator command` alone, and then no saved `generator` applies
//!   (`GET /api/settings` says `"generator_locked": true`);
//! - `outline_model` and `summary_model` empty or absent mean "the
//!   `llm_model`"; `temperature` absent means "the server's default";
//! - a `temperature` given here goes into every request unless
//!   `llm_extra_body` sets one (the extra body is the last word, as with
//!   `--llm-extra-body`);
//! - `llm_api_key` is write-only: reads say `llm_api_key_set`; `""` or null
//!   clears it;
//! - a value saved for a setting a flag fixes is kept, and applies once
//!   `serve` runs without that flag (the page shows such fields disabled);
//! - the reachability check (`GET {llm_url}/models`) runs after each sweep
//!   and after a save that changes the generator, the URL or the key; it
//!   is not run for the builtin or command generators (always reachable).

pub mod live;
pub mod probe;
pub mod source;

use serde_json::{Map, Value, json};

use crate::config::{GeneratorConfig, ServeConfig};
use crate::error::{Error, Result};
use crate::generator::openai::OpenAiConfig;
use crate::store::Prices;
use crate::store::settings::{SETTING_KEYS, StoredSettings};

pub use live::LiveSettings;
pub use source::GeneratorSource;

/// The settings in force: flags, then saved values, then defaults.
#[derive(Clone)]
pub struct Effective {
    /// `builtin`, `openai` or `command` (flags only).
    pub generator: &'static str,
    pub llm: OpenAiConfig,
    /// Empty: the `llm.model`.
    pub outline_model: String,
    pub summary_model: String,
    pub temperature: Option<f64>,
    pub context_tokens: u32,
    pub prices: Prices,
}

impl std::fmt::Debug for Effective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Effective")
            .field("generator", &self.generator)
            .field("llm_url", &self.llm.base_url)
            .field("llm_model", &self.llm.model)
            .field("llm_api_key_set", &self.llm.api_key.is_some())
            .finish_non_exhaustive()
    }
}

impl Effective {
    /// The model for one kind of piece: its own when set, else the main one.
    pub fn model_for(&self, own: &str) -> String {
        if own.trim().is_empty() {
            self.llm.model.clone()
        } else {
            own.trim().to_string()
        }
    }

    /// The generator these settings describe; the command generator and the
    /// builtin's delay come from the flags as they are.
    pub fn generator_config(&self, config: &ServeConfig) -> GeneratorConfig {
        match (&config.generator, self.generator) {
            (GeneratorConfig::Command { .. }, _) => config.generator.clone(),
            (GeneratorConfig::Builtin { delay }, "builtin") => {
                GeneratorConfig::Builtin { delay: *delay }
            }
            (_, "builtin") => GeneratorConfig::Builtin {
                delay: std::time::Duration::from_millis(crate::config::defaults::BUILTIN_DELAY_MS),
            },
            _ => GeneratorConfig::OpenAi(self.request_config(&self.llm.model)),
        }
    }

    /// The server settings for requests to `model`, with the temperature
    /// merged into the extra body (which keeps the last word).
    pub fn request_config(&self, model: &str) -> OpenAiConfig {
        let mut llm = self.llm.clone();
        llm.model = model.to_string();
        if let Some(temperature) = self.temperature {
            let mut body = Map::new();
            body.insert("temperature".into(), json!(temperature));
            body.extend(llm.extra_body);
            llm.extra_body = body;
        }
        llm
    }
}

/// Whether `name` is a setting a flag fixed.
pub fn fixed(config: &ServeConfig, name: &str) -> bool {
    config.fixed_by_flags.contains(&name)
        || (name == "generator" && matches!(config.generator, GeneratorConfig::Command { .. }))
}

/// Finds the settings in force from the flags (in `config`) and the saved
/// values.
pub fn resolve(config: &ServeConfig, stored: &StoredSettings) -> Effective {
    let pick = |name: &str| !fixed(config, name);
    let flag_generator = match config.generator {
        GeneratorConfig::Builtin { .. } => "builtin",
        GeneratorConfig::OpenAi(_) => "openai",
        GeneratorConfig::Command { .. } => "command",
    };
    let generator = match stored.generator.as_deref() {
        Some("builtin") if pick("generator") => "builtin",
        Some("openai") if pick("generator") => "openai",
        _ => flag_generator,
    };
    let mut llm = config.llm.clone();
    macro_rules! saved {
        ($name:literal, $stored:expr, $target:expr) => {
            if let (true, Some(value)) = (pick($name), $stored.clone()) {
                $target = value;
            }
        };
    }
    saved!("llm_url", stored.llm_url, llm.base_url);
    saved!("llm_model", stored.llm_model, llm.model);
    saved!("llm_extra_body", stored.llm_extra_body, llm.extra_body);
    if pick("llm_api_key") && stored.llm_api_key.is_some() {
        llm.api_key = stored.llm_api_key.clone();
    }
    let mut context_tokens = config.prompts.context_tokens();
    saved!("context_tokens", stored.context_tokens, context_tokens);
    let mut prices = config.prices;
    if pick("price_input_per_mtok") && stored.price_input_per_mtok.is_some() {
        prices.input_per_mtok = stored.price_input_per_mtok;
    }
    if pick("price_output_per_mtok") && stored.price_output_per_mtok.is_some() {
        prices.output_per_mtok = stored.price_output_per_mtok;
    }
    Effective {
        generator,
        llm,
        outline_model: stored.outline_model.clone().unwrap_or_default(),
        summary_model: stored.summary_model.clone().unwrap_or_default(),
        temperature: stored.temperature,
        context_tokens,
        prices,
    }
}

/// The body of `GET /api/settings`: the settings in force, never the key.
pub fn to_json(config: &ServeConfig, effective: &Effective) -> Value {
    let fixed_by_flags: Vec<&str> = SETTING_KEYS
        .iter()
        .copied()
        .filter(|name| fixed(config, name))
        .collect();
    json!({
        "generator": effective.generator,
        "llm_url": effective.llm.base_url,
        "llm_model": effective.llm.model,
        "outline_model": effective.outline_model,
        "summary_model": effective.summary_model,
        "temperature": effective.temperature,
        "context_tokens": effective.context_tokens,
        "price_input_per_mtok": effective.prices.input_per_mtok,
        "price_output_per_mtok": effective.prices.output_per_mtok,
        "llm_extra_body": effective.llm.extra_body,
        "llm_api_key_set": effective.llm.api_key.is_some(),
        "generator_locked": matches!(config.generator, GeneratorConfig::Command { .. }),
        "fixed_by_flags": fixed_by_flags,
    })
}

/// Checks a `PUT /api/settings` body and returns the changes to save, key
/// by key (`None`: back to the default). Unknown fields, `generator_cmd`
/// among them, are refused: a typo must not be saved as nothing.
pub fn validate_patch(body: &Value) -> Result<Vec<(&'static str, Option<Value>)>> {
    let Value::Object(fields) = body else {
        return Err(Error::BadRequest(
            "the body must be a JSON object of settings".into(),
        ));
    };
    let mut changes = Vec::new();
    for (name, value) in fields {
        let Some(key) = SETTING_KEYS.iter().copied().find(|k| k == name) else {
            let why = if name == "generator_cmd" {
                "the command generator is set by `serve --generator-cmd` only, never over HTTP"
                    .to_string()
            } else {
                format!(
                    "`{name}` is not a setting; the settings are {}",
                    SETTING_KEYS.join(", ")
                )
            };
            return Err(Error::BadRequest(why));
        };
        changes.push((key, validate_one(key, value)?));
    }
    Ok(changes)
}

/// One setting's new value; `Ok(None)` clears it.
fn validate_one(key: &'static str, value: &Value) -> Result<Option<Value>> {
    let bad = |why: &str| Err(Error::validation(key, why));
    if value.is_null() {
        return Ok(None);
    }
    match key {
        "generator" => match value.as_str() {
            Some("builtin" | "openai") => Ok(Some(value.clone())),
            _ => bad(
                "must be \"builtin\" or \"openai\" (the command generator is set by serve flags)",
            ),
        },
        "llm_url" => match value.as_str() {
            Some(url) => match crate::generator::openai::check_base_url(url) {
                Ok(clean) => Ok(Some(json!(clean))),
                Err(why) => bad(&why),
            },
            None => bad("must be a URL such as http://127.0.0.1:11434/v1"),
        },
        "llm_model" => match value.as_str().map(str::trim) {
            Some(model) if !model.is_empty() && model.len() <= 200 => Ok(Some(json!(model))),
            _ => bad("must be a model name of 1 to 200 characters"),
        },
        "outline_model" | "summary_model" => match value.as_str().map(str::trim) {
            Some("") => Ok(None),
            Some(model) if model.len() <= 200 => Ok(Some(json!(model))),
            _ => bad("must be a model name of up to 200 characters, or empty for the main model"),
        },
        "temperature" => match value.as_f64() {
            Some(t) if (0.0..=2.0).contains(&t) => Ok(Some(json!(t))),
            _ => bad("must be a number from 0 to 2"),
        },
        "context_tokens" => match value.as_u64() {
            Some(n) if (512..=10_000_000).contains(&n) => Ok(Some(json!(n))),
            _ => bad("must be a whole number of tokens from 512 to 10000000"),
        },
        "price_input_per_mtok" | "price_output_per_mtok" => match value.as_f64() {
            Some(p) if p.is_finite() && (0.0..=1e6).contains(&p) => Ok(Some(json!(p))),
            _ => bad("must be a price from 0 to 1000000"),
        },
        "llm_extra_body" => {
            let text = value.to_string();
            match crate::generator::openai::extra_body(&text) {
                Ok(fields) if fields.is_empty() => Ok(None),
                Ok(fields) => Ok(Some(Value::Object(fields))),
                Err(why) => bad(&why),
            }
        }
        "llm_api_key" => match value.as_str() {
            Some("") => Ok(None),
            Some(key) if key.len() <= 4096 && !key.chars().any(char::is_control) => {
                Ok(Some(json!(key)))
            }
            // The message never quotes the value: it may be a key.
            _ => bad("must be a string of up to 4096 characters without control characters"),
        },
        _ => Err(Error::Internal(format!("setting {key} has no validation"))),
    }
}

#[cfg(test)]
mod tests;
