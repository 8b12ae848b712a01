//! Hand-computed entity scores; the arithmetic is in the comments.

use super::*;

fn ent(start: usize, end: usize, kind: &str) -> Entity {
    Entity {
        start,
        end,
        kind: kind.into(),
        text: "x".repeat(end - start),
        score: None,
    }
}

/// An entity over the first occurrence of `needle` in `text` (character offsets).
fn ent_in(text: &str, needle: &str, kind: &str) -> Entity {
    let byte = text.find(needle).unwrap();
    let start = text[..byte].chars().count();
    let end = start + needle.chars().count();
    Entity {
        start,
        end,
        kind: kind.into(),
        text: needle.into(),
        score: None,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

fn counts(c: &ModeCounts, mode: Mode) -> (u64, u64, u64, u64, u64) {
    let c = c.get(mode);
    (c.cor, c.inc, c.par, c.mis, c.spu)
}

fn default_types() -> TypeSet {
    TypeSet::default()
}

/// One document with every SemEval scenario:
///
/// | gold            | prediction     | strict | exact | partial | type |
/// |-----------------|----------------|--------|-------|---------|------|
/// | [0,5) PER       | [0,5) PER      | COR    | COR   | COR     | COR  |
/// | [10,15) LOC     | [10,15) ORG    | INC    | COR   | COR     | INC  |
/// | [20,30) ORG     | [22,30) ORG    | INC    | INC   | PAR     | COR  |
/// | [40,45) PER     | [38,44) LOC    | INC    | INC   | PAR     | INC  |
/// | [50,55) LOC     | –              | MIS    | MIS   | MIS     | MIS  |
/// | –               | [60,65) PER    | SPU    | SPU   | SPU     | SPU  |
fn scenarios() -> (Vec<Entity>, Vec<Entity>) {
    let gold = vec![
        ent(0, 5, "PER"),
        ent(10, 15, "LOC"),
        ent(20, 30, "ORG"),
        ent(40, 45, "PER"),
        ent(50, 55, "LOC"),
    ];
    // deliberately out of order: predictions are sorted before matching
    let pred = vec![
        ent(60, 65, "PER"),
        ent(38, 44, "LOC"),
        ent(0, 5, "PER"),
        ent(22, 30, "ORG"),
        ent(10, 15, "ORG"),
    ];
    (gold, pred)
}

#[test]
fn each_semeval_scenario() {
    let (gold, pred) = scenarios();
    let c = count_document(&gold, &pred);
    assert_eq!(counts(&c, Mode::Strict), (1, 3, 0, 1, 1));
    assert_eq!(counts(&c, Mode::Exact), (2, 2, 0, 1, 1));
    assert_eq!(counts(&c, Mode::Partial), (2, 0, 2, 1, 1));
    assert_eq!(counts(&c, Mode::Type), (2, 2, 0, 1, 1));

    let mut tally = EntityTally::new(default_types());
    tally.add_document(&gold, &pred);
    let r = tally.report();
    // POS = ACT = 5 in every mode.
    // strict P = R = 1/5; exact P = R = 2/5; partial P = R = (2 + 0.5·2)/5 = 3/5;
    // type P = R = 2/5; F1 equals P when P = R.
    for (mode, want) in [
        (Mode::Strict, 0.2),
        (Mode::Exact, 0.4),
        (Mode::Partial, 0.6),
        (Mode::Type, 0.4),
    ] {
        let s = r.mode(mode);
        assert_eq!((s.pos, s.act), (5, 5), "{mode:?}");
        assert!(
            close(s.precision, want) && close(s.recall, want) && close(s.f1, want),
            "{mode:?} {s:?}"
        );
    }
}

#[test]
fn per_type_rows_restrict_both_sides_then_macro_averages_them() {
    let (gold, pred) = scenarios();
    let mut tally = EntityTally::new(default_types());
    tally.add_document(&gold, &pred);
    let r = tally.report();

    // PER alone: gold [0,5) [40,45); pred [0,5) [60,65).
    // [0,5) COR; [60,65) overlaps no PER gold: SPU; [40,45) MIS.
    // strict P = 1/2, R = 1/2; tp 1, fp = ACT − COR = 1, fn = POS − COR = 1.
    let per = &r.per_type["PER"];
    assert_eq!((per.tp, per.fp, per.fn_), (1, 1, 1));
    assert!(close(per.precision, 0.5) && close(per.recall, 0.5) && close(per.f1, 0.5));

    // LOC alone: gold [10,15) [50,55); pred [38,44): SPU, both gold MIS. All 0.
    let loc = &r.per_type["LOC"];
    assert_eq!((loc.tp, loc.fp, loc.fn_), (0, 1, 2));
    assert_eq!(loc.f1, 0.0);

    // ORG alone: gold [20,30); pred [10,15) (sorted first: SPU), [22,30) (overlap).
    // strict: INC 1, SPU 1 → 0. partial: PAR 1, SPU 1 → P = 0.5/2 = 0.25,
    // R = 0.5/1 = 0.5, F1 = 2·0.25·0.5/0.75 = 1/3. type: COR 1, SPU 1 → P = 1/2, R = 1.
    let org = &r.per_type["ORG"];
    assert_eq!((org.tp, org.fp, org.fn_), (0, 2, 1));
    assert!(close(org.partial.precision, 0.25) && close(org.partial.recall, 0.5));
    assert!(close(org.partial.f1, 1.0 / 3.0));
    assert!(close(org.type_.precision, 0.5) && close(org.type_.recall, 1.0));

    // macro strict over PER, ORG, LOC: P = (1/2 + 0 + 0)/3 = 1/6, same R and F1.
    let m = r.strict.macro_.unwrap();
    assert!(close(m.precision, 1.0 / 6.0) && close(m.recall, 1.0 / 6.0) && close(m.f1, 1.0 / 6.0));
    // macro partial: P = (1/2 + 1/4 + 0)/3 = 1/4; R = (1/2 + 1/2 + 0)/3 = 1/3;
    // F1 = (1/2 + 1/3 + 0)/3 = 5/18 (PER partial = strict: no PAR there).
    let m = r.partial.macro_.unwrap();
    assert!(close(m.precision, 0.25) && close(m.recall, 1.0 / 3.0) && close(m.f1, 5.0 / 18.0));
    // per-type rows carry no macro of their own
    assert!(per.strict.macro_.is_none());
}

#[test]
fn date_is_shown_but_not_in_micro_unless_chosen() {
    let gold = vec![ent(0, 4, "DATE"), ent(5, 9, "PER")];
    let pred = vec![ent(0, 4, "DATE")];
    let mut tally = EntityTally::new(default_types());
    tally.add_document(&gold, &pred);
    let r = tally.report();
    // micro over PER, ORG, LOC: the PER is missed, the DATE is not counted.
    assert_eq!(
        (r.strict.cor, r.strict.mis, r.strict.pos, r.strict.act),
        (0, 1, 1, 0)
    );
    assert!(!r.per_type["DATE"].in_micro);
    assert_eq!(r.per_type["DATE"].f1, 1.0);

    let mut tally = EntityTally::new(TypeSet::new(["PER", "DATE"]).unwrap());
    tally.add_document(&gold, &pred);
    let r = tally.report();
    // COR 1 (DATE), MIS 1 (PER): P = 1/1, R = 1/2, F1 = 2/3.
    assert!(
        close(r.strict.precision, 1.0)
            && close(r.strict.recall, 0.5)
            && close(r.strict.f1, 2.0 / 3.0)
    );
    // macro over PER and DATE: P = (0 + 1)/2, R = (0 + 1)/2, F1 = (0 + 1)/2.
    assert!(close(r.strict.macro_.unwrap().f1, 0.5));
    assert!(r.per_type["DATE"].in_micro && !r.per_type["LOC"].in_micro);
}

#[test]
fn a_gold_mention_is_matched_once_by_its_best_prediction() {
    // gold [0,10) PER; predictions [0,10) PER and [0,3) PER: the exact one
    // is matched (COR) whatever the order, the other is SPU.
    let gold = vec![ent(0, 10, "PER")];
    for pred in [
        vec![ent(0, 10, "PER"), ent(0, 3, "PER")],
        vec![ent(0, 3, "PER"), ent(0, 10, "PER")],
    ] {
        let c = count_document(&gold, &pred);
        assert_eq!(counts(&c, Mode::Strict), (1, 0, 0, 0, 1));
        assert_eq!(counts(&c, Mode::Partial), (1, 0, 0, 0, 1));
    }

    // Same boundaries: the prediction of the gold's type is the match, the
    // other type is SPU, whichever name sorts first.
    let gold = vec![ent(0, 5, "PER")];
    let pred = vec![ent(0, 5, "PER"), ent(0, 5, "LOC")];
    let c = count_document(&gold, &pred);
    assert_eq!(counts(&c, Mode::Strict), (1, 0, 0, 0, 1));
    assert_eq!(counts(&c, Mode::Exact), (1, 0, 0, 0, 1));

    // A prediction that overlaps two gold mentions takes the one no exact
    // prediction claims ([5,15) takes [0,10): PAR); the exact [12,20) has
    // its own.
    let gold = vec![ent(0, 10, "PER"), ent(12, 20, "PER")];
    let pred = vec![ent(5, 15, "PER"), ent(12, 20, "PER")];
    let c = count_document(&gold, &pred);
    assert_eq!(counts(&c, Mode::Strict), (1, 1, 0, 0, 0));
    assert_eq!(counts(&c, Mode::Partial), (1, 0, 1, 0, 0));
}

#[test]
fn touching_spans_do_not_overlap() {
    // half-open: [0,5) and [5,9) share no character
    let c = count_document(&[ent(0, 5, "PER")], &[ent(5, 9, "PER")]);
    assert_eq!(counts(&c, Mode::Partial), (0, 0, 0, 1, 1));
    assert_eq!(counts(&c, Mode::Type), (0, 0, 0, 1, 1));
}

#[test]
fn clitic_mode_strips_leading_proclitics_from_both_sides() {
    let text = "وأرمينيا للاتحاد الأوروبي بموسكو";
    // the guideline's spans: أرمينيا without و, لاتحاد الأوروبي after the first ل,
    // موسكو without ب
    let gold = vec![
        ent_in(text, "أرمينيا", "LOC"),
        ent_in(text, "لاتحاد الأوروبي", "ORG"),
        ent_in(text, "موسكو", "LOC"),
    ];
    // a tagger that keeps the proclitics
    let pred = vec![
        ent_in(text, "وأرمينيا", "LOC"),
        ent_in(text, "للاتحاد الأوروبي", "ORG"),
        ent_in(text, "بموسكو", "LOC"),
    ];
    assert_eq!((gold[0].start, gold[0].end, pred[0].start), (1, 8, 0));
    assert_eq!((gold[1].start, pred[1].start), (10, 9));
    // stripped: أرمينيا stays at 1 and وأرمينيا moves to 1; لاتحاد moves past its
    // ل to 11 and للاتحاد past both to 11; موسكو stays, بموسكو moves onto it.
    assert_eq!(Mention::stripped(&pred[0]).start, 1);
    assert_eq!(Mention::stripped(&gold[1]).start, 11);
    assert_eq!(Mention::stripped(&pred[1]).start, 11);

    let c = count_document(&gold, &pred);
    // strict: every prediction overlaps its gold with other boundaries: INC 3.
    assert_eq!(counts(&c, Mode::Strict), (0, 3, 0, 0, 0));
    // clitic: all three are equal after stripping: COR 3.
    assert_eq!(counts(&c, Mode::Clitic), (3, 0, 0, 0, 0));
    let mut tally = EntityTally::new(default_types());
    tally.add_document(&gold, &pred);
    let r = tally.report();
    assert_eq!(r.clitic.f1, 1.0);
    assert_eq!(r.strict.f1, 0.0);
    // per type and macro too
    assert_eq!(r.per_type["LOC"].clitic.f1, 1.0);
    assert_eq!(
        r.clitic.macro_.unwrap().f1,
        2.0 / 3.0,
        "ORG 1, LOC 1, PER 0 (no mention)"
    );
}

#[test]
fn clitic_stripping_goes_as_far_as_the_letters_go() {
    // لبنان loses ل and ب in gold and prediction alike, so they still match;
    // وبيروت vs بيروت: both lose every leading و/ب and meet at يروت.
    let text = "لبنان وبيروت";
    let gold = vec![ent_in(text, "لبنان", "LOC"), ent_in(text, "بيروت", "LOC")];
    let pred = vec![ent_in(text, "لبنان", "LOC"), ent_in(text, "وبيروت", "LOC")];
    assert_eq!(Mention::stripped(&gold[0]).start, 2);
    assert_eq!(
        Mention::stripped(&gold[1]).start,
        Mention::stripped(&pred[1]).start
    );
    let c = count_document(&gold, &pred);
    assert_eq!(counts(&c, Mode::Clitic), (2, 0, 0, 0, 0));
    // The rule is blind to words: كندا loses its ك and then equals a
    // predicted ندا. A known cost of stripping "as far as the letters go".
    let text = "كندا";
    let gold = vec![ent_in(text, "كندا", "LOC")];
    let pred = vec![ent_in(text, "ندا", "LOC")];
    let c = count_document(&gold, &pred);
    assert_eq!(counts(&c, Mode::Clitic), (1, 0, 0, 0, 0));
    // an all-proclitic text collapses to an empty span at its end
    let e = ent_in("بلك", "بلك", "PER");
    let m = Mention::stripped(&e);
    assert_eq!((m.start, m.end), (3, 3));
}

#[test]
fn counts_are_summed_over_documents_before_scoring() {
    // doc 1: gold [0,5) PER, pred [0,3) PER → PAR (partial), INC (strict)
    // doc 2: gold [0,3) LOC, no prediction → MIS
    let doc1 = (vec![ent(0, 5, "PER")], vec![ent(0, 3, "PER")]);
    let doc2 = (vec![ent(0, 3, "LOC")], vec![]);
    let mut tally = EntityTally::new(default_types());
    tally.add_document(&doc1.0, &doc1.1);
    tally.add_document(&doc2.0, &doc2.1);
    let r = tally.report();
    // partial, summed: COR 0, PAR 1, MIS 1, SPU 0 → POS 2, ACT 1;
    // P = 0.5/1 = 0.5, R = 0.5/2 = 0.25, F1 = 2·0.5·0.25/0.75 = 1/3.
    let p = &r.partial;
    assert_eq!(
        (p.cor, p.par, p.mis, p.spu, p.pos, p.act),
        (0, 1, 1, 0, 2, 1)
    );
    assert!(close(p.precision, 0.5) && close(p.recall, 0.25) && close(p.f1, 1.0 / 3.0));
    // Not the mean of per-document F1s: doc 1 partial F1 = 0.5 (P = R = 0.5),
    // doc 2 F1 = 0, mean 0.25.
    assert!(!close(p.f1, 0.25));
    // Nor what pooling the documents' mentions (offsets colliding) gives: the
    // PER [0,3) would meet the LOC [0,3) as "same boundaries" (exact COR,
    // partial COR) and the PER [0,5) would be MIS: partial P = 1, R = 0.5.
    let pooled = count_document(&[ent(0, 5, "PER"), ent(0, 3, "LOC")], &[ent(0, 3, "PER")]);
    assert_eq!(counts(&pooled, Mode::Partial), (1, 0, 0, 1, 0));
    // strict, summed: INC 1, MIS 1 → 0
    assert_eq!((r.strict.inc, r.strict.mis, r.strict.f1), (1, 1, 0.0));
}

#[test]
fn tagger_types_get_their_own_row() {
    let mut tally = EntityTally::new(default_types());
    tally.add_document(&[ent(0, 3, "PER")], &[ent(0, 3, "PERS")]);
    let r = tally.report();
    assert!(!r.per_type["PERS"].in_micro);
    assert_eq!(r.per_type["PERS"].fp, 1);
    // in micro the PERS prediction is outside the set: the PER is just missed
    assert_eq!((r.strict.mis, r.strict.act), (1, 0));
}

#[test]
fn type_sets_are_validated() {
    assert!(
        matches!(TypeSet::new(["PER", "per"]), Err(crate::EvalError::UnknownType(t)) if t == "per")
    );
    assert!(matches!(
        TypeSet::new(Vec::<String>::new()),
        Err(crate::EvalError::NoTypes)
    ));
    assert_eq!(
        TypeSet::new(["LOC", "PER", "LOC"]).unwrap().as_slice(),
        ["LOC", "PER"]
    );
}
