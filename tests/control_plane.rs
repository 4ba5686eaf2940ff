//! Every control-plane operation driven through the official Rust SDK (`aws-sdk-kinesisvideo`)
//! against a real `oxbow serve`: the success paths and the documented errors.

mod common;

use aws_sdk_kinesisvideo::error::ProvideErrorMetadata;
use aws_sdk_kinesisvideo::types::{
    ApiName, ChannelProtocol, ChannelRole, ChannelType, ComparisonOperator, ConfigurationStatus,
    DefaultStorageTier, DeletionConfig, EdgeConfig, Format, FormatConfigKey,
    ImageGenerationConfiguration, ImageGenerationDestinationConfig, ImageSelectorType,
    MediaSourceConfig, MediaStorageConfiguration, MediaStorageConfigurationStatus, MediaUriType,
    NotificationConfiguration, NotificationDestinationConfig, RecorderConfig,
    SingleMasterChannelEndpointConfiguration, SingleMasterConfiguration, Status,
    StreamNameCondition, StreamStorageConfiguration, Tag, UpdateDataRetentionOperation,
};
use common::TestServer;

/// Asserts that an SDK call failed with the AWS error `code`.
macro_rules! assert_code {
    ($call:expr, $code:expr) => {{
        match $call {
            Ok(_) => panic!("expected {} but the call succeeded", $code),
            Err(e) => assert_eq!(e.code(), Some($code), "{e:?}"),
        }
    }};
}

#[tokio::test]
async fn stream_create_describe_update_delete() {
    let server = TestServer::start();
    let kv = server.client();
    let arn = kv
        .create_stream()
        .stream_name("cam-1")
        .data_retention_in_hours(24)
        .media_type("video/h264,audio/aac")
        .device_name("porch")
        .tags("site", "home")
        .send()
        .await
        .unwrap()
        .stream_arn
        .unwrap();
    assert!(arn.starts_with("arn:aws:kinesisvideo:us-east-1:123456789012:stream/cam-1/"));
    let suffix: i64 = arn.rsplit('/').next().unwrap().parse().unwrap();
    assert!(suffix > 1_600_000_000_000, "ARN ends in creation epoch ms");

    let info = kv
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap()
        .stream_info
        .unwrap();
    assert_eq!(info.stream_name(), Some("cam-1"));
    assert_eq!(info.status(), Some(&Status::Active));
    assert_eq!(info.data_retention_in_hours(), Some(24));
    assert_eq!(info.media_type(), Some("video/h264,audio/aac"));
    assert_eq!(info.device_name(), Some("porch"));
    assert!(info.kms_key_id().unwrap().contains("aws/kinesisvideo"));
    let created = info.creation_time().unwrap().to_millis().unwrap();
    assert!(
        (created - suffix).abs() <= 1,
        "CreationTime {created} vs ARN {suffix}"
    );
    let v1 = info.version().unwrap().to_string();

    assert_code!(
        kv.create_stream().stream_name("cam-1").send().await,
        "ResourceInUseException"
    );
    assert_code!(
        kv.update_stream()
            .stream_name("cam-1")
            .current_version("stale")
            .media_type("video/h265")
            .send()
            .await,
        "VersionMismatchException"
    );
    kv.update_stream()
        .stream_name("cam-1")
        .current_version(&v1)
        .media_type("video/h265")
        .send()
        .await
        .unwrap();
    let info = kv
        .describe_stream()
        .stream_name("cam-1")
        .send()
        .await
        .unwrap()
        .stream_info
        .unwrap();
    assert_eq!(info.media_type(), Some("video/h265"));
    let v2 = info.version().unwrap().to_string();
    assert_ne!(v1, v2, "a metadata change bumps the version");

    kv.update_data_retention()
        .stream_name("cam-1")
        .current_version(&v2)
        .operation(UpdateDataRetentionOperation::IncreaseDataRetention)
        .data_retention_change_in_hours(6)
        .send()
        .await
        .unwrap();
    let info = kv
        .describe_stream()
        .stream_name("cam-1")
        .send()
        .await
        .unwrap()
        .stream_info
        .unwrap();
    assert_eq!(info.data_retention_in_hours(), Some(30));
    assert_code!(
        kv.update_data_retention()
            .stream_name("cam-1")
            .current_version(info.version().unwrap())
            .operation(UpdateDataRetentionOperation::DecreaseDataRetention)
            .data_retention_change_in_hours(31)
            .send()
            .await,
        "InvalidArgumentException"
    );

    assert_code!(
        kv.delete_stream()
            .stream_arn(&arn)
            .current_version("stale")
            .send()
            .await,
        "VersionMismatchException"
    );
    kv.delete_stream().stream_arn(&arn).send().await.unwrap();
    assert_code!(
        kv.describe_stream().stream_name("cam-1").send().await,
        "ResourceNotFoundException"
    );
    assert_code!(
        kv.delete_stream().stream_arn(&arn).send().await,
        "ResourceNotFoundException"
    );
    // The name is free again; the old ARN does not reach the new stream.
    let arn2 = kv
        .create_stream()
        .stream_name("cam-1")
        .send()
        .await
        .unwrap()
        .stream_arn
        .unwrap();
    assert_ne!(arn, arn2);
    assert_code!(
        kv.describe_stream().stream_arn(&arn).send().await,
        "ResourceNotFoundException"
    );
    let info = kv
        .describe_stream()
        .stream_arn(&arn2)
        .send()
        .await
        .unwrap()
        .stream_info
        .unwrap();
    assert_eq!(info.data_retention_in_hours(), Some(0));
    assert!(info.media_type().is_none());
}

#[tokio::test]
async fn list_streams_pages_and_filters() {
    let server = TestServer::start();
    let kv = server.client();
    for name in ["b-2", "a-1", "b-1", "c-1", "b-3"] {
        kv.create_stream().stream_name(name).send().await.unwrap();
    }
    let all = kv.list_streams().send().await.unwrap();
    let names: Vec<_> = all
        .stream_info_list()
        .iter()
        .filter_map(|s| s.stream_name())
        .collect();
    assert_eq!(names, ["a-1", "b-1", "b-2", "b-3", "c-1"]);
    assert!(all.next_token().is_none());

    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = kv
            .list_streams()
            .max_results(2)
            .set_next_token(token)
            .stream_name_condition(
                StreamNameCondition::builder()
                    .comparison_operator(ComparisonOperator::BeginsWith)
                    .comparison_value("b-")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert!(page.stream_info_list().len() <= 2);
        seen.extend(
            page.stream_info_list()
                .iter()
                .map(|s| s.stream_name().unwrap().to_string()),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["b-1", "b-2", "b-3"]);
    assert_code!(
        kv.list_streams().next_token("not-a-token!").send().await,
        "InvalidArgumentException"
    );
}

#[tokio::test]
async fn account_stream_and_channel_limits() {
    let server = TestServer::start_with(&["--max-streams", "2", "--max-channels", "1"]);
    let kv = server.client();
    kv.create_stream().stream_name("s1").send().await.unwrap();
    kv.create_stream().stream_name("s2").send().await.unwrap();
    assert_code!(
        kv.create_stream().stream_name("s3").send().await,
        "AccountStreamLimitExceededException"
    );
    kv.create_signaling_channel()
        .channel_name("c1")
        .send()
        .await
        .unwrap();
    assert_code!(
        kv.create_signaling_channel()
            .channel_name("c2")
            .send()
            .await,
        "AccountChannelLimitExceededException"
    );
}

#[tokio::test]
async fn stream_tags() {
    let server = TestServer::start();
    let kv = server.client();
    let arn = kv
        .create_stream()
        .stream_name("t")
        .tags("k0", "v0")
        .send()
        .await
        .unwrap()
        .stream_arn
        .unwrap();
    kv.tag_stream()
        .stream_arn(&arn)
        .tags("k1", "v1")
        .tags("k0", "new")
        .send()
        .await
        .unwrap();
    let tags = kv
        .list_tags_for_stream()
        .stream_name("t")
        .send()
        .await
        .unwrap()
        .tags
        .unwrap();
    assert_eq!(tags.len(), 2);
    assert_eq!(tags["k0"], "new");
    kv.untag_stream()
        .stream_name("t")
        .tag_key_list("k0")
        .tag_key_list("missing")
        .send()
        .await
        .unwrap();
    let tags = kv
        .list_tags_for_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap();
    assert_eq!(tags.keys().collect::<Vec<_>>(), ["k1"]);

    let mut many = kv.tag_stream().stream_name("t");
    for i in 0..50 {
        many = many.tags(format!("x{i}"), "v");
    }
    assert_code!(many.send().await, "TagsPerResourceExceededLimitException");
    assert_code!(
        kv.tag_stream()
            .stream_arn("arn:aws:kinesisvideo:us-east-1:123456789012:channel/t/1")
            .tags("a", "b")
            .send()
            .await,
        "InvalidResourceFormatException"
    );
    assert_code!(
        kv.list_tags_for_stream().stream_name("nope").send().await,
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn data_endpoint_for_every_api() {
    let server = TestServer::start_with(&["--public-url", "https://kvs.example.net"]);
    let kv = server.client();
    kv.create_stream().stream_name("d").send().await.unwrap();
    for api in ApiName::values() {
        let ep = kv
            .get_data_endpoint()
            .stream_name("d")
            .api_name(ApiName::from(*api))
            .send()
            .await
            .unwrap();
        assert_eq!(ep.data_endpoint(), Some("https://kvs.example.net"), "{api}");
    }
    assert_eq!(ApiName::values().len(), 8);
    assert_code!(
        kv.get_data_endpoint()
            .stream_name("d")
            .api_name(ApiName::from("BOGUS"))
            .send()
            .await,
        "InvalidArgumentException"
    );
    assert_code!(
        kv.get_data_endpoint()
            .stream_name("none")
            .api_name(ApiName::GetMedia)
            .send()
            .await,
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn signaling_channels() {
    let server = TestServer::start_with(&["--public-url", "https://signal.example.net"]);
    let kv = server.client();
    let arn = kv
        .create_signaling_channel()
        .channel_name("door")
        .channel_type(ChannelType::SingleMaster)
        .single_master_configuration(
            SingleMasterConfiguration::builder()
                .message_ttl_seconds(30)
                .build(),
        )
        .tags(Tag::builder().key("owner").value("ana").build().unwrap())
        .send()
        .await
        .unwrap()
        .channel_arn
        .unwrap();
    assert!(arn.starts_with("arn:aws:kinesisvideo:us-east-1:123456789012:channel/door/"));
    let info = kv
        .describe_signaling_channel()
        .channel_name("door")
        .send()
        .await
        .unwrap()
        .channel_info
        .unwrap();
    assert_eq!(info.channel_type(), Some(&ChannelType::SingleMaster));
    assert_eq!(
        info.single_master_configuration()
            .unwrap()
            .message_ttl_seconds(),
        Some(30)
    );
    assert_eq!(info.channel_status(), Some(&Status::Active));

    kv.create_signaling_channel()
        .channel_name("door2")
        .send()
        .await
        .unwrap();
    let d2 = kv
        .describe_signaling_channel()
        .channel_name("door2")
        .send()
        .await
        .unwrap()
        .channel_info
        .unwrap();
    assert_eq!(
        d2.single_master_configuration()
            .unwrap()
            .message_ttl_seconds(),
        Some(60)
    );
    assert_code!(
        kv.create_signaling_channel()
            .channel_name("door")
            .send()
            .await,
        "ResourceInUseException"
    );
    assert_code!(
        kv.create_signaling_channel()
            .channel_name("mesh")
            .channel_type(ChannelType::FullMesh)
            .send()
            .await,
        "InvalidArgumentException"
    );
    let page = kv
        .list_signaling_channels()
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(page.channel_info_list().len(), 1);
    let next = kv
        .list_signaling_channels()
        .next_token(page.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(next.channel_info_list()[0].channel_name(), Some("door2"));

    let eps = kv
        .get_signaling_channel_endpoint()
        .channel_arn(&arn)
        .single_master_channel_endpoint_configuration(
            SingleMasterChannelEndpointConfiguration::builder()
                .protocols(ChannelProtocol::Wss)
                .protocols(ChannelProtocol::Https)
                .protocols(ChannelProtocol::Webrtc)
                .role(ChannelRole::Viewer)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let list: Vec<_> = eps
        .resource_endpoint_list()
        .iter()
        .map(|e| {
            (
                e.protocol().unwrap().as_str().to_string(),
                e.resource_endpoint().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        list,
        [
            ("WSS".to_string(), "wss://signal.example.net".to_string()),
            (
                "HTTPS".to_string(),
                "https://signal.example.net".to_string()
            ),
            (
                "WEBRTC".to_string(),
                "https://signal.example.net".to_string()
            ),
        ]
    );

    // Resource tags: a list in, a map out.
    kv.tag_resource()
        .resource_arn(&arn)
        .tags(Tag::builder().key("floor").value("1").build().unwrap())
        .send()
        .await
        .unwrap();
    let tags = kv
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap();
    assert_eq!(tags.len(), 2);
    kv.untag_resource()
        .resource_arn(&arn)
        .tag_key_list("owner")
        .send()
        .await
        .unwrap();
    let tags = kv
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap();
    assert_eq!(tags.keys().collect::<Vec<_>>(), ["floor"]);

    assert_code!(
        kv.update_signaling_channel()
            .channel_arn(&arn)
            .current_version("stale")
            .send()
            .await,
        "VersionMismatchException"
    );
    kv.update_signaling_channel()
        .channel_arn(&arn)
        .current_version(info.version().unwrap())
        .single_master_configuration(
            SingleMasterConfiguration::builder()
                .message_ttl_seconds(90)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let info2 = kv
        .describe_signaling_channel()
        .channel_arn(&arn)
        .send()
        .await
        .unwrap()
        .channel_info
        .unwrap();
    assert_eq!(
        info2
            .single_master_configuration()
            .unwrap()
            .message_ttl_seconds(),
        Some(90)
    );
    assert_ne!(info2.version(), info.version());

    kv.delete_signaling_channel()
        .channel_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_code!(
        kv.describe_signaling_channel()
            .channel_arn(&arn)
            .send()
            .await,
        "ResourceNotFoundException"
    );
    assert_code!(
        kv.get_signaling_channel_endpoint()
            .channel_arn(&arn)
            .send()
            .await,
        "ResourceNotFoundException"
    );
}

fn image_config(region: &str) -> ImageGenerationConfiguration {
    ImageGenerationConfiguration::builder()
        .status(ConfigurationStatus::Enabled)
        .image_selector_type(ImageSelectorType::ProducerTimestamp)
        .destination_config(
            ImageGenerationDestinationConfig::builder()
                .uri("s3://bucket-name")
                .destination_region(region)
                .build()
                .unwrap(),
        )
        .sampling_interval(200)
        .format(Format::Jpeg)
        .format_config(FormatConfigKey::JpegQuality, "80")
        .width_pixels(320)
        .height_pixels(240)
        .build()
        .unwrap()
}

#[tokio::test]
async fn image_generation_and_notification_configuration() {
    let server = TestServer::start();
    let kv = server.client();
    kv.create_stream()
        .stream_name("no-retention")
        .send()
        .await
        .unwrap();
    assert_code!(
        kv.update_image_generation_configuration()
            .stream_name("no-retention")
            .image_generation_configuration(image_config("us-east-1"))
            .send()
            .await,
        "NoDataRetentionException"
    );
    kv.create_stream()
        .stream_name("kept")
        .data_retention_in_hours(1)
        .send()
        .await
        .unwrap();
    let empty = kv
        .describe_image_generation_configuration()
        .stream_name("kept")
        .send()
        .await
        .unwrap();
    assert!(empty.image_generation_configuration().is_none());
    kv.update_image_generation_configuration()
        .stream_name("kept")
        .image_generation_configuration(image_config("us-east-1"))
        .send()
        .await
        .unwrap();
    let got = kv
        .describe_image_generation_configuration()
        .stream_name("kept")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.image_generation_configuration(),
        Some(&image_config("us-east-1"))
    );
    assert_code!(
        kv.update_image_generation_configuration()
            .stream_name("kept")
            .image_generation_configuration(image_config("eu-west-1"))
            .send()
            .await,
        "InvalidArgumentException"
    );
    kv.update_image_generation_configuration()
        .stream_name("kept")
        .send()
        .await
        .unwrap();
    let gone = kv
        .describe_image_generation_configuration()
        .stream_name("kept")
        .send()
        .await
        .unwrap();
    assert!(gone.image_generation_configuration().is_none());

    let notification = NotificationConfiguration::builder()
        .status(ConfigurationStatus::Enabled)
        .destination_config(
            NotificationDestinationConfig::builder()
                .uri("arn:aws:sns:us-east-1:123456789012:topic")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    assert_code!(
        kv.update_notification_configuration()
            .stream_name("no-retention")
            .notification_configuration(notification.clone())
            .send()
            .await,
        "NoDataRetentionException"
    );
    kv.update_notification_configuration()
        .stream_name("kept")
        .notification_configuration(notification.clone())
        .send()
        .await
        .unwrap();
    let got = kv
        .describe_notification_configuration()
        .stream_name("kept")
        .send()
        .await
        .unwrap();
    assert_eq!(got.notification_configuration(), Some(&notification));
    assert_code!(
        kv.describe_notification_configuration()
            .stream_name("absent")
            .send()
            .await,
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn media_storage_mapping() {
    let server = TestServer::start();
    let kv = server.client();
    let stream = kv
        .create_stream()
        .stream_name("store")
        .data_retention_in_hours(2)
        .send()
        .await
        .unwrap()
        .stream_arn
        .unwrap();
    let bare = kv
        .create_stream()
        .stream_name("bare")
        .send()
        .await
        .unwrap()
        .stream_arn
        .unwrap();
    let ch1 = kv
        .create_signaling_channel()
        .channel_name("ch1")
        .send()
        .await
        .unwrap()
        .channel_arn
        .unwrap();
    let ch2 = kv
        .create_signaling_channel()
        .channel_name("ch2")
        .send()
        .await
        .unwrap()
        .channel_arn
        .unwrap();
    let default = kv
        .describe_media_storage_configuration()
        .channel_name("ch1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        default.media_storage_configuration().unwrap().status(),
        &MediaStorageConfigurationStatus::Disabled
    );
    let enable = |arn: &str| {
        MediaStorageConfiguration::builder()
            .status(MediaStorageConfigurationStatus::Enabled)
            .stream_arn(arn)
            .build()
            .unwrap()
    };
    assert_code!(
        kv.update_media_storage_configuration()
            .channel_arn(&ch1)
            .media_storage_configuration(enable(&bare))
            .send()
            .await,
        "NoDataRetentionException"
    );
    kv.update_media_storage_configuration()
        .channel_arn(&ch1)
        .media_storage_configuration(enable(&stream))
        .send()
        .await
        .unwrap();
    let got = kv
        .describe_media_storage_configuration()
        .channel_arn(&ch1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.media_storage_configuration().unwrap().stream_arn(),
        Some(stream.as_str())
    );
    assert_code!(
        kv.update_media_storage_configuration()
            .channel_arn(&ch2)
            .media_storage_configuration(enable(&stream))
            .send()
            .await,
        "ResourceInUseException"
    );
    let mapped = kv
        .describe_mapped_resource_configuration()
        .stream_arn(&stream)
        .send()
        .await
        .unwrap();
    let list = mapped.mapped_resource_configuration_list();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].arn(), Some(ch1.as_str()));
    let none = kv
        .describe_mapped_resource_configuration()
        .stream_name("bare")
        .send()
        .await
        .unwrap();
    assert!(none.mapped_resource_configuration_list().is_empty());
}

#[tokio::test]
async fn edge_configuration_state_machine() {
    let server = TestServer::start_with(&["--edge-sync-delay-ms", "300"]);
    let kv = server.client();
    kv.create_stream()
        .stream_name("edge")
        .data_retention_in_hours(1)
        .send()
        .await
        .unwrap();
    kv.create_stream()
        .stream_name("edge0")
        .send()
        .await
        .unwrap();
    let hub = "arn:aws:iot:us-east-1:123456789012:thing/hub-1";
    let config = EdgeConfig::builder()
        .hub_device_arn(hub)
        .recorder_config(
            RecorderConfig::builder()
                .media_source_config(
                    MediaSourceConfig::builder()
                        .media_uri_secret_arn(
                            "arn:aws:secretsmanager:us-east-1:123456789012:secret:cam",
                        )
                        .media_uri_type(MediaUriType::RtspUri)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .deletion_config(
            DeletionConfig::builder()
                .edge_retention_in_hours(15)
                .delete_after_upload(true)
                .build(),
        )
        .build()
        .unwrap();
    assert_code!(
        kv.describe_edge_configuration()
            .stream_name("edge")
            .send()
            .await,
        "StreamEdgeConfigurationNotFoundException"
    );
    assert_code!(
        kv.start_edge_configuration_update()
            .stream_name("edge0")
            .edge_config(config.clone())
            .send()
            .await,
        "NoDataRetentionException"
    );
    let started = kv
        .start_edge_configuration_update()
        .stream_name("edge")
        .edge_config(config.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(started.sync_status().map(|s| s.as_str()), Some("SYNCING"));
    assert_eq!(started.edge_config(), Some(&config));
    assert_code!(
        kv.start_edge_configuration_update()
            .stream_name("edge")
            .edge_config(config.clone())
            .send()
            .await,
        "ResourceInUseException"
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let d = kv
        .describe_edge_configuration()
        .stream_name("edge")
        .send()
        .await
        .unwrap();
    assert_eq!(d.sync_status().map(|s| s.as_str()), Some("IN_SYNC"));
    let listed = kv
        .list_edge_agent_configurations()
        .hub_device_arn(hub)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.edge_configs().len(), 1);
    assert_eq!(listed.edge_configs()[0].stream_name(), Some("edge"));
    kv.delete_edge_configuration()
        .stream_name("edge")
        .send()
        .await
        .unwrap();
    let d = kv
        .describe_edge_configuration()
        .stream_name("edge")
        .send()
        .await
        .unwrap();
    assert_eq!(d.sync_status().map(|s| s.as_str()), Some("DELETING"));
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_code!(
        kv.describe_edge_configuration()
            .stream_name("edge")
            .send()
            .await,
        "StreamEdgeConfigurationNotFoundException"
    );
    assert_code!(
        kv.delete_edge_configuration()
            .stream_name("edge")
            .send()
            .await,
        "StreamEdgeConfigurationNotFoundException"
    );
}

#[tokio::test]
async fn stream_storage_configuration() {
    let server = TestServer::start();
    let kv = server.client();
    kv.create_stream()
        .stream_name("tiered")
        .stream_storage_configuration(
            StreamStorageConfiguration::builder()
                .default_storage_tier(DefaultStorageTier::Hot)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let d = kv
        .describe_stream_storage_configuration()
        .stream_name("tiered")
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.stream_storage_configuration()
            .unwrap()
            .default_storage_tier(),
        &DefaultStorageTier::Hot
    );
    let version = kv
        .describe_stream()
        .stream_name("tiered")
        .send()
        .await
        .unwrap()
        .stream_info
        .unwrap()
        .version
        .unwrap();
    kv.update_stream_storage_configuration()
        .stream_name("tiered")
        .current_version(version)
        .stream_storage_configuration(
            StreamStorageConfiguration::builder()
                .default_storage_tier(DefaultStorageTier::Warm)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let d = kv
        .describe_stream_storage_configuration()
        .stream_name("tiered")
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.stream_storage_configuration()
            .unwrap()
            .default_storage_tier(),
        &DefaultStorageTier::Warm
    );
}

#[tokio::test]
async fn creating_and_updating_states_settle() {
    let server = TestServer::start_with(&["--lifecycle-delay-ms", "400"]);
    let kv = server.client();
    kv.create_stream().stream_name("slow").send().await.unwrap();
    let info = kv
        .describe_stream()
        .stream_name("slow")
        .send()
        .await
        .unwrap()
        .stream_info
        .unwrap();
    assert_eq!(info.status(), Some(&Status::Creating));
    assert_code!(
        kv.update_stream()
            .stream_name("slow")
            .current_version(info.version().unwrap())
            .send()
            .await,
        "ResourceInUseException"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let info = kv
        .describe_stream()
        .stream_name("slow")
        .send()
        .await
        .unwrap()
        .stream_info
        .unwrap();
    assert_eq!(info.status(), Some(&Status::Active));
    kv.delete_stream()
        .stream_arn(info.stream_arn().unwrap())
        .send()
        .await
        .unwrap();
    let listed = kv.list_streams().send().await.unwrap();
    assert_eq!(
        listed.stream_info_list()[0].status(),
        Some(&Status::Deleting)
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(kv
        .list_streams()
        .send()
        .await
        .unwrap()
        .stream_info_list()
        .is_empty());
}
