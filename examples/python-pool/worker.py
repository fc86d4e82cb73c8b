#!/usr/bin/env python3
"""A poolscope demo worker: a gRPC server (grpcio) that runs one command at a time.

The Rust pool starts it as `python3 worker.py --id N --port 0`; it prints
`READY <port>` on stdout once it listens, then answers `Ready` and `Execute`.
Python stubs are generated at start from worker.proto (next to this file)
with grpcio-tools, into a temporary directory: nothing generated is checked in.

Log lines go to stderr as JSON, with the request's correlation id; the host
reads them into its own log stream. On a fatal signal, `faulthandler` writes
the Python stack of every thread to stderr, and the host's crash report
keeps the crashed thread's frames. When the host goes, by any signal, the
worker goes too: its stdin is a pipe from the host, and end of file there
ends it.
"""

import argparse
import ctypes
import faulthandler
import json
import os
import signal
import stat
import sys
import tempfile
import threading
import time
import traceback
from concurrent import futures

import grpc
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
LEAKED = []


def generate_stubs():
    out = tempfile.mkdtemp(prefix="poolscope-stubs-")
    code = protoc.main(["grpc_tools.protoc", f"-I{HERE}", f"--python_out={out}", f"--grpc_python_out={out}", os.path.join(HERE, "worker.proto")])
    if code != 0:
        sys.exit(f"could not generate stubs from worker.proto (protoc exit {code})")
    sys.path.insert(0, out)
    import worker_pb2
    import worker_pb2_grpc
    return worker_pb2, worker_pb2_grpc


def log(worker_id, level, message, correlation_id=None, **fields):
    line = {"level": level, "worker": worker_id, "pid": os.getpid(), "message": message}
    if correlation_id:
        line["correlation_id"] = correlation_id
    line.update(fields)
    sys.stderr.write(json.dumps(line) + "\n")
    sys.stderr.flush()


def run(command, args):
    if command == "echo":
        return args
    if command == "sleep":
        time.sleep(float(args.get("ms", 10)) / 1000.0)
        return {"slept_ms": args.get("ms", 10)}
    if command == "compute":
        n = int(args.get("n", 100_000))
        return {"sum": sum(i * i for i in range(n))}
    if command == "fail":
        message = args.get("message", "the command failed")
        if args.get("chained"):
            try:
                {}["missing"]
            except KeyError as cause:
                raise ValueError(message) from cause
        raise ValueError(message)
    if command == "group":
        # Python 3.11+: several failures at once, one of them with a note.
        if sys.version_info < (3, 11):
            raise RuntimeError("exception groups need Python 3.11")
        failures = [ValueError(f"item {i} rejected") for i in range(int(args.get("n", 2)))]
        failures[0].add_note("the first item is checked twice")
        error = ExceptionGroup("batch failed", failures)
        error.add_note(f"batch of {len(failures)}")
        raise error
    if command == "crash":
        sys.stderr.write(f"crashing on purpose: {args}\n")
        sys.stderr.flush()
        if args.get("mode") == "segv":
            # To this thread, not the process: a process-wide signal may land
            # on a gRPC thread while this one runs on into a second fault,
            # and faulthandler's dump would name no current thread.
            signal.pthread_kill(threading.get_ident(), signal.SIGSEGV)
            ctypes.string_at(0)  # in case the signal is caught somewhere
        os._exit(int(args.get("code", 3)))
    if command == "pid":
        return {"pid": os.getpid()}
    if command == "wait":
        # Blocks until a file exists: a gate a test opens when it is ready.
        while not os.path.exists(args["path"]):
            time.sleep(0.01)
        return {"opened": args["path"]}
    if command == "leak":
        # Filled, so the pages are resident: a zeroed buffer may be mapped
        # without being touched.
        LEAKED.append(bytearray(b"\x01") * (int(args.get("mb", 1)) * 1024 * 1024))
        return {"leaked_mb": sum(len(b) for b in LEAKED) // (1024 * 1024)}
    raise ValueError(f"unknown command {command!r}")


def exit_with_host():
    """Exits when the host closes our stdin: it has stopped us, or died.

    Only a pipe is watched: stdin from /dev/null or a terminal says nothing
    about the host.
    """
    try:
        if not stat.S_ISFIFO(os.fstat(0).st_mode):
            return
    except OSError:
        return

    def watch():
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        os._exit(0)

    threading.Thread(target=watch, name="host-watch", daemon=True).start()


def main():
    # A SIGSEGV, SIGFPE, SIGABRT, SIGBUS or SIGILL prints every thread's
    # Python stack to stderr before the process dies.
    faulthandler.enable()
    exit_with_host()
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", default="0")
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()
    pb, pb_grpc = generate_stubs()

    class Worker(pb_grpc.WorkerServicer):
        def Ready(self, request, context):
            return pb.ReadyReply(pid=os.getpid())

        def Execute(self, request, context):
            metadata = dict(context.invocation_metadata())
            correlation_id = metadata.get("x-correlation-id") or request.correlation_id
            context.send_initial_metadata((("x-correlation-id", correlation_id),))
            log(options.id, "INFO", "executing", correlation_id, command=request.command)
            if request.command == "abort":
                # Ends the call with a gRPC status instead of a reply. Outside
                # the `try`: grpcio's abort raises an exception of its own.
                args = json.loads(request.args) if request.args else {}
                code = grpc.StatusCode[args.get("code", "INVALID_ARGUMENT")]
                context.abort(code, args.get("message", "the worker refused the call"))
            try:
                args = json.loads(request.args) if request.args else {}
                result = run(request.command, args)
                return pb.ExecuteReply(result=json.dumps(result))
            except Exception as error:  # every Python error goes back structured
                text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
                log(options.id, "ERROR", "command raised", correlation_id, command=request.command, exception=type(error).__name__)
                notes = [str(note) for note in getattr(error, "__notes__", [])]
                return pb.ExecuteReply(error=pb.PythonError(exception_type=type(error).__name__, message=str(error), traceback=text, notes=notes))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    pb_grpc.add_WorkerServicer_to_server(Worker(), server)
    port = server.add_insecure_port(f"127.0.0.1:{options.port}")
    server.start()
    log(options.id, "INFO", "listening", port=port)
    print(f"READY {port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.stop(0))
    server.wait_for_termination()


if __name__ == "__main__":
    main()
