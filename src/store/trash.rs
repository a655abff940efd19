//! The trash: deleting a story sets it aside instead of destroying it.
//!
//! A story in the trash keeps its row, chapters, versions, runs and events
//! untouched, with `deleted_at` set; every story read of the writer's routes
//! skips it (see `stories::get_story`), so it answers 404 like a story that
//! never was. Orphan checks look at the row alone, so the runs of a story in
//! the trash are never orphans. Only a purge (asked for, or the sweeper's
//! for items older than `--trash-days`) deletes, in one transaction.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::model::{STORY_COLUMN_COUNT, STORY_COLUMNS, Story};
use super::{RunStatus, Store, StoryId};
use crate::error::{Error, Result};
use crate::run::Timestamp;

/// A story in the trash, as the trash lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrashedStory {
    #[serde(flatten)]
    pub story: Story,
    pub deleted_at: Timestamp,
    pub chapters: u32,
}

/// What a purge removed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Purged {
    pub chapters: u32,
    pub versions: u32,
    pub runs: u32,
}

/// Where a story is: in the book list, in the trash, or nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoryPlace {
    Live,
    Trash,
    Missing,
}

fn story_place(conn: &Connection, id: &StoryId) -> Result<StoryPlace> {
    let deleted: Option<Option<String>> = conn
        .prepare_cached("SELECT deleted_at FROM stories WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    Ok(match deleted {
        None => StoryPlace::Missing,
        Some(None) => StoryPlace::Live,
        Some(Some(_)) => StoryPlace::Trash,
    })
}

fn count(conn: &Connection, sql: &str, id: &StoryId) -> Result<u32> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row([id], |row| row.get(0))?)
}

impl Store {
    pub fn story_place(&self, id: &StoryId) -> Result<StoryPlace> {
        story_place(&*self.conn()?, id)
    }

    /// Moves a story to the trash and cancels its active runs (a worker
    /// holding one stops at once), in one transaction. Returns how many runs
    /// were cancelled.
    pub fn trash_story(&self, id: &StoryId) -> Result<usize> {
        self.write(|tx| {
            if story_place(tx, id)? != StoryPlace::Live {
                return Err(Error::StoryNotFound(id.clone()));
            }
            let now = self.now();
            let cancelled = tx
                .prepare_cached(
                    "UPDATE workflow_runs SET status = ?2, lease_owner = NULL, lease_expires_at = NULL,
                         finished_at = ?3, updated_at = ?3
                     WHERE story_id = ?1 AND (status = ?4 OR status = ?5)",
                )?
                .execute(params![
                    id,
                    RunStatus::Cancelled,
                    now,
                    RunStatus::Pending,
                    RunStatus::Running
                ])?;
            tx.prepare_cached("UPDATE stories SET deleted_at = ?2 WHERE id = ?1")?
                .execute(params![id, now])?;
            Ok(cancelled)
        })
    }

    /// A story in the trash (`None` for one that is not there).
    pub fn trashed_story(&self, id: &StoryId) -> Result<Option<Story>> {
        let sql =
            format!("SELECT {STORY_COLUMNS} FROM stories WHERE id = ?1 AND deleted_at IS NOT NULL");
        Ok(self
            .conn()?
            .prepare_cached(&sql)?
            .query_row([id], Story::from_row)
            .optional()?)
    }

    /// The trash, most recently deleted first.
    pub fn trash(&self) -> Result<Vec<TrashedStory>> {
        let sql = format!(
            "SELECT {STORY_COLUMNS}, deleted_at,
                    (SELECT count(*) FROM chapters c WHERE c.story_id = stories.id)
             FROM stories WHERE deleted_at IS NOT NULL ORDER BY deleted_at DESC, rowid DESC"
        );
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], |row| {
            Ok(TrashedStory {
                story: Story::from_row(row)?,
                deleted_at: row.get(STORY_COLUMN_COUNT)?,
                chapters: row.get(STORY_COLUMN_COUNT + 1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Brings a story back from the trash exactly as it was.
    pub fn restore_story(&self, id: &StoryId) -> Result<Story> {
        self.write(|tx| {
            match story_place(tx, id)? {
                StoryPlace::Trash => {}
                StoryPlace::Live => return Err(not_in_trash(id)),
                StoryPlace::Missing => return Err(Error::StoryNotFound(id.clone())),
            }
            tx.prepare_cached("UPDATE stories SET deleted_at = NULL WHERE id = ?1")?
                .execute([id])?;
            super::stories::get_story(tx, id)?.ok_or_else(|| Error::StoryNotFound(id.clone()))
        })
    }

    /// Deletes a story in the trash for good, with its chapters, versions,
    /// runs and events, in one transaction. A story not in the trash is
    /// refused: it goes to the trash first.
    pub fn purge_story(&self, id: &StoryId) -> Result<Purged> {
        self.write(|tx| {
            match story_place(tx, id)? {
                StoryPlace::Trash => {}
                StoryPlace::Live => return Err(not_in_trash(id)),
                StoryPlace::Missing => return Err(Error::StoryNotFound(id.clone())),
            }
            let purged = Purged {
                chapters: count(tx, "SELECT count(*) FROM chapters WHERE story_id = ?1", id)?,
                versions: count(
                    tx,
                    "SELECT count(*) FROM chapter_versions WHERE story_id = ?1",
                    id,
                )?,
                runs: count(
                    tx,
                    "SELECT count(*) FROM workflow_runs WHERE story_id = ?1",
                    id,
                )?,
            };
            tx.prepare_cached("DELETE FROM stories WHERE id = ?1")?
                .execute([id])?;
            Ok(purged)
        })
    }

    /// Stories that went to the trash before `cutoff` (a timestamp): the
    /// sweeper purges them, after a backup.
    pub fn trash_older_than(&self, cutoff: &Timestamp) -> Result<Vec<StoryId>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM stories WHERE deleted_at IS NOT NULL AND deleted_at < ?1",
        )?;
        let rows = stmt.query_map([cutoff], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

fn not_in_trash(id: &StoryId) -> Error {
    Error::Conflict {
        message: format!("story {id} is not in the trash"),
        details: serde_json::json!({ "story_id": id, "in_trash": false }),
        hint: "delete it first (DELETE /api/stories/{id}); only a story in the trash can be purged or restored".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_store;
    use crate::store::{NewStory, RunScope};

    fn snapshot(store: &Store) -> Vec<String> {
        // Every row of every table the trash touches, as text: restore must
        // bring back exactly these.
        let conn = store.conn().unwrap();
        let mut all = Vec::new();
        for sql in [
            "SELECT id || title || premise || outline || coalesce(chapter_count, '') || created_at || updated_at FROM stories",
            "SELECT story_id || number || title || content || word_count || locked FROM chapters",
            "SELECT story_id || number || version || source || content FROM chapter_versions",
            "SELECT id || status || coalesce(finished_at, '') || updated_at FROM workflow_runs",
            "SELECT run_id || kind || message FROM run_events",
        ] {
            let mut stmt = conn.prepare(sql).unwrap();
            let rows = stmt.query_map([], |row| row.get::<_, String>(0)).unwrap();
            let mut rows: Vec<String> = rows.map(Result::unwrap).collect();
            rows.sort();
            all.extend(rows);
        }
        all
    }

    #[test]
    fn trash_hides_cancels_and_restore_brings_back_every_row() {
        let (store, _dir) = temp_store();
        let story = store
            .create_story(&NewStory {
                title: "Kept".into(),
                ..Default::default()
            })
            .unwrap();
        let run = store.create_run(&story.id, 3, RunScope::Book).unwrap();
        assert_eq!(store.trash_story(&story.id).unwrap(), 1);
        assert!(matches!(
            store.story(&story.id),
            Err(Error::StoryNotFound(_))
        ));
        assert!(store.list_stories(10, 0).unwrap().is_empty());
        assert_eq!(store.run(&run.id).unwrap().status, RunStatus::Cancelled);
        assert_eq!(store.trash().unwrap()[0].story.id, story.id);
        assert!(store.orphaned_runs().unwrap().is_empty());
        // A real orphan (its story row deleted behind storyflow's back) is
        // still found beside the trashed story's runs.
        rusqlite::Connection::open(store.path())
            .unwrap()
            .execute_batch(
                "PRAGMA foreign_keys = OFF;
                 INSERT INTO workflow_runs (id, story_id, created_at, updated_at)
                 VALUES ('00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b', 't', 't');",
            )
            .unwrap();
        let orphans = store.orphaned_runs().unwrap();
        assert_eq!(orphans.len(), 1);
        assert_eq!(store.orphan_counts().unwrap().runs, 1);
        let before = snapshot(&store);
        store.restore_story(&story.id).unwrap();
        assert_eq!(store.story(&story.id).unwrap(), story);
        assert_eq!(snapshot(&store), before);
    }

    #[test]
    fn purge_needs_the_trash_and_removes_everything() {
        let (store, _dir) = temp_store();
        let story = store
            .create_story(&NewStory {
                title: "Gone".into(),
                ..Default::default()
            })
            .unwrap();
        store.create_run(&story.id, 3, RunScope::Book).unwrap();
        let err = store.purge_story(&story.id).unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{err}");
        assert_eq!(store.story(&story.id).unwrap(), story);
        store.trash_story(&story.id).unwrap();
        let purged = store.purge_story(&story.id).unwrap();
        assert_eq!(purged.runs, 1);
        assert_eq!(store.story_place(&story.id).unwrap(), StoryPlace::Missing);
        assert!(store.trash().unwrap().is_empty());
        assert!(matches!(
            store.purge_story(&story.id),
            Err(Error::StoryNotFound(_))
        ));
    }
}
