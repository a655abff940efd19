//! `bible list|add|edit|remove`: a story's bible from the command line (the
//! rules live in `store::bible`). Story and entry ids take a unique prefix of
//! six characters or more, as everywhere; an entry prefix is looked for in
//! the story's bible only.

use clap::Subcommand;

use super::print_json;
use crate::app::App;
use crate::error::{Result, exit};
use crate::store::{BibleEntry, BibleEntryId, BibleKind, BiblePatch, NewBibleEntry, StoryId};

#[derive(Debug, Subcommand)]
pub enum BibleCommand {
    /// List a story's bible as a table: id, kind, pinned, name, aliases.
    List {
        /// The story's id (or its first six characters or more).
        story_id: String,
        /// Print `{"entries": [...]}` as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add an entry; prints its id.
    Add {
        /// The story's id (or its first six characters or more).
        story_id: String,
        /// The entry's name, as the story writes it.
        name: String,
        /// What the entry is: character, place, object, fact or thread.
        #[arg(long, value_parser = parse_kind, default_value = "character")]
        kind: BibleKind,
        /// Another name the entry goes by (repeat for several).
        #[arg(long = "alias", value_name = "NAME")]
        aliases: Vec<String>,
        /// What every chapter should know about it.
        #[arg(long, default_value = "")]
        description: String,
        /// Put the entry in every chapter's prompt, mentioned or not.
        #[arg(long)]
        pinned: bool,
        /// Print the entry as JSON instead of its id.
        #[arg(long)]
        json: bool,
    },
    /// Change an entry; only the options given change.
    Edit {
        /// The story's id (or its first six characters or more).
        story_id: String,
        /// The entry's id (or its first six characters or more).
        entry_id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new kind: character, place, object, fact or thread.
        #[arg(long, value_parser = parse_kind)]
        kind: Option<BibleKind>,
        /// Replace the aliases with these (repeat for several).
        #[arg(long = "alias", value_name = "NAME", conflicts_with = "no_aliases")]
        aliases: Vec<String>,
        /// Remove every alias.
        #[arg(long)]
        no_aliases: bool,
        /// A new description.
        #[arg(long)]
        description: Option<String>,
        /// Pin the entry: it goes into every chapter's prompt.
        #[arg(long, conflicts_with = "unpin")]
        pin: bool,
        /// Unpin the entry: it goes in only when mentioned.
        #[arg(long)]
        unpin: bool,
        /// Print the entry as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an entry for good.
    Remove {
        /// The story's id (or its first six characters or more).
        story_id: String,
        /// The entry's id (or its first six characters or more).
        entry_id: String,
    },
}

fn parse_kind(text: &str) -> std::result::Result<BibleKind, String> {
    BibleKind::parse(text).ok_or_else(|| {
        let known: Vec<&str> = BibleKind::ALL.iter().map(|kind| kind.as_str()).collect();
        format!("`{text}` is not a kind; kinds are {}", known.join(", "))
    })
}

pub(super) fn bible_command(app: &App, command: BibleCommand) -> Result<u8> {
    match command {
        BibleCommand::List { story_id, json } => {
            let story = super::story_id(app, &story_id)?;
            let entries = app.store.bible(&story)?;
            if json {
                print_json(&serde_json::json!({ "entries": entries }));
            } else {
                print_table(&story, &entries);
            }
        }
        BibleCommand::Add {
            story_id,
            name,
            kind,
            aliases,
            description,
            pinned,
            json,
        } => {
            let story = super::story_id(app, &story_id)?;
            let new = NewBibleEntry {
                kind,
                name,
                aliases,
                description,
                pinned,
            };
            let entry = app.store.add_bible_entry(&story, &new)?;
            report(&entry, json);
        }
        BibleCommand::Edit {
            story_id,
            entry_id,
            name,
            kind,
            aliases,
            no_aliases,
            description,
            pin,
            unpin,
            json,
        } => {
            let story = super::story_id(app, &story_id)?;
            let entry = entry_id_of(app, &story, &entry_id)?;
            let patch = BiblePatch {
                kind,
                name,
                aliases: (no_aliases || !aliases.is_empty()).then_some(aliases),
                description,
                pinned: (pin || unpin).then_some(pin),
            };
            let entry = app.store.update_bible_entry(&story, &entry, &patch)?;
            report(&entry, json);
        }
        BibleCommand::Remove { story_id, entry_id } => {
            let story = super::story_id(app, &story_id)?;
            let entry = entry_id_of(app, &story, &entry_id)?;
            let name = app.store.bible_entry(&story, &entry)?.name;
            app.store.delete_bible_entry(&story, &entry)?;
            println!("bible entry {entry} ({name}) removed");
        }
    }
    Ok(exit::OK)
}

/// An entry id as given: a whole id, or a unique prefix of the story's
/// entry ids.
fn entry_id_of(app: &App, story: &StoryId, text: &str) -> Result<BibleEntryId> {
    if let Ok(id) = BibleEntryId::parse(text) {
        return Ok(id);
    }
    let prefix = super::id_prefix("bible entry", text)?;
    super::unique(
        "bible entry",
        text,
        app.store.bible_ids_with_prefix(story, &prefix, 11)?,
    )
}

fn report(entry: &BibleEntry, json: bool) {
    if json {
        print_json(entry);
    } else {
        println!("{}", entry.id);
    }
}

/// The bible as an aligned table; ids by their first 8 characters, which
/// every command takes as a prefix.
fn print_table(story: &StoryId, entries: &[BibleEntry]) {
    if entries.is_empty() {
        eprintln!(
            "story {story} has no bible yet; add an entry with `storyflow bible add {} \"NAME\" --kind character`",
            short(story.as_str())
        );
        return;
    }
    let width = |texts: &mut dyn Iterator<Item = usize>, header: &str| {
        texts.max().unwrap_or(0).max(header.chars().count())
    };
    let kind_width = width(
        &mut entries.iter().map(|e| e.kind.as_str().chars().count()),
        "KIND",
    );
    let name_width = width(&mut entries.iter().map(|e| e.name.chars().count()), "NAME");
    println!(
        "{:<8}  {:<kind_width$}  {:<6}  {:<name_width$}  ALIASES",
        "ID", "KIND", "PINNED", "NAME"
    );
    for entry in entries {
        let line = format!(
            "{:<8}  {:<kind_width$}  {:<6}  {:<name_width$}  {}",
            short(entry.id.as_str()),
            entry.kind.as_str(),
            if entry.pinned { "yes" } else { "no" },
            entry.name,
            entry.aliases.join(", ")
        );
        println!("{}", line.trim_end());
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}
