//! Integer kernels: convolutions of levels (NHWC, zero-bordered) with integer weights into
//! i32 accumulators, and their requantizing epilogue.
//!
//! On i16 operands the inner step multiplies a *pair* of input channels with the pair's
//! weights for 16 output channels and adds both products to each channel's i32 accumulator —
//! exactly what one `pmaddwd` (AVX2: 16 MACs) or `i32x4.dot_i16x8_s` (wasm SIMD128: 8 MACs)
//! does. On i8 operands (plans whose levels fit 7 bits) the step takes a *quad* of input
//! channels: one `i32x4.relaxed_dot_i8x16_i7x16_add_s` (16 MACs; on AVX2 `vpmaddubsw` then
//! `vpmaddwd` by ones, 32 MACs). Its 7-bit operand is the
//! level (0..=127, where every implementation agrees) and its i16 intermediate sums of two
//! products stay below 2·127·128 < 2¹⁵, where saturating and wrapping implementations agree.
//! The products are exact (|level · q| ≤ 255 · 128) and so are the sums (≤ 432 · 32,640 per
//! convolution output < 2³¹), so every build gives the same accumulators; the epilogue is
//! the same scalar float code everywhere. A tile is `PX` output pixels × 16 channels.

use super::int_plan::{IntConvPlan, IntLinearPlan, Operand, INT_BLOCK, PAIR};
use super::kernels::tile_bases;
use super::plan::{relu, Quantizer};

/// The accumulators of one tile.
pub type Tile<const PX: usize> = [[i32; INT_BLOCK]; PX];

/// Where a tile's operands are: `input` read from `base[p] + tap offset` for each pixel,
/// `weights` the `k · k · cin · 16` weights of one output block.
pub struct TileArgs<'a, T: Operand, const PX: usize> {
    pub input: &'a [T],
    pub base: [usize; PX],
    pub weights: &'a [T::Weight],
    pub kernel: usize,
    pub in_width: usize,
    pub cin: usize,
}

impl<T: Operand, const PX: usize> TileArgs<'_, T, PX> {
    /// Checks once per tile what the SIMD loops then read without bounds tests.
    fn check(&self) {
        let (k, cin) = (self.kernel, self.cin);
        assert!(cin.is_multiple_of(T::STEP) && self.weights.len() == k * k * cin * INT_BLOCK);
        let last_tap = ((k - 1) * self.in_width + k - 1) * cin + cin;
        assert!(self.base.iter().all(|&b| b + last_tap <= self.input.len()));
    }
}

/// The scalar tile on any operand type (targets without a dot product, the i8 levels
/// outside wasm with relaxed SIMD, the u8 levels without AVX-512 VNNI).
#[inline(always)]
pub fn tile_portable<T: Operand, const PX: usize>(a: &TileArgs<T, PX>) -> Tile<PX> {
    a.check();
    let mut acc = [[0i32; INT_BLOCK]; PX];
    let (k, cin, step) = (a.kernel, a.cin, T::STEP);
    for ky in 0..k {
        for kx in 0..k {
            let tap = (ky * a.in_width + kx) * cin;
            let w_tap = &a.weights[(ky * k + kx) * cin * INT_BLOCK..][..cin * INT_BLOCK];
            for (group, w) in w_tap.chunks_exact(step * INT_BLOCK).enumerate() {
                for (acc, &b) in acc.iter_mut().zip(&a.base) {
                    let x = &a.input[b + tap + step * group..][..step];
                    for (c, acc) in acc.iter_mut().enumerate() {
                        let w = &w[step * c..][..step];
                        *acc += x
                            .iter()
                            .zip(w)
                            .map(|(x, &w)| x.widen() * w.into())
                            .sum::<i32>();
                    }
                }
            }
        }
    }
    acc
}

/// The AVX2 tiles: `vpmaddwd` on i16 operands, `vpmaddubsw` + `vpmaddwd` on i8.
#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    /// The AVX2 tile of either operand type: per group of `T::STEP` input channels, their
    /// levels (4 bytes) broadcast to every lane and `dot` with 8 output channels' weights
    /// into eight i32 sums, twice for the 16 channels of a block.
    #[inline(always)]
    unsafe fn tile_by<T: Operand, const PX: usize>(
        a: &TileArgs<T, PX>,
        dot: impl Fn(__m256i, __m256i) -> __m256i,
    ) -> Tile<PX> {
        a.check();
        let (k, cin, step) = (a.kernel, a.cin, T::STEP);
        let mut acc = [[_mm256_setzero_si256(); 2]; PX];
        let input = a.input.as_ptr();
        for ky in 0..k {
            for kx in 0..k {
                let tap = (ky * a.in_width + kx) * cin;
                let w_tap = a.weights.as_ptr().add((ky * k + kx) * cin * INT_BLOCK);
                for group in 0..cin / step {
                    let w = w_tap.add(group * step * INT_BLOCK) as *const __m256i;
                    let (w0, w1) = (_mm256_loadu_si256(w), _mm256_loadu_si256(w.add(1)));
                    for (acc, &b) in acc.iter_mut().zip(&a.base) {
                        // SAFETY: `check` bounds every read of the tile; a group of levels is
                        // 4 bytes (2 × i16 or 4 × i8).
                        let x = (input.add(b + tap + step * group) as *const i32).read_unaligned();
                        let x = _mm256_set1_epi32(x);
                        acc[0] = _mm256_add_epi32(acc[0], dot(x, w0));
                        acc[1] = _mm256_add_epi32(acc[1], dot(x, w1));
                    }
                }
            }
        }
        let mut out = [[0i32; INT_BLOCK]; PX];
        for (out, acc) in out.iter_mut().zip(&acc) {
            _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, acc[0]);
            _mm256_storeu_si256(out.as_mut_ptr().add(8) as *mut __m256i, acc[1]);
        }
        out
    }

    /// The tile on i16 operands: one `vpmaddwd` per 8 output channels and pixel per pair.
    ///
    /// # Safety
    /// The processor must have AVX2 (`is_x86_feature_detected!("avx2")`).
    #[target_feature(enable = "avx2")]
    pub unsafe fn tile<const PX: usize>(a: &TileArgs<i16, PX>) -> Tile<PX> {
        tile_by(a, |x, w| _mm256_madd_epi16(x, w))
    }

    /// [`int_conv`](super::int_conv) with this tile, its epilogue compiled for AVX2 too.
    ///
    /// # Safety
    /// As [`tile`].
    #[target_feature(enable = "avx2")]
    pub unsafe fn int_conv(
        layer: &IntConvPlan,
        input: &[i16],
        in_border: usize,
        epi: &mut IntEpilogue<i16>,
    ) {
        super::int_conv::<i16, 4>(|a| unsafe { tile(a) }, layer, input, in_border, epi)
    }

    /// [`int_linear`](super::int_linear) with this tile.
    ///
    /// # Safety
    /// As [`tile`].
    #[target_feature(enable = "avx2")]
    pub unsafe fn int_linear(layer: &IntLinearPlan, levels: &[i16], logits: &mut [f32]) {
        super::int_linear(|a| unsafe { tile(a) }, layer, levels, logits)
    }

    /// The AVX2 tile on i8 operands (narrow plans): `vpmaddubsw` multiplies the levels
    /// (its unsigned operand, ≤ 127) with the weights and adds pairs of products into i16
    /// (|sum| ≤ 2 · 127 · 128 < 2¹⁵: no saturation), `vpmaddwd` by ones adds pairs of those
    /// into i32 — 32 MACs in three instructions, against four on i16 operands.
    ///
    /// # Safety
    /// As [`tile`].
    #[target_feature(enable = "avx2")]
    pub unsafe fn tile_quads<const PX: usize>(a: &TileArgs<i8, PX>) -> Tile<PX> {
        let ones = _mm256_set1_epi16(1);
        tile_by(a, |x, w| {
            _mm256_madd_epi16(_mm256_maddubs_epi16(x, w), ones)
        })
    }

    /// [`int_conv`](super::int_conv) on i8 operands with [`tile_quads`].
    ///
    /// # Safety
    /// As [`tile`].
    #[target_feature(enable = "avx2")]
    pub unsafe fn int_conv_quads(
        layer: &IntConvPlan,
        input: &[i8],
        in_border: usize,
        epi: &mut IntEpilogue<i8>,
    ) {
        super::int_conv::<i8, 4>(|a| unsafe { tile_quads(a) }, layer, input, in_border, epi)
    }

    /// [`int_linear`](super::int_linear) on i8 operands.
    ///
    /// # Safety
    /// As [`tile`].
    #[target_feature(enable = "avx2")]
    pub unsafe fn int_linear_quads(layer: &IntLinearPlan, levels: &[i8], logits: &mut [f32]) {
        super::int_linear(|a| unsafe { tile_quads(a) }, layer, levels, logits)
    }
}

/// The AVX-512 VNNI tile on u8 levels and i8 weights (any plan): one `vpdpbusd` per pixel
/// and input-channel quad multiplies the quad's four levels (its unsigned operand, 0..=255)
/// with the four weights of each of the 16 output channels and adds the four products to
/// that channel's i32 accumulator — 64 MACs in one instruction, exact (no i16 intermediate,
/// no saturation: `vpdpbusd`, not `vpdpbusds`).
#[cfg(target_arch = "x86_64")]
pub mod avx512 {
    use super::*;
    use crate::exec::int_plan::QUAD;
    use std::arch::x86_64::*;

    /// # Safety
    /// The processor must have AVX-512F and AVX-512 VNNI
    /// (`is_x86_feature_detected!("avx512f")` and `("avx512vnni")`).
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn tile<const PX: usize>(a: &TileArgs<u8, PX>) -> Tile<PX> {
        a.check();
        let (k, cin) = (a.kernel, a.cin);
        let mut acc = [_mm512_setzero_si512(); PX];
        let input = a.input.as_ptr();
        for ky in 0..k {
            for kx in 0..k {
                let tap = (ky * a.in_width + kx) * cin;
                let w_tap = a.weights.as_ptr().add((ky * k + kx) * cin * INT_BLOCK);
                for quad in 0..cin / QUAD {
                    // 16 channels × 4 weights = 64 bytes
                    let w = _mm512_loadu_si512(w_tap.add(quad * QUAD * INT_BLOCK) as *const _);
                    for (acc, &b) in acc.iter_mut().zip(&a.base) {
                        // SAFETY: `check` bounds every read of the tile.
                        let x = (input.add(b + tap + QUAD * quad) as *const i32).read_unaligned();
                        *acc = _mm512_dpbusd_epi32(*acc, _mm512_set1_epi32(x), w);
                    }
                }
            }
        }
        let mut out = [[0i32; INT_BLOCK]; PX];
        for (out, &acc) in out.iter_mut().zip(&acc) {
            _mm512_storeu_si512(out.as_mut_ptr() as *mut _, acc);
        }
        out
    }

    /// [`int_conv`](super::int_conv) with this tile, its epilogue compiled for AVX-512 too.
    ///
    /// # Safety
    /// As [`tile`].
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn int_conv(
        layer: &IntConvPlan,
        input: &[u8],
        in_border: usize,
        epi: &mut IntEpilogue<u8>,
    ) {
        super::int_conv::<u8, 8>(|a| unsafe { tile(a) }, layer, input, in_border, epi)
    }

    /// [`int_linear`](super::int_linear) with this tile.
    ///
    /// # Safety
    /// As [`tile`].
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn int_linear(layer: &IntLinearPlan, levels: &[u8], logits: &mut [f32]) {
        super::int_linear(|a| unsafe { tile(a) }, layer, levels, logits)
    }
}

/// The SSE2 tile (every x86-64): one `pmaddwd` per 4 output channels and pixel per
/// input-channel pair — the same step as SIMD128's `i32x4.dot_i16x8_s`.
#[cfg(target_arch = "x86_64")]
pub mod sse2 {
    use super::*;
    use std::arch::x86_64::*;

    pub fn tile<const PX: usize>(a: &TileArgs<i16, PX>) -> Tile<PX> {
        a.check();
        let (k, cin) = (a.kernel, a.cin);
        // SAFETY: SSE2 is part of x86-64; `check` bounds every read of the tile.
        unsafe {
            let mut acc = [[_mm_setzero_si128(); 4]; PX];
            let input = a.input.as_ptr();
            for ky in 0..k {
                for kx in 0..k {
                    let tap = (ky * a.in_width + kx) * cin;
                    let w_tap = a.weights.as_ptr().add((ky * k + kx) * cin * INT_BLOCK);
                    for pair in 0..cin / PAIR {
                        let w = w_tap.add(pair * PAIR * INT_BLOCK) as *const __m128i;
                        let w = [0, 1, 2, 3].map(|j| _mm_loadu_si128(w.add(j)));
                        for (acc, &b) in acc.iter_mut().zip(&a.base) {
                            let x =
                                (input.add(b + tap + PAIR * pair) as *const i32).read_unaligned();
                            let x = _mm_set1_epi32(x);
                            for (acc, &w) in acc.iter_mut().zip(&w) {
                                *acc = _mm_add_epi32(*acc, _mm_madd_epi16(x, w));
                            }
                        }
                    }
                }
            }
            let mut out = [[0i32; INT_BLOCK]; PX];
            for (out, acc) in out.iter_mut().zip(&acc) {
                for (j, &acc) in acc.iter().enumerate() {
                    _mm_storeu_si128(out.as_mut_ptr().add(4 * j) as *mut __m128i, acc);
                }
            }
            out
        }
    }
}

/// The SIMD128 tile: one `i32x4.dot_i16x8_s` per 4 output channels and pixel per
/// input-channel pair.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128 {
    use super::*;
    use std::arch::wasm32::*;

    #[inline(always)]
    pub fn tile<const PX: usize>(a: &TileArgs<i16, PX>) -> Tile<PX> {
        a.check();
        let (k, cin) = (a.kernel, a.cin);
        let mut acc = [[i32x4_splat(0); 4]; PX];
        let input = a.input.as_ptr();
        for ky in 0..k {
            for kx in 0..k {
                let tap = (ky * a.in_width + kx) * cin;
                let w_tap = &a.weights[(ky * k + kx) * cin * INT_BLOCK..][..cin * INT_BLOCK];
                for (pair, w) in w_tap.chunks_exact(PAIR * INT_BLOCK).enumerate() {
                    let w = w.as_ptr() as *const v128;
                    // SAFETY: `w` holds 32 i16 = four v128; unaligned loads are allowed.
                    let w = unsafe { [0, 1, 2, 3].map(|j| v128_load(w.add(j))) };
                    for (acc, &b) in acc.iter_mut().zip(&a.base) {
                        // SAFETY: `check` bounds every read of the tile.
                        let x = unsafe {
                            (input.add(b + tap + PAIR * pair) as *const i32).read_unaligned()
                        };
                        let x = i32x4_splat(x);
                        for (acc, &w) in acc.iter_mut().zip(&w) {
                            *acc = i32x4_add(*acc, i32x4_dot_i16x8(x, w));
                        }
                    }
                }
            }
        }
        let mut out = [[0i32; INT_BLOCK]; PX];
        for (out, acc) in out.iter_mut().zip(&acc) {
            for (j, &acc) in acc.iter().enumerate() {
                // SAFETY: `out` holds 16 i32 = four v128.
                unsafe { v128_store(out.as_mut_ptr().add(4 * j) as *mut v128, acc) };
            }
        }
        out
    }
}

/// The relaxed-SIMD tile on i8 operands: one `i32x4.relaxed_dot_i8x16_i7x16_add_s` per 4
/// output channels and pixel per input-channel quad (the weights are the i8 operand, the
/// levels, all ≤ 127 in a narrow plan, the 7-bit one).
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
pub mod relaxed {
    use super::*;
    use crate::exec::int_plan::QUAD;
    use std::arch::wasm32::*;

    #[inline(always)]
    pub fn tile<const PX: usize>(a: &TileArgs<i8, PX>) -> Tile<PX> {
        a.check();
        let (k, cin) = (a.kernel, a.cin);
        let mut acc = [[i32x4_splat(0); 4]; PX];
        let input = a.input.as_ptr();
        for ky in 0..k {
            for kx in 0..k {
                let tap = (ky * a.in_width + kx) * cin;
                let w_tap = &a.weights[(ky * k + kx) * cin * INT_BLOCK..][..cin * INT_BLOCK];
                for (quad, w) in w_tap.chunks_exact(QUAD * INT_BLOCK).enumerate() {
                    let w = w.as_ptr() as *const v128;
                    // SAFETY: `w` holds 64 i8 = four v128; unaligned loads are allowed.
                    let w = unsafe { [0, 1, 2, 3].map(|j| v128_load(w.add(j))) };
                    for (acc, &b) in acc.iter_mut().zip(&a.base) {
                        // SAFETY: `check` bounds every read of the tile.
                        let x = unsafe {
                            v128_load32_splat(input.add(b + tap + QUAD * quad) as *const u32)
                        };
                        for (acc, &w) in acc.iter_mut().zip(&w) {
                            *acc = i32x4_relaxed_dot_i8x16_i7x16_add(w, x, *acc);
                        }
                    }
                }
            }
        }
        let mut out = [[0i32; INT_BLOCK]; PX];
        for (out, acc) in out.iter_mut().zip(&acc) {
            for (j, &acc) in acc.iter().enumerate() {
                // SAFETY: `out` holds 16 i32 = four v128.
                unsafe { v128_store(out.as_mut_ptr().add(4 * j) as *mut v128, acc) };
            }
        }
        out
    }
}

/// A feature map written by an integer convolution's epilogue (NHWC, `border` zero pixels
/// around it): the levels of its reader's input quantizer, or the float values themselves.
pub enum IntDest<'a, T> {
    Levels {
        buf: &'a mut [T],
        border: usize,
        quant: Quantizer,
    },
    Float {
        buf: &'a mut [f32],
    },
}

/// What follows an integer convolution.
pub struct IntEpilogue<'a, 'b, T> {
    /// Added before the ReLU: an unbordered NHWC float map of the output's shape.
    pub residual: Option<&'a [f32]>,
    pub relu: bool,
    pub dests: &'a mut [IntDest<'b, T>],
}

/// The levels of `v` under `q`, as stored in a level map.
#[inline(always)]
pub fn level(q: &Quantizer, v: f32) -> i16 {
    q.level_i16(v)
}

/// Integer convolution `layer` of the level map `input` (bordered by `in_border` ≥ the
/// layer's padding), tiles of `PX` pixels computed by `tile`, followed by `epi`. Inlined into
/// one entry point per instruction set (`int_conv_portable`, `avx2::int_conv`), so that the
/// epilogue is compiled for it too.
#[inline(always)]
pub fn int_conv<T: Operand, const PX: usize>(
    tile: impl Fn(&TileArgs<T, PX>) -> Tile<PX>,
    layer: &IntConvPlan,
    input: &[T],
    in_border: usize,
    epi: &mut IntEpilogue<T>,
) {
    let (cin, k, s) = (layer.cin, layer.kernel, layer.stride);
    let in_width = layer.in_side + 2 * in_border;
    let origin = in_border - layer.padding;
    let out_side = layer.out_side;
    let pixels = out_side * out_side;
    let block_len = k * k * cin * INT_BLOCK;
    for (block, weights) in T::conv_weights(layer).chunks_exact(block_len).enumerate() {
        for first in (0..pixels).step_by(PX) {
            let base = tile_bases::<PX>(first, out_side, s, origin, in_width, cin);
            let args = TileArgs {
                input,
                base,
                weights,
                kernel: k,
                in_width,
                cin,
            };
            let acc = tile(&args);
            let valid = PX.min(pixels - first);
            store(&acc[..valid], first, block, layer, epi);
        }
    }
}

/// The epilogue of one tile: requantize, add the residual, ReLU, write each destination.
/// Fixed-size arrays throughout, so that it vectorises over the 16 channels.
#[inline(always)]
fn store<T: Operand>(
    tile: &[[i32; INT_BLOCK]],
    first: usize,
    block: usize,
    layer: &IntConvPlan,
    epi: &mut IntEpilogue<T>,
) {
    let (cout, out_side) = (layer.cout, layer.out_side);
    let block16 = |v: &[f32], at: usize| -> [f32; INT_BLOCK] {
        v[at..][..INT_BLOCK].try_into().expect("16 channels")
    };
    let (m, shift) = (
        block16(&layer.multiplier, block * INT_BLOCK),
        block16(&layer.shift, block * INT_BLOCK),
    );
    for (p, acc) in tile.iter().enumerate() {
        let q = first + p;
        let mut v = [0f32; INT_BLOCK];
        for c in 0..INT_BLOCK {
            v[c] = acc[c] as f32 * m[c] + shift[c];
        }
        if let Some(res) = epi.residual {
            let res = block16(res, q * cout + block * INT_BLOCK);
            for c in 0..INT_BLOCK {
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
            match dest {
                IntDest::Levels { buf, border, quant } => {
                    let width = out_side + 2 * *border;
                    let at = ((oy + *border) * width + ox + *border) * cout + block * INT_BLOCK;
                    let out: &mut [T; INT_BLOCK] = (&mut buf[at..at + INT_BLOCK])
                        .try_into()
                        .expect("16 channels");
                    // all 16 levels first, then the narrowing: one vectorised loop each
                    let mut levels = [0i16; INT_BLOCK];
                    for c in 0..INT_BLOCK {
                        levels[c] = level(quant, v[c]);
                    }
                    for c in 0..INT_BLOCK {
                        out[c] = T::from_level(levels[c]);
                    }
                }
                IntDest::Float { buf } => {
                    buf[q * cout + block * INT_BLOCK..][..INT_BLOCK].copy_from_slice(&v)
                }
            }
        }
    }
}

/// [`int_conv`] with the portable tile: SSE2 `pmaddwd` on x86-64, SIMD128
/// `i32x4.dot_i16x8_s` in wasm built with it, scalar elsewhere.
#[inline(never)]
pub fn int_conv_portable(
    layer: &IntConvPlan,
    input: &[i16],
    in_border: usize,
    epi: &mut IntEpilogue<i16>,
) {
    int_conv::<i16, 2>(tile_any::<2>, layer, input, in_border, epi)
}

/// [`int_conv`] on i8 operands (a narrow plan): relaxed SIMD in wasm built with it, scalar
/// elsewhere.
#[inline(never)]
pub fn int_conv_quads(
    layer: &IntConvPlan,
    input: &[i8],
    in_border: usize,
    epi: &mut IntEpilogue<i8>,
) {
    int_conv::<i8, 2>(tile_quads::<2>, layer, input, in_border, epi)
}

/// [`int_conv`] on u8 levels with the scalar tile (where AVX-512 VNNI is missing).
#[inline(never)]
pub fn int_conv_u8_portable(
    layer: &IntConvPlan,
    input: &[u8],
    in_border: usize,
    epi: &mut IntEpilogue<u8>,
) {
    int_conv::<u8, 2>(tile_portable::<u8, 2>, layer, input, in_border, epi)
}

/// [`int_linear`] on u8 levels with the scalar tile.
#[inline(never)]
pub fn int_linear_u8_portable(layer: &IntLinearPlan, levels: &[u8], logits: &mut [f32]) {
    int_linear(tile_portable::<u8, 1>, layer, levels, logits)
}

/// The i8 tile of this target.
#[inline(always)]
pub fn tile_quads<const PX: usize>(a: &TileArgs<i8, PX>) -> Tile<PX> {
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    return relaxed::tile(a);
    #[allow(unreachable_code)]
    tile_portable(a)
}

/// The portable i16 tile of this target.
#[inline(always)]
pub fn tile_any<const PX: usize>(a: &TileArgs<i16, PX>) -> Tile<PX> {
    #[cfg(target_arch = "x86_64")]
    return sse2::tile(a);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd128::tile(a);
    #[allow(unreachable_code)]
    tile_portable(a)
}

/// [`int_linear`] with the portable tile.
#[inline(never)]
pub fn int_linear_portable(layer: &IntLinearPlan, levels: &[i16], logits: &mut [f32]) {
    int_linear(tile_any::<1>, layer, levels, logits)
}

/// [`int_linear`] on i8 operands.
#[inline(never)]
pub fn int_linear_quads(layer: &IntLinearPlan, levels: &[i8], logits: &mut [f32]) {
    int_linear(tile_quads::<1>, layer, levels, logits)
}

/// The head: `logits[o] = f32(Σ_i l[i]·q[i][o]) · m[o] + bias[o]` for the first
/// `logits.len()` outputs — a 1 × 1 "convolution" of one pixel with `inputs` channels.
#[inline(always)]
pub fn int_linear<T: Operand>(
    tile: impl Fn(&TileArgs<T, 1>) -> Tile<1>,
    layer: &IntLinearPlan,
    levels: &[T],
    logits: &mut [f32],
) {
    let args = TileArgs {
        input: &levels[..layer.inputs],
        base: [0],
        weights: T::linear_weights(layer),
        kernel: 1,
        in_width: 1,
        cin: layer.inputs,
    };
    let [acc] = tile(&args);
    for (o, out) in logits.iter_mut().enumerate() {
        *out = acc[o] as f32 * layer.multiplier[o] + layer.bias[o];
    }
}
