//! What every generator call cost: the `generations` rows, the running
//! totals kept on the run and story rows, and how usage is shown (tokens and,
//! with prices, money).
//!
//! A call's row and the totals of its run and story are written in one
//! transaction, so the totals always equal the sums of the rows. Tokens are
//! counted as the server reported them, else as estimated (3.5 characters
//! per token, as prompts are budgeted); each row says which.

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::{Value, json};

use super::Store;
use crate::error::Result;
use crate::run::{RunId, StoryId, Timestamp};

/// Which piece a call asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GenerationKind {
    Outline,
    Chapter,
    Continuation,
    Summary,
}

impl GenerationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GenerationKind::Outline => "outline",
            GenerationKind::Chapter => "chapter",
            GenerationKind::Continuation => "continuation",
            GenerationKind::Summary => "summary",
        }
    }
}

/// One generator call, about to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGeneration {
    pub run_id: RunId,
    pub story_id: StoryId,
    /// `None` for the outline.
    pub chapter: Option<u32>,
    pub kind: GenerationKind,
    pub model: String,
    pub prompt_tokens_estimated: u32,
    /// What the server said it read; `None` when it reported no usage.
    pub prompt_tokens_reported: Option<u32>,
    /// The server's count, else the estimate.
    pub completion_tokens: u32,
    pub completion_tokens_estimated: bool,
    pub latency_ms: u64,
    /// When a streamed call sent its first text; `None` when it streamed
    /// nothing (a plain request, a failure before any text).
    pub first_token_ms: Option<u64>,
    pub finish_reason: Option<String>,
    /// `ok`, or the error kind (`transient`, `bad_answer`, `cancelled`, a
    /// failure code).
    pub outcome: String,
}

impl NewGeneration {
    /// The prompt tokens the totals count: the server's, else the estimate.
    pub fn prompt_tokens(&self) -> u32 {
        self.prompt_tokens_reported
            .unwrap_or(self.prompt_tokens_estimated)
    }
}

/// A recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub id: i64,
    pub call: NewGeneration,
    pub created_at: Timestamp,
}

const GENERATION_COLUMNS: &str = "id, run_id, story_id, chapter, kind, model, \
     prompt_tokens_estimated, prompt_tokens_reported, completion_tokens, \
     completion_tokens_estimated, latency_ms, finish_reason, outcome, created_at, \
     first_token_ms";

impl Generation {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Generation> {
        let kind: String = row.get(4)?;
        let kind = match kind.as_str() {
            "outline" => GenerationKind::Outline,
            "chapter" => GenerationKind::Chapter,
            "continuation" => GenerationKind::Continuation,
            _ => GenerationKind::Summary,
        };
        Ok(Generation {
            id: row.get(0)?,
            call: NewGeneration {
                run_id: row.get(1)?,
                story_id: row.get(2)?,
                chapter: row.get(3)?,
                kind,
                model: row.get(5)?,
                prompt_tokens_estimated: row.get(6)?,
                prompt_tokens_reported: row.get(7)?,
                completion_tokens: row.get(8)?,
                completion_tokens_estimated: row.get(9)?,
                latency_ms: row.get::<_, i64>(10)?.max(0) as u64,
                first_token_ms: row.get::<_, Option<i64>>(14)?.map(|ms| ms.max(0) as u64),
                finish_reason: row.get(11)?,
                outcome: row.get(12)?,
            },
            created_at: row.get(13)?,
        })
    }
}

/// Calls and tokens, summed over a run, a story or a chapter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    /// Reads the three columns starting at `first`.
    pub(super) fn from_columns(row: &Row<'_>, first: usize) -> rusqlite::Result<Usage> {
        // Totals only grow from zero; SQLite stores them as i64.
        let count = |at: usize| row.get::<_, i64>(at).map(|n| n.max(0) as u64);
        Ok(Usage {
            calls: count(first)?,
            prompt_tokens: count(first + 1)?,
            completion_tokens: count(first + 2)?,
        })
    }

    /// The contract's `usage` object: `{calls, prompt_tokens,
    /// completion_tokens, cost}`, `cost` null without prices.
    pub fn to_json(&self, prices: &Prices) -> Value {
        json!({
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": prices.cost(self),
        })
    }
}

/// Prices per million tokens (`--price-input-per-mtok`,
/// `--price-output-per-mtok`), in whatever currency the writer pays in.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Prices {
    pub input_per_mtok: Option<f64>,
    pub output_per_mtok: Option<f64>,
}

impl Prices {
    /// `None` when neither price is set; a price not set counts as zero
    /// (a flat output price, a free prompt cache).
    pub fn cost(&self, usage: &Usage) -> Option<f64> {
        if self.input_per_mtok.is_none() && self.output_per_mtok.is_none() {
            return None;
        }
        let part = |tokens: u64, price: Option<f64>| tokens as f64 * price.unwrap_or(0.0) / 1e6;
        Some(
            part(usage.prompt_tokens, self.input_per_mtok)
                + part(usage.completion_tokens, self.output_per_mtok),
        )
    }
}

impl Store {
    /// Records one call and adds it to its run's and its story's totals, in
    /// one transaction. A run row that is gone (deleted meanwhile) just gets
    /// no totals; its call is still recorded for the story.
    pub fn record_generation(&self, call: &NewGeneration) -> Result<()> {
        let now = self.now();
        let prompt = i64::from(call.prompt_tokens());
        let completion = i64::from(call.completion_tokens);
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO generations (run_id, story_id, chapter, kind, model,
                     prompt_tokens_estimated, prompt_tokens_reported, completion_tokens,
                     completion_tokens_estimated, latency_ms, finish_reason, outcome, created_at,
                     first_token_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                call.run_id,
                call.story_id,
                call.chapter,
                call.kind.as_str(),
                call.model,
                call.prompt_tokens_estimated,
                call.prompt_tokens_reported,
                call.completion_tokens,
                call.completion_tokens_estimated,
                call.latency_ms.min(i64::MAX as u64) as i64,
                call.finish_reason,
                call.outcome,
                now,
                call.first_token_ms.map(|ms| ms.min(i64::MAX as u64) as i64),
            ])?;
            tx.prepare_cached(
                "UPDATE workflow_runs SET usage_calls = usage_calls + 1,
                     usage_prompt_tokens = usage_prompt_tokens + ?2,
                     usage_completion_tokens = usage_completion_tokens + ?3
                 WHERE id = ?1",
            )?
            .execute(params![call.run_id, prompt, completion])?;
            tx.prepare_cached(
                "UPDATE stories SET usage_calls = usage_calls + 1,
                     usage_prompt_tokens = usage_prompt_tokens + ?2,
                     usage_completion_tokens = usage_completion_tokens + ?3
                 WHERE id = ?1",
            )?
            .execute(params![call.story_id, prompt, completion])?;
            Ok(())
        })
    }

    /// The story's totals, over every run it had; `None` when there is no
    /// such story.
    pub fn story_usage(&self, story: &StoryId) -> Result<Option<Usage>> {
        let conn = self.conn()?;
        Ok(conn
            .prepare_cached(
                "SELECT usage_calls, usage_prompt_tokens, usage_completion_tokens
                 FROM stories WHERE id = ?1",
            )?
            .query_row([story], |row| Usage::from_columns(row, 0))
            .optional()?)
    }

    /// The calls made for one chapter (its text, continuations and summary,
    /// over every run that wrote it), summed from the rows.
    pub fn chapter_usage(&self, story: &StoryId, chapter: u32) -> Result<Usage> {
        let conn = self.conn()?;
        Ok(conn
            .prepare_cached(
                "SELECT count(*),
                        coalesce(sum(coalesce(prompt_tokens_reported, prompt_tokens_estimated)), 0),
                        coalesce(sum(completion_tokens), 0)
                 FROM generations WHERE story_id = ?1 AND chapter = ?2",
            )?
            .query_row(params![story, chapter], |row| Usage::from_columns(row, 0))?)
    }

    /// A run's calls, oldest first.
    pub fn generations(&self, run: &RunId) -> Result<Vec<Generation>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {GENERATION_COLUMNS} FROM generations WHERE run_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([run], Generation::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_store;
    use crate::store::{NewStory, RunScope, write_progress};

    fn call(run: &RunId, story: &StoryId, chapter: Option<u32>) -> NewGeneration {
        NewGeneration {
            run_id: run.clone(),
            story_id: story.clone(),
            chapter,
            kind: GenerationKind::Chapter,
            model: "m".into(),
            prompt_tokens_estimated: 100,
            prompt_tokens_reported: None,
            completion_tokens: 40,
            completion_tokens_estimated: true,
            latency_ms: 12,
            first_token_ms: Some(3),
            finish_reason: Some("stop".into()),
            outcome: "ok".into(),
        }
    }

    fn story_and_run(store: &Store) -> (StoryId, RunId) {
        let story = store
            .create_story(&NewStory {
                title: "Tides".into(),
                premise: String::new(),
                outline: String::new(),
                chapter_count: Some(3),
                ..NewStory::default()
            })
            .unwrap();
        let run = store.create_run(&story.id, 3, RunScope::Book).unwrap();
        (story.id, run.id)
    }

    #[test]
    fn totals_equal_the_sums_of_the_calls_counting_the_servers_figures_first() {
        let (store, _dir) = temp_store();
        let (story, run) = story_and_run(&store);
        store
            .record_generation(&call(&run, &story, Some(1)))
            .unwrap();
        let reported = NewGeneration {
            prompt_tokens_reported: Some(30),
            completion_tokens: 7,
            completion_tokens_estimated: false,
            ..call(&run, &story, Some(2))
        };
        store.record_generation(&reported).unwrap();
        let failed = NewGeneration {
            completion_tokens: 0,
            outcome: "transient".into(),
            finish_reason: None,
            ..call(&run, &story, Some(2))
        };
        store.record_generation(&failed).unwrap();

        let expected = Usage {
            calls: 3,
            prompt_tokens: 100 + 30 + 100,
            completion_tokens: 40 + 7,
        };
        assert_eq!(store.run(&run).unwrap().usage, expected);
        assert_eq!(store.story_usage(&story).unwrap(), Some(expected));
        assert_eq!(
            store.chapter_usage(&story, 2).unwrap(),
            Usage {
                calls: 2,
                prompt_tokens: 130,
                completion_tokens: 7
            }
        );
        assert_eq!(store.chapter_usage(&story, 3).unwrap(), Usage::default());
        let rows = store.generations(&run).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].call, reported);
        assert_eq!(rows[2].call.outcome, "transient");
    }

    #[test]
    fn a_story_keeps_the_totals_of_all_its_runs_and_progress_leaves_them_alone() {
        let (store, _dir) = temp_store();
        let (story, first) = story_and_run(&store);
        store
            .record_generation(&call(&first, &story, None))
            .unwrap();
        store.cancel_run(&first).unwrap();
        let second = store.create_run(&story, 3, RunScope::Book).unwrap().id;
        store
            .record_generation(&call(&second, &story, Some(1)))
            .unwrap();
        let conn = store.conn().unwrap();
        write_progress(&conn, &second, 1, 3, None, &store.now(), false).unwrap();

        let one = Usage {
            calls: 1,
            prompt_tokens: 100,
            completion_tokens: 40,
        };
        assert_eq!(store.run(&first).unwrap().usage, one);
        assert_eq!(store.run(&second).unwrap().usage, one);
        assert_eq!(
            store.story_usage(&story).unwrap(),
            Some(Usage {
                calls: 2,
                prompt_tokens: 200,
                completion_tokens: 80
            })
        );
        assert_eq!(store.story_usage(&StoryId::random()).unwrap(), None);
    }

    #[test]
    fn cost_is_tokens_times_prices_and_null_without_them() {
        let usage = Usage {
            calls: 2,
            prompt_tokens: 2_000_000,
            completion_tokens: 500_000,
        };
        assert_eq!(Prices::default().cost(&usage), None);
        assert_eq!(usage.to_json(&Prices::default())["cost"], Value::Null);
        let prices = Prices {
            input_per_mtok: Some(0.5),
            output_per_mtok: Some(2.0),
        };
        assert_eq!(prices.cost(&usage), Some(2.0));
        let output_only = Prices {
            input_per_mtok: None,
            output_per_mtok: Some(2.0),
        };
        assert_eq!(output_only.cost(&usage), Some(1.0));
        let shown = usage.to_json(&prices);
        assert_eq!(shown["calls"], 2);
        assert_eq!(shown["prompt_tokens"], 2_000_000);
        assert_eq!(shown["cost"], 2.0);
    }
}
