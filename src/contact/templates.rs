//! The texts we write to customers: `prompts/contact/<name>.<lang>.md`.
//!
//! Read at every use from the configured prompts dir, so a publisher edits
//! them without rebuilding or restarting; a file that is missing there
//! falls back to the copy embedded at build time, so the demo works from
//! any directory. A leading `<!-- ... -->` comment (what the placeholders
//! mean) is not sent. Placeholders are `{name}`-style; unknown ones stay.

use std::path::PathBuf;

use crate::domain::Language;

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(
            ($name, Language::Ru, include_str!(concat!("../../prompts/contact/", $name, ".ru.md"))),
            ($name, Language::En, include_str!(concat!("../../prompts/contact/", $name, ".en.md"))),
        )*]
    };
}

/// Every template with its embedded default.
const EMBEDDED: &[(&str, Language, &str)] = embedded!(
    "ask_account",
    "problem_missing_account",
    "problem_ambiguous_account",
    "problem_no_pending_order",
    "problem_unknown_account",
    "already_fulfilled",
    "ask_again_none",
    "ask_again_none_forwarded",
    "ask_again_several",
    "id_rejected",
    "id_rejected_thrice",
    "reminder",
    "thanks",
    "team_answer",
    "question_forwarded",
);

/// Names of the templates, for docs and checks.
pub fn names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().filter(|(_, l, _)| *l == Language::Ru).map(|(n, _, _)| *n)
}

#[derive(Debug, Clone, Default)]
pub struct Templates {
    /// The prompts dir; templates are read from `<dir>/contact/`.
    dir: Option<PathBuf>,
}

impl Templates {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// The template's text in `lang`, placeholders filled from `vars`.
    pub fn render(&self, name: &str, lang: Language, vars: &[(&str, &str)]) -> String {
        let raw = self.raw(name, lang);
        crate::template::fill(strip_comment(&raw).trim(), vars)
    }

    fn raw(&self, name: &str, lang: Language) -> String {
        if let Some(dir) = &self.dir {
            let path = dir.join("contact").join(format!("{name}.{}.md", lang.as_str()));
            match std::fs::read_to_string(&path) {
                Ok(text) => return text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read a template; using the built-in one")
                }
            }
        }
        EMBEDDED
            .iter()
            .find(|(n, l, _)| *n == name && *l == lang)
            .map(|(_, _, t)| (*t).to_owned())
            .unwrap_or_else(|| panic!("no built-in template {name}.{lang}"))
    }
}

fn strip_comment(s: &str) -> &str {
    let t = s.trim_start();
    match t.strip_prefix("<!--").and_then(|rest| rest.find("-->").map(|i| &rest[i + 3..])) {
        Some(after) => after,
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_templates_render_without_their_comment() {
        let t = Templates::default();
        let s = t.render("thanks", Language::En, &[("product", "VIP"), ("account", "42")]);
        assert!(s.starts_with("Done! VIP"), "{s}");
        assert!(s.contains("account 42"));
        assert!(!s.contains("<!--"));
        for name in names() {
            for lang in [Language::Ru, Language::En] {
                assert!(!t.render(name, lang, &[]).is_empty(), "{name}.{lang}");
            }
        }
    }

    #[test]
    fn a_file_in_the_prompts_dir_wins_and_is_read_at_every_use() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("contact")).unwrap();
        let t = Templates::new(Some(dir.path().to_owned()));
        assert!(t.render("thanks", Language::Ru, &[]).starts_with("Готово"));
        std::fs::write(dir.path().join("contact/thanks.ru.md"), "Спасибо, {name}!").unwrap();
        assert_eq!(t.render("thanks", Language::Ru, &[("name", "Аня")]), "Спасибо, Аня!");
    }
}
