"""Helpers for the tests of the compiled passes' threads (dense and pruned searches)."""

import threading
import time
from concurrent.futures import Future


class IdlePool:
    """A pool whose workers never start a job (busy elsewhere): the caller does all."""

    def submit(self, fn, *args):
        return Future()


def wait_for(condition, timeout=30.0):
    """Poll ``condition()`` every millisecond until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.001)


def runtime_errors_in_thread(call, caller: list, timeout=30.0) -> list:
    """Run ``call()`` on a new thread (appended to ``caller`` before it starts, so that a
    patched pass can tell the caller from the pool's workers) and return the RuntimeErrors
    it raised; the test fails if the thread is still running after ``timeout`` seconds
    (a pass waiting for ever)."""
    errors = []

    def run():
        try:
            call()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    caller.append(thread)
    thread.start()
    thread.join(timeout=timeout)
    assert not thread.is_alive(), "a thread waited for ever for a block that failed"
    return errors
