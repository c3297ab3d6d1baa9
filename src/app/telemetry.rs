//! Logging setup: human-readable by default, JSON lines for log shippers.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Targets kept quiet unless a filter names Qdrant Edge itself.
///
/// `qdrant_edge::common::mmap::ops`: Qdrant Edge decides once per process
/// whether one file may have several memory maps, from a result that only
/// the Qdrant server's `main` fills in (its file-system check at start).
/// The cell is private to the crate, so an embedded index cannot fill it,
/// and every process that opens the index warns "MULTI_MMAP_SUPPORT_CHECK_RESULT
/// should be initialized before accessing MULTI_MMAP_IS_SUPPORTED" — nothing
/// an operator can act on: multi-mmap stays on, as in Qdrant's own tests.
/// The target's only other warning reports `QDRANT_NO_MULTI_MMAP`, which
/// the operator set themselves.
const QUIET: &[&str] = &["qdrant_edge::common::mmap::ops=error"];

/// Installs the global subscriber, writing to stderr so stdout stays
/// clean for command output (JSON, tables, the demo's narration).
pub fn init(format: LogFormat, filter: &str) {
    let filter = env_filter(filter);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}

/// `filter` (`--log`, `RUST_LOG` or the command's default) with the
/// [`QUIET`] targets, unless it says something about `qdrant_edge` (then it
/// is taken as it is: whoever debugs the index sees everything).
fn env_filter(filter: &str) -> EnvFilter {
    let filter = if EnvFilter::try_new(filter).is_ok() { filter } else { "info" };
    if filter.contains("qdrant_edge") {
        return EnvFilter::new(filter);
    }
    let mut directives = vec![filter];
    directives.extend_from_slice(QUIET);
    EnvFilter::new(directives.join(","))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What a subscriber with `filter` writes for a warning from each target.
    fn logged(filter: &str) -> String {
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(env_filter(filter))
            .with_writer(move || Writer(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "qdrant_edge::common::mmap::ops", "MULTI_MMAP_SUPPORT_CHECK_RESULT should be initialized");
            tracing::warn!(target: "qdrant_edge::segment", "a segment is broken");
            tracing::warn!(target: "tribute_assistant::daemon", "ours");
        });
        let text = out.lock().unwrap().clone();
        String::from_utf8(text).unwrap()
    }

    struct Writer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Writer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_mmap_check_warning_is_quiet_and_nothing_else_is() {
        for filter in ["info", "warn", "not a filter ["] {
            let text = logged(filter);
            assert!(!text.contains("MULTI_MMAP"), "{filter}: {text}");
            assert!(text.contains("a segment is broken") && text.contains("ours"), "{filter}: {text}");
        }
        // Debugging the index: everything it says.
        assert!(logged("info,qdrant_edge=debug").contains("MULTI_MMAP"));
    }
}
