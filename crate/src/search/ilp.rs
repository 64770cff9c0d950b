//! Mixed precision by integer linear programming: one binary x_{l,b} per layer l and
//! candidate width b, Σ_b x_{l,b} = 1 per layer (a pinned layer offers only its pin), the
//! BOPs Σ_{l,b} x_{l,b}·BOPs_l(b) ≤ budget, and a separable objective Σ x_{l,b}·c_{l,b}
//! minimised — solved exactly (branch and bound) by `good_lp` with the pure-Rust `microlp`
//! solver, natively and in wasm alike. Two objectives:
//!
//! - **HAWQ-V3** ([`IlpTable::hawq_v3`]): c_{l,b} = t_l · ‖Ŵ_l(8) − Ŵ_l(b)‖², t_l the layer's
//!   Hessian trace and Ŵ_l(b) its weights at b bits derived from the int8 master by Double
//!   Rounding (the master itself, Ŵ_l(8), is the reference: it is all the file holds);
//! - **Double Rounding** ([`IlpTable::double_rounding`]): DESIGN §3's Σ_l t_l/n_l · b_l
//!   (trace per weight times width, n_l the layer's weight count), *maximised* — minimising
//!   it would pick the lowest widths at any budget. Written as the equivalent minimisation
//!   of c_{l,b} = t_l/n_l · (b_max − b).
//!
//! BOPs per (layer, width) come from [`crate::quant::layer_costs`] (BOPs are a sum over
//! layers, each depending only on that layer's widths), so the ILP counts exactly what
//! [`SearchSpace::bops`] counts.

use super::space::SearchSpace;
use crate::error::{Error, Result};
use crate::quant::{self, QuantizedWeights};
use good_lp::{microlp, variable, Expression, ProblemVariables, Solution, SolverModel};
use serde::{Deserialize, Serialize};

/// The ILP's data: per layer, the candidate widths with their BOPs and objective terms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IlpTable {
    /// `widths[l]`: the widths layer l may take.
    pub widths: Vec<Vec<u8>>,
    /// `bops[l][k]`: layer l's BOPs at `widths[l][k]`.
    pub bops: Vec<Vec<u64>>,
    /// `cost[l][k]`: layer l's objective term at `widths[l][k]` (minimised).
    pub cost: Vec<Vec<f64>>,
}

/// An optimal policy of an [`IlpTable`] under a budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IlpSolution {
    /// Width per layer, forward order.
    pub widths: Vec<u8>,
    pub bops: u64,
    /// The minimised objective Σ_l cost_l(widths_l).
    pub objective: f64,
    pub budget: u64,
}

impl IlpTable {
    /// A table from its parts (checked: one entry per candidate, finite costs).
    pub fn new(widths: Vec<Vec<u8>>, bops: Vec<Vec<u64>>, cost: Vec<Vec<f64>>) -> Result<Self> {
        let ok_shape = !widths.is_empty()
            && widths.len() == bops.len()
            && widths.len() == cost.len()
            && widths
                .iter()
                .zip(bops.iter().zip(&cost))
                .all(|(w, (b, c))| !w.is_empty() && w.len() == b.len() && w.len() == c.len());
        if !ok_shape {
            return Err(Error::Invalid(
                "an ILP table needs, for each layer, at least one width with one BOPs figure \
                 and one cost each"
                    .into(),
            ));
        }
        if let Some(c) = cost.iter().flatten().find(|c| !c.is_finite()) {
            return Err(Error::Invalid(format!("ILP cost {c} is not finite")));
        }
        Ok(Self { widths, bops, cost })
    }

    /// The space's widths and BOPs with the objective term `cost(layer, bits)`.
    pub fn from_space(
        space: &SearchSpace,
        mut cost: impl FnMut(usize, u8) -> Result<f64>,
    ) -> Result<Self> {
        let layers = space.num_layers();
        let mut widths = vec![Vec::new(); layers];
        let mut bops = vec![Vec::new(); layers];
        let mut costs = vec![Vec::new(); layers];
        for &b in &space.bits {
            let per_layer =
                quant::layer_costs(&space.layers, Some(&space.policy(&space.uniform(b))?))?;
            for l in 0..layers {
                if space.choices(l).contains(&b) {
                    widths[l].push(b);
                    bops[l].push(per_layer[l].bops);
                    costs[l].push(cost(l, b)?);
                }
            }
        }
        Self::new(widths, bops, costs)
    }

    /// HAWQ-V3: c_{l,b} = traces[l] · ‖Ŵ_l(8) − Ŵ_l(b)‖² with Ŵ from `masters` (the model's
    /// switchable int8 weights) by Double Rounding.
    pub fn hawq_v3(
        space: &SearchSpace,
        traces: &[f64],
        masters: &[QuantizedWeights],
    ) -> Result<Self> {
        check_traces(space, traces)?;
        if masters.len() != space.num_layers() {
            return Err(Error::Invalid(format!(
                "{} weight masters for {} layers",
                masters.len(),
                space.num_layers()
            )));
        }
        Self::from_space(space, |l, b| {
            Ok(traces[l] * squared_perturbation(&masters[l], b)?)
        })
    }

    /// Double Rounding's ILP: c_{l,b} = traces[l] / n_l · (b_max − b), n_l = layer l's weights.
    pub fn double_rounding(space: &SearchSpace, traces: &[f64]) -> Result<Self> {
        check_traces(space, traces)?;
        let top = space.max_bits();
        Self::from_space(space, |l, b| {
            Ok(traces[l] / space.layers[l].weights() as f64 * (top - b) as f64)
        })
    }

    fn num_layers(&self) -> usize {
        self.widths.len()
    }

    /// BOPs of the cheapest policy.
    pub fn min_bops(&self) -> u64 {
        self.bops
            .iter()
            .map(|b| *b.iter().min().expect("non-empty"))
            .sum()
    }

    /// The policy minimising the objective with BOPs ≤ `budget`, solved exactly. Among equal
    /// objectives the solver's choice is returned. A budget below the cheapest policy is an
    /// error saying so.
    pub fn solve(&self, budget: u64) -> Result<IlpSolution> {
        let cheapest = self.min_bops();
        if budget < cheapest {
            return Err(Error::Invalid(format!(
                "no policy fits a budget of {budget} BOPs: the cheapest costs {cheapest}"
            )));
        }
        let mut vars = ProblemVariables::new();
        let x: Vec<Vec<_>> = self
            .widths
            .iter()
            .map(|w| w.iter().map(|_| vars.add(variable().binary())).collect())
            .collect();
        let sum = |coeff: &dyn Fn(usize, usize) -> f64| -> Expression {
            x.iter()
                .enumerate()
                .flat_map(|(l, xs)| xs.iter().enumerate().map(move |(k, &v)| (l, k, v)))
                .map(|(l, k, v)| v * coeff(l, k))
                .sum()
        };
        let objective = sum(&|l, k| self.cost[l][k]);
        let bops = sum(&|l, k| self.bops[l][k] as f64);
        let mut problem = vars.minimise(objective).using(microlp);
        problem.add_constraint(bops.leq(budget as f64));
        for xs in &x {
            let one: Expression = xs.iter().map(|&v| Expression::from(v)).sum();
            problem.add_constraint(one.eq(1.0));
        }
        let solution = problem.solve().map_err(|e| {
            Error::Invalid(format!("the ILP at a budget of {budget} BOPs failed: {e}"))
        })?;
        let mut widths = Vec::with_capacity(self.num_layers());
        let (mut total, mut objective) = (0u64, 0.0);
        for (l, xs) in x.iter().enumerate() {
            let chosen: Vec<usize> = (0..xs.len())
                .filter(|&k| solution.value(xs[k]) > 0.5)
                .collect();
            let &[k] = chosen.as_slice() else {
                return Err(Error::Invalid(format!(
                    "the ILP solver chose {} widths for layer {l}",
                    chosen.len()
                )));
            };
            widths.push(self.widths[l][k]);
            total += self.bops[l][k];
            objective += self.cost[l][k];
        }
        if total > budget {
            return Err(Error::Invalid(format!(
                "the ILP solver's policy costs {total} BOPs, over the budget of {budget}"
            )));
        }
        Ok(IlpSolution {
            widths,
            bops: total,
            objective,
            budget,
        })
    }

    /// The optimum at each budget (a Pareto set of BOPs against the objective); budgets below
    /// the cheapest policy are errors.
    pub fn pareto(&self, budgets: &[u64]) -> Result<Vec<IlpSolution>> {
        budgets.iter().map(|&b| self.solve(b)).collect()
    }
}

/// ‖Ŵ(8) − Ŵ(b)‖² of one layer's master, summed in f64.
pub fn squared_perturbation(master: &QuantizedWeights, bits: u8) -> Result<f64> {
    let (top, low) = (
        master.dequantize(quant::MAX_BITS)?,
        master.dequantize(bits)?,
    );
    Ok(top
        .iter()
        .zip(&low)
        .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
        .sum())
}

fn check_traces(space: &SearchSpace, traces: &[f64]) -> Result<()> {
    if traces.len() != space.num_layers() || traces.iter().any(|t| !t.is_finite()) {
        return Err(Error::Invalid(format!(
            "the ILP needs one finite Hessian trace per layer ({}), got {traces:?}",
            space.num_layers()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Every policy of the table, its BOPs and objective, by enumeration.
    fn brute_force(t: &IlpTable, budget: u64) -> Option<(f64, Vec<u8>)> {
        let mut best: Option<(f64, Vec<u8>)> = None;
        let mut idx = vec![0usize; t.widths.len()];
        loop {
            let bops: u64 = idx.iter().enumerate().map(|(l, &k)| t.bops[l][k]).sum();
            let obj: f64 = idx.iter().enumerate().map(|(l, &k)| t.cost[l][k]).sum();
            if bops <= budget && best.as_ref().is_none_or(|(b, _)| obj < *b) {
                let w = idx
                    .iter()
                    .enumerate()
                    .map(|(l, &k)| t.widths[l][k])
                    .collect();
                best = Some((obj, w));
            }
            // next index in mixed radix
            let mut l = 0;
            loop {
                if l == idx.len() {
                    return best;
                }
                idx[l] += 1;
                if idx[l] < t.widths[l].len() {
                    break;
                }
                idx[l] = 0;
                l += 1;
            }
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn ilp_equals_brute_force_on_random_instances() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        for instance in 0..12 {
            let layers = rng.random_range(2..=6);
            let mut widths = Vec::new();
            let mut bops = Vec::new();
            let mut cost = Vec::new();
            for _ in 0..layers {
                let choices = rng.random_range(1..=4);
                let w: Vec<u8> = (0..choices).map(|k| 8 - 2 * k as u8).collect();
                let macs: u64 = rng.random_range(1_000..2_000_000);
                bops.push(w.iter().map(|&b| macs * b as u64 * b as u64).collect());
                cost.push(w.iter().map(|_| rng.random_range(0.0..10.0)).collect());
                widths.push(w);
            }
            let t = IlpTable::new(widths, bops, cost).unwrap();
            let max: u64 = t.bops.iter().map(|b| b.iter().max().unwrap()).sum();
            for _ in 0..6 {
                let budget = rng.random_range(t.min_bops()..=max);
                let (obj, _) = brute_force(&t, budget).unwrap();
                let s = t.solve(budget).unwrap();
                assert!(s.bops <= budget);
                assert!(
                    close(s.objective, obj),
                    "instance {instance}: {s:?} vs {obj}"
                );
                // the reported figures are the policy's own
                let k = |l: usize| t.widths[l].iter().position(|&b| b == s.widths[l]).unwrap();
                let recomputed: f64 = (0..layers).map(|l| t.cost[l][k(l)]).sum();
                assert!(close(recomputed, s.objective));
            }
        }
    }

    #[test]
    fn a_budget_below_the_cheapest_policy_is_a_clear_error() {
        let t = IlpTable::new(
            vec![vec![8, 4], vec![8, 2]],
            vec![vec![64, 16], vec![640, 40]],
            vec![vec![0.0, 1.0], vec![0.0, 3.0]],
        )
        .unwrap();
        let err = t.solve(55).unwrap_err().to_string();
        assert!(err.contains("cheapest costs 56"), "{err}");
        // worked by hand: (8,8) 704 BOPs cost 0, (4,8) 656 cost 1, (8,2) 104 cost 3,
        // (4,2) 56 cost 4; exactly the cheapest budget fits
        assert_eq!(t.solve(56).unwrap().widths, vec![4, 2]);
        assert_eq!(t.solve(104).unwrap().widths, vec![8, 2]);
        assert_eq!(t.solve(656).unwrap().widths, vec![4, 8]);
        assert_eq!(t.solve(704).unwrap().widths, vec![8, 8]);
        assert!(IlpTable::new(vec![vec![8]], vec![vec![1]], vec![vec![f64::NAN]]).is_err());
        assert!(IlpTable::new(vec![vec![8]], vec![vec![]], vec![vec![0.0]]).is_err());
    }

    const SHIPPED: &[u8] = include_bytes!("../../../public/models/mnist-sigma0.25.safetensors");

    #[test]
    fn both_ilps_on_the_shipped_model_equal_brute_force() {
        let loaded = crate::checkpoint::load(SHIPPED).unwrap();
        let masters = loaded.switchable.unwrap().masters;
        let space =
            SearchSpace::new(loaded.model.layers.clone(), &loaded.model.meta.bits, false).unwrap();
        assert_eq!(space.bits, vec![8, 6, 4, 2]);
        // any positive sensitivities exercise the programs; these differ by layer
        let traces = [0.9, 2.5, 1.0, 0.3, 4.0, 1.7, 0.2, 6.0];
        let hawq = IlpTable::hawq_v3(&space, &traces, &masters).unwrap();
        let dr = IlpTable::double_rounding(&space, &traces).unwrap();
        // the objectives computed here independently, from the masters and the layer shapes
        let perturbation = |l: usize, b: u8| -> f64 {
            let m = &masters[l];
            let per = m.q.len() / m.scales.len();
            m.q.iter()
                .enumerate()
                .map(|(i, &q)| {
                    let s = m.scales[i / per] as f64;
                    let shift = 1i32 << (8 - b);
                    let low = ((q as i32 + shift / 2).div_euclid(shift))
                        .clamp(-(1 << (b - 1)), (1 << (b - 1)) - 1);
                    (q as f64 * s - low as f64 * shift as f64 * s).powi(2)
                })
                .sum()
        };
        let pos = |b: u8| space.bits.iter().position(|&c| c == b).unwrap();
        let table: Vec<Vec<f64>> = (0..8)
            .map(|l| space.bits.iter().map(|&b| perturbation(l, b)).collect())
            .collect();
        let hawq_obj = |w: &[u8]| (0..8).map(|l| traces[l] * table[l][pos(w[l])]).sum::<f64>();
        let dr_obj = |w: &[u8]| {
            (0..8)
                .map(|l| traces[l] / space.layers[l].weights() as f64 * w[l] as f64)
                .sum::<f64>()
        };
        let four = space.bops(&space.uniform(4)).unwrap();
        let mid =
            (space.bops(&space.uniform(4)).unwrap() + space.bops(&space.uniform(2)).unwrap()) / 2;
        // every policy, enumerated once (4⁸)
        let mut all = Vec::new();
        for code in 0..4usize.pow(8) {
            let w: Vec<u8> = (0..8).map(|l| space.bits[(code >> (2 * l)) & 3]).collect();
            all.push((space.bops(&w).unwrap(), hawq_obj(&w), dr_obj(&w), w));
        }
        for budget in [four, mid] {
            let fits = all.iter().filter(|p| p.0 <= budget);
            let best_hawq = fits.clone().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let best_dr = fits.map(|p| p.2).fold(f64::NEG_INFINITY, f64::max);
            let h = hawq.solve(budget).unwrap();
            assert_eq!(space.bops(&h.widths).unwrap(), h.bops);
            assert!(h.bops <= budget);
            assert!(
                close(hawq_obj(&h.widths), best_hawq),
                "{h:?} vs {best_hawq}"
            );
            let d = dr.solve(budget).unwrap();
            assert!(d.bops <= budget);
            assert!(close(dr_obj(&d.widths), best_dr), "{d:?} vs {best_dr}");
        }
        // the Pareto set: a larger budget never has a worse optimum
        let front = hawq
            .pareto(&[four / 2, mid, four, space.max_bops().unwrap()])
            .unwrap();
        assert!(front
            .windows(2)
            .all(|p| p[1].objective <= p[0].objective + 1e-12));
        assert_eq!(front[3].widths, vec![8; 8]);
        assert!(hawq.pareto(&[space.min_bops().unwrap() - 1]).is_err());
    }
}
