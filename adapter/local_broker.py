"""The local run's Mosquitto: reuse one already listening, else start one from PATH for this process's life."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def config_text(port: int, data_dir: Path | None = None, extra: tuple[str, ...] = ()) -> str:
    """Loopback only, anonymous, generous queues: a development broker, never an exposed one. ``extra`` lines
    apply to its one listener too (TLS files, an ACL file, a packet size limit)."""
    lines = [
        f"listener {port} 127.0.0.1",
        f"user {getpass.getuser()}",  # stay the caller (not 'mosquitto') so it can write our data dir
        "allow_anonymous true",
        "max_queued_messages 100000",
        "max_inflight_messages 1000",
        "set_tcp_nodelay true",
    ]
    if data_dir is not None:
        lines += ["persistence true", f"persistence_location {data_dir}/"]
    return "\n".join([*lines, *extra]) + "\n"


@dataclass
class LocalBroker:
    process: subprocess.Popen[bytes]
    workdir: Path  # its config and log; removed when it stops

    def stop(self, within: float = 10.0) -> None:
        self.process.terminate()
        try:
            self.process.wait(within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_mosquitto(port: int, data_dir: Path | None = None, extra: tuple[str, ...] = ()) -> LocalBroker:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        raise RuntimeError("mosquitto is not installed (the README's setup installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="ocpp-mosquitto-"))
    conf = workdir / "mosquitto.conf"
    conf.write_text(config_text(port, data_dir, extra))
    # Its log goes to a file, never a pipe: a busy broker fills an unread pipe and then blocks on its next line.
    log_path = workdir / "mosquitto.log"
    with log_path.open("wb") as log_file:
        # The binary comes from PATH and the config is ours: no untrusted input reaches the command line.
        process = subprocess.Popen([binary, "-c", str(conf)],  # noqa: S603
                                   stdout=subprocess.DEVNULL, stderr=log_file)
    deadline = time.monotonic() + 10
    while not listening("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"mosquitto did not start on port {port}: {log_path.read_text(errors='replace')}")
        time.sleep(0.05)
    return LocalBroker(process, workdir)
