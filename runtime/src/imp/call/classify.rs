//! The autoref-specialization traits that classify a return value. The macro
//! calls `(&&&&&&Ret(&value)).__poolscope_classify()`; method lookup picks the
//! first impl whose bounds hold, from `ErrorDetails` down to "not a `Result`".

use super::{Classified, ErrView};
use crate::model::error::ErrorDetails;
use std::fmt::{Debug, Display};

/// A borrowed return value, the receiver of the classification.
pub struct Ret<'a, T: ?Sized>(pub &'a T);

/// `Result<_, E: ErrorDetails>`.
pub trait ClassifyDetails<'a> {
    /// Classifies.
    fn __poolscope_classify(&self) -> Classified<'a>;
}
impl<'a, T, E: ErrorDetails> ClassifyDetails<'a> for &&&&&Ret<'a, Result<T, E>> {
    #[inline(always)]
    fn __poolscope_classify(&self) -> Classified<'a> {
        match self.0 {
            Ok(_) => Classified::Ok,
            Err(e) => Classified::Err(std::any::type_name::<E>(), ErrView::Details(e)),
        }
    }
}

/// `Result<_, E: Error>`.
pub trait ClassifyError<'a> {
    /// Classifies.
    fn __poolscope_classify(&self) -> Classified<'a>;
}
impl<'a, T, E: std::error::Error> ClassifyError<'a> for &&&&Ret<'a, Result<T, E>> {
    #[inline(always)]
    fn __poolscope_classify(&self) -> Classified<'a> {
        match self.0 {
            Ok(_) => Classified::Ok,
            Err(e) => Classified::Err(std::any::type_name::<E>(), ErrView::Error(e)),
        }
    }
}

/// `Result<_, E: Display>`.
pub trait ClassifyDisplay<'a> {
    /// Classifies.
    fn __poolscope_classify(&self) -> Classified<'a>;
}
impl<'a, T, E: Display> ClassifyDisplay<'a> for &&&Ret<'a, Result<T, E>> {
    #[inline(always)]
    fn __poolscope_classify(&self) -> Classified<'a> {
        match self.0 {
            Ok(_) => Classified::Ok,
            Err(e) => Classified::Err(std::any::type_name::<E>(), ErrView::Display(e)),
        }
    }
}

/// `Result<_, E: Debug>`.
pub trait ClassifyDebug<'a> {
    /// Classifies.
    fn __poolscope_classify(&self) -> Classified<'a>;
}
impl<'a, T, E: Debug> ClassifyDebug<'a> for &&Ret<'a, Result<T, E>> {
    #[inline(always)]
    fn __poolscope_classify(&self) -> Classified<'a> {
        match self.0 {
            Ok(_) => Classified::Ok,
            Err(e) => Classified::Err(std::any::type_name::<E>(), ErrView::Debug(e)),
        }
    }
}

/// Any other `Result`.
pub trait ClassifyOpaque<'a> {
    /// Classifies.
    fn __poolscope_classify(&self) -> Classified<'a>;
}
impl<'a, T, E> ClassifyOpaque<'a> for &Ret<'a, Result<T, E>> {
    #[inline(always)]
    fn __poolscope_classify(&self) -> Classified<'a> {
        match self.0 {
            Ok(_) => Classified::Ok,
            Err(_) => Classified::Err(std::any::type_name::<E>(), ErrView::Opaque),
        }
    }
}

/// Anything that is not a `Result` is a success.
pub trait ClassifyOk<'a> {
    /// Classifies.
    fn __poolscope_classify(&self) -> Classified<'a>;
}
impl<'a, T: ?Sized> ClassifyOk<'a> for Ret<'a, T> {
    #[inline(always)]
    fn __poolscope_classify(&self) -> Classified<'a> {
        Classified::Ok
    }
}

/// A borrowed argument, the receiver of argument formatting.
pub struct Arg<'a, T: ?Sized>(pub &'a T);

/// Arguments that implement `Debug` are formatted with it.
pub trait ArgDebug {
    /// Formats.
    fn __poolscope_arg(&self) -> String;
}
impl<T: Debug + ?Sized> ArgDebug for &Arg<'_, T> {
    fn __poolscope_arg(&self) -> String {
        format!("{:?}", self.0)
    }
}

/// Other arguments show their type, so that turning an aspect on never
/// demands a `Debug` impl the build without it did not.
pub trait ArgOpaque {
    /// Formats.
    fn __poolscope_arg(&self) -> String;
}
impl<T: ?Sized> ArgOpaque for Arg<'_, T> {
    fn __poolscope_arg(&self) -> String {
        format!("<{}>", std::any::type_name::<T>())
    }
}

#[cfg(test)]
// The extra borrows are the point: they select the impl.
#[allow(clippy::needless_borrow)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct OnlyDebug;
    struct Nothing;

    fn kind(c: Classified<'_>) -> String {
        match c {
            Classified::Ok => "ok".into(),
            Classified::Err(_, ErrView::Details(e)) => {
                format!("details:{}", e.error_context().message)
            }
            Classified::Err(_, ErrView::Error(e)) => format!("error:{e}"),
            Classified::Err(_, ErrView::Display(e)) => format!("display:{e}"),
            Classified::Err(_, ErrView::Debug(e)) => format!("debug:{e:?}"),
            Classified::Err(t, ErrView::Opaque) => {
                format!("opaque:{}", t.rsplit("::").next().unwrap_or(t))
            }
        }
    }

    #[test]
    fn error_details_come_first() {
        let crash: Result<(), crate::model::error::WorkerCrash> =
            Err(crate::model::error::WorkerCrash::exited(
                3,
                b"",
                std::time::Duration::from_secs(1),
                None,
            ));
        assert_eq!(
            kind((&&&&&&Ret(&crash)).__poolscope_classify()),
            "details:worker exited with code 3 after 1.0 s"
        );
    }

    #[test]
    fn classification_picks_the_richest_view() {
        let io: Result<(), std::io::Error> = Err(std::io::Error::other("io"));
        assert_eq!(kind((&&&&&&Ret(&io)).__poolscope_classify()), "error:io");
        let s: Result<u8, String> = Err("text".into());
        assert_eq!(kind((&&&&&&Ret(&s)).__poolscope_classify()), "display:text");
        let d: Result<u8, OnlyDebug> = Err(OnlyDebug);
        assert_eq!(
            kind((&&&&&&Ret(&d)).__poolscope_classify()),
            "debug:OnlyDebug"
        );
        let n: Result<u8, Nothing> = Err(Nothing);
        assert_eq!(
            kind((&&&&&&Ret(&n)).__poolscope_classify()),
            "opaque:Nothing"
        );
        let ok: Result<u8, Nothing> = Ok(1);
        assert_eq!(kind((&&&&&&Ret(&ok)).__poolscope_classify()), "ok");
        assert_eq!(kind((&&&&&&Ret(&5_u8)).__poolscope_classify()), "ok");
        assert_eq!(kind((&&&&&&Ret(&Nothing)).__poolscope_classify()), "ok");
    }

    fn generic<E>(r: &Result<(), E>) -> String {
        kind((&&&&&&Ret(r)).__poolscope_classify())
    }

    #[test]
    fn classification_in_generic_code_falls_back_to_the_bounds_in_scope() {
        assert_eq!(
            generic::<std::io::Error>(&Err(std::io::Error::other("x"))),
            "opaque:Error"
        );
    }

    #[test]
    fn arguments_without_debug_show_their_type() {
        assert_eq!((&&Arg(&"a")).__poolscope_arg(), "\"a\"");
        assert!((&&Arg(&Nothing)).__poolscope_arg().ends_with("Nothing>"));
    }
}
