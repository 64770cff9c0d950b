//! Seeded Gaussian noise in input space (pixels in [0, 1]). Every random number in bitsmooth
//! comes from a seed the caller shows; `StdRng` (ChaCha) gives the same stream natively and
//! in wasm.

use crate::error::{Error, Result};
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// Checks a noise level: finite and > 0.
pub fn check_sigma(sigma: f32) -> Result<()> {
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(Error::Invalid(format!(
            "σ must be a finite number > 0, got {sigma}"
        )));
    }
    Ok(())
}

/// Adds N(0, σ²) noise to every element of `x`, drawn from `rng`.
pub fn add_gaussian(x: &Tensor, sigma: f32, rng: &mut rand::rngs::StdRng) -> Result<Tensor> {
    let noise: Vec<f32> = (0..x.elem_count())
        .map(|_| sigma * Distribution::<f32>::sample(&StandardNormal, rng))
        .collect();
    Ok((x + Tensor::from_vec(noise, x.dims(), x.device())?)?)
}

/// `copies` noisy copies of one 28×28 image (pixels 0..=255) as a `[copies, 1, 28, 28]`
/// tensor: the workload of randomized smoothing.
pub fn noisy_copies(
    image: &[u8],
    copies: usize,
    sigma: f32,
    seed: u64,
    device: &Device,
) -> Result<Tensor> {
    check_sigma(sigma)?;
    let side = (image.len() as f64).sqrt() as usize;
    if side * side != image.len() {
        return Err(Error::Invalid(format!(
            "an image of {} pixels is not square",
            image.len()
        )));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut data = Vec::with_capacity(copies * image.len());
    for _ in 0..copies {
        data.extend(image.iter().map(|&p| {
            let eps: f32 = StandardNormal.sample(&mut rng);
            p as f32 / 255.0 + sigma * eps
        }));
    }
    Ok(Tensor::from_vec(data, (copies, 1, side, side), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_has_the_requested_spread_and_is_reproducible() {
        let img = vec![128u8; 784];
        let t = noisy_copies(&img, 50, 0.5, 3, &Device::Cpu).unwrap();
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / v.len() as f32).sqrt();
        // 39,200 samples: the standard error of the sd estimate is ~0.002
        assert!((mean - 128.0 / 255.0).abs() < 0.01, "{mean}");
        assert!((sd - 0.5).abs() < 0.01, "{sd}");
        let again = noisy_copies(&img, 50, 0.5, 3, &Device::Cpu).unwrap();
        assert_eq!(again.flatten_all().unwrap().to_vec1::<f32>().unwrap(), v);
        assert!(noisy_copies(&img, 1, 0.0, 3, &Device::Cpu).is_err());
        assert!(noisy_copies(&img, 1, f32::NAN, 3, &Device::Cpu).is_err());
        assert!(noisy_copies(&img[..700], 1, 0.5, 3, &Device::Cpu).is_err());
    }
}
