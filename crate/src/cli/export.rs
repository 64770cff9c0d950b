//! `export`: the integer weights of an int8 model at one policy, in a file of their own.

use super::{load_model, write, PolicyArgs};
use crate::checkpoint;
use crate::error::{Error, Result};
use crate::quant::{self, Policy};
use std::path::{Path, PathBuf};

/// The arguments of `export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    quant: PolicyArgs,
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: ExportArgs) -> Result<()> {
    export_cmd(&args.model, &args.quant, &args.out)
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
