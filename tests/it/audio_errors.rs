//! Every kind of bad audio is an error value naming the file, never a panic.

use std::path::{Path, PathBuf};

use engine::audio::{AudioError, decode_file};
use it::{TempDir, demo_location, fixture};

fn wav_header(data_len: u32, channels: u16, bits: u16) -> Vec<u8> {
    let rate = 16000u32;
    let block = channels * bits / 8;
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data_len).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    h.extend_from_slice(&block.to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn decode_err(path: &Path) -> AudioError {
    match decode_file(path, 16000) {
        Ok(audio) => panic!(
            "{} decoded to {} samples; expected an error",
            path.display(),
            audio.samples.len()
        ),
        Err(e) => {
            assert_eq!(e.path, path);
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                e.to_string().contains(&name),
                "the message names the file: {e}"
            );
            eprintln!("{:<18} {e}", e.kind.code());
            e
        }
    }
}

fn half(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    bytes[..bytes.len() / 2].to_vec()
}

#[test]
fn bad_audio_is_an_error_naming_the_file() {
    let dir = TempDir::new("bad-audio");
    let d = dir.path();
    let good_wav = std::fs::read(fixture("audio/voice.wav")).unwrap();
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut id3_junk = b"ID3\x04\x00\x00\x00\x00\x00\x10".to_vec();
    id3_junk.extend(std::iter::repeat_n(0u8, 16));
    id3_junk.extend_from_slice(&junk);
    let mut flac_junk = b"fLaC".to_vec();
    flac_junk.extend_from_slice(&junk);
    let mut ogg_junk = b"OggS\x00\x02".to_vec();
    ogg_junk.extend_from_slice(&junk);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&junk[..256]);
    let mut bad_bits = wav_header(3200, 1, 7);
    bad_bits.extend(std::iter::repeat_n(0u8, 3200));
    let mut no_channels = wav_header(3200, 0, 16);
    no_channels.extend(std::iter::repeat_n(0u8, 3200));
    let mut cut_wav = good_wav[..44].to_vec();
    cut_wav.extend_from_slice(&good_wav[44..44 + 8000]);

    // (file, the error kinds acceptable for it)
    let cases: Vec<(PathBuf, &[&str])> = vec![
        (d.join("missing.wav"), &["open"]),
        (write(d, "empty.wav", b""), &["empty"]),
        (
            write(d, "header_only.wav", &wav_header(0, 1, 16)),
            &["no_samples"],
        ),
        (write(d, "truncated.wav", &cut_wav), &["truncated"]),
        (write(d, "noise_bytes.wav", &junk), &["unknown_format"]),
        (
            write(d, "notes.mp3", b"shopping list: milk, eggs\n"),
            &["unknown_format"],
        ),
        (
            demo_location().join("clips/2025-10-06/till2_6ffe38eb-e10b-4199-9d9d-adc7c56147c5.m4a"),
            &["unknown_format"],
        ),
        (write(d, "picture.flac", &png), &["unknown_format"]),
        (
            write(d, "seven_bit.wav", &bad_bits),
            &["unsupported_codec", "malformed", "no_audio_track"],
        ),
        (
            write(d, "no_channels.wav", &no_channels),
            &["unsupported_codec", "malformed", "no_audio_track"],
        ),
        (
            write(d, "id3_then_junk.mp3", &id3_junk),
            &["unknown_format", "malformed", "no_samples"],
        ),
        (
            write(d, "flac_magic_junk.flac", &flac_junk),
            &["unknown_format", "malformed", "no_samples", "truncated"],
        ),
        (
            write(d, "ogg_magic_junk.ogg", &ogg_junk),
            &["unknown_format", "malformed", "no_samples", "truncated"],
        ),
        (
            write(d, "half.m4a", &half(&fixture("audio/voice.m4a"))),
            &["unknown_format", "malformed", "truncated", "no_samples"],
        ),
        (
            write(d, "half.flac", &half(&fixture("audio/voice.flac"))),
            &["truncated", "malformed"],
        ),
        (d.to_path_buf(), &["open"]),
    ];
    assert!(cases.len() >= 10);
    let mut seen = Vec::new();
    for (path, kinds) in &cases {
        let e = decode_err(path);
        assert!(
            kinds.contains(&e.kind.code()),
            "{}: got `{}` ({e}), expected one of {kinds:?}",
            path.display(),
            e.kind.code()
        );
        seen.push(e.kind.code());
    }
    seen.sort();
    seen.dedup();
    assert!(seen.len() >= 6, "distinct kinds: {seen:?}");
}

/// A WAV header of any format, rate and declared length (what a hostile file can claim).
fn wav_with(format: u16, rate: u32, bits: u16, declared: u32, data: &[u8]) -> Vec<u8> {
    let block = bits / 8;
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + declared).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&format.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    h.extend_from_slice(&block.to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&declared.to_le_bytes());
    h.extend_from_slice(data);
    h
}

#[test]
fn hostile_headers_and_samples_are_contained() {
    use engine::audio::decode_bytes;
    // Float PCM full of NaN and infinities: decoded, as silence.
    let samples: Vec<u8> = (0..16_000)
        .flat_map(|i| {
            match i % 3 {
                0 => f32::NAN,
                1 => f32::INFINITY,
                _ => 0.25,
            }
            .to_le_bytes()
        })
        .collect();
    let audio = decode_bytes(
        wav_with(3, 16_000, 32, samples.len() as u32, &samples),
        Some("wav"),
        16_000,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(audio.samples.iter().all(|s| s.is_finite()));
    // A rate no recording has: refused before any resampler is built.
    let pcm = vec![0u8; 4000];
    let e = decode_bytes(
        wav_with(1, 1, 16, pcm.len() as u32, &pcm),
        Some("wav"),
        16_000,
    )
    .unwrap_err();
    assert_eq!(e.code(), "resample", "{e}");
    assert!(e.to_string().contains("1 Hz"), "{e}");
    // A header that claims 4 GB of audio over 4 kB of data: nothing near that is reserved,
    // and the clip is reported as cut short.
    let e = decode_bytes(
        wav_with(1, 16_000, 16, u32::MAX - 64, &pcm),
        Some("wav"),
        16_000,
    );
    assert!(e.is_err() || e.is_ok_and(|a| a.samples.capacity() < 1 << 20));
}
