//! Which kernel runs the 8-bit products of [`super`] (AMX, VNNI or the
//! portable loop), chosen once per process, and one product timed on each
//! kernel the process may run.

#[cfg(target_arch = "x86_64")]
use super::amx;
use super::{Epilogue, Int8Linear, MR, vnni_available};

/// Which kernel runs the 8-bit products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kernel {
    /// One product at a time (`Int8Linear::portable`).
    Portable,
    /// AVX-512 VNNI (`int8_vnni.rs`).
    Vnni,
    /// AMX tiles for whole blocks of 32 rows, VNNI for the rest
    /// (`int8_amx.rs`).
    Amx,
}

/// The kernel this process uses, chosen once, and why (see
/// [`int8_kernel`]).
fn choice() -> &'static (Kernel, String) {
    static CHOICE: std::sync::OnceLock<(Kernel, String)> = std::sync::OnceLock::new();
    CHOICE.get_or_init(|| {
        if !vnni_available() {
            return (
                Kernel::Portable,
                "portable (no AVX-512 VNNI on this CPU)".into(),
            );
        }
        #[cfg(target_arch = "x86_64")]
        {
            if !amx::cpu_has_amx() {
                return (Kernel::Vnni, "vnni (the CPU reports no AMX)".into());
            }
            if std::env::var_os("ARABTAG_AMX").is_some_and(|v| v == "0") {
                return (
                    Kernel::Vnni,
                    "vnni (AMX turned off by ARABTAG_AMX=0)".into(),
                );
            }
            if let Err(e) = amx::permission() {
                return (
                    Kernel::Vnni,
                    format!("vnni (Linux refused the AMX tile state: {e})"),
                );
            }
            if let Some(problem) = amx_self_check() {
                return (
                    Kernel::Vnni,
                    format!("vnni (AMX self-check failed: {problem})"),
                );
            }
            (
                Kernel::Amx,
                "amx (AMX tiles, VNNI for the rows left over)".into(),
            )
        }
        #[cfg(not(target_arch = "x86_64"))]
        (Kernel::Vnni, "vnni".into())
    })
}

pub(super) fn kernel() -> Kernel {
    choice().0
}

/// The kernel the 8-bit products run on in this process and why, e.g.
/// `amx (…)`, `vnni (the CPU reports no AMX)`, `portable (…)`: AMX where the
/// CPU has it, Linux grants the tile state and the kernel gives the VNNI
/// kernel's bits on a test product; `ARABTAG_AMX=0` keeps to VNNI (to
/// compare the two on one machine).
pub fn int8_kernel() -> &'static str {
    &choice().1
}

/// `len` reproducible values in [-1, 1] (xorshift from `seed`), for the
/// products [`time_kernels`] and the AMX self-check run.
fn sample_values(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// One 8-bit product timed on a kernel ([`time_kernels`]).
#[derive(Debug, Clone, PartialEq)]
pub struct KernelTiming {
    /// `amx`, `vnni` or `portable`.
    pub kernel: &'static str,
    /// The median of the timed runs, seconds.
    pub seconds: f64,
}

/// Times `[rows, k] · [k, n]ᵀ` (pseudo-random values, a bias; the whole op
/// with the activations' quantisation, on rayon's threads) on each kernel
/// this process may run: AMX when [`int8_kernel`] chose it, VNNI where the
/// CPU has it, the portable loop only where it is the only one (it is many
/// times slower). The median of `runs` runs after one untimed run, each
/// kernel in turn. All kernels give the same bits (checked here too).
pub fn time_kernels(rows: usize, k: usize, n: usize, runs: usize) -> Vec<KernelTiming> {
    let layer = Int8Linear::from_f32(&sample_values(n * k, 7), n, k, Some(&sample_values(n, 8)));
    let x = sample_values(rows * k, 9);
    let mut kernels = Vec::new();
    if kernel() == Kernel::Amx {
        kernels.push((Kernel::Amx, "amx"));
    }
    if vnni_available() {
        kernels.push((Kernel::Vnni, "vnni"));
    } else {
        kernels.push((Kernel::Portable, "portable"));
    }
    let mut first: Option<Vec<f32>> = None;
    kernels
        .into_iter()
        .map(|(kernel, name)| {
            let out = layer.forward_with(&x, kernel, Epilogue::None);
            match &first {
                Some(f) => assert!(
                    f.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "the {name} kernel's bits differ from the first kernel's"
                ),
                None => first = Some(out),
            }
            let mut times: Vec<f64> = (0..runs.max(1))
                .map(|_| {
                    let started = std::time::Instant::now();
                    std::hint::black_box(layer.forward_with(&x, kernel, Epilogue::None));
                    started.elapsed().as_secs_f64()
                })
                .collect();
            times.sort_by(f64::total_cmp);
            KernelTiming {
                kernel: name,
                seconds: times[times.len() / 2],
            }
        })
        .collect()
}

/// Runs the AMX kernel on a product that takes every path (a whole block,
/// rows left over, a partial panel, a partial group) and compares its bits
/// with the VNNI kernel's: `None` when they agree.
#[cfg(target_arch = "x86_64")]
fn amx_self_check() -> Option<String> {
    let (m, k, n) = (2 * amx::ROWS + 5, 100, 80);
    let layer = Int8Linear::from_f32(&sample_values(n * k, 1), n, k, Some(&sample_values(n, 2)));
    let x = sample_values(m * k, 3);
    // On this thread, not the pool's: `choice` may run inside a task.
    let run = |kernel| {
        let mut out = Vec::with_capacity(m * n);
        layer
            .task(&x, &mut out.spare_capacity_mut()[..m * n], kernel)
            .to_vec()
    };
    let (amx, vnni) = (run(Kernel::Amx), run(Kernel::Vnni));
    let differ = amx
        .iter()
        .zip(&vnni)
        .filter(|(a, v)| a.to_bits() != v.to_bits())
        .count();
    (differ > 0).then(|| format!("{differ} of {} outputs differ from VNNI", amx.len()))
}

impl Kernel {
    /// The rows the kernel takes at a time (a task holds a multiple).
    pub(super) fn rows(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Amx => amx::ROWS,
            _ => MR,
        }
    }
}
