#pragma once
/// \file Deterministic per-channel sums over a batch, what the normalization
/// layers (layers/normalization.hpp) take their statistics and parameter
/// gradients with: the order of every sum is fixed by the sizes (and, on
/// devices, the device), never by the scheduling, so runs repeat bit for bit.

#include <ktnn/core/error.hpp>
#include <ktnn/ops/gemm.hpp>
#include <ktnn/ops/space.hpp>

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <string>

namespace ktnn::detail {
/// Threads per channel in the device form of channel_sums: enough (channel,
/// chunk) threads to fill the device, at least 64 values each. A function of
/// the device and the sizes alone, so the sums repeat bit for bit.
template <class ExecSpace>
int channel_chunks(ExecSpace const& exec, std::size_t length, int channels) {
  std::size_t const threads =
      std::size_t(ops::device_team_target(exec)) * ops::device_team_size<ExecSpace>;
  std::size_t chunks = threads / std::size_t(channels);
  std::size_t const most = (length + 63) / 64;
  if (chunks > most) chunks = most;
  if (chunks < 1) chunks = 1;
  return int(chunks);
}

/// Workspace elements channel_sums<K> takes for `batch` samples.
template <int K, int Channels, int Pixels, class ExecSpace>
std::size_t channel_sums_workspace(ExecSpace const& exec, int batch) {
  if constexpr (ops::device_kernels<ExecSpace>)
    return std::size_t(K) * Channels *
           std::size_t(channel_chunks(exec, std::size_t(batch) * Pixels, Channels));
  else
    return 0;
}

/// The kernels of channel_sums (below).
template <int K, int Channels, int Pixels, class ExecSpace, class T, class Values, class Finish>
struct ChannelSums {
  struct Chunks {};      // devices: a thread per (channel, chunk)
  struct Totals {};      // devices: a team per channel
  struct PerChannel {};  // host spaces: a work item per channel
  using Sums = Kokkos::Array<T, K>;
  static constexpr int lanes = 8;
  Values values;
  Finish finish;
  T* partial = nullptr;
  std::size_t length = 0;
  int chunks = 0;
  int batch = 0;

  KOKKOS_INLINE_FUNCTION void operator()(Chunks, std::size_t e) const {
    int const c = int(e / chunks), k = int(e - std::size_t(c) * chunks);
    Sums acc = {};
    for (std::size_t t = k; t < length; t += chunks) {
      std::size_t const i = t / Pixels;
      Sums const v = values(int(i), c, int(t - i * Pixels));
      for (int q = 0; q < K; ++q) acc[q] += v[q];
    }
    for (int q = 0; q < K; ++q) partial[(std::size_t(q) * Channels + c) * chunks + k] = acc[q];
  }
  KOKKOS_INLINE_FUNCTION void operator()(
      Totals, typename Kokkos::TeamPolicy<ExecSpace>::member_type const& team) const {
    int const c = team.league_rank();
    Sums sums = {};
    for (int q = 0; q < K; ++q) {
      T const* block = partial + (std::size_t(q) * Channels + c) * chunks;
      Kokkos::parallel_reduce(
          Kokkos::TeamThreadRange(team, chunks), [&](int k, T& local) { local += block[k]; },
          sums[q]);
    }
    Kokkos::single(Kokkos::PerTeam(team), [&] { finish(c, sums); });
  }
  KOKKOS_INLINE_FUNCTION void operator()(PerChannel, int c) const {
    Sums total = {};
    for (int i = 0; i < batch; ++i) {
      T lane[K][lanes] = {};
      int p = 0;
      for (; p + lanes <= Pixels; p += lanes)
        for (int l = 0; l < lanes; ++l) {
          Sums const v = values(i, c, p + l);
          for (int q = 0; q < K; ++q) lane[q][l] += v[q];
        }
      for (; p < Pixels; ++p) {
        Sums const v = values(i, c, p);
        for (int q = 0; q < K; ++q) lane[q][0] += v[q];
      }
      for (int q = 0; q < K; ++q) {
        T sum = lane[q][0];
        for (int l = 1; l < lanes; ++l) sum += lane[q][l];
        total[q] += sum;
      }
    }
    finish(c, total);
  }
};

/// For every channel c < Channels, K sums over the samples i < batch and the
/// channel's pixels p < Pixels of values(i, c, p) (a Kokkos::Array<T, K>),
/// handed to finish(c, sums) once per channel, in a kernel. The order of
/// every sum is fixed by the sizes (and, on devices, the device), never by
/// the scheduling: runs repeat bit for bit.
///
/// Host spaces: a work item per channel; each sample's pixels go to eight
/// running sums (so the loop vectorizes), then to the channel's sum.
/// Devices: `chunks` threads per channel, thread k summing the channel's
/// values k, k + chunks, ... (neighbouring threads read neighbouring
/// pixels) into partial sums in the workspace from `offset` on; then a team
/// per channel sums its chunks.
template <int K, int Channels, int Pixels, class ExecSpace, class T, class Values, class Finish>
void channel_sums(ExecSpace const& exec, ops::Workspace<T> const& work, std::size_t offset,
                  std::string const& label, int batch, Values const& values, Finish const& finish) {
  using Kernel = ChannelSums<K, Channels, Pixels, ExecSpace, T, Values, Finish>;
  if constexpr (ops::device_kernels<ExecSpace>) {
    std::size_t const length = std::size_t(batch) * Pixels;
    int const chunks = channel_chunks(exec, length, Channels);
    std::size_t const needed = offset + std::size_t(K) * Channels * chunks;
    if (work.size < needed)
      fail(label, "workspace of ", work.size, " elements, ", needed, " needed for batch ", batch);
    Kernel const kernel{.values = values,
                        .finish = finish,
                        .partial = work.data + offset,
                        .length = length,
                        .chunks = chunks};
    Kokkos::parallel_for(label,
                         Kokkos::RangePolicy<ExecSpace, typename Kernel::Chunks>(
                             exec, 0, std::size_t(Channels) * chunks),
                         kernel);
    Kokkos::parallel_for(label + "::total",
                         Kokkos::TeamPolicy<ExecSpace, typename Kernel::Totals>(
                             exec, Channels, ops::device_team_size<ExecSpace>),
                         kernel);
  } else {
    (void)work, (void)offset;
    Kokkos::parallel_for(
        label, Kokkos::RangePolicy<ExecSpace, typename Kernel::PerChannel>(exec, 0, Channels),
        Kernel{.values = values, .finish = finish, .batch = batch});
  }
}

}  // namespace ktnn::detail
