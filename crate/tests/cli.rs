//! The native CLI, run as a user would run it.
#![cfg(all(feature = "cli", not(target_arch = "wasm32")))]

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bitsmooth(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bitsmooth"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn eval_json_reports_accuracy_layers_and_macs() {
    let out = bitsmooth(&[
        "eval",
        "--model",
        "public/models/mnist-sigma0.25.safetensors",
        "--data",
        "public/data/mnist-test.bsds",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["images"], 1000);
    assert!(v["accuracy"].as_f64().unwrap() > 0.98, "{}", v["accuracy"]);
    assert_eq!(v["dataset"], "mnist");
    assert_eq!(v["sigma"], 0.25);
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 8);
    let sum: u64 = layers.iter().map(|l| l["macs"].as_u64().unwrap()).sum();
    assert_eq!(v["macs"].as_u64().unwrap(), sum);
    assert_eq!(layers[0]["name"], "stem");
    assert_eq!(layers[7]["kind"], "linear");
}

#[test]
fn eval_of_a_range_agrees_with_the_fixture_logits() {
    let out = bitsmooth(&[
        "eval",
        "--model",
        "public/models/mnist-sigma0.25.safetensors",
        "--data",
        "public/data/mnist-test.bsds",
        "--count",
        "8",
        "--logits",
        "--json",
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/mnist-sigma0.25-head8-logits.json")).unwrap();
    let (a, b) = (
        v["logits"].as_array().unwrap(),
        fixture["logits"].as_array().unwrap(),
    );
    assert_eq!(a.len(), 80);
    for (x, y) in a.iter().zip(b) {
        assert!((x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-4);
    }
}

#[test]
fn corrupt_model_and_missing_files_exit_nonzero_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}").unwrap();
    let out = bitsmooth(&["eval", "--model", bad.to_str().unwrap(), "--json"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("model file"), "{err}");

    let out = bitsmooth(&["eval", "--model", "no/such/file.safetensors"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read no/such/file.safetensors"));

    let out = bitsmooth(&[
        "train",
        "--dataset",
        "mnist",
        "--sigma=-1",
        "--out",
        "x",
        "--data-dir",
        "crate/tests/fixtures",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("training σ must be ≥ 0"));
}

/// The TSV without its `time` column (wall-clock seconds differ between runs).
fn without_time(tsv: &str) -> Vec<Vec<String>> {
    tsv.lines()
        .map(|l| {
            l.split('\t')
                .enumerate()
                .filter(|(i, _)| *i != 5)
                .map(|(_, c)| c.to_string())
                .collect()
        })
        .collect()
}

fn certify(dir: &std::path::Path, name: &str, seed: &str) -> (std::process::Output, String) {
    let out = dir.join(name);
    let output = bitsmooth(&[
        "certify",
        "--model",
        "public/models/mnist-sigma0.25.safetensors",
        "--data",
        "crate/tests/fixtures/mnist-test.bsds",
        "--n0",
        "20",
        "--n",
        "200",
        "--count",
        "3",
        "--skip",
        "2",
        "--seed",
        seed,
        "--out",
        out.to_str().unwrap(),
    ]);
    let tsv = std::fs::read_to_string(&out).unwrap_or_default();
    (output, tsv)
}

#[test]
fn certify_writes_the_reference_columns_and_the_same_seed_gives_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (out, a) = certify(dir.path(), "a.tsv", "7");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = without_time(&a);
    assert_eq!(
        rows[0],
        ["idx", "label", "predict", "radius", "correct", "nA", "n"]
    );
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1][0], "2");
    for row in &rows[1..] {
        assert_eq!(row[6], "200");
        let (n_a, radius): (u64, f64) = (row[5].parse().unwrap(), row[3].parse().unwrap());
        assert!(n_a <= 200 && radius >= 0.0);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ACR") && stdout.contains("certified accuracy at r = 0.50"),
        "{stdout}"
    );

    let (_, b) = certify(dir.path(), "b.tsv", "7");
    assert_eq!(without_time(&b), rows);
}

#[test]
fn certify_rejects_bad_sigma_alpha_and_sample_counts() {
    for (flag, value, message) in [
        ("--sigma", "0", "σ"),
        ("--alpha", "1.5", "α"),
        ("--n0", "0", "n0"),
        ("--n", "999999999999", "n"),
    ] {
        let arg = format!("{flag}={value}");
        let out = bitsmooth(&[
            "certify",
            "--model",
            "public/models/mnist-sigma0.25.safetensors",
            "--data",
            "crate/tests/fixtures/mnist-test.bsds",
            &arg,
            "--out",
            "/dev/null",
        ]);
        assert!(!out.status.success(), "{arg} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{arg}: {err}");
    }
}
