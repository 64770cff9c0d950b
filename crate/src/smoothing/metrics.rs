//! Certified accuracy and the average certified radius (ACR) over a test set, from one row per
//! image — the row Cohen et al.'s certification runs print (`idx label predict radius
//! correct time`), plus `nA n` so any row can be re-checked from its counts.

use crate::smoothing::certify::Certificate;
use crate::smoothing::irs::IncrementalCertificate;
use serde::{Deserialize, Serialize};

/// What the `predict` column holds for an abstention in Cohen et al.'s output files.
pub const ABSTAIN: i64 = -1;

/// One certified test image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertificationRow {
    /// Index of the image in its dataset.
    pub idx: u64,
    /// True class.
    pub label: u32,
    /// The smoothed classifier's class, `None` for an abstention.
    pub predict: Option<u32>,
    /// Certified ℓ₂ radius (0 when abstaining), in [0, 1]-pixel units.
    pub radius: f64,
    /// `predict == Some(label)`.
    pub correct: bool,
    /// Wall-clock seconds the certification took (measured by the caller).
    pub time: f64,
    /// Count of the certified class among the n estimation draws.
    #[serde(rename = "nA")]
    pub n_a: u64,
    pub n: u64,
}

impl CertificationRow {
    pub fn from_certificate(idx: u64, label: u32, cert: &Certificate, time: f64) -> Self {
        Self::new(
            idx,
            label,
            cert.prediction,
            cert.radius,
            time,
            cert.n_a,
            cert.n,
        )
    }

    /// From an IRS result; `nA n` are the counts its bound came from (see
    /// [`IncrementalCertificate::n_a`]).
    pub fn from_incremental(
        idx: u64,
        label: u32,
        cert: &IncrementalCertificate,
        time: f64,
    ) -> Self {
        Self::new(
            idx,
            label,
            cert.prediction,
            cert.radius,
            time,
            cert.n_a,
            cert.n,
        )
    }

    fn new(
        idx: u64,
        label: u32,
        predict: Option<u32>,
        radius: f64,
        time: f64,
        n_a: u64,
        n: u64,
    ) -> Self {
        Self {
            idx,
            label,
            predict,
            radius,
            correct: predict == Some(label),
            time,
            n_a,
            n,
        }
    }

    /// The `predict` column: the class, or [`ABSTAIN`] (−1).
    pub fn predict_column(&self) -> i64 {
        self.predict.map_or(ABSTAIN, i64::from)
    }

    /// The radius this row contributes to certified accuracy and ACR: its radius if it is a
    /// correct prediction, `None` if it is wrong or abstained.
    fn certified_correct_radius(&self) -> Option<f64> {
        (self.predict == Some(self.label)).then_some(self.radius)
    }
}

/// Average certified radius: the mean over all rows of the radius, counting abstentions and
/// wrong predictions as 0. 0 for no rows.
pub fn acr(rows: &[CertificationRow]) -> f64 {
    if rows.is_empty() {
        return 0.0;
    }
    let total: f64 = rows
        .iter()
        .filter_map(CertificationRow::certified_correct_radius)
        .sum();
    total / rows.len() as f64
}

/// Certified accuracy at radius r ≥ 0: the fraction of rows predicted correctly with a
/// certified radius ≥ r (at r = 0, the smoothed classifier's accuracy counting abstentions
/// as errors). In [0, 1]; 0 for no rows.
pub fn certified_accuracy(rows: &[CertificationRow], r: f64) -> f64 {
    if rows.is_empty() {
        return 0.0;
    }
    let certified = rows
        .iter()
        .filter_map(CertificationRow::certified_correct_radius)
        .filter(|&radius| radius >= r)
        .count();
    certified as f64 / rows.len() as f64
}

/// Certified accuracy at each radius of `radii`, as (r, accuracy) pairs in the same order:
/// the curve of Cohen et al.'s figures.
pub fn certified_accuracy_curve(rows: &[CertificationRow], radii: &[f64]) -> Vec<(f64, f64)> {
    radii
        .iter()
        .map(|&r| (r, certified_accuracy(rows, r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: u32, predict: Option<u32>, radius: f64) -> CertificationRow {
        CertificationRow::new(0, label, predict, radius, 0.0, 0, 0)
    }

    fn rows() -> Vec<CertificationRow> {
        vec![
            row(1, Some(1), 0.8), // correct
            row(2, Some(2), 0.3), // correct
            row(3, Some(4), 1.5), // wrong: counts as 0 however large its radius
            row(5, None, 0.0),    // abstained
            row(0, Some(0), 0.0), // correct at p_A = ½ exactly: radius 0
        ]
    }

    #[test]
    fn acr_counts_wrong_and_abstained_points_as_zero() {
        // (0.8 + 0.3 + 0 + 0 + 0) / 5
        assert!((acr(&rows()) - 0.22).abs() < 1e-12);
        assert_eq!(acr(&[]), 0.0);
        assert_eq!(acr(&[row(3, Some(4), 2.0)]), 0.0);
    }

    #[test]
    fn certified_accuracy_counts_correct_points_with_enough_radius() {
        let rows = rows();
        assert_eq!(certified_accuracy(&rows, 0.0), 3.0 / 5.0);
        assert_eq!(certified_accuracy(&rows, 0.3), 2.0 / 5.0);
        assert_eq!(certified_accuracy(&rows, 0.5), 1.0 / 5.0);
        assert_eq!(certified_accuracy(&rows, 1.0), 0.0);
        assert_eq!(
            certified_accuracy_curve(&rows, &[0.0, 0.25, 0.5, 0.75, 1.0]),
            vec![(0.0, 0.6), (0.25, 0.4), (0.5, 0.2), (0.75, 0.2), (1.0, 0.0)]
        );
        assert_eq!(certified_accuracy(&[], 0.0), 0.0);
    }

    #[test]
    fn rows_serialise_with_the_reference_column_names() {
        let r = row(3, None, 0.0);
        assert_eq!(r.predict_column(), -1);
        assert!(!r.correct);
        assert_eq!(row(3, Some(3), 0.1).predict_column(), 3);
        let json = serde_json::to_value(row(3, Some(3), 0.1)).unwrap();
        for column in [
            "idx", "label", "predict", "radius", "correct", "time", "nA", "n",
        ] {
            assert!(json.get(column).is_some(), "{column} missing from {json}");
        }
        assert_eq!(json["correct"], true);
    }
}
