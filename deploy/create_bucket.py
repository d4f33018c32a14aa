"""Create the S3 bucket the stack stores objects in, once (docker-compose's `s3-bucket` job).

Runs in the vodhub image: `python /opt/vodhub/create_bucket.py http://s3:8333 vodhub`. The S3
server sits on the compose stack's internal network and accepts unsigned requests there.
Waits for the server, creates the bucket, and treats "already there" as success.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

ATTEMPTS = 60  # two minutes: SeaweedFS answers S3 only once its master, volume and filer are up


def main(endpoint: str, bucket: str) -> int:
    url = f"{endpoint.rstrip('/')}/{bucket}"
    for _ in range(ATTEMPTS):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="PUT"), timeout=5):
                print(f"created bucket {bucket}")
                return 0
        except urllib.error.HTTPError as error:
            if error.code == 409:  # BucketAlreadyExists / BucketAlreadyOwnedByYou
                print(f"bucket {bucket} already exists")
                return 0
            print(f"S3 answered {error.code}; retrying", file=sys.stderr)
        except (urllib.error.URLError, OSError) as error:
            print(f"S3 not reachable yet ({error}); retrying", file=sys.stderr)
        time.sleep(2)
    print(f"gave up creating bucket {bucket} at {endpoint}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
