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

/// One speaker of a clip, as it is identified: the decision rule in one place for every stage.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerSpeech {
    pub label: String,
    /// The speaker's turns that are long enough to identify it.
    pub turns: Vec<Turn>,
    /// Their total length: the clip's worker is the matched speaker with the most speech.
    pub speech_s: f64,
    /// The parts embedded, `(start_s, end_s)`: each turn's core (see `Turn::core`).
    pub spans: Vec<(f64, f64)>,
}

/// Turns of at least `min_ms`, grouped by speaker label in order of first appearance, with the
/// spans to embed (each turn less `trim_s` at both ends, by the turn source's uncertainty).
///
/// Short turns are mostly back-channel ("yes", "thanks") and overlap: too little voice to embed.
pub fn speakers_with_speech(turns: &[Turn], min_ms: u64, trim_s: f64) -> Vec<SpeakerSpeech> {
    let min_s = min_ms as f64 / 1000.0;
    let mut groups: Vec<SpeakerSpeech> = Vec::new();
    for turn in turns.iter().filter(|t| t.duration_s() >= min_s) {
        let i = match groups.iter().position(|g| g.label == turn.speaker) {
            Some(i) => i,
            None => {
                groups.push(SpeakerSpeech {
                    label: turn.speaker.clone(),
                    turns: Vec::new(),
                    speech_s: 0.0,
                    spans: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let speaker = &mut groups[i];
        speaker.speech_s += turn.duration_s();
        speaker.spans.push(turn.core(trim_s));
        speaker.turns.push(turn.clone());
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
        let groups = speakers_with_speech(&turns, 1000, 0.0);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].label, "a");
        assert_eq!(groups[0].turns.len(), 2);
        assert_eq!(groups[1].turns.len(), 1, "the 0.7 s turn of b is dropped");
        assert!((groups[0].speech_s - 4.4).abs() < 1e-9);
        assert_eq!(
            speakers_with_speech(&turns, 1000, 0.25)[0].spans[0],
            (0.75, 2.75),
            "cores are trimmed"
        );
    }

    #[test]
    fn bad_segments_are_errors() {
        assert!(parse_segments("1-0.5:a").is_err());
        assert!(parse_segments("0.5:a").is_err());
        assert!(parse_segments("x-1:a").is_err());
        assert!(parse_segments("0-1").is_err());
    }
}
