#![no_main]

use ets_fuzz::{check, tolerate_calamine_panics, Format};
use ets_mrv::xlsx::import_xlsx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: tolerate_calamine_panics(), |data: &[u8]| {
    check(&import_xlsx(data), Format::Xlsx);
});
