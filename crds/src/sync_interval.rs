//! `spec.syncInterval`: a Go-style duration string (`1h`, `30m`, `90s`, `1h30m`, `0`).

use std::time::Duration;

use crate::AzureResourceSpec;

/// The shortest re-check interval an object may ask for (the schema enforces it too).
pub const MIN_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// `syncInterval` is not a duration the schema accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "syncInterval {0:?} is neither 0 (never) nor a duration of at least 1s like 1h, 30m, 90s or 1h30m"
)]
pub struct InvalidSyncInterval(pub String);

impl AzureResourceSpec {
    /// How often a Ready object is re-checked against Azure; `None` when re-checking is off.
    pub fn sync_interval(&self) -> Result<Option<Duration>, InvalidSyncInterval> {
        let invalid = || InvalidSyncInterval(self.sync_interval.clone());
        let total = parse(&self.sync_interval).ok_or_else(invalid)?;
        if total.is_zero() {
            return Ok(None);
        }
        if total < MIN_SYNC_INTERVAL {
            return Err(invalid());
        }
        Ok(Some(total))
    }
}

/// Parses what [`crate::patterns::SYNC_INTERVAL`] accepts.
fn parse(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let amount: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else if rest.starts_with('s') {
            (Duration::from_secs(1), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(60), 1)
        } else if rest.starts_with('h') {
            (Duration::from_secs(3600), 1)
        } else {
            return None;
        };
        rest = &rest[len..];
        total = total.checked_add(unit.checked_mul(u32::try_from(amount).ok()?)?)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TemplateSource;

    fn spec_with(interval: &str) -> AzureResourceSpec {
        let mut spec = AzureResourceSpec::new("rg", TemplateSource::Bicep(String::new()));
        spec.sync_interval = interval.to_owned();
        spec
    }

    #[test]
    fn parses_single_and_compound_durations() {
        let cases = [
            ("1h", 3600),
            ("30m", 1800),
            ("90s", 90),
            ("1h30m", 5400),
            ("2h0m5s", 7205),
        ];
        for (text, secs) in cases {
            assert_eq!(
                spec_with(text).sync_interval(),
                Ok(Some(Duration::from_secs(secs))),
                "{text}"
            );
        }
        assert_eq!(
            spec_with("1500ms").sync_interval(),
            Ok(Some(Duration::from_millis(1500)))
        );
    }

    #[test]
    fn the_schema_accepts_what_parses_to_zero_or_at_least_a_second() {
        let pattern = regex::Regex::new(crate::patterns::SYNC_INTERVAL).unwrap();
        for text in [
            "0", "0s", "0m0s", "1s", "1000ms", "1500ms", "01s", "1h30m", "2h0m5s", "500ms1s",
        ] {
            assert!(pattern.is_match(text), "pattern rejects {text:?}");
            assert!(spec_with(text).sync_interval().is_ok(), "{text:?}");
        }
    }

    #[test]
    fn zero_turns_resync_off() {
        assert_eq!(spec_with("0").sync_interval(), Ok(None));
        assert_eq!(spec_with("0s").sync_interval(), Ok(None));
    }

    #[test]
    fn rejects_what_the_schema_rejects() {
        let pattern = regex::Regex::new(crate::patterns::SYNC_INTERVAL).unwrap();
        for text in [
            "", "1", "h", "1d", "1.5h", "-1h", "1h ", "1H", "m5", "00x", "1ms", "50ms", "999ms",
            "0s50ms",
        ] {
            assert!(!pattern.is_match(text), "pattern accepts {text:?}");
            assert_eq!(
                spec_with(text).sync_interval(),
                Err(InvalidSyncInterval(text.to_owned())),
                "{text:?}"
            );
        }
    }

    #[test]
    fn default_is_one_hour() {
        let spec = AzureResourceSpec::new("rg", TemplateSource::Bicep(String::new()));
        assert_eq!(spec.sync_interval(), Ok(Some(Duration::from_secs(3600))));
    }
}
