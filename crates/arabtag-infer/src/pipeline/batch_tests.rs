#![allow(clippy::unwrap_used)]

use arabtag_tokenizer::windows;

use super::*;

/// Hidden state of each position: `[id, position in the row, mask]`, so a
/// merged row tells which window it came from. Fails on a batch holding id
/// 666.
#[derive(Debug)]
struct Probe {
    max_positions: usize,
}

impl Encoder for Probe {
    fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor, InferError> {
        if input_ids.flatten_all()?.to_vec1::<u32>()?.contains(&666) {
            return Err(candle_core::Error::Msg("poisoned window".into()).into());
        }
        let (b, s) = input_ids.dims2()?;
        let pos = Tensor::arange(0u32, s as u32, input_ids.device())?
            .to_dtype(DType::F32)?
            .unsqueeze(0)?
            .broadcast_as((b, s))?;
        let ids = input_ids.to_dtype(DType::F32)?;
        let mask = attention_mask.to_dtype(DType::F32)?;
        Ok(Tensor::stack(&[ids, pos, mask], 2)?)
    }

    fn hidden_size(&self) -> usize {
        3
    }

    fn max_positions(&self) -> usize {
        self.max_positions
    }
}

fn identity(h: &Tensor) -> Result<Tensor, InferError> {
    Ok(h.clone())
}

fn wrapping() -> Wrapping {
    Wrapping {
        prefix: vec![1],
        suffix: vec![2],
        pad: 0,
    }
}

fn batching<'a>(w: &'a Wrapping, batch_size: usize) -> Batching<'a> {
    Batching {
        wrapping: w,
        batch_size,
        num_labels: 3,
        device: &Device::Cpu,
        work: None,
    }
}

#[test]
fn wrapping_comes_from_the_special_tokens() {
    let special = SpecialTokens {
        prefix: vec![0],
        suffix: vec![2],
        pad: Some(1),
        unk: Some(3),
    };
    let w = Wrapping::from_special(&special).unwrap();
    assert_eq!((w.prefix, w.suffix, w.pad), (vec![0], vec![2], 1));
    let no_pad = SpecialTokens {
        pad: None,
        ..special
    };
    assert!(matches!(
        Wrapping::from_special(&no_pad),
        Err(InferError::MissingPad)
    ));
}

#[test]
fn batches_are_sorted_by_length_longest_first_ties_in_input_order() {
    let a: Vec<u32> = (10..13).collect();
    let b: Vec<u32> = (20..30).collect();
    let c: Vec<u32> = (30..33).collect();
    let wa = windows(3, 4, 1).unwrap(); // one window of 3
    let wb = windows(10, 4, 1).unwrap(); // 0..4, 3..7, 6..10
    let wc = windows(3, 4, 1).unwrap();
    let docs = [
        WindowedDoc {
            ids: &a,
            windows: &wa,
        },
        WindowedDoc {
            ids: &b,
            windows: &wb,
        },
        WindowedDoc {
            ids: &c,
            windows: &wc,
        },
    ];
    let r = |doc, window| WindowRef { doc, window };
    let plan = plan_batches(&docs, &[false; 3], 2).unwrap();
    assert_eq!(
        plan,
        [
            vec![r(1, 0), r(1, 1)],
            vec![r(1, 2), r(0, 0)],
            vec![r(2, 0)]
        ]
    );
    let plan = plan_batches(&docs, &[false, true, false], 8).unwrap();
    assert_eq!(plan, [vec![r(0, 0), r(2, 0)]]);
    assert!(matches!(
        plan_batches(&docs, &[], 0),
        Err(InferError::ZeroBatchSize)
    ));
}

#[test]
fn batches_stay_within_the_token_budget() {
    // Windows of 2/5 of the budget: two fit it, a third would not; a window
    // longer than the budget is a batch of its own.
    let size = MAX_BATCH_TOKENS * 2 / 5;
    let long_len = MAX_BATCH_TOKENS + 100;
    let ids: Vec<u32> = vec![5; long_len.max(3 * size)];
    let w = windows(3 * size, size, 10).unwrap();
    assert_eq!(w.len(), 4);
    let long = windows(long_len, long_len, 10).unwrap();
    let docs = [
        WindowedDoc {
            ids: &ids[..3 * size],
            windows: &w,
        },
        WindowedDoc {
            ids: &ids[..long_len],
            windows: &long,
        },
    ];
    let plan = plan_batches(&docs, &[false, false], 16).unwrap();
    let sizes: Vec<usize> = plan.iter().map(Vec::len).collect();
    assert_eq!(sizes, [1, 2, 2]);
    assert_eq!(plan[0], [WindowRef { doc: 1, window: 0 }]);
}

#[test]
fn packing_wraps_and_pads_on_the_right() {
    let a: Vec<u32> = vec![7, 8, 9, 10, 11];
    let wa = windows(5, 3, 1).unwrap(); // 0..3, 2..5
    let b: Vec<u32> = vec![5];
    let wb = windows(1, 3, 1).unwrap();
    let docs = [
        WindowedDoc {
            ids: &a,
            windows: &wa,
        },
        WindowedDoc {
            ids: &b,
            windows: &wb,
        },
    ];
    let refs = [
        WindowRef { doc: 0, window: 1 },
        WindowRef { doc: 1, window: 0 },
    ];
    let p = pack(&docs, &refs, &wrapping());
    assert_eq!((p.rows, p.seq), (2, 5));
    assert_eq!(p.ids, [1, 9, 10, 11, 2, 1, 5, 2, 0, 0]);
    assert_eq!(p.mask, [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    let (ids, mask) = p.tensors(&Device::Cpu).unwrap();
    assert_eq!(ids.dims(), [2, 5]);
    assert_eq!(mask.to_vec2::<u32>().unwrap()[1], [1, 1, 1, 0, 0]);
}

/// 20 tokens, windows of 8 with stride 2: 0..8 counts 0..7, 6..14 counts
/// 7..13, 12..20 counts 13..20. Token 6 is in the first two windows and
/// is most central in the first (position 6 of 8 vs 0 of 8).
#[test]
fn each_token_takes_the_row_of_its_most_central_window() {
    let ids: Vec<u32> = (100..120).collect();
    let ws = windows(20, 8, 2).unwrap();
    let docs = [WindowedDoc {
        ids: &ids,
        windows: &ws,
    }];
    let w = wrapping();
    let model = Probe { max_positions: 10 };
    let out = token_logits(&docs, &batching(&w, 2), &model, &identity).unwrap();
    let rows = out.into_iter().next().unwrap().unwrap();
    assert_eq!(rows.len(), 20);
    let starts = [
        0, 0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 12, 12, 12, 12, 12, 12, 12,
    ];
    for (t, row) in rows.iter().enumerate() {
        let pos = (1 + t - starts[t]) as f32;
        assert_eq!(row, &vec![100.0 + t as f32, pos, 1.0], "token {t}");
    }
    assert_eq!(rows[6][1], 7.0, "token 6 from window 0..8, not 6..14");
    assert_eq!(rows[13][1], 2.0, "token 13 from window 12..20");
}

#[test]
fn output_is_in_input_order_and_a_failing_document_fails_alone() {
    let docs_ids: Vec<Vec<u32>> = vec![
        (10..13).collect(),
        (20..40).collect(),
        vec![],
        vec![50, 666, 52],
        (60..64).collect(),
    ];
    let ws: Vec<Vec<Window>> = docs_ids
        .iter()
        .map(|ids| windows(ids.len(), 6, 2).unwrap())
        .collect();
    let docs: Vec<WindowedDoc<'_>> = docs_ids
        .iter()
        .zip(&ws)
        .map(|(ids, windows)| WindowedDoc { ids, windows })
        .collect();
    let w = wrapping();
    let model = Probe { max_positions: 8 };
    for batch_size in [1, 3, 64] {
        let out = token_logits(&docs, &batching(&w, batch_size), &model, &identity).unwrap();
        assert_eq!(out.len(), 5);
        for (d, result) in out.iter().enumerate() {
            if d == 3 {
                assert!(matches!(result, Err(InferError::Candle(_))), "{result:?}");
                continue;
            }
            let got: Vec<f32> = result.as_ref().unwrap().iter().map(|r| r[0]).collect();
            let want: Vec<f32> = docs_ids[d].iter().map(|&i| i as f32).collect();
            assert_eq!(got, want, "document {d}, batch size {batch_size}");
        }
    }
}

#[test]
fn invalid_windows_and_shapes_are_errors() {
    let ids: Vec<u32> = (0..10).collect();
    let w = wrapping();
    // 10 + 2 specials > 11 positions.
    let too_long = windows(10, 10, 2).unwrap();
    let gap = vec![Window {
        tokens: 0..9,
        counted: 0..9,
    }];
    let outside = vec![Window {
        tokens: 5..11,
        counted: 5..11,
    }];
    let model = Probe { max_positions: 11 };
    for (ws, pattern) in [
        (&too_long, "WindowTooLong"),
        (&gap, "WindowCoverage"),
        (&outside, "WindowOutOfRange"),
    ] {
        let docs = [WindowedDoc {
            ids: &ids,
            windows: ws,
        }];
        let out = token_logits(&docs, &batching(&w, 4), &model, &identity).unwrap();
        let err = format!("{:?}", out[0].as_ref().unwrap_err());
        assert!(err.starts_with(pattern), "{err}");
    }
    // A head with the wrong number of labels.
    let ws = windows(10, 4, 1).unwrap();
    let docs = [WindowedDoc {
        ids: &ids,
        windows: &ws,
    }];
    let b = Batching {
        num_labels: 5,
        ..batching(&w, 4)
    };
    let out = token_logits(&docs, &b, &model, &identity).unwrap();
    assert!(matches!(
        out[0].as_ref().unwrap_err(),
        InferError::Shape {
            what: "the head's logits",
            ..
        }
    ));
    assert!(matches!(
        token_logits(&docs, &batching(&w, 0), &model, &identity),
        Err(InferError::ZeroBatchSize)
    ));
}
