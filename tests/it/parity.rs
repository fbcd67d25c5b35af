//! The Rust pipeline embeds like the Python references, on the same ONNX files: GE2E against
//! librosa + onnxruntime (models/reference/make_fixtures.py), CAM++ against kaldi-native-fbank +
//! onnxruntime on whole utterances (models/campplus/make_fixtures.py).

use engine::audio::decode_file;
use engine::model::{EmbedRequest, SpeakerEncoder};
use it::{cosine, encoder, root};

/// Every fixture entry's file, embedded as one request, is within cosine 0.9999 of the reference.
fn assert_parity(fixture: &str, encoder: &mut SpeakerEncoder) {
    let text = std::fs::read_to_string(root().join(fixture)).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["model"], encoder.manifest().id);
    let entries = doc["entries"].as_array().unwrap();
    assert!(entries.len() >= 3);
    for entry in entries {
        let file = root().join(entry["file"].as_str().unwrap());
        let reference: Vec<f32> = entry["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let audio = decode_file(&file, 16000).unwrap();
        assert_eq!(
            audio.samples.len() as u64,
            entry["samples"].as_u64().unwrap(),
            "{}",
            file.display()
        );
        let got = encoder
            .embed(&[EmbedRequest {
                segments: vec![&audio.samples],
            }])
            .unwrap()
            .remove(0)
            .unwrap();
        let c = cosine(&got, &reference);
        eprintln!("{}: cosine {c:.7}", file.display());
        assert!(
            c >= 0.9999,
            "{}: cosine {c} with the Python reference",
            file.display()
        );
    }
}

#[test]
fn embeddings_match_the_python_reference() {
    assert_parity("tests/fixtures/parity/ge2e_reference.json", &mut encoder());
}

#[test]
fn campplus_embeddings_match_the_python_reference() {
    assert_parity(
        "tests/fixtures/parity/campplus_reference.json",
        &mut it::default_encoders().speakers,
    );
}
