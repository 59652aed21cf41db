//! The annual-report verification workflow: a pure, deterministic state machine.
//!
//! In the style of `ets-registry`: a [`Step`] (actor, time, [`Command`]) goes in;
//! [`Workflow::execute`] decides from the state alone whether it is valid and, if so, returns the
//! [`Event`]s it produced after applying them. [`Workflow::apply`] replays recorded events through
//! the same code path. No clock (times are inputs), no I/O, no floating point: emissions are exact
//! [`Decimal`] tCO2e.
//!
//! ## Parties
//!
//! Fixed when the workflow is built ([`Parties`]): the competent authority's officials, each
//! reporting entity with its representatives, and the verifiers ([`Verifier`]: accreditation,
//! staff, the entities it helped prepare reports for, the provinces where it prepared reports).
//!
//! ## States of a report ([`ReportState`]) and the steps between them
//!
//! ```text
//!  Submit ──► Submitted ──AssignVerifier──► Assigned ──GiveOpinion──► Opined ──Accept──► Accepted
//!                 ▲                         │  ▲  RecordFinding,           │
//!                 │                         └──┘  ResolveNonConformity     │ Return
//!                 └────────────Resubmit (new version, with reason)◄── Returned ◄┘
//! ```
//!
//! Each version of a report ([`ReportVersion`]) keeps its own figure, verifier, findings and
//! opinion. Versions are appended, never edited: a returned report is resubmitted as version
//! n + 1 with a reason, and version n stays as it was.
//!
//! ## Rules (each refusal is a [`Rejection`] with a message)
//!
//! - **Order**: a step is refused unless the report is in the state the diagram allows
//!   ([`RejectKind::OutOfOrder`]); e.g. an opinion before assignment, findings after the
//!   opinion, acceptance before the opinion. A step dated before the report's previous step is
//!   also refused (times never go backwards within a report).
//! - **Actors** ([`RejectKind::Forbidden`]): only the entity's representatives submit and
//!   resubmit; the authority or the entity's representatives assign a verifier; only the staff
//!   of the assigned verifier record and resolve findings and give the opinion; only the
//!   authority accepts or returns.
//! - **Verifier eligibility at assignment** ([`RejectKind::Conflict`]): an unaccredited verifier
//!   is refused; a verifier that helped prepare reports for the entity is refused; a verifier
//!   that prepared reports in the report's province is refused.
//!
//! ## Opinion rule (our decision)
//!
//! The opinion is **computed**, not chosen: when the verifier gives the opinion it may state the
//! one it expects (the `stated` field of [`Command::GiveOpinion`]), but a statement that differs from the
//! computed opinion is refused ([`RejectKind::Inconsistent`]). Computation, with the materiality
//! level of mechanisms.md section 5.2 (AVR Art. 23, `[S69]`: 5% of total reported emissions for
//! categories A and B, 2% for category C), read through [`crate::eu_mrr::materiality_threshold`]
//! from the factor data valid on 31 December of the reporting year:
//!
//! 1. **Qualified** if Σ |misstatement| ≥ threshold (at the threshold counts as material).
//! 2. Otherwise **qualified** if any non-conformity is unresolved. mechanisms.md 5.2 gives no
//!    article text for non-conformities (the verification steps are marked ⚠), so this is our
//!    conservative reading: a clean opinion is not given while a non-conformity stands open;
//!    the verifier resolves it ([`Command::ResolveNonConformity`]) or the report goes back.
//! 3. Otherwise **unqualified**.
//!
//! The authority accepts only an unqualified opinion; a qualified one must be returned (an
//! authority's conservative estimate is not modelled). On acceptance the version's reported
//! figure becomes the report's verified emissions.
//!
//! The installation category is the one given at submission (MRR Art. 19 bases it on the
//! average verified emissions of the previous period, which this workflow does not know) or,
//! if none was given, [`crate::eu_mrr::category`] of the version's reported emissions.

use crate::eu_mrr::{self, Category};
use crate::factors::FactorSet;
use crate::num::round_result;
use ets_core::{check_identifier, Date, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Why a step was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectKind {
    /// Malformed input (bad identifier, negative emissions, empty reason, ...).
    Invalid,
    /// The report, entity, verifier or finding does not exist.
    NotFound,
    /// The actor may not take this step.
    Forbidden,
    /// The step is not allowed in the report's current state, or is dated too early.
    OutOfOrder,
    /// The verifier is not eligible: unaccredited or a conflict of interest.
    Conflict,
    /// A report id already in use, or a stated opinion that contradicts materiality.
    Inconsistent,
}

/// A refused step: its kind and a message for the user.
pub type Rejection = ets_core::Rejection<RejectKind>;

/// An accredited (or not) verification body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verifier {
    pub id: String,
    pub accredited: bool,
    /// Persons who act for the verifier.
    pub staff: BTreeSet<String>,
    /// Entities the verifier helped prepare reports for.
    pub prepared_for_entities: BTreeSet<String>,
    /// Provinces where the verifier prepared reports.
    pub prepared_in_provinces: BTreeSet<String>,
}

/// Everyone who may act in the workflow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parties {
    /// Officials of the competent authority.
    pub authority: BTreeSet<String>,
    /// Entity id -> its representatives.
    pub entities: BTreeMap<String, BTreeSet<String>>,
    /// Verifier id -> verifier.
    pub verifiers: BTreeMap<String, Verifier>,
}

/// A verifier's finding on one version of a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Finding {
    /// A misstatement of `amount_t` tCO2e (positive = overstated, negative = understated; the
    /// materiality test uses its absolute value). Must not be zero.
    Misstatement { amount_t: Decimal, description: String },
    /// A non-conformity with the monitoring rules; open until resolved.
    NonConformity { text: String },
}

/// The verification opinion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpinionKind {
    Unqualified,
    Qualified,
}

/// The computed opinion and what it was computed from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opinion {
    pub kind: OpinionKind,
    pub category: Category,
    /// Σ |misstatement| in tCO2e.
    pub total_misstatement_t: Decimal,
    /// Materiality threshold in tCO2e.
    pub threshold_t: Decimal,
    pub unresolved_non_conformities: usize,
}

/// What happens to a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// First version of an annual report, by one of the entity's representatives.
    Submit {
        report: String,
        entity: String,
        year: i32,
        province: String,
        reported_emissions_t: Decimal,
        /// Installation category if known; otherwise derived from the reported emissions.
        category: Option<Category>,
    },
    /// A new version of a returned report, by one of the entity's representatives.
    Resubmit { report: String, reported_emissions_t: Decimal, reason: String },
    /// By the authority or the entity's representatives.
    AssignVerifier { report: String, verifier: String },
    /// By the assigned verifier's staff.
    RecordFinding { report: String, finding: Finding },
    /// By the assigned verifier's staff; `finding` is the index in the version's findings.
    ResolveNonConformity { report: String, finding: usize },
    /// By the assigned verifier's staff; the opinion is computed, `stated` must agree with it.
    GiveOpinion { report: String, stated: Option<OpinionKind> },
    /// By the authority; requires an unqualified opinion.
    Accept { report: String },
    /// By the authority, after the opinion; the entity may then resubmit.
    Return { report: String, reason: String },
}

impl Command {
    pub fn report(&self) -> &str {
        match self {
            Command::Submit { report, .. }
            | Command::Resubmit { report, .. }
            | Command::AssignVerifier { report, .. }
            | Command::RecordFinding { report, .. }
            | Command::ResolveNonConformity { report, .. }
            | Command::GiveOpinion { report, .. }
            | Command::Accept { report }
            | Command::Return { report, .. } => report,
        }
    }
}

/// A command with its actor (a person) and time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub actor: String,
    pub at: Timestamp,
    pub command: Command,
}

/// What happened. Each carries the actor and time of the step that produced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub actor: String,
    pub at: Timestamp,
    pub report: String,
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Submitted { entity: String, year: i32, province: String, reported_emissions_t: Decimal, category: Option<Category> },
    Resubmitted { version: u32, reported_emissions_t: Decimal, reason: String },
    VerifierAssigned { version: u32, verifier: String },
    FindingRecorded { version: u32, index: usize, finding: Finding },
    NonConformityResolved { version: u32, index: usize },
    OpinionGiven { version: u32, opinion: Opinion },
    Accepted { version: u32, verified_emissions_t: Decimal },
    Returned { version: u32, reason: String },
}

/// Where a report stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportState {
    /// Current version awaits a verifier.
    Submitted,
    /// A verifier is assigned; findings may be recorded.
    Assigned,
    /// The opinion is given; the authority decides.
    Opined,
    /// Final: the verified emissions are set.
    Accepted,
    /// Sent back to the entity; awaits a new version.
    Returned,
}

/// One submitted version, kept as it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportVersion {
    pub version: u32,
    pub reported_emissions_t: Decimal,
    pub submitted_by: String,
    pub submitted_at: Timestamp,
    /// Why this version was submitted (none for version 1).
    pub reason: Option<String>,
    pub verifier: Option<String>,
    pub findings: Vec<Finding>,
    /// Indexes of resolved non-conformities.
    pub resolved: BTreeSet<usize>,
    pub opinion: Option<Opinion>,
    /// The authority's reason, if this version was returned.
    pub returned_reason: Option<String>,
}

/// An annual report and all its versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub id: String,
    pub entity: String,
    pub year: i32,
    pub province: String,
    pub category: Option<Category>,
    pub state: ReportState,
    pub versions: Vec<ReportVersion>,
    pub verified_emissions_t: Option<Decimal>,
    pub last_step_at: Timestamp,
}

impl Report {
    /// The latest version.
    pub fn current(&self) -> &ReportVersion {
        self.versions.last().expect("a report has at least one version")
    }

    fn current_mut(&mut self) -> &mut ReportVersion {
        self.versions.last_mut().expect("a report has at least one version")
    }
}

/// The workflow state: parties, factor data and reports.
#[derive(Clone, Debug)]
pub struct Workflow {
    parties: Parties,
    factors: FactorSet,
    reports: BTreeMap<String, Report>,
}

fn reject(kind: RejectKind, message: impl Into<String>) -> Rejection {
    Rejection::new(kind, message)
}

fn out_of_order(report: &Report, step: &str) -> Rejection {
    reject(
        RejectKind::OutOfOrder,
        format!("cannot {step} report '{}': it is {} (version {})", report.id, state_name(report.state), report.current().version),
    )
}

fn state_name(state: ReportState) -> &'static str {
    match state {
        ReportState::Submitted => "submitted and awaiting a verifier",
        ReportState::Assigned => "assigned to a verifier and awaiting the opinion",
        ReportState::Opined => "awaiting the authority's decision on the opinion",
        ReportState::Accepted => "accepted",
        ReportState::Returned => "returned to the entity and awaiting resubmission",
    }
}

fn check_id(what: &str, value: &str) -> Result<(), Rejection> {
    check_identifier(what, value).map_err(|m| reject(RejectKind::Invalid, m))
}

fn check_emissions(value: Decimal) -> Result<(), Rejection> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(reject(RejectKind::Invalid, format!("reported emissions {value} tCO2e must not be negative")));
    }
    Ok(())
}

fn check_text(what: &str, value: &str) -> Result<(), Rejection> {
    if value.trim().is_empty() {
        return Err(reject(RejectKind::Invalid, format!("{what} must not be empty")));
    }
    Ok(())
}

impl Workflow {
    pub fn new(parties: Parties, factors: FactorSet) -> Workflow {
        Workflow { parties, factors, reports: BTreeMap::new() }
    }

    pub fn parties(&self) -> &Parties {
        &self.parties
    }

    /// For the MRV state machine, which registers parties through its own journaled events.
    pub(crate) fn parties_mut(&mut self) -> &mut Parties {
        &mut self.parties
    }

    pub fn report(&self, id: &str) -> Option<&Report> {
        self.reports.get(id)
    }

    pub fn reports(&self) -> impl Iterator<Item = &Report> {
        self.reports.values()
    }

    /// Decides the step against the current state; if valid, applies and returns its events.
    /// A refused step changes nothing.
    pub fn execute(&mut self, step: &Step) -> Result<Vec<Event>, Rejection> {
        let events = self.decide(step)?;
        for e in &events {
            self.apply(e);
        }
        Ok(events)
    }

    fn is_representative(&self, entity: &str, actor: &str) -> bool {
        self.parties.entities.get(entity).is_some_and(|reps| reps.contains(actor))
    }

    fn is_authority(&self, actor: &str) -> bool {
        self.parties.authority.contains(actor)
    }

    fn existing(&self, id: &str) -> Result<&Report, Rejection> {
        self.reports.get(id).ok_or_else(|| reject(RejectKind::NotFound, format!("no report '{id}'")))
    }

    /// Staff of the verifier assigned to the current version.
    fn require_assigned_verifier(&self, report: &Report, actor: &str, step: &str) -> Result<(), Rejection> {
        let assigned = report.current().verifier.as_deref().unwrap_or("");
        let ok = self.parties.verifiers.get(assigned).is_some_and(|v| v.staff.contains(actor));
        if !ok {
            return Err(reject(
                RejectKind::Forbidden,
                format!("'{actor}' may not {step} report '{}': only staff of the assigned verifier '{assigned}' may", report.id),
            ));
        }
        Ok(())
    }

    fn require_authority(&self, report: &Report, actor: &str, step: &str) -> Result<(), Rejection> {
        if !self.is_authority(actor) {
            return Err(reject(
                RejectKind::Forbidden,
                format!("'{actor}' may not {step} report '{}': only the competent authority may", report.id),
            ));
        }
        Ok(())
    }

    /// Decides a step against the current state without changing it: the events `execute`
    /// would apply.
    pub fn decide(&self, step: &Step) -> Result<Vec<Event>, Rejection> {
        let actor = step.actor.as_str();
        check_id("actor", actor)?;
        let report_id = step.command.report();
        check_id("report id", report_id)?;
        if let Some(r) = self.reports.get(report_id) {
            if step.at < r.last_step_at {
                return Err(reject(
                    RejectKind::OutOfOrder,
                    format!("step on report '{report_id}' at {} is earlier than its previous step at {}", step.at, r.last_step_at),
                ));
            }
        }
        let kind = match &step.command {
            Command::Submit { report, entity, year, province, reported_emissions_t, category } => {
                check_id("entity", entity)?;
                check_id("province", province)?;
                check_emissions(*reported_emissions_t)?;
                if !(1900..=9999).contains(year) {
                    return Err(reject(RejectKind::Invalid, format!("reporting year {year} must be between 1900 and 9999")));
                }
                if !self.parties.entities.contains_key(entity) {
                    return Err(reject(RejectKind::NotFound, format!("no entity '{entity}'")));
                }
                if !self.is_representative(entity, actor) {
                    return Err(reject(
                        RejectKind::Forbidden,
                        format!("'{actor}' may not submit a report for '{entity}': only its representatives may"),
                    ));
                }
                if self.reports.contains_key(report) {
                    return Err(reject(
                        RejectKind::Inconsistent,
                        format!("report '{report}' already exists; a returned report is resubmitted as a new version"),
                    ));
                }
                EventKind::Submitted {
                    entity: entity.clone(),
                    year: *year,
                    province: province.clone(),
                    reported_emissions_t: *reported_emissions_t,
                    category: *category,
                }
            }
            Command::Resubmit { report, reported_emissions_t, reason } => {
                let r = self.existing(report)?;
                check_emissions(*reported_emissions_t)?;
                check_text("the reason for resubmission", reason)?;
                if !self.is_representative(&r.entity, actor) {
                    return Err(reject(
                        RejectKind::Forbidden,
                        format!("'{actor}' may not resubmit report '{report}': only representatives of '{}' may", r.entity),
                    ));
                }
                if r.state != ReportState::Returned {
                    return Err(out_of_order(r, "resubmit"));
                }
                EventKind::Resubmitted {
                    version: r.current().version + 1,
                    reported_emissions_t: *reported_emissions_t,
                    reason: reason.clone(),
                }
            }
            Command::AssignVerifier { report, verifier } => {
                let r = self.existing(report)?;
                if !self.is_authority(actor) && !self.is_representative(&r.entity, actor) {
                    return Err(reject(
                        RejectKind::Forbidden,
                        format!(
                            "'{actor}' may not assign a verifier to report '{report}': only the authority or representatives of '{}' may",
                            r.entity
                        ),
                    ));
                }
                if r.state != ReportState::Submitted {
                    return Err(out_of_order(r, "assign a verifier to"));
                }
                let v = self
                    .parties
                    .verifiers
                    .get(verifier)
                    .ok_or_else(|| reject(RejectKind::NotFound, format!("no verifier '{verifier}'")))?;
                if !v.accredited {
                    return Err(reject(RejectKind::Conflict, format!("verifier '{verifier}' is not accredited")));
                }
                if v.prepared_for_entities.contains(&r.entity) {
                    return Err(reject(
                        RejectKind::Conflict,
                        format!(
                            "conflict of interest: verifier '{verifier}' helped prepare reports for '{}' and may not verify its report",
                            r.entity
                        ),
                    ));
                }
                if v.prepared_in_provinces.contains(&r.province) {
                    return Err(reject(
                        RejectKind::Conflict,
                        format!(
                            "conflict of interest: verifier '{verifier}' prepared reports in province '{}' and may not verify there",
                            r.province
                        ),
                    ));
                }
                EventKind::VerifierAssigned { version: r.current().version, verifier: verifier.clone() }
            }
            Command::RecordFinding { report, finding } => {
                let r = self.existing(report)?;
                if r.state != ReportState::Assigned {
                    return Err(out_of_order(r, "record a finding on"));
                }
                self.require_assigned_verifier(r, actor, "record findings on")?;
                match finding {
                    Finding::Misstatement { amount_t, description } => {
                        if amount_t.is_zero() {
                            return Err(reject(RejectKind::Invalid, "a misstatement amount must not be zero"));
                        }
                        check_text("the misstatement description", description)?;
                    }
                    Finding::NonConformity { text } => check_text("the non-conformity text", text)?,
                }
                let v = r.current();
                EventKind::FindingRecorded { version: v.version, index: v.findings.len(), finding: finding.clone() }
            }
            Command::ResolveNonConformity { report, finding } => {
                let r = self.existing(report)?;
                if r.state != ReportState::Assigned {
                    return Err(out_of_order(r, "resolve a non-conformity on"));
                }
                self.require_assigned_verifier(r, actor, "resolve findings on")?;
                let v = r.current();
                match v.findings.get(*finding) {
                    Some(Finding::NonConformity { .. }) if !v.resolved.contains(finding) => {}
                    Some(Finding::NonConformity { .. }) => {
                        return Err(reject(RejectKind::Inconsistent, format!("non-conformity {finding} is already resolved")))
                    }
                    _ => {
                        return Err(reject(
                            RejectKind::NotFound,
                            format!("finding {finding} of report '{report}' version {} is not a non-conformity", v.version),
                        ))
                    }
                }
                EventKind::NonConformityResolved { version: v.version, index: *finding }
            }
            Command::GiveOpinion { report, stated } => {
                let r = self.existing(report)?;
                if r.state != ReportState::Assigned {
                    return Err(out_of_order(r, "give an opinion on"));
                }
                self.require_assigned_verifier(r, actor, "give the opinion on")?;
                let opinion = self.compute_opinion(r)?;
                if let Some(s) = stated {
                    if *s != opinion.kind {
                        return Err(reject(
                            RejectKind::Inconsistent,
                            format!(
                                "stated opinion {s:?} contradicts materiality: misstatements {} tCO2e against threshold {} tCO2e \
                                 (category {:?}), {} unresolved non-conformities give {:?}",
                                opinion.total_misstatement_t,
                                opinion.threshold_t,
                                opinion.category,
                                opinion.unresolved_non_conformities,
                                opinion.kind
                            ),
                        ));
                    }
                }
                EventKind::OpinionGiven { version: r.current().version, opinion }
            }
            Command::Accept { report } => {
                let r = self.existing(report)?;
                self.require_authority(r, actor, "accept")?;
                if r.state != ReportState::Opined {
                    return Err(out_of_order(r, "accept"));
                }
                let v = r.current();
                if v.opinion.as_ref().map(|o| o.kind) != Some(OpinionKind::Unqualified) {
                    return Err(reject(
                        RejectKind::Inconsistent,
                        format!("cannot accept report '{report}' version {}: the opinion is qualified; return it to the entity", v.version),
                    ));
                }
                EventKind::Accepted { version: v.version, verified_emissions_t: v.reported_emissions_t }
            }
            Command::Return { report, reason } => {
                let r = self.existing(report)?;
                self.require_authority(r, actor, "return")?;
                check_text("the reason for return", reason)?;
                if r.state != ReportState::Opined {
                    return Err(out_of_order(r, "return"));
                }
                EventKind::Returned { version: r.current().version, reason: reason.clone() }
            }
        };
        Ok(vec![Event { actor: step.actor.clone(), at: step.at, report: report_id.to_string(), kind }])
    }

    /// The opinion the current version's findings give (see the module documentation).
    pub fn compute_opinion(&self, report: &Report) -> Result<Opinion, Rejection> {
        let v = report.current();
        let on =
            Date::from_ymd(report.year, 12, 31).map_err(|e| reject(RejectKind::Invalid, format!("reporting year {}: {e}", report.year)))?;
        let mrv = |e: crate::MrvError| reject(RejectKind::Invalid, e.to_string());
        let category = match report.category {
            Some(c) => c,
            None => eu_mrr::category(v.reported_emissions_t, &self.factors, on).map_err(mrv)?,
        };
        let threshold_t = eu_mrr::materiality_threshold(v.reported_emissions_t, category, &self.factors, on).map_err(mrv)?;
        let mut total = Decimal::ZERO;
        let mut unresolved = 0;
        for (i, f) in v.findings.iter().enumerate() {
            match f {
                Finding::Misstatement { amount_t, .. } => {
                    total = total.checked_add(amount_t.abs()).ok_or_else(|| reject(RejectKind::Invalid, "misstatement sum overflows"))?;
                }
                Finding::NonConformity { .. } if !v.resolved.contains(&i) => unresolved += 1,
                Finding::NonConformity { .. } => {}
            }
        }
        let total = round_result(total);
        let kind = if total >= threshold_t || unresolved > 0 { OpinionKind::Qualified } else { OpinionKind::Unqualified };
        Ok(Opinion { kind, category, total_misstatement_t: total, threshold_t, unresolved_non_conformities: unresolved })
    }

    /// Applies a recorded event (used by [`Workflow::execute`] and for replay). Events must come
    /// from `execute` on the same state: an event that does not fit is a programming error.
    pub fn apply(&mut self, event: &Event) {
        let id = event.report.clone();
        if let EventKind::Submitted { entity, year, province, reported_emissions_t, category } = &event.kind {
            let version = ReportVersion {
                version: 1,
                reported_emissions_t: *reported_emissions_t,
                submitted_by: event.actor.clone(),
                submitted_at: event.at,
                reason: None,
                verifier: None,
                findings: Vec::new(),
                resolved: BTreeSet::new(),
                opinion: None,
                returned_reason: None,
            };
            let report = Report {
                id: id.clone(),
                entity: entity.clone(),
                year: *year,
                province: province.clone(),
                category: *category,
                state: ReportState::Submitted,
                versions: vec![version],
                verified_emissions_t: None,
                last_step_at: event.at,
            };
            let previous = self.reports.insert(id, report);
            assert!(previous.is_none(), "Submitted event for an existing report");
            return;
        }
        let r = self.reports.get_mut(&id).expect("event for an unknown report");
        r.last_step_at = event.at;
        match &event.kind {
            EventKind::Submitted { .. } => unreachable!("handled above"),
            EventKind::Resubmitted { version, reported_emissions_t, reason } => {
                r.versions.push(ReportVersion {
                    version: *version,
                    reported_emissions_t: *reported_emissions_t,
                    submitted_by: event.actor.clone(),
                    submitted_at: event.at,
                    reason: Some(reason.clone()),
                    verifier: None,
                    findings: Vec::new(),
                    resolved: BTreeSet::new(),
                    opinion: None,
                    returned_reason: None,
                });
                r.state = ReportState::Submitted;
            }
            EventKind::VerifierAssigned { verifier, .. } => {
                r.current_mut().verifier = Some(verifier.clone());
                r.state = ReportState::Assigned;
            }
            EventKind::FindingRecorded { finding, .. } => r.current_mut().findings.push(finding.clone()),
            EventKind::NonConformityResolved { index, .. } => {
                r.current_mut().resolved.insert(*index);
            }
            EventKind::OpinionGiven { opinion, .. } => {
                r.current_mut().opinion = Some(opinion.clone());
                r.state = ReportState::Opined;
            }
            EventKind::Accepted { verified_emissions_t, .. } => {
                r.verified_emissions_t = Some(*verified_emissions_t);
                r.state = ReportState::Accepted;
            }
            EventKind::Returned { reason, .. } => {
                r.current_mut().returned_reason = Some(reason.clone());
                r.state = ReportState::Returned;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn verifier(id: &str, accredited: bool, entities: &[&str], provinces: &[&str]) -> Verifier {
        Verifier {
            id: id.into(),
            accredited,
            staff: set(&[&format!("{id}-auditor")]),
            prepared_for_entities: set(entities),
            prepared_in_provinces: set(provinces),
        }
    }

    fn workflow() -> Workflow {
        let mut parties = Parties { authority: set(&["mee-official"]), ..Parties::default() };
        parties.entities.insert("plant-1".into(), set(&["alice"]));
        parties.entities.insert("plant-2".into(), set(&["bob"]));
        for v in [
            verifier("v-ok", true, &[], &["Hebei"]),
            verifier("v-other", true, &[], &[]),
            verifier("v-unaccredited", false, &[], &[]),
            verifier("v-preparer", true, &["plant-1"], &[]),
            verifier("v-province", true, &[], &["Guangdong"]),
        ] {
            parties.verifiers.insert(v.id.clone(), v);
        }
        Workflow::new(parties, FactorSet::builtin().unwrap())
    }

    fn step(actor: &str, at: i64, command: Command) -> Step {
        Step { actor: actor.into(), at: Timestamp(at), command }
    }

    fn submit(w: &mut Workflow, emissions: &str, category: Option<Category>) {
        let c = Command::Submit {
            report: "R1".into(),
            entity: "plant-1".into(),
            year: 2024,
            province: "Guangdong".into(),
            reported_emissions_t: d(emissions),
            category,
        };
        w.execute(&step("alice", 1, c)).unwrap();
    }

    fn assign(w: &mut Workflow, verifier: &str) -> Result<Vec<Event>, Rejection> {
        w.execute(&step("mee-official", 2, Command::AssignVerifier { report: "R1".into(), verifier: verifier.into() }))
    }

    fn misstatement(w: &mut Workflow, amount: &str) {
        let finding = Finding::Misstatement { amount_t: d(amount), description: "meter drift".into() };
        w.execute(&step("v-other-auditor", 3, Command::RecordFinding { report: "R1".into(), finding })).unwrap();
    }

    fn opinion(w: &mut Workflow, stated: Option<OpinionKind>) -> Result<Opinion, Rejection> {
        let events = w.execute(&step("v-other-auditor", 4, Command::GiveOpinion { report: "R1".into(), stated }))?;
        match &events[0].kind {
            EventKind::OpinionGiven { opinion, .. } => Ok(opinion.clone()),
            other => panic!("unexpected event {other:?}"),
        }
    }

    fn err(r: Result<Vec<Event>, Rejection>) -> Rejection {
        r.unwrap_err()
    }

    #[test]
    fn happy_path_to_verified_emissions() {
        let mut w = workflow();
        let mut log = Vec::new();
        let submit = Command::Submit {
            report: "R1".into(),
            entity: "plant-1".into(),
            year: 2024,
            province: "Guangdong".into(),
            reported_emissions_t: d("100000"),
            category: None,
        };
        log.extend(w.execute(&step("alice", 1, submit)).unwrap());
        log.extend(assign(&mut w, "v-other").unwrap());
        let finding = Finding::Misstatement { amount_t: d("-1200.5"), description: "meter drift".into() };
        log.extend(w.execute(&step("v-other-auditor", 3, Command::RecordFinding { report: "R1".into(), finding })).unwrap());
        let stated = Some(OpinionKind::Unqualified);
        log.extend(w.execute(&step("v-other-auditor", 4, Command::GiveOpinion { report: "R1".into(), stated })).unwrap());
        let o = w.report("R1").unwrap().current().opinion.clone().unwrap();
        assert_eq!(o.kind, OpinionKind::Unqualified);
        assert_eq!(o.category, Category::B);
        assert_eq!(o.threshold_t, d("5000"));
        assert_eq!(o.total_misstatement_t, d("1200.5"));
        let events = w.execute(&step("mee-official", 5, Command::Accept { report: "R1".into() })).unwrap();
        assert_eq!(events[0].kind, EventKind::Accepted { version: 1, verified_emissions_t: d("100000") });
        log.extend(events);
        let r = w.report("R1").unwrap();
        assert_eq!(r.state, ReportState::Accepted);
        assert_eq!(r.verified_emissions_t, Some(d("100000")));
        // Replaying the events rebuilds the same state.
        let mut replay = workflow();
        for e in &log {
            replay.apply(e);
        }
        assert_eq!(replay.report("R1"), w.report("R1"));
        // Nothing follows acceptance.
        let e = err(w.execute(&step("mee-official", 6, Command::Return { report: "R1".into(), reason: "late".into() })));
        assert_eq!(e.kind, RejectKind::OutOfOrder);
    }

    #[test]
    fn out_of_order_steps_are_refused() {
        let mut w = workflow();
        submit(&mut w, "100000", None);
        // Opinion before assignment.
        let e = opinion(&mut w, None).unwrap_err();
        assert_eq!(e.kind, RejectKind::OutOfOrder);
        assert!(e.message.contains("cannot give an opinion on report 'R1': it is submitted and awaiting a verifier"), "{e}");
        // Accept before the opinion.
        assign(&mut w, "v-other").unwrap();
        let e = err(w.execute(&step("mee-official", 3, Command::Accept { report: "R1".into() })));
        assert_eq!(e.kind, RejectKind::OutOfOrder);
        assert!(e.message.contains("cannot accept"), "{e}");
        // Findings after the opinion.
        opinion(&mut w, None).unwrap();
        let finding = Finding::NonConformity { text: "late sample".into() };
        let e = err(w.execute(&step("v-other-auditor", 5, Command::RecordFinding { report: "R1".into(), finding })));
        assert_eq!(e.kind, RejectKind::OutOfOrder);
        assert!(e.message.contains("cannot record a finding on report 'R1'"), "{e}");
        // Resubmission of a report that was not returned, and a step dated in the past.
        let e = err(w.execute(&step(
            "alice",
            6,
            Command::Resubmit { report: "R1".into(), reported_emissions_t: d("1"), reason: "fix".into() },
        )));
        assert_eq!(e.kind, RejectKind::OutOfOrder);
        let e = err(w.execute(&step("mee-official", 0, Command::Accept { report: "R1".into() })));
        assert_eq!(e.kind, RejectKind::OutOfOrder);
        assert!(e.message.contains("earlier than its previous step"), "{e}");
    }

    #[test]
    fn unauthorised_actors_are_refused() {
        let mut w = workflow();
        // Only the entity's representatives submit.
        let c = Command::Submit {
            report: "R1".into(),
            entity: "plant-1".into(),
            year: 2024,
            province: "Guangdong".into(),
            reported_emissions_t: d("100"),
            category: None,
        };
        let e = err(w.execute(&step("bob", 1, c)));
        assert_eq!(e.kind, RejectKind::Forbidden);
        assert_eq!(e.message, "'bob' may not submit a report for 'plant-1': only its representatives may");
        submit(&mut w, "100000", None);
        // Another entity's representative may not assign.
        let e = err(w.execute(&step("bob", 2, Command::AssignVerifier { report: "R1".into(), verifier: "v-other".into() })));
        assert_eq!(e.kind, RejectKind::Forbidden);
        // The entity's own representative may.
        w.execute(&step("alice", 2, Command::AssignVerifier { report: "R1".into(), verifier: "v-other".into() })).unwrap();
        // Only the assigned verifier's staff record findings and give the opinion.
        let finding = Finding::Misstatement { amount_t: d("10"), description: "x".into() };
        let e = err(w.execute(&step("v-ok-auditor", 3, Command::RecordFinding { report: "R1".into(), finding })));
        assert_eq!(e.kind, RejectKind::Forbidden);
        assert!(e.message.contains("only staff of the assigned verifier 'v-other'"), "{e}");
        let e = err(w.execute(&step("alice", 3, Command::GiveOpinion { report: "R1".into(), stated: None })));
        assert_eq!(e.kind, RejectKind::Forbidden);
        opinion(&mut w, None).unwrap();
        // Only the authority accepts or returns.
        let e = err(w.execute(&step("alice", 5, Command::Accept { report: "R1".into() })));
        assert_eq!(e.kind, RejectKind::Forbidden);
        assert_eq!(e.message, "'alice' may not accept report 'R1': only the competent authority may");
        let e = err(w.execute(&step("v-other-auditor", 5, Command::Return { report: "R1".into(), reason: "no".into() })));
        assert_eq!(e.kind, RejectKind::Forbidden);
    }

    #[test]
    fn verifier_that_helped_prepare_is_refused() {
        let mut w = workflow();
        submit(&mut w, "100000", None);
        let e = err(assign(&mut w, "v-preparer"));
        assert_eq!(e.kind, RejectKind::Conflict);
        assert_eq!(
            e.message,
            "conflict of interest: verifier 'v-preparer' helped prepare reports for 'plant-1' and may not verify its report"
        );
        assert_eq!(w.report("R1").unwrap().state, ReportState::Submitted);
    }

    #[test]
    fn verifier_that_prepared_in_the_province_is_refused() {
        let mut w = workflow();
        submit(&mut w, "100000", None);
        let e = err(assign(&mut w, "v-province"));
        assert_eq!(e.kind, RejectKind::Conflict);
        assert_eq!(
            e.message,
            "conflict of interest: verifier 'v-province' prepared reports in province 'Guangdong' and may not verify there"
        );
        // Preparing in another province (Hebei) is no conflict.
        assign(&mut w, "v-ok").unwrap();
    }

    #[test]
    fn unaccredited_verifier_is_refused() {
        let mut w = workflow();
        submit(&mut w, "100000", None);
        let e = err(assign(&mut w, "v-unaccredited"));
        assert_eq!(e.kind, RejectKind::Conflict);
        assert_eq!(e.message, "verifier 'v-unaccredited' is not accredited");
        assert_eq!(err(assign(&mut w, "v-missing")).kind, RejectKind::NotFound);
    }

    #[test]
    fn returned_and_resubmitted_keeps_both_versions() {
        let mut w = workflow();
        submit(&mut w, "100000", None);
        assign(&mut w, "v-other").unwrap();
        misstatement(&mut w, "6000");
        assert_eq!(opinion(&mut w, None).unwrap().kind, OpinionKind::Qualified);
        // A qualified opinion cannot be accepted.
        let e = err(w.execute(&step("mee-official", 5, Command::Accept { report: "R1".into() })));
        assert_eq!(e.kind, RejectKind::Inconsistent);
        assert!(e.message.contains("the opinion is qualified"), "{e}");
        w.execute(&step("mee-official", 5, Command::Return { report: "R1".into(), reason: "material misstatement".into() })).unwrap();
        // Resubmission needs a reason.
        let bad = Command::Resubmit { report: "R1".into(), reported_emissions_t: d("94000"), reason: " ".into() };
        assert_eq!(err(w.execute(&step("alice", 6, bad))).kind, RejectKind::Invalid);
        let c = Command::Resubmit { report: "R1".into(), reported_emissions_t: d("94000"), reason: "corrected meter drift".into() };
        let events = w.execute(&step("alice", 6, c)).unwrap();
        assert_eq!(
            events[0].kind,
            EventKind::Resubmitted { version: 2, reported_emissions_t: d("94000"), reason: "corrected meter drift".into() }
        );
        w.execute(&step("mee-official", 7, Command::AssignVerifier { report: "R1".into(), verifier: "v-other".into() })).unwrap();
        w.execute(&step("v-other-auditor", 8, Command::GiveOpinion { report: "R1".into(), stated: None })).unwrap();
        w.execute(&step("mee-official", 9, Command::Accept { report: "R1".into() })).unwrap();
        let r = w.report("R1").unwrap();
        assert_eq!(r.versions.len(), 2);
        let (v1, v2) = (&r.versions[0], &r.versions[1]);
        assert_eq!((v1.version, v1.reported_emissions_t), (1, d("100000")));
        assert_eq!(v1.findings.len(), 1);
        assert_eq!(v1.opinion.as_ref().unwrap().kind, OpinionKind::Qualified);
        assert_eq!(v1.returned_reason.as_deref(), Some("material misstatement"));
        assert_eq!(v1.reason, None);
        assert_eq!((v2.version, v2.reported_emissions_t), (2, d("94000")));
        assert_eq!(v2.reason.as_deref(), Some("corrected meter drift"));
        assert!(v2.findings.is_empty());
        assert_eq!(v2.opinion.as_ref().unwrap().kind, OpinionKind::Unqualified);
        assert_eq!(r.verified_emissions_t, Some(d("94000")));
    }

    #[test]
    fn materiality_five_percent_boundary() {
        // Category B, 100,000 t: threshold 5,000 t. Over- and understatements add in absolute value.
        let mut w = workflow();
        submit(&mut w, "100000", None);
        assign(&mut w, "v-other").unwrap();
        misstatement(&mut w, "3000");
        misstatement(&mut w, "-2000");
        let o = opinion(&mut w, None).unwrap();
        assert_eq!((o.category, o.threshold_t, o.total_misstatement_t), (Category::B, d("5000"), d("5000")));
        assert_eq!(o.kind, OpinionKind::Qualified);

        let mut w = workflow();
        submit(&mut w, "100000", None);
        assign(&mut w, "v-other").unwrap();
        misstatement(&mut w, "3000");
        misstatement(&mut w, "-1999.999999");
        // Stating the wrong opinion is refused; the computed one is given.
        let e = opinion(&mut w, Some(OpinionKind::Qualified)).unwrap_err();
        assert_eq!(e.kind, RejectKind::Inconsistent);
        assert!(e.message.contains("contradicts materiality"), "{e}");
        assert_eq!(opinion(&mut w, Some(OpinionKind::Unqualified)).unwrap().kind, OpinionKind::Unqualified);
    }

    #[test]
    fn materiality_two_percent_boundary_category_c() {
        // 1,000,000 t is category C: threshold 2% = 20,000 t.
        let mut w = workflow();
        submit(&mut w, "1000000", None);
        assign(&mut w, "v-other").unwrap();
        misstatement(&mut w, "20000");
        let o = opinion(&mut w, None).unwrap();
        assert_eq!((o.category, o.threshold_t, o.kind), (Category::C, d("20000"), OpinionKind::Qualified));

        let mut w = workflow();
        submit(&mut w, "1000000", None);
        assign(&mut w, "v-other").unwrap();
        misstatement(&mut w, "19999.999999");
        assert_eq!(opinion(&mut w, None).unwrap().kind, OpinionKind::Unqualified);

        // A category given at submission is used: category C at 100,000 t gives 2,000 t.
        let mut w = workflow();
        submit(&mut w, "100000", Some(Category::C));
        assign(&mut w, "v-other").unwrap();
        misstatement(&mut w, "2000");
        let o = opinion(&mut w, None).unwrap();
        assert_eq!((o.threshold_t, o.kind), (d("2000"), OpinionKind::Qualified));
    }

    #[test]
    fn unresolved_non_conformity_qualifies_until_resolved() {
        let mut w = workflow();
        submit(&mut w, "100000", None);
        assign(&mut w, "v-other").unwrap();
        let finding = Finding::NonConformity { text: "sampling plan not followed".into() };
        w.execute(&step("v-other-auditor", 3, Command::RecordFinding { report: "R1".into(), finding })).unwrap();
        let r = w.report("R1").unwrap();
        let o = w.compute_opinion(r).unwrap();
        assert_eq!((o.kind, o.unresolved_non_conformities), (OpinionKind::Qualified, 1));
        w.execute(&step("v-other-auditor", 3, Command::ResolveNonConformity { report: "R1".into(), finding: 0 })).unwrap();
        let e = err(w.execute(&step("v-other-auditor", 3, Command::ResolveNonConformity { report: "R1".into(), finding: 0 })));
        assert_eq!(e.kind, RejectKind::Inconsistent);
        let o = opinion(&mut w, None).unwrap();
        assert_eq!((o.kind, o.unresolved_non_conformities), (OpinionKind::Unqualified, 0));
    }
}
