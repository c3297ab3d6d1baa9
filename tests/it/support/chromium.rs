//! Headless Chromium for the tests that render our HTML pages.

use std::path::Path;
use std::process::Command;

/// Debian's Chromium, which `.ci/run` installs. Without it the render test
/// named `test` is skipped, and says so on stderr (`--nocapture` shows it);
/// with `CI` set a missing Chromium fails the test instead, because CI
/// installs it.
pub fn chromium(test: &str) -> Option<&'static Path> {
    let chromium = Path::new("/usr/bin/chromium");
    if chromium.exists() {
        return Some(chromium);
    }
    assert!(!super::on_ci(), "CI is set but {} is missing: CI must install Chromium (see .ci/run)", chromium.display());
    eprintln!("SKIPPED {test}: {} is not installed (the page's structure is still checked)", chromium.display());
    None
}

/// The DOM of `page` after headless `chromium` loaded it and ran its scripts.
pub fn dump_dom(chromium: &Path, page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}
