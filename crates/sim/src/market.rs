//! Participants, markets and what one market does at a price.

use crate::mac::Mac;
use crate::SimError;
use serde::Serialize;

/// A firm, a sector or a whole market acting as one price taker.
#[derive(Clone, Debug, PartialEq)]
pub struct Participant {
    pub name: String,
    /// Emissions without a carbon price (Mt).
    pub baseline_mt: f64,
    /// Free allowances (Mt).
    pub allocation_mt: f64,
    pub mac: Mac,
}

impl Participant {
    pub fn new(name: impl Into<String>, baseline_mt: f64, allocation_mt: f64, mac: Mac) -> Result<Participant, SimError> {
        let name = name.into();
        if !(baseline_mt.is_finite() && baseline_mt >= 0.0) {
            return Err(SimError::new(format!("{name}: baseline {baseline_mt} Mt must be a number ≥ 0")));
        }
        if !(allocation_mt.is_finite() && allocation_mt >= 0.0) {
            return Err(SimError::new(format!("{name}: allocation {allocation_mt} Mt must be a number ≥ 0")));
        }
        Ok(Participant { name, baseline_mt, allocation_mt, mac })
    }

    /// Required abatement without trade: baseline − allocation.
    pub fn required_mt(&self) -> f64 {
        self.baseline_mt - self.allocation_mt
    }

    /// Abatement at `price` as (left, right), never more than the baseline.
    pub fn abatement(&self, price: f64) -> (f64, f64) {
        let (l, r) = self.mac.abatement(price);
        (l.min(self.baseline_mt), r.min(self.baseline_mt))
    }

    /// Cost of covering the gap by its own abatement alone (no trade); `None` when its curve
    /// cannot abate that much.
    pub fn no_trade_cost(&self) -> Option<f64> {
        let a = self.required_mt().max(0.0);
        (a <= self.mac.potential().min(self.baseline_mt) + 1e-12).then(|| self.mac.cost(a))
    }
}

/// Offset credits usable in a market (economics.md §5; limits from the rulebook's
/// `compliance.offsets`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Offsets {
    /// Price of a credit (CNY/t) while credits are not scarce.
    pub price: f64,
    /// Credits available to this market (Mt); infinite for no limit.
    pub supply_mt: f64,
    /// A participant may cover at most this share of its emissions with credits.
    pub limit_share: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// At or above the trigger price, `quantity_mt` more allowances are sold (a cost-containment
    /// reserve; with an unlimited quantity, a price ceiling).
    Release,
    /// Below the trigger price, up to `quantity_mt` allowances are withheld or bought back (an
    /// emissions-containment reserve; with the whole supply, a hard price floor).
    Withhold,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Trigger {
    pub kind: TriggerKind,
    pub price: f64,
    pub quantity_mt: f64,
}

/// Quantity standing for "unlimited" in a ceiling (Mt): large enough never to run out, finite so
/// that pro-rata fractions stay numbers.
pub const UNLIMITED_MT: f64 = 1.0e9;

#[derive(Clone, Debug, PartialEq)]
pub struct Market {
    pub code: String,
    pub participants: Vec<Participant>,
    /// Allowances the authority sells at the market price besides free allocation (Mt).
    pub auction_mt: f64,
    pub offsets: Option<Offsets>,
    pub triggers: Vec<Trigger>,
}

/// One market's quantities at a price, left or right limit.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Position {
    pub abatement_mt: f64,
    pub emissions_mt: f64,
    pub offsets_mt: f64,
    /// Allowances offered: allocation + auction + released − withheld.
    pub supply_mt: f64,
    pub released_mt: f64,
    pub withheld_mt: f64,
}

impl Position {
    /// Allowances the market needs from outside (negative: it has a surplus).
    pub fn net_demand(&self) -> f64 {
        self.emissions_mt - self.offsets_mt - self.supply_mt
    }

    pub fn lerp(&self, other: &Position, theta: f64) -> Position {
        let f = |a: f64, b: f64| a + theta * (b - a);
        Position {
            abatement_mt: f(self.abatement_mt, other.abatement_mt),
            emissions_mt: f(self.emissions_mt, other.emissions_mt),
            offsets_mt: f(self.offsets_mt, other.offsets_mt),
            supply_mt: f(self.supply_mt, other.supply_mt),
            released_mt: f(self.released_mt, other.released_mt),
            withheld_mt: f(self.withheld_mt, other.withheld_mt),
        }
    }
}

impl Market {
    pub fn new(code: impl Into<String>, participants: Vec<Participant>) -> Market {
        Market { code: code.into(), participants, auction_mt: 0.0, offsets: None, triggers: Vec::new() }
    }

    pub fn baseline_mt(&self) -> f64 {
        self.participants.iter().map(|p| p.baseline_mt).sum()
    }

    pub fn allocation_mt(&self) -> f64 {
        self.participants.iter().map(|p| p.allocation_mt).sum()
    }

    /// Allocation plus auction (before triggers).
    pub fn cap_mt(&self) -> f64 {
        self.allocation_mt() + self.auction_mt
    }

    /// Left and right positions at `price`.
    pub fn position(&self, price: f64) -> (Position, Position) {
        let (mut a_l, mut a_r) = (0.0, 0.0);
        // Power-law firms sharing a gamma need p^(1/gamma) once.
        let mut cached: (f64, f64) = (f64::NAN, 0.0);
        for p in &self.participants {
            if let Mac::Power { gamma, scale, .. } = p.mac {
                if gamma != cached.0 {
                    cached = (gamma, if price > 0.0 { price.powf(1.0 / gamma) } else { 0.0 });
                }
                let a = (scale * cached.1).min(p.baseline_mt);
                a_l += a;
                a_r += a;
                continue;
            }
            let (l, r) = p.abatement(price);
            a_l += l;
            a_r += r;
        }
        self.position_from(price, a_l, a_r)
    }

    pub(crate) fn position_from(&self, price: f64, a_l: f64, a_r: f64) -> (Position, Position) {
        let baseline = self.baseline_mt();
        let cap = self.cap_mt();
        let mut left = Position { abatement_mt: a_l, emissions_mt: baseline - a_l, supply_mt: cap, ..Position::default() };
        let mut right = Position { abatement_mt: a_r, emissions_mt: baseline - a_r, supply_mt: cap, ..Position::default() };
        if let Some(o) = &self.offsets {
            if price > o.price {
                left.offsets_mt = o.supply_mt.min(o.limit_share * left.emissions_mt);
            }
            if price >= o.price {
                right.offsets_mt = o.supply_mt.min(o.limit_share * right.emissions_mt);
            }
        }
        for t in &self.triggers {
            match t.kind {
                TriggerKind::Release => {
                    if price > t.price {
                        left.released_mt += t.quantity_mt;
                    }
                    if price >= t.price {
                        right.released_mt += t.quantity_mt;
                    }
                }
                TriggerKind::Withhold => {
                    if price <= t.price {
                        left.withheld_mt += t.quantity_mt;
                    }
                    if price < t.price {
                        right.withheld_mt += t.quantity_mt;
                    }
                }
            }
        }
        for side in [&mut left, &mut right] {
            // Nothing withheld beyond what there is to sell.
            side.withheld_mt = side.withheld_mt.min(cap + side.released_mt);
            side.supply_mt = cap + side.released_mt - side.withheld_mt;
        }
        (left, right)
    }

    /// The smallest price in (low, high] where this market's position jumps.
    pub fn breakpoint_in(&self, low: f64, high: f64) -> Option<f64> {
        let mut best: Option<f64> = None;
        let mut consider = |x: f64| {
            if x > low && x <= high && best.is_none_or(|b| x < b) {
                best = Some(x);
            }
        };
        if let Some(o) = &self.offsets {
            consider(o.price);
        }
        for t in &self.triggers {
            consider(t.price);
        }
        for p in &self.participants {
            if let Some(b) = p.mac.breakpoint_in(low, high) {
                consider(b);
            }
        }
        best
    }

    pub fn is_linear_only(&self) -> bool {
        self.offsets.is_none() && self.triggers.is_empty() && self.participants.iter().all(|p| matches!(p.mac, Mac::Linear { .. }))
    }

    /// Σ 1/c_i over linear participants.
    pub fn inverse_slope(&self) -> f64 {
        self.participants
            .iter()
            .map(|p| match p.mac {
                Mac::Linear { slope } => 1.0 / slope,
                _ => 0.0,
            })
            .sum()
    }
}
