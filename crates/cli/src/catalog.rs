//! The markets ets knows by code (China's national market and the eight pilots), read from the
//! data file `data/markets-china.json`, so that `ets market add BJ` needs no further flags.

use ets_registry::{MarketLevel, MarketSpec};
use serde::Deserialize;

#[derive(Deserialize)]
struct CatalogFile {
    version: u32,
    markets: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    code: String,
    name: String,
    level: String,
    allowance_code: String,
    offset_standards: Vec<String>,
    individuals_may_trade: bool,
    authorities: Vec<String>,
}

const CATALOG: &str = include_str!("../../../data/markets-china.json");

/// Every market in the catalog, in file order (national market first).
pub fn china_markets() -> Vec<MarketSpec> {
    let file: CatalogFile = serde_json::from_str(CATALOG).expect("data/markets-china.json is valid (checked by a test)");
    assert_eq!(file.version, 1, "data/markets-china.json version");
    file.markets
        .into_iter()
        .map(|e| MarketSpec {
            code: e.code,
            name: e.name,
            level: if e.level == "national" { MarketLevel::National } else { MarketLevel::Pilot },
            allowance_code: e.allowance_code,
            offset_standards: e.offset_standards,
            individuals_may_trade: e.individuals_may_trade,
            authorities: e.authorities,
        })
        .collect()
}

pub fn market(code: &str) -> Option<MarketSpec> {
    china_markets().into_iter().find(|m| m.code == code)
}

#[cfg(test)]
mod tests {
    #[test]
    fn catalog_has_the_national_market_and_eight_pilots() {
        let markets = super::china_markets();
        let codes: Vec<&str> = markets.iter().map(|m| m.code.as_str()).collect();
        assert_eq!(codes, ["CN", "BJ", "TJ", "SH", "CQ", "HB", "GD", "SZ", "FJ"]);
        assert_eq!(markets.iter().filter(|m| m.level == ets_registry::MarketLevel::National).count(), 1);
    }
}
