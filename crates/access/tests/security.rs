//! The registry security controls and identity, scenario by scenario, each ending with a replay
//! of the journaled records (through JSON) to the same state.

mod common;

use common::*;
use ets_access::{Action, Actor, Command, ControlRules, Event, LoginFailure, OutsideHours, RejectKind, Role, ThrottleKey, TransferStatus};
use ets_core::{Timestamp, Tonnes};
use ets_registry::UnitRef;

fn start() -> Timestamp {
    utc("2026-11-30", 8, 0) // a Monday
}

fn propose(
    w: &mut World,
    at: Timestamp,
    who: &Actor,
    id: &str,
    to: ets_access::AccountRef,
    quantity: u64,
) -> Result<(), ets_access::Refusal> {
    let command =
        Command::ProposeTransfer { proposal: id.into(), from: a1(), to, unit: UnitRef::allowance("CEA", 2025), quantity: Tonnes(quantity) };
    w.exec(at, who.clone(), command).map(|_| ())
}

fn approve(w: &mut World, at: Timestamp, who: &Actor, id: &str) -> Result<Vec<Event>, ets_access::Refusal> {
    w.exec(at, who.clone(), Command::ApproveTransfer { proposal: id.into() }).map(|r| r.events)
}

fn released(events: &[Event]) -> Vec<String> {
    events.iter().filter_map(|e| if let Event::TransferReleased { proposal, .. } = e { Some(proposal.clone()) } else { None }).collect()
}

fn kind(result: Result<impl std::fmt::Debug, ets_access::Refusal>) -> RejectKind {
    result.expect_err("should be refused").rejection.kind
}

fn with_holidays(days: &[&str]) -> ControlRules {
    let mut rules = rules();
    rules.calendar.holidays = days.iter().map(|d| date(d)).collect();
    rules
}

#[test]
fn a_transfer_without_the_second_approval_never_executes() {
    let mut w = World::new(rules(), start());
    let alice = w.login("alice", start());
    propose(&mut w, cet("2026-11-30", 10, 30), &alice, "t1", a2(), 100).unwrap();
    // Hourly ticks for 60 days: nothing is released, the proposal stays awaiting approval.
    let mut t = cet("2026-11-30", 11, 0);
    for _ in 0..60 * 24 {
        assert!(released(&w.tick(t).events).is_empty());
        t = Timestamp(t.0 + 3_600_000);
    }
    assert_eq!(w.access.controls().transfer("t1").unwrap().status, TransferStatus::AwaitingApproval);
    assert!(w.access.controls().due(w.access.rules(), t).is_empty());
    w.check_replay();
}

#[test]
fn the_initiator_cannot_approve_their_own_proposal() {
    let mut w = World::new(rules(), start());
    let at = cet("2026-11-30", 10, 30);
    let alice = w.login("alice", at);
    let alice_again = w.login("alice", at);
    propose(&mut w, at, &alice, "t1", a2(), 100).unwrap();
    let refusal = approve(&mut w, at, &alice, "t1").unwrap_err();
    assert_eq!(refusal.rejection.kind, RejectKind::Forbidden);
    assert!(refusal.rejection.message.contains("four-eyes"), "{}", refusal.rejection.message);
    // Another credential of the same person is the same person.
    assert_eq!(kind(approve(&mut w, at, &alice_again, "t1")), RejectKind::Forbidden);
    // A token of the same person too.
    let secret = w.secret();
    let token = Command::IssueToken {
        token: "k1".into(),
        roles: vec![Role::AccountRepresentative { account: "A1".into() }],
        expires_at: cet("2026-12-30", 0, 0),
        secret: secret.into(),
    };
    w.exec(at, alice.clone(), token).unwrap();
    assert_eq!(kind(approve(&mut w, at, &Actor::Token("k1".into()), "t1")), RejectKind::Forbidden);
    // Someone who represents another account may not approve either.
    let dave = w.login("dave", at);
    assert_eq!(kind(approve(&mut w, at, &dave, "t1")), RejectKind::Forbidden);
    // The initiator cannot reject (they cancel), nor approve a trusted-list addition they proposed.
    assert_eq!(kind(w.exec(at, alice.clone(), Command::RejectTransfer { proposal: "t1".into() })), RejectKind::Forbidden);
    w.exec(at, alice.clone(), Command::ProposeTrusted { proposal: "l1".into(), account: a1(), trusted: a2() }).unwrap();
    assert_eq!(kind(w.exec(at, alice.clone(), Command::ApproveTrusted { proposal: "l1".into() })), RejectKind::Forbidden);
    assert!(w.access.controls().trusted_list("A1").is_empty());
    // The approving representative may approve.
    let carol = w.login("carol", at);
    let events = approve(&mut w, at, &carol, "t1").unwrap();
    assert!(matches!(&events[0], Event::TransferApproved { approver, trusted: false, .. } if approver == "carol"));
    // And an approving representative may never initiate.
    assert_eq!(kind(propose(&mut w, at, &carol, "t2", a2(), 1)), RejectKind::Forbidden);
    w.check_replay();
}

#[test]
fn a_trusted_list_addition_on_a_thursday_takes_effect_on_the_fourth_working_day_and_not_a_millisecond_before() {
    // Thursday 24 Dec 2026; holidays on Friday 25 Dec, Thursday 31 Dec and Friday 1 Jan; the
    // weekend between. Working days after the approval: Mon 28 (1), Tue 29 (2), Wed 30 (3),
    // Mon 4 Jan (4). Effective at 12:00 CET on Monday 4 January 2027.
    let mut w = World::new(with_holidays(&["2026-12-25", "2026-12-31", "2027-01-01"]), start());
    let alice = w.login("alice", cet("2026-12-24", 10, 0));
    let bob = w.login("bob", cet("2026-12-24", 10, 0));
    w.exec(cet("2026-12-24", 10, 30), alice.clone(), Command::ProposeTrusted { proposal: "l1".into(), account: a1(), trusted: a2() })
        .unwrap();
    let record = w.exec(cet("2026-12-24", 11, 0), bob.clone(), Command::ApproveTrusted { proposal: "l1".into() }).unwrap();
    let effective = cet("2027-01-04", 12, 0);
    assert_eq!(record.events, vec![Event::TrustedApproved { proposal: "l1".into(), approver: "bob".into(), effective_at: effective }]);
    let just_before = Timestamp(effective.0 - 1);
    let controls = w.access.controls();
    assert!(!controls.is_trusted("A1", "A2", just_before));
    assert!(controls.is_trusted("A1", "A2", effective));
    assert!(!controls.is_trusted("A2", "A1", effective), "trust is one way");

    // Sessions last 8 hours: log in again on the day.
    let alice = w.login("alice", cet("2027-01-04", 11, 0));
    let bob = w.login("bob", cet("2027-01-04", 11, 0));
    assert!(!w.tick(Timestamp(effective.0 - 2)).events.iter().any(|e| matches!(e, Event::TrustedEffective { .. })));
    // One millisecond before: still untrusted, so over the limit is refused and a small transfer
    // approved now waits for the 26-hour rule (after the 12:00 cutoff? no: 11:59:59.999 is
    // before it, so 12:00 on the next working day).
    assert_eq!(kind(propose(&mut w, just_before, &alice, "big", a2(), 2_000_001)), RejectKind::Refused);
    propose(&mut w, just_before, &alice, "early", a2(), 10).unwrap();
    let events = approve(&mut w, just_before, &bob, "early").unwrap();
    assert_eq!(
        events,
        vec![Event::TransferApproved {
            proposal: "early".into(),
            approver: "bob".into(),
            trusted: false,
            release_at: cet("2027-01-05", 12, 0)
        }]
    );
    // At the effective instant: trusted, the big transfer is accepted and executes at once.
    let tick = w.tick(effective);
    assert_eq!(tick.events, vec![Event::TrustedEffective { account: "A1".into(), trusted: "A2".into() }]);
    propose(&mut w, effective, &alice, "big", a2(), 2_000_001).unwrap();
    let events = approve(&mut w, effective, &bob, "big").unwrap();
    assert_eq!(events[0], Event::TransferApproved { proposal: "big".into(), approver: "bob".into(), trusted: true, release_at: effective });
    assert_eq!(released(&events), vec!["big".to_string()]);
    w.check_replay();
}

#[test]
fn the_seven_day_rule_is_a_parameter() {
    let mut rules = rules();
    rules.trusted_addition_delay_working_days = 7;
    let mut w = World::new(rules, start());
    let at = cet("2026-12-03", 15, 0); // Thursday
    let alice = w.login("alice", at);
    let bob = w.login("bob", at);
    w.exec(at, alice, Command::ProposeTrusted { proposal: "l1".into(), account: a1(), trusted: a2() }).unwrap();
    let record = w.exec(at, bob, Command::ApproveTrusted { proposal: "l1".into() }).unwrap();
    // Fri 4, Mon 7, Tue 8, Wed 9, Thu 10, Fri 11, Mon 14.
    assert!(matches!(record.events[0], Event::TrustedApproved { effective_at, .. } if effective_at == cet("2026-12-14", 12, 0)));
}

#[test]
fn an_untrusted_transfer_approved_friday_afternoon_before_a_monday_holiday_executes_on_wednesday_noon() {
    // Approved after the 12:00 cutoff on Friday 4 Dec; Monday 7 Dec is a holiday. Second working
    // day after Friday: Tue 8 (1), Wed 9 (2) → 12:00 CET Wednesday = 11:00 UTC.
    let mut w = World::new(with_holidays(&["2026-12-07"]), start());
    let at = cet("2026-12-04", 14, 0);
    let alice = w.login("alice", at);
    let bob = w.login("bob", at);
    propose(&mut w, at, &alice, "late", a2(), 500).unwrap();
    propose(&mut w, at, &alice, "morning", a2(), 700).unwrap();
    approve(&mut w, cet("2026-12-04", 14, 5), &bob, "late").unwrap();
    let release = utc("2026-12-09", 11, 0);
    assert!(
        matches!(w.access.controls().transfer("late").unwrap().status, TransferStatus::Approved { release_at, trusted: false, .. } if release_at == release)
    );
    // Ticks every minute up to one millisecond before release: nothing.
    let mut t = cet("2026-12-04", 14, 6);
    while t.0 < release.0 - 1 {
        assert!(released(&w.tick(t).events).is_empty(), "released early at {t}");
        t = Timestamp(t.0 + 60_000);
    }
    assert!(released(&w.tick(Timestamp(release.0 - 1)).events).is_empty());
    let tick = w.tick(release);
    assert_eq!(
        tick.events,
        vec![Event::TransferReleased {
            proposal: "late".into(),
            from: a1(),
            to: a2(),
            unit: UnitRef::allowance("CEA", 2025),
            quantity: Tonnes(500)
        }]
    );
    assert_eq!(w.access.controls().transfer("late").unwrap().status, TransferStatus::Released { at: release });
    assert!(released(&w.tick(Timestamp(release.0 + 1)).events).is_empty(), "released once only");
    w.check_replay();
}

#[test]
fn untrusted_release_times_follow_the_cutoff() {
    // Monday 7 Dec a holiday again. (approval time CET, expected release CET)
    let cases = [
        (("2026-12-04", 11, 59), ("2026-12-08", 12, 0)), // Friday before the cutoff: next working day
        (("2026-12-04", 12, 0), ("2026-12-09", 12, 0)),  // at the cutoff: second working day
        (("2026-12-04", 8, 0), ("2026-12-08", 12, 0)),   // before opening counts as before the cutoff
        (("2026-12-04", 17, 0), ("2026-12-09", 12, 0)),  // after closing: as at next opening (Tue 10:00), +1
        (("2026-12-05", 11, 0), ("2026-12-09", 12, 0)),  // Saturday: as Tuesday 10:00, +1
        (("2026-12-07", 11, 0), ("2026-12-09", 12, 0)),  // the holiday: the same
        (("2026-12-08", 9, 0), ("2026-12-09", 12, 0)),
    ];
    let rules = with_holidays(&["2026-12-07"]);
    for ((d, h, m), (ed, eh, em)) in cases {
        assert_eq!(ets_access::controls::untrusted_release(&rules, cet(d, h, m)), cet(ed, eh, em), "approved {d} {h}:{m}");
    }
}

#[test]
fn summer_time_is_data() {
    // With CEST (+02:00) from 29 March to 25 October 2026, 12:00 local is 10:00 UTC.
    let mut rules = rules();
    rules.calendar.offset_periods.push(ets_access::calendar::OffsetPeriod {
        from: date("2026-03-29"),
        until: date("2026-10-25"),
        utc_offset_minutes: 120,
    });
    let approved = utc("2026-07-02", 9, 0); // Thursday 11:00 CEST, before the cutoff
    assert_eq!(ets_access::controls::untrusted_release(&rules, approved), utc("2026-07-03", 10, 0));
    assert_eq!(ets_access::controls::trusted_effective(&rules, approved), utc("2026-07-08", 10, 0));
    // Approved Friday 23 October after the cutoff: second working day is Tuesday 27 October, CET again.
    assert_eq!(ets_access::controls::untrusted_release(&rules, utc("2026-10-23", 11, 0)), utc("2026-10-27", 11, 0));
}

#[test]
fn trusted_transfers_execute_at_once_in_opening_hours_and_at_the_next_opening_otherwise() {
    let mut rules = rules();
    rules.trusted_addition_delay_working_days = 1;
    let mut w = World::new(rules, start());
    let at = cet("2026-11-30", 10, 0);
    let (alice, bob) = (w.login("alice", at), w.login("bob", at));
    w.exec(at, alice.clone(), Command::ProposeTrusted { proposal: "l1".into(), account: a1(), trusted: a2() }).unwrap();
    w.exec(at, bob.clone(), Command::ApproveTrusted { proposal: "l1".into() }).unwrap();
    // Effective Tuesday 1 Dec 12:00 CET.
    let at = cet("2026-12-01", 15, 59);
    let (alice, bob) = (w.login("alice", at), w.login("bob", at));
    propose(&mut w, at, &alice, "now", a2(), 3_000_000).unwrap();
    assert_eq!(released(&approve(&mut w, at, &bob, "now").unwrap()), vec!["now".to_string()]);
    // Approved at 16:00 (closing, exclusive): waits for 10:00 on Wednesday.
    let closing = cet("2026-12-01", 16, 0);
    propose(&mut w, closing, &alice, "later", a2(), 5).unwrap();
    assert!(released(&approve(&mut w, closing, &bob, "later").unwrap()).is_empty());
    let opening = cet("2026-12-02", 10, 0);
    assert!(released(&w.tick(Timestamp(opening.0 - 1)).events).is_empty());
    assert_eq!(released(&w.tick(opening).events), vec!["later".to_string()]);
    w.check_replay();
}

#[test]
fn a_late_tick_releases_only_while_open() {
    let mut w = World::new(rules(), start());
    let at = cet("2026-11-30", 10, 0);
    let (alice, bob) = (w.login("alice", at), w.login("bob", at));
    propose(&mut w, at, &alice, "t", a2(), 5).unwrap();
    approve(&mut w, at, &bob, "t").unwrap(); // due Tue 1 Dec 12:00
    assert!(released(&w.tick(cet("2026-12-01", 17, 0)).events).is_empty(), "closed: no execution");
    assert!(released(&w.tick(cet("2026-12-05", 12, 0)).events).is_empty(), "Saturday: no execution");
    assert_eq!(released(&w.tick(cet("2026-12-07", 10, 0)).events), vec!["t".to_string()]);
    w.check_replay();
}

#[test]
fn an_over_limit_transfer_to_an_untrusted_account_is_refused_and_changes_nothing() {
    let mut w = World::new(rules(), start());
    let at = cet("2026-11-30", 10, 0);
    let alice = w.login("alice", at);
    let before = w.access.clone();
    let refusal = propose(&mut w, at, &alice, "big", a2(), 2_000_001).unwrap_err();
    assert_eq!(refusal.rejection.kind, RejectKind::Refused);
    assert!(refusal.record.is_none());
    let message = refusal.rejection.message;
    assert!(
        message.contains("2,000,001 t") && message.contains("2,000,000 t") && message.contains("A2") && message.contains("trusted list"),
        "{message}"
    );
    assert!(w.access == before, "a refused command changed the state");
    assert!(w.access.controls().transfer("big").is_none());
    propose(&mut w, at, &alice, "max", a2(), 2_000_000).unwrap();
    // The limit is a parameter.
    let mut rules = rules();
    rules.untrusted_transfer_limit_t = 1_000;
    let mut w = World::new(rules, start());
    let alice = w.login("alice", at);
    assert_eq!(kind(propose(&mut w, at, &alice, "t", a2(), 1_001)), RejectKind::Refused);
    propose(&mut w, at, &alice, "t", a2(), 1_000).unwrap();
}

#[test]
fn a_trusted_transfer_whose_destination_leaves_the_list_is_timed_again_or_terminated() {
    let mut rules = rules();
    rules.trusted_addition_delay_working_days = 1;
    let mut w = World::new(rules, start());
    let at = cet("2026-11-30", 10, 0);
    let (alice, bob) = (w.login("alice", at), w.login("bob", at));
    w.exec(at, alice.clone(), Command::ProposeTrusted { proposal: "l1".into(), account: a1(), trusted: a2() }).unwrap();
    w.exec(at, bob.clone(), Command::ApproveTrusted { proposal: "l1".into() }).unwrap();
    let evening = cet("2026-12-01", 18, 0);
    let (alice, bob) = (w.login("alice", evening), w.login("bob", evening));
    propose(&mut w, evening, &alice, "small", a2(), 10).unwrap();
    propose(&mut w, evening, &alice, "big", a2(), 2_500_000).unwrap();
    approve(&mut w, evening, &bob, "small").unwrap();
    approve(&mut w, evening, &bob, "big").unwrap();
    // The list entry is removed overnight, at once.
    let night = cet("2026-12-01", 22, 0);
    w.exec(night, alice.clone(), Command::RemoveTrusted { account: a1(), trusted: "A2".into() }).unwrap();
    assert!(!w.access.controls().is_trusted("A1", "A2", night));
    let opening = cet("2026-12-02", 10, 0);
    let tick = w.tick(opening);
    assert!(released(&tick.events).is_empty());
    assert!(tick.events.contains(&Event::TransferRescheduled { proposal: "small".into(), release_at: cet("2026-12-03", 12, 0) }));
    assert!(matches!(w.access.controls().transfer("big").unwrap().status, TransferStatus::Terminated { .. }));
    assert_eq!(released(&w.tick(cet("2026-12-03", 12, 0)).events), vec!["small".to_string()]);
    w.check_replay();
}

#[test]
fn rejected_and_cancelled_transfers_never_execute() {
    let mut w = World::new(rules(), start());
    let at = cet("2026-11-30", 10, 0);
    let (alice, bob, carol) = (w.login("alice", at), w.login("bob", at), w.login("carol", at));
    propose(&mut w, at, &alice, "r", a2(), 5).unwrap();
    propose(&mut w, at, &alice, "c", a2(), 5).unwrap();
    w.exec(at, carol.clone(), Command::RejectTransfer { proposal: "r".into() }).unwrap();
    approve(&mut w, at, &bob, "c").unwrap();
    // Any representative may cancel an approved transfer until it is released; an approving
    // representative may not cancel.
    assert_eq!(kind(w.exec(at, carol.clone(), Command::CancelTransfer { proposal: "c".into() })), RejectKind::Forbidden);
    w.exec(at, bob.clone(), Command::CancelTransfer { proposal: "c".into() }).unwrap();
    assert_eq!(kind(approve(&mut w, at, &bob, "r")), RejectKind::Refused);
    assert!(released(&w.tick(cet("2026-12-10", 12, 0)).events).is_empty());
    w.check_replay();
}

#[test]
fn proposals_outside_hours_can_be_refused_by_rule() {
    let mut rules = rules();
    rules.outside_hours = OutsideHours::Refuse;
    let mut w = World::new(rules, start());
    let alice = w.login("alice", cet("2026-11-30", 9, 0));
    let refusal = propose(&mut w, cet("2026-11-30", 9, 59), &alice, "t", a2(), 5).unwrap_err();
    assert!(refusal.rejection.message.contains("2026-11-30T09:00:00.000Z"), "{}", refusal.rejection.message);
    propose(&mut w, cet("2026-11-30", 10, 0), &alice, "t", a2(), 5).unwrap();
}

#[test]
fn a_logged_out_session_and_a_revoked_token_fail_at_once() {
    let mut w = World::new(rules(), start());
    let at = cet("2026-11-30", 10, 0);
    let (alice, secret) = w.login_with_secret("alice", at);
    let holdings = Action::ReadHoldings { account: a1() };
    assert_eq!(w.access.authorize(&secret, at, &holdings).unwrap().user, "alice");
    assert_eq!(w.access.authorize(&secret, at, &Action::ReadHoldings { account: a2() }).unwrap_err().kind, RejectKind::Forbidden);
    // A token scoped to reading; the token cannot carry roles alice does not hold.
    let token_secret = w.secret();
    let scope = vec![Role::AccountRepresentative { account: "A1".into() }];
    let too_much = Command::IssueToken {
        token: "k0".into(),
        roles: vec![Role::RegistryAdmin],
        expires_at: cet("2026-12-01", 0, 0),
        secret: token_secret.clone().into(),
    };
    assert_eq!(kind(w.exec(at, alice.clone(), too_much)), RejectKind::Forbidden);
    let issue =
        Command::IssueToken { token: "k1".into(), roles: scope, expires_at: cet("2026-12-01", 0, 0), secret: token_secret.clone().into() };
    let record = w.exec(at, alice.clone(), issue).unwrap();
    let json = serde_json::to_string(&record).unwrap();
    assert!(!json.contains(&token_secret), "a secret reached the journal");
    let login =
        Command::Login { user: "alice".into(), password: PASSWORD.into(), session: "s".into(), secret: token_secret.clone().into() };
    let shown = format!("{login:?}");
    assert!(!shown.contains(PASSWORD) && !shown.contains(&token_secret), "{shown}");
    assert_eq!(w.access.authenticate(&token_secret, at).unwrap().actor, Actor::Token("k1".into()));
    // Tokens do not mint tokens.
    let secret2 = w.secret();
    let minted = Command::IssueToken { token: "k2".into(), roles: vec![], expires_at: cet("2026-12-01", 0, 0), secret: secret2.into() };
    assert_eq!(kind(w.exec(at, Actor::Token("k1".into()), minted)), RejectKind::Forbidden);

    let later = Timestamp(at.0 + 1);
    w.exec(later, alice.clone(), Command::Logout { session: "s".to_string() + alice_session_number(&alice) }).unwrap();
    assert_eq!(w.access.authenticate(&secret, later).unwrap_err().kind, RejectKind::Unauthenticated);
    assert_eq!(kind(propose(&mut w, later, &alice, "t", a2(), 5)), RejectKind::Unauthenticated);
    // The token lives on until revoked.
    assert!(w.access.authenticate(&token_secret, later).is_ok());
    let alice = w.login("alice", later);
    w.exec(later, alice.clone(), Command::RevokeToken { token: "k1".into() }).unwrap();
    assert_eq!(w.access.authenticate(&token_secret, later).unwrap_err().kind, RejectKind::Unauthenticated);
    assert_eq!(kind(propose(&mut w, later, &Actor::Token("k1".into()), "t", a2(), 5)), RejectKind::Unauthenticated);
    // Sessions expire at exactly their lifetime.
    let (_, secret) = w.login_with_secret("bob", later);
    let expiry = Timestamp(later.0 + w.access.rules().session_lifetime_ms);
    assert!(w.access.authenticate(&secret, Timestamp(expiry.0 - 1)).is_ok());
    assert!(w.access.authenticate(&secret, expiry).is_err());
    w.check_replay();
}

#[test]
fn a_new_password_ends_the_other_sessions() {
    let mut w = World::new(rules(), start());
    let at = cet("2026-11-30", 10, 0);
    let (first, first_secret) = w.login_with_secret("alice", at);
    let (_, second_secret) = w.login_with_secret("alice", at);
    let command = Command::SetPassword { user: "alice".into(), password: "another long passphrase".into(), salt: [9; 16] };
    w.exec(at, first, command).unwrap();
    assert!(w.access.authenticate(&first_secret, at).is_ok(), "the session that changed it stays");
    assert!(w.access.authenticate(&second_secret, at).is_err());
    let old = Command::Login { user: "alice".into(), password: PASSWORD.into(), session: "x".into(), secret: w.secret().into() };
    assert_eq!(kind(w.exec(at, Actor::Anonymous, old)), RejectKind::Unauthenticated);
    let short = Command::SetPassword { user: "alice".into(), password: "short".into(), salt: [9; 16] };
    let bob = w.login("bob", at);
    assert_eq!(kind(w.exec(at, bob, short.clone())), RejectKind::Forbidden, "only alice or an administrator");
    let root = w.root.clone();
    assert_eq!(kind(w.exec(at, root, short)), RejectKind::Invalid);
    w.check_replay();
}

fn alice_session_number(actor: &Actor) -> &str {
    match actor {
        Actor::Session(id) => id.trim_start_matches('s'),
        _ => unreachable!(),
    }
}

#[test]
fn disabling_a_user_or_shrinking_roles_takes_effect_at_once() {
    let mut w = World::new(rules(), start());
    let at = cet("2026-11-30", 10, 0);
    let (alice, secret) = w.login_with_secret("alice", at);
    let token_secret = w.secret();
    let scope = vec![Role::AccountRepresentative { account: "A1".into() }];
    w.exec(
        at,
        alice.clone(),
        Command::IssueToken { token: "k1".into(), roles: scope, expires_at: cet("2026-12-01", 0, 0), secret: token_secret.clone().into() },
    )
    .unwrap();
    let root = w.root.clone();
    w.exec(at, root.clone(), Command::SetRoles { user: "alice".into(), roles: vec![Role::Public] }).unwrap();
    assert!(w.access.authenticate(&token_secret, at).unwrap().roles.is_empty(), "a token keeps only roles its user still holds");
    assert_eq!(kind(propose(&mut w, at, &alice, "t", a2(), 5)), RejectKind::Forbidden);
    // Nobody changes their own roles or disables themselves.
    assert_eq!(kind(w.exec(at, root.clone(), Command::SetRoles { user: "root".into(), roles: vec![] })), RejectKind::Forbidden);
    assert_eq!(kind(w.exec(at, alice.clone(), Command::DisableUser { user: "bob".into() })), RejectKind::Forbidden);
    w.exec(at, root, Command::DisableUser { user: "alice".into() }).unwrap();
    assert!(w.access.authenticate(&secret, at).is_err());
    assert!(w.access.authenticate(&token_secret, at).is_err());
    let login = Command::Login { user: "alice".into(), password: PASSWORD.into(), session: "x".into(), secret: w.secret().into() };
    let refusal = w.exec(at, Actor::Anonymous, login).unwrap_err();
    assert!(matches!(refusal.record.unwrap().events[0], Event::LoginFailed { reason: LoginFailure::Disabled, .. }));
    w.check_replay();
}

#[test]
fn throttling_locks_after_n_failures_and_unlocks_after_the_period() {
    let rules = rules(); // 5 failures in 15 minutes lock for 15 minutes
    let mut w = World::new(rules.clone(), start());
    let t0 = cet("2026-11-30", 10, 0);
    let attempt = |w: &mut World, at: Timestamp, origin: &str, user: &str, password: &str| {
        let command = Command::Login { user: user.into(), password: password.into(), session: w.secret(), secret: w.secret().into() };
        w.exec_from(at, origin, Actor::Anonymous, command)
    };
    for i in 0..4 {
        let refusal = attempt(&mut w, Timestamp(t0.0 + i * 60_000), "10.0.0.1", "alice", "wrong password!!").unwrap_err();
        assert_eq!(refusal.rejection.kind, RejectKind::Unauthenticated);
    }
    // The fifth failure locks alice (the origin has five failures too, and is locked).
    let fifth = Timestamp(t0.0 + 4 * 60_000);
    let refusal = attempt(&mut w, fifth, "10.0.0.1", "alice", "wrong password!!").unwrap_err();
    let until = Timestamp(fifth.0 + rules.throttle.lockout_ms);
    let events = refusal.record.unwrap().events;
    assert!(events.contains(&Event::LockedOut { key: ThrottleKey::User("alice".into()), until }), "{events:?}");
    // Locked: even the right password from another origin is refused, and not counted.
    let refusal = attempt(&mut w, Timestamp(until.0 - 1), "10.0.0.2", "alice", PASSWORD).unwrap_err();
    assert_eq!(refusal.rejection.kind, RejectKind::Throttled);
    assert_eq!(refusal.record.unwrap().events, vec![Event::LoginFailed { user: "alice".into(), reason: LoginFailure::Locked }]);
    // Other users may log in from elsewhere meanwhile.
    attempt(&mut w, Timestamp(until.0 - 1), "10.0.0.2", "bob", PASSWORD).unwrap();
    // Unlocked at exactly `until`.
    attempt(&mut w, until, "10.0.0.2", "alice", PASSWORD).unwrap();
    // A tick forgets the ended lockouts and old failures, and the journal says so.
    let key = ThrottleKey::Origin("10.0.0.1".into());
    assert_eq!(w.access.identity().locked_until(&key, Timestamp(until.0 - 1)), Some(until));
    assert!(w.tick(until).events.contains(&Event::ThrottleExpired));
    assert_eq!(w.access.identity().locked_until(&key, Timestamp(until.0 - 1)), None);
    assert!(!w.tick(until).events.contains(&Event::ThrottleExpired), "nothing left to forget");
    w.check_replay();
}

#[test]
fn throttling_counts_failures_within_the_window_only_and_locks_origins_too() {
    let rules = rules();
    let mut w = World::new(rules.clone(), start());
    let t0 = cet("2026-11-30", 10, 0);
    let attempt = |w: &mut World, at: Timestamp, origin: &str, user: &str| {
        let command =
            Command::Login { user: user.into(), password: "wrong password!!".into(), session: w.secret(), secret: w.secret().into() };
        w.exec_from(at, origin, Actor::Anonymous, command).unwrap_err()
    };
    // Four failures, then the fifth just after the window of the first: no lock.
    for i in 0..4 {
        attempt(&mut w, Timestamp(t0.0 + i), &format!("o{i}"), "alice");
    }
    let refusal = attempt(&mut w, Timestamp(t0.0 + rules.throttle.window_ms), "o9", "alice");
    assert!(!refusal.record.unwrap().events.iter().any(|e| matches!(e, Event::LockedOut { .. })));
    // Five unknown user names from one origin lock that origin only.
    let t1 = cet("2026-11-30", 11, 0);
    for i in 0..5 {
        attempt(&mut w, t1, "10.9.9.9", &format!("nobody{i}"));
    }
    let good = |w: &mut World, origin: &str| {
        let command = Command::Login { user: "bob".into(), password: PASSWORD.into(), session: w.secret(), secret: w.secret().into() };
        w.exec_from(t1, origin, Actor::Anonymous, command)
    };
    assert_eq!(good(&mut w, "10.9.9.9").unwrap_err().rejection.kind, RejectKind::Throttled);
    good(&mut w, "10.9.9.8").unwrap();
    w.check_replay();
}

#[test]
fn commands_may_not_go_back_in_time_and_system_commands_need_the_system() {
    let mut w = World::new(rules(), start());
    let at = cet("2026-11-30", 10, 0);
    let alice = w.login("alice", at);
    assert_eq!(kind(propose(&mut w, Timestamp(at.0 - 1), &alice, "t", a2(), 5)), RejectKind::Invalid);
    assert_eq!(kind(w.exec(at, alice.clone(), Command::Tick)), RejectKind::Forbidden);
    assert_eq!(kind(w.exec(at, Actor::Anonymous, Command::Tick)), RejectKind::Unauthenticated);
    let boot = Command::Bootstrap { user: "evil".into(), password: PASSWORD.into(), salt: [0; 16] };
    assert_eq!(kind(w.exec(at, Actor::System, boot)), RejectKind::Refused);
}
