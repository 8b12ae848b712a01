//! XLM-RoBERTa: BERT's layers ([`super::bert`]) with RoBERTa's position ids.
//!
//! Upstream: `modeling_xlm_roberta.py` in transformers
//! (<https://github.com/huggingface/transformers/blob/main/src/transformers/models/xlm_roberta/modeling_xlm_roberta.py>).
//! Position ids follow `create_position_ids_from_input_ids`: real tokens
//! count from `pad_token_id + 1`, padding takes `pad_token_id`; we count over
//! the attention mask, so a batch padded on the right gives every row the
//! positions it has alone. Tensor names are BERT's under `roberta.` (or none).

use candle_core::Tensor;
use candle_core::quantized::GgmlDType;
use candle_nn::VarBuilder;

use super::Encoder;
use super::bert::{BertConfig, BertModel, Positions};
use crate::InferError;

/// XLM-R's `config.json` has BERT's keys; `pad_token_id` defaults to 1.
pub type XlmRobertaConfig = BertConfig;

/// The padding id when `config.json` names none.
pub const DEFAULT_PAD_TOKEN_ID: u32 = 1;

/// XLM-R's position ids for a `config.json` `pad_token_id` (`None` when
/// missing: [`DEFAULT_PAD_TOKEN_ID`]): counted from the padding id + 1, so
/// the table's first `pad_token_id + 1` rows are never used
/// ([`Positions::usable`]).
pub fn positions(pad_token_id: Option<u32>) -> Positions {
    Positions::FromMask {
        padding_idx: pad_token_id.unwrap_or(DEFAULT_PAD_TOKEN_ID),
    }
}

/// An XLM-RoBERTa encoder.
#[derive(Debug, Clone)]
pub struct XlmRobertaModel {
    inner: BertModel,
}

impl XlmRobertaModel {
    /// Loads an XLM-R checkpoint; `roberta.` is found by itself.
    pub fn load(vb: VarBuilder, cfg: &XlmRobertaConfig) -> Result<Self, InferError> {
        let inner =
            BertModel::load_with_positions(vb, cfg, positions(cfg.pad_token_id), "xlm-roberta")?;
        Ok(Self { inner })
    }

    /// The BERT layers underneath.
    pub fn bert(&self) -> &BertModel {
        &self.inner
    }

    /// This model with its layers' matrices quantized (see
    /// [`BertModel::quantize`]).
    pub fn quantize(&self, dtype: GgmlDType) -> Result<Self, InferError> {
        Ok(Self {
            inner: self.inner.quantize(dtype)?,
        })
    }
}

impl Encoder for XlmRobertaModel {
    fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor, InferError> {
        self.inner.forward(input_ids, attention_mask)
    }

    fn hidden_size(&self) -> usize {
        self.inner.hidden_size()
    }

    fn max_positions(&self) -> usize {
        self.inner.max_positions()
    }

    fn forward_layers(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        layers: &[usize],
    ) -> Result<Vec<Tensor>, InferError> {
        self.inner.forward_layers(input_ids, attention_mask, layers)
    }

    fn as_bert(&self) -> Option<&BertModel> {
        Some(&self.inner)
    }
}
