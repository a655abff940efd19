//! The story bible: the characters, places, objects, facts and threads a
//! writer keeps for a story (table `bible_entries`, schema 0008), so that
//! every chapter's prompt can carry the ones it needs.
//!
//! Decisions:
//! - [`BibleKind`] is the one spelling of the kinds; SQL binds it.
//! - aliases are stored as a JSON array of strings (one column, read whole:
//!   a bible is small); each is trimmed, blanks refused, duplicates of the
//!   name or of each other (case-insensitive) dropped.
//! - a story in the trash has no bible as far as the writer's routes go
//!   (404, like its other routes); its entries stay until it is purged.
//! - entries are listed in the order they were added, which is also the
//!   order the prompt's selection breaks ties in.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::stories::story_exists;
use super::{Store, StoryId};
use crate::error::{Error, Result};
use crate::run::{BibleEntryId, Timestamp};

pub const MAX_BIBLE_NAME_CHARS: usize = 200;
pub const MAX_BIBLE_ALIASES: usize = 20;
pub const MAX_BIBLE_DESCRIPTION_CHARS: usize = 10_000;
/// A story's bible is a reference, not a database: past this many entries
/// the prompt could carry only a fraction of them anyway.
pub const MAX_BIBLE_ENTRIES: u32 = 500;

/// What a bible entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BibleKind {
    Character,
    Place,
    Object,
    Fact,
    Thread,
}

impl BibleKind {
    pub const ALL: [BibleKind; 5] = [
        BibleKind::Character,
        BibleKind::Place,
        BibleKind::Object,
        BibleKind::Fact,
        BibleKind::Thread,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BibleKind::Character => "character",
            BibleKind::Place => "place",
            BibleKind::Object => "object",
            BibleKind::Fact => "fact",
            BibleKind::Thread => "thread",
        }
    }

    pub fn parse(text: &str) -> Option<BibleKind> {
        BibleKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for BibleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for BibleKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(
            self.as_str().as_bytes(),
        )))
    }
}

impl FromSql for BibleKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        BibleKind::parse(text)
            .ok_or_else(|| FromSqlError::Other(format!("bible kind {text}").into()))
    }
}

/// One entry of a story's bible, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BibleEntry {
    pub id: BibleEntryId,
    pub story_id: StoryId,
    pub kind: BibleKind,
    pub name: String,
    pub aliases: Vec<String>,
    pub description: String,
    pub pinned: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl BibleEntry {
    /// The name and every alias: what a mention of the entry looks like.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<BibleEntry> {
        let aliases: String = row.get(4)?;
        Ok(BibleEntry {
            id: row.get(0)?,
            story_id: row.get(1)?,
            kind: row.get(2)?,
            name: row.get(3)?,
            // The CHECK keeps it a JSON array; one holding other than
            // strings (written outside storyflow) reads as no aliases
            // rather than failing the whole bible.
            aliases: serde_json::from_str(&aliases).unwrap_or_default(),
            description: row.get(5)?,
            pinned: row.get(6)?,
            created_at: row.get(7)?,
            updated_at: row.get(8)?,
        })
    }
}

const ENTRY_COLUMNS: &str =
    "id, story_id, kind, name, aliases, description, pinned, created_at, updated_at";

/// A new entry, as `POST /api/stories/{id}/bible` takes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBibleEntry {
    pub kind: BibleKind,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub pinned: bool,
}

/// A partial update: absent fields are left alone; none may be null.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BiblePatch {
    #[serde(default, deserialize_with = "super::stories::present")]
    pub kind: Option<BibleKind>,
    #[serde(default, deserialize_with = "super::stories::present")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "super::stories::present")]
    pub aliases: Option<Vec<String>>,
    #[serde(default, deserialize_with = "super::stories::present")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "super::stories::present")]
    pub pinned: Option<bool>,
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::validation("name", "must not be empty"));
    }
    check_length("name", name, MAX_BIBLE_NAME_CHARS)?;
    Ok(name.to_string())
}

fn check_length(field: &str, text: &str, max: usize) -> Result<()> {
    let chars = text.chars().count();
    if chars > max {
        return Err(Error::validation(
            field,
            format!("is {chars} characters long; the limit is {max}"),
        ));
    }
    Ok(())
}

/// The aliases trimmed, checked, and without repeats of the name or of
/// each other.
fn check_aliases(name: &str, aliases: &[String]) -> Result<Vec<String>> {
    if aliases.len() > MAX_BIBLE_ALIASES {
        return Err(Error::validation(
            "aliases",
            format!(
                "has {} aliases; the limit is {MAX_BIBLE_ALIASES}",
                aliases.len()
            ),
        ));
    }
    let mut kept: Vec<String> = Vec::new();
    for (index, alias) in aliases.iter().enumerate() {
        let alias = alias.trim();
        let field = format!("aliases[{index}]");
        if alias.is_empty() {
            return Err(Error::validation(field, "must not be empty"));
        }
        check_length(&field, alias, MAX_BIBLE_NAME_CHARS)?;
        let lower = alias.to_lowercase();
        if lower != name.to_lowercase() && !kept.iter().any(|k| k.to_lowercase() == lower) {
            kept.push(alias.to_string());
        }
    }
    Ok(kept)
}

/// An entry's fields checked and normalised, ready to store.
struct CheckedEntry {
    kind: BibleKind,
    name: String,
    aliases_json: String,
    description: String,
    pinned: bool,
}

fn check_entry(
    kind: BibleKind,
    name: &str,
    aliases: &[String],
    description: &str,
    pinned: bool,
) -> Result<CheckedEntry> {
    let name = check_name(name)?;
    let aliases = check_aliases(&name, aliases)?;
    check_length("description", description, MAX_BIBLE_DESCRIPTION_CHARS)?;
    Ok(CheckedEntry {
        kind,
        name,
        aliases_json: serde_json::to_string(&aliases)
            .map_err(|e| Error::Internal(e.to_string()))?,
        description: description.trim().to_string(),
        pinned,
    })
}

fn entries_of(conn: &Connection, story: &StoryId) -> Result<Vec<BibleEntry>> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM bible_entries WHERE story_id = ?1 ORDER BY created_at, rowid"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([story], BibleEntry::from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every name and alias of the story's bible, read on `conn` (inside the
/// transaction that saves a chapter version and measures it).
pub(super) fn bible_names_in(conn: &Connection, story: &StoryId) -> Result<Vec<String>> {
    Ok(entries_of(conn, story)?
        .iter()
        .flat_map(|entry| entry.names().map(str::to_string))
        .collect())
}

/// Writes a checked entry: a new one, or the new values of an existing
/// one (its `created_at` kept); the entry as it now reads.
fn save_entry(
    conn: &Connection,
    story: &StoryId,
    id: &BibleEntryId,
    checked: &CheckedEntry,
    now: &Timestamp,
) -> Result<BibleEntry> {
    conn.prepare_cached(
        "INSERT INTO bible_entries
             (id, story_id, kind, name, aliases, description, pinned, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
         ON CONFLICT (id) DO UPDATE SET
             kind = excluded.kind, name = excluded.name, aliases = excluded.aliases,
             description = excluded.description, pinned = excluded.pinned,
             updated_at = excluded.updated_at",
    )?
    .execute(params![
        id,
        story,
        checked.kind,
        checked.name,
        checked.aliases_json,
        checked.description,
        checked.pinned,
        now
    ])?;
    entry_of(conn, story, id)
}

fn entry_of(conn: &Connection, story: &StoryId, entry: &BibleEntryId) -> Result<BibleEntry> {
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM bible_entries WHERE id = ?1 AND story_id = ?2");
    conn.prepare_cached(&sql)?
        .query_row(params![entry, story], BibleEntry::from_row)
        .optional()?
        .ok_or_else(|| Error::BibleEntryNotFound {
            story: story.clone(),
            entry: entry.clone(),
        })
}

fn require_story(conn: &Connection, story: &StoryId) -> Result<()> {
    if story_exists(conn, story)? {
        Ok(())
    } else {
        Err(Error::StoryNotFound(story.clone()))
    }
}

impl Store {
    /// The bible of a story outside the trash, in the order it was written.
    pub fn bible(&self, story: &StoryId) -> Result<Vec<BibleEntry>> {
        let conn = self.conn()?;
        require_story(&conn, story)?;
        entries_of(&conn, story)
    }

    /// The entries of a story whatever its place (the engine writing a
    /// story's chapters, the quality measure): no story check.
    pub fn bible_entries(&self, story: &StoryId) -> Result<Vec<BibleEntry>> {
        entries_of(&*self.conn()?, story)
    }

    /// Every name and alias of the story's bible, for the name-variant check.
    pub fn bible_names(&self, story: &StoryId) -> Result<Vec<String>> {
        bible_names_in(&*self.conn()?, story)
    }

    pub fn bible_entry(&self, story: &StoryId, entry: &BibleEntryId) -> Result<BibleEntry> {
        let conn = self.conn()?;
        require_story(&conn, story)?;
        entry_of(&conn, story, entry)
    }

    pub fn add_bible_entry(&self, story: &StoryId, new: &NewBibleEntry) -> Result<BibleEntry> {
        let checked = check_entry(
            new.kind,
            &new.name,
            &new.aliases,
            &new.description,
            new.pinned,
        )?;
        let id = BibleEntryId::random();
        let now = self.now();
        self.write(|tx| {
            require_story(tx, story)?;
            let count: u32 = tx
                .prepare_cached("SELECT count(*) FROM bible_entries WHERE story_id = ?1")?
                .query_row([story], |row| row.get(0))?;
            if count >= MAX_BIBLE_ENTRIES {
                return Err(Error::validation(
                    "name",
                    format!(
                        "the story's bible holds {count} entries, the limit; remove one or merge entries first"
                    ),
                ));
            }
            save_entry(tx, story, &id, &checked, &now)
        })
    }

    pub fn update_bible_entry(
        &self,
        story: &StoryId,
        entry: &BibleEntryId,
        patch: &BiblePatch,
    ) -> Result<BibleEntry> {
        let now = self.now();
        self.write(|tx| {
            require_story(tx, story)?;
            let old = entry_of(tx, story, entry)?;
            let checked = check_entry(
                patch.kind.unwrap_or(old.kind),
                patch.name.as_deref().unwrap_or(&old.name),
                patch.aliases.as_deref().unwrap_or(&old.aliases),
                patch.description.as_deref().unwrap_or(&old.description),
                patch.pinned.unwrap_or(old.pinned),
            )?;
            save_entry(tx, story, entry, &checked, &now)
        })
    }

    pub fn delete_bible_entry(&self, story: &StoryId, entry: &BibleEntryId) -> Result<()> {
        self.write(|tx| {
            require_story(tx, story)?;
            let deleted = tx
                .prepare_cached("DELETE FROM bible_entries WHERE id = ?1 AND story_id = ?2")?
                .execute(params![entry, story])?;
            if deleted == 0 {
                return Err(Error::BibleEntryNotFound {
                    story: story.clone(),
                    entry: entry.clone(),
                });
            }
            Ok(())
        })
    }

    /// Up to `limit` entry ids of the story that start with `prefix`
    /// (lowercase hex and hyphens, as for story ids).
    pub fn bible_ids_with_prefix(
        &self,
        story: &StoryId,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<BibleEntryId>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM bible_entries
             WHERE story_id = ?1 AND id >= ?2 AND id < ?2 || 'g' ORDER BY id LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![story, prefix, limit], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewStory;
    use crate::store::testing::temp_store;

    fn new_entry(name: &str, aliases: &[&str]) -> NewBibleEntry {
        NewBibleEntry {
            kind: BibleKind::Character,
            name: name.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            description: "A sailor.".into(),
            pinned: false,
        }
    }

    #[test]
    fn entries_round_trip_and_are_checked() {
        let (store, _dir) = temp_store();
        let story = store
            .create_story(&NewStory {
                title: "Tide".into(),
                ..Default::default()
            })
            .expect("story")
            .id;
        let added = store
            .add_bible_entry(
                &story,
                &new_entry(" Mara ", &["the Captain", "mara", " M "]),
            )
            .expect("add");
        assert_eq!(added.name, "Mara");
        assert_eq!(added.aliases, ["the Captain", "M"]);
        let patch = BiblePatch {
            pinned: Some(true),
            kind: Some(BibleKind::Place),
            ..Default::default()
        };
        let changed = store
            .update_bible_entry(&story, &added.id, &patch)
            .expect("patch");
        assert!(changed.pinned);
        assert_eq!(changed.kind, BibleKind::Place);
        assert_eq!(changed.aliases, added.aliases);
        assert_eq!(store.bible(&story).expect("list"), [changed]);
        for bad in [new_entry("  ", &[]), new_entry("Mara", &[""])] {
            let err = store.add_bible_entry(&story, &bad).unwrap_err();
            assert_eq!(err.status(), 422, "{err}");
        }
        store.delete_bible_entry(&story, &added.id).expect("delete");
        let err = store.delete_bible_entry(&story, &added.id).unwrap_err();
        assert_eq!(err.status(), 404);
        store
            .add_bible_entry(&story, &new_entry("Oren", &[]))
            .expect("add");
        store.trash_story(&story).expect("trash");
        assert_eq!(store.bible(&story).unwrap_err().status(), 404);
        assert_eq!(store.bible_entries(&story).expect("kept").len(), 1);
        // A purge takes the entries with the story, and the index with them.
        store.purge_story(&story).expect("purge");
        assert!(store.bible_entries(&story).expect("entries").is_empty());
        assert!(store.search_index_agrees().expect("check"));
        assert_eq!(store.orphan_counts().expect("orphans").bible_entries, 0);
    }
}
