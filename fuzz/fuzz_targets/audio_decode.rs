//! Any bytes, as any of the supported containers: decoding returns audio or an error, never
//! panics, hangs or exhausts memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use engine::audio::decode_bytes;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the extension hint (none, or one of the supported ones), as a clip's
    // file name would; the rest is the file.
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    const HINTS: [Option<&str>; 8] = [
        None,
        Some("wav"),
        Some("mp3"),
        Some("m4a"),
        Some("flac"),
        Some("ogg"),
        Some("aac"),
        Some("mp4"),
    ];
    let hint = HINTS[usize::from(pick) % HINTS.len()];
    if let Ok(audio) = decode_bytes(bytes.to_vec(), hint, 16_000) {
        assert!(audio.samples.iter().all(|s| s.is_finite()));
    }
});
