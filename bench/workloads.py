"""The cold-start benchmark's workloads and the one program each contender
runs for them: the same interpreter, imports and handler everywhere.

A workload's program takes its event either on the command line (start,
handle one event, print the answer, exit) or, for contenders that restore a
checkpoint of the initialized program, on stdin: the program initializes,
says "ready" on stderr and waits for its event, so that the checkpoint holds
everything but the event.
"""
import collections
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "images", "examples")
PYTHON = "/usr/bin/python3.11"
NODE = "/usr/bin/node"

Workload = collections.namedtuple(
    "Workload", "name example runtime handler memory_mb event")

WORKLOADS = [
    Workload("W1 Python stdlib", "python-hello", "python3.11", "handler.handler", 256,
             {"name": "b"}),
    Workload("W2 Python pandas", "python-pandas", "python3.11", "handler.handler", 1024,
             {"values": [1, 2, 3]}),
    Workload("W3 Node.js http+crypto", "node-hello", "nodejs20.x", "index.handler", 256,
             {"name": "b"}),
    Workload("W4 native executable", "native-hello", "provided", "bootstrap", 128,
             {"name": "b"}),
]


def code_dir(workload, build_dir):
    """Where the function's files are: the example's directory, or for the
    native workload the directory its bootstrap was built into."""
    if workload.runtime == "provided":
        return os.path.join(build_dir, "images", "examples", workload.example)
    return os.path.join(EXAMPLES, workload.example)


def program(workload, code, event_on_stdin=False):
    """argv that runs the workload's handler once with `code` as its code
    directory. With event_on_stdin the program waits for the event after init
    (None when the workload has no init to keep: the native executable)."""
    module, function = workload.handler.rsplit(".", 1) if "." in workload.handler else ("", "")
    payload = json.dumps(workload.event)
    if workload.runtime == "python3.11":
        get_event = ("sys.stderr.write('ready\\n'); sys.stderr.flush(); "
                     "e = json.loads(sys.stdin.readline())" if event_on_stdin
                     else "e = json.loads(%r)" % payload)
        return [PYTHON, "-c",
                "import json,sys; sys.path.insert(0, %r); import %s as m; %s; "
                "print(json.dumps(m.%s(e, None), separators=(',', ':')))"
                % (code, module, get_event, function)]
    if workload.runtime == "nodejs20.x":
        get_event = ("process.stderr.write('ready\\n'); "
                     "const e = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
                     if event_on_stdin else "const e = %s;" % payload)
        return [NODE, "-e",
                "const m = require(%r); %s "
                "Promise.resolve(m.%s(e)).then(r => console.log(JSON.stringify(r)))"
                % (os.path.join(code, module + ".js"), get_event, function)]
    if event_on_stdin:
        return None
    return [os.path.join(code, "bootstrap")]


def normalized(text):
    return json.dumps(json.loads(text), sort_keys=True)
