#pragma once
/// \file Profiling regions: every public operation opens one, so Kokkos Tools
/// show where the time goes ("ktnn::<Component>::<step>").

#include <Kokkos_Core.hpp>
#include <Kokkos_Profiling_ScopedRegion.hpp>
