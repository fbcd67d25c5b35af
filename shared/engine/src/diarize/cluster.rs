//! Agglomerative clustering of window embeddings: the number of speakers comes from the audio.

use crate::matching::cosine;

/// Average-linkage clustering on cosine similarity.
///
/// Merges the two most similar clusters until none are at least `threshold` alike, then keeps
/// merging until at most `max_clusters` remain. Returns a cluster index per item, numbered by
/// first appearance.
pub fn cluster(embeddings: &[Vec<f32>], threshold: f32, max_clusters: usize) -> Vec<usize> {
    agglomerate(embeddings, |clusters, next_similarity, _| {
        next_similarity >= f64::from(threshold) || clusters > max_clusters.max(1)
    })
}

/// A cut may hold this many clusters besides its speakers, each too light to be one.
const LIGHT_CLUSTERS_MAX: usize = 4;

/// Clusters into the number of speakers that fits best. Each item weighs `weights` (its
/// windows); a cluster lighter than `min_weight` is not a speaker (overlap, noise) and joins the
/// nearest one that is. The tree is cut at every point from two clusters down to
/// `max_clusters` speakers (plus a few light clusters), each cut scored by the silhouette of the
/// labels its folding gives, and the best one wins; one speaker when the first cut with two
/// speakers leaves their centroids at least `one_speaker` alike.
///
/// Scoring the folded labels matters on noisy, narrow-band clips: a lone window is the least
/// alike item in the tree and splits off first, so the plain two-way cut would be "everyone
/// against one noisy window", which the fold then turns into one speaker.
pub fn cluster_auto(
    embeddings: &[Vec<f32>],
    weights: &[usize],
    max_clusters: usize,
    one_speaker: f32,
    min_weight: usize,
) -> Vec<usize> {
    let n = embeddings.len();
    if n < 2 || max_clusters < 2 || weights.len() != n {
        return vec![0; n];
    }
    // One pass down to two clusters, keeping the labels at every cut worth scoring: the merge
    // order does not depend on where it stops.
    let mut cuts: Vec<Vec<usize>> = Vec::new();
    agglomerate(embeddings, |clusters, _, owners| {
        if clusters <= max_clusters + LIGHT_CLUSTERS_MAX {
            let mut labels = owners.to_vec();
            renumber(&mut labels);
            cuts.push(labels);
        }
        clusters > 2
    });
    cuts.reverse(); // fewest clusters first
    let mut best: Option<(f32, Vec<usize>)> = None;
    let mut checked_one_speaker = false;
    for mut labels in cuts {
        let speakers = fold_light_clusters(&mut labels, embeddings, weights, min_weight);
        if speakers < 2 {
            continue;
        }
        if speakers > max_clusters {
            break;
        }
        if !checked_one_speaker {
            checked_one_speaker = true;
            if speakers == 2
                && cosine(
                    &centroid(embeddings, &labels, 0),
                    &centroid(embeddings, &labels, 1),
                ) >= one_speaker
            {
                return vec![0; n];
            }
        }
        let s = silhouette(embeddings, &labels);
        if best.as_ref().is_none_or(|(b, _)| s > *b) {
            best = Some((s, labels));
        }
    }
    best.map_or_else(|| vec![0; n], |(_, labels)| labels)
}

/// Folds every cluster lighter than `min` (its items' `weights` summed) into the nearest
/// cluster that is not, and renumbers; returns how many clusters are that heavy. Nothing moves
/// when none or all of them are.
fn fold_light_clusters(
    labels: &mut [usize],
    embeddings: &[Vec<f32>],
    weights: &[usize],
    min: usize,
) -> usize {
    let n = labels.iter().max().map_or(0, |m| m + 1);
    let mut weight = vec![0usize; n];
    for (&label, &w) in labels.iter().zip(weights) {
        weight[label] += w;
    }
    let heavy: Vec<usize> = (0..n).filter(|&l| weight[l] >= min).collect();
    if heavy.is_empty() || heavy.len() == n {
        return heavy.len();
    }
    let centroids: Vec<(usize, Vec<f32>)> = heavy
        .iter()
        .map(|&l| (l, centroid(embeddings, labels, l)))
        .collect();
    for (label, e) in labels.iter_mut().zip(embeddings) {
        if weight[*label] < min {
            *label = centroids
                .iter()
                .max_by(|a, b| cosine(e, &a.1).total_cmp(&cosine(e, &b.1)))
                .map_or(*label, |(l, _)| *l);
        }
    }
    renumber(labels);
    heavy.len()
}

/// Average-linkage merging from single items. Before each merge, `keep_merging` sees how many
/// clusters there are, how alike the next two to merge are, and each item's cluster (named by
/// one of its members); merging stops when it says no, or at one cluster. Returns the labels then,
/// numbered by first appearance.
fn agglomerate(
    embeddings: &[Vec<f32>],
    mut keep_merging: impl FnMut(usize, f64, &[usize]) -> bool,
) -> Vec<usize> {
    let n = embeddings.len();
    // Pairwise similarity between clusters, kept as sums so average linkage updates in O(n).
    let mut sum = vec![vec![0.0f64; n]; n];
    for i in 0..n {
        for j in i + 1..n {
            let s = f64::from(cosine(&embeddings[i], &embeddings[j]));
            sum[i][j] = s;
            sum[j][i] = s;
        }
    }
    let mut size = vec![1usize; n];
    let mut alive: Vec<usize> = (0..n).collect();
    let mut owner: Vec<usize> = (0..n).collect();
    while alive.len() > 1 {
        let mut best = (f64::MIN, 0, 0);
        for (x, &a) in alive.iter().enumerate() {
            for &b in &alive[x + 1..] {
                let avg = sum[a][b] / (size[a] * size[b]) as f64;
                if avg > best.0 {
                    best = (avg, a, b);
                }
            }
        }
        let (similarity, a, b) = best;
        if !keep_merging(alive.len(), similarity, &owner) {
            break;
        }
        // Merge b into a.
        for &c in &alive {
            if c != a && c != b {
                sum[a][c] += sum[b][c];
                sum[c][a] = sum[a][c];
            }
        }
        size[a] += size[b];
        alive.retain(|&c| c != b);
        owner.iter_mut().filter(|o| **o == b).for_each(|o| *o = a);
    }
    renumber(&mut owner);
    owner
}

/// The (unnormalised) mean of the items labelled `label`.
pub(crate) fn centroid(embeddings: &[Vec<f32>], labels: &[usize], label: usize) -> Vec<f32> {
    let mut c = vec![0.0f32; embeddings.first().map_or(0, Vec::len)];
    for (e, _) in embeddings.iter().zip(labels).filter(|(_, l)| **l == label) {
        c.iter_mut().zip(e).for_each(|(a, b)| *a += b);
    }
    c
}

/// Renumbers labels 0.. by first appearance.
pub(crate) fn renumber(labels: &mut [usize]) {
    let mut order: Vec<usize> = Vec::new();
    for label in labels.iter_mut() {
        let i = order.iter().position(|x| x == label).unwrap_or_else(|| {
            order.push(*label);
            order.len() - 1
        });
        *label = i;
    }
}

/// Mean silhouette with cosine distance; items alone in their cluster count 0.
fn silhouette(embeddings: &[Vec<f32>], labels: &[usize]) -> f32 {
    let n = embeddings.len();
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let mut total = 0.0f32;
    for i in 0..n {
        let mut sums = vec![0.0f32; k];
        let mut counts = vec![0usize; k];
        for j in (0..n).filter(|&j| j != i) {
            sums[labels[j]] += 1.0 - cosine(&embeddings[i], &embeddings[j]);
            counts[labels[j]] += 1;
        }
        if counts[labels[i]] == 0 {
            continue;
        }
        let a = sums[labels[i]] / counts[labels[i]] as f32;
        let b = (0..k)
            .filter(|&l| l != labels[i] && counts[l] > 0)
            .map(|l| sums[l] / counts[l] as f32)
            .fold(f32::INFINITY, f32::min);
        if b.is_finite() {
            total += (b - a) / a.max(b).max(1e-6);
        }
    }
    total / n as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn around(axis: usize, wobble: f32) -> Vec<f32> {
        let mut v = vec![0.05f32; 4];
        v[axis] = 1.0;
        v[(axis + 1) % 4] += wobble;
        v
    }

    #[test]
    fn separates_speakers_and_finds_their_number() {
        let items = vec![
            around(0, 0.0),
            around(1, 0.1),
            around(0, 0.1),
            around(2, 0.0),
            around(1, 0.0),
        ];
        assert_eq!(cluster(&items, 0.8, 4), vec![0, 1, 0, 2, 1]);
        let one = vec![around(0, 0.0), around(0, 0.1), around(0, 0.2)];
        assert_eq!(cluster(&one, 0.8, 4), vec![0, 0, 0]);
    }

    /// Two speakers 0.7 alike (B leans towards A) and one window of noise unlike both.
    fn two_speakers_and_a_noisy_window() -> Vec<Vec<f32>> {
        let mut items: Vec<Vec<f32>> = [0.0, 0.15, 0.3]
            .iter()
            .map(|w| vec![1.0, 0.05, 0.05 + w, 0.05])
            .collect();
        items.extend(
            [0.0, 0.15, 0.3]
                .iter()
                .map(|w| vec![0.9, 1.0, 0.05, 0.05 + w]),
        );
        items.push(vec![0.05, 0.05, 0.3, 1.0]);
        items
    }

    #[test]
    fn a_lone_window_is_no_speaker() {
        let items = two_speakers_and_a_noisy_window();
        let labels = cluster_auto(&items, &[1; 7], 4, 0.9, 2);
        assert_eq!(&labels[..6], &[0, 0, 0, 1, 1, 1], "{labels:?}");
        assert!(
            labels[6] <= 1,
            "the noisy window joins a speaker: {labels:?}"
        );
        // Weighing two windows, the same item is a speaker of its own.
        let labels = cluster_auto(&items, &[1, 1, 1, 1, 1, 1, 2], 4, 0.9, 2);
        assert_eq!(labels, vec![0, 0, 0, 1, 1, 1, 2]);
    }

    #[test]
    fn a_speaker_heard_only_in_lone_windows_is_one() {
        // B speaks three times, one window each: together they weigh a speaker.
        let items = two_speakers_and_a_noisy_window();
        let labels = cluster_auto(&items[..6], &[4, 4, 4, 1, 1, 1], 4, 0.9, 2);
        assert_eq!(labels, vec![0, 0, 0, 1, 1, 1]);
        // Alike enough, they are one speaker.
        let one: Vec<Vec<f32>> = (0..4).map(|i| around(0, 0.05 * i as f32)).collect();
        assert_eq!(cluster_auto(&one, &[3, 3, 1, 1], 4, 0.9, 2), vec![0; 4]);
    }

    #[test]
    fn never_more_than_the_maximum() {
        let items: Vec<Vec<f32>> = (0..4).map(|a| around(a, 0.0)).collect();
        let labels = cluster(&items, 0.99, 2);
        assert!(labels.iter().max().unwrap() <= &1, "{labels:?}");
        assert!(cluster(&[], 0.5, 4).is_empty());
    }
}
