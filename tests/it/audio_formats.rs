//! Every supported format decodes to the same voice: duration, rate and embedding agree with the
//! 16 kHz WAV they were encoded from.

use it::{cosine, encoder, fixture};
use shared::audio::decode_file;
use shared::model::EmbedRequest;

#[test]
fn formats_decode_to_the_same_voice() {
    let reference = decode_file(&fixture("audio/voice.wav"), 16000).unwrap();
    assert_eq!(reference.samples.len(), 48000);
    let mut encoder = encoder();
    let embed = |encoder: &mut shared::model::SpeakerEncoder, samples: &[f32]| {
        encoder
            .embed(&[EmbedRequest {
                segments: vec![samples],
            }])
            .unwrap()
            .remove(0)
            .unwrap()
    };
    let reference_embedding = embed(&mut encoder, &reference.samples);
    for (name, rate, channels) in [
        ("voice.mp3", 16000, 1),
        ("voice.m4a", 16000, 1),
        ("voice.flac", 16000, 1),
        ("voice.ogg", 16000, 1),
        ("voice_stereo_44k.wav", 44100, 2),
        ("voice_8k.wav", 8000, 1),
    ] {
        let audio = decode_file(&fixture(&format!("audio/{name}")), 16000)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (audio.sample_rate, audio.source_rate, audio.source_channels),
            (16000, rate, channels),
            "{name}"
        );
        // Lossy codecs add a little priming or padding; nothing more.
        assert!(
            (audio.duration_s() - 3.0).abs() < 0.08,
            "{name}: {} s",
            audio.duration_s()
        );
        let c = cosine(&embed(&mut encoder, &audio.samples), &reference_embedding);
        let floor = if name == "voice_8k.wav" { 0.85 } else { 0.97 };
        assert!(c >= floor, "{name}: cosine {c} with the WAV's embedding");
    }
}
