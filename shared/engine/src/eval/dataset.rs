use std::path::{Path, PathBuf};

use crate::matching::Enrollee;
use crate::turns::{Turn, parse_segments};

/// A labelled set in the speakerid-dev layout: `enroll/<speaker>/*.wav`, `clips/<clip>.wav`,
/// `labels.csv` (clip, employee or `none`, condition, duration_s, other_speaker, segments).
#[derive(Debug, Clone)]
pub struct Dataset {
    pub root: PathBuf,
    pub enrollees: Vec<Enrollee>,
    pub clips: Vec<LabelledClip>,
}

#[derive(Debug, Clone)]
pub struct LabelledClip {
    pub name: String,
    pub path: PathBuf,
    /// The enrolled employee who speaks in the clip; `None` when no employee does.
    pub employee: Option<String>,
    pub condition: String,
    /// Ground-truth turns, labelled with speaker identities.
    pub turns: Vec<Turn>,
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

impl Dataset {
    pub fn load(root: &Path) -> Result<Self, DatasetError> {
        let invalid = |path: &Path, reason: String| DatasetError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let enroll_dir = root.join("enroll");
        let mut enrollees = Vec::new();
        let dirs = std::fs::read_dir(&enroll_dir)
            .map_err(|e| invalid(&enroll_dir, format!("cannot list enrollment folders: {e}")))?;
        let mut dirs: Vec<PathBuf> = dirs
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut samples: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(|e| invalid(&dir, format!("cannot list samples: {e}")))?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            samples.sort();
            enrollees.push(Enrollee {
                worker_id: name.clone(),
                name,
                samples,
            });
        }
        if enrollees.is_empty() {
            return Err(invalid(
                &enroll_dir,
                "no enrollment folders (enroll/<speaker>/*.wav)".into(),
            ));
        }

        let labels = root.join("labels.csv");
        let mut reader =
            csv::Reader::from_path(&labels).map_err(|e| invalid(&labels, e.to_string()))?;
        let headers = reader
            .headers()
            .map_err(|e| invalid(&labels, e.to_string()))?
            .clone();
        let column = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| invalid(&labels, format!("no `{name}` column")))
        };
        let (c_clip, c_employee, c_condition, c_segments) = (
            column("clip")?,
            column("employee")?,
            column("condition")?,
            column("segments")?,
        );
        let mut clips = Vec::new();
        for (line, record) in reader.records().enumerate() {
            let record = record.map_err(|e| invalid(&labels, e.to_string()))?;
            let at = |reason: String| invalid(&labels, format!("row {}: {reason}", line + 2));
            let field = |i: usize| record.get(i).unwrap_or("").trim().to_string();
            let name = field(c_clip);
            let path = ["wav", "flac", "mp3", "ogg", "m4a"]
                .iter()
                .map(|ext| root.join("clips").join(format!("{name}.{ext}")))
                .find(|p| p.is_file())
                .ok_or_else(|| at(format!("no audio file for clip `{name}` in clips/")))?;
            let employee = Some(field(c_employee)).filter(|e| !e.is_empty() && e != "none");
            let turns = parse_segments(&field(c_segments)).map_err(at)?;
            clips.push(LabelledClip {
                name,
                path,
                employee,
                condition: field(c_condition),
                turns,
            });
        }
        Ok(Self {
            root: root.to_path_buf(),
            enrollees,
            clips,
        })
    }
}
