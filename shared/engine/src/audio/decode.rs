use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::{Audio, StreamingResampler};

/// File extensions the decoder is built for (symphonia's codecs are opt-in features).
pub const SUPPORTED_EXTENSIONS: &[&str] =
    &["wav", "mp3", "m4a", "aac", "mp4", "flac", "ogg", "oga"];

/// A clip or sample that could not be turned into audio. Names the file; never panics.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct AudioError {
    pub path: PathBuf,
    pub kind: AudioErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum AudioErrorKind {
    #[error("cannot open the file: {0}")]
    Open(#[source] io::Error),
    #[error("the file is empty (0 bytes)")]
    Empty,
    #[error("not a recognised audio format")]
    UnknownFormat,
    #[error("the file has no audio track")]
    NoAudioTrack,
    #[error("unsupported codec: {0}")]
    UnsupportedCodec(String),
    #[error("malformed audio data: {0}")]
    Malformed(String),
    #[error("the file ends early, after {decoded_s:.2} s of audio")]
    Truncated { decoded_s: f64 },
    #[error("read error: {0}")]
    Read(#[source] io::Error),
    #[error("the file holds no audio samples")]
    NoSamples,
    #[error("{0}")]
    Resample(String),
    #[error("{seconds:.0} s of audio, over the {limit_s:.0} s a clip may last")]
    TooLong { seconds: f64, limit_s: f64 },
}

impl AudioErrorKind {
    /// A short stable name for results, metrics and the dead-letter reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Open(_) => "open",
            Self::Empty => "empty",
            Self::UnknownFormat => "unknown_format",
            Self::NoAudioTrack => "no_audio_track",
            Self::UnsupportedCodec(_) => "unsupported_codec",
            Self::Malformed(_) => "malformed",
            Self::Truncated { .. } => "truncated",
            Self::Read(_) => "read",
            Self::NoSamples => "no_samples",
            Self::Resample(_) => "resample",
            Self::TooLong { .. } => "too_large",
        }
    }
}

/// The longest audio decoded (1 h, 230 MB of samples at 16 kHz): what a header declares and what
/// the decoding reaches are both held to it, so that no file can make a worker hold more.
pub const MAX_CLIP_S: f64 = 3600.0;

/// The source sample rates accepted.
const SOURCE_RATES: std::ops::RangeInclusive<u32> = 1_000..=768_000;

/// Isolated bad packets (a damaged MP3 frame) are skipped; a stream with more bad packets than
/// good ones is rejected, so garbage never passes for audio.
const MAX_SKIPPED_PACKETS: usize = 8;

/// Decodes `path` to mono `f32` at `target_rate`, streaming through the downmix and resampler.
pub fn decode_file(path: &Path, target_rate: u32) -> Result<Audio, AudioError> {
    let fail = |kind| AudioError {
        path: path.to_path_buf(),
        kind,
    };
    let file = File::open(path).map_err(|e| fail(AudioErrorKind::Open(e)))?;
    let meta = file.metadata().map_err(|e| fail(AudioErrorKind::Open(e)))?;
    if meta.is_dir() {
        let folder = io::Error::other("it is a folder, not a file");
        return Err(fail(AudioErrorKind::Open(folder)));
    }
    if meta.len() == 0 {
        return Err(fail(AudioErrorKind::Empty));
    }
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(&ext.to_ascii_lowercase());
    }
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    decode_stream(stream, &hint, target_rate, MAX_CLIP_S).map_err(fail)
}

/// Decodes audio held in memory (`extension` hints the container), as [`decode_file`] does.
pub fn decode_bytes(
    bytes: Vec<u8>,
    extension: Option<&str>,
    target_rate: u32,
) -> Result<Audio, AudioErrorKind> {
    if bytes.is_empty() {
        return Err(AudioErrorKind::Empty);
    }
    let mut hint = Hint::new();
    if let Some(ext) = extension {
        hint.with_extension(&ext.to_ascii_lowercase());
    }
    let stream = MediaSourceStream::new(Box::new(io::Cursor::new(bytes)), Default::default());
    decode_stream(stream, &hint, target_rate, MAX_CLIP_S)
}

fn decode_stream(
    stream: MediaSourceStream,
    hint: &Hint,
    target_rate: u32,
    limit_s: f64,
) -> Result<Audio, AudioErrorKind> {
    let too_long = |seconds: f64| AudioErrorKind::TooLong { seconds, limit_s };
    let max_samples = (limit_s * f64::from(target_rate)) as usize;
    let byte_len = symphonia::core::io::MediaSource::byte_len(&stream);
    let mut format = symphonia::default::get_probe()
        .probe(
            hint,
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| match e {
            SymphoniaError::Unsupported(_) => AudioErrorKind::UnknownFormat,
            SymphoniaError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                AudioErrorKind::UnknownFormat
            }
            other => classify(other),
        })?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or(AudioErrorKind::NoAudioTrack)?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or(AudioErrorKind::NoAudioTrack)?
        .clone();
    let declared_frames = track.num_frames;
    if let (Some(frames), Some(rate)) = (declared_frames, params.sample_rate.filter(|r| *r > 0)) {
        let declared_s = frames as f64 / f64::from(rate);
        if declared_s > limit_s {
            return Err(too_long(declared_s));
        }
    }
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| AudioErrorKind::UnsupportedCodec(e.to_string()))?;

    let mut out = Vec::new();
    // Containers that declare their length let the output be sized once: a long clip then
    // never holds more than its own samples (growth by doubling would reserve up to twice that).
    // A header may lie: never reserve more samples than the file has bytes (16-bit PCM at the
    // target rate has two bytes a sample; compressed audio that decodes to more just grows).
    if let (Some(frames), Some(rate), Some(bytes)) = (
        declared_frames,
        params.sample_rate.filter(|r| *r > 0),
        byte_len,
    ) {
        let expected = (frames as f64 * f64::from(target_rate) / f64::from(rate)).ceil() as usize;
        let bound = usize::try_from(bytes).unwrap_or(usize::MAX);
        out.reserve_exact(expected.min(bound).saturating_add(8));
    }
    let mut resampler: Option<(StreamingResampler, u32, usize)> = None;
    let mut planes: Vec<Vec<f32>> = Vec::new();
    let mut mono: Vec<f32> = Vec::new();
    let (mut good, mut bad, mut decoded_frames) = (0usize, 0usize, 0u64);
    let mut last_bad = String::new();

    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(truncated(&out, target_rate));
            }
            Err(e) => return Err(classify(e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(buf) => buf,
            Err(SymphoniaError::DecodeError(msg)) => {
                bad += 1;
                last_bad = msg.to_string();
                if bad > MAX_SKIPPED_PACKETS && bad > good {
                    return Err(AudioErrorKind::Malformed(last_bad));
                }
                continue;
            }
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(truncated(&out, target_rate));
            }
            Err(e) => return Err(classify(e)),
        };
        good += 1;
        if buf.frames() == 0 {
            continue;
        }
        let rate = buf.spec().rate();
        let channels = buf.spec().channels().count().max(1);
        let (resampler, _, _) = match &mut resampler {
            Some(r) => r,
            // A rate no recording has comes from a damaged header; resampling from it would
            // need absurd buffers.
            None if !SOURCE_RATES.contains(&rate) => {
                return Err(AudioErrorKind::Resample(format!(
                    "a sample rate of {rate} Hz is not audio this system takes (1–768 kHz)"
                )));
            }
            None => resampler.insert((
                StreamingResampler::new(rate, target_rate)
                    .map_err(|e| AudioErrorKind::Resample(e.to_string()))?,
                rate,
                channels,
            )),
        };
        decoded_frames += buf.frames() as u64;
        buf.copy_to_vecs_planar::<f32>(&mut planes);
        downmix(&planes, buf.frames(), &mut mono);
        resampler
            .push(&mono, &mut out)
            .map_err(AudioErrorKind::Resample)?;
        // A header that declares nothing (a stream) or too little: the running length decides.
        if out.len() > max_samples {
            return Err(too_long(out.len() as f64 / f64::from(target_rate)));
        }
    }

    let Some((resampler, source_rate, source_channels)) = resampler else {
        return Err(if bad > 0 {
            AudioErrorKind::Malformed(last_bad)
        } else {
            AudioErrorKind::NoSamples
        });
    };
    if bad > good {
        return Err(AudioErrorKind::Malformed(last_bad));
    }
    resampler
        .finish(&mut out)
        .map_err(AudioErrorKind::Resample)?;
    // A container that promises more frames than its data holds was cut short (a partial upload).
    if let Some(declared) = declared_frames
        && decoded_frames + u64::from(source_rate / 100) < declared
    {
        return Err(truncated(&out, target_rate));
    }
    if out.is_empty() {
        return Err(AudioErrorKind::NoSamples);
    }
    Ok(Audio {
        samples: out,
        sample_rate: target_rate,
        source_rate,
        source_channels,
    })
}

fn truncated(out: &[f32], rate: u32) -> AudioErrorKind {
    AudioErrorKind::Truncated {
        decoded_s: out.len() as f64 / f64::from(rate),
    }
}

fn classify(e: SymphoniaError) -> AudioErrorKind {
    match e {
        SymphoniaError::IoError(e) => AudioErrorKind::Read(e),
        SymphoniaError::Unsupported(what) => AudioErrorKind::UnsupportedCodec(what.to_string()),
        SymphoniaError::DecodeError(msg) => AudioErrorKind::Malformed(msg.to_string()),
        other => AudioErrorKind::Malformed(other.to_string()),
    }
}

/// Averages the channels: speaker models are trained on mono, and averaging keeps the level.
/// Samples outside f32's finite range become 0.
fn downmix(planes: &[Vec<f32>], frames: usize, mono: &mut Vec<f32>) {
    mono.clear();
    match planes {
        [] => mono.resize(frames, 0.0),
        [only] => mono.extend_from_slice(&only[..frames]),
        _ => {
            let scale = 1.0 / planes.len() as f32;
            mono.extend_from_slice(&planes[0][..frames]);
            for plane in &planes[1..] {
                mono.iter_mut()
                    .zip(&plane[..frames])
                    .for_each(|(m, s)| *m += s);
            }
            mono.iter_mut().for_each(|m| *m *= scale);
        }
    }
    // Float PCM can carry NaN or infinities (a damaged or hostile file): silence instead, so
    // nothing downstream (resampler, features, model) ever sees them.
    for m in mono.iter_mut().filter(|m| !m.is_finite()) {
        *m = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 16-bit mono PCM WAV of `seconds` of a tone, with `declared` frames in its header.
    fn wav(rate: u32, seconds: f64, declared: Option<u32>) -> Vec<u8> {
        let frames = (seconds * f64::from(rate)) as u32;
        let data_len = declared.unwrap_or(frames) * 2;
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(36 + data_len).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * 2).to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&data_len.to_le_bytes());
        for i in 0..frames {
            let v = (f64::from(i) * 0.05).sin() * 8000.0;
            b.extend_from_slice(&(v as i16).to_le_bytes());
        }
        b
    }

    fn decode_limited(bytes: Vec<u8>, limit_s: f64) -> Result<Audio, AudioErrorKind> {
        let stream = MediaSourceStream::new(Box::new(io::Cursor::new(bytes)), Default::default());
        let mut hint = Hint::new();
        hint.with_extension("wav");
        decode_stream(stream, &hint, 16_000, limit_s)
    }

    #[test]
    fn audio_longer_than_the_limit_is_too_large_by_its_header_or_its_length() {
        // The header says 10 h (the data holds 2 s): refused before a sample is decoded.
        let lying = wav(16_000, 2.0, Some(16_000 * 36_000));
        let e = decode_limited(lying, 3600.0).err();
        assert!(matches!(e, Some(AudioErrorKind::TooLong { .. })), "{e:?}");
        assert_eq!(e.map(|e| e.code()), Some("too_large"));
        // An honest header over a short limit is refused as well; under it, the clip decodes.
        let three = wav(16_000, 3.0, None);
        let e = decode_limited(three.clone(), 1.0).err();
        assert!(matches!(e, Some(AudioErrorKind::TooLong { .. })), "{e:?}");
        assert!(decode_limited(three, 10.0).is_ok());
    }
}
