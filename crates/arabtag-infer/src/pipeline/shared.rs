//! One encoder pass for NER and stance (`stance.trunk = "ner"`): stance's
//! network is the NER network with its layers from `from + 1` on replaced,
//! so the states after layer `from` are the same for both tasks whenever
//! they read the same token row. NER runs first and keeps them
//! ([`Tap`]); stance then starts from them at layer `from + 1`
//! ([`Branch`]) instead of running layers 1..=`from` again.
//!
//! A row is kept under its token ids (special tokens included, padding
//! not): a stance row finds NER's states when its segment was one NER
//! window, which it is for every segment that fits a window
//! (`ner.context = "segment"`). A batch with a row that NER did not see
//! runs the whole network, so the scores never depend on what was kept.
//!
//! Memory is bounded: a row is let go once stance has read it (as many
//! times as NER kept it), and no more than [`KEEP_BUDGET`] values are held
//! at once; rows past it are not kept, and their batches run whole.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{D, DType, Tensor};

use crate::InferError;
use crate::models::{BertModel, Encoder};

/// The most values (f32) held at once: 64 MiB, about 43,000 positions of
/// a 384-wide model (a chunk of 32 news articles is a third of that).
pub const KEEP_BUDGET: usize = 16 << 20;

/// The kept states of one row, and how many times NER kept it (identical
/// segments share one entry).
#[derive(Debug)]
struct Kept {
    states: Vec<f32>,
    copies: usize,
}

/// Kept rows by token ids, and the values they hold.
#[derive(Debug, Default)]
struct Rows {
    by_ids: HashMap<Vec<u32>, Kept>,
    values: usize,
}

/// The states after one layer of the rows NER ran, by token ids.
#[derive(Debug)]
pub struct SharedStates {
    layer: usize,
    hidden: usize,
    budget: usize,
    rows: Mutex<Rows>,
    hits: AtomicUsize,
    misses: AtomicUsize,
}

impl SharedStates {
    /// Keeps the states after `layer` (1-based), each position `hidden`
    /// wide.
    pub fn new(layer: usize, hidden: usize) -> Self {
        Self::with_budget(layer, hidden, KEEP_BUDGET)
    }

    /// As [`Self::new`], holding at most `budget` values at once.
    pub fn with_budget(layer: usize, hidden: usize, budget: usize) -> Self {
        Self {
            layer,
            hidden,
            budget,
            rows: Mutex::new(Rows::default()),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
        }
    }

    /// The layer whose output is kept.
    pub fn layer(&self) -> usize {
        self.layer
    }

    /// Batches that found every row, and batches that did not.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Each row's ids and length (its mask's ones, which come first).
    fn rows(input_ids: &Tensor, attention_mask: &Tensor) -> Result<Vec<Vec<u32>>, InferError> {
        let ids = input_ids.to_dtype(DType::U32)?.to_vec2::<u32>()?;
        let mask = attention_mask.to_dtype(DType::U32)?.to_vec2::<u32>()?;
        Ok(ids
            .into_iter()
            .zip(mask)
            .map(|(mut ids, mask)| {
                let len = mask.iter().take_while(|&&m| m != 0).count();
                ids.truncate(len);
                ids
            })
            .collect())
    }

    /// Keeps `states` (`[batch, seq, hidden]`, this batch's output of
    /// [`Self::layer`]) under each row's ids.
    pub fn keep(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        states: &Tensor,
    ) -> Result<(), InferError> {
        let rows = Self::rows(input_ids, attention_mask)?;
        let (batch, seq, hidden) = states.dims3()?;
        if hidden != self.hidden || batch != rows.len() {
            return Err(InferError::Shape {
                what: "the states kept for stance",
                expected: vec![rows.len(), seq, self.hidden],
                got: states.dims().to_vec(),
            });
        }
        let values = states
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let mut kept = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (r, ids) in rows.into_iter().enumerate() {
            if let Some(entry) = kept.by_ids.get_mut(&ids) {
                entry.copies += 1;
                continue;
            }
            let len = ids.len() * hidden;
            if kept.values + len > self.budget {
                continue;
            }
            let start = r * seq * hidden;
            let states = values[start..start + len].to_vec();
            kept.values += len;
            kept.by_ids.insert(ids, Kept { states, copies: 1 });
        }
        Ok(())
    }

    /// The kept states of every row of this batch, `[batch, seq, hidden]`
    /// (zeros at padding), or `None` when a row was not kept. Found rows
    /// are let go (one copy each).
    pub fn find(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<Option<Tensor>, InferError> {
        let rows = Self::rows(input_ids, attention_mask)?;
        let (batch, seq) = input_ids.dims2()?;
        let mut values = vec![0f32; batch * seq * self.hidden];
        {
            let mut kept = self
                .rows
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !rows.iter().all(|ids| kept.by_ids.contains_key(ids)) {
                self.misses.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
            for (r, ids) in rows.iter().enumerate() {
                if let Some(entry) = kept.by_ids.get(ids) {
                    let start = r * seq * self.hidden;
                    values[start..start + entry.states.len()].copy_from_slice(&entry.states);
                }
            }
            // Let go only once every row is copied: a batch may hold one
            // segment twice.
            for ids in &rows {
                let Some(entry) = kept.by_ids.get_mut(ids) else {
                    continue;
                };
                entry.copies = entry.copies.saturating_sub(1);
                if entry.copies == 0
                    && let Some(done) = kept.by_ids.remove(ids)
                {
                    kept.values -= done.states.len();
                }
            }
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        let device = input_ids.device();
        Ok(Some(Tensor::from_vec(
            values,
            (batch, seq, self.hidden),
            device,
        )?))
    }
}

/// NER's encoder as `loaded::LayerConcat` gives it (the states of
/// `layers`, concatenated), keeping the output of `shared`'s layer on the
/// way.
#[derive(Debug)]
pub struct Tap<'a> {
    pub network: &'a BertModel,
    pub layers: &'a [usize],
    pub shared: &'a SharedStates,
}

impl Encoder for Tap<'_> {
    fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor, InferError> {
        let mut asked = self.layers.to_vec();
        asked.push(self.shared.layer());
        let mut states = self
            .network
            .forward_layers(input_ids, attention_mask, &asked)?;
        if let Some(kept) = states.pop() {
            self.shared.keep(input_ids, attention_mask, &kept)?;
        }
        Ok(Tensor::cat(&states, D::Minus1)?)
    }

    fn hidden_size(&self) -> usize {
        self.network.hidden_size() * self.layers.len()
    }

    fn max_positions(&self) -> usize {
        self.network.max_positions()
    }
}

/// Stance's network read at layer `to`, started at layer `from + 1` from
/// the states NER kept when it has them for the whole batch.
#[derive(Debug)]
pub struct Branch<'a> {
    pub network: &'a BertModel,
    pub from: usize,
    pub to: usize,
    pub shared: Option<&'a SharedStates>,
}

impl Encoder for Branch<'_> {
    fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor, InferError> {
        if let Some(shared) = self.shared.filter(|s| s.layer() == self.from)
            && let Some(states) = shared.find(input_ids, attention_mask)?
        {
            return self
                .network
                .forward_from(&states, attention_mask, self.from, self.to);
        }
        let mut states = self
            .network
            .forward_layers(input_ids, attention_mask, &[self.to])?;
        states.pop().ok_or(InferError::LayerOutOfRange {
            layer: self.to,
            layers: self.network.num_layers(),
        })
    }

    fn hidden_size(&self) -> usize {
        self.network.hidden_size()
    }

    fn max_positions(&self) -> usize {
        self.network.max_positions()
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::SharedStates;

    fn batch(rows: &[&[u32]], seq: usize) -> (Tensor, Tensor) {
        let mut ids = vec![0u32; rows.len() * seq];
        let mut mask = vec![0u32; rows.len() * seq];
        for (r, row) in rows.iter().enumerate() {
            ids[r * seq..r * seq + row.len()].copy_from_slice(row);
            mask[r * seq..r * seq + row.len()].fill(1);
        }
        let shape = (rows.len(), seq);
        (
            Tensor::from_vec(ids, shape, &Device::Cpu).unwrap(),
            Tensor::from_vec(mask, shape, &Device::Cpu).unwrap(),
        )
    }

    /// States for `rows` padded to `seq`, two wide: row r, position p
    /// holds (r * 10 + p, -1).
    fn states(rows: usize, seq: usize) -> Tensor {
        let values: Vec<f32> = (0..rows * seq)
            .flat_map(|i| [((i / seq) * 10 + i % seq) as f32, -1.0])
            .collect();
        Tensor::from_vec(values, (rows, seq, 2), &Device::Cpu).unwrap()
    }

    fn found(shared: &SharedStates, rows: &[&[u32]], seq: usize) -> Option<Vec<Vec<Vec<f32>>>> {
        let (ids, mask) = batch(rows, seq);
        shared
            .find(&ids, &mask)
            .unwrap()
            .map(|t| t.to_vec3::<f32>().unwrap())
    }

    #[test]
    fn a_row_is_let_go_once_read_as_often_as_kept() {
        let shared = SharedStates::new(1, 2);
        // One segment twice (two copies), another once.
        let (ids, mask) = batch(&[&[5, 6, 7], &[5, 6, 7], &[8, 9]], 4);
        shared.keep(&ids, &mask, &states(3, 4)).unwrap();
        // Both copies in one batch, beside the other row, padded wider.
        let got = found(&shared, &[&[8, 9], &[5, 6, 7], &[5, 6, 7]], 5).unwrap();
        assert_eq!(
            got[0][..3],
            [vec![20.0, -1.0], vec![21.0, -1.0], vec![0.0, 0.0]]
        );
        assert_eq!(
            got[1][..4],
            [
                vec![0.0, -1.0],
                vec![1.0, -1.0],
                vec![2.0, -1.0],
                vec![0.0, 0.0]
            ]
        );
        assert_eq!(got[1], got[2]);
        assert_eq!(shared.counts(), (1, 0));
        // All read: nothing is held, and a batch asking again runs whole.
        assert_eq!(shared.rows.lock().unwrap().values, 0);
        assert!(found(&shared, &[&[8, 9]], 2).is_none());
        assert_eq!(shared.counts(), (1, 1));
    }

    #[test]
    fn rows_past_the_budget_are_not_kept() {
        // Room for three positions of two values.
        let shared = SharedStates::with_budget(1, 2, 6);
        let (ids, mask) = batch(&[&[1, 2], &[3, 4]], 2);
        shared.keep(&ids, &mask, &states(2, 2)).unwrap();
        assert_eq!(shared.rows.lock().unwrap().values, 4);
        assert!(found(&shared, &[&[3, 4]], 2).is_none());
        assert!(found(&shared, &[&[1, 2]], 2).is_some());
        // Its room is free again.
        shared.keep(&ids, &mask, &states(2, 2)).unwrap();
        assert!(found(&shared, &[&[1, 2]], 2).is_some());
    }
}
