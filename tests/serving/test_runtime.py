"""serving/runtime.py: what a local Ray is started with."""

from __future__ import annotations

import socket


def test_a_taken_metrics_port_is_left_to_ray_instead_of_failing_the_start(caplog):
    """A Ray left over from a SIGKILLed flow run keeps its agent on the metrics port for a minute;
    the next local Ray must still start (tests/flows/test_prefect_server.py saw it time out)."""
    from serving.runtime import _free_or_none

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert _free_or_none(port) is None
        assert f"metrics export port {port} is taken" in caplog.text
    assert _free_or_none(port) == port  # free again: the configured port is used
