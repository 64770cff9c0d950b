//! The base classifier f of randomized smoothing, seen only through the classes it assigns
//! to a batch of inputs — so the same certification runs on the candle reference model, a
//! faster CPU executor, or a GPU.

use crate::error::{Error, Result};
use crate::model::{Model, IMAGE_SIDE};
use crate::smoothing::noise::{NoisyCopies, IMAGE_PIXELS};
use candle_core::Tensor;
use std::ops::Range;

/// A base classifier f: inputs → classes, applied to a batch of (noisy) images at a time.
pub trait BaseClassifier {
    /// Number of classes k; every answer is in 0..k.
    fn num_classes(&self) -> usize;

    /// The class f(x) of each of `batch` images given row-major as `[batch, 1, 28, 28]`
    /// (`inputs.len() == batch · 784`, values in [0, 1] plus noise, unclipped).
    /// Returns exactly `batch` classes, in input order.
    fn classify_batch(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<u32>>;

    /// The class counts of the noisy copies `samples` of `copies` (the image, σ and noise
    /// key), computed by the executor itself — for an executor that draws the noise where
    /// it runs (a GPU) and returns only the counts. `None` (the default): the caller draws
    /// the copies on the host and calls [`classify_batch`](Self::classify_batch), which
    /// gives the same counts. An answer must have `num_classes()` entries summing to the
    /// number of samples.
    fn counts(&mut self, copies: &NoisyCopies, samples: Range<u64>) -> Option<Result<Vec<u64>>> {
        let _ = (copies, samples);
        None
    }
}

impl<C: BaseClassifier + ?Sized> BaseClassifier for &mut C {
    fn num_classes(&self) -> usize {
        (**self).num_classes()
    }

    fn classify_batch(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<u32>> {
        (**self).classify_batch(inputs, batch)
    }

    fn counts(&mut self, copies: &NoisyCopies, samples: Range<u64>) -> Option<Result<Vec<u64>>> {
        (**self).counts(copies, samples)
    }
}

/// The candle model, run on the device its weights live on (evaluation mode: BN uses its
/// running statistics, so a batch's answers do not depend on each other).
impl BaseClassifier for Model {
    fn num_classes(&self) -> usize {
        crate::model::NUM_CLASSES
    }

    fn classify_batch(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<u32>> {
        if inputs.len() != batch * IMAGE_PIXELS {
            return Err(Error::Invalid(format!(
                "a batch of {batch} images needs {} values, got {}",
                batch * IMAGE_PIXELS,
                inputs.len()
            )));
        }
        let x = Tensor::from_slice(
            inputs,
            (batch, 1, IMAGE_SIDE, IMAGE_SIDE),
            self.weights[0].device(),
        )?;
        self.predict(&x)
    }
}

/// Asks `f` for the counts of `samples` itself ([`BaseClassifier::counts`]) and checks the
/// answer: `f.num_classes()` entries summing to the number of samples. `None`: `f` leaves
/// the sampling to the caller.
pub(crate) fn counts_checked(
    f: &mut dyn BaseClassifier,
    copies: &NoisyCopies,
    samples: Range<u64>,
) -> Option<Result<Vec<u64>>> {
    let want = samples.end.saturating_sub(samples.start);
    let counts = f.counts(copies, samples)?;
    let k = f.num_classes();
    Some(counts.and_then(|counts| {
        let total: u64 = counts.iter().sum();
        if counts.len() != k || total != want {
            return Err(Error::Invalid(format!(
                "the base classifier counted {total} samples in {} classes, expected {want} in {k}",
                counts.len()
            )));
        }
        Ok(counts)
    }))
}

/// Calls `f` and checks its answer: `batch` classes, each below `f.num_classes()`.
pub(crate) fn classify_checked(
    f: &mut dyn BaseClassifier,
    inputs: &[f32],
    batch: usize,
) -> Result<Vec<u32>> {
    let classes = f.classify_batch(inputs, batch)?;
    if classes.len() != batch {
        return Err(Error::Invalid(format!(
            "the base classifier answered {} classes for a batch of {batch} images",
            classes.len()
        )));
    }
    let k = f.num_classes();
    if let Some(bad) = classes.iter().find(|&&c| c as usize >= k) {
        return Err(Error::Invalid(format!(
            "the base classifier answered class {bad}, but it has only {k} classes"
        )));
    }
    Ok(classes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelMeta;
    use candle_core::Device;

    #[test]
    fn model_classifies_a_batch_like_predict() {
        let mut model = Model::init(ModelMeta::new("mnist", 0.25), 1, &Device::Cpu).unwrap();
        let inputs: Vec<f32> = (0..3 * IMAGE_PIXELS)
            .map(|i| ((i * 37) % 101) as f32 / 100.0)
            .collect();
        let x = Tensor::from_slice(&inputs, (3, 1, 28, 28), &Device::Cpu).unwrap();
        let want = model.predict(&x).unwrap();
        let got = classify_checked(&mut model, &inputs, 3).unwrap();
        assert_eq!(got, want);
        assert!(got.iter().all(|&c| c < 10));
        let err = model
            .classify_batch(&inputs[..100], 3)
            .unwrap_err()
            .to_string();
        assert!(err.contains("2352 values"), "{err}");
    }

    struct Broken(Vec<u32>);
    impl BaseClassifier for Broken {
        fn num_classes(&self) -> usize {
            10
        }
        fn classify_batch(&mut self, _: &[f32], _: usize) -> Result<Vec<u32>> {
            Ok(self.0.clone())
        }
    }

    /// Counts on its own, wrongly when asked to: 1 per class whatever the samples.
    struct Counting {
        wrong: bool,
    }
    impl BaseClassifier for Counting {
        fn num_classes(&self) -> usize {
            10
        }
        fn classify_batch(&mut self, _: &[f32], _: usize) -> Result<Vec<u32>> {
            Err(Error::Invalid("asked to classify".into()))
        }
        fn counts(&mut self, _: &NoisyCopies, samples: Range<u64>) -> Option<Result<Vec<u64>>> {
            let mut counts = vec![0; 10];
            counts[3] = samples.end - samples.start;
            Some(Ok(if self.wrong { vec![1; 10] } else { counts }))
        }
    }

    #[test]
    fn an_executor_that_counts_itself_is_asked_for_counts_and_checked() {
        use crate::smoothing::noise::NoiseKey;
        let copies = NoisyCopies::new(&[0; IMAGE_PIXELS], 0.5, NoiseKey::default()).unwrap();
        let mut go = |_: u64, _: u64| true;
        let mut f = Counting { wrong: false };
        let counts = crate::smoothing::sample_counts(&mut f, &copies, 10..260, 100, &mut go)
            .unwrap()
            .completed()
            .unwrap();
        assert_eq!(counts, [0, 0, 0, 250, 0, 0, 0, 0, 0, 0]);
        let err = counts_checked(&mut Counting { wrong: true }, &copies, 0..5)
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("counted 10 samples") && err.contains("expected 5"),
            "{err}"
        );
        // the default: no counts of its own
        let mut model = Model::init(ModelMeta::new("mnist", 0.25), 1, &Device::Cpu).unwrap();
        assert!(counts_checked(&mut model, &copies, 0..5).is_none());
    }

    #[test]
    fn answers_of_the_wrong_length_or_range_are_errors() {
        let inputs = vec![0.0; 2 * IMAGE_PIXELS];
        let short = classify_checked(&mut Broken(vec![1]), &inputs, 2).unwrap_err();
        assert!(short.to_string().contains("1 classes for a batch of 2"));
        let out_of_range = classify_checked(&mut Broken(vec![1, 10]), &inputs, 2).unwrap_err();
        assert!(out_of_range.to_string().contains("class 10"));
    }
}
