"""Print botocore's RDS IAM token for fixed inputs and a fixed time.

Usage: botocore_token.py ACCESS_KEY SECRET_KEY SESSION_TOKEN REGION HOST PORT USER EPOCH_SECONDS
(an empty SESSION_TOKEN means none). The time is frozen by patching the clock botocore's signer
reads (botocore.auth.get_current_datetime).
"""
import datetime
import sys
from unittest import mock

import botocore.session

akid, secret, token, region, host, port, user, epoch = sys.argv[1:9]
client = botocore.session.get_session().create_client(
    "rds",
    region_name=region,
    aws_access_key_id=akid,
    aws_secret_access_key=secret,
    aws_session_token=token or None,
)
fixed = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).replace(tzinfo=None)
with mock.patch("botocore.auth.get_current_datetime", return_value=fixed):
    print(client.generate_db_auth_token(host, int(port), user, Region=region))
