# A function whose init starts worker threads and builds a large table, for
# snapshot tests: the threads must come back with their own thread ids and
# answer, and every byte of the table must come back, however CRIU fills
# memory while restoring.
import hashlib
import os
import queue
import threading

TABLE = os.urandom(12 << 20)
SHA256_AT_INIT = hashlib.sha256(TABLE).hexdigest()
ANSWERS = queue.Queue()


def _worker(inbox):
    while True:
        inbox.get()
        ANSWERS.put(threading.get_native_id())


INBOXES = [queue.Queue() for _ in range(3)]
for box in INBOXES:
    threading.Thread(target=_worker, args=(box,), daemon=True).start()
for box in INBOXES:
    box.put(None)
IDS_AT_INIT = sorted(ANSWERS.get(timeout=10) for _ in INBOXES)


def handler(event, context):
    for box in INBOXES:
        box.put(None)
    ids_now = sorted(ANSWERS.get(timeout=10) for _ in INBOXES)
    return {"thread_ids_at_init": IDS_AT_INIT, "thread_ids_now": ids_now,
            "sha256_at_init": SHA256_AT_INIT,
            "sha256_now": hashlib.sha256(TABLE).hexdigest()}
