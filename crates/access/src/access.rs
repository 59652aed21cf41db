//! `Access`: the one state machine the server drives. `execute` decides a command against the
//! state (authenticating its actor at the command's time), then applies the events it caused
//! through `apply_record`, the same path a replay takes.

use crate::controls::Controls;
use crate::event::{Actor, Command, Envelope, Event, Record, Refusal, RejectKind, Rejection};
use crate::identity::{Identity, Principal};
use crate::policy::{allows, Action, Role};
use crate::rules::ControlRules;
use ets_core::{check_identifier, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    rules: ControlRules,
    /// Time of the last record; commands may not go back in time.
    last_at: Timestamp,
    identity: Identity,
    controls: Controls,
}

fn no<T>(kind: RejectKind, message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(kind, message))
}

impl Access {
    /// An empty state under `rules`, which must be valid (`ControlRules::problems` empty).
    pub fn new(rules: ControlRules) -> Result<Access, Vec<String>> {
        let problems = rules.problems();
        if !problems.is_empty() {
            return Err(problems);
        }
        let dummy_phc = crate::password::hash_password(&rules.password, "ets-access timing equaliser", &[0; 16]).map_err(|e| vec![e])?;
        let identity = Identity { dummy_phc, ..Identity::default() };
        Ok(Access { rules, last_at: Timestamp(i64::MIN), identity, controls: Controls::default() })
    }

    /// Rebuilds the state from journaled records.
    pub fn replay<'a>(rules: ControlRules, records: impl IntoIterator<Item = &'a Record>) -> Result<Access, Vec<String>> {
        let mut access = Access::new(rules)?;
        for record in records {
            access.apply_record(record);
        }
        Ok(access)
    }

    pub fn rules(&self) -> &ControlRules {
        &self.rules
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn controls(&self) -> &Controls {
        &self.controls
    }

    /// Approved transfers due at `now` (what a `Tick` at `now` would release, before trust is
    /// checked again).
    pub fn due(&self, now: Timestamp) -> Vec<&crate::controls::TransferProposal> {
        self.controls.due(&self.rules, now)
    }

    /// The principal behind a presented secret at `now`; `Unauthenticated` if none.
    pub fn authenticate(&self, secret: &str, now: Timestamp) -> Result<Principal, Rejection> {
        self.identity.authenticate(secret, now)
    }

    /// Authenticates and authorizes in one step: what a read endpoint calls.
    pub fn authorize(&self, secret: &str, now: Timestamp, action: &Action) -> Result<Principal, Rejection> {
        let principal = self.authenticate(secret, now)?;
        if allows(&principal.roles, action) {
            Ok(principal)
        } else {
            no(RejectKind::Forbidden, format!("{} may not {action:?}", principal.user))
        }
    }

    /// Decides `envelope` and applies what it causes. The returned record is what to journal;
    /// a refusal carries a record only when the refusal itself changed the state (a failed login).
    /// A record without events (a quiet tick) changes nothing but the clock and need not be
    /// journaled: later records are later in time anyway.
    pub fn execute(&mut self, envelope: &Envelope) -> Result<Record, Refusal> {
        let at = envelope.at;
        if at < self.last_at {
            return Err(
                Rejection::new(RejectKind::Invalid, format!("command time {at} is before the last record's {}", self.last_at)).into()
            );
        }
        check_identifier("origin", &envelope.origin).map_err(|m| Rejection::new(RejectKind::Invalid, m))?;
        let principal = match &envelope.actor {
            Actor::System | Actor::Anonymous => None,
            actor => Some(self.identity.principal(actor, at)?),
        };
        let record = |events: Vec<Event>| Record {
            at,
            origin: envelope.origin.clone(),
            actor: envelope.actor.clone(),
            user: principal.as_ref().map(|p| p.user.clone()),
            command: envelope.command.name().to_string(),
            events,
        };
        let events = match (&envelope.command, &principal) {
            (Command::Login { user, password, session, secret }, None) if envelope.actor == Actor::Anonymous => {
                match self.identity.decide_login(&self.rules, at, &envelope.origin, user, password.expose(), session, secret.expose()) {
                    Ok(events) => events,
                    Err((rejection, events)) => {
                        let mut refused = record(events);
                        refused.user = Some(user.clone());
                        if refused.events.is_empty() {
                            return Err(rejection.into());
                        }
                        self.apply_record(&refused);
                        return Err(Refusal { rejection, record: Some(Box::new(refused)) });
                    }
                }
            }
            (Command::Bootstrap { user, password, salt }, None) if envelope.actor == Actor::System => {
                if !self.identity.users.is_empty() {
                    return Err(Rejection::new(RejectKind::Refused, "bootstrap only creates the first user").into());
                }
                self.identity.decide_create_user(&self.rules, user, &[Role::RegistryAdmin], password.expose(), salt)?
            }
            (Command::Tick, None) if envelope.actor == Actor::System => {
                let mut events = self.controls.decide_tick(&self.rules, at);
                if self.identity.throttle_expired(&self.rules, at) {
                    events.push(Event::ThrottleExpired);
                }
                events
            }
            (command, Some(principal)) => self.decide(at, principal, command)?,
            (command, None) => {
                let message = format!("{} needs a session or an API token (actor {:?})", command.name(), envelope.actor);
                return Err(Rejection::new(RejectKind::Unauthenticated, message).into());
            }
        };
        let accepted = record(events);
        self.apply_record(&accepted);
        Ok(accepted)
    }

    fn decide(&self, at: Timestamp, principal: &Principal, command: &Command) -> Result<Vec<Event>, Rejection> {
        let rules = &self.rules;
        let manage_users = || {
            if allows(&principal.roles, &Action::ManageUsers) {
                Ok(())
            } else {
                no(RejectKind::Forbidden, format!("{} may not manage users", principal.user))
            }
        };
        let own_or_admin = |owner: &str| if owner == principal.user { Ok(()) } else { manage_users() };
        match command {
            Command::CreateUser { user, roles, password, salt } => {
                manage_users()?;
                self.identity.decide_create_user(rules, user, roles, password.expose(), salt)
            }
            Command::SetRoles { user, roles } => {
                manage_users()?;
                self.identity.known(user)?;
                if *user == principal.user {
                    return no(RejectKind::Forbidden, "nobody changes their own roles; another administrator must");
                }
                Identity::check_roles(rules, roles)?;
                Ok(vec![Event::RolesSet { user: user.clone(), roles: roles.clone() }])
            }
            Command::SetPassword { user, password, salt } => {
                own_or_admin(user)?;
                let mut events = self.identity.decide_set_password(rules, user, password.expose(), salt)?;
                // A new password ends the user's other sessions (API tokens are revoked apart).
                let other = |s: &&crate::identity::Session| {
                    s.user == *user && !s.ended && at < s.expires_at && principal.actor != Actor::Session(s.id.clone())
                };
                events.extend(self.identity.sessions.values().filter(other).map(|s| Event::LoggedOut { session: s.id.clone() }));
                Ok(events)
            }
            Command::DisableUser { user } => {
                manage_users()?;
                if self.identity.known(user)?.disabled {
                    return no(RejectKind::Refused, format!("user {user} is already disabled"));
                }
                if *user == principal.user {
                    return no(RejectKind::Forbidden, "nobody disables themselves; another administrator must");
                }
                Ok(vec![Event::UserDisabled { user: user.clone() }])
            }
            Command::Logout { session } => {
                let s = self
                    .identity
                    .session(session)
                    .filter(|s| !s.ended)
                    .ok_or_else(|| Rejection::new(RejectKind::NotFound, format!("no open session {session}")))?;
                own_or_admin(&s.user)?;
                Ok(vec![Event::LoggedOut { session: session.clone() }])
            }
            Command::IssueToken { token, roles, expires_at, secret } => {
                self.identity.decide_issue_token(rules, at, principal, token, roles, *expires_at, secret.expose())
            }
            Command::RevokeToken { token } => {
                let t = self
                    .identity
                    .token(token)
                    .filter(|t| !t.revoked)
                    .ok_or_else(|| Rejection::new(RejectKind::NotFound, format!("no live token {token}")))?;
                own_or_admin(&t.user)?;
                Ok(vec![Event::TokenRevoked { token: token.clone() }])
            }
            Command::ProposeTransfer { proposal, from, to, unit, quantity } => {
                self.controls.decide_propose_transfer(rules, at, principal, proposal, from, to, unit, *quantity)
            }
            Command::ApproveTransfer { proposal } => self.controls.decide_approve_transfer(rules, at, principal, proposal),
            Command::RejectTransfer { proposal } => self.controls.decide_reject_transfer(principal, proposal),
            Command::CancelTransfer { proposal } => self.controls.decide_cancel_transfer(principal, proposal),
            Command::ProposeTrusted { proposal, account, trusted } => {
                self.controls.decide_propose_trusted(rules, principal, proposal, account, trusted)
            }
            Command::ApproveTrusted { proposal } => self.controls.decide_approve_trusted(rules, at, principal, proposal),
            Command::RejectTrusted { proposal } => self.controls.decide_end_trusted(principal, proposal, true),
            Command::CancelTrusted { proposal } => self.controls.decide_end_trusted(principal, proposal, false),
            Command::RemoveTrusted { account, trusted } => self.controls.decide_remove_trusted(principal, account, trusted),
            Command::Bootstrap { .. } | Command::Tick => no(RejectKind::Forbidden, format!("{} is the system's command", command.name())),
            Command::Login { .. } => no(RejectKind::Invalid, "log in without a credential"),
        }
    }

    /// Applies a journaled record: the only way the state changes.
    pub fn apply_record(&mut self, record: &Record) {
        assert!(record.at >= self.last_at, "records go back in time: {} after {}", record.at, self.last_at);
        self.last_at = record.at;
        for event in &record.events {
            match event {
                Event::UserCreated { .. }
                | Event::RolesSet { .. }
                | Event::PasswordSet { .. }
                | Event::UserDisabled { .. }
                | Event::LoginSucceeded { .. }
                | Event::LoginFailed { .. }
                | Event::LockedOut { .. }
                | Event::ThrottleExpired
                | Event::LoggedOut { .. }
                | Event::TokenIssued { .. }
                | Event::TokenRevoked { .. } => self.identity.apply(&self.rules, record.at, &record.origin, event),
                _ => self.controls.apply(&self.rules, record.at, event),
            }
        }
    }
}
