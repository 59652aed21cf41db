//! China national ETS, power generation facilities: the 2022 accounting guideline.
//!
//! Method id [`METHOD_ID`], version [`METHOD_VERSION`]. Sources: `[GUIDE2022]` (guideline,
//! effective 2023-01-01), `[ELEC21]` (formula structure), `[CHEMLINKED]` (default high carbon
//! content), `[TPF-EF]` (grid factor) — china-ets.md section 5, worked example 15.
//!
//! - `E_fuel = Σ FC_i × NCV_i × CC_i × OF_i × 44/12`
//! - `CC_coal = C_element / NCV`
//! - `E_elec = AD_elec × EF_grid`, counted only for reporting years up to
//!   [`LAST_YEAR_PURCHASED_ELECTRICITY_COUNTS`].
//!
//! **44/12:** the carbon mass `FC × NCV × CC × OF` (tC) is computed exactly, multiplied by 44,
//! and divided by 12 as the last step; the quotient is rounded to
//! [`RESULT_DP`](crate::num::RESULT_DP) places half-even. When the carbon mass × 44 is a
//! multiple of 12 (as in worked example 15) the result is exact. The total is computed from the
//! summed carbon mass, so it is rounded once, not once per fuel.

use crate::error::{MrvError, Result};
use crate::factors::{FactorSet, Status};
use crate::num::{self, div, mul, product, round_result};
use ets_core::Date;
use rust_decimal::{Decimal, RoundingStrategy};

pub const METHOD_ID: &str = "cn.power.guideline-2022";
pub const METHOD_VERSION: u32 = 1;

/// Factor key of the dated default (high) coal carbon content, tC/GJ.
pub const DEFAULT_CC_KEY: &str = "cn.power.coal_cc_default_high";
/// Factor key of the ETS grid emission factor for purchased electricity, tCO2/MWh.
pub const GRID_EF_KEY: &str = "cn.ets.grid_ef_purchased_electricity";
/// Purchased-electricity (indirect) emissions count for power up to this reporting year and
/// were removed from 2023 (china-ets.md section 5, rows "Core accounting formulas" and
/// "Grid emission factor", `[ELEC21]`, `[TPF-EF]`).
pub const LAST_YEAR_PURCHASED_ELECTRICITY_COUNTS: i32 = 2022;

/// Decimal places kept when deriving carbon content from element carbon (a repeating
/// division), rounded half-even. Our choice: the guideline's own rounding is not in the
/// domain files.
pub const CARBON_CONTENT_DP: u32 = 10;

const C_TO_CO2_NUM: Decimal = Decimal::from_parts(44, 0, 0, false, 0);
const C_TO_CO2_DEN: Decimal = Decimal::from_parts(12, 0, 0, false, 0);

/// Carbon content of a fuel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CarbonContent {
    /// Measured carbon content, tC/GJ.
    Measured(Decimal),
    /// Not measured: use the default high value valid on the given date (typically a day of
    /// the month the fuel was burned), looked up in the factor data under [`DEFAULT_CC_KEY`].
    DefaultHigh { on: Date },
}

/// One fuel stream over a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuelBurn {
    /// Consumption FC (t for solid/liquid fuels, or the unit the NCV is quoted per).
    pub consumption: Decimal,
    /// Net calorific value, GJ per unit of consumption.
    pub ncv_gj_per_unit: Decimal,
    pub carbon_content: CarbonContent,
    /// Oxidation factor OF, a fraction in [0, 1].
    pub oxidation_factor: Decimal,
}

/// Result of one fuel line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuelLine {
    /// Carbon oxidised, tC (exact).
    pub carbon_t: Decimal,
    /// tCO2, rounded per [`crate::num::round_result`].
    pub co2_t: Decimal,
    /// The carbon content used, tC/GJ.
    pub carbon_content: Decimal,
    /// Source key if the default was used, with its status.
    pub default_used: Option<(String, Status)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuelEmissions {
    pub lines: Vec<FuelLine>,
    /// tCO2 from the summed carbon, rounded once.
    pub total_co2_t: Decimal,
}

/// `CC = C_element / NCV` (tC/GJ) from element carbon as a mass fraction (0.55 = 55%) and NCV
/// in GJ/t. Rounded to [`CARBON_CONTENT_DP`] places half-even.
pub fn carbon_content_from_element_carbon(element_carbon_fraction: Decimal, ncv_gj_per_t: Decimal) -> Result<Decimal> {
    num::fraction("element carbon (mass fraction)", element_carbon_fraction)?;
    num::positive("NCV (GJ/t)", ncv_gj_per_t)?;
    let cc = div(element_carbon_fraction, ncv_gj_per_t, "carbon content C_element / NCV")?;
    Ok(cc.round_dp_with_strategy(CARBON_CONTENT_DP, RoundingStrategy::MidpointNearestEven).normalize())
}

/// tC → tCO2: × 44, then ÷ 12 last, then [`round_result`].
pub fn carbon_to_co2(carbon_t: Decimal) -> Result<Decimal> {
    let times_44 = mul(carbon_t, C_TO_CO2_NUM, "carbon × 44")?;
    Ok(round_result(div(times_44, C_TO_CO2_DEN, "carbon × 44 / 12")?))
}

/// Carbon oxidised, tC: `FC × NCV × CC × OF`, exact (checked; inputs are not range-checked
/// here, callers validate them). Shared by [`fuel_emissions`] and [`crate::monthly`].
pub fn carbon_oxidised(consumption: Decimal, ncv: Decimal, carbon_content: Decimal, oxidation_factor: Decimal) -> Result<Decimal> {
    product(&[consumption, ncv, carbon_content, oxidation_factor], "FC × NCV × CC × OF")
}

/// `E_fuel = Σ FC × NCV × CC × OF × 44/12` with the default high carbon content resolved
/// from `factors` where a fuel has no measured value.
pub fn fuel_emissions(fuels: &[FuelBurn], factors: &FactorSet) -> Result<FuelEmissions> {
    let mut lines = Vec::with_capacity(fuels.len());
    let mut carbon_total = Decimal::ZERO;
    for fuel in fuels {
        num::non_negative("fuel consumption", fuel.consumption)?;
        num::positive("NCV", fuel.ncv_gj_per_unit)?;
        num::fraction("oxidation factor", fuel.oxidation_factor)?;
        let (cc, default_used) = match &fuel.carbon_content {
            CarbonContent::Measured(cc) => (num::non_negative("carbon content (tC/GJ)", *cc)?, None),
            CarbonContent::DefaultHigh { on } => {
                let f = factors.lookup(DEFAULT_CC_KEY, *on)?;
                (f.value, Some((f.source.clone(), f.status)))
            }
        };
        let carbon_t = carbon_oxidised(fuel.consumption, fuel.ncv_gj_per_unit, cc, fuel.oxidation_factor)?;
        carbon_total = num::add(carbon_total, carbon_t, "sum of carbon")?;
        lines.push(FuelLine { carbon_t, co2_t: carbon_to_co2(carbon_t)?, carbon_content: cc, default_used });
    }
    Ok(FuelEmissions { lines, total_co2_t: carbon_to_co2(carbon_total)? })
}

/// `E_elec = MWh × EF_grid` with the grid factor explicitly given (tCO2/MWh).
pub fn purchased_electricity_with_factor(mwh: Decimal, ef_t_per_mwh: Decimal) -> Result<Decimal> {
    num::non_negative("purchased electricity (MWh)", mwh)?;
    num::non_negative("grid emission factor (tCO2/MWh)", ef_t_per_mwh)?;
    Ok(round_result(mul(mwh, ef_t_per_mwh, "MWh × EF_grid")?))
}

/// `E_elec` for a reporting year, with the grid factor from `factors` (valid on 31 Dec of the
/// year). Refused from 2023, when purchased electricity stopped counting for power.
pub fn purchased_electricity(mwh: Decimal, reporting_year: i32, factors: &FactorSet) -> Result<Decimal> {
    if reporting_year > LAST_YEAR_PURCHASED_ELECTRICITY_COUNTS {
        return Err(MrvError::NotApplicable(format!(
            "purchased electricity is not counted in power-sector emissions from 2023 (reporting year {reporting_year})"
        )));
    }
    let on = Date::from_ymd(reporting_year, 12, 31).map_err(|_| MrvError::InvalidInput {
        name: "reporting year",
        value: reporting_year.to_string(),
        rule: "must be a calendar year",
    })?;
    let f = factors.lookup(GRID_EF_KEY, on)?;
    purchased_electricity_with_factor(mwh, f.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::num::{round_whole_tonnes, WholeTonneRounding};
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn coal(cc: CarbonContent) -> FuelBurn {
        FuelBurn { consumption: d("1000000"), ncv_gj_per_unit: d("20.0"), carbon_content: cc, oxidation_factor: d("0.99") }
    }

    fn day(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn worked_example_15_measured() {
        let f = FactorSet::builtin().unwrap();
        let r = fuel_emissions(&[coal(CarbonContent::Measured(d("0.0270")))], &f).unwrap();
        assert_eq!(r.lines[0].carbon_t, d("534600"));
        assert_eq!(r.total_co2_t, d("1960200"));
        assert_eq!(r.total_co2_t.to_string(), "1960200");
        assert_eq!(r.lines[0].default_used, None);
        assert_eq!(round_whole_tonnes(r.total_co2_t, WholeTonneRounding::HalfUp).unwrap(), 1_960_200);
    }

    #[test]
    fn worked_example_15_default_0_03085_for_2022_month() {
        let f = FactorSet::builtin().unwrap();
        let r = fuel_emissions(&[coal(CarbonContent::DefaultHigh { on: day("2022-05-31") })], &f).unwrap();
        assert_eq!(r.total_co2_t, d("2239710"));
        assert_eq!(r.lines[0].carbon_content, d("0.03085"));
        assert_eq!(r.lines[0].default_used, Some(("CHEMLINKED".to_string(), Status::Confirmed)));
    }

    #[test]
    fn worked_example_15_default_0_03356_for_2020_month() {
        let f = FactorSet::builtin().unwrap();
        let r = fuel_emissions(&[coal(CarbonContent::DefaultHigh { on: day("2020-05-31") })], &f).unwrap();
        assert_eq!(r.total_co2_t, d("2436456"));
        assert_eq!(r.lines[0].default_used, Some(("CHEMLINKED".to_string(), Status::Uncertain)));
        // And with the value given directly, independent of the dating assumption.
        let r = fuel_emissions(&[coal(CarbonContent::Measured(d("0.03356")))], &f).unwrap();
        assert_eq!(r.total_co2_t, d("2436456"));
    }

    #[test]
    fn default_under_2022_guideline_is_flagged_uncertain() {
        let f = FactorSet::builtin().unwrap();
        let r = fuel_emissions(&[coal(CarbonContent::DefaultHigh { on: day("2024-01-31") })], &f).unwrap();
        assert_eq!(r.lines[0].default_used.as_ref().unwrap().1, Status::Uncertain);
    }

    #[test]
    fn worked_example_15_purchased_electricity() {
        let f = FactorSet::builtin().unwrap();
        assert_eq!(purchased_electricity(d("50000"), 2022, &f).unwrap(), d("28515"));
        assert_eq!(purchased_electricity_with_factor(d("50000"), d("0.5703")).unwrap(), d("28515"));
        let err = purchased_electricity(d("50000"), 2023, &f).unwrap_err();
        assert!(matches!(err, MrvError::NotApplicable(_)), "{err}");
        // 2021 factor (0.5810) is unconfirmed and deliberately absent from the data.
        assert!(matches!(purchased_electricity(d("50000"), 2021, &f).unwrap_err(), MrvError::FactorNotFound { .. }));
    }

    #[test]
    fn forty_four_twelfths_division_last_and_rounded_half_even() {
        // 1 tC -> 44/12 = 3.6666... -> 3.666667 at 6 dp.
        assert_eq!(carbon_to_co2(d("1")).unwrap(), d("3.666667"));
        // 3 tC -> 132/12 = 11 exactly.
        assert_eq!(carbon_to_co2(d("3")).unwrap(), d("11"));
        // Total rounded once from summed carbon: 1 + 2 tC = 11 t, while per-line would be 3.666667 + 7.333333.
        let f = FactorSet::builtin().unwrap();
        let burn = |c: &str| FuelBurn {
            consumption: d(c),
            ncv_gj_per_unit: d("1"),
            carbon_content: CarbonContent::Measured(d("1")),
            oxidation_factor: d("1"),
        };
        let r = fuel_emissions(&[burn("1"), burn("2")], &f).unwrap();
        assert_eq!(r.total_co2_t, d("11"));
        assert_eq!(r.lines[1].co2_t, d("7.333333"));
    }

    #[test]
    fn carbon_content_from_element_carbon_works() {
        // 54% carbon, NCV 20 GJ/t -> 0.027 tC/GJ.
        assert_eq!(carbon_content_from_element_carbon(d("0.54"), d("20")).unwrap(), d("0.027"));
        // 0.5 / 21 = 0.0238095238095... -> 10 dp half-even.
        assert_eq!(carbon_content_from_element_carbon(d("0.5"), d("21")).unwrap(), d("0.0238095238"));
        let err = carbon_content_from_element_carbon(d("55"), d("20")).unwrap_err().to_string();
        assert!(err.contains("element carbon") && err.contains("between 0 and 1"), "{err}");
        assert!(carbon_content_from_element_carbon(d("0.5"), d("0")).is_err());
    }

    #[test]
    fn rejects_invalid_inputs() {
        let f = FactorSet::builtin().unwrap();
        let mut bad = coal(CarbonContent::Measured(d("0.027")));
        bad.oxidation_factor = d("1.01");
        let err = fuel_emissions(&[bad], &f).unwrap_err().to_string();
        assert_eq!(err, "invalid oxidation factor = 1.01: must be between 0 and 1 inclusive");

        let mut bad = coal(CarbonContent::Measured(d("0.027")));
        bad.consumption = d("-5");
        let err = fuel_emissions(&[bad], &f).unwrap_err().to_string();
        assert_eq!(err, "invalid fuel consumption = -5: must not be negative");

        let bad = coal(CarbonContent::Measured(d("-0.027")));
        assert!(fuel_emissions(&[bad], &f).is_err());
        assert!(purchased_electricity_with_factor(d("-1"), d("0.5703")).is_err());
        // No default before 2019 in the data.
        let err = fuel_emissions(&[coal(CarbonContent::DefaultHigh { on: day("2018-06-30") })], &f).unwrap_err();
        assert_eq!(err.to_string(), "no factor 'cn.power.coal_cc_default_high' is valid on 2018-06-30");
    }
}
