//! The JSONL reader: any bytes give records or errors naming a line, never
//! a panic, and every line is accounted for.
#![no_main]
use arabtag_records::{JsonlReader, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').count();
    let mut last = 0;
    for item in JsonlReader::<_, Record>::new("fuzz.jsonl", data) {
        let line = match item {
            Ok((line, record)) => {
                let _: Record = record;
                line
            }
            Err(e) => e.line().unwrap_or(last + 1),
        };
        assert!(line > last && line <= lines, "line {line} after {last} of {lines}");
        last = line;
    }
});
