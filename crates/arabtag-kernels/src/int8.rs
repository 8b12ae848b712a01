//! Linear layers as 8-bit integer products (AMX or AVX-512 VNNI).
//!
//! `y = x Wᵀ + b` with
//!
//! - the weight `W` `[out, in]` stored as signed 8-bit integers with one f32
//!   scale per output row (symmetric, `max |w| / 127`: the format the NER
//!   head file already stores its layers in, so those load exactly);
//! - each input row `x` quantised on the fly to 8 bits in groups of
//!   [`GROUP`] inputs, each group with its own scale (`max |x| / 127`, round
//!   to nearest even), as GGML's `Q8_0` does: one scale per row let the few
//!   large features of a BERT hidden state coarsen all the others, which cost
//!   1.8 points of stance macro-F1 on data/stance/dev, against 0.35 for the
//!   8-bit weights alone. The bytes are shifted by 128 to unsigned because
//!   `vpdpbusd` multiplies unsigned by signed bytes; the shift is taken back
//!   out with the weight rows' sums over each group (`128 · Σ w`), computed
//!   once: each group's integer sums start at `-128 · Σ w`;
//! - each group's products summed in 32-bit integers, 64 products per
//!   instruction against 16 for an f32 FMA, then scaled to f32 and added to
//!   the row's f32 sum by one FMA; the row's weight scale and the bias come
//!   last (multiply, then add).
//!
//! [`Int8Linear::forward_rows`] picks, once per process ([`int8_kernel`]
//! says which and why): AMX tiles (`int8_amx.rs`) where the CPU has AMX,
//! Linux lends the tile state and a test product gives the VNNI kernel's
//! bits; else the AVX-512 VNNI kernel (`int8_vnni.rs`) where the CPU has it;
//! else a portable loop. All three do the same integer arithmetic and the
//! same f32 steps (`f32::mul_add` where the kernels have an FMA), so they
//! give the same bits, which the tests check (the AMX kernel's tile program
//! on a software tile unit where the CPU has no AMX). The portable loop is
//! slow: callers ask [`vnni_available`] before choosing 8-bit layers.
//!
//! Memory: one byte a weight, a quarter of f32.

#![allow(unsafe_code)]

use rayon::prelude::*;

/// Output columns per packed panel (four 16-lane registers).
const NR: usize = 64;
/// Input rows per micro-kernel call: 6 rows × 4 column registers are 24
/// integer sums, with the 4 weight registers and a broadcast 29 of the 32
/// AVX-512 registers, each weight load serving 6 rows (4 rows: 17% slower
/// in the kernel bench on one thread, 2-core Intel Xeon, no AMX).
const MR: usize = 6;
/// Inputs that share one activation scale.
pub const GROUP: usize = 32;

/// Whether this CPU runs the VNNI kernel (AVX-512 F, BW and VNNI).
pub fn vnni_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A linear layer with 8-bit weights (see the module docs).
#[derive(Clone)]
pub struct Int8Linear {
    in_features: usize,
    out_features: usize,
    /// `in_features` rounded up to a multiple of [`GROUP`].
    k4: usize,
    /// The weight packed for the kernel: panels of [`NR`] output columns;
    /// inside a panel, for each group of 4 inputs, 64 columns × 4 bytes.
    /// Padding (columns past `out_features`, inputs past `in_features`) is 0.
    packed: Vec<i8>,
    /// One scale per output column, `max |w| / 127`.
    scales: Vec<f32>,
    /// `-128 · Σ w[n][k]` over each group of inputs, `[groups, panels · NR]`:
    /// minus what the shift to unsigned adds, where a group's integer sums
    /// start.
    shift: Vec<i32>,
    /// The bias (zeros when the layer has none).
    bias: Vec<f32>,
    has_bias: bool,
}

impl std::fmt::Debug for Int8Linear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Int8Linear")
            .field("in_features", &self.in_features)
            .field("out_features", &self.out_features)
            .field("has_bias", &self.has_bias)
            .finish_non_exhaustive()
    }
}

/// `v` rounded to the nearest integer, ties to even, for |v| ≤ 2²²: adding
/// and taking away 1.5 · 2²³ leaves no fraction bits. `round_ties_even`
/// is a call to libm's `rintf` without SSE4.1 in the build's target, and was
/// a sixth of the start-up time.
#[inline(always)]
fn round_even(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (v + MAGIC) - MAGIC
}

/// `max |v| / 127`, 1 for an all-zero row (so that it quantises to zeros).
fn row_scale(row: &[f32]) -> f32 {
    let max = row.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max > 0.0 { max / 127.0 } else { 1.0 }
}

/// One weight row to 8 bits, symmetric (`max |w| / 127`, round to nearest
/// even, within ±127), into `q`; returns the scale. `wide` (what
/// [`vnni_available`] says): with AVX-512
/// (the same bits: the max is exact in any order, the rest is the same
/// operations lane by lane). With it, the scalar loop's 6.5% of the start's
/// CPU time fell to about 2%, and e5's 12 layers load in 103 ms, not 128
/// (2-core Intel Xeon).
fn quantise_weight_row(row: &[f32], q: &mut [i8], wide: bool) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if wide {
        // SAFETY: callers pass `vnni_available()`: the CPU has AVX-512 F
        // and BW.
        return unsafe { vnni::quantise_weight_row(row, q) };
    }
    let _ = wide;
    let scale = row_scale(row);
    let inv = 1.0 / scale;
    for (q, &w) in q.iter_mut().zip(row) {
        *q = round_even((w * inv).clamp(-127.0, 127.0)) as i8;
    }
    scale
}

impl Int8Linear {
    /// Quantises an f32 weight `[out, in]` (row-major) row by row.
    pub fn from_f32(
        weight: &[f32],
        out_features: usize,
        in_features: usize,
        bias: Option<&[f32]>,
    ) -> Self {
        assert_eq!(weight.len(), out_features * in_features, "weight size");
        let mut rows = vec![0i8; weight.len()];
        let mut scales = Vec::with_capacity(out_features);
        let wide = vnni_available();
        for (row, q) in weight
            .chunks_exact(in_features.max(1))
            .zip(rows.chunks_exact_mut(in_features.max(1)))
            .take(out_features)
        {
            scales.push(quantise_weight_row(row, q, wide));
        }
        if in_features == 0 {
            scales.resize(out_features, 1.0);
        }
        Self::from_i8(rows, scales, out_features, in_features, bias)
    }

    /// A layer from 8-bit rows `[out, in]` and their scales (`w = q · scale`).
    pub fn from_i8(
        rows: Vec<i8>,
        scales: Vec<f32>,
        out_features: usize,
        in_features: usize,
        bias: Option<&[f32]>,
    ) -> Self {
        assert_eq!(rows.len(), out_features * in_features, "weight size");
        assert_eq!(scales.len(), out_features, "one scale per output row");
        if let Some(b) = bias {
            assert_eq!(b.len(), out_features, "bias size");
        }
        let k4 = in_features.div_ceil(GROUP) * GROUP;
        let panels = out_features.div_ceil(NR);
        let mut packed = vec![0i8; panels * NR * k4];
        let width = panels * NR;
        let mut shift = vec![0i32; (k4 / GROUP) * width];
        for (n, row) in rows
            .chunks_exact(in_features.max(1))
            .take(out_features)
            .enumerate()
        {
            let base = (n / NR) * NR * k4 + (n % NR) * 4;
            for (step, four) in row.chunks(4).enumerate() {
                let at = base + step * NR * 4;
                packed[at..at + four.len()].copy_from_slice(four);
            }
            for (g, group) in row.chunks(GROUP).enumerate() {
                shift[g * width + n] = -128 * group.iter().map(|&w| i32::from(w)).sum::<i32>();
            }
        }
        Self {
            in_features,
            out_features,
            k4,
            packed,
            scales,
            shift,
            bias: bias.map_or_else(|| vec![0.0; out_features], <[f32]>::to_vec),
            has_bias: bias.is_some(),
        }
    }

    /// Width of the input.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Width of the output.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// The layers' rows stacked into one layer (outputs in order), when they
    /// share the input width: the same integers and scales, so each output is
    /// what its own layer gives.
    pub fn stack(layers: &[&Int8Linear]) -> Option<Self> {
        let first = layers.first()?;
        let k = first.in_features;
        if layers.iter().any(|l| l.in_features != k) {
            return None;
        }
        let out: usize = layers.iter().map(|l| l.out_features).sum();
        if layers.iter().all(|l| l.out_features % NR == 0) {
            return Some(Self::stack_panels(layers, out));
        }
        let mut rows = Vec::with_capacity(out * k);
        let (mut scales, mut bias) = (Vec::with_capacity(out), Vec::with_capacity(out));
        for layer in layers {
            for n in 0..layer.out_features {
                rows.extend(layer.row(n));
            }
            scales.extend_from_slice(&layer.scales);
            bias.extend_from_slice(&layer.bias);
        }
        let has_bias = layers.iter().any(|l| l.has_bias);
        Some(Self::from_i8(
            rows,
            scales,
            out,
            k,
            has_bias.then_some(&bias[..]),
        ))
    }

    /// [`Self::stack`] for layers whose outputs fill whole panels: the
    /// packed panels, scales and biases one after another, each group's
    /// shifts side by side; what packing the stacked rows gives, without
    /// unpacking them (the query-key-value stack of each layer at start).
    fn stack_panels(layers: &[&Int8Linear], out: usize) -> Self {
        let first = layers[0];
        let (k4, groups) = (first.k4, first.k4 / GROUP);
        let mut packed = Vec::with_capacity(out * k4);
        let (mut scales, mut bias) = (Vec::with_capacity(out), Vec::with_capacity(out));
        let mut shift = vec![0i32; groups * out];
        let mut at = 0;
        for layer in layers {
            let n = layer.out_features;
            packed.extend_from_slice(&layer.packed);
            scales.extend_from_slice(&layer.scales);
            bias.extend_from_slice(&layer.bias);
            for g in 0..groups {
                shift[g * out + at..g * out + at + n]
                    .copy_from_slice(&layer.shift[g * n..(g + 1) * n]);
            }
            at += n;
        }
        Self {
            in_features: first.in_features,
            out_features: out,
            k4,
            packed,
            scales,
            shift,
            bias,
            has_bias: layers.iter().any(|l| l.has_bias),
        }
    }

    /// Row `n` of the 8-bit weight (`in_features` values), from the packed
    /// copy (the only one kept).
    fn row(&self, n: usize) -> Vec<i8> {
        let base = (n / NR) * NR * self.k4 + (n % NR) * 4;
        (0..self.in_features)
            .map(|k| self.packed[base + (k / 4) * NR * 4 + k % 4])
            .collect()
    }

    /// The weight back in f32, `[out, in]` row-major (`q · scale`).
    pub fn weight_f32(&self) -> Vec<f32> {
        (0..self.out_features)
            .flat_map(|n| {
                let s = self.scales[n];
                self.row(n).into_iter().map(move |q| f32::from(q) * s)
            })
            .collect()
    }

    /// The bias, when the layer has one.
    pub fn bias(&self) -> Option<&[f32]> {
        self.has_bias.then_some(&self.bias[..])
    }

    /// `x` `[rows, in]` row-major → `[rows, out]`, on every rayon thread,
    /// with the kernel [`int8_kernel`] names.
    pub fn forward_rows(&self, x: &[f32]) -> Vec<f32> {
        self.forward_with(x, kernel(), Epilogue::None)
    }

    /// [`Self::forward_rows`] followed by the erf GELU of
    /// [`crate::gelu::GeluErf`] (the same bits), applied to each task's
    /// rows while they are still in cache: no second pass over the
    /// feed-forward's widest tensor, no second buffer.
    pub fn forward_rows_gelu(&self, x: &[f32]) -> Vec<f32> {
        self.forward_with(x, kernel(), Epilogue::Gelu)
    }

    fn forward_with(&self, x: &[f32], kernel: Kernel, epilogue: Epilogue) -> Vec<f32> {
        let rows = self.rows_of(x);
        par_rows(
            rows,
            self.in_features,
            self.out_features,
            x,
            kernel.rows(),
            |x, out| {
                let out = self.task(x, out, kernel);
                match epilogue {
                    Epilogue::None => {}
                    Epilogue::Gelu => crate::gelu::gelu_in_place(out),
                }
            },
        )
    }

    /// The rows in `x`, a whole number of `[in_features]` rows.
    fn rows_of(&self, x: &[f32]) -> usize {
        let k = self.in_features;
        let rows = x.len().checked_div(k).unwrap_or(0);
        assert_eq!(rows * k, x.len(), "input is not [rows, {k}]");
        rows
    }

    /// One task's rows: `x` (`m` rows of `in_features`) quantised and
    /// multiplied into `out` (`m` rows of `out_features`), every element
    /// written; returns `out` as initialised floats.
    fn task<'o>(
        &self,
        x: &[f32],
        out: &'o mut [std::mem::MaybeUninit<f32>],
        kernel: Kernel,
    ) -> &'o mut [f32] {
        let (k, n) = (self.in_features, self.out_features);
        let m = x.len() / k;
        assert_eq!(out.len(), m * n, "output is not [{m}, {n}]");
        let mut quantised = vec![0u8; m * self.k4];
        let groups = self.k4 / GROUP;
        let mut x_scales = vec![0f32; m * groups];
        for ((row, q), s) in x
            .chunks_exact(k)
            .zip(quantised.chunks_exact_mut(self.k4))
            .zip(x_scales.chunks_exact_mut(groups))
        {
            quantise_row(row, q, s, kernel != Kernel::Portable);
        }
        match kernel {
            Kernel::Portable => self.portable(&quantised, &x_scales, out, m),
            // SAFETY: `Vnni` is only chosen when the CPU has AVX-512 F, BW
            // and VNNI (`vnni_available`); the buffers have the sizes the
            // kernel reads and writes (`m` rows of `k4` bytes in, `m` rows
            // of `n` floats out).
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni => unsafe { vnni::matmul(self, &quantised, &x_scales, out, m) },
            // SAFETY: `Amx` is only chosen when the CPU has AMX and VNNI and
            // the process has the tile state (`choice`); sizes as above.
            #[cfg(target_arch = "x86_64")]
            Kernel::Amx => unsafe {
                amx::matmul(&mut amx::Hardware, self, &quantised, &x_scales, out, m)
            },
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Vnni | Kernel::Amx => unreachable!("VNNI or AMX on a CPU that is not x86-64"),
        }
        // SAFETY: every kernel writes all `m · n` elements of `out` (every
        // row, every column of each).
        unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast(), out.len()) }
    }

    /// A feed-forward block, `output(gelu(inner(x)))` (erf GELU), each
    /// task's rows through both products while its inner rows are still in
    /// cache: the same bits as [`Self::forward_rows_gelu`] then
    /// [`Self::forward_rows`] (each row's arithmetic is the same whichever
    /// task holds it), without the `[rows, inner]` tensor between them or a
    /// second pass over it to quantise.
    pub fn feed_forward(inner: &Int8Linear, output: &Int8Linear, x: &[f32]) -> Vec<f32> {
        Self::feed_forward_with(inner, output, x, kernel())
    }

    fn feed_forward_with(
        inner: &Int8Linear,
        output: &Int8Linear,
        x: &[f32],
        kernel: Kernel,
    ) -> Vec<f32> {
        assert_eq!(
            inner.out_features, output.in_features,
            "the inner layer's outputs are not the output layer's inputs"
        );
        let rows = inner.rows_of(x);
        let ff = inner.out_features;
        par_rows(
            rows,
            inner.in_features,
            output.out_features,
            x,
            kernel.rows(),
            |x, out| {
                let m = x.len() / inner.in_features;
                let mut hidden: Vec<f32> = Vec::with_capacity(m * ff);
                let h = inner.task(x, &mut hidden.spare_capacity_mut()[..m * ff], kernel);
                crate::gelu::gelu_in_place(h);
                output.task(h, out, kernel);
            },
        )
    }

    /// The same arithmetic as the VNNI kernel, one product at a time.
    fn portable(
        &self,
        quantised: &[u8],
        x_scales: &[f32],
        out: &mut [std::mem::MaybeUninit<f32>],
        m: usize,
    ) {
        let (k, n, groups) = (self.in_features, self.out_features, self.k4 / GROUP);
        let width = self.out_features.div_ceil(NR) * NR;
        for c in 0..n {
            let w = self.row(c);
            for r in 0..m {
                let a = &quantised[r * self.k4..(r + 1) * self.k4];
                let mut sum = 0f32;
                for g in 0..groups {
                    let (start, end) = ((g * GROUP).min(k), ((g + 1) * GROUP).min(k));
                    let dot: i32 = a[start..end]
                        .iter()
                        .zip(&w[start..end])
                        .map(|(&a, &w)| i32::from(a) * i32::from(w))
                        .sum();
                    let dot = dot + self.shift[g * width + c];
                    sum = group_sum(sum, dot, x_scales[r * groups + g]);
                }
                out[r * n + c].write(sum * self.scales[c] + self.bias[c]);
            }
        }
    }
}

/// Most rows in one task of [`par_rows`] (a multiple of both kernels' row
/// blocks).
const TASK_ROWS: usize = 96;
const _: () = assert!(TASK_ROWS.is_multiple_of(MR) && TASK_ROWS.is_multiple_of(32));

/// `out[rows, n]` from `x[rows, k]` by `body`, run on tasks of whole rows
/// in parallel: enough tasks for every thread twice over, each a multiple
/// of `unit` rows (the kernel's block), at most [`TASK_ROWS`]. `body` gets a
/// task's input rows and its output rows, and writes every element of the latter
/// (the output is not zeroed first: a zeroed buffer cost a memset of the
/// whole output, 3.5% of NER tagging).
fn par_rows(
    rows: usize,
    k: usize,
    n: usize,
    x: &[f32],
    unit: usize,
    body: impl Fn(&[f32], &mut [std::mem::MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    if rows == 0 || n == 0 {
        return vec![0f32; rows * n];
    }
    let mut out: Vec<f32> = Vec::with_capacity(rows * n);
    let threads = rayon::current_num_threads().max(1);
    let per_task = rows
        .div_ceil(2 * threads)
        .div_ceil(unit)
        .clamp(1, TASK_ROWS / unit)
        * unit;
    out.spare_capacity_mut()[..rows * n]
        .par_chunks_mut(per_task * n)
        .zip(x.par_chunks(per_task * k))
        .for_each(|(out, x)| body(x, out));
    // SAFETY: `body` wrote all `rows · n` elements, task by task.
    unsafe { out.set_len(rows * n) };
    out
}

/// What runs on a task's output rows after the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Epilogue {
    None,
    /// The erf GELU ([`crate::gelu::gelu_in_place`]).
    Gelu,
}

/// `sum + (dot as f32) · scale` in one rounding (a fused multiply-add), as
/// the kernel's FMA.
#[inline(always)]
fn group_sum(sum: f32, dot: i32, scale: f32) -> f32 {
    (dot as f32).mul_add(scale, sum)
}

/// Quantises `row` into `q` group by group (`row.len()` bytes, the rest of
/// `q` set to 128, which is 0), writing each group's scale into `scales`.
fn quantise_row(row: &[f32], q: &mut [u8], scales: &mut [f32], vnni: bool) {
    #[cfg(target_arch = "x86_64")]
    if vnni {
        // SAFETY: `vnni` is only true when the CPU has AVX-512 F and BW.
        return unsafe { vnni::quantise_row(row, q, scales) };
    }
    let _ = vnni;
    q.fill(128);
    for ((group, q), s) in row.chunks(GROUP).zip(q.chunks_mut(GROUP)).zip(scales) {
        *s = row_scale(group);
        let inv = 1.0 / *s;
        for (q, &x) in q.iter_mut().zip(group) {
            *q = (round_even((x * inv).clamp(-128.0, 127.0)) as i32 + 128) as u8;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[path = "int8_vnni.rs"]
mod vnni;

#[cfg(target_arch = "x86_64")]
#[path = "int8_amx.rs"]
mod amx;

#[path = "int8_choice.rs"]
mod choice;
use choice::{Kernel, kernel};
pub use choice::{KernelTiming, int8_kernel, time_kernels};

/// An op's CPU body over rows: `storage` `[.., k]` (a last dimension other
/// than `k` is an error naming the op) to `[.., n]` by `rows`, which maps
/// the contiguous input rows to the output's.
fn rows_op(
    name: &str,
    storage: &candle_core::CpuStorage,
    layout: &candle_core::Layout,
    (k, n): (usize, usize),
    rows: impl FnOnce(&[f32]) -> Vec<f32>,
) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
    let x = crate::contiguous_f32(name, storage, layout)?;
    let dims = layout.shape().dims();
    if dims.last() != Some(&k) {
        candle_core::bail!("{}: input {:?}, expected [.., {}]", name, dims, k);
    }
    let out = rows(x);
    let mut out_dims = dims.to_vec();
    if let Some(last) = out_dims.last_mut() {
        *last = n;
    }
    Ok((candle_core::CpuStorage::F32(out), out_dims.into()))
}

impl candle_core::CustomOp1 for Int8Linear {
    fn name(&self) -> &'static str {
        "int8-linear"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let shape = (self.in_features, self.out_features);
        rows_op(self.name(), storage, layout, shape, |x| {
            self.forward_rows(x)
        })
    }
}

/// A feed-forward block as one op ([`Int8Linear::feed_forward`]):
/// `[.., in]` to `[.., out]` through the inner layer, the erf GELU and the
/// output layer: what the inner layer's op, [`crate::gelu::GeluErf`] and
/// the output layer's op give one after another.
#[derive(Debug, Clone, Copy)]
pub struct Int8FeedForward<'a> {
    pub inner: &'a Int8Linear,
    pub output: &'a Int8Linear,
}

impl candle_core::CustomOp1 for Int8FeedForward<'_> {
    fn name(&self) -> &'static str {
        "int8-feed-forward"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let name = self.name();
        if self.inner.out_features != self.output.in_features {
            candle_core::bail!(
                "{}: the inner layer gives {} features, the output layer takes {}",
                name,
                self.inner.out_features,
                self.output.in_features
            );
        }
        let shape = (self.inner.in_features, self.output.out_features);
        rows_op(name, storage, layout, shape, |x| {
            Int8Linear::feed_forward(self.inner, self.output, x)
        })
    }
}

#[cfg(test)]
#[path = "int8_tests.rs"]
mod tests;
