//! Shipping against a real S3 API: an S3-compatible server on 127.0.0.1 that
//! `scripts/s3-tests.sh` starts (moto, from the Python package index), creates a bucket on, and names in
//! `AUDITRING_TEST_S3` (`s3://bucket`), with the endpoint and credentials in the environment
//! as `object_store` reads them. Run by that script (and so by `.ci/run`); ignored otherwise.

use std::sync::Arc;

use auditring::{Durability, Event, Ring, VerifyOptions};
use auditring_ship::{Remote, ShipError, Shipper, verify_fleet, verify_remote};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions, UpdateVersion};

fn bucket() -> String {
    std::env::var("AUDITRING_TEST_S3").expect("AUDITRING_TEST_S3: run scripts/s3-tests.sh")
}

fn log(dir: &std::path::Path, events: u64) {
    let ring = Ring::builder(dir)
        .segment_size(64 * 1024)
        .durability(Durability::None)
        .open()
        .unwrap();
    for i in 0..events {
        ring.push(
            Event::new("s3.test")
                .with_details_json(format!("{{\"i\":{i},\"pad\":\"{}\"}}", "y".repeat(150)))
                .unwrap(),
        )
        .unwrap();
    }
    ring.close().unwrap();
}

/// The store the URL names, built as `Remote::open` builds it.
fn store(url: &str) -> (Arc<dyn ObjectStore>, ObjectPath) {
    let options = std::env::vars().map(|(k, v)| (k.to_ascii_lowercase(), v));
    let (store, path) = object_store::parse_url_opts(&url.parse().unwrap(), options).unwrap();
    (Arc::from(store), path)
}

#[test]
#[ignore = "needs an S3 server: scripts/s3-tests.sh"]
fn the_server_refuses_what_the_shipper_relies_on_it_refusing() {
    let (store, prefix) = store(&format!("{}/semantics", bucket()));
    let path = prefix.child("object");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let create = || PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let first = store
            .put_opts(&path, b"one".to_vec().into(), create())
            .await
            .unwrap();
        let again = store
            .put_opts(&path, b"two".to_vec().into(), create())
            .await;
        assert!(
            matches!(again, Err(object_store::Error::AlreadyExists { .. })),
            "a create-only put over an object: {again:?}"
        );
        let version = UpdateVersion {
            e_tag: first.e_tag.clone(),
            version: first.version.clone(),
        };
        let update = |v: &UpdateVersion| PutOptions {
            mode: PutMode::Update(v.clone()),
            ..PutOptions::default()
        };
        store
            .put_opts(&path, b"three".to_vec().into(), update(&version))
            .await
            .unwrap();
        let stale = store
            .put_opts(&path, b"four".to_vec().into(), update(&version))
            .await;
        assert!(
            matches!(stale, Err(object_store::Error::Precondition { .. })),
            "a conditional put on a version replaced since: {stale:?}"
        );
        let now = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(&now[..], b"three");
    });
}

#[test]
#[ignore = "needs an S3 server: scripts/s3-tests.sh"]
fn logs_shipped_to_s3_verify_there_and_an_edit_in_the_bucket_is_located() {
    let tmp = tempfile::tempdir().unwrap();
    let fleet = format!("{}/fleet-{}", bucket(), std::process::id());
    for (host, events) in [("host-a", 2500), ("host-b", 1500)] {
        let dir = tmp.path().join(host);
        log(&dir, events);
        let shipper = Shipper::new(Remote::open(&format!("{fleet}/{host}")).unwrap());
        let first = shipper.ship(&dir).unwrap();
        assert!(first.uploaded.len() >= 2, "{first:?}");
        let again = shipper.ship(&dir).unwrap();
        assert!(again.uploaded.is_empty());
        assert_eq!(again.already_there, first.uploaded.len());
        let report = verify_remote(shipper.remote(), VerifyOptions::default()).unwrap();
        assert!(report.is_ok(), "{:?}", report.failure);
        assert_eq!(report.last_seq, first.head.unwrap().last_seq);
    }
    // One byte of host-b's second segment, changed in the bucket.
    let (store, prefix) = store(&fleet);
    let path = prefix.child("host-b").child("0000000000000002.seg");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut bytes = rt
        .block_on(async { store.get(&path).await.unwrap().bytes().await.unwrap() })
        .to_vec();
    bytes[10_000] ^= 0x04;
    rt.block_on(store.put(&path, bytes.into())).unwrap();
    let reports = verify_fleet(&Remote::open(&fleet).unwrap(), VerifyOptions::default).unwrap();
    let summary: Vec<(&str, bool)> = reports
        .iter()
        .map(|r| (r.host.as_str(), r.is_ok()))
        .collect();
    assert_eq!(summary, [("host-a", true), ("host-b", false)]);
    let failure = reports[1].result.as_ref().unwrap().failure.clone().unwrap();
    assert_eq!(
        failure.file.to_str().unwrap(),
        format!("{fleet}/host-b/0000000000000002.seg")
    );
    assert!(failure.offset <= 10_000, "{failure}");

    // Another log shipped to host-a's prefix is refused.
    let other = tmp.path().join("other");
    log(&other, 600);
    let err = Shipper::new(Remote::open(&format!("{fleet}/host-a")).unwrap())
        .ship(&other)
        .unwrap_err();
    assert!(matches!(err, ShipError::OtherLog { .. }), "{err}");
}
