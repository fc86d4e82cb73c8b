//! Parsing Python tracebacks as `traceback.format_exception` prints them.

use crate::types::error::{ChainRelation, ChainedException, PythonFrame, PythonTraceback};

const HEADER: &str = "Traceback (most recent call last):";
const CAUSE: &str = "The above exception was the direct cause of the following exception:";
const CONTEXT: &str = "During handling of the above exception, another exception occurred:";

/// One exception's part of the text.
struct Section {
    exception_type: String,
    message: String,
    frames: Vec<PythonFrame>,
}

impl PythonTraceback {
    /// Parses a traceback: the frames, the final exception, and every
    /// exception chained before it (`raise .. from ..` and "during handling
    /// of"). Understands syntax errors' location lines and the caret lines
    /// Python 3.11+ prints. `None` if no exception line is found.
    ///
    /// ```
    /// use poolscope_runtime::error::PythonTraceback;
    /// let text = "Traceback (most recent call last):\n  File \"w.py\", line 3, in run\n    1 / 0\n    ~~^~~\nZeroDivisionError: division by zero\n";
    /// let tb = PythonTraceback::parse(text).unwrap();
    /// assert_eq!((tb.exception_type.as_str(), tb.message.as_str()), ("ZeroDivisionError", "division by zero"));
    /// assert_eq!((tb.frames[0].file.as_str(), tb.frames[0].line, tb.frames[0].function.as_str()), ("w.py", 3, "run"));
    /// assert_eq!(tb.frames[0].source.as_deref(), Some("1 / 0"));
    /// ```
    pub fn parse(text: &str) -> Option<PythonTraceback> {
        let mut sections: Vec<(Option<ChainRelation>, Vec<&str>)> = vec![(None, Vec::new())];
        for line in text.lines() {
            let relation = match line.trim() {
                CAUSE => Some(ChainRelation::Cause),
                CONTEXT => Some(ChainRelation::Context),
                _ => None,
            };
            match relation {
                Some(relation) => sections.push((Some(relation), Vec::new())),
                None => {
                    if let Some((_, lines)) = sections.last_mut() {
                        lines.push(line);
                    }
                }
            }
        }
        let mut parsed: Vec<(Option<ChainRelation>, Section)> = sections
            .into_iter()
            .filter_map(|(relation, lines)| Some((relation, section(&lines)?)))
            .collect();
        // A section carries the separator printed above it: how the section
        // before leads to it.
        let relations: Vec<Option<ChainRelation>> =
            parsed.iter().map(|(relation, _)| *relation).collect();
        let (_, last) = parsed.pop()?;
        let chain = parsed
            .into_iter()
            .enumerate()
            .map(|(i, (_, section))| ChainedException {
                relation: relations
                    .get(i + 1)
                    .copied()
                    .flatten()
                    .unwrap_or(ChainRelation::Context),
                exception_type: section.exception_type,
                message: section.message,
                frames: section.frames,
            })
            .collect();
        Some(PythonTraceback {
            exception_type: last.exception_type,
            message: last.message,
            frames: last.frames,
            chain,
            formatted: text.trim_end().to_owned(),
        })
    }
}

fn section(lines: &[&str]) -> Option<Section> {
    let mut frames: Vec<PythonFrame> = Vec::new();
    let mut exception: Option<(String, String)> = None;
    let mut message_lines: Vec<&str> = Vec::new();
    for line in lines {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed == HEADER {
            continue;
        }
        if let Some(frame) = frame_line(trimmed) {
            frames.push(frame);
            exception = None;
            message_lines.clear();
            continue;
        }
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if indented && exception.is_none() {
            // The source line under a frame, or a caret line under it.
            if let Some(frame) = frames.last_mut() {
                let is_caret = trimmed.chars().all(|c| matches!(c, '^' | '~' | ' '));
                if frame.source.is_none() && !is_caret {
                    frame.source = Some(trimmed.to_owned());
                }
            }
            continue;
        }
        match &exception {
            None => {
                if let Some(parsed) = exception_line(trimmed) {
                    exception = Some(parsed);
                }
            }
            // A message that spans lines.
            Some(_) => message_lines.push(line),
        }
    }
    let (exception_type, mut message) = exception?;
    for line in message_lines {
        message.push('\n');
        message.push_str(line);
    }
    Some(Section {
        exception_type,
        message,
        frames,
    })
}

/// `File "path", line 12, in function` (or, for a syntax error, without
/// `in function`).
fn frame_line(line: &str) -> Option<PythonFrame> {
    let rest = line.strip_prefix("File \"")?;
    let (file, rest) = rest.split_once("\", line ")?;
    let (number, function) = match rest.split_once(", in ") {
        Some((number, function)) => (number, function),
        None => (rest, ""),
    };
    Some(PythonFrame {
        file: file.to_owned(),
        line: number.trim().parse().ok()?,
        function: function.to_owned(),
        source: None,
    })
}

/// `ValueError: message`, `KeyboardInterrupt`, `json.decoder.JSONDecodeError: ..`.
fn exception_line(line: &str) -> Option<(String, String)> {
    let (name, message) = match line.split_once(':') {
        Some((name, message)) => (name, message.trim_start()),
        None => (line, ""),
    };
    let valid = !name.is_empty()
        && name.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && chars.all(|c| c.is_alphanumeric() || c == '_')
        });
    valid.then(|| (name.to_owned(), message.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_lines() {
        assert_eq!(
            exception_line("ValueError: bad: value"),
            Some(("ValueError".into(), "bad: value".into()))
        );
        assert_eq!(
            exception_line("KeyboardInterrupt"),
            Some(("KeyboardInterrupt".into(), "".into()))
        );
        assert_eq!(
            exception_line("json.decoder.JSONDecodeError: x"),
            Some(("json.decoder.JSONDecodeError".into(), "x".into()))
        );
        assert_eq!(exception_line("not an exception line"), None);
    }

    #[test]
    fn no_exception_is_none() {
        assert!(PythonTraceback::parse("").is_none());
        assert!(PythonTraceback::parse(
            "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\n"
        )
        .is_none());
    }
}
