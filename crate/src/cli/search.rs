//! `bitsmooth search`: choose one width per quantizable layer under a BOPs budget (DESIGN §7)
//! and print the policy, its cost, its validation reward and the search time.

use crate::checkpoint::{self, Loaded};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::search::reward::{IrsAcr, IrsAcrSettings};
use crate::search::rl::RlSettings;
use crate::search::validation::ValidationSet;
use crate::search::{arq, Budget, Evaluated, SearchProgress, SearchResult, SearchSpace};
use crate::smoothing::Outcome;
use clap::ValueEnum;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// DDPG agent rewarded by the IRS-certified ACR on the validation images (ARQ).
    Arq,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Arq => arq::METHOD,
        }
    }
}

/// Options of `bitsmooth search`.
#[derive(clap::Args, Clone, Debug)]
pub struct SearchArgs {
    /// An int8 multi-bit model (its trained widths are the candidates).
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, value_enum, default_value_t = Method::Arq)]
    pub method: Method,
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
    /// Noise level σ (default: the model's).
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
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))
}

fn load_model(path: &Path) -> Result<Loaded> {
    checkpoint::load(&read(path)?).map_err(|e| Error::Model(format!("{}: {e}", path.display())))
}

fn load_training_set(path: &Path) -> Result<Dataset> {
    let bytes =
        read(path).map_err(|e| Error::Io(format!("{e} (run `bitsmooth prepare-data` first)")))?;
    Dataset::from_bytes(&bytes).map_err(|e| Error::Data(format!("{}: {e}", path.display())))
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

pub fn run(args: &SearchArgs) -> Result<()> {
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
    settings.validate()?;

    let data_path = args
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("data/{}-train.bsds", meta.dataset)));
    let train = load_training_set(&data_path)?;
    let validation = ValidationSet::draw(&train, args.val_size, args.seed)?;
    let log = |line: String| {
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    log(format!(
        "{}: {} layers, widths {:?}, budget {} BOPs ({:.4} of the {}-bit {}), {} validation images",
        args.method.name(),
        space.num_layers(),
        space.bits,
        budget.bops,
        budget.bops as f64 / space.max_bops()? as f64,
        space.max_bits(),
        space.max_bops()?,
        validation.len()
    ));

    let started = Instant::now();
    let (result, reward_name, reference_acr, reference_seconds) = match args.method {
        Method::Arq => {
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
            let Outcome::Completed(mut reward) = reward else {
                return Err(Error::Invalid(
                    "the reference certification was cancelled".into(),
                ));
            };
            let reference_seconds = started.elapsed().as_secs_f64();
            log(format!(
                "reference (stored model, w8a8): ACR {:.4} in {reference_seconds:.1} s",
                reward.reference_acr()
            ));
            let result = arq::search(&space, budget, &mut reward, &settings, &mut |p| {
                report(&log, p);
                true
            })?;
            (
                result,
                "irs-acr",
                Some(reward.reference_acr()),
                Some(reference_seconds),
            )
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if let Some(path) = &args.trace {
        write_trace(path, &result.trace)?;
        log(format!("wrote {}", path.display()));
    }
    print_result(
        args,
        &space,
        budget,
        &result,
        reward_name,
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
    reference_seconds: Option<f64>,
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
