//! The NeMo (TitaNet) front-end equals an independent numpy computation of NeMo's features
//! (models/titanet/make_frontend_fixture.py), through the manifest and the model-input layout.

use engine::features::{MelFrontend, normalize_per_feature};
use engine::model::{Featurizer, Manifest, Partials};
use it::{fixture, root};

fn load() -> (Vec<f32>, usize, usize, Vec<f32>) {
    let text = std::fs::read_to_string(fixture("frontend/nemo_titanet.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let floats = |k: &str| -> Vec<f32> {
        doc[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect()
    };
    let n = |k: &str| doc[k].as_u64().unwrap() as usize;
    (
        floats("samples"),
        n("frames"),
        n("n_mels"),
        floats("features_frames_mels"),
    )
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn nemo_features_match_the_independent_reference() {
    let manifest = Manifest::load(&root().join("models/titanet/titanet-l.toml")).unwrap();
    let (samples, frames, n_mels, expected) = load();
    let frontend = MelFrontend::new(&manifest.frontend, manifest.sample_rate);
    let mut out = Vec::new();
    frontend.compute(&samples, samples.len(), &mut frontend.scratch(), &mut out);
    assert_eq!(out.len(), frames * n_mels);
    normalize_per_feature(&mut out, n_mels, frames);
    let diff = max_abs_diff(&out, &expected);
    assert!(
        diff < 2e-3,
        "max |rust - numpy| = {diff} on normalised log-mels"
    );
}

#[test]
fn nemo_partial_is_laid_out_mels_by_frames_with_its_length() {
    let manifest = Manifest::load(&root().join("models/titanet/titanet-l.toml")).unwrap();
    let (samples, frames, n_mels, expected) = load();
    let featurizer = Featurizer::new(&manifest);
    let mut batch = Partials::default();
    featurizer.push_segment(&samples, 0, &mut featurizer.scratch(), &mut batch);
    // 0.5 s is one 3 s partial: 51 valid frames, the rest zero, transposed to [80, 300].
    assert_eq!(batch.len(), 1);
    assert_eq!(batch.valid_frames, vec![frames]);
    let width = manifest.chunking.partial_frames;
    assert_eq!(batch.features.len(), n_mels * width);
    let mut got = vec![0.0f32; frames * n_mels];
    for m in 0..n_mels {
        for t in 0..width {
            let v = batch.features[m * width + t];
            if t < frames {
                got[t * n_mels + m] = v;
            } else {
                assert_eq!(v, 0.0, "padding after the valid frames is zero");
            }
        }
    }
    let diff = max_abs_diff(&got, &expected);
    assert!(diff < 2e-3, "max |rust - numpy| = {diff}");
}

/// CAM++'s front-end (Kaldi fbank through the manifest) equals kaldi-native-fbank on a real
/// recording and on a short signal (models/campplus/make_fixtures.py), frame for frame.
#[test]
fn kaldi_fbank_matches_kaldi_native_fbank() {
    let manifest = Manifest::load(&root().join("models/campplus/campplus.toml")).unwrap();
    let frontend = MelFrontend::new(&manifest.frontend, manifest.sample_rate);
    let text = std::fs::read_to_string(fixture("frontend/kaldi_fbank.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    for case in doc["cases"].as_array().unwrap() {
        let samples: Vec<f32> = match case["file"].as_str() {
            Some(file) => {
                let audio = engine::audio::decode_file(&root().join(file), 16000).unwrap();
                let n = case["num_samples"].as_u64().unwrap() as usize;
                audio.samples[..n].to_vec()
            }
            None => case["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect(),
        };
        let expected: Vec<f32> = case["fbank_frames_mels"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter())
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let frames = case["frames"].as_u64().unwrap() as usize;
        assert_eq!(frontend.n_frames(samples.len()), frames, "{}", case["name"]);
        let mut out = Vec::new();
        frontend.compute(&samples, samples.len(), &mut frontend.scratch(), &mut out);
        let diff = max_abs_diff(&out, &expected);
        assert!(
            diff < 2e-3,
            "{}: max |rust - kaldi-native-fbank| = {diff} on log-mel energies",
            case["name"]
        );
    }
}
