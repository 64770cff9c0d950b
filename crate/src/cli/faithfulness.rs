//! `bitsmooth faithfulness`: how well ARQ's reward (IRS-certified ACR), the ACR certified from
//! scratch with as many samples, and clean accuracy rank policies like the ACR of a full
//! certification does (Spearman's ρ over policies spread across the BOPs range; see
//! `search::faithfulness`). One TSV row per policy, appended as each finishes, so a long run
//! resumes where it stopped.

use super::{load_dataset, load_model_from, read};
use crate::checkpoint;
use crate::error::{Error, Result};
use crate::search::faithfulness::{
    spread_policies, PolicyScores, RankCorrelations, Study, StudySettings,
};
use crate::search::reward::IrsAcrSettings;
use crate::search::SearchSpace;
use crate::smoothing::Outcome;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

const HEADER: &str = "widths\tbops\tirs_acr\tscratch_acr\taccuracy\tfull_acr\tfull_acr_se";

/// Options of `bitsmooth faithfulness`.
#[derive(clap::Args, Clone, Debug)]
pub struct FaithfulnessArgs {
    /// An int8 multi-bit model.
    #[arg(long)]
    pub model: PathBuf,
    /// Policies to score, spread over the BOPs range (the uniform ones first).
    #[arg(long, default_value_t = 50)]
    pub policies: usize,
    /// Validation images, drawn by the seed from the training set (never the test set).
    #[arg(long, default_value_t = 100)]
    pub val_size: usize,
    /// Training images to draw from (default: data/{dataset}-train.bsds).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Seed of the policies, the validation subset and the smoothing noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Noise level σ (default: the model's).
    #[arg(long)]
    pub sigma: Option<f32>,
    /// Samples n of the reference certification of the stored model (as `search`).
    #[arg(long, default_value_t = 1000)]
    pub n: u64,
    /// Selection samples n0 of every certification.
    #[arg(long, default_value_t = 100)]
    pub n0: u64,
    /// IRS's replayed samples n_χ, also the estimation samples of the scratch certification.
    #[arg(long, default_value_t = 100)]
    pub n_chi: u64,
    /// Estimation samples of the full certification every policy is judged by.
    #[arg(long, default_value_t = 10_000)]
    pub n_full: u64,
    /// α of every certification (and α_χ of IRS).
    #[arg(long, default_value_t = 0.001)]
    pub alpha: f64,
    /// Threads of the fast executor (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// TSV of the scores, one row per policy; rows already there are kept, not recomputed.
    #[arg(long)]
    pub out: PathBuf,
    /// Print the rank correlations as one JSON object (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
}

fn parse_row(line: &str) -> Result<PolicyScores> {
    let bad = || Error::Data(format!("malformed row in the scores file: {line:?}"));
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != 7 {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<f64>().map_err(|_| bad());
    Ok(PolicyScores {
        widths: f[0]
            .split(',')
            .map(|b| b.parse::<u8>().map_err(|_| bad()))
            .collect::<Result<_>>()?,
        bops: f[1].parse().map_err(|_| bad())?,
        irs_acr: num(f[2])?,
        scratch_acr: num(f[3])?,
        accuracy: num(f[4])?,
        full_acr: num(f[5])?,
        full_acr_se: num(f[6])?,
    })
}

fn format_row(s: &PolicyScores) -> String {
    let widths: Vec<String> = s.widths.iter().map(|b| b.to_string()).collect();
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        widths.join(","),
        s.bops,
        s.irs_acr,
        s.scratch_acr,
        s.accuracy,
        s.full_acr,
        s.full_acr_se
    )
}

/// The rows of an earlier run of the same study (none if the file does not exist).
fn read_rows(path: &Path) -> Result<Vec<PolicyScores>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = String::from_utf8(read(path)?)
        .map_err(|_| Error::Data(format!("{} is not text", path.display())))?;
    let mut lines = text.lines();
    match lines.next() {
        None => Ok(Vec::new()),
        Some(HEADER) => lines.filter(|l| !l.is_empty()).map(parse_row).collect(),
        Some(other) => Err(Error::Data(format!(
            "{} is not a scores file of `faithfulness` (header {other:?})",
            path.display()
        ))),
    }
}

/// `<out>.json` records what the rows were computed with; a resumed run must match it.
fn check_settings(args: &FaithfulnessArgs, settings: &StudySettings, digest: &str) -> Result<()> {
    let r = &settings.reward;
    let wanted = serde_json::json!({
        "modelDigest": digest,
        "policies": args.policies,
        "valSize": args.val_size,
        "seed": args.seed,
        "sigma": r.certify.sigma,
        "n": r.certify.n,
        "n0": r.certify.n0,
        "nChi": r.irs.n_chi,
        "gamma": r.irs.gamma,
        "nFull": settings.n_full,
        "alpha": r.certify.alpha,
    });
    let mut path = args.out.clone().into_os_string();
    path.push(".json");
    let path = PathBuf::from(path);
    if path.exists() {
        let found: serde_json::Value = serde_json::from_slice(&read(&path)?)
            .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
        if let Some((key, _)) = wanted
            .as_object()
            .expect("an object")
            .iter()
            .find(|(k, v)| found.get(k.as_str()) != Some(v))
        {
            return Err(Error::Invalid(format!(
                "{} was computed with another {key} ({} there, {} now): choose another --out",
                args.out.display(),
                found.get(key.as_str()).unwrap_or(&serde_json::Value::Null),
                wanted[key.as_str()]
            )));
        }
        return Ok(());
    }
    if args.out.exists() {
        return Err(Error::Invalid(format!(
            "{} exists without its settings file {}: choose another --out",
            args.out.display(),
            path.display()
        )));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, format!("{wanted:#}\n"))
        .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))
}

pub fn run(args: FaithfulnessArgs) -> Result<()> {
    if args.threads.is_some_and(|t| !(1..=256).contains(&t)) {
        return Err(Error::Invalid("--threads must be between 1 and 256".into()));
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let log = |line: String| {
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    let bytes = read(&args.model)?;
    let loaded = load_model_from(&args.model, &bytes)?;
    let meta = loaded.model.meta.clone();
    if loaded.switchable.is_none() || meta.bits.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: the study needs an int8 multi-bit model; this one is a `{}` model",
            args.model.display(),
            meta.kind
        )));
    }
    let space = SearchSpace::new(loaded.model.layers.clone(), &meta.bits, false)?;
    let policies = spread_policies(&space, args.policies, args.seed)?;

    let mut reward = IrsAcrSettings::new(
        args.sigma.unwrap_or(meta.sigma),
        args.n,
        args.n_chi,
        args.seed,
    );
    reward.certify.n0 = args.n0;
    reward.certify.alpha = args.alpha;
    reward.irs.n0 = args.n0;
    reward.irs.alpha_chi = args.alpha;
    reward.threads = threads;
    let settings = StudySettings {
        reward,
        n_full: args.n_full,
    };
    settings.validate()?;

    check_settings(&args, &settings, &checkpoint::tensors_digest(&bytes)?)?;
    let mut rows = read_rows(&args.out)?;
    if let Some(stray) = rows.iter().find(|r| !policies.contains(&r.widths)) {
        return Err(Error::Invalid(format!(
            "{} holds policy {:?}, which these settings (--policies {}, --seed {}) do not draw: \
             it belongs to another study",
            args.out.display(),
            stray.widths,
            args.policies,
            args.seed
        )));
    }
    let todo: Vec<&Vec<u8>> = policies
        .iter()
        .filter(|p| !rows.iter().any(|r| &r.widths == *p))
        .collect();
    if !todo.is_empty() {
        let data_path = args
            .data
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("data/{}-train.bsds", meta.dataset)));
        let train = load_dataset(&data_path)?;
        log(format!(
            "{}: {} policies ({} left), {} validation images, σ = {}, reference n = {}, n_χ = {}, full n = {}, seed {}",
            args.model.display(),
            policies.len(),
            todo.len(),
            args.val_size,
            settings.reward.certify.sigma,
            args.n,
            args.n_chi,
            args.n_full,
            args.seed
        ));
        let started = Instant::now();
        let study = Study::new(
            &bytes,
            &train,
            args.val_size,
            settings,
            &mut |done, total| {
                if done % 20 == 0 || done == total {
                    log(format!("reference certification: {done}/{total} images"));
                }
                true
            },
        )?;
        let Outcome::Completed(mut study) = study else {
            return Err(Error::Invalid(
                "the reference certification was cancelled".into(),
            ));
        };
        log(format!(
            "reference (w8a8) ACR {:.4} in {:.0} s",
            study.reference_acr(),
            started.elapsed().as_secs_f64()
        ));
        if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let fresh = rows.is_empty();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&args.out)
            .map_err(|e| Error::Io(format!("cannot write {}: {e}", args.out.display())))?;
        if fresh {
            writeln!(file, "{HEADER}")?;
        }
        let scoring = Instant::now();
        for (k, widths) in todo.iter().enumerate() {
            let s = study.score(&space, widths)?;
            writeln!(file, "{}", format_row(&s))?;
            file.flush()?;
            let per = scoring.elapsed().as_secs_f64() / (k + 1) as f64;
            log(format!(
                "{}/{} {:?}: IRS {:.4}, scratch {:.4}, accuracy {:.3}, full {:.4} ± {:.4} (ETA {:.0} min)",
                k + 1,
                todo.len(),
                s.widths,
                s.irs_acr,
                s.scratch_acr,
                s.accuracy,
                s.full_acr,
                s.full_acr_se,
                per * (todo.len() - k - 1) as f64 / 60.0
            ));
            rows.push(s);
        }
    }
    let rho = RankCorrelations::of(&rows)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&rho).map_err(|e| Error::Io(e.to_string()))?
        );
    } else {
        let show = |r: Option<f64>| r.map_or("undefined (constant)".into(), |r| format!("{r:.3}"));
        println!(
            "Spearman's ρ with the full ACR over {} policies: IRS-ACR {}, scratch-ACR {}, accuracy {}",
            rho.policies,
            show(rho.irs_acr),
            show(rho.scratch_acr),
            show(rho.accuracy)
        );
    }
    Ok(())
}
