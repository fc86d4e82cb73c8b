use std::collections::HashSet;
use std::fmt;
use std::sync::{Mutex, OnceLock};

/// How many distinct label values poolscope interns before it folds new ones
/// into [`OVERFLOW_LABEL`]. Prometheus series are bounded by label values, so
/// an unbounded id used as a pool or command name must not create series
/// without end.
pub const MAX_LABEL_VALUES: usize = 10_000;

/// The value that stands for every label value past [`MAX_LABEL_VALUES`].
pub const OVERFLOW_LABEL: &str = "__overflow__";

/// An interned label value: a `&'static str` that compares by address.
///
/// Create labels once (for example when a pool is built) and pass them to
/// `#[observe(pool = ..)]`: a `Label` costs nothing to use, while a `&str`
/// is looked up in the interner on every call.
///
/// ```
/// use poolscope_runtime::Label;
/// let a = Label::new("python");
/// let b = Label::new(&String::from("python"));
/// assert_eq!(a, b);
/// assert_eq!(a.as_str(), "python");
/// ```
#[derive(Clone, Copy, Eq)]
pub struct Label(&'static str);

fn interner() -> &'static Mutex<HashSet<&'static str>> {
    static INTERNER: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    INTERNER.get_or_init(Default::default)
}

impl Label {
    /// Interns `value`. After [`MAX_LABEL_VALUES`] distinct values every new
    /// one maps to [`OVERFLOW_LABEL`].
    pub fn new(value: &str) -> Label {
        let mut set = interner().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = set.get(value) {
            return Label(existing);
        }
        if set.len() >= MAX_LABEL_VALUES {
            return Label(OVERFLOW_LABEL);
        }
        // Leaking is the point: a label lives as long as the series that use it,
        // which is the life of the process, and the set above bounds the total.
        let leaked: &'static str = Box::leak(value.to_owned().into_boxed_str());
        set.insert(leaked);
        Label(leaked)
    }

    /// A label for a string that is already `'static`, without the interner.
    /// Two such labels with equal text compare equal.
    pub const fn from_static(value: &'static str) -> Label {
        Label(value)
    }

    /// The label's text.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl PartialEq for Label {
    fn eq(&self, other: &Label) -> bool {
        std::ptr::eq(self.0, other.0) || self.0 == other.0
    }
}

impl std::hash::Hash for Label {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Anything `#[observe(pool = .., command = ..)]` accepts as a label value.
///
/// ```
/// use poolscope_runtime::label::AsLabel;
/// assert_eq!("gold".as_label().as_str(), "gold");
/// ```
pub trait AsLabel {
    /// The interned label.
    fn as_label(&self) -> Label;
}

impl AsLabel for Label {
    #[inline(always)]
    fn as_label(&self) -> Label {
        *self
    }
}

impl AsLabel for str {
    fn as_label(&self) -> Label {
        Label::new(self)
    }
}

impl AsLabel for String {
    fn as_label(&self) -> Label {
        Label::new(self)
    }
}

impl<T: AsLabel + ?Sized> AsLabel for &T {
    #[inline(always)]
    fn as_label(&self) -> Label {
        (**self).as_label()
    }
}

impl<T: AsLabel + ?Sized> AsLabel for std::sync::Arc<T> {
    fn as_label(&self) -> Label {
        (**self).as_label()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_returns_the_same_address() {
        let a = Label::new("label-test-a");
        let b = Label::new(&format!("label-test-{}", "a"));
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        assert_ne!(Label::new("label-test-b"), a);
    }

    #[test]
    fn static_and_interned_labels_compare_by_text() {
        assert_eq!(
            Label::from_static("label-test-c"),
            Label::new("label-test-c")
        );
    }
}
