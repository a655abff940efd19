//! [`LiveSettings`]: the settings of a running storyflow. It reads and
//! saves them, builds the generator they describe and swaps it into the
//! [`GeneratorSource`] the workers call, tests a connection, and keeps the
//! last reachability check for `/api/health`.
//!
//! A change is checked whole before anything is saved: the values, then the
//! generator they build (a URL the HTTP client refuses is a 422, and
//! nothing changes). Changes are taken one at a time, so two saves cannot
//! interleave their swap.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::probe::{self, Reachability, TestReport};
use super::source::{ByTask, Current, GeneratorSource};
use super::{Effective, resolve, to_json, validate_one, validate_patch};
use crate::config::{GeneratorConfig, ServeConfig};
use crate::error::{Error, Result};
use crate::generator::Generator;
use crate::generator::openai::OpenAi;
use crate::run::Timestamp;
use crate::store::{Prices, Store, StoredSettings};

pub struct LiveSettings {
    store: Store,
    config: ServeConfig,
    source: Arc<GeneratorSource>,
    reach: Mutex<Reachability>,
    /// Saves are taken one at a time; holds when the last one applied.
    changed_at: Mutex<Option<Timestamp>>,
}

impl LiveSettings {
    /// The settings in force at start: the saved ones under the flags. A
    /// saved combination that no longer builds (unlikely: it was checked
    /// when saved) is logged and the flags' generator used instead.
    pub fn new(store: Store, config: &ServeConfig) -> LiveSettings {
        let effective = match store.stored_settings() {
            Ok(stored) => resolve(config, &stored),
            Err(e) => {
                log::warn!("could not read the saved settings ({e}); using the flags and defaults");
                resolve(config, &StoredSettings::default())
            }
        };
        let current = build(config, &effective).unwrap_or_else(|e| {
            log::warn!(
                "the saved settings do not make a generator ({e}); using the flags and defaults"
            );
            build(config, &resolve(config, &StoredSettings::default())).unwrap_or_else(|e| {
                log::warn!("the flags do not make a generator ({e}); using the builtin one");
                Current {
                    generator: Arc::new(crate::generator::builtin::Builtin {
                        delay: std::time::Duration::ZERO,
                    }),
                    prompts: config.prompts.clone(),
                    prices: config.prices,
                }
            })
        });
        LiveSettings {
            store,
            config: config.clone(),
            source: Arc::new(GeneratorSource::new(current)),
            reach: Mutex::new(Reachability {
                ok: true,
                checked_at: None,
                error: None,
            }),
            changed_at: Mutex::new(None),
        }
    }

    /// What the workers call.
    pub fn source(&self) -> Arc<GeneratorSource> {
        self.source.clone()
    }

    pub fn prices(&self) -> Prices {
        self.source.prices()
    }

    fn effective(&self) -> Result<Effective> {
        Ok(resolve(&self.config, &self.store.stored_settings()?))
    }

    /// `GET /api/settings`.
    pub fn to_json(&self) -> Result<Value> {
        Ok(to_json(&self.config, &self.effective()?))
    }

    /// `PUT /api/settings`: checks, saves, swaps the generator, checks the
    /// server again. Returns what `GET` now answers.
    pub fn update(&self, body: &Value) -> Result<Value> {
        let changes = validate_patch(body)?;
        let mut changed_at = self.changed_at.lock().unwrap_or_else(|e| e.into_inner());
        let mut stored = self.store.stored_settings()?;
        for (key, value) in &changes {
            stored = stored.with_change(key, value.as_ref());
        }
        let effective = resolve(&self.config, &stored);
        let current = build(&self.config, &effective)?;
        self.store.save_settings(&changes)?;
        self.source.swap(current);
        *changed_at = Some(self.store.now());
        drop(changed_at);
        log::info!(
            "settings changed ({}); generator {} in force for the next call",
            changes
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(", "),
            effective.generator,
        );
        // Asked again only when what it answers could have changed: the
        // server, its key, or which generator writes.
        if changes
            .iter()
            .any(|(key, _)| matches!(*key, "generator" | "llm_url" | "llm_api_key"))
        {
            self.check_reachability();
        }
        Ok(to_json(&self.config, &effective))
    }

    /// `POST /api/settings/test`: the settings in force, or those the body
    /// names (`generator`, `llm_url`, `llm_model`, `llm_api_key`) to try
    /// before saving.
    pub fn test(&self, body: &Value) -> Result<TestReport> {
        let mut effective = self.effective()?;
        let fields = match body {
            Value::Object(fields) => fields.clone(),
            Value::Null => serde_json::Map::new(),
            _ => return Err(Error::BadRequest("the body must be a JSON object".into())),
        };
        for (name, value) in &fields {
            let key = match name.as_str() {
                "generator" => "generator",
                "llm_url" => "llm_url",
                "llm_model" => "llm_model",
                "llm_api_key" => "llm_api_key",
                other => {
                    return Err(Error::BadRequest(format!(
                        "`{other}` cannot be tested; send generator, llm_url, llm_model or llm_api_key"
                    )));
                }
            };
            let value = validate_one(key, value)?;
            match (key, value) {
                ("generator", Some(Value::String(g))) if g == "openai" => {
                    effective.generator = "openai"
                }
                ("generator", Some(_)) => effective.generator = "builtin",
                ("llm_url", Some(Value::String(url))) => effective.llm.base_url = url,
                ("llm_model", Some(Value::String(model))) => effective.llm.model = model,
                ("llm_api_key", key) => {
                    effective.llm.api_key = key.and_then(|k| k.as_str().map(str::to_string));
                }
                _ => {}
            }
        }
        if matches!(self.config.generator, GeneratorConfig::Command { .. }) {
            return Ok(probe::needs_no_server("command"));
        }
        if effective.generator != "openai" {
            return Ok(probe::needs_no_server("builtin"));
        }
        let llm = effective.request_config(&effective.llm.model);
        Ok(probe::test_connection(&llm))
    }

    /// Asks the server in force for its model list, and keeps the answer
    /// for `/api/health`. Generators without a server are always reachable.
    pub fn check_reachability(&self) {
        let generation = self.source.generation();
        let effective = match self.effective() {
            Ok(effective) => effective,
            Err(e) => {
                log::debug!("reachability check skipped: {e}");
                return;
            }
        };
        let checked = if effective.generator == "openai" {
            probe::list_models(&effective.llm, probe::CHECK_TIMEOUT).err()
        } else {
            None
        };
        if let Some(error) = &checked {
            log::warn!("{error}");
        }
        let mut reach = self.reach.lock().unwrap_or_else(|e| e.into_inner());
        // A check begun under older settings says nothing of the new ones.
        if generation == self.source.generation() {
            *reach = Reachability {
                ok: checked.is_none(),
                checked_at: Some(self.store.now()),
                error: checked,
            };
        }
    }

    pub fn reachability(&self) -> Reachability {
        self.reach.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// When the settings last changed in this process, if they did.
    pub fn changed_at(&self) -> Option<Timestamp> {
        self.changed_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The URL of the server in force, for hints (without credentials).
    pub fn shown_url(&self) -> Option<String> {
        let effective = self.effective().ok()?;
        (effective.generator == "openai").then(|| probe::shown_url(&effective.llm.base_url))
    }
}

/// The generator, prompts and prices `effective` describes.
fn build(config: &ServeConfig, effective: &Effective) -> Result<Current> {
    let generator: Arc<dyn Generator> = match effective.generator_config(config) {
        GeneratorConfig::OpenAi(_) => {
            let open = |model: &str, field: &str| {
                OpenAi::new(effective.request_config(model))
                    .map_err(|e| Error::validation(field, e))
            };
            let own = |model: &str, field: &str| -> Result<Option<OpenAi>> {
                let model = model.trim();
                if model.is_empty() || model == effective.llm.model {
                    Ok(None)
                } else {
                    open(model, field).map(Some)
                }
            };
            Arc::new(ByTask {
                chapters: open(&effective.llm.model, "llm_url")?,
                outline: own(&effective.outline_model, "outline_model")?,
                summary: own(&effective.summary_model, "summary_model")?,
            })
        }
        other => other.build()?,
    };
    Ok(Current {
        generator,
        prompts: Arc::new(config.prompts.with_context_tokens(effective.context_tokens)),
        prices: effective.prices,
    })
}
