//! Import of monthly activity data ([`MonthlyRecord`]) from CSV text.
//!
//! The input is text (a `&str` via [`import_str`] or any [`std::io::Read`] via
//! [`import_reader`]); this module never opens files. The same template and the same checks
//! apply to Excel workbooks ([`crate::xlsx`]): both importers hand rows of cell texts to one
//! validator.
//!
//! ## Template
//!
//! The first row is a header naming the [`COLUMNS`], each exactly once, in any order (names are
//! case-sensitive; surrounding spaces and a UTF-8 byte-order mark are ignored). Example:
//!
//! ```text
//! entity,unit,source_stream,year,month,fuel,quantity_t,ncv_gj_per_t,carbon_content_tc_per_gj,lab_report_id,report_date,sample_date,oxidation_factor
//! ENT-1,U1,coal-1,2022,5,coal,100000,20.5,0.0270,LAB-2205,2022-06-20,2022-05-10,0.99
//! ENT-1,U1,coal-1,2022,6,coal,98000.5,20.1,,,,,0.99
//! ```
//!
//! | column | meaning | rule |
//! |---|---|---|
//! | `entity` | reporting entity | required text |
//! | `unit` | emission unit id | required text |
//! | `source_stream` | source stream (fuel feed) | required text |
//! | `year` | reporting year | integer 1900–9999 |
//! | `month` | calendar month | integer 1–12 |
//! | `fuel` | `coal`, `natural_gas`, `fuel_oil` or `diesel` | required |
//! | `quantity_t` | fuel burned, t | decimal ≥ 0 |
//! | `ncv_gj_per_t` | net calorific value, GJ/t | decimal > 0 |
//! | `carbon_content_tc_per_gj` | measured carbon content, tC/GJ | decimal > 0; **empty = not measured** |
//! | `lab_report_id` | lab report of the measurement | required if measured, empty otherwise |
//! | `report_date` | date of the lab report, `YYYY-MM-DD` | required if measured, empty otherwise |
//! | `sample_date` | date the sample was taken, `YYYY-MM-DD` | required if measured, empty otherwise |
//! | `oxidation_factor` | oxidation factor | decimal in (0, 1] |
//!
//! The same table is [`COLUMN_HELP`]; [`template_csv`] writes the header and an example row.
//!
//! Numbers are parsed exactly as [`Decimal`] from their text (never through binary floating
//! point): digits with an optional leading `-` and an optional `.` followed by digits
//! (`0.0270` keeps its four places). No exponent, `+`, thousands separators or leading `.`.
//! Cells are trimmed of surrounding spaces. Blank lines are skipped and not counted.
//!
//! ## Errors
//!
//! All rows are validated before anything is returned, and every problem is reported as an
//! [`ImportProblem`] with its row (1-based, the header is row 1, counting CSV records), column
//! and [`ProblemKind`] (and, for a workbook, its sheet). A file with any problem imports nothing ([`ImportErrors`]). Header
//! problems (unknown, missing or duplicate columns) stop the import before the data rows are
//! read. At most [`MAX_ROWS`] data rows are accepted.

use crate::monthly::{Carbon, Fuel, LabMeasurement, MonthlyRecord, RecordFields, YearMonth};
use ets_core::Date;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::str::FromStr;

/// Largest number of data rows (header not counted) one import accepts.
pub const MAX_ROWS: usize = 1_000_000;

/// The template's columns, in the recommended order.
pub const COLUMNS: [&str; 13] = [
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
    "oxidation_factor",
];

const ENTITY: usize = 0;
const UNIT: usize = 1;
const STREAM: usize = 2;
const YEAR: usize = 3;
const MONTH: usize = 4;
const FUEL: usize = 5;
const QUANTITY: usize = 6;
const NCV: usize = 7;
const CARBON: usize = 8;
const LAB_ID: usize = 9;
const REPORT_DATE: usize = 10;
const SAMPLE_DATE: usize = 11;
const OXIDATION: usize = 12;

/// What a column holds; decides how a typed spreadsheet cell becomes text (see [`crate::xlsx`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    Text,
    Integer,
    Decimal,
    Date,
}

/// The kind of each of [`COLUMNS`].
pub(crate) const KINDS: [ColumnKind; 13] = {
    use ColumnKind::*;
    [Text, Text, Text, Integer, Integer, Text, Decimal, Decimal, Decimal, Text, Date, Date, Decimal]
};

/// The documentation of one template column (the table in the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnHelp {
    pub name: &'static str,
    pub meaning: &'static str,
    pub rule: &'static str,
}

/// The meaning and rule of each of [`COLUMNS`], in the same order (for templates and help texts).
pub const COLUMN_HELP: [ColumnHelp; 13] = [
    ColumnHelp { name: "entity", meaning: "reporting entity", rule: "required text" },
    ColumnHelp { name: "unit", meaning: "emission unit id", rule: "required text" },
    ColumnHelp { name: "source_stream", meaning: "source stream (fuel feed)", rule: "required text" },
    ColumnHelp { name: "year", meaning: "reporting year", rule: "integer 1900-9999" },
    ColumnHelp { name: "month", meaning: "calendar month", rule: "integer 1-12" },
    ColumnHelp { name: "fuel", meaning: "fuel burned", rule: "required: coal, natural_gas, fuel_oil or diesel" },
    ColumnHelp { name: "quantity_t", meaning: "fuel burned, t", rule: "decimal >= 0" },
    ColumnHelp { name: "ncv_gj_per_t", meaning: "net calorific value, GJ/t", rule: "decimal > 0" },
    ColumnHelp { name: "carbon_content_tc_per_gj", meaning: "measured carbon content, tC/GJ", rule: "decimal > 0; empty = not measured" },
    ColumnHelp { name: "lab_report_id", meaning: "lab report of the measurement", rule: "required if measured, empty otherwise" },
    ColumnHelp { name: "report_date", meaning: "date of the lab report, YYYY-MM-DD", rule: "required if measured, empty otherwise" },
    ColumnHelp { name: "sample_date", meaning: "date the sample was taken, YYYY-MM-DD", rule: "required if measured, empty otherwise" },
    ColumnHelp { name: "oxidation_factor", meaning: "oxidation factor", rule: "decimal in (0, 1]" },
];

/// The template's example row, in [`COLUMNS`] order (a measured month).
pub(crate) const EXAMPLE_ROW: [&str; 13] =
    ["ENT-1", "U1", "coal-1", "2022", "5", "coal", "100000", "20.5", "0.0270", "LAB-2205", "2022-06-20", "2022-05-10", "0.99"];

/// The CSV template: the header and one example row, each ending with a newline.
pub fn template_csv() -> String {
    format!("{}\n{}\n", COLUMNS.join(","), EXAMPLE_ROW.join(","))
}

/// The column of a duplicate-row problem: the key that must be unique.
pub const DUPLICATE_KEY_COLUMNS: &str = "unit, source_stream, year, month";

/// What is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// A header cell that is not one of [`COLUMNS`].
    UnknownColumn,
    /// A column of [`COLUMNS`] missing from the header (also for an empty input).
    MissingColumn,
    /// A column named twice in the header.
    DuplicateColumn,
    /// The CSV text itself cannot be read (bad quoting, invalid UTF-8, read failure).
    MalformedCsv,
    /// The input is not a readable .xlsx workbook (not a zip archive, corrupt or encrypted, no
    /// worksheet, malformed worksheet XML).
    UnreadableWorkbook,
    /// A data row with a different number of cells than the header.
    WrongCellCount,
    /// A spreadsheet cell with a value in a column whose header cell is empty.
    CellWithoutColumn,
    /// A spreadsheet cell holding an error value (`#DIV/0!`, `#N/A`, `#REF!`, ...).
    ErrorCell,
    /// A spreadsheet cell whose type does not fit the column: a TRUE/FALSE cell, a date or time
    /// outside a date column, a duration.
    WrongCellType,
    /// A required cell is empty.
    EmptyCell,
    /// Text that is not a plain decimal number, or too many digits to hold exactly.
    MalformedNumber,
    /// Year or month text that is not an integer.
    MalformedInteger,
    /// A negative quantity.
    Negative,
    /// A value that must be greater than zero (NCV, carbon content, oxidation factor).
    NotPositive,
    /// An oxidation factor greater than 1.
    OxidationFactorAboveOne,
    /// A month outside 1–12.
    MonthOutOfRange,
    /// A year outside 1900–9999.
    YearOutOfRange,
    /// A date that is not a calendar date written `YYYY-MM-DD` (or, in a spreadsheet, a date cell
    /// with a time of day or outside 1900-01-01 to 9999-12-31).
    BadDate,
    /// A fuel other than `coal`, `natural_gas`, `fuel_oil`, `diesel`.
    UnknownFuel,
    /// Text with control characters.
    BadText,
    /// Lab report id or dates given although the carbon content is empty (not measured).
    UnexpectedLabData,
    /// A second row for the same (unit, source stream, year, month).
    DuplicateRow,
    /// More than [`MAX_ROWS`] data rows.
    TooManyRows,
    /// The record constructor refused the row (should not happen after the checks above).
    Rejected,
}

/// One problem in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportProblem {
    /// The worksheet of an .xlsx import; `None` for CSV, and for a workbook that cannot be read
    /// at all.
    pub sheet: Option<String>,
    /// CSV: the 1-based record number, the header is row 1. Excel: the worksheet's row number
    /// as Excel shows it. 0 when the problem is about the whole input (an unreadable workbook).
    pub row: u64,
    /// The column name; `None` when the problem is about the whole row or input.
    pub column: Option<String>,
    pub kind: ProblemKind,
    /// Human-readable reason, including the offending value.
    pub reason: String,
}

impl fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(s) = &self.sheet {
            write!(f, "sheet '{s}'")?;
            sep = ", ";
        }
        if self.row > 0 {
            write!(f, "{sep}row {}", self.row)?;
            sep = ", ";
        }
        if let Some(c) = &self.column {
            write!(f, "{sep}column {c}")?;
            sep = ", ";
        }
        if !sep.is_empty() {
            f.write_str(": ")?;
        }
        f.write_str(&self.reason)
    }
}

/// Every problem found; nothing was imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportErrors {
    pub problems: Vec<ImportProblem>,
}

impl fmt::Display for ImportErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "import refused, nothing imported: {} problem(s)", self.problems.len())?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ImportErrors {}

/// Imports CSV text. Either every row (in input order) or every problem.
pub fn import_str(text: &str) -> Result<Vec<MonthlyRecord>, ImportErrors> {
    import_reader(text.as_bytes())
}

/// Imports CSV from a reader. Either every row (in input order) or every problem.
pub fn import_reader(input: impl Read) -> Result<Vec<MonthlyRecord>, ImportErrors> {
    import_with_limit(input, MAX_ROWS)
}

fn import_with_limit(input: impl Read, max_rows: usize) -> Result<Vec<MonthlyRecord>, ImportErrors> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(input);
    let mut v = Validator::new(None, max_rows);
    let mut rec = csv::StringRecord::new();

    let header_ok = match rdr.read_record(&mut rec) {
        Ok(true) => true,
        Ok(false) => false,
        Err(e) => {
            v.problem(1, None, ProblemKind::MalformedCsv, format!("cannot read the header: {e}"));
            return v.finish();
        }
    };
    let names = rec.iter().enumerate().map(|(i, name)| (i, if i == 0 { name.trim_start_matches('\u{feff}').trim() } else { name }));
    // An empty input has no header cells: every column is reported missing.
    let Some(pos) = v.header(1, names.take(if header_ok { usize::MAX } else { 0 })) else {
        return v.finish();
    };
    let width = rec.len();

    let mut row: u64 = 1;
    loop {
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                row += 1;
                let io = matches!(e.kind(), csv::ErrorKind::Io(_));
                v.problem(row, None, ProblemKind::MalformedCsv, format!("cannot read the row: {e}"));
                if io {
                    break;
                }
                continue;
            }
        }
        row += 1;
        if !v.admit_row(row) {
            break;
        }
        if rec.len() != width {
            v.problem(row, None, ProblemKind::WrongCellCount, format!("{} cells, but the header has {width}", rec.len()));
            continue;
        }
        v.row(row, pos.map(|i| Cell::Text(&rec[i])));
    }
    v.finish()
}

/// One cell as an importer hands it to the [`Validator`]: its text (trimmed), or why no text
/// could be read from it (reported as it stands; the cell is not checked further).
pub(crate) enum Cell<'a> {
    Text(&'a str),
    Unreadable(ProblemKind, String),
}

/// The checks shared by every input format: header, row limit, cell rules, duplicate rows.
/// An importer feeds it the header, then each data row's cells in [`COLUMNS`] order.
pub(crate) struct Validator {
    sheet: Option<String>,
    max_rows: usize,
    data_rows: usize,
    problems: Vec<ImportProblem>,
    seen: HashMap<(String, String, YearMonth), u64>,
    out: Vec<MonthlyRecord>,
}

impl Validator {
    pub(crate) fn new(sheet: Option<String>, max_rows: usize) -> Validator {
        Validator { sheet, max_rows, data_rows: 0, problems: Vec::new(), seen: HashMap::new(), out: Vec::new() }
    }

    pub(crate) fn problem(&mut self, row: u64, column: Option<&str>, kind: ProblemKind, reason: String) {
        self.problems.push(ImportProblem { sheet: self.sheet.clone(), row, column: column.map(str::to_string), kind, reason });
    }

    fn cell(&mut self, row: u64, col: usize, kind: ProblemKind, reason: String) {
        self.problem(row, Some(COLUMNS[col]), kind, reason);
    }

    /// Checks the header cells, given as (position in the row, name). Returns where each of
    /// [`COLUMNS`] is, or `None` after reporting every header problem: the rows under a wrong
    /// header are not worth checking.
    pub(crate) fn header<'a>(&mut self, row: u64, names: impl IntoIterator<Item = (usize, &'a str)>) -> Option<[usize; 13]> {
        let before = self.problems.len();
        let mut pos: [Option<usize>; 13] = [None; 13];
        for (i, name) in names {
            match COLUMNS.iter().position(|c| *c == name) {
                Some(c) if pos[c].is_some() => {
                    self.problem(row, Some(name), ProblemKind::DuplicateColumn, "column named more than once".into())
                }
                Some(c) => pos[c] = Some(i),
                None => self.problem(
                    row,
                    Some(name),
                    ProblemKind::UnknownColumn,
                    format!("unknown column '{name}'; the template's columns are: {}", COLUMNS.join(", ")),
                ),
            }
        }
        for (c, p) in pos.iter().enumerate() {
            if p.is_none() {
                self.cell(row, c, ProblemKind::MissingColumn, "required column missing from the header".into());
            }
        }
        if self.problems.len() != before {
            return None;
        }
        Some(pos.map(|p| p.expect("checked above")))
    }

    /// Counts one more data row; `false` (after reporting) once there are more than the limit,
    /// and the importer stops reading.
    pub(crate) fn admit_row(&mut self, row: u64) -> bool {
        self.data_rows += 1;
        if self.data_rows > self.max_rows {
            let max = self.max_rows;
            self.problem(
                row,
                None,
                ProblemKind::TooManyRows,
                format!("more than MAX_ROWS = {max} data rows; split the input into smaller files"),
            );
            return false;
        }
        true
    }

    /// Either every record or every problem.
    pub(crate) fn finish(self) -> Result<Vec<MonthlyRecord>, ImportErrors> {
        if self.problems.is_empty() {
            Ok(self.out)
        } else {
            Err(ImportErrors { problems: self.problems })
        }
    }

    /// Checks one data row (cells in [`COLUMNS`] order), records its problems, and keeps the
    /// record if it has none.
    pub(crate) fn row(&mut self, row: u64, cells: [Cell<'_>; 13]) {
        let before = self.problems.len();
        let mut c: [Option<&str>; 13] = [None; 13];
        for (col, cell) in cells.iter().enumerate() {
            match cell {
                Cell::Text(t) => c[col] = Some(t),
                Cell::Unreadable(kind, reason) => self.cell(row, col, *kind, reason.clone()),
            }
        }
        let fields = self.check_row(row, &c);
        if self.problems.len() != before {
            return;
        }
        let Some(fields) = fields else {
            self.problem(row, None, ProblemKind::Rejected, "the row has a value that could not be read".into());
            return;
        };
        match MonthlyRecord::new(fields) {
            Ok(r) => self.out.push(r),
            Err(e) => self.problem(row, None, ProblemKind::Rejected, e.to_string()),
        }
    }

    /// The cell rules. A `None` cell was unreadable and is already reported: it is skipped.
    fn check_row(&mut self, row: u64, c: &[Option<&str>; 13]) -> Option<RecordFields> {
        let entity = self.text_cell(row, ENTITY, c[ENTITY]);
        let unit = self.text_cell(row, UNIT, c[UNIT]);
        let stream = self.text_cell(row, STREAM, c[STREAM]);

        let year = self.int_cell(row, YEAR, c[YEAR]).and_then(|y| {
            if (1900..=9999).contains(&y) {
                Some(y as i32)
            } else {
                self.cell(row, YEAR, ProblemKind::YearOutOfRange, format!("{y} must be between 1900 and 9999"));
                None
            }
        });
        let month = self.int_cell(row, MONTH, c[MONTH]).and_then(|m| {
            if (1..=12).contains(&m) {
                Some(m as u32)
            } else {
                self.cell(row, MONTH, ProblemKind::MonthOutOfRange, format!("{m} must be between 1 and 12"));
                None
            }
        });
        let fuel = match c[FUEL] {
            None => None,
            Some("") => {
                self.cell(row, FUEL, ProblemKind::EmptyCell, "required value is empty".into());
                None
            }
            Some(v) => match Fuel::from_str(v) {
                Ok(f) => Some(f),
                Err(_) => {
                    self.cell(row, FUEL, ProblemKind::UnknownFuel, format!("'{v}' must be one of coal, natural_gas, fuel_oil, diesel"));
                    None
                }
            },
        };

        let quantity = self.dec_cell(row, QUANTITY, c[QUANTITY]).and_then(|q| {
            if q.is_sign_negative() && !q.is_zero() {
                self.cell(row, QUANTITY, ProblemKind::Negative, format!("{q} must not be negative"));
                None
            } else {
                Some(q)
            }
        });
        let ncv = self.dec_cell(row, NCV, c[NCV]).and_then(|v| self.positive(row, NCV, v));
        let oxidation = self.dec_cell(row, OXIDATION, c[OXIDATION]).and_then(|v| self.positive(row, OXIDATION, v)).and_then(|v| {
            if v > Decimal::ONE {
                self.cell(row, OXIDATION, ProblemKind::OxidationFactorAboveOne, format!("{v} must not be greater than 1"));
                None
            } else {
                Some(v)
            }
        });

        // Carbon content and its lab evidence. An unreadable carbon cell was meant to hold a
        // measurement, so its lab cells are still required.
        let carbon = if c[CARBON] == Some("") {
            for col in [LAB_ID, REPORT_DATE, SAMPLE_DATE] {
                if let Some(v) = c[col].filter(|v| !v.is_empty()) {
                    self.cell(
                        row,
                        col,
                        ProblemKind::UnexpectedLabData,
                        format!("'{v}' given but carbon_content_tc_per_gj is empty (not measured); leave it empty"),
                    );
                }
            }
            Some(Carbon::Missing)
        } else {
            let cc = self.dec_cell(row, CARBON, c[CARBON]).and_then(|v| self.positive(row, CARBON, v));
            let id = self.text_cell(row, LAB_ID, c[LAB_ID]);
            let report = self.date_cell(row, REPORT_DATE, c[REPORT_DATE]);
            let sample = self.date_cell(row, SAMPLE_DATE, c[SAMPLE_DATE]);
            match (cc, id, report, sample) {
                (Some(cc), Some(id), Some(report), Some(sample)) => match LabMeasurement::new(cc, id, report, sample) {
                    Ok(m) => Some(Carbon::Measured(m)),
                    Err(e) => {
                        self.cell(row, CARBON, ProblemKind::Rejected, e.to_string());
                        None
                    }
                },
                _ => None,
            }
        };

        let ym = match (year, month) {
            (Some(y), Some(m)) => YearMonth::new(y, m).ok(),
            _ => None,
        };
        if let (Some(unit), Some(stream), Some(ym)) = (&unit, &stream, ym) {
            let key = (unit.clone(), stream.clone(), ym);
            if let Some(first) = self.seen.get(&key) {
                let reason = format!("unit '{unit}', source stream '{stream}', month {ym} already given in row {first}");
                self.problem(row, Some(DUPLICATE_KEY_COLUMNS), ProblemKind::DuplicateRow, reason);
            } else {
                self.seen.insert(key, row);
            }
        }

        Some(RecordFields {
            entity: entity?,
            unit: unit?,
            source_stream: stream?,
            month: ym?,
            fuel: fuel?,
            quantity_t: quantity?,
            ncv_gj_per_t: ncv?,
            carbon: carbon?,
            oxidation_factor: oxidation?,
        })
    }

    fn text_cell(&mut self, row: u64, col: usize, v: Option<&str>) -> Option<String> {
        let v = v?;
        if v.is_empty() {
            self.cell(row, col, ProblemKind::EmptyCell, "required value is empty".into());
            None
        } else if v.chars().any(char::is_control) {
            self.cell(row, col, ProblemKind::BadText, format!("'{}' contains control characters", v.escape_debug()));
            None
        } else {
            Some(v.to_string())
        }
    }

    fn positive(&mut self, row: u64, col: usize, v: Decimal) -> Option<Decimal> {
        if v > Decimal::ZERO {
            Some(v)
        } else {
            self.cell(row, col, ProblemKind::NotPositive, format!("{v} must be greater than zero"));
            None
        }
    }

    fn int_cell(&mut self, row: u64, col: usize, v: Option<&str>) -> Option<i64> {
        let v = v?;
        if v.is_empty() {
            self.cell(row, col, ProblemKind::EmptyCell, "required value is empty".into());
            return None;
        }
        let digits = v.strip_prefix('-').unwrap_or(v);
        match v.parse::<i64>() {
            Ok(n) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => {
                self.cell(row, col, ProblemKind::MalformedInteger, format!("'{v}' is not a whole number"));
                None
            }
        }
    }

    fn date_cell(&mut self, row: u64, col: usize, v: Option<&str>) -> Option<Date> {
        let v = v?;
        if v.is_empty() {
            self.cell(row, col, ProblemKind::EmptyCell, "required value is empty when a carbon content is given".into());
            return None;
        }
        match Date::parse(v) {
            Ok(d) => Some(d),
            Err(e) => {
                self.cell(row, col, ProblemKind::BadDate, e.to_string());
                None
            }
        }
    }

    fn dec_cell(&mut self, row: u64, col: usize, v: Option<&str>) -> Option<Decimal> {
        let v = v?;
        if v.is_empty() {
            self.cell(row, col, ProblemKind::EmptyCell, "required value is empty".into());
            return None;
        }
        match parse_decimal(v) {
            Ok(d) => Some(d),
            Err(why) => {
                self.cell(row, col, ProblemKind::MalformedNumber, format!("'{v}' {why}"));
                None
            }
        }
    }
}

/// Exact decimal from text: `-?digits(.digits)?`, refused if it cannot be held without rounding.
pub fn parse_decimal(s: &str) -> Result<Decimal, &'static str> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err("is not a plain decimal number (digits, optional leading '-' and '.', e.g. 0.0270)");
    }
    let too_long = "has too many digits to be held exactly (at most 28 significant digits)";
    let d = Decimal::from_str(s).map_err(|_| too_long)?;
    if d.scale() as usize != frac.map_or(0, str::len) {
        return Err(too_long);
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::{d, day};
    use ProblemKind::*;

    const HEADER: &str = "entity,unit,source_stream,year,month,fuel,quantity_t,ncv_gj_per_t,carbon_content_tc_per_gj,lab_report_id,report_date,sample_date,oxidation_factor";

    fn file(rows: &[&str]) -> String {
        let mut s = String::from(HEADER);
        for r in rows {
            s.push('\n');
            s.push_str(r);
        }
        s.push('\n');
        s
    }

    fn kinds(e: &ImportErrors) -> Vec<(u64, Option<&str>, ProblemKind)> {
        e.problems.iter().map(|p| (p.row, p.column.as_deref(), p.kind)).collect()
    }

    #[test]
    fn valid_file_imports_every_row_exactly() {
        let text = file(&[
            "ENT-1,U1,coal-1,2022,5,coal,100000,20.5,0.0270,LAB-2205,2022-06-20,2022-05-10,0.99",
            "ENT-1,U1,coal-1,2022,6,coal,98000.5,20.1,,,,,0.99",
            "ENT-1, U1 ,gas,2022,12,natural_gas,0,48.00,0.01530,LAB-G12,2023-01-05,2022-12-15,1",
        ]);
        let recs = import_str(&text).unwrap();
        assert_eq!(recs.len(), 3);
        let r = &recs[0];
        assert_eq!((r.entity(), r.unit(), r.source_stream(), r.fuel()), ("ENT-1", "U1", "coal-1", Fuel::Coal));
        assert_eq!(r.month(), YearMonth::new(2022, 5).unwrap());
        assert_eq!(r.quantity_t(), d("100000"));
        let lab = r.measurement().unwrap();
        assert_eq!(lab.cc_tc_per_gj().to_string(), "0.0270");
        assert_eq!(lab.cc_tc_per_gj().scale(), 4);
        assert_eq!((lab.report_id(), lab.report_date(), lab.sample_date()), ("LAB-2205", day(2022, 6, 20), day(2022, 5, 10)));
        assert_eq!(recs[1].carbon(), &Carbon::Missing);
        assert_eq!(recs[1].quantity_t().to_string(), "98000.5");
        assert_eq!(recs[2].unit(), "U1");
        assert_eq!(recs[2].ncv_gj_per_t().to_string(), "48.00");
        assert_eq!(recs[2].oxidation_factor(), Decimal::ONE);
        // Same via a reader, and with columns in another order.
        assert_eq!(import_reader(text.as_bytes()).unwrap(), recs);
        let reordered = "oxidation_factor,entity,unit,source_stream,year,month,fuel,quantity_t,ncv_gj_per_t,carbon_content_tc_per_gj,lab_report_id,report_date,sample_date\n0.99,ENT-1,U1,coal-1,2022,6,coal,98000.5,20.1,,,,\n";
        assert_eq!(import_str(reordered).unwrap(), vec![recs[1].clone()]);
    }

    #[test]
    fn exact_decimal_parsing() {
        assert_eq!(parse_decimal("0.0270").unwrap().to_string(), "0.0270");
        assert_eq!(parse_decimal("0.1").unwrap(), Decimal::new(1, 1));
        assert_eq!(parse_decimal("-12.50").unwrap().to_string(), "-12.50");
        assert_eq!(parse_decimal("79228162514264337593543950335").unwrap(), Decimal::MAX);
        assert_eq!(parse_decimal("0.1234567890123456789012345678").unwrap().scale(), 28);
        for bad in ["1e3", "+1", "1,000", "1_000", ".5", "5.", "", "-", "abc", "1.2.3", "NaN", "0x10"] {
            assert!(parse_decimal(bad).unwrap_err().contains("plain decimal"), "{bad}");
        }
        // Would need rounding: refused.
        assert!(parse_decimal("0.12345678901234567890123456789").unwrap_err().contains("exactly"));
        assert_eq!(parse_decimal("12345678901234567890.123456789").unwrap().to_string(), "12345678901234567890.123456789");
        assert!(parse_decimal("79228162514264337593543950336").unwrap_err().contains("exactly"));
        assert!(parse_decimal("99999999999999999999.999999999").unwrap_err().contains("exactly"));
    }

    #[test]
    fn every_problem_in_every_row_is_reported_and_nothing_imported() {
        let text = file(&[
            "ENT-1,U1,coal-1,2022,1,coal,100000,20.5,0.0270,LAB-1,2022-02-10,2022-01-10,0.99", // row 2: fine
            "ENT-1,U1,coal-1,2022,13,coal,-5,20.5,0.0270,LAB-2,2022-02-30,2022-01-10,1.2",     // row 3
            ",U1,coal-1,2022,2,peat,1e5,0,,LAB-3,,,0.99",                                      // row 4
            "ENT-1,U1,coal-1,2022,1,coal,100,20,,,,,0.99",                                     // row 5: duplicate of 2
            "ENT-1,U1,coal-1,20x2,3,coal,100,20,0.027,,2022/04/01,,0",                         // row 6
            "ENT-1,U1,coal-1,2022,4,coal",                                                     // row 7
            "ENT-1,U1,coal-1,1800,5,diesel,1.0,abc,-0.01,LAB-5,2022-06-01,2022-05-01,0.98",    // row 8
        ]);
        let e = import_str(&text).unwrap_err();
        let dup = Some(DUPLICATE_KEY_COLUMNS);
        assert_eq!(
            kinds(&e),
            vec![
                (3, Some("month"), MonthOutOfRange),
                (3, Some("quantity_t"), Negative),
                (3, Some("oxidation_factor"), OxidationFactorAboveOne),
                (3, Some("report_date"), BadDate),
                (4, Some("entity"), EmptyCell),
                (4, Some("fuel"), UnknownFuel),
                (4, Some("quantity_t"), MalformedNumber),
                (4, Some("ncv_gj_per_t"), NotPositive),
                (4, Some("lab_report_id"), UnexpectedLabData),
                (5, dup, DuplicateRow),
                (6, Some("year"), MalformedInteger),
                (6, Some("oxidation_factor"), NotPositive),
                (6, Some("lab_report_id"), EmptyCell),
                (6, Some("report_date"), BadDate),
                (6, Some("sample_date"), EmptyCell),
                (7, None, WrongCellCount),
                (8, Some("year"), YearOutOfRange),
                (8, Some("ncv_gj_per_t"), MalformedNumber),
                (8, Some("carbon_content_tc_per_gj"), NotPositive),
            ]
        );
        let msgs: Vec<String> = e.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(msgs[0], "row 3, column month: 13 must be between 1 and 12");
        assert_eq!(msgs[1], "row 3, column quantity_t: -5 must not be negative");
        assert_eq!(msgs[2], "row 3, column oxidation_factor: 1.2 must not be greater than 1");
        assert_eq!(msgs[3], "row 3, column report_date: 2022-02-30 is not a calendar date");
        assert_eq!(
            msgs[9],
            "row 5, column unit, source_stream, year, month: unit 'U1', source stream 'coal-1', month 2022-01 already given in row 2"
        );
        assert_eq!(msgs[15], "row 7: 6 cells, but the header has 13");
        assert!(e.to_string().starts_with("import refused, nothing imported: 19 problem(s)\n  row 3, column month"));
    }

    #[test]
    fn header_problems() {
        // Unknown, duplicate and missing columns, all reported on row 1.
        let text = "entity,unit,source_stream,year,month,fuel,quantity,ncv_gj_per_t,carbon_content_tc_per_gj,lab_report_id,report_date,sample_date,unit\nE,U,S,2022,1,coal,1,1,,,,,1\n";
        let e = import_str(text).unwrap_err();
        assert_eq!(
            kinds(&e),
            vec![
                (1, Some("quantity"), UnknownColumn),
                (1, Some("unit"), DuplicateColumn),
                (1, Some("quantity_t"), MissingColumn),
                (1, Some("oxidation_factor"), MissingColumn),
            ]
        );
        assert!(e.problems[0].reason.contains("the template's columns are: entity, unit"));
        // Empty input: every column is missing.
        let e = import_str("").unwrap_err();
        assert_eq!(e.problems.len(), 13);
        assert!(e.problems.iter().all(|p| p.row == 1 && p.kind == MissingColumn));
        // Header only: no records, no problems. A BOM and spaces around names are accepted.
        assert_eq!(import_str(&format!("\u{feff}{}\n", HEADER.replace(',', " , "))).unwrap(), vec![]);
        // Names are case-sensitive.
        let e = import_str(&HEADER.replace("entity", "Entity")).unwrap_err();
        assert_eq!(kinds(&e), vec![(1, Some("Entity"), UnknownColumn), (1, Some("entity"), MissingColumn)]);
    }

    #[test]
    fn row_limit_is_enforced_and_named() {
        let rows: Vec<String> = (1..=4).map(|m| format!("E,U,S,2022,{m},coal,1,20,,,,,0.99")).collect();
        let text = file(&rows.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(import_with_limit(text.as_bytes(), 4).unwrap().len(), 4);
        let e = import_with_limit(text.as_bytes(), 3).unwrap_err();
        assert_eq!(kinds(&e), vec![(5, None, TooManyRows)]);
        assert!(e.problems[0].reason.contains("MAX_ROWS = 3"));
        assert_eq!(MAX_ROWS, 1_000_000);
    }

    #[test]
    fn malformed_csv_and_control_characters() {
        let text = file(&["E,U,S,2022,1,coal,1,20,,,,,0.99", "\"E\u{1},U,S,2022,2,coal,1,20,,,,,0.99\""]);
        let e = import_str(&text).unwrap_err();
        assert_eq!(kinds(&e), vec![(3, None, WrongCellCount)]);
        let text = file(&["E\u{1},U,S,2022,1,coal,1,20,,,,,0.99"]);
        assert_eq!(kinds(&import_str(&text).unwrap_err()), vec![(2, Some("entity"), BadText)]);
        let mut bytes = file(&["E,U,S,2022,1,coal,1,20,,,,,0.99"]).into_bytes();
        bytes.extend_from_slice(b"E,U,S,2022,2,co\xffal,1,20,,,,,0.99\n");
        assert_eq!(kinds(&import_reader(bytes.as_slice()).unwrap_err()), vec![(3, None, MalformedCsv)]);
    }
}
