//! Runs a scenario file and prints the summary (development aid; the CLI is `ets sim run`).
fn main() {
    let path = std::env::args().nth(1).expect("scenario file");
    let text = std::fs::read_to_string(&path).expect("read");
    let s = ets_sim::scenario::Scenario::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let t = std::time::Instant::now();
    let r = ets_sim::run::run(&s, &mut |_, _, _| {}).unwrap();
    for l in &r.summary {
        println!("{l}");
    }
    eprintln!("{:?}", t.elapsed());
}
