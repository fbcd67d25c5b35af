//! Location ids, dates and date ranges as the CLI takes them, and transaction ids in file names.

use std::fmt;

/// `8-4-4-4-12` hexadecimal digits.
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The first UUID anywhere in `name` (a clip's transaction id), lower-cased.
pub fn first_uuid(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    (0..bytes.len().saturating_sub(35)).find_map(|i| {
        let candidate = name.get(i..i + 36)?;
        let bounded = |j: Option<&u8>| j.is_none_or(|c| !c.is_ascii_hexdigit());
        (is_uuid(candidate)
            && bounded(i.checked_sub(1).and_then(|j| bytes.get(j)))
            && bounded(bytes.get(i + 36)))
        .then(|| candidate.to_ascii_lowercase())
    })
}

/// A random (version 4) UUID for a new job.
pub fn new_job_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CivilDate(time::Date);

impl CivilDate {
    /// `YYYY-MM-DD`, a real calendar day.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a date (YYYY-MM-DD)");
        let parts: Vec<&str> = s.split('-').collect();
        if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
            return Err(bad());
        }
        let year: i32 = parts[0].parse().map_err(|_| bad())?;
        let month: u8 = parts[1].parse().map_err(|_| bad())?;
        let day: u8 = parts[2].parse().map_err(|_| bad())?;
        let month = time::Month::try_from(month).map_err(|_| bad())?;
        time::Date::from_calendar_date(year, month, day)
            .map(Self)
            .map_err(|_| format!("`{s}` is not a calendar day"))
    }
}

impl fmt::Display for CivilDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}",
            d.year(),
            u8::from(d.month()),
            d.day()
        )
    }
}

/// Longest range one run takes: a typo in a year should not enqueue a decade.
pub const MAX_RANGE_DAYS: i64 = 366;

/// `DATE` or an inclusive `START..END`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub start: CivilDate,
    pub end: CivilDate,
}

impl DateRange {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (start, end) = match s.split_once("..") {
            Some((a, b)) => (CivilDate::parse(a)?, CivilDate::parse(b)?),
            None => {
                let d = CivilDate::parse(s)?;
                (d, d)
            }
        };
        if end < start {
            return Err(format!("`{s}`: the range ends before it starts"));
        }
        if (end.0 - start.0).whole_days() >= MAX_RANGE_DAYS {
            return Err(format!("`{s}`: a run covers at most {MAX_RANGE_DAYS} days"));
        }
        Ok(Self { start, end })
    }

    pub fn days(&self) -> Vec<CivilDate> {
        std::iter::successors(Some(self.start.0), |d| d.next_day())
            .take_while(|d| *d <= self.end.0)
            .map(CivilDate)
            .collect()
    }
}

impl fmt::Display for DateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}..{}", self.start, self.end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_recognised_and_found_in_names() {
        assert!(is_uuid("8f14e45f-ceea-467a-9af0-2f1a3c6a1d5e"));
        assert!(!is_uuid("8f14e45f-ceea-467a-9af0-2f1a3c6a1d5"));
        assert!(!is_uuid("8f14e45f-ceea-467a-9af0-2f1a3c6a1d5g"));
        assert_eq!(
            first_uuid("till1_9B56A107-5ce9-4051-844f-6b6b2b6e25d4.wav").as_deref(),
            Some("9b56a107-5ce9-4051-844f-6b6b2b6e25d4")
        );
        assert_eq!(first_uuid("clip_001.wav"), None);
        assert_eq!(
            first_uuid("a9b56a107-5ce9-4051-844f-6b6b2b6e25d4.wav"),
            None,
            "a hex digit glued in front: not a UUID"
        );
        assert!(first_uuid("x9b56a107-5ce9-4051-844f-6b6b2b6e25d4.wav").is_some());
    }

    #[test]
    fn dates_and_ranges() {
        assert_eq!(
            CivilDate::parse("2024-02-29").unwrap().to_string(),
            "2024-02-29"
        );
        assert!(CivilDate::parse("2025-02-29").is_err());
        assert!(CivilDate::parse("2025-13-01").is_err());
        assert!(CivilDate::parse("2025-1-01").is_err());
        assert!(CivilDate::parse("yesterday").is_err());
        let r = DateRange::parse("2024-12-30..2025-01-02").unwrap();
        let days: Vec<String> = r.days().iter().map(ToString::to_string).collect();
        assert_eq!(
            days,
            ["2024-12-30", "2024-12-31", "2025-01-01", "2025-01-02"]
        );
        assert_eq!(DateRange::parse("2025-10-06").unwrap().days().len(), 1);
        assert!(DateRange::parse("2025-10-06..2025-10-05").is_err());
        assert!(DateRange::parse("2015-10-06..2025-10-05").is_err());
    }
}
