#!/usr/bin/env python3
"""A worker that writes garbage on its gRPC channel, for examples/python-pool/tests/hostile.rs.

The pool starts it as it starts worker.py (`--id N --port 0`). It runs the
real worker (examples/python-pool/worker.py) as its child, listens on a port
of its own, prints `READY <that port>`, and relays every connection to the
worker. A chunk from the worker that carries the marker GARBLE (an `echo` of
it) is replaced, on its way to the pool, by bytes that are not HTTP/2: the
pool's channel breaks in the middle of a reply. Everything else passes
through untouched, so the next connection works again.

With `--vanish` (vanishing_proxy.py) it also stops listening once it has
garbled a reply, and stays alive: a worker that runs but cannot be reached.

With `stall` (stalling_proxy.py) it garbles nothing; instead, once a request
carrying the marker STALL has gone to the worker, it holds back everything
the worker sends on that connection, the reply's headers included: a worker
whose handler never starts answering.
"""

import argparse
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "..", "..", "worker.py")
MARKER = b"GARBLE"
STALL = b"STALL"
# A frame header announcing 16 MiB of an unknown frame type, then noise.
GARBAGE = b"\xff\xff\xff\xee\xff\xff\xff\xff\xff" + b"\xde\xad\xbe\xef garbage, not HTTP/2 " * 8


def die_with_parent():
    # The relay may be SIGKILLed by the pool: the worker must not outlive it.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


VANISH = threading.Event()
STALLING = threading.Event()
LISTENER = None


def pump(source, target, garble, stalled):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            if STALLING.is_set():
                if not garble and STALL in data:
                    stalled.set()
                if garble and stalled.is_set():
                    # Never: the pool gives up, and kills this relay.
                    threading.Event().wait()
            elif garble and MARKER in data:
                sys.stderr.write("relay: garbling a reply\n")
                sys.stderr.flush()
                data = GARBAGE
                if VANISH.is_set() and LISTENER is not None:
                    # shutdown, not just close: it wakes the blocked accept
                    # and refuses new connections at once (Linux).
                    try:
                        LISTENER.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    LISTENER.close()
            target.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, target):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client, worker_port):
    try:
        upstream = socket.create_connection(("127.0.0.1", worker_port))
    except OSError:
        client.close()
        return
    stalled = threading.Event()
    threading.Thread(target=pump, args=(client, upstream, False, stalled), daemon=True).start()
    threading.Thread(target=pump, args=(upstream, client, True, stalled), daemon=True).start()


def main(vanish=False, stall=False):
    global LISTENER
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", default="0")
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()
    if vanish:
        VANISH.set()
    if stall:
        STALLING.set()
    worker = subprocess.Popen(
        [sys.executable, WORKER, "--id", options.id, "--port", "0"],
        stdout=subprocess.PIPE,
        preexec_fn=die_with_parent,
    )
    line = worker.stdout.readline().decode().strip()
    if not line.startswith("READY "):
        sys.exit(f"the worker did not start: {line!r}")
    worker_port = int(line.split()[1])
    listener = socket.socket()
    listener.bind(("127.0.0.1", options.port))
    listener.listen(16)
    LISTENER = listener
    print(f"READY {listener.getsockname()[1]}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (worker.kill(), os._exit(0)))
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            # Closed on purpose (--vanish): alive, but unreachable.
            while True:
                time.sleep(3600)
        serve(client, worker_port)


if __name__ == "__main__":
    main()
