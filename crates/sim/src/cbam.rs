//! How much CBAM liability a domestic carbon price removes (cbam.md §4.1, §4.4, §7).
//!
//! Per tonne of a good: certificates before any deduction = SEE − SEFA (the embedded emissions
//! less the free-allocation adjustment, both in t CO2e per t, floored at 0); the Art. 9
//! deduction (DRAFT9 conversion, cbam.md §4.4) is `effectively paid price × covered emissions /
//! CBAM certificate price`, where the effectively paid share is a parameter: cbam.md §7 infers
//! that with allocation ≈ emissions almost nothing is effectively paid in China (free allowances
//! are a rebate), so its default is 0. Everything here is a parameter, none of it legal advice.

use crate::scenario::CbamSpec;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CbamPoint {
    /// Domestic allowance price (CNY/t).
    pub domestic_price: f64,
    pub certificates_per_t: f64,
    /// Certificates removed by the domestic price, per tonne of good.
    pub deduction_per_t: f64,
    pub liability_eur_per_t: f64,
    pub liability_eur: f64,
    /// Share of the liability without a domestic price that the price removes.
    pub removed_share: f64,
}

pub fn point(spec: &CbamSpec, domestic_price: f64) -> CbamPoint {
    let before = (spec.see_t_per_t - spec.sefa_t_per_t).max(0.0);
    let paid_eur = spec.paid_share * spec.see_t_per_t * domestic_price / spec.cny_per_eur;
    let deduction = (paid_eur / spec.cbam_price_eur).min(before);
    let certificates = before - deduction;
    let per_t = certificates * spec.cbam_price_eur;
    CbamPoint {
        domestic_price,
        certificates_per_t: certificates,
        deduction_per_t: deduction,
        liability_eur_per_t: per_t,
        liability_eur: per_t * spec.quantity_t,
        removed_share: if before > 0.0 { deduction / before } else { 0.0 },
    }
}

/// The domestic price at which the liability reaches zero (None if the paid share is zero).
pub fn price_removing_all(spec: &CbamSpec) -> Option<f64> {
    let before = (spec.see_t_per_t - spec.sefa_t_per_t).max(0.0);
    (spec.paid_share > 0.0 && spec.see_t_per_t > 0.0)
        .then(|| before * spec.cbam_price_eur * spec.cny_per_eur / (spec.paid_share * spec.see_t_per_t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e4() -> CbamSpec {
        // cbam.md §9 E4: China HRC on defaults, Q1 2026: SEE = 3.19 × 1.10 = 3.509; SEFA =
        // 0.975 × 1.0 × 1.370 = 1.33575; price €75.36; 1,000 t.
        CbamSpec {
            good: "HRC".into(),
            see_t_per_t: 3.19 * 1.10,
            sefa_t_per_t: 0.975 * 1.0 * 1.370,
            cbam_price_eur: 75.36,
            cny_per_eur: 7.8,
            paid_share: 0.0,
            quantity_t: 1000.0,
            markets: vec![],
            price_max: 200.0,
        }
    }

    #[test]
    fn cbam_e4_liability_without_a_deduction() {
        // 2,173.25 certificates for 1,000 t; cost €163,776.12.
        let p = point(&e4(), 96.0);
        assert!((p.certificates_per_t * 1000.0 - 2173.25).abs() < 1e-6, "{p:?}");
        assert!((p.liability_eur - 163_776.12).abs() < 0.005, "{p:?}");
        assert_eq!(p.deduction_per_t, 0.0);
        assert_eq!(price_removing_all(&e4()), None);
    }

    #[test]
    fn a_paid_price_removes_liability_up_to_all_of_it() {
        let spec = CbamSpec { paid_share: 0.5, ..e4() };
        // Paid on half the embedded emissions at ¥100 with ¥7.8/€: 0.5·3.509·100/7.8 = €22.494
        // per t → 0.29849 certificates removed.
        let p = point(&spec, 100.0);
        let expected = 0.5 * 3.509 * 100.0 / 7.8 / 75.36;
        assert!((p.deduction_per_t - expected).abs() < 1e-12);
        let all = price_removing_all(&spec).unwrap();
        assert!(point(&spec, all).certificates_per_t.abs() < 1e-12);
        assert_eq!(point(&spec, all * 2.0).certificates_per_t, 0.0);
    }
}
