//! Parsing Python tracebacks as `traceback.format_exception` prints them.

use crate::model::error::{ChainRelation, ChainedException, PythonFrame, PythonTraceback};

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
    /// Parses a traceback as CPython 3.8–3.13 prints it: the frames, the
    /// final exception, and every exception chained before it (`raise ..
    /// from ..` and "during handling of"). Understands syntax errors'
    /// location lines, the caret lines of Python 3.11+, "[Previous line
    /// repeated N more times]" (kept on the frame, as `repeated`),
    /// `ExceptionGroup`s (their `|`-prefixed blocks become
    /// [`exceptions`](PythonTraceback::exceptions), nested groups included,
    /// with "and N more exceptions" as `more_exceptions`), the "Exception in
    /// thread NAME:" line `threading` prints above a thread's traceback, and
    /// a `logging.exception` line above it. `None` if no exception line is
    /// found.
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
        let thread = text.lines().find_map(|line| {
            let name = line.trim().strip_prefix("Exception in thread ")?;
            Some(name.strip_suffix(':').unwrap_or(name).to_owned())
        });
        let mut parsed = match group_start(text) {
            Some((at, column)) => {
                let lines: Vec<&str> = text.lines().skip(at).map(|l| cut(l, column)).collect();
                group(&lines)?
            }
            None => plain(text)?,
        };
        parsed.thread = thread;
        parsed.formatted = text.trim_end().to_owned();
        Some(parsed)
    }

    /// The same traceback with the exception's `__notes__` apart: Python
    /// prints each note on a line of its own after the exception line, as
    /// it prints a message's further lines, so a parse puts them in the
    /// message. Given the notes (`getattr(exc, "__notes__", [])`), they are
    /// taken off the message's end and kept in `notes`.
    ///
    /// ```
    /// use poolscope_runtime::error::PythonTraceback;
    /// let text = "Traceback (most recent call last):\n  File \"w.py\", line 3, in load\nFileNotFoundError: model.bin\nwhile loading the model\n";
    /// let tb = PythonTraceback::parse(text).unwrap().with_notes(vec!["while loading the model".into()]);
    /// assert_eq!(tb.message, "model.bin");
    /// assert_eq!(tb.notes, ["while loading the model"]);
    /// ```
    pub fn with_notes(mut self, notes: Vec<String>) -> PythonTraceback {
        if notes.is_empty() {
            return self;
        }
        let printed = format!("\n{}", notes.join("\n"));
        if let Some(message) = self.message.strip_suffix(&printed) {
            self.message = message.to_owned();
        }
        self.notes = notes;
        self
    }
}

/// A traceback with no group: sections split at the chain separators.
fn plain(text: &str) -> Option<PythonTraceback> {
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
        ..PythonTraceback::default()
    })
}

const GROUP_HEADER: &str = "+ Exception Group Traceback (most recent call last):";

/// Where an exception group's block begins, and the column of its `+`:
/// the line `+ Exception Group Traceback (most recent call last):`.
fn group_start(text: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(at, line)| {
        let trimmed = line.trim_start();
        trimmed
            .starts_with(GROUP_HEADER)
            .then(|| (at, line.len() - trimmed.len()))
    })
}

/// `line` without its first `column` characters (fewer if it is shorter).
fn cut(line: &str, column: usize) -> &str {
    line.char_indices()
        .nth(column)
        .map_or("", |(at, _)| &line[at..])
}

/// A member separator at the start of `line`: `+---- N ----`, `+---- ...
/// ----` or the closing `+--------`, but not a nested group's `+-+`.
fn separator(line: &str) -> bool {
    line.starts_with("+-") && !line.starts_with("+-+")
}

/// An exception group whose block starts at column 0: its own traceback
/// (lines prefixed `| `, under an optional `+ Exception Group Traceback`
/// line), then its members, the first after `+-+---- 1 ----`, the others
/// after `  +---- N ----`, each prefixed two columns further in.
fn group(lines: &[&str]) -> Option<PythonTraceback> {
    let first_member = lines.iter().position(|l| l.starts_with("+-+"))?;
    let header: Vec<&str> = lines[..first_member]
        .iter()
        .filter(|l| !l.starts_with(GROUP_HEADER))
        .map(|l| strip_bar(l))
        .collect();
    let mut parsed = plain(&header.join("\n"))?;
    parsed.formatted = header.join("\n").trim_end().to_owned();
    let mut members: Vec<Vec<&str>> = vec![Vec::new()];
    for line in &lines[first_member + 1..] {
        let inner = cut(line, 2);
        if separator(inner) {
            members.push(Vec::new());
        } else if let Some(member) = members.last_mut() {
            member.push(inner);
        }
    }
    for member in members.into_iter().filter(|m| !m.is_empty()) {
        if let Some(more) = more_exceptions(&member) {
            parsed.more_exceptions += more;
        } else if let Some(exception) = block(&member) {
            parsed.exceptions.push(exception);
        }
    }
    Some(parsed)
}

/// One member's lines: a group of its own, or a plain traceback.
fn block(lines: &[&str]) -> Option<PythonTraceback> {
    if lines.iter().any(|l| l.starts_with("+-+")) {
        return group(lines);
    }
    let text: Vec<&str> = lines.iter().map(|l| strip_bar(l)).collect();
    let text = text.join("\n");
    let mut parsed = plain(&text)?;
    parsed.formatted = text.trim_end().to_owned();
    Some(parsed)
}

/// `| text` → `text`.
fn strip_bar(line: &str) -> &str {
    line.strip_prefix("| ")
        .or_else(|| line.strip_prefix('|'))
        .unwrap_or(line)
}

/// `| and N more exceptions`: the members Python left out.
fn more_exceptions(lines: &[&str]) -> Option<u32> {
    let [line] = lines else { return None };
    strip_bar(line)
        .trim()
        .strip_prefix("and ")?
        .strip_suffix(" more exceptions")?
        .parse()
        .ok()
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
        if let Some(times) = repeated(trimmed) {
            if let Some(frame) = frames.last_mut() {
                frame.repeated = times;
            }
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
        repeated: 0,
    })
}

/// `[Previous line repeated 996 more times]`.
fn repeated(line: &str) -> Option<u32> {
    line.strip_prefix("[Previous line repeated ")?
        .strip_suffix(" more times]")?
        .parse()
        .ok()
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
        repeated: 0,
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
        // `deep(3)` down to `deep(0)`, which calls `ctypes.string_at(0)`.
        let frames = fault_stack(ONE_THREAD);
        let functions: Vec<_> = frames.iter().map(|f| f.function.as_str()).collect();
        assert_eq!(
            functions,
            ["<module>", "deep", "deep", "deep", "deep", "string_at"]
        );
        assert!(
            frames[5].file.ends_with("ctypes/__init__.py"),
            "{:?}",
            frames[5]
        );
    }

    #[test]
    fn a_cut_stack_keeps_the_frames_printed() {
        // Faulthandler prints at most 100 frames, then `  ...`.
        let frames = fault_stack(DEEP);
        assert_eq!(frames.len(), 100);
        assert_eq!(frames[99].function, "deep");
        // The script's first line is blank: `os.kill` is on line 7, the
        // recursive call on line 8.
        assert_eq!(frames[99].line, 7);
        assert_eq!(frames[0].line, 8);
    }

    #[test]
    fn text_without_a_dump_has_no_stack() {
        assert!(fault_stack("").is_empty());
        assert!(fault_stack("Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nKeyError: 1\n").is_empty());
        let none = "Current thread 0x01 (most recent call first):\n  <no Python frame>\n";
        assert!(fault_stack(none).is_empty());
    }
}

#[cfg(test)]
mod real_output {
    //! Each text is what CPython printed (see testdata/README.md): 3.11 in
    //! the tests by case, every version from 3.8 to 3.13 in the last one.
    use super::*;

    fn parse(text: &str) -> PythonTraceback {
        PythonTraceback::parse(text).unwrap_or_else(|| panic!("no parse of:\n{text}"))
    }

    fn kinds(tb: &PythonTraceback) -> Vec<(&str, &str)> {
        tb.exceptions
            .iter()
            .map(|e| (e.exception_type.as_str(), e.message.as_str()))
            .collect()
    }

    #[test]
    fn an_exception_group_is_a_tree_of_its_members() {
        let tb = parse(include_str!("testdata/cpython/3.11/group.txt"));
        assert_eq!(tb.exception_type, "ExceptionGroup");
        assert_eq!(tb.message, "many failures (4 sub-exceptions)");
        let functions: Vec<_> = tb.frames.iter().map(|f| f.function.as_str()).collect();
        assert_eq!(functions, ["<module>", "f"]);
        assert_eq!(
            kinds(&tb),
            [
                ("ValueError", "bad item 0"),
                ("ValueError", "bad item 1"),
                ("RuntimeError", "lookup failed"),
                ("ExceptionGroup", "inner (2 sub-exceptions)"),
            ]
        );
        // A member keeps its frames, source lines and chain.
        let first = &tb.exceptions[0];
        assert_eq!(first.frames.len(), 2);
        assert_eq!(first.frames[1].function, "g");
        assert_eq!(
            first.frames[1].source.as_deref(),
            Some("raise ValueError(f\"bad item {i}\")")
        );
        let chained = &tb.exceptions[2];
        assert_eq!(chained.chain.len(), 1);
        assert_eq!(chained.chain[0].relation, ChainRelation::Cause);
        assert_eq!(chained.chain[0].exception_type, "KeyError");
        assert!(chained
            .formatted
            .starts_with("Traceback (most recent call last):"));
        assert!(!chained.formatted.contains('|'), "{}", chained.formatted);
        // The nested group, frameless, with its own members.
        let inner = &tb.exceptions[3];
        assert!(inner.frames.is_empty());
        assert_eq!(kinds(inner), [("TypeError", "t1"), ("OSError", "o1")]);
        assert_eq!(tb.more_exceptions, 0);
        assert!(tb.formatted.contains("+-+---------------- 1"));
    }

    #[test]
    fn the_members_python_left_out_are_counted() {
        let tb = parse(include_str!("testdata/cpython/3.11/many.txt"));
        assert_eq!(tb.message, "batch (17 sub-exceptions)");
        assert_eq!(tb.exceptions.len(), 15);
        assert_eq!(tb.exceptions[14].message, "v14");
        assert_eq!(tb.more_exceptions, 2);
    }

    #[test]
    fn notes_given_apart_leave_the_message() {
        let text = include_str!("testdata/cpython/3.11/notes.txt");
        let printed = parse(text);
        // Printed, notes read as the message's further lines.
        assert!(printed.message.ends_with("\nhint: set MODEL_DIR"));
        let tb = printed.with_notes(vec![
            "while loading the model from /nonexistent/model.bin".into(),
            "hint: set MODEL_DIR".into(),
        ]);
        assert_eq!(tb.exception_type, "FileNotFoundError");
        assert_eq!(
            tb.message,
            "[Errno 2] No such file or directory: '/nonexistent/model.bin'"
        );
        assert_eq!(tb.notes.len(), 2);
    }

    #[test]
    fn a_repeated_frame_keeps_its_count() {
        let tb = parse(include_str!("testdata/cpython/3.11/recursion.txt"));
        assert_eq!(tb.exception_type, "RecursionError");
        assert_eq!(tb.frames.len(), 4);
        assert_eq!(tb.frames[3].function, "walk");
        assert_eq!(tb.frames[3].repeated, 996);
        assert!(tb.frames[..3].iter().all(|f| f.repeated == 0));
        assert_eq!(tb.frames[3].source.as_deref(), Some("return walk(n + 1)"));
    }

    #[test]
    fn raise_from_none_shows_no_chain() {
        let tb = parse(include_str!("testdata/cpython/3.11/fromnone.txt"));
        assert_eq!(
            (tb.exception_type.as_str(), tb.message.as_str()),
            ("TypeError", "not a count: 'x'")
        );
        assert!(tb.chain.is_empty());
        assert_eq!(tb.frames.len(), 2);
    }

    #[test]
    fn a_threads_exception_names_the_thread() {
        let tb = parse(include_str!("testdata/cpython/3.11/thread.txt"));
        assert_eq!(tb.thread.as_deref(), Some("loader"));
        assert_eq!(tb.exception_type, "ConnectionError");
        assert_eq!(tb.frames.last().unwrap().function, "work");
    }

    #[test]
    fn a_logging_exception_line_above_is_not_the_exception() {
        let tb = parse(include_str!("testdata/cpython/3.11/logexc.txt"));
        assert_eq!(
            (tb.exception_type.as_str(), tb.message.as_str()),
            ("ZeroDivisionError", "division by zero")
        );
        assert_eq!(tb.frames.len(), 1);
        assert_eq!(tb.frames[0].source.as_deref(), Some("1 / 0"));
        assert!(tb.thread.is_none());
    }

    /// Every text CPython 3.8 to 3.13 printed for the same programs parses
    /// to the same exception, frames and chain, whatever each version's
    /// carets, paths and group layout.
    #[test]
    fn every_cpython_from_3_8_to_3_13_parses_alike() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testdata/cpython");
        let read = |version: &str, name: &str| {
            std::fs::read_to_string(root.join(version).join(format!("{name}.txt"))).ok()
        };
        for version in ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"] {
            let at = |name: &str| {
                let text = read(version, name).unwrap_or_else(|| panic!("{version}/{name}.txt"));
                PythonTraceback::parse(&text)
                    .unwrap_or_else(|| panic!("{version}/{name}: no parse"))
            };
            let chained = at("chained");
            assert_eq!(
                (chained.exception_type.as_str(), chained.message.as_str()),
                ("ValueError", "no model named 'resnet'"),
                "{version}"
            );
            let functions: Vec<_> = chained.frames.iter().map(|f| f.function.as_str()).collect();
            assert_eq!(functions, ["<module>", "load"], "{version}");
            assert_eq!(chained.chain.len(), 1, "{version}");
            assert_eq!(
                (
                    chained.chain[0].relation,
                    chained.chain[0].exception_type.as_str()
                ),
                (ChainRelation::Cause, "KeyError"),
                "{version}"
            );
            assert_eq!(
                chained.chain[0].frames.last().map(|f| f.function.as_str()),
                Some("lookup"),
                "{version}"
            );
            assert!(
                chained
                    .frames
                    .iter()
                    .all(|f| f.source.as_deref().is_some_and(|s| !s.contains('^'))),
                "{version}: {:?}",
                chained.frames
            );

            let recursion = at("recursion");
            assert_eq!(recursion.exception_type, "RecursionError", "{version}");
            let repeated: Vec<u32> = recursion
                .frames
                .iter()
                .map(|f| f.repeated)
                .filter(|&n| n > 0)
                .collect();
            assert_eq!(repeated.len(), 1, "{version}");
            assert!(repeated[0] > 900, "{version}: {repeated:?}");

            let none = at("fromnone");
            assert_eq!(
                (none.exception_type.as_str(), none.chain.len()),
                ("TypeError", 0),
                "{version}"
            );

            let thread = at("thread");
            assert_eq!(thread.exception_type, "ConnectionError", "{version}");
            assert!(
                thread
                    .thread
                    .as_deref()
                    .is_some_and(|t| t.starts_with("loader")),
                "{version}: {:?}",
                thread.thread
            );

            let logged = at("logexc");
            assert_eq!(
                (logged.exception_type.as_str(), logged.frames.len()),
                ("ZeroDivisionError", 1),
                "{version}"
            );

            // Exception groups and notes are Python 3.11+.
            if let Some(text) = read(version, "group") {
                let group = PythonTraceback::parse(&text).unwrap();
                assert_eq!(
                    group.message, "many failures (4 sub-exceptions)",
                    "{version}"
                );
                assert_eq!(group.exceptions.len(), 4, "{version}");
                assert_eq!(group.exceptions[2].chain.len(), 1, "{version}");
                assert_eq!(group.exceptions[3].exceptions.len(), 2, "{version}");
                let many = at("many");
                assert_eq!(
                    (many.exceptions.len(), many.more_exceptions),
                    (15, 2),
                    "{version}"
                );
                let notes = at("notes").with_notes(vec![
                    "while loading the model from /nonexistent/model.bin".into(),
                    "hint: set MODEL_DIR".into(),
                ]);
                assert_eq!(notes.notes.len(), 2, "{version}");
                assert!(
                    notes.message.ends_with("'/nonexistent/model.bin'"),
                    "{version}: {}",
                    notes.message
                );
            } else {
                assert!(["3.8", "3.9", "3.10"].contains(&version));
            }
        }
    }
}
