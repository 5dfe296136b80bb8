"""glibc keeps freed activations for the next batch once the engine has prepared a CPU model."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's allocator only"
)

# RSS (kB) before allocating 24 MB, with them touched, and after freeing them, in a fresh process
PROBE = """
import sys
from sasv.runtime.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory() and keep_freed_memory()
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4
before = rss()
block = bytearray(24 * 2**20)
block[:: 4096] = b"x" * len(block[:: 4096])
touched = rss()
del block
print(before, touched, rss())
"""


def _rss(mode: str) -> tuple[int, int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    before, touched, freed = map(int, out.stdout.split())
    return before, touched, freed


def test_freed_memory_stays_in_the_process_only_when_asked() -> None:
    before, touched, freed = _rss("default")
    assert touched - before > 20_000 and touched - freed > 20_000, "glibc's default: unmapped on free"
    before, touched, freed = _rss("keep")
    assert touched - before > 20_000 and touched - freed < 1_000, "kept for the next batch"


def test_preparing_a_cpu_model_keeps_freed_memory() -> None:
    probe = PROBE.replace('if sys.argv[1] == "keep":\n    assert keep_freed_memory() and keep_freed_memory()',
                          "import torch\nfrom sasv.runtime.cpu_kernels import prepare_model\n"
                          "prepare_model(torch.nn.Linear(2, 2), torch.device('cpu'))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", probe, "-"], capture_output=True, text=True, check=True)
    before, touched, freed = map(int, out.stdout.split())
    assert touched - freed < 1_000
