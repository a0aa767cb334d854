"""servicekit.testing.processes: a killed group is gone, children included, when kill_group returns."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from servicekit.testing.processes import free_port, kill_group, kill_groups, wait_listening


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


def test_wait_listening_returns_once_a_port_accepts_and_times_out_on_a_silent_one() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        wait_listening(server.getsockname()[1], within=1)
    with pytest.raises(TimeoutError):
        wait_listening(free_port(), within=0.2)


def test_wait_listening_stops_at_once_when_the_server_died() -> None:
    with pytest.raises(ChildProcessError):
        wait_listening(free_port(), within=30, alive=lambda: False)
