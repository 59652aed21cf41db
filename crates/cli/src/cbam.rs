//! `ets cbam ...`: the EU CBAM interface. Scope, embedded emissions of an installation, the
//! operator's communication (JSON or Excel, and its import), an importer's liability, scenarios
//! 2026–2034, the transitional QReport XML, and the carbon price paid in China read from the
//! registry. Everything but `carbon-price` works on files alone; nothing is written unless the
//! whole computation succeeded (output files are written to a temporary name and renamed).

// The demo's CBAM section lives beside the demo but is declared here, so that main.rs only names `cbam`.
#[path = "demo_cbam.rs"]
pub mod demo_cbam;

use crate::output::table;
use crate::{CliError, ExitCode, Output};
use clap::{Args, Subcommand};
use ets_cbam::carbon_price::{carbon_price_paid, Purchase};
use ets_cbam::communication::Communication;
use ets_cbam::liability::{declare, Declaration, LiabilityParams};
use ets_cbam::num::CertificateRounding;
use ets_cbam::scenario::{self, ScenarioActual, ScenarioInput};
use ets_cbam::see::{compute, InstallationInput, SeeParams};
use ets_cbam::{qreport, CbamError, Reference};
use ets_store::{Ledger, LedgerOptions, Location};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Largest input file read.
const INPUT_BYTES_MAX: u64 = 64 * 1024 * 1024;

#[derive(Subcommand)]
pub enum CbamCmd {
    /// CBAM goods by CN code and sector, and what counts for each (reference data)
    Goods {
        /// cement, fertilisers, iron_steel, aluminium, hydrogen or electricity
        #[arg(long)]
        sector: Option<String>,
    },
    /// Specific embedded emissions of an installation's goods (installation JSON file)
    See {
        #[arg(long)]
        file: PathBuf,
        /// Apply this import year's mark-up to precursor default values (default: none)
        #[arg(long)]
        precursor_markup_year: Option<i32>,
    },
    /// The operator's emissions communication to EU importers, as JSON or an Excel workbook
    Communication {
        /// Installation JSON file
        #[arg(long)]
        file: PathBuf,
        /// json or xlsx
        #[arg(long, default_value = "json")]
        format: String,
        /// Output file (required for xlsx; JSON goes to standard output without it)
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Read a communication (.json or .xlsx written by ets) and show its products
    Import {
        #[arg(long)]
        file: PathBuf,
    },
    /// An importer's CBAM liability for a year (declaration JSON file)
    Liability(LiabilityArgs),
    /// Liability per tonne and per year 2026–2034 for a product: default values against actual
    /// data, with the domestic carbon price at several levels
    Scenario(ScenarioArgs),
    /// Transitional quarterly report XML (Q4 2023 to Q4 2025) from a JSON file
    Qreport {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Carbon price effectively paid in the national market, from the registry and the prices paid
    CarbonPrice {
        /// The operator's national account, e.g. CN-100001
        #[arg(long)]
        account: String,
        /// Compliance year (allowance vintage)
        #[arg(long)]
        year: u16,
        /// Verified direct emissions of the year (t CO2e)
        #[arg(long)]
        emissions: String,
        /// A purchase QUANTITY@PRICE_CNY, e.g. 300@80.5 (repeatable)
        #[arg(long = "purchase")]
        purchases: Vec<String>,
        /// EUR per CNY, to show the price in EUR
        #[arg(long)]
        eur_per_cny: Option<String>,
    },
}

#[derive(Args)]
pub struct LiabilityArgs {
    /// Declaration JSON: {"importer", "year", "lines": [...]}
    #[arg(long)]
    file: PathBuf,
    #[command(flatten)]
    params: ParamArgs,
}

#[derive(Args)]
pub struct ParamArgs {
    /// Certificate price PERIOD=EUR for a period not in the data, e.g. 2026-Q2=72.10 or 2027-W07=80 (repeatable)
    #[arg(long = "price")]
    prices: Vec<String>,
    /// Cross-sectoral correction factor (default: the data's placeholder 1)
    #[arg(long)]
    cscf: Option<String>,
    /// Reference price (EUR) converting a carbon price paid into certificates (default: the line's price)
    #[arg(long)]
    reference_price: Option<String>,
    /// Rounding of the total certificates: none (default), up, down or half-up
    #[arg(long, default_value = "none")]
    rounding: String,
}

#[derive(Args)]
pub struct ScenarioArgs {
    /// 8-digit CN code of the product
    #[arg(long)]
    product: String,
    /// Country of origin
    #[arg(long, default_value = "CN")]
    country: String,
    /// IR2620 route where the benchmark depends on it
    #[arg(long)]
    route: Option<String>,
    /// Installation JSON for the actual data, with --process
    #[arg(long, requires = "process")]
    installation: Option<PathBuf>,
    /// The installation's process making the product
    #[arg(long)]
    process: Option<String>,
    /// EU certificate price assumed every year (EUR; default: the Q1 2026 price 75.36)
    #[arg(long, default_value = "75.36")]
    price: String,
    /// Effective domestic carbon price paid per t CO2 (CNY, net of free allocation; repeatable)
    #[arg(long = "domestic-price")]
    domestic_prices: Vec<String>,
    /// EUR per CNY
    #[arg(long, default_value = "0.128")]
    eur_per_cny: String,
    /// Tonnes exported to the EU each year
    #[arg(long, default_value = "1")]
    mass: String,
    #[arg(long, default_value_t = 2026)]
    from: i32,
    #[arg(long, default_value_t = 2034)]
    to: i32,
}

fn cbam_error(e: CbamError) -> CliError {
    match e {
        CbamError::Data(_) | CbamError::Overflow { .. } => CliError::new(ExitCode::Internal, e.to_string()),
        other => CliError::new(ExitCode::Invalid, other.to_string()),
    }
}

fn invalid(message: impl Into<String>) -> CliError {
    CliError::new(ExitCode::Invalid, message)
}

fn reference() -> Result<Reference, CliError> {
    Reference::builtin().map_err(cbam_error)
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    let meta = std::fs::metadata(path).map_err(|e| CliError::new(ExitCode::NotFound, format!("cannot read {}: {e}", path.display())))?;
    if meta.len() > INPUT_BYTES_MAX {
        return Err(invalid(format!("{}: {} bytes is more than the {INPUT_BYTES_MAX} read", path.display(), meta.len())));
    }
    std::fs::read(path).map_err(|e| CliError::new(ExitCode::NotFound, format!("cannot read {}: {e}", path.display())))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CliError> {
    let bytes = read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| invalid(format!("{}: {e}", path.display())))
}

/// Writes the whole file under a temporary name, then renames it: never half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let tmp = path.with_extension("ets-tmp");
    std::fs::write(&tmp, bytes).map_err(|e| CliError::new(ExitCode::Internal, format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::new(ExitCode::Internal, format!("cannot write {}: {e}", path.display()))
    })
}

fn dec(what: &str, text: &str) -> Result<Decimal, CliError> {
    ets_cbam::num::parse(what, text).map_err(cbam_error)
}

fn params(a: &ParamArgs) -> Result<LiabilityParams, CliError> {
    let mut p = LiabilityParams::default();
    for text in &a.prices {
        let (period, eur) =
            text.split_once('=').ok_or_else(|| invalid(format!("--price '{text}' must be PERIOD=EUR, e.g. 2026-Q2=72.10")))?;
        if !ets_cbam::reference::is_period(period) {
            return Err(invalid(format!("--price '{text}': period '{period}' must be YYYY-Qn or YYYY-Www")));
        }
        let v = dec("--price", eur)?;
        if v <= Decimal::ZERO {
            return Err(invalid(format!("--price '{text}': the price must be above zero")));
        }
        p.prices.insert(period.to_string(), v);
    }
    p.cscf = a.cscf.as_deref().map(|t| dec("--cscf", t)).transpose()?;
    p.reference_price_eur = a.reference_price.as_deref().map(|t| dec("--reference-price", t)).transpose()?;
    p.rounding = CertificateRounding::parse(&a.rounding)
        .ok_or_else(|| invalid(format!("--rounding '{}' must be none, up, down or half-up", a.rounding)))?;
    Ok(p)
}

fn opt(v: Option<Decimal>) -> String {
    v.map_or("-".into(), |d| d.normalize().to_string())
}

fn n(v: Decimal) -> String {
    v.normalize().to_string()
}

pub fn run(location: &Location, out: &Output, command: &CbamCmd) -> Result<(), CliError> {
    match command {
        CbamCmd::Goods { sector } => goods(out, sector.as_deref()),
        CbamCmd::See { file, precursor_markup_year } => {
            let r = reference()?;
            let input: InstallationInput = read_json(file)?;
            let res = compute(&input, &r, SeeParams { precursor_markup_year: *precursor_markup_year }).map_err(cbam_error)?;
            if out.is_json() {
                out.print_json(serde_json::to_value(&res).expect("json"));
                return Ok(());
            }
            println!(
                "{} ({}), {} to {}; electricity {} t CO2/MWh ({})",
                input.installation.name,
                input.installation.id,
                input.reporting_period.start,
                input.reporting_period.end,
                n(res.electricity_ef),
                res.electricity_ef_source
            );
            let rows: Vec<Vec<String>> = res
                .processes
                .iter()
                .map(|p| {
                    vec![
                        p.id.clone(),
                        p.cn.clone(),
                        p.sector.name().into(),
                        n(p.activity_level_t),
                        n(p.see.direct.round_dp(6)),
                        n(p.see.indirect.round_dp(6)),
                        n(p.see.counted.round_dp(6)),
                        opt(p.see.benchmark.map(|b| b.round_dp(6))),
                        opt(p.carbon_price_eur_per_t),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &["PROCESS", "CN", "SECTOR", "ACTIVITY_T", "SEE_DIRECT", "SEE_INDIRECT", "SEE_COUNTED", "BENCHMARK", "CP_EUR_PER_T"],
                    &rows
                )
            );
            for w in &res.warnings {
                println!("note: {w}");
            }
            Ok(())
        }
        CbamCmd::Communication { file, format, out: path } => {
            let r = reference()?;
            let input: InstallationInput = read_json(file)?;
            let res = compute(&input, &r, SeeParams::default()).map_err(cbam_error)?;
            let c = Communication::build(&input, &res);
            match (format.as_str(), path) {
                ("json", None) => {
                    println!("{}", c.to_json());
                    Ok(())
                }
                ("json", Some(p)) => {
                    write_atomic(p, c.to_json().as_bytes())?;
                    wrote(out, p, "json", &c)
                }
                ("xlsx", Some(p)) => {
                    write_atomic(p, &c.to_xlsx().map_err(cbam_error)?)?;
                    wrote(out, p, "xlsx", &c)
                }
                ("xlsx", None) => Err(invalid("--format xlsx writes a workbook: give --out FILE.xlsx")),
                (other, _) => Err(invalid(format!("--format '{other}' must be json or xlsx"))),
            }
        }
        CbamCmd::Import { file } => {
            let bytes = read(file)?;
            let c = match file.extension().and_then(|e| e.to_str()) {
                Some("xlsx") => Communication::from_xlsx(&bytes),
                Some("json") => Communication::from_json(&String::from_utf8_lossy(&bytes)),
                _ => return Err(invalid(format!("{}: expected a .json or .xlsx communication", file.display()))),
            }
            .map_err(|e| invalid(format!("{}: {e}", file.display())))?;
            if out.is_json() {
                out.print_json(serde_json::to_value(&c).expect("json"));
                return Ok(());
            }
            println!(
                "communication of {} ({}, {}), {} to {}",
                c.installation.name, c.installation.id, c.installation.country, c.reporting_period.start, c.reporting_period.end
            );
            let rows: Vec<Vec<String>> = c
                .products
                .iter()
                .map(|p| {
                    vec![
                        p.process.clone(),
                        p.cn.clone(),
                        n(p.see_direct.round_dp(6)),
                        n(p.see_indirect.round_dp(6)),
                        n(p.see_counted.round_dp(6)),
                        opt(p.benchmark_t_per_t),
                        opt(p.carbon_price_eur_per_t),
                    ]
                })
                .collect();
            print!("{}", table(&["PROCESS", "CN", "SEE_DIRECT", "SEE_INDIRECT", "SEE_COUNTED", "BENCHMARK", "CP_EUR_PER_T"], &rows));
            Ok(())
        }
        CbamCmd::Liability(a) => liability(out, a),
        CbamCmd::Scenario(a) => run_scenario(out, a),
        CbamCmd::Qreport { file, out: path } => {
            let r = reference()?;
            let input: qreport::QReportInput = read_json(file)?;
            let xml = qreport::write(&input, &r).map_err(cbam_error)?;
            write_atomic(path, xml.as_bytes())?;
            if out.is_json() {
                out.print_json(json!({"written": path.display().to_string(), "bytes": xml.len(), "goods": input.goods.len(), "period": input.period, "year": input.year}));
            } else {
                println!(
                    "wrote {} ({} bytes): QReport {} {} with {} imported goods",
                    path.display(),
                    xml.len(),
                    input.period,
                    input.year,
                    input.goods.len()
                );
            }
            Ok(())
        }
        CbamCmd::CarbonPrice { account, year, emissions, purchases, eur_per_cny } => {
            let emissions = dec("--emissions", emissions)?;
            let mut list = Vec::with_capacity(purchases.len());
            for p in purchases {
                let (q, price) =
                    p.split_once('@').ok_or_else(|| invalid(format!("--purchase '{p}' must be QUANTITY@PRICE, e.g. 300@80.5")))?;
                let quantity_t =
                    q.trim().parse::<u64>().map_err(|_| invalid(format!("--purchase '{p}': quantity '{q}' must be whole tonnes")))?;
                list.push(Purchase { quantity_t, price_cny: dec("--purchase", price)? });
            }
            let fx = eur_per_cny.as_deref().map(|t| dec("--eur-per-cny", t)).transpose()?;
            if let Location::Sqlite(path) = location {
                if !path.exists() {
                    return Err(CliError::new(ExitCode::NotFound, format!("no registry at {}; name it with --database", path.display())));
                }
            }
            let ledger = Ledger::open(location, LedgerOptions::default())?;
            let p = carbon_price_paid(ledger.registry(), account, *year, emissions, &list).map_err(cbam_error)?;
            let eur = fx.map(|f| (p.per_t_co2e_cny * f).round_dp(4));
            if out.is_json() {
                let mut v = serde_json::to_value(&p).expect("json");
                v["per_t_co2e_eur"] = json!(eur.map(|e| e.to_string()));
                out.print_json(v);
            } else {
                println!(
                    "{} ({}) {}: verified {} t; free allocation {} t; bought {} t, sold {} t; purchases listed {} t",
                    p.account,
                    p.market,
                    p.compliance_year,
                    n(p.verified_emissions_t),
                    p.free_allocated_t,
                    p.bought_t,
                    p.sold_t,
                    p.purchases_listed_t
                );
                println!(
                    "effectively paid: {} t at CNY {} = CNY {} -> CNY {} per t CO2e{}",
                    n(p.paid_t),
                    n(p.average_price_cny.round_dp(4)),
                    p.paid_cny,
                    n(p.per_t_co2e_cny.round_dp(6)),
                    eur.map(|e| format!(" (EUR {})", n(e))).unwrap_or_default()
                );
                println!("(free allocation is a rebate: only allowances bought for a shortfall count; DRAFT9 Art. 8(1)(b)(i))");
            }
            Ok(())
        }
    }
}

fn wrote(out: &Output, path: &Path, format: &str, c: &Communication) -> Result<(), CliError> {
    if out.is_json() {
        out.print_json(json!({"written": path.display().to_string(), "format": format, "products": c.products.len()}));
    } else {
        println!("wrote {} ({format}): communication of {} with {} products", path.display(), c.installation.id, c.products.len());
    }
    Ok(())
}

fn goods(out: &Output, sector: Option<&str>) -> Result<(), CliError> {
    let r = reference()?;
    let filter = match sector {
        Some(s) => Some(ets_cbam::reference::Sector::parse(s).ok_or_else(|| {
            invalid(format!("--sector '{s}' must be cement, fertilisers, iron_steel, aluminium, hydrogen or electricity"))
        })?),
        None => None,
    };
    let goods: Vec<_> = r.goods.iter().filter(|g| filter.is_none_or(|f| g.sector == f)).collect();
    if out.is_json() {
        let list: Vec<Value> = goods
            .iter()
            .map(|g| {
                let rules = r.sector_rules(g.sector);
                json!({"cn": g.cn, "sector": g.sector.name(), "counts": g.counts.name(), "threshold_mass": rules.threshold_mass,
                       "description": g.description, "source": g.source})
            })
            .collect();
        let excluded: Vec<Value> = r.excluded.iter().map(|e| json!({"cn": e.cn, "reason": e.reason})).collect();
        out.print_json(json!({"data_version": r.version, "goods": list, "excluded": excluded}));
        return Ok(());
    }
    println!("CBAM goods (reference data {}; a CN prefix covers every code below it)", r.version);
    let rows: Vec<Vec<String>> = goods
        .iter()
        .map(|g| {
            let rules = r.sector_rules(g.sector);
            vec![
                g.cn.clone(),
                g.sector.name().into(),
                g.counts.name().into(),
                if rules.threshold_mass { "yes".into() } else { "no".into() },
                g.description.clone(),
            ]
        })
        .collect();
    print!("{}", table(&["CN", "SECTOR", "COUNTS", "50T_THRESHOLD", "DESCRIPTION"], &rows));
    println!("excluded:");
    for e in &r.excluded {
        println!("  {}  {}", e.cn, e.reason);
    }
    Ok(())
}

fn liability(out: &Output, a: &LiabilityArgs) -> Result<(), CliError> {
    let r = reference()?;
    let p = params(&a.params)?;
    let decl: Declaration = read_json(&a.file)?;
    let res = declare(&decl, &r, &p).map_err(cbam_error)?;
    if out.is_json() {
        out.print_json(serde_json::to_value(&res).expect("json"));
        return Ok(());
    }
    println!(
        "importer {} {}: threshold goods {} t ({} t threshold: {})",
        res.importer,
        res.year,
        n(res.threshold.mass_counted_t),
        n(res.threshold.threshold_t),
        if res.threshold.exempt { "exempt" } else { "in scope" }
    );
    let rows: Vec<Vec<String>> = res
        .lines
        .iter()
        .map(|l| {
            vec![
                l.id.clone(),
                l.cn.clone(),
                l.country.clone(),
                format!("{:?}", l.method).to_lowercase(),
                n(l.net_mass_t),
                n(l.see_t_per_t),
                n(l.embedded_t),
                format!("{} ({})", n(l.sefa_t_per_t), l.benchmark_column),
                n(l.faa_t),
                n(l.carbon_price_reduction_t.round_dp(6)),
                n(l.certificates.round_dp(6)),
                format!("{} {}", l.price_period, l.price_eur),
                l.cost_eur.to_string(),
                if l.exempt {
                    "exempt (threshold)".into()
                } else if l.floored {
                    "floored at 0".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "LINE",
                "CN",
                "ORIGIN",
                "METHOD",
                "MASS_T",
                "SEE",
                "EMBEDDED_T",
                "SEFA",
                "FAA_T",
                "CP_REDUCTION",
                "CERTIFICATES",
                "PRICE_EUR",
                "COST_EUR",
                "NOTE"
            ],
            &rows
        )
    );
    println!(
        "total: embedded {} t, free-allocation adjustment {} t, carbon price {} t -> {} certificates ({} rounded: {}), EUR {}",
        n(res.embedded_t),
        n(res.faa_t),
        n(res.carbon_price_reduction_t.round_dp(6)),
        n(res.certificates.round_dp(6)),
        format!("{:?}", res.rounding).to_lowercase(),
        n(res.certificates_rounded.round_dp(6)),
        res.cost_eur
    );
    match &res.holding {
        Ok(h) if h.is_empty() => println!("quarterly holding: none in {}", res.year),
        Ok(h) => {
            let parts: Vec<String> = h.iter().map(|q| format!("Q{} {}", q.quarter, n(q.required.round_dp(6)))).collect();
            println!(
                "quarterly holding ({}% of defaults without mark-up, net of FAA): {}",
                n(h[0].share * Decimal::from(100)),
                parts.join(", ")
            );
        }
        Err(why) => println!("quarterly holding: not computed ({why})"),
    }
    Ok(())
}

fn run_scenario(out: &Output, a: &ScenarioArgs) -> Result<(), CliError> {
    let r = reference()?;
    let actual = match (&a.installation, &a.process) {
        (Some(file), Some(process)) => {
            let input: InstallationInput = read_json(file)?;
            let res = compute(&input, &r, SeeParams::default()).map_err(cbam_error)?;
            let p = res.process(process).ok_or_else(|| invalid(format!("--process '{process}' is not a process of {}", file.display())))?;
            let cn = ets_cbam::reference::parse_cn("--product", &a.product).map_err(cbam_error)?;
            if p.cn != cn {
                return Err(invalid(format!("--process '{process}' makes CN {}, not --product {cn}", p.cn)));
            }
            let benchmark =
                p.see.benchmark.ok_or_else(|| invalid(format!("process '{process}': no benchmark per tonne (see `ets cbam see`)")))?;
            Some(ScenarioActual { see_t_per_t: p.see.counted, benchmark_t_per_t: benchmark, own_direct_t_per_t: p.see.own_direct })
        }
        (None, Some(_)) => return Err(invalid("--process needs --installation")),
        _ => None,
    };
    let input = ScenarioInput {
        cn: a.product.clone(),
        country: a.country.clone(),
        route: a.route.clone(),
        net_mass_t: dec("--mass", &a.mass)?,
        actual,
        certificate_price_eur: dec("--price", &a.price)?,
        domestic_prices_cny: a.domestic_prices.iter().map(|t| dec("--domestic-price", t)).collect::<Result<_, _>>()?,
        eur_per_cny: dec("--eur-per-cny", &a.eur_per_cny)?,
        first_year: a.from,
        last_year: a.to,
    };
    let years = scenario::run(&input, &r, &LiabilityParams::default()).map_err(cbam_error)?;
    if out.is_json() {
        out.print_json(json!({"product": a.product, "country": a.country, "net_mass_t": a.mass, "certificate_price_eur": a.price,
                              "eur_per_cny": a.eur_per_cny, "years": serde_json::to_value(&years).expect("json")}));
        return Ok(());
    }
    let cases: Vec<String> = years.first().map(|y| y.cases.iter().map(|c| c.case.clone()).collect()).unwrap_or_default();
    let mut header = vec!["YEAR".to_string(), "CBAM_FACTOR".into(), "MARKUP".into()];
    for c in &cases {
        header.push(format!("{c}: CERT/T"));
        header.push(format!("{c}: EUR/T"));
    }
    let rows: Vec<Vec<String>> = years
        .iter()
        .map(|y| {
            let mut row = vec![y.year.to_string(), n(y.cbam_factor), n(y.markup)];
            for c in &y.cases {
                row.push(n(c.certificates_per_t.round_dp(4)));
                row.push(c.eur_per_t.to_string());
            }
            row
        })
        .collect();
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    println!(
        "CBAM liability per tonne of CN {} from {} (certificate price EUR {} every year, EUR/CNY {})",
        a.product, a.country, a.price, a.eur_per_cny
    );
    print!("{}", table(&header_refs, &rows));
    if input.net_mass_t != Decimal::ONE {
        for y in &years {
            let parts: Vec<String> = y.cases.iter().map(|c| format!("{} EUR {}", c.case, c.eur)).collect();
            println!("  {} for {} t: {}", y.year, a.mass, parts.join("; "));
        }
    }
    Ok(())
}
