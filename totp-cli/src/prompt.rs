//! Questions on the terminal: yes/no with a default, and one line of input.

use crate::error::Error;
use std::io::{BufRead, Read, Write};
use zeroize::Zeroizing;

/// Longest answer read; anything longer is cut (a code is 6 digits).
const MAX_LINE: u64 = 256;

pub struct Prompter<'a> {
    input: &'a mut dyn BufRead,
    output: &'a mut dyn Write,
}

impl<'a> Prompter<'a> {
    pub fn new(input: &'a mut dyn BufRead, output: &'a mut dyn Write) -> Self {
        Prompter { input, output }
    }

    pub fn output(&mut self) -> &mut dyn Write {
        self.output
    }

    /// Shows `prompt` and reads one line, without its line ending. `None` at
    /// end of input. The line is wiped on drop: it may be a code.
    pub fn line(&mut self, prompt: &str) -> Result<Option<Zeroizing<String>>, Error> {
        write!(self.output, "{prompt}")?;
        self.output.flush()?;
        let mut raw = Zeroizing::new(Vec::with_capacity(MAX_LINE as usize + 1));
        let read = (&mut *self.input)
            .take(MAX_LINE)
            .read_until(b'\n', &mut raw)?;
        if read == 0 {
            // Keep the shell prompt off the question's line.
            writeln!(self.output)?;
            return Ok(None);
        }
        if raw.last() != Some(&b'\n') && read as u64 == MAX_LINE {
            // Drop the rest of an over-long line rather than read it as the
            // next answer.
            self.input.skip_until(b'\n')?;
        }
        let text = String::from_utf8_lossy(&raw);
        Ok(Some(Zeroizing::new(
            text.trim_end_matches(['\r', '\n']).to_owned(),
        )))
    }

    /// Asks until the answer is yes, no, or empty (the default). As
    /// google-authenticator reads it, an answer is yes or no by its first
    /// letter ("yes", "Yep"), so scripts written for it answer alike. End of
    /// input cancels: nothing is decided for the user.
    pub fn yes_no(&mut self, question: &str, default: bool) -> Result<bool, Error> {
        let choices = if default { "[Y/n]" } else { "[y/N]" };
        writeln!(self.output)?;
        loop {
            let Some(answer) = self.line(&format!("{question} {choices} "))? else {
                return Err(Error::Cancelled);
            };
            match answer.trim().bytes().next().map(|b| b.to_ascii_lowercase()) {
                None => return Ok(default),
                Some(b'y') => return Ok(true),
                Some(b'n') => return Ok(false),
                Some(_) => writeln!(self.output, "Please answer y or n.")?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(input: &str, default: bool) -> (Result<bool, Error>, String) {
        let mut reader = input.as_bytes();
        let mut output = Vec::new();
        let answer = Prompter::new(&mut reader, &mut output).yes_no("Go?", default);
        (answer, String::from_utf8(output).unwrap())
    }

    #[test]
    fn enter_takes_the_default_shown_in_capitals() {
        let (answer, shown) = ask("\n", true);
        assert!(answer.unwrap());
        assert_eq!(shown, "\nGo? [Y/n] ");
        let (answer, shown) = ask("\r\n", false);
        assert!(!answer.unwrap());
        assert_eq!(shown, "\nGo? [y/N] ");
    }

    #[test]
    fn answers_in_any_case() {
        for (input, want) in [
            ("y\n", true),
            ("YES\n", true),
            (" n \n", false),
            ("No\n", false),
            ("yep\n", true),
            ("nope\n", false),
        ] {
            assert_eq!(ask(input, !want).0.unwrap(), want, "{input:?}");
        }
    }

    #[test]
    fn asks_again_after_nonsense() {
        let (answer, shown) = ask("maybe\nn\n", true);
        assert!(!answer.unwrap());
        assert_eq!(shown, "\nGo? [Y/n] Please answer y or n.\nGo? [Y/n] ");
    }

    #[test]
    fn end_of_input_cancels() {
        assert!(matches!(ask("", true).0, Err(Error::Cancelled)));
        assert!(matches!(ask("what", true).0, Err(Error::Cancelled)));
    }

    #[test]
    fn lines_are_bounded_and_trimmed() {
        let long = "1".repeat(1000) + "\nnext\n";
        let mut reader = long.as_bytes();
        let mut output = Vec::new();
        let mut prompter = Prompter::new(&mut reader, &mut output);
        assert_eq!(
            prompter.line("> ").unwrap().unwrap().len(),
            MAX_LINE as usize
        );
        assert_eq!(&**prompter.line("> ").unwrap().unwrap(), "next");
        let mut reader: &[u8] = b"123456\r\n";
        let mut prompter = Prompter::new(&mut reader, &mut output);
        assert_eq!(&**prompter.line("> ").unwrap().unwrap(), "123456");
        assert!(prompter.line("> ").unwrap().is_none());
    }
}
