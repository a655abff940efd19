//! The writer's saved settings (`app_settings`, one JSON value per key):
//! read whole as [`StoredSettings`], written as a set of keys in one
//! transaction. A key absent from the table was never saved (or was
//! cleared): its default applies. What the settings mean, their defaults and
//! their validation belong to [`crate::settings`]; here they are only kept.
//!
//! `llm_api_key` is kept here in plain form, because storyflow must send it;
//! [`StoredSettings`]'s `Debug` never shows it, and
//! [`scrub_secrets`] removes it from a backup copy before it is published.

use rusqlite::{Connection, params};
use serde::Deserialize;
use serde_json::Value;

use super::Store;
use crate::error::Result;

/// The keys a writer may save, in the order the API lists them.
pub const SETTING_KEYS: &[&str] = &[
    "generator",
    "llm_url",
    "llm_model",
    "outline_model",
    "summary_model",
    "temperature",
    "context_tokens",
    "price_input_per_mtok",
    "price_output_per_mtok",
    "llm_extra_body",
    "llm_api_key",
];

/// The one key that is a secret: never read back out of the process.
pub const API_KEY: &str = "llm_api_key";

/// Calls `$apply!` with every field of [`StoredSettings`]: the one list of
/// them that merging and clearing share.
macro_rules! every_setting {
    ($apply:ident) => {
        $apply!(
            generator,
            llm_url,
            llm_model,
            outline_model,
            summary_model,
            temperature,
            context_tokens,
            price_input_per_mtok,
            price_output_per_mtok,
            llm_extra_body,
            llm_api_key
        )
    };
}

/// What the table holds, typed; `None` is "never saved". A stored value of
/// the wrong type (written by a hand, or a later release) reads as `None`.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct StoredSettings {
    pub generator: Option<String>,
    pub llm_url: Option<String>,
    pub llm_model: Option<String>,
    pub outline_model: Option<String>,
    pub summary_model: Option<String>,
    pub temperature: Option<f64>,
    pub context_tokens: Option<u32>,
    pub price_input_per_mtok: Option<f64>,
    pub price_output_per_mtok: Option<f64>,
    /// A JSON object merged into every request to the model server.
    pub llm_extra_body: Option<serde_json::Map<String, Value>>,
    pub llm_api_key: Option<String>,
}

impl std::fmt::Debug for StoredSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSettings")
            .field("generator", &self.generator)
            .field("llm_url", &self.llm_url)
            .field("llm_model", &self.llm_model)
            .field("outline_model", &self.outline_model)
            .field("summary_model", &self.summary_model)
            .field("temperature", &self.temperature)
            .field("context_tokens", &self.context_tokens)
            .field("price_input_per_mtok", &self.price_input_per_mtok)
            .field("price_output_per_mtok", &self.price_output_per_mtok)
            .field("llm_extra_body", &self.llm_extra_body)
            .field("llm_api_key_set", &self.llm_api_key.is_some())
            .finish()
    }
}

impl StoredSettings {
    /// Reads rows one key at a time, so one value of the wrong type loses
    /// that setting alone.
    fn from_rows(rows: Vec<(String, Value)>) -> StoredSettings {
        let mut settings = StoredSettings::default();
        for (key, value) in rows {
            let one = serde_json::json!({ key: value });
            if let Ok(read) = serde_json::from_value::<StoredSettings>(one) {
                settings.merge(read);
            }
        }
        settings
    }

    fn merge(&mut self, other: StoredSettings) {
        macro_rules! take {
            ($($field:ident),*) => { $( if other.$field.is_some() { self.$field = other.$field; } )* };
        }
        every_setting!(take);
    }
}

impl StoredSettings {
    /// The settings after one saved change (`None` clears the key); a value
    /// of the wrong type clears it too, as reading it back would.
    pub fn with_change(mut self, key: &str, value: Option<&Value>) -> StoredSettings {
        macro_rules! clear {
            ($($field:ident),*) => { match key { $( stringify!($field) => self.$field = None, )* _ => {} } };
        }
        every_setting!(clear);
        if let Some(value) = value {
            self.merge(StoredSettings::from_rows(vec![(
                key.to_string(),
                value.clone(),
            )]));
        }
        self
    }
}

impl Store {
    /// Runs that failed on the generator's account (a `GENERATOR_*` code
    /// other than a content filter) and finished at or after `since`, among
    /// the latest failed runs: the newest such failure's message, if any.
    pub fn recent_generator_failure(&self, since: &str) -> Result<Option<String>> {
        let conn = self.conn()?;
        let mut statement = conn.prepare_cached(
            "SELECT error_code, COALESCE(error_message, '') FROM
               (SELECT error_code, error_message, finished_at FROM workflow_runs
                 WHERE status = 'failed' ORDER BY created_at DESC LIMIT 5)
             WHERE substr(error_code, 1, 10) = 'GENERATOR_'
               AND error_code <> 'GENERATOR_FILTERED' AND finished_at >= ?1
             ORDER BY finished_at DESC LIMIT 1",
        )?;
        let mut rows = statement.query([since])?;
        Ok(match rows.next()? {
            Some(row) => Some(format!(
                "{}: {}",
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?
            )),
            None => None,
        })
    }

    pub fn stored_settings(&self) -> Result<StoredSettings> {
        let conn = self.conn()?;
        let mut statement = conn.prepare_cached("SELECT key, value FROM app_settings")?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let values = rows
            .into_iter()
            .filter_map(|(key, text)| Some((key, serde_json::from_str(&text).ok()?)))
            .collect();
        Ok(StoredSettings::from_rows(values))
    }

    /// Saves the given keys in one transaction: `Some` sets the value, `None`
    /// removes the key (its default applies again). The caller validated
    /// the keys and values.
    pub fn save_settings(&self, changes: &[(&str, Option<Value>)]) -> Result<()> {
        let now = self.now();
        self.write(|tx| {
            for (key, value) in changes {
                match value {
                    Some(value) => {
                        tx.prepare_cached(
                            "INSERT INTO app_settings (key, value, updated_at) VALUES (?1, ?2, ?3)
                             ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                                                             updated_at = excluded.updated_at",
                        )?
                        .execute(params![key, value.to_string(), now])?;
                    }
                    None => {
                        tx.prepare_cached("DELETE FROM app_settings WHERE key = ?1")?
                            .execute([key])?;
                    }
                }
            }
            Ok(())
        })
    }
}

/// Removes every secret from a copy of the database at `path` (a backup,
/// before anyone is told of it). `secure_delete` overwrites the freed bytes
/// and the journal stays in memory, so the key is left in no page and no
/// file. A copy from before settings existed has nothing to scrub.
pub(super) fn scrub_copy(path: &std::path::Path) -> Result<()> {
    let conn = Connection::open(path)?;
    conn.execute_batch("PRAGMA secure_delete = ON; PRAGMA journal_mode = MEMORY;")?;
    let has_table: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'app_settings')",
        [],
        |row| row.get(0),
    )?;
    if has_table {
        conn.execute("DELETE FROM app_settings WHERE key = ?1", [API_KEY])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("s.db"), 2).expect("open");
        (store, dir)
    }

    #[test]
    fn saved_keys_read_back_and_cleared_ones_go() {
        let (store, _dir) = store();
        assert_eq!(store.stored_settings().unwrap(), StoredSettings::default());
        store
            .save_settings(&[
                ("llm_model", Some(json!("qwen3"))),
                ("temperature", Some(json!(0.7))),
                ("llm_api_key", Some(json!("sk-secret"))),
            ])
            .unwrap();
        let read = store.stored_settings().unwrap();
        assert_eq!(read.llm_model.as_deref(), Some("qwen3"));
        assert_eq!(read.temperature, Some(0.7));
        assert_eq!(read.llm_api_key.as_deref(), Some("sk-secret"));
        assert!(!format!("{read:?}").contains("sk-secret"));
        store.save_settings(&[("llm_api_key", None)]).unwrap();
        assert_eq!(store.stored_settings().unwrap().llm_api_key, None);
    }

    #[test]
    fn a_value_of_the_wrong_type_loses_only_its_own_setting() {
        let (store, _dir) = store();
        store
            .save_settings(&[
                ("context_tokens", Some(json!("many"))),
                ("llm_url", Some(json!("http://h:1/v1"))),
            ])
            .unwrap();
        let read = store.stored_settings().unwrap();
        assert_eq!(read.context_tokens, None);
        assert_eq!(read.llm_url.as_deref(), Some("http://h:1/v1"));
    }
}
