"""This machine's matrix-multiply rate (GFLOP/s) in fp32 and bf16, with torch on the CPU (or CUDA).

Large square matmuls, a warm-up, best of several repeats: the ceiling that feature extraction is compared
against (``bench/extract_rate.py``). A matmul of two n x n matrices costs 2 n^3 FLOP.

bf16 is a fast path only on a CPU with bf16 instructions (AVX512-BF16 or AMX; torch's capability probe says
which): elsewhere torch emulates it, several hundred times slower than fp32 (a 2048 x 2048 bf16 matmul took
52 s on an AVX2-only host of this project's pool). There the bf16 rate is measured on a small matrix, printed as
emulated, and is no ceiling for anything: extraction runs in fp32 (``features.precision=auto``).

    python bench/matmul_rate.py [--n 2048] [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from unmask.models.inference import cpu_supports_bf16  # noqa: E402


def bf16_native(device: str = "cpu") -> bool:
    """Whether bf16 matmuls have hardware support here (CUDA, or a CPU with AVX512-BF16 / AMX)."""
    return device.startswith("cuda") or cpu_supports_bf16()


def matmul_rate(dtype: torch.dtype, *, n: int = 2048, repeats: int = 5, inner: int = 3, device: str = "cpu") -> float:
    """Best-of-``repeats`` GFLOP/s of ``inner`` back-to-back ``n x n @ n x n`` matmuls in ``dtype``."""
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    torch.matmul(a, b, out=out)  # warm-up: first call pays for packing/kernel selection
    sync()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            torch.matmul(a, b, out=out)
        sync()
        best = min(best, (time.perf_counter() - t0) / inner)
    return 2 * n ** 3 / best / 1e9


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    native = bf16_native(a.device)
    rates = {"fp32": matmul_rate(torch.float32, n=a.n, repeats=a.repeats, device=a.device)}
    # emulated bf16 at n=2048 takes minutes: measure it on a matrix 8x smaller per side
    rates["bf16"] = matmul_rate(torch.bfloat16, n=a.n if native else a.n // 8, repeats=a.repeats if native else 1,
                                inner=3 if native else 1, device=a.device)
    cap = torch.backends.cpu.get_cpu_capability() if a.device == "cpu" else a.device
    print(f"device {a.device} ({cap}), torch {torch.__version__}, {torch.get_num_threads()} threads, n={a.n}")
    print(f"matmul fp32: {rates['fp32']:8.1f} GFLOP/s")
    if native:
        print(f"matmul bf16: {rates['bf16']:8.1f} GFLOP/s")
    else:
        print(f"matmul bf16: {rates['bf16']:8.1f} GFLOP/s, emulated (n={a.n // 8}): this CPU has no bf16 "
              f"instructions (AVX512-BF16 / AMX), so fp32 is the fast path here")
    print(f"bf16/fp32: {rates['bf16'] / rates['fp32']:.3g}")
    return rates


if __name__ == "__main__":
    main()
