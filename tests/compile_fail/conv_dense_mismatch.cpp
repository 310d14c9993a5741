// Must not compile: a convolution's image output goes straight into a Dense
// layer (PyTorch needs nn.Flatten there too). tests/CMakeLists.txt checks that
// the compiler's message is ours and names both layers.
#include <ktnn/ktnn.hpp>

using Broken =
    ktnn::Sequential<ktnn::Conv2D<ktnn::Image<1, 28, 28>, 32, 3, ktnn::ReLU, ktnn::Padding<1>>,
                     ktnn::Dense<25088, 10>>;

int main() {
  return static_cast<int>(Broken::param_count);
}
