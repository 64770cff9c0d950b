// One convolution with its batch-norm folded in, over a batch of NHWC feature maps, and its
// epilogue: + shift, + residual, ReLU, then each destination through its own activation
// fake-quantizer (a map read by two layers gets a copy per reader, as on the CPU). One
// invocation computes every output channel of one pixel of one copy, so each input value is
// loaded once and the weights (the same for every invocation) are read as uniform values.
// The layer's shape is baked in as constants (the executor fills in the __NAME__ fields
// per layer), so loops have fixed trip counts and the accumulators stay in registers.

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
    flags: u32,        // 1: ReLU, 2: residual, 4: second destination
    weight_first: u32, // in vec4s, layout [ky][kx][cin][cout]
    shift_first: u32,  // in vec4s
    q0_on: u32,
    q1_on: u32,
    q0_scale: f32,
    q0_hi: f32,
    q1_scale: f32,
    q1_hi: f32,
}

@group(0) @binding(0) var<uniform> batch: Batch;
@group(0) @binding(1) var<uniform> conv: Conv;
@group(0) @binding(2) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read> weights: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> shifts: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> dest0: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> dest1: array<vec4<f32>>;

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
    var acc: array<vec4<f32>, COUT4>;
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
                    acc[co4] = fma(x, weights[w_row + co4], acc[co4]);
                }
            }
        }
    }
    let out_base = i * COUT4;
    for (var co4 = 0u; co4 < COUT4; co4++) {
        var v = acc[co4] + shifts[conv.shift_first + co4];
        if ((conv.flags & 2u) != 0u) {
            v = v + residual[out_base + co4];
        }
        if ((conv.flags & 1u) != 0u) {
            v = max(v, vec4<f32>(0.0));
        }
        dest0[out_base + co4] = quantize4(v, conv.q0_on, conv.q0_scale, conv.q0_hi);
        if ((conv.flags & 4u) != 0u) {
            dest1[out_base + co4] = quantize4(v, conv.q1_on, conv.q1_scale, conv.q1_hi);
        }
    }
}
