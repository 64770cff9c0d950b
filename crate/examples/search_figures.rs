//! Figures of the mixed-precision search building blocks on a real model and the real
//! training set: the Hutchinson traces and their time, the ILPs' solve times, and the time of
//! one validation-accuracy evaluation (which decides whether enumerating every policy is
//! affordable). Run from the repository root after `bitsmooth prepare-data`:
//!
//! ```text
//! cargo run --release --example search_figures -- hessian [MODEL] [SAMPLES] [IMAGES] [STEP] [OUT]
//! cargo run --release --example search_figures -- ilp [MODEL]
//! cargo run --release --example search_figures -- exhaustive MODEL_WITH_TRACES [IMAGES]
//! cargo run --release --example search_figures -- reward [MODEL] [IMAGES THREADS]
//! ```
//!
//! MODEL defaults to `public/models/mnist-sigma0.25.safetensors`; the data comes from
//! `data/{dataset}-train.bsds`. `hessian … OUT` also writes the model with its traces in
//! the metadata to OUT.

use bitsmooth::checkpoint;
use bitsmooth::data::Dataset;
use bitsmooth::quant::Policy;
use bitsmooth::search::accuracy::{ValidationAccuracy, ValidationConfig};
use bitsmooth::search::exhaustive::Exhaustive;
use bitsmooth::search::hessian::{layer_traces, store_traces, HessianConfig};
use bitsmooth::search::ilp::IlpTable;
use bitsmooth::search::{Budget, Reward, SearchSpace};
use std::time::Instant;

fn main() -> bitsmooth::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let what = args.first().map(String::as_str).unwrap_or("reward");
    let path = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "public/models/mnist-sigma0.25.safetensors".into());
    let bytes = std::fs::read(&path).map_err(|e| bitsmooth::Error::Io(format!("{path}: {e}")))?;
    let loaded = checkpoint::load(&bytes)?;
    let train_path = format!("data/{}-train.bsds", loaded.model.meta.dataset);
    let train = Dataset::from_bytes(
        &std::fs::read(&train_path)
            .map_err(|e| bitsmooth::Error::Io(format!("{train_path}: {e}")))?,
    )?;
    let arg = |i: usize| args.get(i).and_then(|s| s.parse::<f64>().ok());
    match what {
        "hessian" => {
            let d = HessianConfig::default();
            let cfg = HessianConfig {
                samples: arg(2).map_or(d.samples, |v| v as usize),
                images: arg(3).map_or(d.images, |v| v as usize),
                relative_step: arg(4).unwrap_or(d.relative_step),
                ..d
            };
            let t = Instant::now();
            let traces = layer_traces(&loaded.model, &train, &cfg, &mut |l| {
                eprintln!("layer {l} at {:.1} s", t.elapsed().as_secs_f64())
            })?;
            println!("{cfg:?}: {:.1} s", t.elapsed().as_secs_f64());
            for (spec, e) in loaded.model.layers.iter().zip(&traces) {
                println!(
                    "{:16} trace {:12.5} ± {:10.5}  per weight {:.3e}",
                    spec.name,
                    e.trace,
                    e.std_error,
                    e.trace / spec.weights() as f64
                );
            }
            if let Some(out) = args.get(5) {
                let values: Vec<f64> = traces.iter().map(|e| e.trace).collect();
                std::fs::write(out, store_traces(&bytes, &values)?)
                    .map_err(|e| bitsmooth::Error::Io(e.to_string()))?;
            }
        }
        "ilp" => {
            let masters = loaded
                .switchable
                .as_ref()
                .expect("an int8 model")
                .masters
                .clone();
            let space =
                SearchSpace::new(loaded.model.layers.clone(), &loaded.model.meta.bits, false)?;
            let traces = loaded
                .model
                .meta
                .hessian_traces
                .clone()
                .unwrap_or_else(|| vec![1.0; space.num_layers()]);
            let tables = [
                ("hawq-v3", IlpTable::hawq_v3(&space, &traces, &masters)?),
                (
                    "double-rounding",
                    IlpTable::double_rounding(&space, &traces)?,
                ),
            ];
            let cfg = ValidationConfig::default();
            let mut reward = ValidationAccuracy::new(checkpoint::load(&bytes)?, &train, &cfg)?;
            for fraction in [0.5, 0.25, 0.14, 0.1] {
                let budget = Budget::fraction(&space, fraction)?;
                for (name, table) in &tables {
                    let t = Instant::now();
                    let s = table.solve(budget.bops)?;
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    let acc = reward.evaluate(&space.policy(&s.widths)?)?;
                    println!(
                        "{name:16} budget {fraction:4} ({:>10} BOPs): {:?} {:>10} BOPs, solved in \
                         {ms:.2} ms; validation accuracy ({} training images) {acc:.3}",
                        budget.bops, s.widths, s.bops, cfg.images
                    );
                }
                let u = bitsmooth::search::uniform::uniform_width(&space, &budget)?;
                let acc = reward.evaluate(&space.policy(&space.uniform(u))?)?;
                println!(
                    "{:16} budget {fraction:4}: uniform {u} bits, validation accuracy {acc:.3}",
                    "uniform"
                );
            }
        }
        "exhaustive" => {
            // every policy of the space with the first and last layers pinned to 8 bits (4⁶)
            let masters = loaded
                .switchable
                .as_ref()
                .expect("an int8 model")
                .masters
                .clone();
            let traces = loaded.model.meta.hessian_traces.clone().ok_or_else(|| {
                bitsmooth::Error::Invalid("store Hessian traces in the model first".into())
            })?;
            let space =
                SearchSpace::new(loaded.model.layers.clone(), &loaded.model.meta.bits, true)?;
            let cfg = ValidationConfig {
                images: arg(2).map_or(500, |v| v as usize),
                threads: 2,
                ..ValidationConfig::default()
            };
            let mut reward = ValidationAccuracy::new(checkpoint::load(&bytes)?, &train, &cfg)?;
            let t = Instant::now();
            let ex = Exhaustive::run(&space, &mut reward, &mut |p| {
                if p.episode % 512 == 0 {
                    eprintln!(
                        "{} of {} at {:.0} s",
                        p.episode,
                        p.episodes,
                        t.elapsed().as_secs_f64()
                    );
                }
                true
            })?;
            println!(
                "{} policies, {} validation images: {:.0} s ({:.1} ms each)",
                ex.table.len(),
                cfg.images,
                t.elapsed().as_secs_f64(),
                t.elapsed().as_secs_f64() * 1e3 / ex.table.len() as f64
            );
            let hawq = IlpTable::hawq_v3(&space, &traces, &masters)?;
            let dr = IlpTable::double_rounding(&space, &traces)?;
            for fraction in [0.25, 0.14] {
                let budget = Budget::fraction(&space, fraction)?;
                let best = ex.optimum(budget.bops)?;
                println!(
                    "budget {fraction} ({} BOPs): optimum {:?} reward {:.3}",
                    budget.bops, best.widths, best.reward
                );
                let random = bitsmooth::search::random::random_search(
                    &space,
                    &budget,
                    &mut reward,
                    50,
                    0,
                    &mut |_| true,
                )?;
                let mut report = |name: &str, widths: &[u8]| -> bitsmooth::Result<()> {
                    let r = reward.evaluate(&space.policy(widths)?)?;
                    println!(
                        "  {name:16} {widths:?} reward {r:.3} regret {:.3}",
                        ex.regret(budget.bops, r)?
                    );
                    Ok(())
                };
                report("hawq-v3", &hawq.solve(budget.bops)?.widths)?;
                report("double-rounding", &dr.solve(budget.bops)?.widths)?;
                report(
                    "uniform",
                    &space.uniform(bitsmooth::search::uniform::uniform_width(&space, &budget)?),
                )?;
                report("random (50)", &random.best.widths)?;
            }
        }
        _ => {
            let layers = loaded.model.layers.len();
            let (images_list, threads_list) = match (arg(2), arg(3)) {
                (Some(i), Some(t)) => (vec![i as usize], vec![t as usize]),
                _ => (vec![1, 500, 1000], vec![1, 2]),
            };
            for &images in &images_list {
                for &threads in &threads_list {
                    let cfg = ValidationConfig {
                        images,
                        threads,
                        ..ValidationConfig::default()
                    };
                    let mut r = ValidationAccuracy::new(checkpoint::load(&bytes)?, &train, &cfg)?;
                    let policies: Vec<Policy> = [8, 6, 4, 2]
                        .iter()
                        .map(|&b| Policy::uniform(layers, b, b))
                        .collect::<bitsmooth::Result<_>>()?;
                    let mut accs = Vec::new();
                    let rounds = 20;
                    let t = Instant::now();
                    for _ in 0..rounds {
                        accs.clear();
                        for p in &policies {
                            accs.push(r.evaluate(p)?);
                        }
                    }
                    let per = t.elapsed().as_secs_f64() / (rounds * policies.len()) as f64;
                    println!(
                        "{images} images, {threads} thread(s): {:.1} ms per evaluation \
                         (4⁸ = 65,536 policies: {:.0} min); accuracy w8/w6/w4/w2 {accs:?}",
                        per * 1e3,
                        per * 65_536.0 / 60.0
                    );
                }
            }
        }
    }
    Ok(())
}
