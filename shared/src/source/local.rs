use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{CivilDate, first_uuid};
use crate::audio::SUPPORTED_EXTENSIONS;
use crate::matching::Enrollee;

/// One clip to process, as listed by a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipRef {
    /// Stable key of the clip: results are upserted by it.
    pub key: String,
    /// The file name.
    pub name: String,
    pub date: String,
    pub transaction_id: Option<String>,
    pub size: u64,
    /// What identifies this content of the clip: Drive's md5, or size and modification time
    /// locally. A changed file is a new message, the same file the same message.
    pub version: String,
    /// Where the bytes are (a local path for the local source).
    pub location: String,
}

impl ClipRef {
    /// The broker's `message_id`: stable for the same clip content (DESIGN §8).
    pub fn message_id(&self) -> String {
        format!(
            "clip-{:016x}",
            fnv1a(&[self.key.as_bytes(), b"\0", self.version.as_bytes()])
        )
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike std's hasher.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    parts
        .iter()
        .flat_map(|p| p.iter())
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{}: {reason}", path.display())]
    Folder { path: PathBuf, reason: String },
    #[error("clip {key}: {reason}")]
    BadClip { key: String, reason: String },
    /// This machine cannot see the location at all (a volume not mounted yet): worth a retry.
    #[error("{}: the location folder is not available on this machine", path.display())]
    Unavailable { path: PathBuf },
}

impl SourceError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// The local folder source.
#[derive(Debug, Clone)]
pub struct LocalSource {
    pub root: PathBuf,
}

fn has_audio_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| SUPPORTED_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Names compare case- and space-insensitively (DESIGN §5).
fn name_key(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

impl LocalSource {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn location_dir(&self, location: &str) -> Result<PathBuf, SourceError> {
        let dir = self.root.join(location);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(SourceError::Folder {
                path: dir,
                reason: "no such location folder (VOICE_LOCAL_ROOT/<location_id>)".into(),
            })
        }
    }

    /// The clips of one day, sorted by name; a day without a folder has no clips.
    pub fn list_clips(&self, location: &str, date: CivilDate) -> Result<Vec<ClipRef>, SourceError> {
        let day = self
            .location_dir(location)?
            .join("clips")
            .join(date.to_string());
        if !day.is_dir() {
            return Ok(Vec::new());
        }
        let entries = std::fs::read_dir(&day).map_err(|e| SourceError::Folder {
            path: day.clone(),
            reason: e.to_string(),
        })?;
        let mut clips: Vec<ClipRef> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && has_audio_extension(p))
            .map(|path| {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let meta = std::fs::metadata(&path).ok();
                let modified = meta
                    .as_ref()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                let size = meta.map_or(0, |m| m.len());
                ClipRef {
                    key: format!("{location}/{date}/{name}"),
                    transaction_id: first_uuid(&name),
                    size,
                    version: format!("{size}-{modified}"),
                    date: date.to_string(),
                    location: path.to_string_lossy().into_owned(),
                    name,
                }
            })
            .collect();
        clips.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(clips)
    }

    /// Where a clip from a message lies under this machine's root. Every part is checked, so a
    /// message can only name a file inside `<root>/<location>/clips/<date>/`.
    pub fn resolve(&self, location: &str, clip: &ClipRef) -> Result<PathBuf, SourceError> {
        let bad = |reason: &str| SourceError::BadClip {
            key: clip.key.clone(),
            reason: reason.to_string(),
        };
        if !super::is_uuid(location) {
            return Err(bad("the location is not a UUID"));
        }
        let date = CivilDate::parse(&clip.date).map_err(|e| bad(&e))?;
        let plain = Path::new(&clip.name)
            .file_name()
            .is_some_and(|n| n == clip.name.as_str());
        if !plain || clip.name.contains(['/', '\\']) {
            return Err(bad("the clip name is not a plain file name"));
        }
        let location_dir = self.root.join(location);
        if !location_dir.is_dir() {
            return Err(SourceError::Unavailable { path: location_dir });
        }
        Ok(location_dir
            .join("clips")
            .join(date.to_string())
            .join(&clip.name))
    }

    /// The workers of a location with their samples: `workers.csv` gives ids and names; sample
    /// folders (or files) are matched to them by name or id. Without `workers.csv` the sample
    /// names are the roster, and the name is the id.
    pub fn workers(&self, location: &str) -> Result<Vec<Enrollee>, SourceError> {
        let dir = self.location_dir(location)?;
        let samples_dir = dir.join("voice_samples");
        let mut by_name: Vec<(String, Vec<PathBuf>)> = Vec::new();
        if samples_dir.is_dir() {
            let entries = std::fs::read_dir(&samples_dir).map_err(|e| SourceError::Folder {
                path: samples_dir.clone(),
                reason: e.to_string(),
            })?;
            let mut paths: Vec<PathBuf> =
                entries.filter_map(Result::ok).map(|e| e.path()).collect();
            paths.sort();
            for path in paths {
                let stem = path
                    .file_stem()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if path.is_dir() {
                    let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
                        .map_err(|e| SourceError::Folder {
                            path: path.clone(),
                            reason: e.to_string(),
                        })?
                        .filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| p.is_file() && has_audio_extension(p))
                        .collect();
                    files.sort();
                    by_name.push((name, files));
                } else if has_audio_extension(&path) {
                    match by_name
                        .iter_mut()
                        .find(|(n, _)| name_key(n) == name_key(&stem))
                    {
                        Some((_, files)) => files.push(path),
                        None => by_name.push((stem, vec![path])),
                    }
                }
            }
        }
        let roster = dir.join("workers.csv");
        if !roster.is_file() {
            return Ok(by_name
                .into_iter()
                .map(|(name, samples)| Enrollee {
                    worker_id: name.clone(),
                    name,
                    samples,
                })
                .collect());
        }
        let bad = |reason: String| SourceError::Folder {
            path: roster.clone(),
            reason,
        };
        let mut reader = csv::Reader::from_path(&roster).map_err(|e| bad(e.to_string()))?;
        let mut workers = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| bad(e.to_string()))?;
            let (Some(id), Some(name)) = (record.get(0), record.get(1)) else {
                return Err(bad("every row needs id,name".into()));
            };
            let samples = by_name
                .iter()
                .find(|(n, _)| name_key(n) == name_key(name) || name_key(n) == name_key(id))
                .map(|(_, files)| files.clone())
                .unwrap_or_default();
            workers.push(Enrollee {
                worker_id: id.trim().to_string(),
                name: name.trim().to_string(),
                samples,
            });
        }
        Ok(workers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(name: &str, date: &str) -> ClipRef {
        ClipRef {
            key: format!("k/{date}/{name}"),
            name: name.into(),
            date: date.into(),
            transaction_id: None,
            size: 1,
            version: "1-1".into(),
            location: String::new(),
        }
    }

    #[test]
    fn a_message_cannot_name_a_file_outside_the_clips_folder() {
        let root = std::env::temp_dir().join(format!("resolve-{}", std::process::id()));
        let loc = "8f14e45f-ceea-467a-9af0-2f1a3c6a1d5e";
        std::fs::create_dir_all(root.join(loc)).unwrap();
        let source = LocalSource::new(&root);
        let ok = source.resolve(loc, &clip("a.wav", "2025-10-06")).unwrap();
        assert_eq!(ok, root.join(loc).join("clips/2025-10-06/a.wav"));
        for (name, date) in [
            ("../../etc/passwd", "2025-10-06"),
            ("..", "2025-10-06"),
            ("a/b.wav", "2025-10-06"),
            ("", "2025-10-06"),
            ("a.wav", "../2025"),
        ] {
            let e = source.resolve(loc, &clip(name, date)).unwrap_err();
            assert!(
                matches!(e, SourceError::BadClip { .. }),
                "{name} {date}: {e}"
            );
        }
        assert!(
            source
                .resolve("../x", &clip("a.wav", "2025-10-06"))
                .is_err()
        );
        let missing = source
            .resolve(
                "00000000-0000-0000-0000-000000000000",
                &clip("a.wav", "2025-10-06"),
            )
            .unwrap_err();
        assert!(missing.is_transient(), "{missing}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn message_ids_follow_the_content() {
        let a = clip("a.wav", "2025-10-06");
        let mut changed = a.clone();
        changed.version = "2-1".into();
        assert_eq!(a.message_id(), clip("a.wav", "2025-10-06").message_id());
        assert_ne!(a.message_id(), changed.message_id());
        assert_ne!(a.message_id(), clip("b.wav", "2025-10-06").message_id());
    }

    #[test]
    fn names_match_ignoring_case_and_spaces() {
        assert_eq!(name_key("Mary Ann"), name_key("maryann"));
        assert_ne!(name_key("Ann"), name_key("Anne"));
    }
}
