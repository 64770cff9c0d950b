//! What a full certification's soundness depends on, recorded beside its results so that IRS
//! can refuse a reference made with other settings.
//!
//! IRS (see [`irs`](super::irs)) starts from f's certificate for an image: its guess ĉ_A, its
//! count n_A over n estimation draws and the α its bound was taken at. Those numbers certify
//! fᵖ only if they came from the same classifier f (the same weights, at the policy IRS
//! uses as f), the same noise (σ, seed, and the generator with its sample layout, because IRS
//! replays f's estimation draws) and the same n0, n and α. A certification TSV holds none of
//! that, so `bitsmooth certify` writes a [`ReferenceSettings`] next to it (`<out>.json`) and
//! `certify --incremental --reference` compares it with its own run by [`check_reference`].
//!
//! Pure: no I/O here (the CLI reads and writes the file).

use crate::error::{Error, Result};
use crate::quant::Policy;
use crate::smoothing::certify::{ESTIMATION_SAMPLES, SELECTION_SAMPLES};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The settings a certification ran with, as stored in its JSON sidecar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceSettings {
    /// The digest of the model's tensors recorded in (and verified against) the model file
    /// ([`crate::checkpoint::tensors_digest`]): it names the function f computes, whatever
    /// annotations (Hessian traces, accuracies) the metadata gains later. Lowercase hex.
    pub model_tensors_sha256: String,
    /// `float`, `int8` or `export` (the model file's kind).
    pub model_kind: String,
    /// The bit policy the model ran at; `None`: float (an unquantized float model).
    pub policy: Option<Policy>,
    /// Noise level σ > 0.
    pub sigma: f32,
    /// Failure probability α ∈ (0, 1) of every certificate.
    pub alpha: f64,
    /// Selection draws per image.
    pub n0: u64,
    /// Estimation draws per image.
    pub n: u64,
    /// Seed of the noise.
    pub seed: u64,
    /// The images certified: `skip..skip + count` of the dataset.
    pub skip: usize,
    pub count: usize,
    /// The noise generator and its sample layout ([`noise_generator`]).
    pub noise_generator: String,
    /// The bitsmooth version that wrote the file (recorded, not compared).
    pub bitsmooth_version: String,
}

/// Name of the noise generator and the sample-index layout certification draws with; it
/// changes whenever the draws an index names change, so references made before do not match.
pub fn noise_generator() -> String {
    format!(
        "Philox-4x32-10 + Box-Muller (f32); key = seed, counter = [element / 4, sample mod 2^32, \
         sample div 2^32, image]; estimation samples from {ESTIMATION_SAMPLES}, selection samples \
         from {SELECTION_SAMPLES}"
    )
}

/// The version of this build, for [`ReferenceSettings::bitsmooth_version`].
pub const BITSMOOTH_VERSION: &str = env!("CARGO_PKG_VERSION");

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `policy` as `w8a8` when uniform, else both lists; `float` for `None`.
fn policy_text(policy: Option<&Policy>) -> String {
    let Some(p) = policy else {
        return "float".into();
    };
    let uniform = |bits: &[u8]| bits.iter().all(|&b| Some(&b) == bits.first());
    match (p.weight_bits.first(), p.act_bits.first()) {
        (Some(w), Some(a)) if uniform(&p.weight_bits) && uniform(&p.act_bits) => {
            format!("w{w}a{a}")
        }
        _ => format!("weights {:?}, activations {:?}", p.weight_bits, p.act_bits),
    }
}

/// Checks that `reference` (read from a sidecar) was made with the settings `run` (the IRS run
/// about to reuse it, with `run.policy` the policy IRS uses as f) depends on: the same model
/// file, policy, σ, α, n0, n, seed and noise generator. Skip, count and version may differ
/// (a missing image is caught when its row is looked up). The error names the first field
/// that differs and both values.
pub fn check_reference(reference: &ReferenceSettings, run: &ReferenceSettings) -> Result<()> {
    let differ = |field: &str, theirs: String, ours: String| {
        Err(Error::Invalid(format!(
            "the reference certification was made with {field} = {theirs}, this run uses \
             {field} = {ours}: IRS needs a reference made with the same settings (certify the \
             reference again with them)"
        )))
    };
    if reference.model_tensors_sha256 != run.model_tensors_sha256 {
        return differ(
            "model weights digest (tensors_sha256)",
            reference.model_tensors_sha256.clone(),
            run.model_tensors_sha256.clone(),
        );
    }
    if reference.policy != run.policy {
        return differ(
            "policy",
            policy_text(reference.policy.as_ref()),
            policy_text(run.policy.as_ref()),
        );
    }
    if reference.sigma != run.sigma {
        return differ("σ", reference.sigma.to_string(), run.sigma.to_string());
    }
    if reference.alpha != run.alpha {
        return differ("α", reference.alpha.to_string(), run.alpha.to_string());
    }
    if reference.n0 != run.n0 {
        return differ("n0", reference.n0.to_string(), run.n0.to_string());
    }
    if reference.n != run.n {
        return differ("n", reference.n.to_string(), run.n.to_string());
    }
    if reference.seed != run.seed {
        return differ("seed", reference.seed.to_string(), run.seed.to_string());
    }
    if reference.noise_generator != run.noise_generator {
        return differ(
            "noise generator",
            format!("`{}`", reference.noise_generator),
            format!("`{}`", run.noise_generator),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ReferenceSettings {
        ReferenceSettings {
            model_tensors_sha256: "ab".repeat(32),
            model_kind: "int8".into(),
            policy: Some(Policy::uniform(8, 8, 8).unwrap()),
            sigma: 0.25,
            alpha: 0.001,
            n0: 100,
            n: 10_000,
            seed: 0,
            skip: 0,
            count: 500,
            noise_generator: noise_generator(),
            bitsmooth_version: BITSMOOTH_VERSION.into(),
        }
    }

    fn refused(change: impl Fn(&mut ReferenceSettings)) -> String {
        let mut reference = settings();
        change(&mut reference);
        check_reference(&reference, &settings())
            .expect_err("a differing reference was accepted")
            .to_string()
    }

    #[test]
    fn a_reference_with_the_same_settings_is_accepted_whatever_its_range_and_version() {
        let mut reference = settings();
        reference.skip = 100;
        reference.count = 7;
        reference.bitsmooth_version = "0.0.1".into();
        check_reference(&reference, &settings()).unwrap();
    }

    #[test]
    fn another_model_file_is_refused_naming_both_digests() {
        let msg = refused(|r| r.model_tensors_sha256 = "cd".repeat(32));
        assert!(
            msg.contains("model weights digest (tensors_sha256)"),
            "{msg}"
        );
        assert!(
            msg.contains(&"cd".repeat(32)) && msg.contains(&"ab".repeat(32)),
            "{msg}"
        );
    }

    #[test]
    fn a_reference_at_another_policy_than_f_is_refused() {
        let msg = refused(|r| r.policy = Some(Policy::uniform(8, 4, 4).unwrap()));
        assert!(
            msg.contains("policy = w4a4") && msg.contains("policy = w8a8"),
            "{msg}"
        );
        let msg = refused(|r| r.policy = None);
        assert!(msg.contains("policy = float"), "{msg}");
        let msg = refused(|r| r.policy.as_mut().unwrap().weight_bits[7] = 6);
        assert!(msg.contains("weights [8, 8, 8, 8, 8, 8, 8, 6]"), "{msg}");
    }

    #[test]
    fn another_sigma_alpha_n0_n_or_seed_is_refused_naming_the_field_and_both_values() {
        type Change = Box<dyn Fn(&mut ReferenceSettings)>;
        let cases: [(&str, &str, &str, Change); 5] = [
            ("σ", "0.5", "0.25", Box::new(|r| r.sigma = 0.5)),
            ("α", "0.01", "0.001", Box::new(|r| r.alpha = 0.01)),
            ("n0", "50", "100", Box::new(|r| r.n0 = 50)),
            ("n", "1000", "10000", Box::new(|r| r.n = 1000)),
            ("seed", "3", "0", Box::new(|r| r.seed = 3)),
        ];
        for (field, theirs, ours, change) in cases {
            let msg = refused(change);
            assert!(
                msg.contains(&format!("made with {field} = {theirs}"))
                    && msg.contains(&format!("uses {field} = {ours}")),
                "{field}: {msg}"
            );
        }
    }

    #[test]
    fn another_noise_generator_is_refused() {
        let msg = refused(|r| r.noise_generator = "Mersenne Twister".into());
        assert!(
            msg.contains("noise generator = `Mersenne Twister`"),
            "{msg}"
        );
    }

    #[test]
    fn the_noise_generator_names_the_sample_layout() {
        // estimation draws from 0, selection draws from 2³² = 4294967296
        let name = noise_generator();
        assert!(name.starts_with("Philox-4x32-10 + Box-Muller"), "{name}");
        assert!(name.contains("estimation samples from 0,"), "{name}");
        assert!(name.contains("selection samples from 4294967296"), "{name}");
    }

    #[test]
    fn sha256_matches_the_published_test_vector() {
        // FIPS 180-2, appendix B.1: SHA-256("abc")
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn settings_round_trip_through_json() {
        let s = settings();
        let back: ReferenceSettings =
            serde_json::from_str(&serde_json::to_string_pretty(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
