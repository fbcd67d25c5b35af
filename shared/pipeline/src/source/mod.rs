//! Where clips and voice samples come from (DESIGN §5): one [`ClipSource`] interface, a local
//! folder and Google Drive behind it. The local folder mirrors Drive:
//!
//! ```text
//! <root>/<location_id>/voice_samples/<worker name>/*.{wav,mp3,m4a,flac,ogg}  (or <worker name>.<ext>)
//! <root>/<location_id>/clips/<YYYY-MM-DD>/<clip>.<ext>
//! <root>/<location_id>/workers.csv   (id,name — optional; without it the folder names are the roster)
//! ```

mod ids;
mod roster;

pub use ids::{CivilDate, DateRange, first_uuid, is_uuid, new_job_id};
pub use roster::{Assignment, EmployeeSamples, RosterEntry, assign, name_key};

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use serde::{Deserialize, Serialize};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Lists a location's clips and voice samples and brings their bytes to a local file. The
/// dispatcher lists, the workers fetch; both see the same source.
pub trait ClipSource: Send + Sync {
    /// The clips of one day, sorted by name; a day without clips is an empty list.
    fn list_clips<'a>(
        &'a self,
        location: &'a str,
        date: CivilDate,
    ) -> BoxFuture<'a, Result<Vec<ClipRef>, SourceError>>;

    /// Every voice sample of the location, with its owner and content checksum.
    fn list_samples<'a>(
        &'a self,
        location: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SampleFile>, SourceError>>;

    /// The roster the source itself keeps (a local `workers.csv`), if any.
    fn roster<'a>(
        &'a self,
        location: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<RosterEntry>>, SourceError>>;

    /// A clip named by a task, as a local file.
    fn fetch_clip<'a>(
        &'a self,
        location: &'a str,
        clip: &'a ClipRef,
    ) -> BoxFuture<'a, Result<Fetched, SourceError>>;

    /// A sample from [`ClipSource::list_samples`], as a local file.
    fn fetch_sample<'a>(
        &'a self,
        sample: &'a SampleFile,
    ) -> BoxFuture<'a, Result<Fetched, SourceError>>;

    /// Where the samples of `location` are looked for, for messages.
    fn samples_place(&self, location: &str) -> String;

    /// Whether the source can be reached now (readiness, `dispatcher validate`).
    fn check(&self) -> BoxFuture<'_, Result<(), SourceError>>;
}

/// One voice sample as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleFile {
    /// Whose voice: the sample folder's name, or the file's name without extension.
    pub owner: String,
    pub name: String,
    /// The content's md5 (Drive's `md5Checksum`, or computed locally): profiles are enrolled
    /// again only when a checksum changes.
    pub checksum: String,
    pub size: u64,
    /// A local path, or a Drive file id.
    pub address: String,
}

/// A file ready to read: a local file as it is, or a downloaded copy that is removed when
/// this is dropped (after the clip is processed, and on every failure).
#[derive(Debug)]
pub struct Fetched {
    path: PathBuf,
    temporary: bool,
}

impl Fetched {
    pub fn local(path: PathBuf) -> Self {
        Self {
            path,
            temporary: false,
        }
    }

    pub fn temporary(path: PathBuf) -> Self {
        Self {
            path,
            temporary: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Fetched {
    fn drop(&mut self) {
        if self.temporary
            && let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "temporary file left behind");
        }
    }
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
    /// A remote source's answer: `kind` is the stable name stored with a failed result.
    #[error("{message}")]
    Service {
        kind: &'static str,
        message: String,
        transient: bool,
    },
}

impl SourceError {
    /// A remote source's failure: `kind` is stored with a failed result.
    pub fn service(kind: &'static str, transient: bool, message: String) -> Self {
        Self::Service {
            kind,
            message,
            transient,
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            Self::Service { transient, .. } => *transient,
            Self::Folder { .. } | Self::BadClip { .. } => false,
        }
    }

    /// The stable name of the failure, stored with a failed result.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Folder { .. } => "source",
            Self::BadClip { .. } => "bad_clip",
            Self::Unavailable { .. } => "source_unavailable",
            Self::Service { kind, .. } => kind,
        }
    }
}

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
    /// Where the bytes are: a local path, or a Drive file id. ("location" is the store; the
    /// message keeps the field's old name.)
    #[serde(rename = "location")]
    pub address: String,
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
