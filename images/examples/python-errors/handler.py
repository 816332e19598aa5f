# One handler per way a function can fail, for tests and for ./scripts/up.
import os
import socket
import sys
import time


def echo(event, context):
    return event


def context_fields(event, context):
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }


def environment(event, context):
    return dict(os.environ)


def raise_error(event, context):
    print("about to fail")
    raise ValueError("something went wrong")


def exit_early(event, context):
    print("exiting", flush=True)
    os._exit(3)


def segfault(event, context):
    import ctypes
    ctypes.string_at(0)


def eat_memory(event, context):
    hog = []
    while True:
        hog.append(bytearray(16 << 20))


def sleep_forever(event, context):
    print("going to sleep", flush=True)
    time.sleep(3600)


def big_response(event, context):
    return "x" * int(event["size"])


def log_lines(event, context):
    for i in range(int(event.get("lines", 3))):
        print("line %d" % i)
    print("to stderr", file=sys.stderr)
    return "logged"


def sleep_ms(event, context):
    time.sleep(int(event.get("ms", 1000)) / 1000)
    return "slept"


def loopback(event, context):
    """A TCP round trip over 127.0.0.1 inside the sandbox, as a function that
    talks to a local helper (a Lambda extension, a sidecar) makes."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname(), timeout=2) as client:
            peer, _ = server.accept()
            with peer:
                client.sendall(b"ping")
                return {"echo": peer.recv(4).decode()}
