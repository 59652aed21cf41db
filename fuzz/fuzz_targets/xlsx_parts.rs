//! Gets past the zip layer (where byte-level mutation mostly breaks a checksum): the template
//! workbook with one of its XML parts replaced by the fuzzer's bytes.
#![no_main]

use ets_fuzz::{check, tolerate_calamine_panics, unzip, zip, Format};
use ets_mrv::xlsx::{import_xlsx, template_xlsx};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static PARTS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();

fuzz_target!(init: tolerate_calamine_panics(), |data: &[u8]| {
    let parts = PARTS.get_or_init(|| unzip(&template_xlsx()));
    let Some((&which, content)) = data.split_first() else { return };
    let mut files = parts.clone();
    files[usize::from(which) % parts.len()].1 = content.to_vec();
    check(&import_xlsx(&zip(&files)), Format::Xlsx);
});
