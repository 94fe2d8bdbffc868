import ipaddress

import pytest

from streams.core.netguard import Allowlist, check_target


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "224.0.0.1",
        "0.0.0.0",
        "::1",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    reason = check_target("h", [ipaddress.ip_address(address)], Allowlist())
    assert reason is not None
    assert "KRONWHEEL_TARGET_ALLOWLIST" in reason


def test_public_address_passes() -> None:
    assert check_target("h", [ipaddress.ip_address("93.184.216.34")], Allowlist()) is None


def test_allowlist_by_cidr_and_by_host() -> None:
    allow = Allowlist.parse(("127.0.0.0/8", "internal.example"))
    assert check_target("x", [ipaddress.ip_address("127.0.0.1")], allow) is None
    assert check_target("internal.example", [ipaddress.ip_address("10.0.0.1")], allow) is None
    assert check_target("x", [ipaddress.ip_address("10.0.0.1")], allow) is not None


def test_one_refused_address_among_many_refuses_the_host() -> None:
    addresses = [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.1")]
    assert check_target("h", addresses, Allowlist()) is not None


def test_unresolvable_host_is_refused() -> None:
    assert check_target("nowhere.invalid", [], Allowlist()) is not None


def test_remembered_verdicts_tell_allowlists_apart() -> None:
    # guard.literal_refusal remembers verdicts per (host, allowlist); the allowlist's
    # hash is computed once, and must still follow its contents.
    from streams.dispatching.guard import literal_refusal

    loopback = Allowlist.parse(("127.0.0.0/8",))
    assert loopback == Allowlist.parse(("127.0.0.0/8",))
    assert hash(loopback) == hash(Allowlist.parse(("127.0.0.0/8",)))
    assert literal_refusal("127.0.0.1", Allowlist()) is not None
    assert literal_refusal("127.0.0.1", loopback) is None
    assert literal_refusal("127.0.0.1", Allowlist.parse(("example.com",))) is not None
