// Raw Philox-4x32-10 words for given counters and keys, to compare with the CPU bit for bit.

struct PhiloxInput {
    counter: vec4<u32>,
    key: vec4<u32>, // (k0, k1, unused, unused)
}

@group(0) @binding(0) var<storage, read> philox_in: array<PhiloxInput>;
@group(0) @binding(1) var<storage, read_write> philox_out: array<vec4<u32>>;

@compute @workgroup_size(64)
fn philox_words(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(id, groups);
    if (i >= arrayLength(&philox_in)) {
        return;
    }
    philox_out[i] = philox4x32_10(philox_in[i].counter, philox_in[i].key.xy);
}

