#pragma once
/// \file ktnn::train_step: one training step on a batch of the caller's own
/// Views or Tensors (any layout, any strides, in the model's memory space):
/// forward, the fused loss (value, gradient and metrics into a device scalar),
/// backward (writing the gradients over the last step's, so no zeroing pass),
/// the optimizer's one kernel. Nothing waits for the device: the returned
/// loss sums are read when the caller chooses. fit, evaluate's callers and
/// the benchmarks all run this one step.

#include <ktnn/core/profiling.hpp>
#include <ktnn/layers/layer.hpp>
#include <ktnn/losses/loss.hpp>
#include <ktnn/losses/loss_concept.hpp>
#include <ktnn/optim/optimizer_concept.hpp>

#include <Kokkos_Core.hpp>

namespace ktnn {

/// One step on inputs `x` and targets `y`; the loss sums of the batch go to
/// `sums` (a device scalar) and that View is returned. The step runs in the
/// model's current mode (training unless set_mode changed it; fit sets it).
template <class Model, class Loss, class Optimizer, class X, class Y>
Kokkos::View<LossSums, typename Model::memory_space> train_step(
    Model& model, Loss const& loss, Optimizer& optimizer, X const& x, Y const& y,
    Kokkos::View<LossSums, typename Model::memory_space> const& sums) {
  static_assert(check_loss<Loss>(),
                "ktnn::train_step: the loss does not meet the ktnn::Loss protocol (see above)");
  static_assert(check_optimizer_for<Optimizer, Model>(),
                "ktnn::train_step: the optimizer does not meet the ktnn::Optimizer protocol for "
                "this model (see above)");
  Kokkos::Profiling::ScopedRegion region("ktnn::train_step");
  auto const prediction = model.forward(x);
  compute_loss(model.execution(), loss, prediction, y, sums, model.output_gradient());
  model.backward(false, Accumulate::no);
  optimizer.step(model.parameters(), model.gradients());
  return sums;
}

/// One step, its loss sums in the model's own device scalar (overwritten by
/// the next step that uses it).
template <class Model, class Loss, class Optimizer, class X, class Y>
Kokkos::View<LossSums, typename Model::memory_space> train_step(Model& model, Loss const& loss,
                                                                Optimizer& optimizer, X const& x,
                                                                Y const& y) {
  return train_step(model, loss, optimizer, x, y, model.loss_sums());
}

}  // namespace ktnn
