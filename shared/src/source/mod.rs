//! Where clips and voice samples come from (DESIGN §5). The local folder mirrors Drive:
//!
//! ```text
//! <root>/<location_id>/voice_samples/<worker name>/*.{wav,mp3,m4a,flac,ogg}  (or <worker name>.<ext>)
//! <root>/<location_id>/clips/<YYYY-MM-DD>/<clip>.<ext>
//! <root>/<location_id>/workers.csv   (id,name — optional; without it the folder names are the roster)
//! ```

mod ids;
mod local;

pub use ids::{CivilDate, DateRange, first_uuid, is_uuid, new_job_id};
pub use local::{ClipRef, LocalSource, SourceError};
