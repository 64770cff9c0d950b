//! `certify`: randomized smoothing (CERTIFY) of every image, one TSV row each; with
//! `--incremental`, IRS (in `certify_incremental`).

use super::{certify_incremental, default_test_set, load_dataset, load_model, PolicyArgs};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::exec::CpuExecutor;
use crate::model::Model;
use crate::smoothing::{self, BaseClassifier};
use clap::ValueEnum;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where certification runs the model.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExecutorName {
    /// The candle model itself (the reference).
    Candle,
    /// `exec::CpuExecutor`, lowered from the model, one thread per core.
    Fast,
}

impl ExecutorName {
    /// The base classifier for `model` (lowered now: give the model its policy first), on
    /// `threads` threads (fast executor; default one per core).
    pub(super) fn classifier<'a>(
        self,
        model: &'a mut Model,
        threads: Option<usize>,
    ) -> Result<Box<dyn BaseClassifier + 'a>> {
        Ok(match self {
            ExecutorName::Candle => Box::new(model),
            ExecutorName::Fast => {
                let threads = threads
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
                Box::new(CpuExecutor::new(model)?.with_threads(threads))
            }
        })
    }
}

/// The arguments of `certify`.
#[derive(clap::Args)]
pub struct CertifyArgs {
    #[arg(long)]
    model: PathBuf,
    /// Noise level σ (default: the σ the model was trained with).
    #[arg(long)]
    sigma: Option<f32>,
    /// Selection samples for the guess of the top class.
    #[arg(long, default_value_t = 100)]
    n0: u64,
    /// Estimation samples for the lower confidence bound.
    #[arg(long, default_value_t = 100_000)]
    n: u64,
    /// Failure probability α of the certificate.
    #[arg(long, default_value_t = 0.001)]
    alpha: f64,
    /// Certify this many images (default: all after --skip).
    #[arg(long)]
    count: Option<usize>,
    #[arg(long, default_value_t = 0)]
    skip: usize,
    /// Seed of the noise; the same seed reproduces the same counts.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Noisy copies per forward pass.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Dataset file (default: the full test set of the model's dataset in data/).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output TSV (rows are written as images finish).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    quant: PolicyArgs,
    /// Certify the quantized model incrementally (IRS): full certification of the float
    /// model with n samples, then the policy's model from n_χ replayed samples.
    #[arg(long, requires = "n_chi")]
    incremental: bool,
    /// Replayed samples n_χ for --incremental (e.g. 1–10 % of n).
    #[arg(long)]
    n_chi: Option<u64>,
    /// With --incremental: the TSV of a full certification of the reference (the stored
    /// model) with the same seed, σ, n and α; IRS starts from its counts instead of
    /// certifying the reference again.
    #[arg(long, requires = "incremental")]
    reference: Option<PathBuf>,
    /// Where the model runs: `fast` (our executor) or `candle` (the reference).
    #[arg(long, value_enum, default_value_t = ExecutorName::Fast)]
    executor: ExecutorName,
    /// Threads of the fast executor (default: one per core). Counts and radii do not
    /// depend on it.
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(args: CertifyArgs) -> Result<()> {
    let CertifyArgs {
        model,
        sigma,
        n0,
        n,
        alpha,
        count,
        skip,
        seed,
        batch,
        data,
        out,
        quant,
        incremental,
        n_chi,
        reference,
        executor,
        threads,
    } = args;
    if threads.is_some_and(|t| !(1..=256).contains(&t)) {
        return Err(Error::Invalid("--threads must be between 1 and 256".into()));
    }
    let model_path = model;
    let mut loaded = load_model(&model_path)?;
    let model = &mut loaded.model;
    let params = smoothing::CertifyParams {
        sigma: sigma.unwrap_or(model.meta.sigma),
        n0,
        n,
        alpha,
        batch,
    };
    params.validate()?;
    let data_path =
        data.unwrap_or_else(|| default_test_set(Path::new("data"), &model.meta.dataset));
    let set = load_dataset(&data_path)?;
    let count = count.unwrap_or(set.len().saturating_sub(skip));
    set.check_range(skip, count)?;
    let run = CertifyRun {
        params,
        skip,
        count,
        seed,
        executor,
        threads,
        out: &out,
    };
    if incremental {
        if quant.resolve(model.layers.len())?.is_none() {
            return Err(Error::Invalid(
                "--incremental certifies a quantized model: give --bits or --policy".into(),
            ));
        }
        let mut quantized = load_model(&model_path)?;
        let policy = quant
            .apply(&mut quantized, Path::new("data"))?
            .expect("a policy was given");
        let irs = smoothing::IrsParams {
            n_chi: n_chi.unwrap_or(0),
            alpha_chi: alpha,
            n0,
            batch,
            ..smoothing::IrsParams::new(0)
        };
        irs.validate()?;
        println!(
            "policy: weights {:?}, activations {:?}",
            policy.weight_bits, policy.act_bits
        );
        // the reference: the float model, or an int8 model at w8a8 (as loaded)
        let reference = reference
            .as_deref()
            .map(certify_incremental::read_reference_rows)
            .transpose()?;
        certify_incremental::certify_incremental_cmd(
            model,
            &mut quantized.model,
            &set,
            &run,
            &irs,
            reference.as_ref(),
        )
    } else {
        if let Some(policy) = quant.apply(&mut loaded, Path::new("data"))? {
            println!(
                "policy: weights {:?}, activations {:?}",
                policy.weight_bits, policy.act_bits
            );
        }
        certify_cmd(&mut loaded.model, &set, &run)
    }
}

/// Radii at which the summary reports certified accuracy (DESIGN §4 reference figures).
const REPORT_RADII: [f64; 7] = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0];

/// One certification run's settings.
pub(super) struct CertifyRun<'a> {
    pub(super) params: smoothing::CertifyParams,
    pub(super) skip: usize,
    pub(super) count: usize,
    pub(super) seed: u64,
    pub(super) executor: ExecutorName,
    pub(super) threads: Option<usize>,
    pub(super) out: &'a Path,
}

pub(super) fn create_tsv(out: &Path, header: &str) -> Result<std::io::BufWriter<std::fs::File>> {
    use std::io::Write;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::File::create(out)
        .map_err(|e| Error::Io(format!("cannot write {}: {e}", out.display())))?;
    let mut file = std::io::BufWriter::new(file);
    writeln!(file, "{header}")?;
    Ok(file)
}

/// The columns of Cohen et al.'s certification output plus `nA n`, tab-separated.
pub(super) fn reference_columns(row: &smoothing::CertificationRow) -> String {
    format!(
        "{}\t{}\t{}\t{:.4}\t{}\t{:.3}\t{}\t{}",
        row.idx,
        row.label,
        row.predict_column(),
        row.radius,
        row.correct as u8,
        row.time,
        row.n_a,
        row.n
    )
}

pub(super) fn print_summary(rows: &[smoothing::CertificationRow]) {
    println!("ACR {:.4} over {} images", smoothing::acr(rows), rows.len());
    for r in REPORT_RADII {
        println!(
            "certified accuracy at r = {r:.2}: {:.3}",
            smoothing::certified_accuracy(rows, r)
        );
    }
}

/// Certifies images `skip..skip+count`, writing each TSV row as soon as it is known so that
/// an interrupted run keeps everything certified so far.
fn certify_cmd(model: &mut Model, set: &Dataset, run: &CertifyRun) -> Result<()> {
    use std::io::Write;
    let (params, skip, count, seed) = (&run.params, run.skip, run.count, run.seed);
    let mut file = create_tsv(run.out, "idx\tlabel\tpredict\tradius\tcorrect\ttime\tnA\tn")?;
    println!(
        "certifying {count} images of {} with σ = {}, n0 = {}, n = {}, α = {}, seed {seed}",
        model.meta.dataset, params.sigma, params.n0, params.n, params.alpha
    );
    let mut f = run.executor.classifier(model, run.threads)?;
    let started = Instant::now();
    let mut rows = Vec::with_capacity(count);
    for idx in skip..skip + count {
        let t0 = Instant::now();
        let key = smoothing::NoiseKey::new(seed, idx as u32);
        let cert = smoothing::certify(&mut *f, set.image(idx), params, key, &mut |_, _| true)?
            .completed()
            .ok_or_else(|| Error::Invalid("certification was cancelled".into()))?;
        let label = set.labels[idx] as u32;
        let row = smoothing::CertificationRow::from_certificate(
            idx as u64,
            label,
            &cert,
            t0.elapsed().as_secs_f64(),
        );
        writeln!(file, "{}", reference_columns(&row))?;
        file.flush()?;
        rows.push(row);
        let done = rows.len();
        if done % 10 == 0 || done == count {
            let per_image = started.elapsed().as_secs_f64() / done as f64;
            println!(
                "{done}/{count} images, ACR so far {:.3}, {per_image:.2} s/image, ETA {:.0} s",
                smoothing::acr(&rows),
                per_image * (count - done) as f64
            );
        }
    }
    println!("wrote {}", run.out.display());
    print_summary(&rows);
    Ok(())
}
