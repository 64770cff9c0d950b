//! The integer path's arithmetic (`int_plan`) written out plainly, for checking the kernels:
//! NCHW maps, direct convolutions with bounds tests, i64 sums, read straight from the
//! [`Model`] (its integer weights, quantizers, batch-norms), no plan, tiles or SIMD. Slow
//! (it allocates every map) and used only by tests — natively and in wasm, where the
//! executor must equal it bit for bit.

use crate::error::{Error, Result};
use crate::model::{LayerKind, Model, IMAGE_SIDE, NUM_CLASSES};

const BN_EPS: f32 = 1e-5;

/// A map `[channels][side][side]`.
struct Map {
    channels: usize,
    side: usize,
    values: Vec<f32>,
}

fn tensor_values(t: &candle_core::Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

/// γ/√(var + ε) and β − mean·γ/√(var + ε) of the batch-norm after layer `i`.
fn batch_norm(model: &Model, i: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let bn = model.bn_for(i);
    let (g, b) = (tensor_values(&bn.gamma)?, tensor_values(&bn.beta)?);
    let m = tensor_values(&bn.running_mean.borrow())?;
    let v = tensor_values(&bn.running_var.borrow())?;
    let scale: Vec<f32> = g
        .iter()
        .zip(&v)
        .map(|(g, v)| g / (v + BN_EPS).sqrt())
        .collect();
    let shift = (0..g.len()).map(|o| b[o] - m[o] * scale[o]).collect();
    Ok((scale, shift))
}

/// `clip(round_ties_even(v / s), 0, 2^bits − 1)`.
fn level(v: f32, scale: f32, bits: u8) -> i64 {
    (v / scale)
        .clamp(0.0, ((1u32 << bits) - 1) as f32)
        .round_ties_even() as i64
}

/// The levels of `map` under layer `i`'s input quantizer.
fn levels(model: &Model, i: usize, map: &Map) -> Result<Vec<i64>> {
    let q = model.input_quant[i]
        .ok_or_else(|| Error::Model(format!("layer {i} has no input quantizer")))?;
    Ok(map
        .values
        .iter()
        .map(|&v| level(v, q.scale, q.bits))
        .collect())
}

/// The input pixel (y·side + x) of tap (ky, kx) for output (oy, ox), if inside the map.
fn tap(
    spec: &crate::model::LayerSpec,
    oy: usize,
    ox: usize,
    ky: usize,
    kx: usize,
) -> Option<usize> {
    let y = (oy * spec.stride + ky) as isize - spec.padding as isize;
    let x = (ox * spec.stride + kx) as isize - spec.padding as isize;
    let side = spec.in_hw[0] as isize;
    (0..side).contains(&y).then_some(())?;
    (0..side).contains(&x).then(|| (y * side + x) as usize)
}

/// The float stem: folded weights `w · scale`, summed tap by tap from 0 without fusing,
/// then `+ shift` and the ReLU.
fn stem(model: &Model, image: &[f32]) -> Result<Map> {
    let spec = &model.layers[0];
    let w = tensor_values(&model.weights[0])?;
    let (scale, shift) = batch_norm(model, 0)?;
    let (cin, cout, k, side) = (
        spec.in_channels,
        spec.out_channels,
        spec.kernel,
        spec.out_hw[0],
    );
    let mut values = vec![0.0; cout * side * side];
    for o in 0..cout {
        for oy in 0..side {
            for ox in 0..side {
                let mut acc = 0.0f32;
                for ky in 0..k {
                    for kx in 0..k {
                        for ci in 0..cin {
                            let x = tap(spec, oy, ox, ky, kx)
                                .map_or(0.0, |p| image[ci * IMAGE_SIDE * IMAGE_SIDE + p]);
                            let wf = w[((o * cin + ci) * k + ky) * k + kx] * scale[o];
                            acc += x * wf; // a product, then a sum: never fused
                        }
                    }
                }
                values[(o * side + oy) * side + ox] = (acc + shift[o]).max(0.0);
            }
        }
    }
    Ok(Map {
        channels: cout,
        side,
        values,
    })
}

/// Integer convolution `i` of the levels `input` (of a `cin × in_side²` map), requantized:
/// `f32(Σ l·q) · ((s_a · s_w[o]) · scale[o]) + shift[o]`, then `+ residual` and the ReLU.
fn conv(model: &Model, i: usize, input: &[i64], residual: Option<&Map>, relu: bool) -> Result<Map> {
    let spec = &model.layers[i];
    let iw = model.integer_weights[i]
        .as_ref()
        .ok_or_else(|| Error::Model(format!("layer {i} has no integer weights")))?;
    let s_a = model.input_quant[i].expect("checked by `levels`").scale;
    let (scale, shift) = batch_norm(model, i)?;
    let (cin, cout, k, side) = (
        spec.in_channels,
        spec.out_channels,
        spec.kernel,
        spec.out_hw[0],
    );
    let in_pixels = spec.in_hw[0] * spec.in_hw[0];
    let mut values = vec![0.0; cout * side * side];
    for o in 0..cout {
        let m = (s_a * iw.scales[o]) * scale[o];
        for oy in 0..side {
            for ox in 0..side {
                let mut acc = 0i64;
                for ci in 0..cin {
                    for ky in 0..k {
                        for kx in 0..k {
                            if let Some(p) = tap(spec, oy, ox, ky, kx) {
                                let q = iw.q[((o * cin + ci) * k + ky) * k + kx] as i64;
                                acc += input[ci * in_pixels + p] * q;
                            }
                        }
                    }
                }
                let at = (o * side + oy) * side + ox;
                let mut v = acc as i32 as f32 * m + shift[o];
                if let Some(r) = residual {
                    v += r.values[at];
                }
                values[at] = if relu { v.max(0.0) } else { v };
            }
        }
    }
    Ok(Map {
        channels: cout,
        side,
        values,
    })
}

/// Logits of one image (784 values) by the integer definition. Errors where the model has no
/// integer path (missing integer weights or activation quantizers).
pub fn logits(model: &Model, image: &[f32]) -> Result<Vec<f32>> {
    if image.len() != IMAGE_SIDE * IMAGE_SIDE {
        return Err(Error::Invalid("an image has 784 values".into()));
    }
    debug_assert!(model.layers[..7].iter().all(|l| l.kind == LayerKind::Conv));
    let h0 = stem(model, image)?;
    let s1 = conv(model, 3, &levels(model, 3, &h0)?, None, false)?;
    let a1 = conv(model, 1, &levels(model, 1, &h0)?, None, true)?;
    let h1 = conv(model, 2, &levels(model, 2, &a1)?, Some(&s1), true)?;
    let s2 = conv(model, 6, &levels(model, 6, &h1)?, None, false)?;
    let b1 = conv(model, 4, &levels(model, 4, &h1)?, None, true)?;
    let h2 = conv(model, 5, &levels(model, 5, &b1)?, Some(&s2), true)?;
    // the head, over the NCHW flattening c·49 + y·7 + x
    let x = levels(model, 7, &h2)?;
    let iw = model.integer_weights[7]
        .as_ref()
        .ok_or_else(|| Error::Model("the head has no integer weights".into()))?;
    let s_a = model.input_quant[7].expect("checked by `levels`").scale;
    let bias = tensor_values(&model.fc_bias)?;
    let inputs = h2.channels * h2.side * h2.side;
    Ok((0..NUM_CLASSES)
        .map(|o| {
            let acc: i64 = (0..inputs)
                .map(|j| x[j] * iw.q[o * inputs + j] as i64)
                .sum();
            acc as i32 as f32 * (s_a * iw.scales[o]) + bias[o]
        })
        .collect())
}
