//! The local diarizer on demo clips whose turns are known (demo/expected.csv).

use engine::audio::decode_file;
use engine::diarize::LocalDiarizer;
use engine::eval::der;
use engine::turns::parse_segments;
use it::{demo_location, encoder, root};

#[test]
fn finds_both_speakers_and_their_turns() {
    let mut reader = csv::Reader::from_path(root().join("demo/expected.csv")).unwrap();
    let diarizer = LocalDiarizer::default();
    let mut encoder = encoder();
    let mut checked = 0;
    for row in reader.records() {
        let row = row.unwrap();
        let (file, condition, segments) = (&row[0], &row[3], &row[4]);
        if segments.is_empty() || condition == "overlap" {
            continue;
        }
        let truth = parse_segments(segments).unwrap();
        let audio =
            decode_file(&demo_location().join("clips/2025-10-06").join(file), 16000).unwrap();
        let turns = diarizer.diarize(&audio, &mut encoder).unwrap();
        let mut speakers: Vec<&str> = turns.iter().map(|t| t.speaker.as_str()).collect();
        speakers.sort();
        speakers.dedup();
        assert_eq!(speakers, vec!["A", "B"], "{file}: {turns:?}");
        let parts = der(&truth, &turns, 0.25);
        assert!(
            parts.der() < 0.15,
            "{file}: DER {:.3} ({parts:?})",
            parts.der()
        );
        checked += 1;
    }
    assert!(checked >= 5, "checked {checked} clips");
}

#[test]
fn silence_has_no_turns() {
    let audio = engine::audio::Audio {
        samples: vec![0.0; 48000],
        sample_rate: 16000,
        source_rate: 16000,
        source_channels: 1,
    };
    let turns = LocalDiarizer::default()
        .diarize(&audio, &mut encoder())
        .unwrap();
    assert!(turns.is_empty());
}
