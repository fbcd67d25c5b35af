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
    /// Where the bytes are (a local path for the local source).
    pub location: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{}: {reason}", path.display())]
    Folder { path: PathBuf, reason: String },
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
                ClipRef {
                    key: format!("{location}/{date}/{name}"),
                    transaction_id: first_uuid(&name),
                    size: std::fs::metadata(&path).map_or(0, |m| m.len()),
                    date: date.to_string(),
                    location: path.to_string_lossy().into_owned(),
                    name,
                }
            })
            .collect();
        clips.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(clips)
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

    #[test]
    fn names_match_ignoring_case_and_spaces() {
        assert_eq!(name_key("Mary Ann"), name_key("maryann"));
        assert_ne!(name_key("Ann"), name_key("Anne"));
    }
}
