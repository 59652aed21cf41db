//! `ets exchange` end to end: the README's walkthrough runs as written, refusals exit with the
//! rule's reason and change nothing, and a settlement left undone by an interruption is carried
//! out by the next command.

mod common;

use common::Ets;

/// The shell lines of the README's exchange walkthrough, without the `export` line and comments.
fn walkthrough() -> Vec<(String, bool)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme.split("## Trading with `ets exchange`").nth(1).expect("section");
    let block = section.split("```sh").nth(1).unwrap().split("```").next().unwrap();
    block
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("ets "))
        .map(|l| {
            let refused = l.contains("# refused");
            (l.split('#').next().unwrap().trim().to_string(), refused)
        })
        .collect()
}

fn args(line: &str) -> Vec<&str> {
    line.split_whitespace().skip(1).collect()
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let ets = Ets::new_at("trading.db", "2025-06-02");
    let mut outputs = Vec::new();
    for (line, refused) in walkthrough() {
        let r = ets.run(&args(&line));
        if refused {
            assert_eq!(r.code, 5, "{line}: {}", r.stderr);
            assert!(r.stderr.contains("Listed price ¥88.01 is outside the band [¥72.00, ¥88.00]"), "{}", r.stderr);
            assert!(r.stdout.is_empty());
        } else {
            assert_eq!(r.code, 0, "{line}: {}", r.stderr);
        }
        outputs.push((line, r.stdout));
    }
    let out = |prefix: &str| outputs.iter().find(|(l, _)| l.starts_with(prefix)).map(|(_, o)| o.clone()).unwrap();
    assert!(out("ets exchange order --as bravo").contains("trade 1: 5,000 t CEA-2025 at ¥81.00"), "{outputs:?}");
    assert!(out("ets exchange book").contains("81.00  15,000"));
    let close = out("ets exchange close-day");
    assert!(close.contains("CEA-2025: close ¥81.00 (listed 5,000 t, block 0 t)"), "{close}");
    assert!(close.contains("settled 1 trade(s) due 2025-06-02: ¥405,000.00"), "{close}");
    assert!(out("ets exchange bars").contains("2025-06-02  81.00  81.00  81.00  81.00     5,000"));
    assert!(out("ets holdings CN-100003").contains("5,000"));
    let audit = out("ets audit verify");
    assert!(
        audit.contains("exchange journal ok") && audit.contains("1 trades; every settlement instruction is in the registry"),
        "{audit}"
    );
    // Cash moved with the units: delivery versus payment.
    let alpha = ets.ok(&["exchange", "account", "alpha"]);
    assert!(alpha.starts_with("cash ¥405,000.00 (reserved ¥0.00, owed ¥0.00)"), "{alpha}");
    let bravo = ets.ok(&["exchange", "account", "bravo"]);
    assert!(bravo.starts_with("cash ¥595,000.00 (reserved ¥0.00, owed ¥0.00)"), "{bravo}");
}

#[test]
fn refusals_name_the_rule_and_write_nothing() {
    let ets = Ets::new_at("trading.db", "2025-06-02");
    for (line, _) in walkthrough().iter().take_while(|(l, _)| !l.starts_with("ets exchange order")) {
        ets.ok(&args(line));
    }
    let before = ets.rows(&["SELECT CAST(COUNT(*) AS TEXT) FROM exchange_journal", "SELECT CAST(COUNT(*) AS TEXT) FROM journal"]);
    let cases: [(&[&str], i32, &str); 6] = [
        (
            &[
                "exchange",
                "order",
                "--as",
                "alpha",
                "--instrument",
                "CEA-2025",
                "--side",
                "sell",
                "--price",
                "80.00",
                "--quantity",
                "100000",
                "--time",
                "10:00",
            ],
            5,
            "an order of 100000 t must go to block trading: listed orders are below 100000 t",
        ),
        (
            &[
                "exchange",
                "order",
                "--as",
                "alpha",
                "--instrument",
                "CEA-2025",
                "--side",
                "sell",
                "--price",
                "80.00",
                "--quantity",
                "10",
                "--time",
                "12:00",
            ],
            5,
            "listed trading in CEA-2025 is closed at 12:00 local time (sessions: 09:30-11:30, 13:00-15:00)",
        ),
        (
            &[
                "exchange",
                "order",
                "--as",
                "alpha",
                "--instrument",
                "CEA-2025",
                "--side",
                "sell",
                "--price",
                "80.00",
                "--quantity",
                "50001",
                "--time",
                "10:00",
            ],
            5,
            "member alpha has 50000 t of CEA-2025 lodged and free to sell; 50001 t needed",
        ),
        (
            &[
                "exchange",
                "block",
                "d1",
                "--as",
                "alpha",
                "--counterparty",
                "bravo",
                "--instrument",
                "CEA-2025",
                "--side",
                "sell",
                "--price",
                "80.00",
                "--quantity",
                "99999",
                "--time",
                "13:30",
            ],
            5,
            "an order of 99999 t must go to listed trading: block orders are at least 100000 t",
        ),
        (
            &[
                "exchange",
                "order",
                "--as",
                "bravo",
                "--instrument",
                "CEA-2025",
                "--side",
                "buy",
                "--price",
                "80.00",
                "--quantity",
                "20000",
                "--time",
                "10:00",
            ],
            5,
            "member bravo has ¥1,000,000.00 free cash; ¥1,600,000.00 needed",
        ),
        (
            &[
                "exchange",
                "order",
                "--as",
                "alpha",
                "--instrument",
                "CEA-2099",
                "--side",
                "sell",
                "--price",
                "80.00",
                "--quantity",
                "1",
                "--time",
                "10:00",
            ],
            4,
            "unknown instrument CEA-2099",
        ),
    ];
    for (args, code, message) in cases {
        let r = ets.run(args);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(message), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty());
    }
    assert_eq!(
        before,
        ets.rows(&["SELECT CAST(COUNT(*) AS TEXT) FROM exchange_journal", "SELECT CAST(COUNT(*) AS TEXT) FROM journal"]),
        "refusals wrote nothing"
    );
}

#[test]
fn a_primary_auction_runs_from_a_bid_file() {
    let ets = Ets::new_at("trading.db", "2025-06-02");
    for (line, _) in walkthrough().iter().take_while(|(l, _)| !l.starts_with("ets exchange open-day")) {
        ets.ok(&args(line));
    }
    ets.ok(&["issue", "--unit", "CEA:2025", "--quantity", "10000", "--to", "CN-RESERVE", "--as", "cn-auth"]);
    ets.ok(&["exchange", "member", "authority", "--account", "CN=CN-RESERVE"]);
    ets.ok(&["exchange", "deposit", "alpha", "1000000"]);
    let auction = |id: &str, bids: &str| {
        std::fs::write(ets.path("bids.csv"), bids).unwrap();
        let bids = ets.path("bids.csv");
        let bids = bids.to_str().unwrap().to_string();
        ets.run(&[
            "exchange",
            "auction",
            id,
            "--instrument",
            "CEA-2025",
            "--seller",
            "authority",
            "--authority",
            "cn-auth",
            "--volume",
            "10000",
            "--reserve",
            "60.00",
            "--bids",
            &bids,
            "--lot",
            "500",
            "--seed",
            "7",
        ])
    };
    // A bid file with a bid its bidder's cash does not cover is refused whole: nothing set aside.
    let r = auction("a0", "alpha,80.00,6000\nalpha,79.00,8000\n");
    assert_eq!(r.code, 5, "refused: {}", r.stderr);
    assert!(r.stderr.contains("bid 2 of alpha: ¥632,000.00 is not covered by the bid guarantee (¥520,000.00 free)"), "{}", r.stderr);
    assert!(ets.ok(&["holdings", "CN-RESERVE"]).contains("10,000"), "the reserve keeps its units free");
    // mechanisms.md T5's bids clear at 70.00, 12.5% below the secondary market's 80.00: cancelled.
    let t5 = "bidder,price,quantity\nalpha,70.10,3000\nbravo,70.05,4000\nalpha,70.00,2000\nbravo,70.00,3000\nalpha,69.90,1000\n";
    let r = auction("a1", t5);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("auction a1 cancelled: clearing price ¥70.00 is more than 10.00% below the secondary market's ¥80.00"),
        "{}",
        r.stdout
    );
    // Near the market it clears: uniform price, the marginal bid gets the remainder.
    let r = auction("a2", "alpha,79.00,6000\nbravo,78.00,6000\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("auction a2: 10,000 t sold at ¥78.00"), "{}", r.stdout);
    assert!(ets.ok(&["holdings", "CN-100002"]).contains("106,000"), "alpha's 100,000 allocated + 6,000 won");
    assert!(ets.ok(&["holdings", "CN-100003"]).contains("4,000"));
    // A malformed bid file is refused whole, naming every bad line.
    let r = auction("a3", "alpha,79.x,6000\nbravo,78.00\n");
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("line 1: amount '79.x' has 'x'") && r.stderr.contains("line 2: expected bidder,price,quantity"),
        "{}",
        r.stderr
    );
}
