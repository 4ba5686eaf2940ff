//! The bucket of cluster mode's media (`--media s3://bucket/prefix`): the store's [`Bucket`]
//! over an S3-compatible server through `aws-sdk-s3`. The store calls it from blocking
//! threads, at times while holding a stream log's lock that async request handlers also take
//! briefly. So the S3 client runs on a small runtime of its own: a call waiting for S3 never
//! waits for the server's workers (which may be waiting for that lock), and fragment writes
//! are spawned there so the PUT's completion is what reports the fragment durable.

use bytes::Bytes;
use oxbow_store::{Bucket, ListedObject};

use crate::config::MediaBucket;

pub struct S3Bucket {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

/// The S3 client of media writes: a PUT that cannot reach the bucket fails within seconds
/// (so the producer hears an error ack soon), rather than backing off as long as the SDK's
/// defaults allow.
fn media_client(server: &crate::config::S3Target) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::retry::RetryConfig;
    use aws_sdk_s3::config::timeout::TimeoutConfig;
    use std::time::Duration;
    let base = crate::fragment_events::s3_client(server);
    let config = base
        .config()
        .to_builder()
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(100))
                .with_max_backoff(Duration::from_secs(1)),
        )
        // The body's integrity rides on TCP/TLS and the server's own checks; a CRC over every
        // fragment costs CPU per byte for nothing the store relies on.
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(10))
                .build(),
        )
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Threads of the S3 client's own runtime: one drives hundreds of uploads (they wait on the
/// network, not the CPU); a second only adds wake-ups and context switches.
const S3_THREADS: usize = 1;

impl Drop for S3Bucket {
    fn drop(&mut self) {
        // A runtime may not be dropped where blocking is not allowed (the server drops its
        // state on an async task): let its threads go in the background.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{what}: {e}"))
}

impl S3Bucket {
    /// The bucket `config` names, checked to exist and answer (HeadBucket).
    pub async fn connect(config: &MediaBucket) -> Result<Self, std::io::Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(S3_THREADS)
            .thread_name("oxbow-s3")
            .enable_all()
            .build()?;
        let client = media_client(&config.server);
        let (head, bucket) = (client.clone(), config.bucket.clone());
        let checked = runtime
            .spawn(async move { head.head_bucket().bucket(bucket).send().await })
            .await
            .map_err(|e| failed("media bucket check", e));
        let refused = match checked {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(failed(
                &format!(
                    "media bucket {} at {}",
                    config.bucket, config.server.endpoint
                ),
                aws_sdk_s3::error::DisplayErrorContext(e),
            )),
            Err(e) => Some(e),
        };
        if let Some(e) = refused {
            runtime.shutdown_background();
            return Err(e);
        }
        Ok(Self {
            client,
            bucket: config.bucket.clone(),
            runtime: Some(runtime),
        })
    }

    fn runtime(&self) -> std::io::Result<&tokio::runtime::Runtime> {
        self.runtime
            .as_ref()
            .ok_or_else(|| std::io::Error::other("the media bucket is closed"))
    }

    async fn put_object(
        client: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        body: Bytes,
    ) -> std::io::Result<()> {
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            // SigV4 over the headers only (UNSIGNED-PAYLOAD): hashing each fragment for the
            // signature was most of a PUT's CPU.
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map(drop)
            .map_err(|e| {
                failed(
                    &format!("PUT {key}"),
                    aws_sdk_s3::error::DisplayErrorContext(e),
                )
            })
    }

    /// One page after another of a listing.
    async fn list_pages(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        start_after: Option<&str>,
    ) -> std::io::Result<Vec<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output>> {
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_delimiter(delimiter.map(str::to_string))
                .set_start_after(start_after.map(str::to_string))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    failed(
                        &format!("LIST {prefix}"),
                        aws_sdk_s3::error::DisplayErrorContext(e),
                    )
                })?;
            token = page
                .is_truncated()
                .unwrap_or(false)
                .then(|| page.next_continuation_token().map(str::to_string))
                .flatten();
            pages.push(page);
            if token.is_none() {
                return Ok(pages);
            }
        }
    }
}

impl Bucket for S3Bucket {
    fn put(&self, key: String, body: Bytes, done: oxbow_store::Done) {
        let (client, bucket) = (self.client.clone(), self.bucket.clone());
        let Ok(runtime) = self.runtime() else {
            done(Err(std::io::Error::other("the media bucket is closed")));
            return;
        };
        runtime.spawn(async move {
            let result = Self::put_object(&client, &bucket, &key, body).await;
            // `done` takes the stream log's lock, which a blocking thread may hold while it
            // waits on this runtime: never on a worker thread.
            tokio::task::spawn_blocking(move || done(result));
        });
    }

    fn put_now(&self, key: &str, body: Bytes) -> std::io::Result<()> {
        self.runtime()?
            .block_on(Self::put_object(&self.client, &self.bucket, key, body))
    }

    fn get(&self, key: &str, range: Option<(u64, u64)>) -> std::io::Result<Option<Bytes>> {
        self.runtime()?.block_on(async {
            let asked = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .set_range(
                    range.map(|(start, end)| format!("bytes={start}-{}", end.saturating_sub(1))),
                )
                .send()
                .await;
            let object = match asked {
                Ok(o) => o,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                    return Ok(None)
                }
                Err(e) => {
                    return Err(failed(
                        &format!("GET {key}"),
                        aws_sdk_s3::error::DisplayErrorContext(e),
                    ))
                }
            };
            let body = object
                .body
                .collect()
                .await
                .map_err(|e| failed(&format!("GET {key}"), e))?;
            Ok(Some(body.into_bytes()))
        })
    }

    fn list(&self, prefix: &str, start_after: Option<&str>) -> std::io::Result<Vec<ListedObject>> {
        self.runtime()?.block_on(async {
            let pages = self.list_pages(prefix, None, start_after).await?;
            Ok(pages
                .iter()
                .flat_map(|p| p.contents())
                // Not every S3-compatible server honours StartAfter.
                .filter(|o| start_after.is_none_or(|s| o.key().is_some_and(|k| k > s)))
                .filter_map(|o| {
                    Some(ListedObject {
                        key: o.key()?.to_string(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                    })
                })
                .collect())
        })
    }

    fn list_dirs(&self, prefix: &str) -> std::io::Result<Vec<String>> {
        self.runtime()?.block_on(async {
            let pages = self.list_pages(prefix, Some("/"), None).await?;
            Ok(pages
                .iter()
                .flat_map(|p| p.common_prefixes())
                .filter_map(|c| {
                    let dir = c.prefix()?.strip_prefix(prefix)?.trim_end_matches('/');
                    (!dir.is_empty()).then(|| dir.to_string())
                })
                .collect())
        })
    }

    fn delete(&self, keys: &[String]) -> std::io::Result<()> {
        self.runtime()?.block_on(async {
            // One request per object: every S3-compatible server takes DeleteObject, not all
            // take the batch form, and deletions are rare (retention, DeleteStream).
            for key in keys {
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| {
                        failed(
                            &format!("DELETE {key}"),
                            aws_sdk_s3::error::DisplayErrorContext(e),
                        )
                    })?;
            }
            Ok(())
        })
    }
}
