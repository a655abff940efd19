//! Stories and their chapters.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;

use super::model::{
    CHAPTER_COLUMNS, Chapter, DEFAULT_LANGUAGE, DEFAULT_TARGET_WORDS, STORY_COLUMNS, Story,
    word_count,
};
use super::versions::{ChapterSource, VersionRecord, add_version};
use super::{Store, StoryId};
use crate::error::{Error, Result};

/// Field limits, enforced for the API and the command line alike.
pub const MAX_TITLE_CHARS: usize = 500;
pub const MAX_PREMISE_CHARS: usize = 20_000;
pub const MAX_OUTLINE_CHARS: usize = 200_000;
pub const MAX_CHAPTER_COUNT: u32 = 1_000;
pub const MAX_AUTHOR_CHARS: usize = 200;
pub const MAX_LANGUAGE_CHARS: usize = 60;
pub const MAX_POV_CHARS: usize = 100;
pub const MAX_TENSE_CHARS: usize = 60;
pub const MAX_STYLE_CHARS: usize = 4_000;
/// The words asked of a chapter: the lower bound keeps a chapter a chapter,
/// the upper one keeps it inside what one model answer can hold.
pub const MIN_TARGET_WORDS: u32 = 100;
pub const MAX_TARGET_WORDS: u32 = 20_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewStory {
    pub title: String,
    #[serde(default)]
    pub premise: String,
    #[serde(default)]
    pub outline: String,
    #[serde(default)]
    pub chapter_count: Option<u32>,
    #[serde(default)]
    pub author: String,
    #[serde(default = "default_language")]
    pub language: String,
    #[serde(default)]
    pub pov: String,
    #[serde(default)]
    pub tense: String,
    #[serde(default)]
    pub style: String,
    #[serde(default = "default_target_words")]
    pub target_words: u32,
}

fn default_language() -> String {
    DEFAULT_LANGUAGE.to_string()
}

fn default_target_words() -> u32 {
    DEFAULT_TARGET_WORDS
}

/// An untitled story with the contract's defaults (`language` English,
/// `target_words` 1500): what a request that names nothing else creates.
impl Default for NewStory {
    fn default() -> NewStory {
        NewStory {
            title: String::new(),
            premise: String::new(),
            outline: String::new(),
            chapter_count: None,
            author: String::new(),
            language: default_language(),
            pov: String::new(),
            tense: String::new(),
            style: String::new(),
            target_words: DEFAULT_TARGET_WORDS,
        }
    }
}

/// A partial update: absent fields are left alone; `chapter_count: null`
/// clears the explicit count so it is derived again. The text fields are never
/// null, here as on create: `"title": null` is a wrong type, not "leave alone".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoryPatch {
    #[serde(default, deserialize_with = "present")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub premise: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub outline: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub chapter_count: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    pub author: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub language: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub pov: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub tense: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub style: Option<String>,
    /// Never null: a target cannot be "derived".
    #[serde(default, deserialize_with = "present")]
    pub target_words: Option<u32>,
}

/// A field that, when given, must hold a value: `null` is a wrong type, not
/// "leave alone" (absent fields are `None` through `#[serde(default)]`).
pub(super) fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

/// The writer's edit of one chapter: absent fields are left alone.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChapterEdit {
    pub title: Option<String>,
    pub content: Option<String>,
    /// Locks (`true`) or unlocks the chapter.
    pub locked: Option<bool>,
}

pub const MAX_CHAPTER_CHARS: usize = 200_000;

impl ChapterEdit {
    pub fn validate(&self) -> Result<()> {
        if self.title.is_none() && self.content.is_none() && self.locked.is_none() {
            return Err(Error::validation(
                "body",
                "give `content`, `title`, `locked` or several of them",
            ));
        }
        if let Some(title) = &self.title {
            check_title(title)?;
        }
        if let Some(content) = &self.content {
            if content.trim().is_empty() {
                return Err(Error::validation("content", "must not be empty"));
            }
            check_length("content", content, MAX_CHAPTER_CHARS)?;
        }
        Ok(())
    }
}

pub(super) fn chapter_not_written(story: &StoryId, number: u32) -> Error {
    Error::validation(
        "number",
        format!("story {story} has no chapter {number} yet; write it with a run first"),
    )
}

fn check_title(title: &str) -> Result<()> {
    if title.trim().is_empty() {
        return Err(Error::validation("title", "must not be empty"));
    }
    check_length("title", title, MAX_TITLE_CHARS)
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

fn check_language(language: &str) -> Result<()> {
    if language.trim().is_empty() {
        return Err(Error::validation(
            "language",
            "must not be empty; name the language the book is written in, such as `English`",
        ));
    }
    check_length("language", language, MAX_LANGUAGE_CHARS)
}

fn check_target_words(target: u32) -> Result<()> {
    if !(MIN_TARGET_WORDS..=MAX_TARGET_WORDS).contains(&target) {
        return Err(Error::validation(
            "target_words",
            format!("must be between {MIN_TARGET_WORDS} and {MAX_TARGET_WORDS}, got {target}"),
        ));
    }
    Ok(())
}

/// The checks of the fields every prompt carries; `None` is "not changed".
fn check_prompt_fields(
    author: Option<&str>,
    language: Option<&str>,
    pov: Option<&str>,
    tense: Option<&str>,
    style: Option<&str>,
    target_words: Option<u32>,
) -> Result<()> {
    let limited = [
        ("author", author, MAX_AUTHOR_CHARS),
        ("pov", pov, MAX_POV_CHARS),
        ("tense", tense, MAX_TENSE_CHARS),
        ("style", style, MAX_STYLE_CHARS),
    ];
    for (field, text, max) in limited {
        if let Some(text) = text {
            check_length(field, text, max)?;
        }
    }
    if let Some(language) = language {
        check_language(language)?;
    }
    target_words.map_or(Ok(()), check_target_words)
}

fn check_chapter_count(count: Option<u32>) -> Result<()> {
    match count {
        Some(n) if n == 0 || n > MAX_CHAPTER_COUNT => Err(Error::validation(
            "chapter_count",
            format!("must be between 1 and {MAX_CHAPTER_COUNT}, got {n}"),
        )),
        _ => Ok(()),
    }
}

impl NewStory {
    /// The story this creates, with a fresh id, stamped `now`.
    pub(super) fn to_story(&self, now: crate::run::Timestamp) -> Story {
        Story {
            id: StoryId::random(),
            title: self.title.trim().to_string(),
            premise: self.premise.clone(),
            outline: self.outline.clone(),
            chapter_count: self.chapter_count,
            created_at: now.clone(),
            updated_at: now,
            author: self.author.trim().to_string(),
            language: self.language.trim().to_string(),
            pov: self.pov.trim().to_string(),
            tense: self.tense.trim().to_string(),
            style: self.style.trim().to_string(),
            target_words: self.target_words,
        }
    }

    pub fn validate(&self) -> Result<()> {
        check_title(&self.title)?;
        check_length("premise", &self.premise, MAX_PREMISE_CHARS)?;
        check_length("outline", &self.outline, MAX_OUTLINE_CHARS)?;
        check_chapter_count(self.chapter_count)?;
        check_prompt_fields(
            Some(&self.author),
            Some(&self.language),
            Some(&self.pov),
            Some(&self.tense),
            Some(&self.style),
            Some(self.target_words),
        )
    }
}

impl StoryPatch {
    pub fn validate(&self) -> Result<()> {
        if let Some(title) = &self.title {
            check_title(title)?;
        }
        if let Some(premise) = &self.premise {
            check_length("premise", premise, MAX_PREMISE_CHARS)?;
        }
        if let Some(outline) = &self.outline {
            check_length("outline", outline, MAX_OUTLINE_CHARS)?;
        }
        check_chapter_count(self.chapter_count.flatten())?;
        check_prompt_fields(
            self.author.as_deref(),
            self.language.as_deref(),
            self.pov.as_deref(),
            self.tense.as_deref(),
            self.style.as_deref(),
            self.target_words,
        )
    }

    /// Applies the patch to `story`; the text fields are stored trimmed.
    fn apply(&self, story: &mut Story) {
        let trimmed = |patched: &Option<String>, field: &mut String| {
            if let Some(text) = patched {
                *field = text.trim().to_string();
            }
        };
        trimmed(&self.title, &mut story.title);
        if let Some(premise) = &self.premise {
            story.premise = premise.clone();
        }
        if let Some(outline) = &self.outline {
            story.outline = outline.clone();
        }
        if let Some(count) = self.chapter_count {
            story.chapter_count = count;
        }
        trimmed(&self.author, &mut story.author);
        trimmed(&self.language, &mut story.language);
        trimmed(&self.pov, &mut story.pov);
        trimmed(&self.tense, &mut story.tense);
        trimmed(&self.style, &mut story.style);
        if let Some(target) = self.target_words {
            story.target_words = target;
        }
    }
}

pub(super) fn insert_story(conn: &Connection, story: &Story) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO stories (id, title, premise, outline, chapter_count, created_at, updated_at,
                              author, language, pov, tense, style, target_words)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        story.id,
        story.title,
        story.premise,
        story.outline,
        story.chapter_count,
        story.created_at,
        story.updated_at,
        story.author,
        story.language,
        story.pov,
        story.tense,
        story.style,
        story.target_words
    ])?;
    Ok(())
}

/// A story that is not in the trash: for the writer, a story in the trash
/// does not exist (its runs are still not orphans: the row is there).
pub(super) fn get_story(conn: &Connection, id: &StoryId) -> Result<Option<Story>> {
    let sql = format!("SELECT {STORY_COLUMNS} FROM stories WHERE id = ?1 AND deleted_at IS NULL");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], Story::from_row)
        .optional()?)
}

pub(super) fn story_exists(conn: &Connection, id: &StoryId) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM stories WHERE id = ?1 AND deleted_at IS NULL")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

impl Store {
    pub fn create_story(&self, new: &NewStory) -> Result<Story> {
        new.validate()?;
        let story = new.to_story(self.now());
        self.write_one(|conn| insert_story(conn, &story))?;
        Ok(story)
    }

    pub fn story(&self, id: &StoryId) -> Result<Story> {
        get_story(&*self.conn()?, id)?.ok_or_else(|| Error::StoryNotFound(id.clone()))
    }

    pub fn find_story(&self, id: &StoryId) -> Result<Option<Story>> {
        get_story(&*self.conn()?, id)
    }

    /// Newest first. Stories created in the same millisecond are ordered by
    /// rowid (insertion order), not by their random ids.
    pub fn list_stories(&self, limit: u32, offset: u32) -> Result<Vec<Story>> {
        let sql = format!(
            "SELECT {STORY_COLUMNS} FROM stories WHERE deleted_at IS NULL
             ORDER BY created_at DESC, rowid DESC LIMIT ?1 OFFSET ?2"
        );
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![limit, offset], Story::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn update_story(&self, id: &StoryId, patch: &StoryPatch) -> Result<Story> {
        patch.validate()?;
        self.write(|tx| {
            let mut story = get_story(tx, id)?.ok_or_else(|| Error::StoryNotFound(id.clone()))?;
            patch.apply(&mut story);
            story.updated_at = self.now();
            tx.prepare_cached(
                "UPDATE stories SET title = ?2, premise = ?3, outline = ?4, chapter_count = ?5, updated_at = ?6,
                     author = ?7, language = ?8, pov = ?9, tense = ?10, style = ?11, target_words = ?12
                 WHERE id = ?1",
            )?
            .execute(params![
                story.id,
                story.title,
                story.premise,
                story.outline,
                story.chapter_count,
                story.updated_at,
                story.author,
                story.language,
                story.pov,
                story.tense,
                story.style,
                story.target_words
            ])?;
            Ok(story)
        })
    }

    /// Stores an outline written by the generator, unless the writer has
    /// given one meanwhile.
    pub fn set_generated_outline(&self, id: &StoryId, outline: &str) -> Result<bool> {
        let changed = self.write_one(|conn| {
            Ok(conn
                .prepare_cached("UPDATE stories SET outline = ?2, updated_at = ?3 WHERE id = ?1 AND outline = ''")?
                .execute(params![id, outline, self.now()])?)
        })?;
        Ok(changed == 1)
    }

    pub fn chapters(&self, story: &StoryId) -> Result<Vec<Chapter>> {
        let conn = self.conn()?;
        let sql =
            format!("SELECT {CHAPTER_COLUMNS} FROM chapters WHERE story_id = ?1 ORDER BY number");
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([story], Chapter::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One chapter; `VALIDATION_FAILED` naming `number` when it is not written.
    pub fn chapter(&self, story: &StoryId, number: u32) -> Result<Chapter> {
        let conn = self.conn()?;
        if !story_exists(&conn, story)? {
            return Err(Error::StoryNotFound(story.clone()));
        }
        let sql =
            format!("SELECT {CHAPTER_COLUMNS} FROM chapters WHERE story_id = ?1 AND number = ?2");
        conn.prepare_cached(&sql)?
            .query_row(params![story, number], Chapter::from_row)
            .optional()?
            .ok_or_else(|| chapter_not_written(story, number))
    }

    /// The writer's edit of a chapter: a new version `edited` when the text
    /// or title changes, and the lock set when asked. Its summary is cleared
    /// when the text changes: it described the old text, and the engine
    /// writes a new one before it is needed.
    pub fn update_chapter(
        &self,
        story: &StoryId,
        number: u32,
        edit: &ChapterEdit,
    ) -> Result<Chapter> {
        edit.validate()?;
        self.write(|tx| {
            if !story_exists(tx, story)? {
                return Err(Error::StoryNotFound(story.clone()));
            }
            let sql = format!(
                "SELECT {CHAPTER_COLUMNS} FROM chapters WHERE story_id = ?1 AND number = ?2"
            );
            let read = |tx: &Connection| -> Result<Chapter> {
                tx.prepare_cached(&sql)?
                    .query_row(params![story, number], Chapter::from_row)
                    .optional()?
                    .ok_or_else(|| chapter_not_written(story, number))
            };
            let mut chapter = read(tx)?;
            if let Some(locked) = edit.locked {
                tx.prepare_cached(
                    "UPDATE chapters SET locked = ?3 WHERE story_id = ?1 AND number = ?2",
                )?
                .execute(params![story, number, locked])?;
            }
            if edit.title.is_some() || edit.content.is_some() {
                let now = self.now();
                let title = edit
                    .title
                    .as_deref()
                    .map_or(chapter.title.as_str(), str::trim);
                let content = edit
                    .content
                    .as_deref()
                    .map_or(chapter.content.as_str(), str::trim);
                tx.prepare_cached(
                    "UPDATE chapters SET title = ?3, content = ?4, word_count = ?5,
                         summary = CASE WHEN ?6 THEN '' ELSE summary END, updated_at = ?7
                     WHERE story_id = ?1 AND number = ?2",
                )?
                .execute(params![
                    story,
                    number,
                    title,
                    content,
                    word_count(content),
                    edit.content.is_some(),
                    now
                ])?;
                add_version(
                    tx,
                    &self.stock_phrases,
                    &VersionRecord {
                        story,
                        number,
                        source: ChapterSource::Edited,
                        title,
                        content,
                        run_id: None,
                        at: &now,
                    },
                )?;
            }
            chapter = read(tx)?;
            Ok(chapter)
        })
    }

    /// Stores a summary the engine wrote for an existing chapter.
    pub fn set_chapter_summary(&self, story: &StoryId, number: u32, summary: &str) -> Result<()> {
        self.write_one(|conn| {
            conn.prepare_cached(
                "UPDATE chapters SET summary = ?3 WHERE story_id = ?1 AND number = ?2",
            )?
            .execute(params![story, number, summary])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
