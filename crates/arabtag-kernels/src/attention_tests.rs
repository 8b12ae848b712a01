//! The fused attention against candle's ops, both builds.

use candle_core::{Device, Tensor};

use super::*;
use crate::softmax::{attention_bias, masked_softmax};

/// candle's path: per-head q, k, v, scores, softmax with the bias,
/// weighted sum, heads joined.
fn reference(qkv: &Tensor, mask: Option<&Tensor>, heads: usize) -> Tensor {
    let (b, s, w) = qkv.dims3().unwrap();
    let h = w / 3;
    let d = h / heads;
    let split = |i: usize| {
        qkv.narrow(2, i * h, h)
            .unwrap()
            .reshape((b, s, heads, d))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
    };
    let q = (split(0) / (d as f64).sqrt()).unwrap();
    let (k, v) = (split(1), split(2));
    let scores = q.matmul(&k.t().unwrap()).unwrap();
    let bias = mask.map(|m| attention_bias(m, candle_core::DType::F32).unwrap());
    let probs = masked_softmax(&scores, bias.as_ref()).unwrap();
    probs
        .matmul(&v)
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape((b, s, h))
        .unwrap()
}

fn fused(qkv: &Tensor, mask: Option<&Tensor>, heads: usize, fast: bool) -> Vec<f32> {
    let (b, s, _) = qkv.dims3().unwrap();
    let data = qkv.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let bias = mask.map(|m| {
        attention_bias(m, candle_core::DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    });
    let op = FusedAttention { heads };
    if !fast {
        // The portable build, whatever this CPU has.
        let h = data.len() / (3 * b * s);
        let d = h / heads;
        let mut out = vec![0f32; b * s * h];
        for i in 0..b {
            for head in 0..heads {
                let job = Job {
                    seq: &data[i * s * 3 * h..(i + 1) * s * 3 * h],
                    bias: bias.as_deref().map(|x| &x[i * s..(i + 1) * s]),
                    s,
                    h,
                    d,
                    head,
                    rows: (0, s),
                };
                for (r, row) in job.run::<Unfused, false>().chunks_exact(d).enumerate() {
                    let at = (i * s + r) * h + head * d;
                    out[at..at + d].copy_from_slice(row);
                }
            }
        }
        return out;
    }
    op.context(&data, bias.as_deref(), b, s)
}

fn check_shapes(b: usize, s: usize, heads: usize, d: usize, lens: &[u32]) {
    let dev = Device::Cpu;
    let qkv = Tensor::randn(0f32, 2.0, (b, s, 3 * heads * d), &dev).unwrap();
    let mask: Vec<u32> = (0..b)
        .flat_map(|i| (0..s as u32).map(move |j| u32::from(j < lens[i])))
        .collect();
    let mask = Tensor::from_vec(mask, (b, s), &dev).unwrap();
    let padded = lens.iter().any(|&l| (l as usize) < s);
    let mask = padded.then_some(&mask);
    let want = reference(&qkv, mask, heads)
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    for fast in [true, false] {
        let got = fused(&qkv, mask, heads, fast);
        let worst = want
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst < 2e-5,
            "b {b} s {s} heads {heads} d {d} lens {lens:?} fast {fast}: {worst}"
        );
    }
}

#[test]
fn matches_candle_s_attention() {
    // One sequence, no padding, a multiple of every block.
    check_shapes(1, 128, 2, 32, &[128]);
    // Ragged lengths with padding; a head width of 16 and one of 24
    // (the 16-wide and the single-column loops).
    check_shapes(3, 77, 3, 32, &[77, 40, 1]);
    check_shapes(2, 70, 2, 16, &[5, 70]);
    check_shapes(2, 33, 4, 24, &[33, 20]);
    // More rows than a task takes.
    check_shapes(1, 150, 1, 64, &[150]);
}

#[test]
fn a_masked_key_inside_the_sequence_gets_no_weight() {
    let dev = Device::Cpu;
    let qkv = Tensor::randn(0f32, 1.0, (1, 6, 6), &dev).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 0, 1, 0, 0]], &dev).unwrap();
    let want = reference(&qkv, Some(&mask), 1)
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let got = fused(&qkv, Some(&mask), 1, true);
    for (a, b) in want.iter().zip(&got) {
        assert!((a - b).abs() < 1e-5, "{want:?} {got:?}");
    }
    // And the op itself, through candle.
    let bias = attention_bias(&mask, candle_core::DType::F32).unwrap();
    let op = qkv
        .apply_op2_no_bwd(&bias, &FusedAttention { heads: 1 })
        .unwrap();
    assert_eq!(op.dims(), &[1, 6, 2]);
    let op = op.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(op, got);
}

#[test]
fn the_avx512_exponentials_match_the_portable_ones() {
    if !simd::avx512_available() {
        return;
    }
    let dev = Device::Cpu;
    // Rows of 16s and with a tail; masked keys (-3.4e38) and padding
    // (-∞) among them.
    for n in [16usize, 17, 48, 333] {
        let mut row = Tensor::randn(0f32, 8.0, n, &dev)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        row[n / 2] = f32::MIN;
        row[n - 1] = f32::NEG_INFINITY;
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut portable = row.clone();
        let want = exp_sum(&mut portable, max);
        let mut fast = row.clone();
        #[allow(unsafe_code)]
        // SAFETY: checked above that the CPU has AVX-512.
        let got = unsafe { avx512::exp_sum(&mut fast, max) };
        assert!((want - got).abs() < 1e-5 * want, "n {n}: {want} {got}");
        for (a, b) in portable.iter().zip(&fast) {
            assert!((a - b).abs() < 1e-6, "n {n}: {a} {b}");
        }
        assert_eq!((fast[n / 2], fast[n - 1]), (0.0, 0.0));
    }
}
