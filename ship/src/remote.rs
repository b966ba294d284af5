//! A prefix of an object store, named by URL, and the requests made to it: each one retried
//! with backoff while the store fails in a way that may pass, and given up after a time limit.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore};
use tokio::runtime::Runtime;

use crate::error::ShipError;

/// How requests are retried.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Retry {
    /// Requests made for one operation before it fails, the first included.
    pub attempts: u32,
    /// The wait before the second request; it doubles, up to `max_backoff`.
    pub first_backoff: Duration,
    /// The longest wait between two requests.
    pub max_backoff: Duration,
    /// How long one request may take (a segment's upload included) before it is abandoned
    /// and made again.
    pub timeout: Duration,
}

impl Default for Retry {
    /// Six requests, waiting 0.1 s, 0.2 s, ... up to 5 s between them; five minutes each.
    fn default() -> Retry {
        Retry {
            attempts: 6,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(300),
        }
    }
}

impl Retry {
    /// `attempts` requests at most, `timeout` each, with backoff from `first_backoff`.
    pub fn new(attempts: u32, first_backoff: Duration, timeout: Duration) -> Retry {
        Retry {
            attempts: attempts.max(1),
            first_backoff,
            max_backoff: Duration::from_secs(5).max(first_backoff),
            timeout,
        }
    }
}

/// What is directly under a prefix: its objects, by name, and the names of its sub-prefixes.
pub(crate) type Listed = (Vec<(String, ObjectMeta)>, Vec<String>);

/// A prefix of an object store: where one log is shipped (or, for a fleet, where the logs of
/// many hosts are, one prefix each).
#[derive(Clone)]
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    /// The prefix inside the store; the root is the empty path.
    prefix: ObjectPath,
    /// The URL, without a trailing `/`: how messages name the prefix.
    url: String,
    runtime: Arc<Runtime>,
    retry: Retry,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.url)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Opens the store `url` names, as `object_store` parses it (`file:///dir`,
    /// `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`, ...). Its
    /// configuration comes from the environment, under the names `object_store` reads
    /// (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`, ...).
    pub fn open(url: &str) -> Result<Remote, ShipError> {
        let bad = |reason: String| ShipError::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let options = std::env::vars().map(|(k, v)| (k.to_ascii_lowercase(), v));
        let (store, prefix) =
            object_store::parse_url_opts(&parsed, options).map_err(|e| bad(e.to_string()))?;
        Remote::with_store(Arc::from(store), prefix, url)
    }

    /// The prefix `prefix` of `store`, named `url` in messages: for a store built by hand
    /// (other options, a wrapper of one's own).
    pub fn with_store(
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
        url: &str,
    ) -> Result<Remote, ShipError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("auditring-ship")
            .enable_all()
            .build()
            .map_err(|e| ShipError::BadUrl {
                url: url.to_owned(),
                reason: format!("starting the runtime for its requests: {e}"),
            })?;
        Ok(Remote {
            store,
            prefix,
            url: url.trim_end_matches('/').to_owned(),
            runtime: Arc::new(runtime),
            retry: Retry::default(),
        })
    }

    /// The same prefix, with requests retried as `retry` says.
    #[must_use]
    pub fn with_retry(mut self, retry: Retry) -> Remote {
        self.retry = retry;
        self
    }

    /// The prefix's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The sub-prefix `name` (a host's, in a fleet).
    #[must_use]
    pub fn child(&self, name: &str) -> Remote {
        Remote {
            prefix: self.path(name),
            url: format!("{}/{name}", self.url),
            ..self.clone()
        }
    }

    /// The path of object `name` under the prefix.
    pub(crate) fn path(&self, name: &str) -> ObjectPath {
        self.prefix.child(name)
    }

    /// The URL of object `name`, for messages.
    pub(crate) fn location(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    /// The store.
    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The objects directly under the prefix, and the names of the sub-prefixes.
    pub(crate) fn list(&self) -> Result<Listed, ShipError> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let listed = self.run("listing", &self.url, || {
            self.store.list_with_delimiter(prefix)
        })?;
        let name = |p: &ObjectPath| p.filename().map(str::to_owned);
        let objects = (listed.objects.into_iter())
            .filter_map(|m| name(&m.location).map(|n| (n, m)))
            .collect();
        let prefixes = listed.common_prefixes.iter().filter_map(name).collect();
        Ok((objects, prefixes))
    }

    /// Runs `request` on the runtime, made again after a failure that may pass (not one that
    /// says the object is missing, exists, changed, or may not be touched) or a timeout, with
    /// backoff, until it succeeds or `retry.attempts` requests were made.
    pub(crate) fn run<T, F, Fut>(
        &self,
        doing: &'static str,
        location: &str,
        request: F,
    ) -> Result<T, ShipError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = object_store::Result<T>>,
    {
        let retry = self.retry;
        self.runtime.block_on(async {
            let mut backoff = retry.first_backoff;
            let mut attempt = 1;
            loop {
                match tokio::time::timeout(retry.timeout, request()).await {
                    Ok(Ok(value)) => return Ok(value),
                    Ok(Err(e)) if !may_pass(&e) || attempt >= retry.attempts => {
                        return Err(ShipError::Store {
                            doing,
                            location: location.to_owned(),
                            source: e,
                        });
                    }
                    Err(_elapsed) if attempt >= retry.attempts => {
                        return Err(ShipError::Timeout {
                            doing,
                            location: location.to_owned(),
                            seconds: retry.timeout.as_secs_f64(),
                            attempts: attempt,
                        });
                    }
                    // Failed in a way that may pass, or no answer in time: again.
                    Ok(Err(_)) | Err(_) => {}
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(retry.max_backoff);
                attempt += 1;
            }
        })
    }
}

/// Whether a request that failed with `e` may succeed if made again.
fn may_pass(e: &object_store::Error) -> bool {
    !matches!(
        e,
        object_store::Error::NotFound { .. }
            | object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. }
            | object_store::Error::NotModified { .. }
            | object_store::Error::NotImplemented
            | object_store::Error::NotSupported { .. }
            | object_store::Error::InvalidPath { .. }
            | object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }
            | object_store::Error::UnknownConfigurationKey { .. }
    )
}
