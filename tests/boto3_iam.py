"""boto3's IAM client (botocore, the engine of `aws iam`) against Oxbow's IAM query API: seed
003's steps for the camera role (create-role with a trust policy, put-role-policy), then what a
script reads back and the errors IAM gives. Usage: boto3_iam.py URL KEY SECRET IAM_REGION SERVER_REGION"""
import json
import sys

import boto3
import botocore

url, key, secret, region, server_region = sys.argv[1:6]
session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name=region)
iam = session.client("iam", endpoint_url=url)

trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
         "Principal": {"Service": "credentials.iot.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
role = iam.create_role(RoleName="KVSCameraCertificateBasedIAMRole",
                       AssumeRolePolicyDocument=json.dumps(trust))["Role"]
assert role["Arn"] == "arn:aws:iam::123456789012:role/KVSCameraCertificateBasedIAMRole", role
assert role["RoleId"].startswith("AROA"), role
# botocore decodes the URL-encoded document IAM returns into a dict.
assert role["AssumeRolePolicyDocument"] == trust, role

policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
          "Action": ["kinesisvideo:DescribeStream", "kinesisvideo:PutMedia"],
          "Resource": "arn:aws:kinesisvideo:*:*:stream/${credentials-iot:ThingName}/*"}]}
iam.put_role_policy(RoleName="KVSCameraCertificateBasedIAMRole", PolicyName="KVSCameraIAMPolicy",
                    PolicyDocument=json.dumps(policy))
got = iam.get_role_policy(RoleName="KVSCameraCertificateBasedIAMRole", PolicyName="KVSCameraIAMPolicy")
assert got["PolicyDocument"] == policy, got
assert iam.get_role(RoleName="KVSCameraCertificateBasedIAMRole")["Role"]["RoleId"] == role["RoleId"]
names = [r["RoleName"] for r in iam.list_roles()["Roles"]]
assert "KVSCameraCertificateBasedIAMRole" in names, names


def code(call, **kw):
    try:
        call(**kw)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise SystemExit(f"{call.__name__} should have failed")


assert code(iam.create_role, RoleName="KVSCameraCertificateBasedIAMRole",
            AssumeRolePolicyDocument=json.dumps(trust)) == ("EntityAlreadyExists", 409)
assert code(iam.get_role, RoleName="nope") == ("NoSuchEntity", 404)
assert code(iam.create_role, RoleName="bad", AssumeRolePolicyDocument="{\"Statement\": 1}")[0] \
    in ("MalformedPolicyDocument", "ValidationError")
# A role with policies cannot be deleted; without them it can.
assert code(iam.delete_role, RoleName="KVSCameraCertificateBasedIAMRole") == ("DeleteConflict", 409)
iam.delete_role_policy(RoleName="KVSCameraCertificateBasedIAMRole", PolicyName="KVSCameraIAMPolicy")
assert code(iam.get_role_policy, RoleName="KVSCameraCertificateBasedIAMRole",
            PolicyName="KVSCameraIAMPolicy") == ("NoSuchEntity", 404)
iam.delete_role(RoleName="KVSCameraCertificateBasedIAMRole")
assert code(iam.get_role, RoleName="KVSCameraCertificateBasedIAMRole") == ("NoSuchEntity", 404)

# Users and their keys: a key made through IAM signs KVS calls, judged by the user's policy.
user = iam.create_user(UserName="operator")["User"]
assert user["Arn"] == "arn:aws:iam::123456789012:user/operator" and user["UserId"].startswith("AIDA"), user
assert [u["UserName"] for u in iam.list_users()["Users"]] == ["operator"]
lister = iam.create_policy(PolicyName="lister", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kinesisvideo:List*", "Resource": "*"}]}))
iam.attach_user_policy(UserName="operator", PolicyArn=lister["Policy"]["Arn"])
k = iam.create_access_key(UserName="operator")["AccessKey"]
assert k["AccessKeyId"].startswith("AKIA") and k["Status"] == "Active", k
listed = iam.list_access_keys(UserName="operator")["AccessKeyMetadata"]
assert [m["AccessKeyId"] for m in listed] == [k["AccessKeyId"]], listed
op = boto3.session.Session(aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=k["SecretAccessKey"],
                           region_name=server_region).client("kinesisvideo", endpoint_url=url)
op.list_streams()
assert code(op.create_stream, StreamName="x")[0] in ("NotAuthorizedException", "AccessDeniedException")
assert code(iam.delete_user, UserName="operator") == ("DeleteConflict", 409)
iam.update_access_key(UserName="operator", AccessKeyId=k["AccessKeyId"], Status="Inactive")
assert code(op.list_streams)[1] == 403
iam.delete_access_key(UserName="operator", AccessKeyId=k["AccessKeyId"])
iam.detach_user_policy(UserName="operator", PolicyArn=lister["Policy"]["Arn"])
iam.delete_user(UserName="operator")
assert code(iam.get_user, UserName="operator") == ("NoSuchEntity", 404)
print("ok")
