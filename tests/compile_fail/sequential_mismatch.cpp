// Must not compile: Dense<784, 256> feeds 256 values into Dense<128, 10>.
// tests/CMakeLists.txt checks that the compiler's message is ours and names
// both layers with their sizes.
#include <ktnn/ktnn.hpp>

using Broken = ktnn::Sequential<ktnn::Dense<784, 256, ktnn::ReLU>, ktnn::Dense<128, 10>>;

int main() {
  return static_cast<int>(Broken::param_count);
}
