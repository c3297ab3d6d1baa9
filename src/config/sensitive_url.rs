//! URLs that may carry credentials (`https://user:password@host/…`).
//!
//! Every configured endpoint (the publisher's backend, the LLM and
//! embedding providers, a Qdrant server) may be given with a user name and
//! password in it; HTTP clients turn that into Basic auth, so it is a
//! legitimate way to configure them. Such a URL must never reach a log
//! line, an error message, `check`'s output or a `Debug` dump. Two tools:
//! [`SensitiveUrl`] for configured values (its `Display` and `Debug` hide
//! the credentials; only [`SensitiveUrl::expose`] gives the real string to
//! the code that connects), and [`redact_credentials`] for any text that
//! may embed a URL, such as a client library's error message.

use std::borrow::Cow;
use std::fmt;

/// What replaces the `user:password` part.
const MASK: &str = "***";

/// Replaces the user-info of every URL in `text` (`scheme://user:pass@host`)
/// with `***`, leaving everything else as it is.
///
/// The authority ends at `/`, `?`, `#`, whitespace, a quote or an angle
/// bracket; the last `@` in it ends the user-info (an `@` inside a password
/// must be percent-encoded). A password with other punctuation (`,`, `)`)
/// is still covered, because those do not end the authority.
pub fn redact_credentials(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut done = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let start = search + found + 3;
        let authority_len = text[start..]
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>') || c.is_whitespace())
            .unwrap_or(text.len() - start);
        let authority = &text[start..start + authority_len];
        if let Some(at) = authority.rfind('@') {
            out.push_str(&text[done..start]);
            out.push_str(MASK);
            done = start + at;
        }
        search = start + authority_len;
    }
    if done == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[done..]);
    Cow::Owned(out)
}

/// A configured URL whose `Display` and `Debug` never show credentials.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct SensitiveUrl(String);

impl SensitiveUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The real URL, credentials included: only for the code that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its credentials masked, for messages.
    pub fn redacted(&self) -> Cow<'_, str> {
        redact_credentials(&self.0)
    }
}

impl From<String> for SensitiveUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl fmt::Display for SensitiveUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for SensitiveUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.redacted(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_user_info_of_every_url_in_a_text() {
        for (text, expected) in [
            ("https://user:pa55@shop.example/api", "https://***@shop.example/api"),
            ("http://token@h:8080", "http://***@h:8080"),
            ("http://u:p,a)ss@h/x?y=z@w", "http://***@h/x?y=z@w"),
            ("for url (https://a:b@h) and http://c:d@i/", "for url (https://***@h) and http://***@i/"),
            ("\"http://u:p@h\"", "\"http://***@h\""),
            ("http://u:p%40q@h", "http://***@h"),
        ] {
            assert_eq!(redact_credentials(text), expected, "{text}");
        }
        for clean in ["https://shop.example/a@b", "no url here", "mailto:me@example.com", "http://h/?q=@x", "x://"] {
            assert!(matches!(redact_credentials(clean), Cow::Borrowed(_)), "{clean}");
        }
    }

    #[test]
    fn display_and_debug_hide_credentials_and_expose_does_not() {
        let url = SensitiveUrl::new("https://admin:hunter2@qdrant.example:6334");
        assert_eq!(url.to_string(), "https://***@qdrant.example:6334");
        assert_eq!(format!("{url:?}"), "\"https://***@qdrant.example:6334\"");
        assert_eq!(url.expose(), "https://admin:hunter2@qdrant.example:6334");
        let parsed: Option<SensitiveUrl> =
            toml::from_str::<toml::Table>("u = \"http://a:b@h\"").unwrap()["u"].clone().try_into().ok();
        assert_eq!(parsed.unwrap().expose(), "http://a:b@h");
    }
}
