"""apftools._threads.together: results in order, every call finished, nesting without deadlock."""

import signal
import threading
import time

import pytest

from apftools import _threads
from apftools._threads import together


def test_results_come_in_the_order_of_the_calls():
    assert together(lambda: 1, lambda: time.sleep(0.05) or 2, lambda: 3) == [1, 2, 3]
    assert together(lambda: 4) == [4]
    assert together() == []


def test_calls_run_side_by_side_when_a_core_is_spare(monkeypatch):
    monkeypatch.setattr(_threads, "_workers", lambda: 1)
    monkeypatch.delenv(_threads.SERIAL_VARIABLE, raising=False)
    names = together(lambda: threading.current_thread().name, lambda: threading.current_thread().name)
    assert names[0] == threading.current_thread().name and names[1] == "apftools"
    # daemons: a run stopped by a signal mid-way never leaves the interpreter joining one at exit
    assert _threads._STARTED and all(thread.daemon for thread in _threads._STARTED)


def test_the_serial_variable_keeps_every_call_in_the_callers_thread(monkeypatch):
    monkeypatch.setenv(_threads.SERIAL_VARIABLE, "1")
    here = threading.current_thread().name
    assert together(*[lambda: threading.current_thread().name] * 3) == [here] * 3


def test_an_error_is_raised_once_every_call_has_finished(monkeypatch):
    monkeypatch.setattr(_threads, "_workers", lambda: 1)
    finished = []

    def slow():
        time.sleep(0.1)
        finished.append("slow")

    def fail():
        raise ValueError("bad value 3")

    with pytest.raises(ValueError, match="bad value 3"):
        together(fail, slow)
    assert finished == ["slow"]
    with pytest.raises(ValueError, match="bad value 3"):
        together(slow, fail)


def test_nested_calls_inside_the_pool_do_not_wait_for_it(monkeypatch):
    monkeypatch.setattr(_threads, "_workers", lambda: 1)

    def inner():
        return together(lambda: "a", lambda: "b")

    assert together(inner, inner, inner) == [["a", "b"]] * 3  # one worker, busy with nested calls: no deadlock


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM")
def test_a_signal_while_waiting_still_waits_for_every_call(monkeypatch):
    # a daemon thread left in compiled code when the interpreter exits can abort the process
    monkeypatch.setattr(_threads, "_workers", lambda: 1)

    class Stop(BaseException):
        pass

    def handler(signum, frame):
        raise Stop

    finished = []

    def slow():
        time.sleep(0.3)
        finished.append("slow")

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)  # fires while together waits for slow
        with pytest.raises(Stop):
            together(lambda: None, slow)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert finished == ["slow"]
