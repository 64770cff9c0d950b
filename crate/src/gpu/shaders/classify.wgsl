// The linear head, the argmax and the class count: one invocation per copy. Only the counts
// need to leave the GPU; the logits are kept for the agreement tests.

const CLASSES: u32 = 10u;

struct Head {
    weight_first: u32, // in vec4s, layout [inputs][16 lanes] (outputs 10..15 zero)
    inputs: u32,
    unused0: u32,
    unused1: u32,
    bias: array<vec4<f32>, 3>,
}

@group(0) @binding(0) var<uniform> batch: Batch;
@group(0) @binding(1) var<uniform> head: Head;
@group(0) @binding(2) var<storage, read> features: array<f32>;
@group(0) @binding(3) var<storage, read> weights: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> logits: array<f32>;
@group(0) @binding(5) var<storage, read_write> counts: array<atomic<u32>>;

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
    for (var i = 0u; i < head.inputs; i++) {
        let x = vec4<f32>(features[base + i]);
        let w = head.weight_first + i * 4u;
        a0 = fma(x, weights[w], a0);
        a1 = fma(x, weights[w + 1u], a1);
        a2 = fma(x, weights[w + 2u], a2);
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
