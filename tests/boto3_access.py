"""boto3 (botocore, the engine of the AWS CLI) against Oxbow's STS: AssumeRole, then KVS calls
with the session credentials, judged by the role's policy. Usage: boto3_access.py URL KEY SECRET ROLE_ARN"""
import sys

import boto3
import botocore

url, key, secret, role_arn = sys.argv[1:5]
session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1")
sts = session.client("sts", endpoint_url=url)
assert sts.get_caller_identity()["Arn"].endswith(":root")
r = sts.assume_role(RoleArn=role_arn, RoleSessionName="boto3", DurationSeconds=900)
c = r["Credentials"]
assert c["AccessKeyId"].startswith("ASIA"), c
assert r["AssumedRoleUser"]["Arn"].endswith(":assumed-role/lister/boto3"), r
role = boto3.session.Session(
    aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
    aws_session_token=c["SessionToken"], region_name="us-east-1")
kv = role.client("kinesisvideo", endpoint_url=url)
kv.list_streams()
try:
    kv.create_stream(StreamName="not-allowed")
    raise SystemExit("create_stream should have been refused")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "NotAuthorizedException", e.response
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 401
who = role.client("sts", endpoint_url=url).get_caller_identity()
assert who["Arn"].endswith(":assumed-role/lister/boto3"), who
try:
    sts.assume_role(RoleArn=role_arn.replace("lister", "missing"), RoleSessionName="boto3")
    raise SystemExit("assume_role of a missing role should be refused")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "AccessDenied", e.response
print("ok")
