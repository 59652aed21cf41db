//! Differential: the same text cells written as CSV and as an .xlsx workbook import to the same
//! records, or to the same problems (row, column, kind).
#![no_main]

use arbitrary::Arbitrary;
use ets_fuzz::{check, tolerate_calamine_panics, Format};
use ets_mrv::import::{import_str, COLUMNS};
use ets_mrv::xlsx::import_xlsx;
use libfuzzer_sys::fuzz_target;

/// Per column, values that pass and values that fail its rule, so that rows reach every check.
const POOL: [&[&str]; 13] = [
    &["ENT-1", "E 2", ""],
    &["U1", "U2", " U1 "],
    &["coal-1", "gas", ""],
    &["2022", "2023", "1899", "20x2"],
    &["1", "2", "12", "13", "0"],
    &["coal", "natural_gas", "diesel", "peat", ""],
    &["100000", "0", "98000.5", "-5", "1e5"],
    &["20.5", "48.00", "0", "-1"],
    &["", "0.0270", "0.01530", "0", "abc"],
    &["", "LAB-1", "LAB-2"],
    &["", "2022-06-20", "2022-02-30", "2022/01/01"],
    &["", "2022-05-10", "2024-02-29"],
    &["0.99", "1", "1.2", "0"],
];

#[derive(Arbitrary, Debug)]
enum Cell {
    Pool(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Rotates the column order.
    rotate: u8,
    rows: Vec<[Cell; 13]>,
}

fuzz_target!(init: tolerate_calamine_panics(), |input: Input| {
    let rot = usize::from(input.rotate) % 13;
    let order: Vec<usize> = (0..13).map(|i| (i + rot) % 13).collect();
    let rows: Vec<Vec<String>> = input
        .rows
        .iter()
        .take(200)
        .map(|row| {
            order
                .iter()
                .map(|&c| match &row[c] {
                    Cell::Pool(i) => POOL[c][usize::from(*i) % POOL[c].len()].to_string(),
                    // Excel text holds no control characters and escapes "_xHHHH_"; keep to text
                    // both formats carry alike.
                    Cell::Other(s) => s.chars().take(40).map(|ch| if ch.is_control() || ch == '_' { '?' } else { ch }).collect(),
                })
                .collect::<Vec<String>>()
        })
        // Excel skips rows without a value; CSV only truly blank lines.
        .filter(|row: &Vec<String>| row.iter().any(|c| !c.trim().is_empty()))
        .collect();

    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(order.iter().map(|&c| COLUMNS[c])).unwrap();
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("monthly").unwrap();
    for (i, &c) in order.iter().enumerate() {
        ws.write_string(0, i as u16, COLUMNS[c]).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        csv.write_record(row).unwrap();
        for (i, text) in row.iter().enumerate() {
            if !text.is_empty() {
                ws.write_string(r as u32 + 1, i as u16, text).unwrap();
            }
        }
    }
    let csv = String::from_utf8(csv.into_inner().unwrap()).unwrap();
    let from_csv = import_str(&csv);
    let from_xlsx = import_xlsx(&wb.save_to_buffer().unwrap());
    check(&from_csv, Format::Csv);
    check(&from_xlsx, Format::Xlsx);
    match (&from_csv, &from_xlsx) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => {
            let key = |e: &ets_mrv::import::ImportErrors| e.problems.iter().map(|p| (p.row, p.column.clone(), p.kind)).collect::<Vec<_>>();
            assert_eq!(key(a), key(b), "\ncsv:\n{csv}");
        }
        _ => panic!("csv {from_csv:?}\nxlsx {from_xlsx:?}\ncsv text:\n{csv}"),
    }
});
