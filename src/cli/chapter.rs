//! `chapter show|edit|regenerate`: one chapter of a story.

use std::path::PathBuf;

use clap::Subcommand;

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
    /// Queue a run that rewrites this one chapter (and its summary) only.
    Regenerate {
        /// The story's id.
        story_id: String,
        /// The chapter's number.
        number: u32,
    },
}

pub(super) fn chapter_command(app: &App, command: ChapterCommand) -> Result<u8> {
    match command {
        ChapterCommand::Show {
            story_id,
            number,
            json,
        } => {
            let chapter = app.store.chapter(&StoryId::parse(&story_id)?, number)?;
            if json {
                print_json(&chapter);
            } else {
                println!(
                    "## Chapter {}: {}\n\n{}",
                    chapter.number, chapter.title, chapter.content
                );
            }
        }
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
            let chapter = app
                .store
                .update_chapter(&StoryId::parse(&story_id)?, number, &edit)?;
            println!(
                "chapter {} of story {story_id} saved ({} words)",
                chapter.number, chapter.word_count
            );
        }
        ChapterCommand::Regenerate { story_id, number } => {
            let run = app.start_run(&StoryId::parse(&story_id)?, RunScope::Rewrite(number))?;
            println!("{}", run.id);
        }
    }
    Ok(exit::OK)
}

fn read_stdin() -> Result<String> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
        .map_err(|e| Error::validation("--file", format!("cannot read standard input: {e}")))?;
    Ok(text)
}
