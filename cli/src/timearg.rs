//! Times as the command line takes them: RFC 3339 text with any offset, or an integer of
//! nanoseconds since the Unix epoch (UTC), the unit the log stores.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Nanoseconds since the Unix epoch of `s`, given as RFC 3339 text
/// (`2026-01-01T00:00:00.5Z`, `2026-01-01T01:00:00+01:00`) or as an integer of nanoseconds
/// (`1767225600000000000`, `-5`).
///
/// Only the years 1677–2262 fit in the log's `i64` of nanoseconds; anything else is refused.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| {
            format!("{s:?} is outside the nanoseconds an i64 holds (the years 1677-2262)")
        });
    }
    parse_rfc3339(s).map_err(|e| format!("{e}, nor an integer of nanoseconds"))
}

/// Nanoseconds since the Unix epoch of RFC 3339 text only.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time ({e})"))?;
    i64::try_from(t.unix_timestamp_nanos())
        .map_err(|_| format!("{s:?} is outside the years 1677-2262"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_any_offset() {
        let utc = 1_767_225_600_000_000_000;
        assert_eq!(parse_time("2026-01-01T00:00:00Z"), Ok(utc));
        assert_eq!(parse_time("2026-01-01T01:00:00+01:00"), Ok(utc));
        assert_eq!(parse_time("2025-12-31T19:30:00-04:30"), Ok(utc));
        assert_eq!(parse_time("2026-01-01T00:00:00.000000001Z"), Ok(utc + 1));
        assert_eq!(parse_time("2026-01-01T00:00:00.5Z"), Ok(utc + 500_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("1969-12-31T23:59:59.999999999Z"), Ok(-1));
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00Z"), Ok(utc));
        // RFC 3339 lets a space stand for the T, and lowercase letters for T and Z.
        assert_eq!(parse_time("2026-01-01 00:00:00Z"), Ok(utc));
        assert_eq!(parse_time("2026-01-01t00:00:00z"), Ok(utc));
    }

    #[test]
    fn integer_nanoseconds() {
        assert_eq!(parse_time("0"), Ok(0));
        assert_eq!(
            parse_time("1767225600123456789"),
            Ok(1_767_225_600_123_456_789)
        );
        assert_eq!(parse_time("-5"), Ok(-5));
        assert_eq!(parse_time("+5"), Ok(5));
        assert_eq!(parse_time(&i64::MAX.to_string()), Ok(i64::MAX));
        assert_eq!(parse_time(&i64::MIN.to_string()), Ok(i64::MIN));
        // Digits are never read as RFC 3339, and RFC 3339 only accepts text.
        assert!(parse_rfc3339("5").is_err());
    }

    #[test]
    fn refuses_everything_else_with_a_reason() {
        for bad in [
            "",
            "-",
            "yesterday",
            "2026-01-01",
            "2026-01-01T00:00:00",
            "1.5",
            "1e9",
            " 5",
            "5 ",
            "0x10",
        ] {
            let err = parse_time(bad).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
            assert!(!err.contains('\n'), "{bad}: {err}");
        }
        let err = parse_time("9223372036854775808").unwrap_err();
        assert!(err.contains("1677-2262"), "{err}");
        let err = parse_time("-9223372036854775809").unwrap_err();
        assert!(err.contains("1677-2262"), "{err}");
        let err = parse_time("2263-01-01T00:00:00Z").unwrap_err();
        assert!(err.contains("1677-2262"), "{err}");
        let err = parse_time("1600-01-01T00:00:00Z").unwrap_err();
        assert!(err.contains("1677-2262"), "{err}");
    }
}
