//! The MRV system as one deterministic state machine: who reports, their monitoring plans,
//! versioned monthly submissions with evidence hashes, annual reports built from them, and the
//! verification workflow that turns a report into verified emissions.
//!
//! In the style of `ets-registry`: [`MrvState::execute`] takes an actor, a time and a
//! [`Command`], decides from the state alone, and returns the [`Event`]s it applied;
//! [`MrvState::apply`] replays recorded events through the same code. The shell (`ets-store`)
//! seals each accepted command's events into an [`MrvRecord`] of the hash-chained MRV journal, so
//! every submission, correction, evidence hash and verification step is tamper-evident.
//!
//! ## Who may do what
//!
//! | Command | Actor |
//! |---|---|
//! | `AddOfficial` | an official of the competent authority; anyone while there is none (bootstrap) |
//! | `RegisterEntity`, `RegisterVerifier` | an official |
//! | `AddInstallation`, `AddUnit` | an official or a representative of the entity |
//! | `SetPlan`, `SubmitMonthly`, `SubmitReport`, `ResubmitReport` | a representative of the entity |
//! | verification steps | as in [`crate::verification`] |
//!
//! ## Rules
//!
//! - A plan version and a monthly submission are never edited: a change is a new version, and
//!   every version after the first needs a reason. The latest version counts; all stay.
//! - A monthly submission needs the entity's plan for that year, and each record must be for a
//!   fuel-combustion source stream the plan declares for that unit, with the plan's fuel.
//! - Its due date is the month's last day plus the evidence deadline (`[NOTICE2025]`, 40 days,
//!   factor `cn.mrv.monthly_evidence_deadline_days`); a later submission is accepted and marked
//!   late, which the anomaly queue shows.
//! - An annual report's figure is **computed** from the latest monthly versions
//!   ([`MrvState::annual`]): it needs all twelve months of every planned stream. The figure
//!   given to the verifier cannot differ from the data behind it.

use crate::entity::{Coverage, EmissionUnit, Entity, Installation};
use crate::factors::FactorSet;
use crate::monthly::{unit_year_emissions, MissingCarbonRule, MonthlyRecord, UnitYearEmissions, YearMonth};
use crate::num::{add, div, mul, round_result};
use crate::plan::{MonitoringPlan, StreamKind};
use crate::quality::{self, QualityParams, Severity, EVIDENCE_DEADLINE_KEY};
use crate::verification::{self, Finding, OpinionKind, RejectKind, Rejection, Step, Verifier, Workflow};
use ets_core::{check_identifier, Date, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Version of the MRV journal record encoding; bump when `MrvRecord` or `Event` change shape.
pub const MRV_JOURNAL_FORMAT: u32 = 1;
/// Most evidence files one monthly submission may name.
pub const EVIDENCE_MAX: usize = 100;
/// Most records one monthly submission may hold (one unit, one month).
pub const MONTHLY_RECORDS_MAX: usize = 1_000;
/// Used when the factor data has no evidence deadline for the month (before 2023).
pub const DEFAULT_EVIDENCE_DEADLINE_DAYS: i32 = 40;

/// Default of [`MrvParams::intensity_outlier_factor`]: an emission unit whose annual intensity
/// is more than 1.25 times, or less than 1/1.25 of, the median of its peers is flagged (ets
/// default, uncertain: to be calibrated on real peer data).
pub const DEFAULT_INTENSITY_OUTLIER_FACTOR: Decimal = Decimal::from_parts(125, 0, 0, false, 2);
/// Default of [`MrvParams::year_on_year_factor`] (ets default, uncertain).
pub const DEFAULT_YEAR_ON_YEAR_FACTOR: Decimal = Decimal::from_parts(15, 0, 0, false, 1);
/// Fewest peers (the unit included) for an intensity comparison to mean anything.
pub const PEERS_MIN: usize = 3;
/// Factor keys of the plausible heat rate of a generating unit, GJ of fuel per MWh produced:
/// fuel meters checked against production meters.
pub const HEAT_RATE_MIN_KEY: &str = "dq.power.heat_rate_gj_per_mwh.min";
pub const HEAT_RATE_MAX_KEY: &str = "dq.power.heat_rate_gj_per_mwh.max";

/// Checks of the anomaly queue beyond those of [`crate::quality`].
pub const LATE_SUBMISSION: &str = "late_submission";
pub const CALIBRATION_LAPSED: &str = "calibration_lapsed";
pub const PLANNED_MEASUREMENT_MISSING: &str = "planned_measurement_missing";
pub const HEAT_RATE: &str = "heat_rate_vs_production";
pub const INTENSITY_OUTLIER: &str = "intensity_outlier";
pub const YEAR_ON_YEAR_JUMP: &str = "year_on_year_jump";

/// Default of [`MrvParams::deadline_utc_offset_hours`]: deadlines fall at the end of the day in
/// China Standard Time (UTC+8).
pub const DEFAULT_DEADLINE_UTC_OFFSET_HOURS: i64 = 8;

/// Parameters of the MRV system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MrvParams {
    pub missing_carbon: MissingCarbonRule,
    /// The time zone of deadlines, as hours east of UTC: a submission is late from midnight at
    /// the end of its due day there.
    pub deadline_utc_offset_hours: i64,
    pub intensity_outlier_factor: Decimal,
    pub year_on_year_factor: Decimal,
}

impl Default for MrvParams {
    fn default() -> Self {
        MrvParams {
            missing_carbon: MissingCarbonRule::default(),
            deadline_utc_offset_hours: DEFAULT_DEADLINE_UTC_OFFSET_HOURS,
            intensity_outlier_factor: DEFAULT_INTENSITY_OUTLIER_FACTOR,
            year_on_year_factor: DEFAULT_YEAR_ON_YEAR_FACTOR,
        }
    }
}

/// An evidence file, known by its SHA-256: the file itself stays with the entity (or in the
/// shell's evidence store); the journal keeps the hash, so a changed file no longer matches.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Evidence {
    pub name: String,
    /// Lower-case hex, 64 characters.
    pub sha256: String,
    pub bytes: u64,
}

/// What happens in the MRV system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    AddOfficial {
        person: String,
    },
    RegisterEntity {
        entity: Entity,
    },
    RegisterVerifier {
        verifier: Verifier,
    },
    AddInstallation {
        installation: Installation,
    },
    AddUnit {
        unit: EmissionUnit,
    },
    /// A new version of the entity's plan for `plan.year`.
    SetPlan {
        plan: MonitoringPlan,
        reason: Option<String>,
    },
    /// One unit's data for one month, with its production (in the unit kind's production unit)
    /// where metered, and the hashes of its evidence files.
    SubmitMonthly {
        entity: String,
        unit: String,
        month: YearMonth,
        records: Vec<MonthlyRecord>,
        production: Option<Decimal>,
        evidence: Vec<Evidence>,
        reason: Option<String>,
    },
    SubmitReport {
        report: String,
        entity: String,
        year: i32,
    },
    /// A new version of a returned report, recomputed from the latest monthly data.
    ResubmitReport {
        report: String,
        reason: String,
    },
    AssignVerifier {
        report: String,
        verifier: String,
    },
    RecordFinding {
        report: String,
        finding: Finding,
    },
    ResolveNonConformity {
        report: String,
        finding: usize,
    },
    GiveOpinion {
        report: String,
        stated: Option<OpinionKind>,
    },
    Accept {
        report: String,
    },
    Return {
        report: String,
        reason: String,
    },
    /// The entity must comply in a market (an official).
    Cover {
        entity: String,
        coverage: Coverage,
    },
    /// The entity's coverage in a market ends with `last_year` (an official).
    EndCoverage {
        entity: String,
        market: String,
        last_year: i32,
        /// Which coverage, where the entity has several in the market.
        sector: Option<crate::entity::Sector>,
    },
    /// The entity leaves `from_market` and is covered by `to_market` from `year` for the same
    /// sector and gases (an official): the national market taking over a pilot's entity.
    Migrate {
        entity: String,
        from_market: String,
        to_market: String,
        year: i32,
        account: Option<String>,
        reason: String,
        /// Which coverage moves, where the entity has several in `from_market`.
        sector: Option<crate::entity::Sector>,
    },
}

/// A monthly submission as stored: one version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthlySubmission {
    pub entity: String,
    pub unit: String,
    pub month: YearMonth,
    pub version: u32,
    pub records: Vec<MonthlyRecord>,
    pub production: Option<Decimal>,
    pub evidence: Vec<Evidence>,
    pub reason: Option<String>,
    pub submitted_by: String,
    pub submitted_at: Timestamp,
    pub due: Date,
    pub late: bool,
}

/// A plan version as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanVersion {
    pub version: u32,
    pub plan: MonitoringPlan,
    pub reason: Option<String>,
    pub set_by: String,
    pub set_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    OfficialAdded {
        person: String,
    },
    EntityRegistered {
        entity: Entity,
    },
    VerifierRegistered {
        verifier: Verifier,
    },
    InstallationAdded {
        installation: Installation,
    },
    UnitAdded {
        unit: EmissionUnit,
    },
    PlanSet {
        entity: String,
        year: i32,
        version: PlanVersion,
    },
    MonthlySubmitted {
        submission: MonthlySubmission,
    },
    Verification {
        event: verification::Event,
    },
    CoverageAdded {
        entity: String,
        coverage: Coverage,
    },
    CoverageEnded {
        entity: String,
        market: String,
        sector: crate::entity::Sector,
        last_year: i32,
    },
    /// Marks a migration; its coverage changes follow as their own events.
    Migrated {
        entity: String,
        from_market: String,
        to_market: String,
        year: i32,
        reason: String,
    },
}

/// One accepted command as the MRV journal stores it (JSON body, chained by SHA-256 in the
/// shell exactly like the registry's journal).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MrvRecord {
    pub format: u32,
    pub seq: u64,
    pub at: Timestamp,
    pub command_id: String,
    pub actor: String,
    /// SHA-256 of the actor and command, to tell a retried command from a reused id.
    pub digest: String,
    pub events: Vec<Event>,
}

impl MrvRecord {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("record encodes")
    }

    pub fn decode(body: &[u8]) -> Result<MrvRecord, String> {
        let r: MrvRecord = serde_json::from_slice(body).map_err(|e| format!("MRV record body does not decode: {e}"))?;
        if r.format != MRV_JOURNAL_FORMAT {
            return Err(format!("MRV record {} has format {}, this program reads format {MRV_JOURNAL_FORMAT}", r.seq, r.format));
        }
        Ok(r)
    }
}

/// The digest of a command as submitted by an actor.
pub fn command_digest(actor: &str, command: &Command) -> String {
    let mut h = Sha256::new();
    h.update(actor.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(command).expect("command encodes"));
    ets_core::chain::hex(&h.finalize())
}

/// One unit's annual result inside [`Annual`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitAnnual {
    pub unit: String,
    pub emissions: UnitYearEmissions,
    /// Sum of the months' production, if every month reported it.
    pub production: Option<Decimal>,
    /// Fuel heat input, GJ (Σ quantity × NCV).
    pub heat_input_gj: Decimal,
}

/// An entity's annual emissions, computed from the latest monthly versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annual {
    pub entity: String,
    pub year: i32,
    pub units: Vec<UnitAnnual>,
    pub total_t: Decimal,
}

/// One item of the regulator's anomaly queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    pub entity: String,
    pub unit: String,
    pub check: &'static str,
    pub severity: Severity,
    pub month: Option<YearMonth>,
    pub source_stream: Option<String>,
    pub value: String,
    pub expected: String,
    pub reason: String,
}

/// The MRV system state.
#[derive(Clone, Debug)]
pub struct MrvState {
    factors: FactorSet,
    params: MrvParams,
    officials: BTreeSet<String>,
    entities: BTreeMap<String, Entity>,
    installations: BTreeMap<String, Installation>,
    units: BTreeMap<String, EmissionUnit>,
    plans: BTreeMap<(String, i32), Vec<PlanVersion>>,
    monthly: BTreeMap<(String, YearMonth), Vec<MonthlySubmission>>,
    coverage: BTreeMap<String, Vec<Coverage>>,
    workflow: Workflow,
}

fn reject(kind: RejectKind, message: impl Into<String>) -> Rejection {
    Rejection::new(kind, message)
}

fn invalid(message: impl Into<String>) -> Rejection {
    reject(RejectKind::Invalid, message)
}

fn check_id(what: &str, value: &str) -> Result<(), Rejection> {
    check_identifier(what, value).map_err(invalid)
}

fn check_reason(version: u32, reason: &Option<String>, what: &str) -> Result<(), Rejection> {
    match reason {
        Some(r) if r.trim().is_empty() => Err(invalid(format!("the reason for {what} must not be empty"))),
        None if version > 1 => Err(invalid(format!("{what} would be version {version}: a correction needs a reason"))),
        _ => Ok(()),
    }
}

fn check_evidence(evidence: &[Evidence]) -> Result<(), Rejection> {
    if evidence.len() > EVIDENCE_MAX {
        return Err(invalid(format!("{} evidence files; at most {EVIDENCE_MAX} per submission", evidence.len())));
    }
    let mut seen = BTreeSet::new();
    for e in evidence {
        if e.name.trim().is_empty() || e.name.len() > 255 || e.name.chars().any(char::is_control) {
            return Err(invalid(format!("evidence file name '{}' must be 1 to 255 characters without control characters", e.name)));
        }
        if e.sha256.len() != 64 || !e.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(invalid(format!("evidence '{}': sha256 '{}' must be 64 lower-case hex digits", e.name, e.sha256)));
        }
        if !seen.insert(&e.sha256) {
            return Err(invalid(format!("evidence '{}' is listed twice (same content)", e.name)));
        }
    }
    Ok(())
}

impl MrvState {
    pub fn new(factors: FactorSet, params: MrvParams) -> MrvState {
        let workflow = Workflow::new(verification::Parties::default(), factors.clone());
        MrvState {
            factors,
            params,
            officials: BTreeSet::new(),
            entities: BTreeMap::new(),
            installations: BTreeMap::new(),
            units: BTreeMap::new(),
            plans: BTreeMap::new(),
            monthly: BTreeMap::new(),
            coverage: BTreeMap::new(),
            workflow,
        }
    }

    pub fn factors(&self) -> &FactorSet {
        &self.factors
    }

    pub fn params(&self) -> &MrvParams {
        &self.params
    }

    pub fn officials(&self) -> &BTreeSet<String> {
        &self.officials
    }

    pub fn entities(&self) -> impl Iterator<Item = &Entity> {
        self.entities.values()
    }

    pub fn entity(&self, id: &str) -> Option<&Entity> {
        self.entities.get(id)
    }

    pub fn installations(&self) -> impl Iterator<Item = &Installation> {
        self.installations.values()
    }

    pub fn units(&self) -> impl Iterator<Item = &EmissionUnit> {
        self.units.values()
    }

    pub fn unit(&self, id: &str) -> Option<&EmissionUnit> {
        self.units.get(id)
    }

    /// The entity that owns an emission unit.
    pub fn unit_entity(&self, unit: &str) -> Option<&str> {
        let u = self.units.get(unit)?;
        Some(self.installations.get(&u.installation)?.entity.as_str())
    }

    /// The entity's units, in id order.
    pub fn units_of<'a>(&'a self, entity: &'a str) -> impl Iterator<Item = &'a EmissionUnit> + 'a {
        self.units.values().filter(move |u| self.installations.get(&u.installation).is_some_and(|i| i.entity == entity))
    }

    pub fn verifiers(&self) -> impl Iterator<Item = &Verifier> {
        self.workflow.parties().verifiers.values()
    }

    /// Every version of the entity's plan for a year, oldest first.
    pub fn plan_versions(&self, entity: &str, year: i32) -> &[PlanVersion] {
        self.plans.get(&(entity.to_string(), year)).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The plan in force: the latest version.
    pub fn plan(&self, entity: &str, year: i32) -> Option<&MonitoringPlan> {
        self.plan_versions(entity, year).last().map(|v| &v.plan)
    }

    /// Every version of a unit's submission for a month, oldest first.
    pub fn monthly_versions(&self, unit: &str, month: YearMonth) -> &[MonthlySubmission] {
        self.monthly.get(&(unit.to_string(), month)).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The latest version of each month's submission of a unit in a year, in month order.
    pub fn monthly_latest(&self, unit: &str, year: i32) -> Vec<&MonthlySubmission> {
        (1..=12).filter_map(|m| YearMonth::new(year, m).ok()).filter_map(|m| self.monthly_versions(unit, m).last()).collect()
    }

    /// All submissions (every version), in (unit, month, version) order.
    pub fn submissions(&self) -> impl Iterator<Item = &MonthlySubmission> {
        self.monthly.values().flatten()
    }

    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    pub fn report(&self, id: &str) -> Option<&verification::Report> {
        self.workflow.report(id)
    }

    /// The entity's verified emissions for a year (tCO2e, exact), once a report is accepted.
    pub fn verified_emissions(&self, entity: &str, year: i32) -> Option<Decimal> {
        self.workflow.reports().filter(|r| r.entity == entity && r.year == year).find_map(|r| r.verified_emissions_t)
    }

    /// Every coverage of an entity, in the order they were added.
    pub fn coverage(&self, entity: &str) -> &[Coverage] {
        self.coverage.get(entity).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The entities a market covers in a year, with their coverage.
    pub fn covered(&self, market: &str, year: i32) -> Vec<(&Entity, &Coverage)> {
        self.coverage
            .iter()
            .flat_map(|(e, list)| list.iter().map(move |c| (e, c)))
            .filter(|(_, c)| c.market == market && c.covers_year(year))
            .filter_map(|(e, c)| Some((self.entities.get(e)?, c)))
            .collect()
    }

    fn check_no_double_coverage(&self, entity: &str, new: &Coverage, ignoring: Option<(&Coverage, i32)>) -> Result<(), Rejection> {
        if let Some(account) = &new.account {
            for (other, list) in &self.coverage {
                let clash = list.iter().any(|c| {
                    other != entity
                        && c.market == new.market
                        && c.account.as_ref() == Some(account)
                        && c.from_year <= new.to_year.unwrap_or(i32::MAX)
                        && new.from_year <= c.to_year.unwrap_or(i32::MAX)
                });
                if clash {
                    return Err(reject(
                        RejectKind::Conflict,
                        format!("account {account} already covers '{other}' in {}: each entity complies from its own account", new.market),
                    ));
                }
            }
        }
        for c in self.coverage(entity) {
            let mut c = c.clone();
            if let Some((ending, last)) = ignoring {
                if c == *ending {
                    c.to_year = Some(last);
                    if last < c.from_year {
                        continue;
                    }
                }
            }
            if c.overlaps(new) {
                return Err(reject(
                    RejectKind::Conflict,
                    format!(
                        "'{entity}' is already covered in {}: it may be covered for a sector and gas in one market only (Regulations Art. 29); end that coverage or migrate",
                        c.describe()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The one coverage of the entity in a market in a year (of the sector, when given).
    fn open_coverage(&self, entity: &str, market: &str, year: i32, sector: Option<crate::entity::Sector>) -> Result<&Coverage, Rejection> {
        let found: Vec<&Coverage> = self
            .coverage(entity)
            .iter()
            .filter(|c| c.market == market && c.covers_year(year) && sector.is_none_or(|s| s == c.sector))
            .collect();
        match found.as_slice() {
            [] => Err(reject(RejectKind::NotFound, format!("'{entity}' is not covered in {market} in {year}"))),
            [one] => Ok(one),
            _ => Err(invalid(format!("'{entity}' has several coverages in {market} in {year}: name the sector"))),
        }
    }

    /// The entity's report for a year, if one was submitted.
    pub fn report_of(&self, entity: &str, year: i32) -> Option<&verification::Report> {
        self.workflow.reports().find(|r| r.entity == entity && r.year == year)
    }

    /// Data of a year are frozen while its report is with the verifier or the authority, and
    /// for good once it is accepted: what was verified is what stays. A returned report
    /// reopens them.
    fn require_year_open(&self, entity: &str, year: i32, what: &str) -> Result<(), Rejection> {
        match self.report_of(entity, year) {
            Some(r) if r.state != verification::ReportState::Returned => Err(reject(
                RejectKind::OutOfOrder,
                format!(
                    "cannot {what}: the {year} report of '{entity}' ('{}') is {}; its data change only after the authority returns it",
                    r.id,
                    if r.state == verification::ReportState::Accepted { "accepted" } else { "under verification" }
                ),
            )),
            _ => Ok(()),
        }
    }

    fn is_official(&self, actor: &str) -> bool {
        self.officials.contains(actor)
    }

    fn is_representative(&self, entity: &str, actor: &str) -> bool {
        self.entities.get(entity).is_some_and(|e| e.representatives.contains(actor))
    }

    fn require_official(&self, actor: &str, what: &str) -> Result<(), Rejection> {
        if !self.is_official(actor) {
            return Err(reject(
                RejectKind::Forbidden,
                format!("'{actor}' may not {what}: only an official of the competent authority may"),
            ));
        }
        Ok(())
    }

    fn require_entity(&self, entity: &str) -> Result<&Entity, Rejection> {
        self.entities.get(entity).ok_or_else(|| reject(RejectKind::NotFound, format!("no entity '{entity}'")))
    }

    fn require_representative(&self, entity: &str, actor: &str, what: &str) -> Result<(), Rejection> {
        self.require_entity(entity)?;
        if !self.is_representative(entity, actor) {
            return Err(reject(RejectKind::Forbidden, format!("'{actor}' may not {what} for '{entity}': only its representatives may")));
        }
        Ok(())
    }

    /// Decides a command; if valid, applies its events and returns them. A refused command
    /// changes nothing.
    pub fn execute(&mut self, actor: &str, at: Timestamp, command: &Command) -> Result<Vec<Event>, Rejection> {
        check_id("actor", actor)?;
        let events = self.decide(actor, at, command)?;
        for e in &events {
            self.apply(e);
        }
        Ok(events)
    }

    fn decide(&self, actor: &str, at: Timestamp, command: &Command) -> Result<Vec<Event>, Rejection> {
        let one = |e: Event| Ok(vec![e]);
        match command {
            Command::AddOfficial { person } => {
                check_id("person", person)?;
                if !self.officials.is_empty() {
                    self.require_official(actor, "add an official")?;
                }
                if self.officials.contains(person) {
                    return Err(reject(RejectKind::Inconsistent, format!("'{person}' is already an official")));
                }
                one(Event::OfficialAdded { person: person.clone() })
            }
            Command::RegisterEntity { entity } => {
                self.require_official(actor, "register an entity")?;
                entity.validate().map_err(invalid)?;
                if self.entities.contains_key(&entity.id) {
                    return Err(reject(RejectKind::Inconsistent, format!("entity '{}' is already registered", entity.id)));
                }
                one(Event::EntityRegistered { entity: entity.clone() })
            }
            Command::RegisterVerifier { verifier } => {
                self.require_official(actor, "register a verifier")?;
                check_id("verifier id", &verifier.id)?;
                if verifier.staff.is_empty() {
                    return Err(invalid(format!("verifier '{}' needs at least one staff member", verifier.id)));
                }
                for s in &verifier.staff {
                    check_id("verifier staff", s)?;
                }
                if self.workflow.parties().verifiers.contains_key(&verifier.id) {
                    return Err(reject(RejectKind::Inconsistent, format!("verifier '{}' is already registered", verifier.id)));
                }
                one(Event::VerifierRegistered { verifier: verifier.clone() })
            }
            Command::AddInstallation { installation } => {
                installation.validate().map_err(invalid)?;
                self.require_entity(&installation.entity)?;
                if !self.is_official(actor) {
                    self.require_representative(&installation.entity, actor, "add an installation")?;
                }
                if self.installations.contains_key(&installation.id) {
                    return Err(reject(RejectKind::Inconsistent, format!("installation '{}' already exists", installation.id)));
                }
                one(Event::InstallationAdded { installation: installation.clone() })
            }
            Command::AddUnit { unit } => {
                unit.validate().map_err(invalid)?;
                let inst = self
                    .installations
                    .get(&unit.installation)
                    .ok_or_else(|| reject(RejectKind::NotFound, format!("no installation '{}'", unit.installation)))?;
                if !self.is_official(actor) {
                    self.require_representative(&inst.entity, actor, "add an emission unit")?;
                }
                if self.units.contains_key(&unit.id) {
                    return Err(reject(RejectKind::Inconsistent, format!("emission unit '{}' already exists", unit.id)));
                }
                one(Event::UnitAdded { unit: unit.clone() })
            }
            Command::SetPlan { plan, reason } => {
                self.require_representative(&plan.entity, actor, "set the monitoring plan")?;
                plan.validate(&self.factors)
                    .map_err(|m| invalid(format!("monitoring plan of '{}' for {}: {m}", plan.entity, plan.year)))?;
                for s in &plan.source_streams {
                    if self.unit_entity(&s.unit) != Some(plan.entity.as_str()) {
                        return Err(reject(
                            RejectKind::NotFound,
                            format!(
                                "monitoring plan: source stream '{}' names unit '{}', which is not a unit of '{}'",
                                s.id, s.unit, plan.entity
                            ),
                        ));
                    }
                }
                self.require_year_open(&plan.entity, plan.year, "change the monitoring plan")?;
                let version = self.plan_versions(&plan.entity, plan.year).len() as u32 + 1;
                check_reason(version, reason, "the monitoring plan")?;
                one(Event::PlanSet {
                    entity: plan.entity.clone(),
                    year: plan.year,
                    version: PlanVersion { version, plan: plan.clone(), reason: reason.clone(), set_by: actor.to_string(), set_at: at },
                })
            }
            Command::SubmitMonthly { entity, unit, month, records, production, evidence, reason } => {
                self.decide_monthly(actor, at, entity, unit, *month, records, *production, evidence, reason)
            }
            Command::SubmitReport { report, entity, year } => {
                check_id("report id", report)?;
                self.require_representative(entity, actor, "submit an annual report")?;
                if let Some(r) = self.report_of(entity, *year) {
                    return Err(reject(
                        RejectKind::Inconsistent,
                        format!("'{entity}' already has a {year} report ('{}'); a returned report is resubmitted as a new version", r.id),
                    ));
                }
                let annual = self.annual(entity, *year)?;
                let e = &self.entities[entity];
                let category = self.installations.values().filter(|i| &i.entity == entity).filter_map(|i| i.eu_category).max();
                let step = verification::Command::Submit {
                    report: report.clone(),
                    entity: entity.clone(),
                    year: *year,
                    province: e.province.clone(),
                    reported_emissions_t: annual.total_t,
                    category,
                };
                self.verification_step(actor, at, step)
            }
            Command::ResubmitReport { report, reason } => {
                let r = self.workflow.report(report).ok_or_else(|| reject(RejectKind::NotFound, format!("no report '{report}'")))?;
                self.require_representative(&r.entity, actor, "resubmit an annual report")?;
                let annual = self.annual(&r.entity, r.year)?;
                let step = verification::Command::Resubmit {
                    report: report.clone(),
                    reported_emissions_t: annual.total_t,
                    reason: reason.clone(),
                };
                self.verification_step(actor, at, step)
            }
            Command::AssignVerifier { report, verifier } => self.verification_step(
                actor,
                at,
                verification::Command::AssignVerifier { report: report.clone(), verifier: verifier.clone() },
            ),
            Command::RecordFinding { report, finding } => {
                self.verification_step(actor, at, verification::Command::RecordFinding { report: report.clone(), finding: finding.clone() })
            }
            Command::ResolveNonConformity { report, finding } => {
                self.verification_step(actor, at, verification::Command::ResolveNonConformity { report: report.clone(), finding: *finding })
            }
            Command::GiveOpinion { report, stated } => {
                self.verification_step(actor, at, verification::Command::GiveOpinion { report: report.clone(), stated: *stated })
            }
            Command::Accept { report } => self.verification_step(actor, at, verification::Command::Accept { report: report.clone() }),
            Command::Cover { entity, coverage } => {
                self.require_official(actor, "set coverage")?;
                self.require_entity(entity)?;
                coverage.validate().map_err(invalid)?;
                self.check_no_double_coverage(entity, coverage, None)?;
                one(Event::CoverageAdded { entity: entity.clone(), coverage: coverage.clone() })
            }
            Command::EndCoverage { entity, market, last_year, sector } => {
                self.require_official(actor, "end coverage")?;
                self.require_entity(entity)?;
                let c = self.open_coverage(entity, market, *last_year, *sector)?;
                if c.to_year.is_some_and(|t| t <= *last_year) {
                    return Err(reject(
                        RejectKind::OutOfOrder,
                        format!("'{entity}' coverage in {} already ends in {}", market, c.to_year.unwrap_or(0)),
                    ));
                }
                one(Event::CoverageEnded { entity: entity.clone(), market: market.clone(), sector: c.sector, last_year: *last_year })
            }
            Command::Migrate { entity, from_market, to_market, year, account, reason, sector } => {
                self.require_official(actor, "migrate an entity between markets")?;
                self.require_entity(entity)?;
                if reason.trim().is_empty() {
                    return Err(invalid("a migration needs a reason"));
                }
                if from_market == to_market {
                    return Err(invalid(format!("'{entity}' cannot migrate from {from_market} to itself")));
                }
                let from = self.open_coverage(entity, from_market, *year, *sector)?;
                if from.from_year >= *year {
                    return Err(reject(
                        RejectKind::OutOfOrder,
                        format!(
                            "'{entity}' is covered in {from_market} only from {}; migrate from a later year or end that coverage",
                            from.from_year
                        ),
                    ));
                }
                let to = Coverage {
                    market: to_market.clone(),
                    sector: from.sector,
                    gases: from.gases.clone(),
                    from_year: *year,
                    to_year: None,
                    account: account.clone(),
                };
                to.validate().map_err(invalid)?;
                self.check_no_double_coverage(entity, &to, Some((from, year - 1)))?;
                Ok(vec![
                    Event::Migrated {
                        entity: entity.clone(),
                        from_market: from_market.clone(),
                        to_market: to_market.clone(),
                        year: *year,
                        reason: reason.clone(),
                    },
                    Event::CoverageEnded { entity: entity.clone(), market: from_market.clone(), sector: from.sector, last_year: year - 1 },
                    Event::CoverageAdded { entity: entity.clone(), coverage: to },
                ])
            }
            Command::Return { report, reason } => {
                self.verification_step(actor, at, verification::Command::Return { report: report.clone(), reason: reason.clone() })
            }
        }
    }

    fn verification_step(&self, actor: &str, at: Timestamp, command: verification::Command) -> Result<Vec<Event>, Rejection> {
        let events = self.workflow.decide(&Step { actor: actor.to_string(), at, command })?;
        Ok(events.into_iter().map(|event| Event::Verification { event }).collect())
    }

    fn evidence_due(&self, month: YearMonth) -> Result<Date, Rejection> {
        let end = month.last_day();
        let days = match self.factors.lookup(EVIDENCE_DEADLINE_KEY, end) {
            Ok(f) => i32::try_from(f.value).map_err(|_| invalid(format!("{EVIDENCE_DEADLINE_KEY} = {} is not whole days", f.value)))?,
            Err(_) => DEFAULT_EVIDENCE_DEADLINE_DAYS,
        };
        Ok(end.plus_days(days))
    }

    #[allow(clippy::too_many_arguments)]
    fn decide_monthly(
        &self,
        actor: &str,
        at: Timestamp,
        entity: &str,
        unit: &str,
        month: YearMonth,
        records: &[MonthlyRecord],
        production: Option<Decimal>,
        evidence: &[Evidence],
        reason: &Option<String>,
    ) -> Result<Vec<Event>, Rejection> {
        self.require_representative(entity, actor, "submit monthly data")?;
        self.require_year_open(entity, month.year(), &format!("submit data for {month}"))?;
        if self.unit_entity(unit) != Some(entity) {
            return Err(reject(RejectKind::NotFound, format!("'{unit}' is not an emission unit of '{entity}'")));
        }
        let plan = self.plan(entity, month.year()).ok_or_else(|| {
            reject(
                RejectKind::OutOfOrder,
                format!("'{entity}' has no monitoring plan for {}: set the plan before submitting data", month.year()),
            )
        })?;
        if records.is_empty() {
            return Err(invalid(format!("the submission for {unit} {month} has no records (report an idle month with quantity 0)")));
        }
        if records.len() > MONTHLY_RECORDS_MAX {
            return Err(invalid(format!("{} records for {unit} {month}; at most {MONTHLY_RECORDS_MAX}", records.len())));
        }
        if let Some(p) = production {
            if p < Decimal::ZERO {
                return Err(invalid(format!("production {p} for {unit} {month} must not be negative")));
            }
        }
        let mut streams = BTreeSet::new();
        for (i, r) in records.iter().enumerate() {
            let at_record = format!("record {} of {unit} {month}", i + 1);
            if r.entity() != entity || r.unit() != unit || r.month() != month {
                return Err(invalid(format!(
                    "{at_record} is for {} / {} / {}, not {entity} / {unit} / {month}",
                    r.entity(),
                    r.unit(),
                    r.month()
                )));
            }
            let stream = plan.stream(unit, r.source_stream()).ok_or_else(|| {
                invalid(format!(
                    "{at_record}: source stream '{}' is not in the {} monitoring plan for unit '{unit}'",
                    r.source_stream(),
                    month.year()
                ))
            })?;
            match &stream.kind {
                StreamKind::FuelCombustion { fuel } if *fuel == r.fuel() => {}
                kind => {
                    return Err(invalid(format!(
                        "{at_record}: the plan has source stream '{}' as {kind:?}, but the record burns {}",
                        r.source_stream(),
                        r.fuel()
                    )))
                }
            }
            if !streams.insert(r.source_stream()) {
                return Err(invalid(format!("{at_record}: source stream '{}' appears twice in one month", r.source_stream())));
            }
        }
        check_evidence(evidence)?;
        let version = self.monthly_versions(unit, month).len() as u32 + 1;
        check_reason(version, reason, &format!("the submission of {unit} {month}"))?;
        let due = self.evidence_due(month)?;
        Ok(vec![Event::MonthlySubmitted {
            submission: MonthlySubmission {
                entity: entity.to_string(),
                unit: unit.to_string(),
                month,
                version,
                records: records.to_vec(),
                production,
                evidence: evidence.to_vec(),
                reason: reason.clone(),
                submitted_by: actor.to_string(),
                submitted_at: at,
                due,
                late: at.0 >= due.end_exclusive().0 - self.params.deadline_utc_offset_hours * 3_600_000,
            },
        }])
    }

    /// Applies a recorded event (from `execute`, or replayed from the journal).
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::OfficialAdded { person } => {
                self.officials.insert(person.clone());
                self.workflow.parties_mut().authority.insert(person.clone());
            }
            Event::EntityRegistered { entity } => {
                self.workflow.parties_mut().entities.insert(entity.id.clone(), entity.representatives.clone());
                self.entities.insert(entity.id.clone(), entity.clone());
            }
            Event::VerifierRegistered { verifier } => {
                self.workflow.parties_mut().verifiers.insert(verifier.id.clone(), verifier.clone());
            }
            Event::InstallationAdded { installation } => {
                self.installations.insert(installation.id.clone(), installation.clone());
            }
            Event::UnitAdded { unit } => {
                self.units.insert(unit.id.clone(), unit.clone());
            }
            Event::PlanSet { entity, year, version } => self.plans.entry((entity.clone(), *year)).or_default().push(version.clone()),
            Event::MonthlySubmitted { submission } => {
                self.monthly.entry((submission.unit.clone(), submission.month)).or_default().push(submission.clone())
            }
            Event::Verification { event } => self.workflow.apply(event),
            Event::CoverageAdded { entity, coverage } => self.coverage.entry(entity.clone()).or_default().push(coverage.clone()),
            Event::CoverageEnded { entity, market, sector, last_year } => {
                let list = self.coverage.get_mut(entity).expect("coverage of a known entity");
                let c = list
                    .iter_mut()
                    .find(|c| &c.market == market && c.sector == *sector && c.covers_year(*last_year))
                    .expect("open coverage");
                c.to_year = Some(*last_year);
            }
            Event::Migrated { .. } => {}
        }
    }

    /// The entity's annual emissions from the latest monthly versions. Refused unless the
    /// entity has a plan for the year and every planned stream has data for all twelve months.
    pub fn annual(&self, entity: &str, year: i32) -> Result<Annual, Rejection> {
        self.require_entity(entity)?;
        let plan = self
            .plan(entity, year)
            .ok_or_else(|| reject(RejectKind::OutOfOrder, format!("'{entity}' has no monitoring plan for {year}")))?;
        let mut missing = Vec::new();
        let mut planned_units: BTreeSet<&str> = BTreeSet::new();
        for s in &plan.source_streams {
            planned_units.insert(&s.unit);
            for m in (1..=12).filter_map(|m| YearMonth::new(year, m).ok()) {
                let has = self.monthly_versions(&s.unit, m).last().is_some_and(|sub| sub.records.iter().any(|r| r.source_stream() == s.id));
                if !has {
                    missing.push(format!("{}/{} {m}", s.unit, s.id));
                }
            }
        }
        if !missing.is_empty() {
            let shown: Vec<&str> = missing.iter().take(12).map(String::as_str).collect();
            let more = if missing.len() > shown.len() { format!(" and {} more", missing.len() - shown.len()) } else { String::new() };
            return Err(reject(
                RejectKind::OutOfOrder,
                format!("the {year} report of '{entity}' needs monthly data for every planned stream; missing: {}{more}", shown.join(", ")),
            ));
        }
        let mut units = Vec::new();
        let mut total = Decimal::ZERO;
        for unit in planned_units {
            let subs = self.monthly_latest(unit, year);
            let records: Vec<MonthlyRecord> = subs.iter().flat_map(|s| s.records.iter().cloned()).collect();
            let emissions =
                unit_year_emissions(&records, &self.params.missing_carbon, &self.factors).map_err(|e| invalid(e.to_string()))?;
            let mut heat = Decimal::ZERO;
            for r in &records {
                heat = add(heat, mul(r.quantity_t(), r.ncv_gj_per_t(), "heat input").map_err(|e| invalid(e.to_string()))?, "heat input")
                    .map_err(|e| invalid(e.to_string()))?;
            }
            let production = if subs.len() == 12 && subs.iter().all(|s| s.production.is_some()) {
                let mut p = Decimal::ZERO;
                for s in &subs {
                    p = add(p, s.production.unwrap_or_default(), "annual production").map_err(|e| invalid(e.to_string()))?;
                }
                Some(p)
            } else {
                None
            };
            total = add(total, emissions.annual_co2_t, "annual total").map_err(|e| invalid(e.to_string()))?;
            units.push(UnitAnnual { unit: unit.to_string(), emissions, production, heat_input_gj: heat });
        }
        Ok(Annual { entity: entity.to_string(), year, units, total_t: round_result(total) })
    }

    /// The anomaly queue of one entity's year: the data-quality checks of [`crate::quality`] on
    /// each unit's latest monthly data, plus late submissions, lapsed calibrations, planned
    /// measurements not made and heat rate against production. Sorted: critical first.
    pub fn entity_anomalies(&self, entity: &str, year: i32) -> Result<Vec<Anomaly>, Rejection> {
        let peers = self.peer_intensities(year)?;
        self.entity_anomalies_among(entity, year, &peers)
    }

    fn entity_anomalies_among(&self, entity: &str, year: i32, peers: &BTreeMap<String, Vec<Decimal>>) -> Result<Vec<Anomaly>, Rejection> {
        self.require_entity(entity)?;
        let params = QualityParams::defaults(&self.factors, year).map_err(|e| invalid(e.to_string()))?;
        let year_end = Date::from_ymd(year, 12, 31).map_err(|e| invalid(e.to_string()))?;
        let heat_rate = match (self.factors.lookup(HEAT_RATE_MIN_KEY, year_end), self.factors.lookup(HEAT_RATE_MAX_KEY, year_end)) {
            (Ok(lo), Ok(hi)) => Some((lo.value, hi.value)),
            _ => None,
        };
        let plan = self.plan(entity, year);
        let mut out = Vec::new();
        for unit in self.units_of(entity) {
            let subs = self.monthly_latest(&unit.id, year);
            let push =
                |out: &mut Vec<Anomaly>, check, severity, month, stream: Option<&str>, value: String, expected: String, reason: String| {
                    out.push(Anomaly {
                        entity: entity.to_string(),
                        unit: unit.id.clone(),
                        check,
                        severity,
                        month,
                        source_stream: stream.map(String::from),
                        value,
                        expected,
                        reason,
                    })
                };
            let planned = plan.is_some_and(|p| p.source_streams.iter().any(|s| s.unit == unit.id));
            if subs.is_empty() && !planned {
                continue;
            }
            let records: Vec<MonthlyRecord> = subs.iter().flat_map(|s| s.records.iter().cloned()).collect();
            for f in quality::run_checks(&records, year, &params).map_err(|e| invalid(e.to_string()))? {
                push(&mut out, f.check, f.severity, Some(f.month), Some(&f.source_stream), f.value, f.expected, f.reason);
            }
            if planned && records.is_empty() {
                push(
                    &mut out,
                    quality::MISSING_MONTH,
                    Severity::Warning,
                    None,
                    None,
                    "0 months".into(),
                    "12 months".into(),
                    format!("unit {} is in the {year} plan but has no monthly data", unit.id),
                );
            }
            for s in &subs {
                if s.late {
                    push(
                        &mut out,
                        LATE_SUBMISSION,
                        Severity::Warning,
                        Some(s.month),
                        None,
                        s.submitted_at.date().to_string(),
                        format!("by {}", s.due),
                        format!("version {} of {} was submitted after the evidence deadline", s.version, s.month),
                    );
                }
                let Some(plan) = plan else { continue };
                for r in &s.records {
                    let Some(stream) = plan.stream(&unit.id, r.source_stream()) else { continue };
                    for i in plan.lapsed_instruments(stream, s.month) {
                        push(
                            &mut out,
                            CALIBRATION_LAPSED,
                            Severity::Warning,
                            Some(s.month),
                            Some(r.source_stream()),
                            format!("due {}", i.calibration_due),
                            format!("calibrated through {}", s.month.last_day()),
                            format!("instrument '{}' ({}) was out of calibration during the month", i.id, i.description),
                        );
                    }
                    if MonitoringPlan::measures_carbon(stream) && r.measurement().is_none() {
                        push(
                            &mut out,
                            PLANNED_MEASUREMENT_MISSING,
                            Severity::Warning,
                            Some(s.month),
                            Some(r.source_stream()),
                            "no measurement".into(),
                            "measured carbon content".into(),
                            "the plan measures carbon content but the month has none".into(),
                        );
                    }
                }
            }
            if let (Some((lo, hi)), crate::entity::UnitKind::GeneratingUnit { .. }) = (heat_rate, &unit.kind) {
                for s in &subs {
                    let Some(mwh) = s.production.filter(|p| !p.is_zero()) else { continue };
                    let mut gj = Decimal::ZERO;
                    for r in &s.records {
                        gj =
                            add(gj, mul(r.quantity_t(), r.ncv_gj_per_t(), "heat input").map_err(|e| invalid(e.to_string()))?, "heat input")
                                .map_err(|e| invalid(e.to_string()))?;
                    }
                    let rate = div(gj, mwh, "heat rate").map_err(|e| invalid(e.to_string()))?;
                    if rate < lo || rate > hi {
                        push(
                            &mut out,
                            HEAT_RATE,
                            Severity::Warning,
                            Some(s.month),
                            None,
                            format!("{} GJ/MWh", rate.round_dp(3)),
                            format!("[{lo}, {hi}] GJ/MWh"),
                            format!("fuel heat input {} GJ does not fit {mwh} MWh produced", gj.round_dp(1)),
                        );
                    }
                }
            }
        }
        self.annual_anomalies(entity, year, peers, &mut out)?;
        out.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| (&a.unit, a.month, &a.source_stream, a.check).cmp(&(&b.unit, b.month, &b.source_stream, b.check)))
        });
        Ok(out)
    }

    /// Year-on-year jumps of each unit and intensity outliers against peers (all units of the
    /// same peer group with complete data and production in the year, across entities).
    fn annual_anomalies(
        &self,
        entity: &str,
        year: i32,
        peers: &BTreeMap<String, Vec<Decimal>>,
        out: &mut Vec<Anomaly>,
    ) -> Result<(), Rejection> {
        let Ok(this) = self.annual(entity, year) else { return Ok(()) };
        let factor = self.params.year_on_year_factor;
        if let Ok(previous) = self.annual(entity, year - 1) {
            for u in &this.units {
                let Some(p) = previous.units.iter().find(|p| p.unit == u.unit) else { continue };
                let (a, b) = (p.emissions.annual_co2_t, u.emissions.annual_co2_t);
                let jump = !a.is_zero() && !b.is_zero() && (b > a * factor || a > b * factor);
                if jump {
                    out.push(Anomaly {
                        entity: entity.to_string(),
                        unit: u.unit.clone(),
                        check: YEAR_ON_YEAR_JUMP,
                        severity: Severity::Warning,
                        month: None,
                        source_stream: None,
                        value: format!("{b} t in {year}"),
                        expected: format!("within ×{factor} of {a} t in {}", year - 1),
                        reason: "annual emissions changed by more than the year-on-year factor".into(),
                    });
                }
            }
        }
        let factor = self.params.intensity_outlier_factor;
        for u in &this.units {
            let (Some(production), Some(kind)) = (u.production.filter(|p| !p.is_zero()), self.units.get(&u.unit).map(|x| &x.kind)) else {
                continue;
            };
            let group = kind.peer_group();
            let Some(peers) = peers.get(&group) else { continue };
            if peers.len() < PEERS_MIN {
                continue;
            }
            let median = if peers.len() % 2 == 1 {
                peers[peers.len() / 2]
            } else {
                (peers[peers.len() / 2 - 1] + peers[peers.len() / 2]) / Decimal::TWO
            };
            let intensity = div(u.emissions.annual_co2_t, production, "intensity").map_err(|e| invalid(e.to_string()))?;
            if intensity > median * factor || intensity * factor < median {
                out.push(Anomaly {
                    entity: entity.to_string(),
                    unit: u.unit.clone(),
                    check: INTENSITY_OUTLIER,
                    severity: Severity::Warning,
                    month: None,
                    source_stream: None,
                    value: format!("{} tCO2/{}", intensity.round_dp(4), kind.production_unit()),
                    expected: format!("within ×{factor} of the peer median {} ({} units)", median.round_dp(4), peers.len()),
                    reason: format!("intensity far from peers in group {group}"),
                });
            }
        }
        Ok(())
    }

    /// Annual intensities (tCO2 per unit of production) of every unit with complete data and
    /// production in the year, by peer group, sorted.
    pub fn peer_intensities(&self, year: i32) -> Result<BTreeMap<String, Vec<Decimal>>, Rejection> {
        let mut by_group: BTreeMap<String, Vec<Decimal>> = BTreeMap::new();
        for e in self.entities.keys() {
            let Ok(a) = self.annual(e, year) else { continue };
            for u in &a.units {
                let (Some(p), Some(unit)) = (u.production.filter(|p| !p.is_zero()), self.units.get(&u.unit)) else { continue };
                let intensity = div(u.emissions.annual_co2_t, p, "intensity").map_err(|e| invalid(e.to_string()))?;
                by_group.entry(unit.kind.peer_group()).or_default().push(intensity);
            }
        }
        for v in by_group.values_mut() {
            v.sort();
        }
        Ok(by_group)
    }

    /// The regulator's ranked queue over every entity with data or a plan for the year.
    pub fn anomalies(&self, year: i32) -> Result<Vec<Anomaly>, Rejection> {
        let peers = self.peer_intensities(year)?;
        let mut out = Vec::new();
        for e in self.entities.keys() {
            if self.plan(e, year).is_some() {
                out.extend(self.entity_anomalies_among(e, year, &peers)?);
            }
        }
        out.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| (&a.entity, &a.unit, a.month).cmp(&(&b.entity, &b.unit, b.month))));
        Ok(out)
    }
}
