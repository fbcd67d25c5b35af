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

/// A random (version 4) UUID for a new job; from the kernel's random source, with the clock
/// and process id as a fallback where it cannot be read.
pub fn new_job_id() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        b[..8].copy_from_slice(&(now.as_nanos() as u64).to_le_bytes());
        b[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CivilDate {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl CivilDate {
    /// `YYYY-MM-DD`, a real calendar day.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a date (YYYY-MM-DD)");
        let parts: Vec<&str> = s.split('-').collect();
        if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
            return Err(bad());
        }
        let year: i32 = parts[0].parse().map_err(|_| bad())?;
        let month: u32 = parts[1].parse().map_err(|_| bad())?;
        let day: u32 = parts[2].parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(format!("`{s}` is not a calendar day"));
        }
        Ok(Self { year, month, day })
    }

    /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    fn to_days(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    fn from_days(z: i64) -> Self {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Self { year, month, day }
    }
}

impl fmt::Display for CivilDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
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
        if end.to_days() - start.to_days() >= MAX_RANGE_DAYS {
            return Err(format!("`{s}`: a run covers at most {MAX_RANGE_DAYS} days"));
        }
        Ok(Self { start, end })
    }

    pub fn days(&self) -> Vec<CivilDate> {
        (self.start.to_days()..=self.end.to_days())
            .map(CivilDate::from_days)
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
