"""run.py started warm, for the tests' own runs: a fork of a server process that has already imported what run.py
imports (torch, torchvision, timm, Hydra: about 3.5 s of CPU in every process, before any work), as Mercurial's
chg serves its test suite. The child is a process of its own (its pid, standard streams, folder, environment,
session and the signal dispositions a fresh `python run.py` would start with; tests/warm_server.py), so signals,
kills, exit codes, locks and files behave as they do for a process the test started with exec.

What a warm start cannot show is what happens while those modules load, or under an environment that is read when
they load (threads, offline switches). So `popen` and `run` start a fresh process instead whenever the environment
differs from the server's beyond RUNTIME_ENV, or the command is not run.py; the README's quick start
(tests/test_docs.py), the tests of what loads (test_config.py, test_layout.py) and of signals while loading
(test_faults_found.py) start fresh processes themselves; tests/test_warm.py checks that a warm run and a fresh one
give the same record, output and exit codes. ROADMAP_TESTS_COLD=1 starts every run fresh.
"""
import atexit
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SERVER = Path(__file__).with_name("warm_server.py")
# read while a run runs, not while its modules load: these may differ from the server's environment
RUNTIME_ENV = ("WANDB_", "ROADMAP_", "HOME", "PYTEST_CURRENT_TEST")
_server: dict = {}
_starting = threading.Lock()  # tests may start runs from threads


def _runtime(key: str) -> bool:
    return key.startswith(RUNTIME_ENV)


def usable(argv: list, env: dict, base_env: dict) -> bool:
    """Whether this command may start warm: run.py itself, under the server's environment but for RUNTIME_ENV."""
    if os.environ.get("ROADMAP_TESTS_COLD") == "1" or len(argv) < 2 or Path(str(argv[1])).name != "run.py":
        return False
    if str(argv[0]) != sys.executable:
        return False
    loaded = lambda e: {k: v for k, v in e.items() if not _runtime(k)}  # noqa: E731
    alive = _server.get("proc") is not None and _server["proc"].poll() is None
    return loaded(env) == loaded(_server["env"] if alive else base_env)


def server(base_env: dict) -> str:
    """The socket of this test process's server, started on first use (and again if it has died)."""
    with _starting:
        return _start(base_env)


def _start(base_env: dict) -> str:
    proc = _server.get("proc")
    if proc is None or proc.poll() is not None:
        # in the test process's own folder (conftest.py), which the next suite removes should this process be killed
        folder = tempfile.mkdtemp(prefix="warm-", dir=os.environ.get("ROADMAP_OUTPUT_DIR"))
        path = os.path.join(folder, "socket")
        proc = subprocess.Popen([sys.executable, str(SERVER), path], env=base_env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=None, text=True)
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the warm server did not start ({proc.wait()})")
        _server.update(proc=proc, path=path, env=dict(base_env))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        atexit.register(proc.kill)  # (atexit runs the last registered first)
    return _server["path"]


class WarmProcess:
    """What the tests use of subprocess.Popen (pid, poll, wait, send_signal, kill, terminate, returncode), for a
    child of the warm server."""

    def __init__(self, argv, conn: socket.socket, pipes: dict[str, int]):
        self.args, self._conn, self._buffer, self.returncode = argv, conn, b"", None
        self._pipes = pipes  # "stdout", "stderr" -> the read end of the child's stream, where it was PIPE
        self.pid = self._message(None)["pid"]

    def _message(self, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._conn.settimeout(left)
            try:
                chunk = self._conn.recv(4096)
            except (socket.timeout, BlockingIOError):  # a timeout of 0 makes the socket non-blocking
                return None
            if not chunk:
                raise RuntimeError("the warm server has gone")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def poll(self):
        try:
            return self.wait(0)
        except subprocess.TimeoutExpired:
            return None

    def wait(self, timeout=None):
        if self.returncode is None:
            message = self._message(timeout)
            if message is None:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self.returncode = message["returncode"]
            self._conn.close()
        return self.returncode

    def send_signal(self, sig):
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def close_pipes(self):
        for fd in self._pipes.values():
            try:
                os.close(fd)
            except OSError:  # closed already
                pass

    def communicate(self, timeout=None) -> tuple[str | None, str | None]:
        """As subprocess.Popen(..., text=True).communicate: the PIPE streams read to their end, as text (universal
        newlines: a progress bar's \\r too), then the exit; TimeoutExpired (the child left running) after `timeout`."""
        chunks = {fd: [] for fd in self._pipes.values()}
        selector = selectors.DefaultSelector()
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        deadline = None if timeout is None else time.monotonic() + timeout
        left = lambda: None if deadline is None else max(0.0, deadline - time.monotonic())  # noqa: E731
        try:
            while selector.get_map():
                if left() == 0:
                    raise subprocess.TimeoutExpired(self.args, timeout)
                for key, _ in selector.select(left()):
                    data = os.read(key.fd, 1 << 16)
                    chunks[key.fd].append(data) if data else selector.unregister(key.fd)
        finally:
            selector.close()
        self.wait(left())
        self.close_pipes()
        text = lambda fd: b"".join(chunks[fd]).decode().replace("\r\n", "\n").replace("\r", "\n")  # noqa: E731
        return tuple(text(self._pipes[name]) if name in self._pipes else None for name in ("stdout", "stderr"))


def _fd(stream, default: int, opened: list) -> int:
    if stream is None:
        return default
    if stream == subprocess.DEVNULL:
        fd = os.open(os.devnull, os.O_RDWR)
        opened.append(fd)
        return fd
    return stream if isinstance(stream, int) else stream.fileno()


def popen(argv, cwd, env, base_env, stdin=None, stdout=None, stderr=None, start_new_session=False,
          text=True) -> WarmProcess:
    """Starts `argv` (sys.executable, run.py, args...) as a child of the warm server; a PIPE stream is read with
    communicate() (as text)."""
    assert text, "warm runs are read as text"
    opened: list[int] = []  # closed here once the server has the child's copies
    pipes, fds = {}, [_fd(stdin, 0, opened)]
    for name, stream, default in (("stdout", stdout, 1), ("stderr", stderr, 2)):
        if stream == subprocess.PIPE:
            pipes[name], write = os.pipe()
            opened.append(write)
            fds.append(write)
        else:
            fds.append(_fd(stream, default, opened))
    if stderr == subprocess.STDOUT:
        fds[2] = fds[1]
    ignored = [int(s) for s in signal.valid_signals() if signal.getsignal(s) == signal.SIG_IGN]
    request = {"argv": [str(a) for a in argv[1:]], "cwd": str(cwd), "env": dict(env), "ignored": ignored,
               "new_session": bool(start_new_session)}
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(server(base_env))
    try:
        socket.send_fds(conn, [json.dumps(request).encode()], fds)
    finally:
        for fd in opened:
            os.close(fd)
    return WarmProcess([str(a) for a in argv], conn, pipes)


def run(argv, cwd, env, base_env, timeout=None) -> subprocess.CompletedProcess:
    """subprocess.run(argv, capture_output=True, text=True, timeout=timeout), warm: on a timeout the child is killed,
    then TimeoutExpired raised."""
    proc = popen(argv, cwd, env, base_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        proc.close_pipes()
        raise
    return subprocess.CompletedProcess([str(a) for a in argv], proc.returncode, out, err)
