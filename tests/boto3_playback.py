"""Asks boto3 for playback: HLS and DASH session URLs (each from the data endpoint
GetDataEndpoint names for it), a clip of everything stored so far, and images.

Usage: python3 tests/boto3_playback.py URL ACCESS_KEY SECRET_KEY STREAM OUT_DIR
Writes hls.url, dash.url, clip.mp4, image-N.jpg (one per image) into OUT_DIR.
"""
import base64
import datetime
import os
import sys

import boto3

url, key, secret, stream, out = sys.argv[1:6]
session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1")
kv = session.client("kinesisvideo", endpoint_url=url)


def archive(api):
    endpoint = kv.get_data_endpoint(StreamName=stream, APIName=api)["DataEndpoint"]
    return session.client("kinesis-video-archived-media", endpoint_url=endpoint)


now = datetime.datetime.now(datetime.timezone.utc)
selector = {
    "FragmentSelectorType": "SERVER_TIMESTAMP",
    "TimestampRange": {"StartTimestamp": now - datetime.timedelta(hours=1), "EndTimestamp": now},
}
hls = archive("GET_HLS_STREAMING_SESSION_URL").get_hls_streaming_session_url(
    StreamName=stream, PlaybackMode="ON_DEMAND", HLSFragmentSelector=selector, Expires=600
)["HLSStreamingSessionURL"]
dash = archive("GET_DASH_STREAMING_SESSION_URL").get_dash_streaming_session_url(
    StreamName=stream, PlaybackMode="ON_DEMAND", DASHFragmentSelector=selector, DisplayFragmentNumber="ALWAYS"
)["DASHStreamingSessionURL"]
clip = archive("GET_CLIP").get_clip(StreamName=stream, ClipFragmentSelector=selector)
open(os.path.join(out, "hls.url"), "w").write(hls)
open(os.path.join(out, "dash.url"), "w").write(dash)
open(os.path.join(out, "clip.mp4"), "wb").write(clip["Payload"].read())
print(clip["ContentType"])
# Images every 500 ms for a second, 120 pixels high. botocore sends whole seconds, so the range
# starts at the first whole second a second into the stream.
fragments = archive("LIST_FRAGMENTS").list_fragments(
    StreamName=stream,
    FragmentSelector={
        "FragmentSelectorType": "PRODUCER_TIMESTAMP",
        "TimestampRange": {"StartTimestamp": 0, "EndTimestamp": 4000000000},
    },
)["Fragments"]
start = (min(f["ProducerTimestamp"] for f in fragments) + datetime.timedelta(seconds=2)).replace(microsecond=0)
images = archive("GET_IMAGES").get_images(
    StreamName=stream,
    ImageSelectorType="PRODUCER_TIMESTAMP",
    StartTimestamp=start,
    EndTimestamp=start + datetime.timedelta(seconds=1),
    SamplingInterval=500,
    Format="JPEG",
    FormatConfig={"JPEGQuality": "90"},
    HeightPixels=120,
)["Images"]
for i, image in enumerate(images):
    assert "ImageContent" in image, images
    open(os.path.join(out, f"image-{i}.jpg"), "wb").write(base64.b64decode(image["ImageContent"]))
