//! Mixed-precision search from JavaScript: one search (ARQ, HAQ, HAWQ-V3's or Double
//! Rounding's ILP, uniform, random) on the loaded int8 model, scored on validation images
//! drawn (seeded) from the training images loaded with `loadCalibration` — never the test set.
//!
//! A search is one synchronous call: it reports every evaluated policy to a JS callback and is
//! cancelled by terminating its worker (as certification is), so the page keeps what was
//! reported before the cancel.

use super::{js_err, to_js, Engine};
use crate::checkpoint::{self, Loaded};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::quant::Policy;
use crate::search::accuracy::{ValidationAccuracy, ValidationConfig};
use crate::search::hessian::{self, HessianConfig};
use crate::search::ilp::IlpTable;
use crate::search::reward::{IrsAcr, IrsAcrSettings, Scorer};
use crate::search::rl::{self, RlSettings};
use crate::search::validation::ValidationSet;
use crate::search::{
    arq, evaluate, haq, random, uniform, Budget, Evaluated, Reward, SearchProgress, SearchResult,
    SearchSpace,
};
use crate::smoothing::Outcome;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// Most episodes one call may run (a typo must not run for days).
pub const MAX_EPISODES: usize = 10_000;
/// Training images and Rademacher vectors of the Hutchinson estimate made in the browser for
/// a model without stored traces: a rough estimate (~64 CPU-gradients of 64 images) where the
/// CLI uses 1,000 images and 8 vectors.
const BROWSER_HESSIAN_IMAGES: usize = 64;
const BROWSER_HESSIAN_SAMPLES: usize = 2;

/// Settings of one search, as JavaScript passes them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchSettings {
    /// `arq`, `haq`, `hawq`, `ilp`, `uniform` or `random`.
    method: String,
    /// Budget as a fraction in (0, 1] of the all-8-bit BOPs.
    budget: f64,
    /// Episodes (agent) or samples (random), 1..=MAX_EPISODES; ignored by uniform and ILPs.
    episodes: usize,
    /// Episodes of random actions before the agent learns (default: min(20, episodes / 2)).
    warmup: Option<usize>,
    /// Seed of the agent, the validation subset and the smoothing noise.
    seed: u32,
    /// Validation images, 1..=the training images loaded.
    val_size: usize,
    /// `accuracy` or `acr`: what uniform, random and the ILPs score with (ARQ is ACR, HAQ
    /// accuracy). Default `accuracy`.
    reward: Option<String>,
    /// ARQ: samples n of the stored model's certification per validation image.
    #[serde(default = "default_n")]
    n: f64,
    /// ARQ: selection samples n0.
    #[serde(default = "default_n0")]
    n0: f64,
    /// ARQ: replayed samples n_χ per image and policy.
    #[serde(default = "default_n_chi")]
    n_chi: f64,
    /// Pin the first and last layer at 8 bits (as HAQ and ARQ do).
    #[serde(default)]
    pin_first_last: bool,
    /// Accuracy reward: one fixed N(0, σ²) draw per image at this σ (None: clean images).
    noise_sigma: Option<f32>,
}

fn default_n() -> f64 {
    500.0
}
fn default_n0() -> f64 {
    100.0
}
fn default_n_chi() -> f64 {
    50.0
}

/// What JS receives after each evaluated policy (`phase: "search"`), after each image of
/// ARQ's reference certification and each layer of a Hessian estimate.
#[derive(Serialize)]
#[serde(rename_all = "camelCase", tag = "phase")]
enum Report<'a> {
    Reference {
        done: usize,
        total: usize,
    },
    Hessian {
        done: usize,
        total: usize,
    },
    Search {
        #[serde(flatten)]
        progress: &'a SearchProgress,
        evaluated: Option<&'a Evaluated>,
    },
}

/// The policy space's costs, from which the page turns a budget slider into BOPs and the
/// highest affordable uniform width without a round trip: `{ bits, maxBops, minBops,
/// uniformBops }`, `uniformBops[k]` the BOPs with every unpinned layer at `bits[k]`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpaceInfo {
    bits: Vec<u8>,
    max_bops: u64,
    min_bops: u64,
    uniform_bops: Vec<u64>,
    layers: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SearchOutcome {
    #[serde(flatten)]
    result: SearchResult,
    reward_name: String,
    budget: u64,
    max_bops: u64,
    /// The stored model's ACR on the validation images by full certification (ARQ).
    reference_acr: Option<f64>,
    /// `stored` or `estimated` (hawq/ilp), else absent.
    hessian: Option<&'static str>,
    val_size: usize,
    seed: u32,
    seconds: f64,
}

/// The last policy scored (widths) and its reward.
type LastScored = Rc<RefCell<Option<(Vec<u8>, f64)>>>;

/// A reward that remembers the last policy it scored, so that progress can report it.
struct Recorded<'a> {
    inner: &'a mut dyn Reward,
    last: LastScored,
}

impl Reward for Recorded<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn evaluate(&mut self, policy: &Policy) -> Result<f64> {
        let r = self.inner.evaluate(policy)?;
        *self.last.borrow_mut() = Some((policy.weight_bits.clone(), r));
        Ok(r)
    }
}

/// Calls the JS callback with `report`; a throwing callback is ignored (it must not abort
/// the search).
fn send(callback: &Option<js_sys::Function>, report: &Report) {
    if let Some(f) = callback {
        if let Ok(v) = to_js(report) {
            let _ = f.call1(&JsValue::NULL, &v);
        }
    }
}

fn whole(name: &str, value: f64) -> std::result::Result<u64, JsError> {
    if !(value.is_finite() && value >= 1.0 && value.fract() == 0.0 && value <= 1.0e7) {
        return Err(js_err(Error::Invalid(format!(
            "{name} must be a whole number from 1 to 10,000,000, got {value}"
        ))));
    }
    Ok(value as u64)
}

impl Engine {
    /// The loaded file again with its int8 masters (the search owns its copy of the model).
    fn searchable(&self) -> std::result::Result<Loaded, JsError> {
        if self.model_bytes.is_empty() {
            return Err(js_err("no model loaded: call loadModel first"));
        }
        let loaded = checkpoint::load(&self.model_bytes).map_err(js_err)?;
        if loaded.switchable.is_none() || loaded.model.meta.bits.is_empty() {
            return Err(js_err(format!(
                "a search needs an int8 multi-bit model (its trained widths are the candidates); this one is a `{}` model",
                loaded.model.meta.kind
            )));
        }
        Ok(loaded)
    }

    fn training(&self) -> std::result::Result<&Dataset, JsError> {
        self.calibration.as_ref().ok_or_else(|| {
            js_err("no training images loaded: call loadCalibration first (a search validates on training images)")
        })
    }
}

#[wasm_bindgen]
impl Engine {
    /// The loaded model's search space and its costs (see [`SpaceInfo`]).
    #[wasm_bindgen(js_name = searchSpace)]
    pub fn search_space(&self, pin_first_last: bool) -> std::result::Result<JsValue, JsError> {
        let m = self.model()?;
        let space =
            SearchSpace::new(m.layers.clone(), &m.meta.bits, pin_first_last).map_err(js_err)?;
        let uniform_bops = space
            .bits
            .iter()
            .map(|&b| space.bops(&space.uniform(b)))
            .collect::<Result<Vec<u64>>>()
            .map_err(js_err)?;
        to_js(&SpaceInfo {
            bits: space.bits.clone(),
            max_bops: space.max_bops().map_err(js_err)?,
            min_bops: space.min_bops().map_err(js_err)?,
            uniform_bops,
            layers: space.num_layers(),
        })
    }

    /// Runs one mixed-precision search (see [`SearchSettings`]) and returns
    /// `{ method, best, trace, cancelled, rewardName, budget, maxBops, referenceAcr, hessian,
    /// valSize, seed, seconds }`; `best` and every trace entry are
    /// `{ widths, bops, sizeBytes, reward, episode }`. `on_progress(report)` gets a
    /// `{ phase: "reference" | "hessian", done, total }` or
    /// `{ phase: "search", episode, episodes, reward, bestReward, evaluated }` object.
    pub fn search(
        &mut self,
        settings: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> std::result::Result<JsValue, JsError> {
        let s: SearchSettings = serde_wasm_bindgen::from_value(settings)
            .map_err(|e| js_err(format!("search settings: {e}")))?;
        let started = js_sys::Date::now();
        let loaded = self.searchable()?;
        let train = self.training()?;
        let meta = loaded.model.meta.clone();
        let space = SearchSpace::new(loaded.model.layers.clone(), &meta.bits, s.pin_first_last)
            .map_err(js_err)?;
        let budget = Budget::fraction(&space, s.budget).map_err(js_err)?;
        let agent = matches!(s.method.as_str(), "arq" | "haq" | "random");
        if agent && !(1..=MAX_EPISODES).contains(&s.episodes) {
            return Err(js_err(format!(
                "episodes must be a whole number from 1 to {MAX_EPISODES}, got {}",
                s.episodes
            )));
        }
        let mut rl_settings = RlSettings::new(s.episodes, s.seed as u64);
        rl_settings.ddpg.warmup = s.warmup.unwrap_or((s.episodes / 2).min(20));
        if agent {
            rl_settings.validate().map_err(js_err)?;
        }
        let acr = match (s.method.as_str(), s.reward.as_deref()) {
            ("arq", None | Some("acr")) => true,
            ("haq", None | Some("accuracy")) => false,
            ("arq" | "haq", Some(r)) => {
                return Err(js_err(format!(
                    "{} is defined by its reward; reward {r:?} belongs to another method",
                    s.method
                )))
            }
            ("hawq" | "ilp" | "uniform" | "random", r) => match r {
                None | Some("accuracy") => false,
                Some("acr") => true,
                Some(other) => {
                    return Err(js_err(format!(
                        "the reward is \"accuracy\" or \"acr\", got {other:?}"
                    )))
                }
            },
            (other, _) => {
                return Err(js_err(format!(
                    "the method is one of arq, haq, hawq, ilp, uniform, random; got {other:?}"
                )))
            }
        };
        if s.val_size == 0 || s.val_size > train.len() {
            return Err(js_err(format!(
                "the validation size must be from 1 to {} (the training images shipped), got {}",
                train.len(),
                s.val_size
            )));
        }
        let seed = s.seed as u64;

        // the ILPs choose from the weights and Hessian traces alone; the reward only scores
        let mut hessian_source = None;
        let ilp_choice = match s.method.as_str() {
            "hawq" | "ilp" => {
                let traces = match &meta.hessian_traces {
                    Some(t) => {
                        hessian_source = Some("stored");
                        t.clone()
                    }
                    None => {
                        hessian_source = Some("estimated");
                        let cfg = HessianConfig {
                            images: BROWSER_HESSIAN_IMAGES.min(train.len()),
                            samples: BROWSER_HESSIAN_SAMPLES,
                            seed,
                            ..HessianConfig::default()
                        };
                        let total = loaded.model.layers.len();
                        hessian::layer_traces(&loaded.model, train, &cfg, &mut |l| {
                            send(&on_progress, &Report::Hessian { done: l + 1, total })
                        })
                        .map_err(js_err)?
                        .iter()
                        .map(|e| e.trace)
                        .collect()
                    }
                };
                let masters = &loaded.switchable.as_ref().expect("checked").masters;
                let table = if s.method == "hawq" {
                    IlpTable::hawq_v3(&space, &traces, masters)
                } else {
                    IlpTable::double_rounding(&space, &traces)
                }
                .map_err(js_err)?;
                Some(table.solve(budget.bops).map_err(js_err)?.widths)
            }
            _ => None,
        };

        let (mut scorer, reference_acr) = if acr {
            let validation = ValidationSet::draw(train, s.val_size, seed).map_err(js_err)?;
            let mut irs =
                IrsAcrSettings::new(meta.sigma, whole("n", s.n)?, whole("nChi", s.n_chi)?, seed);
            let n0 = whole("n0", s.n0)?;
            irs.certify.n0 = n0;
            irs.irs.n0 = n0;
            let total = validation.len();
            let reward = IrsAcr::new(loaded, validation, irs, &mut |done, _| {
                send(&on_progress, &Report::Reference { done, total });
                true
            })
            .map_err(js_err)?;
            let Outcome::Completed(reward) = reward else {
                return Err(js_err("the reference certification was cancelled"));
            };
            let acr = reward.reference_acr();
            (Scorer::Acr(Box::new(reward)), Some(acr))
        } else {
            let cfg = ValidationConfig {
                images: s.val_size,
                seed,
                noise_sigma: s.noise_sigma,
                threads: 1,
            };
            let reward = ValidationAccuracy::new(loaded, train, &cfg).map_err(js_err)?;
            (Scorer::Accuracy(Box::new(reward)), None)
        };

        let last: LastScored = Rc::new(RefCell::new(None));
        let mut reward = Recorded {
            inner: scorer.reward(),
            last: last.clone(),
        };
        let mut progress = |p: &SearchProgress| {
            let evaluated = last.borrow_mut().take().and_then(|(widths, reward)| {
                Some(Evaluated {
                    bops: space.bops(&widths).ok()?,
                    size_bytes: space.size_bytes(&widths).ok()?,
                    widths,
                    reward,
                    episode: p.episode,
                })
            });
            send(
                &on_progress,
                &Report::Search {
                    progress: p,
                    evaluated: evaluated.as_ref(),
                },
            );
            true
        };
        let result = match (s.method.as_str(), ilp_choice) {
            // the same loop as arq::search, through the recording wrapper (the reward is IRS-ACR)
            ("arq", _) => rl::run(
                arq::METHOD,
                &space,
                budget,
                &mut reward,
                &rl_settings,
                &mut progress,
            ),
            ("haq", _) => haq::search(&space, budget, &mut reward, &rl_settings, &mut progress),
            ("random", _) => random::random_search(
                &space,
                &budget,
                &mut reward,
                s.episodes,
                seed,
                &mut progress,
            ),
            ("uniform", _) => uniform::uniform_search(&space, &budget, &mut reward, &mut progress),
            (method, Some(widths)) => evaluate(&space, &widths, &mut reward, 0).map(|best| {
                let r = best.reward;
                *last.borrow_mut() = Some((best.widths.clone(), r));
                progress(&SearchProgress {
                    episode: 0,
                    episodes: 1,
                    reward: r,
                    best_reward: r,
                });
                SearchResult {
                    method: method.into(),
                    trace: vec![best.clone()],
                    best,
                    cancelled: false,
                }
            }),
            (other, None) => Err(Error::Invalid(format!("unknown method {other:?}"))),
        }
        .map_err(js_err)?;
        let reward_name = reward.name().to_string();
        to_js(&SearchOutcome {
            result,
            reward_name,
            budget: budget.bops,
            max_bops: space.max_bops().map_err(js_err)?,
            reference_acr,
            hessian: hessian_source,
            val_size: s.val_size,
            seed: s.seed,
            seconds: (js_sys::Date::now() - started) / 1000.0,
        })
    }
}
