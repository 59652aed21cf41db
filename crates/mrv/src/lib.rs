//! ets-mrv: the monitoring, reporting and verification (MRV) methodology library.
//!
//! A pure library: no I/O at run time, no clock, no floating point. Quantities are exact
//! [`rust_decimal::Decimal`]s in tCO2e (or the stated unit); every arithmetic step is checked
//! for overflow and every rounding is named (see [`num`]).
//!
//! What is here:
//! - [`num`]: checked arithmetic, the per-result rounding rule (6 dp, half-even) and
//!   [`num::round_whole_tonnes`] with an explicit [`num::WholeTonneRounding`] mode.
//! - [`factors`]: the versioned factor file `data/factors-v1.json` (compiled in, validated on
//!   load: every entry has a source key and a validity period; dated entries such as China's
//!   default high coal carbon content; uncertain values are flagged).
//! - [`cn_power`]: China national ETS power sector, 2022 accounting guideline (fuel combustion
//!   with measured or default carbon content, carbon content from element carbon, purchased
//!   electricity for reporting years up to 2022).
//! - [`cn_industry`]: China national ETS steel, cement and aluminium (from the 2024 vintage):
//!   combustion with measured or IPCC-fallback parameters, cement clinker process CO2 (carbonates
//!   by the clinker method, organic carbon), steel enterprise and process levels (carbonate
//!   fluxes, electrodes, carbon balance, carbon in products), aluminium anode CO2 and PFCs, the
//!   allocation intensities, and the IPCC 2006 tier-1 fallback table with a lookup by fuel name.
//! - [`eu_mrr`]: EU MRR standard combustion and process methods, mass balance (uncertain),
//!   installation categories, AVR materiality, activity-data tier check.
//! - [`pfc`]: aluminium CF4/C2F6 with a selectable GWP set (AR4, AR5, AR6).
//! - [`monthly`]: China power-sector monthly activity data ([`monthly::MonthlyRecord`]: entity,
//!   emission unit, source stream, month, fuel, quantity, NCV, measured carbon content with its
//!   lab report or missing, oxidation factor; checked constructors) and
//!   [`monthly::unit_year_emissions`]: a unit's monthly and annual emissions via [`cn_power`],
//!   with the dated default high carbon content for unmeasured months when fewer than
//!   [`monthly::MissingCarbonRule::min_measured_months`] (3) months are measured (`CHEMLINKED`).
//! - [`import`]: import of monthly activity data from CSV text (a `&str` or any reader, no
//!   file-system access): a documented template ([`import::COLUMNS`]), exact decimal parsing,
//!   every problem reported with row, column and [`import::ProblemKind`]; a file with any
//!   problem imports nothing; at most [`import::MAX_ROWS`] data rows; [`import::template_csv`].
//! - [`xlsx`]: the same import from an Excel workbook given as bytes (sheet `monthly`), through
//!   the same checks, every problem also naming its sheet; number cells read exactly from the
//!   shortest decimal of their stored value; [`xlsx::template_xlsx`] writes the template workbook.
//! - [`quality`]: the data-quality engine: named checks over one unit's year (plausible ranges
//!   per fuel from the factor data, month-on-month jumps, missing months, carbon content vs NCV,
//!   duplicate records, reused / back-dated / late lab reports, samples outside their month,
//!   default carbon used), findings with severity sorted for a regulator's queue.
//! - [`verification`]: the annual-report verification workflow as a pure state machine (steps
//!   with actor and time in, events out): submission and versioned resubmission by the entity,
//!   verifier assignment with accreditation and conflict-of-interest checks, findings
//!   (misstatements, non-conformities), an opinion computed from AVR materiality (5% / 2% by
//!   category, `[S69]`), acceptance into verified emissions or return by the authority.
//! - [`entity`]: reporting entities (sector, province, markets, representatives), their
//!   installations and emission units (generating units with capacity, category and cooling;
//!   clinker lines; aluminium electrolysis; steel processes).
//! - [`plan`]: monitoring plans (China's data-quality control plan, the EU plan with tiers):
//!   source streams, each parameter measured (standard, frequency, lab, instrument) or default
//!   (a factor key), instruments with uncertainty and calibration dates; validated against the
//!   factor data and the tier rules.
//! - [`state`]: the MRV system as one state machine (registration, versioned plans, versioned
//!   monthly submissions with evidence hashes and due dates, annual reports computed from the
//!   monthly data, the verification workflow, verified emissions) whose events the shell keeps in
//!   a hash-chained journal; and the regulator's ranked anomaly queue.
//! - [`sample`]: seeded sample data (clean monthly years, a whole MRV year with planted
//!   anomalies) for `ets demo`, benchmarks and tests.
//! - [`METHODS`]: the list of methods with their versions and source keys.
//!

pub mod cn_industry;
pub mod cn_power;
pub mod entity;
pub mod error;
pub mod eu_mrr;
pub mod factors;
pub mod import;
pub mod monthly;
pub mod num;
pub mod pfc;
pub mod plan;
pub mod quality;
pub mod sample;
pub mod state;
#[cfg(test)]
mod testgen;
pub mod verification;
pub mod xlsx;

pub use error::{MrvError, Result};
pub use factors::{Factor, FactorSet, Status};
pub use num::{round_whole_tonnes, WholeTonneRounding};

/// A named, versioned methodology and where it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MethodInfo {
    pub id: &'static str,
    pub version: u32,
    /// Source keys in the domain files.
    pub sources: &'static [&'static str],
    pub status: Status,
}

/// Every method in this crate.
pub const METHODS: &[MethodInfo] = &[
    MethodInfo {
        id: cn_power::METHOD_ID,
        version: cn_power::METHOD_VERSION,
        sources: &["GUIDE2022", "ELEC21", "CHEMLINKED", "TPF-EF"],
        status: Status::Confirmed,
    },
    MethodInfo {
        id: eu_mrr::METHOD_ID,
        version: eu_mrr::METHOD_VERSION,
        sources: &["S65", "S67", "S68", "S69"],
        status: Status::Confirmed,
    },
    MethodInfo { id: "eu.mrr.mass-balance", version: 1, sources: &["IR2547"], status: eu_mrr::MASS_BALANCE_STATUS },
    MethodInfo {
        id: pfc::METHOD_ID,
        version: pfc::METHOD_VERSION,
        sources: &["IPCC AR4 WG1", "IPCC AR5 WG1", "IPCC AR6 WG1"],
        status: Status::Confirmed,
    },
    MethodInfo {
        id: cn_industry::combustion::METHOD_ID,
        version: cn_industry::combustion::METHOD_VERSION,
        sources: &[
            "CETS-AG-03.01-2024",
            "IPCC 2006 Vol.2 Ch.1 Table 1.2",
            "IPCC 2006 Vol.2 Ch.1 Table 1.3",
            "IPCC 2006 Vol.2 Ch.1 Table 1.4",
        ],
        status: cn_industry::combustion::STATUS,
    },
    MethodInfo {
        id: cn_industry::cement::METHOD_ID,
        version: cn_industry::cement::METHOD_VERSION,
        sources: &["CN-CEMENT-2013", "IPCC 2006 Vol.3 Ch.2", "DRAFT2526"],
        status: cn_industry::cement::STATUS,
    },
    MethodInfo {
        id: cn_industry::steel::METHOD_ID,
        version: cn_industry::steel::METHOD_VERSION,
        sources: &["CETS-AG-03.01-2024", "IPCC 2006 Vol.3 Ch.2", "DRAFT2526"],
        status: cn_industry::steel::STATUS,
    },
    MethodInfo {
        id: cn_industry::aluminium::METHOD_ID,
        version: cn_industry::aluminium::METHOD_VERSION,
        sources: &["CN-ALU-2013", "IPCC 2006 Vol.3 Ch.4", "DRAFT2526", "IPCC AR4 WG1", "IPCC AR5 WG1", "IPCC AR6 WG1"],
        status: cn_industry::aluminium::STATUS,
    },
    MethodInfo {
        id: cn_industry::ipcc::METHOD_ID,
        version: cn_industry::ipcc::METHOD_VERSION,
        sources: &["IPCC 2006 Vol.2 Ch.1 Table 1.2", "IPCC 2006 Vol.2 Ch.1 Table 1.3", "IPCC 2006 Vol.2 Ch.1 Table 1.4"],
        status: cn_industry::ipcc::STATUS,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_source_is_known_to_the_factor_data() {
        let f = FactorSet::builtin().unwrap();
        for m in METHODS {
            for s in m.sources {
                assert!(f.sources.contains_key(*s), "{} cites unknown source {s}", m.id);
            }
        }
    }
}
