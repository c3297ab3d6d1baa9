//! Texts sized to Telegram: a message may hold at most 4096 UTF-16 code
//! units, and a longer one is refused (`MESSAGE_TOO_LONG`) on every retry,
//! so nothing the desk posts may be longer. Long parts (a customer's raw
//! text, a conversation) are cut with a visible marker that says how much
//! is missing and where to read it (`/case C12`); the store keeps the
//! whole text. `/case` itself pages a long case instead of cutting it.
//!
//! Lengths are UTF-16 code units, as Telegram counts them: an emoji outside
//! the BMP is two units, a Cyrillic letter one.

pub use crate::telegram::utf16_len;

/// Telegram's limit for one message's text, in UTF-16 code units.
pub const TELEGRAM_LIMIT: usize = 4096;

/// Blocks (paragraphs) are never cut below this many units while fitting a
/// card; when that is not enough the middle of the text is cut instead.
const MIN_BLOCK: usize = 300;

/// The marker that replaces a cut tail: how much is missing and, when the
/// text belongs to a case, where to read all of it.
pub fn cut_marker(cut_chars: usize, case: Option<&str>) -> String {
    match case {
        Some(case) => format!("… [cut: {cut_chars} more characters — /case {case} shows all]"),
        None => format!("… [cut: {cut_chars} more characters]"),
    }
}

/// The longest prefix of `s` of at most `max` UTF-16 units (never splits a
/// character).
fn prefix_units(s: &str, max: usize) -> &str {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &s[..i];
        }
    }
    s
}

/// `s` unchanged if it has at most `max` units; otherwise its beginning
/// (ending at a line break or a space when one is near) and the cut marker,
/// together at most `max` units.
pub fn cut_to(s: &str, max: usize, case: Option<&str>) -> String {
    if utf16_len(s) <= max {
        return s.to_owned();
    }
    let total_chars = s.chars().count();
    // The marker with the largest count it can show, plus the separator before it.
    let marker_units = utf16_len(&cut_marker(total_chars, case)) + 1;
    if max <= marker_units {
        return prefix_units(s, max).to_owned();
    }
    let budget = max - marker_units;
    let hard = prefix_units(s, budget);
    let near = utf16_len(hard) * 3 / 4;
    let soft = [hard.rfind('\n'), hard.rfind(' ')]
        .into_iter()
        .flatten()
        .max()
        .filter(|&i| utf16_len(&hard[..i]) >= near)
        .map(|i| &hard[..i])
        .unwrap_or(hard);
    let kept = soft.trim_end();
    let sep = if soft.len() < hard.len() && hard[soft.len()..].starts_with('\n') { "\n" } else { " " };
    let cut = total_chars - kept.chars().count();
    format!("{kept}{sep}{}", cut_marker(cut, case))
}

/// The whole message at most [`TELEGRAM_LIMIT`] units. Paragraphs (blocks
/// between blank lines) keep their order; the longest ones are cut to an
/// equal size, so the short lines of a card (why, the customer, what a
/// moderator can do) stay whole and the raw text is what gets cut. If that
/// would leave too little of each, the middle of the text is cut instead,
/// keeping its beginning and its last paragraph.
pub fn fit(text: &str, case: Option<&str>) -> String {
    fit_to(text, TELEGRAM_LIMIT, case)
}

pub fn fit_to(text: &str, limit: usize, case: Option<&str>) -> String {
    if utf16_len(text) <= limit {
        return text.to_owned();
    }
    let blocks: Vec<&str> = text.split("\n\n").collect();
    let lens: Vec<usize> = blocks.iter().map(|b| utf16_len(b)).collect();
    let seps = 2 * (blocks.len() - 1);
    let size_at = |cap: usize| seps + lens.iter().map(|&l| l.min(cap)).sum::<usize>();
    let longest = lens.iter().copied().max().unwrap_or(0);
    if size_at(MIN_BLOCK) <= limit {
        // The largest cap that fits (binary search: size_at grows with cap).
        let (mut lo, mut hi) = (MIN_BLOCK, longest);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if size_at(mid) <= limit {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let out = blocks.iter().map(|b| cut_to(b, lo, case)).collect::<Vec<_>>().join("\n\n");
        if utf16_len(&out) <= limit {
            return out;
        }
    }
    // Too many long paragraphs: keep the beginning and the last paragraph.
    let (rest, tail) = match text.rsplit_once("\n\n") {
        Some((rest, tail)) if utf16_len(tail) <= limit / 3 => (rest, tail),
        _ => (text, ""),
    };
    if tail.is_empty() {
        return cut_to(text, limit, case);
    }
    format!("{}\n\n{tail}", cut_to(rest, limit - utf16_len(tail) - 2, case))
}

/// `text` in pages of at most `max` units each, split at line breaks where
/// possible (a longer line is split between characters). The pages joined
/// give back `text` exactly.
pub fn pages(text: &str, max: usize) -> Vec<String> {
    assert!(max > 1, "a page holds at least two UTF-16 units");
    let mut out = Vec::new();
    let mut page = String::new();
    let mut units = 0;
    for line in text.split_inclusive('\n') {
        let mut line = line;
        loop {
            let len = utf16_len(line);
            if units + len <= max {
                page.push_str(line);
                units += len;
                break;
            }
            if units > 0 {
                out.push(std::mem::take(&mut page));
                units = 0;
                continue;
            }
            // One line longer than a page.
            let mut head = prefix_units(line, max);
            if head.is_empty() {
                head = &line[..line.chars().next().map_or(0, char::len_utf8)];
            }
            out.push(head.to_owned());
            line = &line[head.len()..];
            if line.is_empty() {
                break;
            }
        }
    }
    if !page.is_empty() || out.is_empty() {
        out.push(page);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_are_unchanged() {
        assert_eq!(fit("Case C1\n\nhello", Some("C1")), "Case C1\n\nhello");
        assert_eq!(cut_to("abc", 3, None), "abc");
    }

    #[test]
    fn a_long_raw_text_is_cut_and_the_rest_of_the_card_kept() {
        let raw = "Я".repeat(5000);
        let card = format!("🚨 Case C12 · order\nWhy: x\n\nRaw order:\n{raw}\n\nReply to this message with:\n• /done");
        let fitted = fit(&card, Some("C12"));
        assert!(utf16_len(&fitted) <= TELEGRAM_LIMIT, "{}", utf16_len(&fitted));
        assert!(fitted.starts_with("🚨 Case C12 · order\nWhy: x\n\nRaw order:\nЯЯЯ"));
        assert!(fitted.ends_with("\n\nReply to this message with:\n• /done"));
        let kept = fitted.matches('Я').count();
        assert!(fitted.contains(&format!("[cut: {} more characters — /case C12 shows all]", 5000 - kept)), "{fitted}");
        assert!(kept > 3500, "most of the budget goes to the text: {kept}");
    }

    #[test]
    fn surrogate_pairs_count_twice_and_are_never_split() {
        let text = "🆕".repeat(3000); // 6000 units
        let fitted = fit(&text, None);
        assert!(utf16_len(&fitted) <= TELEGRAM_LIMIT);
        assert!(fitted.starts_with("🆕🆕"));
        let odd = format!("a{}", "🆕".repeat(10));
        assert_eq!(prefix_units(&odd, 4), "a🆕");
    }

    #[test]
    fn many_paragraphs_keep_the_beginning_and_the_end() {
        let body: Vec<String> = (0..400).map(|i| format!("paragraph {i} with some words")).collect();
        let text = format!("Case C3 head\n\n{}\n\nReply with /done", body.join("\n\n"));
        let fitted = fit(&text, Some("C3"));
        assert!(utf16_len(&fitted) <= TELEGRAM_LIMIT);
        assert!(fitted.starts_with("Case C3 head\n\nparagraph 0 "));
        assert!(fitted.ends_with("\n\nReply with /done"));
        assert!(fitted.contains("/case C3 shows all"));
    }

    #[test]
    fn cuts_prefer_a_line_break() {
        let text = format!("{}\n{}", "a".repeat(90), "b".repeat(50));
        let cut = cut_to(&text, 120, None);
        assert!(utf16_len(&cut) <= 120);
        assert!(cut.starts_with(&format!("{}\n… [cut: 51 more characters]", "a".repeat(90))), "{cut}");
    }

    #[test]
    fn pages_cover_the_text_and_stay_within_the_limit() {
        let mut text = String::new();
        for i in 0..300 {
            text.push_str(&format!("line {i}: {}\n", "ж🆕".repeat(i % 40)));
        }
        text.push_str(&"x".repeat(9000)); // one line longer than a page
        let pages = pages(&text, 4000);
        assert!(pages.len() > 3);
        assert!(pages.iter().all(|p| utf16_len(p) <= 4000 && !p.is_empty()));
        assert_eq!(pages.concat(), text);
        assert_eq!(super::pages("", 10), vec![String::new()]);
    }

    #[test]
    fn any_text_fits() {
        let mut rng = fastrand::Rng::with_seed(42);
        let pieces = ["a", "ж", "🆕", " ", "\n", "\n\n", "word ", "#tag ", "👨‍👩‍👧"];
        for _ in 0..300 {
            let n = rng.usize(0..12_000);
            let text: String = (0..n).map(|_| pieces[rng.usize(0..pieces.len())]).collect();
            for limit in [TELEGRAM_LIMIT, 500, 120] {
                let fitted = fit_to(&text, limit, Some("C99"));
                assert!(utf16_len(&fitted) <= limit, "{} > {limit}", utf16_len(&fitted));
                if utf16_len(&text) <= limit {
                    assert_eq!(fitted, text);
                }
            }
            for p in pages(&text, 1000) {
                assert!(utf16_len(&p) <= 1000);
            }
            assert_eq!(pages(&text, 1000).concat(), text);
        }
    }
}
