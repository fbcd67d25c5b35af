//! The standalone edges: clips and samples from a local folder ([`LocalSource`]), results in
//! an output folder ([`FolderSink`] over [`OutputDir`]).

mod output;
mod sink;
mod source;

pub use output::{OutputDir, Summary};
pub use sink::FolderSink;
pub use source::LocalSource;
