//! Writes seed corpora: `cargo run --manifest-path fuzz/Cargo.toml --bin seed` (from the
//! repository root; files go to fuzz/corpus/<target>/).

use ets_fuzz::unzip;
use ets_mrv::import::template_csv;
use ets_mrv::xlsx::template_xlsx;
use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let put = |target: &str, name: &str, bytes: &[u8]| -> std::io::Result<()> {
        fs::create_dir_all(dir.join(target))?;
        fs::write(dir.join(target).join(name), bytes)
    };
    let csv = template_csv();
    put("import_csv", "template.csv", csv.as_bytes())?;
    put("import_csv", "unmeasured.csv", format!("{csv}ENT-1,U1,coal-1,2022,6,coal,98000.5,20.1,,,,,0.99\n").as_bytes())?;
    put("import_csv", "problems.csv", format!("{csv}ENT-1,U1,coal-1,2022,5,peat,-1,0,,LAB,2022-02-30,,1.2\n\"E\n").as_bytes())?;
    let xlsx = template_xlsx();
    put("import_xlsx", "template.xlsx", &xlsx)?;
    for (i, (name, content)) in unzip(&xlsx).into_iter().enumerate() {
        let mut seed = vec![i as u8];
        seed.extend_from_slice(&content);
        put("xlsx_parts", &name.replace('/', "_"), &seed)?;
    }
    Ok(())
}
