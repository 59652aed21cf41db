//! The EU market stability reserve rule, driven by the total number of allowances in
//! circulation (TNAC). Defaults from economics.md §4.2 and mechanisms.md §3.1 ([S35], [S36],
//! [S37]): intake of 24% of TNAC above 833 M; between 833 M and 1,096 M (2023/852) the intake is
//! TNAC − 833 M; release of 100 M when TNAC falls below 400 M (all holdings if fewer); holdings
//! above 400 M invalidated. Every value is a parameter.
//!
//! The band's ends are read as economics.md writes them, `833 < TNAC ≤ 1,096` (mechanisms.md §9
//! item 2 notes the legal wording is unconfirmed; at 1,096 M the two rules differ by 0.04 M).

use crate::SimError;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Msr {
    /// Intake above this TNAC (Mt).
    pub upper_mt: f64,
    /// Release below this TNAC (Mt).
    pub lower_mt: f64,
    /// Share of TNAC taken in.
    pub intake_rate: f64,
    /// Band rule: for upper < TNAC ≤ band_top the intake is TNAC − upper (None: 2018 rules).
    pub band_top_mt: Option<f64>,
    /// Released per year below the lower threshold (Mt).
    pub release_mt: f64,
    /// Holdings above this are cancelled (None: no invalidation).
    pub invalidate_above_mt: Option<f64>,
    /// Years between the TNAC measured and the supply it changes (1: TNAC of year y changes
    /// the supply of year y + 1; the EU splits it over September–August, which a yearly model
    /// approximates).
    pub lag_years: usize,
    pub initial_holdings_mt: f64,
}

impl Default for Msr {
    fn default() -> Msr {
        Msr {
            upper_mt: 833.0,
            lower_mt: 400.0,
            intake_rate: 0.24,
            band_top_mt: Some(1096.0),
            release_mt: 100.0,
            invalidate_above_mt: Some(400.0),
            lag_years: 1,
            initial_holdings_mt: 0.0,
        }
    }
}

impl Msr {
    pub fn validate(&self) -> Result<(), SimError> {
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        if !(ok(self.upper_mt) && ok(self.lower_mt) && ok(self.release_mt) && ok(self.initial_holdings_mt)) {
            return Err(SimError::new("MSR thresholds, release and holdings must be numbers ≥ 0"));
        }
        if self.lower_mt > self.upper_mt {
            return Err(SimError::new(format!("MSR lower threshold {} is above the upper {}", self.lower_mt, self.upper_mt)));
        }
        if !(0.0..=1.0).contains(&self.intake_rate) {
            return Err(SimError::new(format!("MSR intake rate {} must be between 0 and 1", self.intake_rate)));
        }
        if self.band_top_mt.is_some_and(|b| b < self.upper_mt) {
            return Err(SimError::new("MSR band top is below the upper threshold"));
        }
        if self.lag_years == 0 {
            return Err(SimError::new("MSR lag must be at least one year (TNAC is known only after the year)"));
        }
        Ok(())
    }

    /// Intake for a TNAC (Mt).
    pub fn intake(&self, tnac_mt: f64) -> f64 {
        if tnac_mt <= self.upper_mt {
            return 0.0;
        }
        match self.band_top_mt {
            Some(top) if tnac_mt <= top => tnac_mt - self.upper_mt,
            _ => self.intake_rate * tnac_mt,
        }
    }

    /// Intake in whole allowances: the rate applied in basis points, rounded half up (the
    /// Commission's published figures: 24% of 1,654,909,824 = 397,178,357.76 → 397,178,358).
    pub fn intake_allowances(&self, tnac: u64) -> u64 {
        let upper = (self.upper_mt * 1e6).round() as u64;
        if tnac <= upper {
            return 0;
        }
        if let Some(top) = self.band_top_mt {
            if tnac <= (top * 1e6).round() as u64 {
                return tnac - upper;
            }
        }
        let bp = (self.intake_rate * 10_000.0).round() as u128;
        ((u128::from(tnac) * bp + 5_000) / 10_000) as u64
    }

    /// Release for a TNAC given the reserve's holdings (Mt).
    pub fn release(&self, tnac_mt: f64, holdings_mt: f64) -> f64 {
        if tnac_mt < self.lower_mt {
            self.release_mt.min(holdings_mt.max(0.0))
        } else {
            0.0
        }
    }
}

/// One year of the reserve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct MsrYear {
    pub intake_mt: f64,
    pub release_mt: f64,
    pub invalidated_mt: f64,
    /// Holdings at the end of the year.
    pub holdings_mt: f64,
}

/// The reserve's path from a TNAC path: supply changes per year (negative = intake) and the
/// reserve's years. Intake is limited to the year's supply before the reserve acts.
pub fn path(msr: &Msr, tnac_mt: &[f64], supply_mt: &[f64]) -> (Vec<f64>, Vec<MsrYear>) {
    let n = tnac_mt.len();
    let mut change = vec![0.0; n];
    let mut years = vec![MsrYear::default(); n];
    let mut holdings = msr.initial_holdings_mt;
    for t in 0..n {
        let mut y = MsrYear::default();
        if t >= msr.lag_years {
            let tnac = tnac_mt[t - msr.lag_years];
            y.intake_mt = msr.intake(tnac).min(supply_mt[t].max(0.0));
            y.release_mt = msr.release(tnac, holdings);
        }
        holdings += y.intake_mt - y.release_mt;
        if let Some(limit) = msr.invalidate_above_mt {
            if holdings > limit {
                y.invalidated_mt = holdings - limit;
                holdings = limit;
            }
        }
        y.holdings_mt = holdings;
        change[t] = y.release_mt - y.intake_mt;
        years[t] = y;
    }
    (change, years)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_t1_band_rule_2025() {
        // TNAC 1,023,494,202: 24% would be 245,638,608.48; in the band the intake is
        // TNAC − 833,000,000 = 190,494,202 (mechanisms.md §10 T1, matches the Commission).
        let msr = Msr::default();
        assert_eq!(msr.intake_allowances(1_023_494_202), 190_494_202);
        assert!((msr.intake(1_023.494_202) - 190.494_202).abs() < 1e-9);
    }

    #[test]
    fn published_intakes_above_the_band() {
        // 2018 rules (no band): TNAC 1,654,909,824 → 397,178,358; TNAC for 2022 1,134,794,738
        // (above 1,096 M) → 272,350,737 (mechanisms.md §3.1).
        let rules_2018 = Msr { band_top_mt: None, ..Msr::default() };
        assert_eq!(rules_2018.intake_allowances(1_654_909_824), 397_178_358);
        assert_eq!(Msr::default().intake_allowances(1_134_794_738), 272_350_737);
    }

    #[test]
    fn thresholds() {
        let msr = Msr::default();
        assert_eq!(msr.intake(833.0), 0.0);
        assert!((msr.intake(833.5) - 0.5).abs() < 1e-12);
        assert!((msr.intake(1096.0) - 263.0).abs() < 1e-9);
        assert!((msr.intake(1200.0) - 288.0).abs() < 1e-9);
        assert_eq!(msr.intake(600.0), 0.0);
        assert_eq!(msr.release(400.0, 500.0), 0.0);
        assert_eq!(msr.release(399.9, 500.0), 100.0);
        assert_eq!(msr.release(100.0, 30.0), 30.0);
    }

    #[test]
    fn path_applies_lag_limit_and_invalidation() {
        let msr = Msr::default();
        // TNAC 1,500 in year 0 → intake 360 in year 1; 300 in year 1 → release 100 in year 2.
        let (change, years) = path(&msr, &[1500.0, 300.0, 600.0], &[1000.0, 1000.0, 1000.0]);
        assert_eq!(change[0], 0.0);
        assert!((change[1] + 360.0).abs() < 1e-9);
        // Holdings 360 (≤ 400, nothing invalidated), then 100 released.
        assert_eq!(years[1].invalidated_mt, 0.0);
        assert!((change[2] - 100.0).abs() < 1e-9);
        assert!((years[2].holdings_mt - 260.0).abs() < 1e-9);
        // Intake can't exceed the year's supply; holdings above 400 are cancelled.
        let (change, years) = path(&msr, &[3000.0, 0.0], &[1000.0, 500.0]);
        assert!((change[1] + 500.0).abs() < 1e-9);
        assert!((years[1].invalidated_mt - 100.0).abs() < 1e-9);
        assert!((years[1].holdings_mt - 400.0).abs() < 1e-9);
    }
}
