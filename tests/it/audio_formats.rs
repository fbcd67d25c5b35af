//! Every supported format decodes to the same voice: duration, rate and embedding agree with the
//! 16 kHz WAV they were encoded from.

use engine::audio::decode_file;
use engine::model::EmbedRequest;
use it::{cosine, encoder, fixture};

#[test]
fn formats_decode_to_the_same_voice() {
    let reference = decode_file(&fixture("audio/voice.wav"), 16000).unwrap();
    assert_eq!(reference.samples.len(), 48000);
    let mut encoder = encoder();
    let embed = |encoder: &mut engine::model::SpeakerEncoder, samples: &[f32]| {
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

/// A long 44.1 kHz stereo recording decodes into exactly its 16 kHz mono samples: the output is
/// sized once from the container's length, never grown by doubling.
#[test]
fn a_long_clip_holds_only_its_own_samples() {
    let dir = it::TempDir::new("long-clip");
    let path = dir.path().join("long.wav");
    let (rate, seconds) = (44100u32, 120u32);
    let frames = rate * seconds;
    let mut bytes = Vec::with_capacity(44 + frames as usize * 4);
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + frames * 4).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    for v in [
        16u32.to_le_bytes(),
        [1, 0, 2, 0],
        rate.to_le_bytes(),
        (rate * 4).to_le_bytes(),
        [4, 0, 16, 0],
    ] {
        bytes.extend_from_slice(&v);
    }
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&(frames * 4).to_le_bytes());
    for i in 0..frames {
        let s = ((i as f32 * 0.03).sin() * 8000.0) as i16;
        bytes.extend_from_slice(&s.to_le_bytes());
        bytes.extend_from_slice(&(s / 2).to_le_bytes());
    }
    std::fs::write(&path, &bytes).unwrap();
    drop(bytes);
    let audio = decode_file(&path, 16000).unwrap();
    assert_eq!(audio.samples.len(), 16000 * seconds as usize);
    assert!(
        audio.samples.capacity() <= audio.samples.len() + 16,
        "capacity {} for {} samples",
        audio.samples.capacity(),
        audio.samples.len()
    );
}
