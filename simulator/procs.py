"""Processes the benchmark runs besides the chargers: a broker, the adapter, the baseline relay.

Also reads a process tree's memory from /proc, because the adapter serves with several worker processes
and "memory per charger" must count them all.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode} before listening")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.args!r} is not listening on {port} after {within:.0f} s")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes], within: float = 15.0) -> None:
    """SIGTERM (an orderly shutdown), SIGKILL if it does not end in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(within)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
max_connections -1
max_queued_messages 1000000
max_inflight_messages 1000
max_packet_size 1048576
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
"""


@dataclass
class Broker:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


def start_broker() -> Broker:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = Path(tempfile.mkdtemp(prefix="sim-mosquitto-")) / "mosquitto.conf"
    conf.write_text(MOSQUITTO_CONF.format(port=port))
    process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL)
    wait_listening(port, process)
    return Broker(process, port)


@dataclass
class Service:
    """The adapter or the relay: a WebSocket server on `port` publishing to the broker."""

    command: list[str]
    port: int
    log: Path  # its stderr, appended across restarts
    process: subprocess.Popen[bytes] | None = None
    retired_cpu_s: float = 0.0  # CPU time of the instances a restart ended

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    def start(self, within: float = 60.0) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=log)
        wait_listening(self.port, self.process, within)

    def stop(self) -> None:
        if self.process is not None:
            self.retired_cpu_s += cpu_seconds(self.process.pid)
            stop(self.process)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cpu_s(self) -> float:
        """CPU time of every instance so far (a restart ends one)."""
        running = cpu_seconds(self.process.pid) if self.process and self.process.poll() is None else 0.0
        return self.retired_cpu_s + running


def adapter_service(mqtt_url: str, workers: int, log: Path, extra: list[str] | None = None) -> Service:
    port = free_port()
    return Service([sys.executable, "-m", "adapter", "serve", "--port", str(port), "--mqtt-url", mqtt_url,
                    "--workers", str(workers), "--log-level", "warning", *(extra or [])], port, log)


def relay_service(mqtt_url: str, workers: int, log: Path) -> Service:
    port = free_port()
    return Service([sys.executable, "-m", "simulator.baseline_relay", "--port", str(port),
                    "--mqtt-url", mqtt_url, "--workers", str(workers)], port, log)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(p) for p in task.read_text().split()]
        except OSError:
            continue
    return out


def tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += _children(current)
    return pids


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """CPU time of a process tree so far, including children it has already reaped."""
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU time every core of the machine spent busy so far (all processes, anyone's)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def tree_rss_kb(pid: int) -> int:
    """Resident memory of a process tree (a forked worker's shared pages count in each worker)."""
    return sum(rss_kb(p) for p in tree(pid))

