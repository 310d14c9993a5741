// The ktnn demo in C++ with libtorch: a 784-256-128-10 ReLU MLP trained on
// Fashion-MNIST with Adam (lr 1e-3), batch 128, softmax cross-entropy, float.
// The same measurement as bench/peers/pytorch_mlp.py: the dataset is read once
// into tensors and samples/s counts the training loop only. Prints one JSON
// line at the end: {"peer":"libtorch","samples_per_second":...,
// "epoch_seconds":[...],"test_accuracy":...,...}.
//
//   libtorch_mlp [--epochs N] [--threads T] [--batch B] [--seed S] [--data DIR]

#include <torch/torch.h>
#include <torch/version.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

/// An unsigned-byte IDX file (gzip-compressed): its dimensions and bytes.
struct Idx {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> bytes;
};

Idx read_idx(std::string const& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) throw std::runtime_error("cannot open '" + path + "'");
  auto read = [&](void* out, unsigned size) {
    if (gzread(file, out, size) != int(size)) {
      gzclose(file);
      throw std::runtime_error("'" + path + "' is truncated or not gzip");
    }
  };
  unsigned char magic[4];
  read(magic, 4);
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08) {
    gzclose(file);
    throw std::runtime_error("'" + path + "' is not an unsigned-byte IDX file");
  }
  Idx idx;
  std::int64_t count = 1;
  for (int d = 0; d < magic[3]; ++d) {
    unsigned char be[4];
    read(be, 4);
    idx.dims.push_back(std::int64_t(be[0]) << 24 | be[1] << 16 | be[2] << 8 | be[3]);
    count *= idx.dims.back();
  }
  idx.bytes.resize(std::size_t(count));
  // gzread takes an unsigned count: read in chunks.
  for (std::size_t done = 0; done < idx.bytes.size();) {
    auto const chunk = unsigned(std::min<std::size_t>(idx.bytes.size() - done, 1u << 30));
    read(idx.bytes.data() + done, chunk);
    done += chunk;
  }
  gzclose(file);
  return idx;
}

/// Images as n x 784 floats in [0, 1], labels as n int64 class indices.
std::pair<torch::Tensor, torch::Tensor> load_split(std::string const& directory,
                                                   std::string const& prefix) {
  auto images = read_idx(directory + "/" + prefix + "-images-idx3-ubyte.gz");
  auto labels = read_idx(directory + "/" + prefix + "-labels-idx1-ubyte.gz");
  if (images.dims.size() != 3 || labels.dims.size() != 1 || images.dims[0] != labels.dims[0])
    throw std::runtime_error("unexpected shapes in the '" + prefix + "' split");
  auto const n = images.dims[0];
  auto x = torch::from_blob(images.bytes.data(), {n, 784}, torch::kUInt8)
               .to(torch::kFloat32)
               .div_(255.0f);
  auto y = torch::from_blob(labels.bytes.data(), {n}, torch::kUInt8).to(torch::kInt64);
  return {x, y};  // .to() copied: the tensors own their data
}

struct Arguments {
  int epochs = 5;
  int threads = 2;
  int batch = 128;
  std::uint64_t seed = 42;
  std::string data = [] {
    char const* dir = std::getenv("KTNN_DATA_DIR");
    return std::string(dir && *dir ? dir : "/usr/share/datasets/fashion-mnist");
  }();
};

Arguments parse(int argc, char** argv) {
  Arguments a;
  for (int i = 1; i < argc; ++i) {
    std::string const flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--epochs")
      a.epochs = std::stoi(value());
    else if (flag == "--threads")
      a.threads = std::stoi(value());
    else if (flag == "--batch")
      a.batch = std::stoi(value());
    else if (flag == "--seed")
      a.seed = std::stoull(value());
    else if (flag == "--data")
      a.data = value();
    else
      throw std::runtime_error("unknown argument '" + flag + "'");
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) try {
  auto const args = parse(argc, argv);
  torch::set_num_threads(args.threads);
  torch::manual_seed(args.seed);
  auto [x_train, y_train] = load_split(args.data, "train");
  auto [x_test, y_test] = load_split(args.data, "t10k");

  torch::nn::Sequential model(torch::nn::Linear(784, 256), torch::nn::ReLU(),
                              torch::nn::Linear(256, 128), torch::nn::ReLU(),
                              torch::nn::Linear(128, 10));
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-3));
  auto generator = at::make_generator<at::CPUGeneratorImpl>(args.seed);

  auto const n = x_train.size(0);
  std::vector<double> epoch_seconds;
  for (int epoch = 0; epoch < args.epochs; ++epoch) {
    // The epoch's order is drawn before the clock starts, as ktnn's loader does.
    auto const order = torch::randperm(n, generator, torch::kInt64);
    model->train();
    auto const start = std::chrono::steady_clock::now();
    torch::Tensor loss;
    for (std::int64_t begin = 0; begin < n; begin += args.batch) {  // last batch may be partial
      auto const index = order.slice(0, begin, std::min<std::int64_t>(begin + args.batch, n));
      auto const xb = x_train.index_select(0, index);
      auto const yb = y_train.index_select(0, index);
      optimizer.zero_grad();
      loss = torch::nn::functional::cross_entropy(model->forward(xb), yb);
      loss.backward();
      optimizer.step();
    }
    epoch_seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    std::fprintf(stderr, "libtorch epoch %d/%d: %.3f s, last batch loss %.4f\n", epoch + 1,
                 args.epochs, epoch_seconds.back(), loss.item<float>());
  }

  model->eval();
  double accuracy = 0;
  {
    torch::NoGradGuard no_grad;
    auto const correct = (model->forward(x_test).argmax(1) == y_test).sum().item<std::int64_t>();
    accuracy = double(correct) / double(x_test.size(0));
  }
  double total = 0;
  for (double s : epoch_seconds) total += s;
  std::string seconds_json;
  for (double s : epoch_seconds)
    seconds_json += (seconds_json.empty() ? "" : ", ") + std::to_string(s);
  std::printf(
      "{\"peer\": \"libtorch\", \"samples_per_second\": %.3f, \"epoch_seconds\": [%s], "
      "\"test_accuracy\": %.4f, \"epochs\": %d, \"batch\": %d, \"threads\": %d, "
      "\"torch_version\": \"%s\"}\n",
      total > 0 ? double(n) * args.epochs / total : 0.0, seconds_json.c_str(), accuracy,
      args.epochs, args.batch, int(torch::get_num_threads()), TORCH_VERSION);
  return 0;
} catch (std::exception const& e) {
  std::fprintf(stderr, "libtorch_mlp: %s\n", e.what());
  return 1;
}
