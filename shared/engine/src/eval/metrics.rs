/// Equal error rate of a verification system and the threshold where it is reached.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Eer {
    pub eer: f64,
    pub threshold: f32,
}

/// Sweeps the threshold over every observed score; accept means `score >= threshold`.
///
/// `None` without both target and non-target trials.
pub fn equal_error_rate(targets: &[f32], nontargets: &[f32]) -> Option<Eer> {
    if targets.is_empty() || nontargets.is_empty() {
        return None;
    }
    let mut t = targets.to_vec();
    let mut n = nontargets.to_vec();
    t.sort_by(f32::total_cmp);
    n.sort_by(f32::total_cmp);
    let mut candidates: Vec<f32> = t.iter().chain(&n).copied().collect();
    candidates.sort_by(f32::total_cmp);
    candidates.dedup();
    let mut best: Option<(f64, Eer)> = None;
    for &threshold in &candidates {
        let frr = t.partition_point(|&s| s < threshold) as f64 / t.len() as f64;
        let far = (n.len() - n.partition_point(|&s| s < threshold)) as f64 / n.len() as f64;
        let gap = (far - frr).abs();
        if best.as_ref().is_none_or(|(g, _)| gap < *g) {
            best = Some((
                gap,
                Eer {
                    eer: (far + frr) / 2.0,
                    threshold,
                },
            ));
        }
    }
    best.map(|(_, eer)| eer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_scores_have_zero_eer_between_the_classes() {
        let e = equal_error_rate(&[0.8, 0.9, 0.85], &[0.1, 0.3, 0.5]).unwrap();
        assert_eq!(e.eer, 0.0);
        assert!(e.threshold > 0.5 && e.threshold <= 0.8);
    }

    #[test]
    fn overlapping_scores_meet_in_the_middle() {
        // One target below one non-target out of four each: EER 25 %.
        let e = equal_error_rate(&[0.4, 0.7, 0.8, 0.9], &[0.1, 0.2, 0.3, 0.6]).unwrap();
        assert!((e.eer - 0.25).abs() < 1e-9, "{e:?}");
        assert!(equal_error_rate(&[], &[0.1]).is_none());
    }
}
