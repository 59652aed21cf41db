//! Import of monthly activity data ([`MonthlyRecord`]) from an Excel workbook (.xlsx), and
//! the Excel template.
//!
//! The workbook is given as bytes ([`import_xlsx`]); this module never opens files. The data
//! is on the sheet named [`SHEET`] (`monthly`, any letter case), or on the first worksheet if
//! there is no such sheet. The template, the checks and the outcome are those of the CSV
//! import ([`crate::import`]): the first non-empty row is the header naming the
//! [`COLUMNS`] in any order; every problem is reported, now with its sheet; a workbook with any
//! problem imports nothing; at most [`MAX_ROWS`] data rows.
//!
//! ## From Excel cells to text
//!
//! Each cell becomes the text the CSV importer would have seen, then goes through the same
//! validator:
//!
//! - **Text** cells are used as they are, trimmed. Numbers and dates may be typed as text
//!   (`0.0270`, `2022-06-20`) and are then read exactly as in CSV.
//! - **Number** cells: Excel stores every number as a binary floating-point value (f64). The
//!   cell becomes the *shortest decimal text that reads back as that stored value* (Rust's `{}`
//!   formatting of `f64`), and that text is parsed as a [`rust_decimal::Decimal`]: `20.5`
//!   stays `20.5`, `0.1` stays `0.1`. This is the value Excel shows with enough digits, and no
//!   binary arithmetic is done on it. Two consequences: a display format is not part of the
//!   value (`0.0270` shown with four places is read as `0.027`, numerically equal, one
//!   decimal place fewer), and a formula's binary rounding shows (`=0.1+0.2` is read as
//!   `0.30000000000000004`). Enter a number as text to keep its exact digits. Year and month
//!   cells must hold whole numbers (`2022`, not `2022.5`).
//! - **Date** cells (a number with a date format) in `report_date` / `sample_date` become
//!   `YYYY-MM-DD`, for both the 1900 and the 1904 date systems. A date cell with a time of
//!   day, before 1900-01-01 (1904-01-01 in the 1904 system), after 9999-12-31, or Excel's
//!   non-existent 1900-02-29 is a [`ProblemKind::BadDate`]. A date cell in any other column is a
//!   [`ProblemKind::WrongCellType`].
//! - **Error** cells (`#DIV/0!`, `#N/A`, `#REF!`, ...: usually a failed formula) are a
//!   [`ProblemKind::ErrorCell`]. **TRUE/FALSE** and duration cells are a
//!   [`ProblemKind::WrongCellType`].
//! - Formula cells are read through the value Excel saved with them (a workbook written by a
//!   program that does not compute formulas may have none: the cell is then empty).
//!
//! Rows are numbered as Excel shows them. Rows whose cells are all empty are skipped. A value in
//! a column with an empty header cell is a [`ProblemKind::CellWithoutColumn`]: it would
//! otherwise be ignored. An input that is not a readable .xlsx workbook (another format, a
//! corrupt or encrypted file) is one [`ProblemKind::UnreadableWorkbook`] problem with row 0.
//!
//! ## Hostile input
//!
//! The worksheet is read as a stream, one row at a time, so the row limit also bounds the
//! work on an oversized sheet. The workbook's shared-string table is read whole when the workbook
//! is opened (a highly compressed table is a memory cost this module does not bound); its declared
//! size is checked against its real size first. A panic inside the xlsx reader (calamine) is
//! reported as an unreadable workbook, not passed on to the caller. Both defences come from
//! fuzzing (`fuzz/` at the repository root).

use crate::import::{
    Cell, ColumnKind, ImportErrors, ImportProblem, ProblemKind, Validator, COLUMNS, COLUMN_HELP, EXAMPLE_ROW, KINDS, MAX_ROWS,
};
use crate::monthly::MonthlyRecord;
use calamine::{DataRef, ExcelDateTime, Reader, SheetType, Xlsx};
use ets_core::Date;
use std::borrow::Cow;
use std::io::Cursor;

/// The name of the data sheet (matched ignoring letter case).
pub const SHEET: &str = "monthly";

/// The name of the template's sheet that documents the columns.
pub const INSTRUCTIONS_SHEET: &str = "instructions";

/// Imports an .xlsx workbook given as bytes. Either every data row (in sheet order) or every
/// problem.
pub fn import_xlsx(bytes: &[u8]) -> Result<Vec<MonthlyRecord>, ImportErrors> {
    import_with_limit(bytes, MAX_ROWS)
}

fn unreadable(sheet: Option<String>, reason: String) -> ImportErrors {
    ImportErrors { problems: vec![ImportProblem { sheet, row: 0, column: None, kind: ProblemKind::UnreadableWorkbook, reason }] }
}

fn import_with_limit(bytes: &[u8], max_rows: usize) -> Result<Vec<MonthlyRecord>, ImportErrors> {
    check_shared_string_count(bytes).map_err(|e| unreadable(None, format!("not a readable .xlsx workbook: {e}")))?;
    let mut wb: Xlsx<_> =
        guarded(|| Xlsx::new(Cursor::new(bytes))).map_err(|e| unreadable(None, format!("not a readable .xlsx workbook: {e}")))?;
    let sheet = {
        let sheets = wb.sheets_metadata();
        let worksheets = || sheets.iter().filter(|s| s.typ == SheetType::WorkSheet);
        let chosen = worksheets().find(|s| s.name.eq_ignore_ascii_case(SHEET)).or_else(|| worksheets().next());
        chosen.map(|s| s.name.clone()).ok_or_else(|| unreadable(None, "the workbook has no worksheet".into()))?
    };
    let is_1904 = wb.has_1904_epoch();
    let mut cells = guarded(|| wb.worksheet_cells_reader(&sheet))
        .map_err(|e| unreadable(Some(sheet.clone()), format!("cannot read the worksheet: {e}")))?;

    let mut v = Validator::new(Some(sheet), max_rows);
    let mut st = SheetState::new(is_1904);
    loop {
        let cell = match guarded(|| cells.next_cell()) {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(e) => {
                let row = st.row.map_or(0, |r| u64::from(r) + 1);
                v.problem(row, None, ProblemKind::UnreadableWorkbook, format!("cannot read the worksheet: {e}"));
                return v.finish();
            }
        };
        let (row, col) = cell.get_position();
        if !st.cell(&mut v, row, col, cell.get_value()) {
            return v.finish();
        }
    }
    if st.end_row(&mut v) && st.header.is_none() {
        // No non-empty row at all: like an empty CSV file, every column is missing.
        v.header(1, []);
    }
    v.finish()
}

/// Runs a calamine call, turning a panic into an error. calamine 0.38 panics on some malformed
/// workbooks (found by fuzzing: an overflow on an over-long cell reference such as
/// `<dimension ref="A1:ZZZZZZZZZZ1">` in builds with overflow checks); a caller's bad upload must
/// be a reported problem, not a crash. Needs `panic = "unwind"` (the workspace's profiles).
fn guarded<T>(f: impl FnOnce() -> Result<T, calamine::XlsxError>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(panic) => {
            let what = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
            Err(format!("the xlsx reader failed on malformed content ({})", what.as_deref().unwrap_or("panic")))
        }
    }
}

/// Fewest bytes one shared string takes in the XML (`<si/>`).
const MIN_SHARED_STRING_BYTES: u64 = 5;

/// calamine 0.38 reserves room for as many shared strings as the table's `uniqueCount` says
/// before reading any (found by fuzzing): a small upload declaring 10^12 strings would abort the
/// process on the failed allocation, which no `catch_unwind` can turn into a problem. So the
/// declared count is checked first against the table's actual size: the table must have at least
/// [`MIN_SHARED_STRING_BYTES`] per declared string. Every entry named like a shared-string table
/// is checked (calamine finds its own through the workbook's relationships). Other damage is
/// left to calamine to report.
fn check_shared_string_count(bytes: &[u8]) -> Result<(), String> {
    use std::io::Read;
    let Ok(mut zip) = zip::ZipArchive::new(Cursor::new(bytes)) else { return Ok(()) };
    for i in 0..zip.len() {
        let declared = match zip.by_index(i) {
            Ok(entry) if entry.name().is_ok_and(|n| n.replace('\\', "/").to_ascii_lowercase().ends_with("sharedstrings.xml")) => {
                declared_unique_count(entry)
            }
            _ => None,
        };
        let Some(declared) = declared else { continue };
        let needed = declared.saturating_mul(MIN_SHARED_STRING_BYTES);
        let mut entry = zip.by_index(i).map_err(|e| e.to_string())?;
        let available = std::io::copy(&mut (&mut entry).take(needed), &mut std::io::sink()).unwrap_or(0);
        if available < needed {
            return Err(format!("its shared-string table declares {declared} strings but is too short to hold them"));
        }
    }
    Ok(())
}

/// The largest number in a `uniqueCount` attribute of the table's `sst` element, read as calamine
/// reads it (digits, any leading zeros); `None` if there is none.
fn declared_unique_count(entry: impl std::io::Read) -> Option<u64> {
    let mut xml = quick_xml::Reader::from_reader(std::io::BufReader::new(entry));
    let config = xml.config_mut();
    config.check_end_names = false;
    config.check_comments = false;
    config.expand_empty_elements = true;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::Start(e)) if e.local_name().as_ref() == "sst" => {
                let attrs = e.attributes_raw();
                let mut max = None;
                for (at, _) in attrs.match_indices("uniqueCount") {
                    let rest = attrs[at + "uniqueCount".len()..].trim_start().strip_prefix('=')?.trim_start();
                    let digits = rest.strip_prefix(['"', '\'']).unwrap_or(rest);
                    let digits = &digits[..digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len())];
                    let digits = digits.trim_start_matches('0');
                    let n = if digits.len() > 19 { u64::MAX } else { digits.parse().unwrap_or(0) };
                    max = max.max(Some(n));
                }
                return max;
            }
            Ok(quick_xml::events::Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The Excel name of a cell, e.g. `C5` (0-based row and column in).
fn cell_name(row: u32, col: u32) -> String {
    let mut letters = Vec::new();
    let mut c = u64::from(col) + 1;
    while c > 0 {
        let rem = (c - 1) % 26;
        letters.push(b'A' + rem as u8);
        c = (c - 1) / 26;
    }
    letters.reverse();
    format!("{}{}", String::from_utf8(letters).expect("ASCII letters"), u64::from(row) + 1)
}

/// A cell of the current data row, in a template column.
enum Slot<'a> {
    Empty,
    Text(Cow<'a, str>),
    Bad(ProblemKind, String),
}

impl Slot<'_> {
    fn is_blank(&self) -> bool {
        matches!(self, Slot::Empty) || matches!(self, Slot::Text(t) if t.is_empty())
    }
}

/// Reading state: the header once found, and the row being collected (cells arrive one by
/// one, row by row).
struct SheetState<'a> {
    is_1904: bool,
    /// The worksheet column of each template column.
    header: Option<[u32; 13]>,
    /// The current (0-based) row.
    row: Option<u32>,
    /// Header candidate: non-empty cells of the current row while no header is known.
    names: Vec<(u32, String)>,
    slots: [Slot<'a>; 13],
    /// Cells of the current row with a value but no column, and cells given twice.
    strays: Vec<(ProblemKind, String)>,
}

impl<'a> SheetState<'a> {
    fn new(is_1904: bool) -> Self {
        SheetState { is_1904, header: None, row: None, names: Vec::new(), slots: std::array::from_fn(|_| Slot::Empty), strays: Vec::new() }
    }

    /// Takes one cell; `false` when reading must stop (the problems say why).
    fn cell(&mut self, v: &mut Validator, row: u32, col: u32, value: &DataRef<'a>) -> bool {
        if let Some(r) = self.row {
            if row < r {
                let reason = format!("cell {} comes after row {}: the worksheet's rows are out of order", cell_name(row, col), r + 1);
                v.problem(u64::from(row) + 1, None, ProblemKind::UnreadableWorkbook, reason);
                return false;
            }
            if row > r && !self.end_row(v) {
                return false;
            }
        }
        self.row = Some(row);
        let Some(header) = self.header else {
            let name = header_name(value);
            if !name.is_empty() {
                self.names.push((col, name));
            }
            return true;
        };
        match header.iter().position(|&c| c == col) {
            Some(i) => {
                let slot = to_slot(value, KINDS[i], self.is_1904, || cell_name(row, col));
                if !self.slots[i].is_blank() && !slot.is_blank() {
                    self.strays.push((ProblemKind::UnreadableWorkbook, format!("cell {} is given twice", cell_name(row, col))));
                } else if !slot.is_blank() {
                    self.slots[i] = slot;
                }
            }
            None if !to_slot(value, ColumnKind::Text, self.is_1904, String::new).is_blank() => {
                let reason = format!("cell {} has a value but its column has no header; remove it or name the column", cell_name(row, col));
                self.strays.push((ProblemKind::CellWithoutColumn, reason));
            }
            None => {}
        }
        true
    }

    /// Ends the current row: the header, a data row, or nothing for a blank row. `false` when
    /// reading must stop.
    fn end_row(&mut self, v: &mut Validator) -> bool {
        let Some(row0) = self.row else { return true };
        let row = u64::from(row0) + 1;
        let Some(_) = self.header else {
            if self.names.is_empty() {
                return true;
            }
            let names = std::mem::take(&mut self.names);
            self.header = v.header(row, names.iter().map(|(c, n)| (*c as usize, n.as_str()))).map(|pos| pos.map(|c| c as u32));
            return self.header.is_some();
        };
        let slots = std::mem::replace(&mut self.slots, std::array::from_fn(|_| Slot::Empty));
        let strays = std::mem::take(&mut self.strays);
        if strays.is_empty() && slots.iter().all(Slot::is_blank) {
            return true;
        }
        if !v.admit_row(row) {
            return false;
        }
        for (kind, reason) in strays {
            v.problem(row, None, kind, reason);
        }
        let cells = slots.each_ref().map(|s| match s {
            Slot::Empty => Cell::Text(""),
            Slot::Text(t) => Cell::Text(t),
            Slot::Bad(kind, reason) => Cell::Unreadable(*kind, reason.clone()),
        });
        v.row(row, cells);
        true
    }
}

/// A header cell's name: its text, or what it shows for a cell that is not text (reported as
/// an unknown column).
fn header_name(value: &DataRef<'_>) -> String {
    match value {
        DataRef::String(s) => s.trim().to_string(),
        DataRef::SharedString(s) => s.trim().to_string(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => f.to_string(),
        DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        DataRef::DateTime(d) => format!("(date cell {})", d.as_f64()),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.trim().to_string(),
        DataRef::Error(e) => e.to_string(),
        DataRef::Empty => String::new(),
    }
}

fn expected(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Text => "text",
        ColumnKind::Integer => "a whole number",
        ColumnKind::Decimal => "a number",
        ColumnKind::Date => "a date",
    }
}

/// The text of one data cell for a column of `kind`, or the problem with it. `at` names the
/// cell, only called for a problem.
fn to_slot<'a>(value: &DataRef<'a>, kind: ColumnKind, is_1904: bool, at: impl Fn() -> String) -> Slot<'a> {
    match value {
        DataRef::Empty => Slot::Empty,
        DataRef::SharedString(s) => Slot::Text(Cow::Borrowed(s.trim())),
        DataRef::String(s) => Slot::Text(Cow::Owned(s.trim().to_string())),
        DataRef::Int(i) => Slot::Text(Cow::Owned(i.to_string())),
        // Shortest round-trip decimal text of the stored binary value; see the module docs.
        DataRef::Float(f) => Slot::Text(Cow::Owned(f.to_string())),
        DataRef::Error(e) => Slot::Bad(
            ProblemKind::ErrorCell,
            format!("cell {} holds the error value {e} (a failed formula or broken reference); {} is expected", at(), expected(kind)),
        ),
        DataRef::Bool(b) => Slot::Bad(
            ProblemKind::WrongCellType,
            format!("cell {} is a TRUE/FALSE cell ({}); {} is expected", at(), if *b { "TRUE" } else { "FALSE" }, expected(kind)),
        ),
        DataRef::DurationIso(s) => {
            Slot::Bad(ProblemKind::WrongCellType, format!("cell {} is a duration ({s}); {} is expected", at(), expected(kind)))
        }
        DataRef::DateTime(d) if d.is_duration() => Slot::Bad(
            ProblemKind::WrongCellType,
            format!("cell {} is a duration (serial {}); {} is expected", at(), d.as_f64(), expected(kind)),
        ),
        DataRef::DateTime(d) if kind == ColumnKind::Date => match serial_date(d, is_1904) {
            Ok(day) => Slot::Text(Cow::Owned(day.to_string())),
            Err(why) => Slot::Bad(ProblemKind::BadDate, format!("date cell {} {why}", at())),
        },
        DataRef::DateTimeIso(s) if kind == ColumnKind::Date => {
            let s = s.trim();
            let (day, time) = s.split_once('T').unwrap_or((s, ""));
            if time.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
                Slot::Bad(ProblemKind::BadDate, format!("date cell {} ({s}) has a time of day; a date alone is expected", at()))
            } else {
                Slot::Text(Cow::Owned(day.to_string()))
            }
        }
        DataRef::DateTime(_) | DataRef::DateTimeIso(_) => Slot::Bad(
            ProblemKind::WrongCellType,
            format!("cell {} is formatted as a date or time; {} is expected (clear the cell's date format)", at(), expected(kind)),
        ),
    }
}

/// Largest serial day number Excel accepts (9999-12-31 in the 1900 date system).
const MAX_SERIAL_DAY: f64 = 2_958_465.0;

/// The calendar day of an Excel date cell. Our own conversion rather than calamine's, which
/// clamps out-of-range serials to a valid date and keeps 1900-02-29.
fn serial_date(d: &ExcelDateTime, is_1904: bool) -> Result<Date, String> {
    let serial = d.as_f64();
    if serial.is_finite() && serial.fract() != 0.0 {
        let (y, mo, d, h, mi, s, _) = d.to_ymd_hms_milli();
        return Err(format!("({y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}) has a time of day; a date alone is expected"));
    }
    let min = if is_1904 { 0.0 } else { 1.0 };
    if !(min..=MAX_SERIAL_DAY).contains(&serial) {
        return Err(format!("(serial {serial}) is outside Excel's dates"));
    }
    let days = serial as i32;
    // The 1900 system counts a 1900-02-29 that never was (serial 60, kept for Lotus 1-2-3
    // compatibility): serials before it are one day later than a plain count from 1899-12-30.
    let epoch = match (is_1904, days) {
        (true, _) => (1904, 1, 1),
        (false, 60) => return Err("(serial 60) is 1900-02-29, a day that does not exist (Excel's 1900 leap-year bug)".into()),
        (false, ..=59) => (1899, 12, 31),
        (false, _) => (1899, 12, 30),
    };
    let epoch = Date::from_ymd(epoch.0, epoch.1, epoch.2).expect("a calendar date");
    let day = Date(epoch.0 + days);
    if day.ymd().0 > 9999 {
        return Err(format!("(serial {serial}) is after 9999-12-31"));
    }
    Ok(day)
}

/// The Excel template: sheet [`SHEET`] with the header and one example row (numbers as number
/// cells, dates as date cells), and sheet [`INSTRUCTIONS_SHEET`] listing each column with its
/// meaning and rule. Written to memory.
pub fn template_xlsx() -> Vec<u8> {
    write_template().expect("the fixed template is written to memory and has valid names and cells")
}

fn write_template() -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{ExcelDateTime as WriteDate, Format, Workbook};
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let four_places = Format::new().set_num_format("0.0000");

    let ws = wb.add_worksheet();
    ws.set_name(SHEET)?;
    for (c, (name, value)) in COLUMNS.iter().zip(EXAMPLE_ROW).enumerate() {
        let c = c as u16;
        ws.write_string_with_format(0, c, *name, &bold)?;
        ws.set_column_width(c, name.len().max(12) as f64 + 2.0)?;
        match KINDS[c as usize] {
            ColumnKind::Text => ws.write_string(1, c, value)?,
            ColumnKind::Date => ws.write_date_with_format(1, c, WriteDate::parse_from_str(value)?, &date)?,
            // The example's carbon content is shown as written (0.0270); it is read as 0.027.
            ColumnKind::Decimal if *name == "carbon_content_tc_per_gj" => {
                ws.write_number_with_format(1, c, parse_f64(value), &four_places)?
            }
            ColumnKind::Integer | ColumnKind::Decimal => ws.write_number(1, c, parse_f64(value))?,
        };
    }
    ws.set_freeze_panes(1, 0)?;

    let ws = wb.add_worksheet();
    ws.set_name(INSTRUCTIONS_SHEET)?;
    for (c, title) in ["column", "meaning", "rule"].into_iter().enumerate() {
        ws.write_string_with_format(0, c as u16, title, &bold)?;
    }
    for (r, h) in COLUMN_HELP.iter().enumerate() {
        let r = r as u32 + 1;
        ws.write_string(r, 0, h.name)?;
        ws.write_string(r, 1, h.meaning)?;
        ws.write_string(r, 2, h.rule)?;
    }
    for (i, note) in NOTES.iter().enumerate() {
        ws.write_string(COLUMN_HELP.len() as u32 + 2 + i as u32, 0, *note)?;
    }
    ws.set_column_width(0, 28)?;
    ws.set_column_width(1, 40)?;
    ws.set_column_width(2, 48)?;
    wb.save_to_buffer()
}

fn parse_f64(text: &str) -> f64 {
    text.parse().expect("the example row's numbers are plain decimals")
}

/// The general rules, below the column table of the instructions sheet.
const NOTES: [&str; 6] = [
    "Enter the data on the sheet 'monthly': the first row names the columns (any order), then one row per source stream and month.",
    "Numbers: number cells or text. A number cell is read as the value Excel stores, in its shortest decimal form; the display format does not count (0.0270 shown with four places is read as 0.027). Enter a number as text to keep its exact digits.",
    "Dates: date cells without a time of day, or text written YYYY-MM-DD.",
    "A month without a measured carbon content: leave carbon_content_tc_per_gj, lab_report_id, report_date and sample_date empty.",
    "Error cells (#DIV/0!, #N/A, ...) and TRUE/FALSE cells are refused.",
    "A workbook with any problem imports nothing; every problem is listed with its sheet, row and column.",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::{import_str, template_csv, DUPLICATE_KEY_COLUMNS};
    use crate::monthly::{Carbon, Fuel, YearMonth};
    use crate::testgen::{d, day};
    use calamine::{Data, ExcelDateTimeType};
    use rust_xlsxwriter::{ExcelDateTime as WriteDate, Format, Formula, Workbook, Worksheet};
    use ProblemKind::*;

    fn kinds(e: &ImportErrors) -> Vec<(Option<&str>, u64, Option<&str>, ProblemKind)> {
        e.problems.iter().map(|p| (p.sheet.as_deref(), p.row, p.column.as_deref(), p.kind)).collect()
    }

    /// Writes `COLUMNS` as the header on row 1 of `ws`, then each row of strings as text cells.
    fn write_text_rows(ws: &mut Worksheet, header: &[&str], rows: &[Vec<&str>]) {
        for (c, h) in header.iter().enumerate() {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                if !v.is_empty() {
                    ws.write_string(r as u32 + 1, c as u16, *v).unwrap();
                }
            }
        }
    }

    fn one_sheet(name: &str, header: &[&str], rows: &[Vec<&str>]) -> Vec<u8> {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        ws.set_name(name).unwrap();
        write_text_rows(ws, header, rows);
        wb.save_to_buffer().unwrap()
    }

    #[test]
    fn template_imports_cleanly_and_matches_the_csv_template() {
        let bytes = template_xlsx();
        let recs = import_xlsx(&bytes).unwrap();
        assert_eq!(recs, import_str(&template_csv()).unwrap());
        assert_eq!(recs.len(), 1);
        let r = &recs[0];
        assert_eq!((r.entity(), r.unit(), r.source_stream(), r.fuel()), ("ENT-1", "U1", "coal-1", Fuel::Coal));
        assert_eq!(r.month(), YearMonth::new(2022, 5).unwrap());
        assert_eq!((r.quantity_t().to_string(), r.ncv_gj_per_t().to_string()), ("100000".into(), "20.5".into()));
        assert_eq!(r.oxidation_factor().to_string(), "0.99");
        let lab = r.measurement().unwrap();
        // The number cell holds 0.027; its "0.0000" display format is not part of the value.
        assert_eq!(lab.cc_tc_per_gj().to_string(), "0.027");
        assert_eq!((lab.report_id(), lab.report_date(), lab.sample_date()), ("LAB-2205", day(2022, 6, 20), day(2022, 5, 10)));

        // The sheets, and the instructions listing every column with its meaning and rule.
        let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(&bytes)).unwrap();
        assert_eq!(wb.sheet_names(), vec![SHEET.to_string(), INSTRUCTIONS_SHEET.to_string()]);
        let rows: Vec<Vec<Data>> = wb.worksheet_range(INSTRUCTIONS_SHEET).unwrap().rows().map(<[Data]>::to_vec).collect();
        assert_eq!(rows[0], ["column", "meaning", "rule"].map(|s| Data::String(s.into())));
        for (i, h) in COLUMN_HELP.iter().enumerate() {
            assert_eq!(rows[i + 1], [h.name, h.meaning, h.rule].map(|s| Data::String(s.into())));
        }
        assert_eq!(rows[15][0], Data::String(NOTES[0].into()));
        assert_eq!(rows.len(), 15 + NOTES.len());
        // The example's cells are typed: text, numbers, date cells.
        let data = wb.worksheet_range(SHEET).unwrap();
        assert_eq!(data.get_value((1, 3)), Some(&Data::Float(2022.0)));
        assert!(matches!(data.get_value((1, 10)), Some(Data::DateTime(d)) if d.as_f64() == 44732.0));
    }

    #[test]
    fn csv_template_is_the_header_and_one_example_row() {
        let t = template_csv();
        assert_eq!(
            t,
            "entity,unit,source_stream,year,month,fuel,quantity_t,ncv_gj_per_t,carbon_content_tc_per_gj,lab_report_id,report_date,sample_date,oxidation_factor\n\
             ENT-1,U1,coal-1,2022,5,coal,100000,20.5,0.0270,LAB-2205,2022-06-20,2022-05-10,0.99\n"
        );
        assert_eq!(COLUMN_HELP.map(|h| h.name), COLUMNS);
    }

    /// A workbook with an unrelated first sheet and the data on "Monthly", columns in another
    /// order, typed cells, and one planted problem per row.
    fn planted() -> Vec<u8> {
        let mut wb = Workbook::new();
        wb.add_worksheet().set_name("notes").unwrap().write_string(0, 0, "not the data").unwrap();
        let ws = wb.add_worksheet();
        ws.set_name("Monthly").unwrap();
        let date = Format::new().set_num_format("yyyy-mm-dd");
        let datetime = Format::new().set_num_format("yyyy-mm-dd hh:mm");
        // Columns: oxidation first, carbon-related last, and column N left without a header.
        let header = [
            "oxidation_factor",
            "entity",
            "unit",
            "source_stream",
            "year",
            "month",
            "fuel",
            "quantity_t",
            "ncv_gj_per_t",
            "carbon_content_tc_per_gj",
            "lab_report_id",
            "report_date",
            "sample_date",
        ];
        for (c, h) in header.iter().enumerate() {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        // Rows 2..=8 (0-based 1..=7) start from a clean measured row, then plant one problem.
        let good = |ws: &mut Worksheet, r: u32, month: f64| {
            ws.write_number(r, 0, 0.99).unwrap();
            ws.write_string(r, 1, "ENT-1").unwrap();
            ws.write_string(r, 2, "U1").unwrap();
            ws.write_string(r, 3, "coal-1").unwrap();
            ws.write_number(r, 4, 2022).unwrap();
            ws.write_number(r, 5, month).unwrap();
            ws.write_string(r, 6, "coal").unwrap();
            ws.write_number(r, 7, 98000.5).unwrap();
            ws.write_number(r, 8, 20.5).unwrap();
            ws.write_number(r, 9, 0.027).unwrap();
            ws.write_string(r, 10, format!("LAB-{month}")).unwrap();
            ws.write_date_with_format(r, 11, WriteDate::from_ymd(2022, 6, 20).unwrap(), &date).unwrap();
            ws.write_string(r, 12, "2022-05-10").unwrap();
        };
        good(ws, 1, 1.0); // row 2: clean
        good(ws, 2, 2.0); // row 3: bad number
        ws.write_string(2, 7, "98,000.5").unwrap();
        good(ws, 3, 3.0); // row 4: missing required cell
        ws.write_blank(3, 1, &Format::new().set_bold()).unwrap();
        good(ws, 4, 13.0); // row 5: month 13
        good(ws, 5, 5.0); // row 6: unknown fuel
        ws.write_string(5, 6, "peat").unwrap();
        good(ws, 6, 6.0); // row 7: error cell
        ws.write_formula(6, 8, Formula::new("=1/0").set_result("#DIV/0!")).unwrap();
        good(ws, 7, 1.0); // row 8: duplicate of row 2
                          // Row 9 left blank: skipped. Row 10: several cell-type problems and a value in column N.
        good(ws, 9, 10.0);
        ws.write_boolean(9, 0, true).unwrap();
        ws.write_date_with_format(9, 7, WriteDate::from_ymd(2022, 1, 1).unwrap(), &date).unwrap();
        ws.write_datetime_with_format(9, 11, WriteDate::parse_from_str("2022-06-20 13:45").unwrap(), &datetime).unwrap();
        ws.write_string(9, 13, "stray").unwrap();
        wb.save_to_buffer().unwrap()
    }

    #[test]
    fn planted_errors_are_all_reported_with_sheet_row_and_column() {
        let e = import_xlsx(&planted()).unwrap_err();
        let s = Some("Monthly");
        assert_eq!(
            kinds(&e),
            vec![
                (s, 3, Some("quantity_t"), MalformedNumber),
                (s, 4, Some("entity"), EmptyCell),
                (s, 5, Some("month"), MonthOutOfRange),
                (s, 6, Some("fuel"), UnknownFuel),
                (s, 7, Some("ncv_gj_per_t"), ErrorCell),
                (s, 8, Some(DUPLICATE_KEY_COLUMNS), DuplicateRow),
                (s, 10, None, CellWithoutColumn),
                (s, 10, Some("quantity_t"), WrongCellType),
                (s, 10, Some("report_date"), BadDate),
                (s, 10, Some("oxidation_factor"), WrongCellType),
            ]
        );
        let msgs: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs[0],
            "sheet 'Monthly', row 3, column quantity_t: '98,000.5' is not a plain decimal number (digits, optional leading '-' and '.', e.g. 0.0270)"
        );
        assert_eq!(msgs[1], "sheet 'Monthly', row 4, column entity: required value is empty");
        assert_eq!(msgs[2], "sheet 'Monthly', row 5, column month: 13 must be between 1 and 12");
        assert_eq!(
            msgs[4],
            "sheet 'Monthly', row 7, column ncv_gj_per_t: cell I7 holds the error value #DIV/0! (a failed formula or broken reference); a number is expected"
        );
        assert_eq!(
            msgs[5],
            "sheet 'Monthly', row 8, column unit, source_stream, year, month: unit 'U1', source stream 'coal-1', month 2022-01 already given in row 2"
        );
        assert_eq!(msgs[6], "sheet 'Monthly', row 10: cell N10 has a value but its column has no header; remove it or name the column");
        assert_eq!(
            msgs[7],
            "sheet 'Monthly', row 10, column quantity_t: cell H10 is formatted as a date or time; a number is expected (clear the cell's date format)"
        );
        assert_eq!(
            msgs[8],
            "sheet 'Monthly', row 10, column report_date: date cell L10 (2022-06-20 13:45:00) has a time of day; a date alone is expected"
        );
        assert_eq!(msgs[9], "sheet 'Monthly', row 10, column oxidation_factor: cell A10 is a TRUE/FALSE cell (TRUE); a number is expected");
        assert!(e.to_string().starts_with("import refused, nothing imported: 10 problem(s)\n  sheet 'Monthly', row 3"));
    }

    #[test]
    fn planted_workbook_without_its_problems_imports_every_row() {
        // The clean row of the planted workbook, with the typed cells read exactly.
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        let date = Format::new().set_num_format("dd/mm/yyyy");
        write_text_rows(ws, &COLUMNS, &[]);
        let r = 1;
        for (c, v) in ["ENT-1", "U1", "coal-1"].iter().enumerate() {
            ws.write_string(r, c as u16, *v).unwrap();
        }
        ws.write_number(r, 3, 2022).unwrap();
        ws.write_number(r, 4, 7).unwrap();
        ws.write_string(r, 5, " natural_gas ").unwrap();
        ws.write_number(r, 6, 0.1 + 0.2).unwrap();
        ws.write_number(r, 7, 48.125).unwrap();
        ws.write_string(r, 8, "0.01530").unwrap();
        ws.write_number(r, 9, 17).unwrap();
        ws.write_date_with_format(r, 10, WriteDate::from_ymd(2024, 2, 29).unwrap(), &date).unwrap();
        ws.write_date_with_format(r, 11, WriteDate::from_ymd(1900, 1, 1).unwrap(), &date).unwrap();
        ws.write_number(r, 12, 1).unwrap();
        // A second row, unmeasured, two blank rows below.
        for (c, v) in ["ENT-1", "U1", "coal-1", "2022", "8", "coal", "0"].iter().enumerate() {
            ws.write_string(4, c as u16, *v).unwrap();
        }
        ws.write_number(4, 7, 1e-7).unwrap();
        ws.write_number(4, 12, 0.5).unwrap();
        let recs = import_xlsx(&wb.save_to_buffer().unwrap()).unwrap();
        assert_eq!(recs.len(), 2);
        let r = &recs[0];
        assert_eq!(r.fuel(), Fuel::NaturalGas);
        assert_eq!(r.quantity_t().to_string(), "0.30000000000000004");
        assert_eq!(r.ncv_gj_per_t().to_string(), "48.125");
        let lab = r.measurement().unwrap();
        assert_eq!(lab.cc_tc_per_gj().to_string(), "0.01530");
        assert_eq!((lab.report_id(), lab.report_date(), lab.sample_date()), ("17", day(2024, 2, 29), day(1900, 1, 1)));
        assert_eq!(r.oxidation_factor(), d("1"));
        assert_eq!(recs[1].month(), YearMonth::new(2022, 8).unwrap());
        assert_eq!(recs[1].ncv_gj_per_t().to_string(), "0.0000001");
        assert_eq!(recs[1].carbon(), &Carbon::Missing);
    }

    #[test]
    fn serial_dates_in_both_date_systems() {
        let dt = |v: f64| ExcelDateTime::new(v, ExcelDateTimeType::DateTime, false);
        let ok = |v: f64, is_1904: bool| serial_date(&dt(v), is_1904).map(|d| d.to_string());
        assert_eq!(ok(1.0, false).unwrap(), "1900-01-01");
        assert_eq!(ok(59.0, false).unwrap(), "1900-02-28");
        assert!(ok(60.0, false).unwrap_err().contains("1900-02-29"));
        assert_eq!(ok(61.0, false).unwrap(), "1900-03-01");
        assert_eq!(ok(44732.0, false).unwrap(), "2022-06-20");
        assert_eq!(ok(2_958_465.0, false).unwrap(), "9999-12-31");
        assert_eq!(ok(0.0, true).unwrap(), "1904-01-01");
        assert_eq!(ok(43270.0, true).unwrap(), "2022-06-20");
        assert_eq!(ok(2_957_003.0, true).unwrap(), "9999-12-31");
        assert!(ok(2_957_004.0, true).unwrap_err().contains("after 9999-12-31"));
        for bad in [0.0, -1.0, 2_958_466.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300] {
            assert!(ok(bad, false).is_err(), "{bad}");
        }
        assert_eq!(ok(44732.5, false).unwrap_err(), "(2022-06-20 12:00:00) has a time of day; a date alone is expected");
        assert!(ok(-0.5, false).unwrap_err().contains("time of day"));
        assert_eq!(cell_name(0, 0), "A1");
        assert_eq!(cell_name(9, 25), "Z10");
        assert_eq!(cell_name(0, 26), "AA1");
        assert_eq!(cell_name(1_048_575, 16_383), "XFD1048576");
    }

    #[test]
    fn cell_types_other_writers_produce() {
        let text = |v: DataRef<'_>, kind| match to_slot(&v, kind, false, || "B2".into()) {
            Slot::Text(t) => Ok(t.into_owned()),
            Slot::Empty => Ok("<empty>".into()),
            Slot::Bad(k, why) => Err((k, why)),
        };
        // ISO dates (cells of type "d"): the date alone, or a problem for a time of day.
        assert_eq!(text(DataRef::DateTimeIso("2022-06-20".into()), ColumnKind::Date), Ok("2022-06-20".into()));
        assert_eq!(text(DataRef::DateTimeIso("2022-06-20T00:00:00.000".into()), ColumnKind::Date), Ok("2022-06-20".into()));
        assert_eq!(
            text(DataRef::DateTimeIso("2022-06-20T10:30:00".into()), ColumnKind::Date),
            Err((BadDate, "date cell B2 (2022-06-20T10:30:00) has a time of day; a date alone is expected".into()))
        );
        assert_eq!(text(DataRef::DateTimeIso("2022-06-20".into()), ColumnKind::Decimal).unwrap_err().0, WrongCellType);
        assert_eq!(
            text(DataRef::DurationIso("PT1H".into()), ColumnKind::Date),
            Err((WrongCellType, "cell B2 is a duration (PT1H); a date is expected".into()))
        );
        let duration = ExcelDateTime::new(1.5, ExcelDateTimeType::TimeDelta, false);
        assert_eq!(text(DataRef::DateTime(duration), ColumnKind::Date).unwrap_err().0, WrongCellType);
        // Integers and floats as text; strings trimmed.
        assert_eq!(text(DataRef::Int(-7), ColumnKind::Integer), Ok("-7".into()));
        assert_eq!(text(DataRef::Float(2022.0), ColumnKind::Integer), Ok("2022".into()));
        assert_eq!(text(DataRef::Float(-0.0), ColumnKind::Decimal), Ok("-0".into()));
        assert_eq!(text(DataRef::Float(1e21), ColumnKind::Decimal), Ok("1000000000000000000000".into()));
        assert_eq!(text(DataRef::SharedString(" a b "), ColumnKind::Text), Ok("a b".into()));
        assert_eq!(text(DataRef::Empty, ColumnKind::Text), Ok("<empty>".into()));
    }

    /// The template with one of its zip entries changed.
    fn patched_template(entry: &str, patch: impl Fn(String) -> String) -> Vec<u8> {
        use std::io::{Read, Write};
        let mut zip = zip::ZipArchive::new(Cursor::new(template_xlsx())).unwrap();
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let mut patched = false;
        for i in 0..zip.len() {
            let mut f = zip.by_index(i).unwrap();
            let name = f.name().unwrap().into_owned();
            let mut content = String::new();
            f.read_to_string(&mut content).unwrap();
            if name == entry {
                content = patch(content);
                patched = true;
            }
            out.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
            out.write_all(content.as_bytes()).unwrap();
        }
        assert!(patched, "no entry {entry}");
        out.finish().unwrap().into_inner()
    }

    #[test]
    fn regression_fuzz_overlong_cell_reference_is_a_problem_not_a_panic() {
        // Found by the import_xlsx fuzz target: calamine overflows (a panic with overflow checks)
        // on a dimension or cell reference with too many column letters.
        let swap = |from: &'static str, to: &'static str| {
            move |x: String| {
                assert!(x.contains(from), "{from} not in the sheet");
                x.replacen(from, to, 1)
            }
        };
        let dim = patched_template("xl/worksheets/sheet1.xml", swap(r#"<dimension ref="A1:M2"/>"#, r#"<dimension ref="A1:ZZZZZZZZZZ1"/>"#));
        let cell = patched_template("xl/worksheets/sheet1.xml", swap(r#"<c r="A2""#, r#"<c r="AAAAAAAAAAAAAA2""#));
        for bytes in [dim, cell] {
            let e = import_xlsx(&bytes).unwrap_err();
            if cfg!(debug_assertions) {
                assert_eq!(kinds(&e).last().unwrap().3, UnreadableWorkbook, "{e}");
                assert!(e.to_string().contains("the xlsx reader failed on malformed content (attempt to multiply with overflow)"), "{e}");
            }
        }
        // The patch itself keeps a readable workbook.
        assert_eq!(import_xlsx(&patched_template("xl/worksheets/sheet1.xml", |x| x)).unwrap().len(), 1);
    }

    #[test]
    fn regression_fuzz_declared_shared_string_count_must_fit_the_table() {
        // Found by the xlsx_parts fuzz target: calamine reserves uniqueCount strings up front.
        let sst = "xl/sharedStrings.xml";
        for count in ["1438382005764197941", "00000000000001438382005764197941", "1000000000000", "100000"] {
            let bytes = patched_template(sst, |x| {
                let at = x.find("uniqueCount=\"").unwrap() + "uniqueCount=\"".len();
                let end = at + x[at..].find('"').unwrap();
                format!("{}{count}{}", &x[..at], &x[end..])
            });
            let e = import_xlsx(&bytes).unwrap_err();
            assert_eq!(kinds(&e), vec![(None, 0, None, UnreadableWorkbook)], "{count}");
            assert!(e.problems[0].reason.contains("shared-string table declares"), "{e}");
        }
        // The template's own table, and a count that fits its size, are fine.
        let table = unzip_entry(&template_xlsx(), sst);
        assert_eq!(declared_unique_count(table.as_bytes()), Some(49));
        let fits = (table.len() as u64 / MIN_SHARED_STRING_BYTES).to_string();
        let bytes = patched_template(sst, |x| x.replacen("uniqueCount=\"49\"", &format!("uniqueCount=\"{fits}\""), 1));
        assert_eq!(import_xlsx(&bytes).unwrap().len(), 1);
        // Spacing, quotes and leading zeros as XML and calamine allow.
        assert_eq!(declared_unique_count(&b"<sst uniqueCount = '007' count=\"9\">"[..]), Some(7));
        assert_eq!(
            declared_unique_count(&b"<?xml version=\"1.0\"?><!-- <sst uniqueCount=\"5\"> --><x:sst x:uniqueCount=\"12\"/>"[..]),
            Some(12)
        );
        assert_eq!(declared_unique_count(&b"<sst count=\"3\">"[..]), None);
    }

    fn unzip_entry(bytes: &[u8], name: &str) -> String {
        use std::io::Read;
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut content = String::new();
        zip.by_name(name).unwrap().read_to_string(&mut content).unwrap();
        content
    }

    #[test]
    fn unreadable_input_is_one_clear_problem() {
        let (template, csv) = (template_xlsx(), template_csv());
        for bytes in [&b""[..], &b"not a workbook"[..], csv.as_bytes(), &template[..template.len() / 2]] {
            let e = import_xlsx(bytes).unwrap_err();
            assert_eq!(kinds(&e), vec![(None, 0, None, UnreadableWorkbook)]);
            assert!(e.problems[0].to_string().starts_with("not a readable .xlsx workbook: "), "{}", e.problems[0]);
        }
    }

    #[test]
    fn header_problems_and_empty_sheets() {
        // No sheet named monthly: the first worksheet. The header may start below and right of A1.
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        ws.set_name("Data 2022").unwrap();
        for (c, h) in COLUMNS.iter().enumerate() {
            let name = if *h == "quantity_t" { "quantity" } else { h };
            ws.write_string(2, c as u16 + 1, name).unwrap();
        }
        ws.write_string(2, 14, "unit").unwrap();
        ws.write_number(3, 1, 5).unwrap();
        let e = import_xlsx(&wb.save_to_buffer().unwrap()).unwrap_err();
        let s = Some("Data 2022");
        assert_eq!(
            kinds(&e),
            vec![(s, 3, Some("quantity"), UnknownColumn), (s, 3, Some("unit"), DuplicateColumn), (s, 3, Some("quantity_t"), MissingColumn)]
        );
        assert!(e.problems[0].to_string().starts_with("sheet 'Data 2022', row 3, column quantity: unknown column 'quantity'"));

        // An empty sheet: every column missing, as for an empty CSV file.
        let e = import_xlsx(&one_sheet("monthly", &[], &[])).unwrap_err();
        assert_eq!(e.problems.len(), 13);
        assert!(e.problems.iter().all(|p| p.sheet.as_deref() == Some("monthly") && p.row == 1 && p.kind == MissingColumn));
        // Header only: nothing, and no problem.
        assert_eq!(import_xlsx(&one_sheet("monthly", &COLUMNS, &[])).unwrap(), vec![]);
    }

    #[test]
    fn row_limit_counts_data_rows() {
        let row = |m: &'static str| vec!["E", "U", "S", "2022", m, "coal", "1", "20", "", "", "", "", "0.99"];
        let bytes = one_sheet("monthly", &COLUMNS, &[row("1"), vec![], row("2"), row("3")]);
        assert_eq!(import_with_limit(&bytes, 3).unwrap().len(), 3);
        let e = import_with_limit(&bytes, 2).unwrap_err();
        assert_eq!(kinds(&e), vec![(Some("monthly"), 5, None, TooManyRows)]);
        assert!(e.problems[0].reason.contains("MAX_ROWS = 2"));
    }

    #[test]
    fn lab_cells_of_an_unreadable_carbon_content_are_still_required() {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        write_text_rows(ws, &COLUMNS, &[vec!["E", "U", "S", "2022", "1", "coal", "1", "20", "", "", "", "", "0.99"]]);
        ws.write_formula(1, 8, Formula::new("=NA()").set_result("#N/A")).unwrap();
        let e = import_xlsx(&wb.save_to_buffer().unwrap()).unwrap_err();
        let s = Some("Sheet1");
        assert_eq!(
            kinds(&e),
            vec![
                (s, 2, Some("carbon_content_tc_per_gj"), ErrorCell),
                (s, 2, Some("lab_report_id"), EmptyCell),
                (s, 2, Some("report_date"), EmptyCell),
                (s, 2, Some("sample_date"), EmptyCell),
            ]
        );
    }
}
