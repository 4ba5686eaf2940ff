#!/usr/bin/env bash
# Seed 003 ("Controlling access to Kinesis Video Streams resources using AWS IoT") run as
# written with the AWS CLI, jq and curl. Every `aws`, `jq` and `curl` line below is the seed's;
# the only additions are `--endpoint-url "$ENDPOINT"` on each `aws` call and, for curl, Oxbow's
# CA instead of Amazon's root (the seed downloads https://www.amazontrust.com/…/SFSRootCAG2.pem).
# Between the seed's steps, `expect` lines check the answers with exact values, and the camera
# streams with the certificate-derived credentials through `oxbow put` (PutMedia, signed as the
# producer SDK signs it).
#
# Environment: ENDPOINT (the server's URL), OXBOW (the oxbow binary), SERVER_CA (the CA the IoT
# listener's certificate chains to), AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE with a
# `default` profile holding the root keys. Runs in the current directory, which it fills.
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
expect() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }

### Step 1: Create an AWS IoT thing type and an AWS IoT thing
aws --endpoint-url "$ENDPOINT" --profile default iot create-thing-type --thing-type-name kvs_example_camera > iot-thing-type.json
aws --endpoint-url "$ENDPOINT" --profile default  iot create-thing --thing-name kvs_example_camera_stream --thing-type-name kvs_example_camera > iot-thing.json
expect "$(jq -r .thingTypeName iot-thing-type.json)" kvs_example_camera "create-thing-type thingTypeName"
expect "$(jq -r .thingName iot-thing.json)" kvs_example_camera_stream "create-thing thingName"
expect "$(jq -r .thingArn iot-thing.json)" "arn:aws:iot:us-east-1:123456789012:thing/kvs_example_camera_stream" "create-thing thingArn"

### Step 2: Create an IAM role to be assumed by AWS IoT
cat > iam-policy-document.json <<'EOF'
    {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {
                "Service": "credentials.iot.amazonaws.com"
            },
            "Action": "sts:AssumeRole"
        }
    ]
}
EOF
aws --endpoint-url "$ENDPOINT" --profile default iam create-role --role-name KVSCameraCertificateBasedIAMRole --assume-role-policy-document 'file://iam-policy-document.json' > iam-role.json
expect "$(jq -r '.Role.Arn' iam-role.json)" "arn:aws:iam::123456789012:role/KVSCameraCertificateBasedIAMRole" "create-role Role.Arn"

cat > iam-permission-document.json <<'EOF'
    {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "kinesisvideo:DescribeStream",
                "kinesisvideo:PutMedia",
                "kinesisvideo:TagStream",
                "kinesisvideo:GetDataEndpoint"
            ],
            "Resource": "arn:aws:kinesisvideo:*:*:stream/${credentials-iot:ThingName}/*"
        }
    ]
}
EOF
aws --endpoint-url "$ENDPOINT" --profile default iam put-role-policy --role-name KVSCameraCertificateBasedIAMRole --policy-name KVSCameraIAMPolicy --policy-document 'file://iam-permission-document.json'

aws --endpoint-url "$ENDPOINT" --profile default iot create-role-alias --role-alias KvsCameraIoTRoleAlias --role-arn $(jq --raw-output '.Role.Arn' iam-role.json) --credential-duration-seconds 3600 > iot-role-alias.json
expect "$(jq -r .roleAliasArn iot-role-alias.json)" "arn:aws:iot:us-east-1:123456789012:rolealias/KvsCameraIoTRoleAlias" "create-role-alias roleAliasArn"

cat > iot-policy-document.json <<EOF
{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "iot:AssumeRoleWithCertificate"
            ],
            "Resource": "$(jq --raw-output '.roleAliasArn' iot-role-alias.json)"
        }
    ]
}
EOF
aws --endpoint-url "$ENDPOINT" --profile default iot create-policy --policy-name KvsCameraIoTPolicy --policy-document 'file://iot-policy-document.json' > iot-policy.json
expect "$(jq -r .policyArn iot-policy.json)" "arn:aws:iot:us-east-1:123456789012:policy/KvsCameraIoTPolicy" "create-policy policyArn"

### Step 3: Create and configure the X.509 certificate
aws --endpoint-url "$ENDPOINT" --profile default iot create-keys-and-certificate --set-as-active --certificate-pem-outfile certificate.pem --public-key-outfile public.pem.key --private-key-outfile private.pem.key > certificate
grep -q "BEGIN CERTIFICATE" certificate.pem || fail "certificate.pem holds no certificate"
grep -q "PRIVATE KEY" private.pem.key || fail "private.pem.key holds no key"
grep -q "BEGIN PUBLIC KEY" public.pem.key || fail "public.pem.key holds no public key"
# The certificate id is the SHA-256 of the certificate's DER encoding, as on AWS IoT.
expect "$(jq -r .certificateId certificate)" "$(openssl x509 -in certificate.pem -outform der | sha256sum | cut -d' ' -f1)" "certificateId"

aws --endpoint-url "$ENDPOINT" --profile default iot attach-policy --policy-name KvsCameraIoTPolicy --target $(jq --raw-output '.certificateArn' certificate)
aws --endpoint-url "$ENDPOINT" --profile default iot attach-thing-principal --thing-name kvs_example_camera_stream --principal $(jq --raw-output '.certificateArn' certificate)
aws --endpoint-url "$ENDPOINT" --profile default iot describe-endpoint --endpoint-type iot:CredentialProvider --output text > iot-credential-provider.txt
expect "$(cat iot-credential-provider.txt)" "$IOT_ENDPOINT" "describe-endpoint"
cp "$SERVER_CA" cacert.pem

### Step 4: Test the AWS IoT credentials with your Kinesis video stream
aws --endpoint-url "$ENDPOINT" kinesisvideo create-stream --data-retention-in-hours 24 --stream-name kvs_example_camera_stream > /dev/null
IOT_GET_CREDENTIAL_ENDPOINT=`cat iot-credential-provider.txt`
curl --silent -H "x-amzn-iot-thingname:kvs_example_camera_stream" --cert certificate.pem --key private.pem.key https://${IOT_GET_CREDENTIAL_ENDPOINT}/role-aliases/KvsCameraIoTRoleAlias/credentials --cacert ./cacert.pem > token.json
expect "$(jq -r '.credentials.accessKeyId | startswith("ASIA")' token.json)" true "token.json accessKeyId"

AWS_ACCESS_KEY_ID=$(jq --raw-output '.credentials.accessKeyId' token.json) AWS_SECRET_ACCESS_KEY=$(jq --raw-output '.credentials.secretAccessKey' token.json) AWS_SESSION_TOKEN=$(jq --raw-output '.credentials.sessionToken' token.json) aws --endpoint-url "$ENDPOINT" kinesisvideo describe-stream --stream-name kvs_example_camera_stream > describe.json
expect "$(jq -r .StreamInfo.StreamName describe.json)" kvs_example_camera_stream "describe-stream with certificate credentials"

# The same credentials reach no other stream.
aws --endpoint-url "$ENDPOINT" kinesisvideo create-stream --data-retention-in-hours 24 --stream-name some_other_stream > /dev/null
if AWS_ACCESS_KEY_ID=$(jq --raw-output '.credentials.accessKeyId' token.json) AWS_SECRET_ACCESS_KEY=$(jq --raw-output '.credentials.secretAccessKey' token.json) AWS_SESSION_TOKEN=$(jq --raw-output '.credentials.sessionToken' token.json) aws --endpoint-url "$ENDPOINT" kinesisvideo describe-stream --stream-name some_other_stream 2> denied.txt; then
    fail "certificate credentials described another thing's stream"
fi
grep -q "NotAuthorizedException" denied.txt || fail "expected NotAuthorizedException (KVS denies with it), got: $(cat denied.txt)"

### Step 5: the camera streams with the certificate-derived credentials
EVERYTHING='{"FragmentSelectorType":"SERVER_TIMESTAMP","TimestampRange":{"StartTimestamp":0,"EndTimestamp":4102444800}}'
ffmpeg -loglevel error -f lavfi -i testsrc=size=320x240:rate=25 -t 4 -c:v libx264 -g 25 -keyint_min 25 -pix_fmt yuv420p -f matroska camera.mkv
AWS_ACCESS_KEY_ID=$(jq --raw-output '.credentials.accessKeyId' token.json) AWS_SECRET_ACCESS_KEY=$(jq --raw-output '.credentials.secretAccessKey' token.json) AWS_SESSION_TOKEN=$(jq --raw-output '.credentials.sessionToken' token.json) "$OXBOW" put --no-create --endpoint "$ENDPOINT" kvs_example_camera_stream camera.mkv > put.txt 2>&1
DATA_ENDPOINT=$(aws --endpoint-url "$ENDPOINT" kinesisvideo get-data-endpoint --stream-name kvs_example_camera_stream --api-name LIST_FRAGMENTS --query DataEndpoint --output text)
aws --endpoint-url "$DATA_ENDPOINT" kinesis-video-archived-media list-fragments --stream-name kvs_example_camera_stream --fragment-selector "$EVERYTHING" > fragments.json
expect "$(jq '.Fragments | length' fragments.json)" 4 "fragments stored from the camera"
if AWS_ACCESS_KEY_ID=$(jq --raw-output '.credentials.accessKeyId' token.json) AWS_SECRET_ACCESS_KEY=$(jq --raw-output '.credentials.secretAccessKey' token.json) AWS_SESSION_TOKEN=$(jq --raw-output '.credentials.sessionToken' token.json) "$OXBOW" put --no-create --endpoint "$ENDPOINT" some_other_stream camera.mkv > /dev/null 2> put-denied.txt; then
    fail "certificate credentials wrote to another thing's stream"
fi
grep -q "NotAuthorizedException" put-denied.txt || fail "expected NotAuthorizedException, got: $(cat put-denied.txt)"

### AWS IoT CertificateId as stream name
cat > iam-permission-document.json <<'EOF'
    {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "kinesisvideo:DescribeStream",
                "kinesisvideo:PutMedia",
                "kinesisvideo:TagStream",
                "kinesisvideo:GetDataEndpoint"
            ],
            "Resource": "arn:aws:kinesisvideo:*:*:stream/${credentials-iot:AwsCertificateId}/*"
        }
    ]
}
EOF
aws --endpoint-url "$ENDPOINT" --profile default iam put-role-policy --role-name KVSCameraCertificateBasedIAMRole --policy-name KVSCameraIAMPolicy --policy-document 'file://iam-permission-document.json'
export CERTIFICATE_ID=`cat certificate | jq --raw-output '.certificateId'`
aws --endpoint-url "$ENDPOINT" kinesisvideo create-stream --data-retention-in-hours 24 --stream-name ${CERTIFICATE_ID} > /dev/null
curl --silent -H "x-amzn-iot-thingname:kvs_example_camera_stream" --cert certificate.pem --key private.pem.key https://${IOT_GET_CREDENTIAL_ENDPOINT}/role-aliases/KvsCameraIoTRoleAlias/credentials --cacert ./cacert.pem > token.json
AWS_ACCESS_KEY_ID=$(jq --raw-output '.credentials.accessKeyId' token.json) AWS_SECRET_ACCESS_KEY=$(jq --raw-output '.credentials.secretAccessKey' token.json) AWS_SESSION_TOKEN=$(jq --raw-output '.credentials.sessionToken' token.json) aws --endpoint-url "$ENDPOINT" kinesisvideo describe-stream --stream-name ${CERTIFICATE_ID} > describe.json
expect "$(jq -r .StreamInfo.StreamName describe.json)" "$CERTIFICATE_ID" "describe-stream named by the certificate id"
if AWS_ACCESS_KEY_ID=$(jq --raw-output '.credentials.accessKeyId' token.json) AWS_SECRET_ACCESS_KEY=$(jq --raw-output '.credentials.secretAccessKey' token.json) AWS_SESSION_TOKEN=$(jq --raw-output '.credentials.sessionToken' token.json) aws --endpoint-url "$ENDPOINT" kinesisvideo describe-stream --stream-name kvs_example_camera_stream 2> /dev/null > /dev/null; then
    fail "with the certificate-id policy, the thing-name stream must be refused"
fi

### Use AWS IoT credentials to stream to a hard-coded stream name
cat > iam-permission-document.json <<'EOF'
{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "kinesisvideo:DescribeStream",
                "kinesisvideo:PutMedia",
                "kinesisvideo:TagStream",
                "kinesisvideo:GetDataEndpoint"
            ],
            "Resource": "arn:aws:kinesisvideo:*:*:stream/YourStreamName/*"
        }
    ]
}
EOF
aws --endpoint-url "$ENDPOINT" --profile default iam put-role-policy --role-name KVSCameraCertificateBasedIAMRole --policy-name KVSCameraIAMPolicy --policy-document 'file://iam-permission-document.json'
aws --endpoint-url "$ENDPOINT" kinesisvideo create-stream --data-retention-in-hours 24 --stream-name YourStreamName > /dev/null
curl --silent -H "x-amzn-iot-thingname:kvs_example_camera_stream" --cert certificate.pem --key private.pem.key https://${IOT_GET_CREDENTIAL_ENDPOINT}/role-aliases/KvsCameraIoTRoleAlias/credentials --cacert ./cacert.pem > token.json
AWS_ACCESS_KEY_ID=$(jq --raw-output '.credentials.accessKeyId' token.json) AWS_SECRET_ACCESS_KEY=$(jq --raw-output '.credentials.secretAccessKey' token.json) AWS_SESSION_TOKEN=$(jq --raw-output '.credentials.sessionToken' token.json) "$OXBOW" put --no-create --endpoint "$ENDPOINT" YourStreamName camera.mkv > put.txt 2>&1
DATA_ENDPOINT=$(aws --endpoint-url "$ENDPOINT" kinesisvideo get-data-endpoint --stream-name YourStreamName --api-name LIST_FRAGMENTS --query DataEndpoint --output text)
aws --endpoint-url "$DATA_ENDPOINT" kinesis-video-archived-media list-fragments --stream-name YourStreamName --fragment-selector "$EVERYTHING" > fragments.json
expect "$(jq '.Fragments | length' fragments.json)" 4 "fragments stored in the hard-coded stream"

echo "seed 003: all three variants passed"
