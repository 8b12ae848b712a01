#![allow(clippy::unwrap_used)]

use super::*;

/// The character span of the `nth` (0-based) occurrence of `needle`.
fn at(text: &str, needle: &str, nth: usize) -> Span {
    let (byte, _) = text.match_indices(needle).nth(nth).unwrap();
    let start = text[..byte].chars().count();
    Span::new(start, start + needle.chars().count())
}

/// Asserts that the dates of `text` are exactly the `expected` substrings
/// (each its first occurrence after the previous one), with exact spans.
fn check(text: &str, expected: &[&str]) {
    let mut spans = Vec::new();
    let mut from = 0;
    for needle in expected {
        let nth = text
            .match_indices(needle)
            .take_while(|(b, _)| *b < from)
            .count();
        let span = at(text, needle, nth);
        from = text.match_indices(needle).nth(nth).unwrap().0 + needle.len();
        spans.push(span);
    }
    let found = find_dates(text);
    let chars = CharText::new(text);
    let slices: Vec<&str> = found
        .iter()
        .map(|s| chars.slice(s.start, s.end).unwrap())
        .collect();
    assert_eq!(slices, expected, "{text}");
    assert_eq!(found, spans, "{text}");
}

#[test]
fn transliterated_levantine_and_english_month_names() {
    check(
        "وصل الوفد في يناير، وعاد في فبراير ثم في أبريل وإبريل.",
        &["يناير", "فبراير", "أبريل", "إبريل"],
    );
    check(
        "تنتهي المهلة في يونيه أو يوليه أو أغسطس أو سبتمبر أو أكتوبر أو نوفمبر أو ديسمبر.",
        &[
            "يونيه",
            "يوليه",
            "أغسطس",
            "سبتمبر",
            "أكتوبر",
            "نوفمبر",
            "ديسمبر",
        ],
    );
    check(
        "افتتح المعرض في شباط وأغلق في نيسان، وتجدد في أيار وحزيران وتموز وأيلول.",
        &["شباط", "نيسان", "أيار", "حزيران", "تموز", "أيلول"],
    );
    check(
        "جرت الانتخابات في كانون الثاني وتأجلت إلى تشرين الأول.",
        &["كانون الثاني", "تشرين الأول"],
    );
    check(
        "The talks resumed in September and ended on November 3, 2021.",
        &["September", "November 3, 2021"],
    );
    // Maghrebi spellings.
    check("تم التوقيع في جانفي وفي شتنبر.", &["جانفي", "شتنبر"]);
}

#[test]
fn two_word_months_need_their_second_word() {
    check("كان كانون النار مشتعلا وتشرين بعيدا.", &[]);
    check("في ربيع هذا العام زار الوزير العاصمة.", &[]);
}

#[test]
fn hijri_months() {
    check(
        "يبدأ الموسم في ربيع الأول وينتهي في جمادى الآخرة.",
        &["ربيع الأول", "جمادى الآخرة"],
    );
    check("وصل الحجاج في 8 ذو الحجة 1445 هـ.", &["8 ذو الحجة 1445 هـ"]);
    check("خلال شهر رمضان تراجعت الأسعار.", &["شهر رمضان"]);
    check(
        "توفي عام 1380 هـ وولد ابنه 1402 هـ لا 1402.",
        &["عام 1380 هـ", "1402 هـ"],
    );
    // Names that are also months count only in a date context.
    check("قال رمضان إن رجب وشعبان سافرا.", &[]);
    check("في رمضان الماضي ارتفعت الأسعار.", &["رمضان الماضي"]);
}

#[test]
fn weak_month_names_need_context() {
    check("مارس الوزير ضغطا كبيرا على أب المتهم.", &[]);
    check(
        "عقدت الجولة في مارس وتأجلت إلى آب المقبل.",
        &["مارس", "آب المقبل"],
    );
    check("وقع الحادث في 4 آب 2020.", &["4 آب 2020"]);
}

#[test]
fn weekdays_with_and_without_their_head_and_deictic() {
    check(
        "اجتمع المجلس يوم الاثنين، والأحد الماضي، وبالسبت.",
        &["يوم الاثنين", "الأحد الماضي", "السبت"],
    );
    check(
        "قال المتحدث اليوم الخميس إن اللقاء يعقد الجمعة المقبلة.",
        &["اليوم الخميس", "الجمعة المقبلة"],
    );
    check("ويوم الثلاثاء وصل الموفد.", &["يوم الثلاثاء"]);
    check("الثلاثاء 5/11/2024 - عاجل", &["الثلاثاء 5/11/2024"]);
    check("لا فرق بين الاثنين، قال الوزير.", &[]);
}

#[test]
fn day_month_year_with_either_digit_set() {
    check(
        "وقعت الهدنة في 23 نوفمبر 2023 وانهارت في ١٥ مارس ٢٠٢٤.",
        &["23 نوفمبر 2023", "١٥ مارس ٢٠٢٤"],
    );
    check("افتتح المؤتمر في ٣ أيار.", &["٣ أيار"]);
    check("وأعلن في سبتمبر 2023 عن الخطة.", &["سبتمبر 2023"]);
    check("وأعلن في سبتمبر ٢٠٢٣م عن الخطة.", &["سبتمبر ٢٠٢٣م"]);
}

#[test]
fn numeric_dates() {
    check(
        "صدر القرار بتاريخ 12/05/2024 ونشر في 2024-06-01 ثم في ٣/٧/٢٠٢٤.",
        &["12/05/2024", "2024-06-01", "٣/٧/٢٠٢٤"],
    );
    // Not a date: a month 13, a phone-like group.
    check("اتصل على الرقم 12/13/2024 أو 0123-45-6789.", &[]);
}

#[test]
fn paired_months_are_one_date() {
    check(
        "وفي 23 نوفمبر/ تشرين الثاني وصل الوفد، وفي أغسطس/آب غادر.",
        &["23 نوفمبر/ تشرين الثاني", "أغسطس/آب"],
    );
    check(
        "بدأت الأزمة في سبتمبر (أيلول) 2022 واشتدت في يونيو - حزيران.",
        &["سبتمبر (أيلول) 2022", "يونيو - حزيران"],
    );
}

#[test]
fn a_full_dateline_is_one_date() {
    check(
        "الجمعة 1 نوفمبر / November 2024\nقال الرئيس إن المحادثات مستمرة.",
        &["الجمعة 1 نوفمبر / November 2024"],
    );
    check("الأحد، 5 مايو 2024 - وصل الوزير.", &["الأحد، 5 مايو 2024"]);
}

#[test]
fn years_with_and_without_head_words() {
    check(
        "منذ عام 1991 وحتى حرب 2020 لم يتغير شيء، وفي العام 2022 تغير.",
        &["عام 1991", "2020", "العام 2022"],
    );
    check(
        "وفي سنة 1994 وقعت الهدنة، وفي2021 عادت.",
        &["سنة 1994", "2021"],
    );
    // Out of the plausible range, a part of a larger number, a quantity.
    check(
        "بلغ العدد 1850 ثم 2,020 و20.20 و2020% ونحو 2000 جندي و2030 شخصا والقرار 15/2020 و12345.",
        &[],
    );
}

#[test]
fn ranges_give_two_dates() {
    // The lone first day is a date of its own; the month goes with the second.
    check("تعقد القمة من 3 إلى 5 يونيو.", &["3", "5 يونيو"]);
    check(
        "بين 10 و12 أكتوبر 2022 زار الوفد.",
        &["10", "12 أكتوبر 2022"],
    );
    check("في الفترة 7-9 آذار.", &["7", "9 آذار"]);
    check("من عام 2020 إلى عام 2022.", &["عام 2020", "عام 2022"]);
    check("بين 2018 و2019.", &["2018", "2019"]);
}

#[test]
fn proclitics_stay_outside() {
    check(
        "والأحد وبيناير ولسبتمبر وفي 2020 وكانون الأول.",
        &["الأحد", "يناير", "سبتمبر", "2020", "كانون الأول"],
    );
}

#[test]
fn tashkeel_and_tatweel_inside_words_stay_in_the_span() {
    check("وصل في سِبْتَمْبَرَ الماضي.", &["سِبْتَمْبَرَ الماضي"]);
    check("وصل يوم الخمـــيس.", &["يوم الخمـــيس"]);
    check("وَنُوفَمْبِرُ ٢٠٢١ كان حاسما.", &["نُوفَمْبِرُ ٢٠٢١"]);
}

#[test]
fn durations_and_vague_expressions_are_not_dates() {
    check(
        "استمر القتال يومين ثم ثلاثة أيام، وقبل عامين وقبل عام، ومنذ سنوات وعقود، \
         وفي أواخر الشهر الجاري والعام الماضي وفي اليوم التالي.",
        &[],
    );
    check("قال الوزير إن 5 جنود قتلوا خلال 3 أشهر.", &[]);
}

#[test]
fn a_date_never_crosses_a_line() {
    check("وصل في سبتمبر\n2023 كان عاما صعبا.", &["سبتمبر", "2023"]);
    check("وصل في 3 من\nأكتوبر.", &["أكتوبر"]);
}

#[test]
fn a_month_pair_may_wrap_after_its_slash() {
    check(
        "وفي 23 نوفمبر/\nتشرين الثاني الماضي وقع الاتفاق.",
        &["23 نوفمبر/\nتشرين الثاني الماضي"],
    );
    check("في سبتمبر/\nأيلول 2023.", &["سبتمبر/\nأيلول 2023"]);
    // Not after a dash or without a mark.
    check("في سبتمبر\nأيلول", &["سبتمبر", "أيلول"]);
}

#[test]
fn ordinal_day_words() {
    check(
        "وقع الاتفاق في الخامس عشر من يناير، ووصل الوفد في الأول من مارس.",
        &["الخامس عشر من يناير", "الأول من مارس"],
    );
    check(
        "انتهت المهلة في الحادي والعشرين من أيلول والثلاثين من نوفمبر 2023.",
        &["الحادي والعشرين من أيلول", "الثلاثين من نوفمبر 2023"],
    );
    check("والعاشر من رمضان يوم عطلة.", &["العاشر من رمضان"]);
    check(
        "عقدت يوم السابع من أكتوبر جلسة، والثلاثاء الثاني من يونيو أخرى.",
        &["يوم السابع من أكتوبر", "الثلاثاء الثاني من يونيو"],
    );
    // Ordinals that are not days.
    check(
        "هذا هو الأول من نوعه، والثاني من حيث الحجم، والحادي من بين عشرة.",
        &[],
    );
}

#[test]
fn min_between_day_and_month() {
    check(
        "وصل في 3 من أكتوبر وغادر في 22 من الشهر الجاري أو 5 من هذا الشهر.",
        &["3 من أكتوبر", "22 من الشهر الجاري", "5 من هذا الشهر"],
    );
    check("قتل 3 من الجنود.", &[]);
}

#[test]
fn past_months_and_relative_years() {
    check(
        "في أكتوبر الفائت وفي الجمعة الفائتة وفي مارس المنصرم.",
        &["أكتوبر الفائت", "الجمعة الفائتة", "مارس المنصرم"],
    );
    check(
        "في مارس من العام الماضي و5 يونيو من السنة المقبلة وفي مايو من هذا العام ويوليو من عام 2021.",
        &[
            "مارس من العام الماضي",
            "5 يونيو من السنة المقبلة",
            "مايو من هذا العام",
            "يوليو من عام 2021",
        ],
    );
    check("في مارس من أجل السلام.", &["مارس"]);
}

#[test]
fn merge_keeps_model_entities_and_order() {
    let text = "قال بوتين يوم الاثنين في موسكو إن سبتمبر 2023 كان حاسما.";
    let chars = CharText::new(text);
    let model = |needle: &str, kind: &str| {
        labels::entity(&chars, at(text, needle, 0), kind, Some(0.9)).unwrap()
    };
    // The model already tagged a DATE overlapping "سبتمبر 2023": it wins.
    let mut entities = vec![
        model("بوتين", "PER"),
        model("موسكو", "LOC"),
        model("سبتمبر", "DATE"),
    ];
    merge_dates(text, &mut entities).unwrap();
    let got: Vec<(&str, &str)> = entities
        .iter()
        .map(|e| (e.text.as_str(), e.kind.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("بوتين", "PER"),
            ("يوم الاثنين", "DATE"),
            ("موسكو", "LOC"),
            ("سبتمبر", "DATE"),
        ]
    );
    let added = &entities[1];
    assert_eq!(added.span(), at(text, "يوم الاثنين", 0));
    assert_eq!(added.score, None);
    let mut empty = Vec::new();
    merge_dates("", &mut empty).unwrap();
    assert!(empty.is_empty());
}
