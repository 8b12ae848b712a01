//! A multi-label stance head on segment embeddings: one logistic output per
//! label (`weight` `[labels, dim]`, `bias` `[labels]`, the head file the
//! `head` stance method reads), trained full-batch with AdamW on the mean
//! binary cross-entropy, from zero weights (so deterministic).

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::files::create_parent;
use super::optim::AdamW;
use crate::TrainError;

/// A trained stance head.
#[derive(Debug)]
pub struct StanceHead {
    opt: AdamW,
}

fn matrix(rows: &[Vec<f32>]) -> Result<Tensor, TrainError> {
    let dim = rows.first().map_or(0, Vec::len);
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Ok(Tensor::from_vec(flat, (rows.len(), dim), &Device::Cpu)?)
}

impl StanceHead {
    /// Trains on `features` (one row a segment) and `targets` (one row of
    /// label flags a segment) for `steps` full-batch steps; returns the head
    /// and its last training loss.
    pub fn train<const N: usize>(
        features: &[Vec<f32>],
        targets: &[[bool; N]],
        steps: usize,
        lr: f64,
        weight_decay: f64,
    ) -> Result<(Self, f64), TrainError> {
        let dim = features.first().map_or(0, Vec::len);
        let device = Device::Cpu;
        let opt = AdamW::new(
            vec![
                (
                    "weight".to_owned(),
                    0,
                    Tensor::zeros((N, dim), DType::F32, &device)?,
                ),
                ("bias".to_owned(), 0, Tensor::zeros(N, DType::F32, &device)?),
            ],
            weight_decay,
        )?;
        let xs = matrix(features)?;
        let flags: Vec<f32> = targets
            .iter()
            .flat_map(|y| y.map(|b| if b { 1.0 } else { 0.0 }))
            .collect();
        let ys = Tensor::from_vec(flags, (targets.len(), N), &device)?;
        let mut head = Self { opt };
        let mut last = 0.0;
        for _ in 0..steps {
            let loss = crate::finetune::bce_with_logits(&head.logits(&xs)?, &ys)?;
            let grads = loss.backward()?;
            head.opt.step(&grads, &[lr])?;
            last = f64::from(loss.to_scalar::<f32>()?);
        }
        Ok((head, last))
    }

    fn logits(&self, xs: &Tensor) -> Result<Tensor, TrainError> {
        let get = |n: &str| {
            self.opt
                .var(n)
                .map(|v| v.as_tensor().clone())
                .ok_or_else(|| TrainError::MissingParameter { name: n.to_owned() })
        };
        Ok(xs
            .matmul(&get("weight")?.t()?)?
            .broadcast_add(&get("bias")?)?)
    }

    /// Each row's label probabilities.
    pub fn probabilities(&self, features: &[Vec<f32>]) -> Result<Vec<Vec<f64>>, TrainError> {
        let p: Vec<Vec<f32>> =
            candle_nn::ops::sigmoid(&self.logits(&matrix(features)?)?)?.to_vec2()?;
        Ok(p.into_iter()
            .map(|r| r.into_iter().map(f64::from).collect())
            .collect())
    }

    /// The head's `weight` `[labels, dim]` and `bias` `[labels]`.
    pub fn tensors(&self) -> Result<(Tensor, Tensor), TrainError> {
        let get = |n: &str| {
            self.opt
                .var(n)
                .map(|v| v.as_tensor().clone())
                .ok_or_else(|| TrainError::MissingParameter { name: n.to_owned() })
        };
        Ok((get("weight")?, get("bias")?))
    }

    /// Writes `weight` and `bias` (f32).
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        create_parent(path)?;
        let tensors: std::collections::HashMap<String, Tensor> =
            self.opt.values().into_iter().collect();
        let labels: Vec<String> = arabtag_records::STANCE_LABELS
            .iter()
            .map(|l| (*l).to_owned())
            .collect();
        super::files::save_head_file(&tensors, &labels, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_separable_labels_deterministically() {
        // Label 0 when x0 > 0, label 1 when x1 > 0.
        let xs: Vec<Vec<f32>> = (0..40)
            .map(|i| {
                let a = if i % 2 == 0 { 1.0 } else { -1.0 };
                let b = if i % 3 == 0 { 1.0 } else { -1.0 };
                vec![a, b, 0.5]
            })
            .collect();
        let ys: Vec<[bool; 2]> = xs.iter().map(|x| [x[0] > 0.0, x[1] > 0.0]).collect();
        let (head, loss) = StanceHead::train(&xs, &ys, 300, 0.05, 0.0).unwrap();
        assert!(loss < 0.1, "loss {loss}");
        let p = head.probabilities(&xs).unwrap();
        for (row, y) in p.iter().zip(&ys) {
            assert_eq!([row[0] > 0.5, row[1] > 0.5], *y);
        }
        let (again, _) = StanceHead::train(&xs, &ys, 300, 0.05, 0.0).unwrap();
        assert_eq!(again.probabilities(&xs).unwrap(), p);
    }
}
