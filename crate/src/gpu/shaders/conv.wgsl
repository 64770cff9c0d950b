// One convolution with its batch-norm folded in, over a batch of NHWC feature maps, and its
// epilogue: + shift, + residual, ReLU, then each destination through its own activation
// fake-quantizer (a map read by two layers gets a copy per reader, as on the CPU). One
// invocation computes every output channel of one pixel of one copy, so each input value is
// loaded once and the weights (the same for every invocation) are read as uniform values.
// The layer's shape is baked in as constants (the executor fills in the __NAME__ fields
// per layer), so loops have fixed trip counts and the accumulators stay in registers.
//
// The integer path (exec/int_plan.rs, the quantized model's definition) runs here too, bit for
// bit as on the CPU: a layer after the stem reads levels (small integers held in f32) and
// integer weights, sums their products in i32 and requantizes by `f32(acc) · m + shift`; the
// stem sums its float products tap by tap without fused multiply-adds; the destinations
// receive levels. A shader compiler may contract `a · b + c` into one fma (WGSL does not
// forbid it), which rounds once instead of twice: `unfused` hides each product behind an XOR
// with a zero that is only known at run time, so no compiler can fuse it.

const CIN: u32 = __CIN__u;
const COUT4: u32 = __COUT4__u; // output channels / 4
const K: u32 = __K__u;
const STRIDE: u32 = __STRIDE__u;
const PAD: u32 = __PAD__u;
const IN_SIDE: u32 = __IN_SIDE__u;
const OUT_SIDE: u32 = __OUT_SIDE__u;

// The shape again (as the constants above; kept so the layout stays one struct per layer).
struct Conv {
    cin: u32,
    cout4: u32,        // output channels / 4
    k: u32,
    stride: u32,
    pad: u32,
    in_side: u32,
    out_side: u32,
    flags: u32,        // 1: ReLU, 2: residual, 4: second destination, 8: integer layer
                       // (levels × integer weights, i32 sums, requantized), 16: unfused
                       // float sums (the integer path's stem), 32: destinations get levels
    weight_first: u32, // in vec4s, layout [ky][kx][cin][cout]
    shift_first: u32,  // in vec4s
    q0_on: u32,
    q1_on: u32,
    q0_scale: f32,
    q0_hi: f32,
    q1_scale: f32,
    q1_hi: f32,
    zero: u32,         // always 0, unknown to the compiler (see `unfused`)
    unused0: u32,
    unused1: u32,
    unused2: u32,
}

@group(0) @binding(0) var<uniform> batch: Batch;
@group(0) @binding(1) var<uniform> conv: Conv;
@group(0) @binding(2) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read> weights: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> shifts: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> dest0: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> dest1: array<vec4<f32>>;
// Per output channel of an integer layer: (s_a · s_w) · γ/√(var + ε), as `shifts`.
@group(0) @binding(8) var<storage, read> multipliers: array<vec4<f32>>;

// `p` itself, after a step no compiler can see through: it cannot be fused into what it is
// added to.
fn unfused(p: vec4<f32>) -> vec4<f32> {
    return bitcast<vec4<f32>>(bitcast<vec4<u32>>(p) ^ vec4<u32>(conv.zero));
}

// The levels clip(round(v / scale), 0, hi), as `Quantizer::level_i16` (halves to even).
fn levels4(v: vec4<f32>, scale: f32, hi: f32) -> vec4<f32> {
    return round(clamp(v / scale, vec4<f32>(0.0), vec4<f32>(hi)));
}

// What a destination receives: levels on the integer path, else the fake-quantized values
// (or `v` itself where no quantizer reads it).
fn destination4(v: vec4<f32>, on: u32, scale: f32, hi: f32) -> vec4<f32> {
    if (on != 0u && (conv.flags & 32u) != 0u) {
        return levels4(v, scale, hi);
    }
    return quantize4(v, on, scale, hi);
}

fn quantize4(v: vec4<f32>, on: u32, scale: f32, hi: f32) -> vec4<f32> {
    if (on == 0u) {
        return v;
    }
    return vec4<f32>(
        fake_quantize(v.x, scale, hi),
        fake_quantize(v.y, scale, hi),
        fake_quantize(v.z, scale, hi),
        fake_quantize(v.w, scale, hi),
    );
}

@compute @workgroup_size(64)
fn convolve(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(id, groups);
    let pixels = OUT_SIDE * OUT_SIDE;
    if (i >= batch.count * pixels) {
        return;
    }
    // i = b * pixels + p; output vec4 (i, co4) at i * COUT4 + co4
    let p = i % pixels;
    let b = i / pixels;
    let oy = p / OUT_SIDE;
    let ox = p % OUT_SIDE;
    let in_base = b * IN_SIDE * IN_SIDE * CIN;
    var acc = sums(oy, ox, in_base);
    let out_base = i * COUT4;
    for (var co4 = 0u; co4 < COUT4; co4++) {
        let c = conv.shift_first + co4;
        var v: vec4<f32>;
        if ((conv.flags & 8u) != 0u) {
            v = unfused(acc[co4] * multipliers[c]) + shifts[c];
        } else {
            v = acc[co4] + shifts[c];
        }
        if ((conv.flags & 2u) != 0u) {
            v = v + residual[out_base + co4];
        }
        if ((conv.flags & 1u) != 0u) {
            v = max(v, vec4<f32>(0.0));
        }
        dest0[out_base + co4] = destination4(v, conv.q0_on, conv.q0_scale, conv.q0_hi);
        if ((conv.flags & 4u) != 0u) {
            dest1[out_base + co4] = destination4(v, conv.q1_on, conv.q1_scale, conv.q1_hi);
        }
    }
}

// The sums of one output pixel, tap by tap. Float: fused multiply-adds, or separately
// rounded products where flag 16 asks for them (the integer path's stem, as on the CPU).
// Integer (flag 8): levels times integer weights (both held in f32, exactly) multiplied and
// added in i32, converted once at the end (|sum| < 2²⁴: exact).
fn sums(oy: u32, ox: u32, in_base: u32) -> array<vec4<f32>, COUT4> {
    let integer = (conv.flags & 8u) != 0u;
    let exact = (conv.flags & 16u) != 0u;
    var acc: array<vec4<f32>, COUT4>;
    var int_acc: array<vec4<i32>, COUT4>;
    for (var ky = 0u; ky < K; ky++) {
        let iy = i32(oy * STRIDE + ky) - i32(PAD);
        if (iy < 0 || iy >= i32(IN_SIDE)) {
            continue;
        }
        for (var kx = 0u; kx < K; kx++) {
            let ix = i32(ox * STRIDE + kx) - i32(PAD);
            if (ix < 0 || ix >= i32(IN_SIDE)) {
                continue;
            }
            let x_at = in_base + (u32(iy) * IN_SIDE + u32(ix)) * CIN;
            let w_at = conv.weight_first + (ky * K + kx) * CIN * COUT4;
            for (var ci = 0u; ci < CIN; ci++) {
                let x = vec4<f32>(input[x_at + ci]);
                let w_row = w_at + ci * COUT4;
                for (var co4 = 0u; co4 < COUT4; co4++) {
                    let w = weights[w_row + co4];
                    if (integer) {
                        int_acc[co4] = int_acc[co4] + vec4<i32>(x) * vec4<i32>(w);
                    } else if (exact) {
                        acc[co4] = acc[co4] + unfused(x * w);
                    } else {
                        acc[co4] = fma(x, w, acc[co4]);
                    }
                }
            }
        }
    }
    if (integer) {
        for (var co4 = 0u; co4 < COUT4; co4++) {
            acc[co4] = vec4<f32>(int_acc[co4]);
        }
    }
    return acc;
}
