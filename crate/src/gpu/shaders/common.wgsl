// Shared by every bitsmooth shader: the counter-based noise of smoothing/noise.rs and the
// activation fake-quantizer of exec/plan.rs, in the same arithmetic.

// Philox-4x32 multipliers and Weyl key increments (Salmon et al. 2011).
const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;
// 2^-24: Box-Muller keeps the top 24 bits of a word, which f32 holds exactly.
const TWO_POW_MINUS_24: f32 = 5.9604644775390625e-8;
const TAU: f32 = 6.283185307179586;
const WORKGROUP: u32 = 64u;

// High and low words of the 64-bit product a*b. WGSL has no 64-bit integers: the product
// is assembled from 16-bit halves with wrapping 32-bit operations only.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let lo_lo = a_lo * b_lo;
    let hi_lo = a_hi * b_lo;
    let lo_hi = a_lo * b_hi;
    let hi_hi = a_hi * b_hi;
    let middle = (lo_lo >> 16u) + (hi_lo & 0xffffu) + (lo_hi & 0xffffu);
    let hi = hi_hi + (hi_lo >> 16u) + (lo_hi >> 16u) + (middle >> 16u);
    return vec2<u32>(hi, a * b);
}

// Philox-4x32-10: ten rounds of the keyed bijection on a 128-bit counter.
fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var r = 0u; r < 10u; r++) {
        if (r > 0u) {
            k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
        }
        let p0 = mulhilo(PHILOX_M0, c.x);
        let p1 = mulhilo(PHILOX_M1, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

// Two N(0, 1) values from two words: u1 in (0, 1], u2 in [0, 1), as on the CPU.
fn box_muller(a: u32, b: u32) -> vec2<f32> {
    let u1 = (f32(a >> 8u) + 1.0) * TWO_POW_MINUS_24;
    let u2 = f32(b >> 8u) * TWO_POW_MINUS_24;
    let r = sqrt(-2.0 * log(u1));
    let angle = TAU * u2;
    return vec2<f32>(r * cos(angle), r * sin(angle));
}

// The four N(0, 1) draws of elements 4*quad..4*quad+4 of a sample (64-bit index as two
// words) of an image under a 64-bit seed (two words): counter [quad, sample, image].
fn normal_quad(quad: u32, sample: vec2<u32>, image: u32, seed: vec2<u32>) -> vec4<f32> {
    let w = philox4x32_10(vec4<u32>(quad, sample.x, sample.y, image), seed);
    return vec4<f32>(box_muller(w.x, w.y), box_muller(w.z, w.w));
}

// The unsigned activation fake-quantizer clip(round(v / scale), 0, hi) * scale; WGSL's
// round() rounds halves to even, the project's convention.
fn fake_quantize(v: f32, scale: f32, hi: f32) -> f32 {
    return round(clamp(v / scale, 0.0, hi)) * scale;
}

// The flat index of an invocation in a dispatch of (x, y, 1) workgroups of WORKGROUP
// (y > 1 only when x alone would exceed the adapter's limit).
fn flat_index(id: vec3<u32>, groups: vec3<u32>) -> u32 {
    return id.x + id.y * groups.x * WORKGROUP;
}

// One batch of noisy copies: how many, the first sample index (64 bits as two words), the
// image's index and the seed (the noise key), and σ.
struct Batch {
    count: u32,
    sample_lo: u32,
    sample_hi: u32,
    image: u32,
    seed_lo: u32,
    seed_hi: u32,
    sigma: f32,
    unused: u32,
}
