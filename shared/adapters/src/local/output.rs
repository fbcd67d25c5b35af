//! The standalone reducer's store: `results.jsonl` keyed by clip, one RTTM file per clip, the
//! location's profiles with their calibration (`profiles.json`), and the run's summary.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use engine::matching::{Calibration, ClipStatus, ProfileSet};
use pipeline::ClipResult;

pub struct OutputDir {
    dir: PathBuf,
    /// Lines of results.jsonl by clip key, in file order.
    lines: Vec<(String, String)>,
    statuses: BTreeMap<String, ClipStatus>,
}

impl OutputDir {
    /// Reads what an earlier run left; a missing folder or file is an empty store. Lines that
    /// are not results (hand edits, a torn write) are kept as they are and never match a clip.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let mut out = Self {
            dir: dir.to_path_buf(),
            lines: Vec::new(),
            statuses: BTreeMap::new(),
        };
        let path = out.results_path();
        if path.is_file() {
            for line in BufReader::new(File::open(&path)?).lines() {
                let line = line?;
                match serde_json::from_str::<ClipResult>(&line) {
                    Ok(r) => {
                        out.statuses.insert(r.clip_key.clone(), r.status);
                        out.lines.push((r.clip_key, line));
                    }
                    Err(_) => out.lines.push((String::new(), line)),
                }
            }
        }
        Ok(out)
    }

    pub fn results_path(&self) -> PathBuf {
        self.dir.join("results.jsonl")
    }

    pub fn profiles_path(&self) -> PathBuf {
        self.dir.join("profiles.json")
    }

    /// Writes the location's profiles and calibration, as enrolled for this run (replacing the
    /// last run's: a changed sample changes them).
    pub fn write_profiles(&self, voices: &ProfileSet) -> std::io::Result<()> {
        #[derive(Serialize)]
        struct Stored<'a> {
            calibration: &'a Calibration,
            profiles: Vec<StoredProfile<'a>>,
        }
        #[derive(Serialize)]
        struct StoredProfile<'a> {
            worker_id: &'a str,
            name: &'a str,
            speech_s: f64,
            weak_profile: bool,
            samples: Vec<&'a str>,
            embedding: &'a [f32],
        }
        let stored = Stored {
            calibration: &voices.calibration,
            profiles: voices
                .profiles
                .iter()
                .map(|p| StoredProfile {
                    worker_id: &p.worker_id,
                    name: &p.name,
                    speech_s: p.speech_s,
                    weak_profile: p.weak_profile,
                    samples: p.samples.iter().map(|s| s.source.as_str()).collect(),
                    embedding: &p.embedding,
                })
                .collect(),
        };
        std::fs::create_dir_all(&self.dir)?;
        let text = serde_json::to_string_pretty(&stored).map_err(std::io::Error::other)?;
        let tmp = self.dir.join("profiles.json.tmp");
        std::fs::write(&tmp, text + "\n")?;
        std::fs::rename(tmp, self.profiles_path())
    }

    /// Clips with a completed result (matched, no match, no speech); failed clips are retried.
    pub fn is_done(&self, key: &str) -> bool {
        self.statuses
            .get(key)
            .is_some_and(|s| *s != ClipStatus::Failed)
    }

    /// Stores `result`, replacing the line of the same clip if there is one.
    pub fn upsert(&mut self, result: &ClipResult) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let line = serde_json::to_string(result).map_err(std::io::Error::other)?;
        let existing = self.lines.iter().position(|(k, _)| *k == result.clip_key);
        self.statuses.insert(result.clip_key.clone(), result.status);
        match existing {
            None => {
                let mut f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.results_path())?;
                writeln!(f, "{line}")?;
                self.lines.push((result.clip_key.clone(), line));
            }
            Some(i) => {
                self.lines[i].1 = line;
                // Rewrite through a temporary file so a crash never leaves half a store.
                let tmp = self.dir.join("results.jsonl.tmp");
                let mut f = File::create(&tmp)?;
                for (_, l) in &self.lines {
                    writeln!(f, "{l}")?;
                }
                f.sync_all()?;
                std::fs::rename(tmp, self.results_path())?;
            }
        }
        if result.status == ClipStatus::Failed {
            return Ok(());
        }
        self.write_rttm(result)
    }

    /// RTTM (NIST): one SPEAKER line per turn; the speaker is the decided worker's name, or the
    /// clip-local label when unknown.
    fn write_rttm(&self, result: &ClipResult) -> std::io::Result<()> {
        let dir = self.dir.join("rttm");
        std::fs::create_dir_all(&dir)?;
        let stem = Path::new(&result.clip)
            .file_stem()
            .map_or_else(|| result.clip.clone(), |s| s.to_string_lossy().into_owned());
        let uri: String = stem
            .chars()
            .map(|c| if c.is_whitespace() { '_' } else { c })
            .collect();
        let mut f = File::create(dir.join(format!("{uri}.rttm")))?;
        for turn in &result.turns {
            let who = result
                .speakers
                .iter()
                .find(|s| s.label == turn.speaker)
                .and_then(|s| s.worker_name.clone())
                .unwrap_or_else(|| turn.speaker.clone());
            let who: String = who
                .chars()
                .map(|c| if c.is_whitespace() { '_' } else { c })
                .collect();
            writeln!(
                f,
                "SPEAKER {uri} 1 {:.3} {:.3} <NA> <NA> {who} <NA> <NA>",
                turn.start_s,
                turn.duration_s()
            )?;
        }
        Ok(())
    }
}

/// What a run did, for the terminal.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub clips: usize,
    pub matched: usize,
    pub no_match: usize,
    pub no_speech: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Clips per decided worker name.
    pub per_worker: BTreeMap<String, usize>,
    pub audio_s: f64,
    pub wall_s: f64,
}

impl Summary {
    pub fn add(&mut self, r: &ClipResult) {
        self.clips += 1;
        self.audio_s += r.audio_s;
        match r.status {
            ClipStatus::Matched => self.matched += 1,
            ClipStatus::NoMatch => self.no_match += 1,
            ClipStatus::NoSpeech => self.no_speech += 1,
            ClipStatus::Failed => self.failed += 1,
        }
        if let Some(name) = r.worker_name.clone().or_else(|| r.worker_id.clone()) {
            *self.per_worker.entry(name).or_default() += 1;
        }
    }

    /// Audio seconds per wall second.
    pub fn speed(&self) -> f64 {
        if self.wall_s > 0.0 {
            self.audio_s / self.wall_s
        } else {
            0.0
        }
    }
}
