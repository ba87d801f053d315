//! `expires`: a TOML date or datetime to Unix seconds.

use crate::calendar::days_from_civil;

/// Unix seconds of a TOML date or datetime: a local datetime is taken as UTC, a date alone as
/// midnight UTC.
pub(crate) fn unix_seconds(dt: &toml::value::Datetime) -> Result<f64, String> {
    let Some(d) = dt.date else {
        return Err(format!("expires needs a date, got the time {dt}"));
    };
    let days = days_from_civil(i64::from(d.year), i64::from(d.month), i64::from(d.day));
    let (h, m, s, ns) = dt.time.map_or((0, 0, 0, 0), |t| {
        (
            t.hour,
            t.minute,
            t.second.unwrap_or(0),
            t.nanosecond.unwrap_or(0),
        )
    });
    let offset_minutes = match dt.offset {
        Some(toml::value::Offset::Custom { minutes }) => i64::from(minutes),
        _ => 0,
    };
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s)
        - offset_minutes * 60;
    Ok(secs as f64 + f64::from(ns) / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> Result<f64, String> {
        let v: toml::Value = toml::from_str(&format!("x = {s}")).unwrap();
        unix_seconds(v.get("x").unwrap().as_datetime().unwrap())
    }

    #[test]
    fn dates_and_datetimes() {
        assert_eq!(secs("1970-01-01"), Ok(0.0));
        assert_eq!(secs("2000-03-01T00:00:00Z"), Ok(951_868_800.0));
        assert_eq!(secs("2024-02-29"), Ok(1_709_164_800.0));
        assert_eq!(secs("1969-12-31T23:00:00-01:00"), Ok(0.0));
        assert_eq!(secs("2027-06-01T00:00:00"), Ok(1_811_808_000.0));
        assert!(secs("12:00:00").is_err());
    }
}
