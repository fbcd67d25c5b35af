//! Google Drive as a [`ClipSource`] (`VOICE_SOURCE=gdrive`).
//!
//! Folders are found by name among everything shared with the service account, shared drives
//! included: the samples folder `VOICE_SAMPLES_FOLDER` (one folder per worker, or files named
//! after the worker, as in the local layout) and the day's clips folders `VOICE_CLIPS_FOLDER`,
//! a name or a pattern where `{date}` is the day (`YYYY-MM-DD`) and `*` any text. `{location}`
//! in either is the location id, for a Drive that keeps several locations. Downloads go to
//! private temporary files, removed when the clip is done.

mod api;

pub use api::{DriveConfig, DriveFile};

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use api::{DriveApi, quoted};

use engine::audio::SUPPORTED_EXTENSIONS;
use pipeline::source::{
    BoxFuture, CivilDate, ClipRef, ClipSource, Fetched, RosterEntry, SampleFile, SourceError,
    first_uuid,
};

/// A location's sample listing is reused this long: workers ask for it with every clip.
const SAMPLES_TTL: Duration = Duration::from_secs(60);

pub struct DriveSource {
    api: DriveApi,
    samples_folder: String,
    clips_folder: String,
    samples: Mutex<HashMap<String, (Instant, Vec<SampleFile>)>>,
}

impl DriveSource {
    pub fn new(
        config: DriveConfig,
        samples_folder: &str,
        clips_folder: &str,
    ) -> Result<Self, SourceError> {
        Ok(Self {
            api: DriveApi::new(config)?,
            samples_folder: samples_folder.to_string(),
            clips_folder: clips_folder.to_string(),
            samples: Mutex::default(),
        })
    }

    /// The folders whose name matches `pattern` (`*` = any text).
    async fn folders(&self, pattern: &str) -> Result<Vec<DriveFile>, SourceError> {
        let mut q = format!(
            "mimeType = {} and trashed = false",
            quoted(api::FOLDER_MIME)
        );
        match pattern.split_once('*') {
            None => q.push_str(&format!(" and name = {}", quoted(pattern))),
            // Drive's `contains` matches name prefixes: ask for the literal start, then filter.
            Some((prefix, _)) if !prefix.is_empty() => {
                q.push_str(&format!(" and name contains {}", quoted(prefix)));
            }
            Some(_) => {}
        }
        let mut folders: Vec<DriveFile> = self
            .api
            .list(&q)
            .await?
            .into_iter()
            .filter(|f| f.is_folder() && glob_match(pattern, &f.name))
            .collect();
        folders.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(folders)
    }

    async fn children(&self, folder: &DriveFile) -> Result<Vec<DriveFile>, SourceError> {
        let q = format!("{} in parents and trashed = false", quoted(&folder.id));
        let mut files = self.api.list(&q).await?;
        files.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(files)
    }

    async fn list_samples_uncached(&self, location: &str) -> Result<Vec<SampleFile>, SourceError> {
        let name = self.samples_folder.replace("{location}", location);
        let folders = self.folders(&name).await?;
        let folder = match folders.as_slice() {
            [one] => one,
            [] => {
                return Err(SourceError::service(
                    "drive_folder_missing",
                    false,
                    format!(
                        "Google Drive: no folder named `{name}` is shared with the service account \
                         (VOICE_SAMPLES_FOLDER)"
                    ),
                ));
            }
            many => {
                return Err(SourceError::service(
                    "drive_folder_ambiguous",
                    false,
                    format!(
                        "Google Drive: {} folders are named `{name}`; rename or unshare all but one \
                         (VOICE_SAMPLES_FOLDER)",
                        many.len()
                    ),
                ));
            }
        };
        let mut samples = Vec::new();
        for entry in self.children(folder).await? {
            if entry.is_folder() {
                for file in self.children(&entry).await? {
                    if is_audio(&file) {
                        samples.push(sample_file(&entry.name, file));
                    }
                }
            } else if is_audio(&entry) {
                let owner = Path::new(&entry.name)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                samples.push(sample_file(&owner, entry));
            }
        }
        Ok(samples)
    }

    /// Downloads a file into a new private temporary file, removed again on any failure.
    async fn download(&self, file_id: &str, name: &str) -> Result<Fetched, SourceError> {
        if !is_drive_id(file_id) {
            return Err(SourceError::BadClip {
                key: name.to_string(),
                reason: "not a Google Drive file id".into(),
            });
        }
        let fetched = Fetched::temporary(temp_path(name));
        create_private(fetched.path()).map_err(|e| {
            SourceError::service(
                "drive_temp_file",
                true,
                format!("{}: {e}", fetched.path().display()),
            )
        })?;
        self.api.download(file_id, fetched.path()).await?;
        Ok(fetched)
    }
}

impl ClipSource for DriveSource {
    fn list_clips<'a>(
        &'a self,
        location: &'a str,
        date: CivilDate,
    ) -> BoxFuture<'a, Result<Vec<ClipRef>, SourceError>> {
        Box::pin(async move {
            let day = date.to_string();
            let pattern = self
                .clips_folder
                .replace("{location}", location)
                .replace("{date}", &day);
            let mut clips: Vec<ClipRef> = Vec::new();
            let mut keys: HashSet<String> = HashSet::new();
            for folder in self.folders(&pattern).await? {
                for file in self.children(&folder).await? {
                    if !is_audio(&file) {
                        continue;
                    }
                    let mut key = format!("{location}/{day}/{}", file.name);
                    if keys.contains(&key) {
                        // Two tills' folders may both hold a `recording.wav`: both are sales.
                        // The first keeps the plain key (stable across runs), this one its file id.
                        key = format!("{key}#{}", file.id);
                        tracing::warn!(clip = %file.name, folder = %folder.name, %key, "a clip of that name is already listed for the day in another folder; both are kept");
                    }
                    keys.insert(key.clone());
                    clips.push(ClipRef {
                        key,
                        transaction_id: first_uuid(&file.name),
                        size: file.size.unwrap_or(0),
                        version: version(&file),
                        date: day.clone(),
                        address: file.id,
                        name: file.name,
                    });
                }
            }
            clips.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(clips)
        })
    }

    fn list_samples<'a>(
        &'a self,
        location: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SampleFile>, SourceError>> {
        Box::pin(async move {
            let cached = self.samples.lock().ok().and_then(|c| {
                c.get(location)
                    .filter(|(at, _)| at.elapsed() < SAMPLES_TTL)
                    .map(|(_, s)| s.clone())
            });
            if let Some(samples) = cached {
                return Ok(samples);
            }
            let samples = self.list_samples_uncached(location).await?;
            if let Ok(mut cache) = self.samples.lock() {
                cache.insert(location.to_string(), (Instant::now(), samples.clone()));
            }
            Ok(samples)
        })
    }

    fn roster<'a>(
        &'a self,
        _location: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<RosterEntry>>, SourceError>> {
        // The roster is the `workers` table; without one, the sample owners are the workers.
        Box::pin(std::future::ready(Ok(None)))
    }

    fn fetch_clip<'a>(
        &'a self,
        _location: &'a str,
        clip: &'a ClipRef,
    ) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(self.download(&clip.address, &clip.name))
    }

    fn fetch_sample<'a>(
        &'a self,
        sample: &'a SampleFile,
    ) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(self.download(&sample.address, &sample.name))
    }

    fn check(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(self.api.check())
    }

    fn samples_place(&self, location: &str) -> String {
        format!(
            "the Google Drive folder `{}`",
            self.samples_folder.replace("{location}", location)
        )
    }
}

fn sample_file(owner: &str, file: DriveFile) -> SampleFile {
    SampleFile {
        owner: owner.to_string(),
        checksum: version(&file),
        size: file.size.unwrap_or(0),
        name: file.name,
        address: file.id,
    }
}

/// What identifies a file's content: its md5, or its size and creation time without one.
fn version(file: &DriveFile) -> String {
    file.md5_checksum.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            file.size.unwrap_or(0),
            file.created_time.as_deref().unwrap_or("")
        )
    })
}

fn is_audio(file: &DriveFile) -> bool {
    let by_name = Path::new(&file.name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| SUPPORTED_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    !file.is_folder() && (by_name || file.mime_type.starts_with("audio/"))
}

/// Drive ids are URL-safe base64-like text; anything else in a message is refused.
fn is_drive_id(id: &str) -> bool {
    (10..=200).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `*` matches any text (also none); everything else literally.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == name;
    };
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// `$TMPDIR/voice-<pid>-<n>.<ext>`: unique within the process, the extension kept for decoding.
fn temp_path(name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let ext = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(|e| format!(".{}", e.to_ascii_lowercase()))
        .unwrap_or_default();
    std::env::temp_dir().join(format!(
        "voice-{}-{}{ext}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Customer audio: readable by this user only.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_patterns() {
        assert!(glob_match("Clips_2025-10-06_*", "Clips_2025-10-06_0700"));
        assert!(glob_match("Clips_2025-10-06_*", "Clips_2025-10-06_"));
        assert!(!glob_match("Clips_2025-10-06_*", "Clips_2025-10-07_0700"));
        assert!(glob_match("*2025-10-06*", "Cary 2025-10-06 am"));
        assert!(glob_match("Samples", "Samples"));
        assert!(!glob_match("Samples", "Samples 2"));
        assert!(!glob_match("a*b*c", "ab"));
        assert!(glob_match("a*b*c", "aXbYc"));
    }

    #[test]
    fn queries_quote_their_values() {
        assert_eq!(quoted("Cary's \\ clips"), "'Cary\\'s \\\\ clips'");
    }

    #[test]
    fn only_drive_ids_are_fetched() {
        assert!(is_drive_id("1AbC-d_EfGhIjKlMn"));
        assert!(!is_drive_id("../../etc/passwd"));
        assert!(!is_drive_id("short"));
    }
}
