use std::time::Duration;

use super::*;
use crate::cluster::ClusterOptions;

fn secs(s: &[u64]) -> Vec<Duration> {
    s.iter().copied().map(Duration::from_secs).collect()
}

/// The waits before `attempts` reconnection attempts that all fail.
fn waits(backoff: &mut Backoff, attempts: usize) -> Vec<Duration> {
    (0..attempts)
        .map(|_| {
            let wait = backoff.delay();
            backoff.failed();
            wait
        })
        .collect()
}

#[test]
fn reconnects_wait_one_second_doubling_up_to_a_minute() {
    let options = ClusterOptions::default();
    let mut backoff = Backoff::new(options.backoff_initial, options.backoff_max);
    assert_eq!(
        waits(&mut backoff, 10),
        secs(&[1, 2, 4, 8, 16, 32, 60, 60, 60, 60])
    );
}

#[test]
fn an_answer_starts_the_schedule_again() {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    waits(&mut backoff, 8);
    assert_eq!(backoff.delay(), Duration::from_secs(60));
    backoff.reset();
    assert_eq!(waits(&mut backoff, 3), secs(&[1, 2, 4]));
}

#[test]
fn the_cap_holds_when_it_is_not_a_power_of_two_of_the_start() {
    let mut backoff = Backoff::new(Duration::from_millis(300), Duration::from_secs(1));
    assert_eq!(
        waits(&mut backoff, 4),
        [300, 600, 1000, 1000].map(Duration::from_millis)
    );
}
