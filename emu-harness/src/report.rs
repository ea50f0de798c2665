//! The matrix report: one row per target x subject x direction, printed as a table and
//! written as JSON to `target/abi-matrix.json`.

use std::fmt::Write as _;
use std::path::Path;

/// One row of the matrix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatrixRow {
    /// `x86-linux`, `x86-win`, `x64-sysv`, `x64-win`.
    pub target: String,
    /// What was proven: `plan`, `layout`, `stub`, `thunk`.
    pub subject: String,
    /// `call` (our code calls compiled code), `callback` (compiled code calls ours), or
    /// `data` for layouts.
    pub direction: String,
    /// Cases checked.
    pub checked: u64,
    /// Cases that failed.
    pub failed: u64,
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The rows as a JSON array of objects with the fields target, subject, direction, checked,
/// failed.
pub fn to_json(rows: &[MatrixRow]) -> String {
    let mut out = String::from("[\n");
    for (i, r) in rows.iter().enumerate() {
        let _ = write!(
            out,
            "  {{\"target\": \"{}\", \"subject\": \"{}\", \"direction\": \"{}\", \"checked\": {}, \"failed\": {}}}",
            escape(&r.target),
            escape(&r.subject),
            escape(&r.direction),
            r.checked,
            r.failed
        );
        out.push_str(if i + 1 < rows.len() { ",\n" } else { "\n" });
    }
    out.push(']');
    out.push('\n');
    out
}

/// The folder each test binary writes its rows into, one JSON file per binary; `cargo
/// xtask test-all-abis` merges them into `target/abi-matrix.json` and prints the table.
pub fn rows_dir() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"));
    target.join("abi-matrix.d")
}

/// Writes `rows` as `<rows_dir>/<name>.json`.
pub fn write_rows(name: &str, rows: &[MatrixRow]) -> std::io::Result<()> {
    let dir = rows_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("{name}.json")), to_json(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_one_object_per_row_with_every_field() {
        let rows = vec![
            MatrixRow {
                target: "x64-sysv".into(),
                subject: "plan".into(),
                direction: "call".into(),
                checked: 10,
                failed: 1,
            },
            MatrixRow {
                target: "x86-win".into(),
                subject: "stub".into(),
                direction: "callback".into(),
                checked: 3,
                failed: 0,
            },
        ];
        let json = to_json(&rows);
        assert_eq!(
            json,
            "[\n  {\"target\": \"x64-sysv\", \"subject\": \"plan\", \"direction\": \"call\", \"checked\": 10, \"failed\": 1},\n  {\"target\": \"x86-win\", \"subject\": \"stub\", \"direction\": \"callback\", \"checked\": 3, \"failed\": 0}\n]\n"
        );
    }
}
