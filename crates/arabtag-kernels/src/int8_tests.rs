//! Tests of [`super`]: the 8-bit products against f32, the two kernels
//! and the fused GELU bit for bit.

use super::*;

#[cfg(target_arch = "x86_64")]
#[path = "int8_amx_tests.rs"]
mod amx_tests;

/// A reproducible pseudo-random sequence in [-1, 1).
pub(super) fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn f32_product(x: &[f32], w: &[f32], bias: &[f32], k: usize, n: usize) -> Vec<f32> {
    x.chunks_exact(k)
        .flat_map(|row| {
            (0..n).map(move |c| {
                row.iter()
                    .zip(&w[c * k..(c + 1) * k])
                    .map(|(a, b)| a * b)
                    .sum::<f32>()
                    + bias[c]
            })
        })
        .collect()
}

#[test]
fn close_to_the_f32_product_for_awkward_shapes() {
    for (m, k, n) in [
        (1, 384, 384),
        (7, 30, 70),
        (13, 1536, 384),
        (5, 3, 17),
        (64, 384, 1536),
    ] {
        let x = noise(m * k, 1);
        let w = noise(n * k, 2);
        let bias = noise(n, 3);
        let layer = Int8Linear::from_f32(&w, n, k, Some(&bias));
        let exact = f32_product(&x, &w, &bias, k, n);
        let got = layer.forward_rows(&x);
        assert_eq!(got.len(), m * n);
        // Two 8-bit roundings per product: errors of about 1% of the
        // typical |output| (√k · 1/3 for uniform inputs), far below it.
        let typical = (k as f32).sqrt() / 3.0;
        let worst = got
            .iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst < 0.03 * typical,
            "{m}×{k}×{n}: max error {worst} (typical {typical})"
        );
    }
}

#[test]
fn the_vnni_kernel_and_the_portable_loop_give_the_same_bits() {
    if !vnni_available() {
        eprintln!("no AVX-512 VNNI on this CPU: only the portable loop runs");
        return;
    }
    // Every remainder of rows after the kernel's blocks of MR, tasks split
    // across threads (100 and 257 rows), and groups quantised sixteen at a
    // time with a remainder and a partial group (551 inputs: 17 groups
    // and 7).
    for (m, k, n) in [
        (1, 384, 384),
        (6, 30, 70),
        (33, 1536, 384),
        (7, 551, 40),
        (9, 5, 130),
        (10, 64, 64),
        (11, 40, 65),
        (100, 96, 200),
        (257, 384, 48),
    ] {
        let x = noise(m * k, 4);
        let w = noise(n * k, 5);
        let layer = Int8Linear::from_f32(&w, n, k, (n % 2 == 0).then_some(&noise(n, 6)[..]));
        for epilogue in [Epilogue::None, Epilogue::Gelu] {
            assert_eq!(
                layer.forward_with(&x, Kernel::Vnni, epilogue),
                layer.forward_with(&x, Kernel::Portable, epilogue),
                "{m}×{k}×{n} {epilogue:?}"
            );
        }
    }
}

#[test]
fn the_fused_gelu_gives_the_bits_of_the_gelu_op_after_the_product() {
    use candle_core::{Device, Tensor};
    for (m, k, n) in [(1, 384, 1536), (13, 64, 100), (70, 96, 1536)] {
        let x = noise(m * k, 11);
        let layer = Int8Linear::from_f32(&noise(n * k, 12), n, k, Some(&noise(n, 13)));
        let product = Tensor::from_vec(layer.forward_rows(&x), (m, n), &Device::Cpu).unwrap();
        let separate = crate::gelu::activate(candle_nn::Activation::Gelu, &product)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(layer.forward_rows_gelu(&x), separate, "{m}×{k}×{n}");
    }
}

#[test]
fn the_fused_feed_forward_gives_the_bits_of_its_two_products() {
    use candle_core::{Device, Tensor};
    // One row, a remainder after blocks of MR, several tasks, and widths
    // that are not multiples of the group or the panel.
    for (m, h, ff) in [(1, 384, 1536), (13, 64, 100), (70, 96, 256), (257, 40, 70)] {
        let x = noise(m * h, 21);
        let inner = Int8Linear::from_f32(&noise(ff * h, 22), ff, h, Some(&noise(ff, 23)));
        let output = Int8Linear::from_f32(&noise(h * ff, 24), h, ff, Some(&noise(h, 25)));
        let apart = output.forward_with(
            &inner.forward_with(&x, kernel(), Epilogue::Gelu),
            kernel(),
            Epilogue::None,
        );
        assert_eq!(apart.len(), m * h);
        assert_eq!(
            Int8Linear::feed_forward(&inner, &output, &x),
            apart,
            "{m}×{h}×{ff}"
        );
        if kernel() != Kernel::Portable {
            assert_eq!(
                Int8Linear::feed_forward_with(&inner, &output, &x, Kernel::Portable),
                apart,
                "{m}×{h}×{ff}, portable"
            );
        }
        let xs = Tensor::from_vec(x, (1, m, h), &Device::Cpu).unwrap();
        let op = xs
            .apply_op1_no_bwd(&Int8FeedForward {
                inner: &inner,
                output: &output,
            })
            .unwrap();
        assert_eq!(op.dims(), &[1, m, h]);
        assert_eq!(op.flatten_all().unwrap().to_vec1::<f32>().unwrap(), apart);
    }
}

#[test]
fn the_feed_forward_op_names_a_shape_that_does_not_fit() {
    use candle_core::{Device, Tensor};
    let inner = Int8Linear::from_f32(&noise(8 * 4, 1), 8, 4, None);
    let output = Int8Linear::from_f32(&noise(4 * 8, 2), 4, 8, None);
    let xs = Tensor::from_vec(noise(2 * 5, 3), (2, 5), &Device::Cpu).unwrap();
    let err = xs
        .apply_op1_no_bwd(&Int8FeedForward {
            inner: &inner,
            output: &output,
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("int8-feed-forward") && err.contains("[2, 5]"),
        "{err}"
    );
    let wrong = Int8Linear::from_f32(&noise(4 * 6, 2), 4, 6, None);
    let xs = Tensor::from_vec(noise(2 * 4, 3), (2, 4), &Device::Cpu).unwrap();
    let err = xs
        .apply_op1_no_bwd(&Int8FeedForward {
            inner: &inner,
            output: &wrong,
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("gives 8 features") && err.contains("takes 6"),
        "{err}"
    );
}

#[test]
fn stacked_layers_give_each_layer_s_outputs() {
    let (m, k) = (7, 96);
    let x = noise(m * k, 7);
    let a = Int8Linear::from_f32(&noise(40 * k, 8), 40, k, Some(&noise(40, 9)));
    let b = Int8Linear::from_f32(&noise(64 * k, 10), 64, k, None);
    let both = Int8Linear::stack(&[&a, &b]).expect("same input width");
    assert_eq!(both.out_features(), 104);
    let (ya, yb, y) = (
        a.forward_rows(&x),
        b.forward_rows(&x),
        both.forward_rows(&x),
    );
    for r in 0..m {
        assert_eq!(&y[r * 104..r * 104 + 40], &ya[r * 40..(r + 1) * 40]);
        assert_eq!(&y[r * 104 + 40..(r + 1) * 104], &yb[r * 64..(r + 1) * 64]);
    }
    let narrow = Int8Linear::from_f32(&noise(8 * 32, 11), 8, 32, None);
    assert!(Int8Linear::stack(&[&a, &narrow]).is_none());
}

#[test]
fn layers_of_whole_panels_stack_as_their_rows_would_pack() {
    // 64 and 128 outputs (whole panels of NR), one with a bias, over 100
    // inputs (a partial group): the panels copied as they are must be what
    // packing the stacked rows gives.
    let k = 100;
    let a = Int8Linear::from_f32(&noise(64 * k, 31), 64, k, Some(&noise(64, 32)));
    let b = Int8Linear::from_f32(&noise(128 * k, 33), 128, k, None);
    let fast = Int8Linear::stack(&[&a, &b]).expect("same input width");
    let rows: Vec<i8> = (0..64)
        .flat_map(|n| a.row(n))
        .chain((0..128).flat_map(|n| b.row(n)))
        .collect();
    let bias: Vec<f32> = a.bias.iter().chain(&b.bias).copied().collect();
    let scales: Vec<f32> = a.scales.iter().chain(&b.scales).copied().collect();
    let packed = Int8Linear::from_i8(rows, scales, 192, k, Some(&bias));
    assert_eq!(fast.packed, packed.packed);
    assert_eq!(fast.shift, packed.shift);
    assert_eq!(fast.scales, packed.scales);
    assert_eq!(fast.bias, packed.bias);
    assert!(fast.has_bias);
    let x = noise(9 * k, 34);
    assert_eq!(fast.forward_rows(&x), packed.forward_rows(&x));
}

#[test]
fn weights_stored_as_8_bit_rows_load_exactly() {
    let (n, k) = (3, 5);
    let rows: Vec<i8> = vec![127, -127, 0, 5, -3, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0];
    let scales = vec![0.5, 0.25, 1.0];
    let layer = Int8Linear::from_i8(rows.clone(), scales.clone(), n, k, None);
    let w = layer.weight_f32();
    assert_eq!(w[0], 63.5);
    assert_eq!(w[6], 0.5);
    // Requantising those floats row by row gives the same integers back
    // where a row reaches ±127.
    let again = Int8Linear::from_f32(&w, n, k, None);
    assert_eq!(again.row(0), layer.row(0));
    assert_eq!(layer.row(2), &rows[10..]);
    assert!(layer.bias().is_none());
    // The rounding is round_ties_even's.
    for i in -3000..=3000 {
        let v = i as f32 * 0.0437;
        assert_eq!(round_even(v), v.round_ties_even(), "{v}");
    }
    for v in [0.5f32, 1.5, 2.5, -0.5, -1.5, 126.5, -127.5, 127.0] {
        assert_eq!(round_even(v), v.round_ties_even(), "{v}");
    }
    // An all-zero input row gives the bias (here none: zeros).
    assert_eq!(layer.forward_rows(&[0.0; 5]), vec![0.0; 3]);
}

#[test]
fn weight_rows_quantise_to_the_same_bits_with_avx512() {
    if !vnni_available() {
        eprintln!("no AVX-512 BW on this CPU: only the scalar loop runs");
        return;
    }
    let mut rows: Vec<Vec<f32>> = [1usize, 15, 16, 17, 384, 1000]
        .iter()
        .map(|&n| noise(n, n as u64))
        .collect();
    // Ties to even once scaled (the max is 127: the scale is 1), and an
    // all-zero row (scale 1, all zeros).
    rows.push(vec![127.0, 2.5, -3.5, 0.5, -0.5, 126.5, -126.5, 1.5, -0.0]);
    rows.push(vec![0.0; 40]);
    for row in rows {
        let (mut narrow, mut wide) = (vec![0i8; row.len()], vec![0i8; row.len()]);
        let s_narrow = quantise_weight_row(&row, &mut narrow, false);
        let s_wide = quantise_weight_row(&row, &mut wide, true);
        assert_eq!(
            s_narrow.to_bits(),
            s_wide.to_bits(),
            "{} weights",
            row.len()
        );
        assert_eq!(narrow, wide, "{} weights", row.len());
    }
    let ties = [127.0, 2.5, -3.5, 0.5, -0.5, 126.5, -126.5, 1.5];
    let mut q = [0i8; 8];
    quantise_weight_row(&ties, &mut q, true);
    assert_eq!(q, [127, 2, -4, 0, 0, 126, -126, 2]);
}

#[test]
fn each_kernel_this_process_may_run_is_timed_once() {
    let timings = time_kernels(40, 100, 70, 3);
    let names: Vec<&str> = timings.iter().map(|t| t.kernel).collect();
    let expected: Vec<&str> = match kernel() {
        Kernel::Amx => vec!["amx", "vnni"],
        Kernel::Vnni => vec!["vnni"],
        Kernel::Portable => vec!["portable"],
    };
    assert_eq!(names, expected);
    assert!(
        timings.iter().all(|t| t.seconds > 0.0 && t.seconds < 60.0),
        "{timings:?}"
    );
}
