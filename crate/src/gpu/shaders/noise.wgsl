// The noisy copies x + σ·ε of one image, ε from the counter-based generator: one invocation
// per four pixels of one copy (one Philox call, two Box-Muller pairs).

const QUADS: u32 = 196u; // 784 pixels / 4

@group(0) @binding(0) var<uniform> batch: Batch;
@group(0) @binding(1) var<storage, read> pixels: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> noisy: array<vec4<f32>>;

@compute @workgroup_size(64)
fn add_noise(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(id, groups);
    if (i >= batch.count * QUADS) {
        return;
    }
    let b = i / QUADS;
    let quad = i % QUADS;
    // sample index = first + b, with the carry into the high word
    let lo = batch.sample_lo + b;
    let hi = batch.sample_hi + select(0u, 1u, lo < b);
    let eps = normal_quad(quad, vec2<u32>(lo, hi), batch.image, vec2<u32>(batch.seed_lo, batch.seed_hi));
    noisy[i] = pixels[quad] + batch.sigma * eps;
}
