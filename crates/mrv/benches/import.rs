//! Import throughput: a generated 100,000-row file (unit × 2 streams × 12 months, one
//! stream in ten with unmeasured months, i.e. empty carbon content and lab cells), as CSV text
//! and as an .xlsx workbook with the same rows as typed cells (numbers, date cells, text).
//! Run: `cargo bench -p ets-mrv --bench import`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ets_mrv::import::{import_str, COLUMNS};
use ets_mrv::xlsx::import_xlsx;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use std::fmt::Write;
use std::time::Duration;

const ROWS: usize = 100_000;

fn csv_text() -> String {
    let mut rng = 42u64;
    let mut next = |lo: u64, hi: u64| {
        rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        lo + (z ^ (z >> 31)) % (hi - lo + 1)
    };
    let mut s = COLUMNS.join(",");
    s.push('\n');
    for i in 0..ROWS {
        let (u, st, m) = (i / 24, (i / 12) % 2, i % 12 + 1);
        let (q, ncv) = (next(80_000, 120_000), next(1900, 2200));
        write!(s, "ENT-{u},U{u},coal-{st},2022,{m},coal,{q}.{:03},{}.{:02},", next(0, 999), ncv / 100, ncv % 100).unwrap();
        if u % 10 == 0 && st == 1 && m > 2 {
            s.push_str(",,,,");
        } else {
            write!(s, "0.0{},L{u}-{st}-{m},2022-{:02}-05,2022-{m:02}-10,", next(2550, 2800), m % 12 + 1).unwrap();
        }
        s.push_str("0.99\n");
    }
    s
}

/// The CSV rows as a workbook as a person would type them: numbers and dates as typed cells.
fn xlsx_bytes(text: &str) -> Vec<u8> {
    let mut wb = Workbook::new();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let ws = wb.add_worksheet();
    ws.set_name("monthly").unwrap();
    for (r, line) in text.lines().enumerate() {
        for (c, cell) in line.split(',').enumerate() {
            let (r, c) = (r as u32, c as u16);
            match (r, COLUMNS[c as usize]) {
                (_, _) if cell.is_empty() => {}
                (0, _) | (_, "entity" | "unit" | "source_stream" | "fuel" | "lab_report_id") => {
                    ws.write_string(r, c, cell).unwrap();
                }
                (_, "report_date" | "sample_date") => {
                    ws.write_date_with_format(r, c, ExcelDateTime::parse_from_str(cell).unwrap(), &date).unwrap();
                }
                _ => {
                    ws.write_number(r, c, cell.parse::<f64>().unwrap()).unwrap();
                }
            }
        }
    }
    wb.save_to_buffer().unwrap()
}

fn bench(c: &mut Criterion) {
    let text = csv_text();
    assert_eq!(import_str(&text).map(|r| r.len()).map_err(|e| e.problems.len()), Ok(ROWS));
    let mut g = c.benchmark_group("csv_import");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("import_100k_rows", |b| b.iter(|| black_box(import_str(black_box(&text)).unwrap().len())));
    g.finish();

    let xlsx = xlsx_bytes(&text);
    // Same records (decimals compare by value: a number cell drops trailing zeros).
    assert!(import_xlsx(&xlsx).unwrap() == import_str(&text).unwrap());
    let mut g = c.benchmark_group("xlsx_import");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("import_100k_rows", |b| b.iter(|| black_box(import_xlsx(black_box(&xlsx)).unwrap().len())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
