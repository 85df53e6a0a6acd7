//! The wait between reconnection attempts of a failed cluster: the initial wait, doubled after
//! each failed attempt up to the cap, and back to the initial wait once the cluster answers.

use std::time::Duration;

/// Capped exponential backoff (1 s doubling to 60 s with the default options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The wait before the next attempt.
    pub(crate) fn delay(&self) -> Duration {
        self.next
    }

    /// An attempt failed: the next wait doubles, up to the cap.
    pub(crate) fn failed(&mut self) {
        self.next = (self.next * 2).min(self.max);
    }

    /// The cluster answered: the next failure starts from the initial wait again.
    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests;
