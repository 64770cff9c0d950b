//! The small fully connected networks of the DDPG agent, in plain Rust: dense layers with
//! hand-written backward passes and Adam. Plain loops rather than candle because the nets are
//! tiny (a few 300-unit layers, batches of 64), every weight must come from the search's seed
//! (candle's own initialisation is not seeded), and the same arithmetic in the same order runs
//! natively and in wasm.

use rand::rngs::StdRng;
use rand::Rng;

/// Adam's moment estimates for one parameter tensor.
#[derive(Clone, Debug)]
struct Moments {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Moments {
    fn new(len: usize) -> Self {
        Self {
            m: vec![0.0; len],
            v: vec![0.0; len],
        }
    }
}

/// Adam's settings (Kingma & Ba; PyTorch's defaults β₁ = 0.9, β₂ = 0.999, ε = 1e-8).
#[derive(Clone, Copy, Debug)]
pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
}

impl Adam {
    pub fn new(lr: f32) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// One Adam step on `params` with gradient `grads`; `t` ≥ 1 is the step count.
    fn step(&self, params: &mut [f32], grads: &[f32], moments: &mut Moments, t: i32) {
        let c1 = 1.0 - self.beta1.powi(t);
        let c2 = 1.0 - self.beta2.powi(t);
        for (((p, &g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(&mut moments.m)
            .zip(&mut moments.v)
        {
            *m = self.beta1 * *m + (1.0 - self.beta1) * g;
            *v = self.beta2 * *v + (1.0 - self.beta2) * g * g;
            let m_hat = *m / c1;
            let v_hat = *v / c2;
            *p -= self.lr * m_hat / (v_hat.sqrt() + self.eps);
        }
    }
}

/// Dot product with eight partial sums in a fixed order (vectorises without reordering
/// anything the compiler is not allowed to reorder, so results are identical everywhere).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for k in 0..8 {
            acc[k] += a[c * 8 + k] * b[c * 8 + k];
        }
    }
    let mut sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for i in chunks * 8..a.len() {
        sum += a[i] * b[i];
    }
    sum
}

/// y += alpha · x.
fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

/// A fully connected layer y = x·W + b on row-major batches. The weight is stored input-major
/// (`weight[i * outputs + o]`), so the forward pass and the weight gradient are row updates.
#[derive(Clone, Debug)]
pub struct Dense {
    pub inputs: usize,
    pub outputs: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    grad_weight: Vec<f32>,
    grad_bias: Vec<f32>,
    moments_weight: Moments,
    moments_bias: Moments,
}

impl Dense {
    /// Weights uniform in ±`weight_bound`, biases uniform in ±1/√inputs (PyTorch's default for
    /// biases), all drawn from `rng`.
    pub fn new(inputs: usize, outputs: usize, weight_bound: f32, rng: &mut StdRng) -> Self {
        let bias_bound = 1.0 / (inputs as f32).sqrt();
        let weight = (0..inputs * outputs)
            .map(|_| rng.random_range(-weight_bound..=weight_bound))
            .collect();
        let bias = (0..outputs)
            .map(|_| rng.random_range(-bias_bound..=bias_bound))
            .collect();
        Self {
            inputs,
            outputs,
            weight,
            bias,
            grad_weight: vec![0.0; inputs * outputs],
            grad_bias: vec![0.0; outputs],
            moments_weight: Moments::new(inputs * outputs),
            moments_bias: Moments::new(outputs),
        }
    }

    /// HAQ's hidden-layer initialisation: weights uniform in ±1/√fan-in.
    pub fn fan_in(inputs: usize, outputs: usize, rng: &mut StdRng) -> Self {
        Self::new(inputs, outputs, 1.0 / (inputs as f32).sqrt(), rng)
    }

    /// `[batch, outputs]` from `x` = `[batch, inputs]`.
    pub fn forward(&self, x: &[f32], batch: usize) -> Vec<f32> {
        debug_assert_eq!(x.len(), batch * self.inputs);
        let mut y = Vec::with_capacity(batch * self.outputs);
        for row in x.chunks_exact(self.inputs) {
            let start = y.len();
            y.extend_from_slice(&self.bias);
            let out = &mut y[start..];
            for (i, &xi) in row.iter().enumerate() {
                if xi != 0.0 {
                    axpy(
                        xi,
                        &self.weight[i * self.outputs..(i + 1) * self.outputs],
                        out,
                    );
                }
            }
        }
        y
    }

    /// The gradient with respect to the input, `[batch, inputs]`, for output gradient `dy`.
    pub fn input_grad(&self, dy: &[f32], batch: usize) -> Vec<f32> {
        debug_assert_eq!(dy.len(), batch * self.outputs);
        let mut dx = Vec::with_capacity(batch * self.inputs);
        for dy_row in dy.chunks_exact(self.outputs) {
            for i in 0..self.inputs {
                dx.push(dot(
                    &self.weight[i * self.outputs..(i + 1) * self.outputs],
                    dy_row,
                ));
            }
        }
        dx
    }

    /// Adds this batch's parameter gradients (for input `x` and output gradient `dy`).
    pub fn accumulate(&mut self, x: &[f32], dy: &[f32], batch: usize) {
        debug_assert_eq!(x.len(), batch * self.inputs);
        for (row, dy_row) in x
            .chunks_exact(self.inputs)
            .zip(dy.chunks_exact(self.outputs))
        {
            axpy(1.0, dy_row, &mut self.grad_bias);
            for (i, &xi) in row.iter().enumerate() {
                if xi != 0.0 {
                    axpy(
                        xi,
                        dy_row,
                        &mut self.grad_weight[i * self.outputs..(i + 1) * self.outputs],
                    );
                }
            }
        }
    }

    pub fn zero_grad(&mut self) {
        self.grad_weight.fill(0.0);
        self.grad_bias.fill(0.0);
    }

    /// One Adam step from the accumulated gradients; `t` ≥ 1 is the step count.
    pub fn adam_step(&mut self, adam: &Adam, t: i32) {
        adam.step(
            &mut self.weight,
            &self.grad_weight,
            &mut self.moments_weight,
            t,
        );
        adam.step(&mut self.bias, &self.grad_bias, &mut self.moments_bias, t);
    }

    /// Polyak averaging of a target network: θ ← (1 − τ)·θ + τ·θ_source.
    pub fn soft_update(&mut self, source: &Dense, tau: f32) {
        for (t, &s) in self.weight.iter_mut().zip(&source.weight) {
            *t = *t * (1.0 - tau) + s * tau;
        }
        for (t, &s) in self.bias.iter_mut().zip(&source.bias) {
            *t = *t * (1.0 - tau) + s * tau;
        }
    }
}

pub fn relu(x: &mut [f32]) {
    for v in x {
        *v = v.max(0.0);
    }
}

/// dy masked by the ReLU's output: zero where the unit was off.
pub fn relu_grad(dy: &mut [f32], activated: &[f32]) {
    for (d, &a) in dy.iter_mut().zip(activated) {
        if a <= 0.0 {
            *d = 0.0;
        }
    }
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Loss L = Σ y·c for a fixed c: dL/dy = c, so the analytic gradients follow by hand.
    #[test]
    fn dense_gradients_match_central_differences() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut layer = Dense::new(5, 3, 0.5, &mut rng);
        let x: Vec<f32> = (0..10).map(|i| (i as f32 * 0.37).sin()).collect();
        let c: Vec<f32> = (0..6).map(|i| (i as f32 * 0.91).cos()).collect();
        let loss = |l: &Dense, x: &[f32]| -> f64 {
            l.forward(x, 2)
                .iter()
                .zip(&c)
                .map(|(&y, &c)| y as f64 * c as f64)
                .sum()
        };
        layer.accumulate(&x, &c, 2);
        let dx = layer.input_grad(&c, 2);
        let h = 1e-2f32;
        for k in 0..layer.weight.len() {
            let mut plus = layer.clone();
            plus.weight[k] += h;
            let mut minus = layer.clone();
            minus.weight[k] -= h;
            let numeric = (loss(&plus, &x) - loss(&minus, &x)) / (2.0 * h as f64);
            assert!((numeric - layer.grad_weight[k] as f64).abs() < 1e-3);
        }
        for k in 0..layer.bias.len() {
            // every row adds the bias once: dL/db_o = Σ_rows c[row, o]
            assert!((layer.grad_bias[k] - (c[k] + c[3 + k])).abs() < 1e-6);
        }
        for k in 0..x.len() {
            let mut xp = x.clone();
            xp[k] += h;
            let mut xm = x.clone();
            xm[k] -= h;
            let numeric = (loss(&layer, &xp) - loss(&layer, &xm)) / (2.0 * h as f64);
            assert!((numeric - dx[k] as f64).abs() < 1e-3);
        }
    }

    #[test]
    fn adam_first_step_moves_each_parameter_by_the_learning_rate() {
        // after one step m̂ = g and v̂ = g², so the step is lr·g/(|g| + ε) ≈ lr·sign(g)
        let adam = Adam::new(0.1);
        let mut p = vec![1.0f32, -2.0, 0.5];
        let g = vec![3.0f32, -0.25, 1e-3];
        let mut m = Moments::new(3);
        adam.step(&mut p, &g, &mut m, 1);
        assert!((p[0] - 0.9).abs() < 1e-6);
        assert!((p[1] + 1.9).abs() < 1e-6);
        assert!((p[2] - 0.4).abs() < 1e-4);
    }

    #[test]
    fn soft_update_is_a_convex_combination() {
        let mut rng = StdRng::seed_from_u64(2);
        let source = Dense::new(2, 2, 1.0, &mut rng);
        let mut target = Dense::new(2, 2, 1.0, &mut rng);
        let before = target.weight.clone();
        target.soft_update(&source, 0.25);
        for ((t, b), s) in target.weight.iter().zip(&before).zip(&source.weight) {
            assert!((t - (0.75 * b + 0.25 * s)).abs() < 1e-6);
        }
    }
}
