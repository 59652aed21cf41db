#![no_main]

use ets_fuzz::{check, Format};
use ets_mrv::import::{import_reader, import_str};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let result = import_reader(data);
    check(&result, Format::Csv);
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(import_str(text), result);
    }
});
