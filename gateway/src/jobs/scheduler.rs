//! The leader-only scheduler: started when this replica gains leadership, cancelled (with its
//! runs and their plugin calls) when it loses it.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Job, Jobs, Run, RunStatus, Schedule, Trigger, execute};
use crate::clock::now_millis;
use crate::coord::leader::Leadership;
use crate::ids::random_id;

/// How many past occurrences the scheduler steps through per job and tick before it gives up
/// looking for the newest one (a 6-field `* * * * * *` after a long poll).
const MAX_STEPS: usize = 10_000;

/// Starts the task that runs the scheduler during each leader term of this replica, until the
/// gateway stops.
pub fn start(app: &Jobs, mut leadership: watch::Receiver<Leadership>) {
    let app = app.clone();
    let tasks = app.tasks.clone();
    tasks.spawn(async move {
        super::helm::ensure_builtin_job(&app).await;
        let shutdown = app.shutdown.clone();
        loop {
            // Wait to lead.
            let term = loop {
                let state = leadership.borrow_and_update().clone();
                if state.is_leader {
                    break state.term.unwrap_or_default();
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    changed = leadership.changed() => if changed.is_err() { return },
                }
            };
            tracing::info!(term, "leader: job scheduler started");
            let cancel = shutdown.child_token();
            let lost = async {
                loop {
                    if leadership.changed().await.is_err() {
                        return;
                    }
                    let state = leadership.borrow_and_update();
                    if !state.is_leader || state.term != Some(term) {
                        return;
                    }
                }
            };
            tokio::select! {
                () = lost => {}
                () = shutdown.cancelled() => {}
                () = run_term(&app, term, cancel.clone()) => {}
            }
            cancel.cancel();
            // The term's runs were dropped with `run_term` (their plugin calls cancelled);
            // record that they did not finish.
            match app
                .db
                .abandon_term_runs(
                    &app.instance_id,
                    term,
                    "cancelled: this replica stopped leading",
                )
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::warn!(runs = n, term, "leadership ended during job runs"),
                Err(e) => tracing::warn!(error = %e, "cannot record cancelled runs"),
            }
            tracing::info!(term, "job scheduler stopped");
            if shutdown.is_cancelled() {
                return;
            }
        }
    });
}

/// Per job: the revision it was planned at and the last occurrence considered.
struct Cursor {
    revision: i64,
    after: i64,
}

type RunFuture<'a> = Pin<Box<dyn Future<Output = Run> + Send + 'a>>;

/// One leader term: polls the jobs, claims due occurrences and runs them, until cancelled
/// (the future is dropped with the runs in it).
async fn run_term(app: &Jobs, term: i64, cancel: CancellationToken) {
    let poll = app.poll_interval;
    let started = now_millis();
    let mut cursors: HashMap<String, Cursor> = HashMap::new();
    let mut running: FuturesUnordered<RunFuture<'_>> = FuturesUnordered::new();
    // Jobs with a run in flight: their occurrences are skipped, never run concurrently.
    let mut busy: HashSet<String> = HashSet::new();
    loop {
        let now = now_millis();
        let mut wake = now + i64::try_from(poll.as_millis()).unwrap_or(i64::MAX);
        match app.db.jobs().await {
            Ok(jobs) => {
                cursors.retain(|id, _| jobs.iter().any(|j| &j.id == id));
                for job in jobs.into_iter().filter(|j| j.enabled) {
                    let Ok(schedule) = Schedule::parse(&job.cron) else {
                        tracing::warn!(job = %job.name, cron = %job.cron, "invalid cron; skipped");
                        continue;
                    };
                    // A new term or an edited job plans from now (or from the term start):
                    // occurrences before that are not caught up.
                    let cursor = cursors.entry(job.id.clone()).or_insert(Cursor {
                        revision: job.revision,
                        after: started.max(now - 1),
                    });
                    if cursor.revision != job.revision {
                        cursor.revision = job.revision;
                        cursor.after = now;
                    }
                    let mut due = None;
                    let mut at = cursor.after;
                    for _ in 0..MAX_STEPS {
                        match schedule.next_after(at) {
                            Some(next) if next <= now => {
                                due = Some(next);
                                at = next;
                            }
                            Some(next) => {
                                wake = wake.min(next);
                                break;
                            }
                            None => break,
                        }
                    }
                    cursor.after = at;
                    if let Some(scheduled_at) = due {
                        if busy.contains(&job.id) {
                            tracing::info!(
                                job = %job.name,
                                scheduled_at,
                                "previous run still in flight; occurrence skipped"
                            );
                            continue;
                        }
                        let Some(run) = claim(app, &job, scheduled_at, term).await else {
                            continue;
                        };
                        busy.insert(job.id.clone());
                        running.push(Box::pin(async move { execute(app, &job, run).await }));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "scheduler cannot read the jobs"),
        }
        let sleep = Duration::from_millis(u64::try_from(wake - now_millis()).unwrap_or(0))
            .max(Duration::from_millis(10));
        let deadline = tokio::time::Instant::now() + sleep;
        // Drive the runs while waiting for the next tick.
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep_until(deadline) => break,
                Some(run) = running.next(), if !running.is_empty() => {
                    busy.remove(&run.job_id);
                }
            }
        }
    }
}

/// Claims occurrence `scheduled_at` of `job` for this term; `None` when another replica (or
/// an earlier term) has it, or a newer term exists.
async fn claim(app: &Jobs, job: &Job, scheduled_at: i64, term: i64) -> Option<Run> {
    let run_id = random_id();
    match app
        .db
        .claim_scheduled_run(&run_id, &job.id, scheduled_at, &app.instance_id, term)
        .await
    {
        Ok(true) => Some(Run {
            id: run_id,
            job_id: job.id.clone(),
            scheduled_at: Some(scheduled_at),
            trigger: Trigger::Schedule,
            instance_id: app.instance_id.clone(),
            fencing_token: Some(term),
            status: RunStatus::Running,
            clusters_total: 0,
            clusters_skipped: 0,
            clusters_failed: 0,
            findings_total: 0,
            findings_failed: 0,
            error: None,
            started_at: now_millis(),
            finished_at: None,
        }),
        Ok(false) => {
            tracing::info!(job = %job.name, scheduled_at, "occurrence already claimed; not run");
            None
        }
        Err(e) => {
            tracing::warn!(job = %job.name, error = %e, "cannot claim a job run");
            None
        }
    }
}
