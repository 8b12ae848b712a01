//! Micro-benchmarks of the encoder's CPU kernels at multilingual-e5-small's
//! sizes (hidden 384, 12 heads of 32, feed-forward 1,536), on random values:
//!
//! - `attention/s`: [`FusedAttention`] over one sequence of `s` positions,
//!   stacked query-key-value states `[1, s, 1152]` to the context
//!   `[1, s, 384]` (throughput: the `4·s·h` FLOPs per position of its two
//!   products);
//! - `int8/rows×in→out`: an 8-bit [`Int8Linear`] on `rows` inputs (the
//!   encoder's four shapes of product; throughput `2·in·out` per row);
//! - `feed-forward/fused` and `feed-forward/apart`: a feed-forward block on
//!   256 rows, `[256, 384]` through 1,536 GELU units back to 384, as one op
//!   ([`Int8Linear::feed_forward`]) and as the two products with the GELU
//!   in the first ([`Int8Linear::forward_rows_gelu`]);
//! - `layer-norm`: residual + LayerNorm of `[256, 384]` ([`add_layer_norm`]);
//! - `gelu`: the erf GELU of `[256, 1536]`.
//!
//! ```text
//! cargo bench -p arabtag-kernels --bench kernels
//! ```
//!
//! They time one kernel at a time, for comparing versions of it on one
//! machine; `arabtag bench` times the whole tagger against its peers.

use arabtag_kernels::{FusedAttention, Int8Linear, activate, add_layer_norm, vnni_available};
use candle_core::{Device, Tensor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const H: usize = 384;
const HEADS: usize = 12;
const FF: usize = 1536;

fn random(shape: &[usize]) -> Tensor {
    Tensor::randn(0f32, 1.0, shape, &Device::Cpu).expect("random tensor")
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .expect("f32 values")
}

fn attention(c: &mut Criterion) {
    let mut group = c.benchmark_group("attention");
    let op = FusedAttention { heads: HEADS };
    for s in [64usize, 256, 512] {
        let qkv = values(&random(&[1, s, 3 * H]));
        group.throughput(Throughput::Elements((4 * s * s * H) as u64));
        group.bench_function(format!("{s}"), |b| {
            b.iter(|| op.context(&qkv, None, 1, s));
        });
    }
    group.finish();
}

fn int8(c: &mut Criterion) {
    if !vnni_available() {
        eprintln!("int8: skipped, this CPU has no AVX-512 VNNI");
        return;
    }
    let mut group = c.benchmark_group("int8");
    let rows = 256;
    for (inp, out) in [(H, 3 * H), (H, H), (H, FF), (FF, H)] {
        let w = values(&random(&[out, inp]));
        let bias = values(&random(&[out]));
        let layer = Int8Linear::from_f32(&w, out, inp, Some(&bias));
        let x = values(&random(&[rows, inp]));
        group.throughput(Throughput::Elements((2 * rows * inp * out) as u64));
        group.bench_function(format!("{rows}x{inp}->{out}"), |b| {
            b.iter(|| layer.forward_rows(&x));
        });
    }
    group.finish();
    let mut group = c.benchmark_group("feed-forward");
    let inner = Int8Linear::from_f32(
        &values(&random(&[FF, H])),
        FF,
        H,
        Some(&values(&random(&[FF]))),
    );
    let output = Int8Linear::from_f32(
        &values(&random(&[H, FF])),
        H,
        FF,
        Some(&values(&random(&[H]))),
    );
    let x = values(&random(&[rows, H]));
    group.throughput(Throughput::Elements((4 * rows * H * FF) as u64));
    group.bench_function("fused", |b| {
        b.iter(|| Int8Linear::feed_forward(&inner, &output, &x));
    });
    group.bench_function("apart", |b| {
        b.iter(|| output.forward_rows(&inner.forward_rows_gelu(&x)));
    });
    group.finish();
}

fn elementwise(c: &mut Criterion) {
    let xs = random(&[1, 256, H]);
    let residual = random(&[1, 256, H]);
    let norm = candle_nn::LayerNorm::new(random(&[H]), random(&[H]), 1e-12);
    c.bench_function("layer-norm", |b| {
        b.iter(|| add_layer_norm(&norm, &xs, Some(&residual)).expect("layer norm"));
    });
    let inner = random(&[1, 256, FF]);
    c.bench_function("gelu", |b| {
        b.iter(|| activate(candle_nn::Activation::Gelu, &inner).expect("gelu"));
    });
}

criterion_group!(benches, attention, int8, elementwise);
criterion_main!(benches);
