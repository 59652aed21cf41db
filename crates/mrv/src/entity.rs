//! Who reports and what emits: reporting entities, their installations and emission units.
//!
//! An entity (a legal person: a power company, a steel mill) belongs to one province and to the
//! markets that cover it (the national market `CN`, a pilot such as `GD`, or both during a
//! transfer between them). It has installations (a plant, a site), and each installation has
//! emission units: the things monitoring plans and monthly data are about (a coal generating
//! unit, a clinker line, an aluminium electrolysis process). Plain validated data: the MRV state
//! machine ([`crate::state`]) decides who may register them.

use crate::eu_mrr::Category;
use ets_core::check_identifier;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// Sectors an entity can report in (the national market's four plus the reporting-only and
/// pilot sectors of china-ets.md sections 1.3 and 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sector {
    Power,
    Steel,
    Cement,
    Aluminium,
    Petrochemicals,
    Chemicals,
    FlatGlass,
    Copper,
    Paper,
    Aviation,
    Other,
}

impl Sector {
    pub const ALL: [Sector; 11] = [
        Sector::Power,
        Sector::Steel,
        Sector::Cement,
        Sector::Aluminium,
        Sector::Petrochemicals,
        Sector::Chemicals,
        Sector::FlatGlass,
        Sector::Copper,
        Sector::Paper,
        Sector::Aviation,
        Sector::Other,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Sector::Power => "power",
            Sector::Steel => "steel",
            Sector::Cement => "cement",
            Sector::Aluminium => "aluminium",
            Sector::Petrochemicals => "petrochemicals",
            Sector::Chemicals => "chemicals",
            Sector::FlatGlass => "flat_glass",
            Sector::Copper => "copper",
            Sector::Paper => "paper",
            Sector::Aviation => "aviation",
            Sector::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Result<Sector, String> {
        Sector::ALL
            .into_iter()
            .find(|s| s.key() == text)
            .ok_or_else(|| format!("unknown sector '{text}'; expected one of {}", Sector::ALL.map(Sector::key).join(", ")))
    }
}

impl fmt::Display for Sector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A reporting entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    pub id: String,
    pub name: String,
    pub sector: Sector,
    pub province: String,
    /// Codes of the markets that cover the entity (`CN`, `GD`, ...); at least one.
    pub markets: BTreeSet<String>,
    /// Persons who act for the entity (submit data and reports).
    pub representatives: BTreeSet<String>,
}

/// A site of an entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installation {
    pub id: String,
    pub entity: String,
    pub name: String,
    /// EU MRR installation category, where the installation is monitored under an EU-style
    /// plan; `None` for China's data-quality control plan, which has no categories.
    pub eu_category: Option<Category>,
}

/// Power-unit categories of the national allocation plans (china-ets.md 2.2, `[ALLOC2324]`).
/// The category is declared at registration: which rated-power threshold and fuel shares
/// decide it is a rule of each allocation plan, applied by the allocation engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PowerCategory {
    /// Conventional coal, rated power ≥ 400 MW ("300 MW class and above").
    I,
    /// Conventional coal, rated power < 400 MW.
    II,
    /// Unconventional coal (gangue, slime, coal-water slurry, CFB).
    III,
    /// Gas.
    IV,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cooling {
    Water,
    Air,
}

/// What an emission unit is, with what allocation and peer comparison need to know.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UnitKind {
    /// A generating unit (coal or gas).
    GeneratingUnit { capacity_mw: Decimal, category: PowerCategory, cooling: Cooling, supplies_heat: bool },
    /// A cement clinker production line.
    ClinkerLine { capacity_t_per_day: Decimal },
    /// An aluminium electrolysis process (potline).
    AluminiumElectrolysis { capacity_t_per_year: Decimal },
    /// A steel process (sintering, ironmaking, steelmaking, ...), named.
    SteelProcess { process: String },
    /// Anything else (boilers of other sectors, ...), described.
    Other { description: String },
}

impl UnitKind {
    /// Units that may be compared with each other on intensity: same kind and, for generating
    /// units, same category.
    pub fn peer_group(&self) -> String {
        match self {
            UnitKind::GeneratingUnit { category, .. } => format!("generating_unit/{category:?}"),
            UnitKind::ClinkerLine { .. } => "clinker_line".into(),
            UnitKind::AluminiumElectrolysis { .. } => "aluminium_electrolysis".into(),
            UnitKind::SteelProcess { process } => format!("steel_process/{process}"),
            UnitKind::Other { description } => format!("other/{description}"),
        }
    }

    /// The unit in which a month's production is reported.
    pub fn production_unit(&self) -> &'static str {
        match self {
            UnitKind::GeneratingUnit { .. } => "MWh",
            UnitKind::ClinkerLine { .. } => "t clinker",
            UnitKind::AluminiumElectrolysis { .. } => "t aluminium",
            UnitKind::SteelProcess { .. } => "t product",
            UnitKind::Other { .. } => "unit of output",
        }
    }
}

/// An emission unit of an installation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmissionUnit {
    pub id: String,
    pub installation: String,
    pub kind: UnitKind,
}

/// That an entity must comply in a market: for which sector and gases, from which year to
/// which (open-ended if none), and the registry account it surrenders from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub market: String,
    pub sector: Sector,
    pub gases: BTreeSet<String>,
    pub from_year: i32,
    pub to_year: Option<i32>,
    /// Registry account number (`CN-100001`).
    pub account: Option<String>,
}

impl Coverage {
    pub fn validate(&self) -> Result<(), String> {
        id("market code", &self.market)?;
        if self.gases.is_empty() {
            return Err(format!("coverage in {} names no gas", self.market));
        }
        for g in &self.gases {
            id("gas", g)?;
        }
        if !(1900..=9999).contains(&self.from_year) {
            return Err(format!("coverage year {} must be between 1900 and 9999", self.from_year));
        }
        if let Some(to) = self.to_year {
            if to < self.from_year {
                return Err(format!("coverage in {} ends in {to}, before it starts in {}", self.market, self.from_year));
            }
        }
        if let Some(a) = &self.account {
            id("account", a)?;
        }
        Ok(())
    }

    pub fn covers_year(&self, year: i32) -> bool {
        year >= self.from_year && self.to_year.is_none_or(|t| year <= t)
    }

    /// Whether two coverages would make the entity comply twice: the same sector, a shared
    /// gas and overlapping years (Regulations Art. 29: no local market for the same gas and
    /// sector once in the national market).
    pub fn overlaps(&self, other: &Coverage) -> bool {
        let years = self.from_year <= other.to_year.unwrap_or(i32::MAX) && other.from_year <= self.to_year.unwrap_or(i32::MAX);
        years && self.sector == other.sector && self.gases.intersection(&other.gases).next().is_some()
    }

    pub fn describe(&self) -> String {
        let gases: Vec<&str> = self.gases.iter().map(String::as_str).collect();
        let to = self.to_year.map(|y| y.to_string()).unwrap_or_else(|| "on".into());
        format!("{} for {} / {} {}–{to}", self.market, self.sector, gases.join("+"), self.from_year)
    }
}

fn id(what: &str, value: &str) -> Result<(), String> {
    check_identifier(what, value)
}

fn text(what: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() || value.len() > 200 || value.chars().any(char::is_control) {
        return Err(format!("{what} must be 1 to 200 characters without control characters"));
    }
    Ok(())
}

fn positive(what: &str, value: Decimal) -> Result<(), String> {
    if value <= Decimal::ZERO {
        return Err(format!("{what} {value} must be positive"));
    }
    Ok(())
}

impl Entity {
    pub fn validate(&self) -> Result<(), String> {
        id("entity id", &self.id)?;
        text("entity name", &self.name)?;
        id("province", &self.province)?;
        if self.markets.is_empty() {
            return Err(format!("entity '{}' must belong to at least one market", self.id));
        }
        for m in &self.markets {
            id("market code", m)?;
        }
        if self.representatives.is_empty() {
            return Err(format!("entity '{}' needs at least one representative", self.id));
        }
        for r in &self.representatives {
            id("representative", r)?;
        }
        Ok(())
    }
}

impl Installation {
    pub fn validate(&self) -> Result<(), String> {
        id("installation id", &self.id)?;
        id("entity id", &self.entity)?;
        text("installation name", &self.name)
    }
}

impl EmissionUnit {
    pub fn validate(&self) -> Result<(), String> {
        id("emission unit id", &self.id)?;
        id("installation id", &self.installation)?;
        match &self.kind {
            UnitKind::GeneratingUnit { capacity_mw, .. } => positive("capacity (MW)", *capacity_mw),
            UnitKind::ClinkerLine { capacity_t_per_day } => positive("clinker capacity (t/day)", *capacity_t_per_day),
            UnitKind::AluminiumElectrolysis { capacity_t_per_year } => positive("aluminium capacity (t/year)", *capacity_t_per_year),
            UnitKind::SteelProcess { process } => id("steel process", process),
            UnitKind::Other { description } => text("unit description", description),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity() -> Entity {
        Entity {
            id: "GD-POWER-1".into(),
            name: "Pearl River Power".into(),
            sector: Sector::Power,
            province: "Guangdong".into(),
            markets: ["CN".to_string()].into(),
            representatives: ["alice".to_string()].into(),
        }
    }

    #[test]
    fn entity_rules() {
        assert!(entity().validate().is_ok());
        let mut e = entity();
        e.markets.clear();
        assert!(e.validate().unwrap_err().contains("at least one market"));
        let mut e = entity();
        e.representatives.clear();
        assert!(e.validate().unwrap_err().contains("representative"));
        let mut e = entity();
        e.id = "has space".into();
        assert!(e.validate().is_err());
    }

    #[test]
    fn unit_capacity_must_be_positive_and_kinds_round_trip_as_json() {
        let u = EmissionUnit {
            id: "U1".into(),
            installation: "I1".into(),
            kind: UnitKind::GeneratingUnit {
                capacity_mw: Decimal::from(600),
                category: PowerCategory::I,
                cooling: Cooling::Water,
                supplies_heat: false,
            },
        };
        assert!(u.validate().is_ok());
        let json = serde_json::to_string(&u).unwrap();
        assert!(json.contains(r#""type":"generating_unit""#), "{json}");
        assert_eq!(serde_json::from_str::<EmissionUnit>(&json).unwrap(), u);
        let bad = EmissionUnit { kind: UnitKind::ClinkerLine { capacity_t_per_day: Decimal::ZERO }, ..u };
        assert!(bad.validate().unwrap_err().contains("must be positive"));
    }

    #[test]
    fn peers_are_grouped_by_kind_and_power_category() {
        let g =
            |category| UnitKind::GeneratingUnit { capacity_mw: Decimal::from(300), category, cooling: Cooling::Air, supplies_heat: true };
        assert_eq!(g(PowerCategory::I).peer_group(), g(PowerCategory::I).peer_group());
        assert_ne!(g(PowerCategory::I).peer_group(), g(PowerCategory::II).peer_group());
        assert_eq!(Sector::parse("flat_glass"), Ok(Sector::FlatGlass));
        assert!(Sector::parse("glass").unwrap_err().contains("expected one of"));
    }
}
