//! The CPU executor: `bsnet8`'s forward pass, one image at a time through reused NHWC
//! buffers, on the kernels of `kernels.rs`; natively it may split a batch over threads.

use super::int_forward::{forward_image_int, IntIsa, IntScratch, Operands};
use super::int_plan::IntPlan;
#[cfg(target_arch = "x86_64")]
use super::kernels::avx2;
use super::kernels::{conv_portable, linear_portable, stem_portable, Dest, Epilogue, StemRow};
use super::plan::{ConvPlan, LinearPlan, Plan, Quantizer};
use crate::error::{Error, Result};
use crate::model::{Model, IMAGE_SIDE, NUM_CLASSES};
use crate::smoothing::classifier::BaseClassifier;
use crate::smoothing::noise::{NoisyCopies, IMAGE_PIXELS};
use std::ops::Range;

/// Zero border of every feature map a 3×3 convolution reads (its padding).
const BORDER: usize = 1;

/// A feature map of `side`² pixels × `channels`, with a zero border of `border`.
fn map(side: usize, channels: usize, border: usize) -> Vec<f32> {
    vec![0.0; (side + 2 * border).pow(2) * channels]
}

/// One image's feature maps. Where two layers read the same map through different
/// activation quantizers, each gets its own copy (`_1`/`_3`: input of layer 1 / 3).
struct Scratch {
    x: Vec<f32>,
    h0_1: Vec<f32>,
    h0_3: Vec<f32>,
    s1: Vec<f32>,
    a1: Vec<f32>,
    h1_4: Vec<f32>,
    h1_6: Vec<f32>,
    s2: Vec<f32>,
    b1: Vec<f32>,
    h2: Vec<f32>,
    /// The noisy copies this thread draws for itself ([`CpuExecutor::counts`]).
    noisy: Vec<f32>,
    /// The maps of the integer path (when the model has one), on i16, i8 or u8 levels.
    int: Option<IntScratch<i16>>,
    int8: Option<IntScratch<i8>>,
    uint8: Option<IntScratch<u8>>,
}

impl Scratch {
    fn new(plan: &Plan) -> Self {
        let c = &plan.convs;
        let out = |i: usize, border| map(c[i].out_side, c[i].cout, border);
        Self {
            x: map(IMAGE_SIDE, 1, BORDER),
            h0_1: out(0, BORDER),
            h0_3: out(0, BORDER),
            s1: out(3, 0),
            a1: out(1, BORDER),
            h1_4: out(2, BORDER),
            h1_6: out(2, BORDER),
            s2: out(6, 0),
            b1: out(4, BORDER),
            h2: out(5, 0),
            noisy: Vec::new(),
            int: None,
            int8: None,
            uint8: None,
        }
    }
}

/// The executor's lowered model: the float plan always, the integer plan where it applies
/// (and is not switched off), and which instruction sets run them.
struct Lowered {
    plan: Plan,
    int_plan: Option<IntPlan>,
    isa: Isa,
    int_isa: IntIsa,
    /// The operands asked for ([`Operands::for_plan`] says what runs).
    operands: Operands,
}

impl Lowered {
    /// Logits of one image on the integer path where there is one, else the float path.
    fn forward(&self, t: &mut Scratch, image: &[f32], logits: &mut [f32]) {
        let Some(ip) = &self.int_plan else {
            return forward_image(self.isa, &self.plan, t, image, logits);
        };
        match self.operands.for_plan(ip.narrow) {
            Operands::I8 => {
                let scratch = t.int8.get_or_insert_with(|| IntScratch::new(ip));
                forward_image_int(self.int_isa, ip, scratch, image, logits)
            }
            Operands::U8 => {
                let scratch = t.uint8.get_or_insert_with(|| IntScratch::new(ip));
                forward_image_int(self.int_isa, ip, scratch, image, logits)
            }
            Operands::I16 => {
                let scratch = t.int.get_or_insert_with(|| IntScratch::new(ip));
                forward_image_int(self.int_isa, ip, scratch, image, logits)
            }
        }
    }
}

/// Which arithmetic the executor runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arithmetic {
    /// f32 on the model's (dequantized, fake-quantized) weights and activations.
    Float,
    /// Integer levels times integer weights into i32 (`int_plan`).
    Integer,
}

/// Which build of the forward pass runs: portable code (SSE2 natively, SIMD128 in wasm when
/// enabled), or the AVX2+FMA build on x86-64 processors that have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
}

fn dest(buf: &mut [f32], border: usize, quant: Option<Quantizer>) -> Dest<'_> {
    Dest { buf, border, quant }
}

fn epilogue<'a, 'b>(
    residual: Option<&'a [f32]>,
    relu: bool,
    dests: &'a mut [Dest<'b>],
) -> Epilogue<'a, 'b> {
    Epilogue {
        residual,
        relu,
        dests,
    }
}

impl Isa {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Isa::Avx2Fma;
        }
        Isa::Portable
    }

    /// Convolution `layer` of `input` (bordered by [`BORDER`]) and its epilogue. Register
    /// tiles: 16 channels × 2 pixels or 8 × 4 (portable: 8 of the 16 SSE2/SIMD128 registers),
    /// 16 × 4 or 8 × 8 (AVX2: 8 of the 16 ymm registers).
    fn conv(self, layer: &ConvPlan, input: &[f32], epi: &mut Epilogue) {
        match (self, layer.block) {
            (Isa::Portable, 16) => conv_portable::<16, 2>(layer, input, BORDER, epi),
            (Isa::Portable, _) => conv_portable::<8, 4>(layer, input, BORDER, epi),
            // SAFETY (both): `Isa::Avx2Fma` is only chosen after `is_x86_feature_detected!`
            // confirmed AVX2 and FMA. This build runs ~2× the portable one (docs/benchmarks.md),
            // which is the executor's reason to exist.
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2Fma, 16) => unsafe { avx2::conv::<16, 4>(layer, input, BORDER, epi) },
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2Fma, _) => unsafe { avx2::conv::<8, 8>(layer, input, BORDER, epi) },
        }
    }

    /// The stem (`kernels::stem`: bsnet8's, which `Plan::lower` guarantees), each output row
    /// handed to `write`.
    fn stem(self, layer: &ConvPlan, input: &[f32], write: impl FnMut(usize, &StemRow)) {
        match self {
            Isa::Portable => stem_portable(layer, input, BORDER, write),
            // SAFETY: as in `conv`.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => unsafe { avx2::stem(layer, input, BORDER, write) },
        }
    }

    fn linear(self, layer: &LinearPlan, x: &[f32], logits: &mut [f32]) {
        match self {
            Isa::Portable => linear_portable(layer, x, logits),
            // SAFETY: as in `conv`.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => unsafe { avx2::linear(layer, x, logits) },
        }
    }
}

/// Logits of one image (784 values) into `logits` (10 values).
fn forward_image(isa: Isa, plan: &Plan, t: &mut Scratch, image: &[f32], logits: &mut [f32]) {
    let c = &plan.convs;
    let q = |i: usize| c[i].input_quant;
    let width = IMAGE_SIDE + 2 * BORDER;
    for (row, pixels) in image.chunks_exact(IMAGE_SIDE).enumerate() {
        let at = (row + BORDER) * width + BORDER;
        t.x[at..at + IMAGE_SIDE].copy_from_slice(pixels);
    }
    let conv = |layer, input, epi: &mut Epilogue| isa.conv(layer, input, epi);
    // stem → h0 (read by block1.conv1 and block1.shortcut through their quantizers)
    let (side, cout) = (c[0].out_side, c[0].cout);
    let (h0_1, h0_3, q1, q3) = (&mut t.h0_1, &mut t.h0_3, q(1), q(3));
    isa.stem(&c[0], &t.x, |oy, row| {
        for (dst, q) in [(&mut *h0_1, q1), (&mut *h0_3, q3)] {
            let at = ((oy + BORDER) * (side + 2 * BORDER) + BORDER) * cout;
            let dst = &mut dst[at..at + side * cout];
            for (ch, values) in row.iter().enumerate() {
                for (ox, &v) in values.iter().enumerate() {
                    dst[ox * cout + ch] = q.map_or(v, |q| q.apply(v));
                }
            }
        }
    });
    // block1: h1 = relu(bn(conv2(relu(bn(conv1(h0))))) + bn(shortcut(h0)))
    let mut d = [dest(&mut t.s1, 0, None)];
    conv(&c[3], &t.h0_3, &mut epilogue(None, false, &mut d));
    let mut d = [dest(&mut t.a1, BORDER, q(2))];
    conv(&c[1], &t.h0_1, &mut epilogue(None, true, &mut d));
    let mut d = [
        dest(&mut t.h1_4, BORDER, q(4)),
        dest(&mut t.h1_6, BORDER, q(6)),
    ];
    conv(&c[2], &t.a1, &mut epilogue(Some(&t.s1), true, &mut d));
    // block2, the same shape
    let mut d = [dest(&mut t.s2, 0, None)];
    conv(&c[6], &t.h1_6, &mut epilogue(None, false, &mut d));
    let mut d = [dest(&mut t.b1, BORDER, q(5))];
    conv(&c[4], &t.h1_4, &mut epilogue(None, true, &mut d));
    let mut d = [dest(&mut t.h2, 0, plan.fc.input_quant)];
    conv(&c[5], &t.b1, &mut epilogue(Some(&t.s2), true, &mut d));
    isa.linear(&plan.fc, &t.h2, logits);
}

/// Logits of consecutive images.
fn forward_images(lowered: &Lowered, t: &mut Scratch, inputs: &[f32], logits: &mut [f32]) {
    for (x, y) in inputs
        .chunks_exact(IMAGE_PIXELS)
        .zip(logits.chunks_exact_mut(NUM_CLASSES))
    {
        lowered.forward(t, x, y);
    }
}

/// Index of the largest value, the lowest index among ties (as candle's `argmax`: a later
/// value replaces the best only if strictly greater).
fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if values[best] < v {
            best = i;
        }
    }
    best as u32
}

/// `bsnet8`'s evaluation-mode forward pass on plain f32 buffers: the fast path of
/// certification. Built from a [`Model`] (its current bit policy); [`reload`](Self::reload)
/// it after the model's weights or quantizers change. Its logits equal the model's up to
/// float rounding (tests: within 1e-4 of the largest logit, observed ≤ 2·10⁻⁶), except that
/// an activation within rounding of a quantizer's half-level may land on the neighbouring
/// level (rare: 1 of 128 images at w8a8 in the tests, then 4·10⁻⁴).
pub struct CpuExecutor {
    lowered: Lowered,
    /// Run the float path even where the integer path applies.
    float_only: bool,
    /// One set of feature maps per thread.
    scratch: Vec<Scratch>,
    logits: Vec<f32>,
}

impl CpuExecutor {
    /// Lowers `model`; runs on one thread (see [`with_threads`](Self::with_threads)).
    pub fn new(model: &Model) -> Result<Self> {
        let plan = Plan::lower(model)?;
        Ok(Self {
            scratch: vec![Scratch::new(&plan)],
            lowered: Lowered {
                int_plan: IntPlan::lower(model, &plan.convs[0])?,
                plan,
                isa: Isa::detect(),
                int_isa: IntIsa::detect(),
                operands: IntIsa::detect().fast_operands(),
            },
            float_only: false,
            logits: Vec::new(),
        })
    }

    /// Runs the float path even where the integer path applies (for comparisons; the
    /// integer path is the quantized model's definition).
    pub fn float_path(mut self) -> Self {
        self.float_only = true;
        self.lowered.int_plan = None;
        self
    }

    /// The arithmetic the next call runs.
    pub fn arithmetic(&self) -> Arithmetic {
        match self.lowered.int_plan {
            Some(_) => Arithmetic::Integer,
            None => Arithmetic::Float,
        }
    }

    /// Splits each batch over `threads` ≥ 1 threads (natively; wasm always uses one). The
    /// logits do not depend on the number of threads: every image is computed alone.
    pub fn with_threads(mut self, threads: usize) -> Self {
        let threads = if cfg!(target_arch = "wasm32") {
            1
        } else {
            threads.max(1)
        };
        self.scratch.truncate(threads);
        while self.scratch.len() < threads {
            self.scratch.push(Scratch::new(&self.lowered.plan));
        }
        self
    }

    /// Re-lowers `model` (after a policy change), keeping the buffers.
    pub fn reload(&mut self, model: &Model) -> Result<()> {
        self.lowered.plan = Plan::lower(model)?;
        self.lowered.int_plan = match self.float_only {
            true => None,
            false => IntPlan::lower(model, &self.lowered.plan.convs[0])?,
        };
        for t in &mut self.scratch {
            // the integer maps are sized by the plan
            t.int = None;
            t.int8 = None;
            t.uint8 = None;
        }
        Ok(())
    }

    /// Runs the portable builds even where AVX2 is available (for comparisons).
    pub fn portable(mut self) -> Self {
        self.lowered.isa = Isa::Portable;
        self.lowered.int_isa = IntIsa::Portable;
        self.lowered.operands = IntIsa::Portable.fast_operands();
        self
    }

    /// Runs the integer path on AVX2 even where AVX-512 VNNI is there (for comparisons).
    pub fn without_vnni(self) -> Self {
        #[cfg(target_arch = "x86_64")]
        if self.lowered.int_isa == IntIsa::Avx512Vnni {
            let mut exec = self;
            exec.lowered.int_isa = IntIsa::Avx2;
            exec.lowered.operands = IntIsa::Avx2.fast_operands();
            return exec;
        }
        self
    }

    /// Runs narrow integer plans (activations of at most 7 bits) on i8 levels, or every
    /// plan on i16: the default is i8 where that kernel is the faster one (AVX2 without
    /// VNNI, wasm with relaxed SIMD; see `IntIsa::fast_operands`).
    pub fn with_quads(self, quads: bool) -> Self {
        self.with_operands(if quads { Operands::I8 } else { Operands::I16 })
    }

    /// Runs the integer path on these operands (i8 only where the plan is narrow, else
    /// i16); u8 runs `vpdpbusd` with AVX-512 VNNI, else a scalar kernel.
    pub fn with_operands(mut self, operands: Operands) -> Self {
        self.lowered.operands = operands;
        self
    }

    /// The operands the integer path runs on, where it runs: `"u8"`, `"i8"` (a narrow
    /// plan), `"i16"`, or `None` on the float path.
    pub fn operands(&self) -> Option<&'static str> {
        self.lowered
            .int_plan
            .as_ref()
            .map(|ip| self.lowered.operands.for_plan(ip.narrow).name())
    }

    /// Logits `[batch, 10]` (row-major) of `batch` images given as `[batch, 1, 28, 28]`
    /// (`inputs.len() == batch · 784`). The slice is the executor's buffer, valid until the
    /// next call.
    pub fn logits(&mut self, inputs: &[f32], batch: usize) -> Result<&[f32]> {
        if inputs.len() != batch * IMAGE_PIXELS {
            return Err(Error::Invalid(format!(
                "a batch of {batch} images needs {} values, got {}",
                batch * IMAGE_PIXELS,
                inputs.len()
            )));
        }
        self.logits.resize(batch * NUM_CLASSES, 0.0);
        let lowered = &self.lowered;
        let per_thread = batch.div_ceil(self.scratch.len()).max(1);
        if self.scratch.len() == 1 || batch <= per_thread {
            forward_images(lowered, &mut self.scratch[0], inputs, &mut self.logits);
        } else {
            let mut work = inputs
                .chunks(per_thread * IMAGE_PIXELS)
                .zip(self.logits.chunks_mut(per_thread * NUM_CLASSES))
                .zip(self.scratch.iter_mut());
            let ((x0, y0), t0) = work.next().expect("batch > 0");
            std::thread::scope(|s| {
                for ((x, y), t) in work {
                    s.spawn(move || forward_images(lowered, t, x, y));
                }
                forward_images(lowered, t0, x0, y0);
            });
        }
        Ok(&self.logits)
    }
}

impl CpuExecutor {
    /// The class counts of the noisy copies `samples`, each thread drawing and classifying
    /// its own contiguous share: the noise is drawn in parallel too, instead of by one thread
    /// while the others wait. The draws are addressed by sample index and every image is
    /// computed alone, so the counts equal those of drawing all copies on one thread and
    /// calling [`classify_batch`](BaseClassifier::classify_batch).
    fn counts_in_threads(&mut self, copies: &NoisyCopies, samples: Range<u64>) -> Vec<u64> {
        let threads = self.scratch.len() as u64;
        let share = samples.end.saturating_sub(samples.start).div_ceil(threads);
        let lowered = &self.lowered;
        let work = |t: &mut Scratch, range: Range<u64>| {
            let mut noisy = std::mem::take(&mut t.noisy);
            copies.fill(range, &mut noisy);
            let (mut counts, mut logits) = ([0u64; NUM_CLASSES], [0.0f32; NUM_CLASSES]);
            for image in noisy.chunks_exact(IMAGE_PIXELS) {
                lowered.forward(t, image, &mut logits);
                counts[argmax(&logits) as usize] += 1;
            }
            t.noisy = noisy;
            counts
        };
        let work = &work;
        let mut shares = self.scratch.iter_mut().enumerate().map(|(i, t)| {
            let from = (samples.start + i as u64 * share).min(samples.end);
            (t, from..(from + share).min(samples.end))
        });
        let (t0, first) = shares.next().expect("an executor has a thread");
        std::thread::scope(|s| {
            let others: Vec<_> = shares.map(|(t, r)| s.spawn(move || work(t, r))).collect();
            let mut total = work(t0, first);
            for other in others {
                let counts = other
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e));
                for (c, n) in total.iter_mut().zip(counts) {
                    *c += n;
                }
            }
            total.to_vec()
        })
    }
}

impl BaseClassifier for CpuExecutor {
    fn num_classes(&self) -> usize {
        NUM_CLASSES
    }

    fn classify_batch(&mut self, inputs: &[f32], batch: usize) -> Result<Vec<u32>> {
        let logits = self.logits(inputs, batch)?;
        Ok(logits.chunks_exact(NUM_CLASSES).map(argmax).collect())
    }

    /// With several threads, each draws its own share of the copies (one thread: the
    /// caller draws them, as before).
    fn counts(&mut self, copies: &NoisyCopies, samples: Range<u64>) -> Option<Result<Vec<u64>>> {
        (self.scratch.len() > 1).then(|| Ok(self.counts_in_threads(copies, samples)))
    }
}
