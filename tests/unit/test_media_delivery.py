"""Public media's lifetime in shared caches, and the X-Accel-Redirect answers for the gateway."""

from __future__ import annotations

from adapters.inbound.http.media_delivery import (
    MediaDelivery,
    accel_prefix,
    accel_response,
    edge_expiry,
    shared_lifetime,
    with_edge_lifetime,
)


def test_shared_caches_get_the_edge_lifetime_and_browsers_keep_theirs():
    assert with_edge_lifetime("public, max-age=31536000, immutable", 60) == "public, max-age=31536000, s-maxage=60, immutable"
    assert with_edge_lifetime("public, max-age=300", 60) == "public, max-age=300, s-maxage=60"
    assert with_edge_lifetime("public, max-age=10", 60) == "public, max-age=10"  # already shorter
    assert with_edge_lifetime("private, max-age=3600", 60) == "private, max-age=3600"


def test_how_long_a_shared_cache_may_keep_an_answer():
    assert shared_lifetime("public, max-age=31536000, s-maxage=60, immutable") == 60
    assert shared_lifetime("public, max-age=10") == 10
    assert shared_lifetime("private, max-age=3600") == 0


def test_the_internal_location_follows_the_storage():
    assert accel_prefix(local=True) == "/_media/local/"
    assert accel_prefix(local=False, bucket="vodhub") == "/_media/s3/vodhub/"
    assert accel_prefix(local=False, bucket="media", prefix="/tenant-a/") == "/_media/s3/media/tenant-a/"


def test_an_accel_answer_names_the_object_and_how_long_it_may_be_reused():
    delivery = MediaDelivery(edge_max_age=60, accel_prefix="/_media/s3/vodhub/")
    public = accel_response(delivery, "processed/v/p/cmaf/240p/seg 1.m4s", "public, max-age=31536000, s-maxage=60, immutable")
    assert public.headers["X-Accel-Redirect"] == "/_media/s3/vodhub/processed/v/p/cmaf/240p/seg%201.m4s"
    assert public.headers["X-Accel-Expires"] == "60" and public.headers["Content-Type"] == "video/iso.segment"
    signed = accel_response(delivery, "processed/v/p/mp4/720p.mp4", "private, max-age=3600")
    assert signed.headers["X-Accel-Expires"] == "0" and signed.headers["Content-Type"] == "video/mp4"
    assert edge_expiry(delivery, "public, max-age=300, s-maxage=60") == {"X-Accel-Expires": "60"}
    assert edge_expiry(MediaDelivery(), "public, max-age=300") == {}  # embedded: no gateway to tell


def test_presigned_s3_targets_carry_the_signature_and_the_host_it_was_made_for():
    delivery = MediaDelivery(accel_prefix="/_media/s3/vodhub/", s3_host="s3:8333",
                             presign=lambda key: f"/vodhub/{key}?X-Amz-Signature=sig")
    answer = accel_response(delivery, "processed/v/p/cmaf/240p/1.m4s", "private, max-age=3600")
    assert answer.headers["X-Accel-Redirect"] == "/_media/s3/vodhub/processed/v/p/cmaf/240p/1.m4s?X-Amz-Signature=sig"
    assert answer.headers["X-Media-S3-Host"] == "s3:8333"


def test_the_api_signs_with_its_own_s3_identity():
    from adapters.outbound.s3_url_signer import S3UrlSigner

    signer = S3UrlSigner("http://s3:8333", "vodhub", "us-east-1", "AKID", "SECRET", prefix="tenant")
    path, query = signer.signed_path("processed/v/seg 1.m4s").split("?")
    assert path == "/vodhub/tenant/processed/v/seg%201.m4s"
    assert "X-Amz-Credential=AKID" in query and "X-Amz-SignedHeaders=host" in query and "X-Amz-Signature=" in query
