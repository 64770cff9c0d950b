//! Model files (DESIGN §8): safetensors with the metadata as JSON under the key `bitsmooth`.
//! Nothing in a file is ever executed; every tensor is checked for presence, dtype, shape and
//! finiteness before a model is built from it. Three kinds, told apart by `meta.kind`:
//!
//! - `float`: f32 weights and one BN per convolution (the noise-trained starting points and
//!   the post-training-quantization baseline; files without a kind are float);
//! - `int8`: what Double Rounding stores and the site ships — per layer the int8 weights at
//!   h = 8 (`{layer}.weight.q`) and their f32 per-channel scales s_8 (`{layer}.weight.scale`),
//!   the learned input scale per trained bit-width (`{layer}.input.scale`, aligned with
//!   `meta.bits`; not for the stem), and one BN per trained bit-width (`{layer}.bn{b}.*`);
//! - `export`: one fixed policy, as `bitsmooth export` writes it — per layer the l-bit integer
//!   values in int8 (`{layer}.weight.q`), their scales s_l = s_8·2^(8−l), the input scale at
//!   the policy's activation bits, and the BN used at that policy (`{layer}.bn.*`); the
//!   policy itself is in `meta.policy`.
//!
//! Every file also records a SHA-256 digest of its tensors (`tensors_sha256` in the metadata
//! JSON, see [`tensors_sha256`]), written by every save and verified by every load: a weight
//! byte changed after saving makes the file refuse to load instead of running silently with
//! other weights. Files from before the digest are refused too; [`restamp`] adds it.

use crate::error::{Error, Result};
use crate::model::{BatchNorm, LayerKind, Model, ModelMeta, ARCH_NAME, FORMAT_VERSION};
use crate::quant::{check_bits, ActScales, Policy, QuantizedWeights, Switchable};
use candle_core::{Device, Tensor};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

const METADATA_KEY: &str = "bitsmooth";
pub const KIND_FLOAT: &str = "float";
pub const KIND_INT8: &str = "int8";
pub const KIND_EXPORT: &str = "export";

/// A loaded model file: the model ready to run (an int8 model at w8a8, an export at its
/// policy) and, for int8 files, what switches it between policies.
pub struct Loaded {
    pub model: Model,
    pub switchable: Option<Switchable>,
}

/// Reads any bitsmooth model file.
pub fn load(bytes: &[u8]) -> Result<Loaded> {
    let (meta, st) = open(bytes)?;
    let reader = Reader { st: &st };
    match meta.kind.as_str() {
        KIND_FLOAT => Ok(Loaded {
            model: read_float(meta, &reader)?,
            switchable: None,
        }),
        KIND_INT8 => {
            let (mut model, switchable) = read_int8(meta, &reader)?;
            let w8a8 = Policy::uniform(model.layers.len(), 8, 8)?;
            switchable.apply(&mut model, &w8a8)?;
            Ok(Loaded {
                model,
                switchable: Some(switchable),
            })
        }
        KIND_EXPORT => Ok(Loaded {
            model: read_export(meta, &reader)?,
            switchable: None,
        }),
        other => Err(Error::Model(format!("unknown model kind `{other}`"))),
    }
}

/// Reads a float model file (an error for the other kinds).
pub fn load_float(bytes: &[u8]) -> Result<Model> {
    let (meta, st) = open(bytes)?;
    if meta.kind != KIND_FLOAT {
        return Err(Error::Model(format!(
            "expected a float model, this file holds a `{}` model",
            meta.kind
        )));
    }
    read_float(meta, &Reader { st: &st })
}

/// The tensors of a safetensors file and its bitsmooth metadata JSON (not yet parsed).
fn read_raw(bytes: &[u8]) -> Result<(SafeTensors<'_>, String)> {
    let unreadable = |e: safetensors::SafeTensorError| {
        Error::Model(format!(
            "not a readable safetensors file ({e}); is it truncated or corrupt?"
        ))
    };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(unreadable)?;
    let st = SafeTensors::deserialize(bytes).map_err(unreadable)?;
    let meta_json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .ok_or_else(|| Error::Model("no bitsmooth metadata: not a bitsmooth model".into()))?;
    Ok((st, meta_json.clone()))
}

fn open(bytes: &[u8]) -> Result<(ModelMeta, SafeTensors<'_>)> {
    let (st, meta_json) = read_raw(bytes)?;
    let meta_json = meta_json.as_str();
    let meta: ModelMeta = serde_json::from_str(meta_json)
        .map_err(|e| Error::Model(format!("metadata is not valid: {e}")))?;
    let recorded: RecordedDigest = serde_json::from_str(meta_json)
        .map_err(|e| Error::Model(format!("metadata is not valid: {e}")))?;
    let Some(recorded) = recorded.tensors_sha256 else {
        return Err(Error::Model(
            "the metadata records no digest of the weights (a file from before bitsmooth \
             stamped them, or written by another tool): re-stamp it with `bitsmooth restamp`"
                .into(),
        ));
    };
    if recorded != safetensors_digest(&st) {
        return Err(Error::Model(
            "the weights do not match the digest recorded in the file: corrupted?".into(),
        ));
    }
    if meta.arch != ARCH_NAME || meta.format_version != FORMAT_VERSION {
        return Err(Error::Model(format!(
            "architecture {} format {} is not supported (this build reads {ARCH_NAME} format {FORMAT_VERSION})",
            meta.arch, meta.format_version
        )));
    }
    if !(meta.sigma.is_finite() && meta.sigma >= 0.0) {
        return Err(Error::Model(format!(
            "metadata σ = {} is not a noise level",
            meta.sigma
        )));
    }
    Ok((meta, st))
}

/// The part of the metadata JSON that [`ModelMeta`] does not hold.
#[derive(Deserialize)]
struct RecordedDigest {
    tensors_sha256: Option<String>,
}

/// The metadata JSON a file stores: `meta`'s fields and the digest of the tensors.
#[derive(Serialize)]
struct Stamped<'a> {
    #[serde(flatten)]
    meta: &'a ModelMeta,
    tensors_sha256: String,
}

/// SHA-256 (lowercase hex) of a file's tensors, independent of how the file lays them out:
/// the tensors in ascending byte order of their names, each contributing, with every length
/// and number as a little-endian u64,
///
/// ```text
/// len(name) ‖ name (UTF-8) ‖ len(dtype) ‖ dtype (as the header spells it: F32, I8, …)
///   ‖ rank ‖ dim₀ ‖ … ‖ dim_{rank−1} ‖ len(data) ‖ data (the tensor's bytes, as stored)
/// ```
///
/// Every field is length-prefixed, so two different sets of tensors never feed the hash the
/// same bytes.
pub fn tensors_sha256<'a>(
    tensors: impl IntoIterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
) -> String {
    let mut tensors: Vec<_> = tensors.into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    fn field(hash: &mut Sha256, bytes: &[u8]) {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    let mut hash = Sha256::new();
    for (name, dtype, shape, data) in tensors {
        field(&mut hash, name.as_bytes());
        field(&mut hash, format!("{dtype:?}").as_bytes());
        hash.update((shape.len() as u64).to_le_bytes());
        for &d in shape {
            hash.update((d as u64).to_le_bytes());
        }
        field(&mut hash, data);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of the tensors of the model file `bytes` ([`tensors_sha256`]), after checking it
/// against the one the file records: what names the function a model computes (IRS
/// references are tied to it), whatever else its metadata says.
pub fn tensors_digest(bytes: &[u8]) -> Result<String> {
    let (_, st) = open(bytes)?;
    Ok(safetensors_digest(&st))
}

fn safetensors_digest(st: &SafeTensors) -> String {
    let views = st.tensors();
    tensors_sha256(
        views
            .iter()
            .map(|(name, v)| (name.as_str(), v.dtype(), v.shape(), v.data())),
    )
}

/// The file `bytes`, saved before files carried a digest, with the digest of its tensors
/// added to its metadata: the tensors' bytes, names, dtypes and shapes stay exactly as they
/// were, and so does every other byte of the metadata JSON (the digest is appended as its last
/// field, as saving writes it). A file that already records a digest is returned unchanged
/// when the digest matches and refused when it does not: re-stamping must not bless weights
/// that changed after saving. How the committed models were brought up to date
/// (`bitsmooth restamp`); run it only on files you trust.
pub fn restamp(bytes: &[u8]) -> Result<Vec<u8>> {
    let (st, meta_json) = read_raw(bytes)?;
    let meta_json = meta_json.as_str();
    let invalid = |e: serde_json::Error| Error::Model(format!("metadata is not valid: {e}"));
    serde_json::from_str::<ModelMeta>(meta_json).map_err(invalid)?;
    let digest = safetensors_digest(&st);
    match serde_json::from_str::<RecordedDigest>(meta_json)
        .map_err(invalid)?
        .tensors_sha256
    {
        Some(recorded) if recorded == digest => return Ok(bytes.to_vec()),
        Some(_) => {
            return Err(Error::Model(
                "the weights do not match the digest already recorded in the file: corrupted? \
                 (re-stamping only stamps files that record no digest)"
                    .into(),
            ))
        }
        None => {}
    }
    // the metadata is a JSON object (it parsed as ModelMeta): append the digest as its last field
    let body = meta_json
        .trim_end()
        .strip_suffix('}')
        .ok_or_else(|| Error::Model("metadata is not a JSON object".into()))?;
    let digest_json = serde_json::to_string(&digest).map_err(|e| Error::Model(e.to_string()))?;
    let stamped = format!("{body},\"tensors_sha256\":{digest_json}}}");
    let views = st.tensors().into_iter().map(|(name, v)| {
        safetensors::tensor::TensorView::new(v.dtype(), v.shape().to_vec(), v.data())
            .map(|view| (name, view))
            .map_err(|e| Error::Model(e.to_string()))
    });
    let views = views.collect::<Result<Vec<_>>>()?;
    let metadata = HashMap::from([(METADATA_KEY.to_string(), stamped)]);
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Model(e.to_string()))
}

/// A safetensors file of `views` with `meta` and the digest `tensors_sha256` as metadata.
fn serialize(
    views: Vec<(String, safetensors::tensor::TensorView<'_>)>,
    meta: &ModelMeta,
    tensors_sha256: String,
) -> Result<Vec<u8>> {
    let json = serde_json::to_string(&Stamped {
        meta,
        tensors_sha256,
    })
    .map_err(|e| Error::Model(e.to_string()))?;
    let metadata = HashMap::from([(METADATA_KEY.to_string(), json)]);
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Model(e.to_string()))
}

/// Checked access to the tensors of an open file.
struct Reader<'a> {
    st: &'a SafeTensors<'a>,
}

impl Reader<'_> {
    fn view(&self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<Vec<u8>> {
        let view = self
            .st
            .tensor(name)
            .map_err(|_| Error::Model(format!("tensor `{name}` is missing")))?;
        if view.dtype() != dtype {
            return Err(Error::Model(format!(
                "tensor `{name}` has dtype {:?}, expected {dtype:?}",
                view.dtype()
            )));
        }
        if view.shape() != shape {
            return Err(Error::Model(format!(
                "tensor `{name}` has shape {:?}, expected {shape:?}",
                view.shape()
            )));
        }
        Ok(view.data().to_vec())
    }

    fn f32s(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let values: Vec<f32> = self
            .view(name, Dtype::F32, shape)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(Error::Model(format!(
                "tensor `{name}` holds a non-finite value ({v})"
            )));
        }
        Ok(values)
    }

    fn positive_f32s(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let values = self.f32s(name, shape)?;
        if let Some(v) = values.iter().find(|&&v| v <= 0.0) {
            return Err(Error::Model(format!(
                "tensor `{name}` holds a scale ≤ 0 ({v})"
            )));
        }
        Ok(values)
    }

    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        Ok(Tensor::from_vec(
            self.f32s(name, shape)?,
            shape,
            &Device::Cpu,
        )?)
    }

    fn i8s(&self, name: &str, shape: &[usize]) -> Result<Vec<i8>> {
        Ok(self
            .view(name, Dtype::I8, shape)?
            .into_iter()
            .map(|b| b as i8)
            .collect())
    }

    fn bn(&self, prefix: &str, channels: usize) -> Result<BatchNorm> {
        let t = |field: &str| self.tensor(&format!("{prefix}.{field}"), &[channels]);
        let bn = BatchNorm {
            gamma: t("gamma")?,
            beta: t("beta")?,
            running_mean: t("running_mean")?.into(),
            running_var: t("running_var")?.into(),
        };
        Ok(bn)
    }
}

fn read_float(meta: ModelMeta, r: &Reader) -> Result<Model> {
    let mut model = Model::init(meta, 0, &Device::Cpu)?;
    for i in 0..model.layers.len() {
        let spec = model.layers[i].clone();
        model.weights[i] = r.tensor(&format!("{}.weight", spec.name), &spec.weight_shape())?;
        if spec.kind == LayerKind::Conv {
            model.bns[i] = vec![r.bn(&format!("{}.bn", spec.name), spec.out_channels)?];
        }
    }
    model.fc_bias = r.tensor("fc.bias", &[model.layers.last().expect("fc").out_channels])?;
    Ok(model)
}

fn check_bit_list(bits: &[u8]) -> Result<()> {
    if bits.is_empty() {
        return Err(Error::Model("an int8 model lists no bit-widths".into()));
    }
    for &b in bits {
        check_bits(b).map_err(|e| Error::Model(format!("metadata bit list: {e}")))?;
    }
    Ok(())
}

fn read_int8(meta: ModelMeta, r: &Reader) -> Result<(Model, Switchable)> {
    let bits = meta.bits.clone();
    check_bit_list(&bits)?;
    if meta.supernet && !bits.contains(&crate::quant::MAX_BITS) {
        return Err(Error::Model(format!(
            "a supernet must list 8 bits among its widths, this one lists {bits:?}"
        )));
    }
    let mut model = Model::init(meta, 0, &Device::Cpu)?;
    let mut masters = Vec::new();
    let mut act_scales = Vec::new();
    for (i, spec) in model.layers.clone().iter().enumerate() {
        let shape = spec.weight_shape();
        masters.push(QuantizedWeights {
            q: r.i8s(&format!("{}.weight.q", spec.name), &shape)?,
            scales: r.positive_f32s(&format!("{}.weight.scale", spec.name), &shape[..1])?,
            shape,
        });
        act_scales.push(if i == 0 {
            // the stem's input (image + noise) is never quantized
            ActScales::Calibrated { max: 1.0 }
        } else {
            ActScales::Learned {
                bits: bits.clone(),
                scales: r.positive_f32s(&format!("{}.input.scale", spec.name), &[bits.len()])?,
            }
        });
        if spec.kind == LayerKind::Conv {
            model.bns[i] = bits
                .iter()
                .map(|b| r.bn(&format!("{}.bn{b}", spec.name), spec.out_channels))
                .collect::<Result<_>>()?;
        }
    }
    model.bn_bits = bits;
    model.fc_bias = r.tensor("fc.bias", &[model.layers.last().expect("fc").out_channels])?;
    Ok((
        model,
        Switchable {
            masters,
            act_scales,
        },
    ))
}

fn read_export(meta: ModelMeta, r: &Reader) -> Result<Model> {
    let policy: Policy = meta
        .policy
        .clone()
        .ok_or_else(|| Error::Model("an export lists no policy".into()))
        .and_then(|p| {
            serde_json::from_value(p).map_err(|e| Error::Model(format!("policy: {e}")))
        })?;
    let mut model = Model::init(meta, 0, &Device::Cpu)?;
    policy
        .validate(model.layers.len())
        .map_err(|e| Error::Model(format!("policy: {e}")))?;
    for (i, spec) in model.layers.clone().iter().enumerate() {
        let shape = spec.weight_shape();
        let (wb, ab) = (policy.weight_bits[i], policy.act_bits[i]);
        let q = r.i8s(&format!("{}.weight.q", spec.name), &shape)?;
        let (lo, hi) = crate::quant::signed_range(wb);
        if let Some(v) = q.iter().find(|&&v| (v as i32) < lo || (v as i32) > hi) {
            return Err(Error::Model(format!(
                "`{}.weight.q` holds {v}, outside the {wb}-bit range",
                spec.name
            )));
        }
        let scales = r.positive_f32s(&format!("{}.weight.scale", spec.name), &shape[..1])?;
        let per = q.len() / scales.len();
        let values: Vec<f32> = q
            .iter()
            .enumerate()
            .map(|(k, &v)| v as f32 * scales[k / per])
            .collect();
        model.weights[i] = Tensor::from_vec(values, shape, &Device::Cpu)?;
        model.integer_weights[i] = Some(crate::model::IntegerWeights {
            bits: wb,
            q,
            scales,
        });
        if i > 0 {
            let scale = r.positive_f32s(&format!("{}.input.scale", spec.name), &[1])?[0];
            model.input_quant[i] = Some(crate::model::ActQuant { scale, bits: ab });
        }
        if spec.kind == LayerKind::Conv {
            model.bns[i] = vec![r.bn(&format!("{}.bn", spec.name), spec.out_channels)?];
        }
    }
    model.fc_bias = r.tensor("fc.bias", &[model.layers.last().expect("fc").out_channels])?;
    Ok(model)
}

/// The same model file with its metadata replaced by `meta` (e.g. to record Hessian traces):
/// every tensor keeps its name, dtype, shape and bytes, and any other header entries stay.
/// `meta` must describe the same kind of model as the file.
pub fn rewrite_meta(bytes: &[u8], meta: &ModelMeta) -> Result<Vec<u8>> {
    let (old, st) = open(bytes)?;
    if old.kind != meta.kind || old.arch != meta.arch {
        return Err(Error::Invalid(format!(
            "new metadata describes a `{}` {} model, the file holds a `{}` {} model",
            meta.kind, meta.arch, old.kind, old.arch
        )));
    }
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::Model(format!("not a readable safetensors file ({e})")))?;
    let mut metadata = header.metadata().clone().unwrap_or_default();
    // the digest of the (unchanged) tensors goes with the new metadata, as every save writes it
    let stamped = Stamped {
        meta,
        tensors_sha256: safetensors_digest(&st),
    };
    let json = serde_json::to_string(&stamped).map_err(|e| Error::Model(e.to_string()))?;
    metadata.insert(METADATA_KEY.to_string(), json);
    safetensors::serialize(st.tensors(), Some(metadata)).map_err(|e| Error::Model(e.to_string()))
}

/// Collects named tensors and serialises them with the metadata.
#[derive(Default)]
struct Writer {
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
}

impl Writer {
    fn f32s(&mut self, name: String, shape: &[usize], values: &[f32]) {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensors.push((name, Dtype::F32, shape.to_vec(), bytes));
    }

    fn tensor(&mut self, name: String, t: &Tensor) -> Result<()> {
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        self.f32s(name, t.dims(), &values);
        Ok(())
    }

    fn i8s(&mut self, name: String, shape: &[usize], values: &[i8]) {
        let bytes = values.iter().map(|&v| v as u8).collect();
        self.tensors.push((name, Dtype::I8, shape.to_vec(), bytes));
    }

    fn bn(&mut self, prefix: &str, bn: &BatchNorm) -> Result<()> {
        self.tensor(format!("{prefix}.gamma"), &bn.gamma)?;
        self.tensor(format!("{prefix}.beta"), &bn.beta)?;
        self.tensor(format!("{prefix}.running_mean"), &bn.running_mean.borrow())?;
        self.tensor(format!("{prefix}.running_var"), &bn.running_var.borrow())
    }

    fn finish(self, meta: &ModelMeta) -> Result<Vec<u8>> {
        let views = self
            .tensors
            .iter()
            .map(|(n, dtype, shape, bytes)| {
                safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| Error::Model(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let digest = tensors_sha256(
            self.tensors
                .iter()
                .map(|(n, dtype, shape, bytes)| (n.as_str(), *dtype, &shape[..], &bytes[..])),
        );
        serialize(views, meta, digest)
    }
}

/// A float model file (one BN set).
pub fn save_float(model: &Model) -> Result<Vec<u8>> {
    if model.bns.iter().any(|sets| sets.len() > 1) {
        return Err(Error::Invalid(
            "a multi-bit model is saved as int8, not float".into(),
        ));
    }
    let mut w = Writer::default();
    for (i, spec) in model.layers.iter().enumerate() {
        w.tensor(format!("{}.weight", spec.name), &model.weights[i])?;
        if let Some(bn) = model.bns[i].first() {
            w.bn(&format!("{}.bn", spec.name), bn)?;
        }
    }
    w.tensor("fc.bias".into(), &model.fc_bias)?;
    let mut meta = model.meta.clone();
    meta.kind = KIND_FLOAT.into();
    w.finish(&meta)
}

/// The int8 multi-bit file Double Rounding ships: masters, scales, per-bit input scales and
/// per-bit BN. `model.bn_bits` lists the trained bit-widths.
pub fn save_int8(model: &Model, switchable: &Switchable) -> Result<Vec<u8>> {
    let bits = model.bn_bits.clone();
    check_bit_list(&bits)?;
    let mut w = Writer::default();
    for (i, spec) in model.layers.iter().enumerate() {
        let master = &switchable.masters[i];
        w.i8s(format!("{}.weight.q", spec.name), &master.shape, &master.q);
        w.f32s(
            format!("{}.weight.scale", spec.name),
            &[master.scales.len()],
            &master.scales,
        );
        if i > 0 {
            let scales: Vec<f32> = bits
                .iter()
                .map(|&b| switchable.act_scales[i].scale_at(b))
                .collect();
            w.f32s(format!("{}.input.scale", spec.name), &[bits.len()], &scales);
        }
        for (bn, b) in model.bns[i].iter().zip(&bits) {
            w.bn(&format!("{}.bn{b}", spec.name), bn)?;
        }
    }
    w.tensor("fc.bias".into(), &model.fc_bias)?;
    let mut meta = model.meta.clone();
    meta.kind = KIND_INT8.into();
    meta.bits = bits;
    w.finish(&meta)
}

/// `bitsmooth export`: the integer weights at `policy` (l-bit values held in int8), their
/// scales s_l, and the input scales and BN that policy uses — enough to re-check Double
/// Rounding from the file alone, and a model that loads and runs as is.
pub fn save_export(model: &Model, switchable: &Switchable, policy: &Policy) -> Result<Vec<u8>> {
    policy.validate(model.layers.len())?;
    let mut w = Writer::default();
    for (i, spec) in model.layers.iter().enumerate() {
        let master = &switchable.masters[i];
        let wb = policy.weight_bits[i];
        w.i8s(
            format!("{}.weight.q", spec.name),
            &master.shape,
            &master.integers_at(wb)?,
        );
        let scales = master.scales_at(wb)?;
        w.f32s(
            format!("{}.weight.scale", spec.name),
            &[scales.len()],
            &scales,
        );
        if i > 0 {
            let s = switchable.act_scales[i].scale_at(policy.act_bits[i]);
            w.f32s(format!("{}.input.scale", spec.name), &[1], &[s]);
        }
        if spec.kind == LayerKind::Conv {
            let set = model.bn_set_for_bits(wb);
            w.bn(&format!("{}.bn", spec.name), &model.bns[i][set])?;
        }
    }
    w.tensor("fc.bias".into(), &model.fc_bias)?;
    let mut meta = model.meta.clone();
    meta.kind = KIND_EXPORT.into();
    meta.policy = Some(serde_json::to_value(policy).map_err(|e| Error::Model(e.to_string()))?);
    w.finish(&meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelMeta;

    fn fresh() -> Model {
        Model::init(ModelMeta::new("mnist", 0.25), 7, &Device::Cpu).unwrap()
    }

    fn logits(m: &Model, x: &Tensor) -> Vec<Vec<f32>> {
        m.forward(x).unwrap().to_vec2::<f32>().unwrap()
    }

    /// A multi-bit model made from a fresh float one (BN sets per bit, learned-style scales).
    fn int8_model() -> (Model, Switchable) {
        let mut m = fresh();
        let x = Tensor::rand(0f32, 1f32, (4, 1, 28, 28), &Device::Cpu).unwrap();
        let mut sw = Switchable::from_float(&m, &x).unwrap();
        m.split_bn_per_bits(&[8, 6, 4, 2]).unwrap();
        // make the BN sets differ so that choosing the wrong one shows
        for (k, bn) in m.bns[2].iter_mut().enumerate() {
            bn.beta = Tensor::full(0.1 * k as f32, 16, &Device::Cpu).unwrap();
        }
        for a in sw.act_scales.iter_mut() {
            let bits = vec![8, 6, 4, 2];
            let scales = bits.iter().map(|&b| a.scale_at(b) * 1.1).collect();
            *a = ActScales::Learned { bits, scales };
        }
        (m, sw)
    }

    #[test]
    fn float_round_trip_is_exact() {
        let m = fresh();
        *m.bns[2][0].running_mean.borrow_mut() = Tensor::full(0.5f32, 16, &Device::Cpu).unwrap();
        let back = load(&save_float(&m).unwrap()).unwrap();
        assert!(back.switchable.is_none());
        assert_eq!(back.model.meta.sigma, m.meta.sigma);
        let x = Tensor::rand(0f32, 1f32, (2, 1, 28, 28), &Device::Cpu).unwrap();
        assert_eq!(logits(&m, &x), logits(&back.model, &x));
    }

    #[test]
    fn int8_round_trip_is_exact_at_every_policy() {
        let (mut m, sw) = int8_model();
        let bytes = save_int8(&m, &sw).unwrap();
        let Loaded {
            model: mut back,
            switchable,
        } = load(&bytes).unwrap();
        let back_sw = switchable.expect("int8 files are switchable");
        assert_eq!(back_sw.masters, sw.masters);
        assert_eq!(back.bn_bits, vec![8, 6, 4, 2]);
        let x = Tensor::rand(0f32, 1f32, (3, 1, 28, 28), &Device::Cpu).unwrap();
        // loading leaves the model at w8a8
        sw.apply(&mut m, &Policy::uniform(8, 8, 8).unwrap())
            .unwrap();
        assert_eq!(logits(&m, &x), logits(&back, &x));
        let mut mixed = Policy::uniform(8, 4, 6).unwrap();
        mixed.weight_bits[2] = 2;
        mixed.act_bits[5] = 3;
        sw.apply(&mut m, &mixed).unwrap();
        back_sw.apply(&mut back, &mixed).unwrap();
        assert_eq!(back.bn_active[2], 3);
        assert_eq!(logits(&m, &x), logits(&back, &x));
    }

    #[test]
    fn export_reloads_exactly_and_holds_the_double_rounded_integers() {
        let (mut m, sw) = int8_model();
        let mut policy = Policy::uniform(8, 4, 4).unwrap();
        policy.weight_bits[0] = 8;
        policy.weight_bits[7] = 2;
        let bytes = save_export(&m, &sw, &policy).unwrap();
        let exported = load(&bytes).unwrap();
        assert!(exported.switchable.is_none());
        sw.apply(&mut m, &policy).unwrap();
        let x = Tensor::rand(0f32, 1f32, (3, 1, 28, 28), &Device::Cpu).unwrap();
        assert_eq!(logits(&m, &x), logits(&exported.model, &x));
        // the file alone re-checks Double Rounding: its integers are the shifted masters
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let r = Reader { st: &st };
        let q0 = r.i8s("stem.weight.q", &[8, 1, 3, 3]).unwrap();
        assert_eq!(q0, sw.masters[0].q);
        let q7 = r.i8s("fc.weight.q", &[10, 2352]).unwrap();
        assert!(q7.iter().all(|&v| (-2..=1).contains(&v)));
        for (v, &master) in q7.iter().zip(&sw.masters[7].q) {
            assert_eq!(*v as i32, crate::quant::double_round(master as i32, 8, 2));
        }
        let s7 = r.f32s("fc.weight.scale", &[10]).unwrap();
        assert_eq!(s7[3], sw.masters[7].scales[3] * 64.0);
    }

    #[test]
    fn rewrite_meta_changes_only_the_metadata() {
        let (m, sw) = int8_model();
        let bytes = save_int8(&m, &sw).unwrap();
        let mut meta = load(&bytes).unwrap().model.meta;
        meta.hessian_traces = Some(vec![1.5, 0.25, 3.0, 0.0, 2.0, 1.0, 0.5, 4.0]);
        let out = rewrite_meta(&bytes, &meta).unwrap();
        let (before, after) = (
            SafeTensors::deserialize(&bytes).unwrap(),
            SafeTensors::deserialize(&out).unwrap(),
        );
        let mut names = before.names();
        names.sort();
        let mut names_after = after.names();
        names_after.sort();
        assert_eq!(names, names_after);
        for name in names {
            let (a, b) = (before.tensor(name).unwrap(), after.tensor(name).unwrap());
            assert_eq!(
                (a.dtype(), a.shape(), a.data()),
                (b.dtype(), b.shape(), b.data())
            );
        }
        let back = load(&out).unwrap();
        assert_eq!(back.model.meta, meta);
        assert_eq!(back.switchable.unwrap().masters, sw.masters);
        // a file without traces reads as None; another kind of model is refused
        assert_eq!(load(&bytes).unwrap().model.meta.hessian_traces, None);
        meta.kind = KIND_FLOAT.into();
        assert!(rewrite_meta(&bytes, &meta)
            .unwrap_err()
            .to_string()
            .contains("int8"));
    }

    #[test]
    fn corrupt_truncated_and_wrong_shaped_files_give_clear_errors() {
        let (m, sw) = int8_model();
        for bytes in [save_float(&fresh()).unwrap(), save_int8(&m, &sw).unwrap()] {
            let err = load(&bytes[..bytes.len() / 2]).err().unwrap();
            assert!(err.to_string().contains("truncated or corrupt"), "{err}");
        }
        let err = load(b"garbage").err().unwrap();
        assert!(err.to_string().contains("model file"), "{err}");

        let mut wrong = fresh();
        wrong.weights[2] =
            Tensor::zeros((16, 16, 1, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = load(&save_float(&wrong).unwrap()).err().unwrap();
        let msg = err.to_string();
        assert!(
            msg.contains("block1.conv2.weight") && msg.contains("shape"),
            "{msg}"
        );

        let mut nan = fresh();
        nan.fc_bias = Tensor::full(f32::NAN, 10, &Device::Cpu).unwrap();
        let err = load(&save_float(&nan).unwrap()).err().unwrap();
        assert!(err.to_string().contains("non-finite"), "{err}");

        let mut bad_scale = Switchable {
            masters: sw.masters.clone(),
            act_scales: sw.act_scales.clone(),
        };
        bad_scale.masters[3].scales[0] = 0.0;
        let err = load(&save_int8(&m, &bad_scale).unwrap()).err().unwrap();
        assert!(err.to_string().contains("scale ≤ 0"), "{err}");

        let mut bad_bits = int8_model().0;
        bad_bits.bn_bits = vec![9];
        assert!(save_int8(&bad_bits, &sw).is_err());
        assert!(load_float(&save_int8(&m, &sw).unwrap())
            .err()
            .unwrap()
            .to_string()
            .contains("int8"));
    }

    /// Where tensor `name`'s bytes sit in a safetensors file.
    fn tensor_bytes(bytes: &[u8], name: &str) -> std::ops::Range<usize> {
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
        let offsets = &header[name]["data_offsets"];
        let start = 8 + header_len + offsets[0].as_u64().unwrap() as usize;
        start..8 + header_len + offsets[1].as_u64().unwrap() as usize
    }

    /// The same file with the digest taken out of its metadata JSON, every other byte of it
    /// kept (as files were saved before the digest).
    fn without_digest(bytes: &[u8]) -> Vec<u8> {
        let st = SafeTensors::deserialize(bytes).unwrap();
        let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
        let json = &header.metadata().as_ref().unwrap()[METADATA_KEY];
        let at = json.find(",\"tensors_sha256\":\"").unwrap();
        let bare = format!("{}}}", &json[..at]);
        assert_eq!(
            json.len() - bare.len(),
            ",\"tensors_sha256\":\"\"".len() + 64
        );
        let metadata = HashMap::from([(METADATA_KEY.to_string(), bare)]);
        safetensors::serialize(st.tensors(), Some(metadata)).unwrap()
    }

    #[test]
    fn one_changed_weight_byte_makes_the_file_refuse_to_load() {
        let (m, sw) = int8_model();
        for bytes in [save_float(&fresh()).unwrap(), save_int8(&m, &sw).unwrap()] {
            load(&bytes).unwrap();
            let name = if load_float(&bytes).is_ok() {
                "block2.conv2.weight"
            } else {
                "block2.conv2.weight.q"
            };
            let range = tensor_bytes(&bytes, name);
            // one bit of one weight in the middle of the tensor: still a finite, in-range value
            let mut flipped = bytes.clone();
            flipped[range.start + range.len() / 2] ^= 0x01;
            let err = load(&flipped)
                .err()
                .expect("a corrupted weight loaded")
                .to_string();
            assert!(
                err.contains(
                    "the weights do not match the digest recorded in the file: corrupted?"
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn a_file_without_a_digest_is_refused_until_restamped() {
        let (m, sw) = int8_model();
        let stamped = save_int8(&m, &sw).unwrap();
        let bare = without_digest(&stamped);
        let err = load(&bare).err().unwrap().to_string();
        assert!(
            err.contains("records no digest") && err.contains("restamp"),
            "{err}"
        );
        let restamped = restamp(&bare).unwrap();
        // only the metadata changes: the tensors and the model are as saved
        assert_eq!(restamped, stamped);
        let back = load(&restamped).unwrap();
        assert_eq!(back.switchable.unwrap().masters, sw.masters);
        // re-stamping a stamped file changes nothing, and a damaged one is not re-blessed
        assert_eq!(restamp(&stamped).unwrap(), stamped);
        let range = tensor_bytes(&stamped, "fc.weight.q");
        let mut flipped = stamped.clone();
        flipped[range.start] ^= 0x01;
        let err = restamp(&flipped).err().unwrap().to_string();
        assert!(
            err.contains("do not match the digest already recorded"),
            "{err}"
        );
        assert!(restamp(b"garbage").is_err());
    }

    #[test]
    fn the_tensor_digest_hashes_the_documented_byte_string() {
        // two tensors given out of name order; the digest takes them by name: `a` then `b`
        let a: &[u8] = &[1, 2, 3, 4];
        let b: &[u8] = &[0xff];
        let digest = tensors_sha256([
            ("b", Dtype::I8, &[1usize][..], b),
            ("a", Dtype::F32, &[1, 1][..], a),
        ]);
        let le = |n: u64| n.to_le_bytes().to_vec();
        let mut expected = Vec::new();
        // a: name, dtype, rank 2, dims 1 and 1, four bytes of data
        expected.extend(
            [
                le(1),
                b"a".to_vec(),
                le(3),
                b"F32".to_vec(),
                le(2),
                le(1),
                le(1),
            ]
            .concat(),
        );
        expected.extend([le(4), a.to_vec()].concat());
        // b: name, dtype, rank 1, dim 1, one byte
        expected.extend([le(1), b"b".to_vec(), le(2), b"I8".to_vec(), le(1), le(1)].concat());
        expected.extend([le(1), b.to_vec()].concat());
        assert_eq!(digest, crate::smoothing::reference::sha256_hex(&expected));
        // and anything else gives another digest: the data, a shape, a name
        let other = tensors_sha256([
            ("b", Dtype::I8, &[1usize][..], &[0xfe][..]),
            ("a", Dtype::F32, &[1, 1][..], a),
        ]);
        assert_ne!(other, digest);
        let reshaped = tensors_sha256([
            ("b", Dtype::I8, &[1usize][..], b),
            ("a", Dtype::F32, &[1][..], a),
        ]);
        assert_ne!(reshaped, digest);
    }
}
