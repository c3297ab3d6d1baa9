//! The starter FAQ shipped in `knowledge/`, compiled into the binary so that
//! `kb ingest` (without paths) and the demo work from any directory.

use super::ingest::SourceText;

/// (source name, contents) of every file in `knowledge/`.
pub const FILES: &[(&str, &str)] = &[
    ("faq.en.md", include_str!("../../knowledge/faq.en.md")),
    ("faq.ru.md", include_str!("../../knowledge/faq.ru.md")),
];

pub fn sources() -> Vec<SourceText> {
    FILES.iter().map(|(name, text)| SourceText { source: (*name).to_owned(), text: (*text).to_owned() }).collect()
}
