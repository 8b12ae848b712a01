//! The CoNLL reader and scorer: a file scored against itself is perfect.
#![no_main]
use arabtag_eval::conll::{ConllFile, evaluate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(file) = ConllFile::parse(std::path::Path::new("fuzz.txt"), text) else { return };
    if let Ok(report) = evaluate(&file, &file) {
        let micro = report.default.micro;
        assert!(micro.support == 0 || (micro.f1 - 1.0).abs() < 1e-12, "{micro:?}");
    }
});
