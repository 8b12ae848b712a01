//! One-to-one matching of gold and predicted mentions, as a function of the
//! two sets: neither the order they come in nor the names of their types
//! change the result.
//!
//! A gold and a predicted mention may be paired when they overlap; a pair
//! is of one of four kinds, best first ([`Tier`]): the same boundaries and
//! type, the same boundaries, an overlap with the same type, an overlap.
//! Of all one-to-one matchings, the one chosen has the most pairs of the
//! first kind, then of the second, the third and the fourth: a maximum
//! weight matching with weights `B³, B², B, 1` for `B` above the number of
//! possible pairs, found by the Hungarian algorithm on each connected group
//! of overlapping mentions (overlaps are local, so groups are small). The
//! counts of each kind are the same for every such optimal matching, so
//! the scores built from them are too.

use crate::entities::Mention;

/// How a matched pair agrees, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Same boundaries, same type.
    Exact,
    /// Same boundaries, another type.
    Boundaries,
    /// Overlap, same type.
    OverlapSameType,
    /// Overlap, another type.
    Overlap,
}

/// The tier of a gold and a predicted mention, `None` when they do not
/// overlap.
pub fn tier(g: &Mention<'_>, p: &Mention<'_>) -> Option<Tier> {
    let (same_bounds, overlap) = (g.same_bounds(p), g.overlaps(p));
    match (same_bounds, g.kind == p.kind) {
        (true, true) => Some(Tier::Exact),
        (true, false) => Some(Tier::Boundaries),
        _ if !overlap => None,
        (false, true) => Some(Tier::OverlapSameType),
        (false, false) => Some(Tier::Overlap),
    }
}

/// The matched pairs `(gold index, predicted index, tier)` of the best
/// matching, sorted by gold index.
pub fn best_matching(gold: &[Mention<'_>], pred: &[Mention<'_>]) -> Vec<(usize, usize, Tier)> {
    let mut out = Vec::new();
    for (gs, ps) in groups(gold, pred) {
        if gs.is_empty() || ps.is_empty() {
            continue;
        }
        let pairs = gs.len() * ps.len();
        let base = pairs as i64 + 1;
        let weight = |t: Option<Tier>| -> i64 {
            match t {
                None => 0,
                Some(Tier::Exact) => base * base * base,
                Some(Tier::Boundaries) => base * base,
                Some(Tier::OverlapSameType) => base,
                Some(Tier::Overlap) => 1,
            }
        };
        let w: Vec<Vec<i64>> = gs
            .iter()
            .map(|&g| {
                ps.iter()
                    .map(|&p| weight(tier(&gold[g], &pred[p])))
                    .collect()
            })
            .collect();
        for (row, col) in max_weight_assignment(&w) {
            if let Some(t) = tier(&gold[gs[row]], &pred[ps[col]]) {
                out.push((gs[row], ps[col], t));
            }
        }
    }
    out.sort_unstable_by_key(|&(g, p, _)| (g, p));
    out
}

/// Connected groups of overlapping mentions (gold indices, predicted
/// indices), found by a sweep over start offsets. Empty mentions (a
/// clitic-stripped span can be one) overlap nothing: they are grouped with
/// the empty mentions at the same offset, which have the same boundaries.
fn groups(gold: &[Mention<'_>], pred: &[Mention<'_>]) -> Vec<(Vec<usize>, Vec<usize>)> {
    // (start, end, is_pred, index), by start.
    let mut all: Vec<(usize, usize, bool, usize)> = gold
        .iter()
        .enumerate()
        .map(|(i, m)| (m.start, m.end, false, i))
        .chain(
            pred.iter()
                .enumerate()
                .map(|(i, m)| (m.start, m.end, true, i)),
        )
        .filter(|&(start, end, _, _)| start < end)
        .collect();
    all.sort_unstable();
    let mut out: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    let mut reach = 0usize;
    for (start, end, is_pred, i) in all {
        if out.is_empty() || start >= reach {
            out.push((Vec::new(), Vec::new()));
        }
        let group = out.last_mut().expect("pushed above");
        if is_pred {
            group.1.push(i);
        } else {
            group.0.push(i);
        }
        reach = reach.max(end);
    }
    let mut empty: std::collections::BTreeMap<usize, (Vec<usize>, Vec<usize>)> =
        std::collections::BTreeMap::new();
    for (i, m) in gold.iter().enumerate().filter(|(_, m)| m.start >= m.end) {
        empty.entry(m.start).or_default().0.push(i);
    }
    for (i, m) in pred.iter().enumerate().filter(|(_, m)| m.start >= m.end) {
        empty.entry(m.start).or_default().1.push(i);
    }
    out.extend(empty.into_values());
    out
}

/// A maximum-weight assignment of rows to columns for non-negative weights
/// `w` (rows × columns): the pairs `(row, column)`, each row and column at
/// most once (pairs of weight 0 may be left out or included). The
/// Hungarian algorithm (Kuhn–Munkres with potentials), O(n² m).
pub fn max_weight_assignment(w: &[Vec<i64>]) -> Vec<(usize, usize)> {
    let rows = w.len();
    let cols = w.first().map_or(0, Vec::len);
    if rows == 0 || cols == 0 {
        return Vec::new();
    }
    // Square it: n = max(rows, cols), missing cells weight 0; minimise the
    // cost max - w.
    let n = rows.max(cols);
    let top = w.iter().flatten().copied().max().unwrap_or(0);
    let cost = |i: usize, j: usize| -> i64 {
        if i < rows && j < cols {
            top - w[i][j]
        } else {
            top
        }
    };
    // 1-based arrays as in the classic formulation; column 0 is virtual.
    let inf = i64::MAX / 4;
    let (mut u, mut v) = (vec![0i64; n + 1], vec![0i64; n + 1]);
    let mut owner = vec![0usize; n + 1]; // owner[j]: the row column j is assigned to
    let mut way = vec![0usize; n + 1];
    for i in 1..=n {
        owner[0] = i;
        let mut j0 = 0usize;
        let mut minv = vec![inf; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = owner[j0];
            let mut delta = inf;
            let mut j1 = 0usize;
            for j in 1..=n {
                if !used[j] {
                    let cur = cost(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[owner[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if owner[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            owner[j0] = owner[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    (1..=n)
        .filter(|&j| owner[j] != 0)
        .map(|j| (owner[j] - 1, j - 1))
        .filter(|&(i, j)| i < rows && j < cols)
        .collect()
}

#[cfg(test)]
#[path = "matching_tests.rs"]
mod tests;
