"""Starts moto's S3 server (PyPI `moto[server]`) on 127.0.0.1 with a free port, creates the
buckets named on the command line, prints the port on the first line of stdout and serves
until killed. Used by the end-to-end tests of the object-store appliance and its replicas."""

import sys
import time

import boto3
from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
port = server._server.server_port  # noqa: SLF001 (the bound port of port 0)
s3 = boto3.client(
    "s3",
    endpoint_url=f"http://127.0.0.1:{port}",
    aws_access_key_id="testing",
    aws_secret_access_key="testing",
    region_name="us-east-1",
)
for bucket in sys.argv[1:]:
    s3.create_bucket(Bucket=bucket)
print(port, flush=True)
while True:
    time.sleep(3600)
