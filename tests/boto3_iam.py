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

# Managed policies: read back, listed with their attachment counts, not deleted while attached.
arn = lister["Policy"]["Arn"]
assert arn == "arn:aws:iam::123456789012:policy/lister", lister
got = iam.get_policy(PolicyArn=arn)["Policy"]
assert (got["PolicyName"], got["DefaultVersionId"], got["AttachmentCount"]) == ("lister", "v1", 1), got
assert got["PolicyId"].startswith("ANPA") and len(got["PolicyId"]) == 21, got
version = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
assert version["Document"]["Statement"][0]["Action"] == "kinesisvideo:List*" and version["IsDefaultVersion"], version
assert code(iam.get_policy_version, PolicyArn=arn, VersionId="v2") == ("NoSuchEntity", 404)
assert [(x["PolicyName"], x["AttachmentCount"]) for x in iam.list_policies(Scope="Local")["Policies"]] \
    == [("lister", 1)]
assert iam.list_policies(Scope="AWS")["Policies"] == []
assert iam.list_attached_user_policies(UserName="operator")["AttachedPolicies"] \
    == [{"PolicyName": "lister", "PolicyArn": arn}]
assert code(iam.delete_policy, PolicyArn=arn) == ("DeleteConflict", 409)
assert code(iam.get_policy, PolicyArn="arn:aws:iam::123456789012:policy/nope") == ("NoSuchEntity", 404)

# Inline user policies, apart from managed ones and from a role's of the same name.
inline = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kinesisvideo:Describe*",
          "Resource": "*"}]}
iam.put_user_policy(UserName="operator", PolicyName="describe", PolicyDocument=json.dumps(inline))
assert iam.get_user_policy(UserName="operator", PolicyName="describe")["PolicyDocument"] == inline
assert iam.list_user_policies(UserName="operator")["PolicyNames"] == ["describe"]
assert iam.list_attached_user_policies(UserName="operator")["AttachedPolicies"] \
    == [{"PolicyName": "lister", "PolicyArn": arn}]
assert [x["PolicyName"] for x in iam.list_policies()["Policies"]] == ["lister"]
iam.create_role(RoleName="operator", AssumeRolePolicyDocument=json.dumps(trust))
assert iam.list_role_policies(RoleName="operator")["PolicyNames"] == []
assert code(iam.get_role_policy, RoleName="operator", PolicyName="describe") == ("NoSuchEntity", 404)
iam.attach_role_policy(RoleName="operator", PolicyArn=arn)
assert iam.list_attached_role_policies(RoleName="operator")["AttachedPolicies"] \
    == [{"PolicyName": "lister", "PolicyArn": arn}]
assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 2
iam.detach_role_policy(RoleName="operator", PolicyArn=arn)
iam.delete_role(RoleName="operator")

# A caller who is not root is judged by its IAM policy on the IAM action.
admin_key = iam.create_access_key(UserName="operator")["AccessKey"]
iam.put_user_policy(UserName="operator", PolicyName="read-own", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iam:GetUser", "iam:ListUserPolicies"],
                                             "Resource": "arn:aws:iam::123456789012:user/operator"}]}))
delegate = boto3.session.Session(aws_access_key_id=admin_key["AccessKeyId"],
                                 aws_secret_access_key=admin_key["SecretAccessKey"],
                                 region_name=region).client("iam", endpoint_url=url)
assert delegate.get_user(UserName="operator")["User"]["UserName"] == "operator"
assert sorted(delegate.list_user_policies(UserName="operator")["PolicyNames"]) == ["describe", "read-own"]
assert code(delegate.create_user, UserName="intruder") == ("AccessDenied", 403)
assert code(delegate.attach_user_policy, UserName="operator", PolicyArn=arn) == ("AccessDenied", 403)
iam.delete_access_key(UserName="operator", AccessKeyId=admin_key["AccessKeyId"])

iam.delete_user_policy(UserName="operator", PolicyName="describe")
iam.delete_user_policy(UserName="operator", PolicyName="read-own")
assert iam.list_user_policies(UserName="operator")["PolicyNames"] == []
iam.detach_user_policy(UserName="operator", PolicyArn=arn)
iam.delete_policy(PolicyArn=arn)
assert iam.list_policies()["Policies"] == []
iam.delete_user(UserName="operator")
assert code(iam.get_user, UserName="operator") == ("NoSuchEntity", 404)
print("ok")
