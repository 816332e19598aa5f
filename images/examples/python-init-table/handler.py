# A function that builds a large table in memory at init (a model, a lookup
# table) and many small objects (parsed data), for snapshot tests: every byte
# of both must come back after a restore.
import hashlib
import os

TABLE = os.urandom(16 << 20)
SHA256_AT_INIT = hashlib.sha256(TABLE).hexdigest()
WORDS = [str(i) * 3 for i in range(300000)]  # ~19 MiB of small str objects
WORDS_SHA256_AT_INIT = hashlib.sha256("\n".join(WORDS).encode()).hexdigest()


def handler(event, context):
    return {"size": len(TABLE), "sha256_at_init": SHA256_AT_INIT,
            "sha256_now": hashlib.sha256(TABLE).hexdigest(),
            "words": len(WORDS), "words_sha256_at_init": WORDS_SHA256_AT_INIT,
            "words_sha256_now": hashlib.sha256("\n".join(WORDS).encode()).hexdigest()}
