from streams.core.signing import compute_signature, verify_signature

SECRET = "s3cret"
BODY = b'{"hello": "world"}'


def test_signature_verifies() -> None:
    header = compute_signature(SECRET, 1_700_000_000, BODY)
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature(SECRET, header, BODY, now_s=1_700_000_010)


def test_tampered_body_wrong_secret_or_stale_time_fail() -> None:
    header = compute_signature(SECRET, 1_700_000_000, BODY)
    assert not verify_signature(SECRET, header, BODY + b" ", now_s=1_700_000_000)
    assert not verify_signature("other", header, BODY, now_s=1_700_000_000)
    assert not verify_signature(SECRET, header, BODY, now_s=1_700_000_000 + 301)
    assert not verify_signature(SECRET, "garbage", BODY, now_s=1_700_000_000)
