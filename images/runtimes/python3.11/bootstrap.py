"""thaw's Python runtime: loads the handler (init), then serves invocations one
at a time over the frame channel: frames from thawd on fd 3, to thawd on fd 4
(see invoker/protocol/frame_channel.hpp)."""
import importlib
import json
import os
import struct
import sys
import time
import traceback

CHANNEL_IN, CHANNEL_OUT = 3, 4
os.environ.pop("THAW_CHANNEL_FD", None)
# Functions import the hooks module as `import thaw`; it lives next to this file.
sys.path.append(os.path.dirname(os.path.abspath(__file__)))
# Small objects in one area from here on, so the snapshot's heap can come back
# in huge pages (addons/python_arenas.c). 1 GiB of address space, not memory.
# Without the extension (an interpreter it was not built for), only restores
# are slower.
try:
    import _thaw_arenas  # noqa: E402
    _thaw_arenas.install(1024)
except ImportError:
    pass
import thaw  # noqa: E402
import _thaw_huge_pages  # noqa: E402


def send(header, body=b""):
    head = json.dumps(header).encode()
    data = memoryview(struct.pack(">II", len(head), len(body)) + head + body)
    while data:
        data = data[os.write(CHANNEL_OUT, data):]


def recv_exact(n):
    chunks = []
    while n:
        chunk = os.read(CHANNEL_IN, min(n, 1 << 20))
        if not chunk:
            sys.exit(0)  # thawd closed the channel: nothing more to do
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv():
    head_len, body_len = struct.unpack(">II", recv_exact(8))
    return json.loads(recv_exact(head_len)), recv_exact(body_len)


def error_body(error_type, message, stack=None):
    body = {"errorMessage": message, "errorType": error_type}
    if stack is not None:
        body["stackTrace"] = stack
    return json.dumps(body).encode()


def flush():
    # Logs written before the answer must reach thawd before the answer does.
    sys.stdout.flush()
    sys.stderr.flush()


class LambdaContext:
    def __init__(self, header):
        env = os.environ
        self.aws_request_id = header["request_id"]
        self.invoked_function_arn = header["function_arn"]
        self.function_name = env["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = env["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.log_group_name = env["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = env["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = header["deadline_ms"]

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_ms - time.time() * 1000))


def load_handler():
    spec = os.environ.get("_HANDLER", "")
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise InitFailure("Runtime.MalformedHandlerName", "Bad handler '%s': not enough values to unpack" % spec)
    sys.path.insert(0, os.environ.get("LAMBDA_TASK_ROOT", "/var/task"))
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except SyntaxError as e:
        raise InitFailure("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (module_name, e))
    except ImportError as e:
        raise InitFailure("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (module_name, e))
    except Exception as e:
        raise InitFailure("Runtime.InitError", "%s: %s" % (type(e).__name__, e),
                          traceback.format_tb(e.__traceback__))
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise InitFailure("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (function_name, module_name))
    return handler


class InitFailure(Exception):
    def __init__(self, error_type, message, stack=None):
        super().__init__(message)
        self.error_type, self.message, self.stack = error_type, message, stack


def serve(handler):
    while True:
        header, payload = recv()
        kind = header.get("type")
        if kind == "prepare_snapshot":
            thaw._run_before_snapshot()
            _thaw_huge_pages.advise()
            flush()
            send({"type": "snapshot_ready"})
            continue
        if kind == "restored":
            # How long the hooks took, so thawd can tell them from CRIU's share.
            resumed = time.monotonic()
            thaw._run_after_restore()
            flush()
            send({"type": "ready", "hooks_ms": (time.monotonic() - resumed) * 1000})
            continue
        if kind != "invoke":
            continue
        context = LambdaContext(header)
        try:
            event = json.loads(payload) if payload else {}
        except ValueError as e:
            flush()
            send({"type": "error"}, error_body("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % e))
            continue
        try:
            result = handler(event, context)
        except Exception as e:
            traceback.print_exc()
            flush()
            send({"type": "error"}, error_body(type(e).__name__, str(e), traceback.format_tb(e.__traceback__)))
            continue
        try:
            body = json.dumps(result).encode()
        except (TypeError, ValueError) as e:
            flush()
            send({"type": "error"}, error_body("Runtime.MarshalError", "Unable to marshal response: %s" % e))
            continue
        flush()
        send({"type": "response"}, body)


def main():
    started = time.monotonic()
    try:
        handler = load_handler()
    except InitFailure as e:
        print("[ERROR] %s: %s" % (e.error_type, e.message), file=sys.stderr)
        flush()
        send({"type": "init_error"}, error_body(e.error_type, e.message, e.stack))
        return
    flush()
    send({"type": "ready", "init_ms": (time.monotonic() - started) * 1000})
    serve(handler)


main()
