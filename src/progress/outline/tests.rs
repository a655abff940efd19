use super::*;

fn numbers(outline: &str) -> Vec<u32> {
    parse_outline(outline).iter().map(|e| e.number).collect()
}

fn titles(outline: &str) -> Vec<String> {
    parse_outline(outline)
        .into_iter()
        .map(|e| e.title)
        .collect()
}

fn warns(outline: &str, explicit: Option<u32>, wanted: &str) {
    let warnings = check_outline(outline, explicit);
    assert!(
        warnings.iter().any(|w| w.contains(wanted)),
        "wanted {wanted:?} in {warnings:?}"
    );
}

#[test]
fn the_three_first_release_forms() {
    let headings = "# Book\n## Chapter 1: Dawn\nText.\n## Chapter 2: The Storm\n";
    assert_eq!(numbers(headings), [1, 2]);
    assert_eq!(parse_outline(headings)[1].title, "The Storm");
    let plain = "Chapter 1 - Dawn\nchapter 2 — Dusk\nCHAPTER 3\n";
    assert_eq!(numbers(plain), [1, 2, 3]);
    assert_eq!(parse_outline(plain)[2].title, "Chapter 3");
    assert_eq!(
        titles("1. Dawn\n2) Dusk\n3. Night\n"),
        ["Dawn", "Dusk", "Night"]
    );
}

#[test]
fn every_label_and_separator() {
    let outline = "Chapter 1: A\nChapter Two - B\nChapter III — C\nCh. 4 – D\nCh 5. E\n\
                   Chap. 6) F\n**Chapter 7:** G\n**Chapter Eight: H**\n## Chapter Twenty-One\n";
    assert_eq!(numbers(outline), [1, 2, 3, 4, 5, 6, 7, 8, 21]);
    assert_eq!(
        titles(outline),
        ["A", "B", "C", "D", "E", "F", "G", "H", "Chapter 21"]
    );
}

#[test]
fn titles_come_out_clean() {
    for (line, title) in [
        ("## **Chapter 1: The Letter**", "The Letter"),
        ("**Chapter 1**: The Letter", "The Letter"),
        (
            "**Chapter 1: The Letter** – Mara gets a letter",
            "The Letter",
        ),
        ("1. **The Letter** – Mara gets a letter", "The Letter"),
        ("1. **Chapter 1: The Letter**", "The Letter"),
        ("### Chapter 1: The Letter ###", "The Letter"),
        ("Chapter 1: Learning C#", "Learning C#"),
        ("Chapter 1: The **Big** Letter", "The Big Letter"),
        ("Chapter 1 — The Letter:", "The Letter"),
        ("*Chapter 1: The Letter*", "The Letter"),
        ("Chapter 1 The Letter", "The Letter"),
    ] {
        assert_eq!(titles(line), [title], "{line}");
    }
}

#[test]
fn prose_is_not_mistaken_for_chapters() {
    assert_eq!(
        numbers(
            "Chapters are many.\n3.5 million people\nChapter3 x\n2024 was a year\n\
             Chapter 3 is where it turns.\nChapter 3, as planned, ends badly.\n\
             In chapter 3 she leaves.\nPrologue and epilogue are short.\nCheck 3: fine\n\
             Part 2 of the plan\nChapter three was hard."
        ),
        Vec::<u32>::new()
    );
    assert_eq!(numbers("Chapter 99999999: too big\n"), Vec::<u32>::new());
}

#[test]
fn lists_inside_chapters_are_notes_not_chapters() {
    let outline = "## Chapter 1: Dawn\n1. wake\n2. eat\n## Chapter 2: Dusk\n1. sleep\n";
    assert_eq!(numbers(outline), [1, 2]);
    assert_eq!(numbers("1. Dawn\n   1. wake\n2. Dusk\n"), [1, 2]);
    let nested = "- Chapter 1: Dawn\n  - Chapter 3 pays this off\n- Chapter 2: Dusk\n";
    assert_eq!(numbers(nested), [1, 2]);
    let indented = "1. Dawn\n   - Chapter 3: a note\n2. Dusk\n";
    assert_eq!(titles(indented), ["Dawn", "Dusk"]);
    assert_eq!(numbers("Intro\n    1. Dawn\n    2. Dusk\n"), [1, 2]);
}

#[test]
fn numbered_headings_win_over_numbered_items() {
    let outline = "## 1. Arrival\n1. the ferry\n2. the inn\n## 2. Departure\n1. the road\n";
    assert_eq!(titles(outline), ["Arrival", "Departure"]);
    assert_eq!(
        titles("**1. Arrival**\n1. ferry\n**2. Departure**\n"),
        ["Arrival", "Departure"]
    );
}

#[test]
fn parts_restarting_at_one_run_on() {
    let outline = "# Part One\n## 1. Arrival\n## 2. Inn\n# Part Two\n## 1. Storm\n## 2. Wreck\n";
    let entries = parse_outline(outline);
    let running: Vec<u32> = entries.iter().map(|e| e.number).collect();
    let written: Vec<Option<u32>> = entries.iter().map(|e| e.written).collect();
    assert_eq!(running, [1, 2, 3, 4]);
    assert_eq!(written, [Some(1), Some(2), Some(1), Some(2)]);
    assert!(check_outline(outline, Some(4)).is_empty());
    let continuing = "Part I\nChapter 1: A\nChapter 2: B\nPart II\nChapter 3: C\n";
    assert_eq!(numbers(continuing), [1, 2, 3]);
    assert!(check_outline(continuing, None).is_empty());
}

#[test]
fn a_gap_inside_a_restarted_part_is_named_by_its_written_numbers() {
    let outline = "Book 1\nChapter 1: A\nChapter 2: B\nBook 2\nChapter 1: C\nChapter 3: D\n";
    assert_eq!(numbers(outline), [1, 2, 3, 5]);
    warns(
        outline,
        None,
        "chapter 3 (the story's chapter 5) follows chapter 1 (the story's chapter 3); chapter 2 is missing",
    );
}

#[test]
fn prologue_interlude_and_epilogue_are_chapters() {
    let outline =
        "Prologue: The Fall\nChapter 1: A\nChapter 2: B\nInterlude\nChapter 3: C\nEpilogue\n";
    assert_eq!(numbers(outline), [1, 2, 3, 4, 5, 6]);
    assert_eq!(
        titles(outline),
        ["Prologue: The Fall", "A", "B", "Interlude", "C", "Epilogue"]
    );
    assert!(
        check_outline(outline, None).is_empty(),
        "{:?}",
        check_outline(outline, None)
    );
    // A writer who counted the prologue as chapter 1.
    assert_eq!(numbers("Prologue\nChapter 2: A\nChapter 3: B\n"), [1, 2, 3]);
    // A prologue does not stop numbered lists from being the chapters.
    assert_eq!(
        titles("Prologue\n1. A\n2. B\nEpilogue: After"),
        ["Prologue", "A", "B", "Epilogue: After"]
    );
}

#[test]
fn duplicates_count_once_and_are_reported() {
    let outline = "Chapter 1: A\nChapter 2: B\nChapter 2: B again\nChapter 10: C\nChapter 45: D\nChapter 3: E";
    assert_eq!(numbers(outline), [1, 2, 10, 45, 3]);
    warns(outline, Some(3), "line 3: chapter 2 appears more than once");
    warns(
        outline,
        Some(3),
        "line 4: chapter 10 follows chapter 2; chapters 3-9 are missing",
    );
    warns(outline, Some(3), "chapter 3 comes after chapter 45");
    warns(
        outline,
        Some(3),
        "chapter count is 3 but the outline names 5",
    );
    assert!(check_outline("1. a\n2. b", Some(2)).is_empty());
}

#[test]
fn warnings_are_never_silent() {
    warns(
        "Some ideas about a story.\nShe runs.",
        None,
        "no chapter found in the outline",
    );
    warns(
        "## The Arrival\n## The Storm",
        Some(3),
        "`Chapter 1: Title`",
    );
    assert!(check_outline(" \n\t\r\n", None).is_empty());
    assert!(check_outline("", Some(3)).is_empty());
    warns(
        "Chapter 2: A\nChapter 3: B",
        None,
        "the outline starts at chapter 2; chapter 1 is missing",
    );
    warns(
        "Chapter 1: A\nEpilogue\nChapter 2: B",
        None,
        "chapter 2 (the story's chapter 3) comes after the epilogue",
    );
    warns(
        "Chapter 1: A\nPrologue",
        None,
        "the prologue comes after chapter 1",
    );
}

#[test]
fn chapter_headings_split_a_manuscript() {
    let text = "The Salt Road\n\n# Part One\n\n## Chapter 1: Arrival\nShe came.\n1. a list\n\n\
                ## Chapter 2: Inn\nRain.\n# Part Two\n## Chapter 1: Storm\nWind.\nEpilogue\nEnd.";
    let headings = chapter_headings(text);
    let heading = |number, written, title: &str, line, body| ChapterHeading {
        number,
        written,
        title: title.to_string(),
        line,
        body,
    };
    assert_eq!(
        headings,
        [
            heading(1, Some(1), "Arrival", 4, 5..8),
            heading(2, Some(2), "Inn", 8, 9..10),
            heading(3, Some(1), "Storm", 11, 12..13),
            heading(4, None, "Epilogue", 13, 14..15),
        ]
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[headings[0].body.clone()].join("\n"),
        "She came.\n1. a list\n"
    );
}

#[test]
fn chapter_headings_ignore_numbered_lists_but_keep_numbered_headings() {
    assert!(chapter_headings("She bought:\n1. milk\n2. bread\n").is_empty());
    let text = "## 1. Arrival\ntext\n1. milk\n## 2. Storm\n";
    let headings = chapter_headings(text);
    assert_eq!(headings.len(), 2);
    assert_eq!(headings[0].body, 1..3);
    assert_eq!(headings[1].body, 4..4);
    assert!(chapter_headings("").is_empty());
}

#[test]
fn windows_line_endings_change_nothing() {
    let outline = "# Part One\r\n## Chapter 1: Dawn\r\nnotes\r\n**Chapter 2:** Dusk\r\n";
    assert_eq!(titles(outline), ["Dawn", "Dusk"]);
}

#[test]
fn hostile_text_neither_panics_nor_blows_up() {
    let inputs = [
        "#".repeat(100_000),
        "Chapter ".repeat(50_000),
        "9".repeat(100_000),
        "é\u{0}Chapter\u{301} 1:".repeat(10_000),
        "Chapter 1".to_string() + &"\n".repeat(100_000),
        "1.".repeat(100_000),
        "Prologue\n".repeat(20_000),
        "# Part One\n1. A\n".repeat(20_000),
        "**".repeat(100_000),
        "Chapter 1: **".to_string() + &"*_".repeat(100_000),
    ];
    for input in &inputs {
        let started = std::time::Instant::now();
        let lines = input.lines().count();
        let entries = parse_outline(input);
        assert!(
            entries.len() <= lines,
            "{} entries from {lines} lines",
            entries.len()
        );
        assert!(entries.iter().all(|e| (1..=100_000).contains(&e.number)));
        assert!(entries.iter().all(|e| e.title.chars().count() <= 200));
        let warnings = check_outline(input, Some(1));
        assert!(warnings.len() <= lines + 1, "{} warnings", warnings.len());
        assert!(chapter_headings(input).len() <= lines);
        // Generous: a shared, loaded machine; tests/fuzz.rs bounds the time
        // on a megabyte of the worst shapes.
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }
    assert_eq!(parse_outline(&inputs[6]).len(), 20_000);
    assert_eq!(parse_outline(&inputs[7]).len(), 20_000);
    // The running numbers stop at the largest chapter number.
    assert_eq!(numbers("Chapter 100000: A\nEpilogue\n"), [100_000]);
    assert_eq!(
        numbers("# Part 1\nChapter 100000\n# Part 2\nChapter 1\n"),
        [100_000]
    );
    assert_eq!(titles(&inputs[4]), ["Chapter 1"]);
}

#[test]
fn a_flood_of_problems_is_listed_briefly() {
    let outline = "Chapter 1: A\n".repeat(100);
    let warnings = check_outline(&outline, Some(5));
    assert_eq!(warnings.len(), 22, "{warnings:?}");
    assert_eq!(warnings[0], "line 2: chapter 1 appears more than once");
    assert_eq!(warnings[20], "and 79 more numbering problems like these");
    assert_eq!(
        warnings[21],
        "the chapter count is 5 but the outline names 1 chapters"
    );
}

#[test]
fn a_list_item_that_names_a_chapter_is_read_as_that_chapter() {
    let outline = "1. Chapter One: Dawn\n2. Chapter Two: Dusk\n";
    let entries = parse_outline(outline);
    assert_eq!(titles(outline), ["Dawn", "Dusk"]);
    assert_eq!(entries[0].written, Some(1));
    // Still prose when it reads as prose.
    assert_eq!(numbers("Notes:\n1. Chapter 3 is too long\n"), [1]);
    assert_eq!(
        titles("Notes:\n1. Chapter 3 is too long\n"),
        ["Chapter 3 is too long"]
    );
}

#[test]
fn parts_are_not_chapters_and_an_outline_of_parts_warns() {
    warns("# Part One\n# Part Two\n", None, "no chapter found");
    assert_eq!(titles("**PART ONE**\n**Chapter 1:** Dawn\n"), ["Dawn"]);
    assert_eq!(
        numbers("Volume I\nChapter 1\nVolume II\nChapter 1\n"),
        [1, 2]
    );
}

#[test]
fn a_title_on_the_line_below_an_untitled_chapter_is_its_title() {
    let outline = "CHAPTER ONE\nThe Letter\n\nCHAPTER TWO\n\n### The Ferry\nShe pays.\n\
                   Chapter 3\nMara arrives at the coast.\nChapter 4\n- beats\nChapter 5\nChapter 6";
    assert_eq!(
        titles(outline),
        [
            "The Letter",
            "The Ferry",
            "Chapter 3",
            "Chapter 4",
            "Chapter 5",
            "Chapter 6"
        ]
    );
    assert_eq!(titles("Chapter 1\n## Learning C#\n"), ["Learning C#"]);
    assert_eq!(titles("Chapter 1\n## The Ferry ##\n"), ["The Ferry"]);
    let text = "CHAPTER ONE\nThe Letter\nIt was late.\nCHAPTER TWO\nNo title here, a sentence.\n";
    let headings = chapter_headings(text);
    assert_eq!(
        (headings[0].title.as_str(), headings[0].body.clone()),
        ("The Letter", 2..3)
    );
    assert_eq!(
        (headings[1].title.as_str(), headings[1].body.clone()),
        ("Chapter 2", 4..5)
    );
}
