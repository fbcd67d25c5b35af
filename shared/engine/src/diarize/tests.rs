use super::*;

#[test]
fn short_runs_are_absorbed() {
    let mut l = vec![0, 0, 0, 0, 1, 0, 0, 2, 2, 2, 2, 2];
    absorb_short_runs(&mut l, 2);
    assert_eq!(l, vec![0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2]);
    let mut start = vec![1, 0, 0, 0];
    absorb_short_runs(&mut start, 2);
    assert_eq!(start, vec![0, 0, 0, 0]);
}

#[test]
fn windows_cover_speech_and_finish_maps_clusters_to_turns() {
    let rate = 16000;
    let mut samples = vec![0.0f32; 4 * rate];
    // Speech from 0.5 s to 3.5 s.
    for (i, s) in samples.iter_mut().enumerate().take(56000).skip(8000) {
        *s = 0.3 * (i as f32 * 0.05).sin();
    }
    let audio = Audio {
        samples,
        sample_rate: rate as u32,
        source_rate: rate as u32,
        source_channels: 1,
    };
    let d = LocalDiarizer::default();
    let plan = d.plan(&audio);
    assert_eq!(plan.regions.len(), 1);
    assert!(plan.windows.len() >= 4);
    assert!(
        plan.windows
            .iter()
            .all(|&(s, e)| e - s == 25600 && s >= plan.regions[0].0 && e <= plan.regions[0].1)
    );
    // First half of the windows one voice, second half another.
    let half = plan.windows.len() / 2;
    let emb: Vec<Vec<f32>> = (0..plan.windows.len())
        .map(|i| {
            if i < half {
                vec![1.0, 0.0]
            } else {
                vec![0.0, 1.0]
            }
        })
        .collect();
    let turns = d.finish(&plan, &emb);
    assert_eq!(
        turns.iter().map(|t| t.speaker.as_str()).collect::<Vec<_>>(),
        vec!["A", "B"]
    );
    assert!(
        (turns[0].start_s - 0.45).abs() < 0.1 && (turns[1].end_s - 3.55).abs() < 0.1,
        "{turns:?}"
    );
}

#[test]
fn pauses_inside_one_speakers_speech_are_bridged() {
    let turn = |start_s, end_s, speaker: &str| Turn {
        start_s,
        end_s,
        speaker: speaker.into(),
    };
    let joined = join_pauses(vec![
        turn(0.0, 0.6, "A"),
        turn(0.85, 1.4, "A"),
        turn(1.6, 2.0, "B"),
        turn(2.2, 2.6, "A"),
        turn(3.0, 3.5, "A"),
    ]);
    assert_eq!(
        joined,
        vec![
            turn(0.0, 1.4, "A"),
            turn(1.6, 2.0, "B"),
            turn(2.2, 2.6, "A"),
            turn(3.0, 3.5, "A"),
        ],
        "a 0.25 s pause is bridged; a change of speaker or a 0.4 s pause is not"
    );
}

#[test]
fn words_with_pauses_share_one_region_and_each_word_is_an_utterance() {
    let rate = 16000usize;
    let mut samples = vec![0.0f32; 4 * rate];
    // Words of 0.3 s with pauses of 0.06 to 0.25 s between them, from 0.5 s on.
    let mut at = rate / 2;
    for pause_ms in [60, 250, 120, 200, 90, 180] {
        for (i, s) in samples.iter_mut().enumerate().skip(at).take(rate * 3 / 10) {
            *s = 0.3 * (i as f32 * 0.05).sin();
        }
        at += rate * 3 / 10 + rate * pause_ms / 1000;
    }
    let plan = LocalDiarizer::default().plan_samples(&samples, rate as u32);
    assert_eq!(plan.regions.len(), 1, "{:?}", plan.regions);
    assert_eq!(
        plan.utterances.len(),
        3,
        "pauses over the VAD's 150 ms bridge part utterances: {:?}",
        plan.utterances
    );
}
