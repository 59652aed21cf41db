//! ets-sim: policy simulation for the national market and the pilots (issue 8).
//!
//! - [`mac`]: marginal abatement cost curves (linear, power law, stepped from measures).
//! - [`market`] and [`equilibrium`]: participants and markets; clearing prices, abatement,
//!   trades and costs under autarky, full integration, linking with exchange rates and a
//!   restricted link with a transfer quota. Closed forms for linear curves, a bracketing
//!   solver ([`solve`]) otherwise.
//! - [`intertemporal`]: banking and borrowing with a discount rate (Hotelling), price floors
//!   and ceilings, trigger reserves, and the EU-style market stability reserve ([`msr`]).
//! - [`agents`]: heterogeneous firms trading through ets's own order book over a compliance
//!   year, under the market's price band.
//! - [`scenario`], [`calibration`], [`run`], [`chart`]: scenario files, the default
//!   calibrated data set for the national market and the eight pilots, Monte Carlo runs,
//!   results as JSON, CSV and SVG.
//!
//! Floating point is used throughout (this is simulation, not the ledger). Everything is
//! deterministic: randomness comes only from ChaCha8 generators seeded from the scenario, and
//! the library reads no clock and does no I/O (the caller passes the scenario text in and writes
//! the results out).

pub mod agents;
pub mod calibration;
pub mod cbam;
pub mod chart;
pub mod equilibrium;
pub mod intertemporal;
pub mod mac;
pub mod market;
pub mod msr;
pub mod run;
pub mod scenario;
pub mod solve;

use std::fmt;

/// A problem in a simulation's inputs or a model that has no solution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimError(pub String);

impl SimError {
    pub fn new(message: impl Into<String>) -> SimError {
        SimError(message.into())
    }

    /// Prefixes the message with where it happened.
    pub fn context(self, what: &str) -> SimError {
        SimError(format!("{what}: {}", self.0))
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SimError {}
