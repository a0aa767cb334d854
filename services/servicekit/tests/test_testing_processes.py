"""servicekit.testing.processes: a killed group is gone, children included, when kill_group returns."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from servicekit.testing.processes import free_port, kill_group, kill_groups


def test_kill_group_returns_once_the_leaders_children_are_gone_too() -> None:
    # The leader (like rabbitmq-server's start script) waits on a child that outlives its SIGKILL
    # for a moment: kill_group must not return while that child, in the same group, runs.
    leader = subprocess.Popen(
        ["sh", "-c", "sleep 60 & sleep 60; wait"], stdin=subprocess.DEVNULL, start_new_session=True
    )
    kill_group(leader)
    assert leader.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(leader.pid, 0)


def test_kill_groups_leaves_none_of_the_groups() -> None:
    leaders = [
        subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60; wait"], start_new_session=True) for _ in range(3)
    ]
    kill_groups(leaders)
    for leader in leaders:
        with pytest.raises(ProcessLookupError):
            os.killpg(leader.pid, 0)


def test_kill_group_of_a_process_already_gone() -> None:
    gone = subprocess.Popen(["true"], start_new_session=True)
    gone.wait(10)
    kill_group(gone)  # nothing to kill: no error


def test_free_port_can_be_listened_on() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", free_port()))  # OSError (in use) fails the test
        server.listen()
