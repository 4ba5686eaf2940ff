"""Every kinesisvideo control-plane action through boto3 with endpoint_url, as a user would.

Usage: python3 tests/boto3_smoke.py URL ACCESS_KEY SECRET_KEY
Exits non-zero with a message on the first unexpected result.
"""
import sys
import time

import boto3
from botocore.exceptions import ClientError

url, key, secret = sys.argv[1:4]
kv = boto3.client(
    "kinesisvideo",
    endpoint_url=url,
    region_name="us-east-1",
    aws_access_key_id=key,
    aws_secret_access_key=secret,
)


def expect_error(code, fn, **kwargs):
    try:
        fn(**kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"{fn.__name__}: expected {code}, got {got}"
        return
    raise AssertionError(f"{fn.__name__}: expected {code}, call succeeded")


arn = kv.create_stream(StreamName="boto", DataRetentionInHours=2, Tags={"a": "1"},
                       StreamStorageConfiguration={"DefaultStorageTier": "HOT"})["StreamARN"]
info = kv.describe_stream(StreamARN=arn)["StreamInfo"]
assert info["Status"] == "ACTIVE" and info["DataRetentionInHours"] == 2
assert [s["StreamName"] for s in kv.list_streams()["StreamInfoList"]] == ["boto"]
kv.update_stream(StreamName="boto", CurrentVersion=info["Version"], MediaType="video/h264")
v = kv.describe_stream(StreamName="boto")["StreamInfo"]["Version"]
kv.update_data_retention(StreamName="boto", CurrentVersion=v,
                         Operation="INCREASE_DATA_RETENTION", DataRetentionChangeInHours=1)
v = kv.describe_stream(StreamName="boto")["StreamInfo"]["Version"]
kv.update_stream_storage_configuration(StreamName="boto", CurrentVersion=v,
                                       StreamStorageConfiguration={"DefaultStorageTier": "WARM"})
assert kv.describe_stream_storage_configuration(StreamName="boto")[
    "StreamStorageConfiguration"]["DefaultStorageTier"] == "WARM"
for api in ["PUT_MEDIA", "GET_MEDIA", "LIST_FRAGMENTS", "GET_MEDIA_FOR_FRAGMENT_LIST",
            "GET_HLS_STREAMING_SESSION_URL", "GET_DASH_STREAMING_SESSION_URL", "GET_CLIP", "GET_IMAGES"]:
    assert kv.get_data_endpoint(StreamName="boto", APIName=api)["DataEndpoint"] == url
kv.tag_stream(StreamName="boto", Tags={"b": "2"})
kv.untag_stream(StreamName="boto", TagKeyList=["a"])
assert kv.list_tags_for_stream(StreamName="boto")["Tags"] == {"b": "2"}

ch = kv.create_signaling_channel(ChannelName="boto-ch", Tags=[{"Key": "k", "Value": "v"}])["ChannelARN"]
cinfo = kv.describe_signaling_channel(ChannelName="boto-ch")["ChannelInfo"]
assert cinfo["ChannelType"] == "SINGLE_MASTER"
assert len(kv.list_signaling_channels()["ChannelInfoList"]) == 1
kv.update_signaling_channel(ChannelARN=ch, CurrentVersion=cinfo["Version"],
                            SingleMasterConfiguration={"MessageTtlSeconds": 30})
eps = kv.get_signaling_channel_endpoint(
    ChannelARN=ch, SingleMasterChannelEndpointConfiguration={"Protocols": ["WSS", "HTTPS"], "Role": "MASTER"})
assert [e["Protocol"] for e in eps["ResourceEndpointList"]] == ["WSS", "HTTPS"]
kv.tag_resource(ResourceARN=ch, Tags=[{"Key": "k2", "Value": "v2"}])
kv.untag_resource(ResourceARN=ch, TagKeyList=["k"])
assert kv.list_tags_for_resource(ResourceARN=ch)["Tags"] == {"k2": "v2"}

kv.update_image_generation_configuration(StreamName="boto", ImageGenerationConfiguration={
    "Status": "ENABLED", "ImageSelectorType": "SERVER_TIMESTAMP",
    "DestinationConfig": {"Uri": "s3://bucket", "DestinationRegion": "us-east-1"},
    "SamplingInterval": 3000, "Format": "PNG"})
assert kv.describe_image_generation_configuration(StreamName="boto")[
    "ImageGenerationConfiguration"]["Format"] == "PNG"
kv.update_notification_configuration(StreamName="boto", NotificationConfiguration={
    "Status": "ENABLED", "DestinationConfig": {"Uri": "arn:aws:sns:us-east-1:123456789012:t"}})
assert kv.describe_notification_configuration(StreamName="boto")[
    "NotificationConfiguration"]["Status"] == "ENABLED"
kv.update_media_storage_configuration(ChannelARN=ch, MediaStorageConfiguration={
    "Status": "ENABLED", "StreamARN": arn})
assert kv.describe_media_storage_configuration(ChannelARN=ch)["MediaStorageConfiguration"]["StreamARN"] == arn
assert kv.describe_mapped_resource_configuration(StreamARN=arn)[
    "MappedResourceConfigurationList"][0]["ARN"] == ch

hub = "arn:aws:iot:us-east-1:123456789012:thing/hub"
edge = {"HubDeviceArn": hub, "RecorderConfig": {"MediaSourceConfig": {
    "MediaUriSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:cam",
    "MediaUriType": "RTSP_URI"}, "ScheduleConfig": {
    "ScheduleExpression": "0 0 9,10,11 ? * * *", "DurationInSeconds": 3599}}}
assert kv.start_edge_configuration_update(StreamName="boto", EdgeConfig=edge)["SyncStatus"] == "SYNCING"
time.sleep(0.3)
assert kv.describe_edge_configuration(StreamName="boto")["SyncStatus"] == "IN_SYNC"
assert len(kv.list_edge_agent_configurations(HubDeviceArn=hub)["EdgeConfigs"]) == 1
kv.delete_edge_configuration(StreamName="boto")

expect_error("ResourceNotFoundException", kv.describe_stream, StreamName="missing")
expect_error("ResourceInUseException", kv.create_stream, StreamName="boto")
expect_error("VersionMismatchException", kv.delete_stream, StreamARN=arn, CurrentVersion="x")
kv.delete_signaling_channel(ChannelARN=ch)
kv.delete_stream(StreamARN=arn)
expect_error("ResourceNotFoundException", kv.describe_stream, StreamARN=arn)
print("boto3: every control-plane action OK")
