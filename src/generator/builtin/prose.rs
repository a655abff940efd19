//! The builtin generator's chapter prose: sentences composed from short
//! phrase pools, sized to a target word count.
//!
//! Every pool is dealt like a deck (shuffled, each phrase used once before
//! any is used again), no sentence is written twice in a chapter, and most
//! phrases are under five words, so a chapter's word 4-grams rarely repeat:
//! the chapters pass the default [`crate::quality::Thresholds`] (a unit test
//! in `builtin.rs` holds them to it). The phrase pools avoid the stock
//! phrase list, and hold no capitalised word that could pass for a name.

use std::collections::HashSet;

/// What a chapter is written about.
pub(super) struct Scene<'a> {
    pub hero: &'a str,
    pub friend: &'a str,
    pub place: &'a str,
    /// The story's premise as a clause (see `premise_clause`).
    pub premise: &'a str,
    pub title: &'a str,
    pub previous_title: Option<&'a str>,
    pub number: u32,
    pub total: u32,
}

const TIMES: &[&str] = &[
    "At first light",
    "By the time the bells rang noon",
    "Late that evening",
    "Before anyone else was awake",
    "When the rain finally stopped",
    "In the grey hour before dusk",
    "Long after midnight",
    "On the third morning",
];
const FEELINGS: &[&str] = &[
    "a doubt they could not put into words",
    "the stubborn hope that had carried them this far",
    "an old anger, quieter now but not gone",
    "the sense of being watched",
    "a tiredness that went deeper than sleep",
    "a small, unreasonable joy",
    "the itch of a question left unasked",
    "something close to shame",
    "a homesickness with no home attached",
    "the cold patience of a hunter",
    "an affection they did not dare name",
    "plain, honest fear",
    "the lightness of a decision made",
    "envy, and then embarrassment at the envy",
    "a grief older than this journey",
    "the urge to laugh at the wrong moment",
    "relief so sharp it hurt",
    "a loneliness that company did not touch",
    "suspicion, faint but growing",
    "gratitude mixed with unease",
    "the restlessness of an unfinished task",
    "a calm they had not earned",
    "a hunger that bread would not fix",
    "a flash of pure stubbornness",
    "the old dread of small rooms",
    "a courage that surprised them",
    "a wish to be anywhere else",
    "the patience of long practice",
];
const ACTIONS: &[&str] = &[
    "counted the coins twice",
    "traced the map with one finger",
    "listened at the door",
    "wrote a letter and burned it",
    "walked the long way round",
    "asked the question nobody else would",
    "mended a torn strap by lamplight",
    "checked the lock for the third time",
    "sharpened a knife that was already sharp",
    "fed the last of the bread to the horse",
    "read the old ledger again",
    "scraped mud from both boots",
    "wound the broken watch anyway",
    "folded the blanket into a neat square",
    "stacked the firewood by the hearth",
    "drew water from the cistern",
    "searched the coat pockets for the key",
    "sketched the harbour on a scrap of paper",
    "tested each floorboard before stepping",
    "hid the letter inside a boot",
    "lit a candle and let it gutter",
    "tied the boat to the post",
    "rolled up the sleeves and got to work",
    "opened the shutters to the cold",
    "climbed to the roof for a better view",
    "swept the ash from the grate",
    "tore the wanted notice from the wall",
    "bargained hard over a sack of flour",
    "oiled the hinges of the gate",
    "buried the cipher under the pear tree",
    "copied the names into a notebook",
    "warmed both hands over the stove",
    "pretended to sleep",
    "hummed an old tune under their breath",
    "untangled the fishing net",
    "set two cups on the table",
    "patched the sail with sacking",
    "wrapped the bottles in straw",
    "studied the stranger's boots",
    "hung the wet cloak by the fire",
    "kept watch at the window",
    "paid the ferryman double",
    "whittled a peg from driftwood",
    "scrubbed the table clean",
    "tucked the knife into a sleeve",
    "stirred the soup and tasted it",
    "sorted the letters by date",
    "tightened every buckle",
    "practised the lie aloud",
    "looked for tracks in the snow",
];
const MANNERS: &[&str] = &[
    "",
    "",
    ", slowly",
    " without a word",
    " with great care",
    " out of habit",
    ", badly",
    " while the kettle boiled",
    " for the sake of doing something",
    ", pausing often",
    " in the half-dark",
    " as quietly as possible",
];
const SETTINGS: &[&str] = &[
    "A thin wind came off the water",
    "The air smelled of iron and wet stone",
    "Snow had begun to settle on the roofs",
    "The heat pressed down like a hand",
    "Fog erased everything beyond the nearest wall",
    "Rain drummed on the shutters",
    "The kettle hissed and settled",
    "The old clock kept its own slow time",
    "A gull complained to nobody in particular",
    "Far off, thunder muttered over the hills",
    "The tide crept higher by the hour",
    "A loose shutter banged twice and was still",
    "The stove ticked as it cooled",
    "Smoke from the chimneys drifted low over the roofs",
    "The river ran high and brown",
    "The lamps along the quay went out one by one",
    "Somewhere below, a dog barked at nothing",
    "The fire had burned down to a red eye",
    "Frost furred the inside of the window",
    "The floorboards creaked under every step",
    "A cart rattled past without stopping",
    "The wind carried voices from the street",
    "The sky had gone the colour of slate",
    "Cold came up through the floor",
    "The candle flame leaned toward the door",
    "The house settled and groaned around them",
    "Water dripped somewhere in the dark",
    "The moon showed for a moment and was gone",
    "Bells rang across the water, faint and slow",
    "The room smelled of tallow and wet wool",
];
const SIGHTS: &[&str] = &[
    "a shutter banged in the wind",
    "someone was singing off-key",
    "the market stalls stood empty",
    "a child chased a hoop down the lane",
    "the gulls fought over fish heads",
    "two soldiers argued about dice",
    "the fishing boats lay on their sides in the mud",
    "smoke rose straight up into still air",
    "an old woman swept her step",
    "a bell rang for no reason anyone knew",
    "the puddles had frozen into grey glass",
    "lanterns swung from the eaves",
    "a wagon had lost a wheel",
    "the baker was already closing up",
    "washing hung forgotten in the rain",
    "a cat watched from a windowsill",
];
const WHERES: &[&str] = &[
    "Outside",
    "Down in the street",
    "Next door",
    "Along the quay",
    "Up the hill",
    "Beyond the wall",
    "In the yard",
    "Across the square",
    "By the well",
    "Under the bridge",
];
const LINES: &[&str] = &[
    "We should have left yesterday",
    "I am not asking twice",
    "Tell me the truth this time",
    "That is not what I meant",
    "Keep your voice down",
    "You knew all along",
    "There is still time",
    "Do you trust them",
    "I have seen that mark before",
    "It will not hold",
    "We need a better plan",
    "Nobody is coming for us",
    "Leave the lamp on",
    "You are shivering",
    "What did the letter say",
    "Let me carry that",
    "I kept my promise",
    "Say it plainly",
    "This was never about money",
    "Look at the water",
    "Someone has been here",
    "You should sleep",
    "I am not afraid of them",
    "Count it again",
    "Nobody asked you",
    "Hold the lantern higher",
    "It is later than you think",
    "We go at dawn",
    "Put that down",
    "I never wanted this",
    "Say that again",
    "Not one more word",
];
const SAYS: &[&str] = &[
    "said",
    "muttered",
    "admitted",
    "called over one shoulder",
    "whispered",
    "insisted",
    "said, not unkindly",
    "answered at last",
    "said to the floor",
    "snapped",
];
const MEMORIES: &[&str] = &[
    "the winter the canal froze solid",
    "a promise made on a pier",
    "the smell of their mother's kitchen",
    "a fight that had never been settled",
    "the first time they saw the sea",
    "a face in a crowd, years ago",
    "the sound of a door closing for good",
    "a song from a wedding",
    "the fever that nearly took them",
    "an apology that came too late",
    "the map they had drawn as a child",
    "a bargain struck in bad faith",
    "the night the beacon failed",
    "a teacher who never raised their voice",
    "the last letter from home",
    "the day the mill burned down",
    "a brother lost at sea",
    "the taste of salt on a split lip",
    "a lesson learned the hard way",
    "the old house by the weir",
    "their grandmother's crooked hands",
    "a card game that ended badly",
    "the church bells on a wedding day",
    "running barefoot on the dunes",
];
const RECALLS: &[&str] = &[
    "remembered",
    "thought of",
    "could not forget",
    "found themselves thinking of",
    "dreamed that night of",
    "was reminded of",
    "tried not to think of",
];
const OPENERS: &[&str] = &[
    "For a moment",
    "Without warning",
    "Out of nowhere",
    "All at once",
    "Under it all",
    "Not for the first time",
    "Against all sense",
    "Briefly",
    "Quite clearly",
    "In the quiet",
];
const NOTICES: &[&str] = &[
    "had the odd certainty that",
    "began to suspect that",
    "understood, too late, that",
    "half believed that",
    "could not shake the idea that",
    "saw now that",
    "had always known that",
    "wondered whether",
    "suspected",
    "guessed",
    "decided",
    "knew",
    "feared",
    "hoped",
    "doubted",
    "realised",
    "was sure",
];
const THOUGHTS: &[&str] = &[
    "nobody had said the word aloud",
    "the answer lay somewhere in the ledger",
    "the stranger had lied about the road",
    "every choice here cost something",
    "the house was older than it looked",
    "they were being tested",
    "the map had been drawn wrong on purpose",
    "the danger was closer than the border",
    "some debts could not be paid in coin",
    "the rain would wash out the tracks",
    "the quarrel had never been about the boat",
    "help would come from the wrong direction",
    "the missing page mattered most",
    "a kinder lie would have been worse",
    "the ferry would not wait",
    "someone had read the letter first",
    "the old bridge was the only way",
    "the locks had been changed",
    "their luck was running thin",
    "the guide knew more than he said",
    "the harbour master owed them",
    "nothing here was what it seemed",
    "the key fitted more than one door",
    "a storm was coming from the west",
    "the dog had recognised the stranger",
    "the bread had been left for them",
];
pub(super) const TURNS: &[&str] = &[
    "Then the door opened, and everything changed.",
    "Nobody had expected the answer to be so simple.",
    "It was only later that the cost became clear.",
    "Something in the silence told them they were not alone.",
    "The plan, such as it was, fell apart within the hour.",
    "For once, luck was on their side.",
    "By nightfall, the story had spread across town.",
    "A knock came, three times, and then nothing.",
];

fn pick<'a>(rng: &mut fastrand::Rng, items: &[&'a str]) -> &'a str {
    items[rng.usize(..items.len())]
}

/// A pool dealt without replacement: every phrase once, then a new shuffle.
struct Deck {
    items: &'static [&'static str],
    order: Vec<usize>,
}

impl Deck {
    fn new(items: &'static [&'static str]) -> Deck {
        Deck {
            items,
            order: Vec::new(),
        }
    }

    fn draw(&mut self, rng: &mut fastrand::Rng) -> &'static str {
        if self.order.is_empty() {
            self.order = (0..self.items.len()).collect();
            rng.shuffle(&mut self.order);
        }
        self.order.pop().map_or("", |i| self.items[i])
    }
}

/// One deck per pool, for one chapter.
struct Decks {
    feelings: Deck,
    actions: Deck,
    manners: Deck,
    settings: Deck,
    recalls: Deck,
    sights: Deck,
    wheres: Deck,
    lines: Deck,
    says: Deck,
    memories: Deck,
    openers: Deck,
    notices: Deck,
    thoughts: Deck,
    turns: Deck,
}

impl Decks {
    fn new() -> Decks {
        Decks {
            feelings: Deck::new(FEELINGS),
            actions: Deck::new(ACTIONS),
            manners: Deck::new(MANNERS),
            settings: Deck::new(SETTINGS),
            recalls: Deck::new(RECALLS),
            sights: Deck::new(SIGHTS),
            wheres: Deck::new(WHERES),
            lines: Deck::new(LINES),
            says: Deck::new(SAYS),
            memories: Deck::new(MEMORIES),
            openers: Deck::new(OPENERS),
            notices: Deck::new(NOTICES),
            thoughts: Deck::new(THOUGHTS),
            turns: Deck::new(TURNS),
        }
    }
}

/// A chapter of about `target_words` words (never under 90 % of it unless
/// the pools run dry of new sentences).
pub(super) fn chapter(rng: &mut fastrand::Rng, scene: &Scene<'_>, target_words: u32) -> String {
    let mut writer = Writer {
        rng,
        decks: Decks::new(),
        scene,
        written: HashSet::new(),
    };
    let mut paragraphs = vec![writer.opening(), writer.recap()];
    let closing = writer.closing();
    for fixed in paragraphs.iter().chain([&closing]) {
        writer.is_new(fixed);
    }
    let target = target_words as usize;
    let words = |paragraphs: &[String]| {
        paragraphs
            .iter()
            .map(|p| p.split_whitespace().count())
            .sum::<usize>()
    };
    let room = |paragraphs: &[String]| {
        target.saturating_sub(words(paragraphs) + closing.split_whitespace().count())
    };
    while room(&paragraphs) > 0 {
        let paragraph = writer.paragraph(room(&paragraphs));
        if paragraph.is_empty() {
            break;
        }
        paragraphs.push(paragraph);
    }
    paragraphs.push(closing);
    paragraphs.join("\n\n")
}

struct Writer<'r, 's> {
    rng: &'r mut fastrand::Rng,
    decks: Decks,
    scene: &'s Scene<'s>,
    /// The chapter's sentences so far, as the quality signals compare them.
    written: HashSet<String>,
}

impl Writer<'_, '_> {
    fn opening(&mut self) -> String {
        let Scene {
            hero,
            place,
            premise,
            title,
            ..
        } = *self.scene;
        format!(
            "{}, {hero} stood in {place} and thought about {}. {}. Everything that had happened so far came back to one thing: {premise}.",
            pick(self.rng, TIMES),
            title.to_lowercase(),
            self.decks.settings.draw(self.rng),
        )
    }

    fn recap(&mut self) -> String {
        let Scene {
            hero,
            friend,
            place,
            previous_title,
            ..
        } = *self.scene;
        match previous_title {
            Some(previous) => format!(
                "The events of \"{previous}\" still weighed on {hero}. {friend} had not spoken of them since, though {} was plain on their face.",
                self.decks.feelings.draw(self.rng),
            ),
            None => format!(
                "Nobody in {place} would have guessed how it would end. {hero} certainly did not; {friend} pretended to, which was worse."
            ),
        }
    }

    fn closing(&mut self) -> String {
        let Scene {
            hero,
            friend,
            number,
            total,
            ..
        } = *self.scene;
        format!(
            "\"We cannot go back,\" {friend} said at last. \"{}.\" {hero} looked at the road ahead and, for the first time in chapter {number} of {total}, agreed.",
            if number == total {
                "Not now. It is finished"
            } else {
                "Not after this"
            },
        )
    }

    /// Three to six new sentences, fewer when `room` words are left.
    fn paragraph(&mut self, room: usize) -> String {
        let wanted = 3 + self.rng.usize(..4);
        let mut sentences: Vec<String> = Vec::new();
        let mut words = 0;
        for _ in 0..wanted * 4 {
            if sentences.len() == wanted || words >= room {
                break;
            }
            let sentence = self.sentence();
            if self.is_new(&sentence) {
                words += sentence.split_whitespace().count();
                sentences.push(sentence);
            }
        }
        sentences.join(" ")
    }

    /// Whether none of `text`'s sentences was written before; they count as
    /// written from now on when so.
    fn is_new(&mut self, text: &str) -> bool {
        let keys: Vec<String> = crate::quality::sentences(text)
            .map(|sentence| crate::quality::words(sentence).join(" "))
            .filter(|key| !key.is_empty())
            .collect();
        if keys.iter().any(|key| self.written.contains(key)) {
            return false;
        }
        self.written.extend(keys);
        true
    }

    fn sentence(&mut self) -> String {
        let (who, other) = if self.rng.bool() {
            (self.scene.hero, self.scene.friend)
        } else {
            (self.scene.friend, self.scene.hero)
        };
        let rng = &mut *self.rng;
        let d = &mut self.decks;
        match rng.u8(..9) {
            0 => format!("{who} {}{}.", d.actions.draw(rng), d.manners.draw(rng)),
            1 => format!(
                "{who} {}, and {other} {}.",
                d.actions.draw(rng),
                d.actions.draw(rng)
            ),
            2 => format!("{}.", d.settings.draw(rng)),
            3 => format!(
                "{}, {who} felt {}.",
                d.openers.draw(rng),
                d.feelings.draw(rng)
            ),
            4 => format!("\"{},\" {who} {}.", d.lines.draw(rng), d.says.draw(rng)),
            5 => format!("{who} {} {}.", d.recalls.draw(rng), d.memories.draw(rng)),
            6 => format!("{}, {}.", d.wheres.draw(rng), d.sights.draw(rng)),
            7 => format!("{who} {} {}.", d.notices.draw(rng), d.thoughts.draw(rng)),
            _ => d.turns.draw(rng).to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chapters_land_near_their_target_and_never_repeat_a_sentence() {
        let scene = Scene {
            hero: "Mara",
            friend: "Ilya",
            place: "the salt marshes",
            premise: "a courier must cross a drowned country",
            title: "The Long Night",
            previous_title: None,
            number: 1,
            total: 1,
        };
        for target in [400, 1500, 3000] {
            let text = chapter(&mut fastrand::Rng::with_seed(7), &scene, target);
            let words = crate::store::word_count(&text);
            assert!(
                words.abs_diff(target) <= target / 10,
                "{words} words for {target}"
            );
            let repeated = crate::quality::repeated_sentences(&text);
            assert!(repeated.is_empty(), "{repeated:?}");
        }
    }
}
