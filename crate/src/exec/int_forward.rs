//! `bsnet8`'s forward pass on the integer path (see `int_plan` for its arithmetic): the
//! float stem, then six integer convolutions and the integer head on level maps.

#[cfg(target_arch = "x86_64")]
use super::int_kernels::{avx2, avx512};
use super::int_kernels::{
    int_conv_portable, int_conv_quads, int_conv_u8_portable, int_linear_portable, int_linear_quads,
    int_linear_u8_portable, IntDest, IntEpilogue,
};
use super::int_plan::{IntConvPlan, IntLinearPlan, IntPlan, Operand};
#[cfg(target_arch = "x86_64")]
use super::kernels::avx2 as float_avx2;
use super::kernels::{stem_portable, StemRow, STEM_CHANNELS, STEM_SIDE};
use super::plan::{ConvPlan, Quantizer};
use crate::model::IMAGE_SIDE;

/// Zero border of every map a 3×3 convolution reads (its padding).
const BORDER: usize = 1;

/// How a tile of the integer kernels is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntIsa {
    /// i16: SSE2 `pmaddwd` on x86-64, SIMD128 `i32x4.dot_i16x8_s` in wasm, scalar elsewhere;
    /// i8: `i32x4.relaxed_dot_i8x16_i7x16_add_s` in wasm built with relaxed SIMD, scalar
    /// elsewhere.
    Portable,
    /// `vpmaddwd` on i16, `vpmaddubsw` + `vpmaddwd` on i8 (x86-64 with AVX2, detected at
    /// run time).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX2 as above, and `vpdpbusd` on u8 levels (x86-64 with AVX-512F and AVX-512 VNNI,
    /// detected at run time).
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
}

/// The operand types of the integer kernels (see [`Operand`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operands {
    /// i16 levels and weights, pairs of input channels per step (any plan).
    I16,
    /// i8 levels and weights, quads (narrow plans only: levels ≤ 127).
    I8,
    /// u8 levels, i8 weights, quads (any plan).
    U8,
}

impl Operands {
    pub fn name(self) -> &'static str {
        match self {
            Operands::I16 => "i16",
            Operands::I8 => "i8",
            Operands::U8 => "u8",
        }
    }

    /// What runs for a plan when `self` is asked for: i8 levels need a narrow plan, else i16.
    pub fn for_plan(self, narrow: bool) -> Self {
        match self {
            Operands::I8 if !narrow => Operands::I16,
            other => other,
        }
    }
}

impl IntIsa {
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni") {
                return IntIsa::Avx512Vnni;
            }
            return IntIsa::Avx2;
        }
        IntIsa::Portable
    }

    /// The operands that run fastest with this instruction set, by measurement
    /// (docs/benchmarks.md): u8 levels with `vpdpbusd` where AVX-512 VNNI is there (any
    /// plan); i8 levels for narrow plans on AVX2 (`vpmaddubsw`, 1.2× `vpmaddwd` at w4a4) and
    /// in wasm built with relaxed SIMD (1.6×); i16 elsewhere (and for the other plans). The
    /// portable i8 and u8 kernels (scalar) are there for comparisons.
    pub fn fast_operands(self) -> Operands {
        match self {
            IntIsa::Portable
                if cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd")) =>
            {
                Operands::I8
            }
            IntIsa::Portable => Operands::I16,
            #[cfg(target_arch = "x86_64")]
            IntIsa::Avx2 => Operands::I8,
            #[cfg(target_arch = "x86_64")]
            IntIsa::Avx512Vnni => Operands::U8,
        }
    }

    /// The float stem, without fused multiply-adds (its output decides the first levels, so
    /// every build must compute it alike): 8-wide on AVX2, else the portable build.
    fn stem(self, layer: &ConvPlan, input: &[f32], write: impl FnMut(usize, &StemRow)) {
        match self {
            IntIsa::Portable => stem_portable(layer, input, BORDER, write),
            // SAFETY: `Avx2` and `Avx512Vnni` are only chosen after detecting AVX2.
            #[cfg(target_arch = "x86_64")]
            IntIsa::Avx2 | IntIsa::Avx512Vnni => unsafe {
                float_avx2::stem_unfused(layer, input, BORDER, write)
            },
        }
    }
}

/// The kernels of one operand type.
pub trait IntKernels: Operand {
    fn conv(isa: IntIsa, layer: &IntConvPlan, input: &[Self], epi: &mut IntEpilogue<Self>);
    fn linear(isa: IntIsa, layer: &IntLinearPlan, levels: &[Self], logits: &mut [f32]);
}

impl IntKernels for i16 {
    fn conv(isa: IntIsa, layer: &IntConvPlan, input: &[i16], epi: &mut IntEpilogue<i16>) {
        match isa {
            IntIsa::Portable => int_conv_portable(layer, input, BORDER, epi),
            // SAFETY: `Avx2` and `Avx512Vnni` are only chosen after detecting AVX2.
            #[cfg(target_arch = "x86_64")]
            IntIsa::Avx2 | IntIsa::Avx512Vnni => unsafe {
                avx2::int_conv(layer, input, BORDER, epi)
            },
        }
    }

    fn linear(isa: IntIsa, layer: &IntLinearPlan, levels: &[i16], logits: &mut [f32]) {
        match isa {
            IntIsa::Portable => int_linear_portable(layer, levels, logits),
            // SAFETY: as in `conv` above.
            #[cfg(target_arch = "x86_64")]
            IntIsa::Avx2 | IntIsa::Avx512Vnni => unsafe { avx2::int_linear(layer, levels, logits) },
        }
    }
}

impl IntKernels for i8 {
    fn conv(isa: IntIsa, layer: &IntConvPlan, input: &[i8], epi: &mut IntEpilogue<i8>) {
        match isa {
            IntIsa::Portable => int_conv_quads(layer, input, BORDER, epi),
            // SAFETY: as for i16.
            #[cfg(target_arch = "x86_64")]
            IntIsa::Avx2 | IntIsa::Avx512Vnni => unsafe {
                avx2::int_conv_quads(layer, input, BORDER, epi)
            },
        }
    }

    fn linear(isa: IntIsa, layer: &IntLinearPlan, levels: &[i8], logits: &mut [f32]) {
        match isa {
            IntIsa::Portable => int_linear_quads(layer, levels, logits),
            // SAFETY: as for i16.
            #[cfg(target_arch = "x86_64")]
            IntIsa::Avx2 | IntIsa::Avx512Vnni => unsafe {
                avx2::int_linear_quads(layer, levels, logits)
            },
        }
    }
}

impl IntKernels for u8 {
    fn conv(isa: IntIsa, layer: &IntConvPlan, input: &[u8], epi: &mut IntEpilogue<u8>) {
        match isa {
            // SAFETY: `IntIsa::Avx512Vnni` is only chosen after detecting AVX-512F and VNNI.
            #[cfg(target_arch = "x86_64")]
            IntIsa::Avx512Vnni => unsafe { avx512::int_conv(layer, input, BORDER, epi) },
            _ => int_conv_u8_portable(layer, input, BORDER, epi),
        }
    }

    fn linear(isa: IntIsa, layer: &IntLinearPlan, levels: &[u8], logits: &mut [f32]) {
        match isa {
            // SAFETY: as in `conv` above.
            #[cfg(target_arch = "x86_64")]
            IntIsa::Avx512Vnni => unsafe { avx512::int_linear(layer, levels, logits) },
            _ => int_linear_u8_portable(layer, levels, logits),
        }
    }
}

fn level_map<T: Operand>(side: usize, channels: usize, border: usize) -> Vec<T> {
    vec![T::default(); (side + 2 * border).pow(2) * channels]
}

/// One image's maps on the integer path: float where a value is not quantized (image, stem
/// output, shortcut outputs), levels elsewhere (`_k`: the input of layer k).
pub struct IntScratch<T> {
    x: Vec<f32>,
    h0_1: Vec<T>,
    h0_3: Vec<T>,
    s1: Vec<f32>,
    a1: Vec<T>,
    h1_4: Vec<T>,
    h1_6: Vec<T>,
    s2: Vec<f32>,
    b1: Vec<T>,
    h2: Vec<T>,
}

impl<T: Operand> IntScratch<T> {
    pub fn new(plan: &IntPlan) -> Self {
        let c = &plan.convs; // c[i - 1] is layer i
        let stem = (plan.stem.out_side, plan.stem.cout);
        let float =
            |side: usize, ch: usize, border: usize| vec![0.0; (side + 2 * border).pow(2) * ch];
        Self {
            x: float(IMAGE_SIDE, 1, BORDER),
            h0_1: level_map(stem.0, stem.1, BORDER),
            h0_3: level_map(stem.0, stem.1, BORDER),
            s1: float(c[2].out_side, c[2].cout, 0),
            a1: level_map(c[0].out_side, c[0].cout, BORDER),
            h1_4: level_map(c[1].out_side, c[1].cout, BORDER),
            h1_6: level_map(c[1].out_side, c[1].cout, BORDER),
            s2: float(c[5].out_side, c[5].cout, 0),
            b1: level_map(c[3].out_side, c[3].cout, BORDER),
            h2: level_map(c[4].out_side, c[4].cout, 0),
        }
    }
}

/// A level map destination with the usual border.
fn levels<T>(buf: &mut [T], quant: Quantizer) -> IntDest<'_, T> {
    IntDest::Levels {
        buf,
        border: BORDER,
        quant,
    }
}

/// One integer convolution and its epilogue.
fn run<T: IntKernels>(
    isa: IntIsa,
    layer: &IntConvPlan,
    input: &[T],
    residual: Option<&[f32]>,
    relu: bool,
    dests: &mut [IntDest<T>],
) {
    let mut epi = IntEpilogue {
        residual,
        relu,
        dests,
    };
    T::conv(isa, layer, input, &mut epi);
}

/// Logits of one image (784 values) into `logits` (10 values), on the integer path with
/// levels `T` (i8 only for a narrow plan).
pub fn forward_image_int<T: IntKernels>(
    isa: IntIsa,
    plan: &IntPlan,
    t: &mut IntScratch<T>,
    image: &[f32],
    logits: &mut [f32],
) {
    assert!(
        T::from_level(255).widen() == 255 || plan.narrow,
        "i8 levels need activations of at most 7 bits"
    );
    let (c, q) = (&plan.convs, &plan.levels);
    let width = IMAGE_SIDE + 2 * BORDER;
    for (row, pixels) in image.chunks_exact(IMAGE_SIDE).enumerate() {
        let at = (row + BORDER) * width + BORDER;
        t.x[at..at + IMAGE_SIDE].copy_from_slice(pixels);
    }
    // The float stem, unfused in every build, written as the levels of its two readers.
    let (side, cout) = (plan.stem.out_side, plan.stem.cout);
    let (h0_1, h0_3, q1, q3) = (&mut t.h0_1, &mut t.h0_3, q[1], q[3]);
    isa.stem(&plan.stem, &t.x, |oy, row| {
        let at = ((oy + BORDER) * (side + 2 * BORDER) + BORDER) * cout;
        let values = row.as_flattened();
        for (dst, q) in [
            (&mut h0_1[at..at + side * cout], q1),
            (&mut h0_3[at..at + side * cout], q3),
        ] {
            // levels in the row's channel-major order (one flat, vectorised loop), then
            // interleaved into the NHWC map
            // (as i16: narrowing inside this loop kept it scalar)
            let mut levels = [0i16; STEM_SIDE * STEM_CHANNELS];
            for (l, &v) in levels.iter_mut().zip(values) {
                *l = q.level_i16(v);
            }
            // fixed-size pixels: no bounds test or reload per byte (a byte store may alias)
            for (ox, pixel) in dst.chunks_exact_mut(STEM_CHANNELS).enumerate() {
                let pixel: &mut [T; STEM_CHANNELS] =
                    pixel.try_into().expect("a pixel's stem channels");
                for (ch, l) in pixel.iter_mut().enumerate() {
                    *l = T::from_level(levels[ch * STEM_SIDE + ox]);
                }
            }
        }
    });
    // block1: h1 = relu(bn(conv2(relu(bn(conv1(h0))))) + bn(shortcut(h0)))
    run(
        isa,
        &c[2],
        &t.h0_3,
        None,
        false,
        &mut [IntDest::Float { buf: &mut t.s1 }],
    );
    run(
        isa,
        &c[0],
        &t.h0_1,
        None,
        true,
        &mut [levels(&mut t.a1, q[2])],
    );
    run(
        isa,
        &c[1],
        &t.a1,
        Some(&t.s1),
        true,
        &mut [levels(&mut t.h1_4, q[4]), levels(&mut t.h1_6, q[6])],
    );
    // block2, the same shape
    run(
        isa,
        &c[5],
        &t.h1_6,
        None,
        false,
        &mut [IntDest::Float { buf: &mut t.s2 }],
    );
    run(
        isa,
        &c[3],
        &t.h1_4,
        None,
        true,
        &mut [levels(&mut t.b1, q[5])],
    );
    let head = IntDest::Levels {
        buf: &mut t.h2,
        border: 0,
        quant: q[7],
    };
    run(isa, &c[4], &t.b1, Some(&t.s2), true, &mut [head]);
    T::linear(isa, &plan.fc, &t.h2, logits);
}
