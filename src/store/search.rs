//! Search over the chapters and the story bible: the FTS5 indexes
//! `chapters_fts` (schema 0007) and `bible_fts` (schema 0008) that triggers
//! keep in step with their tables, the query built from the writer's words,
//! and the indexes' own health (checked against their tables and rebuilt
//! from them).
//!
//! Decisions:
//! - the writer's text is never FTS5 syntax: every whitespace-separated word
//!   becomes a quoted phrase (inner `"` doubled), and the phrases are ANDed,
//!   so `"`, `*`, `NEAR(`, `-`, `AND`/`OR`/`NOT` and column filters are plain
//!   words. A word of punctuation alone is a phrase of no tokens, which FTS5
//!   ignores. Words match whole (no prefix search): a prefix query on a short
//!   prefix walks much of a large index.
//! - matches in the snippet are wrapped in `[` and `]` (the contract's text;
//!   the page turns them into `<mark>` elements, never HTML), taken from the
//!   chapter text, where the reader scrolls to; the title is its own field.
//! - hits are ranked by bm25 with a match in the title worth twice one in
//!   the text (equal scores in the order the chapters were first saved);
//!   stories in the trash are skipped.
//! - a bible entry is a hit of its own (`kind: "bible"`, `chapter: null`,
//!   `title` the entry's name), ranked among the chapters by the same bm25
//!   (a match in the name or an alias worth twice one in the description);
//!   its snippet is taken from whichever of its fields matches best.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{ErrorCode, params};
use serde::Serialize;

use super::{Store, StoryId};
use crate::error::{Error, Result};

/// The most hits one search returns.
pub const MAX_SEARCH_HITS: u32 = 50;

/// Longest query accepted, in characters: a search box, not a document.
const MAX_QUERY_CHARS: usize = 500;

/// How many words of context a snippet holds around its matches.
const SNIPPET_WORDS: i64 = 24;

/// What a search hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HitKind {
    Chapter,
    Bible,
}

impl HitKind {
    fn as_str(self) -> &'static str {
        match self {
            HitKind::Chapter => "chapter",
            HitKind::Bible => "bible",
        }
    }
}

impl ToSql for HitKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(
            self.as_str().as_bytes(),
        )))
    }
}

impl FromSql for HitKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            text if text == HitKind::Chapter.as_str() => Ok(HitKind::Chapter),
            text if text == HitKind::Bible.as_str() => Ok(HitKind::Bible),
            other => Err(FromSqlError::Other(format!("hit kind {other}").into())),
        }
    }
}

/// One chapter or bible entry that matches a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchHit {
    pub kind: HitKind,
    pub story_id: StoryId,
    pub story_title: String,
    /// The chapter's number; `None` (null) for a bible entry.
    pub chapter: Option<u32>,
    /// The chapter's title, or the bible entry's name.
    pub title: String,
    /// A passage of the chapter text (or of the entry) with each match
    /// between `[` and `]`.
    pub snippet: String,
}

/// The writer's words as an FTS5 query that can only match them: each word a
/// quoted phrase, ANDed. A 422 when there is no word or far too many.
pub fn fts_query(text: &str) -> Result<String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::validation("q", "type a word to search for"));
    }
    let chars = text.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(Error::validation(
            "q",
            format!("the search is {chars} characters long; the limit is {MAX_QUERY_CHARS}"),
        ));
    }
    let phrases: Vec<String> = text
        .split_whitespace()
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect();
    Ok(phrases.join(" "))
}

/// The page's hits, best first: the ranked chapters (`ranked`: rowid and
/// score, from one of the two queries below) with their story, number,
/// title and snippet, and the bible entries that match, ranked together.
///
/// Ranking first and making snippets after matters on a large library: a
/// common word matches nearly every chapter, and a snippet reads and
/// tokenises the chapter's whole text, so a snippet per match (the first
/// form of this query) made one common word over 10 million words take
/// hundreds of milliseconds (`cargo bench --bench search`). Here each of
/// the page's hits gets its snippet through the full-text query again,
/// constrained to that one rowid (FTS5 seeks to it). `MATERIALIZED` and
/// `CROSS JOIN` keep that order: the ranked hits outside, the lookups inside.
const HITS: &str = "SELECT kind, story_id, story_title, number, title, snippet FROM (
       SELECT ?5 AS kind, c.story_id, s.title AS story_title, c.number, c.title,
              snippet(chapters_fts, 1, '[', ']', '…', ?4) AS snippet,
              ranked.score AS score, ranked.hit AS saved
       FROM ranked
       CROSS JOIN chapters_fts
       JOIN chapters c ON c.rowid = ranked.hit
       JOIN stories s ON s.id = c.story_id
       WHERE chapters_fts MATCH ?1 AND chapters_fts.rowid = ranked.hit
       UNION ALL
       SELECT * FROM (
         SELECT ?6 AS kind, b.story_id, s.title AS story_title, NULL AS number, b.name,
                snippet(bible_fts, -1, '[', ']', '…', ?4) AS snippet,
                bm25(bible_fts, 2.0, 2.0, 1.0) AS score, b.rowid AS saved
         FROM bible_fts
         JOIN bible_entries b ON b.rowid = bible_fts.rowid
         JOIN stories s ON s.id = b.story_id
         WHERE bible_fts MATCH ?1
           AND s.deleted_at IS NULL
           AND (?2 IS NULL OR b.story_id = ?2)
         ORDER BY score, b.rowid
         LIMIT ?3))
     ORDER BY score, kind, saved
     LIMIT ?3";

/// Every story outside the trash. The ranking reads the index alone: the
/// chapters of trashed stories are one small set (by the `stories_trash`
/// index) left out by rowid, where a join to `chapters` and `stories` for
/// every match read a 10 KB chapter row per match. Equal scores are ranked
/// by rowid (the order the chapters were first saved), so which of several
/// equal hits make the page no longer needs the chapter rows.
const RANK_ALL: &str = "WITH ranked AS MATERIALIZED (
         SELECT rowid AS hit, bm25(chapters_fts, 2.0, 1.0) AS score
         FROM chapters_fts
         WHERE chapters_fts MATCH ?1
           AND rowid NOT IN (SELECT c.rowid FROM stories s JOIN chapters c ON c.story_id = s.id
                             WHERE s.deleted_at IS NOT NULL)
         ORDER BY score, rowid
         LIMIT ?3)";

/// One story (`?2`): only its chapters' rowids are ranked, found by the
/// chapters' primary key.
const RANK_STORY: &str = "WITH ranked AS MATERIALIZED (
         SELECT rowid AS hit, bm25(chapters_fts, 2.0, 1.0) AS score
         FROM chapters_fts
         WHERE chapters_fts MATCH ?1
           AND rowid IN (SELECT c.rowid FROM chapters c JOIN stories s ON s.id = c.story_id
                         WHERE c.story_id = ?2 AND s.deleted_at IS NULL)
         ORDER BY score, rowid
         LIMIT ?3)";

impl Store {
    /// The chapters and bible entries that hold every word of `query`, best first, at most
    /// `limit` (capped at [`MAX_SEARCH_HITS`]), of one story or of all the
    /// stories outside the trash.
    pub fn search(
        &self,
        query: &str,
        story: Option<&StoryId>,
        limit: u32,
    ) -> Result<Vec<SearchHit>> {
        let fts = fts_query(query)?;
        let limit = limit.clamp(1, MAX_SEARCH_HITS);
        let conn = self.conn()?;
        let rank = if story.is_some() {
            RANK_STORY
        } else {
            RANK_ALL
        };
        let mut stmt = conn.prepare_cached(&format!("{rank} {HITS}"))?;
        let hits = stmt
            .query_map(
                params![
                    fts,
                    story,
                    limit,
                    SNIPPET_WORDS,
                    HitKind::Chapter,
                    HitKind::Bible
                ],
                |row| {
                    Ok(SearchHit {
                        kind: row.get(0)?,
                        story_id: row.get(1)?,
                        story_title: row.get(2)?,
                        chapter: row.get(3)?,
                        title: row.get(4)?,
                        snippet: row.get(5)?,
                    })
                },
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(hits)
    }

    /// Whether the search indexes agree with the chapters and the bible
    /// (FTS5's `integrity-check` against its external content). It reads
    /// every chapter, so it belongs to the health check, not to a hot path;
    /// FTS5 takes it as a write statement, so it runs on the writer
    /// connection.
    pub fn search_index_agrees(&self) -> Result<bool> {
        self.write_one(|conn| {
            for check in [
                "INSERT INTO chapters_fts (chapters_fts, rank) VALUES ('integrity-check', 1)",
                "INSERT INTO bible_fts (bible_fts, rank) VALUES ('integrity-check', 1)",
            ] {
                match conn.execute(check, []) {
                    Ok(_) => {}
                    Err(err) if err.sqlite_error_code() == Some(ErrorCode::DatabaseCorrupt) => {
                        return Ok(false);
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            Ok(true)
        })
    }

    /// Builds the search indexes again from the chapters and the bible.
    pub fn rebuild_search_index(&self) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO chapters_fts (chapters_fts) VALUES ('rebuild')",
                [],
            )?;
            tx.execute("INSERT INTO bible_fts (bible_fts) VALUES ('rebuild')", [])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_store;
    use crate::store::{ChapterEdit, ImportedChapter, NewStory};

    fn story_with_chapters(store: &Store, title: &str, texts: &[&str]) -> StoryId {
        let chapters: Vec<ImportedChapter> = texts
            .iter()
            .enumerate()
            .map(|(index, text)| ImportedChapter {
                number: index as u32 + 1,
                title: format!("Part {}", index + 1),
                content: (*text).to_string(),
            })
            .collect();
        let new = NewStory {
            title: title.into(),
            ..Default::default()
        };
        store.import_story(&new, &chapters).expect("import").id
    }

    const FILLER: &str = "The fog lay on the river and nobody spoke of it.";

    #[test]
    fn a_word_in_chapter_seven_is_found_with_its_snippet() {
        let (store, _dir) = temp_store();
        let mut texts = vec![FILLER; 9];
        texts[6] = "At dawn the lighthouse keeper found a brass astrolabe in the café.";
        let story = story_with_chapters(&store, "Tide", &texts);
        let hits = store.search("astrolabe", None, 50).expect("search");
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].story_id, story);
        assert_eq!(hits[0].story_title, "Tide");
        assert_eq!(hits[0].chapter, Some(7));
        assert_eq!(hits[0].title, "Part 7");
        assert!(
            hits[0].snippet.contains("brass [astrolabe] in"),
            "{}",
            hits[0].snippet
        );
        // Diacritics are folded: "cafe" finds "café".
        let folded = store.search("CAFE", Some(&story), 50).expect("search");
        assert_eq!(folded.len(), 1);
        assert!(
            folded[0].snippet.contains("[café]"),
            "{}",
            folded[0].snippet
        );
    }

    #[test]
    fn an_edit_that_removes_a_word_removes_it_from_search() {
        let (store, _dir) = temp_store();
        let story = story_with_chapters(&store, "Tide", &[FILLER, "The heron waited."]);
        assert_eq!(store.search("heron", None, 50).expect("search").len(), 1);
        let edit = ChapterEdit {
            content: Some("The crane waited.".into()),
            ..Default::default()
        };
        store.update_chapter(&story, 2, &edit).expect("edit");
        assert!(store.search("heron", None, 50).expect("search").is_empty());
        let crane = store.search("crane", None, 50).expect("search");
        assert_eq!(crane.len(), 1);
        assert_eq!(crane[0].chapter, Some(2));
        // A lock changes neither title nor text, and the index still agrees.
        let lock = ChapterEdit {
            locked: Some(true),
            ..Default::default()
        };
        store.update_chapter(&story, 2, &lock).expect("lock");
        assert!(store.search_index_agrees().expect("check"));
    }

    #[test]
    fn a_trashed_story_is_not_found_and_a_purged_one_leaves_the_index_sound() {
        let (store, _dir) = temp_store();
        let kept = story_with_chapters(&store, "Kept", &["The heron waited."]);
        let trashed = story_with_chapters(&store, "Gone", &["The heron flew."]);
        store.trash_story(&trashed).expect("trash");
        let hits = store.search("heron", None, 50).expect("search");
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].story_id, kept);
        assert!(
            store
                .search("heron", Some(&trashed), 50)
                .expect("search")
                .is_empty()
        );
        store.purge_story(&trashed).expect("purge");
        assert!(store.search_index_agrees().expect("check"));
    }

    #[test]
    fn hostile_queries_are_words_not_syntax() {
        let (store, _dir) = temp_store();
        story_with_chapters(&store, "Tide", &["Near the pier a b c stood; x-ray eyes."]);
        for query in [
            "\"",
            "*",
            "NEAR(",
            "a -b",
            "a OR",
            "title:near",
            "\"\"\"",
            "(",
            "^a",
            "a AND NOT",
            "x-ray",
        ] {
            let result = store.search(query, None, 50);
            assert!(result.is_ok(), "{query:?}: {result:?}");
        }
        // Operators are words: `NEAR(` finds the word "near", `a -b` both words.
        assert_eq!(store.search("NEAR(", None, 50).expect("near").len(), 1);
        assert_eq!(store.search("a -b", None, 50).expect("a b").len(), 1);
        assert!(store.search("OR", None, 50).expect("or").is_empty());
        for empty in ["", "   \t"] {
            let err = store.search(empty, None, 50).unwrap_err();
            assert_eq!(err.status(), 422, "{empty:?}");
        }
        let long = "word ".repeat(200);
        assert_eq!(store.search(&long, None, 50).unwrap_err().status(), 422);
    }

    #[test]
    fn at_most_fifty_hits_best_first() {
        let (store, _dir) = temp_store();
        let mut texts = vec!["A heron."; 60];
        texts[41] = "Heron, heron, heron: the heron again.";
        story_with_chapters(&store, "Herons", &texts);
        let hits = store.search("heron", None, 500).expect("search");
        assert_eq!(hits.len(), MAX_SEARCH_HITS as usize);
        assert_eq!(hits[0].chapter, Some(42));
    }

    #[test]
    fn a_bible_entry_is_a_hit_of_its_own_and_its_index_is_checked() {
        let (store, _dir) = temp_store();
        let story = story_with_chapters(&store, "Tide", &["Mara rowed out."]);
        let entry = crate::store::NewBibleEntry {
            kind: crate::store::BibleKind::Character,
            name: "Mara Okafor".into(),
            aliases: vec!["the Ferrywoman".into()],
            description: "Rows the night ferry; afraid of lighthouses.".into(),
            pinned: false,
        };
        store.add_bible_entry(&story, &entry).expect("entry");
        let hits = store.search("ferrywoman", None, 50).expect("search");
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].kind, HitKind::Bible);
        assert_eq!(hits[0].chapter, None);
        assert_eq!(hits[0].title, "Mara Okafor");
        let both = store.search("mara", None, 50).expect("search");
        let kinds: Vec<HitKind> = both.iter().map(|hit| hit.kind).collect();
        assert!(kinds.contains(&HitKind::Bible) && kinds.contains(&HitKind::Chapter));
        let lighthouses = store.search("lighthouses", None, 50).expect("search");
        assert!(
            lighthouses[0].snippet.contains("[lighthouses]"),
            "{lighthouses:?}"
        );
        store
            .write_one(|conn| {
                conn.execute(
                    "INSERT INTO bible_fts (bible_fts) VALUES ('delete-all')",
                    [],
                )?;
                Ok(())
            })
            .expect("break");
        assert!(!store.search_index_agrees().expect("check"));
        store.rebuild_search_index().expect("rebuild");
        assert!(store.search_index_agrees().expect("check"));
        assert_eq!(
            store.search("ferrywoman", None, 50).expect("search").len(),
            1
        );
    }

    #[test]
    fn an_emptied_index_is_found_and_rebuilt() {
        let (store, _dir) = temp_store();
        story_with_chapters(&store, "Tide", &["The heron waited."]);
        assert!(store.search_index_agrees().expect("check"));
        store
            .write_one(|conn| {
                conn.execute(
                    "INSERT INTO chapters_fts (chapters_fts) VALUES ('delete-all')",
                    [],
                )?;
                Ok(())
            })
            .expect("break");
        assert!(store.search("heron", None, 50).expect("search").is_empty());
        assert!(!store.search_index_agrees().expect("check"));
        store.rebuild_search_index().expect("rebuild");
        assert!(store.search_index_agrees().expect("check"));
        assert_eq!(store.search("heron", None, 50).expect("search").len(), 1);
    }
}
