//! Entity scoring on random gold and predictions: counts add up, and do not
//! depend on the order of the mentions.
#![no_main]
use arabtag_eval::entities::{Mention, Mode, count_semeval};
use libfuzzer_sys::fuzz_target;

const KINDS: [&str; 3] = ["PER", "ORG", "LOC"];

fn mentions(bytes: &[u8]) -> Vec<Mention<'static>> {
    bytes
        .chunks_exact(4)
        .map(|c| {
            // Offsets over about a page of text, as a document's mentions are.
            let start = usize::from(u16::from_le_bytes([c[0], c[1]]) % 2048);
            Mention { start, end: start + usize::from(c[2] % 12), kind: KINDS[usize::from(c[3] % 3)] }
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let half = data.len() / 2;
    let (gold, pred) = (mentions(&data[..half]), mentions(&data[half..]));
    let c = count_semeval(&gold, &pred);
    for mode in [Mode::Strict, Mode::Exact, Mode::Partial, Mode::Type] {
        let x = c.get(mode);
        assert_eq!(x.pos(), gold.len() as u64);
        assert_eq!(x.act(), pred.len() as u64);
    }
    let (mut g, mut p) = (gold.clone(), pred.clone());
    g.reverse();
    let mid = p.len() / 2;
    p.rotate_left(mid);
    assert_eq!(count_semeval(&g, &p), c);
});
