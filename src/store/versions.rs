//! Chapter history: every save of a chapter is a version, locks, and rolling
//! a story back to an earlier chapter.
//!
//! Invariants kept here:
//! - a chapter row is written only together with a new version of the same
//!   text, in one transaction ([`add_version`] is called by every chapter
//!   write), so the row always equals its newest version and a crash leaves
//!   neither a version without its save nor a save without its version;
//! - versions are never changed or deleted except with their story (purge);
//!   a roll-back removes chapter rows, never versions, so every text the
//!   writer saw can be restored.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::model::{CHAPTER_COLUMNS, Chapter, word_count};
use super::stories::{chapter_not_written, story_exists};
use super::version_quality::measure_version;
use super::{RunStatus, Store, StoryId};
use crate::error::{Error, Result};
use crate::quality::StockPhrases;
use crate::run::{RunId, Timestamp};

/// How a version of a chapter came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChapterSource {
    /// Written by a run (continuations included: a chapter is saved whole).
    Generated,
    /// Changed by the writer.
    Edited,
    /// Written again by a regenerate request.
    Regenerated,
    /// An earlier version brought back.
    Restored,
    /// Taken from an imported manuscript.
    Imported,
}

impl ChapterSource {
    pub const ALL: [ChapterSource; 5] = [
        ChapterSource::Generated,
        ChapterSource::Edited,
        ChapterSource::Regenerated,
        ChapterSource::Restored,
        ChapterSource::Imported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChapterSource::Generated => "generated",
            ChapterSource::Edited => "edited",
            ChapterSource::Regenerated => "regenerated",
            ChapterSource::Restored => "restored",
            ChapterSource::Imported => "imported",
        }
    }
}

impl ToSql for ChapterSource {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(
            self.as_str().as_bytes(),
        )))
    }
}

impl FromSql for ChapterSource {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        ChapterSource::ALL
            .into_iter()
            .find(|source| source.as_str() == text)
            .ok_or_else(|| FromSqlError::Other(format!("unknown chapter source `{text}`").into()))
    }
}

/// One entry of a chapter's history, without its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    pub version: u32,
    pub source: ChapterSource,
    pub run_id: Option<RunId>,
    pub word_count: u32,
    pub created_at: Timestamp,
}

/// One version with its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChapterVersion {
    #[serde(flatten)]
    pub info: VersionInfo,
    pub title: String,
    pub content: String,
}

const VERSION_COLUMNS: &str = "version, source, run_id, word_count, created_at, title, content";

impl ChapterVersion {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ChapterVersion> {
        Ok(ChapterVersion {
            info: VersionInfo {
                version: row.get(0)?,
                source: row.get(1)?,
                run_id: row.get(2)?,
                word_count: row.get(3)?,
                created_at: row.get(4)?,
            },
            title: row.get(5)?,
            content: row.get(6)?,
        })
    }
}

/// What a chapter save adds to the history.
pub(super) struct VersionRecord<'a> {
    pub story: &'a StoryId,
    pub number: u32,
    pub source: ChapterSource,
    pub title: &'a str,
    pub content: &'a str,
    pub run_id: Option<&'a RunId>,
    pub at: &'a Timestamp,
}

/// Adds the next version of a chapter, with its quality signals measured
/// against `stock_phrases` (see [`super::version_quality`]); called inside
/// the transaction that writes the chapter row. Returns the new version
/// number.
pub(super) fn add_version(
    conn: &Connection,
    stock_phrases: &StockPhrases,
    record: &VersionRecord<'_>,
) -> Result<u32> {
    let quality = measure_version(conn, record.story, stock_phrases, record.content)?;
    let version: u32 = conn
        .prepare_cached(
            "INSERT INTO chapter_versions
                 (story_id, number, version, source, title, content, word_count, run_id, created_at,
                  quality)
             SELECT ?1, ?2, coalesce(max(version), 0) + 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9
             FROM chapter_versions WHERE story_id = ?1 AND number = ?2
             RETURNING version",
        )?
        .query_row(
            params![
                record.story,
                record.number,
                record.source,
                record.title,
                record.content,
                word_count(record.content),
                record.run_id,
                record.at,
                quality
            ],
            |row| row.get(0),
        )?;
    Ok(version)
}

fn read_chapter(conn: &Connection, story: &StoryId, number: u32) -> Result<Option<Chapter>> {
    let sql = format!("SELECT {CHAPTER_COLUMNS} FROM chapters WHERE story_id = ?1 AND number = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![story, number], Chapter::from_row)
        .optional()?)
}

fn read_version(
    conn: &Connection,
    story: &StoryId,
    number: u32,
    version: u32,
) -> Result<ChapterVersion> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM chapter_versions WHERE story_id = ?1 AND number = ?2 AND version = ?3"
    );
    conn.prepare_cached(&sql)?
        .query_row(params![story, number, version], ChapterVersion::from_row)
        .optional()?
        .ok_or_else(|| Error::VersionNotFound {
            story: story.clone(),
            chapter: number,
            version,
        })
}

fn has_active_run(conn: &Connection, story: &StoryId) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM workflow_runs WHERE story_id = ?1 AND (status = ?2 OR status = ?3)",
        )?
        .query_row(
            params![story, RunStatus::Pending, RunStatus::Running],
            |row| row.get(0),
        )
        .optional()?)
}

/// What a roll-back set aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollBack {
    pub to_chapter: u32,
    /// The chapters removed from the book; their versions stay.
    pub set_aside: Vec<u32>,
}

impl Store {
    /// A chapter's history, newest first. Also for a chapter set aside by a
    /// roll-back (versions but no current row).
    pub fn chapter_versions(&self, story: &StoryId, number: u32) -> Result<Vec<VersionInfo>> {
        let conn = self.conn()?;
        if !story_exists(&conn, story)? {
            return Err(Error::StoryNotFound(story.clone()));
        }
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM chapter_versions WHERE story_id = ?1 AND number = ?2
             ORDER BY version DESC"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let versions: Vec<VersionInfo> = stmt
            .query_map(params![story, number], ChapterVersion::from_row)?
            .map(|row| row.map(|v| v.info))
            .collect::<rusqlite::Result<_>>()?;
        if versions.is_empty() {
            return Err(chapter_not_written(story, number));
        }
        Ok(versions)
    }

    /// One version with its title and text.
    pub fn chapter_version(
        &self,
        story: &StoryId,
        number: u32,
        version: u32,
    ) -> Result<ChapterVersion> {
        let conn = self.conn()?;
        if !story_exists(&conn, story)? {
            return Err(Error::StoryNotFound(story.clone()));
        }
        read_version(&conn, story, number, version)
    }

    /// Makes an earlier version the chapter's text again, as a new version
    /// `restored`. A chapter set aside by a roll-back comes back into the
    /// book; that waits while a run is active on the story, which might be
    /// writing the same chapter.
    pub fn restore_version(&self, story: &StoryId, number: u32, version: u32) -> Result<Chapter> {
        self.write(|tx| {
            if !story_exists(tx, story)? {
                return Err(Error::StoryNotFound(story.clone()));
            }
            let old = read_version(tx, story, number, version)?;
            let now = self.now();
            let current = read_chapter(tx, story, number)?;
            if current.is_none()
                && let Some(run) = has_active_run(tx, story)?
            {
                return Err(Error::Conflict {
                    message: format!(
                        "chapter {number} of story {story} is not in the book while run {run} is active; restore it when the run has finished"
                    ),
                    details: serde_json::json!({ "run_id": run }),
                    hint: "wait for the run to finish or cancel it, then restore".into(),
                });
            }
            // The summary described other text; the engine writes a new one.
            tx.prepare_cached(
                "INSERT INTO chapters (story_id, number, title, content, word_count, summary, run_id, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, '', NULL, ?6, ?6)
                 ON CONFLICT (story_id, number) DO UPDATE SET
                     title = excluded.title, content = excluded.content,
                     word_count = excluded.word_count, summary = '', updated_at = excluded.updated_at",
            )?
            .execute(params![story, number, old.title, old.content, old.info.word_count, now])?;
            add_version(
                tx,
                &self.stock_phrases,
                &VersionRecord {
                    story,
                    number,
                    source: ChapterSource::Restored,
                    title: &old.title,
                    content: &old.content,
                    run_id: None,
                    at: &now,
                },
            )?;
            read_chapter(tx, story, number)?.ok_or_else(|| chapter_not_written(story, number))
        })
    }

    /// Locks or unlocks a chapter: no run and no regenerate request changes
    /// a locked chapter; the writer still can.
    pub fn set_chapter_locked(
        &self,
        story: &StoryId,
        number: u32,
        locked: bool,
    ) -> Result<Chapter> {
        self.write(|tx| {
            if !story_exists(tx, story)? {
                return Err(Error::StoryNotFound(story.clone()));
            }
            tx.prepare_cached(
                "UPDATE chapters SET locked = ?3 WHERE story_id = ?1 AND number = ?2",
            )?
            .execute(params![story, number, locked])?;
            read_chapter(tx, story, number)?.ok_or_else(|| chapter_not_written(story, number))
        })
    }

    /// Rolls a story back to chapter `to_chapter`: the later chapters leave
    /// the book (their versions stay, to be restored one by one), so the next
    /// run writes from `to_chapter + 1`. Refused while a run is active or when
    /// a later chapter is locked.
    pub fn roll_back_story(&self, story: &StoryId, to_chapter: u32) -> Result<RollBack> {
        self.write(|tx| {
            if !story_exists(tx, story)? {
                return Err(Error::StoryNotFound(story.clone()));
            }
            if let Some(run) = has_active_run(tx, story)? {
                return Err(Error::Conflict {
                    message: format!(
                        "story {story} has an active run {run}; cancel it or wait for it before rolling back"
                    ),
                    details: serde_json::json!({ "run_id": run }),
                    hint: "cancel the run first".into(),
                });
            }
            let later: Vec<(u32, bool)> = tx
                .prepare_cached(
                    "SELECT number, locked FROM chapters WHERE story_id = ?1 AND number > ?2 ORDER BY number",
                )?
                .query_map(params![story, to_chapter], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let locked: Vec<u32> = later.iter().filter(|(_, l)| *l).map(|(n, _)| *n).collect();
            if !locked.is_empty() {
                return Err(Error::Conflict {
                    message: format!(
                        "chapters {locked:?} of story {story} are locked; unlock them before rolling back past them"
                    ),
                    details: serde_json::json!({ "locked": locked }),
                    hint: "unlock them with PATCH .../chapters/{n} {\"locked\": false}".into(),
                });
            }
            tx.prepare_cached("DELETE FROM chapters WHERE story_id = ?1 AND number > ?2")?
                .execute(params![story, to_chapter])?;
            tx.prepare_cached("UPDATE stories SET updated_at = ?2 WHERE id = ?1")?
                .execute(params![story, self.now()])?;
            Ok(RollBack {
                to_chapter,
                set_aside: later.into_iter().map(|(n, _)| n).collect(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::WorkerId;
    use crate::store::testing::temp_store;
    use crate::store::{ChapterEdit, ChapterSave, NewChapter, NewStory, RunScope};

    fn owner() -> WorkerId {
        WorkerId::named("worker-test")
    }

    fn far_future() -> Timestamp {
        Timestamp::at(
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(4_000_000_000),
        )
    }

    fn story(store: &Store) -> StoryId {
        store
            .create_story(&NewStory {
                title: "The Salt Road".into(),
                chapter_count: Some(3),
                ..Default::default()
            })
            .unwrap()
            .id
    }

    /// Saves chapter `number` through a run the way a worker does.
    fn save_by_run(store: &Store, story: &StoryId, scope: RunScope, number: u32, text: &str) {
        let run = store.create_run(story, 3, scope).unwrap();
        let claimed = store
            .claim_next_run(&owner(), &far_future(), 5)
            .unwrap()
            .unwrap();
        assert_eq!(claimed.run.id, run.id);
        let save = match scope {
            RunScope::Rewrite(_) => ChapterSave::Rewrite,
            _ => ChapterSave::New,
        };
        let chapter = NewChapter {
            number,
            title: format!("Chapter {number}"),
            content: text.into(),
            summary: "s".into(),
        };
        let result = store.save_chapter(&run.id, &owner(), story, &chapter, save, 1, 1);
        store
            .finish_run(&run.id, &owner(), crate::store::RunOutcome::Completed)
            .unwrap();
        result.unwrap();
    }

    fn edit(content: &str) -> ChapterEdit {
        ChapterEdit {
            content: Some(content.into()),
            ..Default::default()
        }
    }

    #[test]
    fn every_save_is_a_version_and_restore_brings_back_the_exact_text() {
        let (store, _dir) = temp_store();
        let id = story(&store);
        let first = "The courier crossed the flooded plain at dawn.\n\n  Indented line.";
        save_by_run(&store, &id, RunScope::Book, 1, first);
        store
            .update_chapter(&id, 1, &edit("The writer's own words."))
            .unwrap();
        save_by_run(
            &store,
            &id,
            RunScope::Rewrite(1),
            1,
            "A regenerated chapter.",
        );
        let restored = store.restore_version(&id, 1, 1).unwrap();
        assert_eq!(restored.content, first);
        assert_eq!(store.chapter(&id, 1).unwrap().content, first);
        let history = store.chapter_versions(&id, 1).unwrap();
        let sources: Vec<(u32, ChapterSource)> =
            history.iter().map(|v| (v.version, v.source)).collect();
        assert_eq!(
            sources,
            [
                (4, ChapterSource::Restored),
                (3, ChapterSource::Regenerated),
                (2, ChapterSource::Edited),
                (1, ChapterSource::Generated),
            ]
        );
        assert_eq!(store.chapter_version(&id, 1, 4).unwrap().content, first);
        assert_eq!(
            store.chapter_version(&id, 1, 2).unwrap().content,
            "The writer's own words."
        );
    }

    #[test]
    fn a_locked_chapter_survives_a_rewrite_run() {
        let (store, _dir) = temp_store();
        let id = story(&store);
        save_by_run(&store, &id, RunScope::Book, 1, "Kept as it is.");
        // A rewrite queued before the lock, then the lock: the save refuses.
        let run = store.create_run(&id, 3, RunScope::Rewrite(1)).unwrap();
        let lock = ChapterEdit {
            locked: Some(true),
            ..Default::default()
        };
        assert!(store.update_chapter(&id, 1, &lock).unwrap().locked);
        store
            .claim_next_run(&owner(), &far_future(), 5)
            .unwrap()
            .unwrap();
        let chapter = NewChapter {
            number: 1,
            title: "New".into(),
            content: "Overwritten.".into(),
            summary: String::new(),
        };
        let err = store
            .save_chapter(&run.id, &owner(), &id, &chapter, ChapterSave::Rewrite, 1, 1)
            .unwrap_err();
        assert!(
            matches!(err, Error::ChapterLocked { chapter: 1, .. }),
            "{err}"
        );
        assert_eq!(store.chapter(&id, 1).unwrap().content, "Kept as it is.");
        assert_eq!(store.chapter_versions(&id, 1).unwrap().len(), 1);
        // And a new rewrite is refused at once.
        store
            .finish_run(&run.id, &owner(), crate::store::RunOutcome::Completed)
            .unwrap();
        let refused = store.create_run(&id, 3, RunScope::Rewrite(1)).unwrap_err();
        assert!(matches!(refused, Error::ChapterLocked { .. }), "{refused}");
    }

    #[test]
    fn rolling_back_sets_later_chapters_aside_and_they_can_come_back() {
        let (store, _dir) = temp_store();
        let id = story(&store);
        for n in 1..=3 {
            save_by_run(&store, &id, RunScope::Book, n, &format!("Text of {n}."));
        }
        let rolled = store.roll_back_story(&id, 1).unwrap();
        assert_eq!(rolled.set_aside, [2, 3]);
        let numbers: Vec<u32> = store
            .chapters(&id)
            .unwrap()
            .iter()
            .map(|c| c.number)
            .collect();
        assert_eq!(numbers, [1]);
        assert_eq!(store.chapter_versions(&id, 3).unwrap().len(), 1);
        let back = store.restore_version(&id, 3, 1).unwrap();
        assert_eq!(back.content, "Text of 3.");
        assert_eq!(
            store.chapter_versions(&id, 3).unwrap()[0].source,
            ChapterSource::Restored
        );
    }

    #[test]
    fn rollback_is_refused_while_a_run_is_active_or_past_a_locked_chapter() {
        let (store, _dir) = temp_store();
        let id = story(&store);
        for n in 1..=2 {
            save_by_run(&store, &id, RunScope::Book, n, "Text.");
        }
        store
            .update_chapter(
                &id,
                2,
                &ChapterEdit {
                    locked: Some(true),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(matches!(
            store.roll_back_story(&id, 1),
            Err(Error::Conflict { .. })
        ));
        store.create_run(&id, 3, RunScope::Book).unwrap();
        assert!(matches!(
            store.roll_back_story(&id, 2),
            Err(Error::Conflict { .. })
        ));
        assert_eq!(store.chapters(&id).unwrap().len(), 2);
    }

    #[test]
    fn a_missing_version_is_a_clear_not_found_and_changes_nothing() {
        let (store, _dir) = temp_store();
        let id = story(&store);
        save_by_run(&store, &id, RunScope::Book, 1, "Only version.");
        let err = store.restore_version(&id, 1, 7).unwrap_err();
        assert!(
            matches!(err, Error::VersionNotFound { version: 7, .. }),
            "{err}"
        );
        assert_eq!(err.status(), 404);
        assert_eq!(store.chapter_versions(&id, 1).unwrap().len(), 1);
        assert!(matches!(
            store.chapter_versions(&id, 2),
            Err(Error::Validation { .. })
        ));
    }
}
