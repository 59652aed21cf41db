#!/usr/bin/env bash
# Checks that the CBAM emissions communication workbook opens in LibreOffice: ets writes it,
# LibreOffice converts it headless to CSV (which fails on a workbook it cannot open), and ets
# reads the workbook back. Needs LibreOffice (Debian: apt-get install libreoffice-calc-nogui).
# The CLI test `communication_xlsx_round_trips_through_the_importer_and_opens_in_libreoffice`
# does the same where `soffice` is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v soffice >/dev/null || { echo "soffice not found: apt-get install libreoffice-calc-nogui" >&2; exit 2; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cargo run --release -q -p ets-cli -- cbam communication --file examples/cbam/steel-installation.json --format xlsx --out "$out/communication.xlsx"
soffice --headless --convert-to csv --outdir "$out" "$out/communication.xlsx" >/dev/null
test -s "$out/communication.csv"
echo "LibreOffice opened the workbook; first rows of its first sheet:"
head -n 5 "$out/communication.csv"
cargo run --release -q -p ets-cli -- cbam import --file "$out/communication.xlsx" >/dev/null
echo "ets read the workbook back."
