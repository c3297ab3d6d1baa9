//! Prompts and holding messages: files in the prompts dir, read at run
//! time so an operator can edit them without rebuilding; a missing file
//! falls back to the text built into the binary.

use std::path::Path;

use anyhow::Context;

use super::Lang;

pub const SYSTEM_FILE: &str = "system.md";
pub const HOLDING_RU_FILE: &str = "holding_ru.txt";
pub const HOLDING_EN_FILE: &str = "holding_en.txt";
/// The system prompt retold in Russian: never sent, only recognised (leak check).
pub const SYSTEM_RU_FILE: &str = "system.ru.md";

const DEFAULT_SYSTEM: &str = include_str!("../../prompts/agent/system.md");
const DEFAULT_HOLDING_RU: &str = include_str!("../../prompts/agent/holding_ru.txt");
const DEFAULT_HOLDING_EN: &str = include_str!("../../prompts/agent/holding_en.txt");
const DEFAULT_SYSTEM_RU: &str = include_str!("../../prompts/agent/system.ru.md");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompts {
    pub system: String,
    /// [`SYSTEM_RU_FILE`], its leading `<!-- … -->` note removed.
    pub system_ru: String,
    pub holding_ru: String,
    pub holding_en: String,
}

impl Default for Prompts {
    fn default() -> Self {
        Self {
            system: DEFAULT_SYSTEM.trim().to_owned(),
            system_ru: without_note(DEFAULT_SYSTEM_RU),
            holding_ru: DEFAULT_HOLDING_RU.trim().to_owned(),
            holding_en: DEFAULT_HOLDING_EN.trim().to_owned(),
        }
    }
}

impl Prompts {
    /// Reads the files that exist in `dir` (any of them may be missing; an
    /// unreadable or empty one is an error naming it).
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut p = Self::default();
        for (file, slot) in [
            (SYSTEM_FILE, &mut p.system),
            (SYSTEM_RU_FILE, &mut p.system_ru),
            (HOLDING_RU_FILE, &mut p.holding_ru),
            (HOLDING_EN_FILE, &mut p.holding_en),
        ] {
            let path = dir.join(file);
            if !path.exists() {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("Failed to read the prompt {}", path.display()))?;
            if text.trim().is_empty() {
                anyhow::bail!("The prompt file {} is empty", path.display());
            }
            *slot = without_note(&text);
        }
        Ok(p)
    }

    /// Every rendering of the system prompt, for the leak check.
    pub fn system_renderings(&self) -> [&str; 2] {
        [&self.system, &self.system_ru]
    }

    /// The honest "a person will answer" message.
    pub fn holding(&self, lang: Lang) -> &str {
        match lang {
            Lang::Ru => &self.holding_ru,
            Lang::En => &self.holding_en,
        }
    }
}

/// The text without a leading `<!-- … -->` note to the operator.
fn without_note(text: &str) -> String {
    let t = text.trim_start();
    let t = t.strip_prefix("<!--").and_then(|rest| rest.find("-->").map(|i| &rest[i + 3..])).unwrap_or(t);
    t.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_override_the_built_in_text_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(HOLDING_EN_FILE), "A human will reply soon.\n").unwrap();
        let p = Prompts::load(dir.path()).unwrap();
        assert_eq!(p.holding(Lang::En), "A human will reply soon.");
        assert_eq!(p.holding(Lang::Ru), Prompts::default().holding_ru);
        assert!(p.system.contains("customer_message"));
        std::fs::write(dir.path().join(SYSTEM_FILE), "  \n").unwrap();
        let err = Prompts::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains(SYSTEM_FILE), "{err}");
    }
}
