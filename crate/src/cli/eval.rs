//! `eval`: clean accuracy, per-layer structure, MACs, BOPs and size of a model at a policy.

use super::{default_test_set, load_dataset, load_model, PolicyArgs};
use crate::error::Result;
use crate::eval;
use crate::quant;
use std::path::{Path, PathBuf};

/// The arguments of `eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
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
}

pub fn run(args: EvalArgs) -> Result<()> {
    let EvalArgs {
        model,
        data,
        count,
        skip,
        logits,
        json,
        quant,
    } = args;
    eval_cmd(&model, data.as_deref(), count, skip, logits, json, &quant)
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
