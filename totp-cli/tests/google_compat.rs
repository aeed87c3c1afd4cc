//! The same flags and the same answers (piped on standard input, as
//! scripts give them) to Google's `google-authenticator` (Debian 20191231)
//! and to `totp-enroll`: the files must have the same lines (secret and
//! scratch codes aside) and mode, and the exit codes must be equal, except
//! in the rows marked with a difference that totp-enroll(1) documents.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use support::*;

/// What the row expects of the two exit codes.
#[derive(Debug, Clone, Copy)]
enum Exit {
    Same(i32),
    /// A documented difference: (google-authenticator, totp-enroll, why).
    Differs(i32, i32, &'static str),
    /// google-authenticator refuses (with this code) what totp-enroll
    /// accepts and enrolls (documented).
    OnlyOurs(i32, &'static str),
}

struct Row {
    flags: &'static [&'static str],
    answers: &'static str,
    /// A file already there before the run.
    existing: bool,
    exit: Exit,
}

const OLD: &[u8] = b"JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n12345678\n";

#[rustfmt::skip]
const ROWS: &[Row] = &[
    Row { flags: &[], answers: "y\n-1\ny\ny\nn\ny\n", existing: false, exit: Exit::Same(0) },
    Row { flags: &[], answers: "y\n-1\ny\nn\ny\nn\n", existing: false, exit: Exit::Same(0) },
    Row { flags: &[], answers: "n\ny\ny\nn\n", existing: false, exit: Exit::Same(0) },
    Row { flags: &["-c"], answers: "y\nn\ny\n", existing: false, exit: Exit::Same(0) },
    Row { flags: &["-f"], answers: "y\n-1\ny\nn\ny\n", existing: false, exit: Exit::Same(0) },
    Row { flags: &["-f", "-q"], answers: "n\ny\nn\n", existing: false, exit: Exit::Same(0) },
    Row { flags: &["-t", "-d", "-f", "-r", "3", "-R", "30", "-w", "3", "-C"], answers: "", existing: false, exit: Exit::Same(0) },
    Row { flags: &["-t", "-D", "-f", "-u", "-W", "-S", "20", "-e", "0", "-C"], answers: "", existing: false, exit: Exit::Same(0) },
    Row { flags: &["-t", "-d", "-f", "-r", "10", "-R", "600", "-w", "21", "-S", "60", "-C"], answers: "", existing: false, exit: Exit::Same(0) },
    Row { flags: &["-c", "-S", "60", "-f", "-u", "-W", "-C"], answers: "", existing: false, exit: Exit::Same(0) },
    Row { flags: &["-c", "-f", "-u", "-w", "5", "-e", "10", "-q"], answers: "", existing: false, exit: Exit::Same(0) },
    Row { flags: &["--no-conf", "--time", "--disallow", "--force", "--rate-l=3", "--rate-t=30", "--window=3"], answers: "", existing: false, exit: Exit::Same(0) },
    Row { flags: &["-l", "", "-i", "a:b", "-t", "-d", "-u", "-W", "-f", "-C"], answers: "", existing: false, exit: Exit::Same(0) },
    Row { flags: &["-q", "-t"], answers: "y\ny\nn\ny\n", existing: false, exit: Exit::Same(0) },
    Row { flags: &["-t", "-d", "-u", "-W"], answers: "000000\n123\n-1\ny\n", existing: false, exit: Exit::Same(0) },
    Row { flags: &["-t", "-d", "-u", "-W", "-C"], answers: "y\n", existing: true, exit: Exit::Same(0) },
    Row { flags: &["-f", "-t", "-d", "-u", "-W", "-C"], answers: "", existing: true, exit: Exit::Same(0) },
    Row { flags: &["-t", "-d", "-u", "-W", "-C"], answers: "n\n", existing: true, exit: Exit::Differs(0, 5, "declining to write is a cancel") },
    Row { flags: &["-t", "-d", "-u", "-W", "-C"], answers: "n\n", existing: false, exit: Exit::Differs(0, 5, "declining to write is a cancel") },
    Row { flags: &["-t", "-d", "-u", "-W"], answers: "", existing: false, exit: Exit::Differs(1, 5, "end of input is a cancel") },
    Row { flags: &["-t", "-c"], answers: "", existing: false, exit: Exit::Differs(1, 2, "usage errors exit 2") },
    Row { flags: &["-c", "-d"], answers: "", existing: false, exit: Exit::Differs(1, 2, "usage errors exit 2") },
    Row { flags: &["-x"], answers: "", existing: false, exit: Exit::Differs(1, 2, "usage errors exit 2") },
    Row { flags: &["-e", "11"], answers: "", existing: false, exit: Exit::Differs(1, 2, "usage errors exit 2") },
    Row { flags: &["-d"], answers: "-1\ny\nn\ny\n", existing: false, exit: Exit::OnlyOurs(1, "-d/-D imply -t") },
];

/// A file's lines with the secret and scratch codes made generic.
fn shape(path: &Path) -> Option<(Vec<String>, u32)> {
    let bytes = fs::read(path).ok()?;
    let lines = String::from_utf8_lossy(&bytes)
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 {
                "SECRET".to_owned()
            } else if line.len() == 8 && line.bytes().all(|b| b.is_ascii_digit()) {
                "SCRATCH".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect();
    let mode = fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    Some((lines, mode))
}

fn run_piped_as(program: &str, args: &[&str], input: &str, home: &Path) -> Output {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    // A program that stops reading early closes the pipe: not an error here.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().unwrap()
}

#[test]
fn same_flags_and_answers_give_the_same_file_and_exit_code() {
    let found = Command::new("google-authenticator")
        .arg("-h")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if !found {
        pam_totp_tests::skip_or_fail(
            "google-authenticator is not installed (apt-get install libpam-google-authenticator)",
        );
        return;
    }
    let dir = TempDir::new("google-compat");
    let mut table = vec![format!(
        "{:<62} {:>6} {:>6}  {}",
        "flags | answers", "google", "ours", "files"
    )];
    let mut failures = Vec::new();
    for (i, row) in ROWS.iter().enumerate() {
        let mut codes = Vec::new();
        let mut shapes = Vec::new();
        for program in ["google-authenticator", BIN] {
            let path = dir.path(&format!(
                "{i}-{}",
                if program == BIN { "ours" } else { "google" }
            ));
            if row.existing {
                fs::write(&path, OLD).unwrap();
                fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
            }
            let mut args = row.flags.to_vec();
            args.extend(["-s", path.to_str().unwrap()]);
            let out = run_piped_as(program, &args, row.answers, dir.dir());
            codes.push(out.status.code().unwrap_or(-1));
            shapes.push(shape(&path));
        }
        let exit_ok = match row.exit {
            Exit::Same(code) => codes == [code, code],
            Exit::Differs(google, ours, _) => codes == [google, ours],
            Exit::OnlyOurs(google, _) => codes == [google, 0],
        };
        let files_ok = match row.exit {
            Exit::OnlyOurs(..) => shapes[0].is_none() && shapes[1].is_some(),
            _ => shapes[0] == shapes[1],
        };
        let files = match (&shapes[0], files_ok) {
            (None, true) if shapes[1].is_some() => "ours only".to_owned(),
            (None, true) => "both none".to_owned(),
            (Some((lines, mode)), true) => format!("same ({} lines, {mode:04o})", lines.len()),
            (_, false) => format!("DIFFER: {:?} vs {:?}", shapes[0], shapes[1]),
        };
        let note = match row.exit {
            Exit::Differs(_, _, why) | Exit::OnlyOurs(_, why) => format!(" [documented: {why}]"),
            Exit::Same(_) => String::new(),
        };
        let line = format!(
            "{:<62} {:>6} {:>6}  {files}{note}{}",
            format!("{:?} | {:?}", row.flags, row.answers),
            codes[0],
            codes[1],
            if exit_ok && files_ok {
                ""
            } else {
                "  <-- FAIL"
            }
        );
        if !(exit_ok && files_ok) {
            failures.push(line.clone());
        }
        table.push(line);
    }
    eprintln!("{}", table.join("\n"));
    assert!(
        failures.is_empty(),
        "rows that differ:\n{}",
        failures.join("\n")
    );
}
