//! Storage URLs: `file:///srv/hex` (or a plain path), `s3://bucket/prefix` and `memory://`,
//! and the S3 settings that go with them.
//!
//! S3 settings come from the usual `AWS_*` variables (`AWS_ENDPOINT`, `AWS_REGION`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`,
//! `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`, ...) and then from [`StoreOptions`], which the caller
//! fills from its config file only where the environment is silent. Requests that fail with a
//! timeout, a 5xx or throttling are retried with exponential backoff by object_store (up to
//! [`RETRIES`] times within [`RETRY_WINDOW`]), then surface as `StoreError::Unavailable`.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, RetryConfig};

use crate::Store;
use crate::error::StoreError;

/// Retries of one request before the store is reported unavailable.
pub const RETRIES: usize = 4;
/// Longest time spent retrying one request.
pub const RETRY_WINDOW: Duration = Duration::from_secs(15);
/// Longest wait for one response.
const REQUEST_TIMEOUT: &str = "30s";
/// Longest wait for a connection.
const CONNECT_TIMEOUT: &str = "3s";

/// An S3 setting a config file may give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Option {
    /// The service URL, for anything but AWS itself (`http://127.0.0.1:9000`).
    Endpoint,
    /// The region.
    Region,
    /// The access key id.
    AccessKeyId,
    /// The secret access key.
    SecretAccessKey,
    /// `true` to allow plain HTTP endpoints.
    AllowHttp,
    /// `false` for path-style requests (`endpoint/bucket/key`), which most self-hosted
    /// services need.
    VirtualHostedStyle,
}

impl S3Option {
    /// The `AWS_*` variable that sets it; when set, it wins over the config file.
    pub fn env_var(self) -> &'static str {
        match self {
            S3Option::Endpoint => "AWS_ENDPOINT",
            S3Option::Region => "AWS_REGION",
            S3Option::AccessKeyId => "AWS_ACCESS_KEY_ID",
            S3Option::SecretAccessKey => "AWS_SECRET_ACCESS_KEY",
            S3Option::AllowHttp => "AWS_ALLOW_HTTP",
            S3Option::VirtualHostedStyle => "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
        }
    }

    fn config_key(self) -> &'static str {
        match self {
            S3Option::Endpoint => "endpoint",
            S3Option::Region => "region",
            S3Option::AccessKeyId => "access_key_id",
            S3Option::SecretAccessKey => "secret_access_key",
            S3Option::AllowHttp => "allow_http",
            S3Option::VirtualHostedStyle => "virtual_hosted_style_request",
        }
    }
}

/// Settings for opening a store.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// S3 settings applied over the environment's.
    pub s3: Vec<(S3Option, String)>,
    /// Ignore `AWS_*` variables (tests that must not pick up the machine's).
    pub ignore_env: bool,
}

pub(crate) fn open(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
    let invalid = |reason: &str| StoreError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    if url == "memory://" {
        return Ok(Store::memory());
    }
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(invalid(
                "a file URL needs an absolute path: file:///srv/hex",
            ));
        }
        return Ok(Store::local(path));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("no bucket: use s3://bucket or s3://bucket/prefix"));
        }
        return open_s3(url, bucket, prefix.trim_end_matches('/'), options);
    }
    if url.contains("://") {
        return Err(invalid("use file:///path, s3://bucket/prefix or memory://"));
    }
    Ok(Store::local(url))
}

fn open_s3(
    url: &str,
    bucket: &str,
    prefix: &str,
    options: &StoreOptions,
) -> Result<Store, StoreError> {
    let mut builder = if options.ignore_env {
        AmazonS3Builder::new()
    } else {
        AmazonS3Builder::from_env()
    };
    builder = builder.with_bucket_name(bucket).with_retry(RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: RETRIES,
        retry_timeout: RETRY_WINDOW,
    });
    let settings = options
        .s3
        .iter()
        .map(|(option, value)| (option.config_key(), value.as_str()))
        .chain([
            ("timeout", REQUEST_TIMEOUT),
            ("connect_timeout", CONNECT_TIMEOUT),
        ]);
    for (key, value) in settings {
        let parsed = AmazonS3ConfigKey::from_str(key).map_err(|e| StoreError::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        builder = builder.with_config(parsed, value);
    }
    let s3 = builder.build().map_err(|e| StoreError::InvalidUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let inner: Arc<dyn object_store::ObjectStore> = if prefix.is_empty() {
        Arc::new(s3)
    } else {
        Arc::new(PrefixStore::new(s3, prefix))
    };
    Ok(Store::remote(inner, url.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_backends() {
        let options = StoreOptions {
            ignore_env: true,
            ..StoreOptions::default()
        };
        assert_eq!(
            open("file:///srv/hex", &options).unwrap().local_root(),
            Some(std::path::Path::new("/srv/hex"))
        );
        assert_eq!(
            open("public", &options).unwrap().local_root(),
            Some(std::path::Path::new("public"))
        );
        assert!(open("memory://", &options).unwrap().local_root().is_none());
        let s3 = StoreOptions {
            s3: vec![
                (S3Option::Endpoint, "http://127.0.0.1:9".into()),
                (S3Option::Region, "us-east-1".into()),
                (S3Option::AllowHttp, "true".into()),
            ],
            ignore_env: true,
        };
        let store = open("s3://bucket/some/prefix", &s3).unwrap();
        assert_eq!(store.describe(), "s3://bucket/some/prefix");
        for bad in ["file://relative", "s3://", "ftp://x"] {
            let err = open(bad, &options).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
