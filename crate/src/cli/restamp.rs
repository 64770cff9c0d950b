//! `restamp` (hidden): writes the digest of a model file's tensors into its metadata, for
//! files saved before loading verified one. Only the metadata changes; this checks that every
//! tensor is byte-identical afterwards and that the file loads, before it writes.

use super::{read, write};
use crate::checkpoint;
use crate::error::{Error, Result};
use crate::model::ModelMeta;
use safetensors::SafeTensors;
use std::path::{Path, PathBuf};

/// The arguments of `restamp`.
#[derive(clap::Args)]
pub struct RestampArgs {
    /// Model files to re-stamp in place.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn run(args: RestampArgs) -> Result<()> {
    for path in &args.files {
        restamp_file(path)?;
    }
    Ok(())
}

fn restamp_file(path: &Path) -> Result<()> {
    let named = |e: Error| Error::Model(format!("{}: {e}", path.display()));
    let before = read(path)?;
    let after = checkpoint::restamp(&before).map_err(named)?;
    let (old, new) = (
        tensors(&before).map_err(named)?,
        tensors(&after).map_err(named)?,
    );
    if old != new {
        return Err(named(Error::Model(
            "re-stamping would change the tensors; nothing written".into(),
        )));
    }
    let loaded = checkpoint::load(&after).map_err(named)?;
    if meta(&before).map_err(named)? != loaded.model.meta {
        return Err(named(Error::Model(
            "re-stamping would change the metadata; nothing written".into(),
        )));
    }
    if after == before {
        println!("{}: already stamped", path.display());
        return Ok(());
    }
    write(path, &after)?;
    println!(
        "{}: stamped ({} tensors byte-identical, metadata unchanged)",
        path.display(),
        new.len()
    );
    Ok(())
}

/// Every tensor of a file: name, dtype, shape and bytes, by name.
type Tensors = Vec<(String, String, Vec<usize>, Vec<u8>)>;

fn tensors(bytes: &[u8]) -> Result<Tensors> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::Model(format!("not a readable safetensors file ({e})")))?;
    let mut all: Tensors = st
        .tensors()
        .into_iter()
        .map(|(name, v)| {
            (
                name,
                format!("{:?}", v.dtype()),
                v.shape().to_vec(),
                v.data().to_vec(),
            )
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(all)
}

/// The model metadata of a file, read without checking anything else.
fn meta(bytes: &[u8]) -> Result<ModelMeta> {
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::Model(format!("not a readable safetensors file ({e})")))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("bitsmooth"))
        .ok_or_else(|| Error::Model("no bitsmooth metadata".into()))?;
    serde_json::from_str(json).map_err(|e| Error::Model(format!("metadata is not valid: {e}")))
}
