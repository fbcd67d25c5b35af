//! A job's progress while `dispatcher run` waits for it: on a terminal, a bar (indicatif) with
//! the clips done of the total, how many matched and failed, and an ETA; otherwise a plain line
//! whenever the counts move (logs, CI).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use pipeline::JobRow;

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let style = ProgressStyle::with_template(
                "{bar:30} {pos:>5}/{len} clips  {msg}  {elapsed} elapsed, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::new(0).with_style(style)
        });
        Self { bar }
    }

    pub fn show(&mut self, job: &JobRow) {
        let counts = format!("{} matched  {} failed", job.matched, job.failed);
        match &self.bar {
            Some(bar) => {
                bar.set_length(u64::try_from(job.total).unwrap_or(0));
                bar.set_position(u64::try_from(job.done).unwrap_or(0));
                bar.set_message(counts);
            }
            None => eprintln!("{}/{} done, {counts}", job.done, job.total),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
