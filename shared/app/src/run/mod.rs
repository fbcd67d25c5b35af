//! What each binary runs, from its settings, until it is done or stopped.

mod reducer;
mod worker;

pub use reducer::run_reducer;
pub use worker::run_worker;
