// One convolution with its batch-norm folded in, over a batch of NHWC feature maps, and its
// epilogue: + shift, + residual, ReLU, then each destination through its own activation
// fake-quantizer (a map read by two layers gets a copy per reader, as on the CPU). One
// invocation computes four neighbouring output channels of one pixel of one copy.

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
    let pixels = conv.out_side * conv.out_side;
    if (i >= batch.count * pixels * conv.cout4) {
        return;
    }
    // i = (b * pixels + p) * cout4 + co4: also the output's vec4 index
    let co4 = i % conv.cout4;
    let rest = i / conv.cout4;
    let p = rest % pixels;
    let b = rest / pixels;
    let oy = p / conv.out_side;
    let ox = p % conv.out_side;
    let side = i32(conv.in_side);
    let in_base = b * conv.in_side * conv.in_side * conv.cin;
    var acc = vec4<f32>(0.0);
    for (var ky = 0u; ky < conv.k; ky++) {
        let iy = i32(oy * conv.stride + ky) - i32(conv.pad);
        if (iy < 0 || iy >= side) {
            continue;
        }
        for (var kx = 0u; kx < conv.k; kx++) {
            let ix = i32(ox * conv.stride + kx) - i32(conv.pad);
            if (ix < 0 || ix >= side) {
                continue;
            }
            let x_at = in_base + (u32(iy) * conv.in_side + u32(ix)) * conv.cin;
            let w_at = conv.weight_first + (ky * conv.k + kx) * conv.cin * conv.cout4 + co4;
            for (var ci = 0u; ci < conv.cin; ci++) {
                acc = fma(vec4<f32>(input[x_at + ci]), weights[w_at + ci * conv.cout4], acc);
            }
        }
    }
    var v = acc + shifts[conv.shift_first + co4];
    if ((conv.flags & 2u) != 0u) {
        v = v + residual[i];
    }
    if ((conv.flags & 1u) != 0u) {
        v = max(v, vec4<f32>(0.0));
    }
    dest0[i] = quantize4(v, conv.q0_on, conv.q0_scale, conv.q0_hi);
    if ((conv.flags & 4u) != 0u) {
        dest1[i] = quantize4(v, conv.q1_on, conv.q1_scale, conv.q1_hi);
    }
}
