//! The prompts sent to language-model backends (`openai`, `command`).
//!
//! Each prompt carries the title, the premise, the outline and the story so
//! far (the gist of each earlier chapter), so that every chapter is written
//! knowing what came before.

use super::{ChapterRequest, StoryContext};

/// A system instruction and the user's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub system: String,
    pub user: String,
}

impl Prompt {
    /// Both parts as one text, for backends that take a single input.
    pub fn as_text(&self) -> String {
        format!("{}\n\n{}", self.system, self.user)
    }
}

const SYSTEM: &str = "You are a novelist. Write vivid, coherent prose in English. \
Answer with the requested text only: no preamble, no notes, no Markdown fences.";

fn story_block(story: &StoryContext) -> String {
    let mut block = format!("Title: {}\n", story.title.trim());
    if !story.premise.trim().is_empty() {
        block.push_str(&format!("Premise: {}\n", story.premise.trim()));
    }
    if !story.outline.trim().is_empty() {
        block.push_str(&format!("\nOutline:\n{}\n", story.outline.trim()));
    }
    block
}

pub fn outline(story: &StoryContext, chapters: u32) -> Prompt {
    Prompt {
        system: SYSTEM.into(),
        user: format!(
            "{}\nWrite an outline of exactly {chapters} chapters for this story. \
             Start each chapter with a line `## Chapter N: Title`, followed by two or three sentences of what happens.",
            story_block(story)
        ),
    }
}

pub fn chapter(story: &StoryContext, chapter: &ChapterRequest) -> Prompt {
    let mut user = story_block(story);
    if story.previous.is_empty() {
        user.push_str("\nThis is the first chapter.\n");
    } else {
        user.push_str("\nThe story so far:\n");
        for previous in &story.previous {
            user.push_str(&format!(
                "- Chapter {} ({}): {}\n",
                previous.number, previous.title, previous.gist
            ));
        }
    }
    user.push_str(&format!(
        "\nWrite chapter {} of {}, titled \"{}\". Write the chapter text only, without its heading.",
        chapter.number, chapter.total, chapter.title
    ));
    Prompt {
        system: SYSTEM.into(),
        user,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::ChapterGist;
    use crate::store::StoryId;

    #[test]
    fn chapter_prompts_carry_the_story_so_far() {
        let story = StoryContext {
            story_id: StoryId::random(),
            title: "The Salt Road".into(),
            premise: "A courier crosses a drowned country.".into(),
            outline: "## Chapter 1: Low Tide\n## Chapter 2: High Water".into(),
            previous: vec![ChapterGist {
                number: 1,
                title: "Low Tide".into(),
                gist: "Mara sets out.".into(),
            }],
        };
        let prompt = chapter(
            &story,
            &ChapterRequest {
                number: 2,
                total: 2,
                title: "High Water".into(),
            },
        );
        for needle in [
            "The Salt Road",
            "drowned country",
            "## Chapter 2: High Water",
            "Mara sets out.",
            "chapter 2 of 2",
        ] {
            assert!(
                prompt.user.contains(needle),
                "missing {needle}: {}",
                prompt.user
            );
        }
    }
}
