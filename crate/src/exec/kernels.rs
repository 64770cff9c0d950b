//! Convolution and linear kernels on NHWC f32 buffers of one image.
//!
//! The convolution is an implicit GEMM: `PX` output pixels × `CB` output channels are
//! accumulated in fixed-size arrays (registers, once LLVM has vectorised the `CB` lanes and
//! unrolled the `PX` pixels), walking the taps and input channels; the weights of one output
//! block (≤ 27 KB) stay in L1 while all pixels pass. Inputs are zero-bordered, so the taps
//! need no bounds tests. The epilogue adds the folded batch-norm shift, the residual, applies
//! ReLU and writes each destination through its activation quantizer.
//!
//! The generic kernels are `#[inline(always)]` and compiled into one small entry point per
//! layer shape and instruction set ([`conv_portable`], [`avx2::conv`]): inlined all together
//! into one large function, LLVM no longer vectorises the register tile.

use super::plan::{relu, ConvPlan, LinearPlan, Quantizer, FC_LANES};

/// How `acc + a·b` is computed: two roundings (portable), or one fused multiply-add where
/// the instruction set has it (then `mul_add` compiles to a single instruction).
pub trait MulAdd {
    fn mul_add(acc: f32, a: f32, b: f32) -> f32;
}

pub struct Separate;
impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(acc: f32, a: f32, b: f32) -> f32 {
        acc + a * b
    }
}

#[cfg(target_arch = "x86_64")]
pub struct Fused;
#[cfg(target_arch = "x86_64")]
impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(acc: f32, a: f32, b: f32) -> f32 {
        a.mul_add(b, acc)
    }
}

/// A feature map written by a convolution's epilogue: NHWC, `side + 2·border` pixels a
/// side (the border stays zero), each value passed through `quant`.
pub struct Dest<'a> {
    pub buf: &'a mut [f32],
    pub border: usize,
    pub quant: Option<Quantizer>,
}

/// What follows the convolution and its batch-norm.
pub struct Epilogue<'a, 'b> {
    /// Added before the ReLU: an unbordered NHWC map of the output's shape.
    pub residual: Option<&'a [f32]>,
    pub relu: bool,
    pub dests: &'a mut [Dest<'b>],
}

/// Convolution `layer` of `input` (NHWC, bordered by `in_border` ≥ the layer's padding)
/// followed by `epi`. `CB` must equal `layer.block`.
#[inline(always)]
pub fn conv<M: MulAdd, const CB: usize, const PX: usize>(
    layer: &ConvPlan,
    input: &[f32],
    in_border: usize,
    epi: &mut Epilogue,
) {
    debug_assert_eq!(layer.block, CB);
    let (cin, k, s) = (layer.cin, layer.kernel, layer.stride);
    let in_width = layer.in_side + 2 * in_border;
    let origin = in_border - layer.padding;
    let out_side = layer.out_side;
    let pixels = out_side * out_side;
    let block_len = k * k * cin * CB;
    for (block, weights) in layer.weights.chunks_exact(block_len).enumerate() {
        let shift: &[f32; CB] = layer.shift[block * CB..][..CB].try_into().expect("CB");
        for first in (0..pixels).step_by(PX) {
            let base = tile_bases::<PX>(first, out_side, s, origin, in_width, cin);
            let acc = accumulate::<M, CB, PX>(input, &base, weights, k, in_width, cin);
            let valid = PX.min(pixels - first);
            store(&acc[..valid], first, block, shift, layer, epi);
        }
    }
}

/// Where the `PX` output pixels from `first` on read their top-left tap in a map of rows of
/// `in_width` pixels × `cin` channels (`origin`: the map's border minus the padding); a
/// partial tile at the end of the map repeats its last pixel.
#[inline(always)]
pub fn tile_bases<const PX: usize>(
    first: usize,
    out_side: usize,
    stride: usize,
    origin: usize,
    in_width: usize,
    cin: usize,
) -> [usize; PX] {
    let last = out_side * out_side - 1;
    std::array::from_fn(|p| {
        let q = (first + p).min(last);
        let (oy, ox) = (q / out_side, q % out_side);
        ((oy * stride + origin) * in_width + ox * stride + origin) * cin
    })
}

/// The register tile of `PX` pixels (input offsets `base`) × `CB` channels: the sum over
/// the taps and input channels.
#[inline(always)]
fn accumulate<M: MulAdd, const CB: usize, const PX: usize>(
    input: &[f32],
    base: &[usize; PX],
    weights: &[f32],
    k: usize,
    in_width: usize,
    cin: usize,
) -> [[f32; CB]; PX] {
    let mut acc = [[0.0f32; CB]; PX];
    for ky in 0..k {
        for kx in 0..k {
            let tap = (ky * in_width + kx) * cin;
            let w_tap = &weights[(ky * k + kx) * cin * CB..][..cin * CB];
            let rows: [&[f32]; PX] = std::array::from_fn(|p| &input[base[p] + tap..][..cin]);
            // Slices of exactly `cin` (·CB) values: the loop needs no bounds tests.
            for ci in 0..cin {
                let w: &[f32; CB] = w_tap[ci * CB..][..CB].try_into().expect("CB");
                let x: [f32; PX] = std::array::from_fn(|p| rows[p][ci]);
                madd_tile::<M, CB, PX>(&mut acc, &x, w);
            }
        }
    }
    acc
}

/// The epilogue of one tile: pixels `first..first + tile.len()`, output block `block`.
/// Kept out of line: inlined, it keeps LLVM from vectorising the tile (it is cheap: once
/// per output value, against `k²·cin` multiply-adds).
#[inline(never)]
fn store<const CB: usize>(
    tile: &[[f32; CB]],
    first: usize,
    block: usize,
    shift: &[f32; CB],
    layer: &ConvPlan,
    epi: &mut Epilogue,
) {
    let (cout, out_side) = (layer.cout, layer.out_side);
    for (p, acc) in tile.iter().enumerate() {
        let q = first + p;
        let mut v: [f32; CB] = std::array::from_fn(|c| acc[c] + shift[c]);
        if let Some(res) = epi.residual {
            let res = &res[q * cout + block * CB..][..CB];
            for c in 0..CB {
                v[c] += res[c];
            }
        }
        if epi.relu {
            for x in &mut v {
                *x = relu(*x);
            }
        }
        let (oy, ox) = (q / out_side, q % out_side);
        for dest in epi.dests.iter_mut() {
            let width = out_side + 2 * dest.border;
            let at = ((oy + dest.border) * width + ox + dest.border) * cout + block * CB;
            let out = &mut dest.buf[at..][..CB];
            match dest.quant {
                Some(q) => {
                    for c in 0..CB {
                        out[c] = q.apply(v[c]);
                    }
                }
                None => out.copy_from_slice(&v),
            }
        }
    }
}

/// Whether `layer` is a stem [`stem`] computes: one input channel, 3×3, stride 1, padding
/// 1, 8 output channels.
pub fn is_stem(layer: &ConvPlan) -> bool {
    (
        layer.cin,
        layer.cout,
        layer.kernel,
        layer.stride,
        layer.padding,
        layer.block,
    ) == (1, STEM_CHANNELS, 3, 1, 1, STEM_CHANNELS)
}

/// Output channels of the stem kernel.
pub const STEM_CHANNELS: usize = 8;

/// Pixels per row of the stem's output (it keeps the image's side).
pub const STEM_SIDE: usize = 28;

/// One output row of the stem, channel by channel.
pub type StemRow = [[f32; STEM_SIDE]; STEM_CHANNELS];

/// The stem as a direct convolution, one output row at a time and vectorised along the row:
/// each tap adds `input row · weight` to all 28 pixels of a channel. Every output sums its
/// taps in the same order as [`conv`] (row by row, from 0), so the sums equal its (the
/// generic tile spent most of its time on bookkeeping for a layer this thin).
/// `write(row, values)` receives `relu(Σ + shift)`. `layer` must pass [`is_stem`] and have
/// 28 pixels a side; `input` is bordered by `in_border` ≥ 1.
#[inline(always)]
pub fn stem<M: MulAdd>(
    layer: &ConvPlan,
    input: &[f32],
    in_border: usize,
    mut write: impl FnMut(usize, &StemRow),
) {
    assert!(is_stem(layer) && layer.out_side == STEM_SIDE && in_border >= 1);
    const C: usize = STEM_CHANNELS;
    let w: &[f32; 9 * C] = layer.weights[..9 * C].try_into().expect("3×3×8 weights");
    let shift: &[f32; C] = layer.shift[..C].try_into().expect("8 channels");
    let in_width = layer.in_side + 2 * in_border;
    let origin = in_border - 1;
    for oy in 0..STEM_SIDE {
        let mut acc: StemRow = [[0.0; STEM_SIDE]; C];
        for ky in 0..3 {
            for kx in 0..3 {
                let at = (oy + ky + origin) * in_width + kx + origin;
                let row: &[f32; STEM_SIDE] = input[at..at + STEM_SIDE].try_into().expect("row");
                for (acc, &w) in acc.iter_mut().zip(&w[(ky * 3 + kx) * C..][..C]) {
                    for (a, &x) in acc.iter_mut().zip(row) {
                        *a = M::mul_add(*a, x, w);
                    }
                }
            }
        }
        for (acc, &shift) in acc.iter_mut().zip(shift) {
            for a in acc.iter_mut() {
                *a = relu(*a + shift);
            }
        }
        write(oy, &acc);
    }
}

/// [`conv`] in the portable build (SSE2 natively; SIMD128 in wasm when enabled).
#[inline(never)]
pub fn conv_portable<const CB: usize, const PX: usize>(
    layer: &ConvPlan,
    input: &[f32],
    in_border: usize,
    epi: &mut Epilogue,
) {
    conv::<Separate, CB, PX>(layer, input, in_border, epi)
}

/// [`stem`] in the portable build.
#[inline(never)]
pub fn stem_portable(
    layer: &ConvPlan,
    input: &[f32],
    in_border: usize,
    write: impl FnMut(usize, &StemRow),
) {
    stem::<Separate>(layer, input, in_border, write)
}

/// [`linear`] in the portable build.
#[inline(never)]
pub fn linear_portable(layer: &LinearPlan, x: &[f32], logits: &mut [f32]) {
    linear::<Separate>(layer, x, logits)
}

/// The kernels compiled for AVX2 with fused multiply-adds. Calling them is `unsafe`: the
/// processor must have both features (check with `is_x86_feature_detected!`).
#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use super::*;

    #[target_feature(enable = "avx2,fma")]
    pub fn conv<const CB: usize, const PX: usize>(
        layer: &ConvPlan,
        input: &[f32],
        in_border: usize,
        epi: &mut Epilogue,
    ) {
        super::conv::<Fused, CB, PX>(layer, input, in_border, epi)
    }

    /// [`stem`](super::stem) with fused multiply-adds.
    #[target_feature(enable = "avx2,fma")]
    pub fn stem(
        layer: &ConvPlan,
        input: &[f32],
        in_border: usize,
        write: impl FnMut(usize, &StemRow),
    ) {
        super::stem::<Fused>(layer, input, in_border, write)
    }

    /// [`stem`](super::stem) without them: the portable build's sums, 8 lanes wide.
    #[target_feature(enable = "avx2")]
    pub fn stem_unfused(
        layer: &ConvPlan,
        input: &[f32],
        in_border: usize,
        write: impl FnMut(usize, &StemRow),
    ) {
        super::stem::<Separate>(layer, input, in_border, write)
    }

    #[target_feature(enable = "avx2,fma")]
    pub fn linear(layer: &LinearPlan, x: &[f32], logits: &mut [f32]) {
        super::linear::<Fused>(layer, x, logits)
    }
}

/// `acc[p][c] += x[p]·w[c]`: one rank-1 update of the register tile.
#[inline(always)]
fn madd_tile<M: MulAdd, const CB: usize, const PX: usize>(
    acc: &mut [[f32; CB]; PX],
    x: &[f32; PX],
    w: &[f32; CB],
) {
    for (acc, &x) in acc.iter_mut().zip(x) {
        for (acc, &w) in acc.iter_mut().zip(w) {
            *acc = M::mul_add(*acc, x, w);
        }
    }
}

/// The linear head: `logits[o] = Σ_i x[i]·w[i][o] + bias[o]` for the first
/// `logits.len()` outputs (x in the plan's NHWC order, already passed through the head's
/// input quantizer by the epilogue that wrote it).
#[inline(always)]
pub fn linear<M: MulAdd>(layer: &LinearPlan, x: &[f32], logits: &mut [f32]) {
    let mut acc = [0.0f32; FC_LANES];
    for (&a, w) in x[..layer.inputs]
        .iter()
        .zip(layer.weights.chunks_exact(FC_LANES))
    {
        let w: &[f32; FC_LANES] = w.try_into().expect("lanes");
        for c in 0..FC_LANES {
            acc[c] = M::mul_add(acc[c], a, w[c]);
        }
    }
    for (out, (acc, bias)) in logits.iter_mut().zip(acc.iter().zip(&layer.bias)) {
        *out = acc + bias;
    }
}
