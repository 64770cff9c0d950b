//! The validation images a search scores policies on: a seeded random subset of the
//! **training** set (never the test set, which is kept for reporting the chosen policies).

use crate::data::Dataset;
use crate::error::{Error, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// `size` training images drawn without replacement by `seed`, with their indices in the
/// training set (ascending), which also key their smoothing noise.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidationSet {
    pub indices: Vec<usize>,
    pub images: Dataset,
}

impl ValidationSet {
    /// Draws `size` ∈ 1..=train.len() distinct images of `train` uniformly by `seed`.
    pub fn draw(train: &Dataset, size: usize, seed: u64) -> Result<Self> {
        if size == 0 || size > train.len() {
            return Err(Error::Invalid(format!(
                "a validation subset needs between 1 and {} images (the training set), got {size}",
                train.len()
            )));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut indices = rand::seq::index::sample(&mut rng, train.len(), size).into_vec();
        indices.sort_unstable();
        let mut pixels = Vec::with_capacity(size * train.image_len());
        let mut labels = Vec::with_capacity(size);
        for &i in &indices {
            pixels.extend_from_slice(train.image(i));
            labels.push(train.labels[i]);
        }
        let images = Dataset::new(train.rows, train.cols, train.classes, labels, pixels)?;
        Ok(Self { indices, images })
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: usize) -> Dataset {
        // image i is filled with i (mod 256) and labelled i mod 10
        let pixels = (0..n).flat_map(|i| vec![i as u8; 784]).collect();
        let labels = (0..n).map(|i| (i % 10) as u8).collect();
        Dataset::new(28, 28, 10, labels, pixels).unwrap()
    }

    #[test]
    fn the_subset_is_distinct_seeded_and_keeps_images_with_their_labels() {
        let train = numbered(200);
        let a = ValidationSet::draw(&train, 50, 3).unwrap();
        assert_eq!(a, ValidationSet::draw(&train, 50, 3).unwrap());
        assert_ne!(
            a.indices,
            ValidationSet::draw(&train, 50, 4).unwrap().indices
        );
        assert!(a.indices.windows(2).all(|w| w[0] < w[1]));
        for (k, &i) in a.indices.iter().enumerate() {
            assert_eq!(a.images.image(k)[0], i as u8);
            assert_eq!(a.images.labels[k], (i % 10) as u8);
        }
    }

    /// HAQ's reward (`accuracy`) draws its subset the same way: with the same seed and size,
    /// ARQ and HAQ score policies on the same training images.
    #[test]
    fn the_subset_is_the_one_the_accuracy_reward_draws() {
        use crate::search::accuracy::{ValidationAccuracy, ValidationConfig};
        let shipped = include_bytes!("../../../public/models/mnist-sigma0.25.safetensors");
        let images = include_bytes!("../../tests/fixtures/mnist-test.bsds");
        let train = Dataset::from_bytes(images).unwrap();
        for seed in 0..5 {
            let cfg = ValidationConfig {
                images: 5,
                seed,
                ..ValidationConfig::default()
            };
            let loaded = crate::checkpoint::load(shipped).unwrap();
            let accuracy = ValidationAccuracy::new(loaded, &train, &cfg).unwrap();
            let ours = ValidationSet::draw(&train, 5, seed).unwrap();
            assert_eq!(ours.indices, accuracy.indices());
        }
    }

    #[test]
    fn sizes_outside_the_training_set_are_errors() {
        let train = numbered(20);
        assert!(ValidationSet::draw(&train, 0, 0).is_err());
        assert!(ValidationSet::draw(&train, 21, 0).is_err());
        assert_eq!(ValidationSet::draw(&train, 20, 0).unwrap().len(), 20);
    }
}
