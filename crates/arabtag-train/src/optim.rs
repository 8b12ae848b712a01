//! AdamW over named parameters, with its moments in the open so that a
//! checkpoint holds them and `--resume` continues exactly where a run
//! stopped (candle's `candle_nn::AdamW` keeps them private). The update is
//! candle's: decoupled weight decay `θ ← θ(1 − lr·wd)`, then
//! `θ ← θ − lr · m̂ / (√v̂ + ε)` with bias-corrected moments.
//!
//! Parameters are in groups, each with its own learning rate (a fine-tuned
//! encoder layer learns slower than a fresh head); the caller passes each
//! step's rates, so any schedule is the caller's.

use std::collections::HashMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};

use crate::TrainError;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// One parameter: its checkpoint name, its learning-rate group, its value
/// and its two moments.
#[derive(Debug)]
struct Param {
    name: String,
    group: usize,
    var: Var,
    m: Tensor,
    v: Tensor,
}

/// AdamW over named parameters.
#[derive(Debug)]
pub struct AdamW {
    params: Vec<Param>,
    weight_decay: f64,
    /// Steps done.
    step: usize,
}

impl AdamW {
    /// An optimiser over `params` (name, learning-rate group, initial value),
    /// moments at zero.
    pub fn new(
        params: Vec<(String, usize, Tensor)>,
        weight_decay: f64,
    ) -> Result<Self, TrainError> {
        let params = params
            .into_iter()
            .map(|(name, group, value)| {
                // A copy: the caller's tensor may itself be a variable
                // (a `VarMap`'s), whose storage `Var::from_tensor` shares.
                let value = value.to_dtype(DType::F32)?.copy()?;
                Ok(Param {
                    m: value.zeros_like()?,
                    v: value.zeros_like()?,
                    var: Var::from_tensor(&value)?,
                    name,
                    group,
                })
            })
            .collect::<Result<Vec<_>, TrainError>>()?;
        Ok(Self {
            params,
            weight_decay,
            step: 0,
        })
    }

    /// Steps done.
    pub fn steps(&self) -> usize {
        self.step
    }

    /// The parameter called `name`, as a trainable variable.
    pub fn var(&self, name: &str) -> Option<&Var> {
        self.params.iter().find(|p| p.name == name).map(|p| &p.var)
    }

    /// Every parameter's name and current value.
    pub fn values(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .map(|p| (p.name.clone(), p.var.as_tensor().clone()))
            .collect()
    }

    /// One update with `lrs[group]` as each group's learning rate.
    /// Parameters without a gradient keep their value (and moments).
    pub fn step(&mut self, grads: &GradStore, lrs: &[f64]) -> Result<(), TrainError> {
        self.step += 1;
        let t = i32::try_from(self.step).unwrap_or(i32::MAX);
        let scale_m = 1.0 / (1.0 - BETA1.powi(t));
        let scale_v = 1.0 / (1.0 - BETA2.powi(t));
        for p in &mut self.params {
            let Some(g) = grads.get(p.var.as_tensor()) else {
                continue;
            };
            let lr = lrs.get(p.group).copied().unwrap_or(0.0);
            let m = ((&p.m * BETA1)? + (g * (1.0 - BETA1))?)?;
            let v = ((&p.v * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
            let adjusted = ((&m * scale_m)? / ((&v * scale_v)?.sqrt()? + EPS)?)?;
            let decayed = (p.var.as_tensor() * (1.0 - lr * self.weight_decay))?;
            p.var.set(&(decayed - (adjusted * lr)?)?)?;
            p.m = m;
            p.v = v;
        }
        Ok(())
    }

    /// Writes the values to `params` and the moments (`m.{name}`,
    /// `v.{name}`) to `moments`, both safetensors.
    pub fn save(&self, params: &Path, moments: &Path) -> Result<(), TrainError> {
        let values: HashMap<String, Tensor> = self.values().into_iter().collect();
        candle_core::safetensors::save(&values, params)?;
        let mut saved = HashMap::with_capacity(2 * self.params.len());
        for p in &self.params {
            saved.insert(format!("m.{}", p.name), p.m.clone());
            saved.insert(format!("v.{}", p.name), p.v.clone());
        }
        candle_core::safetensors::save(&saved, moments)?;
        Ok(())
    }

    /// Reads what [`Self::save`] wrote, into an optimiser over the same
    /// names and groups as `self` (each tensor's shape checked), with `step`
    /// steps done.
    pub fn restore(
        &mut self,
        params: &Path,
        moments: &Path,
        step: usize,
    ) -> Result<(), TrainError> {
        let device = Device::Cpu;
        let mut values = candle_core::safetensors::load(params, &device)?;
        let mut saved = candle_core::safetensors::load(moments, &device)?;
        for p in &mut self.params {
            let shape = p.var.as_tensor().dims().to_vec();
            let take = |map: &mut HashMap<String, Tensor>,
                        path: &Path,
                        name: String|
             -> Result<Tensor, TrainError> {
                match map.remove(&name) {
                    Some(t) if t.dims() == shape => Ok(t.to_dtype(DType::F32)?),
                    _ => Err(TrainError::BadCheckpoint {
                        path: path.to_owned(),
                        reason: format!("`{name}` missing or not of shape {shape:?}"),
                    }),
                }
            };
            p.var.set(&take(&mut values, params, p.name.clone())?)?;
            p.m = take(&mut saved, moments, format!("m.{}", p.name))?;
            p.v = take(&mut saved, moments, format!("v.{}", p.name))?;
        }
        self.step = step;
        Ok(())
    }
}

/// A fresh linear head `weight` `[n, dim]` and `bias` `[n]` in learning-rate
/// group `group`, uniform in `±1/sqrt(dim)` (PyTorch's `nn.Linear` bound)
/// from `rng`, as optimiser parameters.
pub(crate) fn linear_head(
    rng: &mut Rng,
    n: usize,
    dim: usize,
    group: usize,
) -> Result<[(String, usize, Tensor); 2], TrainError> {
    let bound = 1.0 / (dim.max(1) as f32).sqrt();
    let w: Vec<f32> = (0..n * dim).map(|_| rng.symmetric() * bound).collect();
    let b: Vec<f32> = (0..n).map(|_| rng.symmetric() * bound).collect();
    let device = Device::Cpu;
    Ok([
        (
            "weight".to_owned(),
            group,
            Tensor::from_vec(w, (n, dim), &device)?,
        ),
        ("bias".to_owned(), group, Tensor::from_vec(b, n, &device)?),
    ])
}

/// xorshift64*.
#[derive(Debug, Clone)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    pub(crate) fn symmetric(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimises (x - 3)² and checks one step against the formula.
    #[test]
    fn one_step_matches_the_formula_and_converges() {
        let x0 = Tensor::new(&[0.0f32], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(vec![("x".to_owned(), 0, x0)], 0.01).unwrap();
        let loss = |opt: &AdamW| {
            let x = opt.var("x").unwrap().as_tensor();
            (x - 3.0).unwrap().sqr().unwrap().sum_all().unwrap()
        };
        let grads = loss(&opt).backward().unwrap();
        opt.step(&grads, &[0.1]).unwrap();
        // g = -6; m̂ = g, v̂ = g², so the step is -lr·sign(g) = +0.1 (decay of 0 is 0).
        let x: Vec<f32> = opt.var("x").unwrap().as_tensor().to_vec1().unwrap();
        assert!((x[0] - 0.1).abs() < 1e-6, "{x:?}");
        for _ in 0..500 {
            let grads = loss(&opt).backward().unwrap();
            opt.step(&grads, &[0.05]).unwrap();
        }
        let x: Vec<f32> = opt.var("x").unwrap().as_tensor().to_vec1().unwrap();
        assert!((x[0] - 3.0).abs() < 0.05, "{x:?}");
    }

    #[test]
    fn save_and_restore_continue_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let start = Tensor::new(&[1.0f32, -2.0], &Device::Cpu).unwrap();
        let make = || AdamW::new(vec![("w".to_owned(), 0, start.clone())], 0.1).unwrap();
        let step = |opt: &mut AdamW| {
            let w = opt.var("w").unwrap().as_tensor().clone();
            let grads = (w.sqr().unwrap().sum_all().unwrap()).backward().unwrap();
            opt.step(&grads, &[0.01]).unwrap();
        };
        let mut straight = make();
        for _ in 0..4 {
            step(&mut straight);
        }
        let mut first = make();
        step(&mut first);
        step(&mut first);
        let (p, m) = (
            dir.path().join("p.safetensors"),
            dir.path().join("m.safetensors"),
        );
        first.save(&p, &m).unwrap();
        let mut resumed = make();
        resumed.restore(&p, &m, first.steps()).unwrap();
        step(&mut resumed);
        step(&mut resumed);
        let a: Vec<f32> = straight.var("w").unwrap().as_tensor().to_vec1().unwrap();
        let b: Vec<f32> = resumed.var("w").unwrap().as_tensor().to_vec1().unwrap();
        assert_eq!(a, b);
    }
}
