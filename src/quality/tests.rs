use super::*;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn measure(text: &str, target_words: u32, known: &[String]) -> Quality {
    let stock = StockPhrases::builtin().unwrap();
    Measure {
        target_words,
        known_names: known,
        stock_phrases: &stock,
    }
    .chapter(text)
}

#[test]
fn one_sentence_repeated_scores_high_repetition_and_is_reported() {
    let sentence = "The courier waited at the gate until the tide came in.";
    let text = vec![sentence; 30].join(" ");
    let quality = measure(&text, 300, &[]);
    assert!(quality.repetition > 0.9, "{}", quality.repetition);
    assert_eq!(
        quality.repeated_sentences,
        vec![RepeatedSentence {
            sentence: "The courier waited at the gate until the tide came in".into(),
            count: 30,
        }]
    );
    let findings = Thresholds::default().findings(3, 330, &quality);
    let codes: Vec<&str> = findings.iter().map(|f| f.code).collect();
    assert_eq!(codes, [CODE_REPETITION, CODE_REPEATED_SENTENCES]);
    assert!(
        findings[0].message.starts_with("chapter 3: 9"),
        "{:?}",
        findings[0]
    );
    assert!(findings.iter().all(|f| f.severity == Severity::Warning));
}

#[test]
fn prose_said_once_has_no_repetition() {
    let text = "Mara crossed the marsh at dawn. Ilya followed with the lantern. \
                Neither spoke until the water rose. \"Not yet,\" she said. \"Not yet,\" he agreed.";
    let quality = measure(text, 25, &names(&["Mara", "Ilya"]));
    assert_eq!(quality.repetition, 0.0);
    // "Not yet" twice is below the sentence length that counts.
    assert!(quality.repeated_sentences.is_empty());
    assert_eq!(quality.length_score, 100.0);
    assert!(Thresholds::default().findings(1, 25, &quality).is_empty());
}

#[test]
fn repetition_counts_occurrences_beyond_the_first() {
    // 8 words, 5 four-grams; "a b c d" twice: one of five is a repeat.
    let text = words("A b c d. A b, c d!");
    assert_eq!(text.len(), 8);
    assert!((repetition(&text) - 1.0 / 5.0).abs() < 1e-9);
    assert_eq!(repetition(&words("only three words")), 0.0);
}

#[test]
fn the_length_score_follows_longbench_write() {
    assert_eq!(length_score(1000, 1000), 100.0);
    assert_eq!(length_score(500, 1000), 50.0);
    assert!((length_score(2000, 1000) - 100.0 * 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(length_score(4000, 1000), 0.0);
    assert_eq!(length_score(9000, 1000), 0.0);
    assert_eq!(length_score(300, 1000), 0.0);
    assert_eq!(measure("one two three", 6, &[]).length_score, 50.0);
    assert_eq!(measure("one two", 3, &[]).length_score, 75.0);
}

#[test]
fn empty_text_divides_by_nothing() {
    let quality = measure("", 1500, &names(&["Mira"]));
    assert_eq!(quality.length_score, 0.0);
    assert_eq!(quality.repetition, 0.0);
    assert!(quality.repeated_sentences.is_empty());
    assert!(quality.stock_phrases.is_empty());
    assert!(quality.name_variants.is_empty());
    assert_eq!(length_score(0, 0), 100.0);
    let findings = Thresholds::default().findings(1, 0, &quality);
    let codes: Vec<&str> = findings.iter().map(|f| f.code).collect();
    assert_eq!(codes, [CODE_LENGTH]);
    assert!(
        serde_json::to_string(&quality)
            .unwrap()
            .contains("\"length_score\":0.0")
    );
}

#[test]
fn stock_phrases_are_counted_case_insensitively_on_word_boundaries() {
    let text = "Her courage was A Testament To the village. The tapestries hung \
                untouched; the TAPESTRY of stars was a testament\nto nothing. Little did \
                they know. Little did they knowledge.";
    let quality = measure(text, 40, &[]);
    let found: Vec<(&str, u32)> = quality
        .stock_phrases
        .iter()
        .map(|p| (p.phrase.as_str(), p.count))
        .collect();
    assert_eq!(
        found,
        [
            ("a testament to", 2),
            ("tapestry", 1),
            ("little did they know", 1)
        ]
    );
    let findings = Thresholds::default().findings(2, 40, &quality);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].code, CODE_STOCK_PHRASES);
    assert_eq!(findings[0].severity, Severity::Info);
}

#[test]
fn the_default_list_is_long_and_counts_no_phrase_twice() {
    let stock = StockPhrases::builtin().unwrap();
    assert!(stock.len() >= 40, "{}", stock.len());
    let lists: Vec<&[String]> = stock.word_lists().collect();
    for (i, inner) in lists.iter().enumerate() {
        for (j, outer) in lists.iter().enumerate() {
            let inside = outer.windows(inner.len()).any(|w| w == *inner);
            assert!(i == j || !inside, "{inner:?} is inside {outer:?}");
        }
    }
}

#[test]
fn the_stock_list_is_overridden_from_the_prompts_directory() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        StockPhrases::load(Some(dir.path())).unwrap().len(),
        StockPhrases::builtin().unwrap().len()
    );
    std::fs::write(
        dir.path().join(STOCK_PHRASES_FILE),
        "# mine\n\nsuddenly\n  all at once  \n",
    )
    .unwrap();
    let stock = StockPhrases::load(Some(dir.path())).unwrap();
    let found = stock.find_in(&words("Suddenly, all at once, the tapestry fell."));
    let phrases: Vec<&str> = found.iter().map(|p| p.phrase.as_str()).collect();
    assert_eq!(phrases, ["suddenly", "all at once"]);
    // The templates accept the list beside them.
    crate::generator::Templates::load(Some(dir.path())).unwrap();

    std::fs::write(dir.path().join(STOCK_PHRASES_FILE), "fine\n--\n").unwrap();
    let err = StockPhrases::load(Some(dir.path())).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("stock_phrases.txt:2: a stock phrase needs at least one word"),
        "{err}"
    );

    // Latin-1, as an old editor might save it: refused, with the place.
    std::fs::write(dir.path().join(STOCK_PHRASES_FILE), b"ok\nna\xefve\n").unwrap();
    let err = StockPhrases::load(Some(dir.path())).unwrap_err();
    assert!(
        matches!(err, StockPhrasesError::NotUtf8 { valid_up_to: 5, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("is not UTF-8 text"), "{err}");
}

#[test]
fn name_variants_are_found_and_real_names_are_not_flagged() {
    let known = names(&["Mira Okafor", "Tomas", "Kasimir"]);
    let text = "Mira woke early. Myra's coat was gone, and Thomas had taken it. \
                When Tomas came back, Okafor was waiting; Myra laughed. Casimer, \
                the Kasimir of the north, said nothing. Will said nothing either. \
                Then Wren arrived, and NASA called, and Petra too.";
    let quality = measure(text, 50, &known);
    let found: Vec<(&str, &str, u32)> = quality
        .name_variants
        .iter()
        .map(|v| (v.name.as_str(), v.like.as_str(), v.count))
        .collect();
    assert_eq!(
        found,
        [
            ("Myra", "Mira", 2),
            ("Thomas", "Tomas", 1),
            ("Casimer", "Kasimir", 1)
        ]
    );
    let findings = Thresholds::default().findings(4, 50, &quality);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0]
            .message
            .contains("Myra (for Mira), Thomas (for Tomas), Casimer (for Kasimir)"),
        "{}",
        findings[0].message
    );
}

#[test]
fn known_names_come_from_the_bible_else_from_the_outline() {
    let outline = "# The Salt Road\n\n## Chapter 1: The Long Night\nMara counted the coins near \
                   the harbour. Then Ilya's boat left.\n\n## Chapter 2: Old Debts\nMara wrote \
                   to Sabine.\n";
    assert_eq!(names_in_outline(outline), ["Mara", "Ilya", "Sabine"]);
    assert_eq!(known_names(&[], outline), ["Mara", "Ilya", "Sabine"]);
    assert_eq!(known_names(&names(&["Odile"]), outline), ["Odile"]);
}

#[test]
fn repeated_sentences_are_listed_most_repeated_first() {
    let text = "The bell rang twice at noon. The door was shut tight.\n\
                The bell rang twice at noon! \"The door was shut tight.\" The bell \
                rang twice, at noon.";
    let listed = repeated_sentences(text);
    assert_eq!(
        listed,
        vec![
            RepeatedSentence {
                sentence: "The bell rang twice at noon".into(),
                count: 3
            },
            RepeatedSentence {
                sentence: "The door was shut tight".into(),
                count: 2
            },
        ]
    );
}

#[test]
fn a_story_with_a_bible_is_measured_against_its_names_and_aliases() {
    let outline = "## Chapter 1\nTomas sails with Ilya.";
    let bible = names(&["Mira Okafor", "the Ferrywoman", "Kasimir"]);
    let measure = StoryMeasure::with_bible(1500, outline, &bible);
    let found = measure.chapter("Myra rowed. Casimer waved. Tomaz slept. Mira laughed.");
    let variants: Vec<(&str, &str)> = found
        .name_variants
        .iter()
        .map(|v| (v.name.as_str(), v.like.as_str()))
        .collect();
    // Tomaz is close to the outline's Tomas, but the bible, not the outline,
    // is the cast once there is one.
    assert_eq!(variants, [("Myra", "Mira"), ("Casimer", "Kasimir")]);
    let without = StoryMeasure::new(1500, outline).chapter("Tomaz slept.");
    assert_eq!(without.name_variants[0].like, "Tomas");
}
