//! Building message text together with its formatting entities.
//!
//! Telegram measures entity offsets and lengths in UTF-16 code units, not
//! bytes or chars: "🆕" is two units, "Иван" is four. Getting this wrong
//! is a classic bug (the mention lands on the wrong characters as soon as
//! an emoji precedes it), so the simulator builds every formatted message
//! through [`TextBuilder`], which counts the way Telegram does.

use tribute_assistant::telegram::{Entity, EntityKind};

pub use tribute_assistant::telegram::utf16_len;

/// Appends text piece by piece and records entities over chosen pieces,
/// with UTF-16 offsets.
#[derive(Debug, Default, Clone)]
pub struct TextBuilder {
    text: String,
    utf16: usize,
    entities: Vec<Entity>,
}

impl TextBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends plain text.
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self.utf16 += utf16_len(s);
        self
    }

    /// Appends `s` covered by an entity of `kind`. An empty `s` adds no
    /// entity, because Telegram never sends zero-length entities.
    pub fn push_entity(&mut self, s: &str, kind: EntityKind) -> &mut Self {
        let length = utf16_len(s);
        if length > 0 {
            self.entities.push(Entity { offset: self.utf16, length, kind });
        }
        self.push(s)
    }

    /// The text and its entities, in the order they were added.
    pub fn finish(self) -> (String, Vec<Entity>) {
        (self.text, self.entities)
    }
}

/// The part of `text` that an entity covers, decoded from UTF-16. Used by
/// tests to check that offsets land on the intended characters.
pub fn entity_text(text: &str, entity: &Entity) -> String {
    let units: Vec<u16> = text.encode_utf16().collect();
    let end = (entity.offset + entity.length).min(units.len());
    let start = entity.offset.min(end);
    String::from_utf16_lossy(&units[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_len_counts_surrogate_pairs_twice() {
        assert_eq!(utf16_len("abc"), 3);
        assert_eq!(utf16_len("🆕"), 2);
        assert_eq!(utf16_len("Иван"), 4);
        assert_eq!(utf16_len("€5.00"), 5);
        assert_eq!(utf16_len("👨‍👩‍👧"), 8);
    }

    #[test]
    fn entity_after_emoji_and_cyrillic_covers_the_right_text() {
        let mut b = TextBuilder::new();
        b.push("🆕 ").push_entity("Заказ", EntityKind::Bold).push("\nИмя: ");
        b.push_entity("Анна 🌸", EntityKind::MentionName { user_id: 7 });
        let (text, entities) = b.finish();
        assert_eq!(entities[0], Entity { offset: 3, length: 5, kind: EntityKind::Bold });
        assert_eq!(entity_text(&text, &entities[0]), "Заказ");
        assert_eq!(entities[1].offset, 3 + 5 + 6);
        assert_eq!(entities[1].length, 7);
        assert_eq!(entity_text(&text, &entities[1]), "Анна 🌸");
    }

    #[test]
    fn empty_entity_text_adds_no_entity() {
        let mut b = TextBuilder::new();
        b.push("x").push_entity("", EntityKind::Bold);
        assert_eq!(b.finish(), ("x".to_string(), vec![]));
    }
}
