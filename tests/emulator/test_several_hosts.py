"""Several hosts on one emulator at once: two `itpump` processes (a monitor and a clinician's
commands) on the emulator's socket. Nobody is evicted; replies go to the asker, events to all."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from pumphil.emulator import Emulator


def _itpump(url: str, *argv: str) -> list[str]:
    return [sys.executable, "-m", "pumphost.cli", "--port", url, *argv]


def test_a_monitor_keeps_running_while_another_process_sends_commands(emu: Emulator) -> None:
    url = emu.serial_url
    host, port = url.removeprefix("socket://").rsplit(":", 1)
    bystander = socket.create_connection((host, int(port)))   # a third host that only listens
    mon = subprocess.Popen(_itpump(url, "--json", "monitor", "--interval", "0.3",
                                   "--duration", "3"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert mon.stdout is not None
        first = json.loads(mon.stdout.readline())       # the monitor is up (verified hello)
        assert first["status"]["state"] == "stopped"
        st = subprocess.run(_itpump(url, "--json", "status"), capture_output=True, text=True,
                            timeout=60, check=False)
        assert st.returncode == 0, st.stderr
        assert json.loads(st.stdout)["state"] == "stopped"
        sc = subprocess.run(_itpump(url, "set-clock", "2026-01-05T08:00"), capture_output=True,
                            text=True, timeout=60, check=False)
        assert sc.returncode == 0, sc.stderr
        out, err = mon.communicate(timeout=60)
    finally:
        if mon.poll() is None:
            mon.kill()
            mon.wait()
    assert mon.returncode == 0, err
    objs = [first] + [json.loads(ln) for ln in out.splitlines()]
    statuses = [o["status"] for o in objs if "status" in o]
    events = [o["event"] for o in objs if "event" in o]
    assert len(statuses) >= 3 and statuses[-1]["clock"] is not None   # still polling after it
    # the other process's command reached the monitor as events (the pump's and the protocol's)
    assert any(e.get("kind") == "clock_set" for e in events)
    assert any(e.get("kind") == "command" and e.get("cmd") == "set_clock" for e in events)
    assert not [o for o in objs if "event_issue" in o]                 # nothing lost or forged
    # replies went to the asker only: the listening host got the event lines and nothing else
    bystander.settimeout(0.5)
    got = b""
    try:
        while chunk := bystander.recv(65536):
            got += chunk
    except TimeoutError:
        pass
    bystander.close()
    lines = got.decode().splitlines()
    assert lines and all(ln.startswith("~") for ln in lines), lines[:3]
