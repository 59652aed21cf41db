//! `ets sim`: policy simulation from scenario files (ets-sim, issue 8). Parse and check the
//! scenario first (nothing runs on a bad file; every problem is named with its key), run it
//! with a progress bar on stderr when stderr is a terminal, then write the results: a summary
//! (or the whole JSON with `--json`) on stdout and, with `--out DIR`, `results.json` plus CSV
//! tables and SVG charts. Files are written to temporary names and renamed only once all of
//! them are written, so a failed run leaves no half-written results.

// The demo's simulation lives beside this module (main.rs declares only `sim`).
#[path = "demo_sim.rs"]
pub mod demo_sim;

use crate::output::{table, Output};
use crate::{CliError, ExitCode};
use clap::{Args, Subcommand};
use ets_sim::calibration::Calibration;
use ets_sim::scenario::Scenario;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum SimCmd {
    /// Run a scenario file: equilibrium regimes, the path over time, agents, Monte Carlo, CBAM
    Run(RunArgs),
    /// Check a scenario file without running it (every problem, each with its key)
    Check {
        /// Scenario file (TOML); examples in examples/sim/
        scenario: PathBuf,
    },
    /// Show the default calibration: the national market and the eight pilots, with sources
    Calibration,
}

#[derive(Args)]
pub struct RunArgs {
    /// Scenario file (TOML); examples in examples/sim/
    scenario: PathBuf,
    /// Write results.json, CSV tables and SVG charts into this directory (created if missing)
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bar, even on a terminal
    #[arg(long)]
    quiet: bool,
}

pub fn run(out: &Output, command: &SimCmd) -> Result<(), CliError> {
    match command {
        SimCmd::Run(args) => run_scenario(out, args),
        SimCmd::Check { scenario } => {
            let s = read(scenario)?;
            if out.is_json() {
                out.print_json(
                    json!({"status": "ok", "scenario": s.name, "markets": s.markets.iter().map(|m| &m.code).collect::<Vec<_>>()}),
                );
            } else {
                println!("{}: ok: \"{}\", {} markets", scenario.display(), s.name, s.markets.len());
            }
            Ok(())
        }
        SimCmd::Calibration => {
            let c = Calibration::default_set();
            if out.is_json() {
                out.print_json(serde_json::to_value(&c).expect("serializable"));
                return Ok(());
            }
            let rows: Vec<Vec<String>> = c
                .markets
                .iter()
                .map(|m| {
                    vec![
                        m.code.clone(),
                        m.name.clone(),
                        m.rulebook.clone().unwrap_or_default(),
                        format!("{:.1}", m.cap_mt),
                        format!("{:.1}", m.baseline_mt),
                        format!("{:.2}", m.target_price),
                        m.target_basis.clone(),
                    ]
                })
                .collect();
            print!("{}", table(&["MARKET", "NAME", "RULEBOOK", "CAP_MT", "BASELINE_MT", "TARGET_CNY_T", "PRICE_BASIS"], &rows));
            println!(
                "abatement share {} of baseline, MAC gamma {}, 2020→2024 pilot price scale {:.4}; sources and assumptions: crates/sim/data/calibration-china.toml",
                c.params.abatement_share, c.params.mac_gamma, c.price_scale
            );
            Ok(())
        }
    }
}

fn read(path: &Path) -> Result<Scenario, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::new(ExitCode::NotFound, format!("cannot read scenario {}: {e}", path.display())))?;
    Scenario::parse(&text).map_err(|errors| {
        let lines: Vec<String> = errors.0.iter().map(|e| format!("{}: {e}", path.display())).collect();
        CliError::new(ExitCode::Invalid, lines.join("\n"))
    })
}

/// A one-line bar on stderr, redrawn when the percentage changes.
struct Bar {
    enabled: bool,
    last: Option<(String, usize)>,
}

impl Bar {
    fn update(&mut self, stage: &str, done: usize, total: usize) {
        if !self.enabled || total == 0 {
            return;
        }
        let percent = done * 100 / total;
        if self.last.as_ref().is_some_and(|(s, p)| s == stage && *p == percent) {
            return;
        }
        let filled = percent * 30 / 100;
        let mut err = std::io::stderr();
        let _ = write!(err, "\r{stage:<18} [{}{}] {percent:>3}% {done}/{total}", "#".repeat(filled), " ".repeat(30 - filled));
        if done == total {
            let _ = writeln!(err);
        }
        let _ = err.flush();
        self.last = Some((stage.to_string(), percent));
    }
}

fn run_scenario(out: &Output, args: &RunArgs) -> Result<(), CliError> {
    let scenario = read(&args.scenario)?;
    let mut bar = Bar { enabled: !args.quiet && std::io::stderr().is_terminal(), last: None };
    let results = ets_sim::run::run(&scenario, &mut |stage, done, total| bar.update(stage, done, total))
        .map_err(|e| CliError::new(ExitCode::Invalid, format!("{}: {e}", args.scenario.display())))?;
    let body = serde_json::to_string_pretty(&results.json).expect("json") + "\n";
    let mut written = Vec::new();
    if let Some(dir) = &args.out {
        let mut files: Vec<(String, &[u8])> = vec![("results.json".to_string(), body.as_bytes())];
        files.extend(results.files.iter().map(|(n, c)| (n.clone(), c.as_bytes())));
        write_all(dir, &files)?;
        written = files.into_iter().map(|(n, _)| n).collect();
    }
    if out.is_json() {
        let mut value = results.json;
        if let Some(dir) = &args.out {
            value["written"] = json!({"dir": dir.display().to_string(), "files": written});
        }
        out.print_json(value);
    } else {
        for line in &results.summary {
            println!("{line}");
        }
        if let Some(dir) = &args.out {
            println!("wrote {} files to {}: {}", written.len(), dir.display(), written.join(", "));
        }
    }
    Ok(())
}

/// Writes every file under a temporary name, then renames them all; on any failure removes what
/// it wrote and reports the file.
fn write_all(dir: &Path, files: &[(String, &[u8])]) -> Result<(), CliError> {
    let fail = |path: &Path, e: std::io::Error| CliError::new(ExitCode::Internal, format!("cannot write {}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let temp = |name: &str| dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut done: Vec<PathBuf> = Vec::new();
    for (name, bytes) in files {
        let path = temp(name);
        if let Err(e) = std::fs::write(&path, bytes) {
            for p in &done {
                let _ = std::fs::remove_file(p);
            }
            let _ = std::fs::remove_file(&path);
            return Err(fail(&dir.join(name), e));
        }
        done.push(path);
    }
    for (name, _) in files {
        std::fs::rename(temp(name), dir.join(name)).map_err(|e| fail(&dir.join(name), e))?;
    }
    Ok(())
}
