//! Runs every example of `docs/ffi.md` (and the ```` ```lua ```` blocks of `README.md`) under
//! the `luaffi` command, and docs/ffi.md's also under Debian's `lua5.1` to `lua5.4` with the
//! module built for each, and under a `luaffi` with the vendored Lua 5.5 (x86-64 hosts, as
//! `tests/system_lua.rs`), so the documentation cannot drift from what the module does.
//!
//! Two kinds of example are extracted:
//!
//! - **Fenced blocks** (```` ```lua ````): each runs on its own, as a script. Its info string
//!   may add one word: `prelude` (the block also runs before every table example below it,
//!   until the next prelude), or `no-run: <reason>` (not run; counted and listed as skipped,
//!   and the reason is required). Any other word is an error, so a typo cannot skip a block.
//! - **Table examples**: in a table whose header has an `example` column, every inline code
//!   span of that column is one example, run on its own after the current prelude. A span
//!   `code  --> result` also checks the result of `code`'s last expression (statements may
//!   precede it, separated by `;`): a quoted result is compared as a Lua string, a numeric
//!   one as a number, anything else with `tostring` (`6LL`, `true`). Text after the span
//!   `(on x86-64)` or `(on Linux)` makes the check hold only on that host (the code still
//!   runs everywhere); `(Lua 5.4+)` skips the example on older Luas (counted as skipped). A
//!   cell of that column without a code span is an error.
//!
//! Each example runs as Lua source whose line numbers are the document's (blank lines pad it),
//! so an error message's `stdin:N:` is line N of the markdown file. The run prints how many
//! examples ran and which blocks were skipped, and why.
//!
//! Also checked: every `](#anchor)` link of `docs/ffi.md` and `README.md` names a heading of
//! the file it points into (the two link to each other's sections).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const EXE: &str = env!("CARGO_BIN_EXE_luaffi");

/// One example, as it will run.
#[derive(Debug)]
struct Example {
    /// 1-based line of the fence or table row in the markdown file.
    line: usize,
    /// What the failure message calls it.
    what: &'static str,
    /// The Lua source; its line `n` is the document's line `n`.
    source: String,
    /// The oldest Lua that can run it, from a note `(Lua 5.4+)` after a table example.
    min_lua: Option<(u32, u32)>,
}

/// What a markdown file holds: examples to run, skipped blocks, and errors of the markup.
#[derive(Debug, Default)]
struct Extracted {
    examples: Vec<Example>,
    /// `(line, reason)` of each `no-run` block.
    skipped: Vec<(usize, String)>,
    /// `line: what is wrong` for markup the extractor refuses.
    errors: Vec<String>,
}

/// Line 1 of every generated source: the check a `-->` result makes. `want` is the text after
/// `-->`; `checked` is false when the example's host condition does not hold.
const EXPECT_FN: &str = "local function __docs_expect(got, want, checked) \
if not checked then return end \
local ok \
if want:match('^\".*\"$') then ok = got == (loadstring or load)('return ' .. want)() \
elseif tonumber(want) and type(got) == 'number' then ok = got == tonumber(want) \
else ok = tostring(got) == want end \
if not ok then error(('--> %s expected, got %s (a %s)'):format(want, tostring(got), type(got)), 2) end \
end";

/// Appends `code` to `source` so that its first line lands on line `line` of the source.
fn place(source: &mut String, line: usize, code: &str) {
    let lines = source.matches('\n').count() + 1;
    assert!(lines <= line, "code for line {line} after line {lines}");
    source.push_str(&"\n".repeat(line - lines));
    source.push_str(code);
}

/// The inline code spans of a table cell, each with the text that follows it up to the next span.
fn code_spans(cell: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut rest = cell;
    while let Some(start) = rest.find('`') {
        if let Some((_, after)) = out.last_mut() {
            after.push_str(&rest[..start]);
        }
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let fence = "`".repeat(ticks);
        let body = &rest[start + ticks..];
        let Some(end) = body.find(&fence) else { break };
        out.push((body[..end].trim().to_string(), String::new()));
        rest = &body[end + ticks..];
    }
    if let Some((_, after)) = out.last_mut() {
        after.push_str(rest);
    }
    out
}

/// The cells of a table row, split at pipes that are not escaped (`\|`).
fn table_cells(row: &str) -> Vec<String> {
    let row = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = vec![String::new()];
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => cells.last_mut().unwrap().push(chars.next().unwrap()),
            '|' => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    cells.into_iter().map(|c| c.trim().to_string()).collect()
}

/// Splits `code` at its last `;` outside strings and brackets: the statements and the final
/// expression.
fn split_last_expression(code: &str) -> (&str, &str) {
    let (mut depth, mut quote, mut cut) = (0i32, None, None);
    for (i, c) in code.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ';') if depth == 0 => cut = Some(i),
            _ => {}
        }
    }
    match cut {
        Some(i) => (&code[..i + 1], code[i + 1..].trim()),
        None => ("", code.trim()),
    }
}

/// The Lua condition of a host note `(on ...)` or `(on ...; more text)` after a checked
/// example, `Ok(None)` without one.
fn host_condition(after: &str) -> Result<Option<&'static str>, String> {
    let after = after.trim();
    let Some(note) = after.strip_prefix("(on ").and_then(|n| n.split([')', ';']).next()) else { return Ok(None) };
    match note {
        "x86-64" => Ok(Some("require('ffi').arch == 'x64'")),
        "x86" => Ok(Some("require('ffi').arch == 'x86'")),
        "Linux" => Ok(Some("require('ffi').os == 'Linux'")),
        "Windows" => Ok(Some("require('ffi').os == 'Windows'")),
        other => Err(format!("unknown host note `(on {other})`")),
    }
}

/// The Lua version of a note `(Lua 5.X+)` after a table example, `Ok(None)` without one.
fn version_note(after: &str) -> Result<Option<(u32, u32)>, String> {
    let Some(note) = after.trim().strip_prefix("(Lua ") else { return Ok(None) };
    let version = note.split(')').next().unwrap_or("");
    let parsed = version
        .strip_suffix('+')
        .and_then(|v| v.split_once('.'))
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
    parsed.map(Some).ok_or_else(|| format!("a version note must read `(Lua 5.X+)`, not `(Lua {version})`"))
}

/// Extracts the examples of a markdown text.
fn extract(markdown: &str) -> Extracted {
    let mut out = Extracted::default();
    let lines: Vec<&str> = markdown.lines().collect();
    // The current prelude: its line and code.
    let mut prelude: Option<(usize, String)> = None;
    // The index of the `example` column of the table being read.
    let mut example_column: Option<usize> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let n = i + 1;
        if let Some(info) = line.trim_start().strip_prefix("```") {
            let close = (i + 1..lines.len()).find(|&j| lines[j].trim_start().starts_with("```"));
            let Some(close) = close else {
                out.errors.push(format!("{n}: a fenced block that is never closed"));
                break;
            };
            let mut words = info.trim().splitn(2, char::is_whitespace);
            if words.next() == Some("lua") {
                let code = lines[i + 1..close].join("\n");
                let attr = words.next().unwrap_or("").trim();
                if let Some(reason) = attr.strip_prefix("no-run:") {
                    if reason.trim().is_empty() {
                        out.errors.push(format!("{n}: `no-run:` without a reason"));
                    } else {
                        out.skipped.push((n, reason.trim().to_string()));
                    }
                } else if attr.is_empty() || attr == "prelude" {
                    let mut source = EXPECT_FN.to_string();
                    place(&mut source, n + 1, &code);
                    out.examples.push(Example { line: n, what: "block", source, min_lua: None });
                    if attr == "prelude" {
                        prelude = Some((n + 1, code));
                    }
                } else {
                    out.errors.push(format!("{n}: unknown attribute `{attr}` of a lua block"));
                }
            }
            example_column = None;
            i = close + 1;
            continue;
        }
        if line.trim_start().starts_with('|') {
            let cells = table_cells(line);
            let is_separator = cells.iter().all(|c| !c.is_empty() && c.chars().all(|c| matches!(c, '-' | ':')));
            let header = i == 0 || !lines[i - 1].trim_start().starts_with('|');
            if header {
                example_column = cells.iter().position(|c| c == "example");
            } else if let (Some(col), false) = (example_column, is_separator) {
                let cell = cells.get(col).map(String::as_str).unwrap_or("");
                let spans = code_spans(cell);
                if spans.is_empty() {
                    out.errors.push(format!("{n}: an example cell without code: `{cell}`"));
                }
                for (span, after) in spans {
                    let min_lua = match version_note(&after) {
                        Ok(v) => v,
                        Err(e) => {
                            out.errors.push(format!("{n}: {e}"));
                            continue;
                        }
                    };
                    let mut source = EXPECT_FN.to_string();
                    if let Some((at, code)) = &prelude {
                        place(&mut source, *at, code);
                    }
                    let code = match span.split_once("-->") {
                        None => format!("do {span} end"),
                        Some((code, want)) => {
                            let cond = match host_condition(&after) {
                                Ok(cond) => cond.unwrap_or("true"),
                                Err(e) => {
                                    out.errors.push(format!("{n}: {e}"));
                                    continue;
                                }
                            };
                            let (stmts, expr) = split_last_expression(code.trim());
                            format!("do {stmts} __docs_expect(({expr}), [==[{}]==], {cond}) end", want.trim())
                        }
                    };
                    place(&mut source, n, &code);
                    out.examples.push(Example { line: n, what: "table example", source, min_lua });
                }
            }
        } else {
            example_column = None;
        }
        i += 1;
    }
    out
}

/// A Lua interpreter the examples run under: the `luaffi` command, or a system `lua5.X` with
/// the module on its `package.cpath`.
struct Lua {
    program: PathBuf,
    /// `LUA_CPATH` for a system Lua: only the module built for it.
    cpath: Option<PathBuf>,
    /// Its `_VERSION`, as `(5, 4)`.
    version: (u32, u32),
    /// What the report calls it.
    label: String,
}

impl Lua {
    /// `program` with `cpath`; asks it for its version, and that `ffi` loads.
    fn new(program: PathBuf, cpath: Option<PathBuf>) -> Lua {
        let mut lua = Lua { program, cpath, version: (0, 0), label: String::new() };
        let out = lua
            .command()
            .args(["-e", "io.write(_VERSION, ' ', require('ffi').arch)"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", lua.program.display()));
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        let version = said.strip_prefix("Lua ").and_then(|v| v.split(' ').next()).and_then(|v| v.split_once('.'));
        lua.version = version.and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?))).unwrap_or_else(|| {
            panic!("{}: no Lua with ffi: {said:?} {}", lua.program.display(), String::from_utf8_lossy(&out.stderr))
        });
        let name = lua.program.file_name().unwrap_or_default().to_string_lossy().into_owned();
        lua.label = format!("{name} (Lua {}.{})", lua.version.0, lua.version.1);
        lua
    }

    /// The `luaffi` command of this build.
    fn luaffi() -> Lua {
        Lua::new(PathBuf::from(EXE), None)
    }

    /// A command running the interpreter with nothing from the environment changing what it
    /// loads (`LUA_INIT`, `LUA_PATH`, `LUA_CPATH` and their versioned names).
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        for name in ["LUA_INIT", "LUA_PATH", "LUA_CPATH"] {
            cmd.env_remove(name);
            for v in ["5_1", "5_2", "5_3", "5_4", "5_5"] {
                cmd.env_remove(format!("{name}_{v}"));
            }
        }
        if let Some(cpath) = &self.cpath {
            cmd.env("LUA_CPATH", cpath);
        }
        cmd
    }

    /// Runs one example as `lua -`; `Err` holds what it printed.
    fn run(&self, example: &Example) -> Result<(), String> {
        let mut child = self
            .command()
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.program.display()));
        child.stdin.take().expect("piped").write_all(example.source.as_bytes()).expect("write the example");
        let out = child.wait_with_output().expect("wait for lua");
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}({})",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                out.status
            ))
        }
    }
}

/// Runs every example of `markdown` under `lua` (those whose version note it is too old for
/// are skipped); returns the failures as `name:line: ...` texts and prints how many ran and
/// were skipped.
fn run_markdown(name: &str, markdown: &str, lua: &Lua) -> (Extracted, Vec<String>) {
    let extracted = extract(markdown);
    let mut failures: Vec<String> = extracted.errors.iter().map(|e| format!("{name}:{e}")).collect();
    let (mut ran, mut too_old) = (0, Vec::new());
    for ex in &extracted.examples {
        if ex.min_lua.is_some_and(|v| lua.version < v) {
            too_old.push(ex.line);
            continue;
        }
        ran += 1;
        if let Err(e) = lua.run(ex) {
            let first = ex.source.lines().nth(ex.line - 1).unwrap_or("").trim();
            failures
                .push(format!("{name}:{}: {} failed (stdin:N is line N of {name}): {first}\n{e}", ex.line, ex.what));
        }
    }
    println!(
        "{name} under {}: {ran} example(s) ran, {} failed, {} skipped{}{}",
        lua.label,
        failures.len(),
        extracted.skipped.len() + too_old.len(),
        extracted.skipped.iter().map(|(l, r)| format!("\n  skipped line {l}: {r}")).collect::<String>(),
        too_old.iter().map(|l| format!("\n  skipped line {l}: needs a newer Lua")).collect::<String>(),
    );
    (extracted, failures)
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a markdown text's headings (outside fenced blocks).
fn anchors(markdown: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// Links `](target#anchor)` of `markdown` whose anchor is not a heading of the file it names:
/// `targets` maps a link target (`""` for the file itself) to that file's text. Links to other
/// files are not checked. Each finding is `line: link`.
fn broken_anchors(markdown: &str, targets: &[(&str, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, line) in markdown.lines().enumerate() {
        for link in line.split("](").skip(1) {
            let Some(link) = link.split(')').next() else { continue };
            let Some((file, anchor)) = link.split_once('#') else { continue };
            let Some((_, text)) = targets.iter().find(|(name, _)| *name == file) else { continue };
            if !anchors(text).iter().any(|a| a == anchor) {
                out.push(format!("{}: {link}", i + 1));
            }
        }
    }
    out
}

fn read_doc(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_example_of_docs_ffi_md_runs() {
    let (extracted, failures) = run_markdown("docs/ffi.md", &read_doc("docs/ffi.md"), &Lua::luaffi());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The reference has a Getting started section of blocks and an example per function.
    let blocks = extracted.examples.iter().filter(|e| e.what == "block").count();
    assert!(blocks >= 5 && extracted.examples.len() >= 40, "only {} examples found", extracted.examples.len());
}

#[test]
fn every_lua_block_of_the_readme_runs() {
    let (_, failures) = run_markdown("README.md", &read_doc("README.md"), &Lua::luaffi());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Builds `ffi.so` for Lua `version` as `tests/system_lua.rs` does (same features, same shared
/// target directory `target/lua-modules`, so whichever test builds it second finds it built;
/// cargo runs test binaries one at a time), into `target/lua<version>/ffi.so`. Returns the
/// `LUA_CPATH` that finds it.
#[cfg(target_arch = "x86_64")]
fn module_cpath(version: &str) -> PathBuf {
    let features = format!("module,lua{}", version.replace('.', ""));
    let artifact = format!("{}lua_adapter{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let dest = build_shared(&["--lib", "--no-default-features", "--features", &features], &artifact, version, "ffi.so");
    dest.parent().unwrap().join("?.so")
}

/// `cargo build -p lua-adapter <args>` into the target directory shared with
/// `tests/system_lua.rs` (`target/lua-modules`), then `artifact` copied to
/// `target/lua<version>/<name>`; returns the copy.
#[cfg(target_arch = "x86_64")]
fn build_shared(args: &[&str], artifact: &str, version: &str, name: &str) -> PathBuf {
    static CARGO_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = CARGO_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("tmp is in the target directory");
    let shared = target.join("lua-modules");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args(["build", "-p", "lua-adapter"])
        .args(args)
        .current_dir(root)
        .env("CARGO_TARGET_DIR", &shared)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
    assert!(
        out.status.success(),
        "building {name} for Lua {version} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = shared.join("debug").join(artifact);
    let dest = target.join(format!("lua{version}")).join(name);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    // Through a temporary name: a process still running the previous file keeps it.
    let tmp = dest.with_extension("docs-tmp");
    std::fs::copy(&built, &tmp).unwrap_or_else(|e| panic!("copying {}: {e}", built.display()));
    std::fs::rename(&tmp, &dest).unwrap();
    dest
}

/// docs/ffi.md's examples under Debian's `lua<version>` with the module built for it, as the
/// document says they run on every Lua (an interpreter that is missing fails the test).
#[cfg(target_arch = "x86_64")]
fn docs_under_system_lua(version: &str) {
    let program = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(format!("lua{version}"))).find(|p| p.is_file()))
        .unwrap_or_else(|| panic!("lua{version} is not installed (apt-get install lua{version})"));
    let lua = Lua::new(program, Some(module_cpath(version)));
    let (_, failures) = run_markdown("docs/ffi.md", &read_doc("docs/ffi.md"), &lua);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn docs_ffi_md_under_lua5_1() {
    docs_under_system_lua("5.1");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn docs_ffi_md_under_lua5_2() {
    docs_under_system_lua("5.2");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn docs_ffi_md_under_lua5_3() {
    docs_under_system_lua("5.3");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn docs_ffi_md_under_lua5_4() {
    docs_under_system_lua("5.4");
}

/// docs/ffi.md's examples under Lua 5.5: the `luaffi` command with mlua's vendored 5.5 (Debian
/// has no lua5.5), built as `tests/system_lua.rs` builds it, into the same shared target
/// directory.
#[cfg(target_arch = "x86_64")]
#[test]
fn docs_ffi_md_under_luaffi_5_5() {
    let features = ["--bin", "luaffi", "--no-default-features", "--features", "lua55,vendored"];
    let dest = build_shared(&features, "luaffi", "5.5", "luaffi-docs");
    let lua = Lua::new(dest, None);
    assert_eq!(lua.version, (5, 5), "{}", lua.label);
    let (extracted, failures) = run_markdown("docs/ffi.md", &read_doc("docs/ffi.md"), &lua);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(extracted.examples.len() > 40, "only {} examples ran under Lua 5.5", extracted.examples.len());
}

/// Every `#anchor` link of docs/ffi.md names a heading, of itself or of the README.
#[test]
fn links_of_docs_ffi_md_name_existing_headings() {
    let (doc, readme) = (read_doc("docs/ffi.md"), read_doc("README.md"));
    let broken = broken_anchors(&doc, &[("", &doc), ("../README.md", &readme)]);
    assert!(broken.is_empty(), "docs/ffi.md links to headings that do not exist:\n{}", broken.join("\n"));
    let from_readme = broken_anchors(&readme, &[("", &readme), ("docs/ffi.md", &doc)]);
    assert!(from_readme.is_empty(), "README.md links to headings that do not exist:\n{}", from_readme.join("\n"));
}

/// A link to a heading that is not there is caught; one that is, and links elsewhere, are not.
#[test]
fn a_link_to_a_missing_heading_is_caught() {
    let md = "# Doc\n\n## NULL pointers: `p == nil`\n\n[ok](#null-pointers-p--nil) [web](https://x.invalid/#y)\n\
[gone](#no-such-heading) [other](../README.md#install)\n";
    let readme = "# R\n\n## Install\n";
    assert_eq!(broken_anchors(md, &[("", md), ("../README.md", readme)]), ["6: #no-such-heading"]);
    assert_eq!(
        broken_anchors(md, &[("", md), ("../README.md", "# R\n")]),
        ["6: #no-such-heading", "6: ../README.md#install"]
    );
}

/// A block that raises an error fails the run, named by its line.
#[test]
fn a_failing_block_is_caught_with_its_line() {
    let md = "# Doc\n\ntext\n\n```lua\nlocal ffi = require 'ffi'\nassert(ffi.sizeof('int') == 5)\n```\n\n```lua\nassert(true)\n```\n";
    let (extracted, failures) = run_markdown("synthetic.md", md, &Lua::luaffi());
    assert_eq!(extracted.examples.len(), 2);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].starts_with("synthetic.md:5: block failed"), "{}", failures[0]);
    // The error's line is the document's.
    assert!(failures[0].contains("stdin:7: assertion failed"), "{}", failures[0]);
}

/// A table example whose `-->` result is wrong fails; right ones of each kind pass; the prelude
/// runs before them.
#[test]
fn a_wrong_table_result_is_caught() {
    let md = "```lua prelude\nlocal ffi = require 'ffi'\nlocal two = 2\n```\n\n\
| function | example |\n| --- | --- |\n\
| a | `two + 1  --> 3` |\n\
| b | `ffi.sizeof(\"int\")  --> 5` |\n\
| c | `local s = 'x'; s .. 'y'  --> \"xy\"` |\n\
| d | `ffi.new(\"int64_t\", 5) + 1  --> 6LL` |\n\
| e | `ffi.new(\"int64_t\", 5) + 1  --> 7LL` |\n\
| f | `ffi.arch  --> \"no such arch\"` (on Windows) |\n\
| g | `ffi.os  --> \"no such os\"` (on Linux) |\n\
| h | `error('plain statements run too')` |\n\
| i | no code |\n";
    let (extracted, failures) = run_markdown("synthetic.md", md, &Lua::luaffi());
    // The prelude block and a to h; i has no code.
    assert_eq!(extracted.examples.len(), 9, "{:#?}", extracted.examples);
    let lines: Vec<&str> = failures.iter().map(|f| f.split(':').nth(1).unwrap()).collect();
    // First the markup error (i, line 16), then b (9) and e (12), whose results are wrong; f
    // is not checked off Windows, g is checked on Linux; h raises.
    let mut expected = vec!["16", "9", "12", "15"];
    if cfg!(target_os = "linux") {
        expected.insert(3, "14");
    }
    assert_eq!(lines, expected, "{}", failures.join("\n\n"));
    assert!(failures[0].contains("an example cell without code"), "{}", failures[0]);
    assert!(failures[1].contains("--> 5 expected, got 4 (a number)"), "{}", failures[1]);
    assert!(failures[2].contains("--> 7LL expected, got 6LL"), "{}", failures[2]);
}

/// A `(Lua 5.X+)` note skips a table example on an older Lua and runs it on a newer one; a
/// note that is not a version is an error.
#[test]
fn version_notes_skip_examples_on_older_luas() {
    let md = "| function | example |\n| --- | --- |\n\
| a | `error('needs Lua 9.9')` (Lua 9.9+) |\n\
| b | `error('runs on 5.1 and later')` (Lua 5.1+) |\n\
| c | `x = 1` (Lua five+) |\n";
    let (extracted, failures) = run_markdown("synthetic.md", md, &Lua::luaffi());
    assert_eq!(extracted.examples.iter().map(|e| e.min_lua).collect::<Vec<_>>(), [Some((9, 9)), Some((5, 1))]);
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].starts_with("synthetic.md:5: a version note must read `(Lua 5.X+)`"), "{failures:?}");
    assert!(failures[1].starts_with("synthetic.md:4: table example failed"), "{failures:?}");
}

/// `no-run` blocks are skipped and counted, but only with a reason; an unknown attribute is an
/// error rather than a silent skip.
#[test]
fn skipped_blocks_need_a_reason_and_unknown_attributes_are_errors() {
    let md = "```lua no-run: needs a library no test machine has\nerror()\n```\n\n\
```lua no-run:\nerror()\n```\n\n```lua norun\nerror()\n```\n";
    let (extracted, failures) = run_markdown("synthetic.md", md, &Lua::luaffi());
    assert!(extracted.examples.is_empty());
    assert_eq!(extracted.skipped, [(1, "needs a library no test machine has".to_string())]);
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].contains("synthetic.md:5: `no-run:` without a reason"), "{failures:?}");
    assert!(failures[1].contains("synthetic.md:9: unknown attribute `norun`"), "{failures:?}");
}
