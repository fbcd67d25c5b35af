//! Logging for the three binaries: `tracing` to stderr; human lines with colours on a terminal,
//! one JSON object a line elsewhere (containers, log shippers: DESIGN §10). `RUST_LOG` over
//! `--verbose` (debug) over the default (info).

use std::io::IsTerminal;

pub fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.with_ansi(true).init();
    } else {
        builder.json().with_current_span(false).init();
    }
}
