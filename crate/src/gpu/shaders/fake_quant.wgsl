// Activation fake-quantization of a vector (the forward pass applies the same function in
// every epilogue).

struct FakeQuant {
    count: u32,
    scale: f32,
    hi: f32,
    unused: u32,
}

@group(0) @binding(0) var<uniform> fq: FakeQuant;
@group(0) @binding(1) var<storage, read> fq_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> fq_out: array<f32>;

@compute @workgroup_size(64)
fn fake_quantize_values(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(id, groups);
    if (i >= fq.count) {
        return;
    }
    fq_out[i] = fake_quantize(fq_in[i], fq.scale, fq.hi);
}
