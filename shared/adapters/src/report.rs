//! `dispatcher report`: one self-contained HTML page per job (no server, no external file):
//! per clip a timeline of the speaker turns coloured by the employee each speaker was decided
//! to be, every speaker's score against the threshold, and per-employee counts. Built from the
//! stored results (Postgres or `results.jsonl`), which carry everything it shows.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Deserialize;

/// One clip's stored result, as much of it as the report shows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReportClip {
    pub clip: String,
    pub date: String,
    pub transaction_id: Option<String>,
    pub status: String,
    pub worker_name: Option<String>,
    pub score: Option<f32>,
    pub margin: Option<f32>,
    /// The threshold and margin the clip was decided by (its location's calibration).
    pub threshold: Option<f32>,
    pub required_margin: Option<f32>,
    pub speakers: Vec<ReportSpeaker>,
    pub turns: Vec<ReportTurn>,
    pub audio_s: f64,
    pub error_kind: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReportSpeaker {
    pub label: String,
    pub speech_s: f64,
    pub worker_name: Option<String>,
    pub score: Option<f32>,
    pub margin: Option<f32>,
    pub unknown_reason: Option<String>,
    /// Why it was decided, in plain words.
    pub why: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReportTurn {
    pub start_s: f64,
    pub end_s: f64,
    pub speaker: String,
}

/// A job's facts (name, value) and its clips' results: what a report is made from.
pub type JobResults = (Vec<(String, String)>, Vec<ReportClip>);

/// What the page says about the job as a whole.
#[derive(Debug, Clone, Default)]
pub struct ReportJob {
    pub title: String,
    pub details: Vec<(String, String)>,
    /// The model's prior: the rules of clips stored without their own.
    pub threshold: f32,
    pub margin: f32,
}

const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f",
];
const UNKNOWN: &str = "#c5c9cf";
const WIDTH: f64 = 800.0;

/// `<`, `>`, `&`, quotes: names and file names come from the customer's data.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn render(job: &ReportJob, clips: &[ReportClip]) -> String {
    let employees: Vec<String> = {
        let mut names: Vec<String> = clips
            .iter()
            .flat_map(|c| c.speakers.iter().filter_map(|s| s.worker_name.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    };
    let colour = |name: Option<&str>| {
        name.and_then(|n| employees.iter().position(|e| e == n))
            .map_or(UNKNOWN, |i| PALETTE[i % PALETTE.len()])
    };
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n<dl class=\"meta\">",
        title = escape(&job.title)
    );
    for (k, v) in &job.details {
        let _ = write!(html, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(v));
    }
    // Each clip carries the rules of its location's calibration.
    let mut used: Vec<(f32, f32)> = clips
        .iter()
        .filter_map(|c| Some((c.threshold?, c.required_margin.unwrap_or(job.margin))))
        .collect();
    used.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    used.dedup();
    let rules = if used.is_empty() {
        format!("{:.3} (margin {:.3})", job.threshold, job.margin)
    } else {
        let each: Vec<String> = used
            .iter()
            .map(|(t, m)| format!("{t:.3} (margin {m:.3})"))
            .collect();
        format!(
            "{}, calibrated from the location's samples (the model's prior: {:.3})",
            each.join(", "),
            job.threshold
        )
    };
    let _ = writeln!(
        html,
        "<dt>threshold</dt><dd class=\"threshold\">{}</dd></dl>",
        escape(&rules)
    );

    // Per employee: clips decided for them; then the other outcomes.
    let mut per_employee: BTreeMap<&str, usize> = BTreeMap::new();
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for c in clips {
        *outcomes.entry(c.status.as_str()).or_default() += 1;
        if let Some(name) = c.worker_name.as_deref() {
            *per_employee.entry(name).or_default() += 1;
        }
    }
    html.push_str("<section><h2>Per employee</h2><table class=\"counts\"><tr><th>employee</th><th>clips</th></tr>");
    for (name, n) in &per_employee {
        let _ = write!(
            html,
            "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td><td>{n}</td></tr>",
            colour(Some(name)),
            escape(name)
        );
    }
    html.push_str("</table><table class=\"counts\"><tr><th>outcome</th><th>clips</th></tr>");
    for (status, n) in &outcomes {
        let _ = write!(html, "<tr><td>{}</td><td>{n}</td></tr>", escape(status));
    }
    let _ = write!(
        html,
        "<tr><td><b>all</b></td><td><b>{}</b></td></tr></table></section>\n<section><h2>Clips</h2>\n",
        clips.len()
    );

    for c in clips {
        clip_html(&mut html, c, job, &colour);
    }
    html.push_str(
        "</section>\n<script>document.body.dataset.rendered = \
         document.querySelectorAll('svg.timeline').length;</script>\n</body></html>\n",
    );
    html
}

fn clip_html(
    html: &mut String,
    c: &ReportClip,
    job: &ReportJob,
    colour: &dyn Fn(Option<&str>) -> &'static str,
) {
    let decision = match (c.status.as_str(), &c.worker_name) {
        ("matched", Some(name)) => format!("<b>{}</b>", escape(name)),
        ("failed", _) => format!(
            "failed: {} {}",
            escape(c.error_kind.as_deref().unwrap_or("")),
            escape(c.error.as_deref().unwrap_or(""))
        ),
        (status, _) => escape(status),
    };
    let _ = write!(
        html,
        "<article class=\"clip {}\"><h3>{}</h3><p>{} · {:.1} s{}</p>",
        escape(&c.status),
        escape(&c.clip),
        decision,
        c.audio_s,
        c.transaction_id
            .as_deref()
            .map(|t| format!(" · transaction {}", escape(t)))
            .unwrap_or_default()
    );
    // One row per speaker label, in order of first appearance.
    let mut labels: Vec<&str> = Vec::new();
    for t in &c.turns {
        if !labels.contains(&t.speaker.as_str()) {
            labels.push(&t.speaker);
        }
    }
    let duration = c
        .audio_s
        .max(c.turns.iter().map(|t| t.end_s).fold(0.0, f64::max))
        .max(1.0);
    let scale = (WIDTH - 60.0) / duration;
    let height = 22.0 * labels.len() as f64 + 24.0;
    let _ = write!(
        html,
        "<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\">"
    );
    for (row, label) in labels.iter().enumerate() {
        let y = 22.0 * row as f64;
        let speaker = c.speakers.iter().find(|s| s.label == *label);
        let name = speaker.and_then(|s| s.worker_name.as_deref());
        let _ = write!(
            html,
            "<text x=\"0\" y=\"{}\" class=\"label\">{}</text>",
            y + 15.0,
            escape(label)
        );
        for t in c.turns.iter().filter(|t| t.speaker == *label) {
            let _ = write!(
                html,
                "<rect x=\"{:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"18\" rx=\"3\" fill=\"{}\"><title>{} {:.2}–{:.2} s: {}</title></rect>",
                60.0 + t.start_s * scale,
                ((t.end_s - t.start_s) * scale).max(1.0),
                colour(name),
                escape(label),
                t.start_s,
                t.end_s,
                escape(name.unwrap_or("unknown"))
            );
        }
    }
    let axis_y = 22.0 * labels.len() as f64 + 16.0;
    let step = if duration > 60.0 { 10.0 } else { 5.0 };
    let mut tick = 0.0;
    while tick <= duration {
        let _ = write!(
            html,
            "<text x=\"{:.1}\" y=\"{axis_y}\" class=\"tick\">{tick:.0}s</text>",
            60.0 + tick * scale
        );
        tick += step;
    }
    html.push_str("</svg>");

    if !c.speakers.is_empty() {
        let threshold = c.threshold.unwrap_or(job.threshold);
        let _ = write!(
            html,
            "<table class=\"scores\" data-threshold=\"{threshold:.3}\"><tr><th>speaker</th><th>speech</th><th>decided</th><th>score vs threshold {threshold:.3}</th><th>margin</th></tr>"
        );
        for s in &c.speakers {
            let bar = s.score.map_or_else(String::new, |score| {
                let x = |v: f32| 2.0 * f64::from(v.clamp(0.0, 1.0)) * 100.0;
                let passed = score >= threshold;
                format!(
                    "<svg class=\"bar\" viewBox=\"0 0 200 12\" width=\"200\" height=\"12\"><rect width=\"200\" height=\"12\" fill=\"#eef0f2\"/>\
                     <rect width=\"{:.1}\" height=\"12\" fill=\"{}\"/><line x1=\"{t:.1}\" x2=\"{t:.1}\" y1=\"0\" y2=\"12\" stroke=\"#111\" stroke-width=\"2\"/></svg> {score:.3}",
                    x(score),
                    if passed { "#2ca02c" } else { "#d62728" },
                    t = x(threshold)
                )
            });
            let decided = s.worker_name.as_deref().map_or_else(
                || {
                    format!(
                        "unknown{}",
                        s.unknown_reason
                            .as_deref()
                            .map(|r| format!(" ({})", escape(&r.replace('_', " "))))
                            .unwrap_or_default()
                    )
                },
                |n| {
                    format!(
                        "<span class=\"swatch\" style=\"background:{}\"></span>{}",
                        colour(Some(n)),
                        escape(n)
                    )
                },
            );
            let why = s
                .why
                .as_deref()
                .map(|w| format!("<div class=\"why\">{}</div>", escape(w)))
                .unwrap_or_default();
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{:.1} s</td><td>{decided}{why}</td><td>{bar}</td><td>{}</td></tr>",
                escape(&s.label),
                s.speech_s,
                s.margin.map_or("-".into(), |m| format!("{m:.3}"))
            );
        }
        html.push_str("</table>");
    }
    html.push_str("</article>\n");
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}h3{margin:.2em 0;font-size:1em;font-family:monospace}\
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{color:#666}dd{margin:0}\
table{border-collapse:collapse;margin:.5em 1em .5em 0;display:inline-table;vertical-align:top}\
td,th{padding:.2em .6em;border-bottom:1px solid #e3e5e8;text-align:left}\
article.clip{border:1px solid #e3e5e8;border-radius:6px;padding:.6em 1em;margin:.8em 0}\
article.failed{background:#fff5f5}.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;margin-right:.4em;vertical-align:-1px}\
.why{color:#555;font-size:.9em;max-width:36em}svg text{font:11px system-ui,sans-serif;fill:#555}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_text_is_escaped() {
        let clip = ReportClip {
            clip: "<script>alert(1)</script>.wav".into(),
            status: "matched".into(),
            worker_name: Some("O'Brien & <b>".into()),
            speakers: vec![ReportSpeaker {
                label: "A".into(),
                worker_name: Some("O'Brien & <b>".into()),
                score: Some(0.9),
                ..ReportSpeaker::default()
            }],
            turns: vec![ReportTurn {
                start_s: 0.0,
                end_s: 2.0,
                speaker: "A".into(),
            }],
            audio_s: 3.0,
            ..ReportClip::default()
        };
        let html = render(&ReportJob::default(), &[clip]);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("O&#39;Brien &amp; &lt;b&gt;"));
        assert_eq!(html.matches("<svg class=\"timeline\"").count(), 1);
    }
}
