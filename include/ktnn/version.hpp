#pragma once

#define KTNN_VERSION_MAJOR 0
#define KTNN_VERSION_MINOR 1
#define KTNN_VERSION_PATCH 0

namespace ktnn {
inline constexpr char version[] = "0.1.0";
}
