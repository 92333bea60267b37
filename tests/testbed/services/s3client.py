# SPDX-License-Identifier: Apache-2.0
"""A minimal S3 client with AWS Signature Version 4 (path-style), stdlib only, so that the Shop API
and the tests need nothing outside Debian's python3 (boto3 is not in the registries we may use).
PutObject for the Shop API; ListObjectsV2 for the end-to-end test."""
import datetime
import hashlib
import hmac
import http.client
import xml.etree.ElementTree as ET
from urllib.parse import quote


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class S3Client:
    def __init__(self, host, port, access_key, secret_key, region="us-east-1", timeout=10):
        self.host, self.port = host, port
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.timeout = timeout

    def request(self, method, path, query=None, body=b"", content_type=None):
        """One signed request; returns (status, body bytes)."""
        now = datetime.datetime.now(datetime.timezone.utc)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        date = now.strftime("%Y%m%d")
        canonical_query = "&".join(
            f"{quote(k, safe='-_.~')}={quote(str(v), safe='-_.~')}"
            for k, v in sorted((query or {}).items()))
        payload_hash = hashlib.sha256(body).hexdigest()
        headers = {"host": f"{self.host}:{self.port}", "x-amz-content-sha256": payload_hash,
                   "x-amz-date": amz_date}
        if content_type:
            headers["content-type"] = content_type
        signed = ";".join(sorted(headers))
        canonical = "\n".join([
            method, path, canonical_query,
            "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
            signed, payload_hash,
        ])
        scope = f"{date}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        key = _hmac(("AWS4" + self.secret_key).encode(), date)
        for part in (self.region, "s3", "aws4_request"):
            key = _hmac(key, part)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                                    f"SignedHeaders={signed}, Signature={signature}")
        headers["content-length"] = str(len(body))
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, path + ("?" + canonical_query if canonical_query else ""),
                         body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def put_object(self, bucket, key, body, content_type="application/json"):
        path = "/" + quote(bucket) + "/" + quote(key, safe="/-_.~")
        status, data = self.request("PUT", path, body=body, content_type=content_type)
        if status != 200:
            raise RuntimeError(f"S3 PUT {path}: {status} {data[:200]!r}")

    def list_objects(self, bucket, prefix=""):
        """All (key, size) of a bucket under a prefix, following ListObjectsV2 pagination."""
        out, token = [], None
        while True:
            query = {"list-type": "2", "prefix": prefix, "max-keys": "1000"}
            if token:
                query["continuation-token"] = token
            status, data = self.request("GET", "/" + quote(bucket), query)
            if status != 200:
                raise RuntimeError(f"S3 ListObjectsV2 {bucket}: {status} {data[:200]!r}")
            root = ET.fromstring(data)
            ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            for c in root.findall(f"{ns}Contents"):
                out.append((c.findtext(f"{ns}Key"), int(c.findtext(f"{ns}Size"))))
            if root.findtext(f"{ns}IsTruncated") != "true":
                return out
            token = root.findtext(f"{ns}NextContinuationToken")
