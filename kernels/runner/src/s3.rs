//! S3 objects through aws-sdk-s3 (the storage gateway, SeaweedFS, or any S3 server).

use async_trait::async_trait;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};
use serrano_service::Secret;

use crate::invoke::ObjectStore;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub endpoint: String,
    #[serde(default = "default_region")]
    pub region: String,
    pub access_key: Secret,
    pub secret_key: Secret,
}

fn default_region() -> String {
    "local".into()
}

pub struct S3Store {
    client: aws_sdk_s3::Client,
}

impl S3Store {
    pub fn new(config: &S3Config) -> Self {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&config.endpoint)
            .region(Region::new(config.region.clone()))
            .credentials_provider(Credentials::new(
                config.access_key.expose(),
                config.secret_key.expose(),
                None,
                None,
                "config",
            ))
            // On-premises object stores are rarely set up for virtual-host buckets.
            .force_path_style(true)
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(conf),
        }
    }
}

fn describe<E: std::error::Error + 'static>(err: &aws_sdk_s3::error::SdkError<E>) -> String {
    serrano_service::error_chain(err)
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let bytes = out.body.collect().await.map_err(|e| e.to_string())?;
        Ok(bytes.into_bytes().to_vec())
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), String> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| describe(&e))?;
        Ok(())
    }
}
