//! `spec.syncInterval`: a Go-style duration string (`1h`, `30m`, `90s`, `1h30m`, `0`).

use std::time::Duration;

use crate::AzureResourceSpec;

/// `syncInterval` is not a duration the schema accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syncInterval {0:?} is not a duration like 1h, 30m, 90s, 1h30m or 0")]
pub struct InvalidSyncInterval(pub String);

impl AzureResourceSpec {
    /// How often a Ready object is re-checked against Azure; `None` when re-checking is off.
    pub fn sync_interval(&self) -> Result<Option<Duration>, InvalidSyncInterval> {
        let total = parse(&self.sync_interval)
            .ok_or_else(|| InvalidSyncInterval(self.sync_interval.clone()))?;
        Ok((!total.is_zero()).then_some(total))
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
    fn zero_turns_resync_off() {
        assert_eq!(spec_with("0").sync_interval(), Ok(None));
        assert_eq!(spec_with("0s").sync_interval(), Ok(None));
    }

    #[test]
    fn rejects_what_the_schema_rejects() {
        let pattern = regex::Regex::new(crate::patterns::SYNC_INTERVAL).unwrap();
        for text in ["", "1", "h", "1d", "1.5h", "-1h", "1h ", "1H", "m5", "00x"] {
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
