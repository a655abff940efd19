//! Turning a story into a document a reader can take away: Markdown, or an
//! EPUB 3 book (title page, table of contents, one XHTML file per chapter).

use epub_builder::{EpubBuilder, EpubContent, EpubVersion, ReferenceType, ZipLibrary};

use crate::error::{Error, Result};
use crate::store::{Chapter, Story};

const EPUB_STYLESHEET: &str = "body { font-family: serif; line-height: 1.5; margin: 0 5%; }\n\
h1, h2 { text-align: center; font-weight: normal; }\n\
p { text-indent: 1.5em; margin: 0 0 0.4em; }\n\
p.premise { font-style: italic; text-indent: 0; text-align: center; }\n";

/// The whole story as an EPUB 3 file.
pub fn epub(story: &Story, chapters: &[Chapter]) -> Result<Vec<u8>> {
    build_epub(story, chapters)
        .map_err(|e| Error::Internal(format!("epub export of story {}: {e}", story.id)))
}

fn build_epub(story: &Story, chapters: &[Chapter]) -> epub_builder::Result<Vec<u8>> {
    let mut builder = EpubBuilder::new(ZipLibrary::new()?)?;
    builder.epub_version(EpubVersion::V30);
    builder.metadata("title", story.title.trim())?;
    builder.metadata("lang", "en")?;
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
    if !story.premise.trim().is_empty() {
        title_page.push_str(&format!(
            "<p class=\"premise\">{}</p>\n",
            escape_xml(story.premise.trim())
        ));
    }
    builder.add_content(
        EpubContent::new(
            "title.xhtml",
            xhtml(story.title.trim(), &title_page).as_bytes(),
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
                xhtml(&heading, &body).as_bytes(),
            )
            .title(heading)
            .reftype(ReferenceType::Text),
        )?;
    }
    let mut out = Vec::new();
    builder.generate(&mut out)?;
    Ok(out)
}

fn xhtml(title: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE html>\n\
         <html xmlns=\"http://www.w3.org/1999/xhtml\" xmlns:epub=\"http://www.idpf.org/2007/ops\" lang=\"en\" xml:lang=\"en\">\n\
         <head><meta charset=\"UTF-8\"/><title>{}</title><link rel=\"stylesheet\" type=\"text/css\" href=\"stylesheet.css\"/></head>\n\
         <body>\n{body}</body>\n</html>\n",
        escape_xml(title)
    )
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
    fn file_stems_are_safe() {
        assert_eq!(file_stem("The Storm: Part 2!"), "the-storm-part-2");
        assert_eq!(file_stem("\"; rm -rf /"), "rm-rf");
        assert_eq!(file_stem("日本"), "story");
    }
}
