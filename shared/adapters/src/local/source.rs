use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use engine::audio::SUPPORTED_EXTENSIONS;
use pipeline::source::{
    BoxFuture, CivilDate, ClipRef, ClipSource, Fetched, RosterEntry, SampleFile, SourceError,
    first_uuid, is_uuid,
};

/// A file as of one content: path, size, modification time.
type FileStamp = (PathBuf, u64, SystemTime);

/// The local folder source.
#[derive(Debug, Clone)]
pub struct LocalSource {
    pub root: PathBuf,
    /// Sample checksums by (path, size, modification time): each file is read once.
    checksums: Arc<Mutex<HashMap<FileStamp, String>>>,
}

fn has_audio_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| SUPPORTED_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

impl LocalSource {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            checksums: Arc::default(),
        }
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
                    address: path.to_string_lossy().into_owned(),
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
        if !is_uuid(location) {
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

    /// The sample files under `voice_samples/` (a folder per worker, or `<worker>.<ext>`),
    /// sorted, without checksums.
    fn samples(&self, location: &str) -> Result<Vec<SampleFile>, SourceError> {
        let samples_dir = self.location_dir(location)?.join("voice_samples");
        if !samples_dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut samples = Vec::new();
        for path in sorted_entries(&samples_dir)? {
            let stem = file_part(path.file_stem());
            if path.is_dir() {
                let owner = file_part(path.file_name());
                for file in sorted_entries(&path)? {
                    if file.is_file() && has_audio_extension(&file) {
                        samples.push(sample_file(&owner, file));
                    }
                }
            } else if has_audio_extension(&path) {
                samples.push(sample_file(&stem, path));
            }
        }
        Ok(samples)
    }

    /// `workers.csv` (id,name), when the location has one.
    fn roster_file(&self, location: &str) -> Result<Option<Vec<RosterEntry>>, SourceError> {
        let roster = self.location_dir(location)?.join("workers.csv");
        if !roster.is_file() {
            return Ok(None);
        }
        let bad = |reason: String| SourceError::Folder {
            path: roster.clone(),
            reason,
        };
        let mut reader = csv::Reader::from_path(&roster).map_err(|e| bad(e.to_string()))?;
        let mut entries = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| bad(e.to_string()))?;
            let (Some(id), Some(name)) = (record.get(0), record.get(1)) else {
                return Err(bad("every row needs id,name".into()));
            };
            entries.push(RosterEntry {
                id: id.trim().to_string(),
                name: name.trim().to_string(),
            });
        }
        Ok(Some(entries))
    }

    /// The md5 of a sample, remembered while its size and modification time stay the same.
    fn checksum(&self, path: &Path) -> Result<String, SourceError> {
        use md5::Digest;
        let meta = std::fs::metadata(path).map_err(|e| SourceError::Folder {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let stamp = (
            path.to_path_buf(),
            meta.len(),
            meta.modified().unwrap_or(std::time::UNIX_EPOCH),
        );
        if let Some(sum) = self
            .checksums
            .lock()
            .ok()
            .and_then(|c| c.get(&stamp).cloned())
        {
            return Ok(sum);
        }
        let bytes = std::fs::read(path).map_err(|e| SourceError::Folder {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let sum: String = md5::Md5::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if let Ok(mut cache) = self.checksums.lock() {
            cache.insert(stamp, sum.clone());
        }
        Ok(sum)
    }
}

fn file_part(part: Option<&std::ffi::OsStr>) -> String {
    part.map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let entries = std::fs::read_dir(dir).map_err(|e| SourceError::Folder {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    Ok(paths)
}

fn sample_file(owner: &str, path: PathBuf) -> SampleFile {
    SampleFile {
        owner: owner.to_string(),
        name: file_part(path.file_name()),
        checksum: String::new(),
        size: std::fs::metadata(&path).map_or(0, |m| m.len()),
        address: path.to_string_lossy().into_owned(),
    }
}

impl ClipSource for LocalSource {
    fn list_clips<'a>(
        &'a self,
        location: &'a str,
        date: CivilDate,
    ) -> BoxFuture<'a, Result<Vec<ClipRef>, SourceError>> {
        let me = self.clone();
        let location = location.to_string();
        Box::pin(blocking(move || me.list_clips(&location, date)))
    }

    fn list_samples<'a>(
        &'a self,
        location: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SampleFile>, SourceError>> {
        let me = self.clone();
        let location = location.to_string();
        Box::pin(blocking(move || {
            let mut samples = me.samples(&location)?;
            for sample in &mut samples {
                sample.checksum = me.checksum(Path::new(&sample.address))?;
            }
            Ok(samples)
        }))
    }

    fn roster<'a>(
        &'a self,
        location: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<RosterEntry>>, SourceError>> {
        Box::pin(std::future::ready(self.roster_file(location)))
    }

    fn fetch_clip<'a>(
        &'a self,
        location: &'a str,
        clip: &'a ClipRef,
    ) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(std::future::ready(
            self.resolve(location, clip).map(Fetched::local),
        ))
    }

    fn fetch_sample<'a>(
        &'a self,
        sample: &'a SampleFile,
    ) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(std::future::ready(Ok(Fetched::local(PathBuf::from(
            &sample.address,
        )))))
    }

    fn check(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        let ok = if self.root.is_dir() {
            Ok(())
        } else {
            Err(SourceError::Unavailable {
                path: self.root.clone(),
            })
        };
        Box::pin(std::future::ready(ok))
    }

    fn samples_place(&self, location: &str) -> String {
        self.root
            .join(location)
            .join("voice_samples")
            .display()
            .to_string()
    }
}

/// Runs file-system work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SourceError::service("internal", true, format!("listing stopped: {e}")))?
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
            address: String::new(),
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
}
