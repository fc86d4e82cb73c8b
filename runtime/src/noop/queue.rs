//! A queue records nothing: its items carry no stamp.

use super::pool::Pool;

/// No time is taken: a zero-sized stand-in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamp;

#[derive(Clone, Debug)]
pub(crate) struct Tracker;

impl Tracker {
    #[inline(always)]
    pub(crate) fn new(_pool: &Pool, _capacity: usize) -> Tracker {
        Tracker
    }

    #[inline(always)]
    pub(crate) fn enter(&self) -> Ticket<'_> {
        Ticket(std::marker::PhantomData)
    }

    #[inline(always)]
    pub(crate) fn taken(&self, _stamp: Stamp) {}

    #[inline(always)]
    pub(crate) fn leave(&self) {}
}

pub(crate) struct Ticket<'a>(std::marker::PhantomData<&'a Tracker>);

impl Ticket<'_> {
    #[inline(always)]
    pub(crate) fn stamp(&self) -> Stamp {
        Stamp
    }

    #[inline(always)]
    pub(crate) fn full(&self) {}

    #[inline(always)]
    pub(crate) fn queued(self) {}
}
