//! The `snapshot` thread: serves the member set, signed, to each verified request.

use super::*;

pub(super) fn snapshot_thread(rep: &Socket, inbox: &mut nng::Inbox, shared: Arc<Shared>) {
    // The encoding of the latest seq: a request costs a copy, not an encoding.
    let mut cached: Option<((u64, bool), Vec<u8>)> = None;
    // Per connection: the seq last sent and when. The same connection asking again
    // within an interval, with nothing changed, is not answered (req0 resends).
    let mut served: HashMap<u32, (u64, Instant)> = HashMap::new();
    let every = Duration::from_millis(u64::from(shared.interval_ms));
    loop {
        let msg = match inbox.recv() {
            Ok(m) => m,
            Err(e) if e.is_closed() => return,
            Err(e) => {
                log::warn!("snapshot socket receive failed: {e}");
                continue;
            }
        };
        let auth = shared.auth.get();
        match auth.check(Role::SnapshotRequest, msg.body()) {
            Ok(c) => shared.counters.auth.note(&c),
            Err(r) => {
                // No reply: a reader without the key learns nothing.
                shared.counters.auth.refused(r, "snapshot requests");
                continue;
            }
        }
        let nonce = match wire::decode(msg.body(), &shared.limits) {
            Ok(Message::SnapshotRequest { nonce }) => nonce,
            other => {
                shared.counters.dropped_requests.fetch_add(1, Relaxed);
                let why = match other {
                    Err(e) => e.to_string(),
                    Ok(_) => "not a snapshot request".into(),
                };
                log::debug!(
                    "dropped a snapshot request of {} bytes: {why}",
                    msg.body().len()
                );
                continue;
            }
        };
        let now = Instant::now();
        let seq = {
            let c = shared.core.lock().unwrap_or_else(|p| p.into_inner());
            let warming = shared.warming();
            if cached.as_ref().map(|(k, _)| *k) != Some((c.seq, warming)) {
                let head = wire::SnapshotHead {
                    nonce: 0,
                    epoch: shared.epoch,
                    seq: c.seq,
                    counter: c.counter,
                    interval_ms: shared.interval_ms,
                    warming,
                    digest: c.table.digest(),
                };
                let bytes = wire::encode_snapshot(&head, c.table.len(), c.table.members());
                cached = Some(((c.seq, warming), bytes));
            }
            c.seq
        };
        let pipe = msg.pipe();
        if let Some((s, t)) = served.get(&pipe) {
            if *s == seq && now.saturating_duration_since(*t) < every {
                shared
                    .counters
                    .dropped_repeat_requests
                    .fetch_add(1, Relaxed);
                continue;
            }
        }
        if served.len() >= 2 * DEFAULT_MAX_CONNECTIONS.max(1024) {
            served.retain(|_, (_, t)| now.saturating_duration_since(*t) < every);
        }
        served.insert(pipe, (seq, now));
        let mut bytes = cached.as_ref().map_or(Vec::new(), |(_, b)| b.clone());
        if let Some(at) = bytes.get_mut(wire::SNAPSHOT_NONCE_AT..wire::SNAPSHOT_NONCE_AT + 8) {
            at.copy_from_slice(&nonce.to_be_bytes());
        }
        let bytes = auth.seal(Role::Snapshot, bytes);
        shared.counters.snapshots.fetch_add(1, Relaxed);
        shared
            .counters
            .snapshot_bytes
            .fetch_add(bytes.len() as u64, Relaxed);
        // Never blocks; a reply that cannot go now is asked for again by the
        // requester (req0 re-sends).
        if let Err((_, e)) = rep.try_send(nng::Message::new(&[], &bytes)) {
            if e.is_closed() {
                return;
            }
            log::debug!("snapshot reply not sent: {e}");
        }
    }
}
