//! A call dropped without `finish`: a panic unwinding through its body,
//! recorded with the panic's message and location as its error, or an async
//! call cancelled between polls.

use super::{clock, Active, TIMING};
use crate::model::error::{ErrorContext, ErrorKind};
use crate::model::Outcome;

impl Active {
    /// Dropped without `finish`: a panic unwinding through the body, or an
    /// async call dropped between polls.
    #[cold]
    #[inline(never)]
    pub(super) fn abandoned(self) {
        let ended = if TIMING { clock::now() } else { 0 };
        if self.in_body || std::thread::panicking() {
            self.complete(Outcome::Panic, ended, || {
                let (message, location) = crate::imp::panic::take()
                    .unwrap_or_else(|| ("panic message not captured".to_owned(), None));
                let mut ctx = ErrorContext::message(ErrorKind::Panic, "panic", message);
                ctx.location = location;
                // A panic message is as likely as an error to quote a secret.
                Some(ctx.sanitized())
            });
        } else {
            self.complete(Outcome::Cancelled, ended, || None);
        }
    }
}
