// Training checkpoints: a run stopped after epoch k and resumed from its
// checkpoint with fresh objects ends with the parameters, state, optimizer
// buffers and counters of the uninterrupted run, bit for bit, for every
// optimizer and wrapper, with dropout, batch normalization and schedules; a
// resume that skips part of the state does not; a checkpoint of another
// architecture, scalar type, optimizer or configuration, or a damaged one,
// is refused naming both sides and changes nothing.

#include "helpers.hpp"

#include <ktnn/io/checkpoint.hpp>

#include <bit>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr int features = 6, classes = 3, samples = 72;

/// A class from a fixed rule on uniform inputs: learnable, not trivially.
template <class Space>
ktnn::data::ClassificationDataset<float, features, typename Space::memory_space> make_data() {
  using Mem = typename Space::memory_space;
  Kokkos::View<float**, Kokkos::LayoutRight, Mem> x("x", samples, features);
  Kokkos::View<int*, Mem> y("y", samples);
  auto xh = Kokkos::create_mirror_view(x);
  auto yh = Kokkos::create_mirror_view(y);
  for (int i = 0; i < samples; ++i) {
    double s = 0;
    for (int j = 0; j < features; ++j) {
      xh(i, j) = float(2 * ktnn::random::uniform(11, 3, std::uint64_t(i * features + j)) - 1);
      s += (j % 2 ? -1.0 : 1.0) * (j + 1) * xh(i, j);
    }
    yh(i) = s < -1 ? 0 : (s < 1 ? 1 : 2);
  }
  Kokkos::deep_copy(x, xh);
  Kokkos::deep_copy(y, yh);
  return {ktnn::as_tensor<features>(x), y};
}

using Mlp = ktnn::Sequential<ktnn::Dense<features, 16, ktnn::Tanh>, ktnn::Dense<16, classes>>;
using Regularized = ktnn::Sequential<ktnn::Dense<features, 16>, ktnn::BatchNorm1d<16>, ktnn::ReLU,
                                     ktnn::Dropout<0.3>, ktnn::Dense<16, classes>>;

/// Every bit of a View's values.
template <class View>
std::vector<std::uint64_t> bits(View const& v) {
  auto const host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, v);
  using V = typename View::non_const_value_type;
  std::vector<std::uint64_t> out(host.extent(0));
  for (std::size_t i = 0; i < out.size(); ++i) {
    if constexpr (sizeof(V) == 4)
      out[i] = std::bit_cast<std::uint32_t>(host(i));
    else
      out[i] = std::bit_cast<std::uint64_t>(host(i));
  }
  return out;
}

/// All a run's state at its end.
struct Snapshot {
  std::vector<std::uint64_t> parameters, state;
  std::map<std::string, std::vector<std::uint64_t>> buffers;
  ktnn::Counters counters;
  std::uint64_t model_steps = 0;
};

void check_same(Snapshot const& a, Snapshot const& b) {
  CHECK(a.parameters == b.parameters);
  CHECK(a.state == b.state);
  CHECK(a.buffers.size() == b.buffers.size());
  for (auto const& [name, values] : a.buffers) {
    INFO("optimizer buffer " << name);
    REQUIRE(b.buffers.count(name) == 1);
    CHECK(values == b.buffers.at(name));
  }
  CHECK(a.counters == b.counters);
  CHECK(a.model_steps == b.model_steps);
}

std::string temp_path(std::string const& name) {
  return (std::filesystem::temp_directory_path() / ("ktnn_test_checkpoint_" + name + ".st"))
      .string();
}

/// A model, data and loader; the model's seed differs between the run that
/// writes a checkpoint and the one that reads it, so a resume that does not
/// restore the parameters and the seed shows.
template <class Net, class Space>
struct Bench {
  using Model = ktnn::Model<Net, float, Space>;
  using Data = ktnn::data::ClassificationDataset<float, features, typename Space::memory_space>;
  Data data = make_data<Space>();
  Model model;
  ktnn::data::DataLoader<Data, Space> loader;

  explicit Bench(std::uint64_t seed) : model(seed), loader(data, {.batch_size = 16, .seed = 5}) {}

  /// Epochs [first, last); `after(epoch)` after each (1-based).
  template <class Optimizer, class After>
  std::vector<ktnn::EpochMetrics> fit(Optimizer& optimizer, int first, int last, After after) {
    ktnn::FitOptions options;
    options.first_epoch = first;
    options.epochs = last;
    options.on_epoch_end.push_back([&](ktnn::EpochMetrics const& m) { after(m.epoch); });
    return ktnn::fit(model, ktnn::CrossEntropy{}, optimizer, loader, options);
  }

  template <class Optimizer>
  Snapshot snapshot(Optimizer const& optimizer) const {
    Snapshot s{bits(model.parameters()),
               bits(model.state()),
               {},
               optimizer.export_counters(),
               model.steps()};
    for (auto const& buffer : optimizer.state_tensors())
      s.buffers[buffer.name] = bits(buffer.values);
    return s;
  }
};

/// The uninterrupted run over [0, n) writes a checkpoint after epoch k; a
/// fresh bench (another model seed) loads it and trains [k, n). `make(model,
/// body)` builds the optimizer (and its wrappers) and calls body(optimizer).
/// `tamper(bench, optimizer)` runs after loading (to undo part of the
/// restore). Returns both runs' final states.
template <class Net, class Space, class Make, class Tamper>
std::pair<Snapshot, Snapshot> straight_and_resumed(std::string const& tag, Make const& make,
                                                   Tamper const& tamper, int k = 2, int n = 5) {
  std::string const path = temp_path(tag + "_" + Space::name());
  Snapshot straight, resumed;
  {
    Bench<Net, Space> bench(7);
    make(bench.model, [&](auto& optimizer) {
      auto const history = bench.fit(optimizer, 0, n, [&](int epoch) {
        if (epoch == k)
          ktnn::save_checkpoint(path, bench.model, optimizer,
                                ktnn::training_progress(bench.loader, epoch));
      });
      CHECK(history.size() == std::size_t(n));
      straight = bench.snapshot(optimizer);
    });
  }
  {
    Bench<Net, Space> bench(1234);
    make(bench.model, [&](auto& optimizer) {
      auto const progress = ktnn::load_checkpoint(path, bench.model, optimizer);
      CHECK(progress.epochs == k);
      ktnn::check_loader(progress, bench.loader);
      tamper(bench, optimizer);
      std::vector<int> seen;
      auto const history =
          bench.fit(optimizer, progress.epochs, n, [&](int epoch) { seen.push_back(epoch); });
      REQUIRE(history.size() == std::size_t(n - k));
      for (int e = k; e < n; ++e) {
        CHECK(history[std::size_t(e - k)].epoch == e + 1);  // the global numbers
        CHECK(seen[std::size_t(e - k)] == e + 1);
      }
      resumed = bench.snapshot(optimizer);
    });
  }
  std::filesystem::remove(path);
  return {straight, resumed};
}

/// Checks, part by part, that the resumed run ends as the straight one.
template <class Net, class Space, class Make>
void check_resumes_exactly(std::string const& tag, Make const& make, int k = 2, int n = 5) {
  INFO("run " << tag);
  auto const [straight, resumed] =
      straight_and_resumed<Net, Space>(tag, make, [](auto&, auto&) {}, k, n);
  check_same(straight, resumed);
}

/// Whether a resume tampered with ends with other parameters (or, with
/// `part`, another part of the state) than the straight run.
template <class Net, class Space, class Make, class Tamper>
bool resumed_differs(std::string const& tag, Make const& make, Tamper const& tamper,
                     std::vector<std::uint64_t> Snapshot::* part = &Snapshot::parameters) {
  auto const [straight, resumed] = straight_and_resumed<Net, Space>(tag, make, tamper);
  return straight.*part != resumed.*part;
}

}  // namespace

TEST_CASE_TEMPLATE_DEFINE("checkpoint: SGD with momentum and Adam resume bit for bit", Space,
                          resume_basic) {
  check_resumes_exactly<Mlp, Space>("sgd", [](auto& model, auto&& body) {
    ktnn::SGD<float, Space> sgd(model, {.lr = 0.05f, .momentum = 0.9f, .nesterov = true});
    body(sgd);
  });
  check_resumes_exactly<Mlp, Space>("adam", [](auto& model, auto&& body) {
    ktnn::Adam<float, Space> adam(model, {.lr = 1e-2f, .weight_decay = 1e-3f});
    body(adam);
  });
}
TEST_CASE_TEMPLATE_APPLY(resume_basic, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("checkpoint: every optimizer and wrapper resumes bit for bit", Space,
                          resume_all) {
  check_resumes_exactly<Mlp, Space>("adamw", [](auto& model, auto&& body) {
    ktnn::AdamW<float, Space> adamw(model);
    body(adamw);
  });
  check_resumes_exactly<Mlp, Space>("rmsprop", [](auto& model, auto&& body) {
    ktnn::RMSprop<float, Space> rmsprop(
        model, {.lr = 3e-3f, .weight_decay = 1e-4f, .momentum = 0.5f, .centered = true});
    body(rmsprop);
  });
  check_resumes_exactly<Mlp, Space>("adagrad", [](auto& model, auto&& body) {
    ktnn::Adagrad<float, Space> adagrad(
        model, {.lr = 5e-2f, .lr_decay = 1e-2f, .initial_accumulator_value = 0.1f});
    body(adagrad);
  });
  check_resumes_exactly<Mlp, Space>("clipped", [](auto& model, auto&& body) {
    ktnn::Adam<float, Space> adam(model, {.lr = 1e-2f});
    ktnn::Clipped clipped(adam, 0.05f, model.execution());
    body(clipped);
  });
  // Per step (OneCycleLR over the whole run) and per epoch (StepLR), stopped
  // after one epoch and after three.
  check_resumes_exactly<Mlp, Space>("onecycle", [](auto& model, auto&& body) {
    ktnn::SGD<float, Space> sgd(model, {.lr = 0.1f, .momentum = 0.9f});
    ktnn::Scheduled scheduled(sgd, ktnn::OneCycleLR({.max_lr = 0.2, .total_steps = 5 * 5}));
    body(scheduled);
  });
  for (int k : {1, 3})
    check_resumes_exactly<Mlp, Space>(
        "steplr",
        [](auto& model, auto&& body) {
          ktnn::Adam<float, Space> adam(model, {.lr = 1e-2f});
          ktnn::Scheduled scheduled(adam, ktnn::StepLR({.base_lr = 1e-2, .step_size = 2}), 5);
          body(scheduled);
        },
        k);
}
TEST_CASE_TEMPLATE_APPLY(resume_all, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("checkpoint: Dropout, BatchNorm1d and a schedule resume bit for bit",
                          Space, resume_regularized) {
  auto const make = [](auto& model, auto&& body) {
    ktnn::Adam<float, Space> adam(model, {.lr = 1e-2f});
    ktnn::Scheduled scheduled(adam, ktnn::OneCycleLR({.max_lr = 2e-2, .total_steps = 5 * 5}));
    body(scheduled);
  };
  check_resumes_exactly<Regularized, Space>("regularized", make);
  // The dropout masks follow the model's step counter: a resume that does
  // not restore it (as a fresh model's 0) trains on other masks.
  CHECK(resumed_differs<Regularized, Space>("regularized_steps", make,
                                            [](auto& bench, auto&) { bench.model.set_steps(0); }));
  // The running statistics are part of the file (training normalizes with
  // the batch's statistics: only the state shows it).
  CHECK(resumed_differs<Regularized, Space>(
      "regularized_state", make,
      [](auto& bench, auto&) { Kokkos::deep_copy(bench.model.state(), 0.5f); }, &Snapshot::state));
}
TEST_CASE_TEMPLATE_APPLY(resume_regularized, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("checkpoint: a resume without the optimizer's state differs", Space,
                          resume_partial) {
  auto const adam = [](auto& model, auto&& body) {
    ktnn::Adam<float, Space> adam(model, {.lr = 1e-2f});
    body(adam);
  };
  // Moments back to zero and the step count to 0: a fresh Adam.
  CHECK(resumed_differs<Mlp, Space>("fresh_adam", adam, [](auto&, auto& optimizer) {
    for (auto const& buffer : optimizer.state_tensors()) Kokkos::deep_copy(buffer.values, 0.0f);
    auto counters = optimizer.export_counters();
    counters["steps"] = "0";
    optimizer.import_counters(counters);
  }));
  // Only the step count lost: the bias corrections differ.
  CHECK(resumed_differs<Mlp, Space>("adam_steps", adam, [](auto&, auto& optimizer) {
    auto counters = optimizer.export_counters();
    counters["steps"] = "0";
    optimizer.import_counters(counters);
  }));
  // The learning rate in force is part of the state.
  CHECK(resumed_differs<Mlp, Space>(
      "adam_lr", adam, [](auto&, auto& optimizer) { optimizer.set_learning_rate(1e-3f); }));
  // The schedule's position too.
  CHECK(resumed_differs<Mlp, Space>(
      "schedule_steps",
      [](auto& model, auto&& body) {
        ktnn::SGD<float, Space> sgd(model, {.lr = 0.1f, .momentum = 0.9f});
        ktnn::Scheduled scheduled(sgd, ktnn::OneCycleLR({.max_lr = 0.2, .total_steps = 25}));
        body(scheduled);
      },
      [](auto&, auto& scheduled) { scheduled.set_steps(0); }));
  // And the model's parameters: a fresh model with the optimizer's state.
  CHECK(resumed_differs<Mlp, Space>("fresh_model", adam,
                                    [](auto& bench, auto&) { bench.model.initialize(1234); }));
}
TEST_CASE_TEMPLATE_APPLY(resume_partial, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("checkpoint: ReduceLROnPlateau travels as an extra object", Space,
                          plateau) {
  std::string const path = temp_path(std::string("plateau_") + Space::name());
  // A threshold no epoch beats: the rate halves after every second epoch.
  ktnn::ReduceLROnPlateauOptions const plateau_options{
      .factor = 0.5, .patience = 1, .threshold = 0.9, .cooldown = 1};
  auto run = [&](Bench<Mlp, Space>& bench, ktnn::Adam<float, Space>& adam,
                 ktnn::ReduceLROnPlateau& plateau, int first, int last, int save_at) {
    ktnn::FitOptions options;
    options.first_epoch = first;
    options.epochs = last;
    options.on_epoch_end.push_back(plateau.on_epoch_end(adam));
    options.on_epoch_end.push_back([&](ktnn::EpochMetrics const& m) {
      if (m.epoch == save_at)
        ktnn::save_checkpoint(path, bench.model, adam,
                              ktnn::training_progress(bench.loader, m.epoch), plateau);
    });
    ktnn::fit(bench.model, ktnn::CrossEntropy{}, adam, bench.loader, options);
  };
  Snapshot straight, resumed;
  ktnn::Counters straight_plateau;
  {
    Bench<Mlp, Space> bench(7);
    ktnn::Adam<float, Space> adam(bench.model, {.lr = 1e-2f});
    ktnn::ReduceLROnPlateau plateau(plateau_options);
    run(bench, adam, plateau, 0, 6, 3);
    CHECK(plateau.reductions() >= 2);
    straight = bench.snapshot(adam);
    straight_plateau = plateau.export_counters();
  }
  {
    Bench<Mlp, Space> bench(99);
    ktnn::Adam<float, Space> adam(bench.model, {.lr = 1e-2f});
    ktnn::ReduceLROnPlateau plateau(plateau_options);
    // Without the plateau the checkpoint is refused (one extra object saved).
    CHECK_THROWS_WITH_AS(ktnn::load_checkpoint(path, bench.model, adam),
                         doctest::Contains("1 extra objects"), ktnn::Error);
    auto const progress = ktnn::load_checkpoint(path, bench.model, adam, plateau);
    CHECK(plateau.epochs() == 3);
    run(bench, adam, plateau, progress.epochs, 6, -1);
    resumed = bench.snapshot(adam);
    CHECK(plateau.export_counters() == straight_plateau);
  }
  check_same(straight, resumed);
  std::filesystem::remove(path);
}
TEST_CASE_TEMPLATE_APPLY(plateau, ktnn_test::spaces);

TEST_CASE_TEMPLATE_DEFINE("checkpoint: another architecture, scalar type or optimizer is refused",
                          Space, mismatch) {
  std::string const path = temp_path(std::string("mismatch_") + Space::name());
  Bench<Mlp, Space> bench(7);
  ktnn::Adam<float, Space> adam(bench.model);
  bench.fit(adam, 0, 1, [](int) {});
  auto progress = ktnn::training_progress(bench.loader, 1);
  progress.metadata["run"] = "mismatch test";
  ktnn::save_checkpoint(path, bench.model, adam, progress);

  auto check_refused = [](std::string const& file, auto&& load,
                          std::vector<std::string> const& parts) {
    try {
      load();
      FAIL("no ktnn::Error");
    } catch (ktnn::Error const& e) {
      std::string const message = e.what();
      INFO(message);
      CHECK(message.find("ktnn::load_checkpoint") != std::string::npos);
      CHECK(message.find(file) != std::string::npos);
      for (auto const& part : parts) CHECK(message.find(part) != std::string::npos);
    }
  };
  {
    ktnn::Model<Regularized, float, Space> other(3);
    ktnn::Adam<float, Space> other_adam(other);
    auto const before = bits(other.parameters());
    check_refused(path, [&] { ktnn::load_checkpoint(path, other, other_adam); },
                  {Mlp::name(), Regularized::name()});
    CHECK(bits(other.parameters()) == before);
  }
  {
    ktnn::Model<Mlp, double, Space> other(3);
    ktnn::Adam<double, Space> other_adam(other);
    check_refused(path, [&] { ktnn::load_checkpoint(path, other, other_adam); },
                  {"scalar type is float", "the model's is double"});
  }
  {
    ktnn::Model<Mlp, float, Space> other(3);
    ktnn::SGD<float, Space> sgd(other, {.momentum = 0.9f});
    auto const before = bits(other.parameters());
    check_refused(path, [&] { ktnn::load_checkpoint(path, other, sgd); }, {"Adam", "SGD"});
    CHECK(bits(other.parameters()) == before);
    ktnn::AdamW<float, Space> adamw(other);
    check_refused(path, [&] { ktnn::load_checkpoint(path, other, adamw); }, {"is Adam,", "AdamW"});
    ktnn::Adam<float, Space> inner(other);
    ktnn::Scheduled scheduled(inner, [](std::int64_t) { return 1e-3; });
    check_refused(path, [&] { ktnn::load_checkpoint(path, other, scheduled); },
                  {"is Adam,", "Scheduled<Adam>"});
  }
  // The same model and optimizer types, another configuration: an SGD
  // checkpoint with a velocity into an SGD without one, and back.
  {
    std::string const sgd_path = temp_path(std::string("mismatch_sgd_") + Space::name());
    ktnn::SGD<float, Space> with(bench.model, {.lr = 0.1f, .momentum = 0.9f});
    ktnn::save_checkpoint(sgd_path, bench.model, with, progress);
    ktnn::Model<Mlp, float, Space> other(3);
    ktnn::SGD<float, Space> without(other, {.lr = 0.1f});
    check_refused(sgd_path, [&] { ktnn::load_checkpoint(sgd_path, other, without); },
                  {"momentum", "without momentum"});
    ktnn::SGD<float, Space> plain(bench.model, {.lr = 0.1f});
    ktnn::save_checkpoint(sgd_path, bench.model, plain, progress);
    ktnn::SGD<float, Space> other_with(other, {.lr = 0.1f, .momentum = 0.9f});
    check_refused(sgd_path, [&] { ktnn::load_checkpoint(sgd_path, other, other_with); },
                  {"'ktnn.optimizer.0.weight.momentum_buffer'", "not in the checkpoint"});
    std::filesystem::remove(sgd_path);
  }
  // The loader: another seed or batch size would not replay the run.
  {
    ktnn::Model<Mlp, float, Space> other(3);
    ktnn::Adam<float, Space> other_adam(other);
    auto const loaded = ktnn::load_checkpoint(path, other, other_adam);
    CHECK(loaded.epochs == 1);
    CHECK(loaded.loader_seed == 5);
    CHECK(loaded.batch_size == 16);
    CHECK(loaded.samples == std::uint64_t(samples));
    CHECK(loaded.metadata == std::map<std::string, std::string>{{"run", "mismatch test"}});
    ktnn::check_loader(loaded, bench.loader);
    ktnn::data::DataLoader<typename Bench<Mlp, Space>::Data, Space> reseeded(
        bench.data, {.batch_size = 16, .seed = 6});
    CHECK_THROWS_WITH_AS(ktnn::check_loader(loaded, reseeded),
                         doctest::Contains("loader had seed 5, this one has 6"), ktnn::Error);
    ktnn::data::DataLoader<typename Bench<Mlp, Space>::Data, Space> rebatched(
        bench.data, {.batch_size = 8, .seed = 5});
    CHECK_THROWS_WITH_AS(ktnn::check_loader(loaded, rebatched),
                         doctest::Contains("batch size 16, this one has 8"), ktnn::Error);
  }
  // A model file is not a checkpoint, but a checkpoint holds a model file.
  {
    std::string const model_path = temp_path(std::string("mismatch_model_") + Space::name());
    ktnn::save(bench.model, model_path);
    check_refused(model_path, [&] { ktnn::load_checkpoint(model_path, bench.model, adam); },
                  {"not a ktnn checkpoint", "ktnn::load"});
    ktnn::Model<Mlp, float, Space> other(3);
    ktnn::load(other, path);  // strict: the ktnn.* tensors are not the model's, and allowed
    CHECK(bits(other.parameters()) == bits(bench.model.parameters()));
    std::filesystem::remove(model_path);
  }
  // Reserved metadata keys are ktnn's.
  progress.metadata["ktnn.epochs"] = "3";
  CHECK_THROWS_WITH_AS(ktnn::save_checkpoint(path, bench.model, adam, progress),
                       doctest::Contains("'ktnn.epochs' is reserved"), ktnn::Error);
  std::filesystem::remove(path);
}
TEST_CASE_TEMPLATE_APPLY(mismatch, ktnn_test::spaces);

namespace {
/// Rewrites a checkpoint with its metadata and tensors changed by `edit`.
template <class Edit>
void rewrite(std::string const& from, std::string const& to, Edit edit) {
  auto const file = ktnn::io::read_file(from);
  auto metadata = file.parsed.metadata;
  std::vector<std::vector<double>> values;
  std::vector<ktnn::io::OutTensor> tensors;
  for (auto const& t : file.parsed.tensors) {
    auto& v = values.emplace_back(t.elements());
    for (std::size_t i = 0; i < v.size(); ++i)
      v[i] = ktnn::io::detail::element(t.dtype, file.parsed.data.data() + t.begin, i);
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    auto const& t = file.parsed.tensors[i];
    tensors.push_back({t.name, t.dtype, t.shape, std::span<double const>(values[i])});
  }
  std::vector<double> extra(3, 1.0);
  edit(metadata, tensors, extra);
  auto const bytes = ktnn::io::serialize(tensors, metadata);
  ktnn::io::write_file(to, bytes);
}
}  // namespace

TEST_CASE_TEMPLATE_DEFINE("checkpoint: a damaged file is refused and changes nothing", Space,
                          damaged) {
  std::string const path = temp_path(std::string("damaged_") + Space::name());
  std::string const bad = temp_path(std::string("damaged_bad_") + Space::name());
  {
    Bench<Regularized, Space> bench(7);
    ktnn::Adam<float, Space> adam(bench.model, {.lr = 1e-2f});
    bench.fit(adam, 0, 2, [](int) {});
    ktnn::save_checkpoint(path, bench.model, adam, ktnn::training_progress(bench.loader, 2));
  }
  Bench<Regularized, Space> bench(8);
  ktnn::Adam<float, Space> adam(bench.model, {.lr = 5e-3f});
  bench.fit(adam, 0, 1, [](int) {});  // a state of its own, to be kept
  auto const before = bench.snapshot(adam);
  auto const seed = bench.model.seed();
  auto unchanged = [&] {
    check_same(bench.snapshot(adam), before);
    CHECK(bench.model.seed() == seed);
  };

  auto const size = std::filesystem::file_size(path);
  std::vector<char> bytes(size);
  std::ifstream(path, std::ios::binary).read(bytes.data(), std::streamsize(size));
  for (std::size_t keep : {std::size_t(0), std::size_t(7), std::size_t(100), size / 2, size - 1}) {
    INFO("truncated to " << keep << " of " << size << " bytes");
    std::ofstream(bad, std::ios::binary | std::ios::trunc)
        .write(bytes.data(), std::streamsize(keep));
    CHECK_THROWS_WITH_AS(ktnn::load_checkpoint(bad, bench.model, adam),
                         doctest::Contains(bad.c_str()), ktnn::Error);
    unchanged();
  }
  CHECK_THROWS_WITH_AS(ktnn::load_checkpoint(bad + ".missing", bench.model, adam),
                       doctest::Contains("cannot open"), ktnn::Error);

  // Well-formed files with bad contents, each refused with its reason.
  struct Case {
    char const* what;
    std::function<void(ktnn::Counters&, std::vector<ktnn::io::OutTensor>&, std::vector<double>&)>
        edit;
    char const* message;
  };
  std::vector<Case> const cases = {
      {"a counter that is not a number",
       [](auto& m, auto&, auto&) { m["ktnn.optimizer.steps"] = "ten"; },
       "counter 'steps' is 'ten', not an integer"},
      {"a counter out of range", [](auto& m, auto&, auto&) { m["ktnn.optimizer.beta1"] = "1.5"; },
       "option beta1 is 1.5"},
      {"a missing counter", [](auto& m, auto&, auto&) { m.erase("ktnn.optimizer.eps"); },
       "counter 'eps' is missing"},
      {"an unknown counter", [](auto& m, auto&, auto&) { m["ktnn.optimizer.amsgrad"] = "true"; },
       "counter 'amsgrad' (true) is not one of this object's"},
      {"a negative epoch count", [](auto& m, auto&, auto&) { m["ktnn.epochs"] = "-1"; },
       "ktnn.epochs is -1"},
      {"a model step count that is not one",
       [](auto& m, auto&, auto&) { m["ktnn.model.steps"] = "-3"; },
       "counter 'ktnn.model.steps' is '-3'"},
      {"a format of the future", [](auto& m, auto&, auto&) { m["ktnn.checkpoint"] = "2"; },
       "checkpoint format '2'"},
      {"a missing optimizer tensor",
       [](auto&, auto& t, auto&) {
         std::erase_if(t, [](auto const& x) { return x.name == "ktnn.optimizer.0.bias.exp_avg"; });
       },
       "tensor 'ktnn.optimizer.0.bias.exp_avg' (shape [16]) is not in the checkpoint"},
      {"an optimizer tensor of another shape",
       [](auto&, auto& t, auto& extra) {
         for (auto& x : t)
           if (x.name == "ktnn.optimizer.0.bias.exp_avg") {
             x.shape = {3};
             x.values = std::span<double const>(extra);
           }
       },
       "has shape [3] in the checkpoint, expected [16]"},
      {"a tensor of another type",
       [](auto&, auto& t, auto&) {
         for (auto& x : t)
           if (x.name == "4.weight") x.dtype = ktnn::io::DType::F64;
       },
       "tensor '4.weight' is F64"},
      // Found last of all, after every other tensor was read: still nothing changes.
      {"a tensor that is nobody's",
       [](auto&, auto& t, auto& extra) {
         t.push_back({"ktnn.optimizer.0.bias.max_exp_avg_sq",
                      ktnn::io::DType::F32,
                      {3},
                      std::span<double const>(extra)});
       },
       "tensor 'ktnn.optimizer.0.bias.max_exp_avg_sq' is neither the model's"},
  };
  for (auto const& c : cases) {
    INFO(std::string(c.what));
    rewrite(path, bad, c.edit);
    CHECK_THROWS_WITH_AS(ktnn::load_checkpoint(bad, bench.model, adam),
                         doctest::Contains(c.message), ktnn::Error);
    unchanged();
  }
  // The unchanged rewrite loads (so each case failed for its own reason).
  rewrite(path, bad, [](auto&, auto&, auto&) {});
  CHECK(ktnn::load_checkpoint(bad, bench.model, adam).epochs == 2);
  CHECK(bench.model.seed() == 7);
  std::filesystem::remove(path);
  std::filesystem::remove(bad);
}
TEST_CASE_TEMPLATE_APPLY(damaged, ktnn_test::spaces);

TEST_CASE("checkpoint: counters read back to the same bits") {
  using ktnn::detail::counter_text;
  ktnn::Counters c;
  float const f[] = {0.1f,
                     1e-8f,
                     3.4028235e38f,
                     1.17549435e-38f,
                     1.4e-45f,
                     -0.0f,
                     std::numeric_limits<float>::infinity()};
  double const d[] = {0.1,      1e-300,
                      4.9e-324, 1.7976931348623157e308,
                      -2.5,     -std::numeric_limits<double>::infinity()};
  for (std::size_t i = 0; i < std::size(f); ++i) c["f" + std::to_string(i)] = counter_text(f[i]);
  for (std::size_t i = 0; i < std::size(d); ++i) c["d" + std::to_string(i)] = counter_text(d[i]);
  c["u"] = counter_text(std::numeric_limits<std::uint64_t>::max());
  c["i"] = counter_text(std::int64_t(-42));
  c["b"] = counter_text(true);
  CHECK(c["f0"] == "0.1");
  CHECK(c["u"] == "18446744073709551615");
  ktnn::detail::CounterReader in(c, "test");
  for (std::size_t i = 0; i < std::size(f); ++i)
    CHECK(std::bit_cast<std::uint32_t>(in.get<float>("f" + std::to_string(i))) ==
          std::bit_cast<std::uint32_t>(f[i]));
  for (std::size_t i = 0; i < std::size(d); ++i)
    CHECK(std::bit_cast<std::uint64_t>(in.get<double>("d" + std::to_string(i))) ==
          std::bit_cast<std::uint64_t>(d[i]));
  CHECK(in.get<std::uint64_t>("u") == std::numeric_limits<std::uint64_t>::max());
  CHECK(in.get<std::int64_t>("i") == -42);
  CHECK(in.get<bool>("b"));
  CHECK_NOTHROW(in.finish());
  CHECK_THROWS_WITH_AS(in.get<int>("u"), doctest::Contains("counter 'u' is '18446744073709551615'"),
                       ktnn::Error);
  CHECK_THROWS_WITH_AS(in.get<std::uint64_t>("i"), doctest::Contains("not a non-negative integer"),
                       ktnn::Error);
  ktnn::Counters spaced{{"x", " 1"}, {"y", "1 "}, {"z", ""}};
  ktnn::detail::CounterReader strict(spaced, "test");
  CHECK_THROWS_AS(strict.get<int>("x"), ktnn::Error);
  CHECK_THROWS_AS(strict.get<int>("y"), ktnn::Error);
  CHECK_THROWS_AS(strict.get<double>("z"), ktnn::Error);
  CHECK_NOTHROW(strict.finish());  // read, though not understood
  ktnn::detail::CounterReader unread(spaced, "test");
  CHECK(unread.sub("y").empty());  // a prefix takes the longer keys only
  CHECK_THROWS_WITH_AS(unread.finish(),
                       doctest::Contains("counter 'x' ( 1) is not one of this object's"),
                       ktnn::Error);
}

TEST_CASE_TEMPLATE_DEFINE("fit: first_epoch is checked and numbers epochs globally", Space,
                          first_epoch) {
  Bench<Mlp, Space> bench(7);
  ktnn::SGD<float, Space> sgd(bench.model, {.lr = 0.1f});
  ktnn::FitOptions options;
  options.epochs = 3;
  options.first_epoch = 4;
  CHECK_THROWS_WITH_AS(
      ktnn::fit(bench.model, ktnn::CrossEntropy{}, sgd, bench.loader, options),
      doctest::Contains("ktnn::fit: option first_epoch is 4, must be in [0, epochs] = [0, 3]"),
      ktnn::Error);
  options.first_epoch = -1;
  CHECK_THROWS_AS(ktnn::fit(bench.model, ktnn::CrossEntropy{}, sgd, bench.loader, options),
                  ktnn::Error);
  options.first_epoch = 3;  // nothing left to train
  auto const before = bits(bench.model.parameters());
  CHECK(ktnn::fit(bench.model, ktnn::CrossEntropy{}, sgd, bench.loader, options).empty());
  CHECK(bits(bench.model.parameters()) == before);
  std::ostringstream out;
  options.first_epoch = 2;
  options.out = &out;
  options.interactive = false;
  auto const history = ktnn::fit(bench.model, ktnn::CrossEntropy{}, sgd, bench.loader, options);
  REQUIRE(history.size() == 1);
  CHECK(history[0].epoch == 3);
  CHECK(out.str().find("epoch 3/3") != std::string::npos);
}
TEST_CASE_TEMPLATE_APPLY(first_epoch, ktnn_test::spaces);
