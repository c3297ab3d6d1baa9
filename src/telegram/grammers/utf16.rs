//! Telegram measures entity offsets and lengths in UTF-16 code units, and
//! so does our [`crate::telegram::Entity`]: the adapter passes them through
//! unchanged. These helpers check and read such ranges on Rust strings
//! (UTF-8), e.g. to validate an entity or to log the text it covers.

/// Length of `s` in UTF-16 code units.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Byte index in `s` of the UTF-16 offset `units`, if it falls on a character boundary
/// (not inside a surrogate pair) and within the text.
pub fn byte_index(s: &str, units: usize) -> Option<usize> {
    let mut seen = 0;
    for (i, c) in s.char_indices() {
        if seen == units {
            return Some(i);
        }
        if seen > units {
            return None;
        }
        seen += c.len_utf16();
    }
    (seen == units).then_some(s.len())
}

/// The text covered by a UTF-16 range, or `None` if the range is out of bounds or
/// splits a surrogate pair.
pub fn slice(s: &str, offset: usize, length: usize) -> Option<&str> {
    let start = byte_index(s, offset)?;
    let end = byte_index(s, offset.checked_add(length)?)?;
    s.get(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_cyrillic_and_emoji() {
        // 🆕 is one char, two UTF-16 units, four bytes; Cyrillic letters are one unit, two bytes.
        let text = "🆕 Заказ: Иван";
        assert_eq!(utf16_len("🆕"), 2);
        assert_eq!(utf16_len(text), 2 + 1 + 6 + 1 + 4);
        let offset = utf16_len("🆕 Заказ: ");
        assert_eq!(offset, 10);
        assert_eq!(slice(text, offset, 4), Some("Иван"));
        assert_eq!(slice(text, 0, 2), Some("🆕"));
        // Inside the surrogate pair.
        assert_eq!(slice(text, 1, 2), None);
        // Past the end.
        assert_eq!(slice(text, offset, 5), None);
        assert_eq!(slice(text, utf16_len(text), 0), Some(""));
    }

    #[test]
    fn byte_index_matches_char_boundaries() {
        let s = "a👍b";
        assert_eq!(byte_index(s, 0), Some(0));
        assert_eq!(byte_index(s, 1), Some(1));
        assert_eq!(byte_index(s, 2), None);
        assert_eq!(byte_index(s, 3), Some(5));
        assert_eq!(byte_index(s, 4), Some(6));
        assert_eq!(byte_index(s, 5), None);
    }
}
