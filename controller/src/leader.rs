//! Leader election: only the holder of the Lease reconciles, and it writes to ARM only
//! while no other replica can have taken the Lease over.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use futures::{FutureExt, future::BoxFuture};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::metrics::Metrics;

/// The Lease this replica competes for.
pub struct Election {
    pub client: Client,
    pub lease_name: String,
    pub lease_namespace: String,
    pub identity: String,
    /// Seconds a lease is held without renewal.
    pub duration_seconds: u64,
}

/// Takes part in the election until `stop` is set. Each time this replica wins, `lead` runs
/// with a future that resolves when the lease is lost or `stop` is set, and must return
/// then. Meanwhile `deadline` is kept at [`write_deadline`] of the Lease (see
/// `Context::may_write`), `ready` is set while standing by and `metrics.leader` says who
/// leads. The lease is released at the end.
pub async fn run<L, F>(
    election: Election,
    deadline: Arc<AtomicI64>,
    metrics: &Metrics,
    ready: &AtomicBool,
    stop: watch::Receiver<bool>,
    mut lead: L,
) -> anyhow::Result<()>
where
    L: FnMut(BoxFuture<'static, ()>) -> F,
    F: Future<Output = ()>,
{
    let leases: Api<Lease> = Api::namespaced(election.client.clone(), &election.lease_namespace);
    let identity = election.identity.clone();
    let tracker = tokio::spawn(track_lease(
        leases.clone(),
        election.lease_name.clone(),
        identity.clone(),
        deadline.clone(),
        Duration::from_millis(election.duration_seconds * 100).max(Duration::from_secs(1)),
    ));
    let manager = LeaseManagerBuilder::new(election.client.clone(), &election.lease_name)
        .with_namespace(&election.lease_namespace)
        .with_identity(&identity)
        .with_duration(election.duration_seconds)
        .with_grace(election.duration_seconds.div_ceil(3).max(1))
        .build()
        .await
        .context("creating the lease manager")?;
    let (mut leader_rx, lease_task) = manager.watch().await;
    let mut standing_by = stop.clone();
    loop {
        // Standing by counts as ready: a non-leader is healthy and needs no traffic.
        ready.store(true, Ordering::Relaxed);
        metrics.leader.set(0);
        if !wait_to_lead(&mut leader_rx, &mut standing_by).await? {
            break;
        }
        // The tracker may not have seen this replica's lease yet: read it now, so that the
        // first reconciles may write.
        if let Ok(lease) = leases.get_opt(&election.lease_name).await {
            deadline.store(write_deadline(lease.as_ref(), &identity), Ordering::Release);
        }
        info!(%identity, "leading: starting reconcilers");
        metrics.leader.set(1);
        lead(until_lost(leader_rx.clone(), stop.clone())).await;
        info!(%identity, "stopped reconciling");
        if *standing_by.borrow() {
            break;
        }
    }
    metrics.leader.set(0);
    tracker.abort();
    // Dropping the receiver makes the lease task release the lease and end.
    drop(leader_rx);
    match lease_task.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => warn!(error = %e, "releasing the lease"),
        Err(e) => warn!(error = %e, "lease task"),
    }
    Ok(())
}

/// Waits until this replica leads (`true`) or `stop` is set (`false`).
async fn wait_to_lead(
    leader: &mut watch::Receiver<bool>,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<bool> {
    while !*leader.borrow_and_update() {
        tokio::select! {
            changed = leader.changed() => changed.context("lease manager stopped")?,
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return Ok(false);
        }
    }
    Ok(!*stop.borrow())
}

/// Resolves when the lease is lost or `stop` is set.
fn until_lost(
    mut leader: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
) -> BoxFuture<'static, ()> {
    async move {
        tokio::select! {
            _ = async { while leader.changed().await.is_ok() && *leader.borrow() {} } => {}
            _ = stopped(stop) => {}
        }
    }
    .boxed()
}

/// Resolves once `stop` is set (or its sender is gone).
pub async fn stopped(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Until when (Unix ms) `identity` may write to ARM given `lease`: the renewal time its
/// holder wrote (with its own clock) plus the lease duration, less a fifth for clock skew
/// and a write in flight; 0 when another replica or nobody holds it.
pub fn write_deadline(lease: Option<&Lease>, identity: &str) -> i64 {
    let Some(spec) = lease.and_then(|lease| lease.spec.as_ref()) else {
        return 0;
    };
    if spec.holder_identity.as_deref() != Some(identity) {
        return 0;
    }
    let (Some(renewed), Some(seconds)) = (spec.renew_time.as_ref(), spec.lease_duration_seconds)
    else {
        return 0;
    };
    let duration_ms = i64::from(seconds) * 1000;
    renewed.0.as_millisecond() + duration_ms - duration_ms / 5
}

/// Keeps `deadline` at [`write_deadline`] of the Lease, read every `every`. A failed
/// read leaves it where it was, so a leader cut off from the apiserver stops writing to
/// ARM before its lease expires for the other replicas (the lease manager itself reports
/// nothing while it cannot reach the apiserver).
async fn track_lease(
    leases: Api<Lease>,
    name: String,
    identity: String,
    deadline: Arc<AtomicI64>,
    every: Duration,
) {
    loop {
        match leases.get_opt(&name).await {
            Ok(lease) => {
                deadline.store(write_deadline(lease.as_ref(), &identity), Ordering::Release)
            }
            Err(error) => debug!(%error, "reading the lease"),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::coordination::v1::LeaseSpec, apimachinery::pkg::apis::meta::v1::MicroTime,
        jiff::Timestamp,
    };

    use super::*;

    fn lease(holder: &str, renewed_ms: i64, seconds: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(Timestamp::from_millisecond(renewed_ms).unwrap())),
                lease_duration_seconds: Some(seconds),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn writes_end_a_fifth_of_the_lease_before_it_expires_and_only_for_the_holder() {
        let renewed = 1_800_000_000_000;
        assert_eq!(
            write_deadline(Some(&lease("me", renewed, 15)), "me"),
            renewed + 12_000
        );
        assert_eq!(write_deadline(Some(&lease("other", renewed, 15)), "me"), 0);
        assert_eq!(write_deadline(None, "me"), 0);
        assert_eq!(write_deadline(Some(&Lease::default()), "me"), 0);
    }
}
