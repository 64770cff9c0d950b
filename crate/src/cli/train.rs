//! `train`: float training with Gaussian noise augmentation, or multi-bit QAT from a float model.

use super::{default_test_set, load_dataset, read, write, CALIBRATION_IMAGES};
use crate::checkpoint;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval;
use crate::model::{Model, ModelMeta};
use crate::quant::{self, Policy, Switchable};
use crate::train::{self, TrainConfig};
use candle_core::Device;
use clap::ValueEnum;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DatasetName {
    Mnist,
    Fashion,
}

impl DatasetName {
    fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::Fashion => "fashion",
        }
    }
}

/// The arguments of `train`.
#[derive(clap::Args)]
pub struct TrainArgs {
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
    /// Train on the first N training images only (after --skip).
    #[arg(long)]
    limit: Option<usize>,
    /// Leave out the first N training images (e.g. those an earlier stage trained on).
    #[arg(long, default_value_t = 0)]
    skip: usize,
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Bit-widths trained jointly, e.g. 8,6,4,2 (writes an int8 model); absent: float.
    #[arg(long)]
    bits: Option<String>,
    /// Model to start from: a float model with --bits (recommended), the multi-bit int8
    /// model with --supernet (required).
    #[arg(long)]
    init: Option<PathBuf>,
    /// HASB supernet training of the multi-bit model given by --init: mixed per-layer widths
    /// from --bits (default 8,7,6,5,4,3,2), sampled by the layers' Hessian traces.
    #[arg(long)]
    supernet: bool,
    /// --supernet: also train the lowest admitted width in every layer at every step.
    #[arg(long)]
    lowest_too: bool,
    /// --supernet: fraction of the steps over which the lower widths are let in.
    #[arg(long, default_value_t = 0.5)]
    switch_fraction: f64,
    /// --supernet on a model without stored Hessian traces: training images of the
    /// Hutchinson estimate computed first (drawn by the seed).
    #[arg(long, default_value_t = 200)]
    hessian_images: usize,
    /// --supernet without stored traces: Rademacher vectors per layer (≥ 2).
    #[arg(long, default_value_t = 8)]
    hessian_samples: usize,
    /// Same scale learning rate for every bit-width (the ALRS ablation).
    #[arg(long)]
    no_alrs: bool,
    /// Learning rate of the LSQ scales before the ALRS factor.
    #[arg(long, default_value_t = 1e-3)]
    scale_lr: f64,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let TrainArgs {
        dataset,
        sigma,
        epochs,
        batch_size,
        lr,
        weight_decay,
        seed,
        limit,
        skip,
        data_dir,
        out,
        bits,
        init,
        no_alrs,
        scale_lr,
        supernet,
        lowest_too,
        switch_fraction,
        hessian_images,
        hessian_samples,
    } = args;
    let cfg = TrainConfig {
        sigma,
        epochs,
        batch_size,
        lr,
        weight_decay,
        seed,
        limit,
    };
    if supernet {
        let init = init.ok_or_else(|| {
            Error::Invalid("--supernet starts from a multi-bit model: give it with --init".into())
        })?;
        let cfg = crate::supernet::SupernetConfig {
            base: cfg,
            bits: quant::parse_bits_list(bits.as_deref().unwrap_or("8,7,6,5,4,3,2"))?,
            alrs: !no_alrs,
            scale_lr,
            switch_fraction,
            lowest_too,
        };
        let hessian = crate::search::hessian::HessianConfig {
            images: hessian_images,
            samples: hessian_samples,
            seed,
            ..Default::default()
        };
        let paths = super::train_supernet::Paths {
            skip,
            init: &init,
            data_dir: &data_dir,
            out: &out,
        };
        return super::train_supernet::run(dataset.as_str(), &cfg, &hessian, &paths);
    }
    if skip > 0 {
        return Err(Error::Invalid("--skip is for --supernet".into()));
    }
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
    let uniform = cfg
        .bits
        .iter()
        .map(|&b| {
            Ok((
                format!("w{b}a{b}"),
                Policy::uniform(model.layers.len(), b, b)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    record_accuracy(&mut model, &switchable, &test_set, &uniform)?;
    let command: Vec<String> = std::env::args().collect();
    model.meta.training = serde_json::json!({
        "config": cfg,
        "init": init.map(|p| p.display().to_string()),
        "images": cfg.base.limit.unwrap_or(train_set.len()).min(train_set.len()),
        "epoch_losses": epochs.iter().map(|e| &e.mean_loss).collect::<Vec<_>>(),
        "scale_gradients": epochs.iter().map(|e| &e.scale_gradients).collect::<Vec<_>>(),
        "step": "joint: one update per batch over all widths",
        "seconds": seconds.round(),
        "command": command[1..].join(" "),
        "test_images": test_set.len(),
    });
    for e in &epochs {
        for (b, a) in cfg.bits.iter().zip(&e.scale_gradients) {
            println!(
                "epoch {}: s_8 gradient at {b} bits vs the highest: norm ×{:.2}, cosine {:.3}, opposite sign in {:.1} % of channels",
                e.epoch + 1,
                a.norm_ratio,
                a.cosine,
                100.0 * a.sign_disagreement
            );
        }
    }
    println!("{seconds:.0} s of training");
    write(out, &checkpoint::save_int8(&model, &switchable)?)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Measures the clean test accuracy of `model` at each named policy, prints it and makes it the
/// model's recorded accuracy (what the Model panel lists). Leaves `model` at the last policy.
pub(super) fn record_accuracy(
    model: &mut Model,
    switchable: &Switchable,
    test_set: &Dataset,
    policies: &[(String, Policy)],
) -> Result<()> {
    model.meta.accuracy.clear();
    for (name, policy) in policies {
        switchable.apply(model, policy)?;
        let result = eval::evaluate(model, test_set, 0, test_set.len(), &mut |_, _| {})?;
        println!(
            "{name}: clean test accuracy {:.2} % on {} images",
            100.0 * result.accuracy(),
            result.total()
        );
        model.meta.accuracy.insert(name.clone(), result.accuracy());
    }
    Ok(())
}
