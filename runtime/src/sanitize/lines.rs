//! The lines of a text, indexed once, so that finding the line of any byte
//! costs a binary search instead of a scan to the nearest line break: a
//! text with thousands of keywords on one long line must stay linear.

use std::ops::Range;

/// Where a text's line breaks are.
#[derive(Debug)]
pub(crate) struct Lines {
    /// Positions of `\n`, in order.
    breaks: Vec<usize>,
    len: usize,
}

impl Lines {
    pub(crate) fn new(text: &[u8]) -> Lines {
        Lines {
            breaks: memchr::memchr_iter(b'\n', text).collect(),
            len: text.len(),
        }
    }

    /// The lines `span` is on, without the final line break, and `extra`
    /// more lines on either side.
    pub(crate) fn around(&self, span: Range<usize>, extra: usize) -> Range<usize> {
        // Index of the first break at or after `at`: the line of `at` ends
        // there; the break before it (if any) ends the line before.
        let first = self.breaks.partition_point(|&b| b < span.start);
        let start = first
            .checked_sub(extra + 1)
            .map_or(0, |i| self.breaks[i] + 1);
        let last = self
            .breaks
            .partition_point(|&b| b < span.end.max(span.start));
        let end = self.breaks.get(last + extra).copied().unwrap_or(self.len);
        start..end
    }

    /// The line of byte `at`, without its line break.
    pub(crate) fn line(&self, at: usize) -> Range<usize> {
        self.around(at..at, 0)
    }
}

/// Adds `line` to `lines`, which are in text order, merging it with the
/// last if they are the same.
pub(crate) fn add_line(lines: &mut Vec<Range<usize>>, line: Range<usize>) {
    match lines.last_mut() {
        Some(last) if last.end >= line.start => last.end = last.end.max(line.end),
        _ => lines.push(line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_found_by_position() {
        let text = b"ab\ncd\n\nef";
        let lines = Lines::new(text);
        assert_eq!(lines.line(0), 0..2);
        assert_eq!(lines.line(2), 0..2);
        assert_eq!(lines.line(3), 3..5);
        assert_eq!(lines.line(6), 6..6);
        assert_eq!(lines.line(8), 7..9);
        assert_eq!(lines.line(9), 7..9);
        assert_eq!(lines.around(3..4, 1), 0..6);
        assert_eq!(lines.around(0..4, 0), 0..5);
        assert_eq!(lines.around(8..9, 5), 0..9);
    }
}
