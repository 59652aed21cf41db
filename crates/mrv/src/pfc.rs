//! Aluminium electrolysis perfluorocarbons (CF4, C2F6) converted to CO2e with a selectable GWP
//! set.
//!
//! Method id [`METHOD_ID`], version [`METHOD_VERSION`]. Scope from china-ets.md section 2.6
//! ("aluminium also CF4 and C2F6, GWP per sector guideline", `[DRAFT2526]`, `[ICAP-EXP]`). The
//! sector guideline's GWP choice is not in the domain files, so the caller selects the set.
//! GWP values are in the factor data under `gwp.<SET>.<GAS>`, sourced `IPCC AR4 WG1`,
//! `IPCC AR5 WG1`, `IPCC AR6 WG1` (100-year).

use crate::error::{MrvError, Result};
use crate::factors::FactorSet;
use crate::num::{self, add, mul, round_result};
use rust_decimal::Decimal;
use std::str::FromStr;

pub const METHOD_ID: &str = "aluminium.pfc";
pub const METHOD_VERSION: u32 = 1;

/// IPCC assessment report whose 100-year GWPs are used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GwpSet {
    Ar4,
    Ar5,
    Ar6,
}

impl GwpSet {
    pub fn name(self) -> &'static str {
        match self {
            GwpSet::Ar4 => "AR4",
            GwpSet::Ar5 => "AR5",
            GwpSet::Ar6 => "AR6",
        }
    }
}

impl FromStr for GwpSet {
    type Err = MrvError;

    /// Accepts `AR4`, `AR5`, `AR6` (any case).
    fn from_str(s: &str) -> Result<GwpSet> {
        match s.trim().to_ascii_uppercase().as_str() {
            "AR4" => Ok(GwpSet::Ar4),
            "AR5" => Ok(GwpSet::Ar5),
            "AR6" => Ok(GwpSet::Ar6),
            _ => Err(MrvError::UnknownGwpSet(s.to_string())),
        }
    }
}

/// The GWP (tCO2e per t gas) of `gas` (`CF4` or `C2F6`) in `set`, from the factor data.
pub fn gwp(set: GwpSet, gas: &str, factors: &FactorSet) -> Result<Decimal> {
    Ok(factors.lookup_single(&format!("gwp.{}.{gas}", set.name()))?.value)
}

/// `E = m_CF4 × GWP_CF4 + m_C2F6 × GWP_C2F6` in tCO2e, masses in tonnes of gas.
pub fn pfc_co2e(cf4_t: Decimal, c2f6_t: Decimal, set: GwpSet, factors: &FactorSet) -> Result<Decimal> {
    num::non_negative("CF4 mass (t)", cf4_t)?;
    num::non_negative("C2F6 mass (t)", c2f6_t)?;
    let cf4 = mul(cf4_t, gwp(set, "CF4", factors)?, "CF4 × GWP")?;
    let c2f6 = mul(c2f6_t, gwp(set, "C2F6", factors)?, "C2F6 × GWP")?;
    Ok(round_result(add(cf4, c2f6, "PFC sum")?))
}

/// As [`pfc_co2e`] with the GWP set named as text (e.g. from a monitoring plan).
pub fn pfc_co2e_named(cf4_t: Decimal, c2f6_t: Decimal, set: &str, factors: &FactorSet) -> Result<Decimal> {
    pfc_co2e(cf4_t, c2f6_t, set.parse()?, factors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn pfc_each_gwp_set() {
        let f = FactorSet::builtin().unwrap();
        // 10 t CF4 + 1 t C2F6, hand-computed.
        assert_eq!(pfc_co2e(d("10"), d("1"), GwpSet::Ar4, &f).unwrap(), d("86100")); // 73,900 + 12,200
        assert_eq!(pfc_co2e(d("10"), d("1"), GwpSet::Ar5, &f).unwrap(), d("77400")); // 66,300 + 11,100
        assert_eq!(pfc_co2e(d("10"), d("1"), GwpSet::Ar6, &f).unwrap(), d("86200")); // 73,800 + 12,400
        assert_eq!(pfc_co2e_named(d("0.5"), d("0.25"), "ar5", &f).unwrap(), d("6090")); // 3,315 + 2,775
        assert_eq!(f.lookup_single("gwp.AR6.CF4").unwrap().source, "IPCC AR6 WG1");
    }

    #[test]
    fn pfc_rejects_unknown_set_and_negative_mass() {
        let f = FactorSet::builtin().unwrap();
        let err = pfc_co2e_named(d("1"), d("1"), "SAR", &f).unwrap_err();
        assert_eq!(err, MrvError::UnknownGwpSet("SAR".into()));
        assert_eq!(err.to_string(), "unknown GWP set 'SAR': expected AR4, AR5 or AR6");
        let err = pfc_co2e(d("-1"), d("0"), GwpSet::Ar6, &f).unwrap_err().to_string();
        assert_eq!(err, "invalid CF4 mass (t) = -1: must not be negative");
        assert!(gwp(GwpSet::Ar5, "SF6", &f).is_err());
    }
}
