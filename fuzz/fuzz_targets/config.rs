//! The model config parser: any text is a config or a list of problems.
#![no_main]
use arabtag_infer::config::ModelConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = ModelConfig::parse(text, std::path::Path::new("/fuzz/model.toml")) {
        assert!(!e.to_string().is_empty());
    }
});
