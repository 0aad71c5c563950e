//! Plain metrics: ROC-AUC, precision/recall/F1 from counts.

use serde::Serialize;

/// Area under the ROC curve: the probability that a random positive scores above a
/// random negative (ties count half). None when a class is missing.
pub fn roc_auc(scores: &[f32], positives: &[bool]) -> Option<f64> {
    let mut pairs: Vec<(f32, bool)> = scores
        .iter()
        .copied()
        .zip(positives.iter().copied())
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n_pos = pairs.iter().filter(|p| p.1).count() as f64;
    let n_neg = pairs.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return None;
    }
    // Mann-Whitney U with average ranks for ties.
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        let avg_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum_pos += avg_rank * pairs[i..j].iter().filter(|p| p.1).count() as f64;
        i = j;
    }
    Some((rank_sum_pos - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg))
}

/// Expected calibration error over `bins` equal-width probability bins: the average gap
/// between the mean predicted probability and the observed rate, weighted by bin size.
/// 0 for a perfectly calibrated score; None for no data or a NaN score.
pub fn expected_calibration_error(scores: &[f32], positives: &[bool], bins: usize) -> Option<f64> {
    if scores.is_empty() || bins == 0 {
        return None;
    }
    let mut sum_p = vec![0.0f64; bins];
    let mut sum_y = vec![0.0f64; bins];
    let mut count = vec![0usize; bins];
    let mut n = 0usize;
    for (&s, &y) in scores.iter().zip(positives) {
        if s.is_nan() {
            return None;
        }
        n += 1;
        let p = (s as f64).clamp(0.0, 1.0);
        let b = ((p * bins as f64) as usize).min(bins - 1);
        sum_p[b] += p;
        sum_y[b] += y as u8 as f64;
        count[b] += 1;
    }
    let n = n as f64;
    Some(
        (0..bins)
            .filter(|&b| count[b] > 0)
            .map(|b| (sum_p[b] - sum_y[b]).abs() / n)
            .sum(),
    )
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Counts {
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

impl Counts {
    /// Counts one binary decision: `predicted` positive or not, `actual` positive or not.
    pub fn add(&mut self, predicted: bool, actual: bool) {
        match (predicted, actual) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => {}
        }
    }

    pub fn prf(&self) -> Prf {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(self.tp, self.tp + self.fp);
        let recall = ratio(self.tp, self.tp + self.fn_);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Prf {
            precision,
            recall,
            f1,
            support: self.tp + self.fn_,
        }
    }
}

/// Span matching counts precision on predictions and recall on gold spans separately,
/// since one gold span may be covered by several predicted pieces (and vice versa).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SpanCounts {
    pub pred_correct: usize,
    pub pred_total: usize,
    pub gold_found: usize,
    pub gold_total: usize,
}

impl SpanCounts {
    pub fn prf(&self) -> Prf {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(self.pred_correct, self.pred_total);
        let recall = ratio(self.gold_found, self.gold_total);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Prf {
            precision,
            recall,
            f1,
            support: self.gold_total,
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn calibration_error() {
        // Scores of 0.8 where 8 in 10 are positive: calibrated.
        let labels: Vec<bool> = (0..10).map(|i| i < 8).collect();
        assert!(expected_calibration_error(&[0.8; 10], &labels, 10).unwrap() < 1e-6);
        // Scores of 0.9 where half are positive: off by 0.4.
        let half: Vec<bool> = (0..10).map(|i| i % 2 == 0).collect();
        assert!((expected_calibration_error(&[0.9; 10], &half, 10).unwrap() - 0.4).abs() < 1e-6);
        assert_eq!(expected_calibration_error(&[], &[], 10), None);
        assert_eq!(expected_calibration_error(&[f32::NAN], &[true], 10), None);
    }

    use super::*;

    #[test]
    fn auc_of_perfect_reversed_and_tied_rankings() {
        assert_eq!(
            roc_auc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]),
            Some(1.0)
        );
        assert_eq!(
            roc_auc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]),
            Some(0.0)
        );
        assert_eq!(
            roc_auc(&[0.5, 0.5, 0.5, 0.5], &[false, true, false, true]),
            Some(0.5)
        );
        // One inversion among four pairs.
        assert_eq!(
            roc_auc(&[0.1, 0.6, 0.5, 0.9], &[false, false, true, true]),
            Some(0.75)
        );
        assert_eq!(roc_auc(&[0.1], &[true]), None);
    }

    #[test]
    fn prf_from_counts() {
        let p = Counts {
            tp: 8,
            fp: 2,
            fn_: 8,
        }
        .prf();
        assert!((p.precision - 0.8).abs() < 1e-12);
        assert!((p.recall - 0.5).abs() < 1e-12);
        assert!((p.f1 - 2.0 * 0.8 * 0.5 / 1.3).abs() < 1e-12);
        assert_eq!(Counts::default().prf().f1, 0.0);
    }
}
