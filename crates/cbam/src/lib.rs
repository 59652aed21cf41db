//! ets-cbam: the EU Carbon Border Adjustment Mechanism as seen from a Chinese installation and
//! its EU importers.
//!
//! - [`reference`]: the versioned, validated reference data (`data/cbam-v1.json`): scope by CN
//!   code, CBAM factor, mark-ups, default values, benchmarks, prices, parameters.
//! - [`see`]: embedded emissions of an installation's goods (attribution, simple and complex
//!   goods with precursors, indirect emissions, cycle detection) and the free-allocation
//!   benchmark per tonne.
//! - [`liability`]: an importer's year: certificates per line (embedded − free-allocation
//!   adjustment − carbon price paid, floored at zero), prices by quarter or week, the 50 t
//!   threshold, the quarterly holding.
//! - [`carbon_price`]: the carbon price effectively paid in China's national market, read from
//!   the registry (allowances bought beyond free allocation) and a list of purchase prices.
//! - [`communication`]: the operator's communication to importers as JSON and .xlsx (with its
//!   importer); [`qreport`]: the transitional quarterly report XML; [`scenario`]: 2026–2034.
//!
//! Invariants: no I/O, no clock, no randomness; quantities, factors and money are exact
//! decimals with checked arithmetic, never binary floating point (the workbook writer turns a
//! decimal into an Excel number only where the number reads back as the same decimal). Every
//! value the sources leave open is a dated parameter with a documented default.

pub mod carbon_price;
pub mod communication;
pub mod error;
pub mod liability;
pub mod num;
pub mod qreport;
pub mod reference;
pub mod scenario;
pub mod see;

pub use error::{CbamError, Result};
pub use reference::Reference;
