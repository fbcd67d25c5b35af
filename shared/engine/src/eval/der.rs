//! Diarization error rate: (missed + false alarm + speaker confusion) / reference speech, on 10 ms
//! frames, with a no-score collar around reference boundaries and overlapping speech scored.

use crate::turns::Turn;

const FRAME_S: f64 = 0.01;

/// Error and scored totals of one clip, in seconds, so a set's DER is the ratio of the sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct DerParts {
    pub scored_s: f64,
    pub missed_s: f64,
    pub false_alarm_s: f64,
    pub confusion_s: f64,
}

impl DerParts {
    pub fn der(&self) -> f64 {
        if self.scored_s == 0.0 {
            0.0
        } else {
            (self.missed_s + self.false_alarm_s + self.confusion_s) / self.scored_s
        }
    }

    pub fn add(&mut self, other: DerParts) {
        self.scored_s += other.scored_s;
        self.missed_s += other.missed_s;
        self.false_alarm_s += other.false_alarm_s;
        self.confusion_s += other.confusion_s;
    }
}

/// Scores `hypothesis` against `reference` with the best one-to-one speaker mapping.
pub fn der(reference: &[Turn], hypothesis: &[Turn], collar_s: f64) -> DerParts {
    let end = reference
        .iter()
        .chain(hypothesis)
        .map(|t| t.end_s)
        .fold(0.0, f64::max);
    let frames = (end / FRAME_S).ceil() as usize + 1;
    let (ref_names, ref_act) = activity(reference, frames);
    let (hyp_names, hyp_act) = activity(hypothesis, frames);
    let mut scored = vec![true; frames];
    for t in reference {
        for edge in [t.start_s, t.end_s] {
            let lo = ((edge - collar_s) / FRAME_S).floor().max(0.0) as usize;
            let hi = (((edge + collar_s) / FRAME_S).ceil() as usize).min(frames);
            scored[lo..hi].iter_mut().for_each(|s| *s = false);
        }
    }
    // Overlap of each (hyp, ref) pair over the scored frames, for the mapping.
    let mut overlap = vec![vec![0usize; ref_names.len()]; hyp_names.len()];
    for f in (0..frames).filter(|&f| scored[f]) {
        for (h, row) in overlap.iter_mut().enumerate() {
            if hyp_act[h][f] {
                for (r, cell) in row.iter_mut().enumerate() {
                    *cell += usize::from(ref_act[r][f]);
                }
            }
        }
    }
    let mapping = best_mapping(&overlap, ref_names.len());
    let mut parts = DerParts::default();
    for f in (0..frames).filter(|&f| scored[f]) {
        let n_ref = ref_act.iter().filter(|a| a[f]).count();
        let n_hyp = hyp_act.iter().filter(|a| a[f]).count();
        let correct = (0..hyp_names.len())
            .filter(|&h| hyp_act[h][f] && mapping[h].is_some_and(|r| ref_act[r][f]))
            .count();
        parts.scored_s += n_ref as f64 * FRAME_S;
        parts.missed_s += n_ref.saturating_sub(n_hyp) as f64 * FRAME_S;
        parts.false_alarm_s += n_hyp.saturating_sub(n_ref) as f64 * FRAME_S;
        parts.confusion_s += (n_ref.min(n_hyp) - correct) as f64 * FRAME_S;
    }
    parts
}

fn activity(turns: &[Turn], frames: usize) -> (Vec<String>, Vec<Vec<bool>>) {
    let mut names: Vec<String> = Vec::new();
    let mut act: Vec<Vec<bool>> = Vec::new();
    for t in turns {
        let i = names
            .iter()
            .position(|n| *n == t.speaker)
            .unwrap_or_else(|| {
                names.push(t.speaker.clone());
                act.push(vec![false; frames]);
                names.len() - 1
            });
        let lo = (t.start_s / FRAME_S).round() as usize;
        let hi = ((t.end_s / FRAME_S).round() as usize).min(frames);
        act[i][lo.min(hi)..hi].iter_mut().for_each(|a| *a = true);
    }
    (names, act)
}

/// The injective hyp → ref mapping with the largest total overlap (exhaustive: clips hold few
/// speakers).
fn best_mapping(overlap: &[Vec<usize>], n_ref: usize) -> Vec<Option<usize>> {
    fn search(
        h: usize,
        overlap: &[Vec<usize>],
        used: &mut Vec<bool>,
        current: &mut Vec<Option<usize>>,
        best: &mut (usize, Vec<Option<usize>>),
        score: usize,
    ) {
        if h == overlap.len() {
            if score >= best.0 {
                *best = (score, current.clone());
            }
            return;
        }
        current.push(None);
        search(h + 1, overlap, used, current, best, score);
        current.pop();
        for r in 0..used.len() {
            if !used[r] {
                used[r] = true;
                current.push(Some(r));
                search(h + 1, overlap, used, current, best, score + overlap[h][r]);
                current.pop();
                used[r] = false;
            }
        }
    }
    if overlap.len() > 8 || n_ref > 8 {
        // Greedy beyond what exhaustive search handles quickly.
        let mut used = vec![false; n_ref];
        return overlap
            .iter()
            .map(|row| {
                let r = (0..n_ref).filter(|&r| !used[r]).max_by_key(|&r| row[r])?;
                used[r] = true;
                Some(r)
            })
            .collect();
    }
    let mut best = (0, vec![None; overlap.len()]);
    search(
        0,
        overlap,
        &mut vec![false; n_ref],
        &mut Vec::new(),
        &mut best,
        0,
    );
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: f64, e: f64, who: &str) -> Turn {
        Turn {
            start_s: s,
            end_s: e,
            speaker: who.into(),
        }
    }

    #[test]
    fn perfect_hypothesis_with_other_names_scores_zero() {
        let r = [t(0.0, 2.0, "ann"), t(2.5, 5.0, "bob")];
        let h = [t(0.0, 2.0, "B"), t(2.5, 5.0, "A")];
        assert!(der(&r, &h, 0.25).der() < 1e-9);
    }

    #[test]
    fn confusion_miss_and_false_alarm_are_counted() {
        let r = [t(0.0, 4.0, "ann"), t(5.0, 9.0, "bob")];
        // bob's second half labelled as ann; 1 s of ann missed; 1 s of noise called speech.
        let h = [
            t(1.0, 4.0, "A"),
            t(5.0, 7.0, "B"),
            t(7.0, 9.0, "A"),
            t(10.0, 11.0, "B"),
        ];
        let p = der(&r, &h, 0.0);
        assert!((p.scored_s - 8.0).abs() < 0.02, "{p:?}");
        assert!((p.missed_s - 1.0).abs() < 0.02, "{p:?}");
        assert!((p.confusion_s - 2.0).abs() < 0.02, "{p:?}");
        assert!((p.false_alarm_s - 1.0).abs() < 0.02, "{p:?}");
        assert!((p.der() - 0.5).abs() < 0.01);
    }

    #[test]
    fn collar_forgives_boundaries_and_overlap_is_scored() {
        let r = [t(0.0, 2.0, "ann"), t(2.0, 4.0, "bob")];
        let h = [t(0.0, 2.2, "A"), t(2.2, 4.0, "B")];
        assert!(der(&r, &h, 0.25).der() < 1e-9);
        assert!(der(&r, &h, 0.0).der() > 0.04);
        // Overlap: two reference speakers, one hypothesis speaker → the second is missed.
        let r = [t(0.0, 4.0, "ann"), t(1.0, 3.0, "bob")];
        let h = [t(0.0, 4.0, "A")];
        let p = der(&r, &h, 0.0);
        assert!((p.missed_s - 2.0).abs() < 0.02, "{p:?}");
    }
}
