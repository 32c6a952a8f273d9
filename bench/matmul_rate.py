"""This machine's matrix-multiply rate (GFLOP/s) in fp32 and bf16, with torch on the CPU (or CUDA).

Large square matmuls, a warm-up, best of several repeats: the ceiling that feature extraction is compared
against (``bench/extract_rate.py``). A matmul of two n x n matrices costs 2 n^3 FLOP.

    python bench/matmul_rate.py [--n 2048] [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch


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
    rates = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        rates[name] = matmul_rate(dtype, n=a.n, repeats=a.repeats, device=a.device)
    print(f"device {a.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, n={a.n}")
    for name, r in rates.items():
        print(f"matmul {name}: {r:8.1f} GFLOP/s")
    print(f"bf16/fp32: {rates['bf16'] / rates['fp32']:.2f}")
    return rates


if __name__ == "__main__":
    main()
