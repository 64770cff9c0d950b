//! The native CLI, run as a user would run it.
#![cfg(all(feature = "cli", not(target_arch = "wasm32")))]

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    // Read at run time: a test binary that cargo reuses from another checkout sharing the
    // target directory (CI's clean clone) would otherwise look in that checkout.
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    PathBuf::from(manifest).join("..")
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

fn certify(
    dir: &std::path::Path,
    name: &str,
    seed: &str,
    extra: &[&str],
) -> (std::process::Output, String) {
    let out = dir.join(name);
    let mut args = vec![
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
    ];
    args.extend_from_slice(extra);
    let output = bitsmooth(&args);
    let tsv = std::fs::read_to_string(&out).unwrap_or_default();
    (output, tsv)
}

#[test]
fn certify_writes_the_reference_columns_and_the_same_seed_gives_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (out, a) = certify(dir.path(), "a.tsv", "7", &[]);
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

    let (_, b) = certify(dir.path(), "b.tsv", "7", &[]);
    assert_eq!(without_time(&b), rows);
    // the executor's thread count changes nothing but the time
    for threads in ["1", "3"] {
        let (_, c) = certify(dir.path(), "c.tsv", "7", &["--threads", threads]);
        assert_eq!(without_time(&c), rows, "--threads {threads}");
    }
    let (out, _) = certify(dir.path(), "d.tsv", "7", &["--threads", "0"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads"));
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

fn eval_json(extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "eval",
        "--model",
        "public/models/mnist-sigma0.25.safetensors",
        "--data",
        "public/data/mnist-test.bsds",
        "--count",
        "300",
        "--json",
    ];
    args.extend_from_slice(extra);
    bitsmooth(&args)
}

#[test]
fn eval_at_a_bit_policy_reports_policy_bops_and_size() {
    let stored: serde_json::Value = serde_json::from_slice(&eval_json(&[]).stdout).unwrap();
    let out = eval_json(&["--bits", "4"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let w4: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let macs = w4["macs"].as_u64().unwrap();
    let weights = w4["weights"].as_u64().unwrap();
    assert_eq!(macs, 2_174_816);
    // BOPs by hand: the stem's 8·1·9·28² = 56,448 MACs multiply 4-bit weights by the float
    // image + noise (32 bits, never quantized); the other 2,118,368 MACs are 4 × 4 bits:
    // 7,225,344 + 33,893,888
    assert_eq!(w4["bops"].as_u64().unwrap(), 41_119_232);
    assert_eq!(w4["size_bytes"].as_f64().unwrap(), weights as f64 / 2.0);
    assert_eq!(
        w4["policy"]["weight_bits"],
        serde_json::json!([4, 4, 4, 4, 4, 4, 4, 4])
    );
    // the shipped int8 model runs at w8a8 unless told otherwise
    // 56,448·8·32 + 2,118,368·64 = 14,450,688 + 135,575,552
    assert_eq!(stored["bops"].as_u64().unwrap(), 150_026_240);
    assert_eq!(stored["policy"]["act_bits"], serde_json::json!(vec![8; 8]));
    // trained jointly at 4 bits, it loses little there
    assert!(w4["accuracy"].as_f64().unwrap() > stored["accuracy"].as_f64().unwrap() - 0.01);

    let mixed = eval_json(&["--policy", "8,6,4,4,4,4,6,8", "--act-bits", "8"]);
    let mixed: serde_json::Value = serde_json::from_slice(&mixed.stdout).unwrap();
    assert_eq!(mixed["policy"]["act_bits"], serde_json::json!(vec![8; 8]));
    // w2a2: 56,448·2·32 + 2,118,368·4 = 3,612,672 + 8,473,472; the stem's activation bits
    // change nothing (its input is not quantized)
    for acts in ["2", "8,2,2,2,2,2,2,2"] {
        let out = eval_json(&["--policy", "2,2,2,2,2,2,2,2", "--act-bits", acts]);
        let w2: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            w2["bops"].as_u64().unwrap(),
            12_086_144,
            "--act-bits {acts}"
        );
        assert_eq!(w2["layers"][0]["macs"], 56_448);
    }
}

#[test]
fn bad_policies_are_rejected_with_messages() {
    for (args, message) in [
        (vec!["--bits", "9"], "outside 2..=8"),
        (vec!["--bits", "1"], "outside 2..=8"),
        (vec!["--policy", "8,8,8"], "3 bit-widths"),
        (vec!["--policy", "8,8,8,8,8,8,8,x"], "`x`"),
        (
            vec!["--policy", "8,8,8,8,8,8,8,8", "--act-bits", "8,8"],
            "2 bit-widths",
        ),
    ] {
        let out = eval_json(&args);
        assert!(!out.status.success(), "{args:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{args:?}: {err}");
    }
    let out = bitsmooth(&[
        "certify",
        "--model",
        "public/models/mnist-sigma0.25.safetensors",
        "--incremental",
        "--n-chi",
        "10",
        "--out",
        "/dev/null",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --bits or --policy"));
}

#[test]
fn incremental_certification_writes_the_irs_columns() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("irs.tsv");
    let out = bitsmooth(&[
        "certify",
        "--model",
        "public/models/mnist-sigma0.25.safetensors",
        "--data",
        "crate/tests/fixtures/mnist-test.bsds",
        "--sigma",
        "0.75",
        "--n0",
        "20",
        "--n",
        "400",
        "--count",
        "4",
        "--bits",
        "4",
        "--incremental",
        "--n-chi",
        "40",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tsv = std::fs::read_to_string(&out_path).unwrap();
    let mut lines = tsv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "idx\tlabel\tpredict\tradius\tcorrect\ttime\tnA\tn\tpath\tzeta\tdisagreements\tn_chi\treference_time"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 4);
    // at σ = 0.75 this σ = 0.25 model is unsure, so p_A < γ and IRS takes its incremental path
    assert!(rows.iter().any(|r| r[8] == "incremental"), "{tsv}");
    for r in rows.iter().filter(|r| r[8] == "incremental") {
        let zeta: f64 = r[9].parse().unwrap();
        let disagreements: f64 = r[10].parse().unwrap();
        assert!(zeta >= disagreements / 40.0, "{r:?}");
    }
    assert!(String::from_utf8_lossy(&out.stdout).contains("time per image: IRS"));
}

fn eval_model(model: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "eval",
        "--model",
        model,
        "--data",
        "public/data/mnist-test.bsds",
        "--count",
        "200",
        "--logits",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = bitsmooth(&args);
    assert!(
        out.status.success(),
        "{extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_float_model_still_runs_float_and_post_training_quantized() {
    let float = eval_model("models/float/mnist-sigma0.25.safetensors", &[]);
    assert!(float["policy"].is_null());
    assert_eq!(
        float["bops"].as_u64().unwrap(),
        float["macs"].as_u64().unwrap() * 32 * 32
    );
    let w4 = eval_model("models/float/mnist-sigma0.25.safetensors", &["--bits", "4"]);
    assert!(w4["accuracy"].as_f64().unwrap() > float["accuracy"].as_f64().unwrap() - 0.03);
}

#[test]
fn export_reloads_to_the_same_logits_and_bits_8_is_the_stored_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = "public/models/mnist-sigma0.25.safetensors";
    let stored = eval_model(model, &[]);
    let at8 = eval_model(model, &["--bits", "8"]);
    assert_eq!(stored["logits"], at8["logits"]);
    for policy in [
        vec!["--bits", "8"],
        vec!["--bits", "4"],
        vec!["--policy", "8,6,4,4,2,4,6,8", "--act-bits", "6"],
    ] {
        let file = dir.path().join("export.safetensors");
        let file = file.to_str().unwrap();
        let mut args = vec!["export", "--model", model, "--out", file];
        args.extend_from_slice(&policy);
        let out = bitsmooth(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let exported = eval_model(file, &[]);
        let direct = eval_model(model, &policy);
        assert_eq!(exported["logits"], direct["logits"], "{policy:?}");
        assert_eq!(exported["policy"], direct["policy"], "{policy:?}");
        assert_eq!(exported["bops"], direct["bops"], "{policy:?}");
        // an export is fixed at its policy
        let again = bitsmooth(&["eval", "--model", file, "--bits", "2"]);
        assert!(String::from_utf8_lossy(&again.stderr).contains("fixed at the policy"));
    }
    let out = bitsmooth(&[
        "export",
        "--model",
        "models/float/mnist-sigma0.25.safetensors",
        "--out",
        dir.path().join("x.safetensors").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs an int8 model"));
    let out = bitsmooth(&[
        "export",
        "--model",
        model,
        "--bits",
        "9",
        "--out",
        "/dev/null",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside 2..=8"));
}

#[test]
fn a_truncated_int8_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(root().join("public/models/mnist-sigma0.25.safetensors")).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let out = bitsmooth(&["eval", "--model", cut.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("truncated or corrupt"), "{err}");
}

#[test]
fn incremental_certification_from_a_reference_tsv_equals_recertifying_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let common = [
        "certify",
        "--model",
        "public/models/mnist-sigma0.25.safetensors",
        "--data",
        "crate/tests/fixtures/mnist-test.bsds",
        "--sigma",
        "0.75",
        "--n0",
        "20",
        "--n",
        "400",
        "--count",
        "6",
        "--seed",
        "5",
    ];
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = common.to_vec();
        args.extend_from_slice(extra);
        let out = bitsmooth(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (reference, fresh, reused) = (path("w8.tsv"), path("fresh.tsv"), path("reused.tsv"));
    run(&["--out", &reference]);
    let irs = ["--bits", "2", "--incremental", "--n-chi", "40"];
    run(&[&irs[..], &["--out", &fresh]].concat());
    run(&[&irs[..], &["--reference", &reference, "--out", &reused]].concat());
    // every column but the two timings agrees
    let columns = |file: &str| -> Vec<Vec<String>> {
        std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .map(|l| {
                l.split('\t')
                    .enumerate()
                    .filter(|(k, _)| *k != 5 && *k != 12)
                    .map(|(_, c)| c.to_string())
                    .collect()
            })
            .collect()
    };
    assert_eq!(columns(&fresh), columns(&reused));
    assert_eq!(columns(&fresh).len(), 7);
    // a reference with another n is refused
    let out = bitsmooth(
        &[
            &common[..9],
            &["--n", "300", "--count", "6", "--seed", "5"],
            &irs[..],
            &["--reference", &reference, "--out", &path("x.tsv")],
        ]
        .concat(),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("n = 400"));
}

#[test]
fn incremental_certification_refuses_a_reference_made_with_other_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let model = "public/models/mnist-sigma0.25.safetensors";
    let base = |sigma: &str, seed: &str| -> Vec<String> {
        [
            "certify",
            "--model",
            model,
            "--data",
            "crate/tests/fixtures/mnist-test.bsds",
            "--n0",
            "10",
            "--n",
            "100",
            "--count",
            "2",
            "--sigma",
            sigma,
            "--seed",
            seed,
        ]
        .map(String::from)
        .to_vec()
    };
    let run = |args: Vec<String>, extra: &[&str]| {
        let mut args = args;
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bitsmooth(&args)
    };
    // the reference: the stored model (w8a8) at σ = 0.5, seed 1
    let reference = path("w8.tsv");
    let out = run(base("0.5", "1"), &["--out", &reference]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // its sidecar records what its soundness depends on; the TSV keeps Cohen's columns
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{reference}.json")).unwrap())
            .unwrap();
    assert_eq!(sidecar["sigma"], 0.5);
    assert_eq!(sidecar["seed"], 1);
    assert_eq!(sidecar["n"], 100);
    assert_eq!(sidecar["n0"], 10);
    assert_eq!(sidecar["alpha"], 0.001);
    assert_eq!(sidecar["model_kind"], "int8");
    assert_eq!(
        sidecar["policy"]["weight_bits"],
        serde_json::json!(vec![8; 8])
    );
    assert_eq!(sidecar["model_tensors_sha256"].as_str().unwrap().len(), 64);
    assert!(sidecar["noise_generator"]
        .as_str()
        .unwrap()
        .starts_with("Philox-4x32-10"));
    assert_eq!(
        std::fs::read_to_string(&reference).unwrap().lines().next(),
        Some("idx\tlabel\tpredict\tradius\tcorrect\ttime\tnA\tn")
    );

    let irs = |sigma: &str, seed: &str, reference: &str, n_chi: &str| {
        run(
            base(sigma, seed),
            &[
                "--bits",
                "2",
                "--incremental",
                "--n-chi",
                n_chi,
                "--reference",
                reference,
                "--out",
                &path("irs.tsv"),
            ],
        )
    };
    // the same settings: accepted
    let out = irs("0.5", "1", &reference, "20");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // another seed or σ: refused, naming the field and both values
    for (sigma, seed, message) in [
        ("0.5", "2", "made with seed = 1, this run uses seed = 2"),
        ("0.25", "1", "made with σ = 0.5, this run uses σ = 0.25"),
    ] {
        let out = irs(sigma, seed, &reference, "20");
        assert!(!out.status.success(), "σ {sigma} seed {seed} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{err}");
    }
    // n_χ larger than the reference's n
    let out = irs("0.5", "1", &reference, "101");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--n-chi 101 is larger than the reference's n = 100"),
        "{err}"
    );
    // a reference certified at w4a4, not at the stored w8a8 that IRS uses as f
    let w4 = path("w4.tsv");
    assert!(run(base("0.5", "1"), &["--bits", "4", "--out", &w4])
        .status
        .success());
    let err = String::from_utf8_lossy(&irs("0.5", "1", &w4, "20").stderr).to_string();
    assert!(
        err.contains("made with policy = w4a4, this run uses policy = w8a8"),
        "{err}"
    );
    // no sidecar (an older TSV, or one written by hand)
    let bare = path("bare.tsv");
    std::fs::copy(&reference, &bare).unwrap();
    let err = String::from_utf8_lossy(&irs("0.5", "1", &bare, "20").stderr).to_string();
    assert!(
        err.contains("has no readable settings file") && err.contains("bare.tsv.json"),
        "{err}"
    );
}

#[test]
fn eval_refuses_a_range_of_no_images() {
    for (args, message) in [
        (vec!["--count", "0"], "--count 0 selects no images"),
        (
            vec!["--skip", "1000"],
            "--skip 1000 leaves no images: the dataset has 1000",
        ),
        (vec!["--skip", "1001"], "--skip 1001 leaves no images"),
        (
            vec!["--skip", "990", "--count", "20"],
            "images 990..1010 requested",
        ),
    ] {
        let mut all = vec![
            "eval",
            "--model",
            "public/models/mnist-sigma0.25.safetensors",
            "--data",
            "public/data/mnist-test.bsds",
        ];
        all.extend_from_slice(&args);
        let out = bitsmooth(&all);
        assert!(!out.status.success(), "{args:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = bitsmooth(&[
        "certify",
        "--model",
        "public/models/mnist-sigma0.25.safetensors",
        "--data",
        "crate/tests/fixtures/mnist-test.bsds",
        "--count",
        "0",
        "--out",
        "/dev/null",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--count 0 selects no images"));
}

#[test]
fn a_shipped_model_with_one_changed_weight_byte_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(root().join("public/models/mnist-sigma0.25.safetensors")).unwrap();
    // where block2.conv2's int8 weights sit: after the 8-byte header length and the header
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let offsets = &header["block2.conv2.weight.q"]["data_offsets"];
    let (start, end) = (
        offsets[0].as_u64().unwrap() as usize,
        offsets[1].as_u64().unwrap() as usize,
    );
    assert_eq!(end - start, 48 * 48 * 9);
    let mut flipped = bytes.clone();
    // one weight's lowest bit: a valid int8 either way, so only the digest can tell
    flipped[8 + header_len + (start + end) / 2] ^= 0x01;
    let file = dir.path().join("flipped.safetensors");
    std::fs::write(&file, &flipped).unwrap();
    let out = bitsmooth(&["eval", "--model", file.to_str().unwrap(), "--count", "1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("flipped.safetensors")
            && err.contains("the weights do not match the digest recorded in the file: corrupted?"),
        "{err}"
    );
}

#[test]
fn restamp_keeps_every_tensor_and_a_stamped_file_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read(root().join("public/models/mnist-sigma0.25.safetensors")).unwrap();
    let file = dir.path().join("m.safetensors");
    std::fs::write(&file, &original).unwrap();
    let out = bitsmooth(&["restamp", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("already stamped"));
    assert_eq!(std::fs::read(&file).unwrap(), original);
    let out = bitsmooth(&["restamp", "no/such.safetensors"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read no/such.safetensors"));
}

/// MACs per image of bsnet8's layers, by hand from the architecture (out-channels × in ×
/// k² × output pixels): stem, block1.{conv1, conv2, shortcut}, block2.{…}, fc.
const BSNET8_MACS: [u64; 8] = [
    8 * 9 * 28 * 28,
    16 * 8 * 9 * 14 * 14,
    16 * 16 * 9 * 14 * 14,
    16 * 8 * 14 * 14,
    48 * 16 * 9 * 7 * 7,
    48 * 48 * 9 * 7 * 7,
    48 * 16 * 7 * 7,
    10 * 2352,
];

/// BOPs of a search policy (one width per layer for weights and activations) counted by hand:
/// MACs × b_w × b_a, except the stem, whose input (image + noise) is float: 32 bits.
fn bops_of(widths: &[u64]) -> u64 {
    BSNET8_MACS
        .iter()
        .zip(widths)
        .enumerate()
        .map(|(i, (m, &b))| m * b * if i == 0 { 32 } else { b })
        .sum()
}

/// Every layer at 8 bits: 56,448·8·32 + 2,118,368·64 = 150,026,240.
fn all8_bops() -> u64 {
    bops_of(&[8; 8])
}

fn search(extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "search",
        "--model",
        "public/models/mnist-sigma0.25.safetensors",
        "--data",
        "crate/tests/fixtures/mnist-test.bsds",
        "--val-size",
        "4",
        "--n0",
        "20",
        "--n",
        "100",
        "--n-chi",
        "20",
        "--threads",
        "1",
    ];
    args.extend_from_slice(extra);
    bitsmooth(&args)
}

#[test]
fn a_short_arq_search_prints_a_policy_within_the_budget_and_writes_its_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.tsv");
    let out = search(&[
        "--method",
        "arq",
        "--bops",
        "0.25",
        "--episodes",
        "5",
        "--warmup",
        "2",
        "--seed",
        "3",
        "--pin-first-last",
        "--trace",
        trace.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let policy: Vec<u64> = v["policy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap())
        .collect();
    assert_eq!(policy.len(), 8);
    assert_eq!((policy[0], policy[7]), (8, 8), "first and last pinned");
    // a quarter of the all-8-bit BOPs (= the cost of uniform 4 bits)
    let all8 = all8_bops();
    assert_eq!(v["budget"].as_u64().unwrap(), all8 / 4);
    let bops = bops_of(&policy);
    assert_eq!(v["bops"].as_u64().unwrap(), bops);
    assert!(bops <= all8 / 4);
    assert_eq!(v["method"], "arq");
    assert_eq!(v["episodes"], 5);
    let reward = v["validationReward"].as_f64().unwrap();
    assert!(reward >= 0.0 && reward <= v["referenceAcr"].as_f64().unwrap() + 1e-12);
    assert!(v["searchSeconds"].as_f64().unwrap() > 0.0);

    let text = std::fs::read_to_string(&trace).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "episode\twidths\tbops\tsize_bytes\treward"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 5);
    let best = rows
        .iter()
        .map(|r| r[4].parse::<f64>().unwrap())
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(best, reward);
    for r in &rows {
        assert!(r[2].parse::<u64>().unwrap() <= all8 / 4);
    }

    // the same seed gives the same search
    let again = search(&[
        "--bops",
        "0.25",
        "--episodes",
        "5",
        "--warmup",
        "2",
        "--seed",
        "3",
        "--pin-first-last",
        "--json",
    ]);
    let w: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(w["policy"], v["policy"]);
    assert_eq!(w["validationReward"], v["validationReward"]);
}

#[test]
fn search_rejects_budgets_out_of_range_and_zero_episodes() {
    // with the first and last layer pinned at 8 bits the cheapest policy costs ≈ 0.097 of
    // the 8-bit BOPs (every other layer at 2 bits)
    let out = search(&["--bops", "0.05", "--pin-first-last", "--episodes", "2"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("outside what this model can use"), "{err}");

    let all8 = all8_bops();
    let above = (all8 + 1).to_string();
    let out = search(&["--bops", &above, "--episodes", "2"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside what this model can use"));

    let out = search(&["--bops=-1", "--episodes", "2"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bops must be"));

    let out = search(&["--bops", "0.25", "--episodes", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least one episode"));

    let out = search(&[
        "--bops",
        "0.25",
        "--method",
        "haq",
        "--noisy",
        "--episodes",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("val-accuracy-noisy-0.25"));

    let out = search(&["--bops", "0.25", "--method", "arq", "--reward", "accuracy"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("defined by its reward"));
}

fn search_json(method: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "--method",
        method,
        "--reward",
        "accuracy",
        "--bops",
        "0.3",
        "--pin-first-last",
        "--seed",
        "2",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = search(&args);
    assert!(
        out.status.success(),
        "{method}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_method_stays_within_the_budget_and_below_the_exhaustive_optimum() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("all.jsonl");
    let exhaustive = search_json("exhaustive", &["--trace", trace.to_str().unwrap()]);
    // first and last pinned: 4⁶ policies of the six inner layers
    let lines = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(lines.lines().count(), 4096);
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["widths"].as_array().unwrap().len(), 8);
    let optimum = exhaustive["validationReward"].as_f64().unwrap();
    let all8 = all8_bops();
    let budget = (all8 as f64 * 0.3).floor() as u64;
    assert_eq!(exhaustive["budget"].as_u64().unwrap(), budget);
    for (method, extra) in [
        ("haq", vec!["--episodes", "6", "--warmup", "3"]),
        ("random", vec!["--episodes", "6"]),
        ("uniform", vec![]),
        (
            "hawq",
            vec!["--hessian-images", "8", "--hessian-samples", "2"],
        ),
        (
            "ilp",
            vec!["--hessian-images", "8", "--hessian-samples", "2"],
        ),
    ] {
        let v = search_json(method, &extra);
        assert_eq!(v["method"], method);
        assert_eq!(v["reward"], "val-accuracy");
        let reward = v["validationReward"].as_f64().unwrap();
        assert!(
            reward <= optimum,
            "{method}: {reward} above the optimum {optimum}"
        );
        assert!(v["bops"].as_u64().unwrap() <= budget, "{method}: {v}");
        let policy = v["policy"].as_array().unwrap();
        assert_eq!((policy[0].as_u64(), policy[7].as_u64()), (Some(8), Some(8)));
        if method == "uniform" {
            // pins cost 56,448·8·32 + 23,520·64 = 15,955,968; the inner layers at 4 bits
            // add 2,094,848·16 = 33,517,568: 49.5 M > 0.3 · 150,026,240 = 45.0 M; at 2 bits
            // 2,094,848·4 = 8,379,392: 24.3 M fits (the list is 8, 6, 4, 2)
            let widths: Vec<u64> = policy.iter().map(|b| b.as_u64().unwrap()).collect();
            assert_eq!(widths, vec![8, 2, 2, 2, 2, 2, 2, 8]);
        }
    }
}

/// Spearman's ρ written out independently of the library: each value's rank is 1 + the number
/// of smaller values + half the number of other equal values; then Pearson of the ranks.
fn spearman_by_counting(x: &[f64], y: &[f64]) -> f64 {
    let rank = |v: &[f64], i: usize| {
        let smaller = v.iter().filter(|&&w| w < v[i]).count() as f64;
        let equal = v.iter().filter(|&&w| w == v[i]).count() as f64 - 1.0;
        1.0 + smaller + equal / 2.0
    };
    let rx: Vec<f64> = (0..x.len()).map(|i| rank(x, i)).collect();
    let ry: Vec<f64> = (0..y.len()).map(|i| rank(y, i)).collect();
    let m = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mx, my) = (m(&rx), m(&ry));
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

#[test]
fn faithfulness_scores_policies_resumes_and_refuses_other_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scores.tsv");
    let out_s = out.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "faithfulness",
            "--model",
            "public/models/mnist-sigma0.25.safetensors",
            "--data",
            "crate/tests/fixtures/mnist-test.bsds",
            "--policies",
            "8",
            "--val-size",
            "5",
            "--n0",
            "20",
            "--n",
            "200",
            "--n-chi",
            "40",
            "--n-full",
            "400",
            "--threads",
            "1",
            "--json",
            "--out",
            out_s,
        ];
        args.extend_from_slice(extra);
        bitsmooth(&args)
    };
    let first = run(&[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let tsv = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<Vec<f64>> = tsv
        .lines()
        .skip(1)
        .map(|l| l.split('\t').skip(1).map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 8);
    // columns after the widths: bops irs scratch accuracy full full_se
    assert!(rows.iter().any(|r| r[0] as u64 == all8_bops()));
    let col = |c: usize| rows.iter().map(|r| r[c]).collect::<Vec<f64>>();
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(v["policies"], 8);
    let constant = |v: &[f64]| v.iter().all(|&a| a == v[0]);
    assert!(!constant(&col(4)), "the full ACR differs between policies");
    for (key, c) in [("irsAcr", 1), ("scratchAcr", 2), ("accuracy", 3)] {
        if constant(&col(c)) {
            // no order to correlate (e.g. every policy gets all 5 images right)
            assert!(v[key].is_null(), "{key}: {}", v[key]);
            continue;
        }
        let expected = spearman_by_counting(&col(c), &col(4));
        let got = v[key].as_f64().unwrap();
        assert!((got - expected).abs() < 1e-12, "{key}: {got} vs {expected}");
    }
    // a run cut short resumes: drop the last row, run again, the row comes back unchanged
    let lines: Vec<&str> = tsv.lines().collect();
    std::fs::write(&out, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let again = run(&[]);
    assert!(again.status.success());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), tsv);
    assert_eq!(again.stdout, first.stdout);
    // other settings on the same file are refused, naming the setting
    let other = run(&["--seed", "1"]);
    assert!(!other.status.success());
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("seed"), "{err}");
}
