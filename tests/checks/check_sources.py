#!/usr/bin/env python3
"""Checks of ktnn's headers that need no compiler.

  check_sources.py device-lambdas DIR
      Fails when a header under DIR holds a device lambda: KOKKOS_LAMBDA,
      KOKKOS_CLASS_LAMBDA, or a lambda marked KOKKOS_FUNCTION (or its inline
      forms), __device__ or __host__.

      Why: nvcc (seen with CUDA 13) compiles a device lambda into a wrapper
      whose host-side copy, call and destruction go through function pointers
      kept per translation unit, while the wrapper's members are inline
      functions the linker merges. A header's lambda kernel that two source
      files instantiate can then be copied by code whose pointers were never
      set: every program of several files crashed at its first kernel on an
      H200. A named functor (a struct with a KOKKOS_FUNCTION operator()) is
      one type in every unit and never goes through that wrapper, so every
      kernel ktnn launches is one. Plain lambdas inside a functor's
      operator() (team-level loops) are device code already and are allowed.

  check_sources.py header-sizes DIR LIMIT
      Fails when a header under DIR has more than LIMIT lines: past a few
      hundred lines a file usually holds a second concern, which deserves a
      header of its own.
"""
import pathlib
import re
import sys

MARKS = re.compile(
    r"KOKKOS_LAMBDA|KOKKOS_CLASS_LAMBDA|\]\s*(KOKKOS_[A-Z_]*FUNCTION|__device__|__host__)")


def code_of(text):
    """The text with comments and string literals blanked (line numbers kept)."""
    pattern = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'',
                         re.DOTALL)
    return pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def headers(folder):
    found = sorted(p for p in pathlib.Path(folder).rglob("*") if p.suffix in (".hpp", ".h"))
    if not found:
        sys.exit(f"check_sources.py: no headers under {folder}")
    return found


def device_lambdas(folder):
    found = []
    for path in headers(folder):
        for number, line in enumerate(code_of(path.read_text()).splitlines(), 1):
            match = MARKS.search(line)
            if match:
                found.append(f"{path.relative_to(folder)}:{number}: device lambda: {match.group(0)}")
    if found:
        print("\n".join(found), flush=True)
        sys.exit(f"{len(found)} device lambda(s) under {folder}. Write the kernel as a named "
                 "functor (a struct with a KOKKOS_FUNCTION operator(), tag types for several "
                 "kernels of one type): nvcc gives a device lambda's host-side wrapper "
                 "per-translation-unit function pointers that the linker's merged inline members "
                 "may call unset, so a program of several files crashes at its first kernel "
                 "(tests/checks/check_sources.py says more).")
    print(f"no device lambda in {len(headers(folder))} headers under {folder}")


def header_sizes(folder, limit):
    found = []
    for path in headers(folder):
        count = len(path.read_text().splitlines())
        if count > limit:
            found.append(f"{path.relative_to(folder)}: {count} lines, more than {limit}")
    if found:
        print("\n".join(found), flush=True)
        sys.exit(f"{len(found)} header(s) under {folder} over {limit} lines: split by concern")
    print(f"{len(headers(folder))} headers under {folder}, none over {limit} lines")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "device-lambdas":
        device_lambdas(pathlib.Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "header-sizes":
        header_sizes(pathlib.Path(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(__doc__)
