use proptest::prelude::*;

use super::*;
use crate::entities::{Mode, ModeCounts, count_semeval};

fn m(start: usize, end: usize, kind: &str) -> Mention<'_> {
    Mention { start, end, kind }
}

/// (COR, INC, PAR, MIS, SPU) of a mode.
fn counts(c: &ModeCounts, mode: Mode) -> (u64, u64, u64, u64, u64) {
    let x = c.get(mode);
    (x.cor, x.inc, x.par, x.mis, x.spu)
}

#[test]
fn an_exact_prediction_is_correct_beside_a_wrong_type_twin() {
    // gold PER[0,5); predictions LOC[0,5) and PER[0,5), in either order.
    let gold = [m(0, 5, "PER")];
    for pred in [
        [m(0, 5, "LOC"), m(0, 5, "PER")],
        [m(0, 5, "PER"), m(0, 5, "LOC")],
    ] {
        let c = count_semeval(&gold, &pred);
        assert_eq!(counts(&c, Mode::Strict), (1, 0, 0, 0, 1));
    }
    // With types renamed so that the correct one sorts first or last.
    let gold = [m(0, 5, "A")];
    let c = count_semeval(&gold, &[m(0, 5, "Z"), m(0, 5, "A")]);
    assert_eq!(counts(&c, Mode::Strict), (1, 0, 0, 0, 1));
}

#[test]
fn an_exact_prediction_wins_over_an_overlapping_one() {
    // gold LOC[9,12); predictions PER[7,14) and LOC[9,12).
    let c = count_semeval(&[m(9, 12, "LOC")], &[m(7, 14, "PER"), m(9, 12, "LOC")]);
    assert_eq!(counts(&c, Mode::Strict), (1, 0, 0, 0, 1));
    // gold ORG[4,7); predictions ORG[1,7) and ORG[4,7).
    let c = count_semeval(&[m(4, 7, "ORG")], &[m(1, 7, "ORG"), m(4, 7, "ORG")]);
    assert_eq!(counts(&c, Mode::Strict), (1, 0, 0, 0, 1));
    assert_eq!(counts(&c, Mode::Type), (1, 0, 0, 0, 1));
}

#[test]
fn an_overlap_prefers_the_gold_of_its_type_in_any_order() {
    // gold LOC[2,4) and ORG[6,9); prediction ORG[3,8).
    for gold in [
        [m(2, 4, "LOC"), m(6, 9, "ORG")],
        [m(6, 9, "ORG"), m(2, 4, "LOC")],
    ] {
        let c = count_semeval(&gold, &[m(3, 8, "ORG")]);
        assert_eq!(counts(&c, Mode::Type), (1, 0, 0, 1, 0));
        assert_eq!(counts(&c, Mode::Partial), (0, 0, 1, 1, 0));
    }
}

#[test]
fn more_matches_beat_a_better_single_match_only_within_a_tier() {
    // gold A[0,4) and A[4,8); prediction A[2,6) overlaps both and A[0,4)
    // matches the first exactly: the exact pair is kept, and the overlap
    // takes the second gold.
    let c = count_semeval(&[m(0, 4, "A"), m(4, 8, "A")], &[m(2, 6, "A"), m(0, 4, "A")]);
    assert_eq!(counts(&c, Mode::Strict), (1, 1, 0, 0, 0));
    assert_eq!(counts(&c, Mode::Type), (2, 0, 0, 0, 0));
}

#[test]
fn the_hungarian_algorithm_finds_the_best_assignment() {
    let w = vec![vec![4, 1, 3], vec![2, 0, 5], vec![3, 2, 2]];
    let mut a = max_weight_assignment(&w);
    a.sort_unstable();
    let total: i64 = a.iter().map(|&(i, j)| w[i][j]).sum();
    // 4 + 5 + 2 = 11 is the best of the six permutations.
    assert_eq!(total, 11);
    // Rectangular either way.
    let wide = vec![vec![1, 7, 3]];
    assert_eq!(max_weight_assignment(&wide), vec![(0, 1)]);
    let tall = vec![vec![1], vec![7], vec![3]];
    assert_eq!(max_weight_assignment(&tall), vec![(1, 0)]);
    assert!(max_weight_assignment(&[]).is_empty());
}

/// Random small mention sets: offsets in 0..12, types of three.
fn mentions() -> impl Strategy<Value = Vec<(usize, usize, u8)>> {
    prop::collection::vec((0usize..12, 1usize..5, 0u8..3), 0..7)
        .prop_map(|v| v.into_iter().map(|(s, len, k)| (s, s + len, k)).collect())
}

const NAMES: [&str; 3] = ["LOC", "ORG", "PER"];

fn named(v: &[(usize, usize, u8)], names: &[&'static str; 3]) -> Vec<Mention<'static>> {
    v.iter()
        .map(|&(s, e, k)| Mention {
            start: s,
            end: e,
            kind: names[k as usize],
        })
        .collect()
}

fn all_counts(c: &ModeCounts) -> Vec<(u64, u64, u64, u64, u64)> {
    [Mode::Strict, Mode::Exact, Mode::Partial, Mode::Type]
        .iter()
        .map(|&mode| counts(c, mode))
        .collect()
}

/// The best tier counts by brute force: every one-to-one matching.
fn brute_force(gold: &[Mention<'_>], pred: &[Mention<'_>]) -> [usize; 4] {
    fn go(
        gold: &[Mention<'_>],
        pred: &[Mention<'_>],
        g: usize,
        used: &mut Vec<bool>,
        tally: [usize; 4],
        best: &mut [usize; 4],
    ) {
        if g == gold.len() {
            if tally > *best {
                *best = tally;
            }
            return;
        }
        go(gold, pred, g + 1, used, tally, best);
        for p in 0..pred.len() {
            if used[p] {
                continue;
            }
            if let Some(t) = tier(&gold[g], &pred[p]) {
                used[p] = true;
                let mut next = tally;
                next[t as usize] += 1;
                go(gold, pred, g + 1, used, next, best);
                used[p] = false;
            }
        }
    }
    let mut best = [0; 4];
    go(
        gold,
        pred,
        0,
        &mut vec![false; pred.len()],
        [0; 4],
        &mut best,
    );
    best
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn counts_ignore_order_and_type_names(
        gold in mentions(),
        pred in mentions(),
        seed in any::<u64>(),
    ) {
        let base = count_semeval(&named(&gold, &NAMES), &named(&pred, &NAMES));
        // Shuffled (a seeded rotation and reversal).
        let mut g2 = gold.clone();
        let mut p2 = pred.clone();
        if !g2.is_empty() { let k = (seed as usize) % g2.len(); g2.rotate_left(k); }
        if !p2.is_empty() { let k = (seed as usize / 7) % p2.len(); p2.rotate_left(k); }
        if seed % 2 == 0 { g2.reverse(); p2.reverse(); }
        let shuffled = count_semeval(&named(&g2, &NAMES), &named(&p2, &NAMES));
        prop_assert_eq!(all_counts(&base), all_counts(&shuffled));
        // Types renamed (a permutation that changes their sort order).
        let renamed = ["ZZZ", "AAA", "MMM"];
        let r = count_semeval(&named(&gold, &renamed), &named(&pred, &renamed));
        prop_assert_eq!(all_counts(&base), all_counts(&r));
    }

    #[test]
    fn the_matching_is_the_lexicographic_best(gold in mentions(), pred in mentions()) {
        let (g, p) = (named(&gold, &NAMES), named(&pred, &NAMES));
        let mut tally = [0usize; 4];
        let matched = best_matching(&g, &p);
        for &(_, _, t) in &matched {
            tally[t as usize] += 1;
        }
        prop_assert_eq!(tally, brute_force(&g, &p));
        // One-to-one.
        let mut gs: Vec<usize> = matched.iter().map(|x| x.0).collect();
        let mut ps: Vec<usize> = matched.iter().map(|x| x.1).collect();
        gs.sort_unstable(); gs.dedup(); ps.sort_unstable(); ps.dedup();
        prop_assert_eq!(gs.len(), matched.len());
        prop_assert_eq!(ps.len(), matched.len());
    }
}
