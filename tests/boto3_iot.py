"""boto3's IoT client (botocore, the engine of `aws iot`) against Oxbow's IoT control-plane API:
every operation Oxbow serves, with what it answers and the errors IoT gives, and a non-root
caller judged by its IAM policy. Usage: boto3_iot.py URL KEY SECRET IOT_ENDPOINT"""
import hashlib
import json
import ssl
import sys

import boto3
import botocore

url, key, secret, iot_endpoint = sys.argv[1:5]
session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                region_name="us-east-1")
iot = session.client("iot", endpoint_url=url)
iam = session.client("iam", endpoint_url=url)
ACCOUNT = "123456789012"
ARN = f"arn:aws:iot:us-east-1:{ACCOUNT}"


def code(call, **kw):
    try:
        call(**kw)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise SystemExit(f"{call.__name__}({kw}) should have failed")


# ---- thing types ----
tt = iot.create_thing_type(thingTypeName="camera",
                           thingTypeProperties={"thingTypeDescription": "a camera",
                                                "searchableAttributes": ["site"]})
assert tt["thingTypeName"] == "camera" and tt["thingTypeArn"] == f"{ARN}:thingtype/camera", tt
assert len(tt["thingTypeId"]) == 36, tt
assert code(iot.create_thing_type, thingTypeName="camera") == ("ResourceAlreadyExistsException", 409)
d = iot.describe_thing_type(thingTypeName="camera")
assert d["thingTypeId"] == tt["thingTypeId"], d
assert d["thingTypeProperties"] == {"thingTypeDescription": "a camera", "searchableAttributes": ["site"]}, d
assert d["thingTypeMetadata"]["deprecated"] is False, d
assert [t["thingTypeName"] for t in iot.list_thing_types()["thingTypes"]] == ["camera"]
assert code(iot.describe_thing_type, thingTypeName="nope") == ("ResourceNotFoundException", 404)

# ---- things ----
t = iot.create_thing(thingName="cam-1", thingTypeName="camera",
                     attributePayload={"attributes": {"site": "north", "floor": "2"}})
assert t["thingName"] == "cam-1" and t["thingArn"] == f"{ARN}:thing/cam-1" and len(t["thingId"]) == 36, t
iot.create_thing(thingName="cam-2")
assert code(iot.create_thing, thingName="cam-1") == ("ResourceAlreadyExistsException", 409)
assert code(iot.create_thing, thingName="cam-3", thingTypeName="nope") == ("ResourceNotFoundException", 404)
assert code(iot.create_thing, thingName="bad name!") == ("InvalidRequestException", 400)
# Without a type a thing takes at most three attributes.
assert code(iot.create_thing, thingName="cam-4",
            attributePayload={"attributes": {"a": "1", "b": "2", "c": "3", "d": "4"}}) \
    == ("InvalidRequestException", 400)
d = iot.describe_thing(thingName="cam-1")
assert (d["thingName"], d["thingId"], d["thingTypeName"], d["attributes"], d["version"], d["defaultClientId"]) \
    == ("cam-1", t["thingId"], "camera", {"site": "north", "floor": "2"}, 1, "cam-1"), d
assert sorted(x["thingName"] for x in iot.list_things()["things"]) == ["cam-1", "cam-2"]
assert [x["thingName"] for x in iot.list_things(thingTypeName="camera")["things"]] == ["cam-1"]
assert [x["thingName"] for x in iot.list_things(attributeName="site", attributeValue="north")["things"]] == ["cam-1"]
iot.update_thing(thingName="cam-1", attributePayload={"attributes": {"floor": "", "room": "7"}, "merge": True},
                 expectedVersion=1)
d = iot.describe_thing(thingName="cam-1")
assert d["attributes"] == {"site": "north", "room": "7"} and d["version"] == 2, d
assert code(iot.update_thing, thingName="cam-1", expectedVersion=1,
            attributePayload={"attributes": {}}) == ("VersionConflictException", 409)
assert code(iot.delete_thing, thingName="cam-1", expectedVersion=1) == ("VersionConflictException", 409)
assert code(iot.delete_thing_type, thingTypeName="camera") == ("InvalidRequestException", 400)
assert code(iot.describe_thing, thingName="nope") == ("ResourceNotFoundException", 404)

# ---- certificates ----
c = iot.create_keys_and_certificate(setAsActive=True)
der = ssl.PEM_cert_to_DER_cert(c["certificatePem"])
assert c["certificateId"] == hashlib.sha256(der).hexdigest(), c
assert c["certificateArn"] == f"{ARN}:cert/{c['certificateId']}", c
assert "PRIVATE KEY" in c["keyPair"]["PrivateKey"] and "PUBLIC KEY" in c["keyPair"]["PublicKey"], c
cert_id, cert_arn = c["certificateId"], c["certificateArn"]
inactive = iot.create_keys_and_certificate(setAsActive=False)
desc = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
assert (desc["status"], desc["certificatePem"], desc["ownedBy"]) == ("ACTIVE", c["certificatePem"], ACCOUNT), desc
assert iot.describe_certificate(certificateId=inactive["certificateId"])["certificateDescription"]["status"] == "INACTIVE"
assert sorted(x["certificateId"] for x in iot.list_certificates()["certificates"]) \
    == sorted([cert_id, inactive["certificateId"]])
assert code(iot.describe_certificate, certificateId="0" * 64) == ("ResourceNotFoundException", 404)
assert code(iot.register_certificate_without_ca, certificatePem="not a certificate") \
    == ("CertificateValidationException", 400)
assert code(iot.register_certificate_without_ca, certificatePem=c["certificatePem"]) \
    == ("ResourceAlreadyExistsException", 409)

# ---- IoT policies ----
doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
       "Action": ["iot:AssumeRoleWithCertificate"], "Resource": f"{ARN}:rolealias/CamAlias"}]}
p = iot.create_policy(policyName="CamPolicy", policyDocument=json.dumps(doc))
assert (p["policyName"], p["policyArn"], p["policyVersionId"]) == ("CamPolicy", f"{ARN}:policy/CamPolicy", "1"), p
assert json.loads(p["policyDocument"]) == doc
assert code(iot.create_policy, policyName="CamPolicy", policyDocument=json.dumps(doc)) \
    == ("ResourceAlreadyExistsException", 409)
assert code(iot.create_policy, policyName="Bad", policyDocument="{\"Statement\": 7}") \
    == ("MalformedPolicyException", 400)
g = iot.get_policy(policyName="CamPolicy")
assert (g["policyArn"], g["defaultVersionId"], json.loads(g["policyDocument"])) == (p["policyArn"], "1", doc), g
v = iot.get_policy_version(policyName="CamPolicy", policyVersionId="1")
assert v["isDefaultVersion"] is True and json.loads(v["policyDocument"]) == doc, v
assert code(iot.get_policy_version, policyName="CamPolicy", policyVersionId="2") == ("ResourceNotFoundException", 404)
assert iot.list_policies()["policies"] == [{"policyName": "CamPolicy", "policyArn": p["policyArn"]}]
# IoT policies are not IAM policies.
assert "CamPolicy" not in [x["PolicyName"] for x in iam.list_policies()["Policies"]]
assert code(iot.get_policy, policyName="nope") == ("ResourceNotFoundException", 404)

iot.attach_policy(policyName="CamPolicy", target=cert_arn)
assert iot.list_attached_policies(target=cert_arn)["policies"] \
    == [{"policyName": "CamPolicy", "policyArn": p["policyArn"]}]
assert iot.list_targets_for_policy(policyName="CamPolicy")["targets"] == [cert_arn]
assert code(iot.attach_policy, policyName="nope", target=cert_arn) == ("ResourceNotFoundException", 404)
assert code(iot.attach_policy, policyName="CamPolicy", target=f"{ARN}:thinggroup/g") \
    == ("InvalidRequestException", 400)
assert code(iot.delete_policy, policyName="CamPolicy") == ("DeleteConflictException", 409)

# ---- things and certificates ----
iot.attach_thing_principal(thingName="cam-1", principal=cert_arn)
assert iot.list_thing_principals(thingName="cam-1")["principals"] == [cert_arn]
assert iot.list_principal_things(principal=cert_arn)["things"] == ["cam-1"]
assert code(iot.attach_thing_principal, thingName="nope", principal=cert_arn) == ("ResourceNotFoundException", 404)
assert code(iot.list_thing_principals, thingName="nope") == ("ResourceNotFoundException", 404)

# Deleting a certificate: not while ACTIVE, not while a thing or (unless forced) a policy is attached.
assert code(iot.delete_certificate, certificateId=cert_id) == ("CertificateStateException", 406)
iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
assert code(iot.delete_certificate, certificateId=cert_id) == ("DeleteConflictException", 409)
iot.detach_thing_principal(thingName="cam-1", principal=cert_arn)
assert iot.list_thing_principals(thingName="cam-1")["principals"] == []
assert code(iot.delete_certificate, certificateId=cert_id) == ("DeleteConflictException", 409)
iot.update_certificate(certificateId=cert_id, newStatus="REVOKED")
assert code(iot.update_certificate, certificateId=cert_id, newStatus="ACTIVE") == ("CertificateStateException", 406)
iot.delete_certificate(certificateId=cert_id, forceDelete=True)
assert code(iot.describe_certificate, certificateId=cert_id) == ("ResourceNotFoundException", 404)
assert iot.list_targets_for_policy(policyName="CamPolicy")["targets"] == []
iot.delete_policy(policyName="CamPolicy")
assert iot.list_policies()["policies"] == []

# ---- role aliases ----
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
         "Principal": {"Service": "credentials.iot.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
role = iam.create_role(RoleName="CamRole", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
a = iot.create_role_alias(roleAlias="CamAlias", roleArn=role["Arn"], credentialDurationSeconds=1800)
assert a == {"roleAlias": "CamAlias", "roleAliasArn": f"{ARN}:rolealias/CamAlias",
             "ResponseMetadata": a["ResponseMetadata"]}, a
assert code(iot.create_role_alias, roleAlias="CamAlias", roleArn=role["Arn"]) \
    == ("ResourceAlreadyExistsException", 409)
assert code(iot.create_role_alias, roleAlias="Other", roleArn=f"arn:aws:iam::{ACCOUNT}:role/nope") \
    == ("ResourceNotFoundException", 404)
d = iot.describe_role_alias(roleAlias="CamAlias")["roleAliasDescription"]
assert (d["roleArn"], d["owner"], d["credentialDurationSeconds"]) == (role["Arn"], ACCOUNT, 1800), d
iot.update_role_alias(roleAlias="CamAlias", credentialDurationSeconds=7200)
assert iot.describe_role_alias(roleAlias="CamAlias")["roleAliasDescription"]["credentialDurationSeconds"] == 7200
assert iot.list_role_aliases()["roleAliases"] == ["CamAlias"]
iot.delete_role_alias(roleAlias="CamAlias")
assert code(iot.describe_role_alias, roleAlias="CamAlias") == ("ResourceNotFoundException", 404)

# ---- the credentials endpoint ----
assert iot.describe_endpoint(endpointType="iot:CredentialProvider")["endpointAddress"] == iot_endpoint
assert code(iot.describe_endpoint, endpointType="iot:Data-ATS") == ("InvalidRequestException", 400)

# ---- a caller who is not root is judged by its IAM policy ----
iam.create_user(UserName="installer")
ak = iam.create_access_key(UserName="installer")["AccessKey"]
allow = iam.create_policy(PolicyName="describe-cam-1", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:DescribeThing",
                                             "Resource": f"{ARN}:thing/cam-1"}]}))["Policy"]
iam.attach_user_policy(UserName="installer", PolicyArn=allow["Arn"])
installer = boto3.session.Session(aws_access_key_id=ak["AccessKeyId"], aws_secret_access_key=ak["SecretAccessKey"],
                                  region_name="us-east-1").client("iot", endpoint_url=url)
assert installer.describe_thing(thingName="cam-1")["thingName"] == "cam-1"
assert code(installer.describe_thing, thingName="cam-2") == ("AccessDeniedException", 403)
assert code(installer.create_thing, thingName="cam-9") == ("AccessDeniedException", 403)
assert code(iot.describe_thing, thingName="cam-9") == ("ResourceNotFoundException", 404)

# Things and types go last: a type with no things left can be deleted.
iot.delete_thing(thingName="cam-1", expectedVersion=2)
iot.delete_thing(thingName="cam-2")
iot.delete_thing_type(thingTypeName="camera")
assert iot.list_things()["things"] == [] and iot.list_thing_types()["thingTypes"] == []
print("boto3 iot: ok")
