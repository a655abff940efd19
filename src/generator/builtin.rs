//! The offline generator: readable, deterministic prose with no network.
//!
//! Everything is drawn from a random generator seeded by the story id and
//! the chapter number, so the same story always reads the same, and two
//! chapters never read alike. The premise and the chapter title are woven
//! into the text; names and places are picked per story. Chapters are
//! composed in `prose` to about the story's `target_words`, with no sentence
//! written twice, so they pass the default quality thresholds
//! ([`crate::quality::Thresholds`]), which a test below checks.

use std::time::Duration;

use super::{ChapterRequest, GenError, Generator, RawCompletion, StoryContext, Task, TaskKind};
use crate::store::BibleKind;

mod prose;

pub struct Builtin {
    /// Slept per chapter (demos and tests that need a run to take time).
    pub delay: Duration,
}

const NAMES: &[&str] = &[
    "Mara", "Ilya", "Tomas", "Wren", "Odile", "Kasimir", "Nell", "Ansel", "Priya", "Jonah",
    "Sabine", "Teodor",
];
const PLACES: &[&str] = &[
    "the harbour town",
    "the old observatory",
    "the salt marshes",
    "the northern pass",
    "the lamplit archive",
    "the orchard at the edge of the city",
    "the flooded quarter",
    "the border inn",
];
const WEATHER: &[&str] = &[
    "A thin wind came off the water",
    "The air smelled of iron and wet stone",
    "Snow had begun to settle on the roofs",
    "The heat pressed down like a hand",
    "Fog erased everything beyond the nearest wall",
];
const ACTIONS: &[&str] = &[
    "counted the coins twice and still came up short",
    "traced the map with a finger until the ink smudged",
    "listened at the door longer than was polite",
    "wrote a letter and burned it",
    "walked the long way round on purpose",
    "asked the question nobody else would ask",
];

/// FNV-1a: a stable seed from text (std's hasher may change between releases).
fn seed(text: &str, salt: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ salt.wrapping_mul(0x100_0000_01b3);
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x100_0000_01b3);
    }
    hash
}

fn pick<'a>(rng: &mut fastrand::Rng, items: &[&'a str]) -> &'a str {
    items[rng.usize(..items.len())]
}

/// The premise as a clause: trimmed, first letter lowercased, no final stop.
fn premise_clause(premise: &str) -> String {
    let premise = premise.trim().trim_end_matches(['.', '!', '?']);
    let mut chars = premise.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "a question nobody could yet answer".into(),
    }
}

impl Builtin {
    /// The hero, the friend and the place: the story bible's first
    /// characters and place (pinned ones first) when it has them, else
    /// names drawn from the story id.
    fn cast(story: &StoryContext) -> (String, String, String) {
        let named = |kind: BibleKind| -> Vec<String> {
            let mut entries: Vec<_> = story.bible.iter().filter(|e| e.kind == kind).collect();
            entries.sort_by_key(|e| !e.pinned);
            entries.iter().map(|e| e.name.trim().to_string()).collect()
        };
        let mut characters = named(BibleKind::Character).into_iter();
        let mut rng = fastrand::Rng::with_seed(seed(story.story_id.as_str(), 0));
        let drawn = pick(&mut rng, NAMES).to_string();
        let hero = characters.next().unwrap_or(drawn);
        let friend = characters.next().unwrap_or_else(|| {
            let mut friend = pick(&mut rng, NAMES).to_string();
            while friend == hero {
                friend = pick(&mut rng, NAMES).to_string();
            }
            friend
        });
        let drawn_place = pick(&mut rng, PLACES).to_string();
        let place = named(BibleKind::Place)
            .into_iter()
            .next()
            .unwrap_or(drawn_place);
        (hero, friend, place)
    }
}

impl Generator for Builtin {
    fn name(&self) -> &'static str {
        "builtin"
    }

    fn reads_prompts(&self) -> bool {
        false
    }

    fn generate(&self, task: &Task<'_>) -> Result<RawCompletion, GenError> {
        let text = match task.kind {
            TaskKind::Outline { chapters } => self.outline(task.story, chapters),
            TaskKind::Chapter(chapter) => {
                // The delay stands for a slow model, so it ends on cancel.
                if task.cancel.wait(self.delay) {
                    return Err(GenError::Cancelled);
                }
                self.chapter(task.story, chapter)
            }
            TaskKind::Continue { chapter, .. } => self.ending(task.story, chapter),
            TaskKind::Summary { chapter, text } => summary(chapter, text),
        };
        Ok(RawCompletion::text(text))
    }
}

impl Builtin {
    fn outline(&self, story: &StoryContext, chapters: u32) -> String {
        const BEATS: &[&str] = &[
            "An Unexpected Letter",
            "The Road Out",
            "Strangers at the Table",
            "What the River Kept",
            "The First Lie",
            "A Door Left Open",
            "Counting the Cost",
            "The Long Night",
            "Old Debts",
            "The Turning Tide",
            "Ashes and Salt",
            "The Last Crossing",
            "What Remains",
            "Homecoming",
        ];
        let mut rng = fastrand::Rng::with_seed(seed(story.story_id.as_str(), 1));
        let (hero, _, place) = Builtin::cast(story);
        let mut outline = format!("# {}\n\n", story.title.trim());
        for number in 1..=chapters {
            let beat = BEATS[(number as usize - 1 + rng.usize(..3)) % BEATS.len()];
            outline.push_str(&format!(
                "## Chapter {number}: {beat}\n{hero} {} near {place}.\n\n",
                pick(&mut rng, ACTIONS)
            ));
        }
        outline
    }

    fn chapter(&self, story: &StoryContext, chapter: &ChapterRequest) -> String {
        let mut rng = fastrand::Rng::with_seed(seed(
            story.story_id.as_str(),
            100 + u64::from(chapter.number),
        ));
        let (hero, friend, place) = Builtin::cast(story);
        let premise = premise_clause(&story.premise);
        let scene = prose::Scene {
            hero: &hero,
            friend: &friend,
            place: &place,
            premise: &premise,
            title: chapter.title.trim(),
            previous_title: story.previous.last().map(|gist| gist.title.as_str()),
            number: chapter.number,
            total: chapter.total,
        };
        prose::chapter(&mut rng, &scene, story.brief.target_words)
    }

    /// A closing paragraph for a chapter that was cut off.
    fn ending(&self, story: &StoryContext, chapter: &ChapterRequest) -> String {
        let mut rng = fastrand::Rng::with_seed(seed(
            story.story_id.as_str(),
            10_000 + u64::from(chapter.number),
        ));
        let (hero, friend, _) = Builtin::cast(story);
        format!(
            "{} {hero} and {friend} said little after that. {}",
            pick(&mut rng, WEATHER).to_string() + ".",
            pick(&mut rng, prose::TURNS)
        )
    }
}

/// The chapter's first and last sentences: enough to remind a reader.
fn summary(chapter: &ChapterRequest, text: &str) -> String {
    let sentences: Vec<&str> = text
        .split_inclusive(['.', '!', '?'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let first = sentences.first().copied().unwrap_or("");
    let last = sentences.last().copied().unwrap_or("");
    let clip = |s: &str| s.split_whitespace().take(40).collect::<Vec<_>>().join(" ");
    if first == last {
        format!("In \"{}\": {}", chapter.title.trim(), clip(first))
    } else {
        format!(
            "In \"{}\": {} In the end: {}",
            chapter.title.trim(),
            clip(first),
            clip(last)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoryId;

    fn story() -> StoryContext {
        StoryContext {
            story_id: StoryId::parse("3251c7d5-8f0e-4c52-9d7a-1b2c3d4e5f60").unwrap(),
            title: "The Salt Road".into(),
            premise: "A courier must cross a drowned country before the tide returns.".into(),
            outline: String::new(),
            previous: Vec::new(),
            previous_tail: String::new(),
            brief: Default::default(),
            bible: Vec::new(),
        }
    }

    #[test]
    fn the_bible_names_the_cast() {
        let entry = |name: &str, kind, pinned| crate::store::BibleEntry {
            id: crate::store::BibleEntryId::random(),
            story_id: StoryId::random(),
            kind,
            name: name.into(),
            aliases: Vec::new(),
            description: String::new(),
            pinned,
            created_at: crate::run::Timestamp::at(std::time::SystemTime::UNIX_EPOCH),
            updated_at: crate::run::Timestamp::at(std::time::SystemTime::UNIX_EPOCH),
        };
        let mut story = story();
        let drawn = Builtin::cast(&story);
        story.bible = vec![
            entry("Oren Vail", BibleKind::Character, false),
            entry("Greywater", BibleKind::Place, false),
            entry("Mara Okafor", BibleKind::Character, true),
        ];
        let (hero, friend, place) = Builtin::cast(&story);
        assert_eq!(
            (hero.as_str(), friend.as_str(), place.as_str()),
            ("Mara Okafor", "Oren Vail", "Greywater")
        );
        story.bible.truncate(1);
        let (hero, friend, place) = Builtin::cast(&story);
        assert_eq!(hero, "Oren Vail");
        assert_ne!(friend, hero);
        assert_eq!(place, drawn.2);
    }

    #[test]
    fn chapters_are_deterministic_readable_and_distinct() {
        let builtin = Builtin {
            delay: Duration::ZERO,
        };
        let ask = |n| ChapterRequest {
            number: n,
            total: 3,
            title: format!("Beat {n}"),
        };
        let one = builtin.chapter(&story(), &ask(1));
        assert_eq!(one, builtin.chapter(&story(), &ask(1)));
        assert_ne!(one, builtin.chapter(&story(), &ask(2)));
        assert!(one.split("\n\n").count() >= 4, "{one}");
        assert!(one.contains("a courier must cross a drowned country before the tide returns"));
        assert!(one.contains("beat 1"));
        assert!(crate::store::word_count(&one) > 120);
        let summary = summary(&ask(1), &one);
        assert!(
            summary.starts_with("In \"Beat 1\": At first light") || summary.contains("Beat 1"),
            "{summary}"
        );
        assert!(summary.len() < one.len() / 2);
    }

    #[test]
    fn builtin_chapters_pass_the_default_quality_thresholds() {
        use crate::generator::ChapterGist;
        use crate::quality::{Measure, StockPhrases, Thresholds, known_names};

        let builtin = Builtin {
            delay: Duration::ZERO,
        };
        let stock = StockPhrases::builtin().unwrap();
        let ids = [
            "3251c7d5-8f0e-4c52-9d7a-1b2c3d4e5f60",
            "00000000-0000-4000-8000-000000000001",
            "9f1c2b3a-4d5e-4f60-8a7b-6c5d4e3f2a10",
            "c0ffee00-1234-4abc-9def-0123456789ab",
            "7e57ab1e-0000-4111-8222-333344445555",
            "a1b2c3d4-e5f6-4789-8abc-def012345678",
        ];
        for (index, id) in ids.iter().enumerate() {
            let mut story = story();
            story.story_id = StoryId::parse(id).unwrap();
            story.premise = format!("A lighthouse keeper hears the sea {index} times.");
            story.outline = builtin.outline(&story, 6);
            let known = known_names(&[], &story.outline);
            for number in 1..=6 {
                let ask = ChapterRequest {
                    number,
                    total: 6,
                    title: format!("Beat {number}"),
                };
                let text = builtin.chapter(&story, &ask);
                let words = crate::store::word_count(&text);
                let quality = Measure {
                    target_words: story.brief.target_words,
                    known_names: &known,
                    stock_phrases: &stock,
                }
                .chapter(&text);
                let findings = Thresholds::default().findings(number, words, &quality);
                assert!(
                    findings.is_empty(),
                    "story {id} chapter {number}: {findings:?}\n{quality:?}\n{text}"
                );
                story.previous.push(ChapterGist {
                    number,
                    title: ask.title.clone(),
                    summary: summary(&ask, &text),
                });
            }
        }
    }

    #[test]
    fn chapters_are_sized_to_the_storys_target_words() {
        let builtin = Builtin {
            delay: Duration::ZERO,
        };
        let ask = ChapterRequest {
            number: 1,
            total: 3,
            title: "Beat 1".into(),
        };
        let mut story = story();
        let mut lengths = Vec::new();
        for target in [600, 3000] {
            story.brief.target_words = target;
            let words = crate::store::word_count(&builtin.chapter(&story, &ask));
            assert!(
                words * 10 >= target * 9 && words <= target * 13 / 10,
                "target {target}, wrote {words}"
            );
            lengths.push(words);
        }
        assert!(lengths[0] * 3 < lengths[1], "{lengths:?}");
    }

    #[test]
    fn the_outline_has_the_asked_number_of_chapters() {
        let outline = Builtin {
            delay: Duration::ZERO,
        }
        .outline(&story(), 12);
        assert_eq!(crate::progress::parse_outline(&outline).len(), 12);
    }
}
