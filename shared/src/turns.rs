//! Speaker turns: who spoke when, from the transcriber, the local diarizer or a label file.

use serde::{Deserialize, Serialize};

/// One stretch of speech by one speaker label (labels are local to a clip: "A", "B", or a name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub start_s: f64,
    pub end_s: f64,
    pub speaker: String,
}

impl Turn {
    pub fn duration_s(&self) -> f64 {
        (self.end_s - self.start_s).max(0.0)
    }

    /// The turn without `trim_s` at each end, where a diarizer's boundary is least sure and a
    /// neighbour's voice may bleed in; never shorter than `CORE_MIN_S` (or the whole turn).
    pub fn core(&self, trim_s: f64) -> (f64, f64) {
        let trim = trim_s.min(((self.duration_s() - CORE_MIN_S) / 2.0).max(0.0));
        (self.start_s + trim, self.end_s - trim)
    }
}

/// A turn's core is never shorter than this (or the whole turn, if shorter).
pub const CORE_MIN_S: f64 = 0.8;

/// Turns of at least `min_ms`, grouped by speaker label in order of first appearance.
///
/// Short turns are mostly back-channel ("yes", "thanks") and overlap: too little voice to embed.
pub fn speakers_with_speech(turns: &[Turn], min_ms: u64) -> Vec<(String, Vec<Turn>)> {
    let min_s = min_ms as f64 / 1000.0;
    let mut groups: Vec<(String, Vec<Turn>)> = Vec::new();
    for turn in turns.iter().filter(|t| t.duration_s() >= min_s) {
        match groups.iter_mut().find(|(label, _)| *label == turn.speaker) {
            Some((_, list)) => list.push(turn.clone()),
            None => groups.push((turn.speaker.clone(), vec![turn.clone()])),
        }
    }
    groups
}

/// Parses the `start-end:speaker;…` segment notation of labels.csv.
pub fn parse_segments(text: &str) -> Result<Vec<Turn>, String> {
    text.split(';')
        .filter(|s| !s.trim().is_empty())
        .map(|seg| {
            let (span, speaker) = seg
                .split_once(':')
                .ok_or_else(|| format!("segment `{seg}` has no `:speaker`"))?;
            let (start, end) = span
                .split_once('-')
                .ok_or_else(|| format!("segment `{seg}` has no `start-end`"))?;
            let parse = |v: &str| {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("segment `{seg}`: `{v}` is not a time"))
            };
            let (start_s, end_s) = (parse(start)?, parse(end)?);
            if !(start_s.is_finite() && end_s.is_finite() && end_s > start_s && start_s >= 0.0) {
                return Err(format!("segment `{seg}` does not run forward in time"));
            }
            Ok(Turn {
                start_s,
                end_s,
                speaker: speaker.trim().to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_parse_and_short_turns_drop() {
        let turns = parse_segments("0.5-3.0:a;3.2-3.9:b;4.0-6.0:b;6.1-8:a").unwrap();
        assert_eq!(turns.len(), 4);
        let groups = speakers_with_speech(&turns, 1000);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].0, "a");
        assert_eq!(groups[0].1.len(), 2);
        assert_eq!(groups[1].1.len(), 1, "the 0.7 s turn of b is dropped");
    }

    #[test]
    fn bad_segments_are_errors() {
        assert!(parse_segments("1-0.5:a").is_err());
        assert!(parse_segments("0.5:a").is_err());
        assert!(parse_segments("x-1:a").is_err());
        assert!(parse_segments("0-1").is_err());
    }
}
