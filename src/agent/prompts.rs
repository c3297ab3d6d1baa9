//! Prompts and holding messages: files in the prompts dir, read at run
//! time so an operator can edit them without rebuilding; a missing file
//! falls back to the text built into the binary.

use std::path::Path;

use anyhow::Context;

use super::Lang;

pub const SYSTEM_FILE: &str = "system.md";
pub const HOLDING_RU_FILE: &str = "holding_ru.txt";
pub const HOLDING_EN_FILE: &str = "holding_en.txt";

const DEFAULT_SYSTEM: &str = include_str!("../../prompts/agent/system.md");
const DEFAULT_HOLDING_RU: &str = include_str!("../../prompts/agent/holding_ru.txt");
const DEFAULT_HOLDING_EN: &str = include_str!("../../prompts/agent/holding_en.txt");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompts {
    pub system: String,
    pub holding_ru: String,
    pub holding_en: String,
}

impl Default for Prompts {
    fn default() -> Self {
        Self {
            system: DEFAULT_SYSTEM.trim().to_owned(),
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
        for (file, slot) in
            [(SYSTEM_FILE, &mut p.system), (HOLDING_RU_FILE, &mut p.holding_ru), (HOLDING_EN_FILE, &mut p.holding_en)]
        {
            let path = dir.join(file);
            if !path.exists() {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("Failed to read the prompt {}", path.display()))?;
            if text.trim().is_empty() {
                anyhow::bail!("The prompt file {} is empty", path.display());
            }
            *slot = text.trim().to_owned();
        }
        Ok(p)
    }

    /// The honest "a person will answer" message.
    pub fn holding(&self, lang: Lang) -> &str {
        match lang {
            Lang::Ru => &self.holding_ru,
            Lang::En => &self.holding_en,
        }
    }
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
