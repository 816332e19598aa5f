# State built during init, and randomness, for snapshot tests: what init made
# must survive a restore; what must differ between copies must differ.
import json
import os
import random
import sys
import time
import uuid

import thaw

STATE = {"built_at_init": [i * i for i in range(5)], "invocations": 0}
with open("/tmp/made-at-init.txt", "w") as f:
    f.write("written during init")
HOOKS = []
INIT_RANDOM = random.random()


@thaw.register_before_snapshot
def before_snapshot():
    HOOKS.append("before_snapshot")


@thaw.register_after_restore
def after_restore():
    HOOKS.append("after_restore")
    # A slow hook, for the test that restore's phases tell it from CRIU's work.
    time.sleep(float(os.environ.get("AFTER_RESTORE_SLEEP_MS", "0")) / 1000)


def handler(event, context):
    STATE["invocations"] += 1
    with open("/tmp/made-at-init.txt") as f:
        tmp = f.read()
    return {
        "state": STATE,
        "tmp": tmp,
        "hooks": HOOKS,
        "json_module_loaded": "json" in sys.modules and json.dumps(1) == "1",
        "random": random.random(),
        "init_random": INIT_RANDOM,
        "uuid": str(uuid.uuid4()),
        "echo": event,
        "hostname": os.uname().nodename,
    }
