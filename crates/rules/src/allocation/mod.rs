//! Allocation engines: pure functions from rules and data to allowances per entity.

pub mod industry;
pub mod pilot;
pub mod power;
