//! Commands in, records of events out. A `Record` is what the shell journals: who (actor and
//! user), when, from where, which command, and the events it caused. Replaying the records
//! through `Access::apply_record` rebuilds the state exactly. Secrets never appear in events:
//! passwords only as Argon2id PHC strings, session and token secrets only as SHA-256.

use crate::policy::{AccountRef, Role};
use ets_core::{Timestamp, Tonnes};
use ets_registry::UnitRef;
use serde::{Deserialize, Serialize};

/// Who sends a command. The shell authenticates a request (`Access::authenticate`) and names
/// the credential here; the state machine checks it again at the command's time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    /// The shell itself: bootstrap and the clock tick. Never mapped from a request.
    System,
    /// An unauthenticated request (login).
    Anonymous,
    Session(String),
    Token(String),
}

/// A password or credential secret inside a command: shown as `<redacted>` by `Debug` and not
/// serializable, so it cannot reach a log or a journal by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Secret {
        Secret::new(text)
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Secret {
        Secret(text)
    }
}

/// A command with its time (from the shell's clock) and origin (e.g. the client address).
/// Commands are not serializable (they may carry secrets): the journal holds `Record`s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub at: Timestamp,
    pub origin: String,
    pub actor: Actor,
    pub command: Command,
}

/// Secrets (`password`, `secret`) are given by the caller; salts too, so hashing is pure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Creates the first user, a registry administrator. Only by `System`, only while there
    /// are no users.
    Bootstrap {
        user: String,
        password: Secret,
        salt: [u8; 16],
    },
    CreateUser {
        user: String,
        roles: Vec<Role>,
        password: Secret,
        salt: [u8; 16],
    },
    /// Replaces a user's roles. Nobody changes their own roles.
    SetRoles {
        user: String,
        roles: Vec<Role>,
    },
    SetPassword {
        user: String,
        password: Secret,
        salt: [u8; 16],
    },
    /// Disables a user: every session and token of theirs fails at once.
    DisableUser {
        user: String,
    },
    /// Opens a session `session` with secret `secret` if the password matches.
    Login {
        user: String,
        password: Secret,
        session: String,
        secret: Secret,
    },
    Logout {
        session: String,
    },
    /// An API token for the calling session's own user, scoped to `roles` (⊆ the user's).
    IssueToken {
        token: String,
        roles: Vec<Role>,
        expires_at: Timestamp,
        secret: Secret,
    },
    RevokeToken {
        token: String,
    },
    /// Four-eyes transfer: one representative proposes, another approves.
    ProposeTransfer {
        proposal: String,
        from: AccountRef,
        to: AccountRef,
        unit: UnitRef,
        quantity: Tonnes,
    },
    ApproveTransfer {
        proposal: String,
    },
    RejectTransfer {
        proposal: String,
    },
    /// Withdraws a proposal that has not been released (any representative of the source).
    CancelTransfer {
        proposal: String,
    },
    /// Proposes adding `trusted` to `account`'s trusted list.
    ProposeTrusted {
        proposal: String,
        account: AccountRef,
        trusted: AccountRef,
    },
    ApproveTrusted {
        proposal: String,
    },
    RejectTrusted {
        proposal: String,
    },
    CancelTrusted {
        proposal: String,
    },
    /// Removes an entry (effective or not yet) at once (Art. 23(4): removal is immediate).
    RemoveTrusted {
        account: AccountRef,
        trusted: String,
    },
    /// The clock: releases matured transfers, records trusted-list entries taking effect.
    Tick,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Bootstrap { .. } => "bootstrap",
            Command::CreateUser { .. } => "create-user",
            Command::SetRoles { .. } => "set-roles",
            Command::SetPassword { .. } => "set-password",
            Command::DisableUser { .. } => "disable-user",
            Command::Login { .. } => "login",
            Command::Logout { .. } => "logout",
            Command::IssueToken { .. } => "issue-token",
            Command::RevokeToken { .. } => "revoke-token",
            Command::ProposeTransfer { .. } => "propose-transfer",
            Command::ApproveTransfer { .. } => "approve-transfer",
            Command::RejectTransfer { .. } => "reject-transfer",
            Command::CancelTransfer { .. } => "cancel-transfer",
            Command::ProposeTrusted { .. } => "propose-trusted",
            Command::ApproveTrusted { .. } => "approve-trusted",
            Command::RejectTrusted { .. } => "reject-trusted",
            Command::CancelTrusted { .. } => "cancel-trusted",
            Command::RemoveTrusted { .. } => "remove-trusted",
            Command::Tick => "tick",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginFailure {
    UnknownUser,
    WrongPassword,
    Disabled,
    /// The user or the origin is locked by throttling; not counted as a further failure.
    Locked,
}

/// What a lockout applies to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ThrottleKey {
    User(String),
    Origin(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    UserCreated {
        user: String,
        roles: Vec<Role>,
        password_phc: String,
    },
    RolesSet {
        user: String,
        roles: Vec<Role>,
    },
    PasswordSet {
        user: String,
        password_phc: String,
    },
    UserDisabled {
        user: String,
    },
    LoginSucceeded {
        user: String,
        session: String,
        secret_sha256: [u8; 32],
        expires_at: Timestamp,
    },
    LoginFailed {
        user: String,
        reason: LoginFailure,
    },
    LockedOut {
        key: ThrottleKey,
        until: Timestamp,
    },
    /// Throttling state older than the window and lockouts that ended are forgotten (bounded
    /// state: origins come and go).
    ThrottleExpired,
    LoggedOut {
        session: String,
    },
    TokenIssued {
        token: String,
        user: String,
        roles: Vec<Role>,
        secret_sha256: [u8; 32],
        expires_at: Timestamp,
    },
    TokenRevoked {
        token: String,
    },
    TransferProposed {
        proposal: String,
        from: AccountRef,
        to: AccountRef,
        unit: UnitRef,
        quantity: Tonnes,
        initiator: String,
    },
    /// Second approval given; `trusted` says which rule timed the release.
    TransferApproved {
        proposal: String,
        approver: String,
        trusted: bool,
        release_at: Timestamp,
    },
    TransferRejected {
        proposal: String,
        by: String,
    },
    TransferCancelled {
        proposal: String,
        by: String,
    },
    /// The destination left the trusted list before release: timed again by the untrusted rule.
    TransferRescheduled {
        proposal: String,
        release_at: Timestamp,
    },
    /// Ended without release (e.g. over the untrusted limit once the destination left the list).
    TransferTerminated {
        proposal: String,
        reason: String,
    },
    /// The shell now executes this transfer in the registry (command id derived from `proposal`).
    TransferReleased {
        proposal: String,
        from: AccountRef,
        to: AccountRef,
        unit: UnitRef,
        quantity: Tonnes,
    },
    TrustedProposed {
        proposal: String,
        account: AccountRef,
        trusted: AccountRef,
        initiator: String,
    },
    TrustedApproved {
        proposal: String,
        approver: String,
        effective_at: Timestamp,
    },
    TrustedRejected {
        proposal: String,
        by: String,
    },
    TrustedCancelled {
        proposal: String,
        by: String,
    },
    TrustedEffective {
        account: String,
        trusted: String,
    },
    TrustedRemoved {
        account: String,
        trusted: String,
        by: String,
    },
}

/// One accepted command (or a refused login, whose failure counts): the journal's unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub at: Timestamp,
    pub origin: String,
    pub actor: Actor,
    /// The user behind the actor, if any.
    pub user: Option<String>,
    pub command: String,
    pub events: Vec<Event>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectKind {
    /// Malformed input (identifier, quantity, time, secret length).
    Invalid,
    /// No valid credential: unknown, expired, revoked, logged out, disabled user, wrong password.
    Unauthenticated,
    /// The credential is valid but its roles do not permit this.
    Forbidden,
    /// A named user, proposal or entry does not exist.
    NotFound,
    /// A rule says no: four-eyes, limit, state, opening hours.
    Refused,
    /// An id already in use.
    Conflict,
    /// Login throttling.
    Throttled,
}

pub type Rejection = ets_core::Rejection<RejectKind>;

/// A refused command. `record` is `Some` when the refusal itself must be journaled (a failed
/// login counts towards throttling); its events are already applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub rejection: Rejection,
    pub record: Option<Box<Record>>,
}

impl From<Rejection> for Refusal {
    fn from(rejection: Rejection) -> Refusal {
        Refusal { rejection, record: None }
    }
}
