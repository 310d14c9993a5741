// The C++ half of the PyTorch interop test (tests/interop/test_pytorch_interop.py).
//
// A fixed list of named architectures, each with a torch.nn.Sequential twin
// that the script builds, and the commands the script drives:
//
//   interop_driver list
//       one line per architecture: NAME<TAB>input shape<TAB>output shape
//       (the script checks that its list is this one)
//   interop_driver spaces
//       the execution spaces `predict` runs on, one per line
//   interop_driver save ARCH FILE [--double] [--seed N] [--dtype F32|F64|F16|BF16]
//                       [--inputs IN --outputs OUT]
//       a model from the seed, every parameter then moved off its initial
//       value (so a file of initial values, ones and zeros, proves nothing),
//       a few training-mode forwards (BatchNorm's running statistics and
//       num_batches_tracked move), evaluation mode, ktnn::save; with
//       --inputs/--outputs also the model's own predictions for IN
//   interop_driver predict ARCH WEIGHTS INPUTS OUTPUTS [--double]
//       ktnn::load(WEIGHTS) into a model on every execution space this
//       Kokkos enables, evaluation mode, predictions for INPUTS
//
// INPUTS is a safetensors file with one tensor "input" of shape
// [batch, <the architecture's input shape>] (any float dtype). OUTPUTS gets
// two tensors per execution space S, of shape [batch, <output shape>] in the
// model's type: "batched.S" (Model::forward) and "per_sample.S"
// (model.inference() called in a kernel, one sample per thread), so both
// paths of every layer are held to PyTorch. Built a second time with
// KTNN_DEVICE_KERNELS_ON_HOST (interop_driver_device_kernels), the host spaces
// run the layers' device kernels, which CUDA runs. Errors print the
// ktnn::Error's message and exit 1; a bad command line exits 2.

#include <ktnn/io/model_file.hpp>
#include <ktnn/io/safetensors.hpp>
#include <ktnn/ktnn.hpp>

#include <test_spaces.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <iostream>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using ktnn::AvgPool2D;
using ktnn::BatchNorm1d;
using ktnn::BatchNorm2d;
using ktnn::Conv2D;
using ktnn::Dense;
using ktnn::Dilation;
using ktnn::Dropout;
using ktnn::Flatten;
using ktnn::GlobalAvgPool2D;
using ktnn::Image;
using ktnn::LayerNorm;
using ktnn::MaxPool2D;
using ktnn::Padding;
using ktnn::Residual;
using ktnn::Sequential;
using ktnn::Stride;
using ktnn::detail::fail;

// ---------------------------------------------------------------------------
// The architectures. Each comment gives the torch.nn.Sequential the script
// builds for it (indexes as state_dict numbers them). Keep the two lists in
// step: the script refuses to run when they differ.

/// Linear(6, 12), A, Linear(12, 12), A, Linear(12, 3): tensors 0.*, 2.*, 4.*.
template <class A>
using FusedMlp = Sequential<Dense<6, 12, A>, Dense<12, 12, A>, Dense<12, 3>>;
/// The same function with the activation as a layer of its own:
/// Linear(6, 12), A, Linear(12, 3): tensors 0.*, 2.*.
template <class A>
using SeparateMlp = Sequential<Dense<6, 12>, A, Dense<12, 3>>;

/// Linear, Identity, Linear, Tanh, Softmax(dim=1).
using SoftmaxNet =
    Sequential<Dense<6, 12>, ktnn::Identity, Dense<12, 5, ktnn::Tanh>, ktnn::Softmax>;
/// Linear, ReLU, Linear, LogSoftmax(dim=1).
using LogSoftmaxNet = Sequential<Dense<6, 12, ktnn::ReLU>, Dense<12, 5>, ktnn::LogSoftmax>;
/// Linear, BatchNorm1d, ReLU, Dropout(0.25), Linear, SiLU, BatchNorm1d, Linear.
using BatchNorm1dNet = Sequential<Dense<6, 16>, BatchNorm1d<16>, ktnn::ReLU, Dropout<0.25>,
                                  Dense<16, 16, ktnn::SiLU>, BatchNorm1d<16>, Dense<16, 3>>;
/// Linear, GELU, LayerNorm, Linear, Tanh, LayerNorm, Linear.
using LayerNormNet = Sequential<Dense<6, 16, ktnn::GELU>, LayerNorm<16>, Dense<16, 16>, ktnn::Tanh,
                                LayerNorm<16>, Dense<16, 3>>;
/// Standardize (buffers mean, std), Linear, Tanh, Linear, Unstandardize: the
/// script's own two small modules with those buffers.
using StandardizeNet = Sequential<ktnn::Standardize<6>, Dense<6, 12, ktnn::Tanh>, Dense<12, 2>,
                                  ktnn::Unstandardize<2>>;
/// Conv2d(2, 6, 3, padding=1), BatchNorm2d(6), ReLU, MaxPool2d(2),
/// Conv2d(6, 8, 3, stride=2, padding=1), ELU, AvgPool2d(2, stride=1), Flatten,
/// Linear(32, 10), ReLU, Dropout(0.2), Linear(10, 4).
using Cnn = Sequential<Conv2D<Image<2, 12, 12>, 6, 3, Padding<1>>, BatchNorm2d, ktnn::ReLU,
                       MaxPool2D<2>, Conv2D<Image<6, 6, 6>, 8, 3, ktnn::ELU, Stride<2>, Padding<1>>,
                       AvgPool2D<2, Stride<1>>, Flatten, Dense<32, 10, ktnn::ReLU>, Dropout<0.2>,
                       Dense<10, 4>>;
/// Conv2d(1, 4, 3, dilation=2), SiLU, MaxPool2d(2, stride=1, dilation=2),
/// MaxPool2d(3, stride=2, padding=1), BatchNorm2d(4), Conv2d(4, 5, 2), Tanh,
/// AvgPool2d(2, padding=1), Sequential(AdaptiveAvgPool2d(1), Flatten), Linear(5, 3).
using CnnPoolOptions =
    Sequential<Conv2D<Image<1, 11, 11>, 4, 3, ktnn::SiLU, Dilation<2>>,
               MaxPool2D<2, Stride<1>, Dilation<2>>, MaxPool2D<3, Stride<2>, Padding<1>>,
               BatchNorm2d, Conv2D<Image<4, 3, 3>, 5, 2, ktnn::Tanh>, AvgPool2D<2, Padding<1>>,
               GlobalAvgPool2D, Dense<5, 3>>;
/// Conv2d(3, 4, 3, padding=1), ReLU, Residual(block=Sequential(Conv2d, BatchNorm2d,
/// ReLU, Conv2d)), ReLU, Sequential(AdaptiveAvgPool2d(1), Flatten), Linear(4, 3).
using ResidualNet = Sequential<Conv2D<Image<3, 8, 8>, 4, 3, ktnn::ReLU, Padding<1>>,
                               Residual<Conv2D<Image<4, 8, 8>, 4, 3, Padding<1>>, BatchNorm2d,
                                        ktnn::ReLU, Conv2D<Image<4, 8, 8>, 4, 3, Padding<1>>>,
                               ktnn::ReLU, GlobalAvgPool2D, Dense<4, 3>>;

/// The README's demo Mlp, whose twin is the model of the README's PyTorch
/// snippet: Linear(784, 256), ReLU, Linear(256, 128), ReLU, Linear(128, 10).
using DemoMlp =
    Sequential<Dense<784, 256, ktnn::ReLU>, Dense<256, 128>, ktnn::ReLU, Dense<128, 10>>;

// ---------------------------------------------------------------------------

struct Options {
  std::string arch, file, weights, inputs, outputs;
  bool use_double = false;
  std::uint64_t seed = 1;
  std::optional<ktnn::io::DType> dtype;
};

template <class Shape>
std::vector<std::size_t> dims() {
  if constexpr (Shape::is_image)
    return {std::size_t(Shape::channels), std::size_t(Shape::height), std::size_t(Shape::width)};
  else
    return {std::size_t(Shape::size)};
}

std::string dims_string(std::vector<std::size_t> const& d) {
  std::string s;
  for (std::size_t i = 0; i < d.size(); ++i) s += (i ? "," : "") + std::to_string(d[i]);
  return s;
}

template <class T>
constexpr ktnn::io::DType dtype_of() {
  return std::is_same_v<T, float> ? ktnn::io::DType::F32 : ktnn::io::DType::F64;
}

template <class T>
struct Batch {
  int rows = 0;
  std::vector<T> values;  // rows x in_features, row-major
};

/// The tensor "input" of `path`, checked against the architecture's input shape.
template <class Arch, class T>
Batch<T> read_inputs(std::string const& path) {
  auto const file = ktnn::io::read_file(path);
  auto const* t = file.parsed.find("input");
  if (t == nullptr) fail("interop_driver", path, ": no tensor named 'input'");
  auto const want = dims<typename Arch::in_shape>();
  bool const fits = t->shape.size() == want.size() + 1 &&
                    std::equal(want.begin(), want.end(), t->shape.begin() + 1);
  if (!fits)
    fail("interop_driver", path, ": 'input' has shape [", dims_string(t->shape),
         "], expected [batch,", dims_string(want), "] for ", Arch::name());
  Batch<T> batch{int(t->shape[0]), std::vector<T>(t->elements())};
  auto const* bytes = file.parsed.data.data() + t->begin;
  for (std::size_t i = 0; i < batch.values.size(); ++i)
    batch.values[i] = T(ktnn::io::detail::element(t->dtype, bytes, i));
  return batch;
}

/// Named result tensors, written to one safetensors file.
template <class T>
struct Results {
  std::vector<std::pair<std::string, std::vector<T>>> tensors;
  std::vector<std::size_t> sample_dims;
  int rows = 0;

  void write(std::string const& path) const {
    std::vector<ktnn::io::OutTensor> out;
    std::vector<std::size_t> shape{std::size_t(rows)};
    shape.insert(shape.end(), sample_dims.begin(), sample_dims.end());
    for (auto const& [name, values] : tensors)
      out.push_back({name, dtype_of<T>(), shape, std::span<T const>(values)});
    auto const bytes = ktnn::io::serialize(out, {{"format", "pt"}});
    ktnn::io::write_file(path, bytes);
  }
};

template <class View>
std::vector<typename View::non_const_value_type> host_values(View const& v) {
  auto const host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, v);
  std::vector<typename View::non_const_value_type> out;
  for (std::size_t i = 0; i < host.extent(0); ++i)
    for (std::size_t j = 0; j < host.extent(1); ++j) out.push_back(host(i, j));
  return out;
}

/// The model's predictions for `x` (it is in evaluation mode), batched and per
/// sample, as "batched.<space>" and "per_sample.<space>".
template <class Model, class T>
void predictions(Model& model, Batch<T> const& x, Results<T>& results) {
  using Space = typename Model::execution_space;
  using Rows = Kokkos::View<T**, Kokkos::LayoutRight, typename Space::memory_space>;
  constexpr int in = Model::in_features, out = Model::out_features;
  Rows input("interop_driver::input", x.rows, in);
  auto const host = Kokkos::create_mirror_view(input);
  for (int i = 0; i < x.rows; ++i)
    for (int j = 0; j < in; ++j) host(i, j) = x.values[std::size_t(i) * in + j];
  Kokkos::deep_copy(input, host);

  std::string const space = Space::name();
  results.tensors.emplace_back("batched." + space, host_values(model.forward(input)));

  Rows output("interop_driver::output", x.rows, out);
  auto const net = model.inference();
  Kokkos::parallel_for(
      "interop_driver::per_sample", Kokkos::RangePolicy<Space>(model.execution(), 0, x.rows),
      KOKKOS_LAMBDA(int i) {
        net(Kokkos::subview(input, i, Kokkos::ALL), Kokkos::subview(output, i, Kokkos::ALL));
      });
  results.tensors.emplace_back("per_sample." + space, host_values(output));
}

/// Moves every parameter off its initial value: w (1 + 0.5 u) + 0.2 v, u and
/// v uniform in [-0.5, 0.5) from the seed. LayerNorm's and BatchNorm's
/// weights start at one and their biases at zero, so without this a file
/// with those tensors swapped within themselves would pass.
template <class Model>
void perturb(Model& model, std::uint64_t seed) {
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, model.parameters());
  for (std::size_t k = 0; k < host.extent(0); ++k) {
    double const u = ktnn::random::uniform(seed, 101, k) - 0.5;
    double const v = ktnn::random::uniform(seed, 102, k) - 0.5;
    host(k) = typename Model::value_type(double(host(k)) * (1 + 0.5 * u) + 0.2 * v);
  }
  Kokkos::deep_copy(model.parameters(), host);
}

template <class Arch, class T>
void save(Options const& o) {
  ktnn::Model<Arch, T> model(o.seed);
  perturb(model, o.seed);
  // Training-mode forwards on inputs of mean 0.3 and spread 2: the running
  // statistics move well away from (0, 1).
  using Space = typename decltype(model)::execution_space;
  Kokkos::View<T**, Kokkos::LayoutRight, typename Space::memory_space> x(
      "interop_driver::train_input", 16, Arch::in_features);
  auto host = Kokkos::create_mirror_view(x);
  for (int step = 0; step < 3; ++step) {
    std::uint64_t c = 0;
    for (std::size_t i = 0; i < host.extent(0); ++i)
      for (std::size_t j = 0; j < host.extent(1); ++j)
        host(i, j) = T(0.3 + 2 * (ktnn::random::uniform(o.seed, 200 + step, c++) - 0.5));
    Kokkos::deep_copy(x, host);
    model.forward(x);
  }
  model.set_mode(ktnn::Mode::evaluate);
  ktnn::SaveOptions options;
  options.dtype = o.dtype;
  ktnn::save(model, o.file, options);
  if (!o.inputs.empty()) {
    auto const x_in = read_inputs<Arch, T>(o.inputs);
    Results<T> results{{}, dims<typename Arch::out_shape>(), x_in.rows};
    predictions(model, x_in, results);
    results.write(o.outputs);
  }
}

template <class Arch, class T, class Space>
void predict_on(Options const& o, Batch<T> const& x, Results<T>& results) {
  ktnn::Model<Arch, T, Space> model(0);
  ktnn::load(model, o.weights);
  model.set_mode(ktnn::Mode::evaluate);
  predictions(model, x, results);
}

template <class Arch, class T>
void predict(Options const& o) {
  auto const x = read_inputs<Arch, T>(o.inputs);
  Results<T> results{{}, dims<typename Arch::out_shape>(), x.rows};
  [&]<class... Space>(std::tuple<Space...>*) {
    (predict_on<Arch, T, Space>(o, x, results), ...);
  }(static_cast<ktnn_test::spaces*>(nullptr));
  results.write(o.outputs);
}

struct Entry {
  std::string name;
  std::string in_shape, out_shape;
  void (*save_float)(Options const&);
  void (*save_double)(Options const&);
  void (*predict_float)(Options const&);
  void (*predict_double)(Options const&);
};

template <class Arch>
Entry entry(std::string name) {
  return {std::move(name),
          dims_string(dims<typename Arch::in_shape>()),
          dims_string(dims<typename Arch::out_shape>()),
          &save<Arch, float>,
          &save<Arch, double>,
          &predict<Arch, float>,
          &predict<Arch, double>};
}

/// "fused_NAME" and "separate_NAME" for an activation.
template <class A>
void add_activation(std::vector<Entry>& list, std::string const& name) {
  list.push_back(entry<FusedMlp<A>>("fused_" + name));
  list.push_back(entry<SeparateMlp<A>>("separate_" + name));
}

std::vector<Entry> architectures() {
  std::vector<Entry> list;
  add_activation<ktnn::ReLU>(list, "relu");
  add_activation<ktnn::Tanh>(list, "tanh");
  add_activation<ktnn::Sigmoid>(list, "sigmoid");
  add_activation<ktnn::GELU>(list, "gelu");
  add_activation<ktnn::SiLU>(list, "silu");
  add_activation<ktnn::Softplus>(list, "softplus");
  add_activation<ktnn::LeakyReLU>(list, "leaky_relu");
  add_activation<ktnn::LeakyReLUSlope<0.2>>(list, "leaky_relu_0p2");
  add_activation<ktnn::ELU>(list, "elu");
  add_activation<ktnn::ELUAlpha<0.5>>(list, "elu_0p5");
  list.push_back(entry<SoftmaxNet>("softmax"));
  list.push_back(entry<LogSoftmaxNet>("log_softmax"));
  list.push_back(entry<BatchNorm1dNet>("batchnorm1d"));
  list.push_back(entry<LayerNormNet>("layernorm"));
  list.push_back(entry<StandardizeNet>("standardize"));
  list.push_back(entry<Cnn>("cnn"));
  list.push_back(entry<CnnPoolOptions>("cnn_pool_options"));
  list.push_back(entry<ResidualNet>("residual"));
  list.push_back(entry<DemoMlp>("demo_mlp"));
  return list;
}

int usage() {
  std::cerr << "usage: interop_driver list | spaces\n"
               "       interop_driver save ARCH FILE [--double] [--seed N] "
               "[--dtype F32|F64|F16|BF16] [--inputs IN --outputs OUT]\n"
               "       interop_driver predict ARCH WEIGHTS INPUTS OUTPUTS [--double]\n";
  return 2;
}

int run(std::vector<std::string> const& args) {
  if (args.empty()) return usage();
  auto const list = architectures();
  std::string const& command = args[0];
  if (command == "list" && args.size() == 1) {
    for (auto const& e : list)
      std::cout << e.name << '\t' << e.in_shape << '\t' << e.out_shape << '\n';
    return 0;
  }
  if (command == "spaces" && args.size() == 1) {
    [&]<class... Space>(std::tuple<Space...>*) {
      ((std::cout << Space::name() << '\n'), ...);
    }(static_cast<ktnn_test::spaces*>(nullptr));
    return 0;
  }
  // Positional arguments, then options.
  std::size_t const positional = command == "save" ? 3 : command == "predict" ? 5 : 0;
  if (positional == 0 || args.size() < positional) return usage();
  Options o;
  o.arch = args[1];
  if (command == "save") {
    o.file = args[2];
  } else {
    o.weights = args[2];
    o.inputs = args[3];
    o.outputs = args[4];
  }
  for (std::size_t i = positional; i < args.size(); ++i) {
    std::string const& a = args[i];
    bool const has_value = i + 1 < args.size();
    if (a == "--double") {
      o.use_double = true;
    } else if (a == "--seed" && has_value && command == "save") {
      o.seed = std::stoull(args[++i]);
    } else if (a == "--inputs" && has_value && command == "save") {
      o.inputs = args[++i];
    } else if (a == "--outputs" && has_value && command == "save") {
      o.outputs = args[++i];
    } else if (a == "--dtype" && has_value && command == "save") {
      std::string const d = args[++i];
      bool known = false;
      for (auto t : {ktnn::io::DType::F32, ktnn::io::DType::F64, ktnn::io::DType::F16,
                     ktnn::io::DType::BF16})
        if (d == ktnn::io::dtype_name(t)) o.dtype = t, known = true;
      if (!known) return usage();
    } else {
      return usage();
    }
  }
  if (o.inputs.empty() != o.outputs.empty()) return usage();
  for (auto const& e : list) {
    if (e.name != o.arch) continue;
    if (command == "save")
      (o.use_double ? e.save_double : e.save_float)(o);
    else
      (o.use_double ? e.predict_double : e.predict_float)(o);
    return 0;
  }
  std::cerr << "interop_driver: no architecture named '" << o.arch
            << "' (see: interop_driver list)\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return run(args);
  } catch (ktnn::Error const& e) {
    std::cerr << e.what() << '\n';
    return 1;
  } catch (std::exception const& e) {
    std::cerr << "interop_driver: " << e.what() << '\n';
    return 1;
  }
}
