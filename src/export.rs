//! Turning a story into a document a reader can take away: Markdown, or an
//! EPUB 3 book (title page, table of contents, one XHTML file per chapter).
//!
//! The EPUB carries the story's author as `dc:creator` (none when empty) and
//! its language as `dc:language`, a BCP 47 tag mapped from the language name
//! the writer gave ([`language_tag`]); a name the map does not know, or a
//! language without a tag, is `und` (undetermined), which is valid and
//! honest, rather than a guess.

use epub_builder::{EpubBuilder, EpubContent, EpubVersion, ReferenceType, ZipLibrary};

use crate::error::{Error, Result};
use crate::store::{Chapter, Story};

const EPUB_STYLESHEET: &str = "body { font-family: serif; line-height: 1.5; margin: 0 5%; }\n\
h1, h2 { text-align: center; font-weight: normal; }\n\
p { text-indent: 1.5em; margin: 0 0 0.4em; }\n\
p.premise { font-style: italic; text-indent: 0; text-align: center; }\n\
p.author { text-indent: 0; text-align: center; }\n";

/// The whole story as an EPUB 3 file.
pub fn epub(story: &Story, chapters: &[Chapter]) -> Result<Vec<u8>> {
    build_epub(story, chapters)
        .map_err(|e| Error::Internal(format!("epub export of story {}: {e}", story.id)))
}

fn build_epub(story: &Story, chapters: &[Chapter]) -> epub_builder::Result<Vec<u8>> {
    let mut builder = EpubBuilder::new(ZipLibrary::new()?)?;
    builder.epub_version(EpubVersion::V30);
    builder.metadata("title", story.title.trim())?;
    let lang = language_tag(&story.language);
    builder.metadata("lang", lang)?;
    if !story.author.trim().is_empty() {
        builder.metadata("author", story.author.trim())?;
    }
    builder.metadata(
        "generator",
        concat!("storyflow ", env!("CARGO_PKG_VERSION")),
    )?;
    if let Ok(id) = uuid::Uuid::parse_str(story.id.as_str()) {
        builder.set_uuid(id);
    }
    if !story.premise.trim().is_empty() {
        builder.add_description(story.premise.trim());
    }
    builder.stylesheet(EPUB_STYLESHEET.as_bytes())?;
    let mut title_page = format!("<h1>{}</h1>\n", escape_xml(story.title.trim()));
    if !story.author.trim().is_empty() {
        title_page.push_str(&format!(
            "<p class=\"author\">{}</p>\n",
            escape_xml(story.author.trim())
        ));
    }
    if !story.premise.trim().is_empty() {
        title_page.push_str(&format!(
            "<p class=\"premise\">{}</p>\n",
            escape_xml(story.premise.trim())
        ));
    }
    builder.add_content(
        EpubContent::new(
            "title.xhtml",
            xhtml(story.title.trim(), &title_page, lang).as_bytes(),
        )
        .title(story.title.trim())
        .reftype(ReferenceType::TitlePage),
    )?;
    builder.inline_toc();
    for chapter in chapters {
        let heading = format!("Chapter {}: {}", chapter.number, chapter.title.trim());
        let mut body = format!("<h2>{}</h2>\n", escape_xml(&heading));
        for paragraph in chapter
            .content
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            body.push_str(&format!(
                "<p>{}</p>\n",
                escape_xml(&paragraph.replace('\n', " "))
            ));
        }
        builder.add_content(
            EpubContent::new(
                format!("chapter_{:04}.xhtml", chapter.number),
                xhtml(&heading, &body, lang).as_bytes(),
            )
            .title(heading)
            .reftype(ReferenceType::Text),
        )?;
    }
    let mut out = Vec::new();
    builder.generate(&mut out)?;
    Ok(out)
}

fn xhtml(title: &str, body: &str, lang: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE html>\n\
         <html xmlns=\"http://www.w3.org/1999/xhtml\" xmlns:epub=\"http://www.idpf.org/2007/ops\" lang=\"{lang}\" xml:lang=\"{lang}\">\n\
         <head><meta charset=\"UTF-8\"/><title>{}</title><link rel=\"stylesheet\" type=\"text/css\" href=\"stylesheet.css\"/></head>\n\
         <body>\n{body}</body>\n</html>\n",
        escape_xml(title)
    )
}

/// The BCP 47 tag of a language named in English (`French` → `fr`), for
/// the common languages; `und` for the rest. A name already given as a
/// known tag (`fr`, `pt-BR`) keeps its primary tag.
pub fn language_tag(name: &str) -> &'static str {
    const TAGS: &[(&str, &str)] = &[
        ("english", "en"),
        ("french", "fr"),
        ("german", "de"),
        ("spanish", "es"),
        ("italian", "it"),
        ("portuguese", "pt"),
        ("dutch", "nl"),
        ("japanese", "ja"),
        ("chinese", "zh"),
        ("russian", "ru"),
        ("polish", "pl"),
        ("swedish", "sv"),
        ("danish", "da"),
        ("norwegian", "no"),
        ("finnish", "fi"),
        ("greek", "el"),
        ("turkish", "tr"),
        ("arabic", "ar"),
        ("hebrew", "he"),
        ("hindi", "hi"),
        ("korean", "ko"),
        ("czech", "cs"),
        ("hungarian", "hu"),
        ("romanian", "ro"),
        ("ukrainian", "uk"),
        ("catalan", "ca"),
        ("irish", "ga"),
        ("welsh", "cy"),
        ("latin", "la"),
    ];
    let name = name.trim().to_lowercase();
    let primary = name.split(['-', '_']).next().unwrap_or("");
    TAGS.iter()
        .find(|(language, tag)| *language == name || *tag == primary)
        .map_or("und", |(_, tag)| tag)
}

/// Text as XML character data: the five special characters escaped, and
/// characters XML 1.0 forbids (most control characters) dropped.
fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The whole story as Markdown: title, premise, then each chapter in order.
pub fn markdown(story: &Story, chapters: &[Chapter]) -> String {
    let mut out = format!("# {}\n\n", story.title.trim());
    if !story.author.trim().is_empty() {
        out.push_str(&format!("by {}\n\n", story.author.trim()));
    }
    if !story.premise.trim().is_empty() {
        out.push_str(&format!(
            "> {}\n\n",
            story.premise.trim().replace('\n', "\n> ")
        ));
    }
    for chapter in chapters {
        out.push_str(&format!(
            "## Chapter {}: {}\n\n{}\n\n",
            chapter.number,
            chapter.title.trim(),
            chapter.content.trim()
        ));
    }
    out
}

/// A file name made from a title: lowercase ASCII words joined by dashes.
pub fn file_stem(title: &str) -> String {
    let stem: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let stem: String = stem.chars().take(60).collect();
    if stem.is_empty() {
        "story".into()
    } else {
        stem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_is_escaped_and_control_characters_dropped() {
        assert_eq!(
            escape_xml("<img src=x onerror=alert(1)> & \"q\" \u{1}"),
            "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;q&quot; "
        );
    }

    #[test]
    fn language_names_map_to_bcp47_tags() {
        for (name, tag) in [
            ("English", "en"),
            (" french ", "fr"),
            ("German", "de"),
            ("Spanish", "es"),
            ("Italian", "it"),
            ("Portuguese", "pt"),
            ("Dutch", "nl"),
            ("Japanese", "ja"),
            ("Chinese", "zh"),
            ("pt-BR", "pt"),
            ("Klingon", "und"),
            ("", "und"),
        ] {
            assert_eq!(language_tag(name), tag, "{name}");
        }
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("The Storm: Part 2!"), "the-storm-part-2");
        assert_eq!(file_stem("\"; rm -rf /"), "rm-rf");
        assert_eq!(file_stem("日本"), "story");
    }
}
