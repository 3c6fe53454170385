#!/usr/bin/env python3
"""The S3 test server: moto_server, started by Scripts/test with INITIAL_NO_AUTH_ACTION_COUNT=3.

    s3_test_server.py serve HOST PORT     # moto_server -H HOST -p PORT, checking signatures on the URI as sent
    s3_test_server.py make-key ENDPOINT   # prints "ACCESS SECRET"

make-key spends moto's three unauthenticated calls on an IAM user, an inline policy that allows everything, and
an access key for that user; from then on moto checks every request's signature against that key.

serve is moto_server with one fix. moto 5.2 checks a signature against the URL as Werkzeug rebuilds it, which
has decoded some escapes (`prefix=data%2F` reads `prefix=data/`, `%26` in a key reads `&`), so a correctly signed
listing by a prefix ending in `/`, or PUT of a key holding `&`, is refused as SignatureDoesNotMatch (boto3's too;
refusals of this kind are reported as getmoto/moto#5948). AWS checks the URI the client sent; so does this, by
giving moto's check the request's RAW_URI.
"""
import json
import sys


def serve(host, port):
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.responses import BaseResponse
    from moto.server import main

    setup_class = BaseResponse.setup_class
    authenticate = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def setup_keeping_raw_uri(self, request, full_url, headers, *args, **kwargs):
        setup_class(self, request, full_url, headers, *args, **kwargs)
        self.polyad_raw_uri = getattr(request, "environ", {}).get("RAW_URI")

    def authenticate_raw_uri(self, iam_request_cls, resource="*"):
        raw = getattr(self, "polyad_raw_uri", None)
        if not raw:
            return authenticate(self, iam_request_cls, resource)
        rebuilt, self.uri = self.uri, raw
        try:
            return authenticate(self, iam_request_cls, resource)
        finally:
            self.uri = rebuilt

    BaseResponse.setup_class = setup_keeping_raw_uri
    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate_raw_uri
    main(["-H", host, "-p", str(port)])


def make_key(endpoint):
    import boto3  # imported here: the usage message needs no boto3

    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        # Not checked: moto lets the first calls through unsigned, and these are they.
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    user = "polyad-test"
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    print(key["AccessKeyId"], key["SecretAccessKey"])


def main(argv):
    if len(argv) == 3 and argv[1] == "make-key":
        make_key(argv[2])
        return 0
    if len(argv) == 4 and argv[1] == "serve":
        serve(argv[2], int(argv[3]))
        return 0
    print("usage: s3_test_server.py serve HOST PORT | make-key ENDPOINT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
