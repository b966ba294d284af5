//! Verifying shipped logs where they are: one, or a fleet's (one log per host, each under a
//! prefix of its own, each its own chain and log id), in one run, with a result per host.

use auditring::{Reader, VerifyOptions, VerifyReport, verify_storage};

use crate::error::ShipError;
use crate::remote::Remote;
use crate::shipper::{HEAD_OBJECT, Head, STATE_PREFIX, get, segment_number};
use crate::storage::RemoteStorage;

/// Verifies the log shipped to `remote`'s prefix, as `auditring::verify` does a directory;
/// failures name its objects by URL. A log that verifies must also reach what the shipper's
/// head object says (its last seq, with its chain hash), or this fails with
/// [`ShipError::BehindHead`]: that catches newest objects deleted from the bucket, by anyone
/// who cannot also rewrite the head object (a signed checkpoint kept elsewhere catches both).
pub fn verify_remote(
    remote: &Remote,
    options: VerifyOptions<'_>,
) -> Result<VerifyReport, ShipError> {
    // The head first: a shipper moves it only after the segments it names are in place, so
    // the walk that follows sees at least as much, however far a shipper gets meanwhile.
    let state = remote.child(STATE_PREFIX);
    let head = get(&state, HEAD_OBJECT)?.map(|(bytes, _)| bytes);
    let storage = RemoteStorage::new(remote.clone());
    let report = verify_storage(&storage, options)?;
    let Some(bytes) = head.filter(|_| report.is_ok()) else {
        return Ok(report);
    };
    let head: Head = serde_json::from_slice(&bytes).map_err(|e| ShipError::BadHead {
        location: state.location(HEAD_OBJECT),
        reason: e.to_string(),
    })?;
    let behind = |why| ShipError::BehindHead {
        location: remote.url().to_owned(),
        head_seq: head.last_seq,
        head: head.head.clone(),
        log_seq: report.last_seq,
        why,
    };
    if report.last_seq < head.last_seq {
        return Err(behind("objects were removed from its end"));
    }
    let chain = if head.last_seq < report.first_seq {
        None
    } else {
        Reader::with_storage(storage)
            .snapshot()?
            .get(head.last_seq)?
            .map(|r| r.chain.to_string())
    };
    if chain.is_some_and(|c| c != head.head) {
        return Err(behind("the log holds another chain hash there"));
    }
    Ok(report)
}

/// One host's log in a fleet, and what verifying it found.
#[derive(Debug)]
#[non_exhaustive]
pub struct HostReport {
    /// The host's prefix name.
    pub host: String,
    /// Its URL.
    pub url: String,
    /// The verification; `Ok` with a failure in it if the log was edited, cut or torn.
    pub result: Result<VerifyReport, ShipError>,
}

impl HostReport {
    /// Whether the host's log verified.
    pub fn is_ok(&self) -> bool {
        self.result.as_ref().is_ok_and(VerifyReport::is_ok)
    }
}

/// Verifies every log under `remote`'s prefix: each sub-prefix that holds segments is one
/// host's log. `options` makes the options of each verification.
pub fn verify_fleet(
    remote: &Remote,
    mut options: impl FnMut() -> VerifyOptions<'static>,
) -> Result<Vec<HostReport>, ShipError> {
    let (_, hosts) = remote.list()?;
    let mut reports = Vec::new();
    for host in hosts {
        if host == STATE_PREFIX {
            continue;
        }
        let log = remote.child(&host);
        let (objects, _) = log.list()?;
        if !objects.iter().any(|(n, _)| segment_number(n).is_some()) {
            continue;
        }
        reports.push(HostReport {
            url: log.url().to_owned(),
            result: verify_remote(&log, options()),
            host,
        });
    }
    Ok(reports)
}
