//! The static part of a call site and the series it records into: resolved
//! once for literal labels, cached from the previous call for labels given
//! per call, so the common case never looks a series up.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::OnceLock;

use crate::imp::series::{self, Series};
use crate::interner::Label;
use crate::model::Kind;

/// The pool label of a call that names none.
pub const DEFAULT_POOL: &str = "default";

/// The static part of one `#[observe]` call site.
pub struct Site {
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    pool: Option<&'static str>,
    command: &'static str,
    extra: series::Extra,
    // Static labels: the series, resolved once.
    fixed: OnceLock<&'static Series>,
    // Dynamic labels: the series of the previous call, which is the next
    // call's series in the common case of one pool per call site.
    last: AtomicPtr<Series>,
}

impl Site {
    /// A call site. `command` is the command label for requests (the literal
    /// given, or the function's name).
    pub const fn new(
        name: &'static str,
        kind: Kind,
        pool: Option<&'static str>,
        command: &'static str,
    ) -> Site {
        Site::with_labels(name, kind, pool, command, &[])
    }

    /// A call site with extra static labels (`labels(tier = "gold")`).
    pub const fn with_labels(
        name: &'static str,
        kind: Kind,
        pool: Option<&'static str>,
        command: &'static str,
        extra: &'static [(&'static str, &'static str)],
    ) -> Site {
        Site {
            name,
            kind,
            pool,
            command,
            extra,
            fixed: OnceLock::new(),
            last: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    fn labels(&self, pool: Option<Label>, command: Option<Label>) -> (Label, Label) {
        let pool = pool.unwrap_or(Label::from_static(match self.pool {
            Some(p) => p,
            None => DEFAULT_POOL,
        }));
        let command = match self.kind {
            Kind::Request => command.unwrap_or(Label::from_static(self.command)),
            _ => Label::from_static(""),
        };
        (pool, command)
    }

    pub(super) fn labels_of(
        &self,
        given: Option<(Option<Label>, Option<Label>)>,
    ) -> (Label, Label) {
        let (pool, command) = given.unwrap_or((None, None));
        self.labels(pool, command)
    }

    /// The series of a site whose labels are all literals: resolved once.
    #[inline(always)]
    pub(super) fn fixed_series(&'static self) -> &'static Series {
        self.fixed.get_or_init(|| {
            let (pool, command) = self.labels(None, None);
            series::series_labeled(self.kind, pool, command, self.extra)
        })
    }

    /// The series for labels given per call.
    #[inline]
    pub(super) fn series(
        &'static self,
        pool: Option<Label>,
        command: Option<Label>,
    ) -> &'static Series {
        let (pool, command) = self.labels(pool, command);
        let last = self.last.load(Ordering::Acquire);
        // SAFETY: `last` is null or was stored from a `&'static Series`
        // (series are leaked by the registry and never freed).
        if let Some(last) = unsafe { last.as_ref() } {
            if last.pool == pool && last.command == command {
                return last;
            }
        }
        let found = series::series_labeled(self.kind, pool, command, self.extra);
        self.last
            .store(found as *const Series as *mut Series, Ordering::Release);
        found
    }
}
