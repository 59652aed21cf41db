//! The transitional quarterly report (QReport) XML of the CBAM Transitional Registry, for past
//! periods (Q4 2023 to Q4 2025), with the element names and nesting of QReport XSD v17.00
//! (cbam.md §5.2). Written by hand with XML escaping; the code lists of `stypes.xsd`
//! (determination types, methods, roles, procedures) were not extracted (cbam.md §5.2), so their
//! codes are passed through from the input as given. Not validated against the XSD here (the
//! XSD is not shipped).

use crate::error::{CbamError, Result};
use crate::num::{self, serde_exact};
use ets_core::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

pub const NAMESPACE: &str = "http://xmlns.ec.eu/BusinessObjects/CBAM/Types/V1";
/// QReport allows at most 99,999 imported goods (ImportedGood[1..99999]).
pub const GOODS_MAX: usize = 99_999;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QReportInput {
    pub draft_report_id: String,
    pub submission_date: Date,
    /// Q1..Q4
    pub period: String,
    pub year: i32,
    pub declarant: Declarant,
    pub competent_authority: String,
    pub signature: Signature,
    #[serde(default)]
    pub remarks: String,
    pub goods: Vec<QGood>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declarant {
    pub id: String,
    pub name: String,
    pub role: String,
    pub country: String,
    pub city: String,
    #[serde(default)]
    pub street: String,
    #[serde(default)]
    pub postcode: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub date: Date,
    pub place: String,
    pub signature: String,
    pub position: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QGood {
    pub cn: String,
    pub description: String,
    pub origin: String,
    #[serde(deserialize_with = "serde_exact::exact")]
    pub net_mass_t: Decimal,
    /// Customs procedure code (e.g. 40), as in the registry's code list.
    pub procedure: String,
    #[serde(default = "eu")]
    pub import_area: String,
    pub installation_id: String,
    pub installation_name: String,
    pub operator_id: String,
    pub operator_name: String,
    #[serde(deserialize_with = "serde_exact::exact")]
    pub see_direct: Decimal,
    #[serde(deserialize_with = "serde_exact::exact")]
    pub see_indirect: Decimal,
    /// Code list value of DeterminationType (e.g. 01 actual), passed through.
    pub determination_type: String,
    /// ApplicableReportingTypeMethodology code, passed through.
    pub methodology: String,
}

fn eu() -> String {
    "EU".into()
}

/// Escapes text for XML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab, newline and carriage return are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn open(&mut self, name: &str) {
        let _ = writeln!(self.out, "{}<{name}>", "  ".repeat(self.depth));
        self.depth += 1;
    }
    fn close(&mut self, name: &str) {
        self.depth -= 1;
        let _ = writeln!(self.out, "{}</{name}>", "  ".repeat(self.depth));
    }
    fn leaf(&mut self, name: &str, value: &str) {
        let _ = writeln!(self.out, "{}<{name}>{}</{name}>", "  ".repeat(self.depth), escape(value));
    }
}

fn ymd8(d: Date) -> String {
    let (y, m, dd) = d.ymd();
    format!("{y:04}{m:02}{dd:02}")
}

/// dec16-5: at most 5 decimal places (rounded half-even).
fn dec5(v: Decimal) -> String {
    v.round_dp_with_strategy(5, rust_decimal::RoundingStrategy::MidpointNearestEven).normalize().to_string()
}

/// Checks the input and writes the QReport XML.
pub fn write(input: &QReportInput, reference: &crate::reference::Reference) -> Result<String> {
    if !matches!(input.period.as_str(), "Q1" | "Q2" | "Q3" | "Q4") {
        return Err(CbamError::input("period", format!("'{}' must be Q1, Q2, Q3 or Q4", input.period)));
    }
    let past = (input.year == 2023 && input.period == "Q4") || (2024..=2025).contains(&input.year);
    if !past {
        return Err(CbamError::input(
            "year",
            format!(
                "{} {} is not a transitional period: QReport covers Q4 2023 to Q4 2025; later years are declared annually",
                input.period, input.year
            ),
        ));
    }
    if input.draft_report_id.is_empty() || input.draft_report_id.len() > 22 {
        return Err(CbamError::input("draft_report_id", "must be 1 to 22 characters (an..22)"));
    }
    if input.declarant.id.is_empty() || input.declarant.id.len() > 17 {
        return Err(CbamError::input("declarant.id", "must be 1 to 17 characters (an..17)"));
    }
    if input.declarant.role.is_empty() || input.declarant.role.len() > 5 {
        return Err(CbamError::input("declarant.role", "must be 1 to 5 characters (an..5)"));
    }
    if input.goods.is_empty() || input.goods.len() > GOODS_MAX {
        return Err(CbamError::input("goods", format!("must list 1 to {GOODS_MAX} imported goods")));
    }
    // Every good checked before anything is written.
    let mut computed = Vec::with_capacity(input.goods.len());
    let mut total_emissions = Decimal::ZERO;
    for (i, g) in input.goods.iter().enumerate() {
        let at = format!("goods[{i}]");
        let scope = reference.scope(&format!("{at}.cn"), &g.cn)?;
        let mass = num::positive(&format!("{at}.net_mass_t"), g.net_mass_t)?;
        let dir = num::non_negative(&format!("{at}.see_direct"), g.see_direct)?;
        let ind = num::non_negative(&format!("{at}.see_indirect"), g.see_indirect)?;
        if g.origin.len() != 2 {
            return Err(CbamError::input(format!("{at}.origin"), format!("'{}' is not a two-letter country code", g.origin)));
        }
        let total_dir = num::mul(mass, dir, "QReport direct")?;
        let total_ind = num::mul(mass, ind, "QReport indirect")?;
        let per_unit = num::add(dir, ind, "QReport per unit")?;
        let overall = num::add(total_dir, total_ind, "QReport overall")?;
        total_emissions = num::add(total_emissions, overall, "QReport total")?;
        computed.push((scope.cn, mass, per_unit, overall, total_dir, total_ind));
    }

    let mut x = Xml { out: String::new(), depth: 0 };
    x.out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.out.push_str(&format!("<QReport xmlns=\"{NAMESPACE}\">\n"));
    x.depth = 1;
    x.leaf("SubmissionDate", &format!("{}T00:00:00Z", input.submission_date));
    x.leaf("DraftReportId", &input.draft_report_id);
    x.leaf("ReportingPeriod", &input.period);
    x.leaf("Year", &input.year.to_string());
    x.leaf("TotalImported", &input.goods.len().to_string());
    x.leaf("TotalEmissions", &dec5(total_emissions));
    x.open("Declarant");
    x.leaf("IdentificationNumber", &input.declarant.id);
    x.leaf("Name", &input.declarant.name);
    x.leaf("Role", &input.declarant.role);
    x.open("ActorAddress");
    x.leaf("Country", &input.declarant.country);
    x.leaf("City", &input.declarant.city);
    if !input.declarant.street.is_empty() {
        x.leaf("Street", &input.declarant.street);
    }
    if !input.declarant.postcode.is_empty() {
        x.leaf("Postcode", &input.declarant.postcode);
    }
    x.close("ActorAddress");
    x.close("Declarant");
    x.open("NationalCompetentAuth");
    x.leaf("ReferenceNumber", &input.competent_authority);
    x.close("NationalCompetentAuth");
    x.open("Signatures");
    x.open("ReportConfirmation");
    x.leaf("GlobalDataConfirmation", "true");
    x.leaf("UseOfDataConfirmation", "true");
    x.leaf("SignatureDate", &ymd8(input.signature.date));
    x.leaf("SignaturePlace", &input.signature.place);
    x.leaf("Signature", &input.signature.signature);
    x.leaf("PositionOfPersonSending", &input.signature.position);
    x.close("ReportConfirmation");
    x.close("Signatures");
    if !input.remarks.is_empty() {
        x.open("Remarks");
        x.leaf("AdditionalInformation", &input.remarks);
        x.close("Remarks");
    }
    for (i, (g, (cn, mass, per_unit, overall, total_dir, total_ind))) in input.goods.iter().zip(&computed).enumerate() {
        x.open("ImportedGood");
        x.leaf("ItemNumber", &(i + 1).to_string());
        x.open("CommodityCode");
        x.leaf("HsCode", &cn[..6]);
        x.leaf("CnCode", &cn[6..]);
        x.open("CommodityDetails");
        x.leaf("Description", &g.description);
        x.close("CommodityDetails");
        x.close("CommodityCode");
        x.open("OriginCountry");
        x.leaf("Country", &g.origin);
        x.close("OriginCountry");
        x.open("ImportedQuantity");
        x.leaf("SequenceNumber", "1");
        x.open("Procedure");
        x.leaf("RequestedProc", &g.procedure);
        x.close("Procedure");
        x.open("ImportArea");
        x.leaf("ImportArea", &g.import_area);
        x.close("ImportArea");
        x.open("MeasureProcedureImported");
        x.leaf("Indicator", "0");
        x.leaf("NetMass", &dec5(*mass));
        x.leaf("MeasurementUnit", "01");
        x.close("MeasureProcedureImported");
        x.close("ImportedQuantity");
        x.open("MeasureImported");
        x.leaf("NetMass", &dec5(*mass));
        x.leaf("MeasurementUnit", "01");
        x.close("MeasureImported");
        x.open("TotalEmissions");
        x.leaf("EmissionsPerUnit", &dec5(*per_unit));
        x.leaf("OverallEmissions", &dec5(*overall));
        x.leaf("TotalDirect", &dec5(*total_dir));
        x.leaf("TotalIndirect", &dec5(*total_ind));
        x.leaf("MeasurementUnit", "EMISSIONS_TONNES");
        x.close("TotalEmissions");
        x.open("GoodsEmissions");
        x.leaf("SequenceNumber", "1");
        x.leaf("ProductionCountry", &g.origin);
        x.open("InstallationOperator");
        x.leaf("OperatorId", &g.operator_id);
        x.leaf("OperatorName", &g.operator_name);
        x.close("InstallationOperator");
        x.open("Installation");
        x.leaf("InstallationId", &g.installation_id);
        x.leaf("InstallationName", &g.installation_name);
        x.open("Address");
        x.leaf("EstablishmentCountry", &g.origin);
        x.close("Address");
        x.close("Installation");
        x.leaf("ProducedMeasure", &dec5(*mass));
        x.open("InstallationEmissions");
        x.leaf("OverallEmissions", &dec5(*overall));
        x.leaf("TotalDirect", &dec5(*total_dir));
        x.leaf("TotalIndirect", &dec5(*total_ind));
        x.leaf("MeasurementUnit", "EMISSIONS_TONNES");
        x.close("InstallationEmissions");
        x.open("DirectEmissions");
        x.leaf("DeterminationType", &g.determination_type);
        x.leaf("ApplicableReportingTypeMethodology", &g.methodology);
        x.leaf("SpecificEmbeddedEmissions", &dec5(g.see_direct));
        x.leaf("MeasurementUnit", "EMISSIONS_TONNES");
        x.close("DirectEmissions");
        x.open("IndirectEmissions");
        x.leaf("DeterminationType", &g.determination_type);
        x.leaf("SpecificEmbeddedEmissions", &dec5(g.see_indirect));
        x.leaf("MeasurementUnit", "EMISSIONS_TONNES");
        x.leaf("ElectricitySource", "01");
        x.close("IndirectEmissions");
        x.open("ProdMethodQualifyingParams");
        x.leaf("SequenceNumber", "1");
        x.leaf("MethodId", "00");
        x.leaf("MethodName", "not specified");
        x.close("ProdMethodQualifyingParams");
        x.close("GoodsEmissions");
        x.close("ImportedGood");
    }
    x.out.push_str("</QReport>\n");
    Ok(x.out)
}
