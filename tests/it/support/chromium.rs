//! Headless Chromium for the tests that render our HTML pages.

use std::path::Path;

/// Debian's Chromium, which `.ci/run` installs. Without it the render test
/// named `test` is skipped, and says so on stderr (`--nocapture` shows it);
/// with `CI` set a missing Chromium fails the test instead, because CI
/// installs it.
pub fn chromium(test: &str) -> Option<&'static Path> {
    let chromium = Path::new("/usr/bin/chromium");
    if chromium.exists() {
        return Some(chromium);
    }
    let on_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(!on_ci, "CI is set but {} is missing: CI must install Chromium (see .ci/run)", chromium.display());
    eprintln!("SKIPPED {test}: {} is not installed (the page's structure is still checked)", chromium.display());
    None
}
