//! Clean accuracy of a model on a dataset, in batches, with a progress hook.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Model;
use serde::Serialize;

/// Images per forward call: large enough to amortise per-op overhead, small enough for wasm.
pub const EVAL_BATCH: usize = 100;

/// Predictions for a contiguous range of a dataset and how many were right.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Evaluation {
    pub start: usize,
    pub predictions: Vec<u8>,
    pub labels: Vec<u8>,
    pub correct: usize,
}

impl Evaluation {
    /// The evaluation of `predictions` for images `start..start + predictions.len()` of
    /// `data`: their labels and how many predictions match them.
    pub fn of(data: &Dataset, start: usize, predictions: Vec<u8>) -> Self {
        let labels = data.labels[start..start + predictions.len()].to_vec();
        let correct = predictions
            .iter()
            .zip(&labels)
            .filter(|(p, l)| p == l)
            .count();
        Self {
            start,
            predictions,
            labels,
            correct,
        }
    }

    pub fn total(&self) -> usize {
        self.predictions.len()
    }

    pub fn accuracy(&self) -> f64 {
        if self.predictions.is_empty() {
            0.0
        } else {
            self.correct as f64 / self.total() as f64
        }
    }
}

/// Checks that `data` holds what the model takes, and that `start..start+count` is inside it.
fn check_input(data: &Dataset, start: usize, count: usize) -> Result<()> {
    let want = crate::model::IMAGE_SIDE;
    if data.rows != want || data.cols != want || data.classes != crate::model::NUM_CLASSES {
        return Err(Error::Invalid(format!(
            "the model takes {want}×{want} images of 10 classes, the dataset has {}×{} images of {} classes",
            data.rows, data.cols, data.classes
        )));
    }
    data.check_range(start, count)
}

/// The images `start..start+count` in forward batches of at most [`EVAL_BATCH`].
fn batches(start: usize, count: usize) -> impl Iterator<Item = Vec<usize>> {
    (start..start + count)
        .step_by(EVAL_BATCH)
        .map(move |from| (from..(from + EVAL_BATCH).min(start + count)).collect())
}

/// Logits (row-major `[count, 10]`) of images `start..start+count`.
pub fn logits(model: &Model, data: &Dataset, start: usize, count: usize) -> Result<Vec<f32>> {
    check_input(data, start, count)?;
    let mut out = Vec::with_capacity(count * crate::model::NUM_CLASSES);
    for idx in batches(start, count) {
        let x = data.batch(&idx, model.weights[0].device())?;
        out.extend(model.forward(&x)?.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

/// Classifies images `start..start+count`, calling `progress(done, count)` after each batch.
pub fn evaluate(
    model: &Model,
    data: &Dataset,
    start: usize,
    count: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Evaluation> {
    check_input(data, start, count)?;
    let mut predictions = Vec::with_capacity(count);
    for idx in batches(start, count) {
        let x = data.batch(&idx, model.weights[0].device())?;
        predictions.extend(model.predict(&x)?.into_iter().map(|p| p as u8));
        progress(predictions.len(), count);
    }
    Ok(Evaluation::of(data, start, predictions))
}

/// Class counts of the model's predictions on `copies` noisy copies of image `index`
/// (the sampling step of randomized smoothing; also the throughput benchmark's workload).
pub fn noisy_counts(
    model: &Model,
    data: &Dataset,
    index: usize,
    copies: usize,
    sigma: f32,
    seed: u64,
) -> Result<Vec<u32>> {
    check_input(data, index, 1)?;
    let x = crate::noise::noisy_copies(
        data.image(index),
        copies,
        sigma,
        seed,
        model.weights[0].device(),
    )?;
    let mut counts = vec![0u32; crate::model::NUM_CLASSES];
    for p in model.predict(&x)? {
        counts[p as usize] += 1;
    }
    Ok(counts)
}
