//! How a return value reads, and the outcome and error context read off it.
//! The context is built only when a failure is reported, which is rare.

use std::fmt::{Debug, Display};

use crate::model::error::{ErrorContext, ErrorDetails, ErrorKind};
use crate::model::Outcome;

/// How a return value reads: a success, or an error seen through the richest
/// trait its type implements.
pub enum Classified<'a> {
    /// Not an `Err`.
    Ok,
    /// An `Err`, with its type's name.
    Err(&'static str, ErrView<'a>),
}

/// An error value through the richest view available.
pub enum ErrView<'a> {
    /// [`ErrorDetails`]: the error's own structured context.
    Details(&'a (dyn ErrorDetails + 'a)),
    /// `std::error::Error`: message and source chain.
    Error(&'a (dyn std::error::Error + 'a)),
    /// `Display` only.
    Display(&'a (dyn Display + 'a)),
    /// `Debug` only.
    Debug(&'a (dyn Debug + 'a)),
    /// Neither: only the type name is known.
    Opaque,
}

impl ErrView<'_> {
    /// What the error says of how the call ended (see
    /// `ErrorDetails::outcome`).
    pub(super) fn outcome(&self) -> Outcome {
        match self {
            ErrView::Details(e) => match e.outcome() {
                outcome @ (Outcome::Timeout | Outcome::Rejected | Outcome::Panic) => outcome,
                _ => Outcome::Error,
            },
            _ => Outcome::Error,
        }
    }

    #[cold]
    pub(super) fn context(self, type_name: &'static str) -> ErrorContext {
        match self {
            ErrView::Details(e) => return e.error_context().sanitized(),
            ErrView::Error(e) => ErrorContext::from_dyn(type_name, e),
            ErrView::Display(e) => {
                ErrorContext::message(ErrorKind::Error, type_name, e.to_string())
            }
            ErrView::Debug(e) => {
                ErrorContext::message(ErrorKind::Error, type_name, format!("{e:?}"))
            }
            ErrView::Opaque => ErrorContext::message(
                ErrorKind::Error,
                type_name,
                format!("an error of type `{type_name}`"),
            ),
        }
        .sanitized()
    }
}
