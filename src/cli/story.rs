//! `story add|import|list|show|export|delete|restore`: stories as a whole.
//! `delete` moves a story to the trash (the sweeper of a serving storyflow
//! purges it after `--trash-days`); `restore` brings it back whole.

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::print_json;
use crate::app::App;
use crate::error::{Error, Result, exit};
use crate::import::{ImportRequest, import_manuscript};
use crate::store::Prices;
use crate::store::{NewStory, RunFilter, Story, StoryId, StoryPatch};

#[derive(Debug, Subcommand)]
pub enum StoryCommand {
    /// Create a story.
    Add(AddArgs),
    /// Create a story from a manuscript (Markdown or plain text), split into
    /// chapters at its chapter headings; a run then writes only the missing
    /// chapters.
    Import {
        /// The manuscript file.
        file: PathBuf,
        /// The title (default: the manuscript's `# Title` line).
        #[arg(long)]
        title: Option<String>,
        /// The book's planned chapter count (at least the last imported
        /// chapter's number).
        #[arg(long, value_name = "N")]
        chapter_count: Option<u32>,
        /// Print `{story, chapters_imported}` as JSON instead of the id.
        #[arg(long)]
        json: bool,
    },
    /// List stories, newest first.
    List {
        /// At most this many stories.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one story with its chapter count and runs.
    Show {
        /// The story's id.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the story as Markdown.
    Export {
        /// The story's id.
        id: String,
        /// The output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Markdown)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Change a story's title, premise, outline or chapter count; prints the
    /// outline's warnings, as `add` does.
    Edit(EditArgs),
    /// Move a story to the trash (its active runs are cancelled).
    Delete {
        /// The story's id.
        id: String,
    },
    /// Bring a story back from the trash, with its chapters and runs.
    Restore {
        /// The story's id.
        id: String,
    },
}

/// `story add`'s arguments.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The story's title.
    pub title: String,
    /// What the story is about, for every prompt.
    #[arg(long, default_value = "")]
    pub premise: String,
    /// The outline text.
    #[arg(long, conflicts_with = "outline_file")]
    pub outline: Option<String>,
    /// Read the outline from a file.
    #[arg(long, value_name = "PATH")]
    pub outline_file: Option<PathBuf>,
    /// Explicit chapter count.
    #[arg(long)]
    pub chapters: Option<u32>,
    #[command(flatten)]
    pub fields: StoryFields,
    /// Print the story as JSON instead of its id.
    #[arg(long)]
    pub json: bool,
}

/// `story edit`'s arguments.
#[derive(Debug, clap::Args)]
pub struct EditArgs {
    /// The story's id (or its first six characters or more).
    pub id: String,
    /// A new title.
    #[arg(long)]
    pub title: Option<String>,
    /// A new premise.
    #[arg(long)]
    pub premise: Option<String>,
    /// A new outline.
    #[arg(long, conflicts_with = "outline_file")]
    pub outline: Option<String>,
    /// Read the new outline from a file.
    #[arg(long, value_name = "PATH")]
    pub outline_file: Option<PathBuf>,
    /// A new explicit chapter count.
    #[arg(long, conflicts_with = "derive_chapters")]
    pub chapters: Option<u32>,
    /// Drop the explicit chapter count: count the outline's chapters.
    #[arg(long)]
    pub derive_chapters: bool,
    #[command(flatten)]
    pub fields: StoryFields,
    /// Print the story as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The fields that shape every prompt, for `story add` and `story edit`.
#[derive(Debug, Default, clap::Args)]
pub struct StoryFields {
    /// The author's name (EPUB `dc:creator`).
    #[arg(long)]
    pub author: Option<String>,
    /// The language the story is written in [add's default: English].
    #[arg(long)]
    pub language: Option<String>,
    /// Point of view, e.g. "first person" or "close third person".
    #[arg(long)]
    pub pov: Option<String>,
    /// Tense, e.g. "past".
    #[arg(long)]
    pub tense: Option<String>,
    /// Free notes on tone and voice.
    #[arg(long)]
    pub style: Option<String>,
    /// Words each chapter aims at [add's default: 1500].
    #[arg(long, value_name = "N")]
    pub target_words: Option<u32>,
}

impl StoryFields {
    /// `base` with the fields given on the command line; the others keep
    /// the contract's defaults.
    fn new_story(self, base: NewStory) -> NewStory {
        NewStory {
            author: self.author.unwrap_or(base.author),
            language: self.language.unwrap_or(base.language),
            pov: self.pov.unwrap_or(base.pov),
            tense: self.tense.unwrap_or(base.tense),
            style: self.style.unwrap_or(base.style),
            target_words: self.target_words.unwrap_or(base.target_words),
            ..base
        }
    }

    /// `base` changing the fields given on the command line, and no other.
    fn patch(self, base: StoryPatch) -> StoryPatch {
        StoryPatch {
            author: self.author,
            language: self.language,
            pov: self.pov,
            tense: self.tense,
            style: self.style,
            target_words: self.target_words,
            ..base
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Markdown,
    Epub,
}

pub(super) fn story(app: &App, command: StoryCommand) -> Result<u8> {
    match command {
        StoryCommand::Add(args) => add_command(app, args)?,
        StoryCommand::Import {
            file,
            title,
            chapter_count,
            json,
        } => {
            let request = ImportRequest {
                title,
                markdown: read_file(&file, "FILE")?,
                chapter_count,
                ..Default::default()
            };
            import(app, request, json)?;
        }
        StoryCommand::List { limit, json } => list(app, limit, json)?,
        StoryCommand::Edit(args) => edit_command(app, args)?,
        StoryCommand::Delete { id } => {
            let id = super::story_id(app, &id)?;
            let cancelled = app.store.trash_story(&id)?;
            println!(
                "story {id} moved to the trash ({cancelled} active runs cancelled); bring it back with `storyflow story restore {id}`"
            );
        }
        StoryCommand::Restore { id } => {
            let story = app.store.restore_story(&super::story_id(app, &id)?)?;
            println!(
                "story {} restored from the trash: {}",
                story.id, story.title
            );
        }
        StoryCommand::Show { id, json } => show(app, &super::story_id(app, &id)?, json)?,
        StoryCommand::Export { id, format, output } => {
            let story = app.store.story(&super::story_id(app, &id)?)?;
            let chapters = app.store.chapters(&story.id)?;
            let bytes = match format {
                ExportFormat::Markdown => crate::export::markdown(&story, &chapters).into_bytes(),
                ExportFormat::Epub => crate::export::epub(&story, &chapters)?,
            };
            write_output(output.as_deref(), &bytes, format == ExportFormat::Epub)?;
        }
    }
    Ok(exit::OK)
}

fn add_command(app: &App, args: AddArgs) -> Result<()> {
    let AddArgs {
        title,
        premise,
        outline,
        outline_file,
        chapters,
        fields,
        json,
    } = args;
    let outline = match (outline, outline_file) {
        (Some(text), _) => text,
        (None, Some(path)) => read_file(&path, "--outline-file")?,
        (None, None) => String::new(),
    };
    let new = fields.new_story(NewStory {
        title,
        premise,
        outline,
        chapter_count: chapters,
        ..NewStory::default()
    });
    add(app, &new, json)
}

fn edit_command(app: &App, args: EditArgs) -> Result<()> {
    let EditArgs {
        id,
        title,
        premise,
        outline,
        outline_file,
        chapters,
        derive_chapters,
        fields,
        json,
    } = args;
    let outline = match (outline, outline_file) {
        (Some(text), _) => Some(text),
        (None, Some(path)) => Some(read_file(&path, "--outline-file")?),
        (None, None) => None,
    };
    let patch = fields.patch(StoryPatch {
        title,
        premise,
        outline,
        chapter_count: if derive_chapters {
            Some(None)
        } else {
            chapters.map(Some)
        },
        ..StoryPatch::default()
    });
    let id = super::story_id(app, &id)?;
    let story = app.store.update_story(&id, &patch)?;
    app.counts.invalidate(&id);
    report_saved(app, &story, json);
    Ok(())
}

/// Reads a text file named by `flag`; a failure is the flag's fault.
pub(super) fn read_file(path: &Path, flag: &'static str) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::validation(flag, format!("cannot read {}: {e}", path.display())))
}

fn add(app: &App, new: &NewStory, json: bool) -> Result<()> {
    let story = app.store.create_story(new)?;
    report_saved(app, &story, json);
    Ok(())
}

/// A story just saved: its id (or JSON) and the outline's warnings, so a
/// writer hears at once about an outline storyflow cannot read.
fn report_saved(app: &App, story: &Story, json: bool) {
    let count = app.counts.for_story(story);
    let warnings = crate::progress::check_outline(&story.outline, story.chapter_count);
    if json {
        print_json(&json!({
            "story": story, "chapter_count": count.count,
            "chapter_count_source": count.source, "warnings": warnings,
        }));
    } else {
        println!("{}", story.id);
        for warning in warnings {
            eprintln!("warning: outline {warning}");
        }
    }
}

fn import(app: &App, request: ImportRequest, json: bool) -> Result<()> {
    let imported = import_manuscript(&app.store, request)?;
    if json {
        print_json(&imported);
    } else {
        println!("{}", imported.story.id);
        eprintln!(
            "imported {} chapters into \"{}\"",
            imported.chapters_imported, imported.story.title
        );
    }
    Ok(())
}

fn list(app: &App, limit: u32, json: bool) -> Result<()> {
    let stories = app.store.list_stories(limit.clamp(1, 10_000), 0)?;
    if json {
        print_json(&stories);
        return Ok(());
    }
    if stories.is_empty() {
        eprintln!("no stories yet; add one with `storyflow story add \"TITLE\"`");
        return Ok(());
    }
    // Ids by their first 8 characters: every command takes such a prefix.
    println!(
        "{:<8}  {:>8}  {:<8}  {:<24}  TITLE",
        "ID", "CHAPTERS", "FROM", "UPDATED"
    );
    for story in stories {
        let count = app.counts.for_story(&story);
        println!(
            "{:<8}  {:>8}  {:<8}  {:<24}  {}",
            &story.id.as_str()[..8.min(story.id.as_str().len())],
            count.count,
            count.source.as_str(),
            story.updated_at,
            story.title
        );
    }
    Ok(())
}

fn show(app: &App, id: &StoryId, json: bool) -> Result<()> {
    let story = app.store.story(id)?;
    let count = app.counts.for_story(&story);
    let chapters = app.store.chapters(&story.id)?;
    let runs = app.store.list_runs(&RunFilter {
        story_id: Some(story.id.clone()),
        limit: 20,
        ..Default::default()
    })?;
    if json {
        print_json(&json!({
            "story": story, "chapter_count": count.count, "chapter_count_source": count.source,
            "chapters_saved": chapters.len(), "runs": runs.iter().map(|r| r.to_json(&Prices::default())).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    println!(
        "{}\n  id: {}\n  chapters: {} saved of {} ({})",
        story.title,
        story.id,
        chapters.len(),
        count.count,
        count.source.as_str()
    );
    if !story.premise.is_empty() {
        println!("  premise: {}", story.premise);
    }
    for run in runs {
        println!(
            "  run {} {} {}% ({}/{})",
            run.id,
            run.status,
            run.progress(),
            run.chapters_done,
            run.chapters_total
        );
    }
    Ok(())
}

/// Writes an export to a file, or to standard output (binary output only
/// when it is not a terminal).
fn write_output(path: Option<&Path>, bytes: &[u8], binary: bool) -> Result<()> {
    use std::io::{IsTerminal, Write};
    match path {
        Some(path) => std::fs::write(path, bytes).map_err(|e| {
            Error::validation("--output", format!("cannot write {}: {e}", path.display()))
        }),
        None if binary && std::io::stdout().is_terminal() => Err(Error::validation(
            "--output",
            "an EPUB is binary; write it to a file with --output book.epub (or redirect standard output)",
        )),
        None => std::io::stdout()
            .write_all(bytes)
            .map_err(|e| Error::Internal(format!("cannot write to standard output: {e}"))),
    }
}
