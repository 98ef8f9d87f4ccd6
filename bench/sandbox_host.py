"""A sandbox in its own process, so its CPU and memory never count as the measured sync's.

``python -m bench.sandbox_host --source connectwise --customers N --invoices M`` seeds the
connector's sandbox emulator, serves it on loopback and prints one JSON line (its config snippet
and base URL). It then obeys JSON commands, one a line on stdin, and answers each with one line:

- ``{"op": "change", "count": 100, "round": 1}``: change that many invoices (``Source``);
- ``{"op": "revert"}``: put every changed invoice back as it was (updated-at included);
- ``{"op": "cold"}``: forget the sandbox's caches (``Source.cold``) before a measured sequence;
- ``{"op": "stop"}`` (or end of input): stop serving and exit.

After seeding, the host freezes the garbage collector's view of the seeded rows (``gc.freeze``):
a 100,000-invoice table would otherwise be traversed by every full collection the server makes,
which adds noise to the timings of both the sync and its baseline.

``SandboxProcess`` is the parent's side: a context manager that starts the host, waits for it to
be ready and sends it commands.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Any, Self

from bench.common import child_process
from bench.sources import Undo, source
from syncd.sandboxes import sandbox_for

EXIT_TIMEOUT = 30.0  # seconds a host may take to exit once its output has ended


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sandbox_host")
    parser.add_argument("--source", required=True)
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--invoices", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    global _OUT
    _OUT, sys.stdout = sys.stdout, sys.stderr  # stdout is the control channel, nothing else
    spec = source(args.source)
    started = time.perf_counter()
    options: dict[str, Any] = {**spec.sizes(args.customers, args.invoices), **spec.sandbox_options}
    sandbox = sandbox_for(spec.connector, seed=args.seed, **options)
    seeded = time.perf_counter() - started
    gc.collect()
    gc.freeze()
    undos: list[Undo] = []
    with sandbox:
        _say(
            {
                "ready": True,
                "base_url": sandbox.base_url,
                "snippet": sandbox.config_snippet("bench"),
                "seed_seconds": round(seeded, 3),
                "expected": {
                    stream: len(sandbox.expected_ids(stream))
                    for stream in ("customers", "invoices")
                },
            }
        )
        for line in sys.stdin:
            command = json.loads(line)
            op = command.get("op")
            if op == "stop":
                _say({"ok": True})
                break
            if op == "change":
                undos.append(
                    spec.change_invoices(sandbox, int(command["count"]), int(command["round"]))
                )
                _say({"ok": True})
            elif op == "cold":
                if spec.cold is not None:
                    spec.cold(sandbox)
                _say({"ok": True})
            elif op == "revert":
                for undo in reversed(undos):
                    undo()
                undos.clear()
                _say({"ok": True})
            else:
                _say({"ok": False, "error": f"unknown op {op!r}"})
    return 0


_OUT: IO[str] = sys.stdout


def _say(message: dict[str, Any]) -> None:
    _OUT.write(json.dumps(message) + "\n")
    _OUT.flush()


class SandboxProcess:
    """The parent's handle on a sandbox host: ``with SandboxProcess(...) as host: host.snippet``."""

    def __init__(self, source_name: str, *, customers: int, invoices: int, seed: int = 7) -> None:
        self.source_name = source_name
        self.customers = customers
        self.invoices = invoices
        self.seed = seed
        self.snippet = ""
        self.base_url = ""
        self.seed_seconds = 0.0
        self.expected: dict[str, int] = {}
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> Self:
        command = [
            sys.executable,
            "-m",
            "bench.sandbox_host",
            "--source",
            self.source_name,
            "--customers",
            str(self.customers),
            "--invoices",
            str(self.invoices),
            "--seed",
            str(self.seed),
        ]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            **child_process(),
        )
        hello = self._read()
        if not hello.get("ready"):
            raise RuntimeError(f"sandbox host did not start: {hello}")
        self.snippet = str(hello["snippet"])
        self.base_url = str(hello["base_url"])
        self.seed_seconds = float(hello["seed_seconds"])
        self.expected = {str(k): int(v) for k, v in dict(hello["expected"]).items()}
        return self

    def change_invoices(self, count: int, round_no: int) -> None:
        self._command({"op": "change", "count": count, "round": round_no})

    def revert(self) -> None:
        self._command({"op": "revert"})

    def cold(self) -> None:
        self._command({"op": "cold"})

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.poll() is None and process.stdin is not None:
                process.stdin.write(json.dumps({"op": "stop"}) + "\n")
                process.stdin.flush()
                process.stdin.close()
            process.wait(timeout=EXIT_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        finally:
            if process.stdout is not None:
                process.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _command(self, message: dict[str, Any]) -> None:
        process = self._require()
        assert process.stdin is not None
        process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()
        answer = self._read()
        if not answer.get("ok"):
            raise RuntimeError(f"sandbox host refused {message}: {answer}")

    def _read(self) -> dict[str, Any]:
        process = self._require()
        stream: IO[str] | None = process.stdout
        assert stream is not None
        line = stream.readline()  # the host answers every command; a dead host gives EOF
        if not line:
            code = process.wait(timeout=EXIT_TIMEOUT)
            raise RuntimeError(f"sandbox host exited with status {code} before answering")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _require(self) -> subprocess.Popen[str]:
        if self._process is None:
            raise RuntimeError("the sandbox host is not running")
        return self._process


if __name__ == "__main__":
    raise SystemExit(main())
