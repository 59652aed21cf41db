//! Monitoring plans: China's data-quality control plan and the EU monitoring plan with tiers.
//!
//! A plan belongs to one entity and one reporting year. It lists the source streams of the
//! entity's emission units (fuel combustion, process emissions, PFCs, purchased electricity and
//! heat), each parameter of a stream and how it is determined (measured: by which standard, how
//! often, in which lab, with which instrument; or a default: which factor of the factor data),
//! and the instruments with their calibration dates. Under the EU regime each stream also has
//! the activity-data tier it applies, and the instrument that measures the activity data must
//! meet that tier's uncertainty (`eu_mrr::meets_tier`).
//!
//! [`MonitoringPlan::validate`] checks a plan on its own and against the factor data; the MRV
//! state machine adds the checks that need the registered units (every stream's unit belongs to
//! the entity). Plans are versioned there: a change is a new version with a reason.

use crate::eu_mrr::{meets_tier, Tier};
use crate::factors::FactorSet;
use crate::monthly::{Fuel, YearMonth};
use ets_core::{check_identifier, Date};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Which kind of plan, and so which rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// China's data-quality control plan (数据质量控制计划), due by 31 Dec of the year before.
    ChinaDataQuality,
    /// EU MRR monitoring plan: every stream has an activity-data tier.
    EuMonitoring,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamKind {
    FuelCombustion {
        fuel: Fuel,
    },
    /// Process emissions of a named material (carbonate, clinker, anode, ...).
    Process {
        material: String,
    },
    /// Aluminium CF4 and C2F6 (anode effects).
    Pfc,
    PurchasedElectricity,
    PurchasedHeat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameter {
    /// Fuel or material quantity (t, MWh, GJ).
    ActivityData,
    NetCalorificValue,
    CarbonContent,
    OxidationFactor,
    EmissionFactor,
    ConversionFactor,
    /// Anode-effect minutes or overvoltage for PFCs.
    AnodeEffect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    PerBatch,
    Daily,
    Monthly,
    Annual,
}

/// How a parameter's value is obtained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Determination {
    /// Measured, under a standard (e.g. `GB/T 213` for NCV), at a frequency, by a lab (for
    /// sampled parameters) or with an instrument of the plan (for metered ones).
    Measured { standard: String, frequency: Frequency, lab: Option<String>, instrument: Option<String> },
    /// A default value: the key of a factor in the factor data.
    Default { factor: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterPlan {
    pub parameter: Parameter,
    pub determination: Determination,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStream {
    /// The id monthly records use (`source_stream` column).
    pub id: String,
    pub unit: String,
    pub kind: StreamKind,
    /// Activity-data tier (EU regime only, where it is required).
    pub tier: Option<Tier>,
    pub parameters: Vec<ParameterPlan>,
}

/// A meter, weighbridge or analyser.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instrument {
    pub id: String,
    pub description: String,
    /// Expanded uncertainty over the reporting period, as a fraction (0.025 = ±2.5%).
    pub uncertainty: Decimal,
    pub calibrated_on: Date,
    /// The next calibration is due on this day; data of months ending after it were metered by
    /// an instrument out of calibration.
    pub calibration_due: Date,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitoringPlan {
    pub entity: String,
    pub year: i32,
    pub regime: Regime,
    pub source_streams: Vec<SourceStream>,
    pub instruments: Vec<Instrument>,
}

/// The parameters a stream kind must plan for.
fn required(kind: &StreamKind) -> &'static [Parameter] {
    match kind {
        StreamKind::FuelCombustion { .. } => {
            &[Parameter::ActivityData, Parameter::NetCalorificValue, Parameter::CarbonContent, Parameter::OxidationFactor]
        }
        StreamKind::Process { .. } => &[Parameter::ActivityData, Parameter::EmissionFactor],
        StreamKind::Pfc => &[Parameter::ActivityData, Parameter::AnodeEffect],
        StreamKind::PurchasedElectricity | StreamKind::PurchasedHeat => &[Parameter::ActivityData, Parameter::EmissionFactor],
    }
}

impl MonitoringPlan {
    /// Every problem of the plan, each as one message; empty if the plan is valid.
    pub fn problems(&self, factors: &FactorSet) -> Vec<String> {
        let mut out = Vec::new();
        let mut err = |m: String| out.push(m);
        if let Err(m) = check_identifier("entity", &self.entity) {
            err(m);
        }
        if !(1900..=9999).contains(&self.year) {
            err(format!("year {} must be between 1900 and 9999", self.year));
            return out;
        }
        if self.source_streams.is_empty() {
            err("a plan needs at least one source stream".into());
        }
        let year_start = Date::from_ymd(self.year, 1, 1).expect("valid year");
        let year_end = Date::from_ymd(self.year, 12, 31).expect("valid year");
        let mut instrument_ids = BTreeSet::new();
        for i in &self.instruments {
            if let Err(m) = check_identifier("instrument id", &i.id) {
                err(m);
            }
            if !instrument_ids.insert(i.id.as_str()) {
                err(format!("instrument '{}' is listed twice", i.id));
            }
            if i.uncertainty < Decimal::ZERO || i.uncertainty >= Decimal::ONE {
                err(format!("instrument '{}': uncertainty {} must be a fraction in [0, 1)", i.id, i.uncertainty));
            }
            if i.calibration_due <= i.calibrated_on {
                err(format!(
                    "instrument '{}': calibration due {} must be after its calibration on {}",
                    i.id, i.calibration_due, i.calibrated_on
                ));
            }
        }
        let mut stream_ids = BTreeSet::new();
        for s in &self.source_streams {
            let at = format!("source stream '{}'", s.id);
            if let Err(m) = check_identifier("source stream id", &s.id) {
                err(m);
            }
            if let Err(m) = check_identifier("emission unit id", &s.unit) {
                err(format!("{at}: {m}"));
            }
            if !stream_ids.insert((s.unit.as_str(), s.id.as_str())) {
                err(format!("{at} of unit '{}' is listed twice", s.unit));
            }
            let mut planned = BTreeSet::new();
            for p in &s.parameters {
                if !planned.insert(p.parameter) {
                    err(format!("{at}: parameter {:?} is planned twice", p.parameter));
                }
                match &p.determination {
                    Determination::Default { factor } => {
                        let known = [year_start, year_end].iter().any(|d| factors.lookup(factor, *d).is_ok());
                        if !known {
                            err(format!(
                                "{at}: default factor '{factor}' for {:?} is not in the factor data for {}",
                                p.parameter, self.year
                            ));
                        }
                    }
                    Determination::Measured { standard, instrument, lab, .. } => {
                        if standard.trim().is_empty() {
                            err(format!("{at}: measured {:?} needs the standard it is measured under", p.parameter));
                        }
                        if let Some(id) = instrument {
                            if !instrument_ids.contains(id.as_str()) && !self.instruments.iter().any(|i| &i.id == id) {
                                err(format!("{at}: {:?} is measured with instrument '{id}', which the plan does not list", p.parameter));
                            }
                        }
                        if instrument.is_none() && lab.is_none() {
                            err(format!("{at}: measured {:?} needs a lab or an instrument", p.parameter));
                        }
                    }
                }
            }
            for need in required(&s.kind) {
                if !planned.contains(need) {
                    err(format!("{at}: {:?} streams must plan {:?}", s.kind, need));
                }
            }
            if self.regime == Regime::EuMonitoring {
                self.check_tier(s, factors, year_end, &mut err);
            }
        }
        out
    }

    fn check_tier(&self, s: &SourceStream, factors: &FactorSet, on: Date, err: &mut impl FnMut(String)) {
        let at = format!("source stream '{}'", s.id);
        let Some(tier) = s.tier else {
            err(format!("{at}: an EU monitoring plan gives every source stream an activity-data tier"));
            return;
        };
        let meter = s.parameters.iter().find_map(|p| match (&p.parameter, &p.determination) {
            (Parameter::ActivityData, Determination::Measured { instrument: Some(id), .. }) => Some(id.as_str()),
            _ => None,
        });
        let Some(meter) = meter else {
            err(format!("{at}: tier {tier:?} needs the activity data measured with an instrument of the plan"));
            return;
        };
        if let Some(instrument) = self.instruments.iter().find(|i| i.id == meter) {
            match meets_tier(instrument.uncertainty, tier, factors, on) {
                Ok(true) => {}
                Ok(false) => {
                    err(format!("{at}: instrument '{meter}' has uncertainty {} which does not meet tier {tier:?}", instrument.uncertainty))
                }
                Err(e) => err(format!("{at}: {e}")),
            }
        }
    }

    pub fn validate(&self, factors: &FactorSet) -> Result<(), String> {
        let problems = self.problems(factors);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    pub fn stream(&self, unit: &str, id: &str) -> Option<&SourceStream> {
        self.source_streams.iter().find(|s| s.unit == unit && s.id == id)
    }

    /// Instruments used by a stream's measured parameters whose calibration was due before the
    /// end of `month`.
    pub fn lapsed_instruments(&self, stream: &SourceStream, month: YearMonth) -> Vec<&Instrument> {
        stream
            .parameters
            .iter()
            .filter_map(|p| match &p.determination {
                Determination::Measured { instrument: Some(id), .. } => self.instruments.iter().find(|i| &i.id == id),
                _ => None,
            })
            .filter(|i| i.calibration_due < month.last_day())
            .collect()
    }

    /// The stream plans its carbon content as measured.
    pub fn measures_carbon(stream: &SourceStream) -> bool {
        stream
            .parameters
            .iter()
            .any(|p| p.parameter == Parameter::CarbonContent && matches!(p.determination, Determination::Measured { .. }))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::str::FromStr;

    pub(crate) fn measured(parameter: Parameter, instrument: Option<&str>) -> ParameterPlan {
        ParameterPlan {
            parameter,
            determination: Determination::Measured {
                standard: "GB/T 213".into(),
                frequency: Frequency::Monthly,
                lab: Some("LAB-1".into()),
                instrument: instrument.map(String::from),
            },
        }
    }

    /// A China DQ plan with one measured coal stream per unit.
    pub(crate) fn coal_plan(entity: &str, year: i32, units: &[&str]) -> MonitoringPlan {
        MonitoringPlan {
            entity: entity.into(),
            year,
            regime: Regime::ChinaDataQuality,
            source_streams: units
                .iter()
                .map(|u| SourceStream {
                    id: "coal-1".into(),
                    unit: (*u).into(),
                    kind: StreamKind::FuelCombustion { fuel: Fuel::Coal },
                    tier: None,
                    parameters: vec![
                        measured(Parameter::ActivityData, Some("BELT-1")),
                        measured(Parameter::NetCalorificValue, None),
                        measured(Parameter::CarbonContent, None),
                        measured(Parameter::OxidationFactor, None),
                    ],
                })
                .collect(),
            instruments: vec![Instrument {
                id: "BELT-1".into(),
                description: "belt scale".into(),
                uncertainty: Decimal::from_str("0.015").unwrap(),
                calibrated_on: Date::from_ymd(year - 1, 11, 1).unwrap(),
                calibration_due: Date::from_ymd(year + 1, 11, 1).unwrap(),
            }],
        }
    }

    #[test]
    fn a_complete_plan_is_valid() {
        let f = FactorSet::builtin().unwrap();
        assert_eq!(coal_plan("E1", 2024, &["U1", "U2"]).problems(&f), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_reported() {
        let f = FactorSet::builtin().unwrap();
        let mut p = coal_plan("E1", 2024, &["U1"]);
        p.source_streams[0].parameters.retain(|x| x.parameter != Parameter::NetCalorificValue);
        p.source_streams[0].parameters[0] = measured(Parameter::ActivityData, Some("NO-SUCH-METER"));
        p.source_streams[0].parameters.push(ParameterPlan {
            parameter: Parameter::EmissionFactor,
            determination: Determination::Default { factor: "no.such.factor".into() },
        });
        p.source_streams[0].parameters.push(ParameterPlan {
            parameter: Parameter::ConversionFactor,
            determination: Determination::Default { factor: "ipcc2006.ef.natural_gas".into() },
        });
        p.instruments[0].calibration_due = p.instruments[0].calibrated_on;
        let problems = p.problems(&f);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems.iter().any(|m| m.contains("NO-SUCH-METER")));
        assert!(problems.iter().any(|m| m.contains("NetCalorificValue")));
        assert!(problems.iter().any(|m| m.contains("no.such.factor")));
        assert!(problems.iter().any(|m| m.contains("calibration due")));
    }

    #[test]
    fn eu_plans_need_tiers_met_by_their_meters() {
        let f = FactorSet::builtin().unwrap();
        let mut p = coal_plan("E1", 2024, &["U1"]);
        p.regime = Regime::EuMonitoring;
        assert!(p.problems(&f)[0].contains("activity-data tier"));
        // Tier 4 allows ±1.5% (MRR Annex II): the 1.5% belt scale meets it, a 2% one does not.
        p.source_streams[0].tier = Some(Tier::T4);
        assert_eq!(p.problems(&f), Vec::<String>::new());
        p.instruments[0].uncertainty = Decimal::from_str("0.02").unwrap();
        let problems = p.problems(&f);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("does not meet tier T4"), "{problems:?}");
    }

    #[test]
    fn lapsed_calibration_is_found_per_month() {
        let mut p = coal_plan("E1", 2024, &["U1"]);
        p.instruments[0].calibration_due = Date::from_ymd(2024, 6, 15).unwrap();
        let s = &p.source_streams[0];
        assert!(p.lapsed_instruments(s, YearMonth::new(2024, 5).unwrap()).is_empty());
        assert_eq!(p.lapsed_instruments(s, YearMonth::new(2024, 6).unwrap()).len(), 1);
        assert!(MonitoringPlan::measures_carbon(s));
    }
}
