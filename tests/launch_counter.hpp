#pragma once
// Kernels and deep copies launched inside a named Kokkos profiling region,
// counted with Kokkos Tools callbacks: the kernel-count tests hold training
// steps to a bound with it, and ktnn_bench reports kernels per step beside
// its rates. The callbacks are global to the process: they stand in for a
// tool loaded through KOKKOS_TOOLS_LIBS around the counted call only, and
// that tool's callbacks are put back after it.

#include <Kokkos_Core.hpp>

#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace ktnn_test {

/// What the callbacks saw inside the outermost entries of one region.
struct Launches {
  int kernels = 0;
  int deep_copies = 0;
  int entries = 0;  // times the region was entered (not nested in itself)
  std::vector<std::string> names;
  /// Kernels per entry of the region (0 when it was never entered).
  double kernels_per_entry() const { return entries > 0 ? double(kernels) / entries : 0.0; }
  double deep_copies_per_entry() const { return entries > 0 ? double(deep_copies) / entries : 0.0; }
  std::string list() const {
    std::ostringstream out;
    for (auto const& n : names) out << n << "; ";
    return out.str();
  }
};

namespace launch_counter_detail {
struct State {
  std::string region;
  std::vector<std::string> stack;
  Launches seen;
  bool inside() const {
    for (auto const& r : stack)
      if (r == region) return true;
    return false;
  }
};
inline State state;
inline void push_region(char const* name) {
  if (!state.inside() && state.region == name) ++state.seen.entries;
  state.stack.emplace_back(name);
}
inline void pop_region() {
  if (!state.stack.empty()) state.stack.pop_back();
}
inline void begin_kernel(char const* name, std::uint32_t, std::uint64_t* id) {
  *id = 0;
  if (!state.inside()) return;
  ++state.seen.kernels;
  state.seen.names.emplace_back(name);
}
inline void begin_deep_copy(Kokkos_Profiling_SpaceHandle, char const* dst, void const*,
                            Kokkos_Profiling_SpaceHandle, char const* src, void const*,
                            std::uint64_t) {
  if (!state.inside()) return;
  ++state.seen.deep_copies;
  state.seen.names.emplace_back(std::string("deep_copy ") + src + " -> " + dst);
}
}  // namespace launch_counter_detail

/// Runs `work()` and returns the kernels and deep copies it launched inside
/// the profiling region `region` (e.g. "ktnn::train_step").
template <class Work>
Launches count_launches(std::string region, Work&& work) {
  namespace tools = Kokkos::Tools::Experimental;
  namespace d = launch_counter_detail;
  d::state = {};
  d::state.region = std::move(region);
  // Put back what was loaded, also when work() throws.
  struct Restore {
    tools::EventSet loaded = tools::get_callbacks();
    ~Restore() { tools::set_callbacks(loaded); }
  } const restore;
  tools::set_callbacks(tools::EventSet{});  // none of the loaded tool's ends for our begins
  tools::set_push_region_callback(d::push_region);
  tools::set_pop_region_callback(d::pop_region);
  tools::set_begin_parallel_for_callback(d::begin_kernel);
  tools::set_begin_parallel_reduce_callback(d::begin_kernel);
  tools::set_begin_parallel_scan_callback(d::begin_kernel);
  tools::set_begin_deep_copy_callback(d::begin_deep_copy);
  std::forward<Work>(work)();
  return std::exchange(d::state.seen, {});
}

}  // namespace ktnn_test
