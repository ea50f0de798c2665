//! Collects the emulator matrix rows the test binaries wrote (`target/abi-matrix.d/*.json`),
//! writes them as one `target/abi-matrix.json` and prints them as a table.

use crate::sys;
use std::fmt::Write as _;
use std::path::PathBuf;

/// One row: target x subject x direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub target: String,
    pub subject: String,
    pub direction: String,
    pub checked: u64,
    pub failed: u64,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| sys::workspace_root().join("target"))
}

/// Removes the rows of an earlier run, so only this run's rows are reported.
pub fn clear() {
    let _ = std::fs::remove_dir_all(target_dir().join("abi-matrix.d"));
    let _ = std::fs::remove_file(target_dir().join("abi-matrix.json"));
}

/// Parses the JSON array of flat objects the harness writes.
pub fn parse(text: &str) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for obj in text.split('{').skip(1) {
        let body = obj.split('}').next().ok_or("unterminated object")?;
        let field = |name: &str| -> Result<String, String> {
            let key = format!("\"{name}\":");
            let start = body.find(&key).ok_or(format!("missing field {name}"))? + key.len();
            let rest = body[start..].trim_start();
            match rest.strip_prefix('"') {
                Some(s) => Ok(s[..s.find('"').ok_or("unterminated string")?].to_string()),
                None => Ok(rest.split([',', '}']).next().unwrap_or("").trim().to_string()),
            }
        };
        let num = |name: &str| -> Result<u64, String> { field(name)?.parse().map_err(|e| format!("{name}: {e}")) };
        rows.push(Row {
            target: field("target")?,
            subject: field("subject")?,
            direction: field("direction")?,
            checked: num("checked")?,
            failed: num("failed")?,
        });
    }
    Ok(rows)
}

fn to_json(rows: &[Row]) -> String {
    let items: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "  {{\"target\": \"{}\", \"subject\": \"{}\", \"direction\": \"{}\", \"checked\": {}, \"failed\": {}}}",
                r.target, r.subject, r.direction, r.checked, r.failed
            )
        })
        .collect();
    format!("[\n{}\n]\n", items.join(",\n"))
}

/// Merges every row file, writes `target/abi-matrix.json`, returns the rows.
pub fn collect() -> Result<Vec<Row>, String> {
    let dir = target_dir().join("abi-matrix.d");
    let mut rows = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut files: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            rows.extend(parse(&text).map_err(|e| format!("{}: {e}", f.display()))?);
        }
    }
    rows.sort_by(|a, b| (&a.target, &a.subject, &a.direction).cmp(&(&b.target, &b.subject, &b.direction)));
    let out = target_dir().join("abi-matrix.json");
    std::fs::write(&out, to_json(&rows)).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(rows)
}

/// The rows as a fixed-width table.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!("{:<10} {:<8} {:<9} {:>8} {:>7}\n", "target", "subject", "direction", "checked", "failed");
    for r in rows {
        let _ = writeln!(out, "{:<10} {:<8} {:<9} {:>8} {:>7}", r.target, r.subject, r.direction, r.checked, r.failed);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_writes() {
        let rows = vec![Row {
            target: "x86-win".into(),
            subject: "stub".into(),
            direction: "callback".into(),
            checked: 7,
            failed: 2,
        }];
        assert_eq!(parse(&to_json(&rows)).unwrap(), rows);
    }

    #[test]
    fn a_row_without_a_field_is_an_error() {
        assert!(parse(r#"[{"target": "x86-win", "subject": "stub", "checked": 1, "failed": 0}]"#).is_err());
    }
}
