"""The server behind tests/warm.py: imports what run.py's job imports, once, then forks a child per command.

    python tests/warm_server.py SOCKET

Each connection sends one JSON line ({argv, cwd, env, ignored, new_session}) with the command's stdin, stdout and
stderr as file descriptors, and reads back one JSON line with the child's pid, then one with its exit code (as
subprocess reports it: -N after signal N). The child takes what a process that the test started with exec would
have (its own standard streams, folder, environment, session, and the signal dispositions of a fresh Python whose
parent ignored `ignored`), then runs the script as __main__, as `python script args` runs it. The server is single
threaded (a fork copies only the forking thread) and ends when the process that started it has gone.
"""
import gc
import json
import os
import runpy
import selectors
import signal
import socket
import sys

from roadmap.train.collector import off_while_loading, on_past_what_has_loaded

# Python ignores these itself at start-up (and subprocess resets them to the default before exec)
PYTHON_IGNORES = {signal.SIGPIPE, signal.SIGXFSZ}


def load() -> None:
    """What run.py imports on its way to a job (its own top, then main(), then the training's modules), and what
    wandb.init imports at its first call in a process (launch inputs: 0.26 s of CPU, for the runs with W&B on), loaded
    once with the collector off, as run.py loads them (src/roadmap/train/collector.py)."""
    off_while_loading()
    import hydra  # noqa: F401
    import omegaconf  # noqa: F401
    import timm  # noqa: F401
    import torch  # noqa: F401
    import torchvision  # noqa: F401

    import roadmap.config.command_line  # noqa: F401
    import roadmap.config.completion  # noqa: F401
    import roadmap.sweep  # noqa: F401
    import roadmap.train.lifecycle  # noqa: F401
    import roadmap.train.progress  # noqa: F401
    try:
        import wandb.sdk.launch.inputs.internal  # noqa: F401
    except ImportError:  # another wandb: a run imports what it needs itself
        pass
    on_past_what_has_loaded()


def fresh_signals(ignored: set[int]) -> None:
    """The dispositions `python script` starts with when its parent ignores `ignored`: ignored ones stay ignored,
    the rest default; then Python's own: SIGPIPE and SIGXFSZ ignored, SIGINT raising KeyboardInterrupt."""
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_IGN if sig in ignored or sig in PYTHON_IGNORES else signal.SIG_DFL)
        except (OSError, ValueError):  # signals Python cannot set (SIGRTMIN+n used by the C library)
            pass
    if signal.SIGINT not in ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def become(request: dict, fds: list[int], listener: socket.socket, conn: socket.socket) -> None:
    """In the forked child: become the requested process, run its script, and exit as Python would."""
    listener.close()
    conn.close()
    if request["new_session"]:
        os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    fresh_signals(set(request["ignored"]))
    script = os.path.realpath(request["argv"][0])
    sys.argv = list(request["argv"])
    sys.path[0] = os.path.dirname(script)
    runpy.run_path(script, run_name="__main__")
    sys.exit(0)  # the script's end: through the interpreter's exit, as a script's end goes (atexit, flushes)


def serve(path: str) -> None:
    """Forks a child per request. Before each fork the server's objects (what it loaded: some 400,000) are frozen out
    of the collector (gc.freeze), as gc's docs advise for a fork without exec: the child's full collections, and the
    several the interpreter makes at its exit, would otherwise walk them all (0.2 s each; 1 s of CPU per run here).
    What a test checks of a run (record, output, exit code) does not depend on it; tests/test_warm.py compares a warm
    run with a fresh one."""
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    waiting: dict[int, socket.socket] = {}  # child pid -> the connection that waits for its exit code
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    print("ready", flush=True)
    while os.getppid() == parent:
        for _ in selector.select(timeout=0.02):
            conn, _ = listener.accept()
            message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
            request = json.loads(message)
            sys.stdout.flush()
            sys.stderr.flush()
            gc.freeze()  # as gc's docs advise before a fork without exec (see serve)
            pid = os.fork()
            if pid == 0:
                selector.close()
                for other in waiting.values():
                    other.close()
                become(request, fds, listener, conn)
            for fd in fds:
                os.close(fd)
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            waiting[pid] = conn
        while waiting:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            conn = waiting.pop(pid, None)
            if conn is not None:
                try:
                    conn.sendall(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
                except OSError:  # the test has gone
                    pass
                conn.close()


if __name__ == "__main__":
    load()
    serve(sys.argv[1])
