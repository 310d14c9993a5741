// Must not compile: the second convolution expects Image<8, 28, 28> but the
// pooling layer before it gives Image<32, 14, 14>. Both are 6272 values, so
// only the shape check can catch it.
#include <ktnn/ktnn.hpp>

using ktnn::Image;
using Broken = ktnn::Sequential<ktnn::Conv2D<Image<1, 28, 28>, 32, 3, ktnn::Padding<1>>,
                                ktnn::MaxPool2D<2>, ktnn::Conv2D<Image<8, 28, 28>, 16, 3>>;

int main() {
  return static_cast<int>(Broken::param_count);
}
