//! The documentation checked against the code, both ways: every module
//! option the parser accepts (`pam_totp::options::OPTIONS`, the one list the
//! parser uses) is in pam_totp(8) and the README's options table, and
//! nothing else is; every `totp-enroll` flag of its clap definition is in
//! totp-enroll(1) and the README's flag table, and nothing else is.
//!
//! Read from the man pages: the tag lines (after `.TP` / `.TQ`) of the
//! OPTIONS section. From the README: the first column of the table under the
//! given header row.

use clap::CommandFactory;
use pam_totp::options::{OptionForm, OPTIONS};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn workspace_file(path: &str) -> String {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// roff text as a reader sees it: `\-` is `-`, font changes dropped.
fn unroff(line: &str) -> String {
    let mut text = line.replace("\\-", "-");
    for font in ["\\fI", "\\fB", "\\fR", "\\fP"] {
        text = text.replace(font, "");
    }
    text.replace('"', " ")
}

/// The tag lines of the man page's OPTIONS section, without their macro
/// (`.B`, `.BI`, `.BR`), roff escapes removed.
fn man_option_tags(page: &str) -> Vec<String> {
    let mut tags = Vec::new();
    let mut in_options = false;
    let mut next_is_tag = false;
    for line in page.lines() {
        if let Some(section) = line.strip_prefix(".SH ") {
            in_options = section.trim() == "OPTIONS";
            continue;
        }
        if !in_options {
            continue;
        }
        if line == ".TP" || line == ".TQ" {
            next_is_tag = true;
            continue;
        }
        if next_is_tag {
            next_is_tag = false;
            let body = line.split_once(' ').map_or("", |(_macro, rest)| rest);
            tags.push(unroff(body));
        }
    }
    assert!(!tags.is_empty(), "no OPTIONS entries found in the man page");
    tags
}

/// The first cells of the README table whose header row is `header`, with
/// every `` `code` `` span in them.
fn readme_table_spans(readme: &str, header: &str) -> Vec<String> {
    let mut lines = readme.lines().skip_while(|line| line.trim() != header);
    assert!(lines.next().is_some(), "README has no table {header:?}");
    let mut spans = Vec::new();
    for row in lines.skip(1).take_while(|line| line.starts_with('|')) {
        let first_cell = row.split('|').nth(1).unwrap_or_default();
        spans.extend(first_cell.split('`').skip(1).step_by(2).map(str::to_owned));
    }
    assert!(!spans.is_empty(), "README table {header:?} is empty");
    spans
}

/// A module option as documented: `name`, `name=`, or `name[=value]`
/// (an optional value; read as `name`).
fn option_word(text: &str) -> String {
    let word = text.split_whitespace().next().unwrap_or_default();
    let word = word.split('[').next().unwrap_or_default();
    match word.split_once('=') {
        Some((name, _value)) => format!("{name}="),
        None => word.to_owned(),
    }
}

fn registered_options() -> BTreeSet<String> {
    OPTIONS
        .iter()
        .flat_map(|spec| {
            std::iter::once(spec.name)
                .chain(spec.aliases.iter().copied())
                .map(move |name| (name, spec.form))
        })
        .map(|(name, form)| match form {
            OptionForm::Flag => name.to_owned(),
            OptionForm::Value { .. } => format!("{name}="),
            // Documented as `name[=value]`, read as `name` below.
            OptionForm::FlagOrValue { .. } => name.to_owned(),
        })
        .collect()
}

#[test]
fn module_options_in_the_man_page_are_exactly_the_parsers() {
    let documented: BTreeSet<String> = man_option_tags(&workspace_file("packaging/man/pam_totp.8"))
        .iter()
        .map(|tag| option_word(tag))
        .collect();
    assert_eq!(
        documented,
        registered_options(),
        "pam_totp(8) OPTIONS (left) against pam_totp::options::OPTIONS (right); \
         `name=` takes a value"
    );
}

#[test]
fn module_options_in_the_readme_are_exactly_the_parsers() {
    let documented: BTreeSet<String> =
        readme_table_spans(&workspace_file("README.md"), "| option | meaning |")
            .iter()
            .map(|span| option_word(span))
            .collect();
    assert_eq!(
        documented,
        registered_options(),
        "README \"Module options\" table (left) against pam_totp::options::OPTIONS (right)"
    );
}

/// `-x` and `--long-name` words in a text, values (`=n`, ` N`) dropped.
fn flag_words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '/' || c == ';')
        .map(|word| word.split('=').next().unwrap_or_default())
        .filter(|word| {
            let short = word.len() == 2
                && word.starts_with('-')
                && word.as_bytes()[1].is_ascii_alphabetic();
            let long = word.len() > 2
                && word.starts_with("--")
                && word[2..]
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'-');
            short || long
        })
        .map(str::to_owned)
        .collect()
}

/// Every flag totp-enroll accepts, from its clap definition (with the
/// `-h`/`--help` and `-V`/`--version` that clap adds).
fn cli_flags() -> BTreeSet<String> {
    let mut command = totp_cli::args::Cli::command();
    command.build();
    let mut flags = BTreeSet::new();
    for arg in command.get_arguments() {
        if arg.is_positional() {
            continue;
        }
        for short in arg.get_short_and_visible_aliases().unwrap_or_default() {
            flags.insert(format!("-{short}"));
        }
        for long in arg.get_long_and_visible_aliases().unwrap_or_default() {
            flags.insert(format!("--{long}"));
        }
    }
    assert!(
        flags.contains("--help") && flags.contains("-f"),
        "{flags:?}"
    );
    flags
}

#[test]
fn enroll_flags_in_the_man_page_are_exactly_the_clis() {
    let documented: BTreeSet<String> =
        man_option_tags(&workspace_file("packaging/man/totp-enroll.1"))
            .iter()
            .flat_map(|tag| flag_words(tag))
            .collect();
    assert_eq!(
        documented,
        cli_flags(),
        "totp-enroll(1) OPTIONS (left) against totp-enroll's flags (right)"
    );
}

#[test]
fn enroll_flags_in_the_readme_are_exactly_the_clis() {
    let documented: BTreeSet<String> =
        readme_table_spans(&workspace_file("README.md"), "| flag | meaning |")
            .iter()
            .flat_map(|span| flag_words(span))
            .collect();
    assert_eq!(
        documented,
        cli_flags(),
        "README totp-enroll table (left) against totp-enroll's flags (right)"
    );
}

/// The readers above must see what a person sees, or the checks prove
/// nothing.
#[test]
fn the_readers_find_what_is_written() {
    let tags = man_option_tags(
        ".SH OPTIONS\n.TP\n.BI secret= path\n.TP\n.BR \\-r \", \" \\-\\-rate\\-limit =\\fIn\\fP\n\
         .SH FILES\n.TP\n.B nope\n",
    );
    assert_eq!(tags.len(), 2, "{tags:?}");
    assert_eq!(option_word(&tags[0]), "secret=");
    assert_eq!(
        flag_words(&tags[1]),
        ["--rate-limit", "-r"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
    assert_eq!(option_word("secret= path"), "secret=");
    assert_eq!(option_word("nullok"), "nullok");
    assert_eq!(
        flag_words("-r  ,  --rate-limit =n -R S --user NAME 0600 -- -5"),
        ["--rate-limit", "--user", "-R", "-r"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
    assert_eq!(
        readme_table_spans("x\n| flag | meaning |\n|---|---|\n| `-a`, `--bee=N` | `-z` not here |\n\nafter\n| `-y` | |\n", "| flag | meaning |"),
        vec!["-a", "--bee=N"]
    );
}
