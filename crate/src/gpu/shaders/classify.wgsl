// The linear head, the argmax and the class count: one invocation per copy. Only the counts
// need to leave the GPU; the logits are kept for the agreement tests. On the integer path the
// features are levels and the weights integers (both held in f32): their products are summed
// in i32 and `logits = f32(sum) · m + bias`, the product kept unfused as in `conv.wgsl`.

const CLASSES: u32 = 10u;

struct Head {
    weight_first: u32, // in vec4s, layout [inputs][16 lanes] (outputs 10..15 zero)
    inputs: u32,
    integer: u32,      // 1: the integer path
    zero: u32,         // always 0, unknown to the compiler
    bias: array<vec4<f32>, 3>,
    multiplier: array<vec4<f32>, 3>, // integer path: s_a · s_w per output
}

@group(0) @binding(0) var<uniform> batch: Batch;
@group(0) @binding(1) var<uniform> head: Head;
@group(0) @binding(2) var<storage, read> features: array<f32>;
@group(0) @binding(3) var<storage, read> weights: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> logits: array<f32>;
@group(0) @binding(5) var<storage, read_write> counts: array<atomic<u32>>;

// `p` itself, after a step no compiler can see through (see `conv.wgsl`).
fn unfused(p: vec4<f32>) -> vec4<f32> {
    return bitcast<vec4<f32>>(bitcast<vec4<u32>>(p) ^ vec4<u32>(head.zero));
}

@compute @workgroup_size(64)
fn classify(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = flat_index(id, groups);
    if (b >= batch.count) {
        return;
    }
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    let base = b * head.inputs;
    if (head.integer != 0u) {
        var s0 = vec4<i32>(0);
        var s1 = vec4<i32>(0);
        var s2 = vec4<i32>(0);
        for (var i = 0u; i < head.inputs; i++) {
            let x = vec4<i32>(i32(features[base + i]));
            let w = head.weight_first + i * 4u;
            s0 = s0 + x * vec4<i32>(weights[w]);
            s1 = s1 + x * vec4<i32>(weights[w + 1u]);
            s2 = s2 + x * vec4<i32>(weights[w + 2u]);
        }
        a0 = unfused(vec4<f32>(s0) * head.multiplier[0]);
        a1 = unfused(vec4<f32>(s1) * head.multiplier[1]);
        a2 = unfused(vec4<f32>(s2) * head.multiplier[2]);
    } else {
        for (var i = 0u; i < head.inputs; i++) {
            let x = vec4<f32>(features[base + i]);
            let w = head.weight_first + i * 4u;
            a0 = fma(x, weights[w], a0);
            a1 = fma(x, weights[w + 1u], a1);
            a2 = fma(x, weights[w + 2u], a2);
        }
    }
    a0 = a0 + head.bias[0];
    a1 = a1 + head.bias[1];
    a2 = a2 + head.bias[2];
    var l = array<f32, 10>(a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w, a2.x, a2.y);
    // argmax, the lowest index among ties (as the CPU executors)
    var best = 0u;
    for (var o = 0u; o < CLASSES; o++) {
        logits[b * CLASSES + o] = l[o];
        if (l[best] < l[o]) {
            best = o;
        }
    }
    atomicAdd(&counts[best], 1u);
}
