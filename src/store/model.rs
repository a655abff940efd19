//! Typed rows: what the store hands out, and how a row of SQL becomes one.

use rusqlite::Row;
use serde::Serialize;
use serde_json::{Value, json};

use super::generations::{Prices, Usage};
use crate::run::{EventKind, FailureCode, RunId, RunStatus, Step, StoryId, Timestamp, WorkerId};

/// A story's language when the writer names none (the schema's default too).
pub const DEFAULT_LANGUAGE: &str = "English";
/// Words asked of each chapter when the writer says nothing (the schema's
/// default too).
pub const DEFAULT_TARGET_WORDS: u32 = 1_500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Story {
    pub id: StoryId,
    pub title: String,
    pub premise: String,
    pub outline: String,
    /// The writer's explicit count; `None` means derived (see `progress`).
    pub chapter_count: Option<u32>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The name the book carries; empty when not given.
    pub author: String,
    /// The language the book is written in, by name (`English`, `French`).
    pub language: String,
    /// Point of view (`first person`); empty: the model's choice.
    pub pov: String,
    /// Tense (`past`); empty: the model's choice.
    pub tense: String,
    /// The writer's free notes on tone and voice; empty when none.
    pub style: String,
    /// Words asked of each chapter.
    pub target_words: u32,
}

pub(super) const STORY_COLUMNS: &str = "id, title, premise, outline, chapter_count, created_at, \
     updated_at, author, language, pov, tense, style, target_words";
/// How many columns [`STORY_COLUMNS`] names: where a query's own columns start.
pub(super) const STORY_COLUMN_COUNT: usize = 13;

impl Story {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Story> {
        Ok(Story {
            id: row.get(0)?,
            title: row.get(1)?,
            premise: row.get(2)?,
            outline: row.get(3)?,
            chapter_count: row.get(4)?,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
            author: row.get(7)?,
            language: row.get(8)?,
            pov: row.get(9)?,
            tense: row.get(10)?,
            style: row.get(11)?,
            target_words: row.get(12)?,
        })
    }
}

/// A run; it serialises as the contract's run object ([`Run::to_json`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub id: RunId,
    pub story_id: StoryId,
    pub status: RunStatus,
    pub step: Option<Step>,
    pub chapters_done: u32,
    pub chapters_total: u32,
    pub attempt: u32,
    pub error_code: Option<FailureCode>,
    pub error_message: Option<String>,
    pub lease_owner: Option<WorkerId>,
    pub lease_expires_at: Option<Timestamp>,
    pub heartbeat_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// What the run writes: the missing chapters up to here (`None`: all).
    pub until_chapter: Option<u32>,
    /// A run that rewrites this one chapter and nothing else.
    pub regenerate_chapter: Option<u32>,
    /// What its generator calls cost so far.
    pub usage: Usage,
}

pub(super) const RUN_COLUMNS: &str = "id, story_id, status, step, chapters_done, chapters_total, \
     attempt, error_code, error_message, lease_owner, lease_expires_at, heartbeat_at, \
     created_at, started_at, updated_at, finished_at, until_chapter, regenerate_chapter, \
     usage_calls, usage_prompt_tokens, usage_completion_tokens";

impl Run {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Run> {
        Ok(Run {
            id: row.get(0)?,
            story_id: row.get(1)?,
            status: row.get(2)?,
            step: row.get(3)?,
            chapters_done: row.get(4)?,
            chapters_total: row.get(5)?,
            attempt: row.get(6)?,
            error_code: row.get(7)?,
            error_message: row.get(8)?,
            lease_owner: row.get(9)?,
            lease_expires_at: row.get(10)?,
            heartbeat_at: row.get(11)?,
            created_at: row.get(12)?,
            started_at: row.get(13)?,
            updated_at: row.get(14)?,
            finished_at: row.get(15)?,
            until_chapter: row.get(16)?,
            regenerate_chapter: row.get(17)?,
            usage: Usage::from_columns(row, 18)?,
        })
    }

    /// Percent complete, 0-100.
    pub fn progress(&self) -> u32 {
        if self.chapters_total == 0 {
            return if self.status == RunStatus::Completed {
                100
            } else {
                0
            };
        }
        (self.chapters_done.min(self.chapters_total) * 100) / self.chapters_total
    }

    /// The contract's run object; `prices` give its usage a cost.
    pub fn to_json(&self, prices: &Prices) -> Value {
        let error = match (&self.error_code, &self.error_message) {
            (Some(code), message) => {
                json!({ "code": code, "message": message.clone().unwrap_or_default() })
            }
            (None, _) => Value::Null,
        };
        json!({
            "id": self.id,
            "story_id": self.story_id,
            "status": self.status,
            "step": self.step,
            "progress": self.progress(),
            "chapters_done": self.chapters_done,
            "chapters_total": self.chapters_total,
            "attempt": self.attempt,
            "error": error,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
            "until_chapter": self.until_chapter,
            "regenerate_chapter": self.regenerate_chapter,
            "usage": self.usage.to_json(prices),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chapter {
    pub number: u32,
    pub title: String,
    pub content: String,
    pub word_count: u32,
    /// The generator's short account of the chapter; empty when unknown.
    pub summary: String,
    pub run_id: Option<RunId>,
    pub created_at: Timestamp,
    /// Set when the chapter was edited or rewritten.
    pub updated_at: Option<Timestamp>,
    /// No run and no regenerate request changes a locked chapter.
    pub locked: bool,
}

pub(super) const CHAPTER_COLUMNS: &str =
    "number, title, content, word_count, summary, run_id, created_at, updated_at, locked";

impl Chapter {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Chapter> {
        Ok(Chapter {
            number: row.get(0)?,
            title: row.get(1)?,
            content: row.get(2)?,
            word_count: row.get(3)?,
            summary: row.get(4)?,
            run_id: row.get(5)?,
            created_at: row.get(6)?,
            updated_at: row.get(7)?,
            locked: row.get(8)?,
        })
    }
}

/// A chapter about to be saved.
#[derive(Debug, Clone)]
pub struct NewChapter {
    pub number: u32,
    pub title: String,
    pub content: String,
    pub summary: String,
}

pub fn word_count(text: &str) -> u32 {
    text.split_whitespace().count().min(u32::MAX as usize) as u32
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunEvent {
    pub id: i64,
    pub at: Timestamp,
    pub kind: EventKind,
    pub message: String,
}

impl RunEvent {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<RunEvent> {
        Ok(RunEvent {
            id: row.get(0)?,
            at: row.get(1)?,
            kind: row.get(2)?,
            message: row.get(3)?,
        })
    }
}

impl Serialize for Run {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Unpriced: only the server knows the prices.
        self.to_json(&Prices::default()).serialize(s)
    }
}
