//! A small tokio service that audits every request through the `tracing` layer.
//!
//! It listens on a local port, answers a line protocol (`<user> <path>` → `200 ok` or
//! `403 forbidden`), and records one audit event per request, with the user as the actor and
//! the request's trace id from its span. A client in the same program sends requests from many
//! tasks at once; then the service stops, records that durably with an awaited receipt, closes
//! the log and verifies it.
//!
//! ```text
//! cargo run --release --example tokio_service [LOG_DIR]
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use auditring::{AuditLayer, Durability, Event, Ring, VerifyOptions, verify};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

const CLIENTS: u64 = 20;
const REQUESTS: u64 = 25;

/// Request ids, for the trace ids of the spans.
static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

async fn handle(stream: TcpStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        let (user, path) = line.split_once(' ').unwrap_or((line.as_str(), "/"));
        let trace_id = format!("{:032x}", NEXT_REQUEST.fetch_add(1, Ordering::Relaxed));
        let span = tracing::info_span!("request", %trace_id, actor = user);
        let status = async {
            let status = if path.starts_with("/admin") && user != "root" {
                403
            } else {
                200
            };
            // The audit event: chosen by its target, the actor and trace id from the span.
            tracing::info!(target: "audit", kind = "http.request", path, status, "request");
            status
        }
        .instrument(span)
        .await;
        let answer = if status == 200 {
            "200 ok\n"
        } else {
            "403 forbidden\n"
        };
        write.write_all(answer.as_bytes()).await?;
    }
    Ok(())
}

async fn client(port: u16, n: u64) -> std::io::Result<u64> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut forbidden = 0;
    for i in 0..REQUESTS {
        let path = if i % 5 == 0 {
            "/admin/users"
        } else {
            "/orders"
        };
        write
            .write_all(format!("user-{n} {path}/{i}\n").as_bytes())
            .await?;
        let answer = lines.next_line().await?.unwrap_or_default();
        forbidden += u64::from(answer.starts_with("403"));
    }
    Ok(forbidden)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| tmp.path().join("audit"), Into::into);
    let ring = Ring::builder(&dir).durability(Durability::Batch).open()?;
    let producer = ring.producer();
    let (layer, guard) = AuditLayer::builder(ring).build();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))?;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(handle(stream));
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| tokio::spawn(client(port, n)))
        .collect();
    let mut forbidden = 0;
    for c in clients {
        forbidden += c.await??;
    }
    server.abort();

    // A last event that must be durable before the service reports it stopped: the receipt is
    // awaited, blocking no executor thread.
    let receipt = producer
        .push_tracked_async(Event::new("service.stopped").with_actor("tokio_service"))
        .await?
        .await?;
    guard.close()?;

    let report = verify(&dir, VerifyOptions::default())?;
    let requests = CLIENTS * REQUESTS;
    println!(
        "{requests} requests ({forbidden} forbidden) audited in {}: {} records, last seq {} \
         (durable: {}), verified: {}",
        dir.display(),
        report.events,
        receipt.seq,
        receipt.durable,
        report.is_ok()
    );
    if !report.is_ok() || report.events != requests + 1 || receipt.seq != requests + 1 {
        return Err("the audit log does not hold every request".into());
    }
    Ok(())
}
