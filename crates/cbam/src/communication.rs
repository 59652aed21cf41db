//! The operator's emissions communication to EU importers, following the structure of the
//! Commission's "CBAM Communication template for installations" v2.1.1 (20241213): installation
//! (A_InstData), processes (D_Processes), purchased precursors (E_PurchPrec), per-product direct
//! and indirect SEE and carbon price due (Summary_Products). ets's own rendering of that
//! structure, not the official workbook (cbam.md §5.3).
//!
//! As JSON (serde) and as an .xlsx workbook written to and read from memory; `from_xlsx` is
//! ets's importer of its own workbook (the round trip is tested).

use crate::error::{CbamError, Result};
use crate::reference::{Counts, Sector};
use crate::see::{CarbonPricePaid, InstallationInfo, InstallationInput, InstallationResult, Period};
use ets_core::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "ets-cbam-communication/1";
pub const TEMPLATE: &str =
    "CBAM Communication template for installations v2.1.1 (20241213): structure of A_InstData, D_Processes, E_PurchPrec, Summary_Products";
/// Largest workbook the importer reads.
pub const WORKBOOK_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most rows per sheet the importer reads.
pub const ROWS_MAX: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Communication {
    pub format: String,
    pub template: String,
    pub data_version: String,
    pub installation: InstallationInfo,
    pub reporting_period: Period,
    pub electricity_ef: Decimal,
    pub electricity_ef_source: String,
    pub carbon_price: Option<CarbonPricePaid>,
    pub processes: Vec<CommProcess>,
    pub precursor_uses: Vec<CommPrecursorUse>,
    pub purchased_precursors: Vec<CommPurchased>,
    pub products: Vec<CommProduct>,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommProcess {
    pub id: String,
    pub cn: String,
    pub route: Option<String>,
    pub activity_level_t: Decimal,
    pub attributed_direct_t: Decimal,
    pub electricity_mwh: Decimal,
    pub indirect_t: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommPrecursorUse {
    pub process: String,
    pub precursor: String,
    /// own, purchased, eu_origin, exempt_origin
    pub kind: String,
    pub mass_t: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommPurchased {
    pub id: String,
    pub cn: String,
    pub country: String,
    /// actual, default, eu_origin, exempt_origin
    pub basis: String,
    pub see_direct: Decimal,
    pub see_indirect: Decimal,
    pub electricity_mwh_per_t: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommProduct {
    pub process: String,
    pub cn: String,
    pub sector: Sector,
    pub counts: Counts,
    pub see_direct: Decimal,
    pub see_indirect: Decimal,
    /// What counts for CBAM (direct, plus indirect where the sector counts it).
    pub see_counted: Decimal,
    pub electricity_mwh_per_t: Decimal,
    /// Free-allocation benchmark per tonne before CBAM factor and CSCF (Column A plus precursors).
    pub benchmark_t_per_t: Option<Decimal>,
    pub carbon_price_per_t: Option<Decimal>,
    pub carbon_price_eur_per_t: Option<Decimal>,
}

impl Communication {
    pub fn build(input: &InstallationInput, result: &InstallationResult) -> Communication {
        let processes = result
            .processes
            .iter()
            .map(|p| CommProcess {
                id: p.id.clone(),
                cn: p.cn.clone(),
                route: p.route.clone(),
                activity_level_t: p.activity_level_t,
                attributed_direct_t: p.attributed_direct_t,
                electricity_mwh: p.electricity_mwh,
                indirect_t: p.indirect_t,
            })
            .collect();
        let precursor_uses = result
            .processes
            .iter()
            .flat_map(|p| {
                p.precursors.iter().map(|l| CommPrecursorUse {
                    process: p.id.clone(),
                    precursor: l.name.clone(),
                    kind: l.kind.to_string(),
                    mass_t: l.mass_t,
                })
            })
            .collect();
        let purchased_precursors = result
            .purchased
            .iter()
            .map(|p| CommPurchased {
                id: p.id.clone(),
                cn: p.cn.clone(),
                country: p.country.clone(),
                basis: p.basis.to_string(),
                see_direct: p.per_t.direct,
                see_indirect: p.per_t.indirect,
                electricity_mwh_per_t: p.per_t.electricity_mwh,
            })
            .collect();
        let products = result
            .processes
            .iter()
            .map(|p| CommProduct {
                process: p.id.clone(),
                cn: p.cn.clone(),
                sector: p.sector,
                counts: p.counts,
                see_direct: p.see.direct,
                see_indirect: p.see.indirect,
                see_counted: p.see.counted,
                electricity_mwh_per_t: p.see.electricity_mwh,
                benchmark_t_per_t: p.see.benchmark,
                carbon_price_per_t: p.carbon_price_per_t,
                carbon_price_eur_per_t: p.carbon_price_eur_per_t,
            })
            .collect();
        Communication {
            format: FORMAT.into(),
            template: TEMPLATE.into(),
            data_version: result.data_version.clone(),
            installation: input.installation.clone(),
            reporting_period: input.reporting_period,
            electricity_ef: result.electricity_ef,
            electricity_ef_source: result.electricity_ef_source.clone(),
            carbon_price: input.carbon_price.clone(),
            processes,
            precursor_uses,
            purchased_precursors,
            products,
            warnings: result.warnings.clone(),
        }
    }

    pub fn product(&self, process: &str) -> Option<&CommProduct> {
        self.products.iter().find(|p| p.process == process)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a communication serializes")
    }

    pub fn from_json(text: &str) -> Result<Communication> {
        let c: Communication =
            serde_json::from_str(text).map_err(|e| CbamError::input("communication", format!("not a valid communication: {e}")))?;
        if c.format != FORMAT {
            return Err(CbamError::input("format", format!("'{}' is not {FORMAT}", c.format)));
        }
        Ok(c)
    }
}

// ------------------------------------------------------------------------------ workbook

const SHEET_INST: &str = "A_InstData";
const SHEET_PROC: &str = "D_Processes";
const SHEET_USES: &str = "D_PrecursorUse";
const SHEET_PURCH: &str = "E_PurchPrec";
const SHEET_PRODUCTS: &str = "Summary_Products";
const SHEET_NOTES: &str = "Notes";

const PROC_COLS: [&str; 7] = ["process", "cn", "route", "activity_level_t", "attributed_direct_t", "electricity_mwh", "indirect_t"];
const USE_COLS: [&str; 4] = ["process", "precursor", "kind", "mass_t"];
const PURCH_COLS: [&str; 7] = ["precursor", "cn", "country", "basis", "see_direct", "see_indirect", "electricity_mwh_per_t"];
const PRODUCT_COLS: [&str; 11] = [
    "process",
    "cn",
    "sector",
    "counts",
    "see_direct",
    "see_indirect",
    "see_counted",
    "electricity_mwh_per_t",
    "benchmark_t_per_t",
    "carbon_price_per_t",
    "carbon_price_eur_per_t",
];

enum Cell {
    Text(String),
    Dec(Decimal),
    Empty,
}

fn t(s: &str) -> Cell {
    Cell::Text(s.to_string())
}
fn d(v: Decimal) -> Cell {
    Cell::Dec(v)
}
fn od(v: Option<Decimal>) -> Cell {
    v.map_or(Cell::Empty, Cell::Dec)
}
fn os(v: &Option<String>) -> Cell {
    v.as_deref().map_or(Cell::Empty, t)
}

fn write_cell(ws: &mut rust_xlsxwriter::Worksheet, row: u32, col: u16, cell: &Cell) -> std::result::Result<(), rust_xlsxwriter::XlsxError> {
    match cell {
        Cell::Text(s) => {
            ws.write_string(row, col, s)?;
        }
        Cell::Empty => {}
        Cell::Dec(v) => {
            // A number where the double's shortest text is the same decimal (≤ 15 significant
            // digits), text otherwise: what is read back is exactly what was written.
            let text = v.normalize().to_string();
            let digits = text.chars().filter(char::is_ascii_digit).count();
            match text.parse::<f64>() {
                Ok(f) if digits <= 15 && f.to_string().parse::<Decimal>().ok() == Some(*v) => {
                    ws.write_number(row, col, f)?;
                }
                _ => {
                    ws.write_string(row, col, &text)?;
                }
            }
        }
    }
    Ok(())
}

fn table(
    wb: &mut rust_xlsxwriter::Workbook,
    name: &str,
    header: &[&str],
    rows: &[Vec<Cell>],
) -> std::result::Result<(), rust_xlsxwriter::XlsxError> {
    let bold = rust_xlsxwriter::Format::new().set_bold();
    let ws = wb.add_worksheet();
    ws.set_name(name)?;
    for (c, h) in header.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &bold)?;
        ws.set_column_width(c as u16, 18)?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            write_cell(ws, r as u32 + 1, c as u16, cell)?;
        }
    }
    Ok(())
}

impl Communication {
    fn inst_rows(&self) -> Vec<(&'static str, Cell)> {
        let i = &self.installation;
        let cp = self.carbon_price.as_ref();
        vec![
            ("format", t(&self.format)),
            ("template", t(&self.template)),
            ("data_version", t(&self.data_version)),
            ("installation.id", t(&i.id)),
            ("installation.name", t(&i.name)),
            ("installation.country", t(&i.country)),
            ("installation.operator", t(&i.operator)),
            ("installation.address", t(&i.address)),
            ("installation.city", t(&i.city)),
            ("installation.un_locode", t(&i.un_locode)),
            ("installation.contact_email", t(&i.contact_email)),
            ("reporting_period.start", t(&self.reporting_period.start.to_string())),
            ("reporting_period.end", t(&self.reporting_period.end.to_string())),
            ("electricity_ef", d(self.electricity_ef)),
            ("electricity_ef_source", t(&self.electricity_ef_source)),
            ("carbon_price.per_t_co2e", od(cp.map(|c| c.per_t_co2e))),
            ("carbon_price.currency", cp.map_or(Cell::Empty, |c| t(&c.currency))),
            ("carbon_price.eur_per_unit", od(cp.map(|c| c.eur_per_unit))),
            ("carbon_price.instrument", cp.map_or(Cell::Empty, |c| t(&c.instrument))),
            ("carbon_price.legal_act", cp.map_or(Cell::Empty, |c| t(&c.legal_act))),
        ]
    }

    /// The communication as an .xlsx workbook (in memory).
    pub fn to_xlsx(&self) -> Result<Vec<u8>> {
        self.write_xlsx().map_err(|e| CbamError::Data(format!("writing the workbook: {e}")))
    }

    fn write_xlsx(&self) -> std::result::Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
        let mut wb = rust_xlsxwriter::Workbook::new();
        let inst: Vec<Vec<Cell>> = self.inst_rows().into_iter().map(|(k, v)| vec![t(k), v]).collect();
        table(&mut wb, SHEET_INST, &["field", "value"], &inst)?;
        let procs: Vec<Vec<Cell>> = self
            .processes
            .iter()
            .map(|p| {
                vec![
                    t(&p.id),
                    t(&p.cn),
                    os(&p.route),
                    d(p.activity_level_t),
                    d(p.attributed_direct_t),
                    d(p.electricity_mwh),
                    d(p.indirect_t),
                ]
            })
            .collect();
        table(&mut wb, SHEET_PROC, &PROC_COLS, &procs)?;
        let uses: Vec<Vec<Cell>> =
            self.precursor_uses.iter().map(|u| vec![t(&u.process), t(&u.precursor), t(&u.kind), d(u.mass_t)]).collect();
        table(&mut wb, SHEET_USES, &USE_COLS, &uses)?;
        let purch: Vec<Vec<Cell>> = self
            .purchased_precursors
            .iter()
            .map(|p| vec![t(&p.id), t(&p.cn), t(&p.country), t(&p.basis), d(p.see_direct), d(p.see_indirect), d(p.electricity_mwh_per_t)])
            .collect();
        table(&mut wb, SHEET_PURCH, &PURCH_COLS, &purch)?;
        let products: Vec<Vec<Cell>> = self
            .products
            .iter()
            .map(|p| {
                vec![
                    t(&p.process),
                    t(&p.cn),
                    t(p.sector.name()),
                    t(p.counts.name()),
                    d(p.see_direct),
                    d(p.see_indirect),
                    d(p.see_counted),
                    d(p.electricity_mwh_per_t),
                    od(p.benchmark_t_per_t),
                    od(p.carbon_price_per_t),
                    od(p.carbon_price_eur_per_t),
                ]
            })
            .collect();
        table(&mut wb, SHEET_PRODUCTS, &PRODUCT_COLS, &products)?;
        let notes: Vec<Vec<Cell>> = self.warnings.iter().map(|w| vec![t(w)]).collect();
        table(&mut wb, SHEET_NOTES, &["warning"], &notes)?;
        wb.save_to_buffer()
    }

    /// Reads a workbook written by [`Communication::to_xlsx`]. Errors name sheet, cell and reason.
    pub fn from_xlsx(bytes: &[u8]) -> Result<Communication> {
        use calamine::{Reader, Xlsx};
        if bytes.len() > WORKBOOK_BYTES_MAX {
            return Err(CbamError::input("workbook", format!("{} bytes is more than the {WORKBOOK_BYTES_MAX} read", bytes.len())));
        }
        let guarded = |f: &mut dyn FnMut() -> std::result::Result<calamine::Range<calamine::Data>, calamine::XlsxError>| {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err("the xlsx reader failed on malformed content".to_string()),
            }
        };
        let mut wb: Xlsx<_> = match std::panic::catch_unwind(|| Xlsx::new(std::io::Cursor::new(bytes))) {
            Ok(Ok(wb)) => wb,
            Ok(Err(e)) => return Err(CbamError::input("workbook", format!("not a readable .xlsx workbook: {e}"))),
            Err(_) => return Err(CbamError::input("workbook", "not a readable .xlsx workbook")),
        };
        let mut sheet = |name: &str| -> Result<Vec<Vec<String>>> {
            let range = guarded(&mut || wb.worksheet_range(name))
                .map_err(|e| CbamError::input(name, format!("sheet missing or unreadable: {e}")))?;
            let mut rows = Vec::new();
            for (r, row) in range.rows().enumerate() {
                if r > ROWS_MAX {
                    return Err(CbamError::input(name, format!("more than {ROWS_MAX} rows")));
                }
                rows.push(row.iter().map(cell_text).collect::<Vec<String>>());
            }
            Ok(rows)
        };
        let inst = sheet(SHEET_INST)?;
        let procs = sheet(SHEET_PROC)?;
        let uses = sheet(SHEET_USES)?;
        let purch = sheet(SHEET_PURCH)?;
        let products = sheet(SHEET_PRODUCTS)?;
        let notes = sheet(SHEET_NOTES)?;

        let kv = |key: &str| -> String {
            inst.iter().skip(1).find(|r| r.first().map(String::as_str) == Some(key)).and_then(|r| r.get(1).cloned()).unwrap_or_default()
        };
        let at_inst = |key: &str| format!("{SHEET_INST}!{key}");
        let dec = |field: String, text: &str| crate::num::parse(&field, text);
        let odec = |field: String, text: &str| if text.is_empty() { Ok(None) } else { crate::num::parse(&field, text).map(Some) };
        let date = |key: &str| Date::parse(&kv(key)).map_err(|e| CbamError::input(at_inst(key), e.0));
        let carbon_price = match odec(at_inst("carbon_price.per_t_co2e"), &kv("carbon_price.per_t_co2e"))? {
            None => None,
            Some(per_t) => Some(CarbonPricePaid {
                per_t_co2e: per_t,
                currency: kv("carbon_price.currency"),
                eur_per_unit: dec(at_inst("carbon_price.eur_per_unit"), &kv("carbon_price.eur_per_unit"))?,
                instrument: kv("carbon_price.instrument"),
                legal_act: kv("carbon_price.legal_act"),
            }),
        };
        let c = Communication {
            format: kv("format"),
            template: kv("template"),
            data_version: kv("data_version"),
            installation: InstallationInfo {
                id: kv("installation.id"),
                name: kv("installation.name"),
                country: kv("installation.country"),
                operator: kv("installation.operator"),
                address: kv("installation.address"),
                city: kv("installation.city"),
                un_locode: kv("installation.un_locode"),
                contact_email: kv("installation.contact_email"),
            },
            reporting_period: Period { start: date("reporting_period.start")?, end: date("reporting_period.end")? },
            electricity_ef: dec(at_inst("electricity_ef"), &kv("electricity_ef"))?,
            electricity_ef_source: kv("electricity_ef_source"),
            carbon_price,
            processes: rows(&procs, SHEET_PROC, &PROC_COLS, |r| {
                Ok(CommProcess {
                    id: r.text(0),
                    cn: r.text(1),
                    route: r.opt_text(2),
                    activity_level_t: r.dec(3)?,
                    attributed_direct_t: r.dec(4)?,
                    electricity_mwh: r.dec(5)?,
                    indirect_t: r.dec(6)?,
                })
            })?,
            precursor_uses: rows(&uses, SHEET_USES, &USE_COLS, |r| {
                Ok(CommPrecursorUse { process: r.text(0), precursor: r.text(1), kind: r.text(2), mass_t: r.dec(3)? })
            })?,
            purchased_precursors: rows(&purch, SHEET_PURCH, &PURCH_COLS, |r| {
                Ok(CommPurchased {
                    id: r.text(0),
                    cn: r.text(1),
                    country: r.text(2),
                    basis: r.text(3),
                    see_direct: r.dec(4)?,
                    see_indirect: r.dec(5)?,
                    electricity_mwh_per_t: r.dec(6)?,
                })
            })?,
            products: rows(&products, SHEET_PRODUCTS, &PRODUCT_COLS, |r| {
                Ok(CommProduct {
                    process: r.text(0),
                    cn: r.text(1),
                    sector: Sector::parse(&r.text(2)).ok_or_else(|| r.bad(2, "is not a CBAM sector"))?,
                    counts: match r.text(3).as_str() {
                        "direct" => Counts::Direct,
                        "direct_and_indirect" => Counts::DirectAndIndirect,
                        _ => return Err(r.bad(3, "must be direct or direct_and_indirect")),
                    },
                    see_direct: r.dec(4)?,
                    see_indirect: r.dec(5)?,
                    see_counted: r.dec(6)?,
                    electricity_mwh_per_t: r.dec(7)?,
                    benchmark_t_per_t: r.opt_dec(8)?,
                    carbon_price_per_t: r.opt_dec(9)?,
                    carbon_price_eur_per_t: r.opt_dec(10)?,
                })
            })?,
            warnings: notes.iter().skip(1).filter_map(|r| r.first().cloned()).filter(|w| !w.is_empty()).collect(),
        };
        if c.format != FORMAT {
            return Err(CbamError::input(
                at_inst("format"),
                format!("'{}' is not {FORMAT}: not a communication workbook written by ets", c.format),
            ));
        }
        Ok(c)
    }
}

fn cell_text(c: &calamine::Data) -> String {
    use calamine::Data;
    match c {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        // The shortest text of the double: the decimal that was written (see write_cell).
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

struct Row<'a> {
    sheet: &'a str,
    index: usize,
    cells: &'a [String],
    header: &'a [&'a str],
}

fn column_letter(c: usize) -> char {
    (b'A' + c as u8) as char
}

impl Row<'_> {
    fn text(&self, c: usize) -> String {
        self.cells.get(c).cloned().unwrap_or_default()
    }
    fn opt_text(&self, c: usize) -> Option<String> {
        Some(self.text(c)).filter(|s| !s.is_empty())
    }
    fn field(&self, c: usize) -> String {
        format!("{}!{}{} ({})", self.sheet, column_letter(c), self.index + 1, self.header[c])
    }
    fn bad(&self, c: usize, why: &str) -> CbamError {
        CbamError::input(self.field(c), format!("'{}' {why}", self.text(c)))
    }
    fn dec(&self, c: usize) -> Result<Decimal> {
        crate::num::parse(&self.field(c), &self.text(c))
    }
    fn opt_dec(&self, c: usize) -> Result<Option<Decimal>> {
        let t = self.text(c);
        if t.is_empty() {
            Ok(None)
        } else {
            crate::num::parse(&self.field(c), &t).map(Some)
        }
    }
}

fn rows<T>(table: &[Vec<String>], sheet: &str, header: &[&str], f: impl Fn(&Row<'_>) -> Result<T>) -> Result<Vec<T>> {
    let Some(first) = table.first() else {
        return Err(CbamError::input(sheet, "is empty: no header row"));
    };
    for (c, h) in header.iter().enumerate() {
        if first.get(c).map(String::as_str) != Some(*h) {
            return Err(CbamError::input(format!("{sheet}!{}1", column_letter(c)), format!("header must be '{h}'")));
        }
    }
    table
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, r)| r.iter().any(|c| !c.is_empty()))
        .map(|(i, cells)| f(&Row { sheet, index: i, cells, header }))
        .collect()
}
