//! Reading /etc/pam.d the way libpam does: one service file, its `auth`
//! lines, with `@include`, `include` and `substack` followed, controls in
//! keyword or `[value=action ...]` form, and bracketed module arguments.
//! Only what decides a login matters here, so only `auth` lines are kept.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// Where a line came from, for messages: `/etc/pam.d/sshd:3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// What libpam does with one module result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Ignore,
    Ok,
    Done,
    Bad,
    Die,
    Reset,
    /// Skip this many following lines.
    Jump(usize),
}

/// The results a module can give that this check tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Ignore,
    AuthErr,
    ServiceErr,
    ModuleUnknown,
}

impl Outcome {
    /// The name libpam's `[value=action]` syntax uses.
    fn pam_name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Ignore => "ignore",
            Outcome::AuthErr => "auth_err",
            Outcome::ServiceErr => "service_err",
            Outcome::ModuleUnknown => "module_unknown",
        }
    }
}

/// A control field: the action for each result, and for the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub text: String,
    actions: Vec<(String, Action)>,
    default: Action,
}

impl Control {
    pub fn action(&self, outcome: Outcome) -> Action {
        self.actions
            .iter()
            .find(|(name, _)| name == outcome.pam_name())
            .map_or(self.default, |(_, action)| *action)
    }

    fn keyword(text: &str) -> Option<Control> {
        let (success, ignore, default) = match text {
            "required" => (Action::Ok, Action::Ignore, Action::Bad),
            "requisite" => (Action::Ok, Action::Ignore, Action::Die),
            "sufficient" => (Action::Done, Action::Ignore, Action::Ignore),
            "optional" => (Action::Ok, Action::Ignore, Action::Ignore),
            _ => return None,
        };
        Some(Control {
            text: text.to_owned(),
            actions: vec![
                ("success".into(), success),
                ("new_authtok_reqd".into(), success),
                ("ignore".into(), ignore),
            ],
            default,
        })
    }

    fn bracketed(inside: &str) -> Result<Control, String> {
        let mut control = Control {
            text: format!("[{inside}]"),
            actions: Vec::new(),
            // libpam's default for values not named, without `default=`.
            default: Action::Bad,
        };
        for pair in inside.split_whitespace() {
            let (value, action) = pair
                .split_once('=')
                .ok_or_else(|| format!("control \"{pair}\" is not value=action"))?;
            let action = match action {
                "ignore" => Action::Ignore,
                "ok" => Action::Ok,
                "done" => Action::Done,
                "bad" => Action::Bad,
                "die" => Action::Die,
                "reset" => Action::Reset,
                n => match n.parse::<usize>() {
                    Ok(n) if n > 0 => Action::Jump(n),
                    _ => return Err(format!("unknown action \"{action}\" in \"{pair}\"")),
                },
            };
            if value == "default" {
                control.default = action;
            } else {
                control.actions.push((value.to_owned(), action));
            }
        }
        Ok(control)
    }
}

/// One `auth` module line.
#[derive(Debug, Clone)]
pub struct ModuleLine {
    pub origin: Origin,
    pub control: Control,
    /// As written (a bare name or an absolute path).
    pub module: String,
    pub args: Vec<String>,
    /// A `-auth` line: a missing module is skipped silently.
    pub optional_load: bool,
}

impl ModuleLine {
    /// The module's file name, e.g. `pam_totp.so`.
    pub fn name(&self) -> &str {
        self.module.rsplit('/').next().unwrap_or(&self.module)
    }
}

/// An `auth` stack: lines in order; a substack is one entry of its own.
#[derive(Debug, Clone)]
pub enum Entry {
    Module(ModuleLine),
    Substack {
        origin: Origin,
        control: Control,
        stack: Vec<Entry>,
    },
}

/// A line libpam would not understand, or a file it cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub origin: Origin,
    pub message: String,
}

/// The `auth` stack of `service`, read from `pam_d` (the directory that
/// stands for /etc/pam.d). Problems are collected, not fatal: libpam also
/// goes on, with a line it could not read failing every login.
pub fn auth_stack(pam_d: &Path, service: &str, problems: &mut Vec<Problem>) -> Vec<Entry> {
    let mut seen = Vec::new();
    read_file(pam_d, &pam_d.join(service), &mut seen, problems, None)
}

/// Every line of every file in `pam_d` that names `module` (any type), for
/// checking each one whether or not a service uses it.
pub fn lines_naming(pam_d: &Path, module: &str) -> Vec<(Origin, Vec<String>)> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(pam_d) else {
        return found;
    };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for (line, fields) in logical_lines(&text) {
            let Ok(fields) = fields else { continue };
            let module_at = match fields.first().map(String::as_str) {
                Some(t) if t.starts_with('@') => continue,
                Some(_) => 2,
                None => continue,
            };
            if fields
                .get(module_at)
                .is_some_and(|m| m.rsplit('/').next() == Some(module))
            {
                found.push((
                    Origin {
                        file: file.clone(),
                        line,
                    },
                    fields[module_at + 1..].to_vec(),
                ));
            }
        }
    }
    found
}

/// Files included more deeply than this are a loop (libpam stops too).
const MAX_DEPTH: usize = 16;

fn read_file(
    pam_d: &Path,
    file: &Path,
    seen: &mut Vec<PathBuf>,
    problems: &mut Vec<Problem>,
    included_from: Option<&Origin>,
) -> Vec<Entry> {
    let origin_of = |line| Origin {
        file: file.to_path_buf(),
        line,
    };
    if seen.len() >= MAX_DEPTH || seen.iter().any(|f| f == file) {
        problems.push(Problem {
            origin: included_from.cloned().unwrap_or_else(|| origin_of(0)),
            message: format!("{} is included in a loop", file.display()),
        });
        return Vec::new();
    }
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            problems.push(Problem {
                origin: included_from.cloned().unwrap_or_else(|| origin_of(0)),
                message: format!("cannot read {}: {e}", file.display()),
            });
            return Vec::new();
        }
    };
    seen.push(file.to_path_buf());
    let mut stack = Vec::new();
    for (line, fields) in logical_lines(&text) {
        let origin = origin_of(line);
        let fields = match fields {
            Ok(fields) => fields,
            Err(message) => {
                problems.push(Problem { origin, message });
                continue;
            }
        };
        let Some(first) = fields.first() else {
            continue;
        };
        if first == "@include" {
            match fields.get(1) {
                Some(name) => stack.extend(read_file(
                    pam_d,
                    &include_path(pam_d, name),
                    seen,
                    problems,
                    Some(&origin),
                )),
                None => problems.push(Problem {
                    origin,
                    message: "@include without a file name".into(),
                }),
            }
            continue;
        }
        let optional_load = first.starts_with('-');
        let kind = first.trim_start_matches('-').to_ascii_lowercase();
        if !["auth", "account", "password", "session"].contains(&kind.as_str()) {
            problems.push(Problem {
                origin,
                message: format!("unknown type \"{first}\""),
            });
            continue;
        }
        if kind != "auth" {
            continue;
        }
        let Some(control_text) = fields.get(1) else {
            problems.push(Problem {
                origin,
                message: "a line without a control field".into(),
            });
            continue;
        };
        let Some(target) = fields.get(2) else {
            problems.push(Problem {
                origin,
                message: "a line without a module".into(),
            });
            continue;
        };
        if control_text == "include" || control_text == "substack" {
            let included = read_file(
                pam_d,
                &include_path(pam_d, target),
                seen,
                problems,
                Some(&origin),
            );
            if control_text == "include" {
                stack.extend(included);
            } else {
                stack.push(Entry::Substack {
                    origin,
                    control: Control::keyword("required").expect("a keyword"),
                    stack: included,
                });
            }
            continue;
        }
        let control = match control_text.strip_prefix('[') {
            Some(inside) => match Control::bracketed(inside.trim_end_matches(']')) {
                Ok(control) => control,
                Err(message) => {
                    problems.push(Problem { origin, message });
                    continue;
                }
            },
            None => match Control::keyword(control_text) {
                Some(control) => control,
                None => {
                    problems.push(Problem {
                        origin,
                        message: format!("unknown control \"{control_text}\""),
                    });
                    continue;
                }
            },
        };
        stack.push(Entry::Module(ModuleLine {
            origin,
            control,
            module: target.clone(),
            args: fields[3..].to_vec(),
            optional_load,
        }));
    }
    seen.pop();
    stack
}

fn include_path(pam_d: &Path, name: &str) -> PathBuf {
    match name.strip_prefix('/') {
        // An absolute name is under the same root as pam.d.
        Some(_) => pam_d
            .parent()
            .and_then(Path::parent)
            .map_or_else(|| PathBuf::from(name), |root| root.join(&name[1..])),
        None => pam_d.join(name),
    }
}

/// Lines joined where a backslash ends one, comments removed, split into
/// fields (a `[...]` control or argument is one field), each with the
/// number of the line it starts on.
fn logical_lines(text: &str) -> Vec<(usize, Result<Vec<String>, String>)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        if pending.is_empty() {
            start = index + 1;
        }
        let raw = raw.split('#').next().unwrap_or("");
        match raw.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(raw);
                let line = std::mem::take(&mut pending);
                if !line.trim().is_empty() {
                    out.push((start, split_fields(&line)));
                }
            }
        }
    }
    if !pending.trim().is_empty() {
        out.push((start, split_fields(&pending)));
    }
    out
}

/// Splits on blanks, keeping `[...]` together (with `\]` inside).
fn split_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut field = String::new();
        if c == '[' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&']') => {
                        field.push(']');
                        chars.next();
                    }
                    ']' => {
                        closed = true;
                        break;
                    }
                    c => field.push(c),
                }
            }
            if !closed {
                return Err("a \"[\" without its \"]\"".into());
            }
            // Controls keep their brackets so they can be told from keywords;
            // module arguments lose them, as libpam hands them on.
            let is_control = fields.len() == 1;
            fields.push(if is_control {
                format!("[{field}]")
            } else {
                field
            });
            continue;
        }
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            field.push(c);
            chars.next();
        }
        fields.push(field);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_brackets_together() {
        assert_eq!(
            split_fields("auth [success=1 default=ignore] pam_unix.so nullok").unwrap(),
            [
                "auth",
                "[success=1 default=ignore]",
                "pam_unix.so",
                "nullok"
            ]
        );
        assert_eq!(
            split_fields("auth required pam_totp.so [authtok_prompt=Code \\] please: ]").unwrap(),
            [
                "auth",
                "required",
                "pam_totp.so",
                "authtok_prompt=Code ] please: "
            ]
        );
        assert!(split_fields("auth [success=1 pam_unix.so").is_err());
    }

    #[test]
    fn continuation_lines_and_comments() {
        let lines = logical_lines("# c\nauth required \\\n  pam_totp.so nullok # x\n\n");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].0, 2);
        assert_eq!(
            lines[0].1.as_ref().unwrap(),
            &["auth", "required", "pam_totp.so", "nullok"]
        );
    }

    #[test]
    fn controls() {
        let c = Control::bracketed("success=2 default=ignore").unwrap();
        assert_eq!(c.action(Outcome::Success), Action::Jump(2));
        assert_eq!(c.action(Outcome::AuthErr), Action::Ignore);
        let c = Control::keyword("sufficient").unwrap();
        assert_eq!(c.action(Outcome::Success), Action::Done);
        assert_eq!(c.action(Outcome::AuthErr), Action::Ignore);
        assert!(Control::bracketed("success=maybe").is_err());
        assert!(Control::keyword("requierd").is_none());
    }
}
