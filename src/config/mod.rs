//! What every part's configuration section shares: the rules a value
//! follows ([`rules`]: bounded durations, listen addresses) and URLs whose
//! credentials never reach a log ([`sensitive_url`]). Each part's own
//! section lives with the part; `app::config` assembles them.

pub mod rules;
pub mod sensitive_url;
