//! `certify --incremental`: IRS (Ugare et al. 2024) from a reference certification.

use super::certify::{create_tsv, print_summary, reference_columns, CertifyRun};
use super::read;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::smoothing;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// One row of an earlier certification TSV: (guessed class or -1, n_A, n, seconds).
pub(super) type ReferenceRow = (i64, u64, u64, f64);

/// Reads a certification TSV (`idx label predict radius correct time nA n ...`) by image.
pub(super) fn read_reference_rows(path: &Path) -> Result<HashMap<usize, ReferenceRow>> {
    let text = String::from_utf8(read(path)?)
        .map_err(|_| Error::Invalid(format!("{} is not text", path.display())))?;
    let bad = |line: usize| {
        Error::Invalid(format!(
            "{} line {line}: expected `idx label predict radius correct time nA n`",
            path.display()
        ))
    };
    let mut rows = HashMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 8 {
            return Err(bad(i + 1));
        }
        let parse = |k: usize| cols[k].trim().parse::<f64>().map_err(|_| bad(i + 1));
        let (idx, predict, time, n_a, n) = (parse(0)?, parse(2)?, parse(5)?, parse(6)?, parse(7)?);
        rows.insert(idx as usize, (predict as i64, n_a as u64, n as u64, time));
    }
    Ok(rows)
}

/// IRS (Ugare et al. 2024): certify the float model `f` fully with n samples per image, then
/// the quantized `f_p` from n_χ replayed samples; the TSV adds which path each image took,
/// ζ, the disagreements, n_χ and the reference certification's time.
pub(super) fn certify_incremental_cmd(
    f: &mut Model,
    f_p: &mut Model,
    set: &Dataset,
    run: &CertifyRun,
    irs: &smoothing::IrsParams,
    reference_rows: Option<&HashMap<usize, ReferenceRow>>,
) -> Result<()> {
    use std::io::Write;
    let (params, skip, count, seed) = (&run.params, run.skip, run.count, run.seed);
    let (mut f, mut f_p) = (
        run.executor.classifier(f, run.threads)?,
        run.executor.classifier(f_p, run.threads)?,
    );
    let (f, f_p) = (&mut *f, &mut *f_p);
    let mut file = create_tsv(
        run.out,
        "idx\tlabel\tpredict\tradius\tcorrect\ttime\tnA\tn\tpath\tzeta\tdisagreements\tn_chi\treference_time",
    )?;
    println!(
        "IRS on {count} images: reference n = {}, n_χ = {}, α = α_χ = {}, γ = {}, seed {seed}",
        params.n, irs.n_chi, irs.alpha_chi, irs.gamma
    );
    let (mut rows, mut reference_seconds, mut irs_seconds) = (Vec::with_capacity(count), 0.0, 0.0);
    for idx in skip..skip + count {
        let key = smoothing::NoiseKey::new(seed, idx as u32);
        let t0 = Instant::now();
        let (reference, reference_time) = match reference_rows {
            Some(rows) => {
                let &(predict, n_a, n, time) = rows.get(&idx).ok_or_else(|| {
                    Error::Invalid(format!("the reference TSV has no row for image {idx}"))
                })?;
                if n != params.n {
                    return Err(Error::Invalid(format!(
                        "the reference TSV certified image {idx} with n = {n}, this run uses n = {}",
                        params.n
                    )));
                }
                // an abstaining reference keeps abstaining under IRS: its guess is irrelevant
                let c_hat = predict.max(0) as u32;
                let cert = smoothing::Certificate::from_counts(
                    c_hat,
                    n_a,
                    n,
                    params.sigma,
                    params.alpha,
                    key,
                )?;
                (cert, time)
            }
            None => {
                let cert = smoothing::certify(f, set.image(idx), params, key, &mut |_, _| true)?
                    .completed()
                    .ok_or_else(|| Error::Invalid("certification was cancelled".into()))?;
                (cert, t0.elapsed().as_secs_f64())
            }
        };
        let t1 = Instant::now();
        let cert = smoothing::certify_incremental(
            f,
            f_p,
            set.image(idx),
            &reference,
            irs,
            &mut |_, _| true,
        )?
        .completed()
        .ok_or_else(|| Error::Invalid("certification was cancelled".into()))?;
        let time = t1.elapsed().as_secs_f64();
        let row = smoothing::CertificationRow::from_incremental(
            idx as u64,
            set.labels[idx] as u32,
            &cert,
            time,
        );
        let path = match cert.path {
            smoothing::IrsPath::Incremental => "incremental",
            smoothing::IrsPath::Full => "full",
        };
        writeln!(
            file,
            "{}\t{path}\t{}\t{}\t{}\t{reference_time:.3}",
            reference_columns(&row),
            cert.zeta.map_or("-".to_string(), |z| format!("{z:.5}")),
            cert.disagreements
                .map_or("-".to_string(), |d| d.to_string()),
            cert.n_chi
        )?;
        file.flush()?;
        reference_seconds += reference_time;
        irs_seconds += time;
        rows.push(row);
    }
    println!("wrote {}", run.out.display());
    println!(
        "time per image: IRS {:.3} s, full certification of the reference {:.3} s (×{:.1})",
        irs_seconds / count as f64,
        reference_seconds / count as f64,
        reference_seconds / irs_seconds.max(1e-9)
    );
    print_summary(&rows);
    Ok(())
}
