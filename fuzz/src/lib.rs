//! Invariants every import result must satisfy, shared by the fuzz targets, and the template
//! parts the structured targets rebuild workbooks from.

use ets_mrv::import::{ImportErrors, ProblemKind, MAX_ROWS};
use ets_mrv::monthly::{LabMeasurement, MonthlyRecord};
use std::collections::{BTreeSet, HashSet};
use std::io::{Cursor, Read, Write};
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

/// Panics unless `result` is a possible outcome of an import: on success at most `MAX_ROWS`
/// records, each accepted again by the checked constructors, with the import's stricter text
/// rule and without a repeated (unit, source stream, month); on failure at least one problem,
/// each well-formed for its format.
pub fn check(result: &Result<Vec<MonthlyRecord>, ImportErrors>, format: Format) {
    match result {
        Ok(records) => {
            assert!(records.len() <= MAX_ROWS, "{} records", records.len());
            let mut keys = HashSet::new();
            for r in records {
                let again = MonthlyRecord::new(r.fields().clone()).expect("an imported record breaks MonthlyRecord::new");
                assert_eq!(&again, r);
                if let Some(m) = r.measurement() {
                    LabMeasurement::new(m.cc_tc_per_gj(), m.report_id(), m.report_date(), m.sample_date())
                        .expect("an imported measurement breaks LabMeasurement::new");
                    assert!(!m.report_id().chars().any(char::is_control));
                }
                for t in [r.entity(), r.unit(), r.source_stream()] {
                    assert!(!t.is_empty() && t.trim() == t && !t.chars().any(char::is_control), "text {t:?}");
                }
                assert!(keys.insert((r.unit().to_string(), r.source_stream().to_string(), r.month())), "duplicate key imported");
            }
        }
        Err(e) => {
            assert!(!e.problems.is_empty(), "refused without a problem");
            for p in &e.problems {
                assert!(!p.reason.is_empty());
                match format {
                    Format::Csv => assert!(p.sheet.is_none() && p.row >= 1, "{p:?}"),
                    Format::Xlsx => assert!(
                        p.sheet.is_some() || (p.kind == ProblemKind::UnreadableWorkbook && p.row == 0),
                        "an xlsx problem without its sheet: {p:?}"
                    ),
                }
                let shown = p.to_string();
                assert!(shown.ends_with(&p.reason));
            }
            let _ = e.to_string();
        }
    }
}

/// The (name, content) of every file in a zip archive.
pub fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).expect("a zip archive");
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).expect("a zip entry");
            let mut content = Vec::new();
            f.read_to_end(&mut content).expect("readable");
            (f.name().expect("a name").into_owned(), content)
        })
        .collect()
}

/// A zip archive of the files, uncompressed (the importer cannot tell).
pub fn zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in files {
        w.start_file(name.as_str(), options).expect("start a file");
        w.write_all(content).expect("write to memory");
    }
    w.finish().expect("finish").into_inner()
}

/// For the xlsx targets, called once at start-up. The importer catches a panic inside calamine
/// and reports an unreadable workbook (which `check` then sees), but libfuzzer-sys's panic hook
/// aborts before the catch; this hook lets calamine's panics unwind, printing each site once,
/// and still aborts on any other panic: those are crashes.
pub fn tolerate_calamine_panics() {
    static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| match info.location() {
        Some(at) if at.file().contains("/calamine-") => {
            let at = at.to_string();
            if SEEN.lock().unwrap_or_else(|e| e.into_inner()).insert(at.clone()) {
                let what = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned());
                eprintln!("CALAMINE PANIC caught by the importer at {at}: {}", what.unwrap_or_default());
            }
        }
        _ => abort(info),
    }));
}
