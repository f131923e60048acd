"""TensorFlow's C++ start-up lines are held back from the console; everything else printed meanwhile gets through."""
import os

import pytest

from cpm.native_log import held_native_log

CHATTER = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796403142.044082   10026 port.cc:153] oneDNN custom operations are on.\n",
    "I0000 00:00:1796403142.044460   10026 cudart_stub.cc:31] Could not find cuda drivers on your machine.\n",
    "E0000 00:00:1796403146.392550   10026 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n",
]
REAL = ["E0000 00:00:1796403146.392550   10026 op_kernel.cc:1830] OP_REQUIRES failed: out of memory\n",
        "Traceback (most recent call last):\n"]


def _print_all():
    for line in (CHATTER[0], REAL[0], *CHATTER[1:], REAL[1]):
        os.write(2, line.encode())


def test_tensorflow_start_up_lines_are_dropped_and_the_rest_kept_in_order(capfd, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    with held_native_log():
        _print_all()
    assert capfd.readouterr().err == "".join(REAL)


@pytest.mark.parametrize("level", ["0", "1"])
def test_a_lower_log_level_shows_everything(capfd, monkeypatch, level):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", level)
    with held_native_log():
        _print_all()
    assert capfd.readouterr().err == "".join((CHATTER[0], REAL[0], *CHATTER[1:], REAL[1]))


def test_what_was_printed_gets_through_when_the_block_raises(capfd, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    with pytest.raises(ImportError), held_native_log():
        os.write(2, REAL[0].encode())
        raise ImportError("libcudnn.so.9: cannot open shared object file")
    assert capfd.readouterr().err == REAL[0]
