#pragma once
// Two translation units of one program, built for different instruction sets
// (odr_native.cpp with AVX2, odr_baseline.cpp with SSE2 only), each train the
// same model one step. Each reports the tile its Model type was instantiated
// with and the address of its GEMM: with the choice in the type they are
// distinct functions, so the linker cannot hand one unit the other's code.

#include <string>
#include <vector>

struct OdrResult {
  std::string isa;
  void const* gemm = nullptr;
  std::vector<double> output;
};

OdrResult run_native();
OdrResult run_baseline();
