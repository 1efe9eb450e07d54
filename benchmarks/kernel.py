"""The BLAS kernels numpy runs on, as the benchmarks print them: "openblas 0.3.31.188.0 SkylakeX"."""

from threadpoolctl import threadpool_info


def blas_kernels() -> list[str]:
    """Each BLAS library loaded, with its version and the kernel (architecture) it chose, sorted."""
    return sorted({f"{i['internal_api']} {i.get('version')} {i.get('architecture')}" for i in threadpool_info()
                   if i["user_api"] == "blas"})
