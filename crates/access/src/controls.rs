//! Registry security controls (mechanisms.md §1.1): four-eyes transfers, trusted account lists
//! with a delay counted in working days, the delay and the per-transaction limit for transfers
//! to accounts not on the list, and execution only while the registry is open.
//!
//! Timing, from the second approval (a transfer is "proposed for execution" once one
//! representative initiated it and another approved it, Art. 35(1)):
//! - to a trusted account: at once if the registry is open, else at the next opening (Art. 35(2));
//! - to any other account: the "26-hour" rule (Art. 35(3)), see `ControlRules`; the approval time
//!   is first moved to the next opening, so approvals after closing or on closed days count as
//!   made at the next opening;
//! - trust is checked again at release: a deferred trusted transfer whose destination left the
//!   list is timed again by the untrusted rule from the tick, or terminated if over the limit.
//!
//! A trusted-list addition takes effect at the configured minute of the N-th working day after
//! its approval; removal is immediate (Art. 23(4)).

use crate::calendar::Calendar;
use crate::event::{Event, RejectKind, Rejection};
use crate::identity::Principal;
use crate::policy::{allows, AccountRef, Action};
use crate::rules::{ControlRules, OutsideHours};
use ets_core::{check_identifier, Timestamp, Tonnes};
use ets_registry::UnitRef;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferStatus {
    AwaitingApproval,
    Approved { approver: String, trusted: bool, release_at: Timestamp },
    Released { at: Timestamp },
    Rejected { by: String },
    Cancelled { by: String },
    Terminated { reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferProposal {
    pub id: String,
    pub from: AccountRef,
    pub to: AccountRef,
    pub unit: UnitRef,
    pub quantity: Tonnes,
    pub initiator: String,
    pub proposed_at: Timestamp,
    pub status: TransferStatus,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustedStatus {
    AwaitingApproval,
    Approved { approver: String, effective_at: Timestamp },
    Rejected { by: String },
    Cancelled { by: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedProposal {
    pub id: String,
    pub account: AccountRef,
    pub trusted: AccountRef,
    pub initiator: String,
    pub proposed_at: Timestamp,
    pub status: TrustedStatus,
}

/// One entry of an account's trusted list; trusted from `effective_at` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedEntry {
    pub account: AccountRef,
    pub effective_at: Timestamp,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Controls {
    pub(crate) transfers: BTreeMap<String, TransferProposal>,
    /// Approved, unreleased transfers by release time.
    pub(crate) scheduled: BTreeSet<(Timestamp, String)>,
    /// Awaiting or approved transfers per source account.
    pub(crate) open_per_account: BTreeMap<String, usize>,
    /// account number → trusted account number → entry.
    pub(crate) trusted: BTreeMap<String, BTreeMap<String, TrustedEntry>>,
    pub(crate) trusted_proposals: BTreeMap<String, TrustedProposal>,
    /// (account, trusted) pairs with an addition awaiting approval.
    pub(crate) awaiting_trusted: BTreeSet<(String, String)>,
    /// Entries not yet announced as effective, by effective time.
    pub(crate) upcoming: BTreeSet<(Timestamp, String, String)>,
}

fn no<T>(kind: RejectKind, message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(kind, message))
}

fn permit(principal: &Principal, action: Action) -> Result<(), Rejection> {
    if allows(&principal.roles, &action) {
        Ok(())
    } else {
        no(RejectKind::Forbidden, format!("{} may not {action:?}", principal.user))
    }
}

fn check_account(what: &str, account: &AccountRef) -> Result<(), Rejection> {
    check_identifier(what, &account.number)
        .and_then(|_| check_identifier("market", &account.market))
        .map_err(|m| Rejection::new(RejectKind::Invalid, m))
}

/// When a transfer to an untrusted account approved at `at` is released.
pub fn untrusted_release(rules: &ControlRules, at: Timestamp) -> Timestamp {
    let cal = &rules.calendar;
    let (day, ms) = cal.local(cal.next_opening(at));
    let before_cutoff = ms < i64::from(rules.untrusted_cutoff_minute) * 60_000;
    let days =
        if before_cutoff { rules.untrusted_delay_working_days_before_cutoff } else { rules.untrusted_delay_working_days_after_cutoff };
    cal.at(cal.working_days_after(day, days), rules.untrusted_release_minute)
}

/// When a trusted-list addition approved at `at` takes effect.
pub fn trusted_effective(rules: &ControlRules, at: Timestamp) -> Timestamp {
    let cal = &rules.calendar;
    let (day, _) = cal.local(at);
    cal.at(cal.working_days_after(day, rules.trusted_addition_delay_working_days), rules.trusted_addition_effective_minute)
}

fn check_hours(rules: &ControlRules, at: Timestamp, what: &str) -> Result<(), Rejection> {
    let cal: &Calendar = &rules.calendar;
    if rules.outside_hours == OutsideHours::Refuse && !cal.is_open(at) {
        return no(RejectKind::Refused, format!("{what} only while the registry is open; it opens next at {}", cal.next_opening(at)));
    }
    Ok(())
}

impl Controls {
    pub fn transfer(&self, id: &str) -> Option<&TransferProposal> {
        self.transfers.get(id)
    }

    pub fn transfers(&self) -> impl Iterator<Item = &TransferProposal> {
        self.transfers.values()
    }

    pub fn trusted_proposal(&self, id: &str) -> Option<&TrustedProposal> {
        self.trusted_proposals.get(id)
    }

    pub fn trusted_proposals(&self) -> impl Iterator<Item = &TrustedProposal> {
        self.trusted_proposals.values()
    }

    /// The trusted list of `account`, with each entry's effective time (future ones included).
    pub fn trusted_list(&self, account: &str) -> Vec<&TrustedEntry> {
        self.trusted.get(account).map(|list| list.values().collect()).unwrap_or_default()
    }

    /// Whether `to` is on `from`'s trusted list at `at`.
    pub fn is_trusted(&self, from: &str, to: &str, at: Timestamp) -> bool {
        self.trusted.get(from).and_then(|list| list.get(to)).is_some_and(|e| e.effective_at <= at)
    }

    /// Approved transfers due at `now` (release time reached and the registry open).
    pub fn due(&self, rules: &ControlRules, now: Timestamp) -> Vec<&TransferProposal> {
        if !rules.calendar.is_open(now) {
            return Vec::new();
        }
        self.scheduled.range(..=(now, String::from("\u{10FFFF}"))).map(|(_, id)| &self.transfers[id]).collect()
    }

    fn open_transfer(&self, id: &str) -> Result<&TransferProposal, Rejection> {
        self.transfers.get(id).ok_or_else(|| Rejection::new(RejectKind::NotFound, format!("no transfer proposal {id}")))
    }

    fn open_trusted(&self, id: &str) -> Result<&TrustedProposal, Rejection> {
        self.trusted_proposals.get(id).ok_or_else(|| Rejection::new(RejectKind::NotFound, format!("no trusted-list proposal {id}")))
    }

    fn check_limit(
        &self,
        rules: &ControlRules,
        from: &AccountRef,
        to: &AccountRef,
        quantity: Tonnes,
        at: Timestamp,
    ) -> Result<bool, Rejection> {
        let trusted = self.is_trusted(&from.number, &to.number, at);
        if !trusted && quantity.0 > rules.untrusted_transfer_limit_t {
            return no(
                RejectKind::Refused,
                format!(
                    "{quantity} t to account {} exceeds the limit of {} t per transaction to accounts not on {}'s trusted list",
                    to.number,
                    Tonnes(rules.untrusted_transfer_limit_t),
                    from.number
                ),
            );
        }
        Ok(trusted)
    }

    // ---- transfers ----

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decide_propose_transfer(
        &self,
        rules: &ControlRules,
        at: Timestamp,
        principal: &Principal,
        proposal: &str,
        from: &AccountRef,
        to: &AccountRef,
        unit: &UnitRef,
        quantity: Tonnes,
    ) -> Result<Vec<Event>, Rejection> {
        check_identifier("proposal", proposal).map_err(|m| Rejection::new(RejectKind::Invalid, m))?;
        check_account("source account", from)?;
        check_account("destination account", to)?;
        permit(principal, Action::ProposeTransfer { account: from.clone() })?;
        if self.transfers.contains_key(proposal) {
            return no(RejectKind::Conflict, format!("transfer proposal {proposal} already exists"));
        }
        if from.number == to.number {
            return no(RejectKind::Invalid, format!("account {} cannot transfer to itself", from.number));
        }
        if quantity.0 == 0 {
            return no(RejectKind::Invalid, "the quantity must be at least 1 t");
        }
        check_hours(rules, at, "transfers can be proposed")?;
        if self.open_per_account.get(&from.number).copied().unwrap_or(0) >= rules.open_proposals_per_account_max {
            return no(
                RejectKind::Refused,
                format!("account {} has {} open proposals, the most allowed", from.number, rules.open_proposals_per_account_max),
            );
        }
        self.check_limit(rules, from, to, quantity, at)?;
        Ok(vec![Event::TransferProposed {
            proposal: proposal.to_string(),
            from: from.clone(),
            to: to.clone(),
            unit: unit.clone(),
            quantity,
            initiator: principal.user.clone(),
        }])
    }

    pub(crate) fn decide_approve_transfer(
        &self,
        rules: &ControlRules,
        at: Timestamp,
        principal: &Principal,
        proposal: &str,
    ) -> Result<Vec<Event>, Rejection> {
        let p = self.open_transfer(proposal)?;
        permit(principal, Action::ApproveTransfer { account: p.from.clone() })?;
        if p.status != TransferStatus::AwaitingApproval {
            return no(RejectKind::Refused, format!("transfer {proposal} is not awaiting approval ({:?})", p.status));
        }
        if p.initiator == principal.user {
            return no(
                RejectKind::Forbidden,
                format!("four-eyes: {} initiated transfer {proposal} and cannot approve it; another representative must", p.initiator),
            );
        }
        check_hours(rules, at, "transfers can be approved")?;
        let trusted = self.check_limit(rules, &p.from, &p.to, p.quantity, at)?;
        let release_at = if trusted { rules.calendar.next_opening(at) } else { untrusted_release(rules, at) };
        let mut events =
            vec![Event::TransferApproved { proposal: proposal.to_string(), approver: principal.user.clone(), trusted, release_at }];
        if release_at <= at {
            events.push(released(p));
        }
        Ok(events)
    }

    pub(crate) fn decide_reject_transfer(&self, principal: &Principal, proposal: &str) -> Result<Vec<Event>, Rejection> {
        let p = self.open_transfer(proposal)?;
        permit(principal, Action::ApproveTransfer { account: p.from.clone() })?;
        if p.status != TransferStatus::AwaitingApproval {
            return no(RejectKind::Refused, format!("transfer {proposal} is not awaiting approval ({:?})", p.status));
        }
        if p.initiator == principal.user {
            return no(RejectKind::Forbidden, format!("{} initiated transfer {proposal}; cancel it instead of rejecting it", p.initiator));
        }
        Ok(vec![Event::TransferRejected { proposal: proposal.to_string(), by: principal.user.clone() }])
    }

    pub(crate) fn decide_cancel_transfer(&self, principal: &Principal, proposal: &str) -> Result<Vec<Event>, Rejection> {
        let p = self.open_transfer(proposal)?;
        permit(principal, Action::ProposeTransfer { account: p.from.clone() })?;
        if !matches!(p.status, TransferStatus::AwaitingApproval | TransferStatus::Approved { .. }) {
            return no(RejectKind::Refused, format!("transfer {proposal} can no longer be cancelled ({:?})", p.status));
        }
        Ok(vec![Event::TransferCancelled { proposal: proposal.to_string(), by: principal.user.clone() }])
    }

    // ---- trusted lists ----

    pub(crate) fn decide_propose_trusted(
        &self,
        rules: &ControlRules,
        principal: &Principal,
        proposal: &str,
        account: &AccountRef,
        trusted: &AccountRef,
    ) -> Result<Vec<Event>, Rejection> {
        check_identifier("proposal", proposal).map_err(|m| Rejection::new(RejectKind::Invalid, m))?;
        check_account("account", account)?;
        check_account("trusted account", trusted)?;
        permit(principal, Action::ManageTrustedList { account: account.clone() })?;
        if self.trusted_proposals.contains_key(proposal) {
            return no(RejectKind::Conflict, format!("trusted-list proposal {proposal} already exists"));
        }
        if account.number == trusted.number {
            return no(RejectKind::Invalid, format!("account {} cannot trust itself", account.number));
        }
        if let Some(entry) = self.trusted.get(&account.number).and_then(|l| l.get(&trusted.number)) {
            return no(
                RejectKind::Conflict,
                format!("{} is already on {}'s trusted list (effective {})", trusted.number, account.number, entry.effective_at),
            );
        }
        let pair = (account.number.clone(), trusted.number.clone());
        if self.awaiting_trusted.contains(&pair) {
            return no(
                RejectKind::Conflict,
                format!("adding {} to {}'s trusted list is already awaiting approval", trusted.number, account.number),
            );
        }
        let listed = self.trusted.get(&account.number).map_or(0, |l| l.len());
        let awaiting =
            self.awaiting_trusted.range((account.number.clone(), String::new())..).take_while(|(a, _)| *a == account.number).count();
        if listed + awaiting >= rules.trusted_per_account_max {
            return no(
                RejectKind::Refused,
                format!("{}'s trusted list is full ({} entries and proposals)", account.number, rules.trusted_per_account_max),
            );
        }
        Ok(vec![Event::TrustedProposed {
            proposal: proposal.to_string(),
            account: account.clone(),
            trusted: trusted.clone(),
            initiator: principal.user.clone(),
        }])
    }

    pub(crate) fn decide_approve_trusted(
        &self,
        rules: &ControlRules,
        at: Timestamp,
        principal: &Principal,
        proposal: &str,
    ) -> Result<Vec<Event>, Rejection> {
        let p = self.open_trusted(proposal)?;
        permit(principal, Action::ApproveTrustedList { account: p.account.clone() })?;
        if p.status != TrustedStatus::AwaitingApproval {
            return no(RejectKind::Refused, format!("trusted-list proposal {proposal} is not awaiting approval ({:?})", p.status));
        }
        if p.initiator == principal.user {
            return no(
                RejectKind::Forbidden,
                format!("four-eyes: {} proposed {proposal} and cannot approve it; another representative must", p.initiator),
            );
        }
        let effective_at = trusted_effective(rules, at);
        Ok(vec![Event::TrustedApproved { proposal: proposal.to_string(), approver: principal.user.clone(), effective_at }])
    }

    pub(crate) fn decide_end_trusted(&self, principal: &Principal, proposal: &str, reject: bool) -> Result<Vec<Event>, Rejection> {
        let p = self.open_trusted(proposal)?;
        let action = if reject {
            Action::ApproveTrustedList { account: p.account.clone() }
        } else {
            Action::ManageTrustedList { account: p.account.clone() }
        };
        permit(principal, action)?;
        if p.status != TrustedStatus::AwaitingApproval {
            return no(
                RejectKind::Refused,
                format!("trusted-list proposal {proposal} is not awaiting approval ({:?}); remove the entry instead", p.status),
            );
        }
        let (proposal, by) = (proposal.to_string(), principal.user.clone());
        if reject {
            if p.initiator == principal.user {
                return no(RejectKind::Forbidden, format!("{} proposed {proposal}; cancel it instead of rejecting it", p.initiator));
            }
            Ok(vec![Event::TrustedRejected { proposal, by }])
        } else {
            Ok(vec![Event::TrustedCancelled { proposal, by }])
        }
    }

    pub(crate) fn decide_remove_trusted(
        &self,
        principal: &Principal,
        account: &AccountRef,
        trusted: &str,
    ) -> Result<Vec<Event>, Rejection> {
        permit(principal, Action::ManageTrustedList { account: account.clone() })?;
        if !self.trusted.get(&account.number).is_some_and(|l| l.contains_key(trusted)) {
            return no(RejectKind::NotFound, format!("{trusted} is not on {}'s trusted list", account.number));
        }
        Ok(vec![Event::TrustedRemoved { account: account.number.clone(), trusted: trusted.to_string(), by: principal.user.clone() }])
    }

    // ---- the clock ----

    pub(crate) fn decide_tick(&self, rules: &ControlRules, at: Timestamp) -> Vec<Event> {
        let mut events = Vec::new();
        for p in self.due(rules, at) {
            let TransferStatus::Approved { trusted, .. } = p.status else { unreachable!("scheduled transfers are approved") };
            if trusted && !self.is_trusted(&p.from.number, &p.to.number, at) {
                if p.quantity.0 > rules.untrusted_transfer_limit_t {
                    let reason = format!(
                        "{} left {}'s trusted list before release and {} t exceeds the limit of {} t to untrusted accounts",
                        p.to.number,
                        p.from.number,
                        p.quantity,
                        Tonnes(rules.untrusted_transfer_limit_t)
                    );
                    events.push(Event::TransferTerminated { proposal: p.id.clone(), reason });
                } else {
                    events.push(Event::TransferRescheduled { proposal: p.id.clone(), release_at: untrusted_release(rules, at) });
                }
                continue;
            }
            events.push(released(p));
        }
        for (_, account, trusted) in self.upcoming.range(..=(at, String::from("\u{10FFFF}"), String::new())) {
            events.push(Event::TrustedEffective { account: account.clone(), trusted: trusted.clone() });
        }
        events
    }

    // ---- apply ----

    pub(crate) fn apply(&mut self, rules: &ControlRules, at: Timestamp, event: &Event) {
        match event {
            Event::TransferProposed { proposal, from, to, unit, quantity, initiator } => {
                let p = TransferProposal {
                    id: proposal.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    unit: unit.clone(),
                    quantity: *quantity,
                    initiator: initiator.clone(),
                    proposed_at: at,
                    status: TransferStatus::AwaitingApproval,
                };
                *self.open_per_account.entry(from.number.clone()).or_default() += 1;
                assert!(self.transfers.insert(proposal.clone(), p).is_none(), "transfer proposal {proposal} twice");
            }
            Event::TransferApproved { proposal, approver, trusted, release_at } => {
                let p = self.transfers.get_mut(proposal).expect("approval of a known proposal");
                assert!(p.status == TransferStatus::AwaitingApproval && p.initiator != *approver, "four-eyes broken for {proposal}");
                p.status = TransferStatus::Approved { approver: approver.clone(), trusted: *trusted, release_at: *release_at };
                self.scheduled.insert((*release_at, proposal.clone()));
            }
            Event::TransferRescheduled { proposal, release_at } => {
                let p = self.transfers.get_mut(proposal).expect("rescheduling a known proposal");
                let TransferStatus::Approved { trusted, release_at: old, .. } = &mut p.status else {
                    panic!("rescheduling unapproved {proposal}")
                };
                assert!(self.scheduled.remove(&(*old, proposal.clone())));
                *trusted = false;
                *old = *release_at;
                self.scheduled.insert((*release_at, proposal.clone()));
            }
            Event::TransferReleased { proposal, from, to, quantity, .. } => {
                assert!(rules.calendar.is_open(at), "transfer {proposal} released while the registry is closed");
                let p = &self.transfers[proposal];
                assert!(p.from == *from && p.to == *to && p.quantity == *quantity, "transfer {proposal} released with other terms");
                let trusted = self.is_trusted(&from.number, &to.number, at);
                assert!(trusted || quantity.0 <= rules.untrusted_transfer_limit_t, "transfer {proposal} over the untrusted limit");
                self.close_transfer(proposal, TransferStatus::Released { at })
            }
            Event::TransferRejected { proposal, by } => self.close_transfer(proposal, TransferStatus::Rejected { by: by.clone() }),
            Event::TransferCancelled { proposal, by } => self.close_transfer(proposal, TransferStatus::Cancelled { by: by.clone() }),
            Event::TransferTerminated { proposal, reason } => {
                self.close_transfer(proposal, TransferStatus::Terminated { reason: reason.clone() })
            }
            Event::TrustedProposed { proposal, account, trusted, initiator } => {
                let p = TrustedProposal {
                    id: proposal.clone(),
                    account: account.clone(),
                    trusted: trusted.clone(),
                    initiator: initiator.clone(),
                    proposed_at: at,
                    status: TrustedStatus::AwaitingApproval,
                };
                self.awaiting_trusted.insert((account.number.clone(), trusted.number.clone()));
                assert!(self.trusted_proposals.insert(proposal.clone(), p).is_none(), "trusted proposal {proposal} twice");
            }
            Event::TrustedApproved { proposal, approver, effective_at } => {
                let p = self.trusted_proposals.get_mut(proposal).expect("approval of a known proposal");
                assert!(p.status == TrustedStatus::AwaitingApproval && p.initiator != *approver, "four-eyes broken for {proposal}");
                p.status = TrustedStatus::Approved { approver: approver.clone(), effective_at: *effective_at };
                let (account, trusted) = (p.account.number.clone(), p.trusted.clone());
                self.awaiting_trusted.remove(&(account.clone(), trusted.number.clone()));
                self.upcoming.insert((*effective_at, account.clone(), trusted.number.clone()));
                let entry = TrustedEntry { account: trusted, effective_at: *effective_at };
                self.trusted.entry(account).or_default().insert(entry.account.number.clone(), entry);
            }
            Event::TrustedRejected { proposal, by } => self.close_trusted(proposal, TrustedStatus::Rejected { by: by.clone() }),
            Event::TrustedCancelled { proposal, by } => self.close_trusted(proposal, TrustedStatus::Cancelled { by: by.clone() }),
            Event::TrustedEffective { account, trusted } => {
                let entry = &self.trusted[account][trusted];
                assert!(entry.effective_at <= at, "{trusted} announced effective before its time");
                self.upcoming.remove(&(entry.effective_at, account.clone(), trusted.clone()));
            }
            Event::TrustedRemoved { account, trusted, .. } => {
                let list = self.trusted.get_mut(account).expect("removal from a known list");
                let entry = list.remove(trusted).expect("removal of a listed account");
                self.upcoming.remove(&(entry.effective_at, account.clone(), trusted.clone()));
            }
            _ => unreachable!("not a controls event: {event:?}"),
        }
    }

    fn close_transfer(&mut self, proposal: &str, status: TransferStatus) {
        let p = self.transfers.get_mut(proposal).expect("a known proposal");
        match &p.status {
            TransferStatus::AwaitingApproval => {}
            TransferStatus::Approved { release_at, .. } => {
                assert!(self.scheduled.remove(&(*release_at, proposal.to_string())));
            }
            done => panic!("transfer {proposal} already closed ({done:?})"),
        }
        if let TransferStatus::Released { at } = status {
            assert!(
                matches!(p.status, TransferStatus::Approved { release_at, .. } if release_at <= at),
                "transfer {proposal} released unapproved or early"
            );
        }
        *self.open_per_account.get_mut(&p.from.number).expect("counted") -= 1;
        p.status = status;
    }

    fn close_trusted(&mut self, proposal: &str, status: TrustedStatus) {
        let p = self.trusted_proposals.get_mut(proposal).expect("a known proposal");
        assert!(p.status == TrustedStatus::AwaitingApproval, "trusted proposal {proposal} already closed");
        self.awaiting_trusted.remove(&(p.account.number.clone(), p.trusted.number.clone()));
        p.status = status;
    }
}

fn released(p: &TransferProposal) -> Event {
    Event::TransferReleased { proposal: p.id.clone(), from: p.from.clone(), to: p.to.clone(), unit: p.unit.clone(), quantity: p.quantity }
}
