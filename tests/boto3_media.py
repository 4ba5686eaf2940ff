"""Reads a stream's media with boto3: GetMedia (EARLIEST) and GetMediaForFragmentList.

Usage: python3 tests/boto3_media.py URL ACCESS_KEY SECRET_KEY STREAM OUT_DIR
Writes get_media.mkv and for_list.mkv into OUT_DIR.
"""
import os
import sys

import boto3

url, key, secret, stream, out = sys.argv[1:6]
session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1")
kv = session.client("kinesisvideo", endpoint_url=url)
endpoint = kv.get_data_endpoint(StreamName=stream, APIName="GET_MEDIA")["DataEndpoint"]
media = session.client("kinesis-video-media", endpoint_url=endpoint)
body = media.get_media(StreamName=stream, StartSelector={"StartSelectorType": "EARLIEST"})["Payload"].read()
open(os.path.join(out, "get_media.mkv"), "wb").write(body)
endpoint = kv.get_data_endpoint(StreamName=stream, APIName="LIST_FRAGMENTS")["DataEndpoint"]
archive = session.client("kinesis-video-archived-media", endpoint_url=endpoint)
fragments = archive.list_fragments(
    StreamName=stream,
    FragmentSelector={
        "FragmentSelectorType": "PRODUCER_TIMESTAMP",
        "TimestampRange": {"StartTimestamp": 0, "EndTimestamp": 4000000000},
    },
)["Fragments"]
numbers = sorted(f["FragmentNumber"] for f in fragments)
body = archive.get_media_for_fragment_list(StreamName=stream, Fragments=numbers)["Payload"].read()
open(os.path.join(out, "for_list.mkv"), "wb").write(body)
print(len(numbers), "fragments")
