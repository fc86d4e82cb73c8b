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

/// The Python stack that `faulthandler` writes when a fatal signal (SIGSEGV,
/// SIGFPE, SIGABRT, SIGBUS, SIGILL) kills the interpreter: the frames of
/// the thread that crashed, outermost first, as tracebacks list them.
///
/// Reads the last block headed `Current thread 0x… (most recent call
/// first):` (every thread dumped, `faulthandler.enable()`'s default) or
/// `Stack (most recent call first):` (`all_threads=False`); the other
/// threads' blocks, `Fatal Python error:` lines and anything else in the
/// text are skipped. Empty when there is no such block, or it holds no
/// frame (`<no Python frame>`). Faulthandler stops at 100 frames and
/// marks the cut with `...`; the frames it did print are kept.
///
/// ```
/// use poolscope_runtime::error::fault_stack;
/// let stderr = "Fatal Python error: Segmentation fault\n\nCurrent thread 0x00007f (most recent call first):\n  File \"worker.py\", line 72 in run\n  File \"worker.py\", line 110 in Execute\n";
/// let frames = fault_stack(stderr);
/// assert_eq!(frames.len(), 2);
/// assert_eq!((frames[1].file.as_str(), frames[1].line, frames[1].function.as_str()), ("worker.py", 72, "run"));
/// ```
pub fn fault_stack(text: &str) -> Vec<PythonFrame> {
    let lines: Vec<&str> = text.lines().collect();
    let is_header = |line: &str| {
        let line = line.trim_end();
        (line.starts_with("Current thread ") && line.ends_with("(most recent call first):"))
            || line == "Stack (most recent call first):"
    };
    let Some(start) = lines.iter().rposition(|line| is_header(line)) else {
        return Vec::new();
    };
    let mut frames: Vec<PythonFrame> = lines[start + 1..]
        .iter()
        .map_while(|line| fault_frame(line))
        .flatten()
        .collect();
    frames.reverse();
    frames
}

/// One line of a faulthandler block: `Some(Some(frame))` for
/// `  File "path", line N in function`, `Some(None)` for a line the block
/// may hold besides frames (`  ...`, `  <no Python frame>`), `None` where
/// the block ends.
fn fault_frame(line: &str) -> Option<Option<PythonFrame>> {
    let Some(rest) = line.strip_prefix("  File \"") else {
        let mark = line.trim();
        return (line.starts_with("  ") && (mark == "..." || mark.starts_with('<')))
            .then_some(None);
    };
    let (file, rest) = rest.rsplit_once("\", line ")?;
    let (number, function) = rest.split_once(" in ")?;
    Some(Some(PythonFrame {
        file: file.to_owned(),
        line: number.trim().parse().ok()?,
        function: function.trim_end().to_owned(),
        source: None,
    }))
}

#[cfg(test)]
mod fault_tests {
    use super::fault_stack;

    // Written by CPython 3.11's faulthandler on SIGSEGV (see each file).
    const THREADS: &str = include_str!("testdata/faulthandler-threads.txt");
    const ONE_THREAD: &str = include_str!("testdata/faulthandler-one-thread.txt");
    const DEEP: &str = include_str!("testdata/faulthandler-deep.txt");

    fn named(text: &str) -> Vec<(String, u32)> {
        fault_stack(text)
            .into_iter()
            .map(|f| (f.function, f.line))
            .collect()
    }

    #[test]
    fn the_crashed_thread_is_read_not_the_others() {
        // A thread sleeping in `idle` is dumped first; the main thread crashed.
        assert_eq!(
            named(THREADS),
            [
                ("<module>".into(), 11),
                ("handler".into(), 10),
                ("run".into(), 8)
            ]
        );
        assert!(fault_stack(THREADS)
            .iter()
            .all(|f| f.file == "/tmp/fh/seg.py"));
    }

    #[test]
    fn a_single_thread_dump_is_read() {
        let frames = fault_stack(ONE_THREAD);
        assert_eq!(frames.len(), 5);
        assert_eq!(frames[0].function, "<module>");
        assert_eq!(frames[4].function, "string_at");
        assert!(
            frames[4].file.ends_with("ctypes/__init__.py"),
            "{:?}",
            frames[4]
        );
    }

    #[test]
    fn a_cut_stack_keeps_the_frames_printed() {
        // Faulthandler prints at most 100 frames, then `  ...`.
        let frames = fault_stack(DEEP);
        assert_eq!(frames.len(), 100);
        assert_eq!(frames[99].function, "deep");
        assert_eq!(frames[99].line, 6);
        assert_eq!(frames[0].line, 7);
    }

    #[test]
    fn text_without_a_dump_has_no_stack() {
        assert!(fault_stack("").is_empty());
        assert!(fault_stack("Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nKeyError: 1\n").is_empty());
        let none = "Current thread 0x01 (most recent call first):\n  <no Python frame>\n";
        assert!(fault_stack(none).is_empty());
    }
}
