//! China national ETS, steel, cement and aluminium (covered from the 2024 vintage), and the IPCC
//! 2006 tier-1 fallback table.
//!
//! Scope (china-ets.md section 2.6, `[DRAFT2526]`): CO2 from combustion, process emissions and
//! carbon in products; aluminium also CF4 and C2F6. The domain files give only the allocation
//! units and intensities, not the accounting formulas, so each method below names the published
//! method it follows:
//!
//! - [`combustion`] (`cn.industry.combustion`): `E = Σ FC × NCV × CC × OF × 44/12` as in
//!   [`crate::cn_power`] and formula (3) of the steel guideline `[CETS-AG-03.01-2024]`, with
//!   NCV, carbon content and oxidation factor each measured or taken from the IPCC 2006 fallback
//!   table. **Uncertain**: the Chinese sector guidelines use their own default tables (the steel
//!   guideline's Annex A Table A.1), which are not in the factor data.
//! - [`cement`] (`cn.cement.clinker`): the clinker method of `[CN-CEMENT-2013]` (NDRC 2013,
//!   GB/T 32151.8) with the IPCC 2006 Vol. 3 ch. 2 stoichiometric ratios 44.01/56.08 and
//!   44.01/40.30 where the 2013 text writes 44/56 and 44/40; organic carbon in raw meal.
//!   **Uncertain**: the MEE cement clinker guideline used from 2024 was not available.
//! - [`steel`] (`cn.steel.guideline-2024`): the MEE steel guideline CETS-AG-03.01-V01-2024
//!   `[CETS-AG-03.01-2024]`, read from a transcription: enterprise level (formula 1: fuels +
//!   carbonates + electrodes + carbon-containing raw materials − carbon-containing products),
//!   process level as a carbon balance (formula 2), Annex A Table A.2 default factors; carbonate
//!   fluxes alternatively from molar masses and purity (IPCC 2006 Vol. 3 ch. 2), electrodes from
//!   measured carbon content. **Uncertain**: the transcription was not checked against the
//!   official page, and the allocation intensity comes from a draft.
//! - [`aluminium`] (`cn.aluminium.electrolysis`): prebaked-anode consumption
//!   `net anode × (1 − S − ash) × 44/12` (`[CN-ALU-2013]`, IPCC 2006 Vol. 3 ch. 4 Eq. 4.21) and
//!   anode-effect PFCs via [`crate::pfc`]. **Uncertain**: the MEE aluminium guideline used from
//!   2024 was not available.
//! - [`ipcc`] (`ipcc2006.tier1.combustion`): the tier-1 fallback table (Vol. 2 ch. 1 Tables 1.2,
//!   1.3, 1.4) with a lookup by fuel name and `E = AD × NCV × EF` with oxidation factor 1.
//!
//! Allocation intensities (`[DRAFT2526]`): steel `I_s = (E_ironmaking + E_sintering) /
//! ironmaking output`, cement tCO2 per t clinker, aluminium (anode + anode-effect emissions) per
//! t Al liquid. They are rounded by [`intensity`].
//!
//! **Rounding.** Every reported component (carbonate CO2, organic-carbon CO2, electrode CO2, ...)
//! is computed exactly with its divisions last and rounded once by [`num::round_result`]; totals
//! are sums of the rounded components, so a report adds up.

use crate::error::{MrvError, Result};
use crate::factors::{Factor, FactorSet, Status};
use crate::num::{self, add, div, mul, product, round_result, sub};
use rust_decimal::{Decimal, RoundingStrategy};

/// Decimal places of an allocation intensity (tCO2e per t of product): the steel guideline's
/// report tables give unit-product emissions to 4 places, rounded half up (四舍五入). Applied to
/// cement and aluminium too as an assumption.
pub const INTENSITY_DP: u32 = 4;
/// Rounding applied at [`INTENSITY_DP`]: half away from zero.
pub const INTENSITY_ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;

/// A default value taken from the factor data, so that callers can show which ones a result
/// relies on and whether they are confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultUsed {
    pub key: String,
    pub value: Decimal,
    pub source: String,
    pub status: Status,
}

impl DefaultUsed {
    fn of(f: &Factor) -> DefaultUsed {
        DefaultUsed { key: f.key.clone(), value: f.value, source: f.source.clone(), status: f.status }
    }
}

/// Emissions per tonne of output, rounded to [`INTENSITY_DP`] places with [`INTENSITY_ROUNDING`].
pub fn intensity(emissions_t: Decimal, output_t: Decimal) -> Result<Decimal> {
    num::non_negative("emissions for the intensity (tCO2e)", emissions_t)?;
    num::positive("output for the intensity (t)", output_t)?;
    let i = div(emissions_t, output_t, "emissions / output")?;
    Ok(i.round_dp_with_strategy(INTENSITY_DP, INTENSITY_ROUNDING).normalize())
}

fn molar_mass(species: &str, factors: &FactorSet) -> Result<Decimal> {
    Ok(factors.lookup_single(&format!("chem.molar_mass.{species}"))?.value)
}

/// Fuel combustion for industrial sectors with measured or fallback parameters.
pub mod combustion {
    use super::*;
    use crate::cn_power::{carbon_oxidised, carbon_to_co2};

    pub const METHOD_ID: &str = "cn.industry.combustion";
    pub const METHOD_VERSION: u32 = 1;
    /// Uncertain: the fallback values are IPCC 2006 defaults, not the Chinese guidelines' own
    /// default tables.
    pub const STATUS: Status = Status::Uncertain;

    /// A parameter that is either measured or taken from the IPCC 2006 fallback table for the
    /// fuel ([`super::ipcc`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Param {
        Measured(Decimal),
        Fallback,
    }

    /// One fuel stream over a period.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct IndustryFuel {
        /// Name in the IPCC fallback table (e.g. `coking_coal`, see [`super::ipcc::fuel_names`]).
        /// Only resolved when a parameter is [`Param::Fallback`]; otherwise a free label.
        pub fuel: String,
        /// FC, in tonnes when the NCV is a fallback (IPCC NCVs are per Gg), otherwise in the unit
        /// the measured NCV is quoted per (e.g. 10^4 Nm³).
        pub consumption: Decimal,
        /// NCV, GJ per unit of consumption.
        pub ncv_gj_per_unit: Param,
        /// CC, tC/GJ.
        pub carbon_content_tc_per_gj: Param,
        /// OF, a fraction in [0, 1]; the IPCC fallback is 1.
        pub oxidation_factor: Param,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct CombustionLine {
        pub fuel: String,
        pub ncv_gj_per_unit: Decimal,
        pub carbon_content_tc_per_gj: Decimal,
        pub oxidation_factor: Decimal,
        /// Carbon oxidised, tC (exact).
        pub carbon_t: Decimal,
        /// tCO2, rounded per [`num::round_result`].
        pub co2_t: Decimal,
        /// Fallback values used for this line.
        pub defaults_used: Vec<DefaultUsed>,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct CombustionEmissions {
        pub lines: Vec<CombustionLine>,
        /// tCO2 from the summed carbon, rounded once (as [`crate::cn_power::fuel_emissions`]).
        pub total_co2_t: Decimal,
    }

    /// `E = Σ FC × NCV × CC × OF × 44/12`, resolving [`Param::Fallback`] values from the IPCC
    /// 2006 table: NCV from Table 1.2 (TJ/Gg = GJ/t), CC from Table 1.3 (tC/TJ ÷ 1000 = tC/GJ,
    /// exact), OF = 1.
    pub fn fuel_combustion(fuels: &[IndustryFuel], factors: &FactorSet) -> Result<CombustionEmissions> {
        let mut lines = Vec::with_capacity(fuels.len());
        let mut carbon_total = Decimal::ZERO;
        for f in fuels {
            num::non_negative("fuel consumption", f.consumption)?;
            let mut defaults_used = Vec::new();
            let ncv = match f.ncv_gj_per_unit {
                Param::Measured(v) => num::positive("NCV", v)?,
                Param::Fallback => {
                    let e = ipcc::factor(ipcc::NCV_PREFIX, &f.fuel, factors)?;
                    defaults_used.push(DefaultUsed::of(e));
                    e.value
                }
            };
            let cc = match f.carbon_content_tc_per_gj {
                Param::Measured(v) => num::non_negative("carbon content (tC/GJ)", v)?,
                Param::Fallback => {
                    let e = ipcc::factor(ipcc::CC_PREFIX, &f.fuel, factors)?;
                    defaults_used.push(DefaultUsed::of(e));
                    div(e.value, ipcc::GJ_PER_TJ, "carbon content tC/TJ → tC/GJ")?
                }
            };
            let of = match f.oxidation_factor {
                Param::Measured(v) => num::fraction("oxidation factor", v)?,
                Param::Fallback => {
                    let e = factors.lookup_single(ipcc::OXIDATION_FACTOR_KEY)?;
                    defaults_used.push(DefaultUsed::of(e));
                    e.value
                }
            };
            let carbon_t = carbon_oxidised(f.consumption, ncv, cc, of)?;
            carbon_total = add(carbon_total, carbon_t, "sum of carbon")?;
            lines.push(CombustionLine {
                fuel: f.fuel.clone(),
                ncv_gj_per_unit: ncv,
                carbon_content_tc_per_gj: cc.normalize(),
                oxidation_factor: of,
                carbon_t,
                co2_t: carbon_to_co2(carbon_t)?,
                defaults_used,
            });
        }
        Ok(CombustionEmissions { lines, total_co2_t: carbon_to_co2(carbon_total)? })
    }
}

/// IPCC 2006 Vol. 2 ch. 1 tier-1 defaults by fuel name, and combustion from them.
pub mod ipcc {
    use super::*;

    pub const METHOD_ID: &str = "ipcc2006.tier1.combustion";
    pub const METHOD_VERSION: u32 = 1;
    pub const STATUS: Status = Status::Confirmed;

    /// `ipcc2006.ncv.<fuel>`: default NCV, TJ/Gg (Table 1.2).
    pub const NCV_PREFIX: &str = "ipcc2006.ncv.";
    /// `ipcc2006.ef.<fuel>`: default CO2 emission factor, tCO2/TJ (Table 1.4, published in kg/TJ).
    pub const EF_PREFIX: &str = "ipcc2006.ef.";
    /// `ipcc2006.cc.<fuel>`: default carbon content, tC/TJ (Table 1.3, published in kg C/GJ).
    pub const CC_PREFIX: &str = "ipcc2006.cc.";
    /// The tier-1 oxidation factor (1).
    pub const OXIDATION_FACTOR_KEY: &str = "ipcc2006.oxidation_factor";

    pub(super) const GJ_PER_TJ: Decimal = Decimal::from_parts(1000, 0, 0, false, 0);

    /// The fallback values of one fuel.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct FallbackFuel {
        pub name: String,
        /// TJ/Gg, numerically GJ/t.
        pub ncv_tj_per_gg: Decimal,
        /// tCO2/TJ.
        pub ef_tco2_per_tj: Decimal,
        /// tC/TJ.
        pub carbon_content_tc_per_tj: Decimal,
        /// Uncertain if any of the three values is.
        pub status: Status,
    }

    /// The entry `<prefix><fuel>`; a fuel missing from the table is reported as such rather
    /// than as a missing factor key.
    pub(crate) fn factor<'a>(prefix: &str, fuel: &str, factors: &'a FactorSet) -> Result<&'a Factor> {
        match factors.lookup_single(&format!("{prefix}{fuel}")) {
            Err(MrvError::FactorNotFound { .. }) => Err(MrvError::InvalidInput {
                name: "fuel",
                value: fuel.to_string(),
                rule: "not in the IPCC 2006 fallback table (see ipcc::fuel_names)",
            }),
            other => other,
        }
    }

    /// Fuel name → NCV, EF and carbon content.
    pub fn lookup(fuel: &str, factors: &FactorSet) -> Result<FallbackFuel> {
        let ncv = factor(NCV_PREFIX, fuel, factors)?;
        let ef = factor(EF_PREFIX, fuel, factors)?;
        let cc = factor(CC_PREFIX, fuel, factors)?;
        let all_confirmed = [ncv, ef, cc].iter().all(|f| f.status == Status::Confirmed);
        Ok(FallbackFuel {
            name: fuel.to_string(),
            ncv_tj_per_gg: ncv.value,
            ef_tco2_per_tj: ef.value,
            carbon_content_tc_per_tj: cc.value,
            status: if all_confirmed { Status::Confirmed } else { Status::Uncertain },
        })
    }

    /// Names of the fuels with a complete entry (NCV, EF and carbon content), sorted.
    pub fn fuel_names(factors: &FactorSet) -> Vec<String> {
        let mut names: Vec<String> = factors
            .all()
            .iter()
            .filter_map(|f| f.key.strip_prefix(NCV_PREFIX))
            .filter(|name| lookup(name, factors).is_ok())
            .map(str::to_string)
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Tier-1 combustion `E = AD × NCV × EF × OF` in tCO2 with AD in tonnes (`t × GJ/t ÷ 1000 =
    /// TJ`) and OF = 1 from the factor data; computed by [`crate::eu_mrr::combustion_from_fuel`].
    pub fn combustion(fuel: &str, quantity_t: Decimal, factors: &FactorSet) -> Result<Decimal> {
        let f = lookup(fuel, factors)?;
        let of = factors.lookup_single(OXIDATION_FACTOR_KEY)?.value;
        crate::eu_mrr::combustion_from_fuel(quantity_t, f.ncv_tj_per_gg, f.ef_tco2_per_tj, of)
    }
}

/// Cement clinker line: carbonate decomposition by the clinker method and organic carbon.
pub mod cement {
    use super::*;
    use crate::cn_power::carbon_to_co2;

    pub const METHOD_ID: &str = "cn.cement.clinker";
    pub const METHOD_VERSION: u32 = 1;
    pub const STATUS: Status = Status::Uncertain;

    pub const CAO_DEFAULT_KEY: &str = "cn.cement.clinker_cao_default";
    pub const MGO_DEFAULT_KEY: &str = "cn.cement.clinker_mgo_default";
    pub const TOC_DEFAULT_LOW_KEY: &str = "cn.cement.raw_meal_toc_default_low";
    pub const TOC_DEFAULT_HIGH_KEY: &str = "cn.cement.raw_meal_toc_default_high";

    /// CaO or MgO content of clinker, mass fractions.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Oxide {
        /// Total oxide and the part that did not come from carbonates (e.g. from slag or fly
        /// ash in the raw meal).
        Measured { total: Decimal, non_carbonate: Decimal },
        /// The factor-data default ([`CAO_DEFAULT_KEY`] / [`MGO_DEFAULT_KEY`]), all of it from
        /// carbonates (IPCC tier 1).
        Default,
    }

    /// Organic (non-fuel) carbon in raw meal, mass fraction on a dry basis.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum OrganicCarbon {
        Measured(Decimal),
        /// Raw meal without coal gangue or high-carbon fly ash ([`TOC_DEFAULT_LOW_KEY`]).
        DefaultLow,
        /// Raw meal with coal gangue or high-carbon fly ash ([`TOC_DEFAULT_HIGH_KEY`]).
        DefaultHigh,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ClinkerLine {
        pub clinker_t: Decimal,
        /// Kiln-head dust (CKD) leaving the kiln system, t. Assumed fully calcined with the
        /// clinker's composition, as in the 2013 guideline.
        pub kiln_dust_t: Decimal,
        /// Bypass dust leaving the kiln system, t; treated as kiln dust.
        pub bypass_dust_t: Decimal,
        pub cao: Oxide,
        pub mgo: Oxide,
        pub raw_meal_t: Decimal,
        pub organic_carbon: OrganicCarbon,
        /// Combustion CO2 of the line (e.g. from [`super::combustion::fuel_combustion`]),
        /// counted in the total and the intensity.
        pub combustion_co2_t: Decimal,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ClinkerEmissions {
        /// Carbonate decomposition, tCO2.
        pub carbonate_co2_t: Decimal,
        /// Organic carbon in raw meal, tCO2.
        pub organic_co2_t: Decimal,
        /// carbonate + organic.
        pub process_co2_t: Decimal,
        pub combustion_co2_t: Decimal,
        /// process + combustion.
        pub total_co2_t: Decimal,
        /// total ÷ clinker, tCO2/t clinker ([`super::intensity`]).
        pub intensity_t_per_t_clinker: Decimal,
        pub defaults_used: Vec<DefaultUsed>,
    }

    /// `(total − non-carbonate)` of one oxide, refusing a non-carbonate part above the total.
    fn carbonate_oxide(
        oxide: Oxide,
        default_key: &str,
        names: (&'static str, &'static str),
        factors: &FactorSet,
        used: &mut Vec<DefaultUsed>,
    ) -> Result<Decimal> {
        match oxide {
            Oxide::Measured { total, non_carbonate } => {
                num::fraction(names.0, total)?;
                num::fraction(names.1, non_carbonate)?;
                if non_carbonate > total {
                    return Err(MrvError::InvalidInput {
                        name: names.1,
                        value: non_carbonate.to_string(),
                        rule: "must not exceed the total oxide fraction",
                    });
                }
                sub(total, non_carbonate, "oxide - non-carbonate oxide")
            }
            Oxide::Default => {
                let f = factors.lookup_single(default_key)?;
                used.push(DefaultUsed::of(f));
                Ok(f.value)
            }
        }
    }

    /// Process CO2 of a clinker line and its intensity:
    /// - carbonates: `(clinker + kiln dust + bypass dust) × [(CaO − CaO_nc) × M_CO2 / M_CaO +
    ///   (MgO − MgO_nc) × M_CO2 / M_MgO]`, molar masses from the factor data, each quotient
    ///   taken after the multiplications and the sum rounded once;
    /// - organic carbon: `raw meal × TOC × 44/12`.
    pub fn clinker_line(line: &ClinkerLine, factors: &FactorSet) -> Result<ClinkerEmissions> {
        num::non_negative("clinker output (t)", line.clinker_t)?;
        num::non_negative("kiln dust (t)", line.kiln_dust_t)?;
        num::non_negative("bypass dust (t)", line.bypass_dust_t)?;
        num::non_negative("raw meal (t)", line.raw_meal_t)?;
        num::non_negative("combustion CO2 (t)", line.combustion_co2_t)?;
        let mut used = Vec::new();
        let cao = carbonate_oxide(line.cao, CAO_DEFAULT_KEY, ("CaO fraction", "non-carbonate CaO fraction"), factors, &mut used)?;
        let mgo = carbonate_oxide(line.mgo, MGO_DEFAULT_KEY, ("MgO fraction", "non-carbonate MgO fraction"), factors, &mut used)?;
        let toc = match line.organic_carbon {
            OrganicCarbon::Measured(v) => num::fraction("raw meal organic carbon fraction", v)?,
            OrganicCarbon::DefaultLow | OrganicCarbon::DefaultHigh => {
                let key = if line.organic_carbon == OrganicCarbon::DefaultLow { TOC_DEFAULT_LOW_KEY } else { TOC_DEFAULT_HIGH_KEY };
                let f = factors.lookup_single(key)?;
                used.push(DefaultUsed::of(f));
                f.value
            }
        };
        let m_co2 = molar_mass("co2", factors)?;
        let m_cao = molar_mass("cao", factors)?;
        let m_mgo = molar_mass("mgo", factors)?;

        let calcined = add(add(line.clinker_t, line.kiln_dust_t, "clinker + dust")?, line.bypass_dust_t, "clinker + dust")?;
        let from_cao = div(product(&[calcined, cao, m_co2], "clinker × CaO × M_CO2")?, m_cao, "÷ M_CaO")?;
        let from_mgo = div(product(&[calcined, mgo, m_co2], "clinker × MgO × M_CO2")?, m_mgo, "÷ M_MgO")?;
        let carbonate_co2_t = round_result(add(from_cao, from_mgo, "CaO + MgO terms")?);
        let organic_co2_t = carbon_to_co2(mul(line.raw_meal_t, toc, "raw meal × TOC")?)?;
        let process_co2_t = add(carbonate_co2_t, organic_co2_t, "process CO2")?;
        let total_co2_t = add(process_co2_t, line.combustion_co2_t, "clinker line CO2")?;
        Ok(ClinkerEmissions {
            carbonate_co2_t,
            organic_co2_t,
            process_co2_t,
            combustion_co2_t: line.combustion_co2_t,
            total_co2_t,
            intensity_t_per_t_clinker: intensity(total_co2_t, line.clinker_t)?,
            defaults_used: used,
        })
    }
}

/// Iron and steel: the 2024 MEE guideline's enterprise and process levels.
pub mod steel {
    use super::*;
    use crate::cn_power::carbon_to_co2;
    pub use crate::eu_mrr::Flow;
    use ets_core::Date;

    pub const METHOD_ID: &str = "cn.steel.guideline-2024";
    pub const METHOD_VERSION: u32 = 1;
    pub const STATUS: Status = Status::Uncertain;

    /// Prefix of the guideline's Annex A Table A.2 factors, `cn.steel.ef.<material>` (tCO2/t).
    pub const EF_PREFIX: &str = "cn.steel.ef.";

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Carbonate {
        /// CaCO3: 1 CO2 per formula unit.
        Limestone,
        /// CaMg(CO3)2: 2 CO2 per formula unit.
        Dolomite,
    }

    impl Carbonate {
        fn material(self) -> &'static str {
            match self {
                Carbonate::Limestone => "limestone",
                Carbonate::Dolomite => "dolomite",
            }
        }

        fn molar_mass_species(self) -> &'static str {
            match self {
                Carbonate::Limestone => "caco3",
                Carbonate::Dolomite => "camg_co3_2",
            }
        }

        fn co2_per_formula_unit(self) -> Decimal {
            match self {
                Carbonate::Limestone => Decimal::ONE,
                Carbonate::Dolomite => Decimal::TWO,
            }
        }
    }

    /// How a flux's emission factor is found.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum FluxFactor {
        /// `purity × n × M_CO2 / M_carbonate` (IPCC 2006 Vol. 3 ch. 2), purity a mass fraction.
        Stoichiometric { purity: Decimal },
        /// The guideline's Table A.2 default per t of flux as consumed, valid on `on`.
        GuidelineDefault { on: Date },
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Flux {
        pub carbonate: Carbonate,
        pub quantity_t: Decimal,
        pub factor: FluxFactor,
    }

    fn table_a2<'a>(material: &str, on: Date, factors: &'a FactorSet) -> Result<&'a Factor> {
        let key = format!("{EF_PREFIX}{material}");
        match factors.lookup(&key, on) {
            // A key with entries on other dates is a dating problem; report it as such.
            Err(e @ MrvError::FactorNotFound { .. }) if factors.all().iter().any(|f| f.key == key) => Err(e),
            Err(MrvError::FactorNotFound { .. }) => Err(MrvError::InvalidInput {
                name: "steel material",
                value: material.to_string(),
                rule: "not in the guideline's Table A.2 (cn.steel.ef.*); unlisted materials are not accounted",
            }),
            other => other,
        }
    }

    /// Carbonate flux CO2 (t), all fluxes summed and rounded once.
    pub fn carbonate_flux_co2(fluxes: &[Flux], factors: &FactorSet) -> Result<Decimal> {
        let mut total = Decimal::ZERO;
        for f in fluxes {
            num::non_negative("carbonate flux (t)", f.quantity_t)?;
            let co2 = match f.factor {
                FluxFactor::Stoichiometric { purity } => {
                    num::fraction("carbonate purity", purity)?;
                    let m_co2 = molar_mass("co2", factors)?;
                    let m_carbonate = molar_mass(f.carbonate.molar_mass_species(), factors)?;
                    let numerator =
                        product(&[f.quantity_t, purity, f.carbonate.co2_per_formula_unit(), m_co2], "flux × purity × n × M_CO2")?;
                    div(numerator, m_carbonate, "÷ M_carbonate")?
                }
                FluxFactor::GuidelineDefault { on } => {
                    mul(f.quantity_t, table_a2(f.carbonate.material(), on, factors)?.value, "flux × EF")?
                }
            };
            total = add(total, co2, "sum of flux CO2")?;
        }
        Ok(round_result(total))
    }

    /// Carbon content of consumed electrodes.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum ElectrodeCarbon {
        /// Mass fraction of carbon: `electrodes × C × 44/12`.
        Measured(Decimal),
        /// The guideline's Table A.2 factor (tCO2/t electrode), valid on `on`.
        GuidelineDefault { on: Date },
    }

    /// Electrode CO2 (t) of EAF and ladle-furnace electrode consumption.
    pub fn electrode_co2(consumption_t: Decimal, carbon: ElectrodeCarbon, factors: &FactorSet) -> Result<Decimal> {
        num::non_negative("electrode consumption (t)", consumption_t)?;
        match carbon {
            ElectrodeCarbon::Measured(c) => {
                carbon_to_co2(mul(consumption_t, num::fraction("electrode carbon fraction", c)?, "electrodes × C")?)
            }
            ElectrodeCarbon::GuidelineDefault { on } => {
                Ok(round_result(mul(consumption_t, table_a2("electrode", on, factors)?.value, "electrodes × EF")?))
            }
        }
    }

    /// A purchased carbon-containing raw material or a carbon-containing product, by its Table
    /// A.2 name (e.g. `scrap`, `pig_iron`, `crude_steel`, `tar`).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Material {
        pub name: String,
        pub quantity_t: Decimal,
    }

    /// `Σ quantity × EF` (t) with the Table A.2 factors valid on `on`, rounded once.
    pub fn materials_co2(items: &[Material], on: Date, factors: &FactorSet) -> Result<Decimal> {
        let mut total = Decimal::ZERO;
        for m in items {
            num::non_negative("material quantity (t)", m.quantity_t)?;
            let co2 = mul(m.quantity_t, table_a2(&m.name, on, factors)?.value, "material × EF")?;
            total = add(total, co2, "sum of material CO2")?;
        }
        Ok(round_result(total))
    }

    /// Carbon carried by a process-balance stream.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum StreamCarbon {
        /// Fuels: `quantity × NCV × CC` (GJ per unit, tC/GJ), as formula (2).
        Energy { ncv_gj_per_unit: Decimal, carbon_content_tc_per_gj: Decimal },
        /// Materials: `quantity × carbon mass fraction`.
        MassFraction(Decimal),
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct CarbonStream {
        pub flow: Flow,
        pub quantity: Decimal,
        pub carbon: StreamCarbon,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct CarbonBalance {
        pub carbon_in_t: Decimal,
        pub carbon_out_t: Decimal,
        /// `(in − out) × 44/12`, rounded.
        pub co2_t: Decimal,
    }

    /// Process-level carbon balance (sintering, ironmaking, ...): carbon in the inputs minus
    /// carbon in the products and by-products (e.g. blast-furnace gas, hot metal), × 44/12.
    /// Formula (2) of the guideline counts fuels only; material streams extend it to the
    /// general balance. A net carbon output is refused.
    pub fn process_carbon_balance(streams: &[CarbonStream]) -> Result<CarbonBalance> {
        let mut carbon_in_t = Decimal::ZERO;
        let mut carbon_out_t = Decimal::ZERO;
        for s in streams {
            num::non_negative("stream quantity", s.quantity)?;
            let c = match s.carbon {
                StreamCarbon::Energy { ncv_gj_per_unit, carbon_content_tc_per_gj } => {
                    num::positive("stream NCV", ncv_gj_per_unit)?;
                    num::non_negative("stream carbon content (tC/GJ)", carbon_content_tc_per_gj)?;
                    product(&[s.quantity, ncv_gj_per_unit, carbon_content_tc_per_gj], "quantity × NCV × CC")?
                }
                StreamCarbon::MassFraction(f) => mul(s.quantity, num::fraction("stream carbon fraction", f)?, "quantity × C")?,
            };
            match s.flow {
                Flow::Input => carbon_in_t = add(carbon_in_t, c, "carbon in")?,
                Flow::Output => carbon_out_t = add(carbon_out_t, c, "carbon out")?,
            }
        }
        let net = sub(carbon_in_t, carbon_out_t, "carbon in - out")?;
        if net < Decimal::ZERO {
            return Err(MrvError::InvalidInput {
                name: "process net carbon (t)",
                value: net.to_string(),
                rule: "outputs exceed inputs; net carbon must not be negative",
            });
        }
        Ok(CarbonBalance { carbon_in_t, carbon_out_t, co2_t: carbon_to_co2(net)? })
    }

    /// Inputs of the enterprise-level formula (1).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Enterprise<'a> {
        /// Purchased-fuel CO2, e.g. from [`super::combustion::fuel_combustion`]. Formula (1) has
        /// no oxidation factor: give OF as measured 1 or the IPCC fallback (1).
        pub fuel_co2_t: Decimal,
        pub fluxes: &'a [Flux],
        pub electrode_t: Decimal,
        pub electrode_carbon: ElectrodeCarbon,
        pub raw_materials: &'a [Material],
        /// Crude steel, and pig iron, crude benzene and tar sold: deducted.
        pub carbon_products: &'a [Material],
        /// Date for the Table A.2 factors (e.g. 31 Dec of the reporting year).
        pub on: Date,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct EnterpriseEmissions {
        pub fuel_co2_t: Decimal,
        pub carbonate_co2_t: Decimal,
        pub electrode_co2_t: Decimal,
        pub raw_material_co2_t: Decimal,
        /// Deducted.
        pub carbon_products_co2_t: Decimal,
        pub total_co2_t: Decimal,
    }

    /// `E = fuels + carbonates + electrodes + raw materials − carbon-containing products`
    /// (formula (1)). A negative total is refused.
    pub fn enterprise(e: &Enterprise<'_>, factors: &FactorSet) -> Result<EnterpriseEmissions> {
        let fuel_co2_t = num::non_negative("fuel CO2 (t)", e.fuel_co2_t)?;
        let carbonate_co2_t = carbonate_flux_co2(e.fluxes, factors)?;
        let electrode_co2_t = electrode_co2(e.electrode_t, e.electrode_carbon, factors)?;
        let raw_material_co2_t = materials_co2(e.raw_materials, e.on, factors)?;
        let carbon_products_co2_t = materials_co2(e.carbon_products, e.on, factors)?;
        let gross = [carbonate_co2_t, electrode_co2_t, raw_material_co2_t].iter().try_fold(fuel_co2_t, |a, b| add(a, *b, "gross CO2"))?;
        let total_co2_t = sub(gross, carbon_products_co2_t, "gross - carbon in products")?;
        if total_co2_t < Decimal::ZERO {
            return Err(MrvError::InvalidInput {
                name: "enterprise CO2 (t)",
                value: total_co2_t.to_string(),
                rule: "carbon in products exceeds the emissions; must not be negative",
            });
        }
        Ok(EnterpriseEmissions { fuel_co2_t, carbonate_co2_t, electrode_co2_t, raw_material_co2_t, carbon_products_co2_t, total_co2_t })
    }

    /// `I_s = (E_ironmaking + E_sintering) / ironmaking output` (`[DRAFT2526]`), tCO2/t.
    pub fn allocation_intensity(ironmaking_co2_t: Decimal, sintering_co2_t: Decimal, ironmaking_output_t: Decimal) -> Result<Decimal> {
        num::non_negative("ironmaking CO2 (t)", ironmaking_co2_t)?;
        num::non_negative("sintering CO2 (t)", sintering_co2_t)?;
        intensity(add(ironmaking_co2_t, sintering_co2_t, "ironmaking + sintering")?, ironmaking_output_t)
    }
}

/// Aluminium electrolysis: carbon-anode consumption and anode-effect PFCs.
pub mod aluminium {
    use super::*;
    use crate::cn_power::carbon_to_co2;
    use crate::pfc::{pfc_co2e, GwpSet};

    pub const METHOD_ID: &str = "cn.aluminium.electrolysis";
    pub const METHOD_VERSION: u32 = 1;
    pub const STATUS: Status = Status::Uncertain;

    pub const SULPHUR_DEFAULT_KEY: &str = "cn.aluminium.anode_sulphur_default";
    pub const ASH_DEFAULT_KEY: &str = "cn.aluminium.anode_ash_default";

    /// Sulphur and ash content of the anodes, mass fractions.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum AnodeImpurities {
        Measured {
            sulphur: Decimal,
            ash: Decimal,
        },
        /// [`SULPHUR_DEFAULT_KEY`] and [`ASH_DEFAULT_KEY`].
        Default,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Electrolysis {
        /// Aluminium liquid produced, t.
        pub al_liquid_t: Decimal,
        /// Net anode consumption over the period, t (per-tonne consumption × output).
        pub net_anode_t: Decimal,
        pub impurities: AnodeImpurities,
        /// Anode-effect CF4 and C2F6, t of gas.
        pub cf4_t: Decimal,
        pub c2f6_t: Decimal,
        pub gwp: GwpSet,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ElectrolysisEmissions {
        /// Energy used as raw material (anode carbon), tCO2.
        pub anode_co2_t: Decimal,
        /// Anode effect, tCO2e.
        pub pfc_co2e_t: Decimal,
        /// anode + PFC.
        pub total_co2e_t: Decimal,
        /// total ÷ Al liquid, tCO2e/t ([`super::intensity`]). Combustion is not in it.
        pub intensity_t_per_t_al: Decimal,
        pub defaults_used: Vec<DefaultUsed>,
    }

    /// `E_anode = net anode × (1 − S − ash) × 44/12` (t). Impurities summing to more than 1
    /// are refused.
    pub fn anode_co2(net_anode_t: Decimal, impurities: AnodeImpurities, factors: &FactorSet) -> Result<(Decimal, Vec<DefaultUsed>)> {
        num::non_negative("net anode consumption (t)", net_anode_t)?;
        let mut used = Vec::new();
        let (s, ash) = match impurities {
            AnodeImpurities::Measured { sulphur, ash } => {
                (num::fraction("anode sulphur fraction", sulphur)?, num::fraction("anode ash fraction", ash)?)
            }
            AnodeImpurities::Default => {
                let s = factors.lookup_single(SULPHUR_DEFAULT_KEY)?;
                let a = factors.lookup_single(ASH_DEFAULT_KEY)?;
                used.push(DefaultUsed::of(s));
                used.push(DefaultUsed::of(a));
                (s.value, a.value)
            }
        };
        let carbon_fraction = sub(sub(Decimal::ONE, s, "1 - S")?, ash, "1 - S - ash")?;
        if carbon_fraction < Decimal::ZERO {
            return Err(MrvError::InvalidInput {
                name: "anode carbon fraction (1 - S - ash)",
                value: carbon_fraction.to_string(),
                rule: "sulphur and ash exceed the anode mass; must not be negative",
            });
        }
        Ok((carbon_to_co2(mul(net_anode_t, carbon_fraction, "anode × (1 - S - ash)")?)?, used))
    }

    /// Anode CO2 + anode-effect PFCs and the allocation intensity per t Al liquid.
    pub fn electrolysis(e: &Electrolysis, factors: &FactorSet) -> Result<ElectrolysisEmissions> {
        num::non_negative("aluminium liquid (t)", e.al_liquid_t)?;
        let (anode_co2_t, defaults_used) = anode_co2(e.net_anode_t, e.impurities, factors)?;
        let pfc_co2e_t = pfc_co2e(e.cf4_t, e.c2f6_t, e.gwp, factors)?;
        let total_co2e_t = add(anode_co2_t, pfc_co2e_t, "anode + PFC")?;
        Ok(ElectrolysisEmissions {
            anode_co2_t,
            pfc_co2e_t,
            total_co2e_t,
            intensity_t_per_t_al: intensity(total_co2e_t, e.al_liquid_t)?,
            defaults_used,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::aluminium::{anode_co2, electrolysis, AnodeImpurities, Electrolysis};
    use super::cement::{clinker_line, ClinkerLine, OrganicCarbon, Oxide};
    use super::combustion::{fuel_combustion, IndustryFuel, Param};
    use super::steel::{
        allocation_intensity, carbonate_flux_co2, electrode_co2, enterprise, materials_co2, process_carbon_balance, CarbonStream,
        Carbonate, ElectrodeCarbon, Enterprise, Flow, Flux, FluxFactor, Material, StreamCarbon,
    };
    use super::*;
    use crate::pfc::GwpSet;
    use ets_core::Date;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn day(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    fn set() -> FactorSet {
        FactorSet::builtin().unwrap()
    }

    fn err(r: Result<impl std::fmt::Debug>) -> String {
        r.unwrap_err().to_string()
    }

    // ---- IPCC 2006 fallback table ----

    #[test]
    fn ipcc_lookup_by_fuel_name() {
        let f = set();
        let gas = ipcc::lookup("natural_gas", &f).unwrap();
        assert_eq!((gas.ncv_tj_per_gg, gas.ef_tco2_per_tj, gas.carbon_content_tc_per_tj), (d("48.0"), d("56.1"), d("15.3")));
        assert_eq!(gas.status, Status::Confirmed);
        let bfg = ipcc::lookup("blast_furnace_gas", &f).unwrap();
        assert_eq!((bfg.ncv_tj_per_gg, bfg.ef_tco2_per_tj), (d("2.47"), d("260")));
        assert_eq!(f.lookup_single("ipcc2006.ncv.lignite").unwrap().source, "IPCC 2006 Vol.2 Ch.1 Table 1.2");
        assert_eq!(f.lookup_single("ipcc2006.cc.lignite").unwrap().source, "IPCC 2006 Vol.2 Ch.1 Table 1.3");
        let names = ipcc::fuel_names(&f);
        for fuel in [
            "anthracite",
            "coking_coal",
            "other_bituminous_coal",
            "sub_bituminous_coal",
            "lignite",
            "coke_oven_coke",
            "crude_oil",
            "motor_gasoline",
            "gas_diesel_oil",
            "residual_fuel_oil",
            "lpg",
            "natural_gas",
            "blast_furnace_gas",
            "coke_oven_gas",
            "petroleum_coke",
        ] {
            assert!(names.iter().any(|n| n == fuel), "{fuel} missing from {names:?}");
        }
        assert_eq!(names.len(), 15);
    }

    #[test]
    fn ipcc_tables_agree_with_each_other() {
        // Table 1.4 EF = Table 1.3 carbon content × 44/12, published to 3 significant figures:
        // a typo in either table shows up as a gap wider than half the last published digit.
        let f = set();
        for name in ipcc::fuel_names(&f) {
            let x = ipcc::lookup(&name, &f).unwrap();
            let from_cc = x.carbon_content_tc_per_tj * d("44") / d("12");
            let half_digit = if x.ef_tco2_per_tj >= d("100") { d("0.5") } else { d("0.05") };
            assert!((from_cc - x.ef_tco2_per_tj).abs() <= half_digit, "{name}: CC × 44/12 = {from_cc}, EF = {}", x.ef_tco2_per_tj);
        }
    }

    #[test]
    fn ipcc_tier1_combustion() {
        let f = set();
        // 1,000 t × 48.0 GJ/t = 48,000 GJ = 48 TJ; × 56.1 = 2,692.8 t.
        assert_eq!(ipcc::combustion("natural_gas", d("1000"), &f).unwrap(), d("2692.8"));
        // 500 t × 28.2 = 14,100 GJ = 14.1 TJ; × 94.6 = 1,333.86 t.
        assert_eq!(ipcc::combustion("coking_coal", d("500"), &f).unwrap(), d("1333.86"));
        // 100,000 t × 2.47 = 247,000 GJ = 247 TJ; × 260 = 64,220 t.
        assert_eq!(ipcc::combustion("blast_furnace_gas", d("100000"), &f).unwrap(), d("64220"));
        // 2,000 t × 32.5 = 65 TJ; × 97.5 = 6,337.5 t.
        assert_eq!(ipcc::combustion("petroleum_coke", d("2000"), &f).unwrap(), d("6337.5"));
    }

    #[test]
    fn ipcc_rejects_unknown_fuel_and_negative_quantity() {
        let f = set();
        assert_eq!(
            err(ipcc::combustion("peat", d("1"), &f)),
            "invalid fuel = peat: not in the IPCC 2006 fallback table (see ipcc::fuel_names)"
        );
        assert!(ipcc::lookup("", &f).is_err());
        assert!(ipcc::lookup("Natural Gas", &f).is_err());
        assert!(err(ipcc::combustion("lignite", d("-1"), &f)).contains("must not be negative"));
    }

    // ---- combustion with measured or fallback parameters ----

    fn fuel(name: &str, qty: &str, ncv: Param, cc: Param, of: Param) -> IndustryFuel {
        IndustryFuel { fuel: name.into(), consumption: d(qty), ncv_gj_per_unit: ncv, carbon_content_tc_per_gj: cc, oxidation_factor: of }
    }

    #[test]
    fn combustion_measured() {
        let f = set();
        // 1,000 t × 20 GJ/t × 0.027 tC/GJ × 0.99 = 534.6 tC; × 44/12 = 1,960.2 t.
        let m = Param::Measured;
        let r = fuel_combustion(&[fuel("洗精煤", "1000", m(d("20")), m(d("0.027")), m(d("0.99")))], &f).unwrap();
        assert_eq!(r.lines[0].carbon_t, d("534.6"));
        assert_eq!(r.total_co2_t, d("1960.2"));
        assert!(r.lines[0].defaults_used.is_empty());
    }

    #[test]
    fn combustion_fallback_and_mixed() {
        let f = set();
        let m = Param::Measured;
        let fb = Param::Fallback;
        let r = fuel_combustion(&[fuel("coking_coal", "1000", fb, fb, fb), fuel("natural_gas", "100", m(d("49")), fb, m(d("0.99")))], &f)
            .unwrap();
        // Coking coal, all fallback: 1,000 t × 28.2 GJ/t × (25.8 tC/TJ ÷ 1000) × 1 = 727.56 tC;
        // × 44 = 32,012.64; ÷ 12 = 2,667.72 t (= 28.2 TJ × 94.6, the tier-1 result).
        assert_eq!(r.lines[0].carbon_content_tc_per_gj, d("0.0258"));
        assert_eq!(r.lines[0].carbon_t, d("727.56"));
        assert_eq!(r.lines[0].co2_t, d("2667.72"));
        assert_eq!(r.lines[0].co2_t, ipcc::combustion("coking_coal", d("1000"), &f).unwrap());
        let keys: Vec<&str> = r.lines[0].defaults_used.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, ["ipcc2006.ncv.coking_coal", "ipcc2006.cc.coking_coal", "ipcc2006.oxidation_factor"]);
        // Natural gas: 100 t × 49 × 0.0153 × 0.99 = 74.2203 tC; × 44 = 3,265.6932; ÷ 12 = 272.1411 t.
        assert_eq!(r.lines[1].co2_t, d("272.1411"));
        assert_eq!(r.lines[1].defaults_used.len(), 1);
        // Total from summed carbon: 801.7803 tC × 44/12 = 2,939.8611 t.
        assert_eq!(r.total_co2_t, d("2939.8611"));
    }

    #[test]
    fn combustion_rejects_bad_input() {
        let f = set();
        let m = Param::Measured;
        let ok = || fuel("lignite", "10", m(d("12")), m(d("0.0276")), m(d("0.98")));
        let mut bad = ok();
        bad.consumption = d("-10");
        assert_eq!(err(fuel_combustion(&[bad], &f)), "invalid fuel consumption = -10: must not be negative");
        let mut bad = ok();
        bad.oxidation_factor = m(d("1.2"));
        assert_eq!(err(fuel_combustion(&[bad], &f)), "invalid oxidation factor = 1.2: must be between 0 and 1 inclusive");
        let mut bad = ok();
        bad.ncv_gj_per_unit = m(d("0"));
        assert!(fuel_combustion(&[bad], &f).is_err());
        // A fallback for a fuel the table does not have.
        let bad = fuel("peat", "10", Param::Fallback, m(d("0.028")), m(d("1")));
        assert!(err(fuel_combustion(&[bad], &f)).contains("not in the IPCC 2006 fallback table"));
    }

    // ---- cement ----

    fn measured_line() -> ClinkerLine {
        ClinkerLine {
            clinker_t: d("1000000"),
            kiln_dust_t: d("10000"),
            bypass_dust_t: d("0"),
            cao: Oxide::Measured { total: d("0.65"), non_carbonate: d("0.01") },
            mgo: Oxide::Measured { total: d("0.02"), non_carbonate: d("0.005") },
            raw_meal_t: d("1550000"),
            organic_carbon: OrganicCarbon::Measured(d("0.002")),
            combustion_co2_t: d("300000"),
        }
    }

    #[test]
    fn cement_measured_composition() {
        let f = set();
        let r = clinker_line(&measured_line(), &f).unwrap();
        // Calcined mass 1,000,000 + 10,000 dust = 1,010,000 t.
        // CaO: 1,010,000 × (0.65 − 0.01) = 646,400; × 44.01 = 28,448,064; ÷ 56.08 = 507,276.46219686…
        // MgO: 1,010,000 × (0.02 − 0.005) = 15,150; × 44.01 = 666,751.5; ÷ 40.30 = 16,544.70223325…
        // Sum 523,821.16443011… → 523,821.16443 (6 dp).
        assert_eq!(r.carbonate_co2_t, d("523821.16443"));
        // Organic: 1,550,000 × 0.002 = 3,100 tC; × 44/12 = 11,366.666667.
        assert_eq!(r.organic_co2_t, d("11366.666667"));
        assert_eq!(r.process_co2_t, d("535187.831097"));
        // + 300,000 combustion = 835,187.831097; ÷ 1,000,000 t clinker = 0.8352 (4 dp).
        assert_eq!(r.total_co2_t, d("835187.831097"));
        assert_eq!(r.intensity_t_per_t_clinker, d("0.8352"));
        assert!(r.defaults_used.is_empty());
    }

    #[test]
    fn cement_default_composition() {
        let f = set();
        let line = ClinkerLine {
            clinker_t: d("100000"),
            kiln_dust_t: d("0"),
            bypass_dust_t: d("0"),
            cao: Oxide::Default,
            mgo: Oxide::Default,
            raw_meal_t: d("155000"),
            organic_carbon: OrganicCarbon::DefaultLow,
            combustion_co2_t: d("90000"),
        };
        let r = clinker_line(&line, &f).unwrap();
        // CaO default 0.65, all from carbonates: 100,000 × 0.65 × 44.01 = 2,860,650; ÷ 56.08 =
        // 51,010.16405135… → 51,010.164051. MgO default 0 adds nothing.
        assert_eq!(r.carbonate_co2_t, d("51010.164051"));
        // TOC low default 0.1%: 155,000 × 0.001 = 155 tC; × 44/12 = 568.333333.
        assert_eq!(r.organic_co2_t, d("568.333333"));
        // 51,010.164051 + 568.333333 + 90,000 = 141,578.497384; ÷ 100,000 = 1.41578… → 1.4158.
        assert_eq!(r.total_co2_t, d("141578.497384"));
        assert_eq!(r.intensity_t_per_t_clinker, d("1.4158"));
        let keys: Vec<&str> = r.defaults_used.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, [cement::CAO_DEFAULT_KEY, cement::MGO_DEFAULT_KEY, cement::TOC_DEFAULT_LOW_KEY]);
        assert!(r.defaults_used.iter().all(|u| u.status == Status::Uncertain));
        // TOC high default 0.3%: 465 tC × 44/12 = 1,705 t.
        let high = clinker_line(&ClinkerLine { organic_carbon: OrganicCarbon::DefaultHigh, ..line }, &f).unwrap();
        assert_eq!(high.organic_co2_t, d("1705"));
    }

    #[test]
    fn cement_stoichiometry_comes_from_molar_masses() {
        let f = set();
        for (species, mass) in [("co2", "44.01"), ("cao", "56.08"), ("mgo", "40.30"), ("caco3", "100.09"), ("camg_co3_2", "184.40")] {
            let e = f.lookup_single(&format!("chem.molar_mass.{species}")).unwrap();
            assert_eq!((e.value, e.status, e.source.as_str()), (d(mass), Status::Confirmed, "IPCC 2006 Vol.3 Ch.2"));
        }
        // 1 t of carbonate CaO: 44.01 / 56.08 = 0.784771… tCO2 (the IPCC 0.785).
        let line = ClinkerLine {
            clinker_t: d("1"),
            kiln_dust_t: d("0"),
            bypass_dust_t: d("0"),
            cao: Oxide::Measured { total: d("1"), non_carbonate: d("0") },
            mgo: Oxide::Measured { total: d("0"), non_carbonate: d("0") },
            raw_meal_t: d("0"),
            organic_carbon: OrganicCarbon::Measured(d("0")),
            combustion_co2_t: d("0"),
        };
        assert_eq!(clinker_line(&line, &f).unwrap().carbonate_co2_t, d("0.784772"));
    }

    #[test]
    fn cement_rejects_bad_input() {
        let f = set();
        let mut bad = measured_line();
        bad.cao = Oxide::Measured { total: d("0.65"), non_carbonate: d("0.7") };
        assert_eq!(err(clinker_line(&bad, &f)), "invalid non-carbonate CaO fraction = 0.7: must not exceed the total oxide fraction");
        let mut bad = measured_line();
        bad.mgo = Oxide::Measured { total: d("1.2"), non_carbonate: d("0") };
        assert_eq!(err(clinker_line(&bad, &f)), "invalid MgO fraction = 1.2: must be between 0 and 1 inclusive");
        let mut bad = measured_line();
        bad.clinker_t = d("-1");
        assert!(err(clinker_line(&bad, &f)).contains("must not be negative"));
        let mut bad = measured_line();
        bad.organic_carbon = OrganicCarbon::Measured(d("1.5"));
        assert!(err(clinker_line(&bad, &f)).contains("between 0 and 1"));
        // No clinker: no intensity.
        let mut bad = measured_line();
        bad.clinker_t = d("0");
        assert_eq!(err(clinker_line(&bad, &f)), "invalid output for the intensity (t) = 0: must be greater than zero");
    }

    // ---- steel ----

    fn y2024() -> Date {
        day("2024-12-31")
    }

    #[test]
    fn steel_fluxes_stoichiometric_and_default() {
        let f = set();
        let stoich = [
            Flux { carbonate: Carbonate::Limestone, quantity_t: d("10000"), factor: FluxFactor::Stoichiometric { purity: d("0.95") } },
            Flux { carbonate: Carbonate::Dolomite, quantity_t: d("5000"), factor: FluxFactor::Stoichiometric { purity: d("0.9") } },
        ];
        // Limestone: 10,000 × 0.95 × 44.01 = 418,095; ÷ 100.09 = 4,177.19052852…
        // Dolomite: 5,000 × 0.9 × 2 × 44.01 = 396,090; ÷ 184.40 = 2,147.99349240…
        // Sum 6,325.18402093… → 6,325.184021.
        assert_eq!(carbonate_flux_co2(&stoich, &f).unwrap(), d("6325.184021"));
        // Table A.2 defaults: 10,000 × 0.440 + 5,000 × 0.476 = 4,400 + 2,380 = 6,780.
        let on = FluxFactor::GuidelineDefault { on: y2024() };
        let defaults = [
            Flux { carbonate: Carbonate::Limestone, quantity_t: d("10000"), factor: on },
            Flux { carbonate: Carbonate::Dolomite, quantity_t: d("5000"), factor: on },
        ];
        assert_eq!(carbonate_flux_co2(&defaults, &f).unwrap(), d("6780"));
        // The guideline's factors apply from 2024; none before.
        let early =
            [Flux { carbonate: Carbonate::Limestone, quantity_t: d("1"), factor: FluxFactor::GuidelineDefault { on: day("2023-12-31") } }];
        assert_eq!(err(carbonate_flux_co2(&early, &f)), "no factor 'cn.steel.ef.limestone' is valid on 2023-12-31");
        let impure =
            [Flux { carbonate: Carbonate::Limestone, quantity_t: d("1"), factor: FluxFactor::Stoichiometric { purity: d("1.05") } }];
        assert_eq!(err(carbonate_flux_co2(&impure, &f)), "invalid carbonate purity = 1.05: must be between 0 and 1 inclusive");
        let negative = [Flux { carbonate: Carbonate::Dolomite, quantity_t: d("-5"), factor: on }];
        assert!(err(carbonate_flux_co2(&negative, &f)).contains("must not be negative"));
    }

    #[test]
    fn steel_electrodes() {
        let f = set();
        // 1,000 t × 0.99 C = 990 tC; × 44 = 43,560; ÷ 12 = 3,630 t.
        assert_eq!(electrode_co2(d("1000"), ElectrodeCarbon::Measured(d("0.99")), &f).unwrap(), d("3630"));
        // 1,000 t × 3.663 (Table A.2) = 3,663 t.
        assert_eq!(electrode_co2(d("1000"), ElectrodeCarbon::GuidelineDefault { on: y2024() }, &f).unwrap(), d("3663"));
        assert!(electrode_co2(d("1"), ElectrodeCarbon::Measured(d("1.1")), &f).is_err());
        assert!(electrode_co2(d("-1"), ElectrodeCarbon::Measured(d("0.99")), &f).is_err());
    }

    fn ironmaking() -> Vec<CarbonStream> {
        vec![
            // Coke 400,000 t × 0.85 = 340,000 tC.
            CarbonStream { flow: Flow::Input, quantity: d("400000"), carbon: StreamCarbon::MassFraction(d("0.85")) },
            // Injection coal 150,000 t × 25 GJ/t × 0.026 tC/GJ = 97,500 tC.
            CarbonStream {
                flow: Flow::Input,
                quantity: d("150000"),
                carbon: StreamCarbon::Energy { ncv_gj_per_unit: d("25"), carbon_content_tc_per_gj: d("0.026") },
            },
            // Blast-furnace gas 100,000 × 10^4 Nm³ × 33 GJ/10^4 Nm³ × 0.0708 = 233,640 tC.
            CarbonStream {
                flow: Flow::Output,
                quantity: d("100000"),
                carbon: StreamCarbon::Energy { ncv_gj_per_unit: d("33"), carbon_content_tc_per_gj: d("0.0708") },
            },
            // Hot metal 1,000,000 t × 0.045 = 45,000 tC.
            CarbonStream { flow: Flow::Output, quantity: d("1000000"), carbon: StreamCarbon::MassFraction(d("0.045")) },
        ]
    }

    #[test]
    fn steel_carbon_balance_and_intensity() {
        // In 437,500 tC, out 278,640 tC, net 158,860 tC; × 44 = 6,989,840; ÷ 12 = 582,486.666667.
        let iron = process_carbon_balance(&ironmaking()).unwrap();
        assert_eq!((iron.carbon_in_t, iron.carbon_out_t), (d("437500"), d("278640")));
        assert_eq!(iron.co2_t, d("582486.666667"));
        // Sintering: coke breeze 50,000 t × 0.8 = 40,000 tC; anthracite 20,000 t × 25.024 ×
        // 0.02749 = 13,758.1952 tC; 53,758.1952 tC × 44 = 2,365,360.5888; ÷ 12 = 197,113.3824.
        let sinter = process_carbon_balance(&[
            CarbonStream { flow: Flow::Input, quantity: d("50000"), carbon: StreamCarbon::MassFraction(d("0.8")) },
            CarbonStream {
                flow: Flow::Input,
                quantity: d("20000"),
                carbon: StreamCarbon::Energy { ncv_gj_per_unit: d("25.024"), carbon_content_tc_per_gj: d("0.02749") },
            },
        ])
        .unwrap();
        assert_eq!(sinter.co2_t, d("197113.3824"));
        // I_s = (582,486.666667 + 197,113.3824) / 1,000,000 t iron = 0.779600049… → 0.7796.
        assert_eq!(allocation_intensity(iron.co2_t, sinter.co2_t, d("1000000")).unwrap(), d("0.7796"));
        assert!(allocation_intensity(iron.co2_t, sinter.co2_t, d("0")).is_err());
        assert!(allocation_intensity(d("-1"), sinter.co2_t, d("1")).is_err());
    }

    #[test]
    fn steel_carbon_balance_rejects_bad_input() {
        let mut streams = ironmaking();
        streams[0].flow = Flow::Output;
        assert!(err(process_carbon_balance(&streams)).contains("outputs exceed inputs"));
        let mut streams = ironmaking();
        streams[3].carbon = StreamCarbon::MassFraction(d("1.5"));
        assert_eq!(err(process_carbon_balance(&streams)), "invalid stream carbon fraction = 1.5: must be between 0 and 1 inclusive");
        let mut streams = ironmaking();
        streams[1].quantity = d("-1");
        assert!(process_carbon_balance(&streams).is_err());
    }

    #[test]
    fn steel_enterprise_level() {
        let f = set();
        let on = y2024();
        let fluxes = [
            Flux { carbonate: Carbonate::Limestone, quantity_t: d("10000"), factor: FluxFactor::GuidelineDefault { on } },
            Flux { carbonate: Carbonate::Dolomite, quantity_t: d("5000"), factor: FluxFactor::GuidelineDefault { on } },
        ];
        let raw =
            [Material { name: "scrap".into(), quantity_t: d("100000") }, Material { name: "ferrosilicon".into(), quantity_t: d("2000") }];
        let products =
            [Material { name: "crude_steel".into(), quantity_t: d("1000000") }, Material { name: "tar".into(), quantity_t: d("10000") }];
        let input = Enterprise {
            fuel_co2_t: d("1000000"),
            fluxes: &fluxes,
            electrode_t: d("1000"),
            electrode_carbon: ElectrodeCarbon::GuidelineDefault { on },
            raw_materials: &raw,
            carbon_products: &products,
            on,
        };
        let r = enterprise(&input, &f).unwrap();
        assert_eq!(r.carbonate_co2_t, d("6780")); // 4,400 + 2,380
        assert_eq!(r.electrode_co2_t, d("3663")); // 1,000 × 3.663
        assert_eq!(r.raw_material_co2_t, d("3714")); // 100,000 × 0.037 + 2,000 × 0.007 = 3,700 + 14
        assert_eq!(r.carbon_products_co2_t, d("63990")); // 1,000,000 × 0.037 + 10,000 × 2.699 = 37,000 + 26,990
                                                         // 1,000,000 + 6,780 + 3,663 + 3,714 − 63,990 = 950,167.
        assert_eq!(r.total_co2_t, d("950167"));

        let copper = [Material { name: "copper".into(), quantity_t: d("1") }];
        assert_eq!(
            err(materials_co2(&copper, on, &f)),
            "invalid steel material = copper: not in the guideline's Table A.2 (cn.steel.ef.*); unlisted materials are not accounted"
        );
        let too_much = [Material { name: "crude_steel".into(), quantity_t: d("100000000") }];
        let bad = Enterprise { carbon_products: &too_much, ..input.clone() };
        assert!(err(enterprise(&bad, &f)).contains("carbon in products exceeds the emissions"));
        let bad = Enterprise { fuel_co2_t: d("-1"), ..input };
        assert!(enterprise(&bad, &f).is_err());
    }

    // ---- aluminium ----

    fn cell(impurities: AnodeImpurities) -> Electrolysis {
        Electrolysis { al_liquid_t: d("100000"), net_anode_t: d("41000"), impurities, cf4_t: d("5"), c2f6_t: d("0.5"), gwp: GwpSet::Ar5 }
    }

    #[test]
    fn aluminium_measured_and_default_impurities() {
        let f = set();
        // 41,000 t × (1 − 0.018 − 0.003 = 0.979) = 40,139 tC; × 44 = 1,766,116; ÷ 12 = 147,176.333333.
        let measured = AnodeImpurities::Measured { sulphur: d("0.018"), ash: d("0.003") };
        let (co2, used) = anode_co2(d("41000"), measured, &f).unwrap();
        assert_eq!(co2, d("147176.333333"));
        assert!(used.is_empty());
        // Defaults S 2%, ash 0.4%: 41,000 × 0.976 = 40,016 tC; × 44 = 1,760,704; ÷ 12 = 146,725.333333.
        let r = electrolysis(&cell(AnodeImpurities::Default), &f).unwrap();
        assert_eq!(r.anode_co2_t, d("146725.333333"));
        // PFC, AR5: 5 × 6,630 + 0.5 × 11,100 = 33,150 + 5,550 = 38,700 tCO2e.
        assert_eq!(r.pfc_co2e_t, d("38700"));
        // 185,425.333333 ÷ 100,000 t Al = 1.85425… → 1.8543.
        assert_eq!(r.total_co2e_t, d("185425.333333"));
        assert_eq!(r.intensity_t_per_t_al, d("1.8543"));
        let keys: Vec<(&str, Decimal)> = r.defaults_used.iter().map(|u| (u.key.as_str(), u.value)).collect();
        assert_eq!(keys, [(aluminium::SULPHUR_DEFAULT_KEY, d("0.02")), (aluminium::ASH_DEFAULT_KEY, d("0.004"))]);
        assert!(r.defaults_used.iter().all(|u| u.status == Status::Uncertain));
    }

    #[test]
    fn aluminium_rejects_bad_input() {
        let f = set();
        let heavy = AnodeImpurities::Measured { sulphur: d("0.7"), ash: d("0.5") };
        assert_eq!(
            err(anode_co2(d("1"), heavy, &f)),
            "invalid anode carbon fraction (1 - S - ash) = -0.2: sulphur and ash exceed the anode mass; must not be negative"
        );
        let s = AnodeImpurities::Measured { sulphur: d("1.5"), ash: d("0") };
        assert_eq!(err(anode_co2(d("1"), s, &f)), "invalid anode sulphur fraction = 1.5: must be between 0 and 1 inclusive");
        assert!(err(anode_co2(d("-1"), AnodeImpurities::Default, &f)).contains("must not be negative"));
        let mut bad = cell(AnodeImpurities::Default);
        bad.cf4_t = d("-1");
        assert!(electrolysis(&bad, &f).is_err());
        let mut bad = cell(AnodeImpurities::Default);
        bad.al_liquid_t = d("0");
        assert!(err(electrolysis(&bad, &f)).contains("must be greater than zero"));
    }

    #[test]
    fn intensity_rounds_half_up_at_four_places() {
        assert_eq!(intensity(d("1.00005"), d("1")).unwrap(), d("1.0001"));
        assert_eq!(intensity(d("1.00004999"), d("1")).unwrap(), d("1"));
        assert_eq!(intensity(d("2"), d("3")).unwrap(), d("0.6667"));
    }
}
