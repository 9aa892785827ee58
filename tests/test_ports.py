"""Port ranges and free ports: no port is handed to two kernels of this process."""

from __future__ import annotations

import pytest

from eg_core._runtime.errors import BadRequest
from eg_core._runtime.ports import PortRange, free_ports, release_ports


def test_port_range_parsing():
    assert PortRange.parse("0..0") is None and PortRange.parse("") is None
    rng = PortRange.parse("40000..41000")
    assert (rng.lower, rng.upper, rng.size, str(rng)) == (40000, 41000, 1001, "40000..41000")
    for bad in ("abc", "10..20", "50000..40000", "40000..70000"):
        with pytest.raises(BadRequest):
            PortRange.parse(bad)
    with pytest.raises(BadRequest, match="at least 1000"):
        PortRange.parse("40000..40100", min_size=1000)


def test_ports_are_not_handed_out_twice_until_released():
    batches = [free_ports(5) for _ in range(200)]
    handed = [p for batch in batches for p in batch]
    assert len(handed) == len(set(handed)) == 1000
    for batch in batches:
        release_ports(batch)


def test_ports_stay_in_their_range():
    rng = PortRange.parse("21000..21019")  # below the ephemeral range, so no other socket holds them
    first = free_ports(10, port_range=rng)
    try:
        second = free_ports(10, port_range=rng)
        assert set(first).isdisjoint(second) and all(21000 <= p <= 21019 for p in first + second)
        with pytest.raises(BadRequest, match="no 5 free ports"):
            free_ports(5, port_range=rng)
        release_ports(second)
    finally:
        release_ports(first)
