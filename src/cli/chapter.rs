//! `chapter show|edit|history|restore|lock|unlock|regenerate`: one chapter
//! of a story and its history. Every change here adds a version (see
//! `store::versions`), so nothing the writer wrote is lost; `regenerate`
//! still asks first on a terminal, because a run replaces the current text.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::print_json;
use super::story::read_file;
use crate::app::App;
use crate::error::{Error, Result, exit};
use crate::store::{ChapterEdit, RunScope, StoryId};

#[derive(Debug, Subcommand)]
pub enum ChapterCommand {
    /// Print one chapter.
    Show {
        /// The story's id.
        story_id: String,
        /// The chapter's number.
        number: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Replace a chapter's text (and/or title) with your own.
    Edit {
        /// The story's id.
        story_id: String,
        /// The chapter's number.
        number: u32,
        /// The new text, from a file (`-` for standard input).
        #[arg(long, value_name = "PATH", conflicts_with = "text")]
        file: Option<PathBuf>,
        /// The new text.
        #[arg(long)]
        text: Option<String>,
        /// A new title.
        #[arg(long)]
        title: Option<String>,
    },
    /// List a chapter's versions, newest first: version, source, words, when.
    History {
        /// The story's id.
        story_id: String,
        /// The chapter's number.
        number: u32,
        /// Print `{"versions": [...]}` as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make an earlier version the chapter's text again (as a new version).
    Restore {
        /// The story's id.
        story_id: String,
        /// The chapter's number.
        number: u32,
        /// The version to bring back (see `chapter history`).
        // Its own id: `version` is taken by the propagated `--version` flag.
        #[arg(id = "restore_version", value_name = "VERSION")]
        version: u32,
    },
    /// Lock a chapter: no run and no regenerate request changes it.
    Lock {
        /// The story's id.
        story_id: String,
        /// The chapter's number.
        number: u32,
    },
    /// Unlock a locked chapter.
    Unlock {
        /// The story's id.
        story_id: String,
        /// The chapter's number.
        number: u32,
    },
    /// Queue a run that rewrites this one chapter (and its summary) only.
    /// Asks first on a terminal; elsewhere it needs --yes.
    Regenerate {
        /// The story's id.
        story_id: String,
        /// The chapter's number.
        number: u32,
        /// Do not ask for confirmation (needed when not on a terminal).
        #[arg(long, short)]
        yes: bool,
    },
}

pub(super) fn chapter_command(app: &App, command: ChapterCommand) -> Result<u8> {
    match command {
        ChapterCommand::Show {
            story_id,
            number,
            json,
        } => show(app, &super::story_id(app, &story_id)?, number, json)?,
        ChapterCommand::Edit {
            story_id,
            number,
            file,
            text,
            title,
        } => {
            let content = match (file, text) {
                (Some(path), _) if path.as_os_str() == "-" => Some(read_stdin()?),
                (Some(path), _) => Some(read_file(&path, "--file")?),
                (None, text) => text,
            };
            let edit = ChapterEdit {
                title,
                content,
                locked: None,
            };
            let chapter =
                app.store
                    .update_chapter(&super::story_id(app, &story_id)?, number, &edit)?;
            println!(
                "chapter {} of story {story_id} saved ({} words)",
                chapter.number, chapter.word_count
            );
        }
        ChapterCommand::History {
            story_id,
            number,
            json,
        } => history(app, &super::story_id(app, &story_id)?, number, json)?,
        ChapterCommand::Restore {
            story_id,
            number,
            version,
        } => restore(app, &super::story_id(app, &story_id)?, number, version)?,
        ChapterCommand::Lock { story_id, number } => {
            set_locked(app, &super::story_id(app, &story_id)?, number, true)?
        }
        ChapterCommand::Unlock { story_id, number } => {
            set_locked(app, &super::story_id(app, &story_id)?, number, false)?
        }
        ChapterCommand::Regenerate {
            story_id,
            number,
            yes,
        } => return regenerate(app, &super::story_id(app, &story_id)?, number, yes),
    }
    Ok(exit::OK)
}

fn show(app: &App, story: &StoryId, number: u32, json: bool) -> Result<()> {
    let chapter = app.store.chapter(story, number)?;
    if json {
        print_json(&chapter);
    } else {
        println!(
            "## Chapter {}: {}\n\n{}",
            chapter.number, chapter.title, chapter.content
        );
    }
    Ok(())
}

fn history(app: &App, story: &StoryId, number: u32, json: bool) -> Result<()> {
    let versions = app.store.chapter_versions(story, number)?;
    if json {
        print_json(&json!({ "versions": versions }));
        return Ok(());
    }
    println!("{:>7}  {:<11}  {:>6}  when", "version", "source", "words");
    for v in versions {
        println!(
            "{:>7}  {:<11}  {:>6}  {}",
            v.version,
            v.source.as_str(),
            v.word_count,
            v.created_at
        );
    }
    Ok(())
}

fn restore(app: &App, story: &StoryId, number: u32, version: u32) -> Result<()> {
    let chapter = app.store.restore_version(story, number, version)?;
    let newest = app
        .store
        .chapter_versions(story, number)?
        .first()
        .map_or(0, |v| v.version);
    println!(
        "chapter {number} of story {story} restored to version {version}, saved as version {newest} ({} words)",
        chapter.word_count
    );
    Ok(())
}

fn set_locked(app: &App, story: &StoryId, number: u32, locked: bool) -> Result<()> {
    app.store.set_chapter_locked(story, number, locked)?;
    if locked {
        println!("chapter {number} of story {story} locked: runs and regenerate leave it alone");
    } else {
        println!("chapter {number} of story {story} unlocked");
    }
    Ok(())
}

/// Queues the rewrite after a yes: asked on a terminal, `--yes` elsewhere
/// (a script that means it says so; one that does not is refused, exit 2).
/// Declining at the prompt is not an error: nothing changes, exit 0.
fn regenerate(app: &App, story: &StoryId, number: u32, yes: bool) -> Result<u8> {
    // The chapter must exist before anyone is asked about it.
    let chapter = app.store.chapter(story, number)?;
    if !yes && !confirm(&chapter.title, number)? {
        println!("chapter {number} left as it is");
        return Ok(exit::OK);
    }
    let run = app.start_run(story, RunScope::Rewrite(number))?;
    println!("{}", run.id);
    Ok(exit::OK)
}

fn confirm(title: &str, number: u32) -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(Error::validation(
            "--yes",
            format!(
                "chapter regenerate replaces chapter {number}'s text and cannot ask here (not a terminal); pass --yes to confirm"
            ),
        ));
    }
    eprint!("Rewrite chapter {number} ({title})? The current text stays in its history. [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::Internal(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

fn read_stdin() -> Result<String> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
        .map_err(|e| Error::validation("--file", format!("cannot read standard input: {e}")))?;
    Ok(text)
}
