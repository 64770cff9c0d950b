//! The DDPG agent of HAQ (Wang et al., CVPR 2019), which ARQ reuses (DESIGN §6): a
//! deterministic actor μ(s) ∈ [0, 1] proposes each layer's action, a critic Q(s, a) learns what
//! an action is worth, both trained off-policy from a replay buffer with slowly tracking target
//! networks (Lillicrap et al., 2016).
//!
//! - actor: FC(300)–ReLU–FC(300)–ReLU–FC(1)–sigmoid;
//! - critic: FC(state) + FC(action) – ReLU – FC(300) – ReLU – FC(1);
//! - Adam (actor lr 1e-4, critic lr 1e-3), soft target updates τ = 0.01, replay buffer of
//!   128 × #layers transitions, batches of 64 drawn uniformly with replacement, discount 1;
//! - warm-up episodes (20) of uniformly random actions, then exploration by a normal
//!   distribution truncated to [0, 1] around μ(s) with σ = 0.5 · 0.99^(episode − warm-up);
//! - rewards minus a moving-average baseline (HAQ's: b ← b + ½·(mean batch reward − b)).
//!
//! Every random number (initial weights, warm-up actions, exploration, replay sampling) comes
//! from one seeded generator, so a seed fixes the whole sequence of policies.

use crate::error::{Error, Result};
use crate::search::mlp::{relu, relu_grad, sigmoid, Adam, Dense};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// The agent's settings; [`Default`] gives HAQ's (and DESIGN §6's).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DdpgConfig {
    /// Units of each hidden layer of actor and critic (300).
    pub hidden: usize,
    pub lr_actor: f32,
    pub lr_critic: f32,
    /// Target-network tracking rate τ ∈ (0, 1].
    pub tau: f32,
    /// Replay capacity per layer (capacity = this × #layers; 128).
    pub replay_per_layer: usize,
    /// Transitions per update (64).
    pub batch: usize,
    /// Discount γ ∈ [0, 1] (1: the episode's reward counts fully at every step).
    pub discount: f32,
    /// Episodes of uniformly random actions before the actor acts and learns (20).
    pub warmup: usize,
    /// σ of the exploration noise at the first episode after warm-up (0.5).
    pub initial_sigma: f64,
    /// Per-episode decay of σ (0.99).
    pub sigma_decay: f64,
    /// Weight of a new batch mean in the reward baseline (0.5).
    pub baseline_alpha: f64,
}

impl Default for DdpgConfig {
    fn default() -> Self {
        Self {
            hidden: 300,
            lr_actor: 1e-4,
            lr_critic: 1e-3,
            tau: 0.01,
            replay_per_layer: 128,
            batch: 64,
            discount: 1.0,
            warmup: 20,
            initial_sigma: 0.5,
            sigma_decay: 0.99,
            baseline_alpha: 0.5,
        }
    }
}

impl DdpgConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Invalid(format!("DDPG settings: {what}")));
        if self.hidden == 0 || self.hidden > 4096 {
            return bad("hidden units must be in 1..=4096");
        }
        let positive = |v: f32| v > 0.0 && v.is_finite();
        if !positive(self.lr_actor) || !positive(self.lr_critic) {
            return bad("learning rates must be positive");
        }
        if !(self.tau > 0.0 && self.tau <= 1.0) {
            return bad("τ must be in (0, 1]");
        }
        if self.replay_per_layer == 0 || self.batch == 0 {
            return bad("replay size and batch must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.discount) {
            return bad("the discount must be in [0, 1]");
        }
        let sigma_ok = self.initial_sigma > 0.0 && self.initial_sigma.is_finite();
        let decay_ok = self.sigma_decay > 0.0 && self.sigma_decay <= 1.0;
        if !sigma_ok || !decay_ok {
            return bad("exploration σ must be positive and its decay in (0, 1]");
        }
        if !(self.baseline_alpha > 0.0 && self.baseline_alpha <= 1.0) {
            return bad("the baseline weight must be in (0, 1]");
        }
        Ok(())
    }
}

/// One step of an episode: in `state` the agent chose `action`; the episode earned `reward`.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub state: Vec<f32>,
    pub action: f32,
    pub reward: f32,
    pub next_state: Vec<f32>,
    /// The last step of its episode (no value follows).
    pub done: bool,
}

/// μ(s): FC–ReLU–FC–ReLU–FC–sigmoid.
#[derive(Clone, Debug)]
struct Actor {
    l1: Dense,
    l2: Dense,
    l3: Dense,
}

/// What the actor's backward pass needs from its forward pass.
struct ActorPass {
    x: Vec<f32>,
    h1: Vec<f32>,
    h2: Vec<f32>,
    out: Vec<f32>,
}

/// HAQ initialises the output layers in ±3·10⁻³ so that first actions sit near ½ and first
/// values near 0.
const OUTPUT_INIT: f32 = 3e-3;

impl Actor {
    fn new(states: usize, hidden: usize, rng: &mut StdRng) -> Self {
        Self {
            l1: Dense::fan_in(states, hidden, rng),
            l2: Dense::fan_in(hidden, hidden, rng),
            l3: Dense::new(hidden, 1, OUTPUT_INIT, rng),
        }
    }

    fn forward(&self, x: &[f32], batch: usize) -> ActorPass {
        let mut h1 = self.l1.forward(x, batch);
        relu(&mut h1);
        let mut h2 = self.l2.forward(&h1, batch);
        relu(&mut h2);
        let out = self
            .l3
            .forward(&h2, batch)
            .into_iter()
            .map(sigmoid)
            .collect();
        ActorPass {
            x: x.to_vec(),
            h1,
            h2,
            out,
        }
    }

    /// Accumulates the parameter gradients for dL/dμ = `d_out`.
    fn backward(&mut self, pass: &ActorPass, d_out: &[f32], batch: usize) {
        let dz: Vec<f32> = d_out
            .iter()
            .zip(&pass.out)
            .map(|(&d, &y)| d * y * (1.0 - y))
            .collect();
        self.l3.accumulate(&pass.h2, &dz, batch);
        let mut d2 = self.l3.input_grad(&dz, batch);
        relu_grad(&mut d2, &pass.h2);
        self.l2.accumulate(&pass.h1, &d2, batch);
        let mut d1 = self.l2.input_grad(&d2, batch);
        relu_grad(&mut d1, &pass.h1);
        self.l1.accumulate(&pass.x, &d1, batch);
    }

    fn layers_mut(&mut self) -> [&mut Dense; 3] {
        [&mut self.l1, &mut self.l2, &mut self.l3]
    }

    fn soft_update(&mut self, source: &Actor, tau: f32) {
        self.l1.soft_update(&source.l1, tau);
        self.l2.soft_update(&source.l2, tau);
        self.l3.soft_update(&source.l3, tau);
    }
}

/// Q(s, a): ReLU(FC(s) + FC(a)) – FC – ReLU – FC.
#[derive(Clone, Debug)]
struct Critic {
    l1s: Dense,
    l1a: Dense,
    l2: Dense,
    l3: Dense,
}

struct CriticPass {
    s: Vec<f32>,
    a: Vec<f32>,
    h1: Vec<f32>,
    h2: Vec<f32>,
    q: Vec<f32>,
}

impl Critic {
    fn new(states: usize, hidden: usize, rng: &mut StdRng) -> Self {
        Self {
            l1s: Dense::fan_in(states, hidden, rng),
            l1a: Dense::fan_in(1, hidden, rng),
            l2: Dense::fan_in(hidden, hidden, rng),
            l3: Dense::new(hidden, 1, OUTPUT_INIT, rng),
        }
    }

    fn forward(&self, s: &[f32], a: &[f32], batch: usize) -> CriticPass {
        let mut h1 = self.l1s.forward(s, batch);
        for (h, v) in h1.iter_mut().zip(self.l1a.forward(a, batch)) {
            *h += v;
        }
        relu(&mut h1);
        let mut h2 = self.l2.forward(&h1, batch);
        relu(&mut h2);
        let q = self.l3.forward(&h2, batch);
        CriticPass {
            s: s.to_vec(),
            a: a.to_vec(),
            h1,
            h2,
            q,
        }
    }

    /// Backward pass for dL/dQ = `dq`: accumulates the parameter gradients if `learn`, and
    /// returns dL/da.
    fn backward(&mut self, pass: &CriticPass, dq: &[f32], batch: usize, learn: bool) -> Vec<f32> {
        if learn {
            self.l3.accumulate(&pass.h2, dq, batch);
        }
        let mut d2 = self.l3.input_grad(dq, batch);
        relu_grad(&mut d2, &pass.h2);
        if learn {
            self.l2.accumulate(&pass.h1, &d2, batch);
        }
        let mut d1 = self.l2.input_grad(&d2, batch);
        relu_grad(&mut d1, &pass.h1);
        if learn {
            self.l1s.accumulate(&pass.s, &d1, batch);
            self.l1a.accumulate(&pass.a, &d1, batch);
        }
        self.l1a.input_grad(&d1, batch)
    }

    fn layers_mut(&mut self) -> [&mut Dense; 4] {
        [&mut self.l1s, &mut self.l1a, &mut self.l2, &mut self.l3]
    }

    fn soft_update(&mut self, source: &Critic, tau: f32) {
        self.l1s.soft_update(&source.l1s, tau);
        self.l1a.soft_update(&source.l1a, tau);
        self.l2.soft_update(&source.l2, tau);
        self.l3.soft_update(&source.l3, tau);
    }
}

/// The DDPG agent: networks, replay buffer, reward baseline and its random generator.
pub struct Ddpg {
    config: DdpgConfig,
    states: usize,
    actor: Actor,
    actor_target: Actor,
    critic: Critic,
    critic_target: Critic,
    replay: Vec<Transition>,
    capacity: usize,
    /// Where the next transition goes once the buffer is full (oldest first).
    next_slot: usize,
    baseline: Option<f64>,
    updates: i32,
    rng: StdRng,
}

impl Ddpg {
    /// An agent for states of `states` features over episodes of `layers` steps, its weights
    /// and every later random choice drawn from `seed`.
    pub fn new(states: usize, layers: usize, config: DdpgConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        if states == 0 || layers == 0 {
            return Err(Error::Invalid(
                "the agent needs at least one state feature and one layer".into(),
            ));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let actor = Actor::new(states, config.hidden, &mut rng);
        let critic = Critic::new(states, config.hidden, &mut rng);
        Ok(Self {
            config,
            states,
            actor_target: actor.clone(),
            actor,
            critic_target: critic.clone(),
            critic,
            replay: Vec::new(),
            capacity: config.replay_per_layer * layers,
            next_slot: 0,
            baseline: None,
            updates: 0,
            rng,
        })
    }

    pub fn config(&self) -> &DdpgConfig {
        &self.config
    }

    /// The actor's action μ(s) ∈ [0, 1], without exploration.
    pub fn policy(&self, state: &[f32]) -> Result<f32> {
        self.check_state(state)?;
        Ok(self.actor.forward(state, 1).out[0])
    }

    /// σ of the exploration noise at `episode` (0-based): HAQ's 0.5 · 0.99^(episode − warm-up).
    pub fn exploration_sigma(&self, episode: usize) -> f64 {
        let after = episode.saturating_sub(self.config.warmup);
        self.config.initial_sigma
            * self
                .config
                .sigma_decay
                .powi(after.min(i32::MAX as usize) as i32)
    }

    /// The action taken in `state` at `episode` (0-based): uniform on [0, 1] during warm-up,
    /// afterwards μ(s) plus truncated normal noise, always in [0, 1].
    pub fn act(&mut self, state: &[f32], episode: usize) -> Result<f32> {
        if episode < self.config.warmup {
            self.check_state(state)?;
            return Ok(self.rng.random::<f32>());
        }
        let mean = self.policy(state)? as f64;
        let sigma = self.exploration_sigma(episode);
        Ok(truncated_normal(&mut self.rng, mean, sigma) as f32)
    }

    /// Stores a transition, replacing the oldest once the buffer is full.
    pub fn remember(&mut self, transition: Transition) -> Result<()> {
        self.check_state(&transition.state)?;
        self.check_state(&transition.next_state)?;
        if !transition.reward.is_finite() || !(0.0..=1.0).contains(&transition.action) {
            return Err(Error::Invalid(format!(
                "a transition needs a finite reward and an action in [0, 1], got {} and {}",
                transition.reward, transition.action
            )));
        }
        if self.replay.len() < self.capacity {
            self.replay.push(transition);
        } else {
            self.replay[self.next_slot] = transition;
            self.next_slot = (self.next_slot + 1) % self.capacity;
        }
        Ok(())
    }

    pub fn replay_len(&self) -> usize {
        self.replay.len()
    }

    /// One DDPG update from a batch drawn from the replay buffer (nothing if it is empty):
    /// the critic regresses Q(s, a) on r − baseline + γ·(1 − done)·Q'(s', μ'(s')), the actor
    /// ascends Q(s, μ(s)), the targets track both by τ.
    pub fn update(&mut self) {
        if self.replay.is_empty() {
            return;
        }
        let batch = self.config.batch;
        let picks: Vec<usize> = (0..batch)
            .map(|_| self.rng.random_range(0..self.replay.len()))
            .collect();
        let (mut s, mut s2, mut a, mut r, mut not_done) = (
            Vec::with_capacity(batch * self.states),
            Vec::with_capacity(batch * self.states),
            Vec::with_capacity(batch),
            Vec::with_capacity(batch),
            Vec::with_capacity(batch),
        );
        for &k in &picks {
            let t = &self.replay[k];
            s.extend_from_slice(&t.state);
            s2.extend_from_slice(&t.next_state);
            a.push(t.action);
            r.push(t.reward as f64);
            not_done.push(if t.done { 0.0f32 } else { 1.0 });
        }

        // HAQ's baseline: a moving average of the sampled batches' mean reward
        let mean = r.iter().sum::<f64>() / batch as f64;
        let baseline = match self.baseline {
            None => mean,
            Some(b) => b + self.config.baseline_alpha * (mean - b),
        };
        self.baseline = Some(baseline);

        let next_actions = self.actor_target.forward(&s2, batch).out;
        let next_q = self.critic_target.forward(&s2, &next_actions, batch).q;
        let target: Vec<f32> = (0..batch)
            .map(|k| (r[k] - baseline) as f32 + self.config.discount * not_done[k] * next_q[k])
            .collect();

        self.updates += 1;
        let t = self.updates;

        self.fit_critic(&s, &a, &target, t);
        self.ascend_actor(&s, t);
        self.actor_target.soft_update(&self.actor, self.config.tau);
        self.critic_target
            .soft_update(&self.critic, self.config.tau);
    }

    /// One Adam step of the critic on the mean squared error to `target`.
    fn fit_critic(&mut self, s: &[f32], a: &[f32], target: &[f32], t: i32) {
        let batch = a.len();
        let pass = self.critic.forward(s, a, batch);
        let dq: Vec<f32> = pass
            .q
            .iter()
            .zip(target)
            .map(|(&q, &y)| 2.0 * (q - y) / batch as f32)
            .collect();
        for l in self.critic.layers_mut() {
            l.zero_grad();
        }
        self.critic.backward(&pass, &dq, batch, true);
        let adam = Adam::new(self.config.lr_critic);
        for l in self.critic.layers_mut() {
            l.adam_step(&adam, t);
        }
    }

    /// One Adam step of the actor on −mean Q(s, μ(s)), through the critic (left unchanged).
    fn ascend_actor(&mut self, s: &[f32], t: i32) {
        let batch = s.len() / self.states;
        let actor_pass = self.actor.forward(s, batch);
        let critic_pass = self.critic.forward(s, &actor_pass.out, batch);
        let dq = vec![-1.0 / batch as f32; batch];
        let da = self.critic.backward(&critic_pass, &dq, batch, false);
        for l in self.actor.layers_mut() {
            l.zero_grad();
        }
        self.actor.backward(&actor_pass, &da, batch);
        let adam = Adam::new(self.config.lr_actor);
        for l in self.actor.layers_mut() {
            l.adam_step(&adam, t);
        }
    }

    fn check_state(&self, state: &[f32]) -> Result<()> {
        if state.len() != self.states || state.iter().any(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!(
                "the agent expects {} finite state features, got {:?}",
                self.states, state
            )));
        }
        Ok(())
    }
}

/// A draw from N(mean, σ²) conditioned on [0, 1], by rejection (acceptance ≥ ~48 % for a
/// mean in [0, 1] and σ ≤ 0.5; after 1,000 misses the mean, clamped, is returned).
fn truncated_normal(rng: &mut StdRng, mean: f64, sigma: f64) -> f64 {
    for _ in 0..1000 {
        let z: f64 = StandardNormal.sample(rng);
        let x = mean + sigma * z;
        if (0.0..=1.0).contains(&x) {
            return x;
        }
    }
    mean.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> DdpgConfig {
        DdpgConfig {
            hidden: 16,
            batch: 8,
            warmup: 2,
            ..DdpgConfig::default()
        }
    }

    #[test]
    fn exploration_sigma_decays_from_warm_up_as_haq() {
        let agent = Ddpg::new(3, 4, DdpgConfig::default(), 0).unwrap();
        assert_eq!(agent.exploration_sigma(0), 0.5);
        assert_eq!(agent.exploration_sigma(20), 0.5);
        assert!((agent.exploration_sigma(21) - 0.495).abs() < 1e-12);
        assert!((agent.exploration_sigma(120) - 0.5 * 0.99f64.powi(100)).abs() < 1e-12);
    }

    #[test]
    fn actions_stay_in_the_unit_interval() {
        let mut agent = Ddpg::new(3, 4, small(), 5).unwrap();
        for episode in 0..50 {
            let a = agent.act(&[0.1, 0.5, 0.9], episode).unwrap();
            assert!((0.0..=1.0).contains(&a), "{a}");
        }
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..1000 {
            let x = truncated_normal(&mut rng, 0.98, 0.5);
            assert!((0.0..=1.0).contains(&x));
        }
    }

    #[test]
    fn replay_keeps_the_newest_transitions() {
        let mut agent = Ddpg::new(
            1,
            1,
            DdpgConfig {
                replay_per_layer: 3,
                ..small()
            },
            0,
        )
        .unwrap();
        for k in 0..5 {
            agent
                .remember(Transition {
                    state: vec![0.0],
                    action: 0.5,
                    reward: k as f32,
                    next_state: vec![0.0],
                    done: true,
                })
                .unwrap();
        }
        let mut kept: Vec<f32> = agent.replay.iter().map(|t| t.reward).collect();
        kept.sort_by(f32::total_cmp);
        assert_eq!(kept, vec![2.0, 3.0, 4.0]);
    }

    /// Q(s, a) = −(a − 0.8)² for a constant state, sampled at uniform actions.
    fn bandit_batch(rng: &mut StdRng) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let a: Vec<f32> = (0..64).map(|_| rng.random::<f32>()).collect();
        let y = a.iter().map(|&a| -(a - 0.8) * (a - 0.8)).collect();
        (vec![0.5; 64], a, y)
    }

    #[test]
    fn the_critic_fits_a_known_value_and_the_actor_climbs_it() {
        let config = DdpgConfig {
            hidden: 32,
            ..DdpgConfig::default()
        };
        let mut agent = Ddpg::new(1, 1, config, 0).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        for t in 1..=3000 {
            let (s, a, y) = bandit_batch(&mut rng);
            agent.fit_critic(&s, &a, &y, t);
        }
        let probe: Vec<f32> = (0..=10).map(|k| k as f32 / 10.0).collect();
        let q = agent.critic.forward(&[0.5; 11], &probe, 11).q;
        for (a, q) in probe.iter().zip(&q) {
            let truth = -(a - 0.8) * (a - 0.8);
            assert!((q - truth).abs() < 0.03, "Q(s, {a}) = {q}, truth {truth}");
        }
        // the actor, started near ½, ascends the fitted critic to its maximum near 0.8
        let start = agent.policy(&[0.5]).unwrap();
        assert!((start - 0.5).abs() < 0.1, "{start}");
        for t in 1..=2000 {
            agent.ascend_actor(&[0.5; 64], t);
        }
        let end = agent.policy(&[0.5]).unwrap();
        assert!((end - 0.8).abs() < 0.05, "μ(s) = {end}");
    }

    #[test]
    fn bad_settings_and_states_are_errors() {
        let bad = DdpgConfig {
            tau: 0.0,
            ..DdpgConfig::default()
        };
        assert!(Ddpg::new(3, 4, bad, 0).is_err());
        assert!(Ddpg::new(0, 4, DdpgConfig::default(), 0).is_err());
        let mut agent = Ddpg::new(3, 4, small(), 0).unwrap();
        assert!(agent.act(&[0.0, 1.0], 0).is_err());
        assert!(agent.act(&[0.0, f32::NAN, 1.0], 0).is_err());
    }
}
