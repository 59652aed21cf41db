//! Carbon inclusion (碳普惠): credits for small emitters and individuals, as one deterministic
//! state machine, the [`Inclusion`] register.
//!
//! - **Methodologies** for small-scale activities (rooftop solar, efficient appliances,
//!   low-carbon travel, household forestry) are data: `data/inclusion-methodologies.json`,
//!   loaded and validated by [`Catalog::from_json`] (every problem at once). Each has an exact
//!   decimal factor (tCO2e per activity unit), a crediting period, a cap per participant per
//!   year and the pilots it applies in. The pilots' real terms were not found in the sources, so
//!   every figure there is an ets default marked uncertain.
//! - **Submissions**: an aggregator (a platform registered with a pilot) submits its
//!   participants' activity records, each with a record id, a date, an exact activity quantity
//!   and the SHA-256 of its evidence. Submission runs the checks at once and refuses a
//!   submission with any problem, naming every one (record, participant, why): unknown
//!   methodology or one not used in the pilot, activity outside the crediting period or the
//!   year, missing or malformed evidence, a record id or evidence hash used twice (in the
//!   submission or in any earlier submission not rejected), a participant's credits for the
//!   methodology and year above its cap (counting earlier submissions not rejected).
//! - **Verification**: a registered verifier other than the aggregator accepts or rejects the
//!   submission (the checks are re-run on acceptance). Rejected submissions free their record
//!   ids and evidence hashes for a corrected resubmission.
//! - **Issuance**: the pilot authority issues the accepted submission's credits as the pilot's
//!   offset unit (`PHCER:SOLAR-ROOF:2025`: standard, methodology, year) into the registry and
//!   allocates them to the aggregator's account.
//! - **Trading**: a transfer of credits is allowed only to holders the pilot's rulebook admits
//!   to trading (`[trading.participants]`: entities, institutions, individuals).
//! - **Compliance use**: a surrender of credits for an obligation year is judged by the pilot
//!   rulebook's own compliance rules (`ets_rules::compliance::ComplianceRules`): the credits'
//!   project (standard, the pilot's province, the methodology's project type) must be eligible
//!   (`offset_ineligible`), and every credit must count within the offset limits and locality
//!   shares given what the entity already surrendered for the year (`assess` before and after).
//!   Otherwise the surrender is refused and nothing moves.
//!
//! Credits per participant and submission are the sum of quantity × factor over its records,
//! rounded down to whole tonnes (named: [`credits_t`]). No clock (dates are in the commands),
//! no I/O (the caller reads the file and passes its text), no floating point. Units stay in
//! the registry: the register emits registry instructions with ids `inc-N`, which the shell
//! applies in order, like the desk's.

use crate::desk::Holdings;
use ets_core::Date;
use ets_registry::{Command as RegistryCommand, HolderType, Registry, UnitRef};
use ets_rules::compliance::{ComplianceRules, Lot, Project, Units};
use ets_rules::rulebook::Participants;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Most activity records in one submission.
pub const RECORDS_MAX: usize = 100_000;
/// Largest activity quantity of one record, in its activity unit.
pub const ACTIVITY_MAX: u64 = 1_000_000_000;
/// Most problems a refused submission lists (the count of the rest follows).
pub const PROBLEMS_SHOWN_MAX: usize = 50;

// ------------------------------------------------------------------------------ the catalog

/// A pilot's carbon-inclusion scheme: its credit's standard, its province (the credits are
/// local there) and the rulebook whose compliance and trading rules apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scheme {
    pub market: String,
    pub standard: String,
    pub province: String,
    pub rulebook: String,
    pub sources: String,
    #[serde(default)]
    pub uncertain: Vec<String>,
}

/// A small-scale methodology.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Methodology {
    /// Also the project part of the credits' unit (`PHCER:SOLAR-ROOF:2025`).
    pub id: String,
    pub version: u32,
    pub name: String,
    pub activity_unit: String,
    /// tCO2e reduced or removed per activity unit, exact.
    #[serde(deserialize_with = "ets_rules::dec::exact")]
    pub factor_t_per_unit: Decimal,
    /// The project type compliance rules see (exclusions such as hydro apply to it).
    pub project_type: String,
    pub cap_t_per_participant_year: u64,
    pub crediting_from: Date,
    pub crediting_to: Date,
    /// Pilot markets it applies in.
    pub pilots: Vec<String>,
    pub source: String,
    pub uncertain: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub about: String,
    pub version: u32,
    pub pilots: Vec<Scheme>,
    pub methodologies: Vec<Methodology>,
}

/// The catalog shipped with ets.
pub const BUILTIN_CATALOG: &str = include_str!("../../../data/inclusion-methodologies.json");

impl Catalog {
    /// Parses and validates a catalog; every problem is reported, named by `name` and entry.
    pub fn from_json(name: &str, text: &str) -> Result<Catalog, Vec<String>> {
        let catalog: Catalog = serde_json::from_str(text).map_err(|e| vec![format!("{name}: {e}")])?;
        let mut problems = Vec::new();
        let mut bad = |m: String| problems.push(format!("{name}: {m}"));
        if catalog.version != 1 {
            bad(format!("version {} is not supported (1)", catalog.version));
        }
        let mut markets = BTreeSet::new();
        for (i, s) in catalog.pilots.iter().enumerate() {
            if !markets.insert(s.market.clone()) {
                bad(format!("pilots[{i}]: market {} appears twice", s.market));
            }
            for (what, v) in [("market", &s.market), ("standard", &s.standard), ("rulebook", &s.rulebook)] {
                if let Err(m) = ets_core::check_identifier(what, v) {
                    bad(format!("pilots[{i}]: {m}"));
                }
            }
            if s.province.trim().is_empty() {
                bad(format!("pilots[{i}] ({}): province is empty", s.market));
            }
        }
        let mut ids = BTreeSet::new();
        for (i, m) in catalog.methodologies.iter().enumerate() {
            let at = format!("methodologies[{i}] ({})", m.id);
            if !ids.insert(m.id.clone()) {
                bad(format!("{at}: id appears twice"));
            }
            if m.id.is_empty() || !m.id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-') || m.id.len() > 32 {
                bad(format!("{at}: id must be 1 to 32 upper-case letters, digits and '-' (it names the credits' unit)"));
            }
            if m.factor_t_per_unit <= Decimal::ZERO || m.factor_t_per_unit > Decimal::from(1_000) {
                bad(format!("{at}: factor_t_per_unit {} must be above 0 and at most 1000", m.factor_t_per_unit));
            }
            if m.cap_t_per_participant_year == 0 || m.cap_t_per_participant_year > 1_000_000 {
                bad(format!("{at}: cap_t_per_participant_year must be 1 to 1,000,000"));
            }
            if m.crediting_from > m.crediting_to {
                bad(format!("{at}: crediting_from {} is after crediting_to {}", m.crediting_from, m.crediting_to));
            }
            if m.pilots.is_empty() {
                bad(format!("{at}: applies in no pilot"));
            }
            for p in &m.pilots {
                if !markets.contains(p) {
                    bad(format!("{at}: pilot {p} has no scheme in `pilots`"));
                }
            }
            if m.activity_unit.trim().is_empty() || m.project_type.trim().is_empty() {
                bad(format!("{at}: activity_unit and project_type must not be empty"));
            }
        }
        if problems.is_empty() {
            Ok(catalog)
        } else {
            Err(problems)
        }
    }

    pub fn builtin() -> Catalog {
        Catalog::from_json("data/inclusion-methodologies.json", BUILTIN_CATALOG).expect("the shipped catalog is valid")
    }

    pub fn methodology(&self, id: &str) -> Option<&Methodology> {
        self.methodologies.iter().find(|m| m.id == id)
    }

    pub fn scheme(&self, market: &str) -> Option<&Scheme> {
        self.pilots.iter().find(|s| s.market == market)
    }

    /// The pilot and methodology of an inclusion credit unit, if it is one.
    pub fn credit(&self, unit: &UnitRef) -> Option<(&Scheme, &Methodology)> {
        let scheme = self.pilots.iter().find(|s| s.standard == unit.code)?;
        let m = self.methodology(unit.project.as_deref()?)?;
        m.pilots.contains(&scheme.market).then_some((scheme, m))
    }

    /// The offset projects the credits of `market`'s scheme count as, by methodology id (none
    /// where the market has no scheme): how compliance judges them when surrendered.
    pub fn projects_of(&self, market: &str) -> BTreeMap<String, Project> {
        let Some(scheme) = self.scheme(market) else { return BTreeMap::new() };
        self.methodologies
            .iter()
            .filter(|m| m.pilots.iter().any(|p| p == market))
            .map(|m| (m.id.clone(), Catalog::project(scheme, m)))
            .collect()
    }

    /// The offset project compliance rules judge a credit of `methodology` in `scheme` as: the
    /// pilot's standard, local to its province, the methodology's project type.
    pub fn project(scheme: &Scheme, m: &Methodology) -> Project {
        Project {
            id: m.id.clone(),
            standard: scheme.standard.clone(),
            province: scheme.province.clone(),
            project_type: m.project_type.clone(),
            registered: m.crediting_from,
        }
    }
}

/// Whole tonnes credited for activity `quantity` × `factor`, rounded down.
pub fn credits_t(quantity: Decimal, factor: Decimal) -> Option<u64> {
    let t = quantity.checked_mul(factor)?;
    u64::try_from(t.trunc()).ok()
}

// ------------------------------------------------------------------------------ the machine

/// One pilot as the register uses it: the scheme's authority and issuance account in the
/// registry, and the pilot rulebook's compliance rules and trading participants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PilotSetup {
    pub authority: String,
    pub issuance_account: String,
    pub rulebook: String,
    pub compliance: ComplianceRules,
    pub participants: Participants,
}

impl PilotSetup {
    pub fn new(authority: &str, issuance_account: &str, rulebook: &ets_rules::rulebook::Rulebook) -> PilotSetup {
        PilotSetup {
            authority: authority.to_string(),
            issuance_account: issuance_account.to_string(),
            rulebook: rulebook.rulebook.id.clone(),
            compliance: rulebook.compliance.clone(),
            participants: rulebook.trading.participants,
        }
    }
}

/// A configuration for every pilot of `catalog` that `registry` has as a market: its first
/// authority and issuance account, and the shipped rulebook the catalog names for it.
pub fn config_from_registry(operator: &str, catalog: Catalog, registry: &Registry) -> Result<Config, String> {
    let mut pilots = BTreeMap::new();
    for scheme in &catalog.pilots {
        let Some(m) = registry.find_market(&scheme.market) else { continue };
        let market = registry.market(m);
        if !market.spec.offset_standards.contains(&scheme.standard) {
            return Err(format!(
                "market {} does not issue {} units (its offset standards: {:?})",
                scheme.market, scheme.standard, market.spec.offset_standards
            ));
        }
        let (file, text) = ets_rules::rulebook::builtin()
            .iter()
            .find(|(f, _)| f.trim_end_matches(".toml") == scheme.rulebook)
            .ok_or_else(|| format!("pilot {}: no shipped rulebook '{}'", scheme.market, scheme.rulebook))?;
        let rulebook = ets_rules::rulebook::Rulebook::from_toml(file, text).map_err(|e| e.to_string())?;
        let authority = market.spec.authorities.first().ok_or_else(|| format!("market {} has no authority", scheme.market))?;
        let issuance = registry.account(market.issuance).number.clone();
        pilots.insert(scheme.market.clone(), PilotSetup::new(authority, &issuance, &rulebook));
    }
    Ok(Config { operator: operator.to_string(), catalog, pilots })
}

/// Everything the register starts from (the first journal record).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Registers aggregators and verifiers.
    pub operator: String,
    pub catalog: Catalog,
    pub pilots: BTreeMap<String, PilotSetup>,
}

/// One participant's activity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRecord {
    /// Unique per aggregator.
    pub record: String,
    /// The participant's (pseudonymous) id with the aggregator.
    pub participant: String,
    pub date: Date,
    /// Activity in the methodology's unit, exact.
    #[serde(deserialize_with = "ets_rules::dec::exact")]
    pub quantity: Decimal,
    /// SHA-256 of the evidence, lower-case hex.
    pub evidence_sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// An aggregator in a pilot, with its registry account (credits are issued into it).
    AddAggregator {
        aggregator: String,
        pilot: String,
        account: String,
    },
    AddVerifier {
        verifier: String,
    },
    Submit {
        submission: String,
        aggregator: String,
        methodology: String,
        year: u16,
        records: Vec<ActivityRecord>,
    },
    Verify {
        submission: String,
        accept: bool,
        note: String,
    },
    /// The pilot authority issues an accepted submission's credits to the aggregator.
    Issue {
        submission: String,
    },
    /// Trading: credits from one registry account to another (the recipient's holder type must
    /// be admitted to trading by the pilot's rulebook).
    Transfer {
        from: String,
        to: String,
        unit: UnitRef,
        quantity: u64,
    },
    /// Use for compliance: surrender credits from an entity's account for `year`, given its
    /// verified emissions, its allocation and what it already surrendered for the year (the
    /// shell reads them from MRV and the registry).
    Surrender {
        account: String,
        unit: UnitRef,
        quantity: u64,
        year: u16,
        #[serde(deserialize_with = "ets_rules::dec::exact")]
        verified_t: Decimal,
        allocation_t: u64,
        already: Vec<Lot>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    pub actor: String,
    pub command: Command,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    AggregatorAdded { aggregator: String, pilot: String },
    VerifierAdded { verifier: String },
    Submitted { submission: String, participants: usize, records: usize, credits_t: u64 },
    Verified { submission: String, verifier: String, accepted: bool },
    Issued { submission: String, unit: UnitRef, quantity: u64, to: String },
    Transferred { from: String, to: String, unit: UnitRef, quantity: u64 },
    Surrendered { pilot: String, account: String, unit: UnitRef, quantity: u64, year: u16, offsets_counted_t: u64 },
}

pub type Reject = ets_core::Rejection<RejectKind>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectKind {
    NotFound,
    Forbidden,
    Invalid,
    /// A scheme or compliance rule: cap, duplicate, limit, locality, holder type.
    Rule,
    Insufficient,
    Conflict,
}

fn no<T>(kind: RejectKind, message: impl Into<String>) -> Result<T, Reject> {
    Err(Reject { kind, message: message.into() })
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub events: Vec<Event>,
    pub instructions: Vec<crate::desk::Instruction>,
}

/// Read-only view of the registry: free holdings (as the desk's) and an account's market and
/// holder type.
pub trait Accounts: Holdings {
    fn holder(&self, account: &str) -> Option<(String, HolderType)>;
}

impl Accounts for Registry {
    fn holder(&self, account: &str) -> Option<(String, HolderType)> {
        let a = self.account(self.find_account(account)?);
        Some((self.market(a.market).spec.code.clone(), a.holder_type))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Submitted,
    Accepted,
    Rejected,
    Issued,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    pub aggregator: String,
    pub pilot: String,
    pub methodology: String,
    pub year: u16,
    pub records: Vec<ActivityRecord>,
    /// Credited tonnes per participant.
    pub credits: BTreeMap<String, u64>,
    pub status: Status,
    pub verifier: Option<String>,
    pub note: String,
}

impl Submission {
    pub fn credits_t(&self) -> u64 {
        self.credits.values().sum()
    }

    pub fn unit(&self, catalog: &Catalog) -> UnitRef {
        let scheme = catalog.scheme(&self.pilot).expect("a submission's pilot has a scheme");
        UnitRef::offset(&scheme.standard, &self.methodology, self.year)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregator {
    pub pilot: String,
    pub account: String,
}

/// Per pilot: credits issued, transferred and surrendered for compliance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PilotTotals {
    pub issued_t: u64,
    pub transferred_t: u64,
    pub surrendered_t: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inclusion {
    config: Config,
    aggregators: BTreeMap<String, Aggregator>,
    verifiers: BTreeSet<String>,
    submissions: BTreeMap<String, Submission>,
    /// (aggregator, record id) and evidence hashes claimed by submissions not rejected.
    records: BTreeSet<(String, String)>,
    evidence: BTreeSet<String>,
    /// Credited tonnes per (pilot, methodology, year, aggregator, participant), submissions
    /// not rejected.
    claimed: BTreeMap<(String, String, u16, String, String), u64>,
    totals: BTreeMap<String, PilotTotals>,
    seq: u64,
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Inclusion {
    pub fn new(config: Config) -> Result<Inclusion, String> {
        for (market, p) in &config.pilots {
            if config.catalog.scheme(market).is_none() {
                return Err(format!("pilot {market} has no carbon-inclusion scheme in the catalog"));
            }
            if p.authority.is_empty() || p.issuance_account.is_empty() {
                return Err(format!("pilot {market}: authority and issuance account are required"));
            }
        }
        Ok(Inclusion {
            config,
            aggregators: BTreeMap::new(),
            verifiers: BTreeSet::new(),
            submissions: BTreeMap::new(),
            records: BTreeSet::new(),
            evidence: BTreeSet::new(),
            claimed: BTreeMap::new(),
            totals: BTreeMap::new(),
            seq: 0,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn catalog(&self) -> &Catalog {
        &self.config.catalog
    }

    pub fn submissions(&self) -> &BTreeMap<String, Submission> {
        &self.submissions
    }

    pub fn aggregators(&self) -> &BTreeMap<String, Aggregator> {
        &self.aggregators
    }

    pub fn totals(&self) -> &BTreeMap<String, PilotTotals> {
        &self.totals
    }

    /// Decides one command; on refusal nothing changed.
    pub fn execute(&mut self, env: &Envelope, registry: &dyn Accounts) -> Result<Outcome, Reject> {
        ets_core::check_identifier("command id", &env.id).or_else(|m| no(RejectKind::Invalid, m))?;
        let mut out = Outcome::default();
        match &env.command {
            Command::AddAggregator { aggregator, pilot, account } => {
                self.require_operator(&env.actor)?;
                ets_core::check_identifier("aggregator", aggregator).or_else(|m| no(RejectKind::Invalid, m))?;
                if self.aggregators.contains_key(aggregator) {
                    return no(RejectKind::Conflict, format!("aggregator {aggregator} is already registered"));
                }
                if !self.config.pilots.contains_key(pilot) {
                    return no(RejectKind::NotFound, format!("pilot {pilot} has no carbon-inclusion scheme set up"));
                }
                match registry.holder(account) {
                    None => return no(RejectKind::NotFound, format!("no registry account '{account}'")),
                    Some((market, _)) if &market != pilot => {
                        return no(RejectKind::Rule, format!("account {account} is in market {market}, not in {pilot}"))
                    }
                    Some(_) => {}
                }
                self.aggregators.insert(aggregator.clone(), Aggregator { pilot: pilot.clone(), account: account.clone() });
                out.events.push(Event::AggregatorAdded { aggregator: aggregator.clone(), pilot: pilot.clone() });
            }
            Command::AddVerifier { verifier } => {
                self.require_operator(&env.actor)?;
                ets_core::check_identifier("verifier", verifier).or_else(|m| no(RejectKind::Invalid, m))?;
                if !self.verifiers.insert(verifier.clone()) {
                    return no(RejectKind::Conflict, format!("verifier {verifier} is already registered"));
                }
                out.events.push(Event::VerifierAdded { verifier: verifier.clone() });
            }
            Command::Submit { submission, aggregator, methodology, year, records } => {
                if &env.actor != aggregator {
                    return no(RejectKind::Forbidden, format!("{} may not submit for aggregator {aggregator}", env.actor));
                }
                ets_core::check_identifier("submission", submission).or_else(|m| no(RejectKind::Invalid, m))?;
                if self.submissions.contains_key(submission) {
                    return no(RejectKind::Conflict, format!("submission {submission} already exists"));
                }
                let agg = self
                    .aggregators
                    .get(aggregator)
                    .ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("no aggregator '{aggregator}'") })?;
                let credits = self.check_submission(submission, aggregator, &agg.pilot, methodology, *year, records)?;
                let s = Submission {
                    aggregator: aggregator.clone(),
                    pilot: agg.pilot.clone(),
                    methodology: methodology.clone(),
                    year: *year,
                    records: records.clone(),
                    credits,
                    status: Status::Submitted,
                    verifier: None,
                    note: String::new(),
                };
                self.claim(&s, true);
                out.events.push(Event::Submitted {
                    submission: submission.clone(),
                    participants: s.credits.len(),
                    records: records.len(),
                    credits_t: s.credits_t(),
                });
                self.submissions.insert(submission.clone(), s);
            }
            Command::Verify { submission, accept, note } => {
                if !self.verifiers.contains(&env.actor) {
                    return no(RejectKind::Forbidden, format!("{} is not a registered verifier", env.actor));
                }
                let s = self.submission(submission)?;
                if s.aggregator == env.actor {
                    return no(RejectKind::Forbidden, format!("{} may not verify its own submission", env.actor));
                }
                if s.status != Status::Submitted {
                    return no(RejectKind::Conflict, format!("submission {submission} is {:?}, not awaiting verification", s.status));
                }
                if *accept {
                    // The checks again, against everything else claimed.
                    let s = s.clone();
                    self.claim(&s, false);
                    let again = self.check_submission(submission, &s.aggregator, &s.pilot, &s.methodology, s.year, &s.records);
                    self.claim(&s, true);
                    again?;
                }
                let s = self.submissions.get_mut(submission).expect("found");
                s.status = if *accept { Status::Accepted } else { Status::Rejected };
                s.verifier = Some(env.actor.clone());
                s.note = note.clone();
                if !accept {
                    let s = s.clone();
                    self.claim(&s, false);
                }
                out.events.push(Event::Verified { submission: submission.clone(), verifier: env.actor.clone(), accepted: *accept });
            }
            Command::Issue { submission } => {
                let s = self.submission(submission)?.clone();
                let pilot = &self.config.pilots[&s.pilot];
                if env.actor != pilot.authority {
                    return no(RejectKind::Forbidden, format!("only {}'s authority {} may issue its credits", s.pilot, pilot.authority));
                }
                if s.status != Status::Accepted {
                    return no(
                        RejectKind::Conflict,
                        format!("submission {submission} is {:?}; only accepted submissions are issued", s.status),
                    );
                }
                let quantity = s.credits_t();
                if quantity == 0 {
                    return no(RejectKind::Rule, format!("submission {submission} earns no whole tonne"));
                }
                let unit = s.unit(&self.config.catalog);
                let to = self.aggregators[&s.aggregator].account.clone();
                let (authority, issuance) = (pilot.authority.clone(), pilot.issuance_account.clone());
                self.instruct(
                    &mut out,
                    &authority,
                    RegistryCommand::Issue { unit: unit.clone(), quantity: ets_core::Tonnes(quantity), to: None },
                );
                self.instruct(
                    &mut out,
                    &authority,
                    RegistryCommand::Allocate { from: issuance, to: to.clone(), unit: unit.clone(), quantity: ets_core::Tonnes(quantity) },
                );
                self.submissions.get_mut(submission).expect("found").status = Status::Issued;
                self.totals.entry(s.pilot.clone()).or_default().issued_t += quantity;
                out.events.push(Event::Issued { submission: submission.clone(), unit, quantity, to });
            }
            Command::Transfer { from, to, unit, quantity } => {
                let (scheme, _) = self.credit(unit)?;
                let pilot = scheme.market.clone();
                let rules = &self.config.pilots[&pilot];
                let Some((market, holder_type)) = registry.holder(to) else {
                    return no(RejectKind::NotFound, format!("no registry account '{to}'"));
                };
                let admitted = match holder_type {
                    HolderType::Entity => rules.participants.entities,
                    HolderType::Institution => rules.participants.institutions,
                    HolderType::Individual => rules.participants.individuals,
                    HolderType::Authority => false,
                };
                if !admitted {
                    return no(
                        RejectKind::Rule,
                        format!(
                            "{pilot}'s rulebook {} does not admit {} holders to trading: {to} may not receive {unit}",
                            rules.rulebook,
                            holder_type.name()
                        ),
                    );
                }
                if market != pilot {
                    return no(RejectKind::Rule, format!("account {to} is in market {market}; {unit} credits stay in {pilot}"));
                }
                self.check_free(registry, from, unit, *quantity)?;
                self.instruct(
                    &mut out,
                    &env.actor,
                    RegistryCommand::Transfer {
                        from: from.clone(),
                        to: to.clone(),
                        unit: unit.clone(),
                        quantity: ets_core::Tonnes(*quantity),
                    },
                );
                self.totals.entry(pilot).or_default().transferred_t += quantity;
                out.events.push(Event::Transferred { from: from.clone(), to: to.clone(), unit: unit.clone(), quantity: *quantity });
            }
            Command::Surrender { account, unit, quantity, year, verified_t, allocation_t, already } => {
                let (scheme, methodology) = self.credit(unit)?;
                let pilot = scheme.market.clone();
                let project = Catalog::project(scheme, methodology);
                let Some((market, _)) = registry.holder(account) else {
                    return no(RejectKind::NotFound, format!("no registry account '{account}'"));
                };
                // The rules of the market the entity complies in.
                let Some(rules) = self.config.pilots.get(&market) else {
                    return no(
                        RejectKind::Rule,
                        format!("{unit} credits do not count in market {market}: it has no carbon-inclusion scheme here"),
                    );
                };
                if let Some(why) = rules.compliance.offset_ineligible(&project) {
                    return no(RejectKind::Rule, format!("{unit} does not count for {market} compliance under {}: {why}", rules.rulebook));
                }
                if *quantity == 0 || *quantity > crate::desk::MAX_TONNES {
                    return no(RejectKind::Invalid, format!("quantity {quantity} must be 1 to {}", crate::desk::MAX_TONNES));
                }
                let assess = |lots: &[Lot]| {
                    rules
                        .compliance
                        .assess(*year, *verified_t, *allocation_t, lots, ets_core::Fen(0))
                        .map_err(|e| Reject { kind: RejectKind::Invalid, message: e.to_string() })
                };
                let before = assess(already)?;
                let mut lots = already.clone();
                lots.push(Lot { units: Units::Offset { project, vintage: unit.vintage }, quantity: *quantity });
                let after = assess(&lots)?;
                let gained = after.offsets_counted_t - before.offsets_counted_t;
                if gained < *quantity {
                    let why: Vec<String> =
                        after.not_counted.iter().skip(before.not_counted.len()).map(|(t, w)| format!("{t} t: {w}")).collect();
                    return no(
                        RejectKind::Rule,
                        format!(
                            "only {gained} of {quantity} t of {unit} would count for {market} {year} under {} ({}); surrender at most {gained} t",
                            rules.rulebook,
                            if why.is_empty() { "the obligation is met".to_string() } else { why.join("; ") }
                        ),
                    );
                }
                self.check_free(registry, account, unit, *quantity)?;
                self.instruct(
                    &mut out,
                    &env.actor,
                    RegistryCommand::Surrender {
                        account: account.clone(),
                        unit: unit.clone(),
                        quantity: ets_core::Tonnes(*quantity),
                        compliance_year: *year,
                    },
                );
                self.totals.entry(pilot.clone()).or_default().surrendered_t += quantity;
                out.events.push(Event::Surrendered {
                    pilot,
                    account: account.clone(),
                    unit: unit.clone(),
                    quantity: *quantity,
                    year: *year,
                    offsets_counted_t: after.offsets_counted_t,
                });
            }
        }
        Ok(out)
    }

    fn require_operator(&self, actor: &str) -> Result<(), Reject> {
        if actor != self.config.operator {
            return no(RejectKind::Forbidden, format!("{actor} may not do this: only the scheme operator {} may", self.config.operator));
        }
        Ok(())
    }

    fn submission(&self, id: &str) -> Result<&Submission, Reject> {
        self.submissions.get(id).ok_or_else(|| Reject { kind: RejectKind::NotFound, message: format!("no submission '{id}'") })
    }

    fn credit(&self, unit: &UnitRef) -> Result<(&Scheme, &Methodology), Reject> {
        self.config.catalog.credit(unit).filter(|(s, _)| self.config.pilots.contains_key(&s.market)).ok_or_else(|| Reject {
            kind: RejectKind::NotFound,
            message: format!("{unit} is not a carbon-inclusion credit of a pilot set up here"),
        })
    }

    fn check_free(&self, registry: &dyn Accounts, account: &str, unit: &UnitRef, quantity: u64) -> Result<(), Reject> {
        let free = registry.free(account, unit);
        if free < quantity {
            return no(RejectKind::Insufficient, format!("account {account} holds {free} t of {unit} freely, {quantity} t needed"));
        }
        Ok(())
    }

    fn instruct(&mut self, out: &mut Outcome, actor: &str, command: RegistryCommand) {
        self.seq += 1;
        out.instructions.push(crate::desk::Instruction { id: format!("inc-{}", self.seq), actor: actor.to_string(), command });
    }

    /// Adds (or with `add` false removes) a submission's records, evidence and credits.
    fn claim(&mut self, s: &Submission, add: bool) {
        for r in &s.records {
            let key = (s.aggregator.clone(), r.record.clone());
            if add {
                self.records.insert(key);
                self.evidence.insert(r.evidence_sha256.clone());
            } else {
                self.records.remove(&key);
                self.evidence.remove(&r.evidence_sha256);
            }
        }
        for (participant, t) in &s.credits {
            let key = (s.pilot.clone(), s.methodology.clone(), s.year, s.aggregator.clone(), participant.clone());
            let c = self.claimed.entry(key.clone()).or_default();
            if add {
                *c += t;
            } else {
                *c -= t;
                if *c == 0 {
                    self.claimed.remove(&key);
                }
            }
        }
    }

    /// Every check of a submission; the credits per participant if it passes, else every
    /// problem (the first `PROBLEMS_SHOWN_MAX`).
    fn check_submission(
        &self,
        submission: &str,
        aggregator: &str,
        pilot: &str,
        methodology: &str,
        year: u16,
        records: &[ActivityRecord],
    ) -> Result<BTreeMap<String, u64>, Reject> {
        let Some(m) = self.config.catalog.methodology(methodology) else {
            let known: Vec<&str> = self.config.catalog.methodologies.iter().map(|m| m.id.as_str()).collect();
            return no(
                RejectKind::NotFound,
                format!("submission {submission}: unknown methodology '{methodology}' (known: {})", known.join(", ")),
            );
        };
        if !m.pilots.iter().any(|p| p == pilot) {
            return no(RejectKind::Rule, format!("submission {submission}: methodology {methodology} is not used in {pilot}"));
        }
        if records.is_empty() || records.len() > RECORDS_MAX {
            return no(RejectKind::Invalid, format!("submission {submission}: {} records; 1 to {RECORDS_MAX} are accepted", records.len()));
        }
        let mut problems = Vec::new();
        let mut ids = BTreeSet::new();
        let mut hashes = BTreeSet::new();
        let mut activity: BTreeMap<&str, Decimal> = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            let at = format!("record {} ('{}', participant {})", i + 1, r.record, r.participant);
            if let Err(e) = ets_core::check_identifier("record id", &r.record) {
                problems.push(format!("{at}: {e}"));
            }
            if let Err(e) = ets_core::check_identifier("participant", &r.participant) {
                problems.push(format!("{at}: {e}"));
            }
            if r.quantity <= Decimal::ZERO || r.quantity > Decimal::from(ACTIVITY_MAX) {
                problems.push(format!("{at}: quantity {} {} must be above 0 and at most {ACTIVITY_MAX}", r.quantity, m.activity_unit));
            }
            if r.date < m.crediting_from || r.date > m.crediting_to {
                problems.push(format!(
                    "{at}: activity on {} is outside {methodology}'s crediting period {} to {}",
                    r.date, m.crediting_from, m.crediting_to
                ));
            } else if r.date.ymd().0 != year as i32 {
                problems.push(format!("{at}: activity on {} is not in the submission's year {year}", r.date));
            }
            if r.evidence_sha256.is_empty() {
                problems.push(format!("{at}: no evidence"));
            } else if !is_sha256(&r.evidence_sha256) {
                problems.push(format!("{at}: evidence '{}' is not a SHA-256 (64 lower-case hex digits)", r.evidence_sha256));
            } else if !hashes.insert(r.evidence_sha256.as_str()) {
                problems.push(format!("{at}: duplicate: its evidence is also used by another record of this submission"));
            } else if self.evidence.contains(&r.evidence_sha256) {
                problems.push(format!("{at}: duplicate: its evidence was already used in an earlier submission"));
            }
            if !ids.insert(r.record.as_str()) {
                problems.push(format!("{at}: duplicate: record id appears twice in this submission"));
            } else if self.records.contains(&(aggregator.to_string(), r.record.clone())) {
                problems.push(format!("{at}: duplicate: record id was already submitted by {aggregator}"));
            }
            if let Some(total) = activity.get(r.participant.as_str()).copied().unwrap_or_default().checked_add(r.quantity) {
                activity.insert(&r.participant, total);
            }
        }
        let mut credits = BTreeMap::new();
        for (participant, quantity) in activity {
            let Some(t) = credits_t(quantity, m.factor_t_per_unit) else {
                problems.push(format!("participant {participant}: credits overflow"));
                continue;
            };
            let earlier = self
                .claimed
                .get(&(pilot.to_string(), methodology.to_string(), year, aggregator.to_string(), participant.to_string()))
                .copied()
                .unwrap_or(0);
            if earlier + t > m.cap_t_per_participant_year {
                problems.push(format!(
                    "participant {participant}: {t} t in this submission{} exceeds {methodology}'s cap of {} t per participant in {year}",
                    if earlier > 0 { format!(" plus {earlier} t already submitted") } else { String::new() },
                    m.cap_t_per_participant_year
                ));
            }
            if t > 0 {
                credits.insert(participant.to_string(), t);
            }
        }
        if problems.is_empty() {
            return Ok(credits);
        }
        let n = problems.len();
        problems.truncate(PROBLEMS_SHOWN_MAX);
        if n > PROBLEMS_SHOWN_MAX {
            problems.push(format!("and {} more", n - PROBLEMS_SHOWN_MAX));
        }
        no(RejectKind::Rule, format!("submission {submission} refused, {n} problem(s):\n  {}", problems.join("\n  ")))
    }
}

impl From<ets_registry::RejectKind> for RejectKind {
    /// A registry refusal met by one of the register's instructions (a trial before journaling).
    fn from(kind: ets_registry::RejectKind) -> RejectKind {
        match kind {
            ets_registry::RejectKind::Invalid => RejectKind::Invalid,
            ets_registry::RejectKind::NotFound => RejectKind::NotFound,
            ets_registry::RejectKind::Forbidden => RejectKind::Forbidden,
            ets_registry::RejectKind::Refused => RejectKind::Rule,
            ets_registry::RejectKind::Conflict => RejectKind::Conflict,
        }
    }
}
