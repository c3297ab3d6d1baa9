//! Rules every part's configuration section follows. Durations become unix-ms
//! due times (`now + d` in i64), so a `*_secs` value near `u64::MAX` would
//! wrap there instead of meaning "never": each section refuses one that is
//! too long, by name.

use anyhow::{bail, Context};

/// Largest duration in seconds any `*_secs` setting may have: 10 years.
pub const MAX_SECS: u64 = 10 * 366 * 24 * 3600;

/// Refuses a `*_secs` setting too large to be a due time, naming it.
pub fn bounded_secs(settings: &[(&str, Option<u64>)]) -> anyhow::Result<()> {
    for (name, value) in settings {
        if let Some(v) = value.filter(|v| *v > MAX_SECS) {
            bail!("{name} = {v} is too long: at most {MAX_SECS} seconds (10 years)");
        }
    }
    Ok(())
}

/// Parses a `listen` setting (`setting` names it in errors): `host:port`,
/// `[v6]:port`, or a bare port on 127.0.0.1.
pub fn parse_listen(setting: &str, value: &str) -> anyhow::Result<std::net::SocketAddr> {
    let v = value.trim();
    let v = v.strip_prefix(':').unwrap_or(v);
    if let Ok(port) = v.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    v.parse().with_context(|| format!("{setting} = {value:?} is not an address like \"127.0.0.1:8080\" or a port"))
}
