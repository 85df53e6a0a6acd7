//! Lease and leader-election timings, and the checks of duration and count flags.

use std::time::Duration;

use super::{ConfigError, Result};

/// Cluster and instance lease timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimings {
    pub duration: Duration,
    pub renew_interval: Duration,
}

/// client-go style leader election timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderTimings {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// Publishing of this replica's connection states (see `coord::replicas`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaStateTimings {
    /// Heartbeat of the published states; rows of a replica silent for three intervals are
    /// shown stale.
    pub interval: Duration,
    /// Rows of a replica silent this long are deleted by the leader.
    pub retention: Duration,
}

impl ReplicaStateTimings {
    /// How long a replica may stay silent before its rows are shown stale.
    pub fn stale_after(&self) -> Duration {
        self.interval * 3
    }
}

/// Both positive, and the retention longer than the stale window (otherwise a dead replica's
/// rows would vanish before anyone saw them stale).
pub(super) fn replica_state_timings(interval: u64, retention: u64) -> Result<ReplicaStateTimings> {
    let timings = ReplicaStateTimings {
        interval: positive(
            interval,
            "replica-state-interval-seconds",
            "REPLICA_STATE_INTERVAL_SECONDS",
        )?,
        retention: positive(
            retention,
            "replica-state-retention-seconds",
            "REPLICA_STATE_RETENTION_SECONDS",
        )?,
    };
    if timings.retention <= timings.stale_after() {
        return Err(ConfigError::ReplicaStateRetention {
            retention,
            stale: interval.saturating_mul(3),
        });
    }
    Ok(timings)
}

pub(super) fn positive(seconds: u64, flag: &'static str, env: &'static str) -> Result<Duration> {
    if seconds == 0 {
        return Err(ConfigError::ZeroDuration { flag, env });
    }
    Ok(Duration::from_secs(seconds))
}

pub(super) fn at_least_one(value: usize, flag: &'static str, env: &'static str) -> Result<usize> {
    if value == 0 {
        return Err(ConfigError::Zero { flag, env });
    }
    Ok(value)
}

/// A renew interval of 0 or not below the duration would let leases lapse between renewals;
/// it falls back to a third of the duration (at least 1 s), with a warning.
pub(super) fn lease_timings(
    duration: u64,
    renew: u64,
    warnings: &mut Vec<String>,
) -> Result<LeaseTimings> {
    let duration = positive(duration, "lease-duration-seconds", "LEASE_DURATION_SECONDS")?;
    let renew_interval = if renew == 0 || renew >= duration.as_secs() {
        let fallback = (duration.as_secs() / 3).max(1);
        warnings.push(format!(
            "--lease-renew-interval-seconds {renew} must be between 1 and the lease duration \
             ({}s); using {fallback}s",
            duration.as_secs()
        ));
        Duration::from_secs(fallback)
    } else {
        Duration::from_secs(renew)
    };
    Ok(LeaseTimings {
        duration,
        renew_interval,
    })
}

/// The same rules client-go's `leaderelection.NewLeaderElector` enforces.
pub(super) fn leader_timings(duration: u64, deadline: u64, retry: u64) -> Result<LeaderTimings> {
    let lease_duration = positive(
        duration,
        "leader-lease-duration-seconds",
        "LEADER_LEASE_DURATION_SECONDS",
    )?;
    let renew_deadline = positive(
        deadline,
        "leader-renew-deadline-seconds",
        "LEADER_RENEW_DEADLINE_SECONDS",
    )?;
    let retry_period = positive(
        retry,
        "leader-retry-period-seconds",
        "LEADER_RETRY_PERIOD_SECONDS",
    )?;
    if lease_duration <= renew_deadline {
        return Err(ConfigError::LeaderTimings(format!(
            "lease duration ({duration}s) must be greater than the renew deadline ({deadline}s)"
        )));
    }
    // client-go: renewDeadline must exceed JitterFactor (1.2) × retryPeriod.
    if deadline * 10 <= retry * 12 {
        return Err(ConfigError::LeaderTimings(format!(
            "renew deadline ({deadline}s) must be greater than 1.2 × the retry period ({retry}s)"
        )));
    }
    Ok(LeaderTimings {
        lease_duration,
        renew_deadline,
        retry_period,
    })
}
