//! `bitsmooth search`: choose one width per quantizable layer under a BOPs budget (DESIGN §7)
//! by any of the methods of `search`, and print the policy, its cost, its validation reward
//! and the search time.

use super::{load_dataset, load_model, read, write};
use crate::checkpoint::Loaded;
use crate::error::{Error, Result};
use crate::search::accuracy::{ValidationAccuracy, ValidationConfig};
use crate::search::exhaustive::Exhaustive;
use crate::search::hessian::{self, HessianConfig};
use crate::search::ilp::IlpTable;
use crate::search::reward::{IrsAcr, IrsAcrSettings, Scorer};
use crate::search::rl::RlSettings;
use crate::search::validation::ValidationSet;
use crate::search::{
    arq, evaluate, haq, random, uniform, Budget, Evaluated, SearchProgress, SearchResult,
    SearchSpace,
};
use crate::smoothing::Outcome;
use clap::ValueEnum;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// DDPG agent rewarded by the IRS-certified ACR on the validation images (ARQ).
    Arq,
    /// The same agent rewarded by clean validation accuracy (HAQ).
    Haq,
    /// HAWQ-V3's ILP: minimise Σ trace·‖ΔW‖² under the budget (needs Hessian traces).
    Hawq,
    /// Double Rounding's ILP: maximise Σ trace/#weights · bits under the budget.
    Ilp,
    /// The highest uniform width within the budget.
    Uniform,
    /// Random policies (as many as --episodes) pushed under the budget by the wall.
    Random,
    /// Every policy of the space evaluated; the exact optimum under the budget.
    Exhaustive,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Arq => arq::METHOD,
            Method::Haq => haq::METHOD,
            Method::Hawq => "hawq",
            Method::Ilp => "ilp",
            Method::Uniform => "uniform",
            Method::Random => "random",
            Method::Exhaustive => "exhaustive",
        }
    }
}

/// What scores a policy on the validation images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RewardName {
    /// ACR of the smoothed quantized classifier by IRS (ARQ's reward).
    Acr,
    /// Clean accuracy (HAQ's reward).
    Accuracy,
}

/// Options of `bitsmooth search`.
#[derive(clap::Args, Clone, Debug)]
pub struct SearchArgs {
    /// An int8 multi-bit model (its trained widths are the candidates).
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, value_enum, default_value_t = Method::Arq)]
    pub method: Method,
    /// The validation reward: ARQ always uses `acr`, HAQ `accuracy`; the other methods use it
    /// to search (random, exhaustive) or to score their choice (uniform, ILPs). Default `acr`.
    #[arg(long, value_enum)]
    pub reward: Option<RewardName>,
    /// Budget in bit operations per image: a fraction of the all-8-bit BOPs if ≤ 1
    /// (e.g. 0.25 = the cost of uniform 4 bits), else an absolute figure.
    #[arg(long)]
    pub bops: f64,
    /// Episodes of the agent (one policy evaluated each), warm-up included.
    #[arg(long, default_value_t = 100)]
    pub episodes: usize,
    /// Episodes of random actions before the agent acts and learns.
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    /// Seed of the agent, the validation subset and the smoothing noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Validation images, drawn by the seed from the training set (never the test set).
    #[arg(long, default_value_t = 100)]
    pub val_size: usize,
    /// Training images to draw from (default: data/{dataset}-train.bsds).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Noise level σ of ARQ's certification and of --noisy (default: the model's).
    #[arg(long)]
    pub sigma: Option<f32>,
    /// Samples n per image of the cached full certification of the stored model (ARQ).
    #[arg(long, default_value_t = 1000)]
    pub n: u64,
    /// Selection samples n0 (reference certification, and IRS's recertifying path).
    #[arg(long, default_value_t = 100)]
    pub n0: u64,
    /// Replayed samples n_χ per image and policy of IRS (ARQ).
    #[arg(long, default_value_t = 100)]
    pub n_chi: u64,
    /// α of the reference certification and α_χ of IRS.
    #[arg(long, default_value_t = 0.001)]
    pub alpha: f64,
    /// With the accuracy reward: classify each validation image under one fixed Gaussian
    /// noise draw at σ (the inputs the smoothed classifier sees) instead of clean.
    #[arg(long)]
    pub noisy: bool,
    /// Pin the first and last layer at the highest width (as HAQ and ARQ do).
    #[arg(long)]
    pub pin_first_last: bool,
    /// Write every evaluated policy: JSON lines (one `Evaluated` object each) if the file
    /// name ends in `.jsonl`, else TSV with columns `episode widths bops size_bytes reward`
    /// (widths comma-separated, forward order).
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Print the result as one JSON object (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Threads of the fast executor (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// hawq/ilp on a model without stored Hessian traces: training images of the Hutchinson
    /// estimate computed here (drawn by the seed).
    #[arg(long, default_value_t = 200)]
    pub hessian_images: usize,
    /// hawq/ilp without stored traces: Rademacher vectors per layer (≥ 2).
    #[arg(long, default_value_t = 8)]
    pub hessian_samples: usize,
    /// hawq/ilp: write the traces computed here into the model file's metadata, so later
    /// searches reuse them.
    #[arg(long)]
    pub store_traces: bool,
}

/// `--bops F`: a fraction of the all-highest-width BOPs if F ≤ 1, else absolute BOPs.
pub fn parse_budget(space: &SearchSpace, bops: f64) -> Result<Budget> {
    if !bops.is_finite() || bops <= 0.0 {
        return Err(Error::Invalid(format!(
            "--bops must be a positive fraction (≤ 1) of the 8-bit BOPs or an absolute figure, got {bops}"
        )));
    }
    if bops <= 1.0 {
        Budget::fraction(space, bops)
    } else {
        Budget::new(space, bops.floor() as u64)
    }
}

fn write_trace(path: &Path, trace: &[Evaluated]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::File::create(path)
        .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))?;
    let mut out = std::io::BufWriter::new(file);
    let jsonl = path.extension().is_some_and(|e| e == "jsonl");
    if !jsonl {
        writeln!(out, "episode\twidths\tbops\tsize_bytes\treward")?;
    }
    for e in trace {
        if jsonl {
            let line = serde_json::to_string(e).map_err(|e| Error::Io(e.to_string()))?;
            writeln!(out, "{line}")?;
        } else {
            let widths: Vec<String> = e.widths.iter().map(|b| b.to_string()).collect();
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}",
                e.episode,
                widths.join(","),
                e.bops,
                e.size_bytes,
                e.reward
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The reward `method` searches with: ARQ's and HAQ's are fixed, the others take `--reward`.
fn reward_kind(args: &SearchArgs) -> Result<RewardName> {
    let fixed = match args.method {
        Method::Arq => Some(RewardName::Acr),
        Method::Haq => Some(RewardName::Accuracy),
        _ => None,
    };
    match (fixed, args.reward) {
        (Some(f), Some(r)) if f != r => Err(Error::Invalid(format!(
            "--method {} is defined by its reward ({f:?}); --reward {r:?} belongs to another method",
            args.method.name()
        ))),
        (Some(f), _) => Ok(f),
        (None, r) => Ok(r.unwrap_or(RewardName::Acr)),
    }
}

/// Hessian traces per layer: from the model's metadata, else estimated now on `train`
/// (and stored in the model file with `--store-traces`).
fn traces(
    args: &SearchArgs,
    loaded: &Loaded,
    train: &crate::data::Dataset,
    log: &dyn Fn(String),
) -> Result<Vec<f64>> {
    if let Some(t) = &loaded.model.meta.hessian_traces {
        return Ok(t.clone());
    }
    let cfg = HessianConfig {
        images: args.hessian_images,
        samples: args.hessian_samples,
        seed: args.seed,
        ..HessianConfig::default()
    };
    log(format!(
        "{} has no Hessian traces: estimating them (Hutchinson, {} images, {} vectors per layer)",
        args.model.display(),
        cfg.images,
        cfg.samples
    ));
    let t0 = Instant::now();
    let estimates = hessian::layer_traces(&loaded.model, train, &cfg, &mut |l| {
        log(format!("Hessian trace of layer {l}"))
    })?;
    let traces: Vec<f64> = estimates.iter().map(|e| e.trace).collect();
    log(format!(
        "traces {traces:?} in {:.1} s",
        t0.elapsed().as_secs_f64()
    ));
    if args.store_traces {
        let bytes = hessian::store_traces(&read(&args.model)?, &traces)?;
        write(&args.model, &bytes)?;
        log(format!("stored the traces in {}", args.model.display()));
    }
    Ok(traces)
}

pub fn run(args: SearchArgs) -> Result<()> {
    let args = &args;
    if args.threads.is_some_and(|t| !(1..=256).contains(&t)) {
        return Err(Error::Invalid("--threads must be between 1 and 256".into()));
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let loaded = load_model(&args.model)?;
    let meta = loaded.model.meta.clone();
    if loaded.switchable.is_none() || meta.bits.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: a search needs an int8 multi-bit model (its trained widths are the candidates); \
             this one is a `{}` model",
            args.model.display(),
            meta.kind
        )));
    }
    let space = SearchSpace::new(loaded.model.layers.clone(), &meta.bits, args.pin_first_last)?;
    let budget = parse_budget(&space, args.bops)?;
    let mut settings = RlSettings::new(args.episodes, args.seed);
    settings.ddpg.warmup = args.warmup;
    if matches!(args.method, Method::Arq | Method::Haq | Method::Random) {
        settings.validate()?;
    }
    let kind = reward_kind(args)?;
    if args.noisy && kind != RewardName::Accuracy {
        return Err(Error::Invalid(
            "--noisy applies to the accuracy reward (haq, or --reward accuracy)".into(),
        ));
    }

    let data_path = args
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("data/{}-train.bsds", meta.dataset)));
    let train = load_dataset(&data_path)?;
    let log = |line: String| {
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    log(format!(
        "{} ({kind:?} reward): {} layers, widths {:?}, budget {} BOPs ({:.4} of the {}-bit {}), {} validation images",
        args.method.name(),
        space.num_layers(),
        space.bits,
        budget.bops,
        budget.bops as f64 / space.max_bops()? as f64,
        space.max_bits(),
        space.max_bops()?,
        args.val_size
    ));

    let started = Instant::now();
    // the ILPs choose from the model's weights and traces alone; the reward only scores
    let ilp_choice = match args.method {
        Method::Hawq | Method::Ilp => {
            let traces = traces(args, &loaded, &train, &log)?;
            let switchable = loaded.switchable.as_ref().expect("checked above");
            let table = if args.method == Method::Hawq {
                IlpTable::hawq_v3(&space, &traces, &switchable.masters)?
            } else {
                IlpTable::double_rounding(&space, &traces)?
            };
            let solution = table.solve(budget.bops)?;
            log(format!(
                "ILP optimum {:?} (objective {:.6e})",
                solution.widths, solution.objective
            ));
            Some(solution.widths)
        }
        _ => None,
    };

    let reference_start = Instant::now();
    let (mut scorer, reference_acr) = match kind {
        RewardName::Acr => {
            let validation = ValidationSet::draw(&train, args.val_size, args.seed)?;
            let mut irs = IrsAcrSettings::new(
                args.sigma.unwrap_or(meta.sigma),
                args.n,
                args.n_chi,
                args.seed,
            );
            irs.certify.n0 = args.n0;
            irs.certify.alpha = args.alpha;
            irs.irs.n0 = args.n0;
            irs.irs.alpha_chi = args.alpha;
            irs.threads = threads;
            let reward = IrsAcr::new(loaded, validation, irs, &mut |done, total| {
                if done % 20 == 0 || done == total {
                    log(format!("reference certification: {done}/{total} images"));
                }
                true
            })?;
            let Outcome::Completed(reward) = reward else {
                return Err(Error::Invalid(
                    "the reference certification was cancelled".into(),
                ));
            };
            let acr = reward.reference_acr();
            log(format!(
                "reference (stored model, w8a8): ACR {acr:.4} in {:.1} s",
                reference_start.elapsed().as_secs_f64()
            ));
            (Scorer::Acr(Box::new(reward)), Some(acr))
        }
        RewardName::Accuracy => {
            let cfg = ValidationConfig {
                images: args.val_size,
                seed: args.seed,
                noise_sigma: args.noisy.then(|| args.sigma.unwrap_or(meta.sigma)),
                threads,
            };
            let reward = ValidationAccuracy::new(loaded, &train, &cfg)?;
            (Scorer::Accuracy(Box::new(reward)), None)
        }
    };
    let reference_seconds = reference_start.elapsed().as_secs_f64();

    let mut progress = |p: &SearchProgress| {
        let every = (p.episodes / 100).max(1);
        if p.episodes <= 1000 || (p.episode + 1).is_multiple_of(every) {
            report(&log, p);
        }
        true
    };
    let result = match args.method {
        Method::Arq => {
            let Scorer::Acr(reward) = &mut scorer else {
                return Err(Error::Invalid("ARQ needs the ACR reward".into()));
            };
            arq::search(&space, budget, reward.as_mut(), &settings, &mut progress)?
        }
        Method::Haq => haq::search(&space, budget, scorer.reward(), &settings, &mut progress)?,
        Method::Random => random::random_search(
            &space,
            &budget,
            scorer.reward(),
            args.episodes,
            args.seed,
            &mut progress,
        )?,
        Method::Uniform => {
            uniform::uniform_search(&space, &budget, scorer.reward(), &mut progress)?
        }
        Method::Hawq | Method::Ilp => {
            let widths = ilp_choice.expect("solved above");
            let best = evaluate(&space, &widths, scorer.reward(), 0)?;
            SearchResult {
                method: args.method.name().into(),
                trace: vec![best.clone()],
                best,
                cancelled: false,
            }
        }
        Method::Exhaustive => {
            let table = Exhaustive::run(&space, scorer.reward(), &mut progress)?;
            let best = table.optimum(budget.bops)?;
            SearchResult {
                method: args.method.name().into(),
                best,
                trace: table.table,
                cancelled: !table.complete,
            }
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if let Some(path) = &args.trace {
        write_trace(path, &result.trace)?;
        log(format!("wrote {}", path.display()));
    }
    let reward_name = scorer.reward().name().to_string();
    print_result(
        args,
        &space,
        budget,
        &result,
        &reward_name,
        reference_acr,
        reference_seconds,
        seconds,
    )
}

fn report(log: &dyn Fn(String), p: &SearchProgress) {
    log(format!(
        "episode {}/{}: reward {:.4}, best {:.4}",
        p.episode + 1,
        p.episodes,
        p.reward,
        p.best_reward
    ));
}

#[allow(clippy::too_many_arguments)]
fn print_result(
    args: &SearchArgs,
    space: &SearchSpace,
    budget: Budget,
    result: &SearchResult,
    reward_name: &str,
    reference_acr: Option<f64>,
    reference_seconds: f64,
    seconds: f64,
) -> Result<()> {
    let best = &result.best;
    let distinct: std::collections::HashSet<&Vec<u8>> =
        result.trace.iter().map(|e| &e.widths).collect();
    let max_bops = space.max_bops()?;
    let summary = serde_json::json!({
        "method": result.method,
        "reward": reward_name,
        "policy": best.widths,
        "bops": best.bops,
        "bopsFraction": best.bops as f64 / max_bops as f64,
        "budget": budget.bops,
        "budgetFraction": budget.bops as f64 / max_bops as f64,
        "sizeBytes": best.size_bytes,
        "validationReward": best.reward,
        "referenceAcr": reference_acr,
        "episode": best.episode,
        "episodes": result.trace.len(),
        "evaluated": distinct.len(),
        "valSize": args.val_size,
        "seed": args.seed,
        "referenceSeconds": reference_seconds,
        "searchSeconds": seconds,
        "cancelled": result.cancelled,
    });
    if args.json {
        println!("{summary}");
    } else {
        println!(
            "best policy {:?} (weights and activations per layer): {} BOPs ({:.4} of 8-bit), {} bytes, {} {:.4}, found at episode {}; {:.1} s",
            best.widths,
            best.bops,
            best.bops as f64 / max_bops as f64,
            best.size_bytes,
            reward_name,
            best.reward,
            best.episode + 1,
            seconds
        );
    }
    Ok(())
}
