//! `[report]` in the config file, and how it becomes [`ReportSettings`].

use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use super::weekly::Weekly;
use crate::config::rules::bounded_secs;

/// `[report]`: the automation report's definitions and the weekly summary.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSection {
    /// `"mon 09:00"`: post the summary of the last seven days to the
    /// moderator chat every week at this time, UTC. Off when unset.
    pub weekly: Option<String>,
    /// An answered question counts as resolved by the agent when the
    /// customer asked nothing more and no case was opened this long after.
    #[serde(default = "default_window")]
    pub resolution_window_hours: u64,
    /// How alike two escalated questions must be (cosine of their lexical
    /// vectors, 0–1) to fall into one content gap.
    #[serde(default = "default_similarity")]
    pub gap_similarity: f64,
}

fn default_window() -> u64 {
    24
}
fn default_similarity() -> f64 {
    f64::from(super::gaps::DEFAULT_SIMILARITY)
}

impl Default for ReportSection {
    fn default() -> Self {
        toml::from_str("").expect("the empty [report] is valid")
    }
}

/// The report's settings, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSettings {
    pub weekly: Option<Weekly>,
    pub resolution_window: Duration,
    pub gap_similarity: f32,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSection::default().settings().expect("the defaults are valid")
    }
}

impl ReportSection {
    pub fn settings(&self) -> anyhow::Result<ReportSettings> {
        let weekly = self
            .weekly
            .as_deref()
            .map(Weekly::parse)
            .transpose()
            .context("[report] weekly must look like \"mon 09:00\" (a weekday and a UTC time)")?;
        let window_secs = self.resolution_window_hours.saturating_mul(3600);
        bounded_secs(&[("[report] resolution_window_hours", Some(window_secs))])?;
        if !(0.0..=1.0).contains(&self.gap_similarity) || self.gap_similarity == 0.0 {
            anyhow::bail!("[report] gap_similarity must be above 0 and at most 1, not {}", self.gap_similarity);
        }
        Ok(ReportSettings {
            weekly,
            resolution_window: Duration::from_secs(window_secs),
            gap_similarity: self.gap_similarity as f32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_clear_errors() {
        let d = ReportSettings::default();
        assert_eq!((d.weekly, d.resolution_window.as_secs()), (None, 86_400));
        let s: ReportSection = toml::from_str("weekly = \"Mon 09:00\"\nresolution_window_hours = 2").unwrap();
        let s = s.settings().unwrap();
        assert_eq!(s.weekly.unwrap().to_string(), "mon 09:00 UTC");
        assert_eq!(s.resolution_window.as_secs(), 7200);
        let bad: ReportSection = toml::from_str("weekly = \"sometimes\"").unwrap();
        assert!(format!("{:#}", bad.settings().unwrap_err()).contains("[report] weekly"));
        let bad: ReportSection = toml::from_str("resolution_window_hours = 9223372036854775807").unwrap();
        assert!(bad.settings().unwrap_err().to_string().contains("resolution_window_hours"));
        let bad: ReportSection = toml::from_str("gap_similarity = 1.5").unwrap();
        assert!(bad.settings().unwrap_err().to_string().contains("gap_similarity"));
        assert!(toml::from_str::<ReportSection>("daily = true").is_err(), "unknown keys are errors");
    }
}
