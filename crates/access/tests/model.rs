//! Random command sequences against the controls, checked against a small model built from the
//! events alone: no transfer is released without a second approval by a different user holding
//! a representative role of the source account, none before its release time or while the
//! registry is closed, none twice, and none above the limit to an account that the model's own
//! trusted lists do not trust at that instant. Refused commands change nothing; the journal
//! replays to the same state.

mod common;

use common::*;
use ets_access::{AccountRef, Actor, Command, ControlRules, Event, Refusal, Role};
use ets_core::{Timestamp, Tonnes};
use ets_registry::UnitRef;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const USERS: [&str; 7] = ["alice", "bob", "carol", "dave", "erin", "frank", "gina"];
const QUANTITIES: [u64; 6] = [1, 1_000, 1_999_999, 2_000_000, 2_000_001, 5_000_000];

fn account(i: usize) -> AccountRef {
    [a1(), a2(), a3()][i].clone()
}

/// Who may approve for which account, as the world sets the roles up.
fn approver_of(user: &str, account: &str) -> bool {
    matches!((user, account), ("alice" | "bob" | "carol", "A1") | ("dave" | "frank", "A2") | ("erin" | "gina", "A3"))
}

/// Who may propose for which account.
fn proposer_of(user: &str, account: &str) -> bool {
    approver_of(user, account) && !matches!(user, "carol" | "gina")
}

/// A user: mostly one who holds a role for the account concerned (so that commands get through),
/// sometimes anyone (so that refusals are exercised).
#[derive(Clone, Copy, Debug)]
enum Who {
    Eligible(usize),
    Anyone(usize),
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![4 => any::<usize>().prop_map(Who::Eligible), 1 => (0..USERS.len()).prop_map(Who::Anyone)]
}

fn pick(who: Who, eligible: impl Fn(&str) -> bool) -> usize {
    match who {
        Who::Anyone(i) => i,
        Who::Eligible(i) => {
            let list: Vec<usize> = (0..USERS.len()).filter(|&u| eligible(USERS[u])).collect();
            if list.is_empty() {
                i % USERS.len()
            } else {
                list[i % list.len()]
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Propose { who: Who, from: usize, to: usize, quantity: usize },
    Approve { who: Who, proposal: usize },
    Reject { who: Who, proposal: usize },
    Cancel { who: Who, proposal: usize },
    ProposeTrusted { who: Who, account: usize, trusted: usize },
    ApproveTrusted { who: Who, proposal: usize },
    RemoveTrusted { who: Who, account: usize, trusted: usize },
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (who(), 0..3usize, 0..3usize, 0..QUANTITIES.len()).prop_map(|(who, from, to, quantity)| Op::Propose { who, from, to, quantity }),
        4 => (who(), 0..60usize).prop_map(|(who, proposal)| Op::Approve { who, proposal }),
        1 => (who(), 0..60usize).prop_map(|(who, proposal)| Op::Reject { who, proposal }),
        1 => (who(), 0..60usize).prop_map(|(who, proposal)| Op::Cancel { who, proposal }),
        3 => (who(), 0..3usize, 0..3usize).prop_map(|(who, account, trusted)| Op::ProposeTrusted { who, account, trusted }),
        3 => (who(), 0..20usize).prop_map(|(who, proposal)| Op::ApproveTrusted { who, proposal }),
        1 => (who(), 0..3usize, 0..3usize).prop_map(|(who, account, trusted)| Op::RemoveTrusted { who, account, trusted }),
        4 => Just(Op::Tick),
    ]
}

#[derive(Default)]
struct Model {
    initiator: BTreeMap<String, String>,
    approved: BTreeMap<String, Timestamp>,
    released: BTreeSet<String>,
    trusted_pairs: BTreeMap<String, (String, String)>,
    /// (account, trusted) → effective time.
    trusted: BTreeMap<(String, String), Timestamp>,
}

impl Model {
    fn check(&mut self, rules: &ControlRules, at: Timestamp, events: &[Event]) {
        for event in events {
            match event {
                Event::TransferProposed { proposal, initiator, .. } => {
                    self.initiator.insert(proposal.clone(), initiator.clone());
                }
                Event::TransferApproved { proposal, approver, release_at, .. } => {
                    assert_ne!(&self.initiator[proposal], approver, "self-approval of {proposal}");
                    self.approved.insert(proposal.clone(), *release_at);
                }
                Event::TransferRescheduled { proposal, release_at } => {
                    self.approved.insert(proposal.clone(), *release_at);
                }
                Event::TransferReleased { proposal, from, to, quantity, .. } => {
                    let release_at = self.approved.get(proposal).unwrap_or_else(|| panic!("{proposal} released without approval"));
                    assert!(*release_at <= at, "{proposal} released at {at}, before {release_at}");
                    assert!(rules.calendar.is_open(at), "{proposal} released while closed at {at}");
                    assert!(self.released.insert(proposal.clone()), "{proposal} released twice");
                    let trusted = self.trusted.get(&(from.number.clone(), to.number.clone())).is_some_and(|t| *t <= at);
                    assert!(
                        trusted || quantity.0 <= rules.untrusted_transfer_limit_t,
                        "{proposal}: {quantity} t to untrusted {}",
                        to.number
                    );
                }
                Event::TrustedProposed { proposal, account, trusted, .. } => {
                    self.trusted_pairs.insert(proposal.clone(), (account.number.clone(), trusted.number.clone()));
                }
                Event::TrustedApproved { proposal, effective_at, .. } => {
                    self.trusted.insert(self.trusted_pairs[proposal].clone(), *effective_at);
                }
                Event::TrustedRemoved { account, trusted, .. } => {
                    self.trusted.remove(&(account.clone(), trusted.clone()));
                }
                _ => {}
            }
        }
    }
}

fn source_of(w: &World, proposal: &str) -> Option<String> {
    w.access.controls().transfer(proposal).map(|p| p.from.number.clone())
}

fn run(ops: Vec<(Op, i64)>) {
    let mut rules = rules();
    rules.session_lifetime_ms = 400 * 86_400_000;
    rules.calendar.holidays = [date("2026-12-07"), date("2026-12-25")].into_iter().collect();
    let start = cet("2026-11-30", 9, 0);
    let mut w = World::new(rules.clone(), start);
    w.create_user(start, "frank", vec![Role::AccountRepresentative { account: "A2".into() }]);
    w.create_user(start, "gina", vec![Role::ApprovingRepresentative { account: "A3".into() }]);
    let sessions: Vec<Actor> = USERS.iter().map(|u| w.login(u, start)).collect();
    let mut model = Model::default();
    let (mut transfers, mut lists) = (0usize, 0usize);
    let mut now = start;
    for (op, advance_ms) in ops {
        now = Timestamp(now.0 + advance_ms);
        let transfer_id = |i: usize| format!("t{}", i % transfers.max(1));
        let list_id = |i: usize| format!("l{}", i % lists.max(1));
        let (actor, command) = match op {
            Op::Propose { who, from, to, quantity } => {
                transfers += 1;
                let who = pick(who, |u| proposer_of(u, &account(from).number));
                let command = Command::ProposeTransfer {
                    proposal: format!("t{}", transfers - 1),
                    from: account(from),
                    to: account(to),
                    unit: UnitRef::allowance("CEA", 2025),
                    quantity: Tonnes(QUANTITIES[quantity]),
                };
                (sessions[who].clone(), command)
            }
            Op::Approve { who, proposal } => {
                let id = transfer_id(proposal);
                let who = pick(who, |u| source_of(&w, &id).is_some_and(|a| approver_of(u, &a)));
                (sessions[who].clone(), Command::ApproveTransfer { proposal: id })
            }
            Op::Reject { who, proposal } => {
                let id = transfer_id(proposal);
                let who = pick(who, |u| source_of(&w, &id).is_some_and(|a| approver_of(u, &a)));
                (sessions[who].clone(), Command::RejectTransfer { proposal: id })
            }
            Op::Cancel { who, proposal } => {
                let id = transfer_id(proposal);
                let who = pick(who, |u| source_of(&w, &id).is_some_and(|a| proposer_of(u, &a)));
                (sessions[who].clone(), Command::CancelTransfer { proposal: id })
            }
            Op::ProposeTrusted { who, account: a, trusted } => {
                lists += 1;
                let who = pick(who, |u| proposer_of(u, &account(a).number));
                (
                    sessions[who].clone(),
                    Command::ProposeTrusted { proposal: format!("l{}", lists - 1), account: account(a), trusted: account(trusted) },
                )
            }
            Op::ApproveTrusted { who, proposal } => {
                let id = list_id(proposal);
                let list_of = |u: &str| w.access.controls().trusted_proposal(&id).is_some_and(|p| approver_of(u, &p.account.number));
                let who = pick(who, list_of);
                (sessions[who].clone(), Command::ApproveTrusted { proposal: id })
            }
            Op::RemoveTrusted { who, account: a, trusted } => {
                let who = pick(who, |u| proposer_of(u, &account(a).number));
                (sessions[who].clone(), Command::RemoveTrusted { account: account(a), trusted: account(trusted).number })
            }
            Op::Tick => (Actor::System, Command::Tick),
        };
        let before = w.access.clone();
        match w.exec(now, actor, command.clone()) {
            Ok(record) => {
                if let Command::ApproveTransfer { .. } = command {
                    let user = record.user.as_deref().unwrap();
                    let Event::TransferApproved { proposal, .. } = &record.events[0] else { panic!("{record:?}") };
                    let from = &w.access.controls().transfer(proposal).unwrap().from.number;
                    assert!(approver_of(user, from), "{user} approved for {from}");
                }
                model.check(&rules, now, &record.events);
            }
            Err(Refusal { record: None, .. }) => assert!(w.access == before, "a refused {command:?} changed the state"),
            Err(Refusal { record: Some(record), .. }) => panic!("only logins leave records when refused: {record:?}"),
        }
    }
    // Run the clock on for a month: whatever is approved gets released, nothing else.
    for day in 1..=30 {
        let t = Timestamp(now.0 + day * 86_400_000);
        let noon = rules.calendar.at(rules.calendar.local(t).0, 720);
        if noon > now {
            now = noon;
            let record = w.tick(now);
            model.check(&rules, now, &record.events);
        }
    }
    for p in w.access.controls().transfers() {
        let approved = matches!(p.status, ets_access::TransferStatus::Approved { .. });
        assert!(!approved || !w.access.rules().calendar.is_open(now), "{} still approved after a month of ticks: {:?}", p.id, p.status);
    }
    w.check_replay();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_commands_never_release_unapproved_transfers_nor_break_the_limit(
        ops in prop::collection::vec((op(), prop_oneof![3 => 0i64..3_600_000, 1 => 0i64..3 * 86_400_000]), 10..100)
    ) {
        run(ops);
    }
}

#[test]
fn role_holders_are_as_the_model_assumes() {
    // Keeps `approver_of` honest against the world's set-up.
    let mut w = World::new(rules(), cet("2026-11-30", 9, 0));
    w.create_user(cet("2026-11-30", 9, 0), "frank", vec![Role::AccountRepresentative { account: "A2".into() }]);
    w.create_user(cet("2026-11-30", 9, 0), "gina", vec![Role::ApprovingRepresentative { account: "A3".into() }]);
    for user in USERS {
        let roles = &w.access.identity().user(user).unwrap().roles;
        for account in ["A1", "A2", "A3"] {
            let holds = roles.iter().any(
                |r| matches!(r, Role::AccountRepresentative { account: a } | Role::ApprovingRepresentative { account: a } if a == account),
            );
            assert_eq!(holds, approver_of(user, account), "{user} {account}");
        }
    }
}
