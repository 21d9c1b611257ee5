"""The local stand-ins the integration tests run against, started from node_modules on free loopback ports.

Azurite serves Table Storage and Blob Storage (and its queue service, which no test uses);
`@vercel/cosmosdb-server` speaks the Cosmos DB wire protocol (CRUD and SQL queries, no change feed, nothing kept
on disk). Both are installed by `npm ci` from package.json. Each runs for one test session and is stopped at its
end, also when tests fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NODE_BIN = REPO / "node_modules" / ".bin"
REQUIRE_ENV = "SENSORPULSE_REQUIRE_EMULATORS"  # set by `make test`: a missing emulator fails, never skips

# Azurite's documented development account: public, and only ever valid against the emulator.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# Any key is accepted by the Cosmos stand-in; this one is the Cosmos DB emulator's published key.
COSMOS_EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="

_STARTUP_SECONDS = 30.0


class EmulatorUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_ports(ports: list[int], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _STARTUP_SECONDS
    waiting = list(ports)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmulatorUnavailable(f"exited with {process.returncode}: {log.read_text(errors='replace')[-2000:]}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", waiting[0])) == 0:
                waiting.pop(0)
                if not waiting:
                    return
                continue
        time.sleep(0.1)
    raise EmulatorUnavailable(f"did not listen on 127.0.0.1:{waiting[0]} within {_STARTUP_SECONDS:.0f} s")


@dataclass
class Emulator:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _start(name: str, executable: str, args: list[str], port: int, *more_ports: int) -> Emulator:
    binary = NODE_BIN / executable
    if not binary.exists():
        raise EmulatorUnavailable(f"{binary.relative_to(REPO)} is missing; run `npm ci`")
    workdir = Path(tempfile.mkdtemp(prefix=f"sensorpulse-{name}-"))
    log = workdir / "emulator.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(binary), *args], cwd=workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    emulator = Emulator(name, port, process, workdir)
    try:
        _wait_for_ports([port, *more_ports], process, log)
    except BaseException:
        emulator.stop()
        raise
    return emulator


def start_azurite(port: int | None = None) -> Emulator:
    """Azurite's table and blob services on free ports (`port`, the table port, restarts one on the port a stopped
    instance had; its data is gone). `connection_string` reaches the tables, `blob_connection_string` the blobs."""
    port = free_port() if port is None else port
    blob_port, queue_port = free_port(), free_port()
    hosts = [
        *("--tableHost", "127.0.0.1", "--tablePort", str(port)),
        *("--blobHost", "127.0.0.1", "--blobPort", str(blob_port)),
        *("--queueHost", "127.0.0.1", "--queuePort", str(queue_port)),  # always started by azurite; unused
    ]
    workdir_hint = ["--location", ".", "--disableTelemetry", "--skipApiVersionCheck", "--silent"]
    emulator = _start("azurite", "azurite", [*hosts, *workdir_hint], port, blob_port)
    account = f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
    emulator.extra["connection_string"] = f"{account}TableEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
    emulator.extra["blob_port"] = str(blob_port)
    emulator.extra["blob_connection_string"] = f"{account}BlobEndpoint=http://127.0.0.1:{blob_port}/{AZURITE_ACCOUNT};"
    return emulator


def start_cosmos_stand_in() -> Emulator:
    port = free_port()
    emulator = _start("cosmosdb-server", "cosmosdb-server", ["--port", str(port), "--host", "127.0.0.1"], port)
    emulator.extra["endpoint"] = f"https://127.0.0.1:{port}/"
    emulator.extra["key"] = COSMOS_EMULATOR_KEY
    return emulator


def emulators_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false")
