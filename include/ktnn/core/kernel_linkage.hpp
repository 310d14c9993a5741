#pragma once
/// \file Why every ktnn function that launches a kernel written as a lambda
/// (a KOKKOS_LAMBDA, or a `[=] KOKKOS_FUNCTION` lambda handed to one) takes a
/// last template parameter `KtnnTU`, defaulted to a type that belongs to the
/// including translation unit alone.
///
/// nvcc (seen with CUDA 13.0) turns a KOKKOS_LAMBDA (a __host__ __device__
/// lambda) into a wrapper object whose copy, call and destruction on the host
/// go through function pointers kept in statics of an unnamed namespace: one
/// set per translation unit. The wrapper's member functions, though, are
/// ordinary inline functions, which the linker merges across translation
/// units. Where two units instantiate the same ktnn function, a program can
/// build the wrapper with one unit's code and copy or call it with the
/// other's, whose pointers were never set: a jump to address 0 at the first
/// kernel. (On an H200, every test program with more than one source file
/// crashed so, on the GPU and on the host space alike; single-file examples
/// ran.) A defaulted template argument of a type in an unnamed namespace makes
/// each unit instantiate its own copy of these functions, with internal
/// linkage, so a wrapper is always built, copied and called by one unit's
/// code. Types (Model, layers, optimizers) are unchanged and may cross units;
/// only the kernel-launching functions are per unit. `tools/gpu build` checks
/// that no built program has a merged (weak) wrapper symbol left.
///
/// The same holds for a user's own KOKKOS_LAMBDA in a header function that
/// several of their source files instantiate.

namespace ktnn::detail {
namespace {
/// A type of the including translation unit only (see above).
struct ThisTU {};
}  // namespace
}  // namespace ktnn::detail
