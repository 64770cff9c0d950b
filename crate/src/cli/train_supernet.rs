//! `train --supernet`: HASB supernet training of a multi-bit int8 model (see `supernet`).

use super::train::record_accuracy;
use super::{default_test_set, load_dataset, load_model, write};
use crate::checkpoint;
use crate::error::{Error, Result};
use crate::quant::Policy;
use crate::search::hessian::{self, HessianConfig};
use crate::supernet::{self, SupernetConfig};
use std::path::Path;
use std::time::Instant;

pub struct Paths<'a> {
    /// Training images left out at the start (those the multi-bit stage trained on).
    pub skip: usize,
    pub init: &'a Path,
    pub data_dir: &'a Path,
    pub out: &'a Path,
}

/// A fixed set of mixed policies (seed 12345, widths from the list) whose test accuracy goes
/// into the metadata beside the uniform ones, so that files can be compared on them.
const PROBE_POLICIES: usize = 4;

pub fn run(
    dataset: &str,
    cfg: &SupernetConfig,
    hessian_cfg: &HessianConfig,
    paths: &Paths,
) -> Result<()> {
    cfg.validate()?;
    let mut loaded = load_model(paths.init)?;
    let switchable = loaded.switchable.take().ok_or_else(|| {
        Error::Invalid(format!(
            "{} is not an int8 multi-bit model: a supernet starts from one (train it with --bits first)",
            paths.init.display()
        ))
    })?;
    let mut model = loaded.model;
    if model.meta.dataset != dataset {
        return Err(Error::Invalid(format!(
            "{} was trained on {}, not {dataset}",
            paths.init.display(),
            model.meta.dataset
        )));
    }
    if (model.meta.sigma - cfg.base.sigma).abs() > 1e-6 {
        return Err(Error::Invalid(format!(
            "{} was trained at σ = {}, not --sigma {}",
            paths.init.display(),
            model.meta.sigma,
            cfg.base.sigma
        )));
    }
    let all_train = load_dataset(&paths.data_dir.join(format!("{dataset}-train.bsds")))?;
    if paths.skip >= all_train.len() {
        return Err(Error::Invalid(format!(
            "--skip {} leaves no training images: there are {}",
            paths.skip,
            all_train.len()
        )));
    }
    let train_set = all_train.tail_from(paths.skip);
    let test_set = load_dataset(&default_test_set(paths.data_dir, dataset))?;
    let started = Instant::now();
    let traces = match &model.meta.hessian_traces {
        Some(t) => {
            println!("Hessian traces from {}: {t:?}", paths.init.display());
            t.clone()
        }
        None => {
            println!(
                "estimating Hessian traces at w8a8 (Hutchinson, {} training images, {} vectors per layer)",
                hessian_cfg.images, hessian_cfg.samples
            );
            let estimates = hessian::layer_traces(&model, &train_set, hessian_cfg, &mut |l| {
                println!("  layer {l}")
            })?;
            let t: Vec<f64> = estimates.iter().map(|e| e.trace).collect();
            println!("traces {t:?} ({:.0} s)", started.elapsed().as_secs_f64());
            t
        }
    };
    let sensitive: Vec<usize> = supernet::sampling::sensitive_layers(&traces)
        .iter()
        .enumerate()
        .filter_map(|(l, &s)| s.then_some(l))
        .collect();
    println!(
        "supernet over widths {:?}, σ = {}, seed {}: layers {sensitive:?} (trace ≥ mean) favour the high widths",
        cfg.bits, cfg.base.sigma, cfg.base.seed
    );
    let training = Instant::now();
    let mut last_print = Instant::now();
    let mut window = (0f32, 0f32, 0usize);
    let (switchable, epochs) = supernet::train_supernet(
        &mut model,
        &switchable,
        &traces,
        &train_set,
        cfg,
        &mut |s| {
            window = (
                window.0 + s.loss_top,
                window.1 + s.loss_sampled,
                window.2 + 1,
            );
            if last_print.elapsed().as_secs_f32() > 15.0 || s.step + 1 == s.steps_per_epoch {
                let n = window.2 as f32;
                println!(
                    "epoch {} step {}/{} loss top {:.4} sampled {:.4} (last {:?}) lr {:.2e}",
                    s.epoch + 1,
                    s.step + 1,
                    s.steps_per_epoch,
                    window.0 / n,
                    window.1 / n,
                    s.widths,
                    s.lr
                );
                window = (0.0, 0.0, 0);
                last_print = Instant::now();
            }
        },
    )?;
    let seconds = training.elapsed().as_secs_f64();
    let layers = model.layers.len();
    let mut policies: Vec<(String, Policy)> = cfg
        .bits
        .iter()
        .map(|&b| Ok((format!("w{b}a{b}"), Policy::uniform(layers, b, b)?)))
        .collect::<Result<_>>()?;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(12345);
    for _ in 0..PROBE_POLICIES {
        let widths: Vec<u8> = (0..layers)
            .map(|_| cfg.bits[rand::Rng::random_range(&mut rng, 0..cfg.bits.len())])
            .collect();
        let name = widths
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(",");
        policies.push((
            name,
            Policy {
                weight_bits: widths.clone(),
                act_bits: widths,
            },
        ));
    }
    record_accuracy(&mut model, &switchable, &test_set, &policies)?;
    switchable.apply(&mut model, &Policy::uniform(layers, 8, 8)?)?;
    let command: Vec<String> = std::env::args().collect();
    model.meta.training = serde_json::json!({
        "supernet": cfg,
        "init": paths.init.display().to_string(),
        "init_training": model.meta.training,
        "skip": paths.skip,
        "images": cfg.base.limit.unwrap_or(train_set.len()).min(train_set.len()),
        "epochs": epochs,
        "seconds": seconds.round(),
        "command": command[1..].join(" "),
        "test_images": test_set.len(),
    });
    println!("{seconds:.0} s of supernet training");
    write(paths.out, &checkpoint::save_int8(&model, &switchable)?)?;
    println!("wrote {}", paths.out.display());
    Ok(())
}
