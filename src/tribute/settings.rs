//! `[parser]` in the config file: extra labels for a localised Tribute bot
//! and the account-ID pattern.

use anyhow::Context;
use serde::Deserialize;

use super::ParserConfig;

/// Parser settings. The label lists are added to the English defaults, so a
/// localised Tribute bot (e.g. `customer_labels = ["Покупатель"]`) works
/// without losing the original words.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParserSection {
    /// Regex for the account ID in Order Details (group 1 if present).
    pub account_pattern: Option<String>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub customer_labels: Vec<String>,
    #[serde(default)]
    pub product_labels: Vec<String>,
    #[serde(default)]
    pub price_labels: Vec<String>,
    #[serde(default)]
    pub details_labels: Vec<String>,
}

impl ParserSection {
    pub fn parser_config(&self) -> anyhow::Result<ParserConfig> {
        let mut cfg = match &self.account_pattern {
            Some(p) => ParserConfig::default()
                .with_account_pattern(p)
                .with_context(|| format!("Invalid [parser] account_pattern {p:?}"))?,
            None => ParserConfig::default(),
        };
        cfg.headers.extend(self.headers.iter().cloned());
        cfg.customer_labels.extend(self.customer_labels.iter().cloned());
        cfg.product_labels.extend(self.product_labels.iter().cloned());
        cfg.price_labels.extend(self.price_labels.iter().cloned());
        cfg.details_labels.extend(self.details_labels.iter().cloned());
        Ok(cfg)
    }
}
