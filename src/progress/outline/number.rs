//! Reads the number in `Chapter 3`, `Chapter Three`, `Chapter Twenty-One` and
//! `Chapter XIV`: digits, English words from one to ninety-nine, and Roman
//! numerals. Each reader looks at one word (two for `Twenty One`) and stops;
//! none scans further than the word it reads.

/// Chapter numbers above this are not chapter numbers (years, typos).
pub(super) const MAX_CHAPTER_NUMBER: u32 = 100_000;

/// Longer digit runs are never chapter numbers; reading stops there.
const MAX_DIGITS: usize = 6;

const UNITS: [&str; 19] = [
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];

const TENS: [&str; 8] = [
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// The number at the start of `text` and what follows it, when it is a whole
/// word (`3:` and `Three —` are numbers, `3rd` and `Threepenny` are not).
pub(super) fn leading_number(text: &str) -> Option<(u32, &str)> {
    digits(text)
        .or_else(|| spelled(text))
        .or_else(|| roman(text))
        .filter(|(number, _)| (1..=MAX_CHAPTER_NUMBER).contains(number))
        .filter(|(_, rest)| !rest.starts_with(|c: char| c.is_alphanumeric()))
}

/// `3` in `3. Arrival`: digits only, no words.
pub(super) fn leading_digits(text: &str) -> Option<(u32, &str)> {
    digits(text).filter(|(number, _)| (1..=MAX_CHAPTER_NUMBER).contains(number))
}

fn digits(text: &str) -> Option<(u32, &str)> {
    let count = text
        .bytes()
        .take(MAX_DIGITS + 1)
        .take_while(u8::is_ascii_digit)
        .count();
    if count == 0 || count > MAX_DIGITS {
        return None;
    }
    let number = text[..count].parse().ok()?;
    Some((number, &text[count..]))
}

/// The ASCII letters at the start of `text`, at most `max` of them (a longer
/// word is returned cut, and then matches no number word).
fn word(text: &str, max: usize) -> &str {
    let len = text
        .bytes()
        .take(max + 1)
        .take_while(u8::is_ascii_alphabetic)
        .count();
    &text[..len]
}

fn unit_value(word: &str) -> Option<u32> {
    UNITS
        .iter()
        .position(|unit| unit.eq_ignore_ascii_case(word))
        .map(|index| index as u32 + 1)
}

fn tens_value(word: &str) -> Option<u32> {
    TENS.iter()
        .position(|tens| tens.eq_ignore_ascii_case(word))
        .map(|index| (index as u32 + 2) * 10)
}

/// `One` to `Nineteen`, `Twenty` to `Ninety`, and `Twenty-One` or `Twenty One`.
fn spelled(text: &str) -> Option<(u32, &str)> {
    let first = word(text, 9);
    if first.len() > 9 {
        return None;
    }
    let rest = &text[first.len()..];
    if let Some(unit) = unit_value(first) {
        return Some((unit, rest));
    }
    let tens = tens_value(first)?;
    for joiner in ["-", " "] {
        if let Some(after) = rest.strip_prefix(joiner) {
            let second = word(after, 5);
            if let Some(unit) = unit_value(second).filter(|unit| *unit <= 9) {
                let after_unit = &after[second.len()..];
                if !after_unit.starts_with(|c: char| c.is_alphanumeric()) {
                    return Some((tens + unit, after_unit));
                }
            }
        }
    }
    Some((tens, rest))
}

/// Upper-case Roman numerals in their usual form (`IV`, not `IIII`), and
/// lower-case ones made only of `i`, `v` and `x`: lower-case `mix` or `dim`
/// are words, not chapters.
fn roman(text: &str) -> Option<(u32, &str)> {
    const LONGEST: usize = 15;
    let token = word(text, LONGEST);
    if token.is_empty() || token.len() > LONGEST {
        return None;
    }
    let upper = token.bytes().all(|b| b"IVXLCDM".contains(&b));
    let lower = token.bytes().all(|b| b"ivx".contains(&b));
    if !upper && !lower {
        return None;
    }
    let value = roman_value(&token.to_ascii_uppercase())?;
    (to_roman(value) == token.to_ascii_uppercase()).then_some((value, &text[token.len()..]))
}

const ROMAN: [(u32, &str); 13] = [
    (1000, "M"),
    (900, "CM"),
    (500, "D"),
    (400, "CD"),
    (100, "C"),
    (90, "XC"),
    (50, "L"),
    (40, "XL"),
    (10, "X"),
    (9, "IX"),
    (5, "V"),
    (4, "IV"),
    (1, "I"),
];

fn roman_value(token: &str) -> Option<u32> {
    let mut rest = token;
    let mut value = 0;
    for (amount, symbol) in ROMAN {
        while let Some(after) = rest.strip_prefix(symbol) {
            value += amount;
            rest = after;
        }
    }
    (rest.is_empty() && value > 0).then_some(value)
}

fn to_roman(mut value: u32) -> String {
    let mut out = String::new();
    for (amount, symbol) in ROMAN {
        while value >= amount {
            out.push_str(symbol);
            value -= amount;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> Option<u32> {
        leading_number(text).map(|(n, _)| n)
    }

    #[test]
    fn digits_words_and_numerals() {
        assert_eq!(number("3: x"), Some(3));
        assert_eq!(number("Three — x"), Some(3));
        assert_eq!(number("NINETEEN"), Some(19));
        assert_eq!(number("Twenty-One: x"), Some(21));
        assert_eq!(number("twenty one"), Some(21));
        assert_eq!(number("Ninety-Nine"), Some(99));
        assert_eq!(number("Forty"), Some(40));
        assert_eq!(
            number("Forty-Twelve"),
            Some(40),
            "the word after is the title"
        );
        assert_eq!(number("XIV. x"), Some(14));
        assert_eq!(number("iv"), Some(4));
        assert_eq!(number("MMXXIV"), Some(2024));
    }

    #[test]
    fn words_that_are_not_numbers() {
        for text in [
            "3rd",
            "Threepenny",
            "Onward",
            "IIII",
            "IC",
            "mix",
            "dim",
            "Lid",
            "0",
            "1234567",
            "100001",
            "",
            "-3",
        ] {
            assert_eq!(number(text), None, "{text}");
        }
    }

    #[test]
    fn every_spelled_number_reads_back() {
        for value in 1..=99u32 {
            let spelled = match value {
                1..=19 => UNITS[value as usize - 1].to_string(),
                _ if value % 10 == 0 => TENS[value as usize / 10 - 2].to_string(),
                _ => format!(
                    "{}-{}",
                    TENS[value as usize / 10 - 2],
                    UNITS[value as usize % 10 - 1]
                ),
            };
            assert_eq!(number(&spelled), Some(value), "{spelled}");
            assert_eq!(number(&to_roman(value)), Some(value));
        }
    }
}
