//! Users, sessions, API tokens and login throttling. Sessions and tokens are stored only as the
//! SHA-256 of their secret; the secret goes to the client once and is never journaled.

use crate::event::{Actor, Event, LoginFailure, RejectKind, Rejection, ThrottleKey};
use crate::password::{check_password, hash_password, verify_password};
use crate::policy::Role;
use crate::rules::ControlRules;
use ets_core::{check_identifier, Timestamp};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub roles: Vec<Role>,
    pub password_phc: String,
    pub disabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub user: String,
    pub secret_sha256: [u8; 32],
    pub expires_at: Timestamp,
    pub ended: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub id: String,
    pub user: String,
    pub roles: Vec<Role>,
    pub secret_sha256: [u8; 32],
    pub expires_at: Timestamp,
    pub revoked: bool,
}

/// An authenticated caller: the user, the credential, and the roles it carries now (a session
/// carries the user's roles; a token the part of its scope the user still holds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub actor: Actor,
    pub roles: Vec<Role>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) sessions: BTreeMap<String, Session>,
    pub(crate) tokens: BTreeMap<String, Token>,
    /// SHA-256 of a live secret → the credential it opens.
    pub(crate) by_secret: BTreeMap<[u8; 32], Actor>,
    /// Failure times within the window, per user and per origin.
    pub(crate) failures: BTreeMap<ThrottleKey, VecDeque<Timestamp>>,
    pub(crate) locked_until: BTreeMap<ThrottleKey, Timestamp>,
    /// A hash of a fixed text under the current parameters: an unknown user's login is verified
    /// against it, so that it costs as long as a known user's and timing does not tell them apart.
    pub(crate) dummy_phc: String,
}

pub fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn no<T>(kind: RejectKind, message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(kind, message))
}

fn invalid(message: String) -> Rejection {
    Rejection::new(RejectKind::Invalid, message)
}

impl Identity {
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    pub fn session(&self, id: &str) -> Option<&Session> {
        self.sessions.get(id)
    }

    pub fn token(&self, id: &str) -> Option<&Token> {
        self.tokens.get(id)
    }

    /// Until when `key` is locked, if it is locked at `at`.
    pub fn locked_until(&self, key: &ThrottleKey, at: Timestamp) -> Option<Timestamp> {
        self.locked_until.get(key).copied().filter(|until| at < *until)
    }

    /// The principal behind a credential at `at`, or why there is none.
    pub fn principal(&self, actor: &Actor, at: Timestamp) -> Result<Principal, Rejection> {
        let gone =
            || Rejection::new(RejectKind::Unauthenticated, "the credential is unknown, expired, revoked or logged out; log in again");
        let (user, roles) = match actor {
            Actor::Session(id) => {
                let s = self.sessions.get(id).ok_or_else(gone)?;
                if s.ended || at >= s.expires_at {
                    return Err(gone());
                }
                let user = self.users.get(&s.user).ok_or_else(gone)?;
                (user, user.roles.clone())
            }
            Actor::Token(id) => {
                let t = self.tokens.get(id).ok_or_else(gone)?;
                if t.revoked || at >= t.expires_at {
                    return Err(gone());
                }
                let user = self.users.get(&t.user).ok_or_else(gone)?;
                (user, t.roles.iter().filter(|r| user.roles.contains(r)).cloned().collect())
            }
            Actor::System | Actor::Anonymous => return no(RejectKind::Unauthenticated, "this needs a session or an API token"),
        };
        if user.disabled {
            return Err(gone());
        }
        Ok(Principal { user: user.name.clone(), actor: actor.clone(), roles })
    }

    /// Authenticates a presented secret (a session cookie or a bearer token) at `at`.
    pub fn authenticate(&self, secret: &str, at: Timestamp) -> Result<Principal, Rejection> {
        match self.by_secret.get(&sha256(secret)) {
            Some(actor) => self.principal(actor, at),
            None => no(RejectKind::Unauthenticated, "the credential is unknown, expired, revoked or logged out; log in again"),
        }
    }

    fn live_sessions(&self, user: &str, at: Timestamp) -> usize {
        self.sessions.values().filter(|s| s.user == user && !s.ended && at < s.expires_at).count()
    }

    fn live_tokens(&self, user: &str, at: Timestamp) -> usize {
        self.tokens.values().filter(|t| t.user == user && !t.revoked && at < t.expires_at).count()
    }

    // ---- decisions ----

    pub(crate) fn check_roles(rules: &ControlRules, roles: &[Role]) -> Result<(), Rejection> {
        if roles.len() > rules.roles_per_user_max {
            return Err(invalid(format!("{} roles given; the limit is {}", roles.len(), rules.roles_per_user_max)));
        }
        for (i, role) in roles.iter().enumerate() {
            if let Some(scope) = role.scope() {
                check_identifier("role scope", scope).map_err(invalid)?;
            }
            if roles[..i].contains(role) {
                return Err(invalid(format!("role {role:?} is listed twice")));
            }
        }
        Ok(())
    }

    pub(crate) fn decide_create_user(
        &self,
        rules: &ControlRules,
        user: &str,
        roles: &[Role],
        password: &str,
        salt: &[u8; 16],
    ) -> Result<Vec<Event>, Rejection> {
        check_identifier("user", user).map_err(invalid)?;
        Self::check_roles(rules, roles)?;
        if self.users.contains_key(user) {
            return no(RejectKind::Conflict, format!("user {user} already exists"));
        }
        check_password(&rules.password, password).map_err(invalid)?;
        let password_phc = hash_password(&rules.password, password, salt).map_err(invalid)?;
        Ok(vec![Event::UserCreated { user: user.to_string(), roles: roles.to_vec(), password_phc }])
    }

    pub(crate) fn decide_set_password(
        &self,
        rules: &ControlRules,
        user: &str,
        password: &str,
        salt: &[u8; 16],
    ) -> Result<Vec<Event>, Rejection> {
        self.known(user)?;
        check_password(&rules.password, password).map_err(invalid)?;
        let password_phc = hash_password(&rules.password, password, salt).map_err(invalid)?;
        Ok(vec![Event::PasswordSet { user: user.to_string(), password_phc }])
    }

    pub(crate) fn known(&self, user: &str) -> Result<&User, Rejection> {
        self.users.get(user).ok_or_else(|| Rejection::new(RejectKind::NotFound, format!("no user {user}")))
    }

    pub(crate) fn check_secret(&self, rules: &ControlRules, what: &str, id: &str, secret: &str) -> Result<[u8; 32], Rejection> {
        check_identifier(what, id).map_err(invalid)?;
        if secret.len() < rules.secret_length_min {
            return Err(invalid(format!("the {what} secret is {} bytes; at least {} are required", secret.len(), rules.secret_length_min)));
        }
        let hash = sha256(secret);
        if self.by_secret.contains_key(&hash) {
            return no(RejectKind::Conflict, format!("the {what} secret is already in use; draw a new one"));
        }
        Ok(hash)
    }

    /// A login attempt. `Err` carries the events to journal anyway (failures count).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decide_login(
        &self,
        rules: &ControlRules,
        at: Timestamp,
        origin: &str,
        user: &str,
        password: &str,
        session: &str,
        secret: &str,
    ) -> Result<Vec<Event>, (Rejection, Vec<Event>)> {
        let plain = |r: Rejection| (r, Vec::new());
        check_identifier("user", user).map_err(|m| plain(invalid(m)))?;
        let secret_sha256 = self.check_secret(rules, "session", session, secret).map_err(plain)?;
        if self.sessions.contains_key(session) {
            return Err(plain(Rejection::new(RejectKind::Conflict, format!("session id {session} is already in use"))));
        }
        let user_key = ThrottleKey::User(user.to_string());
        let origin_key = ThrottleKey::Origin(origin.to_string());
        let lock = self.locked_until(&user_key, at).into_iter().chain(self.locked_until(&origin_key, at)).max();
        if let Some(until) = lock {
            let event = Event::LoginFailed { user: user.to_string(), reason: LoginFailure::Locked };
            return Err((Rejection::new(RejectKind::Throttled, format!("too many failed logins; try again at {until}")), vec![event]));
        }
        let failure = match self.users.get(user) {
            None => {
                let _ = verify_password(&self.dummy_phc, password);
                Some(LoginFailure::UnknownUser)
            }
            Some(u) if !verify_password(&u.password_phc, password) => Some(LoginFailure::WrongPassword),
            Some(u) if u.disabled => Some(LoginFailure::Disabled),
            Some(_) => None,
        };
        if let Some(reason) = failure {
            let mut events = vec![Event::LoginFailed { user: user.to_string(), reason }];
            let mut keys = vec![origin_key];
            if reason != LoginFailure::UnknownUser {
                keys.push(user_key);
            }
            for key in keys {
                if self.failures_within(rules, &key, at) + 1 >= rules.throttle.failures_max as usize {
                    events.push(Event::LockedOut { key, until: Timestamp(at.0.saturating_add(rules.throttle.lockout_ms)) });
                }
            }
            return Err((Rejection::new(RejectKind::Unauthenticated, "unknown user or wrong password"), events));
        }
        if self.live_sessions(user, at) >= rules.sessions_per_user_max {
            let message = format!("{user} has {} open sessions, the most allowed; log out of one first", rules.sessions_per_user_max);
            return Err(plain(Rejection::new(RejectKind::Refused, message)));
        }
        let expires_at = Timestamp(at.0.saturating_add(rules.session_lifetime_ms));
        Ok(vec![Event::LoginSucceeded { user: user.to_string(), session: session.to_string(), secret_sha256, expires_at }])
    }

    /// Whether a tick at `at` has throttling state to forget.
    pub(crate) fn throttle_expired(&self, rules: &ControlRules, at: Timestamp) -> bool {
        let since = at.0.saturating_sub(rules.throttle.window_ms);
        self.locked_until.values().any(|until| *until <= at)
            || self.failures.values().any(|times| times.back().is_none_or(|t| t.0 <= since))
    }

    fn failures_within(&self, rules: &ControlRules, key: &ThrottleKey, at: Timestamp) -> usize {
        let since = at.0.saturating_sub(rules.throttle.window_ms);
        self.failures.get(key).map_or(0, |times| times.iter().filter(|t| t.0 > since).count())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decide_issue_token(
        &self,
        rules: &ControlRules,
        at: Timestamp,
        principal: &Principal,
        token: &str,
        roles: &[Role],
        expires_at: Timestamp,
        secret: &str,
    ) -> Result<Vec<Event>, Rejection> {
        if !matches!(principal.actor, Actor::Session(_)) {
            return no(RejectKind::Forbidden, "API tokens are issued from a login session, not from another token");
        }
        let secret_sha256 = self.check_secret(rules, "token", token, secret)?;
        if self.tokens.contains_key(token) {
            return no(RejectKind::Conflict, format!("token id {token} is already in use"));
        }
        Self::check_roles(rules, roles)?;
        if roles.is_empty() {
            return Err(invalid("a token needs at least one role".into()));
        }
        if let Some(extra) = roles.iter().find(|r| !principal.roles.contains(r)) {
            return no(
                RejectKind::Forbidden,
                format!("{} does not hold role {extra:?}; a token's roles must be a subset of its user's", principal.user),
            );
        }
        if expires_at <= at || expires_at.0.saturating_sub(at.0) > rules.token_lifetime_max_ms {
            return Err(invalid(format!("a token must expire after now ({at}) and within {} ms", rules.token_lifetime_max_ms)));
        }
        if self.live_tokens(&principal.user, at) >= rules.tokens_per_user_max {
            return no(
                RejectKind::Refused,
                format!("{} has {} live tokens, the most allowed; revoke one first", principal.user, rules.tokens_per_user_max),
            );
        }
        Ok(vec![Event::TokenIssued {
            token: token.to_string(),
            user: principal.user.clone(),
            roles: roles.to_vec(),
            secret_sha256,
            expires_at,
        }])
    }

    // ---- apply ----

    pub(crate) fn apply(&mut self, rules: &ControlRules, at: Timestamp, origin: &str, event: &Event) {
        match event {
            Event::UserCreated { user, roles, password_phc } => {
                let created = User { name: user.clone(), roles: roles.clone(), password_phc: password_phc.clone(), disabled: false };
                assert!(self.users.insert(user.clone(), created).is_none(), "user {user} created twice");
            }
            Event::RolesSet { user, roles } => self.users.get_mut(user).expect("roles of a known user").roles = roles.clone(),
            Event::PasswordSet { user, password_phc } => {
                self.users.get_mut(user).expect("password of a known user").password_phc = password_phc.clone()
            }
            Event::UserDisabled { user } => self.users.get_mut(user).expect("a known user disabled").disabled = true,
            Event::LoginSucceeded { user, session, secret_sha256, expires_at } => {
                self.prune_sessions(user, at);
                self.failures.remove(&ThrottleKey::User(user.clone()));
                let s = Session {
                    id: session.clone(),
                    user: user.clone(),
                    secret_sha256: *secret_sha256,
                    expires_at: *expires_at,
                    ended: false,
                };
                assert!(self.sessions.insert(session.clone(), s).is_none(), "session {session} opened twice");
                assert!(self.by_secret.insert(*secret_sha256, Actor::Session(session.clone())).is_none(), "secret reused");
            }
            Event::LoginFailed { user, reason } => {
                if *reason == LoginFailure::Locked {
                    return;
                }
                let mut keys = vec![ThrottleKey::Origin(origin.to_string())];
                if *reason != LoginFailure::UnknownUser {
                    keys.push(ThrottleKey::User(user.clone()));
                }
                let since = at.0.saturating_sub(rules.throttle.window_ms);
                for key in keys {
                    let times = self.failures.entry(key).or_default();
                    times.retain(|t| t.0 > since);
                    times.push_back(at);
                }
            }
            Event::LockedOut { key, until } => {
                self.failures.remove(key);
                self.locked_until.insert(key.clone(), *until);
            }
            Event::ThrottleExpired => {
                let since = at.0.saturating_sub(rules.throttle.window_ms);
                self.locked_until.retain(|_, until| *until > at);
                self.failures.retain(|_, times| {
                    times.retain(|t| t.0 > since);
                    !times.is_empty()
                });
            }
            Event::LoggedOut { session } => {
                let s = self.sessions.get_mut(session).expect("logout of a known session");
                s.ended = true;
                self.by_secret.remove(&s.secret_sha256);
            }
            Event::TokenIssued { token, user, roles, secret_sha256, expires_at } => {
                self.prune_tokens(user, at);
                let t = Token {
                    id: token.clone(),
                    user: user.clone(),
                    roles: roles.clone(),
                    secret_sha256: *secret_sha256,
                    expires_at: *expires_at,
                    revoked: false,
                };
                assert!(self.tokens.insert(token.clone(), t).is_none(), "token {token} issued twice");
                assert!(self.by_secret.insert(*secret_sha256, Actor::Token(token.clone())).is_none(), "secret reused");
            }
            Event::TokenRevoked { token } => {
                let t = self.tokens.get_mut(token).expect("revocation of a known token");
                t.revoked = true;
                self.by_secret.remove(&t.secret_sha256);
            }
            _ => unreachable!("not an identity event: {event:?}"),
        }
    }

    /// Forgets a user's ended and expired sessions (bounded state; ids may then be reused).
    fn prune_sessions(&mut self, user: &str, at: Timestamp) {
        let dead: Vec<String> =
            self.sessions.values().filter(|s| s.user == user && (s.ended || at >= s.expires_at)).map(|s| s.id.clone()).collect();
        for id in dead {
            let s = self.sessions.remove(&id).expect("listed above");
            self.by_secret.remove(&s.secret_sha256);
        }
    }

    fn prune_tokens(&mut self, user: &str, at: Timestamp) {
        let dead: Vec<String> =
            self.tokens.values().filter(|t| t.user == user && (t.revoked || at >= t.expires_at)).map(|t| t.id.clone()).collect();
        for id in dead {
            let t = self.tokens.remove(&id).expect("listed above");
            self.by_secret.remove(&t.secret_sha256);
        }
    }
}
