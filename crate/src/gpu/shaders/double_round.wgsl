// Double Rounding of every layer's weights in one dispatch: the int8 master q of each weight
// to the layer's width l by the rounding shift (q + 2^(D-1)) >> D, D = 8 - l (arithmetic
// shift: ties towards +inf, as quant::double_round), clamped to [-2^(l-1), 2^(l-1) - 1];
// dequantized with the layer's per-channel scale s_l = s_8 * 2^D; and written a third time
// in the layout the forward pass reads: with the batch-norm folded in (the float path, and
// the integer path's stem), or as the integer itself held in f32 (the integer path's other
// layers, which requantize by s_a · s_l · γ/√(var + ε) after their sums).

struct Layer {
    first: u32,        // first weight of the layer in `masters`
    count: u32,        // weights of the layer
    per_channel: u32,  // weights per output channel
    delta: u32,        // D = 8 - l
    lo: i32,           // -2^(l-1)
    hi: i32,           // 2^(l-1) - 1
    channel_first: u32, // first output channel of the layer in `scales` and `fold`
    folded_first: u32, // first value of the layer in `folded`
    is_linear: u32,    // 0: convolution [cout][cin][k][k]; 1: the linear head [10][c*side2]
    a: u32,            // convolution: cin;  linear: channels of the last feature map
    b: u32,            // convolution: k;    linear: side2 (pixels of the last feature map)
    c: u32,            // convolution: cout; linear: lanes per input (16)
    integer: u32,      // 1: write the integer into `folded` (the integer path)
}

struct Totals {
    weights: u32,
    layers: u32,
}

@group(0) @binding(0) var<storage, read> layers: array<Layer>;
@group(0) @binding(1) var<storage, read> masters: array<i32>;
@group(0) @binding(2) var<storage, read> scales: array<f32>;
@group(0) @binding(3) var<storage, read> fold: array<f32>;
@group(0) @binding(4) var<storage, read_write> ints: array<i32>;
@group(0) @binding(5) var<storage, read_write> dequantized: array<f32>;
@group(0) @binding(6) var<storage, read_write> folded: array<f32>;
@group(0) @binding(7) var<uniform> totals: Totals;

fn double_round(q: i32, delta: u32, lo: i32, hi: i32) -> i32 {
    var shifted = q;
    if (delta > 0u) {
        shifted = (q + (1i << (delta - 1u))) >> delta;
    }
    return clamp(shifted, lo, hi);
}

@compute @workgroup_size(64)
fn derive_weights(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(id, groups);
    if (i >= totals.weights) {
        return;
    }
    var l = 0u;
    for (var k = 0u; k < totals.layers; k++) {
        if (i >= layers[k].first && i < layers[k].first + layers[k].count) {
            l = k;
        }
    }
    let layer = layers[l];
    let j = i - layer.first;
    let o = j / layer.per_channel;
    let v = double_round(masters[i], layer.delta, layer.lo, layer.hi);
    ints[i] = v;
    let scale = scales[layer.channel_first + o] * f32(1u << layer.delta);
    let w = f32(v) * scale;
    dequantized[i] = w;
    let r = j % layer.per_channel;
    if (layer.is_linear == 0u) {
        let cin = layer.a;
        let k = layer.b;
        let ci = r / (k * k);
        let ky = (r / k) % k;
        let kx = r % k;
        let at = ((ky * k + kx) * cin + ci) * layer.c + o;
        folded[layer.folded_first + at] = select(w * fold[layer.channel_first + o], f32(v), layer.integer != 0u);
    } else {
        // input index r = c * side2 + pixel (NCHW) -> pixel * channels + c (NHWC)
        let c = r / layer.b;
        let pixel = r % layer.b;
        let at = (pixel * layer.a + c) * layer.c + o;
        folded[layer.folded_first + at] = select(w, f32(v), layer.integer != 0u);
    }
}
