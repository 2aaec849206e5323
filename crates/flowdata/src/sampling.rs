//! Seeded stratified splits, per-class caps and synthetic resampling.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{FlowDataError, Result};
use crate::frame::FlowFrame;

/// Fractions of a three-way split. Default: train 0.70, test 0.20, validation 0.10.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitFractions {
    /// Training share.
    pub train: f64,
    /// Test share.
    pub test: f64,
    /// Validation share.
    pub valid: f64,
}

impl Default for SplitFractions {
    fn default() -> Self {
        SplitFractions {
            train: 0.70,
            test: 0.20,
            valid: 0.10,
        }
    }
}

/// Row indices of a split, each ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Training rows.
    pub train: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
    /// Validation rows.
    pub valid: Vec<usize>,
}

/// Seeded stratified split of rows with class indices `y`.
///
/// Per class (in class-index order) the rows are shuffled with `ChaCha8Rng::seed_from_u64(seed)`
/// (one generator for the whole call); the first `round(n × train)` go to train, the next
/// `round(n × test)` to test, the rest to validation. So each class keeps its share in every
/// part (±1 row), and the same seed always gives the same split.
///
/// ```
/// let y = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
/// let s = flowdata::stratified_split(&y, flowdata::SplitFractions::default(), 42).unwrap();
/// assert_eq!((s.train.len(), s.test.len(), s.valid.len()), (14, 4, 2));
/// ```
pub fn stratified_split(y: &[u32], fractions: SplitFractions, seed: u64) -> Result<Split> {
    let SplitFractions { train, test, valid } = fractions;
    if [train, test, valid]
        .iter()
        .any(|f| !(0.0..=1.0).contains(f))
        || ((train + test + valid) - 1.0).abs() > 1e-9
    {
        return Err(FlowDataError::InvalidArgument(format!(
            "split fractions must be in [0, 1] and sum to 1, got {train}/{test}/{valid}"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Split {
        train: Vec::new(),
        test: Vec::new(),
        valid: Vec::new(),
    };
    for mut rows in rows_by_class(y) {
        rows.shuffle(&mut rng);
        let n = rows.len();
        let n_train = ((n as f64) * train).round() as usize;
        let n_test = (((n as f64) * test).round() as usize).min(n - n_train);
        out.train.extend_from_slice(&rows[..n_train]);
        out.test.extend_from_slice(&rows[n_train..n_train + n_test]);
        out.valid.extend_from_slice(&rows[n_train + n_test..]);
    }
    out.train.sort_unstable();
    out.test.sort_unstable();
    out.valid.sort_unstable();
    Ok(out)
}

fn rows_by_class(y: &[u32]) -> Vec<Vec<usize>> {
    let k = y.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
    let mut by = vec![Vec::new(); k];
    for (i, &c) in y.iter().enumerate() {
        by[c as usize].push(i);
    }
    by
}

/// Cap every class at `cap` rows, sampled uniformly without replacement (seeded), except the
/// classes in `uncapped`, which keep all their rows. Returns ascending row indices.
///
/// The thesis kept all 113,828 BENIGN rows and capped each attack class at 113,828.
/// (It drew rows with weights from a normal pdf over row position; uniform sampling is used here
/// because row position carries no meaning across files.)
///
/// ```
/// let y = vec![0, 1, 1, 1, 1, 2, 2];
/// let rows = flowdata::cap_per_class(&y, 2, &[0], 7);
/// assert_eq!(rows.len(), 1 + 2 + 2);
/// assert!(rows.contains(&0));
/// ```
pub fn cap_per_class(y: &[u32], cap: usize, uncapped: &[u32], seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for (c, mut rows) in rows_by_class(y).into_iter().enumerate() {
        if uncapped.contains(&(c as u32)) || rows.len() <= cap {
            out.extend(rows);
        } else {
            let (chosen, _) = rows.partial_shuffle(&mut rng, cap);
            out.extend_from_slice(chosen);
        }
    }
    out.sort_unstable();
    out
}

/// Relative half-width of the multiplicative jitter applied by [`resample_synthetic`].
pub const SYNTHETIC_JITTER: f32 = 0.01;

/// Feature names left exactly as sampled by [`resample_synthetic`] (categorical or flag-like
/// values that must stay integral).
pub const SYNTHETIC_UNJITTERED: &[&str] = &[
    "protocol",
    "fwd_psh_flags",
    "bwd_psh_flags",
    "fwd_urg_flags",
    "bwd_urg_flags",
    "fin_flag_count",
    "syn_flag_count",
    "rst_flag_count",
    "psh_flag_count",
    "ack_flag_count",
    "urg_flag_count",
    "ece_flag_count",
    "init_win_bytes_fwd",
    "init_win_bytes_bwd",
    "min_seg_size_fwd",
];

/// Synthetic (resampled) frame of `rows` rows, for benchmarks at scale.
///
/// Rows are drawn uniformly with replacement from `frame` (seeded `ChaCha8Rng`); every feature
/// except those in [`SYNTHETIC_UNJITTERED`] is multiplied by `1 + u`, `u ~ U(-0.01, 0.01)`
/// ([`SYNTHETIC_JITTER`]), so zeros stay zero and signs never flip. Labels and provenance are
/// copied from the drawn row; the result has `synthetic = true`. Never quote accuracy from it.
pub fn resample_synthetic(frame: &FlowFrame, rows: usize, seed: u64) -> Result<FlowFrame> {
    if frame.n_rows() == 0 {
        return Err(FlowDataError::InvalidArgument(
            "cannot resample an empty frame".into(),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let idx: Vec<usize> = (0..rows)
        .map(|_| rng.gen_range(0..frame.n_rows()))
        .collect();
    let mut out = frame.select(&idx);
    let jitter: Vec<bool> = out
        .feature_names
        .iter()
        .map(|n| !SYNTHETIC_UNJITTERED.contains(&n.as_str()))
        .collect();
    for mut row in out.x.rows_mut() {
        for (v, &j) in row.iter_mut().zip(&jitter) {
            if j {
                *v *= 1.0 + rng.gen_range(-SYNTHETIC_JITTER..SYNTHETIC_JITTER);
            }
        }
    }
    out.synthetic = true;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_deterministic_and_a_partition() {
        let y: Vec<u32> = (0..1000).map(|i| if i % 10 == 0 { 1 } else { 0 }).collect();
        let s = stratified_split(&y, SplitFractions::default(), 1).unwrap();
        let s2 = stratified_split(&y, SplitFractions::default(), 1).unwrap();
        assert_eq!(s, s2);
        let mut all: Vec<usize> = s
            .train
            .iter()
            .chain(&s.test)
            .chain(&s.valid)
            .copied()
            .collect();
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        let ones = |v: &[usize]| v.iter().filter(|&&i| y[i] == 1).count();
        assert_eq!(
            (ones(&s.train), ones(&s.test), ones(&s.valid)),
            (70, 20, 10)
        );
        assert_eq!(
            (s.train.len(), s.test.len(), s.valid.len()),
            (700, 200, 100)
        );
        let s3 = stratified_split(&y, SplitFractions::default(), 2).unwrap();
        assert_ne!(s.train, s3.train);
        assert!(stratified_split(
            &y,
            SplitFractions {
                train: 0.5,
                test: 0.2,
                valid: 0.2
            },
            1
        )
        .is_err());
    }

    #[test]
    fn resample_is_seeded_jittered_and_marked_synthetic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(
            &p,
            "Protocol,Flow Duration,SYN Flag Count,Label\n6,100,1,BENIGN\n17,0,0,Syn\n17,2000,0,Syn\n",
        )
        .unwrap();
        let (f, _) = crate::read_csv(&[&p], &crate::ReadOptions::default()).unwrap();
        let a = resample_synthetic(&f, 1000, 5).unwrap();
        assert_eq!(a, resample_synthetic(&f, 1000, 5).unwrap());
        assert!(a.synthetic && a.n_rows() == 1000);
        assert_eq!(a.fine.names, ["BENIGN", "Syn"]);
        for i in 0..a.n_rows() {
            let src = a.source_line[i] as usize - 2;
            let (x, s) = (a.x.row(i), f.x.row(src));
            assert_eq!(x[0], s[0]); // protocol: never jittered
            assert_eq!(x[2], s[2]); // flag count: never jittered
            assert!((x[1] - s[1]).abs() <= 0.01 * s[1].abs() + 1e-6);
            assert_eq!(a.fine.get(i), f.fine.get(src));
        }
        assert!((0..a.n_rows()).any(|i| a.x[[i, 1]] != f.x[[a.source_line[i] as usize - 2, 1]]));
        assert!(resample_synthetic(&f.select(&[]), 10, 1).is_err());
    }

    #[test]
    fn cap_keeps_uncapped_and_caps_others() {
        let y: Vec<u32> = (0..300).map(|i| (i % 3) as u32).collect();
        let rows = cap_per_class(&y, 10, &[0], 3);
        let count = |c| rows.iter().filter(|&&i| y[i] == c).count();
        assert_eq!((count(0), count(1), count(2)), (100, 10, 10));
        assert_eq!(rows, cap_per_class(&y, 10, &[0], 3));
    }
}
